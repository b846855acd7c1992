//! Whole-column tasks that can still run chunk by chunk.
//!
//! `normalize` and `average` need the whole column, but only a few figures
//! of it: a sum, a count, the extremes. Those combine: the sum of a table
//! is the sum of its chunks' sums. So instead of joining a chunked table on
//! one node to run such a task, the relay asks every chunk for its figures
//! (the node that makes a chunk computes them as the last thing it does
//! with it), combines them here, and sends each chunk through the task
//! with the whole table's figures. The chunks stay where they are and
//! run on every node at once.

use crate::Table;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a whole-column task runs on one chunk.
pub struct Reduce {
    /// Whether the task's kwargs allow it (some models need the rows in
    /// order, and a task may read a column it writes itself).
    pub applies: fn(&Value) -> bool,
    /// One chunk's figures, in an order of the task's own choosing.
    pub partial: fn(&Table, &Value) -> Result<Vec<Stat>, String>,
    /// The task on one chunk, given the whole table's figures.
    pub apply: fn(Table, &Value, &[Stat]) -> Result<Table, String>,
}

/// One figure of a chunk, with the way it combines with the same figure
/// of the other chunks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Stat {
    Sum(f64),
    /// nan when the chunk holds a nan, as numpy's min gives; +inf when
    /// the chunk is empty.
    Min(f64),
    /// nan when the chunk holds a nan; -inf when the chunk is empty.
    Max(f64),
}

impl Stat {
    fn with(self, other: Stat) -> Result<Stat, String> {
        let nan_or = |a: f64, b: f64, f: fn(f64, f64) -> f64| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                f(a, b)
            }
        };
        match (self, other) {
            (Stat::Sum(a), Stat::Sum(b)) => Ok(Stat::Sum(a + b)),
            (Stat::Min(a), Stat::Min(b)) => Ok(Stat::Min(nan_or(a, b, f64::min))),
            (Stat::Max(a), Stat::Max(b)) => Ok(Stat::Max(nan_or(a, b, f64::max))),
            (a, b) => Err(format!("chunk figures do not match: {a:?} and {b:?}")),
        }
    }

    /// The figure's value.
    pub fn value(self) -> f64 {
        match self {
            Stat::Sum(v) | Stat::Min(v) | Stat::Max(v) => v,
        }
    }
}

/// The whole table's figures from those of its chunks.
pub fn combine(parts: &[Vec<Stat>]) -> Result<Vec<Stat>, String> {
    let (first, rest) = parts.split_first().ok_or("no chunk figures to combine")?;
    let mut whole = first.clone();
    for part in rest {
        if part.len() != whole.len() {
            return Err(format!(
                "chunks gave {} and {} figures",
                whole.len(),
                part.len()
            ));
        }
        for (w, p) in whole.iter_mut().zip(part) {
            *w = w.with(*p)?;
        }
    }
    Ok(whole)
}

/// The extremes of `values` as chunk figures: nan if any value is nan (as
/// numpy's min and max), and the identities (+inf, -inf) when there are
/// none. The nan check is a separate pass so that both loops stay
/// branch-free and vectorize.
pub(crate) fn extremes(values: &ndarray::Array1<f64>) -> (Stat, Stat) {
    if values.iter().any(|v| v.is_nan()) {
        return (Stat::Min(f64::NAN), Stat::Max(f64::NAN));
    }
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    (Stat::Min(lo), Stat::Max(hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn figures_combine_like_the_whole_column() {
        let a = vec![Stat::Sum(3.0), Stat::Min(1.0), Stat::Max(2.0)];
        let b = vec![Stat::Sum(4.0), Stat::Min(-1.0), Stat::Max(1.5)];
        let empty = vec![
            Stat::Sum(0.0),
            Stat::Min(f64::INFINITY),
            Stat::Max(f64::NEG_INFINITY),
        ];
        assert_eq!(
            combine(&[a.clone(), empty, b]).expect("combine"),
            vec![Stat::Sum(7.0), Stat::Min(-1.0), Stat::Max(2.0)]
        );
        let nan = vec![
            Stat::Sum(f64::NAN),
            Stat::Min(f64::NAN),
            Stat::Max(f64::NAN),
        ];
        let whole = combine(&[a.clone(), nan]).expect("combine");
        assert!(whole.iter().all(|s| s.value().is_nan()), "{whole:?}");
        assert!(combine(&[a, vec![Stat::Sum(1.0)]]).is_err());
        assert!(combine(&[]).is_err());
    }

    /// Every reducible task, run on three chunks (one of them empty) with
    /// the combined figures, gives what its kernel gives on the whole table.
    #[test]
    fn chunk_by_chunk_equals_the_whole_table() {
        use crate::{lookup, Column, Context};
        use serde_json::json;
        let jobs = [
            (
                "normalize",
                json!({"model": "Squash", "columns": ["x", "n"]}),
            ),
            (
                "normalize",
                json!({"model": "PercentOfMax", "columns": ["x"]}),
            ),
            ("normalize", json!({"model": null, "columns": ["x"]})),
            (
                "average",
                json!({"operations": [{"a": "x", "column": "m"}, {"a": "n", "column": "k"}]}),
            ),
        ];
        let columns = [
            vec![3.0, -1.0, 7.5, 2.0, 40.0, 0.5, 9.0],
            vec![3.0, -1.0, f64::NAN, 2.0, 40.0, 0.5, 9.0],
        ];
        let ctx = Context::new(std::path::Path::new("."));
        for (task, kwargs) in &jobs {
            let spec = lookup(task).expect("task");
            let reduce = spec.reduce.as_ref().expect("reducible");
            assert!((reduce.applies)(kwargs), "{task} {kwargs}");
            for values in &columns {
                let table = Table::from_columns(vec![
                    ("x".into(), Column::Float64(values.clone().into())),
                    (
                        "n".into(),
                        Column::Int64((0..7i64).map(|i| i * i).collect()),
                    ),
                ])
                .expect("table");
                let whole = (spec.kernel)(table.clone(), kwargs, &ctx).expect("whole");
                let chunks = [table.slice(0, 3), table.slice(3, 3), table.slice(3, 7)];
                let parts: Vec<Vec<Stat>> = chunks
                    .iter()
                    .map(|c| (reduce.partial)(c, kwargs).expect("partial"))
                    .collect();
                let stats = combine(&parts).expect("combine");
                let pieces = chunks
                    .into_iter()
                    .map(|c| (reduce.apply)(c, kwargs, &stats).expect("apply"))
                    .collect();
                let chunked = Table::concat(pieces).expect("concat");
                assert_eq!(whole.schema(), chunked.schema());
                for (name, _) in whole.schema() {
                    let a = whole.numeric(&name).expect("numeric");
                    let b = chunked.numeric(&name).expect("numeric");
                    for (x, y) in a.iter().zip(b.iter()) {
                        assert!(
                            (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                            "{task} {kwargs} {name}: {x} vs {y}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn tasks_that_read_what_they_write_or_need_row_order_do_not_apply() {
        use crate::lookup;
        use serde_json::json;
        let normalize = lookup("normalize")
            .and_then(|t| t.reduce.as_ref())
            .expect("reduce");
        assert!(!(normalize.applies)(
            &json!({"model": "DistanceFromMean", "weight": 0.1, "columns": ["x"]})
        ));
        assert!(!(normalize.applies)(
            &json!({"model": "Squash", "columns": ["x", "xNormal"]})
        ));
        let average = lookup("average")
            .and_then(|t| t.reduce.as_ref())
            .expect("reduce");
        assert!(!(average.applies)(
            &json!({"operations": [{"a": "x", "column": "m"}, {"a": "m", "column": "k"}]})
        ));
    }

    #[test]
    fn extremes_follow_numpy() {
        assert_eq!(
            extremes(&array![2.0, -1.0, 5.0]),
            (Stat::Min(-1.0), Stat::Max(5.0))
        );
        let (lo, hi) = extremes(&array![2.0, f64::NAN]);
        assert!(lo.value().is_nan() && hi.value().is_nan());
        assert_eq!(
            extremes(&array![]),
            (Stat::Min(f64::INFINITY), Stat::Max(f64::NEG_INFINITY))
        );
    }
}
