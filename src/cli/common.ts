/** What the commands share: how a command runs, and the helpers that name an option in a failure. */
import type { Context } from '../gpu/context.js';
import { BayesError } from '../errors.js';
import type { FloatDataset } from '../train/fit.js';
import { loadDataset } from './datasets.js';
import type { Interrupts } from './interrupt.js';
import { usageError } from './options.js';

/** What main gives a command. */
export interface CommandEnv {
  /** The GPU context, created on the first call: a command checks its arguments and files first. */
  context(): Promise<Context>;
  /** SIGINT/SIGTERM handling, when the command runs as the bayesgpu binary (or a test stands in). */
  interrupts?: Interrupts;
}

export function fail(message: string): never {
  throw usageError(message);
}

/**
 * Runs `load` on the file or folder an option names; a BayesError it throws is prefixed with the
 * option, what the option expects and the path given, keeping its code and its own explanation.
 */
export async function forOption<T>(option: string, expected: string, given: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    if (e instanceof BayesError) throw new BayesError(e.code, `option '--${option}' expected ${expected}, got ${JSON.stringify(given)}: ${e.message}`);
    throw e;
  }
}

/** Loads a data set split, naming --data-dir (or --dataset) when it fails. */
export function loadDatasetFor(dataset: string, split: 'train' | 'test', o: { dataDir?: string; limit?: number; imageSize?: number }): Promise<FloatDataset> {
  return o.dataDir !== undefined
    ? forOption('data-dir', `a folder with the ${dataset} '${split}' files`, o.dataDir, () => loadDataset(dataset, split, o))
    : forOption('dataset', 'an installed data set (or pass --data-dir)', dataset, () => loadDataset(dataset, split, o));
}
