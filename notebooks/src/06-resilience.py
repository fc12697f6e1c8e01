# %% [markdown]
# # 6. Resilience: health checks, backpressure, retry storms
#
# Things fail: a server crashes, a dependency slows down, the load exceeds capacity. The
# question is how much of the failure the users see, and whether the system comes back on
# its own when the cause is gone. This notebook measures three mechanisms: health checks
# (how fast a dead server leaves the rotation), bounded queues (refuse early instead of
# serving late) and retry budgets (do not turn a blip into an outage).

# %%
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import dssim_nb

# %% [markdown]
# ## Health checks: errors after a crash
#
# `experiments/health-checks.toml` (models/faults.toml): four servers behind a round-robin
# load balancer, 2,000 requests/s; `app.2` crashes at 21.3 s. Until the checker has seen
# `unhealthy` failed probes in a row, a quarter of the requests still go to the dead server.
# Expected errors ≈ 500/s × (up to one interval until the first probe + (unhealthy − 1) × interval).

# %%
hc = dssim_nb.run("health-checks", "replications=1")
pts = hc["points"].copy()
pts["interval_s"] = pts["load_balancers.lb.health_check.interval"].map({"500ms": 0.5, "2s": 2.0, "5s": 5.0})
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for u, g in pts.groupby("load_balancers.lb.health_check.unhealthy"):
    ax1.plot(g["interval_s"], g["errors"], "o-", label=f"unhealthy = {u}")
ax1.set_xlabel("probe interval (s)")
ax1.set_ylabel("errors after the crash")
ax1.set_title("Detection time costs errors")
ax1.legend()
ts, runs = hc["timeseries"], hc["runs"].set_index("run")
for run, g in ts.groupby("run"):
    r = runs.loc[run]
    if r["load_balancers.lb.health_check.unhealthy"] == 3:
        ax2.plot(g["t_s"], g["errors"], label=f"interval {r['load_balancers.lb.health_check.interval']}, unhealthy 3")
ax2.axvline(21.3, color="grey", ls=":", label="crash")
ax2.set_xlim(15, 40)
ax2.set_xlabel("time (s)")
ax2.set_ylabel("errors per second")
ax2.set_title("The detection window")
ax2.legend(fontsize=8)
dssim_nb.save(fig, "health-checks")
print(pts[["load_balancers.lb.health_check.interval", "load_balancers.lb.health_check.unhealthy", "errors", "availability"]].to_string(index=False))
e = pts.set_index(["interval_s", "load_balancers.lb.health_check.unhealthy"])["errors"]
assert e[5.0, 3] > 5 * e[0.5, 3], "slower checks, longer detection, more errors"
assert e[2.0, 3] > e[2.0, 1]
assert 0.5 * 500 * 10 < e[5.0, 3] < 500 * 15 * 1.2, "about 500 errors/s for 2-3 intervals"

# %% [markdown]
# ## Backpressure: bounded vs unbounded queues at 1.2× overload
#
# `experiments/backpressure.toml`: 1,200 requests/s offered to a server that does 1,000/s;
# clients give up after 1 s. A short queue refuses the excess at once; an unbounded one
# accepts everything and then serves every request too late.

# %%
bp = dssim_nb.run("backpressure", "replications=1", "duration=20s")
pts = bp["points"]
fig, ax = plt.subplots(figsize=(6.5, 4))
q = pts["services.app.queue"]
ax.plot(q, pts["ok"] / pts["requests"], "o-", label="ok (served in time)")
ax.plot(q, pts["shed"] / pts["requests"], "s-", label="shed (503 at once)")
ax.plot(q, pts["timeouts"] / pts["requests"], "^-", label="timed out (served too late)")
ax.set_xscale("log")
ax.set_xlabel("queue places (100000 = unbounded)")
ax.set_ylabel("share of requests")
ax.set_title("1.2x overload: refuse early or serve late")
ax.legend()
dssim_nb.save(fig, "backpressure")
print(pts[["services.app.queue", "throughput_rps", "shed", "timeouts", "p99_ms", "availability"]].round(2).to_string(index=False))
a = pts.set_index("services.app.queue")["availability"]
assert a[50] > 0.8, "a bounded queue keeps serving the capacity (1000 of 1200/s)"
assert a[100000] < 0.1, "an unbounded queue: everyone waits past the timeout"

# %% [markdown]
# ## Retry storms
#
# `experiments/retry-storm.toml`: 800 requests/s, 100 ms timeout, up to 3 retries; the server
# is 4x slower from 10 s to 15 s. Unlimited retries multiply the load by up to four and keep
# the server saturated after it has recovered: a metastable failure. A 10% retry budget lets
# it recover.

# %%
rs = dssim_nb.run("retry-storm", "replications=1")
ts, runs = rs["timeseries"], rs["runs"].set_index("run")
fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
for run, g in ts.groupby("run"):
    r = runs.loc[run]
    if r["clients.users.retries.max"] == 0 and r["clients.users.retries.budget"] == 0.1:
        continue                    # the budget does not matter without retries
    label = "no retries" if r["clients.users.retries.max"] == 0 else (
        "3 retries, no budget" if r["clients.users.retries.budget"] > 1 else "3 retries, 10% budget")
    ax1.plot(g["t_s"], g["rps"], label=label)
    ax2.plot(g["t_s"], g["queue_len"], label=label)
for ax in (ax1, ax2):
    ax.axvspan(10, 15, color="orange", alpha=0.15)
ax1.set_ylabel("ok answers / s")
ax1.set_title("A 5 s slowdown (shaded), then a healthy server")
ax1.legend(fontsize=8)
ax2.set_ylabel("queue length")
ax2.set_xlabel("time (s)")
dssim_nb.save(fig, "retry-storm")
t = runs[["clients.users.retries.max", "clients.users.retries.budget", "requests", "attempts", "availability"]]
print(t.round(3).to_string(index=False))
late = ts[ts["t_s"] >= 30].groupby("run")["rps"].mean()
storm = runs.index[(runs["clients.users.retries.max"] == 3) & (runs["clients.users.retries.budget"] > 1)][0]
budget = runs.index[(runs["clients.users.retries.max"] == 3) & (runs["clients.users.retries.budget"] < 1)][0]
print("ok/s after 30 s:", late.round(0).to_dict())
assert late[storm] < 200, "unlimited retries: still down long after the slowdown"
assert late[budget] > 700, "with a retry budget the system recovers"
