import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WebhookReceiver {
  url: string;
  /** Every delivery's JSON body, in arrival order. */
  received: Array<Record<string, unknown>>;
  /** The deliveries of one event name. */
  events(name: string): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** A real HTTP server on loopback that records the webhook deliveries it gets (answers 204). */
export async function webhookReceiver(): Promise<WebhookReceiver> {
  const received: WebhookReceiver['received'] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/edgeship`,
    received,
    events: (name) => received.filter((e) => e.event === name),
    close: () => new Promise((r) => server.close(() => r())),
  };
}
