#!/usr/bin/env bash
# The main job: set up what is missing, then run the update server with the demo published, and
# the demo PWA and dashboard served (scripts/start.ts says what, and where).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node --conditions=edgeship-source --import tsx scripts/start.ts
