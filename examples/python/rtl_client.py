"""A minimal rtl client in Python, written from docs/PROTOCOL.md alone.

Needs pyzmq, cbor2 and numpy. Submits a job with an input table to a
running relay and prints the result table as JSON:

    python3 rtl_client.py --endpoint tcp://127.0.0.1:19000

The job is the null task by default; pass --job FILE to send a job file as
people write them for `rtl run` (JSON, TOML when the name ends in .toml,
`-` for JSON on stdin; --set NAME=VALUE fills its parameters). rtl_job.py,
beside this file, reads it as rtl does; everything else here is the wire
protocol. Every error the relay sends is printed, including those about
the message itself (which carry no job).
With a cluster secret (every daemon has one unless it runs with
insecure = true), the client proves it holds it first: --secret FILE, by
default $RTL_HOME/secret or ~/.rtl/secret.
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import uuid

import cbor2
import numpy as np
import zmq

import rtl_job

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


def load_secret(path):
    """The cluster secret's 32 bytes, from its file of 64 hex digits."""
    with open(path) as f:
        return bytes.fromhex(f.read().strip())


def prove(sock, secret, timeout_ms):
    """The handshake of docs/PROTOCOL.md, Authentication."""
    def send(nonce=b"", proof=b""):
        header = {"v": VERSION, "kind": "proof", "job": uuid.UUID(int=0).bytes,
                  "auth": {"nonce": list(nonce), "proof": list(proof)}}
        sock.send_multipart([uuid.uuid4().bytes, cbor2.dumps(header)])

    send()
    own = os.urandom(16)
    while True:
        if not sock.poll(timeout_ms):
            raise TimeoutError("the relay did not finish the handshake")
        head = cbor2.loads(sock.recv_multipart()[1])
        auth = head.get("auth", {})
        if head["kind"] == "challenge":
            relay_nonce = bytes(auth["nonce"])
            proof = hmac.new(secret, b"rtl peer" + relay_nonce + own, hashlib.sha256).digest()
            send(own, proof)
        elif head["kind"] == "welcome":
            expected = hmac.new(secret, b"rtl relay" + own + relay_nonce, hashlib.sha256).digest()
            if not hmac.compare_digest(bytes(auth["proof"]), expected):
                raise RuntimeError("the relay does not hold this cluster's secret")
            return
        elif head["kind"] == "error":
            raise RuntimeError(head["error"]["message"])


def run(endpoint, stages, table, secret=None, timeout_ms=10_000, base_dir=None):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    if secret is not None:
        prove(sock, secret, timeout_ms)
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
        "plan": {"stages": stages, "base_dir": base_dir or os.getcwd()},
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
        kind = head["kind"]
        # An error about the message itself carries the nil job id.
        if head.get("job") not in (job.bytes, uuid.UUID(int=0).bytes):
            continue
        if head.get("job") != job.bytes and kind != "error":
            continue
        if kind == "progress":
            event = head["event"]
            if "message" in event:
                print(f"{event['task']}: {event['message']}", file=sys.stderr)
            elif "ms" in event:
                print(f"Completed: {event['ms']:.3f} ms {event['task']}", file=sys.stderr)
            else:
                print(f"Running: {event['task']}", file=sys.stderr)
        elif kind == "error":
            error = head["error"]
            where = ", ".join(f"{k} {error[k]}" for k in ("stage", "task") if error.get(k) is not None)
            raise RuntimeError(f"{where}: {error['message']}" if where else error["message"])
        elif kind == "result":
            out_rows = head.get("rows", 0)
            return {
                spec["name"]: decode_column(spec["dtype"], out_rows, part.buffer)
                for spec, part in zip(head.get("schema", []), parts[2:])
            }


def param(text):
    name, eq, value = text.partition("=")
    if not name or not eq:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:19000")
    parser.add_argument("--job", help="a job file as `rtl run` takes (JSON, .toml, or - for JSON on stdin)")
    parser.add_argument("--set", type=param, action="append", default=[], metavar="NAME=VALUE",
                        help="give a job parameter a value, as `rtl run --set` does")
    home = os.environ.get("RTL_HOME", os.path.expanduser("~/.rtl"))
    parser.add_argument("--secret", default=os.path.join(home, "secret"),
                        help="the cluster secret file (skipped when absent)")
    args = parser.parse_args()
    secret = load_secret(args.secret) if os.path.exists(args.secret) else None
    try:
        if args.job:
            stages, base_dir = rtl_job.load(args.job, args.set)
        else:
            stages = rtl_job.stages_of({"0": {"tasks": {"null": {}}}}, "the default job", args.set)
            base_dir = os.getcwd()
    except rtl_job.Problem as e:
        sys.exit(f"error: {e}")
    table = {
        "id": np.arange(5, dtype=np.int64),
        "value": np.array([0.5, -1.25, 1e300, 1e-9, 42.0]),
        "ok": np.array([True, False, True, True, False]),
        "site": ["north", "south", "east, upper", "wëst", ""],
    }
    try:
        result = run(args.endpoint, stages, table, secret, base_dir=base_dir)
    except (RuntimeError, TimeoutError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(json.dumps({k: [v.item() if hasattr(v, "item") else v for v in col]
                      for k, col in result.items()}))


if __name__ == "__main__":
    main()
