import { EdgeshipError, LengthMismatchError } from '@edgeship/protocol';

/** Reads a response body as text, aborting once it passes `maxBytes` (endless data). */
export async function readCappedText(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel();
        throw new LengthMismatchError('E_LENGTH', `the manifest is larger than ${maxBytes} bytes`);
      }
      parts.push(value);
    }
  } catch (error) {
    if (error instanceof EdgeshipError) throw error;
    throw new EdgeshipError('E_NETWORK', `the manifest download failed: ${(error as Error).message}`);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}
