#!/usr/bin/env bash
# The README's second command: installs what is needed, then runs every test:
# the type check, the purity rule, unit tests, and integration tests on loopback.
# Ends with "N passed, N failed". Pass kinds to run only some: scripts/test.sh unit
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec bash "$root/scripts/run.sh" node scripts/run-tests.ts "$@"
