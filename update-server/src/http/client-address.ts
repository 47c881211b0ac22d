import { isIP } from 'node:net';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';

/**
 * The address a request counts against in the rate limits.
 *
 * `trustedHops` 0 (the default): the socket's peer, and X-Forwarded-For is ignored, since any
 * client can send it. Behind N proxies you run (a load balancer, then maybe an ingress), set it
 * to N: each proxy appends the address it received the request from, so the client is the entry
 * N from the right of `X-Forwarded-For, socket peer`; entries further left are the client's own
 * words and are never read. Like Express's `trust proxy` with a hop count.
 */
export function clientAddressResolver(trustedHops = 0): (c: Context) => string {
  if (!Number.isInteger(trustedHops) || trustedHops < 0 || trustedHops > 16) {
    throw new Error(`trustProxy must be a whole number of hops from 0 to 16, got ${trustedHops}`);
  }
  const resolve = addressFrom(trustedHops);
  return (c) => resolve(c.req.header('x-forwarded-for'), socketAddress(c));
}

/** The same decision on raw values: X-Forwarded-For (if any) and the socket's peer address. */
export function addressFrom(trustedHops: number): (forwardedFor: string | undefined, peer: string) => string {
  return (forwardedFor, peer) => {
    if (trustedHops === 0) return peer;
    const forwarded = (forwardedFor ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const chain = [...forwarded, peer];
    const client = chain[Math.max(0, chain.length - 1 - trustedHops)]!;
    // A proxy we trust writes addresses; anything else means a misconfiguration, so count the
    // request against the peer (stricter) rather than against a string a client may have chosen.
    return isIP(client) ? client : peer;
  };
}

function socketAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    // app.request() in tests has no socket.
    return 'unknown';
  }
}
