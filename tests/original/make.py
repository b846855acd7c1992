"""The original's jobs and task tests, converted to rtl job files, with
their expected results computed here with numpy (never by running rtl).

    python3 tests/original/make.py

writes, beside this script:

- data/: the task tests' input arrays (dummy_data.py's NDATA, NDATA2 and
  NDATA3) as the original kept tables: header-less CSV with a base64 .meta
  of the numpy dtype; and data/raw_data/*.dat record files with their .meta
  for the jobs of the relay's README and dsdsl/dev.py (that job's own data
  file was never published: a seeded stand-in with its columns is made).
- NAME.json: each job or task test (the task bundle's tests, the relay's
  own test of null and, from its history, of task_average_cross,
  task_max_cross and task_filter), its DSDSL dict converted mechanically to
  JSON (stage keys become strings). A task test calls one task on an array;
  its job opens the array's file in stage "0" and calls the task, by the
  name the task bundle registered it under, in stage "1".
- NAME.expected.csv: the result rtl must give, with a header row (an empty
  file for a table without columns), and its column types in
  NAME.expected.meta. tests/original.rs runs every job
  through a daemon and compares.
- NAME.original.json: the values the original's own test asserted, and
  where rtl differs on purpose, which of the README's deliberate
  differences explains it.

The script is deterministic: running it again writes the same files.
"""

import base64
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")

# dummy_data.py of the task bundle's tests.
NDATA = {"a": np.full(4, 4, dtype=np.int64), "b": np.full(4, 4, dtype=np.int64)}
NDATA2 = {"a": np.arange(4, dtype=np.int64), "b": np.arange(4, dtype=np.int64)[::-1].copy()}
NDATA3 = {"a": np.arange(4, dtype=np.int64), "b": np.array([2, 23, 13, 7], dtype=np.int64)}
INPUTS = {"ndata": NDATA, "ndata2": NDATA2, "ndata3": NDATA3}

# The first cells of the README's table of deliberate differences.
DIFFERENCES = {
    "filter": "`filter` with `lt`, `le`, `gt`, `ge`",
    "classify_static": "`classify_static`",
    "column_space": "`column_space`",
    "normalize_int": "`normalize` on an int64 column",
    "empty": "the first stage's input",
}


def meta_text(dtype):
    """A .meta as the original wrote it: base64 of the dtype's descr, with
    ( and ) spelt <@ and @>."""
    text = repr(dtype.descr).replace("(", "<@").replace(")", "@>")
    return base64.b64encode(text.encode()).decode()


def records(table):
    names = list(table)
    dtype = np.dtype([(n, table[n].dtype.str) for n in names])
    out = np.zeros(len(table[names[0]]), dtype=dtype)
    for n in names:
        out[n] = table[n]
    return out


def write_original_csv(name, table):
    """Header-less CSV and its .meta, the original's layout."""
    recs = records(table)
    with open(os.path.join(DATA, name + ".meta"), "w") as f:
        f.write(meta_text(recs.dtype))
    with open(os.path.join(DATA, name + ".csv"), "w") as f:
        for row in recs:
            f.write(",".join(str(v) for v in row.tolist()) + "\n")


def write_dat(name, table):
    recs = records(table)
    folder = os.path.join(DATA, "raw_data")
    os.makedirs(folder, exist_ok=True)
    recs.tofile(os.path.join(folder, name + ".dat"))
    with open(os.path.join(folder, name + ".meta"), "w") as f:
        f.write(meta_text(recs.dtype))


def cell(v):
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return str(v)


def write_expected(name, table):
    """The expected table as CSV, its types in a .meta beside it (so that
    a table without rows keeps them)."""
    with open(os.path.join(HERE, name + ".expected.csv"), "w") as f:
        if not table:
            return
        with open(os.path.join(HERE, name + ".expected.meta"), "w") as m:
            m.write(meta_text(records(table).dtype))
        names = list(table)
        f.write(",".join(names) + "\n")
        for i in range(len(table[names[0]])):
            f.write(",".join(cell(table[n][i]) for n in names) + "\n")


def write_job(name, dsdsl):
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump({str(k): v for k, v in dsdsl.items()}, f, indent=2)
        f.write("\n")


def task_test(name, task, kwargs, contents, expected, asserted, differs=None):
    """One call of a task test: its job, its expected table, and what the
    original's test asserted (column, row, value)."""
    write_job(name, {
        0: {"tasks": {"open_array": {"filename": contents, "path": "data"}}},
        1: {"tasks": {task: kwargs}},
    })
    write_expected(name, expected)
    note = {
        "asserted": [{"column": c, "row": r, "value": v} for c, r, v in asserted],
        "differs": DIFFERENCES[differs] if differs else None,
    }
    with open(os.path.join(HERE, name + ".original.json"), "w") as f:
        json.dump(note, f, indent=2)
        f.write("\n")


def plus(table, **columns):
    out = {k: v.copy() for k, v in table.items()}
    out.update(columns)
    return out


def f64(x):
    return np.asarray(x, dtype=np.float64)


def distance_from_mean(column, weight):
    """normalize's DistanceFromMean, in float64: each value clamped around
    the mean of its window, the window's earlier value as already clamped."""
    x = f64(column).copy()
    n = len(x)
    for i in range(n):
        m = (x[i - 1] + x[i] + x[i + 1]) / 3 if 0 < i <= n - 2 else x[i]
        hi, lo = m + m * weight, m - m * weight
        if x[i] > hi:
            x[i] = hi
        elif x[i] < lo:
            x[i] = lo
    return x


def squash(column):
    c = f64(column)
    clipped = np.minimum(c, 2 * c.mean())
    return (clipped - c.min()) / clipped.max() * 100


def first_edge_at_or_above(values, bins):
    edges = np.histogram_bin_edges(values, bins)
    return edges[np.searchsorted(edges, values, side="left")]


def fit(x, y, degree, at):
    return np.polyval(np.polyfit(f64(x), f64(y), degree), f64(at))


def task_tests():
    a, b = NDATA["a"], NDATA["b"]
    ops = [{"a": "a", "b": "b", "column": "c1"}, {"a": "a", "b": 1, "column": "c2"}]
    task_test("add", "add", {"operations": ops}, "ndata",
              plus(NDATA, c1=f64(a + b), c2=f64(a + 1)), [("c1", 2, 8), ("c2", 2, 5.0)])
    task_test("subtract", "subtract", {"operations": ops}, "ndata",
              plus(NDATA, c1=f64(a - b), c2=f64(a - 1)), [("c1", 2, 0), ("c2", 2, 3.0)])
    ops2 = [{"a": "a", "b": "b", "column": "c1"}, {"a": "a", "b": 2, "column": "c2"}]
    task_test("multiply", "multiply", {"operations": ops2}, "ndata",
              plus(NDATA, c1=f64(a * b), c2=f64(a * 2)), [("c1", 2, 16), ("c2", 2, 8)])
    task_test("divide", "divide", {"operations": ops2}, "ndata",
              plus(NDATA, c1=f64(a) / b, c2=f64(a) / 2), [("c1", 2, 1), ("c2", 2, 2.0)])
    task_test("cross_max", "crossMax", {"operations": [{"columns": ["a", "b"], "column": "c1"}]},
              "ndata", plus(NDATA, c1=f64(np.maximum(a, b))), [("c1", 2, 4.0)])
    task_test("unique", "unique", {"a": "a", "column": "c1"}, "ndata",
              {"a": a[:1], "b": b[:1]}, [("a", 0, 4), ("b", 0, 4)])
    task_test("simple_plot", "simplePlot", {"plots": {"test": [
        {"x": "a", "y": "b", "type": "circle", "scale": "linear", "series": None},
        {"x": "a", "y": "b", "type": "circle", "scale": "linear", "series": "a"},
    ]}}, "ndata", NDATA, [])

    a, b = NDATA2["a"], NDATA2["b"]
    task_test("difference", "difference", {"operations": [{"a": "a", "b": "b", "column": "c"}]},
              "ndata2", NDATA2, [("a", 2, 2)])
    task_test("null", "null", {}, "ndata2", NDATA2, [("a", 2, 2)])
    filters = [
        ("filter_rows_eq_ne", ["eq", "ne"], lambda v: (v == 2) & (v != 2), [], None),
        # The original had lt, le, gt and ge inverted.
        ("filter_rows_lt_le", ["lt", "le"], lambda v: (v < 2) & (v <= 2), [], "filter"),
        ("filter_rows_gt_ge", ["gt", "ge"], lambda v: (v > 2) & (v >= 2), [("a", 0, 0)], "filter"),
    ]
    for name, methods, keep, asserted, differs in filters:
        mask = keep(a)
        task_test(name, "filterRows",
                  {"operations": [{"column": "a", "value": 2, "method": m} for m in methods]},
                  "ndata2", {"a": a[mask], "b": b[mask]}, asserted, differs)
    task_test("histogram", "histogram", {"operations": [{"a": "a", "bins": 2, "column": "c1"}]},
              "ndata2", plus(NDATA2, c1=first_edge_at_or_above(f64(a), 2)), [("c1", 1, 1.5)])
    order = np.argsort(b, kind="stable")
    task_test("sort", "sort", {"axis": 0, "method": "quicksort", "column": "b"}, "ndata2",
              {"a": a[order], "b": b[order]}, [("a", 2, 1)])

    a, b = NDATA3["a"], NDATA3["b"]
    mean_ab = (f64(a) + f64(b)) / 2
    ops = [{"column": "c", "columns": ["a", "b"]}]
    task_test("aggregate", "aggregate", {"operations": ops}, "ndata3", plus(NDATA3, c=mean_ab), [("c", 2, 7.5)])
    task_test("cross_average", "crossAverage", {"operations": ops}, "ndata3", plus(NDATA3, c=mean_ab), [("c", 2, 7.5)])
    task_test("average", "average", {"operations": [{"a": "b", "column": "c"}]}, "ndata3",
              plus(NDATA3, c=np.full(4, f64(b).mean())), [("c", 2, 11.25)])
    # Over two columns the original gave every row the last class (its
    # key of a record failed to form); rtl classifies by both columns.
    keys = np.lexsort((b, a))
    classes = np.empty(4, dtype=np.int64)
    classes[keys] = np.arange(4)
    task_test("classify_static_two_columns", "classifyStatic",
              {"operations": [{"a": ["a", "b"], "column": "c1"}]}, "ndata3",
              plus(NDATA3, c1Class=classes, c1ClassCount=np.ones(4, dtype=np.int64)),
              [("c1Class", 2, 3), ("c1ClassCount", 2, 1)], "classify_static")
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    task_test("classify_static", "classifyStatic", {"operations": [{"a": "a", "column": "c1"}]}, "ndata3",
              plus(NDATA3, c1Class=inverse.astype(np.int64), c1ClassCount=counts[inverse].astype(np.int64)),
              [("c1Class", 2, 2), ("c1ClassCount", 2, 1)])
    # The original wrote the space into an int column: 15.33 became 15.
    task_test("column_space", "columnSpace", {"column": "b", "space": "linear"}, "ndata3",
              plus(NDATA3, bSpace=np.linspace(0, b.max(), 4)), [("bSpace", 2, 15)], "column_space")
    task_test("log", "log", {"operations": [{"a": "b", "column": "c"}]}, "ndata3",
              plus(NDATA3, c=np.log(f64(b))), [("c", 2, 2.5649493574615367)])
    task_test("square_root", "squareRoot", {"operations": [{"a": "b", "column": "c"}]}, "ndata3",
              plus(NDATA3, c=np.sqrt(f64(b))), [("c", 2, 3.605551275463989)])
    task_test("power", "power", {"operations": [{"a": "b", "b": 2, "column": "c"}]}, "ndata3",
              plus(NDATA3, c=f64(b) ** 2), [("c", 2, 169.0)])
    task_test("power_columns", "power", {"operations": [{"a": "b", "b": "a", "column": "c"}]}, "ndata3",
              plus(NDATA3, c=f64(b) ** f64(a)), [("c", 2, 169.0)])
    # The original clamped in place in the int column, truncating each
    # value before the next window used it: its bNormal[2] is 10.
    task_test("normalize", "normalize",
              {"columns": ["a", "b"], "model": "DistanceFromMean", "weight": 0.01}, "ndata3",
              plus(NDATA3, aNormal=distance_from_mean(a, 0.01), bNormal=distance_from_mean(b, 0.01)),
              [("bNormal", 2, 10), ("aNormal", 0, 0)], "normalize_int")
    space = np.linspace(0, a.max(), 4)
    task_test("regression_linear", "regression",
              {"operations": [{"x": "a", "y": "b", "space": "linear", "model": "Linear"}]}, "ndata3",
              plus(NDATA3, bLinear=fit(a, b, 1, space)),
              [("bLinear", i, v) for i, v in enumerate([10.500000000000002, 11.000000000000002, 11.5, 12.0])])
    task_test("regression_poly", "regression",
              {"operations": [{"x": "a", "y": "b", "space": "linear", "model": "Poly", "d": 3}]}, "ndata3",
              plus(NDATA3, bPoly=fit(a, b, 3, space)),
              [("bPoly", i, v) for i, v in enumerate([2.000000000000078, 23.000000000000068, 13.000000000000064, 7.000000000000071])])


def relay_task_tests():
    """The relay's own task tests: rtl/tests/test_null.py (null on the
    array [1, 2, 3], here a one-column file) and, from its history, the
    tests of the older names task_average_cross and task_max_cross and the
    first filter test."""
    ones = {"values": np.array([1, 2, 3], dtype=np.int64)}
    write_original_csv("array", ones)
    task_test("null_array", "null", {}, "array", ones, [("values", i, v) for i, v in enumerate([1, 2, 3])])
    a, b = NDATA3["a"], NDATA3["b"]
    task_test("average_cross", "task_average_cross", {"operations": [{"column": "c", "columns": ["a", "b"]}]},
              "ndata3", plus(NDATA3, c=(f64(a) + f64(b)) / 2), [("c", 2, 7.5)])
    task_test("max_cross", "task_max_cross", {"operations": [{"columns": ["a", "b"], "column": "c1"}]},
              "ndata", plus(NDATA, c1=f64(np.maximum(NDATA["a"], NDATA["b"]))), [("c1", 2, 4.0)])
    a, b = NDATA2["a"], NDATA2["b"]
    task_test("filter_eq", "task_filter", {"operations": [{"column": "a", "value": 2, "method": "eq"}]},
              "ndata2", {"a": a[a == 2], "b": b[a == 2]}, [("a", 0, 2)])


def read_write():
    """test_read_write: write the array to raw_data/test.csv, read it back."""
    kwargs = {"filename": "test", "path": "out/raw_data", "extension": "csv", "delimiter": ","}
    write_job("read_write", {
        0: {"tasks": {"open_array": {"filename": "ndata", "path": "data"}}},
        1: {"tasks": {"write": kwargs}},
        2: {"tasks": {"openArray": kwargs}},
    })
    write_expected("read_write", NDATA)
    with open(os.path.join(HERE, "read_write.original.json"), "w") as f:
        json.dump({"asserted": [{"column": "a", "row": 3, "value": 4}], "differs": None}, f, indent=2)
        f.write("\n")


def relay_jobs():
    """The jobs of the relay's README and dsdsl/ folder."""
    empty = {"asserted": [], "differs": DIFFERENCES["empty"]}
    for name, task in [("readme_null", "task_null"), ("demo_task", "task_null"), ("platform_test", "null")]:
        write_job(name, {0: {"tasks": {task: {}}}})
        write_expected(name, {})
        with open(os.path.join(HERE, name + ".original.json"), "w") as f:
            json.dump(empty, f, indent=2)
            f.write("\n")

    # The README's built-in client reads a .dat record file.
    write_dat("readings", NDATA3)
    write_job("readme_open_array", {0: {"tasks": {"task_open_array": {
        "filename": "readings", "path": "data/raw_data", "extension": "dat", "delimiter": None}}}})
    write_expected("readme_open_array", NDATA3)
    with open(os.path.join(HERE, "readme_open_array.original.json"), "w") as f:
        json.dump({"asserted": [], "differs": None}, f, indent=2)
        f.write("\n")

    # dsdsl/dev.py, on a stand-in for its unpublished data file.
    rng = np.random.default_rng(27)
    n = 3000
    table = {
        "appName": rng.integers(0, 3, n).astype(np.int64),
        "stageName": rng.integers(20, 25, n).astype(np.int64),
        "jobId": rng.integers(0, 3000, n).astype(np.int64),
        "totalRunTime": np.round(rng.uniform(10, 2000, n), 2),
        "inputBytesRead": np.round(rng.uniform(0, 1e9, n)),
        "shuffleLocalBytesRead": np.round(rng.uniform(0, 1e8, n)),
        "shuffleRemoteBytesRead": np.round(rng.uniform(0, 1e8, n)),
        "numTasks": rng.integers(1, 64, n).astype(np.int64),
        "outputDatasetRids": np.array(["rid-%d" % k for k in rng.integers(0, 4, n)]),
    }
    write_dat("output27Numeric", table)
    plot = lambda y: [{"y": y, "x": "jobId", "type": "circle", "scale": "linear", "series": "outputDatasetRids"}]
    write_job("dev", {
        0: {"tasks": {"task_open_array": {
            "filename": "output27Numeric", "path": "data/raw_data", "extension": "dat", "delimiter": ","}}},
        1: {"tasks": {
            "task_filter": {"operations": [
                {"column": "appName", "value": 0, "method": "eq"},
                {"column": "stageName", "value": 22, "method": "eq"},
                {"column": "jobId", "value": 1500, "method": "gt"},
                {"column": "totalRunTime", "value": 1000, "method": "lt"},
            ]},
            "task_add": {"operations": [
                {"a": "inputBytesRead", "b": "shuffleLocalBytesRead", "column": "a1"},
                {"a": "a1", "b": "shuffleRemoteBytesRead", "column": "totalReadBytes"},
            ]},
            "task_divide": {"operations": [
                {"a": "totalRunTime", "b": "numTasks", "column": "concurrentRunTime"},
                {"a": "totalReadBytes", "b": "numTasks", "column": "concurrentReadBytes"},
            ]},
            "task_normalize": {"model": "Squash", "columns": [
                "totalRunTime", "totalReadBytes", "concurrentRunTime", "concurrentReadBytes"], "weight": None},
            "task_subtract": {"operations": [
                {"a": "totalRunTimeNormal", "b": "totalReadBytesNormal", "column": "difference1"},
                {"a": "concurrentRunTimeNormal", "b": "concurrentReadBytesNormal", "column": "difference2"},
            ]},
            "task_average": {"operations": [
                {"a": "difference1", "column": "alphaAvg1"},
                {"a": "difference2", "column": "alphaAvg2"},
            ]},
            "task_simple_plot": {"plots": {
                "concurrentRunTime": plot("concurrentRunTimeNormal"),
                "concurrentReadBytes": plot("concurrentReadBytesNormal"),
                "totalRuntime - totalBytesRead": plot("difference1"),
                "totalRuntime(conc) - totalBytesRead(conc)": plot("difference2"),
                "totalRuntime(conc) - totalBytesRead(conc) 2": plot("difference2"),
            }},
        }},
    })
    keep = ((table["appName"] == 0) & (table["stageName"] == 22)
            & (table["jobId"] > 1500) & (table["totalRunTime"] < 1000))
    t = {k: v[keep] for k, v in table.items()}
    t["a1"] = f64(t["inputBytesRead"]) + t["shuffleLocalBytesRead"]
    t["totalReadBytes"] = t["a1"] + t["shuffleRemoteBytesRead"]
    t["concurrentRunTime"] = f64(t["totalRunTime"]) / t["numTasks"]
    t["concurrentReadBytes"] = t["totalReadBytes"] / t["numTasks"]
    for c in ["totalRunTime", "totalReadBytes", "concurrentRunTime", "concurrentReadBytes"]:
        t[c + "Normal"] = squash(t[c])
    t["difference1"] = t["totalRunTimeNormal"] - t["totalReadBytesNormal"]
    t["difference2"] = t["concurrentRunTimeNormal"] - t["concurrentReadBytesNormal"]
    t["alphaAvg1"] = np.full(len(t["jobId"]), t["difference1"].mean())
    t["alphaAvg2"] = np.full(len(t["jobId"]), t["difference2"].mean())
    write_expected("dev", t)
    with open(os.path.join(HERE, "dev.original.json"), "w") as f:
        json.dump({"asserted": [], "differs": DIFFERENCES["filter"]}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    os.makedirs(DATA, exist_ok=True)
    for name, table in INPUTS.items():
        write_original_csv(name, table)
    task_tests()
    relay_task_tests()
    read_write()
    relay_jobs()
