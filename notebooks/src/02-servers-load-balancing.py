# %% [markdown]
# # 2. Servers and load balancing
#
# One server runs out of capacity somewhere between 100K and 1M users (notebook 1). There are
# two ways out: a bigger box (vertical scaling) or more boxes behind a load balancer
# (horizontal scaling). This notebook compares them on latency, cost and failure, asks how
# the load balancer should pick a server when requests cost very different amounts or the
# servers differ in size, and then looks at what limits one server besides its CPU: session
# state, the network card and memory.

# %%
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import dssim_nb

# %% [markdown]
# ## Vertical vs horizontal
#
# `experiments/scaling.toml`: 500 requests/s against one instance or four, each at speed 1
# or 4 (speed 4 = a box four times faster). At 30 s `app.0` dies; it comes back at 60 s.
# A cloud provider charges roughly in proportion to cores, a little more for the largest
# sizes: the model prices an instance at $0.10/hour × speed^1.1 (a speed-4 box costs 4.6
# small ones); runs.csv reports the `cost` of each run.

# %%
sc = dssim_nb.run("scaling", "replications=1")
pts = sc["points"].copy()
pts["label"] = pts.apply(lambda r: f"{int(r['services.app.instances'])} x speed {r['services.app.speed']:g}", axis=1)
print(pts[["label", "p50_ms", "p99_ms", "availability", "errors", "shed", "instance_hours", "cost"]].round(3).to_string(index=False))

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
ok = pts[pts["shed"] == 0]
ax1.scatter(ok["cost"], ok["p50_ms"], s=60)
for _, r in ok.iterrows():
    ax1.annotate(f"{r['label']}\navail. {r['availability']:.3f}", (r["cost"], r["p50_ms"]),
                 textcoords="offset points", xytext=(6, 4), fontsize=8)
ax1.margins(0.3)
ax1.set_xlabel("cost of the run ($)")
ax1.set_ylabel("median latency (ms)")
ax1.set_title("Cost vs latency (the overloaded 1 x speed 1 left out)")
ts = sc["timeseries"]
runs = sc["runs"].set_index("run")
for run, g in ts.groupby("run"):
    r = runs.loc[run]
    if r["shed"] > 0:
        continue
    ax2.plot(g["t_s"], g["errors"] / 2, label=f"{int(r['services.app.instances'])} x speed {r['services.app.speed']:g}")
ax2.axvspan(30, 60, color="grey", alpha=0.15, label="app.0 down")
ax2.set_xlabel("time (s)")
ax2.set_ylabel("errors per second")
ax2.set_title("What one failure does")
ax2.legend(fontsize=8)
dssim_nb.save(fig, "scaling")

# %%
big = pts[(pts["services.app.instances"] == 1) & (pts["services.app.speed"] == 4)].iloc[0]
four = pts[(pts["services.app.instances"] == 4) & (pts["services.app.speed"] == 1)].iloc[0]
assert big["p50_ms"] < four["p50_ms"], "a faster box answers each request sooner"
assert four["availability"] > 0.98 > big["availability"], "one dead box of four is a blip; the only box is an outage"
assert abs(four["instance_hours"] / big["instance_hours"] - 4) < 1e-6
assert abs(big["cost"] / four["cost"] - 4 ** 1.1 / 4) < 0.01, "the big box costs 4^1.1 small ones"

# %% [markdown]
# The big box answers each request four times faster, but when it dies the service is gone
# for 30 s (availability ≈ 0.62 over the window). Four small boxes lose only the requests
# sent to the dead one before the health checks notice, and cost a little less.

# %% [markdown]
# ## Load-balancing algorithms under varied request costs
#
# `experiments/lb-algorithms.toml`: 20 single-worker servers; 90% of requests take 5 ms and
# 10% take 55 ms (mean 10 ms). Blind algorithms (random, round robin, ip_hash) keep sending
# work to a server stuck on a long request; algorithms that look at the servers route around it.

# %%
lb = dssim_nb.run("lb-algorithms", "replications=1", "duration=20s")
pts = lb["points"]
fig, ax = plt.subplots(figsize=(6.5, 4.2))
for alg, g in pts.groupby("load_balancers.lb.algorithm", sort=False):
    ax.plot(g["clients.users.rate"] / 2000, g["p99_ms"], marker="o", label=alg)
ax.set_xlabel("server utilization (rate / 2000 per s)")
ax.set_ylabel("p99 latency (ms)")
ax.set_yscale("log")
ax.set_title("p99 against load, 20 servers, hyperexponential service")
ax.legend()
dssim_nb.save(fig, "lb-algorithms")
table = pts.pivot(index="clients.users.rate", columns="load_balancers.lb.algorithm", values="p99_ms").round(0)
print(table)

# %%
hi = pts[pts["clients.users.rate"] == pts["clients.users.rate"].max()].set_index("load_balancers.lb.algorithm")["p99_ms"]
assert hi["least_connections"] < hi["power_of_two"] < hi["round_robin"] < hi["random"]
assert hi["random"] > 3 * hi["least_connections"]

# %% [markdown]
# At 90% load random routing has a p99 several times that of least connections; the power of
# two random choices gets most of the benefit while asking only two servers per request.

# %% [markdown]
# ## Mixed server sizes
#
# `experiments/lb-mixed-sizes.toml`: two big servers (400/s) and two small ones (200/s),
# 900 requests/s. Round robin gives every server 225/s: too much for the small ones.
# Weighted round robin (weights 2, 2, 1, 1) fixes it if someone sets the weights right;
# least connections and power of two find it out by themselves.

# %%
mx = dssim_nb.run("lb-mixed-sizes", "replications=1", "duration=20s")
pts = mx["points"]
fig, ax = plt.subplots(figsize=(6.5, 3.5))
ax.bar(pts["load_balancers.lb.algorithm"], pts["p99_ms"], color=["C3", "C3", "C2", "C2", "C2"])
ax.set_yscale("log")
ax.set_ylabel("p99 latency (ms)")
ax.set_title("Two big and two small servers at 75% of total capacity")
plt.setp(ax.get_xticklabels(), rotation=15)
dssim_nb.save(fig, "lb-mixed-sizes")
print(pts[["load_balancers.lb.algorithm", "p50_ms", "p99_ms", "shed", "availability"]].round(3).to_string(index=False))
m = pts.set_index("load_balancers.lb.algorithm")
assert m.loc["round_robin", "shed"] > 0 and m.loc["weighted_round_robin", "shed"] == 0
assert m.loc["round_robin", "p99_ms"] > 4 * m.loc["least_connections", "p99_ms"]

# %% [markdown]
# ## The state problem: local sessions vs stateless servers
#
# `experiments/sessions.toml`: 5,000 users, four instances. With `sessions = "local"` a
# request that reaches an instance that does not hold the user's session pays a 30 ms
# re-login. Round robin spreads each user's requests over all instances; ip_hash keeps a
# user on one instance (sticky sessions).

# %%
ss = dssim_nb.run("sessions", "replications=1", "duration=15s")
pts = ss["points"].copy()
pts["setup"] = pts["load_balancers.lb.algorithm"] + " / " + pts["services.app.sessions"]
print(pts[["setup", "relogins", "requests", "latency_mean_ms", "p50_ms"]].round(2).to_string(index=False))
fig, ax = plt.subplots(figsize=(6.5, 3.5))
ax.bar(pts["setup"], pts["latency_mean_ms"], color=["C3", "C2", "C2", "C2"])
ax.set_ylabel("mean latency (ms)")
ax.set_title("Local sessions under round robin pay a re-login")
dssim_nb.save(fig, "sessions")
s = pts.set_index("setup")
assert s.loc["round_robin / local", "relogins"] > 0.6 * s.loc["round_robin / local", "requests"]
assert s.loc["ip_hash / local", "relogins"] == 0
assert s.loc["round_robin / local", "latency_mean_ms"] > 3 * s.loc["round_robin / stateless", "latency_mean_ms"]

# %% [markdown]
# ## The network as the bottleneck
#
# `experiments/network-bottleneck.toml`: two instances with a 1 Gbps NIC each and plenty of
# CPU, 1,000 requests/s each. Past ~125 KB per response the NIC cannot keep up.

# %%
nb = dssim_nb.run("network-bottleneck")
pts = nb["points"]
comp = nb["components"]
cpu = comp[comp["component"] == "app"].set_index("run")["utilization"]
sizes = pts["services.app.response_size"]
fig, ax1 = plt.subplots(figsize=(6.5, 4))
ax1.plot(sizes, pts["availability"], "o-", label="availability")
ax1.set_ylabel("availability")
ax1.set_xlabel("response size")
ax2 = ax1.twinx()
ax2.plot(sizes, pts["p99_ms"], "r^--", label="p99 (ms)")
ax2.set_yscale("log")
ax2.set_ylabel("p99 latency (ms)")
ax1.set_title("1 Gbps NIC, 1,000 responses/s per instance")
fig.legend(loc="lower left", bbox_to_anchor=(0.15, 0.2))
dssim_nb.save(fig, "network-bottleneck")
print(pts[["services.app.response_size", "throughput_rps", "p99_ms", "availability"]].round(2).to_string(index=False))
a = pts.set_index("services.app.response_size")["availability"]
assert a["100KB"] > 0.999 and a["200KB"] < 0.1

# %% [markdown]
# ## Memory exhaustion from long-lived connections
#
# `experiments/memory-oom.toml` (models/app-limits.toml): each open WebSocket holds 256 KiB
# on a 4 GiB instance. More connections leave less room for requests; past a point one
# instance runs out, crashes, and its connections move to the others.

# %%
mo = dssim_nb.run("memory-oom", "duration=40s")
pts = mo["points"]
print(pts[["services.app.connections", "oom_crashes", "availability", "errors"]].to_string(index=False))
m = pts.set_index("services.app.connections")
assert m.loc[15000, "oom_crashes"] == 0 and m.loc[40000, "oom_crashes"] > 0
assert m.loc[40000, "availability"] < 0.5
