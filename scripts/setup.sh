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
# the bundled node (a faster start): rebuilt when an input is newer or gone (the check that
# node/cli/main.js makes before it runs it, else it runs the sources)
node scripts/build.ts --if-stale
