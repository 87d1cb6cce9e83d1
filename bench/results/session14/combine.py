"""Joins the per-configuration JSON lists of a side-by-side run into one
list per tool and setting, for `fess bench --results X --peer torch.json`.
Usage, in the run's folder: python3 combine.py OUT=PATTERN ...
(e.g. torch.json='torch_*.json' fess.json='fess_[abcds].json')."""
import glob
import json
import sys

for arg in sys.argv[1:]:
    out, pat = arg.split("=", 1)
    rows = []
    for f in sorted(glob.glob(pat)):
        rows += json.load(open(f))
    json.dump(rows, open(out, "w"), indent=1)
