//! `open {path, file, delimiter, compression, encoding, types}`: reads the
//! line-oriented text file `<path>/<file>` as the table. Plain: delimited
//! rows under a header row naming the columns, types from `types` or
//! inferred as for CSV.
//! `encoding: true`: one JSON value per line; objects map keys to columns
//! (in the order keys first appear; a missing key is null), arrays are
//! positional (columns "0", "1", ...). A column of integers is int64, of
//! numbers float64 (null is nan), of booleans bool, anything else utf8 (a
//! null is ""; other values keep their JSON text). `compression: true`: the
//! file is one zlib stream.

use super::write::delimiter_byte;
use crate::confine::Place;
use crate::formats::{self, csv};
use crate::{
    decodes, kwargs, without, Column, Context, DType, Ignored, Role, Table, TaskSpec, When,
};
use ndarray::Array1;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "open",
    aliases: &[],
    about: "reads <path>/<file>: delimited text or JSON lines, optionally zlib-compressed",
    kernel: run,
    kwargs: "file: the file name, relative to path\npath: a directory, relative to the job file (default: the job's directory)\ndelimiter: one character, default \",\" (delimited text with a header row)\ncompression: boolean, default false: the file is a zlib stream\nencoding: boolean, default false: one JSON object or list per line\ntypes: an object of column name to int64 | float64 | bool | utf8 (delimited text): types that win over inference",
    example: r#"{"file": "events.jsonl", "encoding": true}"#,
    check: |args| decodes::<Kwargs>(&without(args, IGNORED)),
    role: Role::Source {
        sample,
        reads: None,
    },
    row_local: false,
    ignored: IGNORED,
    reduce: None,
};

/// The original's flag for files of several types.
const IGNORED: &[Ignored] = &[Ignored {
    field: "mixed",
    why: "rtl gives each column its own type, so a file of mixed types needs no flag",
    when: When::Always,
}];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kwargs {
    file: String,
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    compression: bool,
    #[serde(default)]
    encoding: bool,
    #[serde(default)]
    types: BTreeMap<String, DType>,
}

fn run(_: Table, args: &Value, ctx: &Context) -> Result<Table, String> {
    load(args, ctx, false)
}

/// The file's first lines, for checking a job before it runs.
fn sample(args: &Value, ctx: &Context) -> Result<Table, String> {
    load(args, ctx, true)
}

/// The table in the file, or (`sample`) in the part of it a check reads.
fn load(args: &Value, ctx: &Context, sample: bool) -> Result<Table, String> {
    let args: Kwargs = kwargs(&without(args, IGNORED))?;
    let place = ctx.file(&args.path.unwrap_or_default().join(&args.file))?;
    let origin = place.path().display().to_string();
    let file = place
        .open()
        .map_err(|e| formats::cannot_read(place.path(), &e))?;
    let reader: Box<dyn Read> = if args.compression {
        Box::new(flate2::read::ZlibDecoder::new(std::io::BufReader::new(
            file,
        )))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let (bytes, whole) = formats::text_head(reader, sample).map_err(|e| {
        if args.compression {
            format!("{origin}: not a zlib stream ({e}); is `compression` right?")
        } else {
            format!("cannot read {origin}: {}", rtl_dsl::words::io(&e))
        }
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "{origin}: not UTF-8 text (byte {}){}",
            e.utf8_error().valid_up_to(),
            if args.compression {
                ""
            } else {
                "; is it compressed (compression: true)?"
            }
        )
    })?;
    if args.encoding {
        if !args.types.is_empty() {
            return Err("bad kwargs at `types`: JSON lines carry their own types; `types` is for delimited text".into());
        }
        json_lines(&text, &origin)
    } else {
        let declared = csv::Declared {
            types: args.types.into_iter().collect(),
            ..csv::Declared::default()
        };
        csv::read_text(
            &text,
            delimiter_byte(args.delimiter.as_deref().unwrap_or(","))?,
            &origin,
            &declared,
            whole,
        )
    }
}

fn json_lines(text: &str, origin: &str) -> Result<Table, String> {
    let mut names: Vec<String> = Vec::new();
    let mut cells: Vec<Vec<Value>> = Vec::new();
    let mut rows = 0;
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| format!("{origin}:{}:{}: not valid JSON", index + 1, e.column()))?;
        let fields: Vec<(String, Value)> = match value {
            Value::Object(map) => map.into_iter().collect(),
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            other => {
                return Err(format!(
                    "{origin}:{}: each line must be a JSON object or array, found {other}",
                    index + 1
                ))
            }
        };
        for (name, value) in fields {
            let at = match names.iter().position(|n| *n == name) {
                Some(at) => at,
                None => {
                    names.push(name);
                    cells.push(vec![Value::Null; rows]);
                    names.len() - 1
                }
            };
            cells[at].push(value);
        }
        rows += 1;
        for column in &mut cells {
            column.resize(rows, Value::Null);
        }
    }
    let columns = names
        .into_iter()
        .zip(cells)
        .map(|(n, values)| (n, column_of(values)))
        .collect();
    Table::from_columns(columns).map_err(|e| format!("{origin}: {e}"))
}

fn column_of(values: Vec<Value>) -> Column {
    let present = || values.iter().filter(|v| !v.is_null());
    if present().next().is_some() {
        if present().all(|v| v.is_i64()) && values.iter().all(|v| !v.is_null()) {
            return Column::Int64(values.iter().filter_map(Value::as_i64).collect());
        }
        if present().all(Value::is_number) {
            return Column::Float64(
                values
                    .iter()
                    .map(|v| v.as_f64().unwrap_or(f64::NAN))
                    .collect(),
            );
        }
        if values.iter().all(Value::is_boolean) {
            return Column::Bool(values.iter().filter_map(Value::as_bool).collect());
        }
    }
    Column::Utf8(Array1::from_iter(values.into_iter().map(|v| match v {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => other.to_string(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use serde_json::json;
    use std::io::Write;

    fn scratch(name: &str) -> crate::scratch::Scratch {
        crate::scratch::Scratch::new(&format!("open-{name}"))
    }

    fn open(dir: &std::path::Path, args: Value) -> Result<Table, String> {
        run(Table::new(), &args, &Context::new(dir))
    }

    #[test]
    fn delimited_lines() {
        let dir = scratch("plain");
        std::fs::write(dir.join("log.txt"), "t|v\n1|2.5\n2|3\n").expect("write");
        let t = open(&dir, json!({"file": "log.txt", "delimiter": "|"})).expect("open");
        assert_eq!(t.column("v"), Some(&Column::Float64(array![2.5, 3.0])));
    }

    #[test]
    fn json_lines_objects_and_arrays() {
        let dir = scratch("json");
        std::fs::write(
            dir.join("events.jsonl"),
            "{\"id\": 1, \"temp\": 20.5, \"ok\": true}\n{\"id\": 2, \"ok\": false, \"note\": \"hot\"}\n",
        )
        .expect("write");
        let t = open(&dir, json!({"file": "events.jsonl", "encoding": true})).expect("open");
        assert_eq!(t.names().collect::<Vec<_>>(), ["id", "temp", "ok", "note"]);
        assert_eq!(t.column("id"), Some(&Column::Int64(array![1, 2])));
        let Some(Column::Float64(temp)) = t.column("temp") else {
            panic!("temp")
        };
        assert!(temp[0] == 20.5 && temp[1].is_nan());
        assert_eq!(t.column("ok"), Some(&Column::Bool(array![true, false])));
        assert_eq!(t.column("note"), Some(&Column::text(&["", "hot"])));
        std::fs::write(dir.join("rows.jsonl"), "[1, \"a\"]\n[2, \"b\"]\n").expect("write");
        let t = open(&dir, json!({"file": "rows.jsonl", "encoding": true})).expect("arrays");
        assert_eq!(t.names().collect::<Vec<_>>(), ["0", "1"]);
        std::fs::write(dir.join("bad.jsonl"), "{\"a\": 1}\n{oops}\n").expect("write");
        let err = open(&dir, json!({"file": "bad.jsonl", "encoding": true})).expect_err("bad");
        assert!(err.contains("bad.jsonl:2:2: not valid JSON"), "{err}");
    }

    #[test]
    fn zlib_compressed() {
        let dir = scratch("zlib");
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"{\"a\": 1}\n{\"a\": 2}\n").expect("compress");
        std::fs::write(dir.join("data.z"), z.finish().expect("finish")).expect("write");
        let t = open(
            &dir,
            json!({"file": "data.z", "compression": true, "encoding": true}),
        )
        .expect("open");
        assert_eq!(t.column("a"), Some(&Column::Int64(array![1, 2])));
        let err = open(&dir, json!({"file": "data.z"})).expect_err("forgot compression");
        assert!(err.contains("compression: true"), "{err}");
        std::fs::write(dir.join("plain.txt"), "a\n1\n").expect("write");
        let err =
            open(&dir, json!({"file": "plain.txt", "compression": true})).expect_err("not zlib");
        assert!(err.contains("not a zlib stream"), "{err}");
    }
}
