#!/usr/bin/env bash
# The main job on the embedded default data (data/): the CIFAR-10 ResNet-20 checkpoint on the 1,000-image
# class-balanced CIFAR-10 JPEG test subset, in float and in Q15.16 storage, then a Q15.16 weight fault campaign
# (results in build/demo/: JSON, CSV and an accuracy-versus-rate SVG plot). Run scripts/build.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
ironclad=build/tools/ironclad
weights=data/resnet20-cifar10-jpg.safetensors
data=data/cifar10-mini
mkdir -p build/demo
"$ironclad" eval --model resnet20 --weights "$weights" --data "$data"
"$ironclad" eval --model resnet20 --weights "$weights" --data "$data" --format q15.16
"$ironclad" inject --model resnet20 --weights "$weights" --data "$data" --format q15.16 \
    --rate 1e-7,1e-6,1e-5 --trials 20 --seed 0 --progress \
    --json build/demo/inject.json --csv build/demo/inject.csv --plot build/demo/inject.svg
rm -f build/demo/inject.json.state  # a finished campaign: the next demo run starts afresh
