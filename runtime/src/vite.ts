import type { Plugin } from 'vite';

export interface EdgeshipViteOptions {
  /**
   * Send COOP/COEP from Vite's dev and preview servers (default true), so the page is cross-origin
   * isolated and onnxruntime-web can use WASM threads. Production servers must send them too.
   */
  crossOriginIsolation?: boolean;
}

/**
 * `plugins: [edgeship()]` in vite.config: the runtime's worker and onnxruntime-web's WASM files
 * then build and serve with no further wiring. The worker is a module worker with a lazy TF.js
 * chunk (worker.format 'es'); the package stays out of dependency pre-bundling, which would move
 * its files away from the `new URL(..., import.meta.url)` references that find the worker and
 * the WASM files (Vite emits those two under content-hashed names).
 */
export function edgeship(options: EdgeshipViteOptions = {}): Plugin {
  const isolation = options.crossOriginIsolation ?? true;
  const headers = {
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
  };
  return {
    name: 'edgeship-runtime',
    config: () => ({
      optimizeDeps: { exclude: ['@edgeship/runtime'] },
      worker: { format: 'es' },
      ...(isolation ? { server: { headers }, preview: { headers } } : {}),
    }),
  };
}

export default edgeship;
