"""A minimal rtl client in Python, written from docs/PROTOCOL.md alone.

Needs pyzmq, cbor2 and numpy. Submits a job with an input table to a
running relay and prints the result table as JSON, an object of column
name to values:

    python3 rtl_client.py --endpoint tcp://127.0.0.1:19000

The job is the null task by default; pass --job FILE to send a job file as
people write them for `rtl run` (JSON, TOML when the name ends in .toml,
`-` for JSON on stdin; --set NAME=VALUE fills its parameters). rtl_job.py,
beside this file, reads it as rtl does; everything else here is the wire
protocol.

A job's stages form a chain, or a graph when stages name the stages they
take (see rtl_job.py). Its results are the tables of the stages no stage
takes, which the relay sends one `result` message each: a chain has one,
its last stage's. A job with one result prints its table as above; a job
with several prints one JSON object of stage name (its number in a job
of numbered stages) to table, in stage order, as `rtl run --out DIR/`
writes a file per result stage named after it. Every source stage of a
graph gets the input table. In a job of named stages, progress lines and
errors name the stage as `rtl run` does: `Running: filter (stage long)`.

With a cluster secret (every daemon has one unless it runs with
insecure = true), the client proves it holds it first: --secret FILE, by
default $RTL_SECRET_FILE, else $RTL_HOME/secret, else ~/.rtl/secret.

Like rtl's own client, it pings a relay that is quiet while a job runs and
gives up only when the relay has said nothing at all for --timeout seconds
(default 5, rtl's job_timeout_ms); a job may take as long as it needs. A
`busy` relay gets the same submit again after 10 ms, doubling up to
500 ms. Every error, the relay's included (also those about the message
itself, which carry no job), and every mistake is one line,
`error: ...`, with exit status 1.
"""

import argparse
import hashlib
import hmac
import json
import math
import os
import re
import socket
import sys
import time
import uuid

import cbor2
import numpy as np
import zmq

import rtl_job

VERSION = 1
NIL = bytes(16)  # the job id of messages outside a job
DTYPES = {"int64": "<i8", "float64": "<f8"}


class Failed(Exception):
    """What went wrong, in one sentence for the user."""


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
    """The cluster secret's 32 bytes, from its file of 64 hex digits; None
    when there is no such file."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise Failed(f"cannot read {path}: {getattr(e, 'strerror', None) or e}")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise Failed(f"{path} is not a cluster secret (64 hex digits); make one with `rtl keygen`")
    return bytes.fromhex(text)


# --- Talking to the relay ---

def connect(endpoint):
    """A DEALER socket connected to the relay at tcp://HOST:PORT. As rtl
    does, a plain TCP connection is tried first: a closed port or an
    unknown host is an error at once, not after --timeout."""
    m = re.fullmatch(r"tcp://(\[[0-9a-fA-F:.]+\]|[^\[\]:/]+):([0-9]{1,5})", endpoint)
    if not m or not 1 <= int(m[2]) <= 65535:
        raise Failed(f"--endpoint {endpoint}: expected tcp://HOST:PORT, such as tcp://127.0.0.1:19000")
    try:
        socket.create_connection((m[1].strip("[]"), int(m[2])), timeout=0.5).close()
    except (ConnectionRefusedError, socket.gaierror) as e:
        raise Failed(f"no rtl daemon answers at {endpoint} ({e.strerror or e})")
    except OSError:
        pass  # slow or filtered: the relay gets all of --timeout to answer
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IPV6, 1)
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as e:
        raise Failed(f"cannot connect to {endpoint}: {e}")
    return sock


def send(sock, kind, **fields):
    """A message outside any job (ping, proof): a fresh id, the nil job."""
    sock.send_multipart([uuid.uuid4().bytes, cbor2.dumps({"v": VERSION, "kind": kind, "job": NIL, **fields})])


def receive(sock, seconds):
    """The next message's header and column frames, or None when nothing
    came within `seconds`."""
    if not sock.poll(max(0, int(seconds * 1000))):
        return None
    frames = sock.recv_multipart(copy=False)
    try:
        head = cbor2.loads(frames[1].bytes)
    except (IndexError, ValueError) as e:
        raise Failed(f"bad message from the relay: {e}")
    if not isinstance(head, dict):
        raise Failed("bad message from the relay: its header is not a map")
    return head, frames[2:]


def silent(endpoint, timeout):
    return Failed(f"the relay at {endpoint} said nothing for {timeout:g} s (--timeout): it may be stopped, "
                  "overloaded or not an rtl relay; `rtl status` tells")


def relay_error(head, endpoint):
    """The relay's `error` in rtl's words: `stage S, task T: message`, the
    stage by its name when the job names its stages."""
    error = dict(head.get("error")) if isinstance(head.get("error"), dict) else {}
    if error.get("stage_name") is not None:
        error["stage"] = error["stage_name"]
    where = ", ".join(f"{k} {error[k]}" for k in ("stage", "task", "field") if error.get(k) is not None)
    message = error.get("message", f"the relay at {endpoint} sent an error without a message")
    return Failed(f"{where}: {message}" if where else message)


def prove(sock, secret, endpoint, timeout):
    """The handshake of docs/PROTOCOL.md, Authentication."""
    own, relay_nonce = os.urandom(16), b""
    send(sock, "proof", auth={"nonce": [], "proof": []})
    while True:
        got = receive(sock, timeout)
        if got is None:
            raise silent(endpoint, timeout)
        head, _ = got
        auth = head.get("auth") or {}
        if head.get("kind") == "challenge":
            relay_nonce = bytes(auth.get("nonce", []))
            proof = hmac.new(secret, b"rtl peer" + relay_nonce + own, hashlib.sha256).digest()
            send(sock, "proof", auth={"nonce": list(own), "proof": list(proof)})
        elif head.get("kind") == "welcome":
            expected = hmac.new(secret, b"rtl relay" + own + relay_nonce, hashlib.sha256).digest()
            if not hmac.compare_digest(bytes(auth.get("proof", [])), expected):
                raise Failed(f"the answer of the relay at {endpoint} does not match this machine's cluster "
                             "secret: is it another cluster's relay?")
            return
        elif head.get("kind") == "error":
            raise Failed(f"the relay at {endpoint} refused this machine's cluster secret: "
                         f"{relay_error(head, endpoint)}")


def ping(sock, endpoint, timeout, secret_path):
    """Checks that the relay answers; returns its run (from `pong`), which
    is new each time a relay starts."""
    send(sock, "ping")
    deadline = time.monotonic() + timeout
    while (got := receive(sock, deadline - time.monotonic())) is not None:
        head, _ = got
        if head.get("kind") == "pong":
            return head.get("relay")
        if head.get("kind") == "challenge":
            raise Failed(f"the relay at {endpoint} needs the cluster secret, and there is none at "
                         f"{secret_path} (--secret FILE, by default $RTL_HOME/secret): copy the relay's "
                         "secret file there")
        if head.get("kind") == "error":
            raise Failed(f"{endpoint}: {relay_error(head, endpoint)}")
    raise silent(endpoint, timeout)


def decode_table(head, frames):
    """The table a `result` carries: column name to values."""
    rows = head.get("rows", 0)
    schema = head.get("schema", [])
    try:
        if len(schema) != len(frames):
            raise ValueError(f"{len(schema)} columns in the schema, {len(frames)} frames")
        return {spec["name"]: decode_column(spec["dtype"], rows, part.buffer)
                for spec, part in zip(schema, frames)}
    except (KeyError, TypeError, ValueError) as e:
        raise Failed(f"bad result table from the relay: {e}")


def stage_name(stages, number):
    """How stage `number` is named: its name in a job of named stages,
    else its number."""
    if isinstance(number, int) and 0 <= number < len(stages):
        return stages[number].get("name", str(number))
    return str(number)


def run(sock, endpoint, relay, stages, table, base_dir, timeout):
    """Submits the job and waits for all its results, as rtl's client
    does: a relay quiet for a quarter of `timeout` (at most 1 s) is
    pinged, any message shows it is alive, and `busy` means send the
    submit again. Returns (stage name, table) for each result stage, in
    stage order."""
    # Progress in a graph names the stage: its branches run side by side.
    named = any("name" in stage for stage in stages)
    results = {}  # stage number -> table, as they come
    job = uuid.uuid4().bytes
    schema, columns = [], []
    for column, values in table.items():
        dtype, frame = encode_column(values)
        schema.append({"name": column, "dtype": dtype})
        columns.append(frame)
    header = {
        "v": VERSION,
        "kind": "submit",
        "job": job,
        "plan": {"stages": stages, "base_dir": base_dir},
        "schema": schema,
        "rows": len(next(iter(table.values()))) if table else 0,
        "progress": True,
    }
    submit = [job, cbor2.dumps(header)] + columns
    sock.send_multipart(submit)
    ping_every = min(timeout / 4, 1.0)
    heard = pinged = time.monotonic()
    backoff, resend_at = 0.01, None
    while True:
        if resend_at is not None and time.monotonic() >= resend_at:
            sock.send_multipart(submit)
            resend_at = None
        wait = ping_every if resend_at is None else min(ping_every, resend_at - time.monotonic())
        got = receive(sock, wait)
        now = time.monotonic()
        if got is None:
            if now - heard > timeout:
                raise silent(endpoint, timeout)
            if now - pinged >= ping_every:
                send(sock, "ping")
                pinged = now
            continue
        heard = now
        head, frames = got
        kind = head.get("kind")
        # Only a relay that does not know this connection challenges it.
        if kind == "challenge" or (kind == "pong" and head.get("relay", relay) != relay):
            raise Failed(f"the relay at {endpoint} was restarted while the job ran, and the new one "
                         "does not know it: the job was lost; run it again")
        # An error about the message itself carries the nil job id.
        if head.get("job") != job and not (kind == "error" and head.get("job") == NIL):
            continue
        if kind == "busy":
            resend_at, backoff = now + backoff, min(backoff * 2, 0.5)
        elif kind == "progress":
            event = head.get("event") or {}
            task = event.get("task")
            if named:
                task = f"{task} (stage {stage_name(stages, event.get('stage'))})"
            if "message" in event:
                print(f"{task}: {event['message']}", file=sys.stderr)
            elif "ms" in event:
                print(f"Completed: {event['ms']:.3f} ms {task}", file=sys.stderr)
            else:
                print(f"Running: {task}", file=sys.stderr)
        elif kind == "error":
            raise relay_error(head, endpoint)
        elif kind == "result":
            # One message per result stage: `stage`, and `count` of them.
            stage, count = head.get("stage", 0), head.get("count", 1)
            if not isinstance(stage, int) or not isinstance(count, int):
                raise Failed(f"bad result from the relay: stage {stage!r} of {count!r} results")
            if stage in results:
                raise Failed(f"bad result from the relay: the result of stage {stage_name(stages, stage)} "
                             "came twice")
            results[stage] = decode_table(head, frames)
            if len(results) >= count:
                return [(stage_name(stages, s), results[s]) for s in sorted(results)]


# --- The command line ---

def plain(table):
    """A table as JSON takes it: column name to a list of values."""
    return {name: [v.item() if hasattr(v, "item") else v for v in column] for name, column in table.items()}


class Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.exit(f"error: {message} (see --help)")


def seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, found {text!r}")
    return value


def param(text):
    name, eq, value = text.partition("=")
    if not name or not eq:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main():
    parser = Parser(description=__doc__.splitlines()[0])
    # The same defaults as rtl's: relay_addr and relay_port, from the
    # environment when set there.
    default = "tcp://{}:{}".format(os.environ.get("RTL_RELAY_ADDR", "127.0.0.1"),
                                   os.environ.get("RTL_RELAY_PORT", "19000"))
    parser.add_argument("--endpoint", default=default,
                        help="the relay, tcp://HOST:PORT (default " + default + ": $RTL_RELAY_ADDR and $RTL_RELAY_PORT when set)")
    parser.add_argument("--job", help="a job file as `rtl run` takes (JSON, .toml, or - for JSON on stdin)")
    parser.add_argument("--set", type=param, action="append", default=[], metavar="NAME=VALUE",
                        help="give a job parameter a value, as `rtl run --set` does")
    home = os.environ.get("RTL_HOME") or os.path.expanduser("~/.rtl")
    parser.add_argument("--secret", default=os.environ.get("RTL_SECRET_FILE") or os.path.join(home, "secret"),
                        help="the cluster secret file (none when absent)")
    parser.add_argument("--timeout", type=seconds, default=5.0,
                        help="give up on a relay that says nothing for this many seconds (default 5)")
    args = parser.parse_args()
    table = {
        "id": np.arange(5, dtype=np.int64),
        "value": np.array([0.5, -1.25, 1e300, 1e-9, 42.0]),
        "ok": np.array([True, False, True, True, False]),
        "site": ["north", "south", "east, upper", "wëst", ""],
    }
    try:
        if args.job:
            stages, base_dir = rtl_job.load(args.job, args.set)
        else:
            stages = rtl_job.stages_of({"0": {"tasks": {"null": {}}}}, "the default job", args.set)
            base_dir = os.getcwd()
        secret = load_secret(args.secret)
        sock = connect(args.endpoint)
        if secret is not None:
            prove(sock, secret, args.endpoint, args.timeout)
        relay = ping(sock, args.endpoint, args.timeout, args.secret)
        results = run(sock, args.endpoint, relay, stages, table, base_dir, args.timeout)
    except (Failed, rtl_job.Problem) as e:
        sys.exit(f"error: {e}")
    if len(results) == 1:
        print(json.dumps(plain(results[0][1])))
    else:
        print(json.dumps({stage: plain(result) for stage, result in results}))


if __name__ == "__main__":
    main()
