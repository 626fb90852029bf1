#!/usr/bin/env bash
# Vendors the console's front-end packages from the npm registry as built files with their licences (issue 21):
# MapLibre GL JS (map), uPlot (charts), Natural Earth 1:110m land from world-atlas (basemap, converted from TopoJSON
# to GeoJSON with topojson-client here, once), and axe-core for the accessibility test only (under tests/).
# Node and npm are needed only to run this script; the broker and CI use the committed files.
# Run by `make console-vendor`; change a version here, run it, commit what changed.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
static="$here/broker/console/static/vendor"
tests="$here/tests/e2e/console_vendor"
MAPLIBRE=6.17.0 UPLOT=1.6.32 WORLD_ATLAS=2.0.2 TOPOJSON_CLIENT=3.1.0 AXE=4.14.1
command -v npm >/dev/null || { echo "make console-vendor needs npm: install it with 'apt-get install -y npm' (as root)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund --ignore-scripts \
  "maplibre-gl@$MAPLIBRE" "uplot@$UPLOT" "world-atlas@$WORLD_ATLAS" "topojson-client@$TOPOJSON_CLIENT" "axe-core@$AXE"
m=node_modules
rm -rf "$static" "$tests"
mkdir -p "$static/maplibre-gl" "$static/uplot" "$static/world-atlas" "$tests"
cp "$m/maplibre-gl/dist/maplibre-gl.mjs" "$m/maplibre-gl/dist/maplibre-gl-worker.mjs" \
   "$m/maplibre-gl/dist/maplibre-gl.css" "$m/maplibre-gl/LICENSE.txt" "$static/maplibre-gl/"
# the source map comments point at files not vendored: dropped so the browser asks for nothing that is missing
sed -i '/^\/\/# sourceMappingURL=/d' "$static/maplibre-gl/"*.mjs
cp "$m/uplot/dist/uPlot.iife.min.js" "$m/uplot/dist/uPlot.min.css" "$m/uplot/LICENSE" "$static/uplot/"
cp "$m/world-atlas/LICENSE" "$static/world-atlas/"
node -e '
const topo = require("topojson-client"), fs = require("fs");
const t = JSON.parse(fs.readFileSync(process.argv[1]));
fs.writeFileSync(process.argv[2], JSON.stringify(topo.feature(t, t.objects.land)));
' "$m/world-atlas/land-110m.json" "$static/world-atlas/land-110m.geojson"
cp "$m/axe-core/axe.min.js" "$m/axe-core/LICENSE" "$tests/"
for dir in "$static"/* "$tests"; do
  printf '%s\n' "Vendored by console/vendor.sh from the npm registry; do not edit." >"$dir/VENDORED"
done
printf 'maplibre-gl %s\nuplot %s\nworld-atlas %s (Natural Earth 1:110m land, public domain; topojson-client %s)\naxe-core %s (tests only)\n' \
  "$MAPLIBRE" "$UPLOT" "$WORLD_ATLAS" "$TOPOJSON_CLIENT" "$AXE" >"$static/VERSIONS"
du -sh "$static"/* "$tests"
