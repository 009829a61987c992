#!/usr/bin/env bash
# Sets up what is missing and runs every check and every test, the browser tests included.
# This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PATH="$(scripts/setup.sh --test | tail -n 1)"
export PATH

step() { printf '\n==> %s\n' "$*"; }

step "format"
cargo fmt --all --check
step "lints (host, then the page's wasm)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown --all-targets -- -D warnings
step "build the page"
trunk build --release
step "the page's size against its budget"
scripts/bundle-size.sh
step "tests (unit, integration on loopback, WebSocket, headless Chromium)"
cargo test --workspace -- --include-ignored
step "the page's component tests (wasm in headless Chromium)"
CHROMEDRIVER="$(command -v chromedriver)" \
WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/frontend/webdriver.json" \
  cargo test -p frontend --target wasm32-unknown-unknown
step "fuzz the protocol decoders for ${SOCKET_LAB_FUZZ_SECS:-30} s"
# New inputs go to a scratch corpus; the seeds in the repository stay as they are. A crash
# fails the step and leaves its input in fuzz/artifacts/.
corpus="$(mktemp -d)"
trap 'rm -rf "$corpus"' EXIT
# No sanitizer: the decoders are safe Rust, so what fuzzing finds here is panics, and
# uninstrumented runs try more inputs in the time.
cargo +nightly fuzz run protocol --sanitizer none --target-dir target/fuzz \
  "$corpus" fuzz/seeds/protocol -- -max_total_time="${SOCKET_LAB_FUZZ_SECS:-30}" \
  -print_final_stats=1 2>&1 | tail -n 12
