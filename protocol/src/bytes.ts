/** Byte helpers on Uint8Array and Web Crypto only, so they run the same in Node and browsers. */

const encoder = new TextEncoder();

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || /[^0-9a-f]/i.test(hex)) throw new TypeError('not a hex string');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64Url(text: string): Uint8Array {
  if (/[^A-Za-z0-9_-]/.test(text)) throw new TypeError('not a base64url string');
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
  const binary = atob(padded);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  // Only the canonical spelling: atob ignores a final character's spare bits, so two spellings
  // could decode to the same bytes and make a signed document malleable.
  if (toBase64Url(out) !== text) throw new TypeError('not canonical base64url');
  return out;
}

/**
 * The parts joined into one new array. Pass a long or unbounded list (stream chunks) as one array:
 * spreading a few hundred thousand arguments overflows the stack.
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer>;
export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer>;
export function concatBytes(...args: Uint8Array[] | [readonly Uint8Array[]]): Uint8Array<ArrayBuffer> {
  const parts: readonly Uint8Array[] = Array.isArray(args[0]) ? args[0] : (args as Uint8Array[]);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

// Web Crypto wants an ArrayBuffer-backed view; TS 5.9 distinguishes ArrayBufferLike.
function asBufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', asBufferSource(bytes)));
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return toHex(await sha256(bytes));
}

export { asBufferSource };
