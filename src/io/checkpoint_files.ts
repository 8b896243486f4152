/** Node only: models as files (written atomically: temporary file, fsync, rename; see saveFile). */
import type { Context } from '../gpu/context.js';
import type { Sequential } from '../nn/sequential.js';
import { type LoadOptions, type LoadedCheckpoint, type SaveModelOptions, type SaveOptions, loadCheckpoint, loadModel, saveCheckpoint, saveModel } from './checkpoint.js';
import { readFile, saveFile } from './node_files.js';

/** saveModel into a file, atomically: a reader or a crash sees the old file or the whole new one. */
export async function saveModelFile(path: string, model: Sequential, options: SaveModelOptions = {}): Promise<void> {
  await saveFile(path, await saveModel(model, options));
}

/** loadModel from a file (read whole, validated before anything is allocated). */
export async function loadModelFile(ctx: Context, path: string): Promise<Sequential> {
  return loadModel(ctx, await readFile(path));
}

/** @internal The first API (saveCheckpoint to a file), until its callers move to saveModelFile. */
export async function saveCheckpointFile(model: Sequential, path: string, options: SaveOptions = {}): Promise<void> {
  await saveFile(path, await saveCheckpoint(model, options));
}

/** @internal The first API (loadCheckpoint from a file), until its callers move to loadModelFile. */
export async function loadCheckpointFile(ctx: Context, path: string, options: LoadOptions = {}): Promise<LoadedCheckpoint> {
  return loadCheckpoint(ctx, await readFile(path), options);
}
