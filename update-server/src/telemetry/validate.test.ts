import type { MonitoringSpec } from '@edgeship/protocol';
import { expect, it } from 'vitest';
import type { RegistryStore } from '../storage/types.ts';
import { ReleaseCatalog } from './validate.ts';

it('keeps a published release spec once read, answers from it without the registry, and never keeps an unknown one', async () => {
  const spec = { features: [] } as unknown as MonitoringSpec;
  let reads = 0;
  let published = false;
  const registry = {
    getRelease: async () => {
      reads++;
      return published ? { signed: { signed: { monitoring: spec } } } : null;
    },
  } as unknown as RegistryStore;
  const catalog = new ReleaseCatalog(registry);
  expect(await catalog.monitoring('m', '1.0.0')).toBeNull();
  expect(catalog.cached('m', '1.0.0')).toBeUndefined();
  published = true;
  expect(await catalog.monitoring('m', '1.0.0')).toBe(spec);
  expect(catalog.cached('m', '1.0.0')).toBe(spec);
  expect(await catalog.monitoring('m', '1.0.0')).toBe(spec);
  expect(reads).toBe(2);
});
