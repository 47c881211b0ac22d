import { playwright } from '@vitest/browser-playwright';
import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';
import { edgeshipCommands } from './test/support/browser-commands.ts';

// Flags from Debian's Chromium on a machine with no outside network: without the
// background-networking flags Chromium keeps dialling Google hosts that are refused.
export const chromiumArgs = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // WebGPU through SwiftShader, so the WebGPU path is exercised on a machine with no GPU.
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--enable-unsafe-swiftshader',
  '--use-angle=swiftshader',
];

// Cross-origin isolation, so multi-threaded WASM (SharedArrayBuffer) is available.
const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

// The workspaces import each other's TypeScript sources (package.json exports, condition
// "edgeship-source"); what users install resolves to the built dist/ instead.
export const sourceConditions = ['edgeship-source'];

export default defineConfig({
  resolve: { conditions: [...sourceConditions, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [...sourceConditions, ...defaultServerConditions] } },
  server: { headers: isolationHeaders },
  optimizeDeps: { exclude: ['onnxruntime-web'], include: ['@tensorflow/tfjs'] },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          environment: 'node',
          include: ['{protocol,runtime,update-server,cli,demo-pwa,bench,test}/**/*.test.ts'],
          exclude: ['**/node_modules/**', '**/*.browser.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          // The protocol's tests run here too: the same code must verify in Node and Chromium.
          include: ['protocol/src/**/*.test.ts', '{runtime,test}/**/*.browser.test.ts'],
          exclude: ['**/node_modules/**'],
          testTimeout: 60_000,
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({
              launchOptions: {
                executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
                args: chromiumArgs,
              },
            }),
            instances: [{ browser: 'chromium' }],
            // Node-side helpers the tests call: real update servers and a chaos proxy.
            commands: edgeshipCommands,
          },
        },
      },
    ],
  },
});
