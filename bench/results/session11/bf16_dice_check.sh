#!/bin/bash
# Issue 14's bf16 accuracy check, eleventh session (AMD EPYC Zen 5): test
# Dice of fp32 and --precision bf16 trainings on synthetic brain phantoms
# (40 cases at 48³ prepared to 32³: train 28, val 4, test 8), 40 epochs,
# F=8, 3 levels, Adam 1e-3, batch 2, 1 thread each (two trainings at a
# time), seeds 1-3, Dice and FESS losses; best validation checkpoint.
# Usage, from the repository root:
#   go build -o /tmp/fess ./cmd/fess && bash bench/results/session11/bf16_dice_check.sh
# SEEDS="4 5 6" runs other seeds (the twelfth session ran 1-3, then 4-6).
# Output: one line per run.
set -e
B=${FESS:-/tmp/fess}
W=${WORK:-/tmp/bf16check}
mkdir -p $W
[ -f $W/prep/manifest.json ] || {
  $B synth --kind brain --layout brats2017 --cases 40 --size 48 --seed 42 --out $W/raw
  $B prepare --in $W/raw --out $W/prep --size 32 --quiet
}
one() { # loss seed precision
  O=$W/$1-s$2-$3
  rm -rf $O
  $B train --data $W/prep --out $O --loss $1 --filters 8 --levels 3 --epochs 40 --batch 2 --lr 1e-3 --seed $2 --threads 1 --precision $3 --quiet >/dev/null
  $B test --run $O --out $O/test --quiet >/dev/null
  python3 -c "import json;print('$1 seed $2 $3', json.load(open('$O/test/summary.json'))['metrics']['dice']['mean'])"
}
for s in ${SEEDS:-1 2 3}; do
  for l in dice fess; do
    one $l $s fp32 & one $l $s bf16 & wait
  done
done
