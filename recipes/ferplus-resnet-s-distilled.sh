#!/usr/bin/env bash
# The distilled resnet_s (recipes/ferplus-resnet-s-distilled.yaml) from scratch: five teachers on
# FER+, the student taught by their averaged answers, and its served export (int8, with the mirror gate).
#
#   bash recipes/ferplus-resnet-s-distilled.sh FERPLUS_FOLDER [RUNS]
#
# The teachers are the bundled recipe with another network, input size and 120 epochs:
#   l48 resnet_l 48 px (11.2 M), l64 resnet_l 64 px, m48 resnet_m 48 px (3.6 M), m64 resnet_m 64 px,
#   s64 resnet_s 64 px (1.6 M).
# They are independent: on one GPU, run them at the same time (the device scripts did, five at once).
set -euo pipefail
data=${1:?pass the FER+ folder}
runs=${2:-runs}
for teacher in "l48 resnet_l 48" "l64 resnet_l 64" "m48 resnet_m 48" "m64 resnet_m 64" "s64 resnet_s 64"; do
    read -r name model size <<<"$teacher"
    maeum train --config recipes/ferplus-resnet-s.yaml --data "$data" --out "$runs/ferplus-teachers/$name" \
        --model "$model" --size "$size" --epochs 120 --workers 2
done
teachers=$(printf "$runs/ferplus-teachers/%s/best.pt," l48 l64 m48 m64 s64)
maeum train --config recipes/ferplus-resnet-s-distilled.yaml --data "$data" --out "$runs/ferplus-resnet-s-distilled" \
    --teacher "${teachers%,}"
# --tta gated: faces the single pass is unsure of (top probability under a threshold chosen on
# Valid) are averaged with their mirror image; ferplus-resnet-s-fast is the same file, gate off.
maeum export "$runs/ferplus-resnet-s-distilled/best.pt" --out "$runs/ferplus-resnet-s-distilled/served.onnx" \
    --name ferplus-resnet-s --tta gated --int8
