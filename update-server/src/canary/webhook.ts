import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';

export interface WebhookOptions {
  attempts?: number;
  baseDelayMs?: number;
  timeoutMs?: number;
  /**
   * A Standard Webhooks secret (`whsec_` + base64 of at least 24 random bytes). Set, every delivery
   * carries `webhook-id`, `webhook-timestamp` and `webhook-signature` (HMAC-SHA256 of id, timestamp
   * and body), which any Standard Webhooks library verifies: a receiver can refuse a forged halt
   * notice or retraining trigger, and a replay older than its tolerance.
   */
  secret?: string;
  fetch?: typeof fetch;
}

const MIN_SECRET_BYTES = 24;

/** The signer for a configured secret; throws (at start-up) on a secret too short or not base64. */
export function webhookSigner(secret: string): Webhook {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  if (key.length < MIN_SECRET_BYTES) {
    throw new Error(`the webhook secret must be whsec_ + base64 of at least ${MIN_SECRET_BYTES} bytes`);
  }
  return new Webhook(secret);
}

/**
 * POSTs a JSON event, retrying with exponential backoff (a 2xx ends it), in memory: the server's
 * own events go through the durable outbox (webhook-outbox.ts) instead; this serves one-off
 * deliveries such as a receiver check. The delivery id (also the signed `webhook-id`) lets a
 * receiver drop a repeat it already handled.
 */
export async function deliverWebhook(
  url: string,
  event: Record<string, unknown>,
  log: Logger,
  opts: WebhookOptions = {},
): Promise<boolean> {
  const attempts = opts.attempts ?? 5;
  const baseDelayMs = opts.baseDelayMs ?? 500;
  const deliveryId = crypto.randomUUID();
  const body = JSON.stringify({ deliveryId, ...event });
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const result = await postWebhook(url, deliveryId, body, opts);
    if (result.ok) return true;
    log.warn({ url, attempt, status: result.status, err: result.error }, 'webhook failed');
    if (attempt < attempts) await new Promise((r) => setTimeout(r, baseDelayMs * 2 ** (attempt - 1)));
  }
  log.error({ url, event: event.event }, 'webhook gave up');
  return false;
}

export type WebhookAttempt = { ok: true } | { ok: false; error: string; status?: number };

/**
 * One attempt: POST `body` (JSON carrying `deliveryId`), signed afresh when a secret is set (so a
 * late retry is not refused as stale by the receiver's timestamp tolerance). A 2xx is delivered.
 */
export async function postWebhook(
  url: string,
  deliveryId: string,
  body: string,
  opts: Pick<WebhookOptions, 'secret' | 'timeoutMs' | 'fetch'> = {},
): Promise<WebhookAttempt> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'edgeship-update-server',
  };
  if (opts.secret) {
    const at = new Date();
    headers['webhook-id'] = deliveryId;
    headers['webhook-timestamp'] = String(Math.floor(at.getTime() / 1000));
    headers['webhook-signature'] = webhookSigner(opts.secret).sign(deliveryId, at, body);
  }
  try {
    const response = await (opts.fetch ?? fetch)(url, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 5_000),
    });
    await response.arrayBuffer().catch(() => {});
    return response.ok
      ? { ok: true }
      : { ok: false, error: `HTTP ${response.status}`, status: response.status };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}
