#!/bin/bash
# Issue 14's bf16 accuracy check on the demo's own recipe (fourteenth
# session): the full `fess demo` plan as scripts/fess-vs-dice-3seeds.sh runs
# it for three seeds: synthetic brain phantoms (70 cases at 48³, data seed
# 11), prepared to 32³ (whole tumour), 48 training cases, 14 test cases,
# F=8, 3 levels, 30 epochs, batch 2, Adam 2e-3, best validation checkpoint,
# Dice and FESS losses, seeds 1-3, each in fp32 and with --precision bf16
# (the two precisions side by side, 1 thread each).
# Usage, from the repository root:
#   go build -o /tmp/fess ./cmd/fess && bash bench/results/session14/bf16_dice_check.sh
# Output: one line per training (test Dice, mean over the 14 test cases),
# then the mean over seeds per loss and precision.
set -e
B=${FESS:-/tmp/fess}
W=${WORK:-/tmp/bf16demo}
mkdir -p $W
[ -f $W/raw/.done ] || { $B synth --kind brain --cases 70 --size 48 --seed 11 --out $W/raw && touch $W/raw/.done; }
[ -f $W/prep/manifest.json ] || $B prepare --in $W/raw --out $W/prep --size 32 --quiet
one() { # loss seed precision
  O=$W/$1-s$2-$3
  rm -rf $O
  $B train --data $W/prep --out $O --loss $1 --seed $2 --train-cases 48 --filters 8 --levels 3 --epochs 30 --batch 2 --lr 2e-3 --threads 1 --precision $3 --quiet >/dev/null
  $B test --run $O --out $O/test --quiet >/dev/null
}
for s in ${SEEDS:-1 2 3}; do
  for l in dice fess; do
    one $l $s fp32 & one $l $s bf16 & wait
  done
done
python3 - "$W" ${SEEDS:-1 2 3} <<'PY'
import json, sys
w, seeds = sys.argv[1], sys.argv[2:]
for l in ("dice", "fess"):
    m = {}
    for p in ("fp32", "bf16"):
        v = [json.load(open(f"{w}/{l}-s{s}-{p}/test/summary.json"))["metrics"]["dice"]["mean"] for s in seeds]
        m[p] = sum(v) / len(v)
        print(f"{l} {p}: " + " ".join(f"seed {s} {x:.4f}" for s, x in zip(seeds, v)) + f"  mean {m[p]:.4f}")
    print(f"{l} bf16 - fp32: {m['bf16'] - m['fp32']:+.4f}")
PY
