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

use crate::table::{Column, DType, Table};
use ndarray::Array1;
use std::io::{self, Write};

/// Parses CSV text with a header row, inferring each column's type.
/// `origin` names the file in errors.
pub fn read(text: &str, delimiter: u8, origin: &str) -> Result<Table, String> {
    read_typed(text, delimiter, origin, &[])
}

/// Parses CSV text with a header row; the columns named in `declared` get
/// that type (a cell that does not parse as it is an error naming its
/// line), the others are inferred.
pub fn read_typed(
    text: &str,
    delimiter: u8,
    origin: &str,
    declared: &[(String, DType)],
) -> Result<Table, String> {
    // The text is already UTF-8 (the caller says where it is not), so a
    // record cannot fail to decode.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    // Where each record starts, as a byte offset: the reader's own line
    // count leaves out the blank lines it skips.
    let mut records = reader.records().map(|record| {
        record
            .map(|r| (r.position().map_or(0, |p| p.byte() as usize), r))
            .map_err(|e| format!("{origin}: {e}"))
    });
    let header = match records.next() {
        Some(record) => record?.1,
        None => {
            return Err(format!(
                "{origin}: the file is empty; expected a header row naming the columns"
            ))
        }
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    if let Some((name, _)) = declared.iter().find(|(n, _)| !header.contains(n)) {
        return Err(format!(
            "{origin}: the types name column `{name}`, which the header does not have"
        ));
    }
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); header.len()];
    let mut starts = Vec::new();
    let line = |byte: usize| line_at(text, byte);
    for record in records {
        let (start, fields) = record?;
        if fields.len() == 1 && fields[0].is_empty() {
            continue; // `""` alone on its line: no row
        }
        if fields.len() != header.len() {
            // The reader takes a quote that is never closed to run to the
            // end of the file: say so rather than count its fields.
            if text[start.min(text.len())..].matches('"').count() % 2 == 1 {
                return Err(format!(
                    "{origin}:{}: a quoted field opened on this line is never closed",
                    line(start)
                ));
            }
            return Err(format!(
                "{origin}:{}: row has {} fields but the header has {}",
                line(start),
                fields.len(),
                header.len()
            ));
        }
        for (column, field) in cells.iter_mut().zip(fields.iter()) {
            column.push(field.to_string());
        }
        starts.push(start);
    }
    let columns = header
        .into_iter()
        .zip(cells)
        .map(|(name, values)| {
            let column = match declared.iter().find(|(n, _)| *n == name) {
                Some((_, dtype)) => convert(values, *dtype).map_err(|(row, value)| {
                    format!(
                        "{origin}:{}: column `{name}`: {value:?} is not {}",
                        line(starts[row]),
                        expected(*dtype)
                    )
                })?,
                None => infer(values),
            };
            Ok((name, column))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Table::from_columns(columns).map_err(|e| format!("{origin}: {e}"))
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

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Writes `table` as CSV with a header row.
pub fn write(table: &Table, delimiter: u8, out: &mut dyn Write) -> io::Result<()> {
    let mut writer = ::csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(::csv::Terminator::Any(b'\n'))
        .from_writer(out);
    writer.write_record(table.names())?;
    let columns: Vec<&Column> = table.iter().map(|(_, c)| c).collect();
    let mut number = String::new();
    for row in 0..table.rows() {
        for column in &columns {
            number.clear();
            let field: &str = match column {
                Column::Utf8(a) => &a[row],
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

fn infer(values: Vec<String>) -> Column {
    let has_values = values.iter().any(|v| !v.trim().is_empty());
    for dtype in [DType::Int64, DType::Float64, DType::Bool] {
        if values.is_empty() || (dtype == DType::Float64 && !has_values) {
            continue;
        }
        if let Ok(column) = parse_as(&values, dtype) {
            return column;
        }
    }
    Column::Utf8(Array1::from(values))
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
    fn ragged_rows_name_file_and_line() {
        let err = read("a,b\n1,2\n3\n", b',', "data.csv").expect_err("ragged");
        assert_eq!(err, "data.csv:3: row has 1 fields but the header has 2");
        let err = read("", b',', "empty.csv").expect_err("empty");
        assert!(err.contains("empty.csv") && err.contains("empty"), "{err}");
    }

    #[test]
    fn write_then_read_round_trips() {
        let text = "id,x,ok,name\n1,0.1,true,plain\n2,1e-7,false,\"with,comma\"\n3,1.0,true,\"q\"\"uote\"\n";
        let t = read(text, b',', "r.csv").expect("read");
        let mut out = Vec::new();
        write(&t, b',', &mut out).expect("write");
        assert_eq!(String::from_utf8(out.clone()).expect("utf8"), text);
        let back = read(std::str::from_utf8(&out).expect("utf8"), b',', "r.csv").expect("reread");
        assert_eq!(back, t);
    }

    #[test]
    fn declared_types_win_and_bad_cells_name_their_line() {
        let declared = vec![
            ("a".to_string(), DType::Float64),
            ("b".to_string(), DType::Utf8),
        ];
        let t = read_typed("a,b,c\n1,2,3\n", b',', "d.csv", &declared).expect("typed");
        let types: Vec<DType> = t.iter().map(|(_, c)| c.dtype()).collect();
        assert_eq!(types, [DType::Float64, DType::Utf8, DType::Int64]);
        let declared = vec![("a".to_string(), DType::Int64)];
        let err = read_typed("a\n1\n\n2.5\n", b',', "d.csv", &declared).expect_err("bad cell");
        assert_eq!(
            err,
            "d.csv:4: column `a`: \"2.5\" is not an integer (int64)"
        );
        let declared = vec![("zz".to_string(), DType::Int64)];
        let err = read_typed("a\n1\n", b',', "d.csv", &declared).expect_err("unknown column");
        assert!(err.contains("column `zz`"), "{err}");
    }

    #[test]
    fn line_numbers_count_blank_lines_quoted_breaks_and_every_line_end() {
        // A byte-order mark, a quoted line break, a blank line, and lines
        // ended by \r\n, \n and a lone \r.
        let text = "\u{feff}a,b\r\n\"x\ny\",1\n\n2,2\r3,\"5\"\r\n4,bad\n";
        let declared = vec![("b".to_string(), DType::Int64)];
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
        assert_eq!(err, "r.csv:4: row has 1 fields but the header has 2");
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
        write(&t, b',', &mut out).expect("write");
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
