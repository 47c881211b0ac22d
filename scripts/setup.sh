#!/usr/bin/env bash
# Installs what a fresh machine with only Node 20 and npm lacks: Debian's Chromium and Firefox ESR
# (browser tests and the demo), prometheus (its promtool checks the alerting rules) and the npm
# dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || need_apt+=(chromium)
[ -x "${FIREFOX_PATH:-/usr/bin/firefox-esr}" ] || need_apt+=(firefox-esr)
# promtool checks the shipped Prometheus alerting rules (update-server/src/prometheus-rules.test.ts).
command -v promtool >/dev/null || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing ${need_apt[*]}; run as root or: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  echo "setup: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Reinstall only when the lockfile changed since the last install.
stamp=node_modules/.edgeship-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # `npm install` rather than `npm ci`: npm 11 leaves other platforms' optional packages (Biome's
  # binaries) out of the lockfile, then `npm ci` refuses that same lockfile (npm/cli#8320,
  # fixed by npm/cli#9083). With a lockfile present, `npm install` installs its exact versions.
  echo "setup: npm install"
  # onnxruntime-node's postinstall (script/install.js) would download the CUDA provider libraries
  # from NuGet on linux/x64; the CLI runs on the CPU. Its install script reads this variable (or
  # ONNXRUNTIME_NODE_INSTALL). It is not in .npmrc: npm 11 warns about an unknown project config
  # there on every npm and npx command.
  export npm_config_onnxruntime_node_install=skip
  npm install --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
