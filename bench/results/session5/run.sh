#!/bin/sh
# Speed anchor for config d (forward only, N1, 64³, F32, 4 levels): fess's
# engine vs onnxruntime (the same network exported by fess export --format onnx)
# vs PyTorch (keep, keep+blas512), 2 threads each, warm-up 2, median of 5,
# one after the other in one run. Usage, from the repository root:
#   go build -o bench/results/session5/fess ./cmd/fess && sh bench/results/session5/run.sh
# Writes fess_d.json, onnx_d.json, torch_d.json and conditions.txt beside this script.
set -e
cd "$(dirname "$0")"
grep -m1 'model name' /proc/cpuinfo > conditions.txt
uptime >> conditions.txt
./fess bench --config d --threads 2 --warmup 2 --iters 5 --no-gate --json > fess_d.json 2> fess_d.log
uptime >> conditions.txt
bash ../../peer/onnx_anchor.sh --iters 5 --json onnx_d.json > onnx_d.log 2>&1
uptime >> conditions.txt
/usr/bin/python3 ../../peer/torch_unet3d.py --configs d --variants keep,keep+blas512 --threads 2 --warmup 2 --iters 5 --wait-quiet 0 --json torch_d.json > torch_d.log 2>&1
uptime >> conditions.txt
echo done >> conditions.txt
