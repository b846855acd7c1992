//! `histogram {operations: [{a, bins, column}]}`: for each value of `a`, the
//! first bin edge at or above it, as float64. The edges are
//! numpy.histogram_bin_edges(a, bins): bins + 1 evenly spaced from the
//! smallest to the largest value (widened by 0.5 each way when all values
//! are equal). nan values stay nan and do not count toward the range.

use super::column_space::linspace;
use super::operand::{at, Operations};
use crate::{decodes, kwargs, Column, Role, Table, TaskSpec};
use ndarray::Array1;
use serde::Deserialize;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "histogram",
    aliases: &[],
    about: "column = the first of bins+1 even edges (min..max of a) at or above each value",
    kernel: |t, a, _| run(t, a),
    kwargs: "operations: list of {a, bins, column}\n  a: a number column\n  bins: number of bins, 1 to 10,000,000\n  column: the float64 column to write (the first edge at or above each value)",
    example: r#"{"operations": [{"a": "x", "bins": 10, "column": "x_bin"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: false,
    reduce: None,
};

type Kwargs = Operations<Operation>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Operation {
    a: String,
    #[serde(deserialize_with = "bins")]
    bins: usize,
    column: String,
}

/// Most bins a histogram may have: their edges are held in memory, and a
/// count from a job must not size an allocation without a bound.
const MAX_BINS: u64 = 10_000_000;

fn bins<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = u64::deserialize(d)?;
    if (1..=MAX_BINS).contains(&n) {
        Ok(n as usize)
    } else {
        Err(serde::de::Error::custom(format!(
            "bins must be from 1 to {MAX_BINS}, not {n}"
        )))
    }
}

fn run(mut table: Table, args: &Value) -> Result<Table, String> {
    let Operations { operations } = kwargs::<Kwargs>(args)?;
    for (i, o) in operations.into_iter().enumerate() {
        let values = table.numeric(&o.a).map_err(at(i))?;
        let edges = bin_edges(values.as_ref(), o.bins);
        let out = values.mapv(|v| {
            if v.is_nan() {
                return f64::NAN;
            }
            let k = edges.partition_point(|e| *e < v).min(edges.len() - 1);
            edges[k]
        });
        table
            .set_column(o.column, Column::Float64(out))
            .map_err(at(i))?;
    }
    Ok(table)
}

/// numpy.histogram_bin_edges(values, bins) over the values that are not nan.
pub(crate) fn bin_edges(values: &Array1<f64>, bins: usize) -> Vec<f64> {
    let (mut lo, mut hi) = values
        .iter()
        .filter(|v| !v.is_nan())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        (lo, hi) = (0.0, 1.0); // no values: numpy's default range
    }
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    linspace(lo, hi, bins + 1).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    fn histogram(values: Array1<f64>, bins: usize) -> Result<Vec<f64>, String> {
        let t = Table::from_columns(vec![("x".into(), Column::Float64(values))]).expect("table");
        let t = (SPEC.kernel)(
            t,
            &json!({"operations": [{"a": "x", "bins": bins, "column": "h"}]}),
            &Context::new(Path::new(".")),
        )?;
        match t.column("h") {
            Some(Column::Float64(a)) => Ok(a.to_vec()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn first_edge_at_or_above() {
        // edges 0, 2.5, 5, 7.5, 10
        let h = histogram(array![0.0, 1.0, 2.5, 2.6, 10.0, f64::NAN], 4).expect("histogram");
        assert_eq!(&h[..5], [0.0, 2.5, 2.5, 5.0, 10.0]);
        assert!(h[5].is_nan());
    }

    #[test]
    fn equal_values_widen_the_range() {
        assert_eq!(bin_edges(&array![3.0, 3.0], 2), [2.5, 3.0, 3.5]);
        assert_eq!(
            histogram(array![3.0, 3.0], 2).expect("histogram"),
            [3.0, 3.0]
        );
        let err = histogram(array![1.0], 0).expect_err("no bins");
        assert!(err.contains("bins must be from 1"), "{err}");
        let err = histogram(array![1.0], 1 << 40).expect_err("too many bins");
        assert!(err.contains("not 1099511627776"), "{err}");
    }
}
