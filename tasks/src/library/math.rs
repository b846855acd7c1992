//! `log`, `square_root` `{operations: [{a, column}]}`: the natural log and
//! the square root of column `a`, as float64. Following IEEE and numpy, the
//! log of 0 is -inf and of a negative is nan; so is the root of a negative.

use super::operand::{at, map, Operations};
use crate::{decodes, kwargs, Column, Role, Table, TaskSpec};
use serde::Deserialize;
use serde_json::Value;

pub(crate) const LOG: TaskSpec = TaskSpec {
    name: "log",
    aliases: &[],
    about: "column = natural log of a, float64",
    kernel: |t, a, _| unary(t, a, f64::ln),
    kwargs: "operations: list of {a, column}\n  a: a number column\n  column: the float64 column to write (natural log; log of 0 is -inf, of a negative nan)",
    example: r#"{"operations": [{"a": "x", "column": "log_x"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: true,
    ignored: &[],
    reduce: None,
};

pub(crate) const SQUARE_ROOT: TaskSpec = TaskSpec {
    name: "square_root",
    aliases: &["squareRoot"],
    about: "column = square root of a, float64",
    kernel: |t, a, _| unary(t, a, f64::sqrt),
    kwargs: "operations: list of {a, column}\n  a: a number column\n  column: the float64 column to write (the square root of a negative is nan)",
    example: r#"{"operations": [{"a": "x", "column": "root_x"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: true,
    ignored: &[],
    reduce: None,
};

/// `{operations: [{a, column}]}`, shared with `average`.
pub(crate) type Kwargs = Operations<Operation>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Operation {
    pub(crate) a: String,
    pub(crate) column: String,
}

fn unary(mut table: Table, args: &Value, op: impl Fn(f64) -> f64 + Copy) -> Result<Table, String> {
    let Operations { operations } = kwargs::<Kwargs>(args)?;
    for (i, o) in operations.into_iter().enumerate() {
        let out = map(table.numeric(&o.a).map_err(at(i))?.as_ref(), op);
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

    fn run(spec: &TaskSpec, table: Table, args: Value) -> Result<Table, String> {
        (spec.kernel)(table, &args, &Context::new(Path::new(".")))
    }

    #[test]
    fn log_and_root_follow_ieee() {
        let t = Table::from_columns(vec![("x".into(), Column::Int64(array![1, 0, -4]))])
            .expect("table");
        let t = run(&LOG, t, json!({"operations": [{"a": "x", "column": "l"}]})).expect("log");
        let t = run(
            &SQUARE_ROOT,
            t,
            json!({"operations": [{"a": "x", "column": "r"}]}),
        )
        .expect("sqrt");
        let (Some(Column::Float64(l)), Some(Column::Float64(r))) = (t.column("l"), t.column("r"))
        else {
            panic!("float columns expected: {t:?}");
        };
        assert_eq!((l[0], l[1]), (0.0, f64::NEG_INFINITY));
        assert!(l[2].is_nan());
        assert_eq!((r[0], r[1]), (1.0, 0.0));
        assert!(r[2].is_nan());
    }

    #[test]
    fn wrong_type_and_missing_column() {
        let t = Table::from_columns(vec![("b".into(), Column::Bool(array![true]))]).expect("table");
        let err = run(
            &LOG,
            t.clone(),
            json!({"operations": [{"a": "b", "column": "l"}]}),
        )
        .expect_err("bool");
        assert!(err.contains("column `b` is bool"), "{err}");
        let err =
            run(&LOG, t, json!({"operations": [{"a": "zz", "column": "l"}]})).expect_err("missing");
        assert!(err.contains("no column `zz`"), "{err}");
    }
}
