import { concatBytes } from './bytes.ts';

/**
 * The one capped reader, for the runtime's downloads and the server's request bodies: the bytes of
 * `source`, at most `maxBytes` (endless data). Past it, `tooLarge()` is thrown as soon as the part
 * that passes it arrives, and the rest is not read; each side maps that to its own answer (the
 * server's 413, the runtime's E_LENGTH). Once `signal` aborts, `signal.reason` is thrown, a
 * stream's pending read included (not every body errors when its request's signal aborts).
 * Errors of the source itself pass through as they are.
 */
export async function readCapped(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  maxBytes: number,
  tooLarge: () => Error,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const part of isReadableStream(source) ? streamParts(source, signal) : source) {
    if (signal?.aborted) break;
    size += part.byteLength;
    if (size > maxBytes) throw tooLarge();
    parts.push(part);
  }
  if (signal?.aborted) throw signal.reason;
  return parts.length === 1 ? parts[0]! : concatBytes(parts);
}

function isReadableStream(source: object): source is ReadableStream<Uint8Array> {
  return typeof (source as ReadableStream).getReader === 'function';
}

/**
 * A stream's parts through its own reader: a browser's fetch body is not async-iterable
 * everywhere, and cancelling the reader is what ends a pending read on abort.
 */
async function* streamParts(stream: ReadableStream<Uint8Array>, signal?: AbortSignal) {
  const reader = stream.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  signal?.addEventListener('abort', cancel, { once: true });
  let ended = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        return;
      }
      yield value;
    }
  } finally {
    signal?.removeEventListener('abort', cancel);
    // Left early (past the cap, or aborted): nothing more is wanted from the sender.
    if (!ended) await reader.cancel().catch(() => {});
  }
}
