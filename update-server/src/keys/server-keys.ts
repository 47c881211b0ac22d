import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  coded,
  generateSigningKey,
  type KeySet,
  publicEntry,
  type SignedKeySet,
  SignedKeySetSchema,
  type SigningKeyPair,
  signKeySet,
  type TrustedRoot,
  verifyKeySet,
} from '@edgeship/protocol';
import { z } from 'zod';

/**
 * The keys the server works with. Same file layout as `edgeship keygen --dir`: the online key
 * signs manifests; the key set (signed offline by the root key) certifies it; root.pub.json is
 * what apps pin. Publisher and root private keys never need to be on the server.
 */
export interface ServerKeys {
  online: SigningKeyPair;
  keySet: SignedKeySet;
  trustedRoot: TrustedRoot;
  /** Set when this start created a development trust chain (root and publisher keys included). */
  created?: { root: SigningKeyPair; publisher: SigningKeyPair };
}

const SigningKeyPairSchema = z.strictObject({
  keyId: z.string(),
  publicKey: z.string(),
  privateKey: z.string(),
});
const TrustedRootSchema = z.strictObject({
  keys: z.array(z.strictObject({ keyId: z.string(), publicKey: z.string() })).min(1),
  threshold: z.int().min(1),
});

const YEAR = 365 * 86_400_000;

/** Production start-up with an empty key directory (dev mode creates the keys instead). */
export class KeysMissingError extends coded('E_NO_KEYS') {}

/**
 * Loads the keys from `dir`. When there are none and `createIfMissing` is set (the embedded
 * development default), creates a full chain: root, online and publisher keys, and a key set.
 */
export async function loadServerKeys(dir: string, opts: { createIfMissing: boolean }): Promise<ServerKeys> {
  const existing = await readKeys(dir);
  if (existing) return existing;
  if (!opts.createIfMissing) {
    throw new KeysMissingError(
      `no keys in ${dir}: run \`edgeship keygen --dir ${dir}\` (keep root.key.json offline), or start in dev mode`,
    );
  }
  return createDevelopmentKeys(dir);
}

async function readKeys(dir: string): Promise<ServerKeys | null> {
  const online = await readJson(join(dir, 'online.key.json'));
  if (online === null) return null;
  const keySet = SignedKeySetSchema.parse(await readJson(join(dir, 'keyset.json')));
  const trustedRoot = TrustedRootSchema.parse(await readJson(join(dir, 'root.pub.json')));
  const keys: ServerKeys = { online: SigningKeyPairSchema.parse(online), keySet, trustedRoot };
  await checkChain(keys);
  return keys;
}

/** Refuses to start with a key set that devices would reject: better a loud start than a silent fleet. */
async function checkChain(keys: ServerKeys): Promise<void> {
  const keySet = await verifyKeySet(keys.keySet, { root: keys.trustedRoot, now: new Date() });
  if (!keySet.onlineKeys.some((k) => k.keyId === keys.online.keyId)) {
    throw new Error(`the key set does not certify the online key ${keys.online.keyId}`);
  }
}

async function createDevelopmentKeys(dir: string): Promise<ServerKeys> {
  const [root, online, publisher] = await Promise.all([
    generateSigningKey(),
    generateSigningKey(),
    generateSigningKey(),
  ]);
  const now = Date.now();
  const keySetBody: KeySet = {
    type: 'edgeship/keyset',
    version: 1,
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + YEAR).toISOString(),
    threshold: { root: 1, manifest: 1, release: 1 },
    onlineKeys: [publicEntry(online)],
    publisherKeys: [publicEntry(publisher)],
  };
  const keySet = await signKeySet(keySetBody, [root]);
  const trustedRoot: TrustedRoot = { keys: [publicEntry(root)], threshold: 1 };
  await mkdir(dir, { recursive: true });
  // The online key last: its presence is what marks the directory as complete.
  await writeSecret(join(dir, 'root.key.json'), root);
  await writeSecret(join(dir, 'publisher.key.json'), publisher);
  await writeFile(join(dir, 'root.pub.json'), `${JSON.stringify(trustedRoot, null, 2)}\n`);
  await writeFile(join(dir, 'keyset.json'), `${JSON.stringify(keySet, null, 2)}\n`);
  await writeSecret(join(dir, 'online.key.json'), online);
  return { online, keySet, trustedRoot, created: { root, publisher } };
}

async function writeSecret(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
}

async function readJson(path: string): Promise<unknown | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
}
