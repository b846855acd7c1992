//! `write {filename, path, extension, delimiter, header, meta}`: writes
//! the table to `<path>/<filename>.<extension>` (csv, dat with its .meta,
//! npz or json) and passes it on unchanged. A relative `path` resolves
//! against the job file's directory; missing directories are created.
//!
//! A csv file gets a header row and a `.meta` beside it giving each
//! column's type, so that a column of digits written as text reads back
//! as text; `"meta": false` leaves the `.meta` out, `"header": false` the
//! header row (the original's readers take a file without one).

use crate::confine::{Confined, Place};
use crate::formats::CsvOptions;
use crate::{formats, kwargs, without, Context, DType, Ignored, Role, Table, TaskSpec, When};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "write",
    aliases: &[],
    about:
        "writes the table to <path>/<filename>.<extension> (csv, dat+meta, npz, json); passes it on",
    kernel: run,
    kwargs: "filename: the file name without extension\npath: a directory, relative to the job file (default \".\"), created if missing\nextension: csv | dat | npz | json (default csv); dat writes its .meta too\ndelimiter: one character, default \",\" (csv)\nheader: boolean, default true: a first row naming the columns (csv); false writes the original's layout, bools as 1 and 0 as numpy's savetxt does\nmeta: boolean, default true: a .meta beside the file giving each column's type, so it reads back with the same types (csv)",
    example: r#"{"filename": "result", "path": "out", "extension": "npz"}"#,
    check: |args| file_kwargs(args).map(|_| ()),
    role: Role::Writes(target),
    row_local: false,
    ignored: FILE_IGNORED,
    reduce: None,
};

/// Kwargs naming a table file and how a csv one is laid out, shared with
/// `open_array` (which alone takes `types`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileKwargs {
    filename: String,
    #[serde(default = "here")]
    path: PathBuf,
    #[serde(default = "csv")]
    extension: String,
    /// null, as the original's jobs write it, is the default.
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    header: Option<bool>,
    #[serde(default)]
    meta: Option<bool>,
    #[serde(default)]
    pub(crate) types: Option<BTreeMap<String, DType>>,
}

/// Kwargs of [`FileKwargs`] that mean nothing for the file's format: the
/// original's jobs give a delimiter for .dat files.
pub(crate) const FILE_IGNORED: &[Ignored] = &[Ignored {
    field: "delimiter",
    why: "only csv files have a delimiter",
    when: When::If(|args| {
        args.get("extension")
            .and_then(Value::as_str)
            .is_some_and(|e| !e.trim_start_matches('.').eq_ignore_ascii_case("csv"))
    }),
}];

/// The kwargs of a call naming a table file.
pub(crate) fn file_kwargs(args: &Value) -> Result<FileKwargs, String> {
    kwargs(&without(args, FILE_IGNORED))
}

fn here() -> PathBuf {
    PathBuf::from(".")
}

fn csv() -> String {
    "csv".into()
}

/// A `delimiter` kwarg as one byte.
pub(crate) fn delimiter_byte(delimiter: &str) -> Result<u8, String> {
    match delimiter.as_bytes() {
        [d] if d.is_ascii() && !matches!(d, b'"' | b'\n' | b'\r') => Ok(*d),
        _ => Err(format!(
            "bad kwargs: delimiter {delimiter:?} must be one ASCII character other than a quote or a newline"
        )),
    }
}

/// The file the kwargs name, and how to read or write it if it is csv.
pub(crate) fn file_path(
    args: &FileKwargs,
    ctx: &Context,
) -> Result<(Confined, CsvOptions), String> {
    let delimiter = delimiter_byte(args.delimiter.as_deref().unwrap_or(","))?;
    let extension = args.extension.trim_start_matches('.');
    let name = format!("{}.{extension}", args.filename);
    let file = ctx.file(&args.path.join(name))?;
    if !extension.eq_ignore_ascii_case("csv") {
        let csv_only = [
            ("header", args.header.is_some()),
            ("meta", args.meta.is_some()),
            ("types", args.types.is_some()),
        ];
        if let Some((field, _)) = csv_only.iter().find(|(_, given)| *given) {
            return Err(format!(
                "bad kwargs at `{field}`: applies to csv files only, and this one is .{extension}"
            ));
        }
    }
    let csv = CsvOptions {
        delimiter,
        header: args.header,
        meta: args.meta.unwrap_or(true),
        types: args.types.clone().unwrap_or_default().into_iter().collect(),
    };
    Ok((file, csv))
}

/// The file a call writes and how, checking its kwargs on the way.
fn destination(args: &Value, ctx: &Context) -> Result<(Confined, CsvOptions), String> {
    let args = file_kwargs(args)?;
    if args.types.is_some() {
        return Err("bad kwargs at `types`: write keeps the table's own types; `types` is for reading a file (open_array)".into());
    }
    let (file, csv) = file_path(&args, ctx)?;
    formats::refuse_special(file.path()).map_err(|e| {
        format!(
            "cannot write {}: {}",
            file.path().display(),
            rtl_dsl::words::io(&e)
        )
    })?;
    if !formats::Format::of(file.path())?.writable() {
        return Err(format!(
            "{}: a .npy file holds one array; write .npz for a table",
            file.path().display()
        ));
    }
    Ok((file, csv))
}

/// The file a call writes.
fn target(args: &Value, ctx: &Context) -> Result<PathBuf, String> {
    destination(args, ctx).map(|(file, _)| file.path().to_path_buf())
}

fn run(table: Table, args: &Value, ctx: &Context) -> Result<Table, String> {
    let (file, csv) = destination(args, ctx)?;
    formats::write(&table, &file, &csv)?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Column;
    use ndarray::array;
    use serde_json::json;

    #[test]
    fn writes_and_passes_the_table_on() {
        let dir = crate::scratch::Scratch::new("write");
        let ctx = Context::new(&dir);
        let t = Table::from_columns(vec![("a".into(), Column::Float64(array![1.5, 2.0]))])
            .expect("table");
        for ext in ["csv", "dat", "npz", "json"] {
            let out = run(
                t.clone(),
                &json!({"filename": "out", "path": "sub", "extension": ext}),
                &ctx,
            )
            .expect("write");
            assert_eq!(out, t);
            assert!(dir.join(format!("sub/out.{ext}")).is_file(), "{ext}");
        }
        assert!(dir.join("sub/out.meta").is_file());
        let err = run(
            t.clone(),
            &json!({"filename": "out", "delimiter": "::"}),
            &ctx,
        )
        .expect_err("delimiter");
        assert!(err.contains("delimiter"), "{err}");
        // Only csv has a delimiter: elsewhere it is ignored, whatever it is.
        run(
            t.clone(),
            &json!({"filename": "out", "extension": "npz", "delimiter": "::"}),
            &ctx,
        )
        .expect("npz ignores the delimiter");

        // A named pipe is refused at once (opening it would wait for a
        // reader forever), and a failed write leaves no file behind.
        let fifo = dir.join("pipe.csv");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = run(t.clone(), &json!({"filename": "pipe"}), &ctx).expect_err("a pipe");
            assert!(err.contains("named pipe"), "{err}");
            assert!(!dir.join("pipe.meta").exists());
        }
        std::fs::create_dir_all(dir.join("folder.csv")).expect("a folder");
        let err = run(t.clone(), &json!({"filename": "folder"}), &ctx).expect_err("a folder");
        assert!(err.contains("it is a folder, not a file"), "{err}");
        let left: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.') || n == "folder.meta")
            .collect();
        assert!(left.is_empty(), "{left:?}");

        // A name the .meta's format cannot hold is refused, not changed.
        let odd = Table::from_columns(vec![("x@>y".into(), Column::Int64(array![1]))]).expect("t");
        let err = run(odd.clone(), &json!({"filename": "odd"}), &ctx).expect_err("@>");
        assert!(
            err.contains("column `x@>y` cannot be named in a .meta"),
            "{err}"
        );
        assert!(!dir.join("odd.csv").exists());
        run(odd, &json!({"filename": "odd", "meta": false}), &ctx).expect("without a .meta");

        // A .meta from an earlier write would give the new file old types.
        run(t.clone(), &json!({"filename": "again"}), &ctx).expect("write");
        assert!(dir.join("again.meta").is_file());
        let text = Table::from_columns(vec![("a".into(), Column::text(&["007"]))]).expect("t");
        run(text, &json!({"filename": "again", "meta": false}), &ctx).expect("write");
        assert!(!dir.join("again.meta").exists());
        let back = formats::read(&dir.join("again.csv"), &CsvOptions::default()).expect("read");
        assert_eq!(back.column("a"), Some(&Column::Int64(array![7])));
    }
}
