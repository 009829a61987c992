#!/usr/bin/env bash
# Installs, idempotently, everything a fresh machine lacks to build and test Socket Lab.
#
#   scripts/setup.sh          tools to build and run the app (wasm target, trunk, wasm-bindgen, wasm-opt,
#                             esbuild)
#   scripts/setup.sh --test   the same, plus what the tests use: headless Chromium and chromedriver,
#                             axe-core (the accessibility audit), Python 3 and netcat as outside
#                             peers, nightly Rust and cargo-fuzz
#
# Every step first checks whether its tool is already there at the right version, so a prepared
# machine passes through in a second or two. See ../shared/TOOLCHAIN.md for why each pin exists.
# The script prints, as its last line, a PATH to export: wasm-opt comes from npm's binaryen
# (Debian's version 108 writes wasm that crashes in the browser) and must come first on PATH;
# esbuild, which minifies the page's JavaScript glue (scripts/post-build.sh), from npm too.
set -euo pipefail

TRUNK_VERSION=0.21.14
BINARYEN_VERSION=132.0.0
ESBUILD_VERSION=0.28.2
AXE_CORE_VERSION=4.14.1
CARGO_FUZZ_VERSION=0.13.2
TOOLS_DIR="${SOCKET_LAB_TOOLS:-$HOME/.cache/socket-lab-tools}"

want_browser=0
for arg in "$@"; do
  case "$arg" in
    --test) want_browser=1 ;;
    *) echo "setup.sh: unknown argument '$arg' (expected --test)" >&2; exit 2 ;;
  esac
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
log() { echo "setup: $*" >&2; }

export PATH="$HOME/.cargo/bin:$PATH"

# The toolchain (with the wasm target) is named in rust-toolchain.toml; `rustup show` installs
# whatever part of it is missing.
rustup show active-toolchain >/dev/null 2>&1 || rustup show >/dev/null
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# trunk: 0.22 needs a newer rustc than 1.95, so it stays pinned.
if [ "$(trunk --version 2>/dev/null || true)" != "trunk $TRUNK_VERSION" ]; then
  log "installing trunk $TRUNK_VERSION (about 5 minutes on 2 cores)"
  cargo install --locked "trunk@$TRUNK_VERSION"
fi

# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly, or trunk tries to
# download one (and fails offline). `--locked` is left out on purpose: the CLI's own lockfile
# names a crate version the registry mirror lacks.
bindgen_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ -z "$bindgen_version" ]; then
  echo "setup.sh: could not read the wasm-bindgen version from Cargo.lock" >&2
  exit 1
fi
if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $bindgen_version" ]; then
  log "installing wasm-bindgen-cli $bindgen_version"
  cargo install --force "wasm-bindgen-cli@$bindgen_version"
fi

# wasm-opt from npm's binaryen, in a tools directory outside the repository so clones share it.
binaryen_bin="$TOOLS_DIR/binaryen-$BINARYEN_VERSION/node_modules/.bin"
if [ ! -x "$binaryen_bin/wasm-opt" ]; then
  log "installing binaryen $BINARYEN_VERSION (wasm-opt) from npm"
  mkdir -p "$TOOLS_DIR/binaryen-$BINARYEN_VERSION"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR/binaryen-$BINARYEN_VERSION" "binaryen@$BINARYEN_VERSION"
fi

# esbuild from npm, beside it: trunk's post-build hook minifies the JavaScript glue with it.
esbuild_bin="$TOOLS_DIR/esbuild-$ESBUILD_VERSION/node_modules/.bin"
if [ ! -x "$esbuild_bin/esbuild" ]; then
  log "installing esbuild $ESBUILD_VERSION from npm"
  mkdir -p "$TOOLS_DIR/esbuild-$ESBUILD_VERSION"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR/esbuild-$ESBUILD_VERSION" "esbuild@$ESBUILD_VERSION"
fi

if [ "$want_browser" = 1 ]; then
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "installing chromium and chromedriver from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
  # axe-core, from npm, audits the page's accessibility in the browser tests, which read it
  # from $TOOLS_DIR/axe.min.js (a link to the pinned version's file).
  axe_dir="$TOOLS_DIR/axe-core-$AXE_CORE_VERSION"
  if [ ! -f "$axe_dir/node_modules/axe-core/axe.min.js" ]; then
    log "installing axe-core $AXE_CORE_VERSION from npm"
    mkdir -p "$axe_dir"
    npm install --silent --no-audit --no-fund --prefix "$axe_dir" "axe-core@$AXE_CORE_VERSION"
  fi
  ln -sfn "$axe_dir/node_modules/axe-core/axe.min.js" "$TOOLS_DIR/axe.min.js"
  # The fuzz target of the protocol decoders needs nightly Rust and cargo-fuzz.
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    log "installing the nightly toolchain (for cargo fuzz)"
    rustup toolchain install nightly --profile minimal
  fi
  if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION (about 30 seconds)"
    cargo install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"
  fi
  # Python 3 and netcat are outside peers in the integration tests (the tutorial's own
  # programs, and `nc` as a student would use it); strace is what `backend bench` compares
  # the cost of watching with, and the witness `watch`'s tests hold it to; gcc builds the C
  # forking server those tests watch. tshark reads the pcapng files of runs back: the
  # independent witness of the packet tests. Debian's python3 is the one at /usr/bin, which the bench uses.
  # brotli and zopfli compress the built page (scripts/post-build.sh; without them, gzip -9
  # only): zopfli writes gzip that any browser reads, about 5% smaller than gzip -9's.
  # openssl hashes the minified JavaScript glue for index.html's integrity attribute.
  if [ ! -x /usr/bin/python3 ] || ! command -v nc >/dev/null || ! command -v strace >/dev/null \
    || ! command -v brotli >/dev/null || ! command -v zopfli >/dev/null \
    || ! command -v openssl >/dev/null || ! command -v cc >/dev/null \
    || ! command -v tshark >/dev/null; then
    log "installing python3, netcat, strace, brotli, zopfli, openssl, gcc and tshark from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq python3 netcat-openbsd strace brotli zopfli openssl gcc tshark >/dev/null
  fi
fi

echo "$binaryen_bin:$esbuild_bin:$HOME/.cargo/bin:$PATH"
