# %% [markdown]
# # 3. Databases: the bottleneck that does not scale by adding app nodes
#
# App servers are stateless and easy to multiply; the database holds the state and is
# usually the first thing that stops scaling. This notebook shows the wall (more app nodes
# stop helping), the contention curve behind it, what read replicas and sharding buy, the
# order in which to try the remedies, and how big the app's connection pool should be.

# %%
import math
import re

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import dssim_nb

# %% [markdown]
# ## More app nodes stop helping
#
# `experiments/db-bottleneck.toml`: a closed loop of 400 users, app nodes with 4 workers,
# one database whose queries slow down with concurrency (Universal Scalability Law,
# σ = 0.1, κ = 0.005: the best concurrency is √((1−σ)/κ) ≈ 13).

# %%
bn = dssim_nb.run("db-bottleneck", "replications=1", "duration=15s")
pts = bn["points"]
fig, ax1 = plt.subplots(figsize=(6.5, 4))
ax1.plot(pts["services.app.instances"], pts["throughput_rps"], "o-", label="throughput")
ax1.set_xlabel("app nodes")
ax1.set_ylabel("throughput (requests/s)")
ax2 = ax1.twinx()
ax2.plot(pts["services.app.instances"], pts["p99_ms"], "r^--", label="p99")
ax2.set_ylabel("p99 latency (ms)")
ax1.set_title("Adding app nodes in front of one database")
fig.legend(loc="upper center", bbox_to_anchor=(0.5, 0.88))
dssim_nb.save(fig, "db-bottleneck")
print(pts[["services.app.instances", "throughput_rps", "p99_ms"]].round(1).to_string(index=False))
x = pts.set_index("services.app.instances")["throughput_rps"]
assert x[2] > 1.7 * x[1], "at first the app tier is the bottleneck: two nodes do almost twice the work"
assert x.max() < 1.25 * x[4], "past four nodes the database is the wall"
assert x[16] < 0.8 * x.max(), "too many concurrent queries make the database slower (contention)"

# %% [markdown]
# ## The contention curve (Universal Scalability Law)
#
# `experiments/db-connections.toml`: N users in a closed loop keep N queries inside a
# database with S = 1 ms, σ = 0.05, κ = 0.002. The USL predicts
# X(N) = N / (S (1 + σ(N−1) + κN(N−1))), highest at N* ≈ 21.8. This is why connection pools
# are kept small: the rule of thumb is about twice the database's cores (plus spindles).

# %%
dc = dssim_nb.run("db-connections", "replications=1", "duration=5s")
pts = dc["points"]
n = np.arange(1, 100)
usl = n / (0.001 * (1 + 0.05 * (n - 1) + 0.002 * n * (n - 1)))
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(n, usl, "k--", label="USL theory")
ax.plot(pts["clients.users.users"], pts["throughput_rps"], "o", label="simulated")
ax.axvline(math.sqrt(0.95 / 0.002), color="grey", ls=":", label="N* = 21.8")
ax.set_xlabel("concurrent connections N")
ax.set_ylabel("throughput (queries/s)")
ax.set_title("Throughput rises, then contention wins")
ax.legend()
dssim_nb.save(fig, "db-connections")
sim = pts.set_index("clients.users.users")["throughput_rps"]
theory = pd.Series(usl[sim.index - 1], index=sim.index)
print(pd.DataFrame({"simulated": sim.round(0), "USL": theory.round(0)}))
assert ((sim - theory).abs() / theory < 0.05).all(), "the simulated database follows the USL"

# %% [markdown]
# ## Read replicas, 0 → 4
#
# `experiments/read-replicas.toml`: 3,000 requests/s, 90% reads; every node accepts at most
# 12 concurrent queries and a read takes 4 ms on average. Replicas take the reads; writes
# still go to the one primary, and replica reads can be stale.

# %%
rr = dssim_nb.run("read-replicas", "replications=1", "duration=15s")
pts = rr["points"]
fig, ax1 = plt.subplots(figsize=(6, 4))
ax1.plot(pts["databases.db.replicas"], 1 - pts["availability"], "o-", label="share of requests failed")
ax1.set_yscale("symlog", linthresh=1e-3)
ax1.set_xlabel("read replicas")
ax1.set_ylabel("failed share (refused queries)")
ax2 = ax1.twinx()
ax2.bar(pts["databases.db.replicas"], pts["stale_reads"] / pts["requests"], alpha=0.25, color="C1", label="stale reads / requests")
ax2.set_ylabel("stale reads per request")
ax1.set_title("Read replicas: errors vanish, staleness appears")
fig.legend(loc="upper center", bbox_to_anchor=(0.55, 0.88))
dssim_nb.save(fig, "read-replicas")
print(pts[["databases.db.replicas", "availability", "errors", "stale_reads", "repl_lag_p99_ms"]].round(4).to_string(index=False))
a = pts.set_index("databases.db.replicas")
assert a.loc[0, "availability"] < 0.9 and a.loc[2, "availability"] > 0.99
assert a.loc[0, "stale_reads"] == 0 and a.loc[2, "stale_reads"] > 0

# %% [markdown]
# ## Sharding: strategies and hot spots
#
# `experiments/sharding.toml`: zipf(1.0) keys, so low key ids are the popular ones. Range
# sharding puts them all on shard 0.

# %%
sh = dssim_nb.run("sharding", "duration=10s")
comp, runs = sh["components"], sh["runs"].set_index("run")
db = comp[comp["kind"] == "database"].copy()
db["shard"] = db["component"].str.extract(r"shard\.(\d+)")[0].astype(int)
per_shard = db.groupby(["run", "shard"])["requests"].sum().reset_index()
per_shard["sharding"] = per_shard["run"].map(runs["databases.db.sharding"])
per_shard["shards"] = per_shard["run"].map(runs["databases.db.shards"])
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, n in zip(axes, [4, 5]):
    t = per_shard[per_shard["shards"] == n].pivot(index="shard", columns="sharding", values="requests")
    share = t / t.sum()
    share.plot.bar(ax=ax)
    ax.set_title(f"{n} shards: share of queries per shard")
    ax.set_xlabel("shard")
axes[0].set_ylabel("share of database queries")
dssim_nb.save(fig, "sharding")
skew = per_shard.groupby("run")["requests"].agg(lambda r: r.max() / r.mean())
print(pd.DataFrame({"sharding": runs["databases.db.sharding"], "shards": runs["databases.db.shards"],
                    "max/mean load": skew.round(2), "availability": runs["availability"].round(4)}).to_string(index=False))
moved = [l for l in dssim_nb.cli("estimate", dssim_nb.ROOT / "experiments" / "sharding.toml").splitlines() if "adding a shard" in l][0]
print(moved)
mod_n = float(re.search(r"hash mod N ([\d.]+)%", moved).group(1))
ring = float(re.search(r"consistent hashing ([\d.]+)%", moved).group(1))
assert mod_n > 70 and ring < 30, "mod-N hashing moves most keys, consistent hashing about 1/(N+1)"
is_range = runs["databases.db.sharding"] == "range"
assert skew[is_range].min() > 2.5, "range sharding under zipf keys makes shard 0 a hot spot"
assert skew[is_range].min() > 1.5 * skew[~is_range].max(), "hash-based schemes spread the load"

# %% [markdown]
# ## The scaling sequence and the capacity each step buys
#
# `experiments/db-scaling.toml` starts from a slow query on a small database. Each step is one
# `--set`; `dssim capacity` finds the highest rate that keeps p99 < 250 ms and 99.9% of
# requests ok. The steps are cumulative and ordered from cheap to expensive.

# %%
steps = [
    ("start", None),
    ("optimize (index)", "databases.db.read_time=exp(5ms)"),
    ("scale up (2x cores)", "databases.db.max_connections=16"),
    ("cache", "services.app.cache=redis"),
    ("2 replicas", "databases.db.replicas=2"),
    ("2 shards", "databases.db.shards=2"),
]
sets, caps = [], []
for label, s in steps:
    if s:
        sets.append(s)
    table, line = dssim_nb.capacity("db-scaling", "clients.users.rate", ["p99_ms<250", "availability>0.999"],
                                    *sets, "duration=6s", lo=50, tolerance=0.1)
    caps.append(table[table["pass"]]["clients.users.rate"].max())
    print(f"{label:22s} {line}")
fig, ax = plt.subplots(figsize=(7, 4))
ax.bar([l for l, _ in steps], caps, color="C2")
ax.set_yscale("log")
ax.set_ylabel("capacity (requests/s, log scale)")
ax.set_title("What each database scaling step buys")
for i, c in enumerate(caps):
    ax.text(i, c * 1.1, f"{c:,.0f}", ha="center")
plt.setp(ax.get_xticklabels(), rotation=20)
dssim_nb.save(fig, "db-scaling")
assert all(b > 1.5 * a for a, b in zip(caps, caps[1:])), "every step should buy real capacity"

# %% [markdown]
# ## Connection-pool sizing
#
# `experiments/pool-sizing.toml`: four app instances share a database whose best concurrency
# is about 22 queries (USL). Each instance has a pool of N connections: 4N reach the
# database. The rule of thumb — about twice the database's cores in all — lands at the peak.

# %%
ps = dssim_nb.run("pool-sizing", "replications=1", "duration=8s")
pts = ps["points"]
fig, ax1 = plt.subplots(figsize=(6.5, 4))
ax1.plot(4 * pts["services.app.pool.size"], pts["throughput_rps"], "o-", label="throughput")
ax1.axvline(21.8, color="grey", ls=":", label="USL peak, N* = 21.8")
ax1.set_xlabel("connections to the database (4 instances x pool size)")
ax1.set_ylabel("throughput (requests/s)")
ax2 = ax1.twinx()
ax2.plot(4 * pts["services.app.pool.size"], pts["p99_ms"], "r^--", label="p99")
ax2.set_ylabel("p99 (ms)")
ax1.set_title("Pool size: starved, then the sweet spot, then contention")
fig.legend(loc="upper right", bbox_to_anchor=(0.88, 0.88))
dssim_nb.save(fig, "pool-sizing")
print(pts[["services.app.pool.size", "throughput_rps", "p99_ms"]].round(1).to_string(index=False))
x = pts.set_index("services.app.pool.size")["throughput_rps"]
assert x.idxmax() in (3, 5, 8), "the best pool is near N* / 4 per instance"
assert x[1] < 0.6 * x.max() and x[32] < 0.6 * x.max()
