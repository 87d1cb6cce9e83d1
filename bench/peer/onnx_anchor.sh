#!/usr/bin/env bash
# Speed anchor: exports benchmark configuration d's network (the one
# `fess bench --config d` times: unet3d, NoUpBN, N1, 64³, F32, 4 levels) as
# ONNX and times onnxruntime-node's forward on it with 2 intra-op threads
# (median of the timed runs after warm-up), printing JSON.
#
# Usage: bench/peer/onnx_anchor.sh [onnx_forward.js options, e.g. --iters 7 --json out.json]
#        (defaults: --config d --threads 2 --warmup 2 --iters 5)
#
# Needs go, node and npm; installs onnxruntime-node into onnx/testdata with
# npm install --ignore-scripts when it is missing. FESS_ONNX_BENCH_CONFIG
# picks another configuration (a–d); pass the same --config to the script.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cfg=${FESS_ONNX_BENCH_CONFIG:-d}
if [ ! -d "$root/onnx/testdata/node_modules/onnxruntime-node" ]; then
	(cd "$root/onnx/testdata" && npm install --ignore-scripts --no-audit --no-fund >&2)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model="$tmp/config_$cfg.onnx"
(cd "$root" && FESS_ONNX_BENCH_OUT="$model" FESS_ONNX_BENCH_CONFIG="$cfg" \
	go test ./onnx -run '^TestExportBenchConfig$' -count=1 >&2)
node "$root/bench/peer/onnx_forward.js" --model "$model" --config "$cfg" --threads 2 --warmup 2 --iters 5 "$@"
