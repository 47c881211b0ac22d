import { asBufferSource, fromBase64Url, sha256Hex, toBase64Url } from './bytes.ts';
import { canonicalBytes } from './canonical-json.ts';
import { ED25519, verifyEd25519 } from './ed25519.ts';
import { MalformedError, SignatureError, UnknownKeyError } from './errors.ts';

/** A public key as documents carry it: raw 32-byte Ed25519 key, base64url. */
export interface PublicKeyEntry {
  keyId: string;
  publicKey: string;
}

/** A detached signature over `canonicalJson(signed)`. */
export interface Signature {
  keyId: string;
  sig: string;
}

export interface Signed<T> {
  signed: T;
  signatures: Signature[];
}

/** A private key as the CLI and server keep it on disk: PKCS#8, base64url, with its public half. */
export interface SigningKeyPair extends PublicKeyEntry {
  privateKey: string;
}

/** A key's id is the SHA-256 of its raw public key, so an id cannot be pointed at another key. */
export async function keyIdFor(publicKeyRaw: Uint8Array): Promise<string> {
  return sha256Hex(publicKeyRaw);
}

export async function generateSigningKey(): Promise<SigningKeyPair> {
  const pair = (await crypto.subtle.generateKey(ED25519, true, ['sign', 'verify'])) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
  return { keyId: await keyIdFor(raw), publicKey: toBase64Url(raw), privateKey: toBase64Url(pkcs8) };
}

export function publicEntry(key: PublicKeyEntry): PublicKeyEntry {
  return { keyId: key.keyId, publicKey: key.publicKey };
}

export async function signPayload<T>(signed: T, key: SigningKeyPair): Promise<Signature> {
  const privateKey = await crypto.subtle.importKey(
    'pkcs8',
    asBufferSource(fromBase64Url(key.privateKey)),
    ED25519,
    false,
    ['sign'],
  );
  const sig = await crypto.subtle.sign(ED25519, privateKey, asBufferSource(canonicalBytes(signed)));
  return { keyId: key.keyId, sig: toBase64Url(new Uint8Array(sig)) };
}

export async function signEnvelope<T>(signed: T, keys: SigningKeyPair[]): Promise<Signed<T>> {
  return { signed, signatures: await Promise.all(keys.map((k) => signPayload(signed, k))) };
}

/** Checks that an entry's id really is the hash of its key. */
export async function checkKeyId(entry: PublicKeyEntry): Promise<void> {
  const raw = decodeKey(entry.publicKey);
  if ((await keyIdFor(raw)) !== entry.keyId) {
    throw new MalformedError(`key id ${entry.keyId} is not the SHA-256 of its public key`);
  }
}

/**
 * Counts distinct trusted public keys with a valid signature over `signed`, and throws unless
 * they reach `threshold`; returns those public keys. TUF 5.4.2: "each KEY MUST only contribute
 * one SIGNATURE". Counted by public key, not key id, so one key listed under two ids (or signing
 * twice) still counts once. An envelope signed only by unknown keys gets E_UNKNOWN_KEY; one whose
 * trusted signatures do not verify gets E_SIGNATURE.
 */
export async function verifyThreshold(
  envelope: Signed<unknown>,
  trusted: readonly PublicKeyEntry[],
  threshold: number,
  what: string,
): Promise<string[]> {
  const byId = new Map(trusted.map((k) => [k.keyId, k]));
  const message = asBufferSource(canonicalBytes(envelope.signed));
  // Canonical base64url (fromBase64Url refuses any other spelling), so equal strings are equal keys.
  const valid = new Set<string>();
  let sawTrusted = false;
  for (const { keyId, sig } of envelope.signatures) {
    const entry = byId.get(keyId);
    if (!entry || valid.has(entry.publicKey)) continue;
    sawTrusted = true;
    if (await verifyEd25519(entry.publicKey, sig, message)) valid.add(entry.publicKey);
  }
  if (valid.size >= threshold) return [...valid];
  if (!sawTrusted) {
    throw new UnknownKeyError(`${what} is not signed by any trusted key`);
  }
  throw new SignatureError(
    `${what} has ${valid.size} valid signature(s) from distinct keys, needs ${threshold}`,
  );
}

/** How many different public keys a list names (a threshold above it can never be met). */
export function distinctKeys(keys: readonly PublicKeyEntry[]): number {
  return new Set(keys.map((k) => k.publicKey)).size;
}

function decodeKey(publicKey: string): Uint8Array {
  let raw: Uint8Array;
  try {
    raw = fromBase64Url(publicKey);
  } catch (cause) {
    throw new MalformedError('a public key must be canonical base64url', { cause });
  }
  if (raw.length !== 32) throw new MalformedError('an Ed25519 public key is 32 bytes');
  return raw;
}
