#!/usr/bin/env python3
"""Makes the installed-task examples' data and, independently of rtl and of
the tasks' own code, their expected results: `python3 examples/tasks/make.py`
(numpy only).

installed/ is a task folder (put its files in a folder of task_dirs, and
build calibrate with `rustc --edition 2021 -O calibrate.rs` there). Each
other folder is a job with its input and expected.csv; tests/installed.rs
runs them through a real daemon, chunked and whole, and compares to 1e-9.
"""

import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def cell(value):
    """A value as rtl writes it: floats in the shortest form that reads back
    the same, integers as integers."""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def write_csv(path, columns):
    rows = len(columns[0][1])
    with open(path, "w") as f:
        f.write(",".join(name for name, _ in columns) + "\n")
        for i in range(rows):
            f.write(",".join(cell(values[i]) for _, values in columns) + "\n")


def readings(rng, n):
    sensor = np.array(["s%d" % (i % 4) for i in range(n)])
    temp = np.round(rng.uniform(-10, 45, n), 3)
    return sensor, temp


def rolling(rng):
    """rolling_mean (Python) over a window of 4 rows, the start included."""
    sensor, temp = readings(rng, 500)
    folder = os.path.join(HERE, "rolling")
    write_csv(os.path.join(folder, "readings.csv"), [("sensor", sensor), ("temp", temp)])
    window = 4
    means = []
    for i in range(len(temp)):
        seen = temp[max(0, i - window + 1): i + 1]
        means.append(sum(seen) / len(seen))
    write_csv(os.path.join(folder, "expected.csv"),
              [("sensor", sensor), ("temp", temp), ("tempRolling", np.array(means))])


def calibrate(rng):
    """calibrate (Rust, row-local) into Fahrenheit, then the warm rows."""
    sensor, temp = readings(rng, 1200)
    folder = os.path.join(HERE, "calibrate")
    write_csv(os.path.join(folder, "readings.csv"), [("sensor", sensor), ("temp", temp)])
    fahrenheit = temp * 1.8 + 32.0
    warm = fahrenheit > 80.0
    write_csv(os.path.join(folder, "expected.csv"),
              [("sensor", sensor[warm]), ("temp", temp[warm]), ("tempCal", fahrenheit[warm])])


if __name__ == "__main__":
    rng = np.random.default_rng(18)
    rolling(rng)
    calibrate(rng)
