"""Exact fess / PyTorch ratios of a side-by-side run (the tables round to
two digits): for each fess result, its median step (d: forward) over the
peer's fastest variant of the same configuration and precision (bf16 only
against keep+bf16), and fess's peak RSS. Usage, from the repository root:
    python3 bench/results/session14/ratios.py bench/results/DIR fess.json fess4.json ..."""
import json, sys, os
os.chdir(sys.argv[1])
t=json.load(open("torch.json"))
best={}
for r in t:
    c=r["config"]; v=r["variant"]; x=r["fwd_med"] if c=="d" else r["train_med"]
    best.setdefault((c, v=="keep+bf16"),[]).append((x,v))
for f in sys.argv[2:]:
    for r in json.load(open(f)):
        c=r["config"]; bf=r["precision"]=="bf16"
        x=r["forward_seconds_median"] if c=="d" else r["step_seconds_median"]
        p=min(best[(c,bf)])
        print(f, c, round(x,4), p, round(x/p[0],3), r["peak_rss_mib"])
