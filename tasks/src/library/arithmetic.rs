//! `add`, `subtract`, `multiply`, `divide`, `power`
//! `{operations: [{a, b, column}]}`: `column = a op b` as float64, where `a`
//! and `b` are each a column name or a number. Operations run in order, so a
//! later one may use a column an earlier one made. Floating point follows
//! IEEE, as numpy does: x/0 is inf or nan, a negative to a fractional power
//! is nan; neither is an error.

use super::operand::{at, combine, Operand, Operations};
use crate::{decodes, kwargs, Column, Role, Table, TaskSpec};
use serde::Deserialize;
use serde_json::Value;

pub(crate) const ADD: TaskSpec = TaskSpec {
    name: "add",
    aliases: &[],
    about: "column = a + b (columns or numbers), float64",
    kernel: |t, a, _| arithmetic(t, a, |x, y| x + y),
    kwargs: "operations: list of {a, b, column}, run in order (later ones may use earlier columns)\n  a, b: a column name or a number\n  column: the float64 column to write, a + b row by row (replaced if it exists)",
    example: r#"{"operations": [{"a": "x", "b": "y", "column": "total"}, {"a": "total", "b": 2, "column": "total"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: true,
    ignored: &[],
    reduce: None,
};

pub(crate) const SUBTRACT: TaskSpec = TaskSpec {
    name: "subtract",
    aliases: &[],
    about: "column = a - b (columns or numbers), float64",
    kernel: |t, a, _| arithmetic(t, a, |x, y| x - y),
    kwargs: "operations: list of {a, b, column}, run in order (later ones may use earlier columns)\n  a, b: a column name or a number\n  column: the float64 column to write, a - b row by row",
    example: r#"{"operations": [{"a": "x", "b": "y", "column": "gap"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: true,
    ignored: &[],
    reduce: None,
};

pub(crate) const MULTIPLY: TaskSpec = TaskSpec {
    name: "multiply",
    aliases: &[],
    about: "column = a * b (columns or numbers), float64",
    kernel: |t, a, _| arithmetic(t, a, |x, y| x * y),
    kwargs: "operations: list of {a, b, column}, run in order (later ones may use earlier columns)\n  a, b: a column name or a number\n  column: the float64 column to write, a * b row by row",
    example: r#"{"operations": [{"a": "x", "b": 1000, "column": "x_milli"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: true,
    ignored: &[],
    reduce: None,
};

pub(crate) const DIVIDE: TaskSpec = TaskSpec {
    name: "divide",
    aliases: &[],
    about: "column = a / b (columns or numbers), float64; x/0 is inf or nan",
    kernel: |t, a, _| arithmetic(t, a, |x, y| x / y),
    kwargs: "operations: list of {a, b, column}, run in order (later ones may use earlier columns)\n  a, b: a column name or a number\n  column: the float64 column to write, a / b row by row (x / 0 is inf or -inf, 0 / 0 nan)",
    example: r#"{"operations": [{"a": "x", "b": "y", "column": "ratio"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: true,
    ignored: &[],
    reduce: None,
};

pub(crate) const POWER: TaskSpec = TaskSpec {
    name: "power",
    aliases: &[],
    about: "column = a ** b (columns or numbers), float64",
    kernel: |t, a, _| arithmetic(t, a, f64::powf),
    kwargs: "operations: list of {a, b, column}, run in order (later ones may use earlier columns)\n  a: base, b: exponent (a column name or a number)\n  column: the float64 column to write, a ** b row by row as numpy.power in float64 (0 ** -1 is inf, a negative base to a fractional power nan)",
    example: r#"{"operations": [{"a": "x", "b": 2, "column": "x_squared"}]}"#,
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
    a: Operand,
    b: Operand,
    column: String,
}

fn arithmetic(
    mut table: Table,
    args: &Value,
    op: impl Fn(f64, f64) -> f64 + Copy,
) -> Result<Table, String> {
    let Operations { operations } = kwargs::<Kwargs>(args)?;
    for (i, o) in operations.into_iter().enumerate() {
        let a = o.a.resolve(&table).map_err(at(i))?;
        let b = o.b.resolve(&table).map_err(at(i))?;
        let out = combine(&a, &b, table.rows(), op);
        table
            .set_column(o.column, Column::Float64(out))
            .map_err(at(i))?;
    }
    Ok(table)
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
            ("i".into(), Column::Int64(array![1, 2, 3])),
            ("f".into(), Column::Float64(array![0.5, 0.0, -2.0])),
            ("s".into(), Column::text(&["a", "b", "c"])),
        ])
        .expect("table")
    }

    fn run(spec: &TaskSpec, args: serde_json::Value) -> Result<Table, String> {
        (spec.kernel)(table(), &args, &Context::new(Path::new(".")))
    }

    fn col(t: &Table, name: &str) -> Vec<f64> {
        match t.column(name) {
            Some(Column::Float64(a)) => a.to_vec(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn columns_and_numbers_in_either_place() {
        let t = run(&ADD, json!({"operations": [{"a": "i", "b": "f", "column": "x"}, {"a": 10, "b": "x", "column": "y"}]}))
            .expect("add");
        assert_eq!(col(&t, "x"), [1.5, 2.0, 1.0]);
        assert_eq!(col(&t, "y"), [11.5, 12.0, 11.0]);
        let t = run(
            &SUBTRACT,
            json!({"operations": [{"a": "i", "b": 1, "column": "i"}]}),
        )
        .expect("subtract");
        assert_eq!(
            col(&t, "i"),
            [0.0, 1.0, 2.0],
            "replaces in place, as float64"
        );
        assert_eq!(t.names().collect::<Vec<_>>(), ["i", "f", "s"]);
        let t = run(
            &MULTIPLY,
            json!({"operations": [{"a": 2, "b": 3, "column": "k"}]}),
        )
        .expect("multiply");
        assert_eq!(col(&t, "k"), [6.0, 6.0, 6.0]);
    }

    #[test]
    fn ieee_division_and_powers() {
        let t = run(&DIVIDE, json!({"operations": [{"a": "i", "b": "f", "column": "q"}, {"a": "f", "b": 0, "column": "z"}]}))
            .expect("divide");
        assert_eq!(col(&t, "q"), [2.0, f64::INFINITY, -1.5]);
        let z = col(&t, "z");
        assert_eq!((z[0], z[2]), (f64::INFINITY, f64::NEG_INFINITY));
        assert!(z[1].is_nan(), "0/0 is nan");
        let t = run(&POWER, json!({"operations": [{"a": "f", "b": 0.5, "column": "p"}, {"a": "i", "b": 2, "column": "sq"}]}))
            .expect("power");
        assert!(col(&t, "p")[2].is_nan());
        assert_eq!(col(&t, "sq"), [1.0, 4.0, 9.0]);
    }

    #[test]
    fn bad_columns_are_named() {
        let err = run(
            &ADD,
            json!({"operations": [{"a": "i", "b": "nope", "column": "x"}]}),
        )
        .expect_err("missing");
        assert!(
            err.starts_with("operations[0]: no column `nope`; available columns: i (int64)"),
            "{err}"
        );
        let err = run(
            &ADD,
            json!({"operations": [{"a": "s", "b": 1, "column": "x"}]}),
        )
        .expect_err("utf8");
        assert!(err.contains("column `s` is utf8"), "{err}");
        let err = run(
            &ADD,
            json!({"operations": [{"a": true, "b": 1, "column": "x"}]}),
        )
        .expect_err("bool operand");
        assert!(err.contains("a column name or a number"), "{err}");
    }

    #[test]
    fn empty_table_gives_empty_column() {
        let empty =
            Table::from_columns(vec![("f".into(), Column::Float64(array![]))]).expect("table");
        let t = (ADD.kernel)(
            empty,
            &json!({"operations": [{"a": "f", "b": 1, "column": "x"}]}),
            &Context::new(Path::new(".")),
        )
        .expect("add");
        assert_eq!(t.column("x"), Some(&Column::Float64(array![])));
    }
}
