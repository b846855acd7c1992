//! CSV in and out of a [`Table`]: RFC 4180 quoting, a header row, types
//! inferred per column.
//!
//! Reading infers each column's type from all its values: int64 when every
//! value is an integer, else float64 when every value is a number (an empty
//! cell is NaN), else bool when every value is true/false, else utf8. Writing
//! prints integers as integers and floats in the shortest form that reads back
//! to the same f64, so `write` then `read` gives the table back.

use crate::table::{Column, Table};
use ndarray::Array1;
use std::io::{self, Write};

/// Parses CSV text with a header row. `origin` names the file in errors.
pub fn read(text: &str, delimiter: u8, origin: &str) -> Result<Table, String> {
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
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); header.len()];
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
    }
    let columns = header
        .into_iter()
        .zip(cells)
        .map(|(name, values)| (name.trim().to_string(), infer(values)))
        .collect();
    Table::from_columns(columns).map_err(|e| format!("{origin}: {e}"))
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
    let ints: Option<Vec<i64>> = values.iter().map(|v| v.trim().parse().ok()).collect();
    if let Some(ints) = ints.filter(|_| !values.is_empty()) {
        return Column::Int64(Array1::from(ints));
    }
    let floats: Option<Vec<f64>> = values
        .iter()
        .map(|v| match v.trim() {
            "" => Some(f64::NAN),
            t => t.parse().ok(),
        })
        .collect();
    if let Some(floats) = floats.filter(|_| values.iter().any(|v| !v.trim().is_empty())) {
        return Column::Float64(Array1::from(floats));
    }
    let bools: Option<Vec<bool>> = values
        .iter()
        .map(|v| match v.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        })
        .collect();
    if let Some(bools) = bools.filter(|_| !values.is_empty()) {
        return Column::Bool(Array1::from(bools));
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
    use crate::table::DType;

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
    fn crlf_and_other_delimiters() {
        let t = read("a;b\r\n1;2\r\n", b';', "semi.csv").expect("read");
        assert_eq!(t.rows(), 1);
        assert_eq!(t.column("b"), Some(&Column::Int64(ndarray::array![2])));
    }
}
