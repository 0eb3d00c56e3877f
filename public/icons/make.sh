#!/usr/bin/env bash
# Draws the app's icons (public/icons/*.png, named in manifest.webmanifest)
# from their SVGs with headless Chromium, the browser the tests already use.
# icon-*.png are public/favicon.svg; maskable-*.png are maskable.svg, the
# same glyph on a square filled to its edges and kept inside the central
# circle a launcher may crop to. Run it after changing either SVG, and
# commit the PNGs.
set -euo pipefail
cd "$(dirname "$0")"
page=$(mktemp -d)
trap 'rm -rf "$page"' EXIT
for pair in icon:../favicon.svg maskable:maskable.svg; do
  name=${pair%%:*} svg=${pair#*:}
  for size in 192 512; do
    # An HTML page that draws the SVG at exactly size × size, nothing around it.
    printf '<html><body style="margin:0;background:transparent"><img src="%s" width="%s" height="%s" style="display:block"></body></html>' \
      "file://$PWD/$svg" "$size" "$size" > "$page/$name.html"
    chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --default-background-color=00000000 \
      --window-size="$size,$size" --screenshot="$PWD/$name-$size.png" "file://$page/$name.html" >/dev/null 2>&1
    echo "$name-$size.png"
  done
done
