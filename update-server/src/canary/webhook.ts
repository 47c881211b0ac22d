import type { Logger } from 'pino';

export interface WebhookOptions {
  attempts?: number;
  baseDelayMs?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/**
 * POSTs a JSON event, retrying with exponential backoff (a 2xx ends it). Best effort: callers do
 * not await it on any request path, and a receiver that never answers costs one timer per attempt.
 * The delivery id lets a receiver drop a repeat it already handled.
 */
export async function deliverWebhook(
  url: string,
  event: Record<string, unknown>,
  log: Logger,
  opts: WebhookOptions = {},
): Promise<boolean> {
  const attempts = opts.attempts ?? 5;
  const baseDelayMs = opts.baseDelayMs ?? 500;
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const doFetch = opts.fetch ?? fetch;
  const body = JSON.stringify({ deliveryId: crypto.randomUUID(), ...event });
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const response = await doFetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'edgeship-update-server' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.arrayBuffer().catch(() => {});
      if (response.ok) return true;
      log.warn({ url, status: response.status, attempt }, 'webhook refused');
    } catch (error) {
      log.warn({ url, attempt, err: (error as Error).message }, 'webhook failed');
    }
    if (attempt < attempts) await new Promise((r) => setTimeout(r, baseDelayMs * 2 ** (attempt - 1)));
  }
  log.error({ url, event: event.event }, 'webhook gave up');
  return false;
}
