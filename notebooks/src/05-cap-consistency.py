# %% [markdown]
# # 5. CAP and consistency: replication lag, read-your-writes, partitions
#
# Copies of the data let more machines serve reads and survive the loss of one, but a copy
# is always a little behind. This notebook measures how far behind (replication lag), what a
# user notices (stale reads, not seeing their own write), and what a network partition
# forces a system to choose: refuse requests (CP) or answer with what it has (AP).

# %%
import math

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import dssim_nb

# %% [markdown]
# ## Replication lag and read-your-writes
#
# `experiments/replication-lag.toml`: writes reach each replica after exp(d). Theory: the
# lag's median is d·ln 2 and its p99 d·ln 100. Three read strategies: always a replica,
# `read_your_writes(1s)` (a user's own reads go to the primary for a second after their write),
# always the primary.

# %%
rl = dssim_nb.run("replication-lag", "replications=1", "duration=15s")
pts = rl["points"].copy()
pts["d_ms"] = pts["databases.db.replication_delay"].str.extract(r"exp\((\d+)ms\)")[0].astype(float)
rep = pts[pts["databases.db.read_from"] == "replicas"]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
d = np.array([5, 300])
ax1.plot(d, d * math.log(2), "k--", lw=1, label="theory p50 = d ln 2")
ax1.plot(d, d * math.log(100), "k:", lw=1, label="theory p99 = d ln 100")
ax1.plot(rep["d_ms"], rep["repl_lag_p50_ms"], "o", label="simulated p50")
ax1.plot(rep["d_ms"], rep["repl_lag_p99_ms"], "s", label="simulated p99")
ax1.set_xlabel("mean shipping delay d (ms)")
ax1.set_ylabel("replication lag (ms)")
ax1.set_title("Replication lag")
ax1.legend(fontsize=8)
for strat, g in pts.groupby("databases.db.read_from", sort=False):
    ax2.plot(g["d_ms"], g["ryw_violations"], "o-", label=f"{strat}: read-your-writes violations")
    ax2.plot(g["d_ms"], g["stale_reads"], "x:", color=ax2.lines[-1].get_color(), label=f"{strat}: stale reads")
ax2.set_xscale("log")
ax2.set_yscale("symlog", linthresh=1)
ax2.set_xlabel("mean shipping delay d (ms)")
ax2.set_ylabel("count in the window")
ax2.set_title("What users see")
ax2.legend(fontsize=7)
dssim_nb.save(fig, "replication-lag")
print(pts[["databases.db.replication_delay", "databases.db.read_from", "repl_lag_p50_ms", "repl_lag_p99_ms",
           "stale_reads", "ryw_violations"]].round(1).to_string(index=False))
for _, r in rep.iterrows():
    assert abs(r["repl_lag_p50_ms"] / (r["d_ms"] * math.log(2)) - 1) < 0.15
ryw = pts.groupby("databases.db.read_from")["ryw_violations"].sum()
assert ryw["read_your_writes(1s)"] == 0 and ryw["primary"] == 0 and ryw["replicas"] > 0
assert pts[pts["databases.db.read_from"] == "primary"]["stale_reads"].sum() == 0

# %% [markdown]
# `read_your_writes(1s)` removes the violations a user would report ("I saved it and it is
# gone") at the price of sending some reads to the primary; other users may still read stale
# data. Only reading from the primary (or synchronous replication) removes staleness.

# %% [markdown]
# ## CAP under a partition
#
# `experiments/cap.toml` (models/two-region.toml): the primary in us-east, both replicas in
# eu-west, and no link between the regions from 60 s to 120 s. Under `ap` each side keeps
# serving: eu reads are stale and writes on both sides conflict. Under `cp` a node serves
# only with a majority of its shard; the primary is alone, so writes fail everywhere and
# reads need the majority side.

# %%
cap = dssim_nb.run("cap", "replications=1", "duration=150s")
ts, runs = cap["timeseries"], cap["runs"].set_index("run")
fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
for run, g in ts.groupby("run"):
    mode = runs.loc[run, "databases.db.consistency"]
    ax1.plot(g["t_s"], g["rps"] / g["arrivals_rps"], label=mode)
    ax2.plot(g["t_s"], g["repl_lag_ms"], label=mode)
for ax in (ax1, ax2):
    ax.axvspan(60, 120, color="red", alpha=0.1, label="partition")
ax1.set_ylabel("ok / arrivals")
ax1.set_title("Availability and replication lag across a partition")
ax1.legend(fontsize=8)
ax2.set_yscale("log")
ax2.set_ylabel("replication lag (ms)")
ax2.set_xlabel("time (s)")
dssim_nb.save(fig, "cap-timeline")
summary = runs[["databases.db.consistency", "availability", "stale_reads", "write_conflicts", "repl_lag_p99_ms"]]
print(summary.round(3).to_string(index=False))

# %%
fig, ax = plt.subplots(figsize=(5, 3.8))
for _, r in summary.iterrows():
    ax.scatter(r["availability"], r["stale_reads"], s=80)
    ax.annotate(r["databases.db.consistency"], (r["availability"], r["stale_reads"]), textcoords="offset points", xytext=(8, 0))
ax.set_xlabel("availability")
ax.set_ylabel("stale reads")
ax.set_title("Pick one during a partition")
dssim_nb.save(fig, "cap-tradeoff")
s = summary.set_index("databases.db.consistency")
assert s.loc["ap", "availability"] > 0.99 and s.loc["ap", "stale_reads"] > 0 and s.loc["ap", "write_conflicts"] > 0
assert s.loc["cp", "availability"] < 0.8 and s.loc["cp", "stale_reads"] == 0

# %% [markdown]
# The lag under `ap` shoots up when the partition heals: the whole backlog of a minute is
# shipped at once. Under `cp` there is nothing to ship (the minority refused the writes).
