#!/usr/bin/env bash
# Sets up what is missing, builds the page and the backend, and serves Socket Lab at
# http://127.0.0.1:3000/ (arguments go to the backend, e.g. `scripts/run.sh --addr 127.0.0.1:4000`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PATH="$(scripts/setup.sh | tail -n 1)"
export PATH
trunk build --release
exec cargo run --release -p backend -- "$@"
