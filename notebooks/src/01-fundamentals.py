# %% [markdown]
# # 1. Fundamentals: queues, the knee, Little's law
#
# A server is a queue. When requests arrive faster than it can serve them, they wait; the
# wait grows slowly at first and then explodes as the load approaches capacity. This notebook
# runs three experiments through the `dssim` command line and compares them with queueing
# theory.

# %%
import math

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import dssim_nb

# %% [markdown]
# ## M/M/1: the latency distribution
#
# One server, Poisson arrivals at 80/s, exponential service with mean 10 ms (load 0.8).
# Theory: the time in system is exponential with rate μ − λ = 20/s, so its CDF is
# 1 − e^{−20 t}.

# %%
mm1 = dssim_nb.run("mm1", "replications=2", "duration=5m")
lat = mm1["latency"]
fig, ax = plt.subplots(figsize=(6, 4))
for run, g in lat.groupby("run"):
    ax.plot(g["latency_ms"], g["quantile"], label=f"simulated, run {run}")
t = np.linspace(0, lat["latency_ms"].max(), 200)
ax.plot(t, 1 - np.exp(-20 * t / 1000), "k--", label="theory: 1 - exp(-(μ-λ)t)")
ax.set_xlabel("latency (ms)")
ax.set_ylabel("P(latency ≤ x)")
ax.set_title("M/M/1 at load 0.8: latency CDF")
ax.legend()
dssim_nb.save(fig, "mm1-cdf")
runs = mm1["runs"]
print(runs[["run", "latency_mean_ms", "p99_ms"]])
print("theory: mean 50 ms, p99", round(1000 * math.log(100) / 20, 1), "ms")

# %% [markdown]
# ## The breaking point: p99 against load
#
# One server with 8 workers and 20 ms per request can serve 400 requests/s. The sweep raises
# the peak load from 100K users' worth to 10M users' worth (see the experiment file for the
# arithmetic). Latency stays flat, bends at the knee, and past capacity the queue fills and
# requests are turned away (503).

# %%
bp = dssim_nb.run("breaking-point", "replications=2", "duration=2m")
pts = bp["points"]
rate = pts["clients.users.rate"]
fig, ax1 = plt.subplots(figsize=(6, 4))
ax1.errorbar(rate, pts["p99_ms"], yerr=pts["p99_ms_ci95"], marker="o", label="p99 latency")
ax1.set_xscale("log")
ax1.set_yscale("log")
ax1.axvline(400, color="grey", ls=":", label="capacity 400 rps")
ax1.set_xlabel("offered load (requests/s)")
ax1.set_ylabel("p99 latency (ms)")
ax2 = ax1.twinx()
ax2.plot(rate, pts["shed"] / pts["requests"], "r^-", label="share shed (503)")
ax2.set_ylabel("share of requests shed")
ax1.set_title("One server: the knee")
fig.legend(loc="upper left", bbox_to_anchor=(0.12, 0.88))
dssim_nb.save(fig, "breaking-point")
print(pts[["clients.users.rate", "p99_ms", "shed", "requests"]])

# %% [markdown]
# ## Little's law
#
# L = λW holds for any stable system. `timeseries.csv` gives the time-averaged number of
# requests in flight per interval (L); `runs.csv` gives the throughput (λ) and the mean
# latency (W).

# %%
ll = dssim_nb.run("littles-law", "replications=1", "duration=2m")
ts, runs = ll["timeseries"], ll["runs"]
warm = ts[ts["t_s"] >= 20]
L = warm.groupby("run")["in_flight"].mean()
lw = runs.set_index("run").eval("throughput_rps * latency_mean_ms / 1000")
fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(lw, L)
m = max(L.max(), lw.max()) * 1.1
ax.plot([0, m], [0, m], "k--", label="L = λW")
ax.set_xlabel("λ × W (from runs.csv)")
ax.set_ylabel("L (mean in flight, from timeseries.csv)")
ax.set_title("Little's law")
ax.legend()
dssim_nb.save(fig, "littles-law")
rel = (L - lw).abs() / lw
print("relative gap per run:", rel.round(4).to_dict())
assert (rel < 0.05).all(), "Little's law should hold within a few percent"

# %% [markdown]
# ## Anatomy of one request: where the time goes
#
# `experiments/request-trace.toml` runs the lecture's production architecture (CDN edge,
# load balancer, eight app nodes, a Redis-like cache, a primary database with two replicas)
# with `[output] trace = 50`: the first 50 requests of the measured window are recorded span
# by span in `trace.json`, which opens in https://ui.perfetto.dev. Here we draw the slowest
# of them as a waterfall (each bar is one component's visit or one of its phases, nested
# left to right in time), then split every traced request's latency into its leaf phases:
# CPU, queueing, cache and database work, and what is left (the network between them).

# %%
tr = dssim_nb.run("request-trace")["trace"]
visits = tr[tr["status"] != ""]
client = visits[visits["cat"] == "client"].set_index("request")
slowest = client["dur_ms"].idxmax()
one = tr[tr["request"] == slowest].sort_values(["start_ms", "dur_ms"], ascending=[True, False])
t0 = one["start_ms"].min()
colors = {"client": "tab:gray", "cdn": "tab:purple", "load_balancer": "tab:orange",
          "service": "tab:blue", "cache": "tab:green", "database": "tab:red",
          "replication": "tab:brown", "queue": "tab:olive"}
fig, ax = plt.subplots(figsize=(8, 0.32 * len(one) + 1))
for y, (_, s) in enumerate(one.iterrows()):
    phase = s["within"] != ""
    ax.barh(y, s["dur_ms"], left=s["start_ms"] - t0, color=colors.get(s["cat"], "k"),
            alpha=0.45 if phase else 0.9, hatch="//" if s["cat"] == "replication" else None)
    label = f"  {s['name']}" if phase else s["name"]
    ax.text(s["start_ms"] - t0 + s["dur_ms"], y, f" {label} ({s['dur_ms']:.1f} ms)", va="center", fontsize=8)
ax.invert_yaxis()
ax.set_yticks([])
ax.set_xlabel("time since the request was sent (ms)")
ax.set_title(f"The slowest of {len(client)} traced requests: {client.loc[slowest, 'description']}")
ax.set_xlim(0, (one["start_ms"] + one["dur_ms"]).max() - t0 + 25)
dssim_nb.save(fig, "request-waterfall")

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

parts = pd.concat([leaf_phases(g) for _, g in tr.groupby("request")])
table = parts.pivot_table(index="request", columns="part", values="dur_ms", aggfunc="sum").fillna(0)
table = table.loc[:, table.sum() > 0]  # a hit is an instant
table["network and waiting"] = client["dur_ms"] - table.sum(axis=1)
top = client["dur_ms"].sort_values(ascending=False).index[:12]
fig, ax = plt.subplots(figsize=(8, 4.5))
table.loc[top].plot.barh(stacked=True, ax=ax, width=0.8, colormap="tab20")
ax.invert_yaxis()
ax.set_xlabel("latency (ms)")
ax.set_ylabel("traced request (#)")
ax.set_title("Where the time goes: the 12 slowest traced requests")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
dssim_nb.save(fig, "request-breakdown")
share = (table.sum() / client["dur_ms"].sum()).sort_values(ascending=False)
print("share of all traced latency:")
print(share.round(3))
assert (table["network and waiting"] > -1e-6).all(), "leaf phases cannot exceed the latency"
assert abs(table.sum(axis=1) - client["dur_ms"]).max() < 1e-6
