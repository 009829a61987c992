#!/usr/bin/env bash
# The page every student downloads: its wasm and JS, gzipped, against the budget. Fails the
# build above it. Run after `trunk build --release` (scripts/test.sh does).
#
# Issue 7 asks for 150 KB; the page is about 196 KB today (PERFORMANCE.md says where the
# bytes are and what it would take). The budget is set just above today's size so that the
# page cannot grow unnoticed while the 150 KB goal is worked towards; lower it as it shrinks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUDGET_BYTES=200000
GOAL_BYTES=150000

shopt -s nullglob
wasm=(dist/*.wasm)
js=(dist/*.js)
if [ ${#wasm[@]} -ne 1 ] || [ ${#js[@]} -ne 1 ]; then
  echo "bundle: expected one .wasm and one .js in dist/ (run trunk build --release first)" >&2
  exit 1
fi
wasm_gz=$(gzip -9c "${wasm[0]}" | wc -c)
js_gz=$(gzip -9c "${js[0]}" | wc -c)
total=$((wasm_gz + js_gz))
echo "bundle: wasm $wasm_gz B + js $js_gz B = $total B gzipped (budget $BUDGET_BYTES B, goal $GOAL_BYTES B)"
if [ "$total" -gt "$BUDGET_BYTES" ]; then
  echo "bundle: $total B is over the budget of $BUDGET_BYTES B" >&2
  exit 1
fi
# What a browser downloads: the compressed copies that trunk's post-build hook wrote
# (scripts/precompress.sh), which the backend serves. Without them it would be the files whole.
served=0
for file in "${wasm[0]}" "${js[0]}"; do
  if [ -f "$file.br" ]; then
    served=$((served + $(wc -c < "$file.br")))
  elif [ -f "$file.gz" ]; then
    served=$((served + $(wc -c < "$file.gz")))
  else
    echo "bundle: $file has no compressed copy: did trunk's post-build hook (scripts/precompress.sh) run?" >&2
    exit 1
  fi
done
echo "bundle: served to a browser as $served B (brotli where built, else gzip)"
