# %% [markdown]
# # 4. Caching: hit ratios, layers, invalidation, stampedes, write policies
#
# A cache answers a read from memory instead of asking the database. How often it can do
# that (the hit ratio) depends on its size, on how skewed the popularity of the keys is, and
# on how entries leave it (eviction, TTL, invalidation). Every layer in front of the
# database (browser, CDN, app cache) takes its share; what is left reaches the database.
#
# Each section asks a question first: write your guess in its `my_prediction = None` cell
# before running the experiment; the check cell after the figure says how close you were.

# %%
%matplotlib inline
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import dssim_nb

# %% [markdown]
# ## Hit ratio against cache size, per eviction policy
#
# `experiments/cache-eviction.toml`: zipf(0.99) popularity over 10,000 keys. The dashed line
# is the Che approximation for LRU (independent requests): solve Σ(1 − e^{−p_i T}) = C for T,
# then h = Σ p_i (1 − e^{−p_i T}).
#
# **Predict:** an LRU cache holds 500 of the 10,000 keys (5%). What share of reads (hit
# ratio, 0 to 1) does it answer?

# %%
my_prediction = None  # hit ratio, e.g. 0.05

# %%
ev = dssim_nb.run("cache-eviction", "replications=1", "duration=25s", "warmup=15s")
pts = ev["points"]
p = 1 / np.arange(1, 10001) ** 0.99
p /= p.sum()


def che(c):
    lo, hi = 0.0, 1e9
    for _ in range(200):
        t = (lo + hi) / 2
        lo, hi = (t, hi) if (1 - np.exp(-p * t)).sum() < c else (lo, t)
    return float((p * (1 - np.exp(-p * lo))).sum())


sizes = np.array([50, 100, 200, 500, 1000, 2000, 4000])
h500 = pts.set_index(["caches.redis.eviction", "caches.redis.capacity"])["cache_hit_ratio"]["lru", 500]
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(sizes, [che(c) for c in sizes], "k--", label="LRU, Che approximation")
for pol, g in pts.groupby("caches.redis.eviction", sort=False):
    ax.plot(g["caches.redis.capacity"], g["cache_hit_ratio"], "o-", label=pol)
dssim_nb.label(ax, "cache capacity (entries, of 10,000 keys)", "hit ratio (share of reads)",
               f"Skew pays: 5% of the keys in an LRU cache answer {h500:.0%} of reads", xscale="log",
               legend={"title": "eviction"})
dssim_nb.finish(fig, "cache-hit-ratio")
dssim_nb.check(my_prediction, h500)
print(pts.pivot(index="caches.redis.capacity", columns="caches.redis.eviction", values="cache_hit_ratio").round(3))
h = pts.set_index(["caches.redis.eviction", "caches.redis.capacity"])["cache_hit_ratio"]
assert h["lru", 2000] > h["lru", 500] > h["lru", 100]
assert abs(h["lru", 500] - che(500)) < 0.06
assert h["lfu", 500] > h["fifo", 500] and h["lru", 500] > h["random", 500]

# %% [markdown]
# A fifth of the keys in the cache answers about three quarters of the reads: that is what
# skewed popularity buys. LFU keeps the truly popular keys and beats LRU; FIFO and random
# evict popular keys as readily as the rest.

# %% [markdown]
# ## The cache hierarchy: who answers what
#
# `experiments/cache-hierarchy.toml` (models/cdn.toml): browser cache → CDN edge → app cache
# → store. The sweep varies the share of content the CDN may cache.
#
# **Predict:** when 90% of the content is cacheable at the CDN, what share of all
# requests (0 to 1) still reaches the store (or is a write)?

# %%
my_prediction = None  # share, e.g. 0.5

# %%
ch = dssim_nb.run("cache-hierarchy", "duration=25s")
comp, runs = ch["components"], ch["runs"].set_index("run")
hit = comp.pivot(index="run", columns="component", values="hit_ratio")
req = comp.pivot(index="run", columns="component", values="requests")
table = pd.DataFrame({
    "cacheable at CDN": runs["caches.edge.cacheable"],
    "browser hit": hit["users.browser"], "edge hit": hit["edge"], "origin offload": hit["edge.origin"],
    "app-cache hit": hit["redis"], "app requests": req["app"], "store requests": req["store"],
    "mean latency ms": runs["latency_mean_ms"],
}).round(3)
print(table.to_string(index=False))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
total = runs["requests"]
layers = pd.DataFrame({
    "browser": req["users.browser"] * hit["users.browser"],
    "CDN edge": req["edge"] - req["edge.origin"],
    "app cache": req["redis"] * hit["redis"],
})
layers["store (and writes)"] = total - layers.sum(axis=1)
layers = layers.div(total, axis=0)
layers.index = runs["caches.edge.cacheable"]
layers.plot.bar(stacked=True, ax=ax1, rot=0)
ax1.legend(title="answered by")
ax1.set_xlabel("share of content cacheable at the CDN")
ax1.set_ylabel("share of all requests answered by")
store_share = layers["store (and writes)"]
ax1.set_title(f"The CDN takes hits from the app cache; the store still answers {store_share.iloc[0]:.0%} → {store_share.iloc[-1]:.0%}")
lat = ch["latency"]
for run, g in lat.groupby("run"):
    ax2.plot(g["latency_ms"], g["quantile"], label=f"cacheable {runs.loc[run, 'caches.edge.cacheable']}")
dssim_nb.label(ax2, "latency (ms)", "P(latency ≤ x)",
               "Steps in the latency: browser ~0, edge ~5 ms, origin ~150 ms",
               xscale=("symlog", {"linthresh": 1}), legend=True)
dssim_nb.finish(fig, "cache-hierarchy")
dssim_nb.check(my_prediction, layers.iloc[(layers.index.to_series() - 0.9).abs().argmin()]["store (and writes)"])
assert hit["edge.origin"].is_monotonic_increasing, "more cacheable content, more origin offload"
assert req["store"].iloc[-1] < req["store"].iloc[0]

# %% [markdown]
# ## Invalidation: staleness against hit ratio
#
# `experiments/cache-invalidation.toml`: 30% writes. `ttl_only` leaves an entry stale until
# its TTL, `delete` removes it on a write (the next read misses), `versioned` updates it in
# place. The sweep crosses them with TTLs of 1, 10 and 60 s.
#
# **Predict:** which policy gives stale reads *and* the highest hit ratio with a 60 s TTL?

# %%
my_prediction = None  # "ttl_only", "delete" or "versioned"

# %%
inv = dssim_nb.run("cache-invalidation", "replications=1", "duration=15s")
pts = inv["points"]
fig, ax = plt.subplots(figsize=(6, 4))
for pol, g in pts.groupby("caches.redis.invalidation", sort=False):
    ax.plot(g["cache_hit_ratio"], g["stale_reads"] / g["requests"], "o-", label=pol)
    for _, r in g.iterrows():
        ax.annotate(f"ttl {r['caches.redis.ttl']}", (r["cache_hit_ratio"], r["stale_reads"] / r["requests"]),
                    textcoords="offset points", xytext=(-34, -12) if r["caches.redis.ttl"] == "10s" else (4, 4), fontsize=7)
dssim_nb.label(ax, "cache hit ratio (share of reads)", "stale reads per request",
               "Longer TTLs raise the hit ratio; only ttl_only pays in stale reads",
               yscale=("symlog", {"linthresh": 1e-4}), legend={"title": "invalidation"})
dssim_nb.finish(fig, "cache-invalidation")
at60 = pts[pts["caches.redis.ttl"] == "60s"].set_index("caches.redis.invalidation")
dssim_nb.check(my_prediction, at60["cache_hit_ratio"].idxmax() if at60.loc[at60["cache_hit_ratio"].idxmax(), "stale_reads"] > 0 else "none of them")
print(pts[["caches.redis.invalidation", "caches.redis.ttl", "cache_hit_ratio", "stale_reads", "stale_age_p99_ms"]].round(3).to_string(index=False))
s = pts.set_index(["caches.redis.invalidation", "caches.redis.ttl"])
assert s.loc[("ttl_only", "60s"), "stale_reads"] > 100 * max(1, s.loc[("delete", "60s"), "stale_reads"])
assert s.loc[("versioned", "60s"), "stale_reads"] == 0
assert s.loc[("delete", "60s"), "cache_hit_ratio"] < s.loc[("ttl_only", "60s"), "cache_hit_ratio"] - 0.1

# %% [markdown]
# ## Cache stampede
#
# `experiments/cache-stampede.toml`: one hot key with a 1 s TTL, read 2000 times a second;
# a store read takes 20 ms, and the store is a constrained database: 4 connections execute
# at once, up to 50 more wait. Without protection, every request that misses while the
# first reload is in flight goes to the store as well.
#
# **Predict:** without protection, how many store reads does one expiry of the hot key
# cause?

# %%
my_prediction = None  # store reads per expiry, e.g. 2

# %%
st = dssim_nb.run("cache-stampede", "replications=1", "duration=20s")
comp, runs = st["components"], st["runs"].set_index("run")
store = comp[comp["component"] == "store"].set_index("run")["requests"]
per_expiry = store / 15                 # 15 s measured, one expiry per second
print(pd.DataFrame({"stampede": runs["caches.redis.stampede"], "store reads per expiry": per_expiry.round(1)}).to_string(index=False))
by = dict(zip(runs["caches.redis.stampede"], per_expiry))
p99 = dict(zip(runs["caches.redis.stampede"], runs["p99_ms"]))
fig, (ax, axp) = plt.subplots(1, 2, figsize=(10, 3.8))
ax.bar(runs["caches.redis.stampede"], per_expiry, color=["C3" if v > 3 else "C2" for v in per_expiry])
ax.axhline(2000 * 0.02, color="k", ls="--", lw=1, label="theory: 2,000/s × 20 ms reload = 40")
dssim_nb.label(ax, "stampede protection", "reads reaching the database per expiry",
               "The cost: database reads per expiry", legend=True)
axp.bar(runs["caches.redis.stampede"], runs["p99_ms"], color=["C3" if v > 3 else "C2" for v in per_expiry])
axp.set_ylabel("p99 latency of all users (ms)")
axp.set_xlabel("stampede protection")
axp.set_title("The harm: users wait behind the burst")
fig.suptitle(f"One hot key expiring: {by['none']:.0f} database reads and p99 {p99['none']:.0f} ms unprotected, "
             f"{by['lock']:.0f} read and p99 {p99['lock']:.0f} ms with a lock")
dssim_nb.finish(fig, "cache-stampede")
dssim_nb.check(my_prediction, by["none"], "reads")
assert by["none"] > 20 and by["coalesce"] < 3 and by["lock"] < 3
assert p99["none"] > 3 * p99["lock"] and p99["none"] > 3 * p99["coalesce"]

# %% [markdown]
# ## Write-through vs write-behind
#
# `experiments/write-policy.toml`: half the requests are writes (10 ms at the database). The
# cache dies at 30 s. Write-behind acknowledges a write as soon as the cache has it: fast,
# but what was still in the buffer is gone.
#
# **Predict:** how many times lower is the write p99 under write-behind than under
# write-through?

# %%
my_prediction = None  # ratio, e.g. 2

# %%
wp = dssim_nb.run("write-policy", "replications=1")
pts = wp["points"]
print(pts[["caches.redis.write_policy", "write_p99_ms", "read_p99_ms", "lost_writes"]].round(2).to_string(index=False))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.scatter(pts["write_p99_ms"], pts["lost_writes"], s=60)
for i, (_, r) in enumerate(pts.iterrows()):
    ax.annotate(f"{r['caches.redis.write_policy']}: {r['lost_writes']:,.0f} lost", (r["write_p99_ms"], r["lost_writes"]),
                textcoords="offset points", xytext=(12, 8 + 14 * i), fontsize=8, arrowprops=dict(arrowstyle="-", lw=0.5))
ax.set_xlim(0, pts["write_p99_ms"].max() * 1.7)
ax.set_ylim(0, pts["lost_writes"].max() * 1.3 + 10)
ax.set_xlabel("write p99 (ms)")
ax.set_ylabel("acknowledged writes lost (count)")
ax.set_title("Write-behind: fast writes, but a dead cache loses acknowledged ones")
dssim_nb.finish(fig, "write-policy")
w = pts.set_index("caches.redis.write_policy")
dssim_nb.check(my_prediction, w.loc["write_through", "write_p99_ms"] / w.loc["write_behind", "write_p99_ms"], "×")
assert w.loc["write_behind", "write_p99_ms"] < w.loc["write_through", "write_p99_ms"] / 3
assert w.loc["write_behind", "lost_writes"] > 0 and w.loc["write_through", "lost_writes"] == 0

# %% [markdown]
# ## Cache warming after a flush
#
# `experiments/cache-warming.toml`: the cache is down from 20 s to 20.5 s (the app reads the
# store directly meanwhile, `fallback = "origin"`: the same in both runs) and restarts empty.
# Cold, it refills from misses while the store (about 70% busy normally) takes every miss;
# the other run warms it with the 4,000 hottest keys.
#
# **Predict:** how much higher is the worst p99 in the 3 s after the restart (21–24 s) for
# the cold cache than for the warmed one (a ratio)?

# %%
my_prediction = None  # ratio, e.g. 1.5

# %%
cw = dssim_nb.run("cache-warming")
ts, runs = cw["timeseries"], cw["runs"].set_index("run")
fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
for run, g in ts.groupby("run"):
    label = "warmed (4000 hottest)" if runs.loc[run, "caches.redis.warm"] else "cold"
    ax1.plot(g["t_s"], g["cache_hit_ratio"], label=label)
    ax2.plot(g["t_s"], g["p99_ms"], label=label)
for ax in (ax1, ax2):
    ax.axvline(20, color="grey", ls=":")
ax1.set_ylabel("hit ratio")
ax2.set_ylabel("p99 latency (ms)")
ax2.set_yscale("log")
ax2.set_xlabel("time (s)")
ax1.set_title("Cache down at 20 s (dotted): a cold restart swamps the store; a warmed one does not")
ax1.legend()
dssim_nb.finish(fig, "cache-warming")
after = ts[(ts["t_s"] >= 21) & (ts["t_s"] < 24)].groupby("run")["p99_ms"].max()
cold = runs.index[runs["caches.redis.warm"] == 0][0]
warm = runs.index[runs["caches.redis.warm"] > 0][0]
print("max p99 in the 3 s after the restart:", after.round(1).to_dict())
print(runs[["caches.redis.warm", "errors", "shed", "p99_ms"]].to_string())
dssim_nb.check(my_prediction, after[cold] / after[warm], "×")
assert after[cold] > 5 * after[warm]
assert runs["errors"].max() < 20, "the app falls back to the store while the cache is down"

# %% [markdown]
# ## Live: TTL, invalidation and load
#
# The sliders re-run a 6-second simulation of `experiments/cache-invalidation.toml` (1 s of
# warm-up) on every change: hit ratio and stale reads side by side, the benefit and its
# cost. Without a widget front end the cell draws three fixed settings instead.
#
# **Predict:** with `ttl_only` and a 60 s TTL at 2,000 requests/s, what share of the
# requests (0 to 1) reads stale data?

# %%
my_prediction = None  # share, e.g. 0.01

# %%
def cache_live(ax, invalidation="ttl_only", ttl="10s", rate=2000):
    r = dssim_nb.run("cache-invalidation", f"caches.redis.invalidation={invalidation}", f"caches.redis.ttl={ttl}",
                     f"clients.users.rate={rate}", "replications=1", "duration=6s", "warmup=1s")["runs"].iloc[0]
    vals = [100 * r["cache_hit_ratio"], 100 * r["stale_reads"] / r["requests"]]
    ax.bar(["hit ratio", "stale reads"], vals, color=["C2", "C3"])
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v:.1f}%", ha="center", va="bottom")
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of reads / of requests")
    ax.set_title(f"{invalidation}, TTL {ttl}, {rate}/s", fontsize=9)

dssim_nb.live(cache_live, [dict(invalidation=p) for p in ("ttl_only", "delete", "versioned")],
              invalidation=widgets.Dropdown(options=["ttl_only", "delete", "versioned"]),
              ttl=widgets.SelectionSlider(options=["1s", "5s", "10s", "30s", "60s"], value="10s", description="TTL"),
              rate=widgets.IntSlider(value=2000, min=500, max=4000, step=500, description="requests/s"))

# %%
r60 = dssim_nb.run("cache-invalidation", "caches.redis.invalidation=ttl_only", "caches.redis.ttl=60s",
                   "replications=1", "duration=6s", "warmup=1s")["runs"].iloc[0]
dssim_nb.check(my_prediction, r60["stale_reads"] / r60["requests"], what="the simulation (stale share)")

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 — Che's approximation at another size
# Use the `che()` function of the first section to predict the LRU hit ratio of a cache
# holding 3,000 of the 10,000 keys. Store it in `answer_1`; the check cell simulates it.

# %%
answer_1 = None

# %% [solution]
answer_1 = che(3000)
answer_1

# %%
ex1 = dssim_nb.run("cache-eviction", "caches.redis.eviction=lru", "caches.redis.capacity=3000",
                   "replications=1", "duration=25s", "warmup=15s")["runs"].iloc[0]
dssim_nb.check(answer_1, ex1["cache_hit_ratio"], tolerance=0.05)

# %% [markdown]
# ### Exercise 2 — the stampede at half the load
# Read the hot key 1,000 times a second instead of 2,000 (`clients.users.rate=1000`), with
# the same 20 ms reload. How many store reads does one expiry cause without protection?
# Store it in `answer_2`; the check cell runs it and draws the database load.

# %%
answer_2 = None

# %% [solution]
# Every read that arrives while the first reload is in flight misses as well: 1,000/s x 20 ms.
answer_2 = 1000 * 0.020
answer_2

# %%
ex2 = dssim_nb.run("cache-stampede", "caches.redis.stampede=none", "clients.users.rate=1000",
                   "replications=1", "duration=20s")
store2 = ex2["components"].set_index("component").loc["store", "requests"]
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.bar(["2,000 reads/s", "1,000 reads/s"], [by["none"], store2 / 15], color="C3")
dssim_nb.your_answer(ax, answer_2, "{:,.0f}", legend=True)
ax.set_ylabel("database reads per expiry")
ax.set_title("Half the readers, half the stampede")
dssim_nb.finish(fig)
dssim_nb.check(answer_2, store2 / 15, "reads", tolerance=0.15)
