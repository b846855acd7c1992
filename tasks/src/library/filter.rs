//! `filter {operations: [{column, value, method}]}`: keeps the rows where
//! `column <method> value`, with methods `eq`, `ne`, `lt`, `le`, `gt`, `ge`
//! and a value that is a number, a string or a boolean. Operations apply in
//! order, so several of them AND together.
//!
//! `lt` keeps the rows less than the value, as the name says (raspi-rtl had
//! lt/le/gt/ge inverted). Numbers compare by value across int64 and float64,
//! exactly; a nan compares false with everything, so `ne` keeps it.

use super::operand::{at, Operations};
use crate::{decodes, kwargs, Column, Role, Table, TaskSpec};
use serde::Deserialize;
use serde_json::Value;
use std::cmp::Ordering;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "filter",
    aliases: &["filterRows"],
    about: "keeps the rows where column <eq|ne|lt|le|gt|ge> value",
    kernel: |t, a, _| run(t, a),
    kwargs: "operations: list of {column, method, value}, all must hold (AND)\n  column: the column to compare\n  method: eq | ne | lt | le | gt | ge (lt keeps rows less than value)\n  value: a number, string or boolean, matching the column's type; numbers compare by value across int64 and float64, text by bytes, false < true; a nan compares false with everything, so only ne keeps it",
    example: r#"{"operations": [{"column": "x", "method": "gt", "value": 0.5}, {"column": "site", "method": "ne", "value": "test"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: true,
    ignored: &[],
    reduce: None,
};

type Kwargs = Operations<Operation>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Operation {
    column: String,
    value: Value,
    method: Method,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Method {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Method {
    /// Whether a row comparing `ord` to the value is kept; None is an
    /// unordered comparison (nan).
    fn keeps(self, ord: Option<Ordering>) -> bool {
        match (self, ord) {
            (Method::Ne, None) => true,
            (_, None) => false,
            (Method::Eq, Some(o)) => o == Ordering::Equal,
            (Method::Ne, Some(o)) => o != Ordering::Equal,
            (Method::Lt, Some(o)) => o == Ordering::Less,
            (Method::Le, Some(o)) => o != Ordering::Greater,
            (Method::Gt, Some(o)) => o == Ordering::Greater,
            (Method::Ge, Some(o)) => o != Ordering::Less,
        }
    }
}

fn run(mut table: Table, args: &Value) -> Result<Table, String> {
    let Operations { operations } = kwargs::<Kwargs>(args)?;
    for (i, o) in operations.into_iter().enumerate() {
        let column = table.require(&o.column).map_err(at(i))?;
        let rows = matching(column, &o.value, o.method)
            .map_err(|e| at(i)(format!("column `{}`: {e}", o.column)))?;
        if rows.len() != table.rows() {
            table = table.take(&rows);
        }
    }
    Ok(table)
}

/// Indices of the rows of `column` that `method` keeps against `value`.
fn matching(column: &Column, value: &Value, method: Method) -> Result<Vec<usize>, String> {
    match (column, value) {
        (Column::Int64(a), Value::Number(n)) => {
            let rows = match n.as_i64() {
                Some(v) => positions(a.iter().map(|x| Some(x.cmp(&v))), method),
                None => {
                    let v = n.as_f64().unwrap_or(f64::NAN);
                    positions(a.iter().map(|x| cmp_int_float(*x, v)), method)
                }
            };
            Ok(rows)
        }
        (Column::Float64(a), Value::Number(n)) => {
            let v = n.as_f64().unwrap_or(f64::NAN);
            Ok(positions(a.iter().map(|x| x.partial_cmp(&v)), method))
        }
        (Column::Bool(a), Value::Bool(v)) => {
            Ok(positions(a.iter().map(|x| Some(x.cmp(v))), method))
        }
        (Column::Utf8(a), Value::String(v)) => Ok(positions(
            a.iter().map(|x| Some(x.as_str().cmp(v.as_str()))),
            method,
        )),
        (column, value) => Err(format!(
            "cannot compare {} values with {}; give {}",
            column.dtype(),
            describe(value),
            match column {
                Column::Int64(_) | Column::Float64(_) => "a number",
                Column::Bool(_) => "true or false",
                Column::Utf8(_) => "a string",
            }
        )),
    }
}

fn positions(ords: impl ExactSizeIterator<Item = Option<Ordering>>, method: Method) -> Vec<usize> {
    // Room for every row at once: growing by doubling would move the list
    // several times, each time onto fresh memory.
    let mut rows = Vec::with_capacity(ords.len());
    rows.extend(
        ords.enumerate()
            .filter(|(_, o)| method.keeps(*o))
            .map(|(i, _)| i),
    );
    rows
}

/// Exact order of an integer against a float (no rounding of large values).
pub(crate) fn cmp_int_float(x: i64, v: f64) -> Option<Ordering> {
    if v.is_nan() {
        return None;
    }
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if v >= TWO_63 {
        return Some(Ordering::Less);
    }
    if v < -TWO_63 {
        return Some(Ordering::Greater);
    }
    let whole = v.trunc();
    match x.cmp(&(whole as i64)) {
        Ordering::Equal => (whole).partial_cmp(&v),
        other => Some(other),
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    fn table() -> Table {
        Table::from_columns(vec![
            ("i".into(), Column::Int64(array![1, 2, 3, 4])),
            ("f".into(), Column::Float64(array![0.5, f64::NAN, 2.0, 3.5])),
            ("b".into(), Column::Bool(array![true, false, true, false])),
            ("s".into(), Column::text(&["x", "y", "x", "z"])),
        ])
        .expect("table")
    }

    fn kept(ops: Value) -> Result<Vec<i64>, String> {
        let t = (SPEC.kernel)(
            table(),
            &json!({"operations": ops}),
            &Context::new(Path::new(".")),
        )?;
        match t.column("i") {
            Some(Column::Int64(a)) => Ok(a.to_vec()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn methods_do_what_their_names_say() {
        let one = |column: &str, method: &str, value: Value| {
            kept(json!([{"column": column, "method": method, "value": value}])).expect("filter")
        };
        assert_eq!(one("i", "lt", json!(3)), [1, 2]);
        assert_eq!(one("i", "le", json!(3)), [1, 2, 3]);
        assert_eq!(
            one("i", "gt", json!(2.5)),
            [3, 4],
            "int against float by value"
        );
        assert_eq!(one("i", "ge", json!(2.0)), [2, 3, 4]);
        assert_eq!(one("i", "eq", json!(2.0)), [2]);
        assert_eq!(
            one("f", "ne", json!(2)),
            [1, 2, 4],
            "nan is not equal to anything"
        );
        assert_eq!(one("f", "lt", json!(100)), [1, 3, 4], "nan compares false");
        assert_eq!(one("b", "eq", json!(false)), [2, 4]);
        assert_eq!(one("s", "eq", json!("x")), [1, 3]);
        assert_eq!(one("s", "gt", json!("x")), [2, 4]);
    }

    #[test]
    fn operations_and_together() {
        let rows = kept(json!([
            {"column": "i", "method": "gt", "value": 1},
            {"column": "s", "method": "ne", "value": "z"}
        ]))
        .expect("filter");
        assert_eq!(rows, [2, 3]);
        assert_eq!(
            kept(json!([{"column": "i", "method": "gt", "value": 9}])).expect("none"),
            Vec::<i64>::new()
        );
    }

    #[test]
    fn mismatches_are_explained() {
        let err = kept(json!([{"column": "i", "method": "eq", "value": "2"}]))
            .expect_err("string on int");
        assert!(
            err.contains(
                "column `i`: cannot compare int64 values with the string \"2\"; give a number"
            ),
            "{err}"
        );
        let err =
            kept(json!([{"column": "i", "method": "approx", "value": 2}])).expect_err("method");
        assert!(err.contains("unknown value `approx`"), "{err}");
        let err = kept(json!([{"column": "q", "method": "eq", "value": 2}])).expect_err("missing");
        assert!(err.contains("no column `q`"), "{err}");
    }

    #[test]
    fn integers_compare_exactly_with_floats() {
        assert_eq!(
            cmp_int_float(i64::MAX, 9.223_372_036_854_776e18),
            Some(Ordering::Less)
        );
        assert_eq!(cmp_int_float(3, 2.5), Some(Ordering::Greater));
        assert_eq!(cmp_int_float(-3, -2.5), Some(Ordering::Less));
        assert_eq!(cmp_int_float(-2, -2.5), Some(Ordering::Greater));
        assert_eq!(cmp_int_float(2, f64::NAN), None);
    }
}
