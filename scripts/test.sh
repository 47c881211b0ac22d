#!/usr/bin/env bash
# The one test command: set up what is missing, then type-check, lint and run every test
# (Node, headless Chromium and headless Firefox ESR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== typecheck"; npx tsc -p tsconfig.json
echo "== lint"; npx biome check .
# The config imports the workspaces' TypeScript test servers: Node loads it natively, through tsx
# and the edgeship-source condition (Vite's module runner would externalise the workspace packages
# and resolve them to their dist/, which a checkout has not built).
echo "== tests"; node --conditions=edgeship-source --import tsx node_modules/vitest/vitest.mjs run --configLoader native "$@"
