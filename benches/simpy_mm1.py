"""The same M/M/1 as benches/mm1-long.toml in SimPy: rate 800/s, exp(1 ms) service.

usage: python simpy_mm1.py CUSTOMERS
"""
import random
import sys
import time

import simpy

CUSTOMERS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
RATE, MEAN_S = 800.0, 0.001


def main():
    rng = random.Random(1)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)
    stats = {"done": 0, "sojourn": 0.0}

    def customer():
        t = env.now
        with server.request() as req:
            yield req
            yield env.timeout(rng.expovariate(1.0 / MEAN_S))
        stats["done"] += 1
        stats["sojourn"] += env.now - t

    def source():
        for _ in range(CUSTOMERS):
            env.process(customer())
            yield env.timeout(rng.expovariate(RATE))

    env.process(source())
    t0 = time.perf_counter()
    env.run()
    wall = time.perf_counter() - t0
    n = stats["done"]
    print(f"simpy: {n} customers in {wall:.3f} s: {n / wall:.0f} customers/s, "
          f"mean sojourn {1000 * stats['sojourn'] / n:.4f} ms")


main()
