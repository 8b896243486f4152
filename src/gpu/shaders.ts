/**
 * The shader registry: WGSL sources by file name, their `//! include` lines
 * resolved, and what wgsl_reflect reads from them (bindings per entry point,
 * the uniform struct's layout). Nothing here is a second description of a
 * shader: bind group layouts and uniform packing come from the source.
 */
// The package's 'main' is a CommonJS file under "type": "module", which Node
// cannot load; its ES module build is the one that works everywhere.
import { WgslReflect, ResourceType } from 'wgsl_reflect/wgsl_reflect.module.js';
import { BayesError } from '../errors.js';

export interface BindingInfo {
  name: string;
  binding: number;
  kind: 'uniform' | 'read-only-storage' | 'storage';
}

export interface UniformField {
  name: string;
  offset: number;
  /** Number of 32-bit components (1 for scalars, N for vecN). */
  components: number;
  scalar: 'f32' | 'u32' | 'i32';
}

export interface UniformLayout {
  /** The WGSL variable name of the uniform binding. */
  variable: string;
  size: number;
  fields: UniformField[];
}

export interface EntryInfo {
  name: string;
  bindings: BindingInfo[];
  uniform: UniformLayout | null;
}

export interface ShaderModuleInfo {
  file: string;
  /** The source after includes are spliced in; this is what compiles. */
  code: string;
  /** Maps a line of `code` (1-based) back to `file:line` of its origin. */
  origin(line: number): string;
  entries: Map<string, EntryInfo>;
  overrides: string[];
}

const INCLUDE = /^\s*\/\/!\s*include\s+"([^"]+)"\s*$/;

interface Spliced {
  code: string;
  lines: { file: string; line: number }[];
}

function splice(files: Record<string, string>, file: string, seen: Set<string>): Spliced {
  const text = files[file];
  if (text === undefined) throw new BayesError('SHADER_COMPILE', `shader registry: no shader file named '${file}' (have: ${Object.keys(files).join(', ')})`);
  const outLines: string[] = [];
  const map: { file: string; line: number }[] = [];
  text.split('\n').forEach((line, i) => {
    const m = INCLUDE.exec(line);
    if (m) {
      if (seen.has(m[1])) return; // each file is included once
      seen.add(m[1]);
      const inner = splice(files, m[1], seen);
      outLines.push(...inner.code.split('\n'));
      map.push(...inner.lines);
      return;
    }
    outLines.push(line);
    map.push({ file, line: i + 1 });
  });
  return { code: outLines.join('\n'), lines: map };
}

function scalarOf(name: string): 'f32' | 'u32' | 'i32' | null {
  return name === 'f32' || name === 'u32' || name === 'i32' ? name : null;
}

function uniformLayout(variable: string, type: unknown): UniformLayout {
  const struct = type as { size: number; members?: { name: string; offset: number; type: { name: string; format?: { name: string } | null } }[] };
  if (!struct.members) throw new BayesError('SHADER_COMPILE', `shader registry: uniform '${variable}' must be a struct`);
  const fields = struct.members.map((m) => {
    let scalar = scalarOf(m.type.name);
    let components = 1;
    const vec = /^vec([234])/.exec(m.type.name);
    if (!scalar && vec) {
      components = Number(vec[1]);
      const suffix = m.type.name.slice(4); // vec4f, vec4u, vec4i
      scalar = scalarOf(m.type.format?.name ?? '') ?? (suffix === 'f' ? 'f32' : suffix === 'u' ? 'u32' : suffix === 'i' ? 'i32' : null);
    }
    if (!scalar) throw new BayesError('SHADER_COMPILE', `shader registry: uniform member '${variable}.${m.name}' has type ${m.type.name}; only f32/u32/i32 scalars and vectors are supported`);
    return { name: m.name, offset: m.offset, components, scalar };
  });
  return { variable, size: Math.ceil(struct.size / 16) * 16, fields };
}

export class ShaderRegistry {
  private readonly files: Record<string, string>;
  private readonly modules = new Map<string, ShaderModuleInfo>();

  constructor(files: Record<string, string>) {
    this.files = files;
  }

  has(file: string): boolean {
    return file in this.files;
  }

  get(file: string): ShaderModuleInfo {
    let info = this.modules.get(file);
    if (!info) {
      info = this.reflect(file);
      this.modules.set(file, info);
    }
    return info;
  }

  private reflect(file: string): ShaderModuleInfo {
    const spliced = splice(this.files, file, new Set([file]));
    const origin = (line: number) => {
      const o = spliced.lines[line - 1];
      return o ? `${o.file}:${o.line}` : `${file}:?`;
    };
    let reflect: WgslReflect;
    try {
      reflect = new WgslReflect(spliced.code);
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      const lineMatch = /line[: ]+(\d+)/i.exec(msg);
      const where = lineMatch ? origin(Number(lineMatch[1])) : file;
      throw new BayesError('SHADER_COMPILE', `WGSL parse error in ${where}: ${msg}`);
    }
    const entries = new Map<string, EntryInfo>();
    for (const fn of reflect.entry.compute) {
      let uniform: UniformLayout | null = null;
      const bindings: BindingInfo[] = [];
      for (const r of fn.resources) {
        if (r.group !== 0) throw new BayesError('SHADER_COMPILE', `${file}: resource '${r.name}' uses group ${r.group}; bayesgpu shaders use group 0 only`);
        if (r.resourceType === ResourceType.Uniform) {
          uniform = uniformLayout(r.name, r.type);
          bindings.push({ name: r.name, binding: r.binding, kind: 'uniform' });
        } else if (r.resourceType === ResourceType.Storage) {
          bindings.push({ name: r.name, binding: r.binding, kind: r.access === 'read' ? 'read-only-storage' : 'storage' });
        } else {
          throw new BayesError('SHADER_COMPILE', `${file}: resource '${r.name}' is not a buffer; bayesgpu kernels bind buffers only`);
        }
      }
      bindings.sort((a, b) => a.binding - b.binding);
      entries.set(fn.name, { name: fn.name, bindings, uniform });
    }
    return { file, code: spliced.code, origin, entries, overrides: reflect.overrides.map((o) => o.name) };
  }
}

/**
 * Writes `values` into a new buffer laid out as `layout` says. Members that are not given are 0
 * (a wrapper names only what its entry reads, as webgpu-utils' structured views allow); a name
 * that is not a member is an error, and so is a value with the wrong number of components.
 */
export function packUniforms(layout: UniformLayout, values: Readonly<Record<string, number | readonly number[]>>, where: string): ArrayBuffer {
  const buffer = new ArrayBuffer(layout.size);
  const f32 = new Float32Array(buffer);
  const u32 = new Uint32Array(buffer);
  const i32 = new Int32Array(buffer);
  const known = new Set(layout.fields.map((f) => f.name));
  for (const key of Object.keys(values)) {
    if (!known.has(key)) throw new BayesError('INVALID_ARGUMENT', `${where}: uniform value '${key}' is not a member of ${layout.variable} (members: ${[...known].join(', ')})`);
  }
  for (const field of layout.fields) {
    const v = values[field.name];
    if (v === undefined) continue; // the buffer starts zeroed
    const arr = typeof v === 'number' ? [v] : v;
    if (arr.length !== field.components) throw new BayesError('INVALID_ARGUMENT', `${where}: uniform member '${field.name}' expected ${field.components} values, got ${arr.length}`);
    const view = field.scalar === 'f32' ? f32 : field.scalar === 'u32' ? u32 : i32;
    for (let i = 0; i < arr.length; i++) view[field.offset / 4 + i] = arr[i];
  }
  return buffer;
}
