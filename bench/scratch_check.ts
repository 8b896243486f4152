import { readFileSync, readdirSync } from 'node:fs';
import { createContext } from '../src/node.js';
export async function main(args: string[]) {
  const files: Record<string, string> = {};
  for (const f of readdirSync('shaders')) if (f.endsWith('.wgsl')) files[f] = readFileSync('shaders/' + f, 'utf8');
  files['conv2d.wgsl'] = readFileSync(args[0], 'utf8');
  const ctx = await createContext({ shaderFiles: files });
  const code = ctx.shaders.get('conv2d.wgsl').code;
  const m = ctx.device.createShaderModule({ code });
  const info = await m.getCompilationInfo();
  for (const msg of info.messages) console.log(msg.type, msg.lineNum, msg.message, code.split('\n')[msg.lineNum - 1]);
  ctx.destroy();
}
