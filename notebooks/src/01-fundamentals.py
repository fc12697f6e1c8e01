# %% [markdown]
# # 1. Fundamentals: queues, the knee, Little's law
#
# A server is a queue. When requests arrive faster than it can serve them, they wait. This
# notebook runs four experiments through the `dssim` command line and puts each next to
# queueing theory.
#
# **How to use it.** Every section first asks a question. Write your guess in the
# `my_prediction = None` cell *before* you run the experiment, then run the experiment,
# look at the figure, and run the check cell: it says how close you were. The exercises at
# the end are for after class. Every run replays exactly from its seed, so everyone in the
# room gets the same numbers.

# %%
%matplotlib inline
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import dssim_nb

# %% [markdown]
# ## M/M/1: how long is the tail?
#
# One server, requests arriving at random (Poisson) at 80 per second, each needing on
# average 10 ms of work (exponentially distributed). The server is busy 80% of the time.
#
# **Predict:** a request needs 10 ms of work on average. What is the p99 latency — the time
# within which 99% of requests are answered — in milliseconds?

# %%
my_prediction = None  # p99 latency in ms, e.g. 30

# %%
mm1 = dssim_nb.run("mm1", "replications=2", "duration=5m")
lat, runs = mm1["latency"], mm1["runs"]
p99 = runs["p99_ms"].mean()
fig, ax = plt.subplots(figsize=(7, 4))
for run, g in lat.groupby("run"):
    ax.plot(g["latency_ms"], g["quantile"], label=f"simulated, run {run}")
t = np.linspace(0, lat["latency_ms"].max(), 200)
ax.plot(t, 1 - np.exp(-20 * t / 1000), "k--", label="theory: 1 − e^(−(μ−λ)t)")
ax.axvline(p99, color="C3", ls=":", label=f"p99 = {p99:.0f} ms")
ax.axvline(10, color="grey", ls=":", label="mean work per request: 10 ms")
dssim_nb.label(ax, "latency (ms)", "share of requests answered within x",
               f"80% busy: 10 ms of work, but 1 request in 100 waits {p99:.0f} ms or more", legend=True)
dssim_nb.finish(fig, "mm1-cdf")

# %%
dssim_nb.check(my_prediction, p99, "ms")
print(runs[["run", "latency_mean_ms", "p99_ms"]].round(1).to_string(index=False))
print("theory: mean 1/(μ−λ) = 50 ms, p99 ln(100)/(μ−λ) =", round(1000 * math.log(100) / 20, 1), "ms")
assert abs(p99 / (1000 * math.log(100) / 20) - 1) < 0.1

# %% [markdown]
# The time in system of an M/M/1 queue is exponential with rate μ − λ = 100 − 80 = 20 per
# second: mean 50 ms, p99 = ln(100)/20 s ≈ 230 ms. Queueing, not work, makes the tail.

# %% [markdown]
# ## The breaking point: how many users can one server take?
#
# One server with 8 workers and 20 ms per request (a capacity of 8 / 0.020 = 400
# requests/s) and a queue of 200. The sweep raises the peak load from 100K users' worth to
# 10M users' worth: with the lecture's assumptions (10% daily actives, 50 requests each,
# 40% of them in a 4-hour peak) N users send N / 7,200 requests/s at the peak.
#
# **Predict:** at which number of users (in millions) does the p99 latency first exceed
# 200 ms?

# %%
my_prediction = None  # millions of users, e.g. 5

# %%
bp = dssim_nb.run("breaking-point", "replications=2", "duration=2m")
pts = bp["points"]
rate = pts["clients.users.rate"]
shed = pts["shed"] / pts["requests"]
fig, ax1 = plt.subplots(figsize=(7.5, 4.2))
ax1.errorbar(rate, pts["p99_ms"], yerr=pts["p99_ms_ci95"], marker="o", label="p99 latency (left)")
ax1.set_xscale("log")
ax1.set_yscale("log")
ax1.axvline(400, color="grey", ls=":", label="capacity 400 requests/s")
ax1.axhline(200, color="C1", ls="--", lw=1, label="200 ms")
ax1.set_xlabel("offered load at the peak (requests/s)")
ax1.set_ylabel("p99 latency (ms)")
top = ax1.secondary_xaxis("top", functions=(lambda r: r * 7200 / 1e6, lambda u: u * 1e6 / 7200))
top.set_xlabel("users (millions)")
ax2 = ax1.twinx()
ax2.plot(rate, 100 * shed, "r^-", label="requests refused, 503 (right)")
ax2.set_ylabel("requests refused (%)")
ax2.set_ylim(0, 100)
ax2.grid(False)
first = rate[pts["p99_ms"] > 200].min()
ax1.set_title(f"Flat up to 1M users, then the knee: p99 passes 200 ms at {first * 7200 / 1e6:.1f}M users")
fig.legend(loc="outside lower center", ncols=2)
dssim_nb.finish(fig, "breaking-point")

# %%
dssim_nb.check(my_prediction, round(first * 7200 / 1e6, 2), "million users")
print(pd.DataFrame({"users (M)": (rate * 7200 / 1e6).round(2), "rps": rate, "p99 ms": pts["p99_ms"].round(0),
                    "refused %": (100 * shed).round(1)}).to_string(index=False))
assert pts.set_index("clients.users.rate").loc[139, "p99_ms"] < 100 < pts.set_index("clients.users.rate").loc[1389, "p99_ms"]

# %% [markdown]
# Below about 70% busy the p99 barely moves; near capacity it climbs steeply (the knee);
# past capacity the bounded queue is full, every request waits the whole queue, and the
# excess is refused with 503.

# %% [markdown]
# ## The capstone: 8 requests/s, and the lecture's "between 100K and 1M users"
#
# The lecture's capstone load test sustained about 500 requests/min, 8 requests/s, and the
# lecture concludes the single server dies somewhere between 100K and 1M users.
# `experiments/breaking-point-capstone.toml` builds that server (2 workers, 250 ms per
# request: 8 requests/s at 100% busy) and offers it the peak load of the formula for 10K to
# 1M users.
#
# **Predict:** what share of the requests does this server answer at the peak of 100K users?

# %%
my_prediction = None  # share between 0 and 1, e.g. 0.9

# %%
cs = dssim_nb.run("breaking-point-capstone", "replications=1", "duration=5m")
cpts = cs["points"]
users = cpts["clients.users.rate"] * 7200
fig, ax = plt.subplots(figsize=(7.5, 4.2))
ax.plot(users, cpts["availability"], "o-", label="answered in time (availability)")
ax.axvspan(100_000, 1_000_000, color="C1", alpha=0.12, label="the lecture: dies between 100K and 1M")
ax.axvline(8 * 7200, color="C3", ls="--", label="8 req/s = the peak of 57,600 users")
ax.axvline(8 * 17280, color="grey", ls=":", label="8 req/s = the daily average of 138,000 users")
ax.set_xscale("log")
ax.set_xlabel("users (the peak load is users / 7,200 requests/s)")
ax.set_ylabel("availability")
ax.set_ylim(0, 1.05)
ax.set_title("At the peak, the 8 req/s server is past its capacity before 100K users")
ax.legend(loc="lower left")
dssim_nb.finish(fig, "breaking-point-capstone")

# %%
at100k = cpts.set_index("clients.users.rate").loc[13.9]
dssim_nb.check(my_prediction, at100k["availability"], "")
print(pd.DataFrame({"users": users.astype(int), "peak rps": cpts["clients.users.rate"],
                    "availability": cpts["availability"].round(3), "goodput rps": cpts["goodput_rps"].round(2),
                    "shed": cpts["shed"].round(0), "timeouts": cpts["timeouts"].round(0)}).to_string(index=False))
assert cpts.set_index("clients.users.rate").loc[4.17, "availability"] > 0.99 > 0.7 > at100k["availability"]

# %% [markdown]
# The server's ceiling is 8 requests/s, and the formula's peak passes it at
# 8 × 7,200 = 57,600 users: at 100K users (13.9 requests/s) it answers about half, at 1M
# under 5%. The lecture's "between 100K and 1M" is where 8 requests/s lies between the
# *daily averages* (5.8 requests/s at 100K users, 58 at 1M) — but a server must carry the
# peak, 2.4 times the average, so it dies one row of the table earlier.

# %% [markdown]
# ## Little's law: how many requests are inside?
#
# L = λW holds for any stable system: the mean number of requests inside (L) is the
# throughput (λ) times the mean time each spends inside (W). The server here has 4 workers
# and requests that need 20 ms on average (lognormal, not exponential).
#
# **Predict:** at 100 requests/s, how many requests are inside the server on average?

# %%
my_prediction = None  # mean requests in flight, e.g. 10

# %%
ll = dssim_nb.run("littles-law", "replications=1", "duration=2m")
ts, runs = ll["timeseries"], ll["runs"]
warm = ts[ts["t_s"] >= 20]
L = warm.groupby("run")["in_flight"].mean()
lw = runs.set_index("run").eval("throughput_rps * latency_mean_ms / 1000")
rel = (L - lw).abs() / lw
fig, ax = plt.subplots(figsize=(6.5, 4))
m = max(L.max(), lw.max()) * 1.1
ax.plot([0, m], [0, m], "k--", label="theory: L = λW")
ax.scatter(lw, L, s=50, zorder=3, label="one run (50, 100, 150, 180 requests/s)")
dssim_nb.label(ax, "λ × W: throughput × mean latency (requests)", "L: mean requests in flight (requests)",
               f"L = λW at every load (largest gap {100 * rel.max():.2f}%)", legend=True)
dssim_nb.finish(fig, "littles-law")

# %%
at100 = L[runs.set_index("run")["clients.users.rate"].eq(100)].iloc[0]
dssim_nb.check(my_prediction, at100, "requests")
print("relative gap per run:", rel.round(4).to_dict())
assert (rel < 0.05).all(), "Little's law should hold within a few percent"

# %% [markdown]
# At 100 requests/s each request spends about 20 ms of work plus a little queueing: L ≈
# 100 × 0.021 ≈ 2.1. The law needs no assumption about the distributions, only a stable
# system: it is the quickest sanity check of any measurement.

# %% [markdown]
# ## Scatter-gather: waiting for the slowest of N
#
# `experiments/scatter-gather.toml`: a search front end asks N shards at once
# (`calls = [{ to = "search", count = N }]`) and answers when the last one has answered.
# Each shard answers in exp(10 ms) and never queues, so the request takes the maximum of N
# independent exponentials: on average H_N × 10 ms (H_N = 1 + 1/2 + ... + 1/N), with
# P(max ≤ t) = (1 − e^(−t/10 ms))^N, so the p99 is −10 ms × ln(1 − 0.99^(1/N)).
#
# **Predict:** one shard answers in 10 ms on average. What is the mean latency (ms) of a
# request that fans out to 32 shards?

# %%
my_prediction = None  # ms, e.g. 10

# %%
sg = dssim_nb.run("scatter-gather", "replications=1")
pts = sg["points"].rename(columns={"services.front.calls.0.count": "N"}).set_index("N")
n = np.arange(1, 33)
h = np.cumsum(1.0 / n)
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.plot(pts.index, pts["latency_mean_ms"], "o", color="C0", label="mean (simulated)")
ax.plot(n, 10 * h, "--", color="C0", label="theory: H_N × 10 ms")
ax.plot(pts.index, pts["p99_ms"], "s", color="C3", label="p99 (simulated)")
ax.plot(n, -10 * np.log(1 - 0.99 ** (1 / n)), "--", color="C3", label="theory: p99 of the max")
ax.plot(n, 10 * n, ":", color="gray", label="the same calls in sequence: N × 10 ms")
ax.set_xscale("log", base=2)
ax.set_ylim(0, 100)
dssim_nb.label(ax, "shards called at once, N (shard work per request grows as N)", "request latency (ms)",
               "Fan-out: latency grows like ln N (the slowest of N), the work like N", legend={"fontsize": 8})
dssim_nb.finish(fig, "scatter-gather")

# %%
dssim_nb.check(my_prediction, pts.loc[32, "latency_mean_ms"], "ms")
for k in pts.index:
    assert abs(pts.loc[k, "latency_mean_ms"] - 10 * h[k - 1]) < 0.05 * 10 * h[k - 1]

# %% [markdown]
# Each doubling of N adds about 10 ms × ln 2 ≈ 7 ms to the mean while doubling the work on
# the shards (components.csv: `front.calls.search` makes N calls per request). The tail is
# the real cost: with 32 shards the p99 of the *request* is the p99.97 of one shard. This
# is why large fan-outs hedge (send a second copy of the slowest calls) or answer with the
# shards that were in time.

# %% [markdown]
# ## Anatomy of one request: where does the time go?
#
# `experiments/request-trace.toml` runs the lecture's production architecture (CDN edge,
# load balancer, eight app nodes, a Redis-like cache, a primary database with two replicas)
# with `[output] trace = 50`: the first 50 requests of the measured window are recorded span
# by span in `trace.json`, which opens in https://ui.perfetto.dev. With
# `trace_sample = "slowest"` dssim keeps the 50 slowest requests instead: the tail.
#
# **Predict:** of a typical request's latency, what share (in %) is spent on the network
# between the components rather than inside any of them?

# %%
my_prediction = None  # percent, e.g. 20

# %%
def client_visits(tr):
    v = tr[(tr["status"] != "") & (tr["cat"] == "client")]
    return v.set_index("request")

typical = dssim_nb.run("request-trace")["trace"]
tail = dssim_nb.run("request-trace", "output.trace_sample=slowest")["trace"]
tr = tail
client = client_visits(tr)
slowest = client["dur_ms"].idxmax()
one = tr[tr["request"] == slowest].sort_values(["start_ms", "dur_ms"], ascending=[True, False])
t0 = one["start_ms"].min()
colors = {"client": "tab:gray", "cdn": "tab:purple", "load_balancer": "tab:orange",
          "service": "tab:blue", "cache": "tab:green", "database": "tab:red",
          "replication": "tab:brown", "queue": "tab:olive"}
fig, ax = plt.subplots(figsize=(9, 0.32 * len(one) + 1.2))
for y, (_, s) in enumerate(one.iterrows()):
    phase = s["within"] != ""
    ax.barh(y, s["dur_ms"], left=s["start_ms"] - t0, color=colors.get(s["cat"], "k"),
            alpha=0.45 if phase else 0.9, hatch="//" if s["cat"] == "replication" else None)
    label = f"  {s['name']}" if phase else s["name"]
    ax.text(s["start_ms"] - t0 + s["dur_ms"], y, f" {label} ({s['dur_ms']:.1f} ms)", va="center", fontsize=8)
ax.invert_yaxis()
ax.set_yticks([])
ax.set_xlabel("time since the request was sent (ms)")
ax.set_title(f"The slowest request ({client.loc[slowest, 'dur_ms']:.0f} ms): "
             f"{client.loc[slowest, 'description']}")
ax.set_xlim(0, (one["start_ms"] + one["dur_ms"]).max() - t0 + 25)
dssim_nb.finish(fig, "request-waterfall")

# Leaf phases: phases no other component's visit happens inside (cpu, queue, lookup,
# execute, ...). Whatever the client waits beyond them is the network between the hops.
def leaf_phases(g):
    ph = g[g["within"] != ""]
    v = g[g["status"] != ""]
    end = v["start_ms"] + v["dur_ms"]
    leaf = [not ((v["name"] != p.within) & (v["start_ms"] >= p.start_ms)
                 & (end <= p.start_ms + p.dur_ms)).any()
            for p in ph.itertuples()]
    return ph[leaf].assign(part=lambda d: d["cat"] + ": " + d["name"])

def breakdown(tr):
    client = client_visits(tr)
    parts = pd.concat([leaf_phases(g) for _, g in tr.groupby("request")])
    table = parts.pivot_table(index="request", columns="part", values="dur_ms", aggfunc="sum")
    table = table.reindex(client.index).fillna(0)
    table = table.loc[:, table.sum() > 0]  # a hit is an instant
    table["network and waiting"] = client["dur_ms"] - table.sum(axis=1)
    assert (table["network and waiting"] > -1e-6).all(), "leaf phases cannot exceed the latency"
    return table

tables = {"50 typical requests": breakdown(typical), "50 slowest requests": breakdown(tail)}
shares = pd.DataFrame({k: t.sum() / t.sum().sum() for k, t in tables.items()}).fillna(0)
means = {k: t.sum(axis=1).mean() for k, t in tables.items()}
net = 100 * shares.loc["network and waiting", "50 typical requests"]
fig, ax = plt.subplots(figsize=(9, 3.2))
shares.T.mul(pd.Series(means), axis=0).plot.barh(stacked=True, ax=ax, width=0.6, colormap="tab20")
ax.invert_yaxis()
ax.set_xlabel("mean latency (ms), split by where the time went")
ax.set_title(f"Typical requests spend {net:.0f}% on the network; the tail adds app CPU and database work")
ax.legend()
dssim_nb.finish(fig, "request-breakdown")

# %%
dssim_nb.check(my_prediction, net, "%")
print("mean latency (ms):", {k: round(float(v), 1) for k, v in means.items()})
print("share of the latency:")
print(shares.round(3))

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 — M/M/1 at 90% busy
# The M/M/1 server of the first section gets 90 requests/s instead of 80. Using the
# theory of that section, compute its mean latency in ms and store it in `answer_1`. The
# check cell then simulates it.

# %%
answer_1 = None

# %% [solution]
# Time in an M/M/1 system is exponential with rate μ − λ = 100 − 90 = 10 per second.
answer_1 = 1000 / (100 - 90)  # ms
answer_1

# %%
ex1 = dssim_nb.run("mm1", "clients.users.rate=90", "replications=2", "duration=5m")
dssim_nb.check(answer_1, ex1["runs"]["latency_mean_ms"].mean(), "ms", tolerance=0.1)

# %% [markdown]
# ### Exercise 2 — twice the workers
# Give the breaking-point server 16 workers instead of 8 (`services.api.workers=16`). What
# throughput (requests/s) does it reach when it is offered far more than it can do? Store
# it in `answer_2`; the check cell runs a small sweep and draws your answer on it.

# %%
answer_2 = None

# %% [solution]
# Capacity = workers / service time = 16 / 0.020 s.
answer_2 = 16 / 0.020
answer_2

# %%
ex2 = dssim_nb.run("breaking-point", "services.api.workers=16", "replications=1", "duration=40s")["points"]
fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot(ex2["clients.users.rate"], ex2["throughput_rps"], "o-", label="simulated throughput")
ax.plot(ex2["clients.users.rate"], ex2["clients.users.rate"], "k:", lw=1, label="offered load")
dssim_nb.your_answer(ax, answer_2, "{:,.0f}/s")
dssim_nb.label(ax, "offered load (requests/s)", "throughput (requests/s)",
               "16 workers: throughput follows the load, then flattens at capacity", xscale="log",
               legend=True)
dssim_nb.finish(fig)
dssim_nb.check(answer_2, ex2["throughput_rps"].max(), "requests/s", tolerance=0.05)

# %% [markdown]
# ### Exercise 3 — Little's law backwards
# Take the Little's-law run at 180 requests/s (`ll` above): the mean number in flight L from
# its timeseries (after the 20 s warm-up) and the throughput λ from its runs.csv. Compute the
# mean latency W = L / λ in ms and store it in `answer_3`; the check cell compares it with
# the mean latency the simulation measured request by request.

# %%
answer_3 = None

# %% [solution]
run180 = runs[runs["clients.users.rate"] == 180].iloc[0]
L180 = ts[(ts["run"] == run180["run"]) & (ts["t_s"] >= 20)]["in_flight"].mean()
answer_3 = 1000 * L180 / run180["throughput_rps"]
answer_3

# %%
dssim_nb.check(answer_3, runs[runs["clients.users.rate"] == 180]["latency_mean_ms"].iloc[0], "ms", tolerance=0.05,
               what="the mean latency over all requests")
