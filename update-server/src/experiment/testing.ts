// Test helpers for experiments: one install's report of an outcome over real HTTP.
import { expect } from 'vitest';
import { makeBatch, makeRecord, postBatch } from '../telemetry/testing.ts';

export const MODEL = 'rank';
export const OUTCOMES_PER_INSTALL = 10;

export interface OutcomeReport {
  device: string;
  version: string;
  /** Each of the install's OUTCOMES_PER_INSTALL outcomes is `accepted` with this chance. */
  rate: number;
  random: () => number;
  /** The address it posts from (the evidence caps installs per /24). */
  from: string;
  /** Inferences that failed, beside six that ran in 4 to 6 ms. */
  errors?: number;
}

/** Posts one install's batch: six inferences and its `accepted` outcomes; the server takes it. */
export async function reportOutcome(serverUrl: string, r: OutcomeReport): Promise<void> {
  let sum = 0;
  for (let i = 0; i < OUTCOMES_PER_INSTALL; i++) if (r.random() < r.rate) sum += 1;
  const record = {
    ...makeRecord({
      model: MODEL,
      version: r.version,
      latenciesMs: [4, 5, 6, 5, 4, 6],
      ...(r.errors && { errors: { E_HEALTH_CHECK: r.errors } }),
    }),
    quality: { outcomes: [{ name: 'accepted', count: OUTCOMES_PER_INSTALL, sum, sumSq: sum }] },
  };
  const answer = await postBatch(serverUrl, makeBatch(r.device, [record]), { from: r.from });
  expect(answer.status).toBe(202);
}
