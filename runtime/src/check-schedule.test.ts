import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CheckSchedule, type PageSignals } from './check-schedule.ts';

/** A page whose visibility and network the test flips. */
function fakePage() {
  let hidden = false;
  const listeners = new Set<(reason: 'visible' | 'hidden' | 'online') => void>();
  const page: PageSignals = {
    hidden: () => hidden,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  const fire = (reason: 'visible' | 'hidden' | 'online') => {
    if (reason !== 'online') hidden = reason === 'hidden';
    for (const l of listeners) l(reason);
  };
  return { page, fire, listeners };
}

const MINUTE = 60_000;

describe('the page checks for updates on a schedule', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it('checks every interval, each wait jittered within ±20%', async () => {
    const waits: number[] = [];
    let last = 0;
    const check = vi.fn(async () => {
      waits.push(Date.now() - last);
      last = Date.now();
    });
    let r = 0;
    const randoms = [0, 1, 0.5, 0.25];
    const schedule = new CheckSchedule({
      intervalMs: MINUTE,
      check,
      page: fakePage().page,
      random: () => randoms[r++ % randoms.length]!,
    });
    await vi.advanceTimersByTimeAsync(4.5 * MINUTE);
    schedule.stop();
    expect(waits).toEqual([0.8 * MINUTE, 1.2 * MINUTE, MINUTE, 0.9 * MINUTE]);
  });

  it('backs off while checks fail, and returns to the interval after a success', async () => {
    const results = [false, false, false, true, true];
    const at: number[] = [];
    const check = async () => {
      at.push(Date.now());
      if (!results.shift()) throw new Error('server down');
    };
    const schedule = new CheckSchedule({
      intervalMs: MINUTE,
      check,
      page: fakePage().page,
      random: () => 0.5,
    });
    await vi.advanceTimersByTimeAsync(16.5 * MINUTE);
    schedule.stop();
    const gaps = at.map((t, i) => (t - (at[i - 1] ?? 0)) / MINUTE);
    // 1, then doubled per failure in a row (2, 4, 8), then back to 1 after the success.
    expect(gaps).toEqual([1, 2, 4, 8, 1]);
  });

  it('caps the backoff', async () => {
    const check = vi.fn(async () => {
      throw new Error('down');
    });
    const schedule = new CheckSchedule({
      intervalMs: MINUTE,
      maxBackoffMs: 3 * MINUTE,
      check,
      page: fakePage().page,
      random: () => 0.5,
    });
    await vi.advanceTimersByTimeAsync(13 * MINUTE);
    schedule.stop();
    // 1, 2, then 3, 3, 3, ... within 13 minutes: 1, 3, 6, 9, 12.
    expect(check).toHaveBeenCalledTimes(5);
  });

  it('pauses while the page is hidden and checks on return once a check is due', async () => {
    const { page, fire } = fakePage();
    const check = vi.fn(async () => {});
    const schedule = new CheckSchedule({ intervalMs: MINUTE, check, page, random: () => 0.5 });
    fire('hidden');
    await vi.advanceTimersByTimeAsync(10 * MINUTE);
    expect(check).not.toHaveBeenCalled();
    fire('visible');
    await vi.advanceTimersByTimeAsync(0);
    expect(check).toHaveBeenCalledTimes(1);
    // Back before a check was due: it waits out the rest of the interval.
    await vi.advanceTimersByTimeAsync(0.25 * MINUTE);
    fire('hidden');
    fire('visible');
    await vi.advanceTimersByTimeAsync(0);
    expect(check).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(0.75 * MINUTE);
    expect(check).toHaveBeenCalledTimes(2);
    schedule.stop();
  });

  it('checks at once when the network comes back, forgetting the offline backoff', async () => {
    const { page, fire } = fakePage();
    let offline = true;
    const check = vi.fn(async () => {
      if (offline) throw new Error('offline');
    });
    const schedule = new CheckSchedule({ intervalMs: MINUTE, check, page, random: () => 0.5 });
    await vi.advanceTimersByTimeAsync(3 * MINUTE); // fails at 1 and 3: next wait is 4 minutes
    expect(check).toHaveBeenCalledTimes(2);
    offline = false;
    fire('online');
    await vi.advanceTimersByTimeAsync(0);
    expect(check).toHaveBeenCalledTimes(3);
    expect(schedule.nextDelayMs).toBe(MINUTE);
    schedule.stop();
  });

  it('stops: no timer and no listener is left', async () => {
    const { page, listeners } = fakePage();
    const check = vi.fn(async () => {});
    new CheckSchedule({ intervalMs: MINUTE, check, page }).stop();
    await vi.advanceTimersByTimeAsync(10 * MINUTE);
    expect(check).not.toHaveBeenCalled();
    expect(listeners.size).toBe(0);
  });
});
