"""numpy's side of benches/kernels.rs: the same operations on the same sizes,
printed as ns per row. Run: python3 benches/numpy_kernels.py [ROWS]"""

import io
import sys
import time

import numpy as np

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
rng = np.random.default_rng(1)
a = rng.random(n) * 1000
b = rng.random(n) * 1000
k = (rng.random(n) * 1000).astype(np.int64)


def best(f, rows, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times) / rows * 1e9


def squash(c):
    mn, avg = c.min(), c.mean()
    clipped = np.where(c > 2 * avg, 2 * avg, c)
    return (clipped - mn) / clipped.max() * 100


def filter_gt():
    m = a > 500.0
    return a[m], b[m], k[m]


def sort_rows():
    order = np.argsort(a, kind="stable")
    return a[order], b[order], k[order]


buf = io.StringIO()
np.savetxt(buf, np.column_stack([a, b, k]), delimiter=",", header="a,b,k", comments="")
text = buf.getvalue()

ids = np.arange(n, dtype=np.int64)
p = next(q for q in range(n // 2 + 1, n + 2) if np.gcd(q, n) == 1)
shuffled = (np.arange(n, dtype=np.uint64) * np.uint64(p) % np.uint64(n)).astype(np.int64)


def join_unique_int():
    """An inner join on a unique key, the right side in another order:
    the right's keys sorted, the left's looked up in them."""
    order = np.argsort(shuffled, kind="stable")
    at = np.searchsorted(shuffled[order], ids)
    at = np.minimum(at, n - 1)
    hit = shuffled[order][at] == ids
    return ids[hit], a[hit], b[order][at][hit]


rows = [
    ("add", best(lambda: a + b, n)),
    ("divide_scalar", best(lambda: a / 3.5, n)),
    ("filter_gt", best(filter_gt, n)),
    ("normalize_squash", best(lambda: squash(a), n)),
    ("sort_float", best(sort_rows, n, repeat=2)),
    ("join_unique_int", best(join_unique_int, n, repeat=2)),
    ("csv_read (np.loadtxt)", best(lambda: np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1), n, repeat=1)),
]
print(f"numpy {np.__version__}, {n} rows")
for name, ns in rows:
    print(f"{name:<24} {ns:8.2f} ns/row")
