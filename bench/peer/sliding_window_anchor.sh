#!/usr/bin/env bash
# Usage: bench/peer/sliding_window_anchor.sh [--shape X,Y,Z] [--patch P] [--filters F] [--levels L] [--channels C] [--out-channels K] [--threads T]
#
# Speed anchor for whole-case sliding-window inference (package infer):
# exports a randomly initialised fess network (by default the peer's default
# stand-in: unet3d without the up-sampling BatchNorm, F=16, 4 levels, 4
# channels in, 3 regions out; BatchNorm statistics perturbed) as a PyTorch
# state_dict together with a seeded Gaussian 4×240×240×155 case, then times
# fess's infer.Probabilities and bench/peer/torch_sliding_window.py (running
# model/torch/fess_unet.py with the same weights) on it, patch 128, overlap
# 0.5, without and with 8-fold mirroring, 2 threads each, one timed run per
# tool and mode, each in its own process. Prints one JSON line per run
# (seconds, windows, peak RSS in MiB) and the largest absolute difference
# between the two tools' probabilities. fess's peak_rss_mib is VmHWM over the
# inference with the case resident (the peak is reset after loading;
# load_peak_rss_mib is the peak while loading); the peer's is ru_maxrss of
# the whole process, the PyTorch runtime (about 240 MiB) and the load's
# copies included.
#
# Needs go and /usr/bin/python3 with torch and numpy. For a quick check of
# the script itself use a small case and network, e.g.
#   bench/peer/sliding_window_anchor.sh --shape 40,28,19 --patch 16 --filters 4 --levels 2
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
shape=240,240,155 patch=128 filters=16 levels=4 channels=4 outch=3 threads=2
while [ $# -gt 0 ]; do
	case "$1" in
	--shape) shape=$2 ;;
	--patch) patch=$2 ;;
	--filters) filters=$2 ;;
	--levels) levels=$2 ;;
	--channels) channels=$2 ;;
	--out-channels) outch=$2 ;;
	--threads) threads=$2 ;;
	-h | --help) sed -n 2p "$0" >&2; exit 0 ;;
	*) echo "unknown option $1" >&2; sed -n 2p "$0" >&2; exit 2 ;;
	esac
	shift 2
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export FESS_SW_ANCHOR_DIR=$tmp FESS_SW_SHAPE=$shape FESS_SW_PATCH=$patch FESS_SW_FILTERS=$filters \
	FESS_SW_LEVELS=$levels FESS_SW_CHANNELS=$channels FESS_SW_OUT_CHANNELS=$outch FESS_SW_THREADS=$threads
(cd "$root" && go test -c -o "$tmp/infer.test" ./infer >&2)
fess() { (cd "$root/infer" && GOMAXPROCS=$threads "$tmp/infer.test" -test.run '^TestSlidingWindowAnchor$' -test.count=1 "$@"); }
FESS_SW_STEP=export fess >/dev/null
for tta in 0 1; do
	FESS_SW_STEP=run FESS_SW_TTA=$tta fess | grep '^{'
	flag=()
	[ "$tta" = 1 ] && flag=(--tta)
	/usr/bin/python3 "$root/bench/peer/torch_sliding_window.py" --module "$root/model/torch/fess_unet.py" \
		--weights "$tmp/w.safetensors" --input "$tmp/x.npy" --patch "$patch" --overlap 0.5 \
		--threads "$threads" --iters 1 --filters "$filters" --levels "$levels" \
		--channels "$channels" --out-channels "$outch" "${flag[@]}" --save "$tmp/torch_tta$tta.npy" --json "$tmp/torch_tta$tta.json" >/dev/null
	/usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$tmp/torch_tta$tta.json"
	/usr/bin/python3 -c '
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape, (a.shape, b.shape)
print("{\"tta\": %s, \"max_abs_probability_difference\": %.3g}" % (sys.argv[3], float(np.abs(a.astype(np.float64) - b).max())))
' "$tmp/fess_tta$tta.npy" "$tmp/torch_tta$tta.npy" "$([ "$tta" = 1 ] && echo true || echo false)"
done
