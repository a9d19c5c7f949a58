"""Writes stats_reference.json: independent reference values for dfr-metrics' seed statistics.

Run with numpy + scipy (scipy 1.17.1, numpy 2.x were used):
    python make_stats_reference.py > stats_reference.json
Values come from scipy.stats directly (t.ppf, wilcoxon exact) and from a brute-force
enumeration of sign patterns written here from the definition, not from dfr-metrics.
"""
import itertools, json
import numpy as np
from scipy import stats

rng = np.random.default_rng(20261201)

def sign_flip(d):
    d = np.asarray(d, float); n = len(d); obs = abs(d.mean())
    hits = 0
    for s in itertools.product([1.0, -1.0], repeat=n):
        if abs((np.array(s) * d).mean()) >= obs - 1e-12:
            hits += 1
    return hits / 2 ** n

t_quantiles = [
    {"p": p, "df": df, "t": float(stats.t.ppf(p, df))}
    for p in (0.5, 0.8, 0.9, 0.975, 0.995, 0.025)
    for df in (1, 2, 3, 5, 7, 11, 30, 200)
]

paired = []
for n, shift, ties in [(6, 0.01, False), (7, 0.0, False), (9, 0.02, True), (12, -0.01, True), (16, 0.005, False)]:
    a = rng.uniform(0.5, 0.9, n)
    b = a + shift + rng.normal(0, 0.02, n)
    if ties:  # rounded differences: equal |d| with both signs, and one zero
        a = np.round(a, 2); b = np.round(b, 2); b[0] = a[0]
    d = b - a
    nz = d[d != 0]
    entry = {
        "a": a.tolist(), "b": b.tolist(),
        "diff_mean": float(d.mean()), "diff_sd": float(d.std(ddof=1)),
        "t_ci95": [float(x) for x in stats.t.interval(0.95, n - 1, loc=d.mean(), scale=d.std(ddof=1) / np.sqrt(n))],
        "sign_flip_p": sign_flip(d),
    }
    # scipy's exact Wilcoxon assumes no ties; with ties the reference is the exact
    # conditional distribution of the average ranks under random signs (enumerated here).
    ranks = stats.rankdata(np.abs(nz))
    w = ranks[nz > 0].sum()
    if len(set(np.abs(nz))) == len(nz) and len(nz) == n:
        entry["wilcoxon_p"] = float(stats.wilcoxon(b, a, method="exact").pvalue)
        entry["wilcoxon_source"] = "scipy.stats.wilcoxon(b, a, method='exact')"
    else:
        sums = [sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([True, False], repeat=len(nz))]
        below = np.mean([x <= w + 1e-9 for x in sums]); above = np.mean([x >= w - 1e-9 for x in sums])
        entry["wilcoxon_p"] = float(min(1.0, 2 * min(below, above)))
        entry["wilcoxon_source"] = "enumeration of signs over average ranks, zeros dropped"
    paired.append(entry)

print(json.dumps({"t_quantiles": t_quantiles, "paired": paired}, indent=1))
