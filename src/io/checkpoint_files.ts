/** Node only: checkpoints as files (written atomically: temporary file, fsync, rename). */
import type { Context } from '../gpu/context.js';
import type { Sequential } from '../nn/sequential.js';
import { type LoadOptions, type LoadedCheckpoint, type SaveOptions, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { readFile, saveFile } from './node_files.js';

export async function saveCheckpointFile(model: Sequential, path: string, options: SaveOptions = {}): Promise<void> {
  await saveFile(path, await saveCheckpoint(model, options));
}

export async function loadCheckpointFile(ctx: Context, path: string, options: LoadOptions = {}): Promise<LoadedCheckpoint> {
  return loadCheckpoint(ctx, await readFile(path), options);
}
