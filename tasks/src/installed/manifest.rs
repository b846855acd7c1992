//! A task's manifest, `NAME.toml`: what jobs call it, what it takes, and
//! the program that runs it. Read when a node starts (a bad one is named
//! with its line and the task left out), sent to the relay as text so the
//! relay checks kwargs with the very same rules, and digested so the relay
//! can tell two installs of one name apart.

use crate::Table;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// An installed task, as its manifest describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The name jobs use.
    pub name: String,
    /// What it does, for `rtl tasks --doc`.
    pub doc: String,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The manifest's folder: relative paths in `command` start here, and
    /// the program runs here.
    pub folder: PathBuf,
    /// Rows are independent: chunks may run anywhere, in parallel.
    pub row_local: bool,
    /// The most rows one call gets (row-local tasks): a larger table goes
    /// in chunks of this size, spread over the nodes that have the task.
    pub chunk_rows: Option<u64>,
    /// How long one call may take, when the manifest says.
    pub timeout_ms: Option<u64>,
    /// The program's address-space limit in MiB, when the manifest says.
    pub memory_mb: Option<u64>,
    /// The kwargs, in the manifest's order.
    pub kwargs: IndexMap<String, Kwarg>,
    /// The manifest's text, as nodes send it to the relay.
    pub text: String,
    /// Where the manifest was read from, for messages.
    pub origin: String,
    /// SHA-256 of the manifest and the program's files, in hex; empty for
    /// a manifest read here until [`Manifest::digest_files`].
    pub digest: String,
    /// Read from this machine's task folders, program and all, so it can
    /// run here (not only known from what nodes report).
    pub runs_here: bool,
}

/// One kwarg of an installed task.
#[derive(Debug, Clone, PartialEq)]
pub struct Kwarg {
    /// What values it takes.
    pub kind: Kind,
    /// Its value when a job leaves it out; required when absent.
    pub default: Option<Value>,
    /// What it means.
    pub doc: String,
}

/// The types a manifest's kwargs may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The name of a column of the input table.
    Column,
    /// A list of names of columns of the input table.
    Columns,
    /// A whole number.
    Int,
    /// A number.
    Float,
    /// true or false.
    Bool,
    /// Text.
    String,
    /// A list of anything.
    List,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Column => "column",
            Kind::Columns => "columns",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Bool => "bool",
            Kind::String => "string",
            Kind::List => "list",
        })
    }
}

impl Kind {
    /// What a value of this kind is, in a user's words.
    fn expected(self) -> &'static str {
        match self {
            Kind::Column => "a column name",
            Kind::Columns => "a list of column names",
            Kind::Int => "a whole number",
            Kind::Float => "a number",
            Kind::Bool => "true or false",
            Kind::String => "a text",
            Kind::List => "a list",
        }
    }

    fn admits(self, value: &Value) -> bool {
        match self {
            Kind::Column | Kind::String => value.is_string(),
            Kind::Columns => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            Kind::Int => value.is_i64(),
            Kind::Float => value.is_number(),
            Kind::Bool => value.is_boolean(),
            Kind::List => value.is_array(),
        }
    }
}

/// The manifest as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    name: toml::Spanned<String>,
    #[serde(default)]
    doc: String,
    command: toml::Spanned<Vec<String>>,
    #[serde(default)]
    row_local: bool,
    chunk_rows: Option<toml::Spanned<u64>>,
    timeout_ms: Option<toml::Spanned<u64>>,
    memory_mb: Option<u64>,
    #[serde(default)]
    kwargs: IndexMap<String, toml::Spanned<WrittenKwarg>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenKwarg {
    #[serde(rename = "type")]
    kind: Kind,
    default: Option<toml::Value>,
    #[serde(default)]
    doc: String,
}

/// The largest manifest, in bytes.
const MANIFEST_BYTES: u64 = 64 << 10;

/// Where a manifest writes the keys a later check may complain about.
struct Spans {
    name: usize,
    command: usize,
}

/// A manifest that could not be used: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// `file:line:column`, or the file alone.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// `line:column` (from 1) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Names a job may call a task by: letters, digits and `_`, as the
/// built-ins' names are.
fn good_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

impl Manifest {
    /// Reads the manifest `file`: its program must be there to run.
    pub fn read(file: &Path) -> Result<Manifest, ManifestError> {
        let origin = file.display().to_string();
        let cannot = |message: String| ManifestError {
            at: origin.clone(),
            message,
        };
        // Nodes send their manifests in every heartbeat.
        let size = std::fs::metadata(file)
            .map_err(|e| cannot(format!("cannot read it: {e}")))?
            .len();
        if size > MANIFEST_BYTES {
            return Err(cannot(format!(
                "it is {size} bytes; a manifest is at most {MANIFEST_BYTES} (put long documentation beside it)"
            )));
        }
        let text =
            std::fs::read_to_string(file).map_err(|e| cannot(format!("cannot read it: {e}")))?;
        let folder = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let (mut manifest, spans) = Manifest::parse_spans(&text, &origin, folder)?;
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let fail = |offset: usize, message: String| {
            let (line, column) = line_col(&text, offset);
            ManifestError {
                at: format!("{origin}:{line}:{column}"),
                message,
            }
        };
        if manifest.name != stem {
            return Err(fail(
                spans.name,
                format!(
                    "the task is named `{}` in a file named {stem}.toml; a manifest is NAME.toml, named as its task",
                    manifest.name
                ),
            ));
        }
        manifest.program().map_err(|e| fail(spans.command, e))?;
        manifest.runs_here = true;
        Ok(manifest)
    }

    /// Works out [`Manifest::digest`] of a manifest read from its file:
    /// what a node does, since the relay matches work to nodes by it (a
    /// client or `rtl tasks` need not read the program's files).
    pub fn digest_files(&mut self) -> Result<(), ManifestError> {
        let program = self.program().map_err(|message| ManifestError {
            at: self.origin.clone(),
            message,
        })?;
        // The digest covers what the program runs: the manifest and each
        // file of the folder the command names (its script, its binary).
        let mut hash = Sha256::new();
        hash.update(self.text.as_bytes());
        for part in
            std::iter::once(program).chain(self.command[1..].iter().map(|a| self.folder.join(a)))
        {
            if part.starts_with(&self.folder) && part.is_file() {
                let bytes = std::fs::read(&part).map_err(|e| ManifestError {
                    at: self.origin.clone(),
                    message: format!("cannot read {}: {e}", part.display()),
                })?;
                hash.update((bytes.len() as u64).to_le_bytes());
                hash.update(&bytes);
            }
        }
        self.digest = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(())
    }

    /// Parses a manifest's text (as a node sent it, say) without looking
    /// for its program; `folder` is where its relative paths start.
    pub fn parse(text: &str, origin: &str, folder: PathBuf) -> Result<Manifest, ManifestError> {
        Manifest::parse_spans(text, origin, folder).map(|(manifest, _)| manifest)
    }

    /// [`Manifest::parse`], and where its name and command are written.
    fn parse_spans(
        text: &str,
        origin: &str,
        folder: PathBuf,
    ) -> Result<(Manifest, Spans), ManifestError> {
        let fail = |offset: usize, message: String| {
            let (line, column) = line_col(text, offset);
            ManifestError {
                at: format!("{origin}:{line}:{column}"),
                message,
            }
        };
        let written: Written = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            fail(offset, rtl_dsl::words::plain(e.message()))
        })?;
        let name = written.name.get_ref().clone();
        if !good_name(&name) {
            return Err(fail(
                written.name.span().start,
                format!("the name {name:?} is not a task name: use letters, digits and `_` (at most 64, not starting with a digit)"),
            ));
        }
        if let Some(builtin) = crate::lookup(&name) {
            return Err(fail(
                written.name.span().start,
                format!(
                    "`{name}` is rtl's own task {}; give yours another name",
                    builtin.name
                ),
            ));
        }
        if written.command.get_ref().is_empty() || written.command.get_ref()[0].is_empty() {
            return Err(fail(
                written.command.span().start,
                "the command is empty: it is the program and its arguments, as [\"python3\", \"task.py\"]".into(),
            ));
        }
        if let Some(rows) = &written.chunk_rows {
            let why = match (*rows.get_ref(), written.row_local) {
                (0, _) => "chunk_rows is 0: give the most rows one call may get",
                (_, false) => "chunk_rows needs row_local = true: only a task whose rows are independent can run on pieces of a table",
                _ => "",
            };
            if !why.is_empty() {
                return Err(fail(rows.span().start, why.into()));
            }
        }
        if let Some(timeout) = &written.timeout_ms {
            if *timeout.get_ref() == 0 {
                return Err(fail(
                    timeout.span().start,
                    "timeout_ms is 0: give the milliseconds one call may take".into(),
                ));
            }
        }
        let mut kwargs = IndexMap::new();
        for (key, spanned) in written.kwargs {
            let at = spanned.span().start;
            if !good_name(&key) {
                return Err(fail(
                    at,
                    format!("the kwarg name {key:?} is not a name: use letters, digits and `_`"),
                ));
            }
            if key == "table" {
                // rtl_task calls fn(table, **kwargs).
                return Err(fail(
                    at,
                    "a kwarg cannot be named `table`: a task's function gets the table under that name; call it something else".into(),
                ));
            }
            let kwarg = spanned.into_inner();
            let default = match kwarg.default {
                None => None,
                Some(value) => {
                    let json = serde_json::to_value(&value)
                        .ok()
                        .filter(|v| kwarg.kind.admits(v))
                        .ok_or_else(|| {
                            fail(
                                at,
                                format!(
                                    "kwargs.{key}: the default {value} is not {} (type = \"{}\")",
                                    kwarg.kind.expected(),
                                    kwarg.kind
                                ),
                            )
                        })?;
                    Some(json)
                }
            };
            kwargs.insert(
                key,
                Kwarg {
                    kind: kwarg.kind,
                    default,
                    doc: kwarg.doc,
                },
            );
        }
        let spans = Spans {
            name: written.name.span().start,
            command: written.command.span().start,
        };
        let manifest = Manifest {
            name,
            doc: written.doc,
            command: written.command.into_inner(),
            folder,
            row_local: written.row_local,
            chunk_rows: written.chunk_rows.map(toml::Spanned::into_inner),
            timeout_ms: written.timeout_ms.map(toml::Spanned::into_inner),
            memory_mb: written.memory_mb,
            kwargs,
            text: text.to_string(),
            origin: origin.to_string(),
            digest: String::new(),
            runs_here: false,
        };
        Ok((manifest, spans))
    }

    /// The program to start: a path (relative ones from the manifest's
    /// folder) or a name looked up on PATH. The error says why it cannot
    /// run.
    pub fn program(&self) -> Result<PathBuf, String> {
        let first = &self.command[0];
        if first.contains('/') {
            let path = self.folder.join(first);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(format!(
                    "the command's program {} does not exist",
                    path.display()
                ))
            };
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join(first))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("the command's program `{first}` is not on PATH"))
    }

    /// The command as one line, for messages.
    pub fn command_line(&self) -> String {
        self.command.join(" ")
    }

    /// The kwargs a call gives, checked against the manifest, with the
    /// defaults of those it leaves out: what the program gets. Errors
    /// name the field as the built-ins' do (`bad kwargs at `window`: ...`).
    pub fn kwargs_of(&self, given: &Value) -> Result<Value, String> {
        let (kwargs, mut problems) = self.read_kwargs(given);
        match problems.is_empty() {
            true => Ok(kwargs),
            false => Err(problems.swap_remove(0)),
        }
    }

    /// Every problem with the kwargs a call gives, one message each (a
    /// check reports them all at once).
    pub fn kwarg_problems(&self, given: &Value) -> Vec<String> {
        self.read_kwargs(given).1
    }

    /// The kwargs with defaults filled in, and what is wrong with them.
    fn read_kwargs(&self, given: &Value) -> (Value, Vec<String>) {
        let Some(given) = given.as_object() else {
            let found = rtl_dsl::Node::from_value(given).describe();
            let problem =
                format!("bad kwargs: expected an object of names to values, found {found}");
            return (Value::Null, vec![problem]);
        };
        let known = || {
            let names: Vec<String> = self.kwargs.keys().map(|k| format!("`{k}`")).collect();
            match names.len() {
                0 => format!("{} takes no kwargs", self.name),
                _ => format!("{} takes {}", self.name, names.join(", ")),
            }
        };
        let mut problems = Vec::new();
        for key in given.keys() {
            if !self.kwargs.contains_key(key) {
                let hint = crate::closest(key, self.kwargs.keys().map(String::as_str))
                    .map_or(String::new(), |c| format!("; did you mean {c}?"));
                problems.push(format!(
                    "bad kwargs at `{key}`: unknown field `{key}`{hint} ({})",
                    known()
                ));
            }
        }
        let mut out = serde_json::Map::new();
        for (key, kwarg) in &self.kwargs {
            let value = match (given.get(key), &kwarg.default) {
                (Some(value), _) => value,
                (None, Some(default)) => default,
                (None, None) => {
                    let what = if kwarg.doc.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", kwarg.doc)
                    };
                    problems.push(format!(
                        "bad kwargs: missing field `{key}`{what}, {}",
                        kwarg.kind.expected()
                    ));
                    continue;
                }
            };
            if !kwarg.kind.admits(value) {
                let found = match value {
                    Value::String(s) => format!("the text {s:?}"),
                    Value::Number(n) => format!("the number {n}"),
                    other => rtl_dsl::Node::from_value(other).describe().to_string(),
                };
                problems.push(format!(
                    "bad kwargs at `{key}`: expected {}, found {found}",
                    kwarg.kind.expected()
                ));
            }
            out.insert(key.clone(), value.clone());
        }
        (Value::Object(out), problems)
    }

    /// The columns the kwargs name that `table` lacks, as the built-ins
    /// report them (`field `column`: no column `x`; ...`).
    pub fn columns_in(&self, kwargs: &Value, table: &Table) -> Result<(), String> {
        for (key, kwarg) in &self.kwargs {
            let names: Vec<&str> = match (kwarg.kind, kwargs.get(key)) {
                (Kind::Column, Some(Value::String(name))) => vec![name.as_str()],
                (Kind::Columns, Some(Value::Array(items))) => {
                    items.iter().filter_map(Value::as_str).collect()
                }
                _ => continue,
            };
            for name in names {
                table
                    .require(name)
                    .map_err(|e| format!("field `{key}`: {e}"))?;
            }
        }
        Ok(())
    }

    /// Kwargs for an example call: every required kwarg, with a value of
    /// its type (a column is `x`).
    pub fn example_kwargs(&self) -> Value {
        let required = self.kwargs.iter().filter(|(_, k)| k.default.is_none());
        let example = required.map(|(key, kwarg)| {
            let value = match kwarg.kind {
                Kind::Column => Value::from("x"),
                Kind::Columns => serde_json::json!(["x"]),
                Kind::Int => Value::from(1),
                Kind::Float => Value::from(1.5),
                Kind::Bool => Value::from(true),
                Kind::String => Value::from("text"),
                Kind::List => serde_json::json!([]),
            };
            (key.clone(), value)
        });
        Value::Object(example.collect())
    }

    /// The manifest's kwargs, one per line, as `rtl tasks --doc` shows a
    /// built-in's.
    pub fn kwargs_doc(&self) -> String {
        self.kwargs
            .iter()
            .map(|(key, kwarg)| {
                let default = kwarg
                    .default
                    .as_ref()
                    .map_or(String::new(), |d| format!(" = {d}"));
                format!("{key}: {}{default}  {}", kwarg.kind, kwarg.doc)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GOOD: &str = r#"name = "rolling_mean"
doc = "mean over the last rows"
command = ["python3", "rolling_mean.py"]
timeout_ms = 2000
[kwargs.column]
type = "column"
doc = "the number column to smooth"
[kwargs.window]
type = "int"
default = 5
doc = "rows in the window"
"#;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(text, "t/rolling_mean.toml", PathBuf::from("t")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_manifest_reads_with_its_kwargs_in_order() {
        let m = parse(GOOD).expect("good");
        assert_eq!(m.name, "rolling_mean");
        assert_eq!(m.timeout_ms, Some(2000));
        assert!(!m.row_local);
        let keys: Vec<&str> = m.kwargs.keys().map(String::as_str).collect();
        assert_eq!(keys, ["column", "window"]);
        assert_eq!(m.kwargs["window"].default, Some(json!(5)));
    }

    #[test]
    fn mistakes_name_their_line() {
        let typo = GOOD.replace("timeout_ms", "timeout");
        let err = parse(&typo).expect_err("unknown key");
        assert!(
            err.starts_with("t/rolling_mean.toml:4:1: unknown field `timeout`"),
            "{err}"
        );
        let bad_type = GOOD.replace("type = \"int\"", "type = \"integer\"");
        let err = parse(&bad_type).expect_err("unknown type");
        assert!(err.starts_with("t/rolling_mean.toml:9:8:"), "{err}");
        assert!(err.contains("`int`"), "{err}");
        let bad_default = GOOD.replace("default = 5", "default = \"five\"");
        let err = parse(&bad_default).expect_err("default");
        assert!(
            err.contains("kwargs.window: the default \"five\" is not a whole number"),
            "{err}"
        );
        let builtin = GOOD.replace("rolling_mean\"", "sort\"");
        let err = parse(&builtin).expect_err("a built-in's name");
        assert_eq!(
            err,
            "t/rolling_mean.toml:1:8: `sort` is rtl's own task sort; give yours another name"
        );
        let negative = GOOD.replace("2000", "-5");
        assert_eq!(
            parse(&negative).expect_err("negative"),
            "t/rolling_mean.toml:4:14: expected a whole number (0 or more), found the number -5"
        );
        let table = GOOD.replace("[kwargs.window]", "[kwargs.table]");
        assert!(parse(&table)
            .expect_err("table")
            .contains("a kwarg cannot be named `table`"));
        let empty = GOOD.replace("[\"python3\", \"rolling_mean.py\"]", "[]");
        assert!(parse(&empty)
            .expect_err("empty")
            .contains("the command is empty"));
    }

    #[test]
    fn kwargs_are_checked_and_defaults_filled_in() {
        let m = parse(GOOD).expect("good");
        assert_eq!(
            m.kwargs_of(&json!({"column": "x"})),
            Ok(json!({"column": "x", "window": 5}))
        );
        assert_eq!(
            m.kwargs_of(&json!({"column": "x", "windw": 3})),
            Err("bad kwargs at `windw`: unknown field `windw`; did you mean window? (rolling_mean takes `column`, `window`)".into())
        );
        assert_eq!(
            m.kwargs_of(&json!({"window": 3})),
            Err(
                "bad kwargs: missing field `column` (the number column to smooth), a column name"
                    .into()
            )
        );
        assert_eq!(
            m.kwargs_of(&json!({"column": "x", "window": 2.5})),
            Err("bad kwargs at `window`: expected a whole number, found the number 2.5".into())
        );
        assert_eq!(
            m.kwargs_of(&json!({"column": 3})),
            Err("bad kwargs at `column`: expected a column name, found the number 3".into())
        );
    }

    #[test]
    fn every_kwarg_problem_is_told_at_once() {
        let m = parse(GOOD).expect("good");
        assert_eq!(
            m.kwarg_problems(&json!({"colum": "x", "window": "4", "extra": 1})),
            [
                "bad kwargs at `colum`: unknown field `colum`; did you mean column? (rolling_mean takes `column`, `window`)",
                "bad kwargs at `extra`: unknown field `extra` (rolling_mean takes `column`, `window`)",
                "bad kwargs: missing field `column` (the number column to smooth), a column name",
                "bad kwargs at `window`: expected a whole number, found the text \"4\"",
            ]
        );
    }

    #[test]
    fn named_columns_must_exist() {
        let m = parse(GOOD).expect("good");
        let table = Table::from_columns(vec![(
            "temp".into(),
            crate::Column::Float64(ndarray::array![1.0]),
        )])
        .expect("table");
        assert_eq!(m.columns_in(&json!({"column": "temp"}), &table), Ok(()));
        assert_eq!(
            m.columns_in(&json!({"column": "tmp"}), &table),
            Err("field `column`: no column `tmp`; did you mean temp? available columns: temp (float64)".into())
        );
    }
}
