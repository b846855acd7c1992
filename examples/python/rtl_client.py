"""A minimal rtl client in Python, written from docs/PROTOCOL.md alone.

Needs pyzmq, cbor2 and numpy. Submits a job with an input table to a
running relay and prints the result table as JSON:

    python3 rtl_client.py --endpoint tcp://127.0.0.1:19000

The job is the null task by default; pass --job FILE to send another plan
(a JSON list of stages, each {"tasks": [{"name": ..., "kwargs": {...}}]}).
"""

import argparse
import json
import os
import sys
import uuid

import cbor2
import numpy as np
import zmq

VERSION = 1
DTYPES = {"int64": "<i8", "float64": "<f8"}


def encode_column(values):
    """One column frame: (dtype name, bytes) in rtl's wire encoding."""
    a = np.asarray(values)
    if a.dtype == np.bool_:
        return "bool", a.astype(np.uint8).tobytes()
    if np.issubdtype(a.dtype, np.integer):
        return "int64", a.astype("<i8").tobytes()
    if np.issubdtype(a.dtype, np.floating):
        return "float64", a.astype("<f8").tobytes()
    data = [str(v).encode("utf-8") for v in values]
    offsets = np.zeros(len(data) + 1, dtype="<u8")
    offsets[1:] = np.cumsum([len(d) for d in data])
    return "utf8", offsets.tobytes() + b"".join(data)


def decode_column(dtype, rows, frame):
    if dtype in DTYPES:
        return np.frombuffer(frame, dtype=DTYPES[dtype], count=rows)
    if dtype == "bool":
        return np.frombuffer(frame, dtype=np.uint8, count=rows).astype(bool)
    offsets = np.frombuffer(frame, dtype="<u8", count=rows + 1)
    data = bytes(frame)[8 * (rows + 1):]
    return [data[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(rows)]


def run(endpoint, stages, table, timeout_ms=10_000):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    job = uuid.uuid4()
    schema, frames = [], []
    for name, values in table.items():
        dtype, frame = encode_column(values)
        schema.append({"name": name, "dtype": dtype})
        frames.append(frame)
    rows = len(next(iter(table.values()))) if table else 0
    header = {
        "v": VERSION,
        "kind": "submit",
        "job": job.bytes,
        "plan": {"stages": stages, "base_dir": os.getcwd()},
        "schema": schema,
        "rows": rows,
        "progress": True,
    }
    sock.send_multipart([job.bytes, cbor2.dumps(header)] + frames)
    while True:
        if not sock.poll(timeout_ms):
            raise TimeoutError(f"no answer from {endpoint}")
        parts = sock.recv_multipart(copy=False)
        head = cbor2.loads(parts[1].bytes)
        if head.get("job") != job.bytes:
            continue
        kind = head["kind"]
        if kind == "progress":
            event = head["event"]
            if "message" in event:
                print(f"{event['task']}: {event['message']}", file=sys.stderr)
            elif "ms" in event:
                print(f"Completed: {event['ms']:.3f} ms {event['task']}", file=sys.stderr)
            else:
                print(f"Running: {event['task']}", file=sys.stderr)
        elif kind == "error":
            raise RuntimeError(head["error"]["message"])
        elif kind == "result":
            out_rows = head.get("rows", 0)
            return {
                spec["name"]: decode_column(spec["dtype"], out_rows, part.buffer)
                for spec, part in zip(head.get("schema", []), parts[2:])
            }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:19000")
    parser.add_argument("--job", help="a JSON list of stages")
    args = parser.parse_args()
    stages = [{"tasks": [{"name": "null", "kwargs": {}}]}]
    if args.job:
        with open(args.job) as f:
            stages = json.load(f)
    table = {
        "id": np.arange(5, dtype=np.int64),
        "value": np.array([0.5, -1.25, 1e300, 1e-9, 42.0]),
        "ok": np.array([True, False, True, True, False]),
        "site": ["north", "south", "east, upper", "wëst", ""],
    }
    result = run(args.endpoint, stages, table)
    print(json.dumps({k: [v.item() if hasattr(v, "item") else v for v in col]
                      for k, col in result.items()}))


if __name__ == "__main__":
    main()
