# %% [markdown]
# # 3. Databases: the bottleneck that does not scale by adding app nodes
#
# App servers are stateless and easy to multiply; the database holds the state and is
# usually the first thing that stops scaling. This notebook shows the wall (more app nodes
# stop helping), the contention curve behind it, what read replicas and sharding buy, the
# order in which to try the remedies, and how big the app's connection pool should be.
#
# Each section asks a question first: write your guess in its `my_prediction = None` cell
# before running the experiment; the check cell after the figure says how close you were.

# %%
import math
import re

%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import dssim_nb

# %% [markdown]
# ## More app nodes stop helping
#
# `experiments/db-bottleneck.toml`: a closed loop of 400 users, app nodes with 4 workers,
# one database whose queries slow down with concurrency (Universal Scalability Law,
# σ = 0.1, κ = 0.005). The sweep adds app nodes, 1 to 16.
#
# **Predict:** how many app nodes give the highest throughput?

# %%
my_prediction = None  # app nodes, e.g. 16

# %%
bn = dssim_nb.run("db-bottleneck", "replications=1", "duration=15s")
pts = bn["points"]
x = pts.set_index("services.app.instances")["throughput_rps"]
fig, ax1 = dssim_nb.throughput_and_p99(pts["services.app.instances"], pts, "app nodes")
ax1.set_title(f"Throughput peaks at {x.idxmax()} app nodes; more nodes overload the one database")
fig.legend(loc="outside lower center", ncols=2)
dssim_nb.finish(fig, "db-bottleneck")
print(pts[["services.app.instances", "throughput_rps", "p99_ms"]].round(1).to_string(index=False))
dssim_nb.check(my_prediction, x.idxmax(), "app nodes")
assert x[2] > 1.7 * x[1], "at first the app tier is the bottleneck: two nodes do almost twice the work"
assert x.max() < 1.25 * x[4], "past four nodes the database is the wall"
assert x[16] < 0.8 * x.max(), "too many concurrent queries make the database slower (contention)"

# %% [markdown]
# ## The contention curve (Universal Scalability Law)
#
# `experiments/db-connections.toml`: N users in a closed loop keep N queries inside a
# database with S = 1 ms, σ = 0.05, κ = 0.002. The USL predicts
# X(N) = N / (S (1 + σ(N−1) + κN(N−1))).
#
# **Predict:** at how many concurrent connections N is the throughput highest?

# %%
my_prediction = None  # connections, e.g. 64

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
sim = pts.set_index("clients.users.users")["throughput_rps"]
ax.set_title(f"Throughput peaks near N* = √((1−σ)/κ) ≈ 22 connections, then contention wins")
ax.legend()
dssim_nb.finish(fig, "db-connections")
dssim_nb.check(my_prediction, sim.idxmax(), "connections", tolerance=0.35, what="the simulation (best of the sweep)")
theory = pd.Series(usl[sim.index - 1], index=sim.index)
print(pd.DataFrame({"simulated": sim.round(0), "USL": theory.round(0)}))
assert ((sim - theory).abs() / theory < 0.05).all(), "the simulated database follows the USL"

# %% [markdown]
# Past N* every extra connection adds more coordination (σ: serialised work, κ: pairwise
# crosstalk) than work. This is why connection pools are kept small: the rule of thumb is
# about twice the database's cores (plus spindles).

# %% [markdown]
# ## Read replicas, 0 → 8
#
# `experiments/read-replicas.toml`: 3,000 requests/s, 90% reads. Every database node has 4
# cores: it executes at most 4 queries at once and the others wait for a core (up to 64
# connections; beyond that it refuses). A read takes 4 ms on average. Replicas take the
# reads; writes still go to the one primary, and replica reads can be stale.
#
# **Predict:** with no replica at all, what share of requests (availability, 0 to 1)
# succeeds?

# %%
my_prediction = None  # availability, e.g. 0.5

# %%
rr = dssim_nb.run("read-replicas", "replications=1", "duration=15s")
pts = rr["points"]
fig, (ax1, ax3) = plt.subplots(1, 2, figsize=(11, 4))
ax1.plot(pts["databases.db.replicas"], 100 * (1 - pts["availability"]), "o-", color="C3", label="requests failed, % (left)")
ax1.set_xlabel("read replicas")
ax1.set_ylabel("requests failed (%)")
ax1.set_ylim(0, 100)
ax2 = ax1.twinx()
ax2.plot(pts["databases.db.replicas"], pts["read_p99_ms"], "s--", color="C0", label="read p99, ms (right)")
ax2.axhline(4 * 4.605, color="gray", ls=":", label="p99 of the read itself (18.4 ms)")
ax2.set_ylabel("read p99 (ms)")
ax2.set_ylim(0, None)
ax2.grid(False)
ax1.set_xticks(pts["databases.db.replicas"])
ax1.set_title("Replicas buy capacity first, then latency")
ax3.bar(pts["databases.db.replicas"], 100 * pts["stale_reads"] / pts["requests"], color="C1", alpha=0.6, label="stale reads, % of requests")
ax3.plot(pts["databases.db.replicas"], 1 + pts["databases.db.replicas"], "k^-", label="database machines")
ax3.set_xlabel("read replicas")
ax3.set_ylabel("% of requests / machines")
ax3.set_xticks(pts["databases.db.replicas"])
ax3.set_title("The price: stale reads and machines")
fig.legend(loc="outside lower center", ncols=4)
dssim_nb.finish(fig, "read-replicas")
dssim_nb.check(my_prediction, pts.set_index("databases.db.replicas").loc[0, "availability"])
print(pts[["databases.db.replicas", "availability", "errors", "read_p99_ms", "stale_reads", "repl_lag_p99_ms"]].round(4).to_string(index=False))
a = pts.set_index("databases.db.replicas")
assert a.loc[0, "availability"] < 0.9 and a.loc[4, "availability"] > 0.99
assert a.loc[3, "read_p99_ms"] > 1.5 * a.loc[8, "read_p99_ms"]
assert a.loc[0, "stale_reads"] == 0 and a.loc[2, "stale_reads"] > 0

# %% [markdown]
# Below 2.7 nodes' worth of cores the reads do not fit: queues fill and connections are
# refused. From 3 replicas everything is answered, but at 90% busy a read waits long for a
# core; each further replica shortens that wait, towards the time of the read itself.

# %% [markdown]
# ## Sharding: strategies and hot spots
#
# `experiments/sharding.toml`: zipf(1.0) keys, so low key ids are the popular ones. Range
# sharding gives each shard a contiguous range of ids; hash sharding spreads them.
#
# **Predict:** with range sharding over 4 shards, what share of all queries (0 to 1) lands
# on the busiest shard?

# %%
my_prediction = None  # share, e.g. 0.25

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
    share.plot.bar(ax=ax, rot=0)
    ax.axhline(1 / n, color="k", ls="--", lw=1, label=f"even split 1/{n}")
    ax.set_title(f"{n} shards: range sharding piles the popular keys on shard 0")
    ax.set_xlabel("shard")
    ax.legend(title="sharding")
axes[0].set_ylabel("share of database queries")
dssim_nb.finish(fig, "sharding")
r4 = per_shard[(per_shard["shards"] == 4) & (per_shard["sharding"] == "range")]
dssim_nb.check(my_prediction, r4["requests"].max() / r4["requests"].sum(), what="the simulation (busiest shard)")
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
# ## Shard key by tenant or by region, and cross-shard queries
#
# `experiments/geo-sharding.toml`: three regions 40 ms apart (one way), two shards in each,
# 200 users/s per region. The shard key is the key's hash, the user's tenant (20 tenants
# of Zipf sizes, placed whole by a directory) or the user's home region (10 % of users are
# travellers). A share of queries asks all 6 shards and waits for the slowest.
#
# **Predict:** with the shards placed by region, what is the mean latency (ms) of a query
# that asks all 6 shards? (A shard answers in exp(5 ms); a round trip to another region
# takes 80 ms.)

# %%
my_prediction = None  # ms, e.g. 10

# %%
gs = dssim_nb.run("geo-sharding")
comp, runs = gs["components"], gs["runs"].set_index("run")
key, cross = runs["databases.db.shard_by"], runs["databases.db.cross_shard.share"]
q = comp[comp["kind"] == "shard_query"].copy()
q["shard_by"], q["cross"] = q["run"].map(key), q["run"].map(cross)
single = q[q["component"] == "db.single_shard"].set_index("run")
multi = q[q["component"] == "db.cross_shard"].set_index("run")
prim = comp[comp["component"].str.endswith(".primary")].copy()
prim["shard_by"], prim["cross"] = prim["run"].map(key), prim["run"].map(cross)
h4 = 1 + 1 / 2 + 1 / 3 + 1 / 4
local, remote = 2 * 0.4 + 5, 80 + 0.8 + 5  # ms: a local / remote single-shard query
fig, axes = plt.subplots(2, 1, figsize=(8, 8.5))
ax = axes[0]
orders = ["key", "tenant", "region"]
at10 = [single[(single["shard_by"] == k) & (single["cross"] == 0.1)].iloc[0] for k in orders]
cr10 = [multi[(multi["shard_by"] == k) & (multi["cross"] == 0.1)].iloc[0] for k in orders]
x = np.arange(3)
ax.bar(x - 0.2, [r["mean_ms"] for r in at10], 0.4, label="single-shard query (measured)")
ax.bar(x + 0.2, [r["mean_ms"] for r in cr10], 0.4, label="query of all 6 shards (measured)")
theory_single = [local / 3 + remote * 2 / 3, local / 3 + remote * 2 / 3, 0.9 * local + 0.1 * remote]
ax.scatter(x - 0.2, theory_single, color="k", marker="_", s=600, zorder=3,
           label="theory: share local × 5.8 + share remote × 85.8 ms")
ax.axhline(80.8 + 5 * h4, color="C3", ls="--", lw=1, label="theory: max of 6 ≈ 80.8 + 5·H_4 = 91 ms")
ax.set_xticks(x, [f"shard_by = {k}" for k in orders])
ax.set_ylabel("mean query latency (ms)")
ax.set_title("By region, queries stay local (6 ms vs 59 ms hashed);\na cross-shard query waits for the farthest shard (91 ms)")
ax.legend(fontsize=8, loc="upper left")
ax = axes[1]
for i, k in enumerate(orders):
    p = prim[prim["shard_by"] == k]
    top = p.groupby("cross")["rps"].max()
    mean = p.groupby("cross")["rps"].mean()
    ax.plot(top.index * 100, top.values, "o-", color=f"C{i}", label=f"{k}: busiest shard")
    ax.plot(mean.index * 100, mean.values, "s:", color=f"C{i}", alpha=0.6, label=f"{k}: mean shard")
c = np.linspace(0, 0.5, 11)
ax.plot(c * 100, 600 * ((1 - c) / 6 + c), "k--", lw=1, label="theory: 600/s × ((1−c)/6 + c)")
ax.plot(c * 100, 600 * ((1 - c) * 0.278 + c), "k-.", lw=1, label="theory, big tenant: 600/s × (0.278(1−c) + c)")
ax.axhline(400, color="C3", lw=1, label="a shard's capacity: 2 cores / 5 ms = 400/s")
dssim_nb.label(ax, "share of queries that ask all 6 shards, c (%)", "queries per second on a shard",
               "The cost side: each cross-shard query loads every shard;\nthe big tenant's shard is hot (28 % of queries)",
               legend={"fontsize": 7})
dssim_nb.finish(fig, "geo-sharding")
measured = multi[(multi["shard_by"] == "region") & (multi["cross"] == 0.1)]["mean_ms"].iloc[0]
dssim_nb.check(my_prediction, measured, what="the simulation (region, 10 % cross-shard)")
summary = pd.DataFrame({
    "shard_by": key, "cross": cross,
    "single mean ms": single["mean_ms"].round(1), "local share": single["hit_ratio"].round(3),
    "cross mean ms": multi["mean_ms"].round(1), "cross p99 ms": multi["p99_ms"].round(1),
    "busiest shard rps": prim.groupby("run")["rps"].max().round(0),
    "p99 ms (all)": runs["p99_ms"].round(1)})
print(summary.to_string(index=False))
reg = single[(single["shard_by"] == "region") & (single["cross"] == 0.0)].iloc[0]
hashed = single[(single["shard_by"] == "key") & (single["cross"] == 0.0)].iloc[0]
assert abs(reg["hit_ratio"] - 0.9) < 0.02 and abs(hashed["hit_ratio"] - 1 / 3) < 0.02
assert reg["mean_ms"] < hashed["mean_ms"] / 3, "region sharding keeps queries local"
assert abs(measured - (80.8 + 5 * h4)) < 0.05 * 91, "a cross-shard query waits for the farthest shard"
ten = prim[(prim["shard_by"] == "tenant") & (prim["cross"] == 0.0)]
assert abs(ten["rps"].max() / ten["rps"].sum() - 0.278) < 0.01, "the big tenant's shard takes its 27.8 %"

# %% [markdown]
# Sharding by region keeps 90 % of queries in the caller's region (the 10 % travellers pay
# the 80 ms round trip), where hashing the key sends 2/3 of them abroad; sharding by
# tenant keeps a tenant's queries together but its biggest tenant makes one shard take
# 27.8 % of the load. A cross-shard query costs on both sides: its latency is the maximum
# over the shards it asks (here the farthest region's round trip plus the max of the
# remote shards' times, 80.8 + 5·H_4 ms), and it puts one query on every shard, so at
# 50 % cross-shard queries each shard takes 600 × (0.5/6 + 0.5) = 350/s instead of 100/s,
# and the big tenant's shard nears its 400/s (p99 climbs). A good shard key keeps most
# queries on one, nearby shard.

# %% [markdown]
# ## The scaling sequence and the capacity each step buys
#
# `experiments/db-scaling.toml` starts from a slow query on a small database. Each step is one
# `--set`; `dssim capacity` finds the highest rate that keeps p99 < 250 ms and 99.9% of
# requests ok. The steps are cumulative and ordered from cheap to expensive.
#
# **Predict:** by what factor do the five steps together multiply the capacity of the
# starting system?

# %%
my_prediction = None  # factor, e.g. 10

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
gain = [b / a for a, b in zip(caps, caps[1:])]
best = steps[1 + int(np.argmax(gain))][0]
fig, ax = plt.subplots(figsize=(8, 4))
ax.bar([l for l, _ in steps], caps, color="C2")
ax.set_yscale("log")
ax.set_ylim(top=max(caps) * 3)
ax.set_ylabel("capacity (requests/s, log scale)")
ax.set_title(f"Five steps multiply capacity ×{caps[-1] / caps[0]:.0f}; each buys ×{min(gain):.1f} to ×{max(gain):.1f}")
for i, c in enumerate(caps):
    ax.text(i, c * 1.1, f"{c:,.0f}" + (f"\n×{gain[i - 1]:.1f}" if i else ""), ha="center", fontsize=8)
plt.setp(ax.get_xticklabels(), rotation=20)
dssim_nb.finish(fig, "db-scaling")
dssim_nb.check(my_prediction, caps[-1] / caps[0], "×")
assert all(b > 1.5 * a for a, b in zip(caps, caps[1:])), "every step should buy real capacity"

# %% [markdown]
# ## Connection-pool sizing
#
# `experiments/pool-sizing.toml`: four app instances share a database whose best concurrency
# is about 22 queries (USL). Each instance has a pool of N connections: 4N reach the
# database.
#
# **Predict:** which pool size per instance gives the highest throughput? (The sweep tries
# 1, 2, 3, 5, 8, 12, 20, 32.)

# %%
my_prediction = None  # connections per instance, e.g. 32

# %%
ps = dssim_nb.run("pool-sizing", "replications=1", "duration=8s")
pts = ps["points"]
x = pts.set_index("services.app.pool.size")["throughput_rps"]
fig, ax1 = dssim_nb.throughput_and_p99(4 * pts["services.app.pool.size"], pts,
                                        "connections to the database (4 instances × pool size)")
ax1.axvline(21.8, color="grey", ls=":", label="USL peak, N* = 21.8 connections")
ax1.set_title(f"Pool size: starved, then a sweet spot at {x.idxmax()} per instance, then contention")
fig.legend(loc="outside lower center", ncols=3)
dssim_nb.finish(fig, "pool-sizing")
print(pts[["services.app.pool.size", "throughput_rps", "p99_ms"]].round(1).to_string(index=False))
dssim_nb.check(my_prediction, x.idxmax(), "connections per instance", tolerance=0.4)
assert x.idxmax() in (3, 5, 8), "the best pool is near N* / 4 per instance"
assert x[1] < 0.6 * x.max() and x[32] < 0.6 * x.max()

# %% [markdown]
# The rule of thumb — about twice the database's cores in all — lands near the peak: a
# bigger pool only queues the same work inside the database, where it interferes.

# %% [markdown]
# ## The cost of no pooling
#
# `experiments/pooling.toml`: four app instances of 16 workers in front of a 16-core
# database. Without a pool every request opens a database connection first (`connect_time`,
# exp(50 ms), the lecture's 50–100 ms), holding its worker; with connections kept open (a
# pool) the query starts at once.
#
# **Predict:** at 2,000 requests/s, what share of the requests does the app without a pool
# answer (availability)?

# %%
my_prediction = None  # availability between 0 and 1, e.g. 0.9

# %%
po = dssim_nb.run("pooling", "replications=1", "duration=15s")
ppts = po["points"]
ppts["set-up"] = ppts["services.app.connect_time"].map({"0ms": "pool (connections open)",
                                                         "exp(50ms)": "no pool (50 ms set-up)"})
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for name, g in ppts.groupby("set-up"):
    ax1.plot(g["clients.users.rate"], g["latency_mean_ms"], "o-", label=name)
    ax2.plot(g["clients.users.rate"], g["availability"], "o-", label=name)
dssim_nb.label(ax1, "requests/s", "mean latency (ms)", "Every request pays the set-up", legend=True)
ax2.axvline(4 * 16 / 0.054, color="grey", ls=":", label="no pool: 64 workers / 54 ms ≈ 1,190/s")
dssim_nb.label(ax2, "requests/s", "availability", "…and holds a worker through it: capacity falls 10×",
               legend=True)
dssim_nb.finish(fig, "pooling")
pa = ppts.set_index(["set-up", "clients.users.rate"])
dssim_nb.check(my_prediction, pa.loc[("no pool (50 ms set-up)", 2000), "availability"], "")
print(ppts[["clients.users.rate", "set-up", "latency_mean_ms", "p99_ms", "availability"]].round(3).to_string(index=False))
gap = pa.loc[("no pool (50 ms set-up)", 200), "latency_mean_ms"] - pa.loc[("pool (connections open)", 200), "latency_mean_ms"]
assert 40 < gap < 60, gap
assert pa.loc[("no pool (50 ms set-up)", 2000), "availability"] < 0.9 < pa.loc[("pool (connections open)", 2000), "availability"]

# %% [markdown]
# At low load the set-up is a fixed 50 ms on every request. Worse, a worker waits through it:
# each request holds a worker for ~54 ms instead of ~4, so the same 64 workers serve about
# 1,190 requests/s instead of thousands. A pool pays the set-up once per connection.

# %% [markdown]
# ## A disk I/O bottleneck
#
# `experiments/disk-iops.toml`: reads the database's buffer pool (memory) does not hold go to
# its disk, which serves 1,000 reads per second one after the other (`iops`). The sweep
# crosses the read rate with the buffer pool's size (5,000 or 40,000 pages over 50,000 keys).
#
# **Predict:** with 5,000 pages about 40% of the reads miss. At 2,400 reads/s, what is
# the p99 latency in ms?

# %%
my_prediction = None  # ms, e.g. 20

# %%
io = dssim_nb.run("disk-iops", "replications=1")
ipts = io["points"]
comp = io["components"]
db = comp[comp["component"] == "db.primary"].set_index("run")
runs_io = io["runs"].set_index("run")
runs_io["miss_rate"] = runs_io["clients.users.rate"] * (1 - db["hit_ratio"])
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for pages, g in ipts.groupby("databases.db.buffer_pool.pages"):
    ax1.plot(g["clients.users.rate"], g["p99_ms"], "o-", label=f"{pages:,} pages")
dssim_nb.label(ax1, "reads/s", "p99 latency (ms)", "The disk, not the CPU, sets the limit", yscale="log",
               legend=True)
rho = runs_io["miss_rate"] / 1000
ax2.plot(rho, db["mean_ms"], "o", label="time in the database node (simulated)")
r = np.linspace(0.05, 0.97, 50)
ax2.plot(r, 1.0 + (1 - 0.6) * (0.5 + 1.0 + r / (2 * (1 - r))), "k--", lw=1,
         label="M/D/1 with 40% misses: 1 + 0.4 (1.5 + ρ/(2(1−ρ))) ms")
dssim_nb.label(ax2, "disk utilization ρ = misses/s ÷ 1,000 IOPS", "mean time in the node (ms)",
               "Misses queue for the disk as ρ → 1", yscale="log", legend={"fontsize": 8})
dssim_nb.finish(fig, "disk-iops")
pi = ipts.set_index(["clients.users.rate", "databases.db.buffer_pool.pages"])["p99_ms"]
dssim_nb.check(my_prediction, pi[2400, 5000], "ms")
print(ipts[["clients.users.rate", "databases.db.buffer_pool.pages", "p99_ms", "latency_mean_ms"]].round(1).to_string(index=False))
assert pi[2400, 5000] > 10 * pi[2400, 40000]

# %% [markdown]
# The CPU is far from busy: the queue forms at the disk, where every miss takes 1 ms of a
# device that does one thing at a time. As its utilization approaches 1 the wait grows as
# ρ / (1 − ρ). The cheapest fix is memory: a buffer pool eight times bigger leaves about 20%
# misses, and the same disk is barely used.

# %% [markdown]
# ## Write batching (group commit)
#
# `experiments/write-batching.toml`: every commit flushes the database's write-ahead log,
# 5 ms, one flush at a time. With `batch = { size, max_wait }` one flush commits up to
# `size` writes; a write waits for its group to fill or for `max_wait` (5 ms). The sweep
# crosses the offered write rate with the group size (1 = no batching, 10, 50).
#
# **Predict:** with groups of 10, how many writes per second can the database commit at
# most?

# %%
my_prediction = None  # writes/s, e.g. 500

# %%
wb = dssim_nb.run("write-batching", "replications=1")
wpts = wb["points"]
wruns = wb["runs"].set_index("run")
wdb = wb["components"].query("component == 'db.primary'").set_index("run")
wruns["node_ms"] = wdb["mean_ms"]
node = wruns.groupby(["databases.db.batch.size", "clients.writers.rate"])["node_ms"].mean()
S, W = 5.0, 5.0  # ms: one flush, max_wait
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.5, 4.2))
lam = np.logspace(np.log10(40), np.log10(5000), 200)
for i, (size, g) in enumerate(wpts.groupby("databases.db.batch.size")):
    c = f"C{i}"
    ax1.plot(g["clients.writers.rate"], g["throughput_rps"], "o-", color=c, label=f"size {size}")
    ax1.axhline(size * 1000 / S, color=c, ls=":", lw=1)
    n = node[size]
    ax2.plot(n.index, n.values, "o-", color=c, label=f"size {size} (simulated)")
    if size == 1:
        rho = lam[lam < 190] / 200
        ax2.plot(lam[lam < 190], S + rho * S / (2 * (1 - rho)), "--", color=c, lw=1,
                 label="M/D/1: S + ρS / (2(1 − ρ))")
    else:
        lw_ = lam[lam * W / 1000 < size / 4] * W / 1000  # λW, groups rarely full
        ax2.plot(lw_ * 1000 / W, S + W * (1 + lw_ / 2) / (1 + lw_), "--", color=c, lw=1,
                 label="S + W (1 + λW/2) / (1 + λW)" if size == 10 else None)
ax1.plot(lam, lam, color="0.6", lw=0.8, label="offered")
dssim_nb.label(ax1, "offered writes/s", "writes committed per second", xscale="log", yscale="log")
cap10 = wpts.set_index(["databases.db.batch.size", "clients.writers.rate"]).loc[(10, 4000), "throughput_rps"]
ax1.set_title(f"Groups of 10 commit {cap10:,.0f} writes/s, not 200\n(capacity = size / 5 ms, dotted)", fontsize=10)
ax1.legend(fontsize=8)
dssim_nb.label(ax2, "offered writes/s", "mean time of a write in the database (ms)",
               "The price: at a low rate a write waits\nup to max_wait (5 ms) for its group", title_size=10,
               xscale="log", yscale="log", legend={"fontsize": 8})
dssim_nb.finish(fig, "write-batching")
wt = wpts.set_index(["databases.db.batch.size", "clients.writers.rate"])
dssim_nb.check(my_prediction, wt.loc[(10, 4000), "throughput_rps"], "writes/s", tolerance=0.05)
print(wpts[["databases.db.batch.size", "clients.writers.rate", "throughput_rps", "errors",
            "latency_mean_ms", "write_p99_ms"]].round(1).to_string(index=False))
assert abs(wt.loc[(10, 4000), "throughput_rps"] - 2000) < 20
assert abs(wt.loc[(1, 4000), "throughput_rps"] - 200) < 2
assert node[(10, 50)] > node[(1, 50)] + 2

# %% [markdown]
# A flush costs the same for one write or for fifty, so a group divides its cost among its
# writes: capacity grows with the group size, and near 200 writes/s, where one-by-one
# commits queue (and beyond it, where the node refuses), groups keep latency flat. At a low
# rate the group rarely fills: the first write of each group waits the whole `max_wait`, the
# others half of it on average — the dashed line. Batching trades a few milliseconds of
# latency at low load for an order of magnitude of write capacity; `max_wait` bounds the
# price.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 — the USL at 50 connections
# With S = 1 ms, σ = 0.05 and κ = 0.002 (the contention section), compute the USL's
# throughput at N = 50 concurrent connections, in queries/s. Store it in `answer_1`; the check
# cell simulates 50 users.

# %%
answer_1 = None

# %% [solution]
N, S, sigma, kappa = 50, 0.001, 0.05, 0.002
answer_1 = N / (S * (1 + sigma * (N - 1) + kappa * N * (N - 1)))
answer_1

# %%
ex1 = dssim_nb.run("db-connections", "clients.users.users=50", "replications=1", "duration=5s")["runs"].iloc[0]
dssim_nb.check(answer_1, ex1["throughput_rps"], "queries/s", tolerance=0.05)

# %% [markdown]
# ### Exercise 2 — what each replica carries
# In `read-replicas` (3,000 requests/s, 90% reads, reads go to the replicas, writes to the
# primary) with 2 replicas, how many queries per second does each replica serve? Store it
# in `answer_2`; the check cell reads components.csv and draws the load per node.

# %%
answer_2 = None

# %% [solution]
answer_2 = 3000 * 0.9 / 2
answer_2

# %%
ex2 = dssim_nb.run("read-replicas", "databases.db.replicas=2", "replications=1", "duration=10s")["components"]
nodes = ex2[ex2["kind"] == "database"].set_index("component")["rps"]
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.bar(nodes.index, nodes, color=["C3"] + ["C0"] * (len(nodes) - 1))
dssim_nb.your_answer(ax, answer_2, "{:,.0f}/s", legend=True)
ax.set_ylabel("queries per second")
ax.set_title("The primary takes the writes, the replicas share the reads")
dssim_nb.finish(fig)
dssim_nb.check(answer_2, nodes.filter(like="replica").mean(), "queries/s", tolerance=0.05)
