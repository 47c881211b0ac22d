import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));

// Served by the update server at /dashboard/ (src/routes/dashboard.ts) with a CSP of 'self' only:
// every asset is a file of its own (nothing inlined as a data: URL), uPlot included, no CDN.
export default defineConfig({
  root: here,
  base: '/dashboard/',
  // Any @edgeship/* import resolves to the workspace's TypeScript sources ("edgeship-source").
  resolve: { conditions: ['edgeship-source', ...defaultClientConditions] },
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
