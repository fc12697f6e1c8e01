"""The same M/M/1 as benches/mm1-long.toml in SimPy: rate 800/s, exp(1 ms) service.

usage: python simpy_mm1.py CUSTOMERS [TIMEOUT_S]

With TIMEOUT_S > 0 each customer is a client with a timeout, as in dssim with
`timeout = "1s"`: the client waits for its answer or the timeout, whichever comes first
(`yield served | env.timeout(TIMEOUT_S)`), and the server finishes the work either way.
SimPy cannot cancel a timeout, so each one stays in its event queue until it fires.
"""
import random
import sys
import time

import simpy

CUSTOMERS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
TIMEOUT_S = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
RATE, MEAN_S = 800.0, 0.001


def main():
    rng = random.Random(1)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)
    stats = {"done": 0, "sojourn": 0.0, "timeouts": 0}

    def serve():
        with server.request() as req:
            yield req
            yield env.timeout(rng.expovariate(1.0 / MEAN_S))

    def client():
        t = env.now
        served = env.process(serve())
        result = yield served | env.timeout(TIMEOUT_S)
        if served in result:
            stats["done"] += 1
            stats["sojourn"] += env.now - t
        else:
            stats["timeouts"] += 1

    def plain():
        t = env.now
        with server.request() as req:
            yield req
            yield env.timeout(rng.expovariate(1.0 / MEAN_S))
        stats["done"] += 1
        stats["sojourn"] += env.now - t

    one = client if TIMEOUT_S > 0 else plain

    def source():
        for _ in range(CUSTOMERS):
            env.process(one())
            yield env.timeout(rng.expovariate(RATE))

    env.process(source())
    t0 = time.perf_counter()
    env.run()
    wall = time.perf_counter() - t0
    n = stats["done"]
    label = f"timeout {TIMEOUT_S:g} s" if TIMEOUT_S > 0 else "no timeout"
    print(f"simpy ({label}): {n} customers in {wall:.3f} s: {n / wall:.0f} customers/s, "
          f"mean sojourn {1000 * stats['sojourn'] / n:.4f} ms, timeouts {stats['timeouts']}")


main()
