# %% [markdown]
# # 4. Caching: hit ratios, layers, invalidation, stampedes, write policies
#
# A cache answers a read from memory instead of asking the database. How often it can do
# that (the hit ratio) depends on its size, on how skewed the popularity of the keys is, and
# on how entries leave it (eviction, TTL, invalidation). Every layer in front of the
# database (browser, CDN, app cache) takes its share; what is left reaches the database.

# %%
import matplotlib
matplotlib.use("Agg")
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
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(sizes, [che(c) for c in sizes], "k--", label="LRU, Che approximation")
for pol, g in pts.groupby("caches.redis.eviction", sort=False):
    ax.plot(g["caches.redis.capacity"], g["cache_hit_ratio"], "o-", label=pol)
ax.set_xscale("log")
ax.set_xlabel("cache capacity (entries, of 10,000 keys)")
ax.set_ylabel("hit ratio")
ax.set_title("Hit ratio vs cache size, zipf(0.99)")
ax.legend()
dssim_nb.save(fig, "cache-hit-ratio")
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
layers.plot.bar(stacked=True, ax=ax1)
ax1.legend(fontsize=8, loc="upper left", framealpha=0.9)
ax1.set_xlabel("share of content cacheable at the CDN")
ax1.set_ylabel("share of all requests answered by")
ax1.set_title("Who answers a request")
lat = ch["latency"]
for run, g in lat.groupby("run"):
    ax2.plot(g["latency_ms"], g["quantile"], label=f"cacheable {runs.loc[run, 'caches.edge.cacheable']}")
ax2.set_xlabel("latency (ms)")
ax2.set_ylabel("P(latency ≤ x)")
ax2.set_title("Latency CDF: browser ~0, edge ~5 ms, origin ~150 ms")
ax2.legend()
dssim_nb.save(fig, "cache-hierarchy")
assert hit["edge.origin"].is_monotonic_increasing, "more cacheable content, more origin offload"
assert req["store"].iloc[-1] < req["store"].iloc[0]

# %% [markdown]
# ## Invalidation: staleness against hit ratio
#
# `experiments/cache-invalidation.toml`: 30% writes. `ttl_only` leaves an entry stale until
# its TTL, `delete` removes it on a write (the next read misses), `versioned` updates it in
# place.

# %%
inv = dssim_nb.run("cache-invalidation", "replications=1", "duration=15s")
pts = inv["points"]
fig, ax = plt.subplots(figsize=(6, 4))
for pol, g in pts.groupby("caches.redis.invalidation", sort=False):
    ax.plot(g["cache_hit_ratio"], g["stale_reads"] / g["requests"], "o-", label=pol)
    for _, r in g.iterrows():
        ax.annotate(f"ttl {r['caches.redis.ttl']}", (r["cache_hit_ratio"], r["stale_reads"] / r["requests"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=7)
ax.set_xlabel("cache hit ratio")
ax.set_ylabel("stale reads per request")
ax.set_yscale("symlog", linthresh=1e-4)
ax.set_title("Invalidation: freshness vs hit ratio")
ax.legend()
dssim_nb.save(fig, "cache-invalidation")
print(pts[["caches.redis.invalidation", "caches.redis.ttl", "cache_hit_ratio", "stale_reads", "stale_age_p99_ms"]].round(3).to_string(index=False))
s = pts.set_index(["caches.redis.invalidation", "caches.redis.ttl"])
assert s.loc[("ttl_only", "60s"), "stale_reads"] > 100 * max(1, s.loc[("delete", "60s"), "stale_reads"])
assert s.loc[("versioned", "60s"), "stale_reads"] == 0
assert s.loc[("delete", "60s"), "cache_hit_ratio"] < s.loc[("ttl_only", "60s"), "cache_hit_ratio"] - 0.1

# %% [markdown]
# ## Cache stampede
#
# `experiments/cache-stampede.toml`: one hot key with a 1 s TTL, read 2000 times a second;
# a store read takes 20 ms. Without protection, every request that misses while the first
# reload is in flight goes to the store as well (about 2000 × 0.02 = 40 per expiry).

# %%
st = dssim_nb.run("cache-stampede", "replications=1", "duration=20s")
comp, runs = st["components"], st["runs"].set_index("run")
store = comp[comp["component"] == "store"].set_index("run")["requests"]
per_expiry = store / 15                 # 15 s measured, one expiry per second
print(pd.DataFrame({"stampede": runs["caches.redis.stampede"], "store reads per expiry": per_expiry.round(1)}).to_string(index=False))
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar(runs["caches.redis.stampede"], per_expiry, color=["C3", "C2", "C2"])
ax.set_ylabel("store reads per expiry")
ax.set_title("A hot key expiring under load")
dssim_nb.save(fig, "cache-stampede")
by = dict(zip(runs["caches.redis.stampede"], per_expiry))
assert by["none"] > 20 and by["coalesce"] < 3 and by["lock"] < 3

# %% [markdown]
# ## Write-through vs write-behind
#
# `experiments/write-policy.toml`: half the requests are writes (10 ms at the database). The
# cache dies at 30 s. Write-behind acknowledges a write as soon as the cache has it: fast,
# but what was still in the buffer is gone.

# %%
wp = dssim_nb.run("write-policy", "replications=1")
pts = wp["points"]
print(pts[["caches.redis.write_policy", "write_p99_ms", "read_p99_ms", "lost_writes"]].round(2).to_string(index=False))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.scatter(pts["write_p99_ms"], pts["lost_writes"], s=60)
for _, r in pts.iterrows():
    ax.annotate(r["caches.redis.write_policy"], (r["write_p99_ms"], r["lost_writes"]), textcoords="offset points", xytext=(6, 4))
ax.set_xlabel("write p99 (ms)")
ax.set_ylabel("acknowledged writes lost when the cache died")
ax.set_title("Write latency vs durability")
w = pts.set_index("caches.redis.write_policy")
assert w.loc["write_behind", "write_p99_ms"] < w.loc["write_through", "write_p99_ms"] / 3
assert w.loc["write_behind", "lost_writes"] > 0 and w.loc["write_through", "lost_writes"] == 0

# %% [markdown]
# ## Cache warming after a flush
#
# `experiments/cache-warming.toml`: the cache restarts empty at 20 s. Cold, it refills from
# misses and the store (about 70% busy normally) is swamped for a few seconds; warmed with
# the 4,000 hottest keys, nothing happens.

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
ax2.set_ylabel("p99 (ms)")
ax2.set_yscale("log")
ax2.set_xlabel("time (s)")
ax1.set_title("Cache restart at 20 s")
ax1.legend()
dssim_nb.save(fig, "cache-warming")
after = ts[(ts["t_s"] >= 20) & (ts["t_s"] < 24)].groupby("run")["p99_ms"].max()
cold = runs.index[runs["caches.redis.warm"] == 0][0]
warm = runs.index[runs["caches.redis.warm"] > 0][0]
print("max p99 in the 4 s after the flush:", after.round(1).to_dict())
assert after[cold] > 5 * after[warm]
