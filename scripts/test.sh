#!/usr/bin/env bash
# The one test command: set up what is missing, then type-check, lint and run every test
# (Node, headless Chromium and headless Firefox ESR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== typecheck"; npx tsc -p tsconfig.json
echo "== lint"; npx biome check .
# The config imports the TypeScript test servers of the workspaces; Vite's module runner loads them.
echo "== tests"; npx vitest run --configLoader runner "$@"
