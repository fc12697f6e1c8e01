# %% [markdown]
# # 8. Requests flowing: LB → app → cache → database
#
# The other notebooks show what a system does in numbers. This one shows it moving: a few
# requests travel through the lecture's production architecture (CDN edge, load balancer,
# app nodes, cache, database), each drawn as a dot in the component it is in at that
# instant, while the lower panel follows the queues over the same seconds. Everything is
# drawn from the run's `trace.json` (the spans of each traced request) and
# `timeseries.csv` (in flight and queued, every 100 ms).
#
# The animation plays inline (matplotlib's `to_jshtml`: play, pause, step with the
# buttons); below it the same frames are drawn as still pictures, for a printed or exported
# copy.

# %%
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import HTML, display
from matplotlib import animation

import dssim_nb

# %% [markdown]
# ## The requests in motion
#
# The load is raised from the production model's night-time 300 requests/s to 20,000
# requests/s, far more than the eight app nodes can serve, so their queues fill from the first
# instant. The first 30 requests after 0.3 s are traced, one after the other.
#
# **Predict:** of the 30 traced requests, how many get past the CDN edge and reach the app
# nodes?

# %%
my_prediction = None  # requests out of 30, e.g. 15

# %%
r = dssim_nb.run("request-trace", "output.trace=30", "output.timeseries=100ms", "clients.users.rate=20000",
                 "warmup=300ms", "duration=1200ms")
tr, ts = r["trace"], r["timeseries"]
stages = ["client", "cdn", "load_balancer", "service", "cache", "database"]
names = ["client", "CDN edge", "load balancer", "app", "cache", "database"]
visits = tr[(tr["status"] != "") & tr["cat"].isin(stages)].copy()
visits["end_ms"] = visits["start_ms"] + visits["dur_ms"]
queued = tr[(tr["cat"] == "service") & (tr["name"] == "queue")].copy()
queued["end_ms"] = queued["start_ms"] + queued["dur_ms"]
t0, t1 = visits["start_ms"].min(), visits["end_ms"].max()
frames = np.linspace(t0, t1, 24)
requests = sorted(visits["request"].unique())
reached_app = visits[visits["cat"] == "service"]["request"].nunique()


def where(t):
    """For each traced request in flight at t: the deepest stage it is in."""
    now = visits[(visits["start_ms"] <= t) & (visits["end_ms"] > t)]
    depth = now.assign(d=now["cat"].map(stages.index)).sort_values("d")
    return depth.groupby("request")["d"].last()


def snapshot(t):
    """Dots at time t: x = the stage, y = its place in that stage's stack, red if queued."""
    pos = where(t)
    waiting = set(queued[(queued["start_ms"] <= t) & (queued["end_ms"] > t)]["request"])
    xy, colors, counts = [], [], {}
    for req, d in pos.items():
        xy.append((d, counts.get(d, 0)))
        counts[d] = counts.get(d, 0) + 1
        colors.append("tab:red" if req in waiting else "tab:blue")
    return np.array(xy).reshape(-1, 2), colors


def stage_axes(ax):
    for d in range(len(stages)):
        ax.add_patch(plt.Rectangle((d - 0.4, -0.5), 0.8, len(requests) + 1, color="0.93", zorder=0))
    ax.set_xlim(-0.6, len(stages) - 0.4)
    ax.set_ylim(-0.8, len(requests) + 0.5)
    ax.set_xticks(range(len(stages)), names)
    ax.grid(False)


fig, (ax_flow, ax_q) = plt.subplots(2, 1, figsize=(8, 6), height_ratios=[2, 1], dpi=60)
stage_axes(ax_flow)
ax_flow.set_ylabel("traced requests inside")
dots = ax_flow.scatter([], [], s=40, zorder=3)
ax_q.plot(ts["t_s"] + 0.05, ts["in_flight"], "o-", ms=3, label="requests in flight (all)")
ax_q.plot(ts["t_s"] + 0.05, ts["queue_len"], "s-", ms=3, label="waiting in app queues")
ax_q.set_title("All requests, every 100 ms (timeseries.csv); the line is the animation's time", fontsize=9)
cursor = ax_q.axvline(t0 / 1000, color="k", lw=1)
ax_q.set_xlabel("time (s)")
ax_q.set_ylabel("requests")
ax_q.set_ylim(bottom=0)
ax_q.legend(loc="upper left", bbox_to_anchor=(1.01, 1))


def frame(i):
    xy, colors = snapshot(frames[i])
    dots.set_offsets(xy)
    dots.set_color(colors)
    ax_flow.set_title(f"t = {frames[i] - t0:.0f} ms: {len(xy)} traced requests in flight (red: waiting in an app queue)")
    cursor.set_xdata([frames[i] / 1000] * 2)
    return dots, cursor


frame(0)
fig.canvas.draw()
fig.set_layout_engine("none")  # lay out once, not on every frame
anim = animation.FuncAnimation(fig, frame, frames=len(frames), interval=120)
display(HTML(anim.to_jshtml()))
plt.close(fig)

# %%
fig, axes = plt.subplots(2, 3, figsize=(13, 6), sharey=True)
for ax, t in zip(axes.flat, frames[[1, 4, 8, 12, 16, 21]]):
    stage_axes(ax)
    xy, colors = snapshot(t)
    ax.scatter(xy[:, 0], xy[:, 1], s=20, c=colors, zorder=3)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.set_title(f"t = {t - t0:.0f} ms", fontsize=9)
axes[0, 0].set_ylabel("traced requests inside")
axes[1, 0].set_ylabel("traced requests inside")
fig.suptitle(f"Six moments of the animation: {reached_app} of {len(requests)} requests get past the CDN to the app")
dssim_nb.finish(fig, "requests-flowing")

# %%
dssim_nb.check(my_prediction, reached_app, "requests")
print(visits.groupby("cat")["request"].nunique().reindex(stages).rename(dict(zip(stages, names))).to_string())

# %% [markdown]
# The CDN answers the popular content at the edge, so only part of the requests go deeper;
# those that do queue at the app when it is busy (red) and a cache miss travels on to the
# database. Open the same `trace.json` in https://ui.perfetto.dev to see every phase.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 — below capacity
# The lower panel shows what the app tier can do at most: the `rps` column of `ts` (ok
# answers per second) once the queues are full. Lower the load to 5,000 requests/s. How many
# of the 30 traced requests will wait in an app queue? Store it in `answer_1`; the check
# cell runs it and draws where the traced requests went in both runs.

# %%
answer_1 = None

# %% [solution]
capacity_rps = ts[ts["t_s"] >= 0.8]["rps"].mean()  # about 14,800 ok answers/s when saturated
print(f"the system answers at most about {capacity_rps:,.0f} requests/s; 5,000/s is well below")
answer_1 = 0 if 5000 < 0.7 * capacity_rps else None
answer_1

# %%
low = dssim_nb.run("request-trace", "output.trace=30", "output.timeseries=100ms", "clients.users.rate=5000",
                   "warmup=300ms", "duration=1200ms")
low_tr = low["trace"]
waited = low_tr[(low_tr["cat"] == "service") & (low_tr["name"] == "queue") & (low_tr["dur_ms"] > 0)]["request"].nunique()
both = pd.DataFrame({
    "20,000 requests/s": visits.groupby("cat")["request"].nunique(),
    "5,000 requests/s": low_tr[(low_tr["status"] != "") & low_tr["cat"].isin(stages)].groupby("cat")["request"].nunique(),
}).reindex(stages).fillna(0)
both.index = names
both.loc["waited in an app queue"] = [queued["request"].nunique(), waited]
fig, ax = plt.subplots(figsize=(8, 3.6))
both.plot.bar(ax=ax, rot=20)
ax.set_ylabel("traced requests (of 30)")
ax.set_title("Below capacity the same path, but nobody waits in a queue")
ax.legend(title="load")
dssim_nb.finish(fig)
dssim_nb.check(answer_1, waited, "requests", tolerance=0)

# %% [markdown]
# ### Exercise 2 — Little's law from the time series
# In the 5,000 requests/s run (`low`), take the mean number of requests in flight L and the
# mean ok answers per second λ from its timeseries after 0.8 s, and compute the mean latency
# W = L / λ in ms. Store it in `answer_2`; the check cell compares it with the mean latency
# measured request by request (runs.csv).

# %%
answer_2 = None

# %% [solution]
late = low["timeseries"][low["timeseries"]["t_s"] >= 0.8]
answer_2 = 1000 * late["in_flight"].mean() / late["rps"].mean()
answer_2

# %%
dssim_nb.check(answer_2, low["runs"]["latency_mean_ms"].iloc[0], "ms", tolerance=0.05,
               what="the mean latency over all requests")
