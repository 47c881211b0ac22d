import { afterEach, describe, expect, it } from 'vitest';
import { verifyBatchSignature } from './signature.ts';
import { SignatureVerifier } from './signature-pool.ts';
import { signatureCases } from './testing.ts';

const open: SignatureVerifier[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((v) => v.close()));
});

// With the small-order key that one signature fits for every body (signature.test.ts): refused by both.
const cases = async () => [
  ...(await signatureCases()).cases,
  [`AQ${'A'.repeat(41)}`, new TextEncoder().encode('{}'), `AQ${'A'.repeat(84)}`] as [
    string,
    Uint8Array,
    string,
  ],
];

describe('signatures checked on a worker thread', () => {
  it('decides every case as the event-loop check does, many in one turn', async () => {
    const verifier = new SignatureVerifier();
    open.push(verifier);
    expect(await verifier.started()).toBe(true);
    expect(verifier.threaded).toBe(true);
    const list = await cases();
    // 40 rounds of the cases in one turn: one message, answers matched to the right requests.
    const many = Array.from({ length: 40 }, () => list).flat();
    // Bodies as views into a larger buffer, as a socket's Buffers can be.
    const pooled = many.map(([d, body, s]) => {
      const big = new Uint8Array(body.byteLength + 64).fill(7);
      big.set(body, 32);
      return [d, big.subarray(32, 32 + body.byteLength), s] as const;
    });
    const answers = await Promise.all(pooled.map(([d, body, s]) => verifier.verify(d, body, s)));
    expect(answers).toEqual(many.map(([d, body, s]) => verifyBatchSignature(d, body, s)));
    expect(answers.filter(Boolean)).toHaveLength(40);
    expect(answers.at(-1)).toBe(false);
  });

  it('checks on the event loop before the worker is up and after it is gone', async () => {
    const verifier = new SignatureVerifier();
    open.push(verifier);
    const list = await cases();
    // The first call starts the worker and is answered here, at once.
    const first = await Promise.all(list.map(([d, b, s]) => verifier.verify(d, b, s)));
    expect(first).toEqual(list.map(([d, b, s]) => verifyBatchSignature(d, b, s)));
    expect(await verifier.started()).toBe(true);
    const pending = list.map(([d, b, s]) => verifier.verify(d, b, s));
    await verifier.close(); // queued work falls back, nothing is left unanswered or taken unchecked
    expect(verifier.threaded).toBe(false);
    expect(await Promise.all(pending)).toEqual(first);
    expect(await Promise.all(list.map(([d, b, s]) => verifier.verify(d, b, s)))).toEqual(first);
  });
});
