#!/usr/bin/env sh
# Trunk's post-build hook (Trunk.toml), for release builds; debug builds (`trunk serve`) are
# left alone. Two steps, in this order:
#
# 1. The JavaScript glue that wasm-bindgen writes is minified by esbuild (installed by
#    scripts/setup.sh from npm): 8.0 KB gzipped instead of 6.0. Trunk's own `--minify` cannot
#    parse this glue and leaves it as it is (PERFORMANCE.md). Trunk has already written the
#    file's integrity hash into index.html, so the hash is written anew for the minified file.
#    Without esbuild, or without openssl to hash the result, the glue stays as trunk wrote it,
#    and scripts/bundle-size.sh says so.
# 2. Each of the page's files gets a gzip and, where the `brotli` tool is installed, a brotli
#    copy beside it, which the backend serves to browsers that accept them (tower-http's
#    ServeDir, `precompressed_br` and `precompressed_gzip`). Compressed once here at the
#    highest levels, the page's 540 KB are under 190 KB on the wire, and the server spends no
#    time compressing per student. The gzip copies are zopfli's where it is installed: the
#    same format, which every browser reads, about 5% smaller than `gzip -9` (about a second
#    for the wasm).
set -eu
[ "${TRUNK_PROFILE:-}" = "release" ] || exit 0
dir="${TRUNK_STAGING_DIR:?trunk sets TRUNK_STAGING_DIR for its hooks}"

sha384() { openssl dgst -sha384 -binary "$1" | base64 | tr -d '\n'; }

if command -v esbuild >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
  for file in "$dir"/*.js; do
    [ -f "$file" ] || continue
    before="$(sha384 "$file")"
    esbuild "$file" --minify --format=esm --log-level=warning --outfile="$file.min"
    mv "$file.min" "$file"
    after="$(sha384 "$file")"
    if [ -n "$before" ] && [ -n "$after" ] && grep -q "sha384-$before" "$dir/index.html"; then
      sed -i "s|sha384-$before|sha384-$after|" "$dir/index.html"
    fi
  done
fi

for file in "$dir"/*.wasm "$dir"/*.js "$dir"/*.css "$dir"/*.html; do
  [ -f "$file" ] || continue
  if command -v zopfli >/dev/null 2>&1; then
    zopfli --gzip "$file"
  else
    gzip -9 -n -k -f "$file"
  fi
  if command -v brotli >/dev/null 2>&1; then
    brotli -q 11 -k -f "$file"
  fi
done
