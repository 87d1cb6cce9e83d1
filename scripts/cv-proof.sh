#!/usr/bin/env bash
# Five-fold cross-validation of a small configuration end to end:
# prepare --folds 5, train each fold, test each fold alone and the
# five-fold ensemble (mean probabilities) on the held-out test split.
# Usage: scripts/cv-proof.sh [OUT]  (env: CASES=40 EPOCHS=40 SIZE=32)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/fess-cv-proof}
CASES=${CASES:-40}
EPOCHS=${EPOCHS:-40}
SIZE=${SIZE:-32}
mkdir -p "$OUT"
go build -o "$OUT/fess" ./cmd/fess
F="$OUT/fess"
[ -d "$OUT/raw" ] || "$F" synth --kind brain --cases "$CASES" --size 48 --seed 5 --out "$OUT/raw" --quiet
"$F" prepare --in "$OUT/raw" --out "$OUT/prep" --size "$SIZE" --modalities flair,t1,t1ce,t2 --target wt,tc,et --folds 5 --quiet
runs=""
for k in 0 1 2 3 4; do
  r="$OUT/runs/fold$k"
  [ -f "$r/test/summary.json" ] || { rm -rf "$r"; "$F" train --data "$OUT/prep" --out "$r" --loss dice --fold $k --epochs "$EPOCHS" --quiet;
                                      "$F" test --run "$r" --out "$r/test" --quiet >/dev/null; }
  runs="$runs${runs:+,}$r"
done
"$F" test --runs "$runs" --out "$OUT/ensemble" --quiet >/dev/null
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def row(name, p):
    j = json.load(open(p))
    print(f"{name:9s} " + "  ".join(f"{r} {j['regions'][r]['dice']['mean']:.3f}" for r in j["region_order"]) + f"  mean {j['metrics']['dice']['mean']:.3f}")
for k in range(5):
    row(f"fold {k}", f"{out}/runs/fold{k}/test/summary.json")
row("ensemble", f"{out}/ensemble/summary.json")
PY
