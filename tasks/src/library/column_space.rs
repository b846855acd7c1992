//! `column_space {column, space}`: a float64 column `<column>Space` of the
//! same length n. `space` "log" gives numpy.logspace(0.001, 1, n);
//! "linear" gives numpy.linspace(0, max(column), n); anything else gives
//! the column's values sorted ascending. `regression` evaluates its fit on
//! the same spaces.

use super::keys::cmp_f64;
use crate::reduce::extremes;
use crate::{decodes, kwargs, Column, Role, Table, TaskSpec};
use ndarray::Array1;
use serde::Deserialize;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "column_space",
    aliases: &["columnSpace"],
    about: "<column>Space: logspace(0.001, 1, n), linspace(0, max, n) or the sorted values",
    kernel: |t, a, _| run(t, a),
    kwargs: "column: a number column\nspace: where n is the number of rows and i = 0..n-1:\n  log: 10 ** (0.001 + i * (1 - 0.001) / (n - 1)), as numpy.logspace(0.001, 1, n)\n  linear: i * max(column) / (n - 1), as numpy.linspace(0, max(column), n)\n  anything else (the default): the column's values sorted ascending, nan last\nwrites <column>Space (float64), the column itself is kept",
    example: r#"{"column": "x", "space": "linear"}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: false,
    ignored: &[],
    reduce: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kwargs {
    column: String,
    #[serde(default)]
    space: Option<String>,
}

fn run(mut table: Table, args: &Value) -> Result<Table, String> {
    let Kwargs { column, space } = kwargs(args)?;
    let values = table
        .numeric(&column)
        .map_err(|e| format!("field `column`: {e}"))?;
    let out = space_of(values.as_ref(), space.as_deref().unwrap_or("sorted"));
    table.set_column(format!("{column}Space"), Column::Float64(out))?;
    Ok(table)
}

/// The space named `kind` over `values` (see the module doc).
pub(crate) fn space_of(values: &Array1<f64>, kind: &str) -> Array1<f64> {
    let n = values.len();
    match kind {
        "log" => linspace(0.001, 1.0, n).mapv(|e| 10f64.powf(e)),
        "linear" => linspace(0.0, nan_max(values), n),
        _ => {
            let mut sorted = values.to_vec();
            sorted.sort_by(|a, b| cmp_f64(*a, *b));
            Array1::from(sorted)
        }
    }
}

/// numpy.linspace(start, stop, n): evenly spaced, both ends included.
pub(crate) fn linspace(start: f64, stop: f64, n: usize) -> Array1<f64> {
    if n == 1 {
        return Array1::from(vec![start]);
    }
    let step = (stop - start) / (n.max(2) - 1) as f64;
    let mut out = Array1::from_iter((0..n).map(|i| start + i as f64 * step));
    if let Some(last) = out.last_mut() {
        *last = stop;
    }
    out
}

/// The maximum, nan if any value is nan (as numpy.max); nan when empty.
fn nan_max(values: &Array1<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    extremes(values).1.value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    fn space(kind: &str) -> Vec<f64> {
        let t = Table::from_columns(vec![("x".into(), Column::Int64(array![3, 1, 4, 2, 8]))])
            .expect("table");
        let t = (SPEC.kernel)(
            t,
            &json!({"column": "x", "space": kind}),
            &Context::new(Path::new(".")),
        )
        .expect("space");
        match t.column("xSpace") {
            Some(Column::Float64(a)) => a.to_vec(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn three_spaces_as_numpy_makes_them() {
        assert_eq!(space("linear"), [0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(space("sorted"), [1.0, 2.0, 3.0, 4.0, 8.0]);
        // numpy.logspace(0.001, 1, 5)
        let expected = [
            1.0023052380778996,
            1.7813530430086404,
            3.1659204634322378,
            5.626651280675067,
            10.0,
        ];
        for (got, want) in space("log").iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn linspace_edges() {
        assert_eq!(linspace(0.0, 1.0, 1).to_vec(), [0.0]);
        assert!(linspace(0.0, 1.0, 0).is_empty());
        assert_eq!(linspace(1.0, 2.0, 3).to_vec(), [1.0, 1.5, 2.0]);
    }
}
