#!/usr/bin/env bash
# Installs what the project needs: a Node.js >= 22 (fetched when the system's is older)
# and the npm dependencies from the lockfile. Safe to run again; does nothing when done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DATANET_ROOT="$root"
# shellcheck source=toolchain.sh
source "$root/scripts/toolchain.sh"
datanet_ensure_node
cd "$root"
stamp="node_modules/.datanet-install"
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1) $(node -v)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  echo "datanet: installing npm dependencies (node $(node -v))" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > "$stamp"
fi
# the bundled node (a faster start); node/cli/main.js runs the sources while it is stale
if [ -n "$(find src node scripts/build.ts package-lock.json -newer node/build/manifest.json \( -name '*.ts' -o -name '*.js' -o -name '*.json' \) -not -path 'node/build/*' -print -quit 2>/dev/null)" ] || [ ! -f node/build/manifest.json ]; then
  node scripts/build.ts
fi
