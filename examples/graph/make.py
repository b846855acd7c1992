#!/usr/bin/env python3
"""Makes the graph examples' data and, independently of rtl, their expected
results with numpy: `python3 examples/graph/make.py` (numpy only).

Each example is a folder with job.json, its input files and expected/,
one CSV per result stage (named after the stage). tests/graphs.rs runs
every job through a real daemon, chunked and whole, on one and on three
task nodes, and compares each result with these to 1e-9.
"""

import csv
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def cell(value):
    """A value as rtl writes it: floats in the shortest form that reads
    back the same (NaN as NaN), integers as integers."""
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return "NaN" if value != value else repr(value)
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)


def write_csv(path, columns):
    """`columns`: (name, values) pairs, in order."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rows = len(columns[0][1])
    with open(path, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow([name for name, _ in columns])
        for i in range(rows):
            out.writerow([cell(values[i]) for _, values in columns])


def diamond(rng):
    """One file feeding two analyses, joined back (a left join: the
    means leave sensor s5 out)."""
    n = 240
    sensor = np.array(["s%d" % rng.integers(0, 6) for _ in range(n)])
    temp = np.round(rng.uniform(15, 40, n), 3)
    hum = rng.integers(10, 95, n)
    folder = os.path.join(HERE, "diamond")
    write_csv(os.path.join(folder, "readings.csv"),
              [("sensor", sensor), ("temp", temp), ("hum", hum)])
    # hot: temp > 30, then temp_f = temp * 1.8
    hot = temp > 30
    h_sensor, h_temp, h_hum = sensor[hot], temp[hot], hum[hot]
    h_temp_f = h_temp * 1.8
    # means: sensor != s5, grouped by sensor (ascending)
    keep = sensor != "s5"
    keys = np.unique(sensor[keep])
    mean_temp = np.array([temp[keep & (sensor == k)].sum() / np.sum(keep & (sensor == k)) for k in keys])
    max_hum = np.array([hum[keep & (sensor == k)].max() for k in keys])
    count = np.array([np.sum(keep & (sensor == k)) for k in keys])
    # report: hot left-joined with means on sensor, in hot's order; the
    # means' int columns are float in a left join, NaN where none matched.
    index = {k: i for i, k in enumerate(keys)}
    match = [index.get(s) for s in h_sensor]
    pick = lambda values: np.array([float(values[m]) if m is not None else np.nan for m in match])
    j_mean, j_max, j_count = pick(mean_temp), pick(max_hum), pick(count)
    above = h_temp - j_mean
    write_csv(os.path.join(folder, "expected", "report.csv"), [
        ("sensor", h_sensor), ("temp", h_temp), ("hum", h_hum), ("temp_f", h_temp_f),
        ("mean_temp", j_mean), ("max_hum", j_max), ("readings", j_count), ("above", above),
    ])


def stacked(rng):
    """Two weeks of the same counters, written with their columns in
    another order and counts as integers one week and fractions the
    other, stacked by one stage and ranked by the next."""
    folder = os.path.join(HERE, "stacked")
    weeks = []
    for week, (rows, fractional) in enumerate([(90, False), (70, True)]):
        site = np.array(["north", "south", "east"])[rng.integers(0, 3, rows)]
        day = rng.integers(1, 8, rows) + 7 * week
        if fractional:
            count = np.round(rng.uniform(1, 50, rows), 1)
        else:
            count = rng.integers(1, 50, rows)
        load = np.round(rng.uniform(0, 100, rows), 2)
        weeks.append((site, day, count, load))
    s1, d1, c1, l1 = weeks[0]
    write_csv(os.path.join(folder, "week1.csv"), [("site", s1), ("day", d1), ("count", c1), ("load", l1)])
    s2, d2, c2, l2 = weeks[1]
    write_csv(os.path.join(folder, "week2.csv"), [("day", d2), ("load", l2), ("site", s2), ("count", c2)])
    site = np.concatenate([s1, s2])
    day = np.concatenate([d1, d2])
    count = np.concatenate([c1.astype(np.float64), c2])
    load = np.concatenate([l1, l2])
    per_unit = load / count
    order = np.argsort(per_unit, kind="stable")
    write_csv(os.path.join(folder, "expected", "ranked.csv"), [
        ("site", site[order]), ("day", day[order]), ("count", count[order]),
        ("load", load[order]), ("per_unit", per_unit[order]),
    ])


def fork(rng):
    """One file, two results: totals per city and the long trips."""
    folder = os.path.join(HERE, "fork")
    n = 200
    city = np.array(["oslo", "lima", "pune", "kiev"])[rng.integers(0, 4, n)]
    km = np.round(rng.uniform(0.5, 60, n), 2)
    fare = np.round(km * rng.uniform(0.8, 2.5, n) + 3, 2)
    write_csv(os.path.join(folder, "trips.csv"), [("city", city), ("km", km), ("fare", fare)])
    keys = np.unique(city)
    total = np.array([km[city == k].sum() for k in keys])
    trips = np.array([np.sum(city == k) for k in keys])
    write_csv(os.path.join(folder, "expected", "cities.csv"),
              [("city", keys), ("total_km", total), ("trips", trips)])
    long = km > 20
    write_csv(os.path.join(folder, "expected", "long.csv"), [
        ("city", city[long]), ("km", km[long]), ("fare", fare[long]),
        ("per_km", fare[long] / km[long]),
    ])


if __name__ == "__main__":
    rng = np.random.default_rng(17)
    diamond(rng)
    stacked(rng)
    fork(rng)
