//! CSV in and out of a [`Table`]: RFC 4180 quoting, a header row, types
//! inferred per column.
//!
//! Reading infers each column's type from all its values: int64 when every
//! value is an integer, else float64 when every value is a number (an empty
//! cell is NaN), else bool when every value is true/false, else utf8. Writing
//! prints integers as integers and floats in the shortest form that reads back
//! to the same f64, so `write` then `read` gives the table back.

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
    let mut records = Records::new(text, delimiter);
    let header = match records.next_record() {
        Some(Ok((_, h))) => h,
        Some(Err(e)) => return Err(format!("{origin}: {e}")),
        None => {
            return Err(format!(
                "{origin}: the file is empty; expected a header row naming the columns"
            ))
        }
    };
    let header: Vec<String> = header.into_iter().map(|h| h.trim().to_string()).collect();
    if let Some((name, _)) = declared.iter().find(|(n, _)| !header.contains(n)) {
        return Err(format!(
            "{origin}: the types name column `{name}`, which the header does not have"
        ));
    }
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); header.len()];
    let mut lines = Vec::new();
    while let Some(record) = records.next_record() {
        let (line, fields) = record.map_err(|e| format!("{origin}: {e}"))?;
        if fields.len() == 1 && fields[0].is_empty() {
            continue; // blank line
        }
        if fields.len() != header.len() {
            return Err(format!(
                "{origin}:{line}: row has {} fields but the header has {}",
                fields.len(),
                header.len()
            ));
        }
        for (column, field) in cells.iter_mut().zip(fields) {
            column.push(field);
        }
        lines.push(line);
    }
    let columns = header
        .into_iter()
        .zip(cells)
        .map(|(name, values)| {
            let column = match declared.iter().find(|(n, _)| *n == name) {
                Some((_, dtype)) => convert(values, *dtype).map_err(|(row, value)| {
                    format!(
                        "{origin}:{}: column `{name}`: {value:?} is not {}",
                        lines[row],
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
    let delim = delimiter as char;
    let mut line = String::new();
    for (i, name) in table.names().enumerate() {
        if i > 0 {
            line.push(delim);
        }
        push_text(&mut line, name, delim);
    }
    line.push('\n');
    out.write_all(line.as_bytes())?;
    let columns: Vec<&Column> = table.iter().map(|(_, c)| c).collect();
    for row in 0..table.rows() {
        line.clear();
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                line.push(delim);
            }
            push_value(&mut line, column, row, delim);
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

fn push_value(line: &mut String, column: &Column, row: usize, delim: char) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = match column {
        Column::Int64(a) => write!(line, "{}", a[row]),
        Column::Float64(a) => write!(line, "{:?}", a[row]),
        Column::Bool(a) => write!(line, "{}", a[row]),
        Column::Utf8(a) => {
            push_text(line, &a[row], delim);
            Ok(())
        }
    };
}

fn push_text(line: &mut String, text: &str, delim: char) {
    if text.contains([delim, '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&text.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(text);
    }
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

/// Splits CSV text into records, tracking the line each starts on.
struct Records<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    delimiter: u8,
}

impl<'a> Records<'a> {
    fn new(text: &'a str, delimiter: u8) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Records {
            text,
            pos: 0,
            line: 1,
            delimiter,
        }
    }

    fn next_record(&mut self) -> Option<Result<(usize, Vec<String>), String>> {
        let bytes = self.text.as_bytes();
        if self.pos >= bytes.len() {
            return None;
        }
        let start_line = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut i = self.pos;
        loop {
            // At the start of a field.
            if i < bytes.len() && bytes[i] == b'"' {
                i += 1;
                loop {
                    let Some(rel) = self.text[i..].find('"') else {
                        return Some(Err(format!("{start_line}: a quoted field is never closed")));
                    };
                    let chunk = &self.text[i..i + rel];
                    self.line += chunk.matches('\n').count();
                    field.push_str(chunk);
                    i += rel + 1;
                    if i < bytes.len() && bytes[i] == b'"' {
                        field.push('"');
                        i += 1;
                    } else {
                        break;
                    }
                }
                // Anything between the closing quote and the delimiter is kept.
                let end = self.text[i..]
                    .find(|c: char| c as u32 == self.delimiter as u32 || c == '\n' || c == '\r')
                    .map_or(bytes.len(), |r| i + r);
                field.push_str(&self.text[i..end]);
                i = end;
            } else {
                let end = self.text[i..]
                    .find(|c: char| c as u32 == self.delimiter as u32 || c == '\n' || c == '\r')
                    .map_or(bytes.len(), |r| i + r);
                field.push_str(&self.text[i..end]);
                i = end;
            }
            fields.push(std::mem::take(&mut field));
            if i < bytes.len() && bytes[i] == self.delimiter {
                i += 1;
                continue;
            }
            // End of record: \n, \r\n, \r or end of text.
            if i < bytes.len() && bytes[i] == b'\r' {
                i += 1;
            }
            if i < bytes.len() && bytes[i] == b'\n' {
                i += 1;
            }
            self.line += 1;
            self.pos = i;
            return Some(Ok((start_line, fields)));
        }
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
    fn crlf_and_other_delimiters() {
        let t = read("a;b\r\n1;2\r\n", b';', "semi.csv").expect("read");
        assert_eq!(t.rows(), 1);
        assert_eq!(t.column("b"), Some(&Column::Int64(ndarray::array![2])));
    }
}
