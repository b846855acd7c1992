"""rtl's job files, read in Python as `rtl run` reads them.

rtl_client.py sends a job's stages on the wire (docs/PROTOCOL.md, Plan);
this module turns a job file into them the way rtl's job language does
(dsl/src/lib.rs and dsl/src/graph.rs), taking what rtl takes and refusing
what it refuses, in its words:

    stages, base_dir = rtl_job.load("job.json", [("day", "monday")])

A job file is JSON, TOML when its name ends in .toml (Python 3.11's
tomllib), or JSON on stdin for `-`. A job is an object of stages "0" to
"n-1", a list of stages, or {"stages": [...]}: numbered stages, each
taking the table of the stage before it. A stage has "tasks": an object
of task name to kwargs (null: none), or a list of one-key objects; and it
may have "inputs", the stages whose tables it takes instead (a list, or
one stage): in a numbered job only earlier ones, by their numbers (as
text, or whole numbers). "stages" may also be an object of named stages
(names of ASCII letters, digits, `_` and `-`), a graph: there a stage
takes the stages its "inputs" name, in any order as long as they go
round in no cycle, and a stage without "inputs" is a source, which gets
the job's input table. A stage that several stages take fans out; one
that takes several fans in through its first task. The stages no stage
takes are the job's results. "params" gives names a default (null: none)
for the `${name}` placeholders in kwargs, and values given as --set
NAME=VALUE replace them. Relative paths in kwargs resolve against
`base_dir`, the job file's folder (the working directory for stdin).

On the wire a stage is {"tasks": [...]}, with "name" in a job of named
stages, and "inputs" (stage numbers) when the job gives them; a stage of
named stages that gives none is a source and sends "inputs": [].

Like rtl's job language (the rtl-dsl crate), this reader knows the
job's shape and not the task library: which tasks exist, their kwargs,
and where a combining task (join, concat) may stand (first in a stage
that takes two or more stages, nowhere else) are checked by the relay,
which refuses such a job with an error naming the stage and the task, in
the words of `rtl check`. Where rtl lists every mistake in a job, this
reader reports the first one rtl lists.
"""

import functools
import json
import os
import re
import sys
import unicodedata


class Problem(Exception):
    """What is wrong with a job, where, and what was expected."""


def load(path, given=()):
    """The wire's stages of the job in file `path`, with parameter values
    `given` as (name, text) pairs, and the folder its relative paths
    resolve against."""
    job, origin, base_dir = read(path)
    return stages_of(job, origin, given), base_dir


class Entries(dict):
    """A JSON object that keeps its entries as written, repeated keys too:
    rtl refuses a stage written twice, and runs a task written twice twice."""

    def __init__(self, pairs):
        super().__init__(pairs)
        self.pairs = pairs


def entries(obj):
    return obj.pairs if isinstance(obj, Entries) else list(obj.items())


def describe(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list"}.get(type(value), "an object")


ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}
# Rust escapes what does not print, and combining marks.
UNPRINTABLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs", "Mn", "Me"}


def quoted(text):
    """`text` in quotes as rtl (Rust's `{:?}`) shows it: quotes,
    backslashes and line breaks escaped, characters that do not print
    (and combining marks) as \\u{hex}."""
    def escaped(c):
        if c in ESCAPES:
            return ESCAPES[c]
        if c != " " and unicodedata.category(c) in UNPRINTABLE:
            return f"\\u{{{ord(c):x}}}"
        return c
    return '"' + "".join(escaped(c) for c in text) + '"'


def problem(origin, message, stage=None, task=None, field=None):
    place = [f"{what} {name}" for what, name in (("stage", stage), ("task", task), ("field", field))
             if name is not None]
    return Problem(": ".join([origin] + ([", ".join(place)] if place else []) + [message]))


def reason(e):
    """An OSError's words without its number and path."""
    return getattr(e, "strerror", None) or str(e)


def no_constant(word):
    raise ValueError(f"{word} is not a JSON value")


def integer(text):
    """A JSON whole number as rtl reads it: `-0` is the float -0.0."""
    return -0.0 if text == "-0" else int(text)


def read(path):
    """The job as written, where it came from, and the folder its relative
    paths resolve against: `-` is JSON on stdin, FILE.toml is TOML, any
    other file JSON."""
    if path == "-":
        origin, base_dir = "<stdin>", os.getcwd()
        try:
            text = sys.stdin.read()
        except (OSError, UnicodeDecodeError) as e:
            raise Problem(f"<stdin>: cannot read the job from stdin: {reason(e)}")
    else:
        origin, base_dir = path, os.path.realpath(os.path.dirname(path) or ".")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise Problem(f"{origin}: cannot read the job file: {reason(e)}")
    if os.path.splitext(path)[1] == ".toml":
        try:
            import tomllib
        except ImportError:
            raise Problem(f"{origin}: reading a TOML job needs Python 3.11 or later (tomllib)")
        try:
            return tomllib.loads(text), origin, base_dir
        except tomllib.TOMLDecodeError as e:
            raise Problem(f"{origin}: not valid TOML: {e}")
    try:
        return json.loads(text, object_pairs_hook=Entries, parse_constant=no_constant,
                          parse_int=integer), origin, base_dir
    except ValueError as e:
        raise Problem(f"{origin}: not valid JSON: {e}")
    except RecursionError:
        raise Problem(f"{origin}: not valid JSON: the job nests too deeply")


def params_of(declared, given, origin):
    """The job's parameters: its "params" defaults (None: no default)
    overridden by --set values, typed as rtl types them."""
    if declared is None:
        values = {}
    elif isinstance(declared, dict):
        values = dict(declared)
    else:
        raise problem(origin, f'"params" is an object of name to default, found {describe(declared)}')
    for name, raw in given:
        if name not in values:
            known = f"the job declares {', '.join(sorted(values))}" if values else "the job declares none"
            raise problem(origin, f"--set {name}: unknown parameter; {known}")
        try:  # `--set n=5` gives a number, `--set on=true` a boolean; text stays text
            value = json.loads(raw, parse_constant=no_constant, parse_int=integer)
        except ValueError:
            value = raw
        values[name] = raw if isinstance(value, (dict, list)) else value
    return values


def fill(value, params, fail):
    """`value` with every `${name}` in its strings replaced; a string that
    is one placeholder takes the parameter's own type."""
    def lookup(name):
        if params.get(name) is not None:
            return params[name]
        if name in params:
            raise fail(f"parameter `{name}` has no default; give it with --set {name}=VALUE")
        if not params:
            raise fail(f'`${{{name}}}` names a parameter, but the job declares no "params"')
        raise fail(f"unknown parameter `{name}`; the job declares {', '.join(sorted(params))}")

    if isinstance(value, dict):
        return {k: fill(v, params, fail) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, params, fail) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = re.fullmatch(r"\$\{([^${}]*)\}", value)
    if whole:
        return lookup(whole[1])
    out, rest = "", value
    while "${" in rest:
        before, _, after = rest.partition("${")
        name, closed, rest = after.partition("}")
        if not closed:
            raise fail(f"`${{` in {quoted(value)} is never closed with `}}`")
        found = lookup(name)
        out += before + (found if isinstance(found, str) else json.dumps(found, separators=(",", ":")))
    return out + rest


def numbered(written, origin):
    """Stages keyed "0" to "n-1", in order, each with its key."""
    stages = {}
    for key, stage in written:
        if not re.fullmatch(r"0|[1-9][0-9]*", key):
            raise problem(origin, f'{quoted(key)} is not a stage number; stages are keyed "0", "1", ... '
                                  '(or give "params" and "stages")')
        if int(key) in stages:
            raise problem(origin, f'stage "{int(key)}" is written twice; each stage key appears once')
        stages[int(key)] = stage
    missing = next((n for n in range(len(stages)) if n not in stages), None)
    if missing is not None:
        have = ", ".join(f'"{n}"' for n in sorted(stages))
        raise problem(origin, f'stage "{missing}" is missing: stage keys run "0", "1", ... without gaps, '
                              f'and this job has {have}')
    return [(str(n), stage) for n, stage in sorted(stages.items())]


def named(written, origin):
    """The stages of a "stages" object, in written order, each with its
    name."""
    stages, seen = [], set()
    for name, stage in written:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise problem(origin, f"{quoted(name)} cannot name a stage: stage names are ASCII letters, digits, "
                                  "`_` and `-`")
        if name in seen:
            raise problem(origin, f"stage `{name}` is written twice; each stage name appears once")
        seen.add(name)
        stages.append((name, stage))
    return stages


def input_names(inputs, by_number):
    """The stage names a stage's "inputs" holds: a list of names, or one
    name; in a numbered job (`by_number`) whole numbers name stages too.
    ValueError, saying what is wrong, for anything else."""
    def name(item):
        if isinstance(item, str):
            return item
        if by_number and type(item) is int and 0 <= item < 2**64:
            return str(item)
        raise ValueError(f"`inputs` names stages in quotes, found {describe(item)}")

    if isinstance(inputs, str):
        return [inputs]
    if not isinstance(inputs, list):
        raise ValueError(f"`inputs` is a list of stage names (or one name), found {describe(inputs)}")
    return [name(item) for item in inputs]


def calls_of(stage, key, params, origin, by_number):
    """A stage's tasks as the wire's list of {"name", "kwargs"}, and the
    names its "inputs" gives (None when it gives none)."""
    if not isinstance(stage, dict):
        raise problem(origin, f'a stage is an object with a "tasks" key, found {describe(stage)}', key)
    inputs = None
    for k, value in entries(stage):
        if k == "inputs":
            try:
                value = fill(value, params, functools.partial(problem, origin, stage=key))
                inputs = input_names(value, by_number)
            except ValueError as e:
                raise problem(origin, str(e), key)
        elif k != "tasks":
            raise problem(origin, f'unknown stage key {quoted(k)}; a stage has "tasks" and, to say which '
                                  'stages it takes, "inputs"', key)
    if "tasks" not in stage:
        raise problem(origin, 'the stage has no "tasks"', key)
    tasks = stage["tasks"]
    if isinstance(tasks, dict):
        written = entries(tasks)
    elif isinstance(tasks, list):
        written = []
        for task in tasks:
            if not isinstance(task, dict) or len(entries(task)) != 1:
                raise problem(origin, 'each entry of a "tasks" list is an object with exactly one task name', key)
            written += entries(task)
    else:
        raise problem(origin, f'"tasks" is an object of task name to kwargs, found {describe(tasks)}', key)
    if not written:
        raise problem(origin, "the stage has no tasks", key)
    calls = []
    for name, kwargs in written:
        if kwargs is not None and not isinstance(kwargs, dict):
            raise problem(origin, f"kwargs must be an object, found {describe(kwargs)}", key, name)
        fail = functools.partial(problem, origin, stage=key, task=name)
        calls.append({"name": name, "kwargs": fill(kwargs or {}, params, fail)})
    return calls, inputs


def edit_distance(a, b):
    """Edits between `a` and `b`, in characters: insertions, deletions,
    substitutions and swaps of two neighbours (rtl_dsl::words)."""
    before, last = [0] * (len(b) + 1), list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            row[j] = min(last[j] + 1, row[j - 1] + 1, last[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], before[j - 2] + 1)
        before, last = last, row
    return last[len(b)]


def closest(name, candidates):
    """The candidate nearest to `name`, when near enough to be a likely
    misspelling (rtl_dsl::words::closest: a third of the longer's bytes)."""
    near = [(edit_distance(name.lower(), c.lower()), c) for c in candidates]
    near = [(d, c) for d, c in near if d <= max(len(c.encode()), len(name.encode())) // 3]
    return min(near, key=lambda dc: dc[0])[1] if near else None


def resolve(written, index, keys, by_number, origin):
    """The numbers of the stages that stage `index` names in its "inputs"
    (`written`), each one a stage it may take."""
    inputs = []
    for name in written:
        fail = functools.partial(problem, origin, stage=keys[index], field="inputs")
        if name not in keys:
            near = closest(name, keys)
            hint = f"did you mean {near}? " if near is not None else ""
            listed = ", ".join(keys) if len(keys) <= 12 else f"{', '.join(keys[:10])}, ... ({len(keys)} in all)"
            raise fail(f"no stage `{name}`; {hint}the job's stages are {listed}")
        found = keys.index(name)
        if by_number and found >= index:
            raise fail(f"stage {index} cannot take stage {found}: in a job of numbered stages a stage takes "
                       'only earlier ones (write "stages" as an object of named stages to wire them in any order)')
        inputs.append(found)
    return inputs


def find_cycle(inputs):
    """A cycle among `inputs` (stage -> the stages it takes) as the stages
    it passes through in the direction tables flow, from the stage written
    first, which ends it again: [a, b, a]. None when there is none. The
    same search as rtl's (dsl/src/graph.rs), so it finds the same cycle."""
    NEW, ON_PATH, DONE = 0, 1, 2
    mark = [NEW] * len(inputs)
    for root in range(len(inputs)):
        if mark[root] != NEW:
            continue
        # Depth-first along inputs, without recursion: the path, and how
        # far through each stage's inputs it has gone.
        path, mark[root] = [[root, 0]], ON_PATH
        while path:
            stage, next_input = path[-1]
            if next_input == len(inputs[stage]):
                mark[stage] = DONE
                path.pop()
                continue
            path[-1][1] += 1
            taken = inputs[stage][next_input]
            if mark[taken] == NEW:
                mark[taken] = ON_PATH
                path.append([taken, 0])
            elif mark[taken] == ON_PATH:
                # The path runs consumer -> input; tables flow the other way.
                on = [s for s, _ in path]
                cycle = on[on.index(taken):][::-1]
                first = cycle.index(min(cycle))
                cycle = cycle[first:] + cycle[:first]
                return cycle + cycle[:1]
    return None


def check_graph(stages, keys, origin):
    """What rtl refuses in the wiring of stages that each name stages
    that exist: a stage taking itself or one stage twice, and cycles."""
    taken = []
    for index, stage in enumerate(stages):
        listed = []
        for i in stage.get("inputs", [index - 1] if index else []):
            if i == index:
                raise problem(origin, "a stage cannot take its own table as input", keys[index])
            if i in listed:
                raise problem(origin, f"`inputs` names `{keys[i]}` twice; a stage takes each input once",
                              keys[index])
            listed.append(i)
        taken.append(listed)
    cycle = find_cycle(taken)
    if cycle is not None:
        path = " -> ".join(keys[s] for s in cycle)
        raise problem(origin, f"the stages' inputs go round in a cycle: {path}; a stage can only take "
                              "stages that do not depend on it", keys[cycle[0]])


def stages_of(job, origin, given=()):
    """The wire's list of stages from a job as written."""
    declared, listed, written = None, None, []
    if isinstance(job, list):
        listed = job
    elif isinstance(job, dict):
        for key, value in entries(job):
            if key == "params":
                declared = value
            elif key == "stages":
                listed = value
            else:
                written.append((key, value))
    else:
        raise problem(origin, 'a job is an object of stages ("0", "1", ...) or a list of stages, '
                              f"found {describe(job)}")
    params = params_of(declared, given, origin)
    by_number = not isinstance(listed, dict)
    if listed is None:
        stages = numbered(written, origin)
    elif written:
        raise problem(origin, f'stage key {quoted(written[0][0])} next to "stages": give the stages one way')
    elif isinstance(listed, list):
        stages = [(str(i), stage) for i, stage in enumerate(listed)]
    elif isinstance(listed, dict):
        stages = named(entries(listed), origin)
    else:
        raise problem(origin, '"stages" is a list of stages, or an object of named stages, '
                              f"found {describe(listed)}")
    if not stages:
        raise problem(origin, "the job has no stages")
    built = [calls_of(stage, key, params, origin, by_number) for key, stage in stages]
    keys = [key for key, _ in stages]
    wire = []
    for index, (calls, inputs) in enumerate(built):
        stage = {} if by_number else {"name": keys[index]}
        if inputs is not None:
            stage["inputs"] = resolve(inputs, index, keys, by_number, origin)
        elif not by_number:
            stage["inputs"] = []  # a graph's stage that names no inputs is a source
        stage["tasks"] = calls
        wire.append(stage)
    check_graph(wire, keys, origin)
    return wire
