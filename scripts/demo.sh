#!/bin/sh
# demo.sh — classifies a few sample images with a real model: ../shared/models/mobilenet_v2_real.onnx when that
# folder exists, otherwise the model given as -m MODEL or in $LENS_MODEL. Images: ../shared/data/imagenet-dev, or
# those given after the lens binary (scripts/demo.sh build/lens [-m model.onnx] a.jpg b.png).
set -e
lens=${1:-build/lens}
[ $# -gt 0 ] && shift
model=${LENS_MODEL:-}
if [ "${1:-}" = -m ]; then model=$2; shift 2; fi
if [ -z "$model" ] && [ -f ../shared/models/mobilenet_v2_real.onnx ]; then model=../shared/models/mobilenet_v2_real.onnx; fi
if [ -z "$model" ]; then
    echo "lens demo: no model: run 'make demo LENS_MODEL=model.onnx DEMO_IMAGES=\"a.jpg b.png\"'" >&2
    exit 2
fi
if [ $# -eq 0 ]; then
    dir=../shared/data/imagenet-dev
    [ -d "$dir" ] || { echo "lens demo: give image files after the model" >&2; exit 2; }
    set -- "$dir/n01440764_tench.JPEG" "$dir/n01530575_brambling.JPEG" "$dir/n01558993_robin.JPEG"
fi
echo "\$ lens info -m $model"
"$lens" info -m "$model"
echo
echo "\$ lens classify -m $model -k 3 $*"
"$lens" classify -m "$model" -k 3 "$@"
