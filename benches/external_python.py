"""The reference for `rtl bench`'s external_1m_ms: the installed task's
function (benches/tasks/bench_features.py) on the same data in one Python
process, reading its input from the .npy files rtl bench wrote. By hand:

    python3 benches/external_python.py TASK_FOLDER DATA.npz ROUNDS

prints the median milliseconds of ROUNDS timed runs (reading the input and
running the function) after one untimed run. `rtl bench` gives `-` for
ROUNDS instead: then each line read from stdin runs one round and prints
its milliseconds, so that its rounds take turns with rtl's and both see
the same moments of a shared machine.
"""

import sys
import time

import numpy as np

folder, data, rounds = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, folder)
from bench_features import features  # noqa: E402


def one_round():
    start = time.perf_counter()
    with np.load(data) as npz:
        table = {name: npz[name] for name in npz.files}
    features(table)
    return (time.perf_counter() - start) * 1e3


if rounds == "-":
    for _ in sys.stdin:
        print(one_round(), flush=True)
else:
    one_round()
    times = sorted(one_round() for _ in range(int(rounds)))
    print(times[(len(times) - 1) // 2])
