#!/usr/bin/env bash
# Multi-channel proof (closing note of the "real tasks" work):
#  1. synthetic four-modality brain data: flair,t1,t1ce,t2 vs flair alone,
#     both with --target wt,tc,et, same recipe, SEEDS seeds;
#  2. synthetic AbdomenCT-1K: --classes liver,kidney,spleen,pancreas, SEEDS seeds.
# Prints per-region test Dice mean ± SEM (from each run's summary.json).
# Usage: scripts/channels-proof.sh [OUT] (env: SEEDS="1 2 3" EPOCHS=40 CASES=40)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/fess-channels-proof}
SEEDS=${SEEDS:-1 2 3}
EPOCHS=${EPOCHS:-40}
CASES=${CASES:-40}
go build -o "$OUT/fess" ./cmd/fess
F="$OUT/fess"
[ -d "$OUT/brain-raw" ] || "$F" synth --kind brain --cases "$CASES" --size 48 --seed 7 --out "$OUT/brain-raw" --quiet
[ -d "$OUT/abd-raw" ] || "$F" synth --kind abdomen --cases "$CASES" --size 48 --seed 7 --out "$OUT/abd-raw" --quiet
"$F" prepare --in "$OUT/brain-raw" --out "$OUT/brain-4ch" --size 32 --modalities flair,t1,t1ce,t2 --target wt,tc,et --quiet
"$F" prepare --in "$OUT/brain-raw" --out "$OUT/brain-flair" --size 32 --modalities flair --target wt,tc,et --quiet
"$F" prepare --in "$OUT/abd-raw" --out "$OUT/abd" --size 32 --classes liver,kidney,spleen,pancreas --quiet
for s in $SEEDS; do
  for d in brain-4ch brain-flair abd; do
    r="$OUT/runs/$d/s$s"
    [ -f "$r/test/summary.json" ] && continue
    rm -rf "$r"
    "$F" train --data "$OUT/$d" --out "$r" --loss dice --epochs "$EPOCHS" --seed "$s" --quiet
    "$F" test --run "$r" --out "$r/test" >/dev/null
  done
done
/usr/bin/python3 - "$OUT" "$SEEDS" <<'PY'
import json, math, sys
out, seeds = sys.argv[1], sys.argv[2].split()
for d in ["brain-4ch", "brain-flair", "abd"]:
    per = {}
    for s in seeds:
        j = json.load(open(f"{out}/runs/{d}/s{s}/test/summary.json"))
        for r in j["region_order"]:
            per.setdefault(r, []).append(j["regions"][r]["dice"]["mean"])
    cells = []
    for r, v in per.items():
        m = sum(v) / len(v)
        sem = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v)) if len(v) > 1 else float("nan")
        cells.append(f"{r} {m:.3f} ± {sem:.3f}")
    print(f"{d:12s} " + "   ".join(cells) + "   (per seed: " + "; ".join(f"{r} " + ",".join(f"{x:.3f}" for x in v) for r, v in per.items()) + ")")
PY
