"""rtl's job files, read in Python as `rtl run` reads them.

rtl_client.py sends a job's stages on the wire (docs/PROTOCOL.md, Plan);
this module turns a job file into them the way rtl's job language does
(dsl/src/lib.rs), taking what rtl takes and refusing what it refuses, in
its words:

    stages, base_dir = rtl_job.load("job.json", [("day", "monday")])

A job file is JSON, TOML when its name ends in .toml (Python 3.11's
tomllib), or JSON on stdin for `-`. A job is an object of stages "0" to
"n-1", a list of stages, or {"stages": [...]}; each stage has "tasks" and
nothing else: an object of task name to kwargs (null: none), or a list of
one-key objects. "params" gives names a default (null: none) for the
`${name}` placeholders in kwargs, and values given as --set NAME=VALUE
replace them. Relative paths in kwargs resolve against `base_dir`, the
job file's folder (the working directory for stdin).
"""

import functools
import json
import os
import re
import sys


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


def quoted(text):
    return json.dumps(text, ensure_ascii=False)


def problem(origin, message, stage=None, task=None):
    place = [f"stage {stage}"] if stage is not None else []
    place += [f"task {task}"] if task is not None else []
    return Problem(": ".join([origin] + ([", ".join(place)] if place else []) + [message]))


def reason(e):
    """An OSError's words without its number and path."""
    return getattr(e, "strerror", None) or str(e)


def no_constant(word):
    raise ValueError(f"{word} is not a JSON value")


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
        return json.loads(text, object_pairs_hook=Entries, parse_constant=no_constant), origin, base_dir
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
            value = json.loads(raw, parse_constant=no_constant)
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
    """Stages keyed "0" to "n-1", in order."""
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
    return sorted(stages.items())


def calls_of(stage, key, params, origin):
    """A stage's tasks as the wire's list of {"name", "kwargs"}."""
    if not isinstance(stage, dict):
        raise problem(origin, f'a stage is an object with a "tasks" key, found {describe(stage)}', key)
    for k, _ in entries(stage):
        if k != "tasks":
            raise problem(origin, f'unknown stage key {quoted(k)}; a stage has only "tasks"', key)
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
    return calls


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
    if listed is None:
        stages = numbered(written, origin)
    elif written:
        raise problem(origin, f'stage key {quoted(written[0][0])} next to "stages": give the stages one way')
    elif not isinstance(listed, list):
        raise problem(origin, f'"stages" is a list of stages, found {describe(listed)}')
    else:
        stages = list(enumerate(listed))
    if not stages:
        raise problem(origin, "the job has no stages")
    return [{"tasks": calls_of(stage, key, params, origin)} for key, stage in stages]
