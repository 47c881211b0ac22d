import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { startTestServer } from '../../../test/support/server.ts';
import { startServer } from '../server.ts';
import { clientAddressResolver } from './client-address.ts';

async function addressSeen(trustedHops: number, forwardedFor?: string): Promise<string> {
  const app = new Hono();
  const resolve = clientAddressResolver(trustedHops);
  app.get('/', (c) => c.text(resolve(c)));
  const headers: Record<string, string> =
    forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor };
  return (await app.request('/', { headers })).text();
}

describe('the client address behind proxies', () => {
  it('ignores X-Forwarded-For unless proxies are trusted', async () => {
    // app.request() has no socket: its peer is "unknown".
    expect(await addressSeen(0, '203.0.113.7')).toBe('unknown');
    expect(await addressSeen(0)).toBe('unknown');
  });

  it('takes the entry as many hops from the right as proxies are trusted, never one a client wrote', async () => {
    expect(await addressSeen(1, '203.0.113.7')).toBe('203.0.113.7');
    // A client that sends its own X-Forwarded-For gets it prepended to: the trusted hop still wins.
    expect(await addressSeen(1, '198.51.100.1, 203.0.113.7')).toBe('203.0.113.7');
    expect(await addressSeen(2, '198.51.100.1, 203.0.113.7, 10.0.0.2')).toBe('203.0.113.7');
    expect(await addressSeen(1, '2001:db8::1')).toBe('2001:db8::1');
    // Fewer entries than trusted hops: the leftmost there is.
    expect(await addressSeen(3, '203.0.113.7')).toBe('203.0.113.7');
    // Garbage from a misconfigured proxy: counted against the peer, not a string of the client's.
    expect(await addressSeen(1, 'not-an-address')).toBe('unknown');
    expect(await addressSeen(1, '')).toBe('unknown');
  });

  it('refuses a hop count that is not a small whole number, also as a server option', async () => {
    for (const hops of [-1, 1.5, 17, Number.NaN])
      expect(() => clientAddressResolver(hops)).toThrow(/trustProxy/);
    const dataDir = join(tmpdir(), `edgeship-never-created-${process.pid}`);
    await expect(startServer({ dataDir, trustProxy: 2.5 })).rejects.toThrow(
      /trustProxy must be a whole number/,
    );
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe('failed authentication is limited per address (real server on loopback)', () => {
  const bogus = (i: number) => `es_ope_${String(i).padStart(32, 'x')}`;
  const whoami = (url: string, token: string, forwardedFor?: string) =>
    fetch(`${url}/v1/admin/whoami`, {
      headers: {
        authorization: `Bearer ${token}`,
        ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}),
      },
    });

  it('answers 429 with Retry-After once an address has failed too often, whatever token it sends next', async () => {
    const t = await startTestServer({
      rateLimits: { publicPerMinute: 1000, adminPerMinute: 1000, authFailuresPerMinute: 5 },
    });
    try {
      const statuses: number[] = [];
      // Each bogus token is new, so the per-token admin limit never sees a repeat.
      for (let i = 0; i < 8; i++) statuses.push((await whoami(t.server.url, bogus(i))).status);
      expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
      const limited = await whoami(t.server.url, t.server.tokens!.viewer);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await limited.json()).error.code).toBe('E_RATE_LIMITED');
      // Missing tokens count as failures too.
      const none = await fetch(`${t.server.url}/v1/admin/whoami`);
      expect(none.status).toBe(429);
    } finally {
      await t.stop();
    }
  });

  it('with trustProxy off, X-Forwarded-For does not give a client a fresh bucket', async () => {
    const t = await startTestServer({
      rateLimits: { publicPerMinute: 1000, adminPerMinute: 1000, authFailuresPerMinute: 3 },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++)
        statuses.push((await whoami(t.server.url, bogus(i), `203.0.113.${i}`)).status);
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
    } finally {
      await t.stop();
    }
  });

  it('with trustProxy 1, each forwarded client has its own bucket, and a prepended entry does not escape it', async () => {
    const t = await startTestServer({
      trustProxy: 1,
      rateLimits: { publicPerMinute: 1000, adminPerMinute: 1000, authFailuresPerMinute: 3 },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await whoami(t.server.url, bogus(i), '203.0.113.1')).status);
      expect(statuses).toEqual([401, 401, 401, 429]);
      // The same client, claiming another origin in front: the proxy's entry is what counts.
      expect((await whoami(t.server.url, bogus(9), '198.51.100.9, 203.0.113.1')).status).toBe(429);
      // Another client behind the same proxy is not punished for the first one.
      expect((await whoami(t.server.url, bogus(10), '203.0.113.2')).status).toBe(401);
      expect((await whoami(t.server.url, t.server.tokens!.viewer, '203.0.113.3')).status).toBe(200);
    } finally {
      await t.stop();
    }
  });

  it('with trustProxy 1, the public per-address limit is per forwarded client too', async () => {
    const t = await startTestServer({
      trustProxy: 1,
      rateLimits: { publicPerMinute: 2, adminPerMinute: 1000 },
    });
    try {
      const root = (forwardedFor: string) =>
        fetch(`${t.server.url}/v1/chunks/${'a'.repeat(64)}`, {
          headers: { 'x-forwarded-for': forwardedFor },
        });
      expect([(await root('203.0.113.1')).status, (await root('203.0.113.1')).status]).toEqual([404, 404]);
      expect((await root('203.0.113.1')).status).toBe(429);
      expect((await root('203.0.113.2')).status).toBe(404);
    } finally {
      await t.stop();
    }
  });
});
