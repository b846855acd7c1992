//! `open_array {filename, path, extension, delimiter}`: reads the table at
//! `<path>/<filename>.<extension>`; a relative `path` resolves against the
//! job file's directory.
//!
//! `csv`: a header row names the columns; types are inferred per column
//! (see [`crate::csv`]). The file replaces the stage's input table.

use crate::{csv, kwargs, Context, Table, TaskSpec};
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "open_array",
    aliases: &["openArray"],
    about: "reads <path>/<filename>.<extension> (csv with a header row) as the table",
    kernel: run,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kwargs {
    filename: String,
    #[serde(default = "here")]
    path: PathBuf,
    #[serde(default = "csv_extension")]
    extension: String,
    #[serde(default = "comma")]
    delimiter: String,
}

fn here() -> PathBuf {
    PathBuf::from(".")
}

fn csv_extension() -> String {
    "csv".into()
}

fn comma() -> String {
    ",".into()
}

fn run(_: Table, args: &Value, ctx: &Context) -> Result<Table, String> {
    let args: Kwargs = kwargs(args)?;
    let file = ctx.resolve(
        &args
            .path
            .join(format!("{}.{}", args.filename, args.extension)),
    );
    let origin = file.display().to_string();
    match args.extension.as_str() {
        "csv" => {
            let delimiter = match args.delimiter.as_bytes() {
                [d] if d.is_ascii() && *d != b'"' && *d != b'\n' => *d,
                _ => {
                    return Err(format!(
                        "bad kwargs: delimiter {:?} must be one ASCII character other than a quote or newline",
                        args.delimiter
                    ))
                }
            };
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("cannot read {origin}: {e}"))?;
            csv::read(&text, delimiter, &origin)
        }
        other => Err(format!(
            "cannot read {origin}: extension {other:?} is not supported; supported: csv"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Column;
    use serde_json::json;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rtl-open-array-{}-{name}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).expect("scratch dir");
        dir
    }

    #[test]
    fn reads_relative_to_the_job_directory() {
        let dir = scratch("rel");
        std::fs::write(dir.join("data/m.csv"), "a,b\n1,x\n2,y\n").expect("write");
        let ctx = Context::new(&dir);
        let t = run(
            Table::new(),
            &json!({"filename": "m", "path": "data"}),
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
            err.contains("absent.csv") && err.contains("No such file"),
            "{err}"
        );
        let err = run(Table::new(), &json!({"path": "data"}), &ctx).expect_err("no filename");
        assert!(err.contains("missing field `filename`"), "{err}");
    }
}
