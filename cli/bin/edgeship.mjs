#!/usr/bin/env node
// Installed from npm, the bin runs the compiled dist/. In the repository (tsconfig.build.json sits
// beside the sources there; the package does not ship it) it runs the TypeScript sources.
import { existsSync } from 'node:fs';

const checkout = existsSync(new URL('../tsconfig.build.json', import.meta.url));
if (checkout) await import('../../scripts/source-mode.mjs');
const { runCli } = await import(checkout ? '../src/cli.ts' : '../dist/cli.js');
process.exitCode = await runCli(process.argv.slice(2));
