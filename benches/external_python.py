"""The reference for `rtl bench`'s external_1m_ms: the installed task's
function (benches/tasks/bench_features.py) on the same data in one Python
process, reading its input from the .npy files rtl bench wrote. By hand:

    python3 benches/external_python.py TASK_FOLDER DATA.npz ROUNDS

prints the median milliseconds of ROUNDS timed runs (reading the input and
running the function) after one untimed run, as `rtl bench` takes.
"""

import sys
import time

import numpy as np

folder, data, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, folder)
from bench_features import features  # noqa: E402

times = []
for round in range(rounds + 1):
    start = time.perf_counter()
    with np.load(data) as npz:
        table = {name: npz[name] for name in npz.files}
    features(table)
    if round > 0:
        times.append((time.perf_counter() - start) * 1e3)
times.sort()
print(times[(len(times) - 1) // 2])
