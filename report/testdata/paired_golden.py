#!/usr/bin/python3
"""Writes paired_golden.json: reference values for report.PairedComparison.

Run with Debian's python3 + python3-scipy (not run in CI):
    /usr/bin/python3 report/testdata/paired_golden.py

For each case it records the mean difference of d = a - b, the 95% t interval
scipy.stats.t.interval(0.95, n-1, loc=mean, scale=sem), and
scipy.stats.wilcoxon(a, b, zero_method="wilcox", correction=True, mode=M)
where M is "exact" when there are no zeros, no ties and n <= 50, else
"approx" (the rule report.PairedComparison documents; scipy's own "auto"
would run its exact branch on tied data, which mis-handles half ranks).
"""
import json
import os

import numpy as np
import scipy
from scipy import stats


def case(name, a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    d = a - b
    n = len(d)
    nz = d[d != 0]
    ties = len(np.unique(np.abs(nz))) != len(nz)
    exact = (len(nz) == n) and not ties and n <= 50
    res = stats.wilcoxon(a, b, zero_method="wilcox", correction=True,
                         alternative="two-sided",
                         mode="exact" if exact else "approx")
    mean = float(np.mean(d))
    sem = float(stats.sem(d))
    lo, hi = stats.t.interval(0.95, n - 1, loc=mean, scale=sem)
    return dict(name=name, a=a.tolist(), b=b.tolist(), mean_diff=mean,
                ci_low=float(lo), ci_high=float(hi), w=float(res.statistic),
                p=float(res.pvalue), exact=bool(exact),
                zeros=int(np.sum(d == 0)))


rng = np.random.default_rng(20261127)
cases = []
# Dice-like scores of two losses on the same cases, no ties: exact branch.
for n in (6, 10, 20, 30, 50):
    base = rng.uniform(0.5, 0.9, n)
    cases.append(case(f"exact_n{n}", base + rng.normal(0.02, 0.05, n), base))
# Large n: normal approximation without ties.
base = rng.uniform(0.5, 0.9, 80)
cases.append(case("approx_n80", base + rng.normal(0.01, 0.04, 80), base))
# Scores rounded to two decimals: ties and zeros, approximation branch.
base = np.round(rng.uniform(0.5, 0.9, 25), 2)
cases.append(case("ties_zeros_n25", np.round(base + rng.normal(0.0, 0.03, 25), 2), base))
base = np.round(rng.uniform(0.5, 0.9, 40), 2)
cases.append(case("ties_n40", np.round(base + rng.normal(0.03, 0.03, 40), 2) + 0.001, base))
# Zeros but no ties among the non-zero differences.
a = [0.7, 0.8, 0.65, 0.9, 0.72, 0.61, 0.83, 0.77, 0.69, 0.88, 0.74, 0.66]
b = [0.7, 0.75, 0.66, 0.9, 0.70, 0.58, 0.78, 0.71, 0.73, 0.80, 0.745, 0.59]
cases.append(case("zeros_n12", a, b))
# Every difference positive: smallest exact p for n = 8 (2/256).
cases.append(case("all_positive_n8", [i + 1.5 + 0.01 * i for i in range(8)],
                  [float(i) for i in range(8)]))
# W+ at the centre of the distribution: p = 1.
cases.append(case("centre_n3", [1.0, 2.0, 0.0], [0.0, 0.0, 3.0]))

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paired_golden.json")
with open(out, "w") as f:
    json.dump(dict(scipy=scipy.__version__,
                   cases=cases), f, indent=1)
print("wrote", out, len(cases), "cases")
