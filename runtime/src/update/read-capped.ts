import { concatBytes, EdgeshipError, LengthMismatchError, NetworkError } from '@edgeship/protocol';

/**
 * Reads a response body as text, aborting once it passes `maxBytes` (endless data) or once
 * `signal` aborts (slow retrieval: the request's deadline covers the body, not only the headers).
 * An abort whose reason is an EdgeshipError (E_STALLED) is thrown as that reason.
 */
export async function readCappedText(
  response: Response,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  // Not every body errors when its request's signal aborts: cancelling ends a pending read.
  const cancel = () => void reader.cancel().catch(() => {});
  signal?.addEventListener('abort', cancel, { once: true });
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (signal?.aborted) throw signal.reason;
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel();
        throw new LengthMismatchError(`the manifest is larger than ${maxBytes} bytes`);
      }
      parts.push(value);
    }
  } catch (error) {
    const reason = signal?.aborted ? signal.reason : error;
    if (reason instanceof EdgeshipError) throw reason;
    throw new NetworkError(`the manifest download failed: ${(reason as Error).message}`, {
      cause: reason,
    });
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(concatBytes(parts));
}
