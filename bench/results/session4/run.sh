#!/bin/sh
# Side by side: per config, PyTorch (keep, keep+blas512) then fess, 2 threads,
# warm-up 2, median of 5. Usage: go build -o bench/results/session4/fess ./cmd/fess;
# sh bench/results/session4/run.sh
# (writes the JSON, table.txt and conditions.txt beside this script).
set -e
cd "$(dirname "$0")"
uptime > conditions.txt
for c in a b c d; do
  /usr/bin/python3 ../../peer/torch_unet3d.py --configs $c --variants keep,keep+blas512 --threads 2 --warmup 2 --iters 5 --wait-quiet 0 --json torch_$c.json > torch_$c.log 2>&1
  ./fess bench --config $c --threads 2 --warmup 2 --iters 5 --no-gate --json > fess_$c.json 2> fess_$c.log
  uptime >> conditions.txt
done
python3 - <<'PY'
import json
t=[];f=[]
for c in "abcd":
    t+=json.load(open(f"torch_{c}.json")) if isinstance(json.load(open(f"torch_{c}.json")),list) else [json.load(open(f"torch_{c}.json"))]
    x=json.load(open(f"fess_{c}.json")); f+= x if isinstance(x,list) else [x]
json.dump(t,open("torch.json","w"),indent=1); json.dump(f,open("fess.json","w"),indent=1)
PY
./fess bench --results fess.json --peer torch.json > table.txt 2>&1
echo done >> conditions.txt
