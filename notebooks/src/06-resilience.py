# %% [markdown]
# # 6. Resilience: health checks, backpressure, retries, shedding, autoscaling, rollouts
#
# Things fail: a server crashes, a dependency slows down, the load exceeds capacity, a new
# release is broken. The question is how much of the failure the users see, and whether the
# system comes back on its own when the cause is gone. This notebook measures the mechanisms:
# health checks (how fast a dead server leaves the rotation), bounded queues and load
# shedding (refuse early instead of serving late), retry budgets (do not turn a blip into an
# outage), autoscaling (add capacity, but late), canary rollouts (let few users meet a bad
# release) and job queues (take work off the request path, retry it, set aside what fails).

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

# %% [markdown]
# ## Load-shedding strategies at 2x overload
#
# `experiments/load-shedding.toml` (models/overload.toml): 800 requests/s for a service that
# does 400/s. Half the requests must go; the strategies differ in which and when.

# %%
ls = dssim_nb.run("load-shedding", "replications=1", "duration=20s")
pts = ls["points"]
fig, ax1 = plt.subplots(figsize=(7, 4))
x = np.arange(len(pts))
ax1.bar(x - 0.2, pts["throughput_rps"], 0.4, label="goodput (ok/s)")
ax1.set_ylabel("ok answers per second")
ax2 = ax1.twinx()
ax2.bar(x + 0.2, pts["p99_ms"], 0.4, color="C3", label="p99 of served (ms)")
ax2.set_yscale("log")
ax2.set_ylabel("p99 (ms)")
ax1.set_xticks(x, pts["services.app.shedding"])
ax1.set_title("2x overload: goodput and latency by shedding strategy")
fig.legend(loc="upper right", bbox_to_anchor=(0.88, 0.88))
dssim_nb.save(fig, "load-shedding")
print(pts[["services.app.shedding", "throughput_rps", "p99_ms", "shed", "timeouts", "availability"]].round(2).to_string(index=False))
g = pts.set_index("services.app.shedding")
assert g.loc["none", "throughput_rps"] < 0.5 * g.loc["queue", "throughput_rps"], "no shedding: the work is done too late"
assert g.loc["deadline(100ms)", "p99_ms"] < 200

# %% [markdown]
# ## Autoscaling under a spike
#
# `experiments/autoscaling-spike.toml` (models/autoscaling.toml): 900 requests/s on one
# instance that serves 200/s. The autoscaler reacts after its stabilization window, and the
# new instances help only once provisioned: the gap is an outage.

# %%
sp = dssim_nb.run("autoscaling-spike")
ts, runs = sp["timeseries"], sp["runs"].set_index("run")
fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
for run, g in ts.groupby("run"):
    label = f"provision {runs.loc[run, 'autoscalers.web-scaler.provision']}"
    ax1.plot(g["t_s"], g["instances"], label=label)
    ax2.plot(g["t_s"], g["shed"] / 5, label=label)
ax1.set_ylabel("instances")
ax1.set_title("900/s from t = 0 on one 200/s instance")
ax1.legend(fontsize=8)
ax2.set_ylabel("shed per second")
ax2.set_xlabel("time (s)")
dssim_nb.save(fig, "autoscaling-spike")
print(runs[["autoscalers.web-scaler.provision", "availability", "shed", "instance_hours"]].to_string(index=False))
av = runs.set_index("autoscalers.web-scaler.provision")["availability"]
assert av["15s"] > av["45s"] > av["120s"]

# %% [markdown]
# ## Autoscaling over a day: cost against latency
#
# `experiments/autoscaling-diurnal.toml`: a day compressed to 10 minutes (100/s at night,
# 1,500/s at noon), a CPU-target autoscaler. A fixed fleet sized for noon would need
# 1500 / (0.7 × 200) ≈ 11 instances all day: 11 × 10/60 ≈ 1.8 instance-hours.

# %%
di = dssim_nb.run("autoscaling-diurnal")
pts = di["points"]
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(pts["instance_hours"], pts["p99_ms"], "o-")
for _, r in pts.iterrows():
    ax.annotate(f"target {r['autoscalers.day.target']}\navail. {r['availability']:.3f}", (r["instance_hours"], r["p99_ms"]),
                textcoords="offset points", xytext=(6, 0), fontsize=8)
ax.axvline(11 * 10 / 60, color="grey", ls=":", label="fixed fleet of 11")
ax.set_xlabel("instance-hours (cost)")
ax.set_ylabel("p99 latency (ms)")
ax.set_title("A compressed day: cost vs latency")
ax.legend()
dssim_nb.save(fig, "autoscaling-diurnal")
print(pts[["autoscalers.day.target", "instance_hours", "cost", "p99_ms", "availability"]].round(3).to_string(index=False))
d = pts.set_index("autoscalers.day.target")
assert d.loc[0.5, "instance_hours"] > d.loc[0.9, "instance_hours"]
assert d.loc[0.5, "availability"] > d.loc[0.9, "availability"]
assert d["instance_hours"].max() < 11 * 10 / 60

# %% [markdown]
# ## Canary rollout with automatic rollback
#
# `experiments/canary.toml` (models/canary.toml): version 2 goes to 5%, 25%, then everyone.
# A bad release (3% errors) is rolled back by a strict gate (1%) at the first step; a loose
# gate (5%) lets it through.

# %%
cn = dssim_nb.run("canary")
pts = cn["points"]
print(pts[["services.app.canary.error_rate", "services.app.canary.max_error_rate", "canary_share",
           "canary_rollback_s", "errors", "availability"]].to_string(index=False))
c = pts.set_index(["services.app.canary.error_rate", "services.app.canary.max_error_rate"])
assert c.loc[(0.0, 0.01), "canary_share"] == 1, "a good release is promoted"
assert c.loc[(0.03, 0.01), "canary_share"] == 0, "a bad release is rolled back"
assert c.loc[(0.03, 0.01), "errors"] < 0.05 * c.loc[(0.03, 0.05), "errors"]

# %% [markdown]
# ## Async job queues: retries and dead letters
#
# `experiments/job-queue.toml` (models/job-queue.toml): about 60 jobs/s, up to 3 retries with
# backoff. The share of jobs that exhaust their retries is failure_rate⁴.

# %%
jq = dssim_nb.run("job-queue")
pts = jq["points"].copy()
pts["dead share"] = pts["jobs_dead"] / pts["jobs_enqueued"]
pts["theory"] = pts["queues.emails.failure_rate"] ** 4
print(pts[["queues.emails.failure_rate", "jobs_enqueued", "jobs_done", "jobs_dead", "dead share", "theory", "job_p99_ms"]].round(4).to_string(index=False))
fig, ax = plt.subplots(figsize=(5.5, 3.8))
ax.plot(pts["queues.emails.failure_rate"], pts["dead share"], "o", label="simulated")
f = np.linspace(0, 0.5, 50)
ax.plot(f, f ** 4, "k--", label="theory f⁴ (4 attempts)")
ax.set_xlabel("failure rate per attempt")
ax.set_ylabel("share of jobs dead-lettered")
ax.set_title("Retries and the dead-letter queue")
ax.legend()
dssim_nb.save(fig, "job-queue")
r = pts.set_index("queues.emails.failure_rate")
assert r.loc[0.0, "jobs_dead"] == 0
assert abs(r.loc[0.5, "dead share"] - 0.0625) < 0.02
