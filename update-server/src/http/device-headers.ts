/** Response headers a device may read cross-origin (CORS `Access-Control-Expose-Headers`). */
export const EXPOSED_HEADERS = ['ETag', 'Content-Range', 'Retry-After'];

/**
 * Every non-preflight answer on `/v1/*`: devices may run on any origin, and CORP lets
 * cross-origin-isolated pages (COEP) use our bytes. One table for the Hono middleware (app.ts)
 * and the manifest fast path (http/manifest-fast-path.ts).
 */
export const DEVICE_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Resource-Policy': 'cross-origin',
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': EXPOSED_HEADERS.join(','),
};
