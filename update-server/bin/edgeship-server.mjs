#!/usr/bin/env node
// Installed from npm, the bin runs the compiled dist/. In the repository (tsconfig.build.json sits
// beside the sources there; the package does not ship it) it runs the TypeScript sources.
import { existsSync } from 'node:fs';

const checkout = existsSync(new URL('../tsconfig.build.json', import.meta.url));
if (checkout) await import('../../scripts/source-mode.mjs');
const { main } = await import(checkout ? '../src/main.ts' : '../dist/main.js');
await main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`edgeship-server: ${error.message}\n`);
  process.exit(1);
});
