#!/bin/sh
# The bf16 part of the issue-14 side-by-side (session8/run.sh) alone: the
# peer's keep+bf16 and fess --precision bf16 (F(2,3) and F(4,3)) on b and
# s, 2 threads each, one tool after the other. Usage, from the repository
# root:
#   go build -o bench/results/DIR/fess ./cmd/fess &&
#   sh bench/results/session14/run_bf16.sh bench/results/DIR
set -e
cd "${1:?usage: run_bf16.sh bench/results/DIR}"
P=/usr/bin/python3
PEER=../../peer/torch_unet3d.py
{ grep -m1 'model name' /proc/cpuinfo; grep -m1 'cpu family' /proc/cpuinfo; grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|amx_bf16)$' | tr '\n' ' '; echo; date -u; uptime; } > conditions.txt
$P $PEER --configs b --variants keep+bf16 --threads 2 --warmup 2 --iters 5 --wait-quiet 0 --json torch_b_bf16.json > torch_b_bf16.log 2>&1
./fess bench --config b --precision bf16 --threads 2 --warmup 2 --iters 5 --no-gate --json > fess_b_bf16.json 2> fess_b_bf16.log
./fess bench --config b --precision bf16 --winograd 4 --threads 2 --warmup 2 --iters 5 --no-gate --json > fess4_b_bf16.json 2> fess4_b_bf16.log
uptime >> conditions.txt
$P $PEER --configs s --variants keep+bf16 --threads 2 --warmup 1 --iters 5 --wait-quiet 0 --json torch_s_bf16.json > torch_s_bf16.log 2>&1
./fess bench --config s --precision bf16 --threads 2 --warmup 1 --iters 5 --no-gate --json > fess_s_bf16.json 2> fess_s_bf16.log
./fess bench --config s --precision bf16 --winograd 4 --threads 2 --warmup 1 --iters 5 --no-gate --json > fess4_s_bf16.json 2> fess4_s_bf16.log
uptime >> conditions.txt
$P ../session14/combine.py torch.json='torch_*.json' fess_bf16.json='fess_*_bf16.json' fess4_bf16.json='fess4_*_bf16.json'
for f in fess_bf16 fess4_bf16; do ./fess bench --results $f.json --peer torch.json; done
echo done >> conditions.txt
