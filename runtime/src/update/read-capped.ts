import { EdgeshipError, LengthMismatchError, NetworkError, readCapped } from '@edgeship/protocol';

/**
 * Reads a response body through the protocol's capped reader, aborting once it passes `maxBytes`
 * (endless data: E_LENGTH) or once `signal` aborts (slow retrieval: the request's deadline covers
 * the body, not only the headers). An abort whose reason is an EdgeshipError (E_STALLED) is thrown
 * as that reason; any other failure is E_NETWORK. `what` names the document in errors.
 */
export async function readCappedBytes(
  response: Response,
  maxBytes: number,
  signal?: AbortSignal,
  what = 'the manifest',
): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array(0);
  const tooLarge = () => new LengthMismatchError(`${what} is larger than ${maxBytes} bytes`);
  try {
    return await readCapped(response.body, maxBytes, tooLarge, signal);
  } catch (error) {
    const reason = signal?.aborted ? signal.reason : error;
    if (reason instanceof EdgeshipError) throw reason;
    throw new NetworkError(`${what} download failed: ${(reason as Error).message}`, {
      cause: reason,
    });
  }
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
