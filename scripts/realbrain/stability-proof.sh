#!/usr/bin/env bash
# Seed-stability proof on the real-anatomy Colin27 benchmark
# (scripts/realbrain/make_colin27_brats.py; see scripts/realbrain/README.md):
#  1. generates the data set once (CASES cases, data seed DATASEED) unless OUT/raw
#     is complete, and prepares it: 32³ cubes, FLAIR, --target wt;
#  2. trains and tests every recipe × loss × seed, JOBS runs at a time, each
#     with --threads 1 (train and test);
#  3. prints a markdown table per recipe × loss: mean, standard deviation
#     (n−1) and minimum over seeds of the test whole-tumour Dice (each run's
#     test/summary.json), the per-seed values and the mean seconds per epoch.
# A recipe is a name with a set of extra `fess train` flags, passed as
# RECIPE_<name>; "current" (the default recipe) has none unless RECIPE_current
# is set. Flags are passed through unchanged, so any flag fess train accepts works.
# TEST_CHECKPOINT, when set, is passed as `fess test --checkpoint`;
# TEST_CHECKPOINT_<name> overrides it for one recipe (set it empty for none);
# TESTFLAGS_<name> adds any other `fess test` flags for that recipe.
# A finished run (same train flags and epochs) is not retrained and a finished
# test (same test flags) not redone, so a killed proof resumes by running it
# again, and changing only the test flags re-tests without retraining.
#
# Usage: scripts/realbrain/stability-proof.sh [OUT]
#   env: SEEDS="1 2 3 4 5" EPOCHS=150 LOSSES="dice fess" RECIPES="current"
#        JOBS=2 CASES=48 DATASEED=2021 FESS=(prebuilt binary; default: go build)
# Example:
#   RECIPES="current stable" RECIPE_stable="--lr-schedule poly --augment --ema 0.999" \
#     TEST_CHECKPOINT_stable=ema scripts/realbrain/stability-proof.sh /tmp/realbrain
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-/tmp/fess-realbrain-proof}
SEEDS=${SEEDS:-1 2 3 4 5}
EPOCHS=${EPOCHS:-150}
LOSSES=${LOSSES:-dice fess}
RECIPES=${RECIPES:-current}
JOBS=${JOBS:-2}
CASES=${CASES:-48}
DATASEED=${DATASEED:-2021}
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
if [ -n "${FESS:-}" ]; then
  F=$FESS
else
  go build -o "$OUT/fess" ./cmd/fess
  F="$OUT/fess"
fi
for rc in $RECIPES; do
  [[ $rc =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "recipe name '$rc' must be a shell identifier" >&2; exit 2; }
done

# 1. data (colin27_brats.json is written last: without it the folder is incomplete).
# RAW=DIR uses that raw data set instead (any layout fess prepare reads, e.g. the
# synthetic phantoms of `fess synth --kind brain`), for the same comparison elsewhere.
RAWDIR=${RAW:-$OUT/raw}
if [ -n "${RAW:-}" ]; then
  [ -d "$RAW" ] || { echo "RAW=$RAW is not a folder" >&2; exit 2; }
elif [ ! -f "$OUT/raw/colin27_brats.json" ]; then
  rm -rf "$OUT/raw"
  t0=$SECONDS
  /usr/bin/python3 scripts/realbrain/make_colin27_brats.py --out "$OUT/raw" --cases "$CASES" --seed "$DATASEED" --quiet
  echo "generated $CASES cases in $((SECONDS - t0)) s" >&2
fi
"$F" prepare --in "$RAWDIR" --out "$OUT/prep" --size 32 --modalities flair --target wt --quiet

# 2. runs
train_flags() { local v="RECIPE_$1"; printf '%s' "${!v-}"; }
test_flags() {
  local v="TEST_CHECKPOINT_$1" w="TESTFLAGS_$1" ck
  if [ -n "${!v+x}" ]; then ck=${!v}; else ck=${TEST_CHECKPOINT:-}; fi
  printf '%s' "${ck:+--checkpoint $ck }${!w-}"
}
run_one() {
  local recipe=$1 loss=$2 seed=$3
  local r="$OUT/runs/$recipe/$loss/s$seed" log="$OUT/logs/$recipe-$loss-s$seed.log"
  local tf; tf=$(train_flags "$recipe")
  local xf; xf=$(test_flags "$recipe")
  local tsig="epochs=$EPOCHS train: $tf" xsig="test: $xf"
  local -a ta xa
  read -ra ta <<<"$tf"
  read -ra xa <<<"$xf"
  local t0=$SECONDS
  # train unless a finished run with the same flags is there
  if [ "$(cat "$r/train.txt" 2>/dev/null)" != "$tsig" ]; then
    rm -rf "$r"; mkdir -p "$(dirname "$r")"
    if ! "$F" train --data "$OUT/prep" --out "$r" --loss "$loss" --epochs "$EPOCHS" --seed "$seed" --threads 1 --quiet "${ta[@]}" >"$log" 2>&1; then
      echo "FAILED train $recipe $loss s$seed: $(grep -m1 . "$log") (log: $log)" >&2
      return 1
    fi
    printf '%s' "$tsig" >"$r/train.txt"
  elif [ -f "$r/test/summary.json" ] && [ "$(cat "$r/test.txt" 2>/dev/null)" = "$xsig" ]; then
    return 0
  fi
  rm -rf "$r/test" "$r/test.txt"
  if ! "$F" test --run "$r" --out "$r/test" --threads 1 --quiet "${xa[@]}" >>"$log" 2>&1; then
    echo "FAILED test $recipe $loss s$seed: $(grep -m1 'fess test' "$log" || tail -1 "$log") (log: $log)" >&2
    return 1
  fi
  printf '%s' "$xsig" >"$r/test.txt"
  echo "done $recipe $loss s$seed in $((SECONDS - t0)) s" >&2
}
for recipe in $RECIPES; do
  for seed in $SEEDS; do
    for loss in $LOSSES; do
      while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
      run_one "$recipe" "$loss" "$seed" &
    done
  done
done
wait


# 3. table (exit status 1 when a run has no test/summary.json)
/usr/bin/python3 - "$OUT" "$RECIPES" "$LOSSES" "$SEEDS" "$EPOCHS" "$RAWDIR" <<'PY'
import json, math, os, sys
out, recipes, losses, seeds, epochs, rawdir = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split(), sys.argv[5], sys.argv[6]
missing = 0
if os.path.exists(f"{rawdir}/colin27_brats.json"):
    raw = json.load(open(f"{rawdir}/colin27_brats.json"))
    print(f"\nColin27 real-anatomy benchmark: {raw['summary']['cases']} cases, {'x'.join(map(str, raw['shape']))} at "
          f"{raw['spacing_mm']} mm, data seed {raw['options']['seed']}; prepared 32³, FLAIR, wt; {epochs} epochs\n")
else:
    print(f"\nData set {rawdir}; prepared 32³, FLAIR, wt; {epochs} epochs\n")
print("| recipe | loss | n | mean Dice | std | min | per seed | s/epoch |")
print("|---|---|---|---|---|---|---|---|")
for rc in recipes:
    for loss in losses:
        vals, secs = [], []
        for s in seeds:
            r = f"{out}/runs/{rc}/{loss}/s{s}"
            try:
                j = json.load(open(f"{r}/test/summary.json"))
            except (OSError, ValueError):
                vals.append(None)
                continue
            m = j.get("metrics", {}).get("dice") or j["regions"]["wt"]["dice"]
            vals.append(m["mean"])
            try:
                ep = [json.loads(l) for l in open(f"{r}/log.jsonl") if l.strip()]
                secs += [e["seconds"] for e in ep if "seconds" in e]
            except OSError:
                pass
        v = [x for x in vals if x is not None]
        n = len(v)
        mean = f"{sum(v) / n:.3f}" if n else "–"
        sd = f"{math.sqrt(sum((x - sum(v) / n) ** 2 for x in v) / (n - 1)):.3f}" if n > 1 else "–"
        mn = f"{min(v):.3f}" if v else "–"
        per = ", ".join("–" if x is None else f"{x:.3f}" for x in vals)
        spe = f"{sum(secs) / len(secs):.2f}" if secs else "–"
        print(f"| {rc} | {loss} | {n} | {mean} | {sd} | {mn} | {per} | {spe} |")
        missing += len(vals) - n
if missing:
    print(f"\n{missing} run(s) missing: see {out}/logs/", file=sys.stderr)
    sys.exit(1)
PY
