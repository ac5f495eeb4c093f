# Sourced by the project's scripts: puts a Node.js >= 22 first on PATH.
# A system Node >= 22 is used as it is; an older one (the machines here ship 20) gets
# Node 24 from the npm registry's node-linux-<arch> package, unpacked once into .toolchain/.
# shellcheck shell=bash
DATANET_ROOT="${DATANET_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
DATANET_NODE_VERSION="24.21.0"

# `node --version` runs no JavaScript: ~5 ms, where `node -p` boots the runtime (~40 ms)
datanet_node_major() {
  command -v node >/dev/null 2>&1 || { echo 0; return; }
  local v
  v="$(node --version 2>/dev/null)" || { echo 0; return; }
  v="${v#v}"
  echo "${v%%.*}"
}

datanet_node_minor() {
  local v
  v="$(node --version 2>/dev/null)" || { echo 0; return; }
  v="${v#v*.}"
  echo "${v%%.*}"
}

datanet_ensure_node() {
  local dir="$DATANET_ROOT/.toolchain/node-$DATANET_NODE_VERSION"
  if [ -x "$dir/bin/node" ]; then
    # Once fetched, always preferred: the same runtime for every run of this checkout.
    PATH="$dir/bin:$PATH"; export PATH; return 0
  fi
  if [ "$(datanet_node_major)" -ge 22 ]; then return 0; fi
  local arch
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) echo "datanet: no Node.js >= 22 here and no node-linux package for $(uname -m); install Node.js >= 22" >&2; return 1 ;;
  esac
  command -v npm >/dev/null 2>&1 || { echo "datanet: npm is needed to fetch Node.js $DATANET_NODE_VERSION" >&2; return 1; }
  echo "datanet: system Node.js is $(node -v 2>/dev/null || echo missing); fetching Node.js $DATANET_NODE_VERSION (npm package node-linux-$arch) into .toolchain/" >&2
  local tmp
  tmp="$(mktemp -d)"
  # npm pack checks the tarball against the registry's integrity hash.
  if ! (cd "$tmp" && npm pack --silent "node-linux-$arch@$DATANET_NODE_VERSION" >/dev/null); then
    rm -rf "$tmp"; echo "datanet: could not fetch node-linux-$arch@$DATANET_NODE_VERSION from the npm registry" >&2; return 1
  fi
  mkdir -p "$tmp/unpacked"
  tar xzf "$tmp"/node-linux-*.tgz -C "$tmp/unpacked" --strip-components=1 package/bin/node package/LICENSE
  mkdir -p "$DATANET_ROOT/.toolchain"
  rm -rf "$dir"; mv "$tmp/unpacked" "$dir"; rm -rf "$tmp"
  PATH="$dir/bin:$PATH"; export PATH
}
