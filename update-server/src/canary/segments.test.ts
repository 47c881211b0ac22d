import type { SegmentValues } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { inScope, scopesOf, splitBy } from './segments.ts';

const seg = (browser: string, backend = 'wasm'): { segment: SegmentValues } => ({
  segment: {
    browser,
    browserVersion: `${browser}-1`,
    os: 'windows',
    backend,
    deviceClass: 'mid',
    runtime: '0.4',
  },
});
const many = (n: number, browser: string, backend?: string) =>
  Array.from({ length: n }, () => seg(browser, backend));

describe('segments', () => {
  it('merges values below the minimum (in either arm) into "other", and judges "other" only when it is large enough', () => {
    const canary = [...many(40, 'chrome'), ...many(12, 'safari'), ...many(5, 'firefox'), ...many(20, 'edge')];
    const control = [
      ...many(200, 'chrome'),
      ...many(80, 'safari'),
      ...many(9, 'firefox'),
      ...many(90, 'edge'),
    ];
    const { scopes, merge } = scopesOf([canary, control], 30);
    expect(merge('browser', 'chrome')).toBe('chrome');
    expect(merge('browser', 'safari')).toBe('other'); // 12 canary installs: too few
    expect(merge('browser', 'firefox')).toBe('other');
    const names = scopes.map((s) => s.name);
    expect(names).toContain('all');
    expect(names).toContain('browser=chrome');
    // 12 + 5 + 20 = 37 canary installs in 'other', 179 control: judged on its own.
    expect(names).toContain('browser=other');
    expect(names).not.toContain('browser=safari');
    // One OS, one device class: nothing to add to 'all'.
    expect(names.some((n) => n.startsWith('os='))).toBe(false);
    const split = splitBy(canary, 'browser', merge);
    expect(split.get('other')).toHaveLength(37);
    expect(
      canary.filter((r) => inScope(r, scopes.find((s) => s.name === 'browser=other')!, merge)),
    ).toHaveLength(37);
  });

  it('does not judge an "other" that stays below the minimum', () => {
    const canary = [...many(60, 'chrome'), ...many(10, 'safari')];
    const control = [...many(300, 'chrome'), ...many(50, 'safari')];
    const { scopes } = scopesOf([canary, control], 30);
    expect(scopes.map((s) => s.name).filter((n) => n.startsWith('browser='))).toEqual(['browser=chrome']);
  });

  it('counts installs with no segment as "unknown"', () => {
    const canary = [...many(40, 'chrome'), ...Array.from({ length: 40 }, () => ({}))];
    const control = [...many(40, 'chrome'), ...Array.from({ length: 40 }, () => ({}))];
    const { scopes } = scopesOf([canary, control], 30);
    expect(scopes.map((s) => s.name)).toContain('browser=unknown');
  });
});
