#!/usr/bin/env bash
# Re-create the vendored front-end assets of the book (committed, so the site works offline):
#   mathjax/  MathJax 3.2.2, trimmed to tex-mml-chtml.js + the woff-v2 CHTML fonts
#   vendor/   vega, vega-lite (the version Altair 6.3 targets) and vega-embed min.js
# Needs node/npm and the npm registry; run from anywhere: `bash book/assets/vendor.sh`.
set -euo pipefail
MATHJAX=3.2.2
VEGA=6.4.0
VEGA_LITE=6.4.1
VEGA_EMBED=7.3.0

here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

unpack() {  # unpack <package@version> -> $tmp/<package>/ (npm pack: the published tarball, no install scripts)
  local pkg="$1" name="${1%@*}"
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
  mkdir -p "$tmp/$name"
  tar -xzf "$tmp/$name"-*.tgz -C "$tmp/$name" --strip-components=1
}

unpack "mathjax@$MATHJAX"
rm -rf "$here/mathjax"
mkdir -p "$here/mathjax/output/chtml/fonts"
cp "$tmp/mathjax/es5/tex-mml-chtml.js" "$here/mathjax/"
cp -r "$tmp/mathjax/es5/output/chtml/fonts/woff-v2" "$here/mathjax/output/chtml/fonts/"
cp "$tmp/mathjax/LICENSE" "$here/mathjax/LICENSE"

rm -rf "$here/vendor"
mkdir -p "$here/vendor"
for spec in "vega@$VEGA" "vega-lite@$VEGA_LITE" "vega-embed@$VEGA_EMBED"; do
  unpack "$spec"
  name="${spec%@*}"
  cp "$tmp/$name/build/$name.min.js" "$here/vendor/"
  cp "$tmp/$name/LICENSE" "$here/vendor/LICENSE.$name"
done
printf 'mathjax %s\nvega %s\nvega-lite %s\nvega-embed %s\n' "$MATHJAX" "$VEGA" "$VEGA_LITE" "$VEGA_EMBED" > "$here/VERSIONS"
du -sh "$here/mathjax" "$here/vendor"
