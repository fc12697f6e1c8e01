# %% [markdown]
# # 5. CAP and consistency: replication lag, read-your-writes, partitions
#
# Copies of the data let more machines serve reads and survive the loss of one, but a copy
# is always a little behind. This notebook measures how far behind (replication lag), what a
# user notices (stale reads, not seeing their own write), and what a network partition
# forces a system to choose: refuse requests (CP) or answer with what it has (AP).
#
# Each section asks a question first: write your guess in its `my_prediction = None` cell
# before running the experiment; the check cell after the figure says how close you were.

# %%
import math

%matplotlib inline
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import dssim_nb

# %% [markdown]
# ## Replication lag and read-your-writes
#
# `experiments/replication-lag.toml`: writes reach each replica after a random delay,
# exponentially distributed with mean d. Three read strategies: always a replica,
# `read_your_writes(1s)` (a user's own reads go to the primary for a second after their write),
# always the primary.
#
# **Predict:** with a mean shipping delay d = 100 ms, what is the median replication lag in
# ms?

# %%
my_prediction = None  # ms, e.g. 100

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
dssim_nb.label(ax1, "mean shipping delay d (ms)", "replication lag (ms)",
               "The lag follows the theory: p50 = d ln 2, p99 = d ln 100", legend=True)
for strat, g in pts.groupby("databases.db.read_from", sort=False):
    ax2.plot(g["d_ms"], g["ryw_violations"], "o-", label=f"{strat}: read-your-writes violations")
    ax2.plot(g["d_ms"], g["stale_reads"], "x:", color=ax2.lines[-1].get_color(), label=f"{strat}: stale reads")
dssim_nb.label(ax2, "mean shipping delay d (ms)", "count in the window",
               "Only reads from replicas break read-your-writes", xscale="log",
               yscale=("symlog", {"linthresh": 1}), legend=True)
dssim_nb.finish(fig, "replication-lag")
dssim_nb.check(my_prediction, rep.set_index("d_ms").loc[100, "repl_lag_p50_ms"], "ms")
print(pts[["databases.db.replication_delay", "databases.db.read_from", "repl_lag_p50_ms", "repl_lag_p99_ms",
           "stale_reads", "ryw_violations"]].round(1).to_string(index=False))
for _, r in rep.iterrows():
    assert abs(r["repl_lag_p50_ms"] / (r["d_ms"] * math.log(2)) - 1) < 0.15
ryw = pts.groupby("databases.db.read_from")["ryw_violations"].sum()
assert ryw["read_your_writes(1s)"] == 0 and ryw["primary"] == 0 and ryw["replicas"] > 0
assert pts[pts["databases.db.read_from"] == "primary"]["stale_reads"].sum() == 0

# %% [markdown]
# The lag is the shipping delay itself: exponential with mean d, so its median is d·ln 2
# (69 ms at d = 100 ms) and its p99 d·ln 100.

# %% [markdown]
# `read_your_writes(1s)` removes the violations a user would report ("I saved it and it is
# gone") at the price of sending some reads to the primary; other users may still read stale
# data. Only reading from the primary (or synchronous replication) removes staleness.

# %% [markdown]
# ## CAP under a partition
#
# `experiments/cap.toml` (models/two-region.toml): the primary in us-east, both replicas in
# eu-west, and no link between the regions from 60 s to 120 s. Under `ap` each side keeps
# serving: eu reads are stale and writes on both sides conflict. Under `cp` only a primary
# that reaches a majority of its shard serves, and a majority that has lost sight of its
# primary elects a new one among its nodes after an election timeout of 1 s.
#
# **Predict:** under `cp`, what share of all requests in the measured window (availability,
# 0 to 1) succeeds?

# %%
my_prediction = None  # availability under cp, e.g. 0.95

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
ax1.set_ylabel("answered / arrived")
ax1.set_title("During the partition (shaded) cp closes the cut-off side; ap answers everywhere")
ax1.legend()
ax2.set_yscale("log")
ax2.set_ylabel("replication lag (ms)")
ax2.set_xlabel("time (s)")
dssim_nb.finish(fig, "cap-timeline")
summary = runs[["databases.db.consistency", "availability", "stale_reads", "write_conflicts", "repl_lag_p99_ms"]]
print(summary.round(3).to_string(index=False))
s = summary.set_index("databases.db.consistency")

# %%
fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(10, 3.4))
modes = list(s.index)
colors = ["C0", "C1"]
a1.bar(modes, 100 * s["availability"], color=colors)
a1.set_ylim(0, 115)
a1.set_yticks([0, 20, 40, 60, 80, 100])
a1.set_ylabel("requests answered (%)")
a1.set_title("availability (the benefit)")
a2.bar(modes, s["stale_reads"], color=colors)
a2.set_ylabel("stale reads (count)")
a2.set_title("stale reads (AP's cost)")
a3.bar(modes, s["write_conflicts"], color=colors)
a3.set_ylabel("conflicting writes (count)")
a3.set_title("write conflicts (AP's cost)")
for ax in (a2, a3):
    ax.set_ylim(0, max(1, ax.get_ylim()[1]) * 1.12)
for ax, col, scale in ((a1, "availability", 100), (a2, "stale_reads", 1), (a3, "write_conflicts", 1)):
    for i, m in enumerate(modes):
        ax.text(i, scale * s.loc[m, col], f"{scale * s.loc[m, col]:,.0f}" + ("%" if scale == 100 else ""), ha="center", va="bottom")
fig.suptitle("Pick one during a partition: AP answers with stale data, CP refuses")
dssim_nb.finish(fig, "cap-tradeoff")
dssim_nb.check(my_prediction, s.loc["cp", "availability"], what="the simulation (cp)")
assert s.loc["ap", "availability"] > 0.99 and s.loc["ap", "stale_reads"] > 0 and s.loc["ap", "write_conflicts"] > 0
assert 0.6 < s.loc["cp", "availability"] < 0.9 and s.loc["cp", "stale_reads"] == 0

# %% [markdown]
# Under `cp` the two eu replicas hold the majority: 1 s into the partition they elect one of
# them, and eu is served again; only the us side, where the old primary is alone, refuses
# until the heal (then the old primary rejoins as a replica). The lag panel shows the age
# of the oldest change some replica has not applied: it climbs through the partition in
# both modes (the cut-off nodes receive nothing) and falls back as soon as the backlog
# ships at the heal. p99 also falls during the partition: before it, the slowest requests
# are the ones that cross the ocean (2 × 40 ms); during it each side is served at home.

# %% [markdown]
# ## Failover: the primary dies
#
# `experiments/failover.toml`: 400 requests/s on a `cp` database (only the primary serves)
# with two asynchronous replicas. The primary dies at 20 s; after `detect` the failover
# promotes the replica that applied the most changes, `promote` = 2 s later.
#
# **Predict:** with detect = 5 s, how many requests fail?

# %%
my_prediction = None  # failed requests, e.g. 1000

# %%
fo = dssim_nb.run("failover", "replications=1", "duration=40s")
ts, fpts = fo["timeseries"], fo["points"]
detects = fpts["databases.db.failover.detect"].tolist()
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for run, g in ts.groupby("run"):
    ax1.plot(g["t_s"], g["errors"], drawstyle="steps-post", label=f"detect {detects[run]}")
ax1.axvline(20, color="grey", ls=":", label="the primary dies")
ax1.set_xlim(15, 40)
dssim_nb.label(ax1, "time (s)", "errors per second", "The outage lasts detect + promote", legend=True)
secs = fpts["databases.db.failover.detect"].str.rstrip("s").astype(float)
ax2.plot(secs, fpts["errors"], "o", ms=8, label="simulated")
x = np.array([0, 16])
ax2.plot(x, 400 * (x + 2), "k--", lw=1, label="theory: 400/s × (detect + 2 s)")
dssim_nb.label(ax2, "detect (s)", "failed requests",
               f"Errors = rate × outage; async lost {fpts['lost_writes'].sum():.0f} acknowledged writes",
               legend=True)
dssim_nb.finish(fig, "failover")
dssim_nb.check(my_prediction, fpts.set_index("databases.db.failover.detect").loc["5s", "errors"], "failed requests")
print(fpts[["databases.db.failover.detect", "errors", "availability", "lost_writes"]].round(3).to_string(index=False))
for d, e in zip(secs, fpts["errors"]):
    assert abs(e / (400 * (d + 2)) - 1) < 0.1

# %% [markdown]
# Every second between the crash and the promotion costs the whole arrival rate: detection
# is the lever (health checks, heartbeats), not the promotion itself. The promoted replica
# lacked the changes still on their way to it: acknowledged, then gone — about the write
# rate times the replication delay (80/s × 30 ms ≈ 2.4 in flight to each replica).

# %% [markdown]
# ## Synchronous or asynchronous replication
#
# `experiments/replication-modes.toml`: the same crash, with `async` (acknowledge at
# commit), `semi_sync` (when the first replica has the change) and `sync` (when both have)
# replication, and a mean shipping delay d of 10, 30 or 100 ms.
#
# **Predict:** at d = 30 ms, how much slower is a write's p99 with `sync` than with
# `async`, in ms?

# %%
my_prediction = None  # ms, e.g. 50

# %%
rm = dssim_nb.run("replication-modes", "replications=2", "duration=40s")
rpts = rm["points"].copy()
rpts["d_ms"] = rpts["databases.db.replication_delay"].str.extract(r"exp\((\d+)ms\)")[0].astype(float)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for mode, g in rpts.groupby("databases.db.replication", sort=False):
    ax1.plot(g["d_ms"], g["write_p99_ms"], "o-", label=mode)
    ax2.plot(g["d_ms"], g["lost_writes"], "o-", label=mode)
dssim_nb.label(ax1, "mean shipping delay d (ms)", "write p99 (ms)",
               "Waiting for replicas makes writes slower", legend=True)
dssim_nb.label(ax2, "mean shipping delay d (ms)", "acknowledged writes lost at the failover",
               "…and is what keeps them at a failover", legend=True)
dssim_nb.finish(fig, "replication-modes")
w = rpts.set_index(["databases.db.replication", "d_ms"])["write_p99_ms"]
dssim_nb.check(my_prediction, w["sync", 30] - w["async", 30], "ms")
print(rpts[["databases.db.replication", "databases.db.replication_delay", "write_p99_ms", "lost_writes"]]
      .round(1).to_string(index=False))
assert (rpts[rpts["databases.db.replication"] == "sync"]["lost_writes"] == 0).all()
assert (w["async", 30] < w["semi_sync", 30] < w["sync", 30])

# %% [markdown]
# `sync` waits for the slower of two deliveries (the max of two exponentials: its p99 is
# about d·ln 200), `semi_sync` for the faster (the min: exponential with mean d/2), `async`
# for none. Only `sync` never loses an acknowledged write; `semi_sync` guarantees a copy
# somewhere, but the failover promotes the replica that applied the most changes, which
# may not hold that one.

# %% [markdown]
# ## CQRS: a read model beside the write model
#
# `experiments/cqrs.toml`: the write model (the primary, normalized tables) answers a query
# with joins in 8 ms; the read model (two replicas holding denormalized views, fed by the
# replication log) answers it in 1 ms (`replica_read_time`). With `read_from = "primary"`
# every query runs on the write side; with `read_from = "replicas"` (CQRS) queries go to the
# read model, which applies each change a projection lag (`replication_delay`, mean d of
# 10 ms, 100 ms or 1 s) after its commit.
#
# **Predict:** with a 1 s mean projection lag, what share of reads on the read model return
# an old version (in %)?

# %%
my_prediction = None  # %, e.g. 1

# %%
cq = dssim_nb.run("cqrs", "replications=1")
cpts = cq["points"].copy()
cpts["d_s"] = cpts["databases.db.replication_delay"].map({"exp(10ms)": 0.01, "exp(100ms)": 0.1, "exp(1s)": 1.0})
cpts["stale_pct"] = 100 * cpts["stale_reads"] / (0.9 * cpts["ok"])
# Theory: key k (zipf(0.9) over 2,000 keys) is written at w_k = 40/s × p_k; a read of it is
# stale when the lag outlasts the age of its newest write: P = w_k d / (1 + w_k d).
p = np.arange(1, 2001) ** -0.9
p /= p.sum()
d = np.logspace(-2.3, 0.5, 100)
theory = [100 * np.sum(p * (40 * p * x) / (1 + 40 * p * x)) for x in d]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.5, 4.2))
mid = cpts[cpts["databases.db.replication_delay"] == "exp(100ms)"].set_index("databases.db.read_from")
x = np.arange(2)
ax1.bar(x - 0.2, mid.loc[["primary", "replicas"], "read_p99_ms"], 0.4, label="read p99")
ax1.bar(x + 0.2, mid.loc[["primary", "replicas"], "write_p99_ms"], 0.4, label="write p99")
ax1.set_xticks(x, ["reads on the primary", "reads on the\nread model (CQRS)"])
ax1.set_ylabel("p99 latency (ms)")
rp = mid.loc[["primary", "replicas"], "read_p99_ms"]
ax1.set_title(f"A read model cuts read p99 from {rp.iloc[0]:.0f} to {rp.iloc[1]:.0f} ms\n(and write p99: the write side only writes)", fontsize=10)
ax1.legend()
for rf, g in cpts.groupby("databases.db.read_from"):
    ax2.plot(g["d_s"] * 1000, g["stale_pct"], "o", ms=7,
             label="read model (simulated)" if rf == "replicas" else "primary (simulated)")
ax2.plot(d * 1000, theory, "k--", lw=1, label="Σ p_k · w_k d / (1 + w_k d)")
dssim_nb.label(ax2, "mean projection lag d (ms)", "stale reads (% of reads)",
               "The price: stale reads grow with the projection lag\n(theory dashed)", title_size=10,
               xscale="log", legend={"fontsize": 8})
dssim_nb.finish(fig, "cqrs")
st = cpts.set_index(["databases.db.read_from", "databases.db.replication_delay"])
dssim_nb.check(my_prediction, st.loc[("replicas", "exp(1s)"), "stale_pct"], "%")
print(cpts[["databases.db.read_from", "databases.db.replication_delay", "read_p99_ms", "write_p99_ms",
            "stale_reads", "stale_pct", "repl_lag_p99_ms"]].round(2).to_string(index=False))
assert (cpts[cpts["databases.db.read_from"] == "primary"]["stale_reads"] == 0).all()
assert mid.loc["replicas", "read_p99_ms"] < mid.loc["primary", "read_p99_ms"] / 2

# %% [markdown]
# Separating the query side from the command side lets each be shaped for its job: the read
# model answers from a precomputed view and scales by adding copies, and the primary keeps
# its cores for writes. What is given up is the read-after-write guarantee: a read model is
# always one projection lag behind, and a read of a key written within that lag sees the old
# value. The busier a key (w_k) and the longer the lag (d), the likelier: w_k d / (1 + w_k d).
# (At a 10 ms lag the simulation sees fewer than the formula: a write counts only once its
# acknowledgement is back at the client, about a millisecond after its commit, a sizeable
# part of so short a lag.)
# Reads that must see the latest write (a user's own, just after writing) still go to the
# write side — `read_from = "read_your_writes(1s)"` in the replication-lag section.

# %% [markdown]
# ## Live: consistency mode, partition on or off, load
#
# The sliders re-run the two-region system for 150 simulated seconds (about a third of a
# second of computing) on every change and redraw availability over time. Without a widget
# front end the cell draws four fixed settings instead.
#
# **Predict:** without any partition, what availability does `cp` give?

# %%
my_prediction = None  # availability without a partition, e.g. 0.9

# %%
def cap_live(ax, consistency="cp", partition=True, rate=200):
    sets = [f"databases.db.consistency={consistency}", f"clients.users-us.rate={rate}", f"clients.users-eu.rate={rate}",
            "replications=1", "duration=150s"]
    if not partition:
        sets.append("network.partitions=[]")
    r = dssim_nb.run("cap", *sets)
    ts, run = r["timeseries"], r["runs"].iloc[0]
    ax.plot(ts["t_s"], ts["rps"] / ts["arrivals_rps"], color="C0" if consistency == "ap" else "C1")
    if partition:
        ax.axvspan(60, 120, color="red", alpha=0.1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("answered / arrived")
    ax.set_title(f"{consistency}, partition {'on' if partition else 'off'}, {rate}/s per region:\n"
                 f"availability {run['availability']:.3f}, {run['stale_reads']:,.0f} stale reads", fontsize=9)

dssim_nb.live(cap_live, [dict(consistency=c, partition=p) for c in ("ap", "cp") for p in (True, False)],
              figsize=(6.5, 3.4),
              consistency=widgets.ToggleButtons(options=["ap", "cp"], value="cp"),
              partition=widgets.Checkbox(value=True, description="partition 60–120 s"),
              rate=widgets.IntSlider(value=200, min=50, max=800, step=50, description="rps/region"))

# %%
nopart = dssim_nb.run("cap", "databases.db.consistency=cp", "network.partitions=[]", "replications=1",
                      "duration=150s")["runs"].iloc[0]
dssim_nb.check(my_prediction, nopart["availability"], what="the simulation (cp, no partition)")

# %% [markdown]
# Without a partition there is nothing to choose: `cp` and `ap` both answer everything. CAP
# is a choice you make only while the network is split.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 — the tail of the lag
# With a mean shipping delay of 50 ms, what is the p99 replication lag in ms? Store it in
# `answer_1`; the check cell simulates it.

# %%
answer_1 = None

# %% [solution]
# The lag is exponential with mean d: its p99 is d ln 100.
answer_1 = 50 * math.log(100)
answer_1

# %%
ex1 = dssim_nb.run("replication-lag", "databases.db.replication_delay=exp(50ms)", "databases.db.read_from=replicas",
                   "replications=1", "duration=15s")["runs"].iloc[0]
dssim_nb.check(answer_1, ex1["repl_lag_p99_ms"], "ms", tolerance=0.15)

# %% [markdown]
# ### Exercise 2 — a shorter partition
# Halve the partition: it ends at 90 s instead of 120 s (`network.partitions.0.until=90s`).
# From the `cp` availability measured in the CAP section (`s`), predict `cp`'s availability
# with the shorter partition. Store it in `answer_2`; the check cell runs it and draws both.

# %%
answer_2 = None

# %% [solution]
# What cp loses is lost during the partition: half the partition, half the loss.
answer_2 = 1 - (1 - s.loc["cp", "availability"]) / 2
answer_2

# %%
ex2 = dssim_nb.run("cap", "databases.db.consistency=cp", "network.partitions.0.until=90s", "replications=1", "duration=150s")
fig, ax = plt.subplots(figsize=(7, 3.4))
full = ts[ts["run"] == runs.index[runs["databases.db.consistency"] == "cp"][0]]
ax.plot(full["t_s"], full["rps"] / full["arrivals_rps"], label="partition 60–120 s")
t2 = ex2["timeseries"]
ax.plot(t2["t_s"], t2["rps"] / t2["arrivals_rps"], label="partition 60–90 s")
dssim_nb.label(ax, "time (s)", "answered / arrived", "cp: a shorter partition, a shorter outage", legend=True)
dssim_nb.finish(fig)
dssim_nb.check(answer_2, ex2["runs"]["availability"].iloc[0], tolerance=0.02, what="the simulation (cp, 30 s partition)")
