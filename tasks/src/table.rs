//! The columnar [`Table`]: named, typed columns of equal length on `ndarray`.
//!
//! Tables are what flows between tasks, stages and processes. Column data is
//! held in contiguous `Array1`s so kernels work on whole columns and the wire
//! can send a column's memory as it is.

use ndarray::Array1;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// The type of a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 64-bit signed integers.
    Int64,
    /// 64-bit floats.
    Float64,
    /// true or false.
    Bool,
    /// Text.
    Utf8,
}

impl DType {
    /// The name rtl prints: `int64`, `float64`, `bool` or `utf8`.
    pub fn name(self) -> &'static str {
        match self {
            DType::Int64 => "int64",
            DType::Float64 => "float64",
            DType::Bool => "bool",
            DType::Utf8 => "utf8",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One column's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// 64-bit signed integers.
    Int64(Array1<i64>),
    /// 64-bit floats.
    Float64(Array1<f64>),
    /// true or false.
    Bool(Array1<bool>),
    /// Text.
    Utf8(Array1<String>),
}

impl Column {
    /// Rows in the column.
    pub fn len(&self) -> usize {
        match self {
            Column::Int64(a) => a.len(),
            Column::Float64(a) => a.len(),
            Column::Bool(a) => a.len(),
            Column::Utf8(a) => a.len(),
        }
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The type of its values.
    pub fn dtype(&self) -> DType {
        match self {
            Column::Int64(_) => DType::Int64,
            Column::Float64(_) => DType::Float64,
            Column::Bool(_) => DType::Bool,
            Column::Utf8(_) => DType::Utf8,
        }
    }

    /// A utf8 column of `values`.
    pub fn text(values: &[&str]) -> Column {
        Column::Utf8(values.iter().map(|v| v.to_string()).collect())
    }

    /// The values as float64 (int64 converted by value); None for bool and
    /// utf8 columns.
    pub fn as_f64(&self) -> Option<Cow<'_, Array1<f64>>> {
        match self {
            Column::Float64(a) => Some(Cow::Borrowed(a)),
            Column::Int64(a) => Some(Cow::Owned(a.mapv(|v| v as f64))),
            Column::Bool(_) | Column::Utf8(_) => None,
        }
    }

    /// Values `start..end`, copied in one piece (unlike [`Column::take`],
    /// which gathers row by row).
    pub fn slice(&self, start: usize, end: usize) -> Column {
        let range = ndarray::s![start..end];
        match self {
            Column::Int64(a) => Column::Int64(a.slice(range).to_owned()),
            Column::Float64(a) => Column::Float64(a.slice(range).to_owned()),
            Column::Bool(a) => Column::Bool(a.slice(range).to_owned()),
            Column::Utf8(a) => Column::Utf8(a.slice(range).to_owned()),
        }
    }

    /// The values at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> Column {
        fn pick<T: Clone>(a: &Array1<T>, rows: &[usize]) -> Array1<T> {
            rows.iter().map(|&i| a[i].clone()).collect()
        }
        match self {
            Column::Int64(a) => Column::Int64(pick(a, rows)),
            Column::Float64(a) => Column::Float64(pick(a, rows)),
            Column::Bool(a) => Column::Bool(pick(a, rows)),
            Column::Utf8(a) => Column::Utf8(pick(a, rows)),
        }
    }

    /// Bytes this column occupies on the wire (see docs/PROTOCOL.md).
    pub fn wire_size(&self) -> usize {
        crate::codec::wire_size_of_rows(self, 0, self.len())
    }
}

/// An ordered list of named columns of equal length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    columns: Vec<(String, Column)>,
}

/// What differs between the first piece of a table and piece `index`
/// (from 0), in words; None when their columns are the same. Pieces differ
/// when a task gives columns that depend on its rows, and ran on chunks.
pub fn schema_difference(
    first: &[(String, DType)],
    other: &[(String, DType)],
    index: usize,
) -> Option<String> {
    if first == other {
        return None;
    }
    let named = |s: &[(String, DType)]| {
        s.iter()
            .map(|(n, t)| format!("`{n}` ({t})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let what = first.iter().zip(other).find(|(a, b)| a != b).map_or_else(
        || {
            format!(
                "{} columns where the first has {}",
                other.len(),
                first.len()
            )
        },
        |((n1, t1), (n2, t2))| {
            if n1 == n2 {
                format!("`{n2}` as {t2} where the first has {t1}")
            } else {
                format!("`{n2}` where the first has `{n1}`")
            }
        },
    );
    Some(format!(
        "the pieces of the table differ: piece {} of it has {what} (its columns: {}; the first's: {}); a task run on chunks must give every chunk the same columns of the same types",
        index + 1,
        named(other),
        named(first)
    ))
}

impl Table {
    /// A table with no columns and no rows.
    pub fn new() -> Table {
        Table::default()
    }

    /// Builds a table, checking that names are unique and lengths agree.
    pub fn from_columns(columns: Vec<(String, Column)>) -> Result<Table, String> {
        // A set, not a search of the table per column: tables may have
        // tens of thousands of columns.
        let mut seen = std::collections::HashSet::with_capacity(columns.len());
        let rows = columns.first().map(|(_, c)| c.len());
        for (name, column) in &columns {
            if !seen.insert(name.as_str()) {
                return Err(format!("column `{name}` appears twice"));
            }
            if Some(column.len()) != rows {
                return Err(format!(
                    "column `{name}` has {} rows but the table has {}",
                    column.len(),
                    rows.unwrap_or(0)
                ));
            }
        }
        Ok(Table { columns })
    }

    /// Number of rows (0 for a table without columns).
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    /// Columns in the table.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// Column names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(n, _)| n.as_str())
    }

    /// The column named `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// The column called `name`, or an error naming it and listing the
    /// columns there are.
    pub fn require(&self, name: &str) -> Result<&Column, String> {
        self.column(name).ok_or_else(|| {
            let hint = crate::closest(name, self.names())
                .map_or(String::new(), |c| format!(" did you mean {c}?"));
            format!("no column `{name}`;{hint} {}", self.describe_columns())
        })
    }

    /// The column called `name` as float64, or an error when it is missing
    /// or not a number column.
    pub fn numeric(&self, name: &str) -> Result<Cow<'_, Array1<f64>>, String> {
        let column = self.require(name)?;
        column.as_f64().ok_or_else(|| {
            format!(
                "column `{name}` is {}, but this needs a number column (int64 or float64)",
                column.dtype()
            )
        })
    }

    /// A table of the rows at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> Table {
        Table {
            columns: self
                .columns
                .iter()
                .map(|(n, c)| (n.clone(), c.take(rows)))
                .collect(),
        }
    }

    /// Rows `start..end` as a table of their own.
    pub fn slice(&self, start: usize, end: usize) -> Table {
        let end = end.min(self.rows());
        let start = start.min(end);
        Table {
            columns: self
                .columns
                .iter()
                .map(|(n, c)| (n.clone(), c.slice(start, end)))
                .collect(),
        }
    }

    /// The rows of `parts`, one after another; every part must have the
    /// same columns, in the same order, of the same types.
    pub fn concat(parts: Vec<Table>) -> Result<Table, String> {
        let Some(first) = parts.first() else {
            return Ok(Table::new());
        };
        if parts.len() == 1 {
            return Ok(parts.into_iter().next().unwrap_or_default());
        }
        let schema = first.schema();
        for (index, part) in parts.iter().enumerate().skip(1) {
            if let Some(why) = schema_difference(&schema, &part.schema(), index) {
                return Err(why);
            }
        }
        let rows: usize = parts.iter().map(Table::rows).sum();
        // Each column is written once, into storage of its final size.
        let mut pieces: Vec<std::vec::IntoIter<(String, Column)>> =
            parts.into_iter().map(|p| p.columns.into_iter()).collect();
        let mut columns = Vec::with_capacity(schema.len());
        for (name, dtype) in schema {
            let column: Vec<Column> = pieces
                .iter_mut()
                .filter_map(|p| p.next().map(|(_, c)| c))
                .collect();
            fn join<T: Clone>(
                parts: &[Column],
                rows: usize,
                get: impl Fn(&Column) -> Option<&Array1<T>>,
            ) -> Array1<T> {
                let mut out = Vec::with_capacity(rows);
                for a in parts.iter().filter_map(get) {
                    match a.as_slice() {
                        Some(s) => out.extend_from_slice(s),
                        None => out.extend(a.iter().cloned()),
                    }
                }
                Array1::from_vec(out)
            }
            let joined = match dtype {
                DType::Int64 => Column::Int64(join(&column, rows, |c| match c {
                    Column::Int64(a) => Some(a),
                    _ => None,
                })),
                DType::Float64 => Column::Float64(join(&column, rows, |c| match c {
                    Column::Float64(a) => Some(a),
                    _ => None,
                })),
                DType::Bool => Column::Bool(join(&column, rows, |c| match c {
                    Column::Bool(a) => Some(a),
                    _ => None,
                })),
                DType::Utf8 => Column::Utf8(join(&column, rows, |c| match c {
                    Column::Utf8(a) => Some(a),
                    _ => None,
                })),
            };
            columns.push((name, joined));
        }
        Ok(Table { columns })
    }

    /// Removes the column called `name`; returns it if it was there.
    pub fn remove_column(&mut self, name: &str) -> Option<Column> {
        let at = self.columns.iter().position(|(n, _)| n == name)?;
        Some(self.columns.remove(at).1)
    }

    /// Columns with their names, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Column)> {
        self.columns.iter().map(|(n, c)| (n.as_str(), c))
    }

    /// The columns with their names, in order, taking the table apart.
    pub fn into_columns(self) -> Vec<(String, Column)> {
        self.columns
    }

    /// `(name, dtype)` of every column, in order.
    pub fn schema(&self) -> Vec<(String, DType)> {
        self.columns
            .iter()
            .map(|(n, c)| (n.clone(), c.dtype()))
            .collect()
    }

    /// Replaces the column called `name` in place, or appends it.
    pub fn set_column(&mut self, name: impl Into<String>, column: Column) -> Result<(), String> {
        let name = name.into();
        let at = self.columns.iter().position(|(n, _)| *n == name);
        let others = self.columns.len() - usize::from(at.is_some());
        if others > 0 && column.len() != self.rows() {
            return Err(format!(
                "column `{name}` has {} rows but the table has {}",
                column.len(),
                self.rows()
            ));
        }
        match at {
            Some(i) => self.columns[i].1 = column,
            None => self.columns.push((name, column)),
        }
        Ok(())
    }

    /// Bytes the table occupies on the wire.
    pub fn wire_size(&self) -> usize {
        self.columns.iter().map(|(_, c)| c.wire_size()).sum()
    }

    /// "available columns: a (int64), b (float64)" for error messages.
    pub fn describe_columns(&self) -> String {
        if self.columns.is_empty() {
            return "the table has no columns".into();
        }
        let list: Vec<String> = self
            .columns
            .iter()
            .map(|(n, c)| format!("{n} ({})", c.dtype()))
            .collect();
        format!("available columns: {}", list.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn set_column_replaces_in_place_or_appends() {
        let mut t = Table::from_columns(vec![
            ("a".into(), Column::Int64(array![1, 2])),
            ("b".into(), Column::Float64(array![0.5, 1.5])),
        ])
        .expect("table");
        t.set_column("a", Column::Bool(array![true, false]))
            .expect("replace");
        t.set_column("c", Column::Int64(array![7, 8]))
            .expect("append");
        let names: Vec<_> = t.names().collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(t.column("a").map(Column::dtype), Some(DType::Bool));
    }

    #[test]
    fn lengths_and_names_are_checked() {
        let mut t =
            Table::from_columns(vec![("a".into(), Column::Int64(array![1, 2]))]).expect("table");
        let err = t
            .set_column("b", Column::Int64(array![1]))
            .expect_err("short column");
        assert!(err.contains("has 1 rows but the table has 2"), "{err}");
        let err = Table::from_columns(vec![
            ("a".into(), Column::Int64(array![1])),
            ("a".into(), Column::Int64(array![2])),
        ])
        .expect_err("duplicate");
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn missing_and_wrong_typed_columns_are_explained() {
        let t = Table::from_columns(vec![
            ("n".into(), Column::Int64(array![1, 2])),
            ("s".into(), Column::text(&["a", "b"])),
        ])
        .expect("table");
        assert_eq!(
            t.require("x").expect_err("missing"),
            "no column `x`; available columns: n (int64), s (utf8)"
        );
        let err = t.numeric("s").expect_err("utf8");
        assert!(err.contains("column `s` is utf8"), "{err}");
        assert_eq!(t.numeric("n").expect("int64").as_ref(), &array![1.0, 2.0]);
    }

    #[test]
    fn take_picks_rows_in_order() {
        let t = Table::from_columns(vec![("n".into(), Column::Int64(array![10, 20, 30]))])
            .expect("table");
        assert_eq!(
            t.take(&[2, 0, 2]).column("n"),
            Some(&Column::Int64(array![30, 10, 30]))
        );
        assert_eq!(t.take(&[]).rows(), 0);
    }

    #[test]
    fn slices_concatenate_back_to_the_table() {
        let t = Table::from_columns(vec![
            ("n".into(), Column::Int64(array![1, 2, 3, 4, 5])),
            ("s".into(), Column::text(&["a", "b", "c", "d", "e"])),
        ])
        .expect("table");
        let parts = vec![t.slice(0, 2), t.slice(2, 2), t.slice(2, 5)];
        assert_eq!(Table::concat(parts).expect("concat"), t);
        assert_eq!(t.slice(4, 99).rows(), 1);
        let other =
            Table::from_columns(vec![("n".into(), Column::Float64(array![1.0]))]).expect("table");
        assert!(Table::concat(vec![t.slice(0, 1), other]).is_err());
    }

    #[test]
    fn wire_size_counts_string_offsets() {
        let c = Column::text(&["ab", ""]);
        assert_eq!(c.wire_size(), 3 * 8 + 2);
    }
}
