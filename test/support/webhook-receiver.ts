import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WebhookReceiver<T = Record<string, unknown>> {
  url: string;
  /** Every delivery's JSON body, in arrival order. */
  received: T[];
  /** Each delivery as it came: the raw body and the headers (to check a signature over). */
  deliveries: Array<{ body: string; headers: Record<string, string> }>;
  /** The deliveries of one event name. */
  events(name: string): T[];
  close(): Promise<void>;
}

/**
 * A real HTTP server on loopback that records the webhook deliveries it gets and answers 204, or
 * what `status` says for the n-th call (1-based): a receiver that is down answers 503.
 */
export async function webhookReceiver<T = Record<string, unknown>>(
  onDelivery: (event: T) => void = () => {},
  status: (call: number) => number = () => 204,
): Promise<WebhookReceiver<T>> {
  const received: T[] = [];
  const deliveries: WebhookReceiver<T>['deliveries'] = [];
  let calls = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      deliveries.push({ body, headers: req.headers as Record<string, string> });
      try {
        const event = JSON.parse(body) as T;
        received.push(event);
        onDelivery(event);
      } catch {}
      res.writeHead(status(++calls)).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/edgeship`,
    received,
    deliveries,
    events: (name) => received.filter((e) => (e as { event?: unknown }).event === name),
    close: () => new Promise((r) => server.close(() => r())),
  };
}
