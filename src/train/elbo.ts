/**
 * The ELBO loss as PyTorch-BayesianCNN writes it (metrics.ELBO):
 *   loss = mean NLL * trainSize + beta * KL
 * i.e. the negative ELBO of the whole training set estimated from one batch,
 * with the KL weighted by beta (Blundell et al. 2015, sec. 3.4).
 */
import { argumentError, checkInt } from '../errors.js';

export type BetaSchedule = number | 'blundell' | 'soenderby' | 'standard' | 'none';

/**
 * beta for batch `batchIndex` (0-based) of `batches`, in epoch `epoch` (0-based) of `epochs`:
 * - a number: that constant;
 * - 'blundell': 2^(M - i) / (2^M - 1) with i = batchIndex + 1 (Blundell et al. 2015, eq. 9): the weights sum to 1 over an epoch;
 * - 'soenderby': min(epoch / floor(epochs / 4), 1), a linear warm-up over the first quarter (Sønderby et al. 2016);
 * - 'standard': 1 / M;
 * - 'none': 0.
 */
export function beta(schedule: BetaSchedule, batchIndex: number, batches: number, epoch = 0, epochs = 1): number {
  if (typeof schedule === 'number') {
    if (!Number.isFinite(schedule) || schedule < 0) throw argumentError('beta', 'beta', 'a number >= 0 or a schedule name', schedule);
    return schedule;
  }
  checkInt('beta', 'batches', batches, 1);
  checkInt('beta', 'batchIndex', batchIndex, 0);
  switch (schedule) {
    case 'blundell': {
      const i = batchIndex + 1;
      // 2^(M-i) / (2^M - 1) = 2^-i / (1 - 2^-M): the second form never overflows.
      return Math.pow(2, -i) / (1 - Math.pow(2, -batches));
    }
    case 'soenderby': {
      const quarter = Math.floor(epochs / 4);
      return quarter === 0 ? 1 : Math.min(epoch / quarter, 1);
    }
    case 'standard':
      return 1 / batches;
    case 'none':
      return 0;
    default:
      throw argumentError('beta', 'beta', "a number >= 0 or one of 'blundell' | 'soenderby' | 'standard' | 'none'", schedule);
  }
}

/** The seed's loss value from its parts. */
export function elbo(meanNll: number, kl: number, trainSize: number, b: number): number {
  return meanNll * trainSize + b * kl;
}
