//! CSV in and out of a [`Table`]: a header row, types inferred per column.
//!
//! The `csv` crate splits records (RFC 4180 quoting, `\n`, `\r\n` or `\r`
//! line ends, a byte-order mark) and quotes what it writes; rtl's own part
//! is the types. Reading infers each column's type from all its values:
//! int64 when every value is an integer, else float64 when every value is
//! a number (an empty cell is NaN), else bool when every value is
//! true/false, else utf8. Writing prints integers as integers and floats in
//! the shortest form that reads back to the same f64, so `write` then
//! `read` gives the table back.

use crate::chart::thousands;
use crate::table::{Column, DType, Table};
use ndarray::Array1;
use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

/// Parses CSV text with a header row, inferring each column's type.
/// `origin` names the file in errors.
pub fn read(text: &str, delimiter: u8, origin: &str) -> Result<Table, String> {
    read_typed(text, delimiter, origin, &Declared::default())
}

/// What a `.meta` beside a CSV file, or the job, says about its columns.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    /// The `.meta`'s path (for messages) and the columns it lists, in the
    /// file's order, with their types.
    pub meta: Option<(String, Vec<(String, DType)>)>,
    /// Types the job gives, by column name; they win over the `.meta`'s.
    pub types: Vec<(String, DType)>,
    /// Whether the first row names the columns. None: it does, unless a
    /// `.meta` lists names the first row does not hold, and as many
    /// columns as the row has fields (the original's files have no header).
    pub header: Option<bool>,
}

/// Parses a whole CSV text; the columns' names come from its header row
/// or, for a file without one, from the `.meta`. A column's type is the
/// one `declared` gives it, else the one inferred from the rows in the part
/// of the text `rtl check` reads (see [`super::sample_cut`]), so that a job
/// runs on the columns it was checked with: a later cell that is not of
/// that type is an error naming its line and value.
pub fn read_typed(
    text: &str,
    delimiter: u8,
    origin: &str,
    declared: &Declared,
) -> Result<Table, String> {
    read_text(text, delimiter, origin, declared, true)
}

/// [`read_typed`] of a whole text, or (`whole` false) of the part of one
/// that [`super::text_head`] reads for a check: its last row may be cut
/// short, so it is left out, and the full read leaves it out of what
/// decides the types too.
pub fn read_text(
    text: &str,
    delimiter: u8,
    origin: &str,
    declared: &Declared,
    whole: bool,
) -> Result<Table, String> {
    // Rows that start before this byte decide the inferred types, but the
    // last of them, which a sample may hold only in part.
    let sampled = if whole {
        super::sample_cut(text.as_bytes())
    } else {
        text.len()
    };
    let cut_short = !whole || sampled < text.len();
    // The text is already UTF-8 (the caller says where it is not), so a
    // record cannot fail to decode.
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let text = &text[bom..];
    let sampled = sampled.saturating_sub(bom);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    // Where each record starts, as a byte offset: the reader's own line
    // count leaves out the blank lines it skips.
    let mut records = reader
        .records()
        .map(|record| {
            record
                .map(|r| (r.position().map_or(0, |p| p.byte() as usize), r))
                .map_err(|e| format!("{origin}: {e}"))
        })
        .peekable();
    let first: Vec<String> = match records.peek() {
        Some(Ok((_, record))) => record.iter().map(|h| h.trim().to_string()).collect(),
        Some(Err(e)) => return Err(e.clone()),
        None => Vec::new(),
    };
    let meta_names: Option<Vec<&str>> = declared
        .meta
        .as_ref()
        .map(|(_, columns)| columns.iter().map(|(n, _)| n.as_str()).collect());
    let header = declared.header.unwrap_or_else(|| match &meta_names {
        // An empty file beside a .meta: its columns, with no rows.
        Some(_) if first.is_empty() => false,
        Some(names) if names.len() == first.len() => {
            let first: HashSet<&str> = first.iter().map(String::as_str).collect();
            names.iter().all(|n| first.contains(n))
        }
        _ => true,
    });
    let names: Vec<String> = if header {
        if records.next().is_none() {
            return Err(format!(
                "{origin}: the file is empty; expected a header row naming the columns"
            ));
        }
        if let Some(blank) = first.iter().position(String::is_empty) {
            return Err(format!(
                "{origin}:{}: column {} of the header row has no name",
                line_at(text, 0),
                blank + 1
            ));
        }
        first
    } else {
        match (&declared.meta, &meta_names) {
            (Some((meta_origin, _)), Some(names)) => {
                if !first.is_empty() && first.len() != names.len() {
                    return Err(format!(
                        "{origin}: {meta_origin} lists {} columns ({}) but the first row has {} fields",
                        names.len(),
                        listed(names.iter().copied()),
                        first.len()
                    ));
                }
                names.iter().map(|n| n.to_string()).collect()
            }
            _ => (0..first.len()).map(|i| i.to_string()).collect(),
        }
    };
    if let Some(problem) = unknown_names(origin, declared, &names) {
        return Err(problem);
    }
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    let mut starts = Vec::new();
    let line = |byte: usize| line_at(text, byte);
    while let Some(record) = records.next() {
        let (start, fields) = record?;
        let last = records.peek().is_none();
        if last && !whole {
            break; // perhaps cut short
        }
        // The reader takes a quote that is never closed to run to the end
        // of the file, as one last field: say so.
        if last && quote_left_open(&text[start.min(text.len())..], delimiter) {
            return Err(format!(
                "{origin}:{}: a quoted field opened on this line is never closed",
                line(start)
            ));
        }
        if fields.len() == 1 && fields[0].is_empty() {
            continue; // `""` alone on its line: no row
        }
        if fields.len() != names.len() {
            let against = if header {
                "the header"
            } else {
                "the first row"
            };
            return Err(format!(
                "{origin}:{}: row has {} but {against} has {}",
                line(start),
                count(fields.len(), "field"),
                names.len()
            ));
        }
        for (column, field) in cells.iter_mut().zip(fields.iter()) {
            column.push(field.to_string());
        }
        starts.push(start);
    }
    let decided = starts.iter().take_while(|&&s| s < sampled).count();
    let decided = if cut_short && whole {
        decided.saturating_sub(1)
    } else {
        decided
    };
    // The job's types win: they are inserted last.
    let declared_types: HashMap<&str, DType> = declared
        .meta
        .iter()
        .flat_map(|(_, columns)| columns)
        .chain(&declared.types)
        .map(|(n, dtype)| (n.as_str(), *dtype))
        .collect();
    let declared_type = |name: &str| declared_types.get(name).copied();
    let columns = names
        .into_iter()
        .zip(cells)
        .map(|(name, values)| {
            let (dtype, why) = match declared_type(&name) {
                Some(dtype) => (dtype, None),
                None => (infer(&values[..decided]), Some(decided)),
            };
            let column = convert(values, dtype).map_err(|(row, value)| {
                let mut message = format!(
                    "{origin}:{}: column `{name}`: {value:?} is not {}",
                    line(starts[row]),
                    expected(dtype)
                );
                if let Some(rows) = why {
                    // A fraction in a column of integers wants float64;
                    // anything else, text.
                    let (wider, as_what) = match dtype {
                        DType::Int64 if parse_float(value.trim()).is_some() => ("float64", "as numbers"),
                        _ => ("utf8", "as text"),
                    };
                    message.push_str(&format!(
                        ", the type of the column's first {} rows (rtl types a column by the file's first MiB, as `rtl check` reads it); to read the column {as_what}, give the task \"types\": {{\"{name}\": \"{wider}\"}}",
                        thousands(rows)
                    ));
                }
                if !header && row == 0 {
                    message.push_str(", and rtl read the first row as data: the file's first row does not hold the column names the .meta lists; if it is a header row, give open_array \"header\": true");
                }
                message
            })?;
            Ok((name, column))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Table::from_columns(columns).map_err(|e| format!("{origin}: {e}"))
}

/// The problem with a column the `.meta` or the job names that the file
/// does not have, if there is one.
fn unknown_names(origin: &str, declared: &Declared, names: &[String]) -> Option<String> {
    let names_set: HashSet<&str> = names.iter().map(String::as_str).collect();
    let has = |n: &str| names_set.contains(n);
    let columns = listed(names.iter().map(String::as_str));
    if let Some((meta_origin, meta)) = &declared.meta {
        if let Some((name, _)) = meta.iter().find(|(n, _)| !has(n)) {
            let count = if meta.len() == names.len() {
                String::new()
            } else {
                format!(
                    "; the .meta lists {} columns and the row has {}",
                    meta.len(),
                    names.len()
                )
            };
            let hint = match declared.header {
                None => "if the file has no header row, give open_array \"header\": false",
                Some(_) => {
                    "if the file has no header row, give open_array \"header\": false, not true"
                }
            };
            return Some(format!(
                "{meta_origin} names column `{name}`, which the header row of {origin} does not have (it has {columns}){count}; {hint}; to read it without the .meta, \"meta\": false"
            ));
        }
    }
    declared
        .types
        .iter()
        .find(|(n, _)| !has(n))
        .map(|(name, _)| {
            format!(
                "field `types`: names column `{name}`, which {origin} does not have (it has {columns})"
            )
        })
}

/// Whether a quote opened in `text` (from the start of a record) is still
/// open at its end, as RFC 4180 reads it: a quote opens only at a field's
/// start, and `""` inside one is a quote, not its end.
fn quote_left_open(text: &str, delimiter: u8) -> bool {
    let bytes = text.as_bytes();
    let (mut quoted, mut field_start) = (false, true);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if quoted {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                quoted = false;
            }
            field_start = false;
        } else {
            quoted = b == b'"' && field_start;
            field_start = matches!(b, b'\n' | b'\r') || b == delimiter;
        }
        i += 1;
    }
    quoted
}

/// `1 field`, `2 fields`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Names in backticks, comma separated.
fn listed<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The line, from 1, of the record the reader says starts at byte `at` of
/// `text`: the first byte from there that does not end a line (the reader
/// counts the blank lines it skipped as part of the next record).
/// `\n`, `\r\n` and a lone `\r` each end a line.
fn line_at(text: &str, at: usize) -> usize {
    let bytes = text.as_bytes();
    let mut at = at.min(bytes.len());
    while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
        at += 1;
    }
    let before = &bytes[..at];
    let lone_cr = before
        .windows(2)
        .filter(|w| w[0] == b'\r' && w[1] != b'\n')
        .count()
        + usize::from(before.last() == Some(&b'\r'));
    1 + before.iter().filter(|&&b| b == b'\n').count() + lone_cr
}

fn expected(dtype: DType) -> &'static str {
    match dtype {
        DType::Int64 => "an integer (int64)",
        DType::Float64 => "a number (float64)",
        DType::Bool => "true or false (bool)",
        DType::Utf8 => "text",
    }
}

/// The cells as `dtype`, or the first row (and text) that is not one.
fn convert(values: Vec<String>, dtype: DType) -> Result<Column, (usize, String)> {
    match dtype {
        DType::Utf8 => Ok(Column::Utf8(Array1::from(values))),
        other => parse_as(&values, other),
    }
}

/// The cells parsed as a number or bool column.
fn parse_as(values: &[String], dtype: DType) -> Result<Column, (usize, String)> {
    fn each<T>(
        values: &[String],
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Array1<T>, (usize, String)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| parse(v.trim()).ok_or_else(|| (i, v.clone())))
            .collect()
    }
    Ok(match dtype {
        DType::Int64 => Column::Int64(each(values, |v| v.parse().ok())?),
        DType::Float64 => Column::Float64(each(values, parse_float)?),
        DType::Bool => Column::Bool(each(values, parse_bool)?),
        DType::Utf8 => Column::Utf8(Array1::from(values.to_vec())),
    })
}

fn parse_float(v: &str) -> Option<f64> {
    if v.is_empty() {
        Some(f64::NAN)
    } else {
        v.parse().ok()
    }
}

/// true/false in any case, or 1/0 as numpy's `savetxt` writes a bool.
fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Writes `table` as CSV, with a header row when `header` is true. Without
/// one (the original's layout, which numpy's `loadtxt` reads) a bool is
/// written 1 or 0.
pub fn write(table: &Table, delimiter: u8, header: bool, out: &mut dyn Write) -> io::Result<()> {
    let mut writer = ::csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(::csv::Terminator::Any(b'\n'))
        .from_writer(out);
    // A table without columns is an empty file (a header of one empty
    // name would read back as a column).
    if header && table.width() > 0 {
        writer.write_record(table.names())?;
    }
    let columns: Vec<&Column> = table.iter().map(|(_, c)| c).collect();
    let mut number = String::new();
    for row in 0..table.rows() {
        for column in &columns {
            number.clear();
            let field: &str = match column {
                Column::Utf8(a) => &a[row],
                Column::Bool(a) if !header => {
                    if a[row] {
                        "1"
                    } else {
                        "0"
                    }
                }
                other => {
                    push_number(&mut number, other, row);
                    &number
                }
            };
            writer.write_field(field)?;
        }
        writer.write_record(None::<&[u8]>)?;
    }
    writer.flush()
}

/// Appends row `row` of a number or bool column, as it reads back.
fn push_number(out: &mut String, column: &Column, row: usize) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = match column {
        Column::Int64(a) => write!(out, "{}", a[row]),
        Column::Float64(a) => write!(out, "{:?}", a[row]),
        Column::Bool(a) => write!(out, "{}", a[row]),
        Column::Utf8(a) => write!(out, "{}", a[row]),
    };
}

/// The type of a column holding `values`: int64 when every value is an
/// integer, else float64 when every value is a number or empty (and one is
/// not), else bool when every value is true or false, else utf8.
fn infer(values: &[String]) -> DType {
    let has_values = values.iter().any(|v| !v.trim().is_empty());
    let fits = |parse: &dyn Fn(&str) -> bool| values.iter().all(|v| parse(v.trim()));
    if values.is_empty() {
        DType::Utf8
    } else if fits(&|v| v.parse::<i64>().is_ok()) {
        DType::Int64
    } else if has_values && fits(&|v| parse_float(v).is_some()) {
        DType::Float64
    } else if fits(&|v| parse_bool(v).is_some()) {
        DType::Bool
    } else {
        DType::Utf8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_types_per_column() {
        let t = read(
            "i,f,b,s,e\n1,1.5,true,x,\n-2,3,False,\"y, z\",2.5\n",
            b',',
            "t.csv",
        )
        .expect("read");
        let types: Vec<DType> = t.iter().map(|(_, c)| c.dtype()).collect();
        assert_eq!(
            types,
            [
                DType::Int64,
                DType::Float64,
                DType::Bool,
                DType::Utf8,
                DType::Float64
            ]
        );
        match t.column("s") {
            Some(Column::Utf8(a)) => assert_eq!(a[1], "y, z"),
            other => panic!("unexpected {other:?}"),
        }
        match t.column("e") {
            Some(Column::Float64(a)) => assert!(a[0].is_nan() && a[1] == 2.5),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn quoted_fields_keep_newlines_and_quotes() {
        let t = read("a,b\n\"line\nbreak\",\"say \"\"hi\"\"\"\n", b',', "q.csv").expect("read");
        match (t.column("a"), t.column("b")) {
            (Some(Column::Utf8(a)), Some(Column::Utf8(b))) => {
                assert_eq!(a[0], "line\nbreak");
                assert_eq!(b[0], "say \"hi\"");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_header_name_may_not_be_blank_and_no_columns_is_an_empty_file() {
        let err = read("a,,c\n1,2,3\n", b',', "h.csv").expect_err("blank name");
        assert_eq!(err, "h.csv:1: column 2 of the header row has no name");
        let mut out = Vec::new();
        write(&Table::new(), b',', true, &mut out).expect("write");
        assert!(out.is_empty());
    }

    #[test]
    fn ragged_rows_name_file_and_line() {
        let err = read("a,b\n1,2\n3\n", b',', "data.csv").expect_err("ragged");
        assert_eq!(err, "data.csv:3: row has 1 field but the header has 2");
        let err = read("", b',', "empty.csv").expect_err("empty");
        assert!(err.contains("empty.csv") && err.contains("empty"), "{err}");
    }

    #[test]
    fn write_then_read_round_trips() {
        let text = "id,x,ok,name\n1,0.1,true,plain\n2,1e-7,false,\"with,comma\"\n3,1.0,true,\"q\"\"uote\"\n";
        let t = read(text, b',', "r.csv").expect("read");
        let mut out = Vec::new();
        write(&t, b',', true, &mut out).expect("write");
        assert_eq!(String::from_utf8(out.clone()).expect("utf8"), text);
        let back = read(std::str::from_utf8(&out).expect("utf8"), b',', "r.csv").expect("reread");
        assert_eq!(back, t);
    }

    fn typed(types: &[(&str, DType)]) -> Declared {
        Declared {
            types: types.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
            ..Declared::default()
        }
    }

    fn meta(columns: &[(&str, DType)]) -> Declared {
        Declared {
            meta: Some((
                "m.meta".into(),
                columns.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
            )),
            ..Declared::default()
        }
    }

    #[test]
    fn a_file_whose_first_row_is_not_the_metas_names_has_no_header() {
        let columns = [("a", DType::Int64), ("b", DType::Utf8)];
        // The original's layout: no header, names and types in the .meta.
        let t = read_typed("1,x\n2,7\n", b',', "m.csv", &meta(&columns)).expect("header-less");
        assert_eq!(t.names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(t.column("a"), Some(&Column::Int64(ndarray::array![1, 2])));
        assert_eq!(t.column("b"), Some(&Column::text(&["x", "7"])));
        // rtl's own: a header row holding the .meta's names.
        let t = read_typed("b,a\n1,2\n", b',', "m.csv", &meta(&columns)).expect("header");
        assert_eq!(t.column("b"), Some(&Column::text(&["1"])));
        // Told there is a header that does not name the .meta's columns.
        let mut told = meta(&columns);
        told.header = Some(true);
        let err = read_typed("x,y\n1,2\n", b',', "m.csv", &told).expect_err("told");
        assert_eq!(err, "m.meta names column `a`, which the header row of m.csv does not have (it has `x`, `y`); if the file has no header row, give open_array \"header\": false, not true; to read it without the .meta, \"meta\": false");
        // Not told, with a first row of another width: both ways out.
        let err = read_typed("x,y,z\n1,2,3\n", b',', "m.csv", &meta(&columns)).expect_err("width");
        assert_eq!(err, "m.meta names column `a`, which the header row of m.csv does not have (it has `x`, `y`, `z`); the .meta lists 2 columns and the row has 3; if the file has no header row, give open_array \"header\": false; to read it without the .meta, \"meta\": false");
        // Header-less, a row of names where numbers belong is named.
        let mut told = meta(&columns);
        told.header = Some(false);
        let err = read_typed("a,b\n1,2\n", b',', "m.csv", &told).expect_err("names as data");
        assert!(err.starts_with("m.csv:1: column `a`: \"a\" is not an integer (int64), and rtl read the first row as data"), "{err}");
        let err = read_typed("1,2,3\n", b',', "m.csv", &told).expect_err("width");
        assert_eq!(
            err,
            "m.csv: m.meta lists 2 columns (`a`, `b`) but the first row has 3 fields"
        );
        // Without a .meta, header-less columns are numbered.
        let t = read_typed(
            "1,2\n",
            b',',
            "n.csv",
            &Declared {
                header: Some(false),
                ..Declared::default()
            },
        )
        .expect("numbered");
        assert_eq!(t.names().collect::<Vec<_>>(), ["0", "1"]);
    }

    #[test]
    fn a_column_is_typed_by_the_part_a_check_reads() {
        // Numbers for the file's first MiB, then a word.
        let rows = super::super::SAMPLE_BYTES / 4 + 10;
        let mut text = String::from("temp\n");
        for i in 0..rows {
            text.push_str(&format!("{}.5\n", i % 1000));
        }
        text.push_str("n/a\n");
        let err = read(&text, b',', "big.csv").expect_err("text after numbers");
        // The header and the last row the sample may hold only in part are out.
        let sampled = text[..super::super::SAMPLE_BYTES].matches('\n').count() - 2;
        assert_eq!(
            err,
            format!("big.csv:{}: column `temp`: \"n/a\" is not a number (float64), the type of the column's first {} rows (rtl types a column by the file's first MiB, as `rtl check` reads it); to read the column as text, give the task \"types\": {{\"temp\": \"utf8\"}}", rows + 2, thousands(sampled))
        );
        let t =
            read_typed(&text, b',', "big.csv", &typed(&[("temp", DType::Utf8)])).expect("as text");
        assert_eq!(t.rows(), rows + 1);
    }

    /// What a check reads of `text`, and the table it makes of it.
    fn sampled(text: &str, declared: &Declared) -> Result<Table, String> {
        let (head, whole) = super::super::text_head(text.as_bytes(), true).expect("head");
        let head = std::str::from_utf8(&head).expect("utf8");
        read_text(head, b',', "s.csv", declared, whole)
    }

    #[test]
    fn a_check_and_a_run_type_a_column_alike_wherever_the_sample_ends() {
        let big = super::super::SAMPLE_BYTES;
        // A quoted field with line breaks across the sample's end.
        let mut text = String::from("n,note\n");
        while text.len() < big - 10 {
            text.push_str("1,plain\n");
        }
        text.push_str("2,\"one\ntwo\nthree\nfour\"\n3,x\n");
        let sample = sampled(&text, &Declared::default()).expect("sample");
        let full = read(&text, b',', "s.csv").expect("full");
        assert_eq!(full.rows(), (big - 10) / 8 + 2);
        assert_eq!(sample.column("n").map(Column::dtype), Some(DType::Int64));
        assert_eq!(full.column("n").map(Column::dtype), Some(DType::Int64));

        // A header row longer than the first MiB: the sample reads on to a row.
        let names: Vec<String> = (0..big / 5).map(|i| format!("c{i:04}")).collect();
        let row = vec!["7"; names.len()].join(",");
        let text = format!("{}\n{row}\n{row}\n{row}\n", names.join(","));
        let sample = sampled(&text, &Declared::default()).expect("wide sample");
        assert_eq!(sample.width(), names.len());
        assert_eq!(
            sample.column("c0000").map(Column::dtype),
            Some(DType::Int64)
        );
        let full = read(&text, b',', "s.csv").expect("wide");
        assert_eq!(
            (full.rows(), full.column("c0009").map(Column::dtype)),
            (3, Some(DType::Int64))
        );
    }

    #[test]
    fn a_check_reads_at_most_64_mib_whatever_the_stream_holds() {
        use std::io::Read;
        // A stream with no line end (a compressed one may inflate to any
        // size): the check stops, it does not read it all.
        let endless = std::io::repeat(b'a').take(1 << 40);
        let err = super::super::text_head(endless, true).expect_err("no line end");
        assert!(
            err.to_string().contains("no line ends in its first 64 MiB"),
            "{err}"
        );
    }

    #[test]
    fn a_quote_never_closed_is_an_error_not_the_rest_of_the_file() {
        let err = read("a,b\n1,\"x\n2,y\n3,z\n", b',', "q.csv").expect_err("open quote");
        assert_eq!(
            err,
            "q.csv:2: a quoted field opened on this line is never closed"
        );
        let err = read("a,b\n\"1,x\n2,y\n", b',', "q.csv").expect_err("open quote");
        assert_eq!(
            err,
            "q.csv:2: a quoted field opened on this line is never closed"
        );
        // A quote inside a field, and an escaped one, open nothing.
        let t = read("a,b\n1,5\"\n2,\"say \"\"hi\"\"\"\n", b',', "q.csv").expect("inch");
        assert_eq!(t.column("b"), Some(&Column::text(&["5\"", "say \"hi\""])));
    }

    #[test]
    fn the_originals_layout_round_trips_bools_and_empty_tables() {
        let columns = [("k", DType::Int64), ("ok", DType::Bool)];
        let table = Table::from_columns(vec![
            ("k".into(), Column::Int64(ndarray::array![1, 2])),
            ("ok".into(), Column::Bool(ndarray::array![true, false])),
        ])
        .expect("table");
        let mut out = Vec::new();
        write(&table, b',', false, &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(text, "1,1\n2,0\n", "as numpy's savetxt writes a bool");
        assert_eq!(
            read_typed(&text, b',', "m.csv", &meta(&columns)),
            Ok(table.clone())
        );
        // No rows: the .meta's columns.
        let empty = read_typed("", b',', "m.csv", &meta(&columns)).expect("empty");
        assert_eq!(empty, table.take(&[]));
    }

    #[test]
    fn a_fraction_late_in_an_integer_column_asks_for_float64() {
        let mut text = String::from("n\n");
        while text.len() < super::super::SAMPLE_BYTES + 10 {
            text.push_str("12\n");
        }
        text.push_str("2.5\n");
        let err = read(&text, b',', "f.csv").expect_err("fraction");
        assert!(
            err.ends_with(
                "to read the column as numbers, give the task \"types\": {\"n\": \"float64\"}"
            ),
            "{err}"
        );
    }

    #[test]
    fn declared_types_win_and_bad_cells_name_their_line() {
        let declared = typed(&[("a", DType::Float64), ("b", DType::Utf8)]);
        let t = read_typed("a,b,c\n1,2,3\n", b',', "d.csv", &declared).expect("typed");
        let types: Vec<DType> = t.iter().map(|(_, c)| c.dtype()).collect();
        assert_eq!(types, [DType::Float64, DType::Utf8, DType::Int64]);
        let declared = typed(&[("a", DType::Int64)]);
        let err = read_typed("a\n1\n\n2.5\n", b',', "d.csv", &declared).expect_err("bad cell");
        assert_eq!(
            err,
            "d.csv:4: column `a`: \"2.5\" is not an integer (int64)"
        );
        let declared = typed(&[("zz", DType::Int64)]);
        let err = read_typed("a\n1\n", b',', "d.csv", &declared).expect_err("unknown column");
        assert!(err.contains("column `zz`"), "{err}");
    }

    #[test]
    fn line_numbers_count_blank_lines_quoted_breaks_and_every_line_end() {
        // A byte-order mark, a quoted line break, a blank line, and lines
        // ended by \r\n, \n and a lone \r.
        let text = "\u{feff}a,b\r\n\"x\ny\",1\n\n2,2\r3,\"5\"\r\n4,bad\n";
        let declared = typed(&[("b", DType::Int64)]);
        let err = read_typed(text, b',', "l.csv", &declared).expect_err("bad cell");
        assert_eq!(
            err,
            "l.csv:7: column `b`: \"bad\" is not an integer (int64)"
        );
        let t = read(text, b',', "l.csv").expect("read");
        assert_eq!(t.names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(t.rows(), 4);
        match t.column("a") {
            Some(Column::Utf8(a)) => assert_eq!(a[0], "x\ny"),
            other => panic!("unexpected {other:?}"),
        }
        let err = read("a,b\n1,2\n\n3\n", b',', "r.csv").expect_err("ragged");
        assert_eq!(err, "r.csv:4: row has 1 field but the header has 2");
        let err = read("a,b\n1,2\n\"3,4\n5,6\n", b',', "u.csv").expect_err("unclosed");
        assert_eq!(
            err,
            "u.csv:3: a quoted field opened on this line is never closed"
        );
    }

    #[test]
    fn written_text_is_quoted_only_where_it_must_be() {
        let t = Table::from_columns(vec![(
            "say".into(),
            Column::Utf8(ndarray::array![
                "plain".to_string(),
                "a,b".to_string(),
                "q\"uote".to_string(),
                "two\nlines".to_string(),
                "cr\r".to_string(),
            ]),
        )])
        .expect("table");
        let mut out = Vec::new();
        write(&t, b',', true, &mut out).expect("write");
        assert_eq!(
            String::from_utf8(out.clone()).expect("utf8"),
            "say\nplain\n\"a,b\"\n\"q\"\"uote\"\n\"two\nlines\"\n\"cr\r\"\n"
        );
        let back = read(std::str::from_utf8(&out).expect("utf8"), b',', "w.csv").expect("read");
        assert_eq!(back, t);
    }

    #[test]
    fn crlf_and_other_delimiters() {
        let t = read("a;b\r\n1;2\r\n", b';', "semi.csv").expect("read");
        assert_eq!(t.rows(), 1);
        assert_eq!(t.column("b"), Some(&Column::Int64(ndarray::array![2])));
    }
}
