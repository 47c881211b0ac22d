import { describe, expect, it } from 'vitest';
import { ActivationGuard, type Outcome, type Regression } from './activation-guard.ts';

function guardOf(inferences = 20, maxIncrease = 0.05) {
  const regressions: Regression[] = [];
  const guard = new ActivationGuard({ inferences, maxIncrease }, (r) => regressions.push(r));
  const feed = (release: string, outcomes: Outcome[]) => {
    for (const o of outcomes) guard.observe('m', release, o);
  };
  return { guard, regressions, feed };
}

const times = (n: number, o: Outcome): Outcome[] => Array.from({ length: n }, () => o);

describe('the guard after activation', () => {
  it('sends the device back when the new release goes non-finite far more often than the old one', () => {
    const { guard, regressions, feed } = guardOf();
    feed('m@1', times(100, 'ok'));
    guard.watch('m', 'm@2', 'm@1');
    feed('m@2', [...times(5, 'ok'), 'non-finite']);
    expect(regressions).toEqual([]); // 1 bad call: within 5% of 20
    feed('m@2', ['non-finite']);
    expect(regressions).toEqual([expect.objectContaining({ model: 'm', release: 'm@2', replaced: 'm@1' })]);
    expect(guard.watching('m')).toBeNull();
    feed('m@2', times(5, 'failed'));
    expect(regressions).toHaveLength(1); // decided once
  });

  it('judges against the replaced release: a baseline that already failed sometimes allows as much', () => {
    const { guard, regressions, feed } = guardOf(20, 0.05);
    feed('m@1', [...times(80, 'ok'), ...times(20, 'failed')]); // 20% bad before
    guard.watch('m', 'm@2', 'm@1');
    feed('m@2', [...times(15, 'ok'), ...times(5, 'failed')]); // 25%: at the allowance, not over
    expect(regressions).toEqual([]);
    expect(guard.watching('m')).toBeNull(); // the window is over: the release passed
  });

  it('counts failed calls like non-finite ones, and stops watching after the window', () => {
    const { guard, regressions, feed } = guardOf(10, 0);
    guard.watch('m', 'm@2', 'm@1'); // never seen before: baseline 0
    feed('m@2', ['ok', 'failed']);
    expect(regressions).toHaveLength(1);
    guard.watch('m', 'm@3', 'm@1');
    feed('m@3', times(10, 'ok'));
    feed('m@3', ['failed']);
    expect(regressions).toHaveLength(1);
  });

  it('watches nothing without a release to go back to', () => {
    const { guard, regressions, feed } = guardOf(10, 0);
    guard.watch('m', 'm@1', null);
    feed('m@1', times(10, 'failed'));
    expect(regressions).toEqual([]);
  });
});
