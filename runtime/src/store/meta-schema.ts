import type { InstallKey } from '@edgeship/protocol';
import type { Backend, EngineConfig } from '../engines/engine.ts';
import type { TrustState } from '../update/trust-store.ts';
import type { ReleaseFailures } from './release-failure.ts';

/**
 * Every value the model store keeps in its `meta` object store, by key, as idb's DBSchema types
 * its stores: `store.getMeta('trust')` is a TrustState, and a key on no list does not compile.
 */
export interface MetaSchema {
  /** The install's telemetry key pair (telemetry/install-key.ts). */
  'install-key': InstallKey;
  /** What the trust store accepted last (update/trust-store.ts). */
  trust: TrustState;
  /** The newest verified manifest's bytes, and the ETag they came with. */
  manifest: string;
  'manifest-etag': string;
  /** Release ids the updater must not stage, derived from `release-failures` (failure-book.ts). */
  'failed-releases': string[];
  'release-failures': ReleaseFailures;
  /** The backend measured for a release on this device (worker/open-engine.ts), by engineKey. */
  [engine: `engine:${string}`]: EngineConfig;
}

export type MetaKey = keyof MetaSchema & string;

/**
 * Where the config measured for a release is kept: one per `backend` option, since an app that
 * forces a backend races only that backend's candidates (its thread counts) and the winner of that
 * race says nothing about the others.
 */
export const engineKey = (id: string, preferred: Backend | undefined) =>
  preferred ? (`engine:${id}:${preferred}` as const) : (`engine:${id}` as const);
