# %% [markdown]
# # 6. Resilience: health checks, backpressure, retries, shedding, autoscaling, rollouts
#
# Things fail: a server crashes, a dependency slows down, the load exceeds capacity, a new
# release is broken. The question is how much of the failure the users see, and whether the
# system comes back on its own when the cause is gone. This notebook measures the mechanisms:
# health checks (how fast a dead server leaves the rotation), bounded queues and load
# shedding (refuse early instead of serving late), retry budgets (do not turn a blip into an
# outage), autoscaling (add capacity, but late), canary rollouts (let few users meet a bad
# release) and job queues (take work off the request path, retry it, set aside what fails,
# serve the urgent jobs first).
#
# Each section asks a question first: write your guess in its `my_prediction = None` cell
# before running the experiment; the check cell after the figure says how close you were.

# %%
%matplotlib inline
import math

import ipywidgets as widgets
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
#
# **Predict:** with a probe every 5 s and 3 failed probes to mark it down, how many requests
# fail after the crash?

# %%
my_prediction = None  # errors, e.g. 100

# %%
hc = dssim_nb.run("health-checks", "replications=1")
pts = hc["points"].copy()
pts["interval_s"] = pts["load_balancers.lb.health_check.interval"].map({"500ms": 0.5, "2s": 2.0, "5s": 5.0})
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for u, g in pts.groupby("load_balancers.lb.health_check.unhealthy"):
    line, = ax1.plot(g["interval_s"], g["errors"], "o-", label=f"unhealthy = {u}")
    i = np.linspace(0.5, 5, 20)
    ax1.fill_between(i, 500 * (u - 1) * i, 500 * u * i, color=line.get_color(), alpha=0.15,
                     label=f"theory: 500 errors/s for {u - 1} to {u} intervals")
dssim_nb.label(ax1, "probe interval (s)", "errors after the crash", "Slower detection, more errors",
               legend=True)
ts, runs = hc["timeseries"], hc["runs"].set_index("run")
for run, g in ts.groupby("run"):
    r = runs.loc[run]
    if r["load_balancers.lb.health_check.unhealthy"] == 3:
        ax2.plot(g["t_s"], g["errors"], label=f"interval {r['load_balancers.lb.health_check.interval']}, unhealthy 3")
ax2.axvline(21.3, color="grey", ls=":", label="crash")
ax2.set_xlim(15, 40)
dssim_nb.label(ax2, "time (s)", "errors per second", "Until the checker notices, a quarter of requests fail",
               legend=True)
dssim_nb.finish(fig, "health-checks")
print(pts[["load_balancers.lb.health_check.interval", "load_balancers.lb.health_check.unhealthy", "errors", "availability"]].to_string(index=False))
e = pts.set_index(["interval_s", "load_balancers.lb.health_check.unhealthy"])["errors"]
dssim_nb.check(my_prediction, e[5.0, 3], "errors")
assert e[5.0, 3] > 5 * e[0.5, 3], "slower checks, longer detection, more errors"
assert e[2.0, 3] > e[2.0, 1]
assert 0.5 * 500 * 10 < e[5.0, 3] < 500 * 15 * 1.2, "about 500 errors/s for 2-3 intervals"

# %% [markdown]
# Expected errors ≈ 500/s × (up to one interval until the first probe + (unhealthy − 1) ×
# interval): with 5 s and 3 probes, 10 to 15 s of a quarter of 2,000 requests/s.

# %% [markdown]
# ## Gray failure: slow but healthy
#
# `experiments/gray-failure.toml`: the same four servers at 2,000 requests/s, but `app.1` does
# not crash: from 20 s to 50 s it is 10 times slower (400 requests/s of capacity left). It
# still answers its health checks at once, so the load balancer keeps it in rotation.
#
# **Predict:** with round robin, what share of the requests is answered within the 1 s
# timeout (availability)?

# %%
my_prediction = None  # availability between 0 and 1, e.g. 0.9

# %%
gf = dssim_nb.run("gray-failure", "replications=1")
gts, gruns = gf["timeseries"], gf["runs"].set_index("run")
fig, ax = plt.subplots(figsize=(7.5, 4))
for run, g in gts.groupby("run"):
    ax.plot(g["t_s"], g["p99_all_ms"], label=gruns.loc[run, "load_balancers.lb.algorithm"])
ax.axvspan(20, 50, color="grey", alpha=0.12, label="app.1 10× slower")
dssim_nb.label(ax, "time (s)", "p99 of every request, failures included (ms)",
               "No health check fires; only the routing decides", yscale="log", legend=True)
dssim_nb.finish(fig, "gray-failure")
gp = gf["points"].set_index("load_balancers.lb.algorithm")
dssim_nb.check(my_prediction, gp.loc["round_robin", "availability"], "")
print(gp[["errors", "timeouts", "shed", "availability", "p99_all_ms"]].round(3).to_string())
assert (gp["errors"] == 0).all()
assert gp.loc["round_robin", "availability"] < 0.95 < gp.loc["least_connections", "availability"]

# %% [markdown]
# A health check asks "are you alive?", and the slow server is. Round robin keeps giving it a
# quarter of the traffic, more than it can now serve: its queue fills, requests time out or
# are refused. Algorithms that look at outstanding requests (least connections, power of two)
# send it less as its queue grows. Outlier ejection (taking out an instance whose latency or
# errors stand out) is the load balancer's other answer; it is not modelled yet.

# %% [markdown]
# ## Backpressure: bounded vs unbounded queues at 1.2× overload
#
# `experiments/backpressure.toml`: 1,200 requests/s offered to a server that does 1,000/s;
# clients give up after 1 s. A short queue refuses the excess at once; an unbounded one
# accepts everything.
#
# **Predict:** with an unbounded queue, what share of requests (0 to 1) is served in time?

# %%
my_prediction = None  # share, e.g. 0.8

# %%
bp = dssim_nb.run("backpressure", "replications=1", "duration=20s")
pts = bp["points"]
fig, ax = plt.subplots(figsize=(6.5, 4))
q = pts["services.app.queue"]
ax.plot(q, pts["ok"] / pts["requests"], "o-", label="ok (served in time)")
ax.axhline(1000 / 1200, color="grey", ls=":", label="theory: capacity ÷ offered = 1000/1200")
ax.plot(q, pts["shed"] / pts["requests"], "s-", label="shed (503 at once)")
ax.plot(q, pts["timeouts"] / pts["requests"], "^-", label="timed out (served too late)")
dssim_nb.label(ax, "queue places (100,000 = unbounded)", "share of requests",
               "1.2× overload: a short queue refuses the excess; an unbounded one serves everyone late",
               xscale="log", legend=True)
dssim_nb.finish(fig, "backpressure")
print(pts[["services.app.queue", "throughput_rps", "shed", "timeouts", "p99_ms", "availability"]].round(2).to_string(index=False))
a = pts.set_index("services.app.queue")["availability"]
dssim_nb.check(my_prediction, a[100000])
assert a[50] > 0.8, "a bounded queue keeps serving the capacity (1000 of 1200/s)"
assert a[100000] < 0.1, "an unbounded queue: everyone waits past the timeout"

# %% [markdown]
# ## Retry storms
#
# `experiments/retry-storm.toml`: 800 requests/s, 100 ms timeout, up to 3 retries; the server
# is 4× slower from 10 s to 15 s. Does the system come back once the server is fast again?
# The runs compare no retries, 3 retries, and 3 retries within a 10% budget (retries may add
# at most 10% to the requests).
#
# **Predict:** with 3 retries and no budget, how many ok answers per second does the server
# give after 30 s, long after the slowdown ended (it did 800/s before)?

# %%
my_prediction = None  # ok answers/s after 30 s, e.g. 800

# %%
rs = dssim_nb.run("retry-storm", "replications=1")
ts, runs = rs["timeseries"], rs["runs"].set_index("run")
fig = plt.figure(figsize=(10, 7.5))
grid = fig.add_gridspec(3, 2, width_ratios=[3, 1.3])
ax1 = fig.add_subplot(grid[0, 0])
ax2 = fig.add_subplot(grid[1, 0], sharex=ax1)
ax4 = fig.add_subplot(grid[2, 0], sharex=ax1)
ax3 = fig.add_subplot(grid[:, 1])
labels = {}
for run, g in ts.groupby("run"):
    r = runs.loc[run]
    if r["clients.users.retries.max"] == 0 and r["clients.users.retries.budget"] == 0.1:
        continue                    # the budget does not matter without retries
    label = "no retries" if r["clients.users.retries.max"] == 0 else (
        "3 retries, no budget" if r["clients.users.retries.budget"] > 1 else "3 retries, 10% budget")
    labels[run] = label
    ax1.plot(g["t_s"], g["goodput_rps"], label=label)
    ax2.plot(g["t_s"], g["queue_len"], label=label)
    ax4.plot(g["t_s"], g["p99_all_ms"], label=label)
for ax in (ax1, ax2, ax4):
    ax.axvspan(10, 15, color="orange", alpha=0.15)
ax1.set_ylabel("goodput (ok answers / s)")
ax1.set_title("A 5 s slowdown (shaded): with unlimited retries the server stays down")
ax1.legend()
ax2.set_ylabel("queue length (requests)")
ax4.set_ylabel("p99 of every request,\nfailures included (ms)")
ax4.set_ylim(0, None)
ax4.set_xlabel("time (s)")
window = runs["duration_s"]
att = pd.DataFrame({"requests/s": runs["requests"] / window, "attempts/s": runs["attempts"] / window}).loc[list(labels)]
att.index = [labels[r].replace(", ", ",\n") for r in att.index]
att.plot.bar(ax=ax3, rot=0, color=["grey", "C3"])
ax3.set_ylabel("per second, over the run")
ax3.set_title("The cost: attempts sent", fontsize=10)
ax3.tick_params(axis="x", labelsize=7)
ax3.legend(loc="upper left", bbox_to_anchor=(0, -0.25))
ax3._dssim_keep_legend = True
dssim_nb.finish(fig, "retry-storm")
t = runs[["clients.users.retries.max", "clients.users.retries.budget", "requests", "attempts", "availability",
          "goodput_rps", "p99_ms", "p99_all_ms"]]
print(t.round(3).to_string(index=False))
late = ts[ts["t_s"] >= 30].groupby("run")["rps"].mean()
storm = runs.index[(runs["clients.users.retries.max"] == 3) & (runs["clients.users.retries.budget"] > 1)][0]
budget = runs.index[(runs["clients.users.retries.max"] == 3) & (runs["clients.users.retries.budget"] < 1)][0]
print("ok/s after 30 s:", late.round(0).to_dict())
dssim_nb.check(my_prediction, late[storm], "ok/s")
assert late[storm] < 200, "unlimited retries: still down long after the slowdown"
assert late[budget] > 700, "with a retry budget the system recovers"

# %% [markdown]
# Each timed-out request comes back up to three more times, so the slow server receives up
# to four times the load; once it is fast again its queue is still full of attempts whose
# clients have given up, every answer is too late, and the retries keep coming: a
# metastable failure. A 10% budget caps the extra load and the queue drains. Note the
# table: `p99_ms` counts only the requests that succeeded, so the storm's few lucky answers
# look fast; `p99_all_ms` counts every request at the time it ended, failures included,
# and shows the harm.

# %% [markdown]
# ## Load-shedding strategies at 2x overload
#
# `experiments/load-shedding.toml` (models/overload.toml): 800 requests/s for a service that
# does 400/s. Half the requests must go; the strategies differ in which and when.
#
# **Predict:** with no shedding at all, what goodput (ok answers per second) remains?

# %%
my_prediction = None  # ok/s, e.g. 400

# %%
ls = dssim_nb.run("load-shedding", "replications=1", "duration=20s")
pts = ls["points"]
fig, ax1 = plt.subplots(figsize=(7, 4))
x = np.arange(len(pts))
ax1.bar(x - 0.2, pts["throughput_rps"], 0.4, label="goodput (ok/s)")
ax1.axhline(400, color="grey", ls=":", label="capacity 400/s")
ax1.set_ylabel("ok answers per second")
ax2 = ax1.twinx()
ax2.bar(x + 0.2, pts["p99_ms"], 0.4, color="C3", label="p99 of served (ms)")
ax2.set_yscale("log")
ax2.set_ylabel("p99 (ms)")
ax1.set_xticks(x, pts["services.app.shedding"])
ax2.grid(False)
none = pts.set_index("services.app.shedding").loc["none"]
ax1.set_title(f"2× overload: without shedding goodput falls to {none['throughput_rps']:.0f}/s, p99 to {none['p99_ms']:,.0f} ms")
fig.legend(loc="outside lower center", ncols=2)
dssim_nb.finish(fig, "load-shedding")
print(pts[["services.app.shedding", "throughput_rps", "p99_ms", "shed", "timeouts", "availability"]].round(2).to_string(index=False))
g = pts.set_index("services.app.shedding")
dssim_nb.check(my_prediction, g.loc["none", "throughput_rps"], "ok/s")
assert g.loc["none", "throughput_rps"] < 0.5 * g.loc["queue", "throughput_rps"], "no shedding: the work is done too late"
assert g.loc["deadline(100ms)", "p99_ms"] < 200

# %% [markdown]
# ## Autoscaling under a spike
#
# `experiments/autoscaling-spike.toml` (models/autoscaling.toml): 900 requests/s on one
# instance that serves 200/s. The autoscaler reacts after its stabilization window, and the
# new instances help only once provisioned. The runs compare provisioning times of 15 s, 45 s
# and 120 s.
#
# **Predict:** with 45 s to provision an instance, what share of requests (availability, 0
# to 1) is answered?

# %%
my_prediction = None  # availability, e.g. 0.9

# %%
sp = dssim_nb.run("autoscaling-spike")
ts, runs = sp["timeseries"], sp["runs"].set_index("run")
fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
first = True
for run, g in ts.groupby("run"):
    label = f"provision {runs.loc[run, 'autoscalers.web-scaler.provision']}"
    line, = ax1.plot(g["t_s"], 200 * g["instances"], label=f"capacity, {label}")
    if first:
        ax1.plot(g["t_s"], g["arrivals_rps"], "k--", lw=1.2, label="offered load")
        first = False
    ax2.plot(g["t_s"], g["shed"] / 5, color=line.get_color(), label=label)
ax1.set_ylabel("requests/s")
ax1.set_ylim(bottom=0)
ax1.set_title("900/s on one 200/s instance: requests are refused until capacity catches up")
ax1.legend()
ax2.set_ylabel("refused (503) per second")
ax2.set_xlabel("time (s)")
dssim_nb.finish(fig, "autoscaling-spike")
print(runs[["autoscalers.web-scaler.provision", "availability", "shed", "instance_hours"]].to_string(index=False))
av = runs.set_index("autoscalers.web-scaler.provision")["availability"]
dssim_nb.check(my_prediction, av["45s"])
assert av["15s"] > av["45s"] > av["120s"]

# %% [markdown]
# ## Autoscaling over a day: cost against latency
#
# `experiments/autoscaling-diurnal.toml`: a day compressed to 10 minutes (100/s at night,
# 1,500/s at noon), a CPU-target autoscaler. A fixed fleet sized for noon would need
# 1500 / (0.7 × 200) ≈ 11 instances all day: 11 × 10/60 ≈ 1.8 instance-hours.
#
# **Predict:** with a CPU target of 0.7, how many instance-hours does the autoscaled fleet
# use?

# %%
my_prediction = None  # instance-hours, e.g. 1.8

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
ax.set_title("Autoscaling beats a fixed fleet on cost; a higher target is cheaper and slower")
ax.margins(0.25)
ax.legend()
dssim_nb.finish(fig, "autoscaling-diurnal")
print(pts[["autoscalers.day.target", "instance_hours", "cost", "p99_ms", "availability"]].round(3).to_string(index=False))
d = pts.set_index("autoscalers.day.target")
dssim_nb.check(my_prediction, d.loc[0.7, "instance_hours"], "instance-hours")
assert d.loc[0.5, "instance_hours"] > d.loc[0.9, "instance_hours"]
assert d.loc[0.5, "availability"] > d.loc[0.9, "availability"]
assert d["instance_hours"].max() < 11 * 10 / 60

# %% [markdown]
# ## Canary rollout with automatic rollback
#
# `experiments/canary.toml` (models/canary.toml): version 2 goes to 5%, 25%, then everyone.
# A good release and a bad one (3% of its requests fail) each meet a strict gate (roll back
# above 1% errors) and a loose one (above 5%).
#
# **Predict:** for the bad release, how many times more errors does the loose gate let
# users see than the strict one?

# %%
my_prediction = None  # ratio, e.g. 2

# %%
cn = dssim_nb.run("canary")
pts = cn["points"].copy()
pts["setup"] = pts.apply(lambda r: f"release {r['services.app.canary.error_rate']:.0%} errors\ngate {r['services.app.canary.max_error_rate']:.0%}", axis=1)
fig, ax = plt.subplots(figsize=(8, 3.8))
ax.bar(pts["setup"], pts["errors"], color=["C3" if sh > 0 and er > 0 else "C2" for sh, er in zip(pts["canary_share"], pts["services.app.canary.error_rate"])])
for i, r in enumerate(pts.itertuples()):
    fate = "promoted" if r.canary_share == 1 else "rolled back" if r.canary_share == 0 else f"at {r.canary_share:.0%}"
    ax.text(i, r.errors, f"{r.errors:,.0f} errors, {fate}", ha="center", va="bottom", fontsize=8)
ax.set_ylabel("errors users saw (count)")
ax.tick_params(axis="x", labelsize=8)
ax.set_title("A strict gate rolls a bad release back before most users meet it")
dssim_nb.finish(fig, "canary")
print(pts[["services.app.canary.error_rate", "services.app.canary.max_error_rate", "canary_share",
           "canary_rollback_s", "errors", "availability"]].to_string(index=False))
c = pts.set_index(["services.app.canary.error_rate", "services.app.canary.max_error_rate"])
dssim_nb.check(my_prediction, c.loc[(0.03, 0.05), "errors"] / c.loc[(0.03, 0.01), "errors"], "×")

# %% [markdown]
# The strict gate sees 3% errors among the first 5% of users and rolls back at once; the
# loose gate promotes the bad release to everyone.
assert c.loc[(0.0, 0.01), "canary_share"] == 1, "a good release is promoted"
assert c.loc[(0.03, 0.01), "canary_share"] == 0, "a bad release is rolled back"
assert c.loc[(0.03, 0.01), "errors"] < 0.05 * c.loc[(0.03, 0.05), "errors"]

# %% [markdown]
# ## Async job queues: retries and dead letters
#
# `experiments/job-queue.toml` (models/job-queue.toml): about 60 jobs/s, up to 3 retries with
# backoff; the sweep varies the share f of attempts that fail.
#
# **Predict:** with f = 0.5, what share of jobs (0 to 1) ends in the dead-letter queue?

# %%
my_prediction = None  # share, e.g. 0.5

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
dssim_nb.label(ax, "failure rate per attempt", "share of jobs dead-lettered",
               "Each retry multiplies the dead share by f: f⁴ after 3 retries", legend=True)
dssim_nb.finish(fig, "job-queue")
r = pts.set_index("queues.emails.failure_rate")
dssim_nb.check(my_prediction, r.loc[0.5, "dead share"])
assert r.loc[0.0, "jobs_dead"] == 0
assert abs(r.loc[0.5, "dead share"] - 0.0625) < 0.02

# %% [markdown]
# ## Priority job queues: who absorbs the queueing
#
# `experiments/priority-queues.toml`: one worker, exp(4 ms) per job; 25% of the jobs are
# `high`, 75% `low`. A free worker takes a waiting high job first (non-preemptive). The
# sweep raises the job rate from 100/s to 225/s (load 0.4 to 0.9). Cobham's formula for
# the wait of class k: W_k = W0 / ((1 − σ_{k−1})(1 − σ_k)), W0 = λ E[S²] / 2, σ_k the load
# of classes 1..k; the time from offer to success is W_k + 4 ms.
#
# **Predict:** at load 0.8 (200 jobs/s) FIFO gives every job 20 ms of mean time (16 ms
# waiting). What mean time (ms) does the low class get with priorities?

# %%
my_prediction = None  # ms, e.g. 20

# %%
pq = dssim_nb.run("priority-queues")
comp = pq["components"]
rate = pq["runs"].set_index("run")["clients.users.rate"]
cls = comp[comp["kind"] == "queue_class"].copy()
cls["rate"] = cls["run"].map(rate)
cls["class"] = cls["component"].str.split(".").str[-1]
tab = cls.pivot_table(index="rate", columns="class", values=["mean_ms", "p99_ms"])
print(tab.round(1).to_string())


def cobham(lam, share_high=0.25, es=4.0):
    lam = lam / 1000.0  # per ms
    w0 = lam * 2 * es ** 2 / 2
    s1, s2 = share_high * lam * es, lam * es
    return es + w0 / (1 - s1), es + w0 / ((1 - s1) * (1 - s2))


fig, ax = plt.subplots(figsize=(5.5, 3.8))
lam = np.linspace(80, 230, 100)
hi, lo = zip(*(cobham(x) for x in lam))
for c, th, color in [("high", hi, "C0"), ("low", lo, "C3")]:
    ax.plot(tab.index, tab[("mean_ms", c)], "o", color=color, label=f"{c} (simulated)")
    ax.plot(lam, th, "--", color=color, label=f"{c} (Cobham)")
ax.plot(lam, 4.0 / (1 - lam * 4.0 / 1000.0), "k:", label="FIFO (M/M/1)")
dssim_nb.label(ax, "jobs/s (one worker, 250/s at most)", "mean time offer → done (ms)",
               "The high class keeps a low wait; the low class absorbs the queueing", yscale="log",
               legend={"fontsize": 8})
dssim_nb.finish(fig, "priority-queues")
dssim_nb.check(my_prediction, tab.loc[200, ("mean_ms", "low")])
assert tab.loc[225, ("mean_ms", "high")] < 15
assert tab.loc[225, ("mean_ms", "low")] > 3 * tab.loc[225, ("mean_ms", "high")]

# %% [markdown]
# ## Pub/sub fan-out: publish once, deliver N times
#
# `experiments/pub-sub.toml`: the app publishes every order (100/s) once to a topic; each
# subscriber group (email, search index, analytics, ...) gets its own copy in its own
# backlog, with 4 workers of exp(20 ms). Alone, a group is an M/M/c queue at load 0.5:
# Erlang C gives a mean of 21.7 ms from publish to delivery. A message is *delivered to
# all* when the slowest group has it. The last variant makes one group of three slow
# (exp(50 ms): it clears 80/s of the 100/s published).
#
# **Predict:** with 10 groups, how long (ms, on average) until a message has reached all
# ten?

# %%
my_prediction = None  # ms, e.g. 25

# %%
ps = dssim_nb.run("pub-sub")
comp, runs = ps["components"], ps["runs"].set_index("run")
subs = comp[comp["kind"] == "subscriber"]
variant = subs.groupby("run")["component"].agg(
    lambda c: "1 slow of 3" if c.str.contains("slow").any() else f"{len(c)} groups")
topic = comp[comp["component"] == "orders"].set_index("run")
tab = pd.DataFrame({
    "variant": variant,
    "groups": subs.groupby("run").size(),
    "delivered to all, mean ms": topic["mean_ms"],
    "delivered to all, p99 ms": topic["p99_ms"],
    "copies/s (work)": runs["jobs_done"] / runs["duration_s"],
    "backlog (mean)": topic["mean_queue"],
    "publisher p99 ms": runs["p99_ms"],
}).groupby("variant").mean()
print(tab.round(1).to_string())


def mmc_survival(t, c=4, lam=100.0, s=0.02):
    """P(time in an M/M/c queue > t): Erlang C's wait, then the service."""
    a, mu = lam * s, 1 / s
    terms = [a ** k / math.factorial(k) for k in range(c)]
    top = a ** c / math.factorial(c) / (1 - a / c)
    pc = top / (sum(terms) + top)
    th = c * mu - lam
    return (1 - pc) * np.exp(-mu * t) + pc * (th * np.exp(-mu * t) - mu * np.exp(-th * t)) / (th - mu)


tt = np.linspace(0, 1.0, 200001)
theory = {n: 1e3 * np.trapezoid(1 - (1 - mmc_survival(tt)) ** n, tt) for n in range(1, 11)}
fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(13, 3.8))
fast = tab[tab.index != "1 slow of 3"]
ax.plot(fast["groups"], fast["delivered to all, mean ms"], "o", ms=8, label="simulated")
ax.plot(list(theory), list(theory.values()), "k--", label="E[max of N M/M/c] (theory)")
ax.plot(range(1, 11), [20 * sum(1 / k for k in range(1, n + 1)) for n in range(1, 11)], "k:",
        label="H_N × 20 ms (no waiting)")
ax.set_xlabel("subscriber groups N")
ax.set_ylabel("publish → delivered to all, mean (ms)")
ax.legend(fontsize=8)
bx.bar(fast.index, fast["copies/s (work)"], color="C1")
bx.set_ylabel("deliveries per second (the work)")
bx.set_title("the cost: N× the processing, N backlogs", fontsize=9)
inst = ps["instances"]
slow_run = variant[variant == "1 slow of 3"].index[0]
for name, color in [("orders.slow", "C3"), ("orders.sub.1", "C0")]:
    s = inst[(inst["run"] == slow_run) & (inst["instance"] == name)]
    cx.plot(s["t_s"], s["queue_len"], color=color, label=f"{name} backlog")
cx.plot([0, 65], [0, 65 * 20], "k--", label="theory (λ − cμ)·t = 20/s")
dssim_nb.label(cx, "time (s)", "messages waiting",
               f"publisher p99 {tab['publisher p99 ms'].iloc[0]:.1f} ms in every variant", title_size=9,
               legend={"fontsize": 8})
fig.suptitle("Delivered to all is the max of N groups (≈ H_N × 20 ms) at N× the work; a slow group falls behind alone")
dssim_nb.finish(fig, "pub-sub")
dssim_nb.check(my_prediction, tab.loc["10 groups", "delivered to all, mean ms"], "ms")
assert abs(tab.loc["10 groups", "delivered to all, mean ms"] - theory[10]) < 0.05 * theory[10]
assert tab["publisher p99 ms"].nunique() == 1, "the publisher never waits for a subscriber"
s = inst[(inst["run"] == slow_run) & (inst["instance"] == "orders.slow")].set_index("t_s")
assert abs((s.loc[60, "queue_len"] - s.loc[10, "queue_len"]) / 50 - 20) < 4

# %% [markdown]
# Each extra group costs the same again in workers and deliveries, but the wait for all of
# them grows only like ln N: the max of N exponentials is H_N times one of them (10 groups:
# 2.9×). The publisher's latency does not move at all — the topic accepts the message at
# once and the groups work on their own copies — so a group that cannot keep up (the slow
# one clears 80 of the 100 messages a second) only grows its own backlog, by λ − cμ = 20
# messages a second, and its lag (the age of its oldest undelivered message) by 0.2 s a
# second, while the other groups stay at 21.7 ms. That decoupling is also the risk: nobody
# upstream slows down, so a backlog grows until someone watches the lag.

# %% [markdown]
# ## Circuit breaker: stop waiting on a dependency that hangs
#
# `experiments/circuit-breaker.toml`: 300 pages/s; every page calls a recommendations
# service (`recs`) with a 1 s timeout and can do without its answer (`optional`). From 20 s
# to 50 s `recs` hangs (service times × 2,000). With timeouts alone every page holds one
# of the front's 40 workers for up to 1 s: the front can then finish at most 40 pages/s.
# With a circuit breaker (`cb`: opens after 5 failures in a row, tries one call every 2 s)
# pages skip the dead dependency at once.
#
# **Predict:** during the failure, how many pages per second does the front serve in time
# (goodput) with timeouts alone, and with the breaker?

# %%
my_prediction = None  # pages/s with timeouts alone, e.g. 150

# %%
cb = dssim_nb.run("circuit-breaker", "replications=1")
runs = cb["runs"].set_index("run")
variant = runs["services.front.calls.0.to"].map({"recs": "timeouts only", "cb": "circuit breaker"})
ts = cb["timeseries"].copy()
ts["variant"] = ts["run"].map(variant)
comp = cb["components"]
row = comp.set_index(["run", "component"])["requests"]
run_of = {v: k for k, v in variant.items()}
# Calls that waited out the 1 s timeout: the front's own without a breaker, the breaker's.
hung = pd.Series({
    "timeouts only": row[(run_of["timeouts only"], "front.calls.recs.timeouts")],
    "circuit breaker": row[(run_of["circuit breaker"], "cb.timeouts")],
})
load = comp[comp["component"] == "recs"].set_index("run")["requests"].rename(index=variant)
fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.5, 3.8), gridspec_kw={"width_ratios": [2.2, 1]})
for name, color in [("timeouts only", "C3"), ("circuit breaker", "C0")]:
    d = ts[ts["variant"] == name]
    ax.plot(d["t_s"], d["goodput_rps"], color=color, label=name)
ax.axhline(300, color="gray", ls=":", label="offered: 300 pages/s")
ax.axhline(40, color="C3", ls="--", label="timeouts only, at most: 40 workers / 1 s")
ax.axvspan(20, 50, color="0.9", zorder=0)
ax.set_xlabel("time (s); recs hangs from 20 to 50 s (shaded)")
ax.set_ylabel("goodput (pages/s served in time)")
ax.legend(fontsize=7, loc="lower left")
bx.bar(hung.index, hung.values, color=["C3" if v == "timeouts only" else "C0" for v in hung.index])
bx.set_ylabel("calls into recs left hanging 1 s (calls)")
bx.set_title("load on the failing service", fontsize=9)
bx.tick_params(axis="x", labelsize=8)
fig.suptitle("A breaker keeps serving pages while recs hangs, and stops hammering it")
dssim_nb.finish(fig, "circuit-breaker")

# %%
during = ts[(ts["t_s"] > 25) & (ts["t_s"] <= 50)].groupby("variant")["goodput_rps"].mean()
print(during.round(0).to_dict())
# Both variants send the same pages (same seeds): the difference in calls reaching recs is
# what timeouts alone add while it hangs.
print("calls into recs during the failure, timeouts only:",
      load["timeouts only"] - load["circuit breaker"] + hung["circuit breaker"])
print(runs.assign(variant=variant).set_index("variant")[["errors", "shed", "timeouts", "p99_all_ms", "goodput_rps"]])
dssim_nb.check(my_prediction, during["timeouts only"], "pages/s")
assert during["circuit breaker"] > 2 * during["timeouts only"]
assert load["circuit breaker"] < load["timeouts only"]
assert hung["circuit breaker"] * 5 < hung["timeouts only"]

# %% [markdown]
# With timeouts alone the front's workers all wait on `recs`, the queue fills and pages are
# shed or time out even though none of them needs `recs`. The breaker turns each call into
# an immediate failure after 5 timeouts; pages skip the recommendations and the front stays
# as fast as without the dependency. It also sends almost nothing to the hung service (one
# trial every 2 s), which is what lets a real dependency recover. The price: pages served
# without recommendations, and a few slow pages at each trial.

# %% [markdown]
# ## Bulkheads: one slow dependency must not take the others down
#
# `experiments/bulkheads.toml`: browsing (80% of 200 requests/s) calls a healthy catalog;
# checkout (20%) calls payments, which hangs from 20 s to 50 s (2 s per call). Without a
# bulkhead checkouts hold up to all 40 front workers. With `pool = 8` on the payments call
# at most 8 workers wait on payments; a ninth checkout is refused at once.
#
# **Predict:** what happens to the p99 of *browsing* (read_p99_ms) without the bulkhead?

# %%
my_prediction = None  # ms, e.g. 50

# %%
bh = dssim_nb.run("bulkheads", "replications=1")
r = bh["runs"].copy()
r["variant"] = r["services.front.calls.1.pool"].map({1000: "no bulkhead", 8: "bulkhead of 8"})
r = r.set_index("variant")
fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.6))
ax.bar(r.index, r["read_p99_ms"], color=["C3", "C0"])
ax.axhline(10 * np.log(100) + 4, color="k", ls="--", label="theory: catalog p99 + CPU ≈ 50 ms")
ax.set_yscale("log")
ax.set_ylabel("browsing (reads) p99 (ms)")
ax.legend(fontsize=8)
bx.bar(r.index, r["errors"] + r["shed"] + r["timeouts"], color=["C3", "C0"])
bx.set_ylabel("failed requests (errors + shed + timeouts)")
bx.set_title("the cost: checkouts refused at once", fontsize=9)
fig.suptitle("With a bulkhead the healthy path keeps its latency while payments hangs")
dssim_nb.finish(fig, "bulkheads")

# %%
print(r[["read_p99_ms", "write_p99_ms", "errors", "shed", "timeouts", "goodput_rps"]])
dssim_nb.check(my_prediction, r.loc["no bulkhead", "read_p99_ms"], "ms")
assert r.loc["bulkhead of 8", "read_p99_ms"] < 100
assert r.loc["no bulkhead", "read_p99_ms"] > 10 * r.loc["bulkhead of 8", "read_p99_ms"]

# %% [markdown]
# Without the bulkhead the checkouts occupy every worker, so browsing waits in the front's
# queue although the catalog is fine: p99 in seconds, requests shed. With it browsing is
# untouched, and checkouts beyond 8 in flight fail at once (an error the user sees
# immediately, instead of after a 2 s hang). A bulkhead that refuses without waiting is a
# loss system: with Poisson calls and call times independent of the load, the share it
# refuses is Erlang B of its size at the offered load (calls/s × mean call time); the test
# `calls::bulkhead_refusals_match_erlang_b` checks it (5 slots at 4 Erlangs: 0.199).

# %% [markdown]
# ## Outlier ejection: the balancer finds the gray instance
#
# `experiments/outlier-ejection.toml`: the gray failure again (round robin, `app.1` 10×
# slower from 20 s to 50 s), with passive outlier ejection on the balancer: every second it
# compares each backend's mean answer time with the median of the four, and a backend more
# than `latency_factor` times slower leaves the rotation for `ejection_time` (one of four at
# most). The sweep tries ejection times of 2, 10 and 30 s, with a loose (3×) and a tight
# (1.1×) factor.
#
# **Predict:** with a 10 s ejection time, what is the p99 of every request (ms)? Without
# ejection it is 1 s: the requests stuck behind app.1 time out.

# %%
my_prediction = None  # ms, e.g. 300

# %%
oe = dssim_nb.run("outlier-ejection", "replications=1")
base = dssim_nb.run("gray-failure", "replications=1", "load_balancers.lb.algorithm=round_robin")["points"].iloc[0]
op = oe["points"].copy()
op["ejection_s"] = op["load_balancers.lb.outlier_ejection.ejection_time"].str.rstrip("s").astype(float)
oc = oe["components"]
oruns = oe["runs"].set_index("run")
ej = oc[oc["kind"] == "outlier_ejection"].set_index("run")
fe = oc[oc["kind"] == "false_ejection"].set_index("run")
per_run = pd.DataFrame({
    "latency_factor": oruns["load_balancers.lb.outlier_ejection.latency_factor"],
    "ejection_s": oruns["load_balancers.lb.outlier_ejection.ejection_time"].str.rstrip("s").astype(float),
    "ejections": ej["requests"], "capacity_removed": ej["utilization"], "false_ejections": fe["requests"],
})
print(per_run.to_string())
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4))
for f, g in op.groupby("load_balancers.lb.outlier_ejection.latency_factor"):
    ax1.plot(g["ejection_s"], g["p99_all_ms"], "o-", label=f"ejection, latency_factor {f}")
ax1.axhline(base["p99_all_ms"], color="C3", ls="--", label=f"no ejection (gray-failure): {base['p99_all_ms']:.0f} ms")
dssim_nb.label(ax1, "ejection time (s)", "p99 of every request (ms)",
               "Ejection cuts p99 from 1 s (timeouts) to 12–230 ms", yscale="log", legend={"fontsize": 8})
for f, g in per_run.groupby("latency_factor"):
    ax2.plot(g["ejection_s"], 100 * g["capacity_removed"], "o-", label=f"capacity removed, factor {f}")
    ax2.bar(g["ejection_s"] + (0.6 if f > 2 else -0.6), g["false_ejections"], width=1.2, alpha=0.4,
            label=f"false ejections, factor {f}")
ej_t = np.array([2, 10, 30])
ax2.plot(ej_t, 100 * np.minimum(30, np.ceil(30 / (ej_t + 1)) * ej_t) / (50 * 4), "k:",
         label="theory: app.1 out ⌈30/(t+1)⌉ times × t, of 50 s × 4 backends")
dssim_nb.label(ax2, "ejection time (s)", "% of the fleet out / false ejections",
               "Cost: up to 15% of the fleet out; false ejections at 1.1×", legend={"fontsize": 7})
dssim_nb.finish(fig, "outlier-ejection")
p3 = op[op["load_balancers.lb.outlier_ejection.latency_factor"] == 3].set_index("ejection_s")
dssim_nb.check(my_prediction, p3.loc[10, "p99_all_ms"], "ms")
assert (op["availability"] > 0.999).all()
assert p3.loc[30, "p99_all_ms"] < p3.loc[2, "p99_all_ms"] < base["p99_all_ms"]

# %% [markdown]
# A health check asks "are you alive?"; outlier ejection asks "are you much worse than the
# others?", from answers the balancer sees anyway. Each time a short ejection ends, the slow
# instance is back for an interval and its slow answers show in the tail; a long one keeps
# it out past its recovery. The capacity removed is the share of the fleet out of rotation;
# with a tight factor a healthy backend whose second happened to be slower than the median
# is now and then ejected, and with at most one of four out, that false ejection can keep
# the real outlier in.

# %% [markdown]
# ## Rolling deploys: readiness checks and graceful drain
#
# `experiments/rolling-deploy.toml`: four instances (50 ms per request, ~12 requests in
# flight each) at 1,000 requests/s are redeployed one at a time from 20 s. A new process
# takes 5 s to start and 10 s to warm up, during which it is alive but fails every request.
# The sweep crosses `drain` (0 s: stop at once; 30 s: leave the rotation, finish the
# requests held, then stop) with `readiness` (false: rejoin the rotation when the process is
# up; true: only when warm).
#
# **Predict:** with liveness checks only (no readiness) and a drain, how many requests fail
# during the deploy?

# %%
my_prediction = None  # errors, e.g. 1000

# %%
rd = dssim_nb.run("rolling-deploy", "replications=1")
rp = rd["points"].copy()
rruns = rd["runs"].set_index("run")
rc = rd["components"]
dep = rc[rc["kind"] == "deploy"].set_index("run")["mean_ms"] / 1000
rruns["deploy_s"] = dep
rp["label"] = ("drain " + rp["services.app.deploy.drain"] + ", readiness " + rp["services.app.deploy.readiness"].astype(str))
rp["deploy_s"] = rruns.groupby(["services.app.deploy.drain", "services.app.deploy.readiness"])["deploy_s"].mean().values
print(rp[["label", "errors", "availability", "p99_all_ms", "deploy_s"]].round(4).to_string(index=False))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4))
for run, g in rd["timeseries"].groupby("run"):
    r = rruns.loc[run]
    ax1.plot(g["t_s"], g["errors"], label=f"drain {r['services.app.deploy.drain']}, readiness {r['services.app.deploy.readiness']}")
ax1.axvline(20, color="grey", ls=":", label="deploy starts")
dssim_nb.label(ax1, "time (s)", "errors per second", "Liveness only: each cold instance fails its share",
               legend={"fontsize": 8})
x = np.arange(len(rp))
ax2.bar(x - 0.2, rp["errors"], width=0.4, color="C3", label="errors")
ax2.set_yscale("symlog", linthresh=10)
ax2.set_ylabel("errors (symlog)")
ax2.set_xticks(x, rp["label"].str.replace(", ", "\n"), fontsize=8)
ax2.set_xlabel("red: errors (left axis); blue: deploy duration (right axis)")
ax3 = ax2.twinx()
ax3.bar(x + 0.2, rp["deploy_s"], width=0.4, color="C0", label="deploy duration (s)")
ax3.axhline(4 * 15, color="C0", ls="--", lw=1, label="theory 4 × (start + warm-up) = 60 s")
ax3.axhline(4 * 5, color="C0", ls=":", lw=1, label="theory 4 × start = 20 s")
ax3.set_ylabel("deploy duration (s)")
ax2.set_title("Drain + readiness: no errors, 3× the deploy time")
h1, l1 = ax2.get_legend_handles_labels()
h2, l2 = ax3.get_legend_handles_labels()
ax2.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper center")
dssim_nb.finish(fig, "rolling-deploy")
rpi = rp.set_index(["services.app.deploy.drain", "services.app.deploy.readiness"])
dssim_nb.check(my_prediction, rpi.loc[("30s", False), "errors"], "errors")
assert rpi.loc[("30s", True), "errors"] == 0
assert rpi.loc[("30s", False), "errors"] > 9000

# %% [markdown]
# A liveness check ("is the process running?") lets a cold instance into the rotation,
# where it fails about a quarter of the traffic for its whole warm-up; a readiness check
# ("can you serve now?") keeps it out until warm. Stopping without a drain fails the
# requests in flight and everything routed to the instance until the health checks notice.
# The errors fail fast, so p99 of every request barely moves: availability and errors are
# the measure here. The price of doing it right is time — the deploy waits for every warm-up.

# %% [markdown]
# ## Feature flags: a kill switch under load
#
# `experiments/feature-flags.toml`: 30% of the requests use an expensive feature (12 ms of
# extra CPU on top of 4 ms). With it the four instances serve about 4,200 requests/s, without
# it 8,000. From 20 s to 40 s the load doubles from 2,500 to 5,000 requests/s. The sweep pins
# the flag on, pins it off, or lets a kill switch decide: every second it reads the
# utilization and turns the feature off at 85% or more, back on below 50%.
#
# **Predict:** with the kill switch, what share of the requests that wanted the feature got it?

# %%
my_prediction = None  # share between 0 and 1, e.g. 0.8

# %%
ff = dssim_nb.run("feature-flags", "replications=1")
fp = ff["points"].set_index("services.app.feature.flag")
fruns = ff["runs"].set_index("run")
fc = ff["components"]
feat = fc[fc["kind"] == "feature_flag"].set_index("run")
feat["flag"] = fruns["services.app.feature.flag"]
feat = feat.set_index("flag")
tab = fp[["availability", "goodput_rps", "p99_all_ms", "shed"]].copy()
tab["feature served"] = feat["hit_ratio"]
tab["flag off (share of time)"] = feat["utilization"]
print(tab.round(3).to_string())
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4))
for run, g in ff["timeseries"].groupby("run"):
    ax1.plot(g["t_s"], g["p99_all_ms"], label=f"flag {fruns.loc[run, 'services.app.feature.flag']}")
ax1.axvspan(20, 40, color="grey", alpha=0.12, label="5,000 req/s")
dssim_nb.label(ax1, "time (s)", "p99 of every request (ms)", "Kill switch: feature off 1 s into the spike",
               yscale="log", legend={"fontsize": 8})
order = ["on", "auto", "off"]
x = np.arange(3)
ax2.bar(x - 0.2, [100 * (1 - tab.loc[o, "availability"]) for o in order], width=0.4, color="C3",
        label="requests failed (%)")
ax2.bar(x + 0.2, [100 * (1 - tab.loc[o, "feature served"]) for o in order], width=0.4, color="C1",
        label="feature unavailable (% of its requests)")
ax2.axhline(100 * (1 - 90000 / 187500), color="C1", ls="--", lw=1,
            label="theory: share of requests arriving while off (52%)")
ax2.set_xticks(x, ["always on", "kill switch", "always off"])
ax2.set_ylabel("%")
ax2.set_title("Cost moves from failed requests to a missing feature")
ax2.legend(fontsize=8)
dssim_nb.finish(fig, "feature-flags")
dssim_nb.check(my_prediction, tab.loc["auto", "feature served"], "")
assert tab.loc["auto", "availability"] > 0.999 > 0.95 > tab.loc["on", "availability"]

# %% [markdown]
# A canary limits *who* meets a new release; a feature flag decides *what* runs, at run
# time, without a deploy. Used as a kill switch it turns an overload into a degraded but
# working service: every request is answered, some without the feature. Set the restore
# level close to the kill level and the flag flaps: off, idle, on, overloaded, off.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 — health checks every second
# With a probe every 1 s (`load_balancers.lb.health_check.interval=1s`) and 3 failed probes
# to mark a server down, estimate the errors after the crash with the formula of the first
# section (use the midpoint of "up to one interval"). Store it in `answer_1`; the check cell
# runs it.

# %%
answer_1 = None

# %% [solution]
interval, unhealthy = 1.0, 3
answer_1 = 500 * (interval / 2 + (unhealthy - 1) * interval)
answer_1

# %%
ex1 = dssim_nb.run("health-checks", "load_balancers.lb.health_check.interval=1s",
                   "load_balancers.lb.health_check.unhealthy=3", "replications=1")["runs"].iloc[0]
dssim_nb.check(answer_1, ex1["errors"], "errors", tolerance=0.3)

# %% [markdown]
# ### Exercise 2 — how many retries make a storm?
# Use the sliders (or the static grid below) to find the smallest number of retries that
# keeps the server down after the slowdown when there is no budget. Store it in
# `answer_2`; the check cell runs 1 to 3 retries.

# %%
def retry_live(ax, retries=3, budget=False):
    r = dssim_nb.run("retry-storm", f"clients.users.retries.max={retries}",
                     f"clients.users.retries.budget={0.1 if budget else 100.0}", "replications=1")
    t, run = r["timeseries"], r["runs"].iloc[0]
    ax.plot(t["t_s"], t["rps"], label="ok/s")
    ax.axvspan(10, 15, color="orange", alpha=0.15)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("ok answers / s")
    ax.set_title(f"{retries} {'retry' if retries == 1 else 'retries'}, {'10% budget' if budget else 'no budget'}:\n"
                 f"{run['attempts'] / run['requests']:.2f} attempts per request", fontsize=9)

dssim_nb.live(retry_live, [dict(retries=1), dict(retries=2), dict(retries=3, budget=True)],
              retries=widgets.IntSlider(value=3, min=0, max=5, description="retries"),
              budget=widgets.Checkbox(value=False, description="10% retry budget"))

# %%
answer_2 = None

# %% [solution]
late_ok = {n: dssim_nb.run("retry-storm", f"clients.users.retries.max={n}", "clients.users.retries.budget=100.0",
                           "replications=1")["timeseries"].query("t_s >= 30")["rps"].mean() for n in (1, 2, 3)}
answer_2 = min(n for n, ok in late_ok.items() if ok < 200)
answer_2

# %%
down = [n for n in (1, 2, 3) if dssim_nb.run("retry-storm", f"clients.users.retries.max={n}", "clients.users.retries.budget=100.0",
                                             "replications=1")["timeseries"].query("t_s >= 30")["rps"].mean() < 200]
dssim_nb.check(answer_2, min(down), "retries", tolerance=0)
