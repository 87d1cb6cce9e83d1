#!/bin/sh
# Issue-14 side-by-side, eleventh session (the first on AMD Zen 5): the
# eighth session's script (bench/results/session8/run.sh) with the AVX-512
# FMA peak loops recorded in peak.txt as well as the AVX2 ones (on Zen 5 the
# 16-lane loop runs twice the 8-lane rate). Usage, from the repository root:
#   go build -o bench/results/DIR/fess ./cmd/fess &&
#   go test -c -o bench/results/DIR/kernels.test ./internal/kernels &&
#   sh bench/results/session11/run.sh bench/results/DIR
PEAK='PeakFMA(2|512|512x2)?$' exec sh "$(dirname "$0")/../session8/run.sh" "${1:?usage: run.sh bench/results/DIR}"
