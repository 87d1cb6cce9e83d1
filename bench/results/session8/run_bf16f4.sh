#!/bin/sh
# Addendum to run.sh at the commit that added the F(4,3) bfloat16-pairs input
# transform: bf16 with --winograd 4 on b and s against the peer's keep+bf16,
# same run. Build as in run.sh (into fess-pairs), then:
#   sh bench/results/session8/run_bf16f4.sh
set -e
cd "$(dirname "$0")"
P=/usr/bin/python3
PEER=../../peer/torch_unet3d.py
{ date -u; uptime; } > conditions_bf16f4.txt
./kernels.test -test.run XXX -test.bench 'PeakFMA2$' -test.benchtime 2s > peak_bf16f4.txt 2>&1
$P $PEER --configs b --variants keep+bf16 --threads 2 --warmup 2 --iters 5 --wait-quiet 0 --json pairs_torch_b_bf16.json > pairs_torch_b_bf16.log 2>&1
./fess-pairs bench --config b --precision bf16 --winograd 4 --threads 2 --warmup 2 --iters 5 --no-gate --json > pairs_fess4_b_bf16.json 2> pairs_fess4_b_bf16.log
$P $PEER --configs s --variants keep+bf16 --threads 2 --warmup 1 --iters 5 --wait-quiet 0 --json pairs_torch_s_bf16.json > pairs_torch_s_bf16.log 2>&1
./fess-pairs bench --config s --precision bf16 --winograd 4 --threads 2 --warmup 1 --iters 5 --no-gate --json > pairs_fess4_s_bf16.json 2> pairs_fess4_s_bf16.log
uptime >> conditions_bf16f4.txt
$P - <<'PY'
import json
for a, b in (("pairs_torch_b_bf16.json", "pairs_torch_s_bf16.json"), ("pairs_fess4_b_bf16.json", "pairs_fess4_s_bf16.json")):
    rows = json.load(open(a)) + json.load(open(b))
    json.dump(rows, open(a.replace("_b_", "_"), "w"), indent=1)
PY
./fess-pairs bench --results pairs_fess4_bf16.json --peer pairs_torch_bf16.json
