import { type TrustedRoot, type VerifiedManifest, verifyManifest } from '@edgeship/protocol';
import type { ModelStore } from '../store/model-store.ts';

interface TrustState {
  manifestVersion: number;
  keySetVersion: number;
}

const TRUST_KEY = 'trust';

/**
 * The only place that grants trust (as in tuf-js's store.ts). Raw manifest bytes in, a verified
 * manifest out; the newest accepted versions are persisted so a replayed older manifest is
 * refused even after a reload (rollback attack), and a key set can never go backwards.
 */
export class TrustStore {
  constructor(
    private readonly store: ModelStore,
    private readonly root: TrustedRoot,
    private readonly target: { app: string; channel: string },
  ) {}

  async acceptManifest(bytes: Uint8Array | string, now: Date): Promise<VerifiedManifest> {
    const state = (await this.store.getMeta<TrustState>(TRUST_KEY)) ?? {
      manifestVersion: 0,
      keySetVersion: 0,
    };
    const verified = await verifyManifest(bytes, {
      root: this.root,
      app: this.target.app,
      channel: this.target.channel,
      now,
      minVersion: state.manifestVersion,
      minKeySetVersion: state.keySetVersion,
    });
    // Commit only after every check passed.
    await this.store.setMeta(TRUST_KEY, {
      manifestVersion: Math.max(state.manifestVersion, verified.manifest.version),
      keySetVersion: Math.max(state.keySetVersion, verified.keySet.version),
    } satisfies TrustState);
    return verified;
  }

  async newestManifestVersion(): Promise<number> {
    return (await this.store.getMeta<TrustState>(TRUST_KEY))?.manifestVersion ?? 0;
  }
}
