import {
  type TrustedManifest,
  type TrustedRoot,
  type VerifiedManifest,
  verifyManifest,
} from '@edgeship/protocol';
import type { ModelStore } from '../store/model-store.ts';

export interface TrustState {
  keySetVersion: number;
  /** The newest accepted manifest: version, digest and the online keys that signed it. */
  manifest?: TrustedManifest | null;
  /** Older state (a bare version, no signers): kept as a floor until a manifest replaces it. */
  manifestVersion?: number;
}

/**
 * The only place that grants trust (as in tuf-js's store.ts). Raw manifest bytes in, a verified
 * manifest out; what was accepted is persisted so a replayed older manifest is refused even after
 * a reload (rollback), a key set never goes backwards, and a version pushed sky-high by a stolen
 * online key is forgotten once a new key set rotates that key out (fast-forward recovery).
 */
export class TrustStore {
  constructor(
    private readonly store: ModelStore,
    private readonly root: TrustedRoot,
    private readonly target: { app: string; channel: string },
  ) {}

  async acceptManifest(bytes: Uint8Array | string, now: Date): Promise<VerifiedManifest> {
    const state = (await this.store.getMeta('trust')) ?? { keySetVersion: 0 };
    const verified = await verifyManifest(bytes, {
      root: this.root,
      app: this.target.app,
      channel: this.target.channel,
      now,
      trusted: state.manifest ?? null,
      ...(state.manifest ? {} : { minVersion: state.manifestVersion ?? 0 }),
      minKeySetVersion: state.keySetVersion,
    });
    // Commit only after every check passed (CVE-2025-2888 in tough cached before checking). The
    // manifest record is replaced, not maxed: after a rotation a lower version is the right one.
    await this.store.setMeta('trust', {
      keySetVersion: Math.max(state.keySetVersion, verified.keySet.version),
      manifest: verified.trusted,
    } satisfies TrustState);
    return verified;
  }

  async newestManifestVersion(): Promise<number> {
    const state = await this.store.getMeta('trust');
    return state?.manifest?.version ?? state?.manifestVersion ?? 0;
  }
}
