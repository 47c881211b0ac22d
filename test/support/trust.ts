import {
  describeFile,
  generateSigningKey,
  type KeySet,
  MANIFEST_SCHEMA_VERSION,
  type Manifest,
  type ManifestEnvelope,
  publicEntry,
  type Release,
  releaseRef,
  type SignedKeySet,
  type SignedRelease,
  type SigningKeyPair,
  signKeySet,
  signManifest,
  signRelease,
  type TrustedRoot,
} from '@edgeship/protocol';

/** A complete trust setup for tests: root, online and publisher keys and a signed key set. */
export interface TestTrust {
  root: SigningKeyPair;
  online: SigningKeyPair;
  publisher: SigningKeyPair;
  keySet: SignedKeySet;
  trustedRoot: TrustedRoot;
}

export const HOUR = 3_600_000;

export async function createTestTrust(overrides: Partial<KeySet> = {}): Promise<TestTrust> {
  const [root, online, publisher] = await Promise.all([
    generateSigningKey(),
    generateSigningKey(),
    generateSigningKey(),
  ]);
  const keySet = await signKeySet(
    {
      type: 'edgeship/keyset',
      version: 1,
      issuedAt: new Date(Date.now() - HOUR).toISOString(),
      expiresAt: new Date(Date.now() + 365 * 24 * HOUR).toISOString(),
      threshold: { root: 1, manifest: 1, release: 1 },
      onlineKeys: [publicEntry(online)],
      publisherKeys: [publicEntry(publisher)],
      ...overrides,
    },
    [root],
  );
  return { root, online, publisher, keySet, trustedRoot: { keys: [publicEntry(root)], threshold: 1 } };
}

/** A minimal valid release over `files` (path → bytes); `fields` override any part of it. */
export async function testRelease(
  files: Record<string, Uint8Array>,
  fields: Partial<Release> = {},
): Promise<Release> {
  return {
    type: 'edgeship/release',
    model: 'demo',
    version: '1.0.0',
    format: 'onnx',
    files: await Promise.all(Object.entries(files).map(([path, bytes]) => describeFile(path, bytes))),
    quantization: { method: 'none' },
    inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 4], range: { min: -1, max: 1 } }],
    outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 1] }],
    preprocessing: [],
    postprocessing: [],
    monitoring: { features: [] },
    minRuntimeVersion: '0.1.0',
    createdAt: new Date().toISOString(),
    ...fields,
  };
}

export async function makeTestRelease(
  trust: TestTrust,
  fields: Partial<Release> & { bytes?: Uint8Array } = {},
): Promise<SignedRelease> {
  const { bytes = new Uint8Array([1, 2, 3, 4]), ...rest } = fields;
  return signRelease(await testRelease({ 'model.onnx': bytes }, rest), [trust.publisher]);
}

/** demo-app/stable's manifest version 1, valid for a day: `demo` 1.0.0 is `release`, in production. */
export async function testManifest(
  release: SignedRelease,
  fields: Partial<Manifest> = {},
): Promise<Manifest> {
  return {
    type: 'edgeship/manifest',
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    app: 'demo-app',
    channel: 'stable',
    version: 1,
    issuedAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 24 * HOUR).toISOString(),
    models: [{ name: 'demo', production: '1.0.0', rollout: null, releases: [await releaseRef(release)] }],
    ...fields,
  };
}

export async function makeTestManifest(
  trust: TestTrust,
  fields: Partial<Manifest> = {},
  signers: SigningKeyPair[] = [trust.online],
): Promise<ManifestEnvelope> {
  const manifest = await testManifest(await makeTestRelease(trust), fields);
  return signManifest(manifest, signers, trust.keySet);
}
