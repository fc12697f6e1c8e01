#!/usr/bin/env python3
"""Does `dssim serve` keep pace? 100 instances at 10,000 requests/s, played at 10x.

Starts `dssim serve --port 0`, creates a run of an inline experiment, starts it at the
given speed and reads its server-sent events for a while. Prints the frames per second the
page receives, their mean size, and simulated seconds per wall second (10 means it keeps
pace at 10x). Standard library only.

    python3 benches/serve_pace.py [--speed 10] [--seconds 10] [--dssim target/release/dssim]
"""
import argparse, json, subprocess, time, urllib.request

MODEL = """
name = "pace"
duration = "10m"
seed = 1
[model]
[[model.clients]]
name = "users"
target = "lb"
rate = 10000
timeout = "1s"
[[model.load_balancers]]
name = "lb"
backends = "app"
algorithm = "least_connections"
[[model.services]]
name = "app"
instances = 100
workers = 2
service_time = "exp(15ms)"
[model.network]
latency = "uniform(0.2ms, 0.6ms)"
"""

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--speed", type=float, default=10)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--dssim", default="target/release/dssim")
    a = ap.parse_args()
    srv = subprocess.Popen([a.dssim, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        url = srv.stdout.readline().split()[2].rstrip("/")
        def post(path, body):
            req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json"})
            return json.load(urllib.request.urlopen(req))
        run = post("/api/runs", {"name": "pace.toml", "text": MODEL, "speed": a.speed})
        nodes = len(run["variants"][0]["graph"]["nodes"])
        ev = urllib.request.urlopen(url + f"/api/runs/{run['id']}/events")
        post(f"/api/runs/{run['id']}/control", {"paused": False})
        t0 = time.time(); frames = 0; size = 0; first = last = None
        for line in ev:
            if not line.startswith(b"data:"):
                continue
            f = json.loads(line[5:])
            now = f["variants"][0]["now_s"]
            wall = time.time() - t0
            if first is None and now > 0:
                first = (wall, now)
            if first is not None:
                frames += 1; size += len(line); last = (wall, now)
            if wall > a.seconds:
                break
        dw = last[0] - first[0]
        print(f"{nodes} nodes, speed {a.speed:g}x, {dw:.1f} s wall: {frames / dw:.1f} frames/s, "
              f"{size / frames / 1024:.1f} KiB per frame, "
              f"{(last[1] - first[1]) / dw:.2f} simulated s per wall s")
    finally:
        srv.terminate()

if __name__ == "__main__":
    main()
