"""Log-scale bar chart of each peer's time over this package's, per row.

    chart.py results.json chart.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display
import matplotlib.pyplot as plt

PEERS = [("memoizeFs", "memoize-fs"), ("node", "plain Node"), ("joblib", "joblib.Memory"),
         ("raw", "raw limit (bare fs / BLAKE3)"), ("memcpy", "memcpy")]

results = json.load(open(sys.argv[1]))
rows = [(rid, cells) for rid, cells in results["rows"].items() if "t" in cells.get("ours", {})]
fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 1.5))
height = 0.8 / len(PEERS)
for k, (key, name) in enumerate(PEERS):
    ys, ratios = [], []
    for i, (rid, cells) in enumerate(rows):
        if "t" in cells.get(key, {}):
            ys.append(i + (k - len(PEERS) / 2 + 0.5) * height)
            ratios.append(cells[key]["t"] / cells["ours"]["t"])
    ax.barh(ys, ratios, height=height, label=name)
ax.axvline(1, color="black", linewidth=0.8)
ax.set_xscale("log")
ax.set_yticks(range(len(rows)), [rid for rid, _ in rows])
ax.invert_yaxis()
ax.set_xlabel("peer time / this package's time (log; right of 1 = this package faster)")
ax.set_title("numpy-func-cache vs peers (medians, one run)")
ax.legend(loc="lower right", fontsize="small")
ax.grid(axis="x", which="both", alpha=0.3)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
