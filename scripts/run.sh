#!/usr/bin/env bash
# Runs a command with the project's toolchain on PATH (after setup), e.g.
#   scripts/run.sh node scripts/bench/startup.ts
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
export DATANET_ROOT="$root"
# shellcheck source=toolchain.sh
source "$root/scripts/toolchain.sh"
datanet_ensure_node
PATH="$root/node_modules/.bin:$PATH"
cd "$root"
exec "$@"
