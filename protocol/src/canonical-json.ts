import canonicalizeExport from 'canonicalize';
import { utf8 } from './bytes.ts';
import { MalformedError } from './errors.ts';

// canonicalize is CommonJS (`module.exports = serialize`) typed as an ES module's default export:
// Node and bundlers hand an ES module the function itself, which NodeNext resolution (the build)
// types as the module object. Typed here once, for both resolutions.
const canonicalize = canonicalizeExport as unknown as (input: unknown) => string | undefined;

/**
 * RFC 8785 (JSON Canonicalization Scheme): sorted keys, ECMAScript number formatting, no
 * insignificant whitespace. Signatures cover these bytes, so signer and verifier agree on the
 * exact input however the JSON was pretty-printed or reordered in transit.
 */
export function canonicalJson(value: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (cause) {
    throw new MalformedError(`cannot canonicalize: ${(cause as Error).message}`, { cause });
  }
  if (text === undefined) throw new MalformedError('cannot canonicalize undefined');
  return text;
}

export function canonicalBytes(value: unknown): Uint8Array {
  return utf8(canonicalJson(value));
}
