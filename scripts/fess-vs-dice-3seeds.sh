#!/bin/bash
# Issue 4 proof: FESS and Dice on synthetic brain, 48 training cases, 32^3, F=8, 3 seeds.
# Usage: go build -o fess ./cmd/fess && mkdir -p out && cd out && FESS=../fess ../scripts/fess-vs-dice-3seeds.sh
# Measured 2026-11-28 on 2 shared cores: test Dice FESS 0.892 ± 0.003, Dice 0.890 ± 0.003 (mean ± SEM over seeds 1-3, 14 test cases each).
set -e
F=${FESS:-./fess}
[ -f raw/.done ] || { $F synth --kind brain --cases 70 --size 48 --seed 11 --out raw && touch raw/.done; }
$F prepare --in raw --out prep --size 32 --quiet
for seed in 1 2 3; do
  for loss in fess dice; do
    run=runs/$loss-s$seed
    if [ ! -f $run/test/summary.json ]; then
      if [ -f $run/last.ckpt ]; then R=--resume; else R=; fi
      $F train --data prep --out $run --loss $loss --seed $seed --train-cases 48 --filters 8 --levels 3 --epochs 30 --batch 2 --lr 2e-3 --quiet $R
      $F test --run $run --out $run/test --quiet > $run/test.txt
    fi
    echo "$loss seed $seed: $(grep '^dice ' $run/test.txt)"
  done
done
