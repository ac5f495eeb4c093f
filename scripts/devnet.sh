#!/usr/bin/env bash
# The README's first command: installs what is needed, then runs `datanet devnet`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
exec "$root/node/bin/datanet" devnet "$@"
