#!/bin/sh
# Issue-14 side-by-side, eighth session: fess (default Winograd F(2,3), and
# --winograd 4: F(4,3)) vs the PyTorch peer (bench/peer/torch_unet3d.py),
# configs a, b, c, d (forward) and s (the reference's network), fp32 and
# bf16, 2 threads each, on an otherwise idle machine, one tool after the
# other per configuration. Usage, from the repository root:
#   go build -o bench/results/session8/fess ./cmd/fess &&
#   go test -c -o bench/results/session8/kernels.test ./internal/kernels &&
#   sh bench/results/session8/run.sh [DIR]
# DIR (default: this script's folder; another folder of bench/results, as
# for the second run, bench/results/session8b) holds the binaries and
# receives torch*.json, fess*.json, the logs and conditions.txt; the script
# then prints the side-by-side tables. PEAK (a -test.bench pattern) chooses
# the peak loops recorded in peak.txt (default: the AVX2 ones). VARIANTS and
# SVARIANTS choose the peer's variants for a-d and for s (defaults
# keep,keep+blas512 and keep,keep+bf16; the fourteenth session added keep+cl3d).
set -e
cd "${1:-$(dirname "$0")}"
P=/usr/bin/python3
PEER=../../peer/torch_unet3d.py
{ grep -m1 'model name' /proc/cpuinfo; grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|amx_bf16)$' | tr '\n' ' '; echo; date -u; uptime; } > conditions.txt
# the FP32 peak of this machine now (register-only FMAs, one and two goroutines)
./kernels.test -test.run XXX -test.bench "${PEAK:-PeakFMA2?$}" -test.benchtime 2s > peak.txt 2>&1
for c in a b c d; do
  $P $PEER --configs $c --variants ${VARIANTS:-keep,keep+blas512} --threads 2 --warmup 2 --iters 5 --wait-quiet 0 --json torch_$c.json > torch_$c.log 2>&1
  ./fess bench --config $c --threads 2 --warmup 2 --iters 5 --no-gate --json > fess_$c.json 2> fess_$c.log
  ./fess bench --config $c --winograd 4 --threads 2 --warmup 2 --iters 5 --no-gate --json > fess4_$c.json 2> fess4_$c.log
  uptime >> conditions.txt
done
# bf16 on b, and config s (a step is seconds: warm-up 1, median of 5)
$P $PEER --configs b --variants keep+bf16 --threads 2 --warmup 2 --iters 5 --wait-quiet 0 --json torch_b_bf16.json > torch_b_bf16.log 2>&1
./fess bench --config b --precision bf16 --threads 2 --warmup 2 --iters 5 --no-gate --json > fess_b_bf16.json 2> fess_b_bf16.log
./fess bench --config b --precision bf16 --winograd 4 --threads 2 --warmup 2 --iters 5 --no-gate --json > fess4_b_bf16.json 2> fess4_b_bf16.log
uptime >> conditions.txt
$P $PEER --configs s --variants ${SVARIANTS:-keep,keep+bf16} --threads 2 --warmup 1 --iters 5 --wait-quiet 0 --json torch_s.json > torch_s.log 2>&1
./fess bench --config s --threads 2 --warmup 1 --iters 5 --no-gate --json > fess_s.json 2> fess_s.log
./fess bench --config s --winograd 4 --threads 2 --warmup 1 --iters 5 --no-gate --json > fess4_s.json 2> fess4_s.log
./fess bench --config s --precision bf16 --threads 2 --warmup 1 --iters 5 --no-gate --json > fess_s_bf16.json 2> fess_s_bf16.log
./fess bench --config s --precision bf16 --winograd 4 --threads 2 --warmup 1 --iters 5 --no-gate --json > fess4_s_bf16.json 2> fess4_s_bf16.log
uptime >> conditions.txt
$P - <<'PY'
import json, glob
def cat(pat, out):
    rows = []
    for f in sorted(glob.glob(pat)):
        rows += json.load(open(f))
    json.dump(rows, open(out, "w"), indent=1)
cat("torch_*.json", "torch.json")
cat("fess_[abcds].json", "fess.json")
cat("fess4_[abcds].json", "fess4.json")
cat("fess_*_bf16.json", "fess_bf16.json")
cat("fess4_*_bf16.json", "fess4_bf16.json")
PY
for f in fess fess4 fess_bf16 fess4_bf16; do ./fess bench --results $f.json --peer torch.json; done
echo done >> conditions.txt
