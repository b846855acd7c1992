//! `open_array {filename, path, extension, delimiter}`: reads the table at
//! `<path>/<filename>.<extension>` (a relative `path` resolves against the
//! job file's directory); it replaces the stage's input table.
//!
//! `csv`: a header row names the columns, or, in a file without one (the
//! original's), `<path>/<filename>.meta`; a column's type is the one
//! `types` gives it, else the `.meta`'s, else inferred from the file's
//! first MiB (see [`crate::formats::csv`]). `dat`: raspi-rtl's
//! raw record array with its `.meta`. `npy`: one 1-D array (a column named
//! after the file) or a 1-D record array. `npz`: one column per array, as
//! numpy.savez writes them. See [`crate::formats`].

use super::write::{file_kwargs, file_path, FILE_IGNORED};
use crate::confine::Place;
use crate::{formats, Context, Role, Table, TaskSpec};
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "open_array",
    aliases: &["openArray"],
    about: "reads <path>/<filename>.<extension> (csv, dat, npy, npz) as the table",
    kernel: run,
    kwargs: "filename: the file name without extension\npath: a directory, relative to the job file (default \".\")\nextension: csv | dat | npy | npz (default csv)\ndelimiter: one character, default \",\" (csv)\nheader: boolean (csv): whether the first row names the columns; default: it does, unless a .meta beside the file lists other names, as many as the row has fields (the original's files have no header row)\nmeta: boolean, default true (csv): take names and types from a .meta beside the file when there is one\ntypes: an object of column name to int64 | float64 | bool | utf8 (csv): types that win over the .meta's and over inference",
    example: r#"{"filename": "sensors", "path": "data", "extension": "csv"}"#,
    check: |args| file_kwargs(args).map(|_| ()),
    role: Role::Source {
        sample,
        reads: Some(reads),
    },
    row_local: false,
    ignored: FILE_IGNORED,
    reduce: None,
};

fn run(_: Table, args: &Value, ctx: &Context) -> Result<Table, String> {
    let args = file_kwargs(args)?;
    let (path, csv) = file_path(&args, ctx)?;
    formats::read(&path, &csv)
}

/// The file a call reads.
fn reads(args: &Value, ctx: &Context) -> Result<std::path::PathBuf, String> {
    file_path(&file_kwargs(args)?, ctx).map(|(file, _)| file.path().to_path_buf())
}

/// The file's first rows, for checking a job before it runs.
fn sample(args: &Value, ctx: &Context) -> Result<Table, String> {
    let args = file_kwargs(args)?;
    let (path, csv) = file_path(&args, ctx)?;
    formats::sample(&path, &csv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Column;
    use serde_json::json;

    fn scratch(name: &str) -> crate::scratch::Scratch {
        let dir = crate::scratch::Scratch::new(&format!("open-array-{name}"));
        std::fs::create_dir_all(dir.join("data")).expect("scratch dir");
        dir
    }

    #[test]
    fn reads_relative_to_the_job_directory() {
        let dir = scratch("rel");
        std::fs::write(dir.join("data/m.csv"), "a;b\n1;x\n2;y\n").expect("write");
        let ctx = Context::new(&dir);
        let t = run(
            Table::new(),
            &json!({"filename": "m", "path": "data", "delimiter": ";"}),
            &ctx,
        )
        .expect("read");
        assert_eq!(t.rows(), 2);
        assert_eq!(t.column("a"), Some(&Column::Int64(ndarray::array![1, 2])));
    }

    #[test]
    fn missing_file_is_named() {
        let dir = scratch("missing");
        let ctx = Context::new(&dir);
        let err = run(
            Table::new(),
            &json!({"filename": "absent", "path": "data"}),
            &ctx,
        )
        .expect_err("missing");
        assert!(
            err.contains("data/absent.csv") && err.contains("No such file"),
            "{err}"
        );
        let err = run(Table::new(), &json!({"path": "data"}), &ctx).expect_err("no filename");
        assert!(err.contains("missing field `filename`"), "{err}");
        let err = run(
            Table::new(),
            &json!({"filename": "m", "extension": "xlsx"}),
            &ctx,
        )
        .expect_err("ext");
        assert!(err.contains(".xlsx files"), "{err}");
    }
}
