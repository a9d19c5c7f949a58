# Summarises `ncu --csv --metrics gpu__time_duration.sum` output (file argument): GPU time per kernel.
import csv, sys, collections
tot = collections.Counter(); cnt = collections.Counter()
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
for r in csv.DictReader(rows):
    if r.get("Metric Name") != "gpu__time_duration.sum": continue
    name = r["Kernel Name"].split("(")[0][:70]
    tot[name] += float(r["Metric Value"].replace(",", "")); cnt[name] += 1
all_ns = sum(tot.values())
print(f"{sys.argv[1]}: {sum(cnt.values())} kernels, {all_ns/1e6:.2f} ms GPU time")
for k, v in tot.most_common(25):
    print(f"{v/1e6:9.3f} ms {100*v/all_ns:5.1f}% {cnt[k]:5d}x  {k}")
