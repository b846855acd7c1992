"""numpy's side of `rtl bench`'s pipeline: the original's example job
(filter, add, divide, normalize Squash, subtract, average) on cpu, mem and
disk columns drawn from the same distributions as rtl's, written the way a
numpy user would. `rtl bench` runs this script itself; by hand:

    python3 benches/numpy_pipeline.py ROUNDS ROWS...

prints one JSON object: for each row count, the median milliseconds of
ROUNDS timed runs after one untimed warm-up run (the lower median, as
`rtl bench` takes).
"""

import json
import sys
import time

import numpy as np


def squash(c):
    mn, avg = c.min(), c.mean()
    clipped = np.where(c > 2 * avg, 2 * avg, c)
    return (clipped - mn) / clipped.max() * 100


def pipeline(cpu, mem, disk):
    keep = cpu >= 20
    cpu, mem, disk = cpu[keep], mem[keep], disk[keep]
    io = mem + disk
    io_per_cpu = io / cpu
    normal = squash(io_per_cpu)
    centered = normal - 50
    mean_centered = np.full(len(centered), centered.mean())
    return cpu, mem, disk, io, io_per_cpu, normal, centered, mean_centered


def median_ms(rows, rounds):
    rng = np.random.default_rng(7)
    cpu = rng.random(rows) * 100
    mem = rng.random(rows) * 4000
    disk = rng.random(rows) * 800
    pipeline(cpu, mem, disk)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        pipeline(cpu, mem, disk)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return times[(len(times) - 1) // 2]


if __name__ == "__main__":
    rounds = int(sys.argv[1])
    print(json.dumps({rows: median_ms(int(rows), rounds) for rows in sys.argv[2:]}))
