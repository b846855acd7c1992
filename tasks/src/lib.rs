//! rtl's data and the work done on it: the columnar [`Table`], the task
//! registry and the built-in task library.
//!
//! A task is a named kernel that takes a table and its kwargs and returns a
//! table. Each task lives in one file under `library/` with its kwargs
//! struct, its documentation, its kernel and its tests. [`run_stage`] runs a
//! stage's calls in order and turns any failure into a [`TaskError`] that
//! names the stage and the task. [`check`] follows a job through its stages
//! before it runs, on a sample of its input, and reports every problem with
//! its place in the job file. [`formats`] reads and writes table files.
//!
//! This crate knows nothing about processes, sockets or the cache: the same
//! code runs in a task node, in the embedded mode and in unit tests.

pub mod alloc;
pub mod chart;
mod check;
pub mod codec;
pub mod confine;
pub mod formats;
pub mod installed;
mod library;
pub mod reduce;
#[cfg(test)]
mod scratch;
pub mod table;

pub use chart::Chart;
pub use check::{check, check_calls, field_of, trace, warnings, Step};
pub use installed::{Installed, Manifest, Programs};
pub use reduce::{combine, Reduce, Stat};
pub use table::{Column, DType, Table};

use rtl_dsl::TaskCall;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a task may know about the job it runs in, and where it leaves
/// notes for the run's progress output.
#[derive(Debug)]
pub struct Context<'a> {
    /// Directory relative paths in kwargs resolve against.
    pub base_dir: &'a Path,
    /// True while a job is checked on a sample of its data: tasks then skip
    /// the checks that depend on the values (a fit's row count, say).
    pub checking: bool,
    /// The daemon's `data_root`, when set: file tasks stay under it too.
    pub data_root: Option<&'a Path>,
    /// The installed tasks, and the programs that run them.
    pub programs: Option<&'a Programs>,
    notes: RefCell<Vec<String>>,
    charts: RefCell<Vec<Chart>>,
}

impl<'a> Context<'a> {
    /// A context whose relative paths resolve against `base_dir`.
    pub fn new(base_dir: &'a Path) -> Context<'a> {
        Context {
            base_dir,
            checking: false,
            data_root: None,
            programs: None,
            notes: RefCell::new(Vec::new()),
            charts: RefCell::new(Vec::new()),
        }
    }

    /// A line for the run's progress output (regression coefficients, say).
    pub fn note(&self, message: impl Into<String>) {
        self.notes.borrow_mut().push(message.into());
    }

    /// A chart for the plot node (and for a client that asked for charts).
    pub fn chart(&self, chart: Chart) {
        self.charts.borrow_mut().push(chart);
    }

    /// The installed tasks it can run.
    pub fn installed(&self) -> Option<&'a Installed> {
        self.programs.map(Programs::installed)
    }

    /// The file `path` names (relative to the job's folder), if file tasks
    /// may use it: see [`confine`].
    pub fn file(&self, path: &Path) -> Result<confine::Confined, String> {
        confine::confine(self.base_dir, self.data_root, path)
    }
}

/// A task's kernel: the input table and the call's kwargs in, a table out.
/// The error says what went wrong; the runner adds the stage and task.
pub type Kernel = fn(Table, &Value, &Context) -> Result<Table, String>;

/// A registered task.
pub struct TaskSpec {
    /// Canonical snake_case name.
    pub name: &'static str,
    /// Other names accepted in jobs (the original bundle's spellings).
    pub aliases: &'static [&'static str],
    /// One line for `rtl tasks`.
    pub about: &'static str,
    /// The kwargs, one per line, with their types and defaults
    /// (`rtl tasks --doc`).
    pub kwargs: &'static str,
    /// Example kwargs (JSON) that run on a table with number columns `x`,
    /// `y`, an int64 column `n` and a text column `site`.
    pub example: &'static str,
    /// Runs the task on a table.
    pub kernel: Kernel,
    /// Decodes the kwargs into the task's kwargs struct, nothing more: what
    /// the relay can check without the data.
    pub check: fn(&Value) -> Result<(), String>,
    /// How the task is checked before a job runs.
    pub role: Role,
    /// Whether each output row depends only on its own input row (and rows
    /// keep their order): then running the task on consecutive chunks of a
    /// table and concatenating the results equals running it on the whole
    /// table, and the relay may split the work.
    pub row_local: bool,
    /// Kwargs the original's task took that mean nothing in rtl: jobs may
    /// still give them, and are warned that they have no effect.
    pub ignored: &'static [Ignored],
    /// For a whole-column task that needs only a few figures of the whole
    /// table: how it runs chunk by chunk given them (see [`reduce`]).
    pub reduce: Option<Reduce>,
}

/// A kwarg a task accepts and ignores (see [`TaskSpec::ignored`]). The
/// task decodes its kwargs [`without`] it, so its kwargs struct never
/// names it, not even in the fields an unknown one is told it could be.
pub struct Ignored {
    /// The kwarg's name.
    pub field: &'static str,
    /// Why it has no effect, for the warning.
    pub why: &'static str,
    /// When it has none.
    pub when: When,
}

/// When an [`Ignored`] kwarg has no effect.
pub enum When {
    /// Always.
    Always,
    /// Beside this kwarg, which means the same and wins; alone, it is taken.
    Beside(&'static str),
    /// When this says so of the call's kwargs (e.g. a csv-only kwarg given
    /// for another format).
    If(fn(&Value) -> bool),
}

impl Ignored {
    /// Whether `kwargs` give this kwarg where it has no effect.
    pub fn applies(&self, kwargs: &Value) -> bool {
        let given = |field: &str| kwargs.get(field).is_some();
        given(self.field)
            && match self.when {
                When::Always => true,
                When::Beside(other) => given(other),
                When::If(holds) => holds(kwargs),
            }
    }
}

/// How a task is checked before a job runs (see [`check`]).
pub enum Role {
    /// Reads its input's columns and makes a table of them: checked by
    /// running its kernel on a sample of the input.
    Transform,
    /// Makes a table from a file: checked from a sample of the file (its
    /// header and first rows, or its `.meta`). `reads` names the file, so a
    /// check can follow a file an earlier task of the same job writes.
    Source {
        /// Reads a sample of the file the kwargs name.
        sample: fn(&Value, &Context) -> Result<Table, String>,
        /// The file it reads, when the kwargs name one.
        reads: Option<FileOf>,
    },
    /// Writes the table to the file it names and passes the table on:
    /// checked by its kwargs only, never run early.
    Writes(FileOf),
    /// Makes one table of the tables of several stages: the first task of
    /// a stage with two or more inputs, and only there. Checked, like a
    /// transform, by running on the inputs' samples.
    Combine(Combiner),
}

/// One input of a combining task: the stage it comes from and its table.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The stage's name, as messages and column suffixes give it.
    pub stage: String,
    /// Its table.
    pub table: Table,
}

/// A combining task's kernel: the inputs in the order the stage lists
/// them, and the call's kwargs.
pub type Combiner = fn(Vec<Input>, &Value, &Context) -> Result<Table, String>;

impl TaskSpec {
    /// Whether it is a combining task ([`Role::Combine`]).
    pub fn combines(&self) -> bool {
        matches!(self.role, Role::Combine(_))
    }
}

/// The file a call reads or writes, from its kwargs.
pub type FileOf = fn(&Value, &Context) -> Result<PathBuf, String>;

/// Every built-in task, in the order `rtl tasks` lists them.
pub fn registry() -> &'static [TaskSpec] {
    library::TASKS
}

/// Finds a task by canonical name, alias, or with the original's `task_` prefix.
pub fn lookup(name: &str) -> Option<&'static TaskSpec> {
    let bare = name.strip_prefix("task_").unwrap_or(name);
    registry()
        .iter()
        .find(|t| t.name == bare || t.aliases.contains(&bare))
}

/// A task call that failed, naming where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    /// Index of the stage.
    pub stage: usize,
    /// The task's name as the job wrote it.
    pub task: String,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stage {}, task {}: {}",
            self.stage, self.task, self.message
        )
    }
}

impl std::error::Error for TaskError {}

/// What the runner reports as it goes, for progress lines and traces.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A task started.
    Running {
        /// Its name.
        task: &'a str,
    },
    /// A task's note, such as a fit's coefficients.
    Note {
        /// Its name.
        task: &'a str,
        /// The note.
        message: &'a str,
    },
    /// A task finished.
    Completed {
        /// Its name.
        task: &'a str,
        /// How long it ran.
        elapsed: Duration,
    },
    /// A chart a task drew.
    Chart {
        /// Its name.
        task: &'a str,
        /// The chart.
        chart: Chart,
    },
}

/// Runs the combining task `call`, the first of stage `index`, on the
/// stage's inputs.
pub fn run_combining(
    index: usize,
    call: &TaskCall,
    inputs: Vec<Input>,
    ctx: &Context,
    on_event: &mut dyn FnMut(Event),
) -> Result<Table, TaskError> {
    let fail = |message: String| TaskError {
        stage: index,
        task: call.name.clone(),
        message,
    };
    let spec = lookup(&call.name).ok_or_else(|| {
        fail(match ctx.installed().and_then(|i| i.get(&call.name)) {
            Some(_) => format!(
                "this stage takes {} inputs, and `{}` does not combine tables: the first task of such a stage is join or concat",
                inputs.len(),
                call.name
            ),
            None => unknown_task_message(&call.name, ctx.installed()),
        })
    })?;
    let Role::Combine(combiner) = spec.role else {
        return Err(fail(format!(
            "this stage takes {} inputs, and `{}` does not combine tables: the first task of such a stage is join or concat",
            inputs.len(),
            spec.name
        )));
    };
    guarded(spec.name, ctx, on_event, || {
        combiner(inputs, &call.kwargs, ctx)
    })
    .map_err(fail)
}

/// Runs task calls of stage `index` (all of a stage's, or a run of them)
/// in order on `table`.
pub fn run_stage(
    index: usize,
    calls: &[TaskCall],
    table: Table,
    ctx: &Context,
    on_event: &mut dyn FnMut(Event),
) -> Result<Table, TaskError> {
    run_chunk(index, calls, table, ctx, on_event, None, None).map(|(table, _)| table)
}

/// Runs task calls of stage `index` on one chunk of a table, as
/// [`run_stage`] does, except that when `stats` are given the first task
/// runs with the whole table's figures ([`Reduce::apply`]), and when
/// `then` is given (the stage's next task, a [`Reduce`] one) the chunk's
/// figures for it come back with the chunk.
pub fn run_chunk(
    index: usize,
    calls: &[TaskCall],
    mut table: Table,
    ctx: &Context,
    on_event: &mut dyn FnMut(Event),
    stats: Option<&[Stat]>,
    then: Option<&TaskCall>,
) -> Result<(Table, Vec<Stat>), TaskError> {
    for (k, call) in calls.iter().enumerate() {
        let stats = stats.filter(|_| k == 0);
        table = run_call(index, call, table, ctx, on_event, stats)?;
    }
    let Some(then) = then else {
        return Ok((table, Vec::new()));
    };
    let fail = |message: String| TaskError {
        stage: index,
        task: then.name.clone(),
        message,
    };
    let reduce = lookup(&then.name)
        .and_then(|t| t.reduce.as_ref())
        .ok_or_else(|| fail("this task cannot run chunk by chunk".into()))?;
    let partial = (reduce.partial)(&table, &then.kwargs).map_err(fail)?;
    Ok((table, partial))
}

/// Runs one task call, through its kernel or, given the whole table's
/// figures, through its [`Reduce::apply`].
fn run_call(
    index: usize,
    call: &TaskCall,
    table: Table,
    ctx: &Context,
    on_event: &mut dyn FnMut(Event),
    stats: Option<&[Stat]>,
) -> Result<Table, TaskError> {
    let fail = |message: String| TaskError {
        stage: index,
        task: call.name.clone(),
        message,
    };
    let Some(spec) = lookup(&call.name) else {
        let installed = ctx
            .programs
            .and_then(|p| Some((p, p.installed().get(&call.name)?)));
        let Some((programs, manifest)) = installed.filter(|_| stats.is_none()) else {
            return Err(fail(unknown_task_message(&call.name, ctx.installed())));
        };
        return guarded(&call.name, ctx, on_event, || {
            programs.call(manifest, &call.kwargs, table, ctx.checking)
        })
        .map_err(fail);
    };
    let apply = match stats {
        None => None,
        Some(stats) => Some((
            spec.reduce
                .as_ref()
                .ok_or_else(|| fail("this task cannot run chunk by chunk".into()))?
                .apply,
            stats,
        )),
    };
    guarded(spec.name, ctx, on_event, || match apply {
        Some((apply, stats)) => apply(table, &call.kwargs, stats),
        None => (spec.kernel)(table, &call.kwargs, ctx),
    })
    .map_err(fail)
}

/// Runs `kernel` for task `task` with its events: started, its notes and
/// charts, finished. A panic becomes an error.
fn guarded(
    task: &str,
    ctx: &Context,
    on_event: &mut dyn FnMut(Event),
    kernel: impl FnOnce() -> Result<Table, String>,
) -> Result<Table, String> {
    on_event(Event::Running { task });
    let started = Instant::now();
    // A panicking kernel is a bug in rtl, but it must not take the
    // process (and every other job on it) down with it.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(kernel));
    for message in ctx.notes.take() {
        on_event(Event::Note {
            task,
            message: &message,
        });
    }
    for chart in ctx.charts.take() {
        on_event(Event::Chart { task, chart });
    }
    let table = match outcome {
        Ok(result) => result?,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".into());
            return Err(format!("the task panicked ({what}); this is a bug in rtl"));
        }
    };
    on_event(Event::Completed {
        task,
        elapsed: started.elapsed(),
    });
    Ok(table)
}

/// `unknown task `name``, with the closest name `rtl tasks` lists (the
/// built-ins', and `installed` ones').
pub fn unknown_task_message(name: &str, installed: Option<&Installed>) -> String {
    if let Some(why) = installed.and_then(|i| i.broken(name)) {
        return format!("`{name}` is not installed: its manifest cannot be used ({why})");
    }
    // Near any of a task's names, but suggested by the name `rtl tasks`
    // lists it under.
    let mut candidates: Vec<(usize, &str)> = registry()
        .iter()
        .flat_map(|t| {
            std::iter::once(t.name)
                .chain(t.aliases.iter().copied())
                .map(move |n| (n, t.name))
        })
        .chain(
            installed
                .into_iter()
                .flat_map(Installed::iter)
                .map(|m| (m.name.as_str(), m.name.as_str())),
        )
        .map(|(n, canonical)| (edit_distance(name, n), n, canonical))
        .filter(|(d, n, _)| *d <= n.len().max(name.len()) / 3 + 1)
        .map(|(d, _, canonical)| (d, canonical))
        .collect();
    candidates.sort();
    match candidates.first() {
        Some((_, best)) => {
            format!("unknown task `{name}`; did you mean {best}? (`rtl tasks` lists them all)")
        }
        None => format!("unknown task `{name}` (`rtl tasks` lists the tasks rtl has)"),
    }
}

pub use rtl_dsl::words::closest;
use rtl_dsl::words::edit_distance;

/// Decodes a call's kwargs into the task's kwargs struct. The error names
/// the field: `bad kwargs at `operations[0].method`: unknown value ...`.
pub(crate) fn kwargs<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    // serde would take a list as the struct's fields in order; a job
    // names its kwargs.
    if !value.is_object() {
        let found = rtl_dsl::Node::from_value(value).describe();
        return Err(format!(
            "bad kwargs: expected an object of names to values, found {found}"
        ));
    }
    let first = match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(kwargs) => return Ok(kwargs),
        Err(e) => e,
    };
    let at = |path: &serde_path_to_error::Path, what: &str| {
        let path = path.to_string();
        if path.is_empty() || path == "." {
            format!("bad kwargs: {what}")
        } else {
            format!("bad kwargs at `{path}`: {what}")
        }
    };
    let message = rtl_dsl::words::plain(&first.inner().to_string());
    let Some((name, expected)) = unknown_field(&message) else {
        return Err(at(first.path(), &message));
    };
    // Serde stops at the first unknown field. Take each away and decode
    // again, so one look names every unknown field of that object.
    let mut names = vec![format!("`{name}`")];
    let mut trimmed = value.clone();
    let mut path = first.path().clone();
    while names.len() < 64 && remove_field(&mut trimmed, &path) {
        let Err(next) = serde_path_to_error::deserialize::<_, T>(&trimmed) else {
            break;
        };
        let next_message = next.inner().to_string();
        let same_object = parent(next.path()) == parent(&path);
        match unknown_field(&next_message) {
            Some((name, _)) if same_object => names.push(format!("`{name}`")),
            _ => break,
        }
        path = next.path().clone();
    }
    if names.len() == 1 {
        return Err(at(first.path(), &message));
    }
    let last = names.pop().unwrap_or_default();
    let list = format!("{} and {last}", names.join(", "));
    Err(at(
        first.path(),
        &format!("unknown fields {list}, {expected}"),
    ))
}

/// The name and the rest of serde's "unknown field `x`, expected ..." text.
fn unknown_field(message: &str) -> Option<(&str, &str)> {
    message.strip_prefix("unknown field `")?.split_once("`, ")
}

/// The segments of `path` but its last, written out.
fn parent(path: &serde_path_to_error::Path) -> Vec<String> {
    let segments: Vec<String> = path.iter().map(ToString::to_string).collect();
    segments[..segments.len().saturating_sub(1)].to_vec()
}

/// Removes the object field `path` ends at from `value`, keeping the
/// other fields in written order (so they are named in that order); false
/// when the path does not lead to one.
fn remove_field(value: &mut Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((Segment::Map { key }, within)) = segments.split_last() else {
        return false;
    };
    let mut here = value;
    for segment in within {
        here = match segment {
            Segment::Seq { index } => match here.get_mut(*index) {
                Some(v) => v,
                None => return false,
            },
            Segment::Map { key } => match here.get_mut(key.as_str()) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    here.as_object_mut()
        .is_some_and(|object| object.shift_remove(key.as_str()).is_some())
}

/// `value` without the kwargs it gives where they have no effect.
pub(crate) fn without(value: &Value, ignored: &[Ignored]) -> Value {
    let mut out = value.clone();
    if let Some(fields) = out.as_object_mut() {
        for i in ignored.iter().filter(|i| i.applies(value)) {
            fields.shift_remove(i.field);
        }
    }
    out
}

/// [`TaskSpec::check`] for a task whose kwargs struct is `T`.
pub(crate) fn decodes<T: DeserializeOwned>(value: &Value) -> Result<(), String> {
    kwargs::<T>(value).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stage(calls: &[(&str, Value)]) -> Vec<TaskCall> {
        calls
            .iter()
            .map(|(n, k)| TaskCall::new(*n, k.clone()))
            .collect()
    }

    #[test]
    fn aliases_and_prefix_resolve() {
        assert_eq!(lookup("task_null").map(|t| t.name), Some("null"));
        assert_eq!(lookup("openArray").map(|t| t.name), Some("open_array"));
        assert!(lookup("nope").is_none());
        // The original's names.
        assert_eq!(lookup("task_difference").map(|t| t.name), Some("null"));
        assert_eq!(
            lookup("task_average_cross").map(|t| t.name),
            Some("cross_average")
        );
        assert_eq!(lookup("task_max_cross").map(|t| t.name), Some("cross_max"));
    }

    #[test]
    fn every_unknown_field_of_an_object_is_named_at_once() {
        let sort = lookup("sort").expect("sort").check;
        let one = sort(&json!({"colum": "a"})).expect_err("one");
        assert_eq!(
            one,
            "bad kwargs at `colum`: unknown field `colum`, expected `column` or `descending`"
        );
        let three = sort(&json!({"colum": "a", "descending": true, "descendng": true, "xx": 1}))
            .expect_err("three");
        assert_eq!(
            three,
            "bad kwargs at `colum`: unknown fields `colum`, `descendng` and `xx`, expected `column` or `descending`"
        );
    }

    #[test]
    fn every_ignored_kwarg_decodes() {
        for spec in registry() {
            for ignored in spec.ignored {
                // Where it has no effect, any value goes.
                let mut kwargs: Value = serde_json::from_str(spec.example).expect("example");
                kwargs[ignored.field] = json!([1, "anything"]);
                if !ignored.applies(&kwargs) {
                    continue;
                }
                assert_eq!(
                    (spec.check)(&kwargs),
                    Ok(()),
                    "{}.{}",
                    spec.name,
                    ignored.field
                );
            }
        }
    }

    #[test]
    fn a_misspelt_alias_suggests_the_name_rtl_tasks_lists() {
        let message = unknown_task_message("groupBi", None);
        assert!(message.contains("did you mean group_by?"), "{message}");
    }

    #[test]
    fn unknown_task_suggests_a_name_and_names_the_stage() {
        let ctx = Context::new(Path::new("."));
        let err = run_stage(
            3,
            &stage(&[("nul", json!({}))]),
            Table::new(),
            &ctx,
            &mut |_| {},
        )
        .expect_err("unknown");
        assert_eq!(err.stage, 3);
        assert_eq!(err.task, "nul");
        assert!(err.message.contains("did you mean null?"), "{err}");
    }

    #[test]
    fn events_come_in_order() {
        let ctx = Context::new(Path::new("."));
        let mut seen = Vec::new();
        run_stage(
            0,
            &stage(&[("null", json!({})), ("task_null", json!({}))]),
            Table::new(),
            &ctx,
            &mut |e| {
                seen.push(match e {
                    Event::Running { task } => format!("run {task}"),
                    Event::Completed { task, .. } => format!("done {task}"),
                    Event::Note { task, message } => format!("note {task}: {message}"),
                    Event::Chart { task, chart } => format!("chart {task}: {}", chart.name),
                })
            },
        )
        .expect("run");
        assert_eq!(seen, ["run null", "done null", "run null", "done null"]);
    }
}
