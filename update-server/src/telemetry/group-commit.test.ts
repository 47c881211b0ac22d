import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.ts';

describe('group commit', () => {
  it('puts batches that arrive in the same event-loop turn into one transaction', async () => {
    const groups: number[][] = [];
    const writer = new GroupCommit<number, string>(
      async (items) => {
        groups.push(items);
        return items.map((i) => `ok ${i}`);
      },
      100,
      1000,
    );
    // As requests do: each one reaches submit from its own I/O callback.
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map(
        (i) => new Promise<string>((resolve) => setImmediate(() => resolve(writer.submit(i)!))),
      ),
    );
    expect(results).toEqual(['ok 1', 'ok 2', 'ok 3', 'ok 4', 'ok 5']);
    expect(groups).toEqual([[1, 2, 3, 4, 5]]);
  });

  it('caps a group at maxGroup, refuses past maxQueued, and fails only the failed group', async () => {
    const groups: number[][] = [];
    const writer = new GroupCommit<number, number>(
      async (items) => {
        groups.push(items);
        if (items.includes(3)) throw new Error('disk full');
        return items;
      },
      2,
      4,
    );
    const pending = [1, 2, 3, 4].map((i) => writer.submit(i)!);
    expect(writer.submit(5)).toBeNull();
    const settled = await Promise.allSettled(pending);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect(groups).toEqual([
      [1, 2],
      [3, 4],
    ]);
    await writer.drain();
    expect(writer.queued).toBe(0);
  });

  it('waits up to lingerMs for the items on their way, and not at all when none is', async () => {
    const groups: number[][] = [];
    const writer = new GroupCommit<number, number>(
      async (items) => {
        groups.push(items);
        return items;
      },
      100,
      1000,
      200,
    );
    const later = writer.expect();
    const first = writer.submit(1)!;
    await new Promise((resolve) => setTimeout(resolve, 20));
    later();
    await Promise.all([first, writer.submit(2)!]);
    expect(groups).toEqual([[1, 2]]);

    // One on its way that never comes: the group goes at the deadline.
    const never = writer.expect();
    const t0 = performance.now();
    await writer.submit(3);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
    never();
    // Nothing on its way: at once.
    const t1 = performance.now();
    await writer.submit(4);
    expect(performance.now() - t1).toBeLessThan(150);
    expect(groups).toEqual([[1, 2], [3], [4]]);
  });
});
