#!/usr/bin/env bash
# Installs what building, testing, benchmarking and the demo need, from Debian's
# packages (and npm for the Segment SDK test). Idempotent: installs only what is
# missing, so it is cheap to run before every `make test` / `make demo`.
set -euo pipefail

PKGS=(
  build-essential pkg-config clang libclang-rt-14-dev
  libmicrohttpd-dev libcjson-dev liblmdb-dev lmdb-utils libzstd-dev zstd liblz4-dev
  zlib1g-dev libxxhash-dev libcmocka-dev libcurl4-openssl-dev libssl-dev
  libopenblas-dev liblapacke-dev libjemalloc-dev
  curl python3 wrk nginx-light valgrind clang-format cppcheck
  chromium
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Node.js may come from another packaging of it (with npm inside): ask for
# the commands, and install Debian's packages only when they are absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Segment SDK used by the SDK compatibility test comes from npm.
if [ -f tests/node/package.json ] && [ ! -d tests/node/node_modules/@segment/analytics-node ]; then
  echo "install-deps: npm install in tests/node"
  (cd tests/node && npm install --no-audit --no-fund --loglevel=error)
fi
# The browser test drives Debian's chromium with playwright-core, and
# measures web/bespoke.js minified with terser: both from npm.
if [ -f tests/browser/package.json ] && { [ ! -d tests/browser/node_modules/playwright-core ] ||
    [ ! -d tests/browser/node_modules/terser ]; }; then
  echo "install-deps: npm install in tests/browser"
  (cd tests/browser && npm install --no-audit --no-fund --loglevel=error)
fi
exit 0
