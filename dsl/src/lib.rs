//! DSDSL, the rtl job language, parsed into a typed [`Plan`].
//!
//! A job is a JSON (or TOML) object of ordered stages; each stage is an
//! ordered list of task calls with keyword arguments:
//!
//! ```json
//! {"params": {"day": "monday"},
//!  "0": {"tasks": {"open_array": {"filename": "log_${day}", "path": "."}}},
//!  "1": {"tasks": [{"null": {}}, {"null": {}}]}}
//! ```
//!
//! Stages may instead be named, and say which stages' tables they take
//! (a graph: fan-out, and fan-in through a combining task):
//!
//! ```json
//! {"stages": {"load":   {"tasks": {"open_array": {"filename": "readings"}}},
//!             "hot":    {"inputs": "load", "tasks": {"null": {}}},
//!             "report": {"inputs": ["load", "hot"], "tasks": [{"concat": {}}]}}}
//! ```
//!
//! This crate owns the syntax: stage order, task order, parameters, where a
//! job came from (relative paths resolve against the job file's directory)
//! and where in the text each stage, task and field was written, so that
//! every [`Problem`] can point at it, and the job's [`Graph`]: which stage
//! takes which, in what order they can run, which are results. It does
//! not know which tasks exist or what their kwargs mean: the task library
//! checks those.

#![forbid(unsafe_code)]

mod graph;
mod tree;
pub mod words;

pub use graph::Graph;
pub use tree::{parse_json, Kind, Node, Pos};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A parsed job: the stages to run in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The stages, in the order they run.
    pub stages: Vec<Stage>,
    /// Directory that relative paths inside the job resolve against: the job
    /// file's directory, or the working directory for jobs given as text.
    pub base_dir: PathBuf,
    /// The file (or `<string>`, `<stdin>`) the job came from; not sent.
    #[serde(skip)]
    pub origin: String,
    /// Inputs the job's text names that are no stage it may take, found
    /// while reading it and reported by [`Plan::graph`] (so that a check
    /// reports them with every other problem); not sent.
    #[serde(skip)]
    pub unresolved: Vec<Problem>,
}

/// One stage: its tasks run in order on the stage's input table (or, when
/// it takes several, on what its first task, a combining one, makes of
/// them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Its name, in a job of named stages; empty in a numbered one, whose
    /// stages go by their numbers ([`Plan::stage_name`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The stages whose tables it takes, by number, in the order the job
    /// lists them; None: the stage before it (none for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<u32>>,
    /// The stage's tasks, in the order they run.
    pub tasks: Vec<TaskCall>,
    /// Where the stage was written; not sent.
    #[serde(skip)]
    pub at: Option<Pos>,
}

impl Stage {
    /// A stage of these calls that takes the stage before it.
    pub fn new(tasks: Vec<TaskCall>) -> Stage {
        Stage {
            name: String::new(),
            inputs: None,
            tasks,
            at: None,
        }
    }
}

/// One task call: the task's name as written and its keyword arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskCall {
    /// The task's name as the job wrote it (an alias stays an alias).
    pub name: String,
    /// Keyword arguments as a JSON object; the task decodes them.
    pub kwargs: Value,
    /// Where the call and its fields were written; not sent.
    #[serde(skip)]
    pub written: Option<Written>,
}

/// Positions of a task call in its job's text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Written {
    /// The task name.
    pub at: Option<Pos>,
    /// Every field below the kwargs, by path (`operations[0].b`).
    pub fields: Vec<(String, Pos)>,
}

impl TaskCall {
    /// A call built in code (no text behind it).
    pub fn new(name: impl Into<String>, kwargs: Value) -> TaskCall {
        TaskCall {
            name: name.into(),
            kwargs,
            written: None,
        }
    }

    /// Where `field` (a path such as `operations[0].b`, or a prefix of one)
    /// was written, else where the call was.
    pub fn position(&self, field: Option<&str>) -> Option<Pos> {
        let written = self.written.as_ref()?;
        field
            .and_then(|f| {
                let mut f = f;
                loop {
                    if let Some((_, at)) = written.fields.iter().find(|(p, _)| p == f) {
                        return Some(*at);
                    }
                    // Fall back to the nearest enclosing field.
                    f = &f[..f.rfind(['.', '['])?];
                }
            })
            .or(written.at)
    }
}

/// Something wrong with a job, naming where it is as closely as known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The job file, or `<string>`/`<stdin>`.
    pub file: String,
    /// The stage, when the problem is in one.
    pub stage: Option<String>,
    /// The task, when the problem is in one.
    pub task: Option<String>,
    /// The keyword argument, when the problem is in one.
    pub field: Option<String>,
    /// Line in the job file, from 1, when known.
    pub line: Option<usize>,
    /// Column in the job file, from 1, when known.
    pub column: Option<usize>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl Problem {
    /// A problem with the job as a whole.
    pub fn in_file(file: &str, message: impl Into<String>) -> Problem {
        Problem {
            file: file.to_string(),
            stage: None,
            task: None,
            field: None,
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// Places the problem at `at` in the file, when known.
    pub fn at(mut self, at: Option<Pos>) -> Problem {
        if let Some(at) = at {
            self.line = Some(at.line);
            self.column = Some(at.column);
        }
        self
    }

    /// Places the problem in `stage`.
    pub fn stage(mut self, stage: impl ToString) -> Problem {
        self.stage = Some(stage.to_string());
        self
    }

    /// Places the problem in `task`.
    pub fn task(mut self, task: &str) -> Problem {
        self.task = Some(task.to_string());
        self
    }

    /// Places the problem in keyword argument `field`, when known.
    pub fn field(mut self, field: Option<String>) -> Problem {
        self.field = field;
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        let mut place = Vec::new();
        if let Some(s) = &self.stage {
            place.push(format!("stage {s}"));
        }
        if let Some(t) = &self.task {
            place.push(format!("task {t}"));
        }
        if let Some(x) = &self.field {
            place.push(format!("field {x}"));
        }
        if !place.is_empty() {
            write!(f, ": {}", place.join(", "))?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Problem {}

/// Every problem found in a job, in the order they appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for Problems {}

impl From<Problem> for Problems {
    fn from(p: Problem) -> Problems {
        Problems(vec![p])
    }
}

/// The notations a job file can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// JSON.
    Json,
    /// TOML.
    Toml,
}

impl Syntax {
    /// By extension: `.toml` is TOML, anything else JSON.
    pub fn of(path: &Path) -> Syntax {
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Syntax::Toml,
            _ => Syntax::Json,
        }
    }
}

/// Values given on the command line for a job's parameters (`--set k=v`).
pub type Params = [(String, String)];

impl Plan {
    /// Reads and parses a job file (`-` reads JSON from stdin); relative
    /// paths in it resolve against the file's directory.
    pub fn from_file(path: &Path) -> Result<Plan, Problems> {
        Plan::from_file_with(path, &[])
    }

    /// [`Plan::from_file`] with parameter values.
    pub fn from_file_with(path: &Path, params: &Params) -> Result<Plan, Problems> {
        if path == Path::new("-") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| {
                Problem::in_file("<stdin>", format!("cannot read the job from stdin: {e}"))
            })?;
            let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            return Plan::parse_with(&text, Syntax::Json, "<stdin>", here, params);
        }
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Problem::in_file(&origin, format!("cannot read the job file: {e}")))?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let base_dir = match dir {
            Some(d) => d.canonicalize().unwrap_or_else(|_| d.to_path_buf()),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        };
        Plan::parse_with(&text, Syntax::of(path), &origin, base_dir, params)
    }

    /// Parses a JSON job from text. `origin` names it in problems.
    pub fn parse(text: &str, origin: &str, base_dir: PathBuf) -> Result<Plan, Problems> {
        Plan::parse_with(text, Syntax::Json, origin, base_dir, &[])
    }

    /// Parses a job in `syntax` with parameter values.
    pub fn parse_with(
        text: &str,
        syntax: Syntax,
        origin: &str,
        base_dir: PathBuf,
        params: &Params,
    ) -> Result<Plan, Problems> {
        let root = match syntax {
            Syntax::Json => parse_json(text).map_err(|e| {
                Problem::in_file(origin, format!("not valid JSON: {}", e.message)).at(Some(e.at))
            })?,
            Syntax::Toml => {
                let value: toml::Value = toml::from_str(text).map_err(|e| {
                    let at = e.span().map(|span| position_of(text, span.start));
                    Problem::in_file(origin, format!("not valid TOML: {}", e.message())).at(at)
                })?;
                let value =
                    json_of_toml(value, "").map_err(|message| Problem::in_file(origin, message))?;
                Node::from_value(&value)
            }
        };
        Plan::from_node(&root, origin, base_dir, params)
    }

    /// Builds a plan from a parsed tree: stages in order, parameters filled.
    pub fn from_node(
        root: &Node,
        origin: &str,
        base_dir: PathBuf,
        params: &Params,
    ) -> Result<Plan, Problems> {
        let mut problems = Vec::new();
        let problem = |message: String| Problem::in_file(origin, message);
        let Kind::Object(entries) = &root.kind else {
            let stages = match &root.kind {
                Kind::Array(items) => items.iter().enumerate().map(|(i, n)| (i.to_string(), n.at, n)).collect(),
                _ => {
                    return Err(problem(format!(
                        "a job is an object of stages (\"0\", \"1\", ...) or a list of stages, found {}",
                        root.describe()
                    ))
                    .at(root.at)
                    .into())
                }
            };
            return build(
                stages,
                &Values::new(origin, None, params, &mut problems),
                origin,
                base_dir,
                problems,
                Form::Numbered,
            );
        };
        let mut declared = None;
        let mut listed = None;
        let mut numbered = Vec::new();
        for (key, at, value) in entries {
            match key.as_str() {
                "params" => declared = Some(value),
                "stages" => listed = Some(value),
                _ => numbered.push((key.clone(), *at, value)),
            }
        }
        let values = Values::new(origin, declared, params, &mut problems);
        let (stages, form) = match listed {
            Some(list) => {
                if let Some((key, at, _)) = numbered.first() {
                    problems.push(
                        problem(format!(
                            "stage key {key:?} next to \"stages\": give the stages one way"
                        ))
                        .at(*at),
                    );
                }
                match &list.kind {
                    Kind::Array(items) => (
                        items
                            .iter()
                            .enumerate()
                            .map(|(i, n)| (i.to_string(), n.at, n))
                            .collect(),
                        Form::Numbered,
                    ),
                    Kind::Object(named) => {
                        (named_stages(named, origin, &mut problems), Form::Named)
                    }
                    _ => {
                        problems.push(
                            problem(format!(
                                "\"stages\" is a list of stages, or an object of named stages, found {}",
                                list.describe()
                            ))
                            .at(list.at),
                        );
                        (Vec::new(), Form::Numbered)
                    }
                }
            }
            None => (
                ordered_stages(numbered, origin, &mut problems),
                Form::Numbered,
            ),
        };
        build(stages, &values, origin, base_dir, problems, form)
    }

    /// A plan of one stage with the given calls.
    pub fn single_stage(tasks: Vec<TaskCall>, base_dir: PathBuf) -> Plan {
        Plan::builder(base_dir).stage(tasks).build()
    }

    /// Starts building a plan in code.
    pub fn builder(base_dir: impl Into<PathBuf>) -> PlanBuilder {
        PlanBuilder {
            plan: Plan {
                stages: Vec::new(),
                base_dir: base_dir.into(),
                origin: "<code>".into(),
                unresolved: Vec::new(),
            },
        }
    }
}

/// Builds a [`Plan`] in code:
///
/// ```
/// use rtl_dsl::{Plan, TaskCall};
/// use serde_json::json;
/// let plan = Plan::builder(".")
///     .task("open_array", json!({"filename": "sensors"}))
///     .then()
///     .task("filter", json!({"operations": [{"column": "ok", "method": "eq", "value": true}]}))
///     .build();
/// assert_eq!(plan.stages.len(), 2);
/// ```
pub struct PlanBuilder {
    plan: Plan,
}

impl PlanBuilder {
    /// Appends a task to the current (last) stage, opening one if needed.
    pub fn task(mut self, name: &str, kwargs: Value) -> PlanBuilder {
        if self.plan.stages.is_empty() {
            self.plan.stages.push(Stage::new(Vec::new()));
        }
        if let Some(stage) = self.plan.stages.last_mut() {
            stage.tasks.push(TaskCall::new(name, kwargs));
        }
        self
    }

    /// Opens the next stage.
    pub fn then(mut self) -> PlanBuilder {
        self.plan.stages.push(Stage::new(Vec::new()));
        self
    }

    /// Opens a stage named `name` that takes the stages named in
    /// `inputs` (none: a source), which must be named before it. Once
    /// one stage is named, name them all: the rest are named by number.
    pub fn named(mut self, name: &str, inputs: &[&str]) -> PlanBuilder {
        let found = |input: &&str| {
            let at = self.plan.stages.iter().position(|s| s.name == *input);
            // Not a stage: a number past the last, which checking reports.
            at.map_or(u32::MAX, |i| i as u32)
        };
        let inputs = inputs.iter().map(found).collect();
        let mut stage = Stage::new(Vec::new());
        stage.name = name.to_string();
        stage.inputs = Some(inputs);
        self.plan.stages.push(stage);
        self
    }

    /// Appends a whole stage.
    pub fn stage(mut self, tasks: Vec<TaskCall>) -> PlanBuilder {
        self.plan.stages.push(Stage::new(tasks));
        self
    }

    /// The plan built so far.
    pub fn build(self) -> Plan {
        self.plan
    }
}

/// A TOML value as the JSON a job is: a date is its text; nan and inf,
/// which JSON cannot hold (serde would make them null), are refused with
/// the key they were given at.
fn json_of_toml(value: toml::Value, at: &str) -> Result<Value, String> {
    let here = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    Ok(match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map(Value::Number).ok_or_else(|| {
            format!("`{at}` is {f}, and a job's numbers must be finite (JSON has no nan or inf); give the value another way, such as a string the task takes")
        })?,
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| json_of_toml(v, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(k, v)| {
                    let value = json_of_toml(v, &here(&k))?;
                    Ok((k, value))
                })
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// Line and column of byte `offset` in `text`.
fn position_of(text: &str, offset: usize) -> Pos {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Pos { line, column }
}

/// Stage keys must be exactly "0".."n-1"; returns the stages in that order.
fn ordered_stages<'a>(
    entries: Vec<(String, Option<Pos>, &'a Node)>,
    origin: &str,
    problems: &mut Vec<Problem>,
) -> Vec<(String, Option<Pos>, &'a Node)> {
    let mut numbered: BTreeMap<usize, (String, Option<Pos>, &'a Node)> = BTreeMap::new();
    for (key, at, node) in entries {
        let n = key
            .parse::<usize>()
            .ok()
            .filter(|_| key == "0" || !key.starts_with(['0', '+']));
        match n {
            None => problems.push(
                Problem::in_file(
                    origin,
                    format!("{key:?} is not a stage number; stages are keyed \"0\", \"1\", ... (or give \"params\" and \"stages\")"),
                )
                .at(at),
            ),
            Some(n) if numbered.contains_key(&n) => problems.push(
                Problem::in_file(origin, format!("stage \"{n}\" is written twice; each stage key appears once")).at(at),
            ),
            Some(n) => {
                numbered.insert(n, (key, at, node));
            }
        }
    }
    let count = numbered.len();
    if let Some(missing) = (0..count).find(|i| !numbered.contains_key(i)) {
        let present: Vec<String> = numbered.keys().map(|k| format!("\"{k}\"")).collect();
        let next = numbered
            .range(missing..)
            .next()
            .and_then(|(_, (_, at, _))| *at);
        problems.push(
            Problem::in_file(
                origin,
                format!(
                    "stage \"{missing}\" is missing: stage keys run \"0\", \"1\", ... without gaps, and this job has {}",
                    present.join(", ")
                ),
            )
            .at(next),
        );
    }
    numbered.into_values().collect()
}

/// How a job writes its stages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Numbered ("0", "1", ... or a list): a stage takes the one before
    /// unless it names earlier ones.
    Numbered,
    /// An object of named stages: a stage takes what it names, and one
    /// that names nothing is a source.
    Named,
}

/// The stages of a `"stages"` object, in written order, each name checked.
fn named_stages<'a>(
    entries: &'a [(String, Option<Pos>, Node)],
    origin: &str,
    problems: &mut Vec<Problem>,
) -> Vec<(String, Option<Pos>, &'a Node)> {
    let mut seen = std::collections::HashSet::new();
    let mut stages = Vec::with_capacity(entries.len());
    for (name, at, node) in entries {
        let fine = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !fine {
            problems.push(
                Problem::in_file(
                    origin,
                    format!("{name:?} cannot name a stage: stage names are ASCII letters, digits, `_` and `-`"),
                )
                .at(*at),
            );
        } else if let Some(long) = too_long(name) {
            problems.push(Problem::in_file(origin, long).at(*at));
        } else if !seen.insert(name.as_str()) {
            problems.push(
                Problem::in_file(
                    origin,
                    format!("stage `{name}` is written twice; each stage name appears once"),
                )
                .at(*at),
            );
        } else {
            stages.push((name.clone(), *at, node));
        }
    }
    stages
}

/// Characters a stage name may have at most: results are written to files
/// named after their stages.
const LONGEST_NAME: usize = 100;

/// Why `name` is too long to name a stage, if it is.
fn too_long(name: &str) -> Option<String> {
    let length = name.chars().count();
    (length > LONGEST_NAME).then(|| {
        let start: String = name.chars().take(20).collect();
        format!("the stage name `{start}...` has {length} characters; stage names have at most {LONGEST_NAME}")
    })
}

/// A stage's `inputs` as written: names and where each was.
type InputNames = Vec<(String, Option<Pos>)>;

/// The names in a stage's `inputs`: a list of names, or one name.
fn input_names(node: &Node, form: Form) -> Result<InputNames, (String, Option<Pos>)> {
    let name = |item: &Node| match &item.kind {
        Kind::String(s) => Ok((s.clone(), item.at)),
        // A numbered stage may be named by its number.
        Kind::Number(n) if form == Form::Numbered && n.is_u64() => Ok((n.to_string(), item.at)),
        _ => Err((
            format!("`inputs` names stages in quotes, found {}", item.describe()),
            item.at,
        )),
    };
    match &node.kind {
        Kind::Array(items) => items.iter().map(name).collect(),
        Kind::String(_) => Ok(vec![name(node)?]),
        _ => Err((
            format!(
                "`inputs` is a list of stage names (or one name), found {}",
                node.describe()
            ),
            node.at,
        )),
    }
}

fn build(
    stages: Vec<(String, Option<Pos>, &Node)>,
    values: &Values,
    origin: &str,
    base_dir: PathBuf,
    mut problems: Vec<Problem>,
    form: Form,
) -> Result<Plan, Problems> {
    if stages.is_empty() && problems.is_empty() {
        problems.push(Problem::in_file(origin, "the job has no stages"));
    }
    let mut built = Vec::with_capacity(stages.len());
    let mut named_inputs: Vec<Option<InputNames>> = Vec::with_capacity(stages.len());
    for (key, at, node) in &stages {
        let here =
            |message: String, at: Option<Pos>| Problem::in_file(origin, message).stage(key).at(at);
        let Kind::Object(entries) = &node.kind else {
            problems.push(here(
                format!(
                    "a stage is an object with a \"tasks\" key, found {}",
                    node.describe()
                ),
                node.at.or(*at),
            ));
            continue;
        };
        let mut tasks_node = None;
        let mut inputs = None;
        for (k, k_at, v) in entries {
            match k.as_str() {
                "tasks" => tasks_node = Some(v),
                "inputs" => match input_names(&values.fill(v, key, None, &mut problems), form) {
                    Ok(names) => inputs = Some(names),
                    Err((message, at)) => problems.push(here(message, at.or(*k_at))),
                },
                _ => problems.push(here(
                    format!("unknown stage key {k:?}; a stage has \"tasks\" and, to say which stages it takes, \"inputs\""),
                    *k_at,
                )),
            }
        }
        let Some(tasks_node) = tasks_node else {
            problems.push(here("the stage has no \"tasks\"".into(), *at));
            continue;
        };
        let calls: Vec<(&String, Option<Pos>, &Node)> = match &tasks_node.kind {
            Kind::Object(entries) => entries.iter().map(|(k, a, v)| (k, *a, v)).collect(),
            Kind::Array(items) => items
                .iter()
                .filter_map(|item| match &item.kind {
                    Kind::Object(one) if one.len() == 1 => one.first().map(|(k, a, v)| (k, *a, v)),
                    _ => {
                        problems.push(here(
                            "each entry of a \"tasks\" list is an object with exactly one task name".into(),
                            item.at,
                        ));
                        None
                    }
                })
                .collect(),
            _ => {
                problems.push(here(
                    format!("\"tasks\" is an object of task name to kwargs, found {}", tasks_node.describe()),
                    tasks_node.at,
                ));
                continue;
            }
        };
        if calls.is_empty() {
            problems.push(here("the stage has no tasks".into(), tasks_node.at));
        }
        let mut tasks = Vec::with_capacity(calls.len());
        for (name, name_at, kwargs) in calls {
            let kwargs = match &kwargs.kind {
                Kind::Object(_) => values.fill(kwargs, key, Some(name), &mut problems),
                Kind::Null => Node {
                    at: kwargs.at,
                    kind: Kind::Object(Vec::new()),
                },
                _ => {
                    problems.push(
                        here(
                            format!("kwargs must be an object, found {}", kwargs.describe()),
                            kwargs.at,
                        )
                        .task(name),
                    );
                    continue;
                }
            };
            tasks.push(TaskCall {
                name: name.clone(),
                kwargs: kwargs.to_value(),
                written: Some(Written {
                    at: name_at,
                    fields: kwargs.paths(),
                }),
            });
        }
        let mut stage = Stage::new(tasks);
        stage.at = *at;
        if form == Form::Named {
            stage.name = key.clone();
        }
        built.push(stage);
        named_inputs.push(inputs);
    }
    // Inputs that name no stage are the graph's problems: reported with
    // every problem a check finds, as long as the rest of the job reads.
    let mut unresolved = Vec::new();
    if problems.is_empty() {
        let names: Vec<&str> = stages.iter().map(|(k, _, _)| k.as_str()).collect();
        for (index, written) in named_inputs.into_iter().enumerate() {
            let inputs = match (written, form) {
                (Some(written), _) => {
                    resolve_inputs(&written, index, &names, form, origin, &mut unresolved)
                }
                // A named stage that names nothing is a source.
                (None, Form::Named) => Vec::new(),
                (None, Form::Numbered) => continue,
            };
            built[index].inputs = Some(inputs);
        }
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    Ok(Plan {
        stages: built,
        base_dir,
        origin: origin.to_string(),
        unresolved,
    })
}

/// The stage number an input that names no stage it may take is given:
/// [`Plan::graph`] reports the input as the job's text wrote it instead.
const UNRESOLVED: u32 = u32::MAX;

/// The stage numbers a stage's `inputs` name; every name that is not a
/// stage it may take is a problem.
fn resolve_inputs(
    written: &InputNames,
    index: usize,
    names: &[&str],
    form: Form,
    origin: &str,
    problems: &mut Vec<Problem>,
) -> Vec<u32> {
    let mut inputs = Vec::with_capacity(written.len());
    for (name, at) in written {
        let here = |message: String| {
            Problem::in_file(origin, message)
                .stage(names[index])
                .at(*at)
                .field(Some("inputs".into()))
        };
        match names.iter().position(|n| n == name) {
            Some(found) if form == Form::Numbered && found >= index => {
                problems.push(here(format!(
                    "stage {index} cannot take stage {found}: in a job of numbered stages a stage takes only earlier ones (write \"stages\" as an object of named stages to wire them in any order)"
                )));
                inputs.push(UNRESOLVED);
            }
            Some(found) => inputs.push(found as u32),
            None => {
                let hint = words::closest(name, names.iter().copied())
                    .map_or(String::new(), |near| format!("did you mean {near}? "));
                // A long list helps nobody: `rtl explain` has them all.
                let listed = match names.len() {
                    n if n <= 12 => names.join(", "),
                    n => format!("{}, ... ({n} in all)", names[..10].join(", ")),
                };
                problems.push(here(format!(
                    "no stage `{name}`; {hint}the job's stages are {listed}"
                )));
                inputs.push(UNRESOLVED);
            }
        }
    }
    inputs
}

/// A job's parameters: declared defaults overridden by `--set` values.
struct Values {
    origin: String,
    values: BTreeMap<String, Option<Value>>,
}

impl Values {
    fn new(
        origin: &str,
        declared: Option<&Node>,
        given: &Params,
        problems: &mut Vec<Problem>,
    ) -> Values {
        let mut values = BTreeMap::new();
        match declared.map(|d| (&d.kind, d)) {
            None => {}
            Some((Kind::Object(entries), _)) => {
                for (name, _, default) in entries {
                    let value = match default.kind {
                        Kind::Null => None,
                        _ => Some(default.to_value()),
                    };
                    values.insert(name.clone(), value);
                }
            }
            Some((_, node)) => problems.push(
                Problem::in_file(
                    origin,
                    format!(
                        "\"params\" is an object of name to default, found {}",
                        node.describe()
                    ),
                )
                .at(node.at),
            ),
        }
        for (name, raw) in given {
            if !values.contains_key(name) {
                let known: Vec<&str> = values.keys().map(String::as_str).collect();
                let known = if known.is_empty() {
                    "the job declares none".to_string()
                } else {
                    format!("the job declares {}", known.join(", "))
                };
                problems.push(Problem::in_file(
                    origin,
                    format!("--set {name}: unknown parameter; {known}"),
                ));
                continue;
            }
            // `--set n=5` gives a number, `--set on=true` a boolean; text stays text.
            let value = serde_json::from_str::<Value>(raw)
                .ok()
                .filter(|v| !v.is_object() && !v.is_array())
                .unwrap_or_else(|| Value::String(raw.clone()));
            values.insert(name.clone(), Some(value));
        }
        Values {
            origin: origin.to_string(),
            values,
        }
    }

    /// `node` with every `${name}` in its strings replaced; problems name
    /// `stage` and, when given, `task`.
    fn fill(
        &self,
        node: &Node,
        stage: &str,
        task: Option<&str>,
        problems: &mut Vec<Problem>,
    ) -> Node {
        let kind = match &node.kind {
            Kind::String(s) if s.contains("${") => match self.substitute(s) {
                Ok(kind) => kind,
                Err(message) => {
                    let mut problem = Problem::in_file(&self.origin, message).stage(stage);
                    if let Some(task) = task {
                        problem = problem.task(task);
                    }
                    problems.push(problem.at(node.at));
                    node.kind.clone()
                }
            },
            Kind::Array(items) => Kind::Array(
                items
                    .iter()
                    .map(|n| self.fill(n, stage, task, problems))
                    .collect(),
            ),
            Kind::Object(entries) => Kind::Object(
                entries
                    .iter()
                    .map(|(k, at, v)| (k.clone(), *at, self.fill(v, stage, task, problems)))
                    .collect(),
            ),
            other => other.clone(),
        };
        Node { at: node.at, kind }
    }

    fn substitute(&self, text: &str) -> Result<Kind, String> {
        let lookup = |name: &str| -> Result<&Value, String> {
            match self.values.get(name) {
                Some(Some(v)) => Ok(v),
                Some(None) => Err(format!(
                    "parameter `{name}` has no default; give it with --set {name}=VALUE"
                )),
                None if self.values.is_empty() => Err(format!(
                    "`${{{name}}}` names a parameter, but the job declares no \"params\""
                )),
                None => Err(format!(
                    "unknown parameter `{name}`; the job declares {}",
                    self.values
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        };
        // A string that is one placeholder takes the parameter's own type.
        if let Some(name) = text
            .strip_prefix("${")
            .and_then(|t| t.strip_suffix('}'))
            .filter(|n| !n.contains(['$', '{', '}']))
        {
            return Ok(Node::from_value(lookup(name)?).kind);
        }
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("`${{` in {text:?} is never closed with `}}`"))?;
            match lookup(&after[..end])? {
                Value::String(s) => out.push_str(s),
                other => out.push_str(&other.to_string()),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(Kind::String(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Plan, Problems> {
        Plan::parse(text, "job.json", PathBuf::from("/jobs"))
    }

    /// The problems of reading a job, or else of its graph.
    fn messages(result: Result<Plan, Problems>) -> Vec<String> {
        let problems = match result {
            Err(problems) => problems,
            Ok(plan) => plan.graph().expect_err("problems"),
        };
        problems.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn stages_run_in_numeric_order_and_tasks_in_written_order() {
        let plan =
            parse(r#"{"1": {"tasks": {"b": {}, "a": {"x": 1}}}, "0": {"tasks": {"null": {}}}}"#)
                .expect("parse");
        assert_eq!(plan.stages.len(), 2);
        assert_eq!(plan.stages[0].tasks[0].name, "null");
        let names: Vec<_> = plan.stages[1]
            .tasks
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(plan.base_dir, PathBuf::from("/jobs"));
    }

    #[test]
    fn list_forms_allow_repeated_tasks() {
        let plan = parse(r#"[{"tasks": [{"add": {}}, {"add": {}}]}]"#).expect("parse");
        assert_eq!(plan.stages[0].tasks.len(), 2);
        let plan = parse(r#"{"stages": [{"tasks": {"null": {}}}]}"#).expect("stages key");
        assert_eq!(plan.stages.len(), 1);
    }

    #[test]
    fn gaps_duplicates_and_bad_keys_are_all_reported() {
        let found = messages(parse("{\"0\": {\"tasks\": {\"null\": {}}},\n \"0\": {\"tasks\": {}},\n \"first\": {}, \"3\": {\"tasks\": {\"null\": {}}}}"));
        assert_eq!(
            found,
            [
                "job.json:2:2: stage \"0\" is written twice; each stage key appears once",
                "job.json:3:2: \"first\" is not a stage number; stages are keyed \"0\", \"1\", ... (or give \"params\" and \"stages\")",
                "job.json:3:15: stage \"1\" is missing: stage keys run \"0\", \"1\", ... without gaps, and this job has \"0\", \"3\"",
            ]
        );
    }

    #[test]
    fn json_errors_carry_line_and_column() {
        let found = messages(parse("{\n  \"0\": {\"tasks\": }\n}"));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("job.json:2:18: not valid JSON: expected a value"),
            "{found:?}"
        );
    }

    #[test]
    fn kwargs_must_be_objects_and_fields_have_positions() {
        let found = messages(parse(r#"{"0": {"tasks": {"add": [1]}}}"#));
        assert_eq!(
            found,
            ["job.json:1:25: stage 0, task add: kwargs must be an object, found a list"]
        );
        let plan = parse(
            "{\"0\": {\"tasks\": {\"add\": {\"operations\": [\n  {\"a\": \"x\", \"b\": 1}]}}}}",
        )
        .expect("parse");
        let call = &plan.stages[0].tasks[0];
        assert_eq!(
            call.position(Some("operations[0].b")),
            Some(Pos {
                line: 2,
                column: 14
            })
        );
        assert_eq!(
            call.position(Some("operations[0].zz")),
            Some(Pos { line: 2, column: 3 }),
            "nearest enclosing field"
        );
        assert_eq!(
            call.position(None),
            Some(Pos {
                line: 1,
                column: 18
            })
        );
    }

    #[test]
    fn parameters_fill_strings_and_keep_types() {
        let text = r#"{"params": {"day": "mon", "n": 3, "who": null},
            "0": {"tasks": {"head": {"n": "${n}", "label": "log_${day}_${n}"}}}}"#;
        let plan = Plan::parse_with(
            text,
            Syntax::Json,
            "p.json",
            PathBuf::new(),
            &[("who".into(), "ada".into())],
        )
        .expect("parse");
        assert_eq!(
            plan.stages[0].tasks[0].kwargs,
            json!({"n": 3, "label": "log_mon_3"})
        );
        let plan = Plan::parse_with(
            text,
            Syntax::Json,
            "p.json",
            PathBuf::new(),
            &[("n".into(), "7".into()), ("who".into(), "x".into())],
        )
        .expect("parse");
        assert_eq!(plan.stages[0].tasks[0].kwargs["n"], json!(7));
    }

    #[test]
    fn parameter_mistakes_are_named() {
        let unset = r#"{"params": {"day": null}, "0": {"tasks": {"null": {"x": "${day}"}}}}"#;
        assert_eq!(
            messages(Plan::parse_with(unset, Syntax::Json, "p.json", PathBuf::new(), &[])),
            ["p.json:1:57: stage 0, task null: parameter `day` has no default; give it with --set day=VALUE"]
        );
        let unknown = r#"{"params": {"day": "mon"}, "0": {"tasks": {"null": {"x": "${dya}"}}}}"#;
        assert_eq!(
            messages(Plan::parse_with(
                unknown,
                Syntax::Json,
                "p.json",
                PathBuf::new(),
                &[("hour".into(), "1".into())]
            )),
            [
                "p.json: --set hour: unknown parameter; the job declares day",
                "p.json:1:58: stage 0, task null: unknown parameter `dya`; the job declares day"
            ]
        );
    }

    #[test]
    fn toml_nan_and_inf_are_refused_not_made_null() {
        let text =
            "[0.tasks.filter]\noperations = [{column = \"x\", method = \"gt\", value = nan}]\n";
        let found =
            Plan::parse_with(text, Syntax::Toml, "bad.toml", PathBuf::new(), &[]).expect_err("nan");
        assert_eq!(
            found.to_string(),
            "bad.toml: `0.tasks.filter.operations[0].value` is NaN, and a job's numbers must be finite (JSON has no nan or inf); give the value another way, such as a string the task takes"
        );
    }

    #[test]
    fn toml_jobs() {
        let text = "[params]\nsite = \"north\"\n\n[0.tasks.open_array]\nfilename = \"${site}\"\n\n[1.tasks.null]\n";
        let plan =
            Plan::parse_with(text, Syntax::Toml, "job.toml", PathBuf::new(), &[]).expect("toml");
        assert_eq!(plan.stages.len(), 2);
        assert_eq!(plan.stages[0].tasks[0].kwargs, json!({"filename": "north"}));
        let found = messages(Plan::parse_with(
            "[0.tasks\n",
            Syntax::Toml,
            "bad.toml",
            PathBuf::new(),
            &[],
        ));
        assert!(found[0].starts_with("bad.toml:1:"), "{found:?}");
    }

    const DIAMOND: &str = r#"{"stages": {
  "load": {"tasks": {"open_array": {"filename": "r"}}},
  "hot": {"inputs": ["load"], "tasks": {"null": {}}},
  "means": {"inputs": "load", "tasks": {"null": {}}},
  "report": {"inputs": ["hot", "means"], "tasks": [{"join": {"on": "s"}}]}
}}"#;

    #[test]
    fn named_stages_make_a_graph() {
        let plan = parse(DIAMOND).expect("parse");
        let names: Vec<String> = (0..4).map(|i| plan.stage_name(i)).collect();
        assert_eq!(names, ["load", "hot", "means", "report"]);
        assert_eq!(plan.stages[0].inputs, Some(vec![]), "a source");
        assert_eq!(plan.stages[3].inputs, Some(vec![1, 2]));
        let graph = plan.graph().expect("graph");
        assert_eq!(graph.consumers(0), [1, 2]);
        assert_eq!(graph.results(), [3]);
        assert_eq!(graph.waves(), [vec![0], vec![1, 2], vec![3]]);
    }

    #[test]
    fn a_chain_is_unchanged_and_may_name_earlier_stages() {
        let chain = parse(r#"[{"tasks": {"null": {}}}, {"tasks": {"null": {}}}]"#).expect("chain");
        assert!(chain
            .stages
            .iter()
            .all(|s| s.inputs.is_none() && s.name.is_empty()));
        assert_eq!(chain.graph().expect("graph").results(), [1]);
        let forked = parse(
            r#"{"0": {"tasks": {"null": {}}}, "1": {"tasks": {"null": {}}}, "2": {"inputs": ["0"], "tasks": {"null": {}}}}"#,
        )
        .expect("fork");
        assert_eq!(forked.inputs_of(1), [0]);
        assert_eq!(forked.inputs_of(2), [0]);
        assert_eq!(forked.graph().expect("graph").results(), [1, 2]);
        let later = messages(parse(
            r#"{"0": {"inputs": "1", "tasks": {"null": {}}}, "1": {"tasks": {"null": {}}}}"#,
        ));
        assert_eq!(
            later,
            ["job.json:1:18: stage 0, field inputs: stage 0 cannot take stage 1: in a job of numbered stages a stage takes only earlier ones (write \"stages\" as an object of named stages to wire them in any order)"]
        );
    }

    #[test]
    fn graph_mistakes_are_named_with_their_place() {
        let unknown = messages(parse(
            &DIAMOND.replace("[\"hot\", \"means\"]", "[\"hot\", \"mean\"]"),
        ));
        assert_eq!(
            unknown,
            ["job.json:5:32: stage report, field inputs: no stage `mean`; did you mean means? the job's stages are load, hot, means, report"]
        );
        let cycle = messages(parse(
            r#"{"stages": {"a": {"inputs": "c", "tasks": {"null": {}}}, "b": {"inputs": "a", "tasks": {"null": {}}}, "c": {"inputs": "b", "tasks": {"null": {}}}}}"#,
        ));
        assert_eq!(
            cycle,
            ["job.json:1:13: stage a: the stages' inputs go round in a cycle: a -> b -> c -> a; a stage can only take stages that do not depend on it"]
        );
        let shapes = messages(parse(
            r#"{"stages": {"a b": {"tasks": {"null": {}}}, "c": {"inputs": 3, "tasks": {"null": {}}}, "d": {"input": "c", "tasks": {"null": {}}}}}"#,
        ));
        assert_eq!(
            shapes,
            [
                "job.json:1:13: \"a b\" cannot name a stage: stage names are ASCII letters, digits, `_` and `-`",
                "job.json:1:61: stage c: `inputs` is a list of stage names (or one name), found a number",
                "job.json:1:94: stage d: unknown stage key \"input\"; a stage has \"tasks\" and, to say which stages it takes, \"inputs\"",
            ]
        );
        let long = format!(
            r#"{{"stages": {{"{}": {{"tasks": {{"null": {{}}}}}}}}}}"#,
            "x".repeat(101)
        );
        assert_eq!(
            messages(parse(&long)),
            ["job.json:1:13: the stage name `xxxxxxxxxxxxxxxxxxxx...` has 101 characters; stage names have at most 100"]
        );
        let twice = messages(parse(
            r#"{"stages": {"a": {"tasks": {"null": {}}}, "b": {"inputs": ["a", "a"], "tasks": {"null": {}}}}}"#,
        ));
        assert_eq!(
            twice,
            ["job.json:1:43: stage b: `inputs` names `a` twice; a stage takes each input once"]
        );
    }

    #[test]
    fn a_built_graph_names_its_stages() {
        let plan = Plan::builder("/jobs")
            .named("a", &[])
            .task("null", json!({}))
            .named("b", &["a"])
            .task("null", json!({}))
            .named("c", &["a", "nope"])
            .task("null", json!({}))
            .build();
        assert_eq!(plan.stages[1].inputs, Some(vec![0]));
        let found = plan.graph().expect_err("nope").to_string();
        assert!(
            found.contains("stage c: `inputs` names a stage the job does not have"),
            "{found}"
        );
    }

    #[test]
    fn builder_makes_the_same_plan_as_text() {
        let built = Plan::builder("/jobs")
            .task("null", json!({}))
            .then()
            .task("add", json!({"operations": []}))
            .build();
        let parsed =
            parse(r#"{"0": {"tasks": {"null": {}}}, "1": {"tasks": {"add": {"operations": []}}}}"#)
                .expect("parse");
        let strip = |p: &Plan| {
            p.stages
                .iter()
                .flat_map(|s| s.tasks.iter().map(|t| (t.name.clone(), t.kwargs.clone())))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&built), strip(&parsed));
    }
}
