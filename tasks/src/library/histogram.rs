//! `histogram {operations: [{a, bins, column}]}`: for each value of `a`, the
//! first bin edge at or above it, as float64. The edges are
//! numpy.histogram_bin_edges(a, bins): bins + 1 evenly spaced from the
//! smallest to the largest value (widened by 0.5 each way when all values
//! are equal). nan values stay nan and do not count toward the range. A
//! column holding inf or -inf, or whose range is too wide to split (its
//! width overflows float64), is an error naming the column, as in numpy:
//! no edges could place its finite values.

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
    kwargs: "operations: list of {a, bins, column}\n  a: a number column (inf or -inf in it is an error, as in numpy)\n  bins: number of bins, 1 to 10,000,000\n  column: the float64 column to write: for each value, the first of the edges at or above it, where the edges are numpy.histogram_bin_edges(a, bins): bins + 1 evenly spaced from min(a) to max(a) (widened by 0.5 each way when all values are equal); nan stays nan and does not count toward min and max",
    example: r#"{"operations": [{"a": "x", "bins": 10, "column": "x_bin"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: false,
    ignored: &[],
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
        let edges = bin_edges(values.as_ref(), o.bins)
            .map_err(|why| format!("column `{}` {why}", o.a))
            .map_err(at(i))?;
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

/// numpy.histogram_bin_edges(values, bins) over the values that are not
/// nan; why not, when the values are not all finite or their range is too
/// wide for float64.
fn bin_edges(values: &Array1<f64>, bins: usize) -> Result<Vec<f64>, String> {
    let (mut lo, mut hi) = values
        .iter()
        .filter(|v| !v.is_nan())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        (lo, hi) = (0.0, 1.0); // no values: numpy's default range
    }
    if !lo.is_finite() || !hi.is_finite() {
        return Err(format!(
            "runs from {lo} to {hi}: a histogram needs finite values (filter out inf and -inf first)"
        ));
    }
    if !(hi - lo).is_finite() {
        return Err(format!(
            "runs from {lo} to {hi}, too wide a range to split into bins in float64"
        ));
    }
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    Ok(linspace(lo, hi, bins + 1).to_vec())
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
    fn infinite_values_or_an_overflowing_range_are_an_error_naming_the_column() {
        let err = histogram(array![1.0, 2.0, f64::INFINITY], 4).expect_err("inf");
        assert!(
            err.contains("column `x`") && err.contains("needs finite values"),
            "{err}"
        );
        let err = histogram(array![f64::NEG_INFINITY, 2.0], 4).expect_err("-inf");
        assert!(err.contains("needs finite values"), "{err}");
        let err = histogram(array![-1e308, 1e308], 4).expect_err("overflow");
        assert!(err.contains("too wide a range"), "{err}");
        // nan alone is not a problem: it stays nan.
        let h = histogram(array![1.0, f64::NAN, 3.0], 2).expect("nan");
        assert!(h[1].is_nan());
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
        assert_eq!(bin_edges(&array![3.0, 3.0], 2), Ok(vec![2.5, 3.0, 3.5]));
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
