import { describe, expect, it } from 'vitest';
import { readCapped } from './read-capped.ts';

class TooLarge extends Error {}
const tooLarge = () => new TooLarge('too large');

const parts = (...sizes: number[]) => sizes.map((n, i) => new Uint8Array(n).fill(i + 1));

async function* iterable(list: Uint8Array[]) {
  yield* list;
}

/** A stream of `list`, then endless 1 KiB parts if `endless`; counts the parts pulled. */
function stream(list: Uint8Array[], endless = false) {
  const state = { pulled: 0, cancelled: false };
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const next = list[state.pulled] ?? (endless ? new Uint8Array(1024) : null);
        state.pulled += 1;
        if (next) controller.enqueue(next);
        else controller.close();
      },
      cancel() {
        state.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { body, state };
}

describe('readCapped', () => {
  it('joins the parts of a stream or an async iterable, up to exactly the cap', async () => {
    const list = parts(3, 0, 5, 2);
    const joined = new Uint8Array([1, 1, 1, 3, 3, 3, 3, 3, 4, 4]);
    expect(await readCapped(iterable(list), 10, tooLarge)).toEqual(joined);
    expect(await readCapped(stream(list).body, 10, tooLarge)).toEqual(joined);
    expect(await readCapped(iterable([]), 0, tooLarge)).toEqual(new Uint8Array(0));
    expect(await readCapped(stream([]).body, 0, tooLarge)).toEqual(new Uint8Array(0));
  });

  it("throws the caller's error at the part that passes the cap, and reads no further", async () => {
    await expect(readCapped(iterable(parts(4, 4, 4)), 11, tooLarge)).rejects.toBeInstanceOf(TooLarge);
    const { body, state } = stream([], true);
    await expect(readCapped(body, 10 * 1024, tooLarge)).rejects.toBeInstanceOf(TooLarge);
    expect(state.pulled).toBe(11);
    expect(state.cancelled).toBe(true);
  });

  it("ends a pending read when the signal aborts, with the signal's reason", async () => {
    const cancelled: unknown[] = [];
    const silent = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(3)); // then nothing, ever
      },
      cancel: (reason) => void cancelled.push(reason),
    });
    const slow = new AbortController();
    const reason = new Error('too slow');
    const reading = readCapped(silent, 100, tooLarge, slow.signal);
    setTimeout(() => slow.abort(reason), 20);
    await expect(reading).rejects.toBe(reason);
    expect(cancelled).toHaveLength(1);
  });

  it("passes the source's own errors through", async () => {
    const broken = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(1));
        controller.error(new TypeError('connection reset'));
      },
    });
    await expect(readCapped(broken, 100, tooLarge)).rejects.toThrow('connection reset');
    async function* failing() {
      yield new Uint8Array(1);
      throw new TypeError('socket hang up');
    }
    await expect(readCapped(failing(), 100, tooLarge)).rejects.toThrow('socket hang up');
  });
});
