#!/bin/sh
# Issue-14 side-by-side with both tools held to AVX2 on an AVX-512 CPU
# (fourteenth session, AMD EPYC Zen 4): a stand-in for an AVX2-only machine
# until a session draws one, NOT a measurement of one (clocks, caches and
# the FMA units are this CPU's). fess runs with FESS_AVX512=0 (its AVX2
# kernels, the ones an AVX2-only CPU selects); PyTorch with
# ONEDNN_MAX_CPU_ISA=AVX2 (oneDNN's AVX2 code), OPENBLAS_CORETYPE=Haswell
# (OpenBLAS's AVX2 kernels) and ATEN_CPU_CAPABILITY=avx2 (ATen's, already
# AVX2 in Debian's build), variant keep. fp32 only (no AVX2-only CPU has
# bfloat16 dot products). Usage, from the repository root:
#   go build -o bench/results/DIR/fess ./cmd/fess &&
#   go test -c -o bench/results/DIR/kernels.test ./internal/kernels &&
#   sh bench/results/session14/run_avx2.sh bench/results/DIR
set -e
cd "${1:?usage: run_avx2.sh bench/results/DIR}"
P=/usr/bin/python3
PEER=../../peer/torch_unet3d.py
export FESS_AVX512=0
TENV="ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2"
{ grep -m1 'model name' /proc/cpuinfo; grep -m1 'cpu family' /proc/cpuinfo; grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|amx_bf16)$' | tr '\n' ' '; echo; echo "FESS_AVX512=0 $TENV"; date -u; uptime; } > conditions.txt
./kernels.test -test.run XXX -test.bench 'PeakFMA2?$' -test.benchtime 2s > peak.txt 2>&1
for c in a b c d; do
  env $TENV $P $PEER --configs $c --variants keep --threads 2 --warmup 2 --iters 5 --wait-quiet 0 --json torch_$c.json > torch_$c.log 2>&1
  ./fess bench --config $c --threads 2 --warmup 2 --iters 5 --no-gate --json > fess_$c.json 2> fess_$c.log
  ./fess bench --config $c --winograd 4 --threads 2 --warmup 2 --iters 5 --no-gate --json > fess4_$c.json 2> fess4_$c.log
  uptime >> conditions.txt
done
env $TENV $P $PEER --configs s --variants keep --threads 2 --warmup 1 --iters 5 --wait-quiet 0 --json torch_s.json > torch_s.log 2>&1
./fess bench --config s --threads 2 --warmup 1 --iters 5 --no-gate --json > fess_s.json 2> fess_s.log
./fess bench --config s --winograd 4 --threads 2 --warmup 1 --iters 5 --no-gate --json > fess4_s.json 2> fess4_s.log
uptime >> conditions.txt
$P ../session14/combine.py torch.json='torch_*.json' fess.json='fess_[abcds].json' fess4.json='fess4_[abcds].json'
for f in fess fess4; do ./fess bench --results $f.json --peer torch.json; done
echo done >> conditions.txt
