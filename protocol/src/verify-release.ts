import { sha256Hex, utf8 } from './bytes.ts';
import { canonicalJson } from './canonical-json.ts';
import {
  EdgeshipError,
  HashMismatchError,
  LengthMismatchError,
  PublisherSignatureError,
  WrongTargetError,
} from './errors.ts';
import type { KeySet } from './keyset.ts';
import type { ReleaseRef } from './manifest.ts';
import { parseJson } from './parse.ts';
import { type Release, releaseId, type SignedRelease, SignedReleaseSchema } from './release.ts';
import { verifyThreshold } from './signature.ts';

/** The bytes a release document is stored, served and hashed as: canonical JSON of it. */
export function releaseDocumentBytes(signed: SignedRelease): Uint8Array {
  return utf8(canonicalJson(signed));
}

/** What a manifest says of a release: its version and its document's hash and length. */
export async function releaseRef(signed: SignedRelease): Promise<ReleaseRef> {
  const bytes = releaseDocumentBytes(signed);
  return { version: signed.signed.version, sha256: await sha256Hex(bytes), size: bytes.length };
}

/**
 * Raw bytes of a release document in, a verified release out, for the release `ref` that a
 * verified manifest offers under `model`. The checks follow TUF's targets step (5.6): length and
 * hash that the signed manifest gives before anything is parsed, then the publisher signature,
 * then that the document is the release the manifest names.
 */
export async function verifyReleaseDocument(
  bytes: Uint8Array,
  expected: { model: string; ref: ReleaseRef },
  keySet: KeySet,
): Promise<SignedRelease> {
  const { model, ref } = expected;
  const what = `release document ${model}@${ref.version}`;
  // TUF 5.6.2 (endless data, mix-and-match): "the new targets metadata file ... MUST match" the
  // length and hash listed in the trusted snapshot.
  if (bytes.length !== ref.size) {
    throw new LengthMismatchError(`${what} is ${bytes.length} bytes, the manifest says ${ref.size}`);
  }
  if ((await sha256Hex(bytes)) !== ref.sha256) {
    throw new HashMismatchError(`${what} does not match the hash the manifest gives`);
  }
  const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  const signed = parseJson(SignedReleaseSchema, text, what);
  await verifyRelease(signed, keySet);
  // Wrong software: a genuine document of another release, which only the online key can name.
  if (signed.signed.model !== model || signed.signed.version !== ref.version) {
    throw new WrongTargetError(`${what} is the document of ${releaseId(signed.signed)}`);
  }
  return signed;
}

/**
 * Compromised server key: the online key can offer releases but not forge them, because each
 * release carries the signature of a publisher key that the root vouched for.
 */
export async function verifyRelease(signed: SignedRelease, keySet: KeySet): Promise<Release> {
  try {
    await verifyThreshold(
      signed,
      keySet.publisherKeys,
      keySet.threshold.release,
      `release ${releaseId(signed.signed)}`,
    );
  } catch (error) {
    if (error instanceof EdgeshipError) throw new PublisherSignatureError(error.message, { cause: error });
    throw error;
  }
  return signed.signed;
}
