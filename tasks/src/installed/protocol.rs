//! The bytes between a task node and a task program, one call at a time
//! over the program's stdin and stdout (`docs/PROTOCOL.md`, "Task
//! programs"). Nothing else in rtl reads or writes them.
//!
//! A call is one line of JSON (the task, its kwargs, the columns' names
//! and sizes) and then each column as a complete `.npy` file, in order; an
//! answer is the same with the result's columns, or one line of JSON with
//! an error. `.npy` because numpy reads it with nothing installed and
//! any language writes it in a dozen lines.

use crate::formats::npy::{npy_parts, read_npy};
use crate::Table;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

/// The first line of a call.
#[derive(Serialize)]
struct CallHeader<'a> {
    task: &'a str,
    kwargs: &'a Value,
    /// True when the call runs on a check's sample of the data.
    checking: bool,
    rows: usize,
    columns: Vec<Part>,
    /// The columns' bytes are in the call memory, not after this line.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    shared: bool,
}

/// One column of a call or an answer: its name and its `.npy` size.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Part {
    name: String,
    bytes: u64,
}

/// The first line of an answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerHeader {
    #[serde(default)]
    columns: Option<Vec<ReturnedPart>>,
    #[serde(default)]
    error: Option<String>,
    /// The columns' bytes are in the answer memory, not after this line.
    #[serde(default)]
    shared: bool,
}

/// One column of an answer: its `.npy` size, or the name of the call's
/// column it is, unchanged (which then need not travel back).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnedPart {
    name: String,
    #[serde(default)]
    bytes: Option<u64>,
    #[serde(default)]
    input: Option<String>,
}

/// The bytes of a call of `task` on `table`, in pieces to write one after
/// another: the first line, then the columns (their data borrowed from
/// the table where it can be). With `shared`, the line says the columns
/// go into the call memory instead of after it.
pub(crate) fn call<'t>(
    task: &str,
    kwargs: &Value,
    table: &'t Table,
    checking: bool,
    shared: bool,
) -> Vec<Cow<'t, [u8]>> {
    let files: Vec<_> = table
        .iter()
        .map(|(name, column)| {
            let (head, data) = npy_parts(column);
            (name, head, data)
        })
        .collect();
    let header = CallHeader {
        task,
        kwargs,
        checking,
        rows: table.rows(),
        columns: files
            .iter()
            .map(|(name, head, data)| Part {
                name: name.to_string(),
                bytes: (head.len() + data.len()) as u64,
            })
            .collect(),
        shared,
    };
    // A struct of strings, numbers and a JSON value always serializes.
    let mut line = serde_json::to_vec(&header).unwrap_or_default();
    line.push(b'\n');
    let mut pieces = Vec::with_capacity(1 + 2 * files.len());
    pieces.push(Cow::Owned(line));
    for (_, head, data) in files {
        pieces.push(Cow::Owned(head));
        pieces.push(data);
    }
    pieces
}

/// What a program answered.
#[derive(Debug, PartialEq)]
pub(crate) enum Answer {
    /// The call's result, column by column: see [`table`].
    Columns(Vec<(String, Returned)>),
    /// The program's own account of what went wrong.
    Error(String),
}

/// A column of an answer.
#[derive(Debug, PartialEq)]
pub(crate) enum Returned {
    /// Its values, as sent.
    Sent(crate::Column),
    /// The call's column of this name, unchanged.
    Kept(String),
}

/// The result table of an answer's `columns`, given the call's `input`
/// (whose columns the answer kept are moved, not copied, into it).
pub(crate) fn table(columns: Vec<(String, Returned)>, mut input: Table) -> Result<Table, String> {
    let mut out: Vec<(String, crate::Column)> = Vec::with_capacity(columns.len());
    // Where each input column went, for one kept twice.
    let mut moved: Vec<(String, usize)> = Vec::new();
    for (name, returned) in columns {
        let column = match returned {
            Returned::Sent(column) => column,
            Returned::Kept(from) => match input.remove_column(&from) {
                Some(column) => {
                    moved.push((from, out.len()));
                    column
                }
                None => match moved.iter().find(|(m, _)| *m == from) {
                    Some((_, at)) => out[*at].1.clone(),
                    None => {
                        return Err(format!(
                            "its column `{name}` is the call's column `{from}`, which the call did not have"
                        ))
                    }
                },
            },
        };
        out.push((name, column));
    }
    Table::from_columns(out).map_err(|e| format!("its answer is not a table: {e}"))
}

/// Longest first line an answer may have.
const HEADER_LIMIT: usize = 1 << 20;

/// Reads an answer from the bytes received so far: None while it is
/// incomplete; an error when the bytes are not an answer (then the program
/// cannot be trusted with the next call). An answer whose columns are in
/// the program's answer `memory` comes with `true`.
pub(crate) fn answer(
    bytes: &[u8],
    memory: &impl Memory,
    most: u64,
) -> Option<Result<(Answer, bool), String>> {
    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
        return (bytes.len() > HEADER_LIMIT).then(|| {
            Err(format!(
                "its answer's first line is longer than {HEADER_LIMIT} bytes"
            ))
        });
    };
    let header: AnswerHeader = match serde_json::from_slice(&bytes[..end]) {
        Ok(h) => h,
        Err(e) => {
            let start = String::from_utf8_lossy(&bytes[..end.min(120)]).into_owned();
            return Some(Err(format!(
                "its answer does not start with a line of JSON ({e}): {start:?}; a program writes only answers to stdout (print to stderr)"
            )));
        }
    };
    let body = &bytes[end + 1..];
    let parts =
        match (header.columns, header.error) {
            (None, Some(message)) if body.is_empty() => {
                return Some(Ok((Answer::Error(message), header.shared)))
            }
            (Some(parts), None) => parts,
            (None, Some(_)) => return Some(Err("it wrote more after its error line".into())),
            (Some(_), Some(_)) => return Some(Err(
                "its answer's first line has both `columns` and `error`; it has one or the other"
                    .into(),
            )),
            (None, None) => {
                return Some(Err(
                    "its answer's first line has neither `columns` nor `error`".into(),
                ))
            }
        };
    for part in &parts {
        if part.name.is_empty() {
            return Some(Err("its answer has a column without a name".into()));
        }
        if part.bytes.is_some() == part.input.is_some() {
            return Some(Err(format!(
                "its answer's column `{}` needs either `bytes` or `input`",
                part.name
            )));
        }
    }
    let total = parts
        .iter()
        .try_fold(0u64, |sum, p| sum.checked_add(p.bytes.unwrap_or(0)))
        .and_then(|t| usize::try_from(t).ok());
    let Some(total) = total.filter(|&t| t as u64 <= most) else {
        return Some(Err(format!(
            "its answer announces columns of {} bytes, more than rtl can move ({most} bytes: the larger of max_message_bytes and cache_map_size)",
            parts.iter().fold(0u128, |sum, p| sum + u128::from(p.bytes.unwrap_or(0)))
        )));
    };
    if header.shared {
        if !body.is_empty() {
            return Some(Err(
                "it wrote columns after a line saying they are in its answer memory".into(),
            ));
        }
        let shared = memory.bytes(total).and_then(|body| decode(parts, &body));
        return Some(shared.map(|columns| (Answer::Columns(columns), true)));
    }
    if body.len() < total {
        return None;
    }
    if body.len() > total {
        return Some(Err(format!(
            "it wrote {} bytes more than its answer announced",
            body.len() - total
        )));
    }
    Some(decode(parts, body).map(|columns| (Answer::Columns(columns), false)))
}

/// Where a program may put its answer's columns instead of on stdout.
pub(crate) trait Memory {
    /// Its first `len` bytes; an error when it holds fewer.
    fn bytes(&self, len: usize) -> Result<Vec<u8>, String>;
}

fn decode(parts: Vec<ReturnedPart>, mut body: &[u8]) -> Result<Vec<(String, Returned)>, String> {
    let mut columns = Vec::with_capacity(parts.len());
    for part in parts {
        if let Some(from) = part.input {
            columns.push((part.name, Returned::Kept(from)));
            continue;
        }
        let (blob, rest) = body.split_at(part.bytes.unwrap_or(0) as usize);
        body = rest;
        let origin = format!("its column `{}`", part.name);
        let mut one = read_npy(blob, &part.name, &origin, false)?.into_columns();
        if one.len() != 1 {
            return Err(format!(
                "{origin} is a record array of {} fields; answer each as a column of its own",
                one.len()
            ));
        }
        let (_, column) = one.remove(0);
        columns.push((part.name, Returned::Sent(column)));
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Column;
    use ndarray::array;
    use serde_json::json;

    fn table() -> Table {
        Table::from_columns(vec![
            ("x".into(), Column::Float64(array![1.5, f64::NAN])),
            ("n".into(), Column::Int64(array![1, -2])),
            ("ok".into(), Column::Bool(array![true, false])),
            ("site".into(), Column::text(&["nörth", ""])),
        ])
        .expect("table")
    }

    /// A program without answer memory.
    struct NoMemory;

    impl Memory for NoMemory {
        fn bytes(&self, _: usize) -> Result<Vec<u8>, String> {
            Err("no memory".into())
        }
    }

    fn answer(bytes: &[u8]) -> Option<Result<Answer, String>> {
        super::answer(bytes, &NoMemory, 1 << 30).map(|r| r.map(|(a, _)| a))
    }

    /// An answer is a call's columns after a line of JSON: a call minus
    /// its task and kwargs reads back as an answer.
    fn joined(pieces: Vec<Cow<[u8]>>) -> Vec<u8> {
        pieces.concat()
    }

    fn as_answer(call: &[u8]) -> Vec<u8> {
        let end = call.iter().position(|&b| b == b'\n').expect("a line");
        let head: Value = serde_json::from_slice(&call[..end]).expect("json");
        let mut out = serde_json::to_vec(&json!({"columns": head["columns"]})).expect("json");
        out.extend_from_slice(&call[end..]);
        out
    }

    #[test]
    fn a_table_goes_and_comes_back_whole() {
        let table = table();
        let bytes = joined(call("t", &json!({"k": 1}), &table, false, false));
        let end = bytes.iter().position(|&b| b == b'\n').expect("a line");
        let head: Value = serde_json::from_slice(&bytes[..end]).expect("json");
        assert_eq!(head["task"], "t");
        assert_eq!(head["rows"], 2);
        assert_eq!(head["columns"][3]["name"], "site");
        let back = as_answer(&bytes);
        for cut in [0, 1, end, end + 1, back.len() - 1] {
            assert_eq!(answer(&back[..cut]), None, "{cut} bytes are not an answer");
        }
        let Some(Ok(Answer::Columns(columns))) = answer(&back) else {
            panic!("no table");
        };
        let got = super::table(columns, Table::new()).expect("a table");
        assert_eq!(got.schema(), table.schema());
        assert_eq!(got.column("site"), table.column("site"));
    }

    #[test]
    fn columns_kept_from_the_call_do_not_travel_back() {
        let bytes = b"{\"columns\": [{\"name\": \"y\", \"input\": \"n\"}, {\"name\": \"n\", \"input\": \"n\"}]}\n";
        let Some(Ok(Answer::Columns(columns))) = answer(bytes) else {
            panic!("an answer");
        };
        let got = super::table(columns, table()).expect("a table");
        let names: Vec<&str> = got.names().collect();
        assert_eq!(names, ["y", "n"]);
        assert_eq!(got.column("y"), table().column("n"));
        assert_eq!(got.column("n"), table().column("n"));
        let lost = b"{\"columns\": [{\"name\": \"y\", \"input\": \"nope\"}]}\n";
        let Some(Ok(Answer::Columns(columns))) = answer(lost) else {
            panic!("an answer");
        };
        assert_eq!(
            super::table(columns, table()),
            Err("its column `y` is the call's column `nope`, which the call did not have".into())
        );
        let both = b"{\"columns\": [{\"name\": \"y\", \"input\": \"x\", \"bytes\": 3}]}\n";
        assert!(matches!(answer(both), Some(Err(e)) if e.contains("either `bytes` or `input`")));
    }

    #[test]
    fn errors_and_lies_are_told_apart() {
        assert_eq!(
            answer(b"{\"error\": \"ValueError: no\"}\n"),
            Some(Ok(Answer::Error("ValueError: no".into())))
        );
        let Some(Err(e)) = answer(b"hello from print\n") else {
            panic!("not JSON");
        };
        assert!(e.contains("print to stderr"), "{e}");
        let table = table();
        let mut extra = as_answer(&joined(call("t", &json!({}), &table, false, false)));
        extra.push(b'!');
        assert!(matches!(answer(&extra), Some(Err(e)) if e.contains("1 bytes more")));
        let Some(Err(e)) = answer(b"{\"columns\": [{\"name\": \"a\", \"bytes\": 3}]}\nabc") else {
            panic!("not npy");
        };
        assert!(
            e.contains("its column `a`") && e.contains("not a .npy"),
            "{e}"
        );
        let huge = b"{\"columns\": [{\"name\": \"a\", \"bytes\": 18446744073709551615}, {\"name\": \"b\", \"bytes\": 2}]}\n";
        assert_eq!(
            answer(huge),
            Some(Err("its answer announces columns of 18446744073709551617 bytes, more than rtl can move (1073741824 bytes: the larger of max_message_bytes and cache_map_size)".into()))
        );
        // Refused on its first line, before any of the bytes it announces.
        let big = b"{\"columns\": [{\"name\": \"a\", \"bytes\": 1000000000000000}]}\n";
        assert!(
            matches!(answer(big), Some(Err(e)) if e.contains("1000000000000000 bytes, more than rtl can move"))
        );
    }
}
