"""numpy's side of tests/numpy_interop.rs.

`make DIR`: writes files the way numpy and raspi-rtl write them.
`check DIR`: loads what rtl wrote and checks the values.
"""

import base64
import json
import sys

import numpy as np

RECORDS = np.array(
    [(1, 0.5, True, "north"), (-2, float("inf"), False, "south-east"), (3, -1e-300, True, "")],
    dtype=[("id", "<i8"), ("x", "<f8"), ("ok", "?"), ("site", "<U10")],
)


# The original's CSV layout: no header row; names and types in the .meta.
READINGS = np.array(
    [(1, 0.5, "007"), (2, -1.25, "010"), (3, 1e-9, "123")],
    dtype=[("id", "<i8"), ("x", "<f8"), ("code", "<U3")],
)


def meta(dtype):
    text = repr(dtype.descr).replace("(", "<@").replace(")", "@>")
    return base64.b64encode(text.encode()).decode()


def make(d):
    RECORDS.tofile(f"{d}/records.dat")
    with open(f"{d}/records.meta", "w") as f:
        f.write(meta(RECORDS.dtype))
    np.save(f"{d}/single.npy", np.array([1.5, 2.5, np.nan]))
    np.savez(f"{d}/arrays.npz", a=np.arange(3, dtype=np.int32), b=np.array([0.1, 0.2, 0.3], dtype=np.float32))
    np.savez_compressed(f"{d}/packed.npz", s=np.array(["x", "yy", "zzz"]))
    np.savetxt(f"{d}/readings.csv", READINGS, fmt=["%d", "%.17g", "%s"], delimiter=",")
    with open(f"{d}/readings.meta", "w") as f:
        f.write(meta(READINGS.dtype))


def read_like_the_original(d, name):
    """The original's open_array: np.loadtxt with the .meta's types."""
    with open(f"{d}/{name}.meta") as f:
        dtype = eval(base64.b64decode(f.read()).decode().replace("<@", "(").replace("@>", ")"))
    return np.loadtxt(f"{d}/{name}.csv", delimiter=",", dtype=dtype, ndmin=1)


def check(d):
    z = np.load(f"{d}/out.npz")
    assert list(z.keys()) == ["id", "x", "ok", "site"], list(z.keys())
    assert z["id"].dtype == np.int64 and z["id"].tolist() == [1, -2, 3]
    assert z["x"].tolist() == [0.5, float("inf"), -1e-300]
    assert z["ok"].dtype == np.bool_ and z["ok"].tolist() == [True, False, True]
    assert z["site"].tolist() == ["north", "south-east", ""]
    with open(f"{d}/out.meta") as f:
        dtype = eval(base64.b64decode(f.read()).decode().replace("<@", "(").replace("@>", ")"))
    recs = np.fromfile(f"{d}/out.dat", dtype=dtype)
    assert recs["site"].tolist() == ["north", "south-east", ""], recs
    assert recs["x"][1] == float("inf")
    with open(f"{d}/out.json") as f:
        assert json.load(f)["x"] == [0.5, None, -1e-300]
    legacy = read_like_the_original(d, "legacy")
    assert legacy.dtype.names == ("id", "x", "code"), legacy.dtype
    assert legacy["id"].tolist() == [1, 2, 3]
    assert legacy["x"].tolist() == [0.5, -1.25, 1e-9]
    assert legacy["code"].tolist() == ["007", "010", "123"], legacy["code"]
    print("numpy agrees")


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]](sys.argv[2])
