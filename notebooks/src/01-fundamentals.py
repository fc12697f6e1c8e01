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
