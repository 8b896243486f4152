// Prints the adapter once per test run, as every run must.
import { createContext } from '../src/node.js';

export default async function setup(): Promise<void> {
  const ctx = await createContext();
  console.log(`bayesgpu tests on adapter: ${ctx.adapterName}`);
  ctx.destroy();
}
