import { concatBytes, EdgeshipError, LengthMismatchError, NetworkError } from '@edgeship/protocol';

/**
 * Reads a response body, aborting once it passes `maxBytes` (endless data) or once `signal`
 * aborts (slow retrieval: the request's deadline covers the body, not only the headers). An
 * abort whose reason is an EdgeshipError (E_STALLED) is thrown as that reason. `what` names the
 * document in errors.
 */
export async function readCappedBytes(
  response: Response,
  maxBytes: number,
  signal?: AbortSignal,
  what = 'the manifest',
): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array(0);
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
        throw new LengthMismatchError(`${what} is larger than ${maxBytes} bytes`);
      }
      parts.push(value);
    }
  } catch (error) {
    const reason = signal?.aborted ? signal.reason : error;
    if (reason instanceof EdgeshipError) throw reason;
    throw new NetworkError(`${what} download failed: ${(reason as Error).message}`, {
      cause: reason,
    });
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
  return concatBytes(parts);
}

/** readCappedBytes, decoded as UTF-8 (fatal: a manifest is valid UTF-8 or nothing). */
export async function readCappedText(
  response: Response,
  maxBytes: number,
  signal?: AbortSignal,
  what = 'the manifest',
): Promise<string> {
  const bytes = await readCappedBytes(response, maxBytes, signal, what);
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}
