#!/usr/bin/env bash
# Prints the path of a Chromium the browser tests can drive (puppeteer-core brings none):
# $CHROMIUM when set, else the system's, installed with apt on a Debian machine (CI runs
# fresh and as root) when missing. Exits 1 with a reason on stderr when there is none.
set -euo pipefail
if [ -n "${CHROMIUM:-}" ]; then
  [ -x "$CHROMIUM" ] || { echo "chromium.sh: CHROMIUM=$CHROMIUM is not an executable" >&2; exit 1; }
  echo "$CHROMIUM"; exit 0
fi
for candidate in chromium chromium-browser google-chrome-stable google-chrome; do
  if path="$(command -v "$candidate" 2>/dev/null)"; then echo "$path"; exit 0; fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium.sh: no chromium found and no apt-get to install it; set CHROMIUM=/path/to/chromium" >&2; exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "chromium.sh: installing chromium needs root (or sudo)" >&2; exit 1; }
  sudo=(sudo)
fi
echo "chromium.sh: installing chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >&2
command -v chromium
