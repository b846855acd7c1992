//! DSDSL, the rtl job language, parsed into a typed [`Plan`].
//!
//! A job is a JSON object of ordered stages; each stage is an ordered list of
//! task calls with keyword arguments:
//!
//! ```json
//! {"0": {"tasks": {"open_array": {"filename": "data", "path": "."}}},
//!  "1": {"tasks": {"null": {}}}}
//! ```
//!
//! This crate owns the syntax: stage order, task order, where a job came from
//! (so relative paths resolve against the job file's directory). It does not
//! know which tasks exist or what their kwargs mean; the task library checks
//! those when it runs a call.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::path::{Path, PathBuf};

/// A parsed job: the stages to run in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub stages: Vec<Stage>,
    /// Directory that relative paths inside the job resolve against: the job
    /// file's directory, or the working directory for jobs given as text.
    pub base_dir: PathBuf,
}

/// One stage: its tasks run in order on the stage's input table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub tasks: Vec<TaskCall>,
}

/// One task call: the task's name as written and its keyword arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskCall {
    pub name: String,
    /// Keyword arguments as a JSON object; the task decodes them.
    pub kwargs: Value,
}

/// A problem with a job's text, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DslError {
    /// The file (or `<string>`) the job came from.
    pub origin: String,
    /// Stage key, when the problem is inside a stage.
    pub stage: Option<String>,
    /// Task name, when the problem is inside a task call.
    pub task: Option<String>,
    /// Line and column, when the parser knows them.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for DslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some((l, c)) = self.position {
            write!(f, ":{l}:{c}")?;
        }
        if let Some(s) = &self.stage {
            write!(f, ": stage {s}")?;
        }
        if let Some(t) = &self.task {
            write!(f, ", task {t}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for DslError {}

impl Plan {
    /// Reads and parses a job file; relative paths in it resolve against the
    /// file's directory.
    pub fn from_file(path: &Path) -> Result<Plan, DslError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| DslError {
            message: format!("cannot read job file: {e}"),
            ..DslError::at(&origin)
        })?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let base_dir = match dir {
            Some(d) => d.canonicalize().unwrap_or_else(|_| d.to_path_buf()),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        };
        Plan::parse(&text, &origin, base_dir)
    }

    /// Parses a job from JSON text. `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, base_dir: PathBuf) -> Result<Plan, DslError> {
        let value: Value = serde_json::from_str(text).map_err(|e| DslError {
            position: Some((e.line(), e.column())),
            message: format!("not valid JSON: {e}"),
            ..DslError::at(origin)
        })?;
        Plan::from_value(&value, origin, base_dir)
    }

    /// Builds a plan from an already parsed JSON value.
    pub fn from_value(value: &Value, origin: &str, base_dir: PathBuf) -> Result<Plan, DslError> {
        let err = |stage: Option<&str>, message: String| DslError {
            stage: stage.map(str::to_string),
            message,
            ..DslError::at(origin)
        };
        let stage_values: Vec<(String, &Value)> = match value {
            Value::Object(map) => ordered_stages(map).map_err(|m| err(None, m))?,
            Value::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            other => {
                return Err(err(
                    None,
                    format!(
                        "a job is an object of stages (\"0\", \"1\", ...) or a list of stages, found {}",
                        kind(other)
                    ),
                ))
            }
        };
        if stage_values.is_empty() {
            return Err(err(None, "the job has no stages".into()));
        }
        let stages = stage_values
            .into_iter()
            .map(|(key, v)| {
                parse_stage(v).map_err(|(task, m)| DslError {
                    task,
                    ..err(Some(&key), m)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Plan { stages, base_dir })
    }

    /// A plan of one stage with the given calls; handy for code that builds jobs.
    pub fn single_stage(tasks: Vec<TaskCall>, base_dir: PathBuf) -> Plan {
        Plan {
            stages: vec![Stage { tasks }],
            base_dir,
        }
    }
}

impl DslError {
    fn at(origin: &str) -> DslError {
        DslError {
            origin: origin.to_string(),
            stage: None,
            task: None,
            position: None,
            message: String::new(),
        }
    }
}

/// Stage keys must be exactly "0".."n-1"; returns the stages in that order.
fn ordered_stages(map: &Map<String, Value>) -> Result<Vec<(String, &Value)>, String> {
    let mut numbered: Vec<(usize, &String, &Value)> = Vec::with_capacity(map.len());
    for (key, v) in map {
        let n: usize = key
            .parse()
            .ok()
            .filter(|_| !key.starts_with('+') && (key == "0" || !key.starts_with('0')))
            .ok_or_else(|| {
                format!(
                    "stage key {key:?} is not a stage number; stages are keyed \"0\", \"1\", ..."
                )
            })?;
        numbered.push((n, key, v));
    }
    numbered.sort_by_key(|(n, _, _)| *n);
    for (expected, (n, _, _)) in numbered.iter().enumerate() {
        if *n != expected {
            return Err(format!(
                "stage \"{expected}\" is missing: stage keys must run \"0\" to \"{}\" without gaps",
                numbered.len() - 1
            ));
        }
    }
    Ok(numbered
        .into_iter()
        .map(|(_, k, v)| (k.clone(), v))
        .collect())
}

fn parse_stage(v: &Value) -> Result<Stage, (Option<String>, String)> {
    let Some(obj) = v.as_object() else {
        return Err((
            None,
            format!(
                "a stage is an object with a \"tasks\" key, found {}",
                kind(v)
            ),
        ));
    };
    if let Some(extra) = obj.keys().find(|k| *k != "tasks") {
        return Err((
            None,
            format!("unknown stage key {extra:?}; a stage has only \"tasks\""),
        ));
    }
    let tasks = match obj.get("tasks") {
        None => return Err((None, "the stage has no \"tasks\"".into())),
        Some(Value::Object(tasks)) => tasks
            .iter()
            .map(|(name, kwargs)| call(name, kwargs))
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Array(list)) => list
            .iter()
            .map(|item| match item.as_object() {
                Some(one) if one.len() == 1 => {
                    let (name, kwargs) = one.iter().next().expect("len checked");
                    call(name, kwargs)
                }
                _ => Err((
                    None,
                    "each entry of a \"tasks\" list is an object with exactly one task name".into(),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err((
                None,
                format!(
                    "\"tasks\" is an object of task name to kwargs, found {}",
                    kind(other)
                ),
            ))
        }
    };
    if tasks.is_empty() {
        return Err((None, "the stage has no tasks".into()));
    }
    Ok(Stage { tasks })
}

fn call(name: &str, kwargs: &Value) -> Result<TaskCall, (Option<String>, String)> {
    let kwargs = match kwargs {
        Value::Object(_) => kwargs.clone(),
        Value::Null => Value::Object(Map::new()),
        other => {
            return Err((
                Some(name.to_string()),
                format!("kwargs must be an object, found {}", kind(other)),
            ))
        }
    };
    Ok(TaskCall {
        name: name.to_string(),
        kwargs,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Plan, DslError> {
        Plan::parse(text, "job.json", PathBuf::from("/jobs"))
    }

    #[test]
    fn stages_run_in_numeric_order_and_tasks_in_written_order() {
        let plan = parse(
            r#"{"1": {"tasks": {"b": {}, "a": {"x": 1}}}, "0": {"tasks": {"null": {}}},
                "2": {"tasks": {}}, "3": {"tasks": {"z": {}}}, "4": {"tasks": {"z": {}}},
                "5": {"tasks": {"z": {}}}, "6": {"tasks": {"z": {}}}, "7": {"tasks": {"z": {}}},
                "8": {"tasks": {"z": {}}}, "9": {"tasks": {"z": {}}}, "10": {"tasks": {"last": {}}}}"#,
        );
        let err = plan.expect_err("empty stage 2");
        assert_eq!(err.stage.as_deref(), Some("2"));
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
    }

    #[test]
    fn gaps_and_bad_keys_are_named() {
        let err = parse(r#"{"0": {"tasks": {"null": {}}}, "2": {"tasks": {"null": {}}}}"#)
            .expect_err("gap");
        assert!(err.message.contains("stage \"1\" is missing"), "{err}");
        let err = parse(r#"{"first": {"tasks": {"null": {}}}}"#).expect_err("bad key");
        assert!(err.message.contains("\"first\""), "{err}");
        let err = parse(r#"{"00": {"tasks": {"null": {}}}}"#).expect_err("leading zero");
        assert!(err.message.contains("\"00\""), "{err}");
    }

    #[test]
    fn json_errors_carry_line_and_column() {
        let err = parse("{\n  \"0\": {\"tasks\": }\n}").expect_err("syntax");
        assert_eq!(err.position.map(|(line, _)| line), Some(2));
        assert!(err.to_string().starts_with("job.json:2:"), "{err}");
    }

    #[test]
    fn kwargs_must_be_objects() {
        let err = parse(r#"{"0": {"tasks": {"add": [1]}}}"#).expect_err("kwargs");
        assert_eq!(err.task.as_deref(), Some("add"));
        assert_eq!(err.stage.as_deref(), Some("0"));
        assert!(err.to_string().contains("stage 0, task add"), "{err}");
    }
}
