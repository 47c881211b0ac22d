import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RUNTIME_VERSION } from './version.ts';

describe('RUNTIME_VERSION', () => {
  it('is the version the package is published as', () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(RUNTIME_VERSION).toBe(manifest.version);
  });
});
