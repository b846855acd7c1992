"""rtl_task: make a Python function an rtl task.

    from rtl_task import serve

    def rolling_mean(table, column, window=5):
        x = table[column]             # table: column name -> 1-D numpy array
        ...
        table[column + "Rolling"] = out
        return table

    serve(rolling_mean)

serve(fn) answers rtl's calls, one after another, for as long as the task
node keeps the program: each call is fn(table, **kwargs), where table is a
dict of column names to 1-D numpy arrays in column order, read-only (copy
one to change it in place). fn returns such a dict (arrays, or lists, of
equal length: int, float, bool or str). An exception becomes the call's
error, with its type, message and the line in your file. print() goes to
the task node's log. `checking` is True while rtl checks a job on a sample
of its data.

The bytes on stdin and stdout are rtl's task-program protocol (a line of
JSON, then each column as a .npy file); see docs/PROTOCOL.md. Needs numpy
only. rtl puts this module on the PYTHONPATH of the programs it starts.
"""

import ast
import json
import os
import sys
import traceback

import numpy as np

__all__ = ["serve", "checking"]

checking = False


def _read_exactly(stream, size):
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = stream.readinto(view[got:])
        if not n:
            raise EOFError("rtl closed the call half-way")
        got += n
    return buf


def _from_npy(buf, name):
    # The header is a Python dict literal after a magic string and length
    # (format 1.0: 2 bytes; 2.0 and 3.0: 4 bytes).
    if bytes(buf[:6]) != b"\x93NUMPY":
        raise ValueError("column %r is not a .npy file" % name)
    major = buf[6]
    if major == 1:
        length, start = int.from_bytes(buf[8:10], "little"), 10
    else:
        length, start = int.from_bytes(buf[8:12], "little"), 12
    header = ast.literal_eval(bytes(buf[start:start + length]).decode("latin1"))
    dtype = np.dtype(header["descr"])
    (rows,) = header["shape"]
    array = np.frombuffer(buf, dtype=dtype, count=rows, offset=start + length)
    # Read-only, so that a column returned as it came is known to be
    # unchanged and need not travel back.
    array.flags.writeable = False
    return array


def _npy_header(array):
    descr = np.lib.format.dtype_to_descr(array.dtype)
    text = "{'descr': %r, 'fortran_order': False, 'shape': (%d,), }" % (descr, len(array))
    pad = (64 - (10 + len(text) + 1) % 64) % 64
    text = text + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


def _check_rows(name, length, rows):
    if rows is not None and length != rows:
        raise ValueError(
            "column %r has %d rows and the columns before it %d; all columns have the same length"
            % (name, length, rows))


def _as_column(name, values, rows):
    array = np.asarray(values)
    if array.ndim != 1:
        raise TypeError("column %r has shape %s; every column is a 1-D array" % (name, array.shape))
    _check_rows(name, len(array), rows)
    kind = array.dtype.kind
    if kind == "b":
        return array.astype(np.bool_, copy=False)
    if kind in "iu":
        if kind == "u" and array.dtype.itemsize == 8 and len(array) and array.max() > 2**63 - 1:
            raise ValueError(
                "column %r holds %d, more than an int64 holds; rtl's whole numbers are int64"
                % (name, array.max()))
        return array.astype("<i8", copy=False)
    if kind == "f":
        return array.astype("<f8", copy=False)
    if kind == "U":
        return array.astype(array.dtype.newbyteorder("<"), copy=False)
    if kind == "S":
        try:
            return np.char.decode(array, "utf-8")
        except UnicodeDecodeError:
            row = next(i for i, v in enumerate(array) if not _is_utf8(v))
            raise ValueError(
                "column %r holds bytes that are not UTF-8 text (row %d: %r); rtl's text is UTF-8"
                % (name, row, bytes(array[row]))) from None
    if kind == "O" and all(isinstance(v, str) for v in array):
        return array.astype(str)
    raise TypeError(
        "column %r is of numpy type %s; rtl takes int, float, bool and str columns"
        % (name, array.dtype))


def _is_utf8(value):
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _where(error):
    """The last line of the task's own code in the traceback: in its folder
    (where rtl starts it), not in numpy or in this helper."""
    here = os.path.abspath(__file__)
    folder = os.getcwd() + os.sep
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if os.path.abspath(f.filename) != here]
    own = [f for f in frames if os.path.abspath(f.filename).startswith(folder)]
    last = (own or frames or [None])[-1]
    if last is None:
        return ""
    return " (%s, line %d)" % (os.path.basename(last.filename), last.lineno)


def _memory():
    """The call and answer memories rtl gives the program (fds 3 and 4), or
    None: then columns travel through stdin and stdout."""
    try:
        fds = [int(fd) for fd in os.environ.get("RTL_TASK_MEMORY", "").split(",")]
        for fd in fds:
            os.fstat(fd)
        return fds if len(fds) == 2 else None
    except (ValueError, OSError):
        return None


def _pread(fd, size, offset):
    # Into a bytearray, as from stdin, so that a column behaves the same
    # whichever way it came.
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        n = os.preadv(fd, [view[got:]], offset + got)
        if not n:
            raise EOFError("the call memory ends before its columns do")
        got += n
    return buf


def _pwrite(fd, data, offset):
    view = memoryview(data).cast("B")
    while len(view):
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _answer(out, header, columns=(), memory=None):
    if memory is not None and "columns" in header:
        # The columns into the answer memory, back to back; the line says so.
        total = sum(len(head) + array.nbytes for head, array in columns)
        os.ftruncate(memory, total)
        at = 0
        for head, array in columns:
            _pwrite(memory, head, at)
            _pwrite(memory, array.view(np.uint8).data, at + len(head))
            at += len(head) + array.nbytes
        header = dict(header, shared=True)
        columns = ()
    out.write(json.dumps(header).encode("utf-8") + b"\n")
    for head, array in columns:
        out.write(head)
        out.write(array.view(np.uint8).data)
    out.flush()


def serve(fn):
    """Answers rtl's calls with fn(table, **kwargs) until rtl closes stdin."""
    global checking
    calls = sys.stdin.buffer
    # The protocol keeps the real stdout; everything else written to it,
    # print() or a C library's output, goes to stderr, the node's log.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    memory = _memory()
    while True:
        line = calls.readline()
        if not line:
            return
        call = json.loads(line)
        table, at = {}, 0
        for part in call["columns"]:
            if call.get("shared"):
                data = _pread(memory[0], part["bytes"], at)
                at += part["bytes"]
            else:
                data = _read_exactly(calls, part["bytes"])
            table[part["name"]] = _from_npy(data, part["name"])
        checking = bool(call.get("checking"))
        # The call's arrays by identity, held so no new array takes an id.
        given = {id(array): (name, array) for name, array in table.items()}
        try:
            result = fn(table, **call["kwargs"])
            if not isinstance(result, dict):
                raise TypeError(
                    "%s returned %s; it returns the table, a dict of column name -> 1-D array"
                    % (getattr(fn, "__name__", "the function"), type(result).__name__))
            parts, columns, rows = [], [], None
            for name, values in result.items():
                if not isinstance(name, str) or not name:
                    raise TypeError("a column's name is a non-empty str, not %r" % (name,))
                kept = given.get(id(values))
                if kept is not None and kept[1] is values and not values.flags.writeable:
                    # The call's own column, unchanged: it is still read-only.
                    _check_rows(name, len(values), rows)
                    parts.append({"name": name, "input": kept[0]})
                    rows = len(values)
                    continue
                array = np.ascontiguousarray(_as_column(name, values, rows))
                rows = len(array)
                head = _npy_header(array)
                parts.append({"name": name, "bytes": len(head) + array.nbytes})
                columns.append((head, array))
        except Exception as error:  # noqa: BLE001 - every error goes back to rtl
            message = "%s: %s%s" % (type(error).__name__, error, _where(error))
            if "read-only" in str(error):
                message += ("; the table's columns are read-only: copy one to change it"
                            " in place (x = table[name].copy())")
            traceback.print_exc()
            _answer(out, {"error": message})
            continue
        _answer(out, {"columns": parts}, columns, memory[1] if memory else None)
