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
    print("numpy agrees")


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]](sys.argv[2])
