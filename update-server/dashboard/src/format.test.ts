import { describe, expect, it } from 'vitest';
import { bytes, parsePercent, percentFromBps } from './format.ts';

describe('dashboard formatting', () => {
  it('reads a typed percentage as basis points and refuses anything else', () => {
    expect(parsePercent('25')).toBe(2500);
    expect(parsePercent(' 12.5 % ')).toBe(1250);
    expect(parsePercent('0.01')).toBe(1);
    expect(parsePercent('100')).toBe(10_000);
    for (const bad of ['', 'abc', '-1', '100.01', '101', '1e2', '12.345'])
      expect(parsePercent(bad)).toBeNull();
  });

  it('writes basis points as a percentage and sizes in binary units', () => {
    expect(percentFromBps(2500)).toBe('25%');
    expect(percentFromBps(1)).toBe('0.01%');
    expect(percentFromBps(0)).toBe('0%');
    expect(bytes(512)).toBe('512 B');
    expect(bytes(4096)).toBe('4.0 KiB');
    expect(bytes(3 * 1024 * 1024)).toBe('3.0 MiB');
  });
});
