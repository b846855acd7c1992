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
//!
//! Sums are exact: a chunk's sum is kept as non-overlapping partials whose
//! total is the exact sum of its values (Shewchuk's algorithm, as Python's
//! `math.fsum`), partials of chunks add without rounding, and the figure
//! is rounded once, when it is read. So a column's mean is the same to the
//! last bit however the table was chunked, and the same as unchunked.

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stat {
    /// A sum, exact: non-overlapping partials, smallest first, whose total
    /// is the sum of the values (one nan or infinity when the values sum
    /// to that).
    Sum(Vec<f64>),
    /// nan when the chunk holds a nan, as numpy's min gives; +inf when
    /// the chunk is empty.
    Min(f64),
    /// nan when the chunk holds a nan; -inf when the chunk is empty.
    Max(f64),
}

impl Stat {
    /// The exact sum of `values`.
    pub fn sum_of(values: impl IntoIterator<Item = f64>) -> Stat {
        let mut partials = Vec::new();
        for v in values {
            add_exact(&mut partials, v);
        }
        Stat::Sum(partials)
    }

    fn with(self, other: &Stat) -> Result<Stat, String> {
        let nan_or = |a: f64, b: f64, f: fn(f64, f64) -> f64| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                f(a, b)
            }
        };
        match (self, other) {
            (Stat::Sum(mut a), Stat::Sum(b)) => {
                for v in b {
                    add_exact(&mut a, *v);
                }
                Ok(Stat::Sum(a))
            }
            (Stat::Min(a), Stat::Min(b)) => Ok(Stat::Min(nan_or(a, *b, f64::min))),
            (Stat::Max(a), Stat::Max(b)) => Ok(Stat::Max(nan_or(a, *b, f64::max))),
            (a, b) => Err(format!("chunk figures do not match: {a:?} and {b:?}")),
        }
    }

    /// The figure's value (a sum rounded once, to the nearest).
    pub fn value(&self) -> f64 {
        match self {
            Stat::Sum(partials) => rounded(partials),
            Stat::Min(v) | Stat::Max(v) => *v,
        }
    }
}

/// Adds `x` to the exact sum held as `partials`.
fn add_exact(partials: &mut Vec<f64>, x: f64) {
    // Past a nan or an infinity, the sum is one non-finite number.
    if let Some(first) = partials.first_mut().filter(|p| !p.is_finite()) {
        *first += x;
        return;
    }
    if !x.is_finite() {
        *partials = vec![x];
        return;
    }
    let mut x = x;
    let mut kept = 0;
    for j in 0..partials.len() {
        let mut y = partials[j];
        if x.abs() < y.abs() {
            std::mem::swap(&mut x, &mut y);
        }
        let hi = x + y;
        if !hi.is_finite() {
            // The exact sum is beyond f64: it rounds to an infinity.
            *partials = vec![hi];
            return;
        }
        let lo = y - (hi - x);
        if lo != 0.0 {
            partials[kept] = lo;
            kept += 1;
        }
        x = hi;
    }
    partials.truncate(kept);
    partials.push(x);
}

/// The exact sum held as `partials`, rounded to the nearest f64 (ties to
/// even), as `math.fsum` rounds it.
fn rounded(partials: &[f64]) -> f64 {
    let Some((&last, rest)) = partials.split_last() else {
        return 0.0;
    };
    let mut hi = last;
    let mut lo = 0.0;
    let mut n = rest.len();
    while n > 0 {
        let x = hi;
        n -= 1;
        let y = rest[n];
        hi = x + y;
        lo = y - (hi - x);
        if lo != 0.0 {
            break;
        }
    }
    // A half-way case: the partials below decide which way it rounds.
    if n > 0 && ((lo < 0.0 && rest[n - 1] < 0.0) || (lo > 0.0 && rest[n - 1] > 0.0)) {
        let y = lo * 2.0;
        let x = hi + y;
        if y == x - hi {
            hi = x;
        }
    }
    hi
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
        whole = whole
            .into_iter()
            .zip(part)
            .map(|(w, p)| w.with(p))
            .collect::<Result<_, _>>()?;
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
        let a = vec![Stat::Sum(vec![3.0]), Stat::Min(1.0), Stat::Max(2.0)];
        let b = vec![Stat::Sum(vec![4.0]), Stat::Min(-1.0), Stat::Max(1.5)];
        let empty = vec![
            Stat::sum_of([]),
            Stat::Min(f64::INFINITY),
            Stat::Max(f64::NEG_INFINITY),
        ];
        assert_eq!(
            combine(&[a.clone(), empty, b]).expect("combine"),
            vec![Stat::Sum(vec![7.0]), Stat::Min(-1.0), Stat::Max(2.0)]
        );
        let nan = vec![
            Stat::Sum(vec![f64::NAN]),
            Stat::Min(f64::NAN),
            Stat::Max(f64::NAN),
        ];
        let whole = combine(&[a.clone(), nan]).expect("combine");
        assert!(whole.iter().all(|s| s.value().is_nan()), "{whole:?}");
        assert!(combine(&[a, vec![Stat::Sum(vec![1.0])]]).is_err());
        assert!(combine(&[]).is_err());
    }

    #[test]
    fn sums_are_exact_and_do_not_depend_on_the_chunks() {
        // Naive summing gives 0 and 2 here.
        assert_eq!(Stat::sum_of([1e16, 1.0, -1e16]).value(), 1.0);
        assert_eq!(Stat::sum_of([1e100, 1.0, -1e100, 1.0]).value(), 2.0);
        assert_eq!(Stat::sum_of([0.1; 10]).value(), 1.0);
        assert_eq!(Stat::sum_of([]).value(), 0.0);
        assert!(Stat::sum_of([1.0, f64::NAN]).value().is_nan());
        assert_eq!(
            Stat::sum_of([1.0, f64::INFINITY, 2.0]).value(),
            f64::INFINITY
        );
        assert!(Stat::sum_of([f64::INFINITY, f64::NEG_INFINITY])
            .value()
            .is_nan());
        assert_eq!(Stat::sum_of([f64::MAX, f64::MAX]).value(), f64::INFINITY);
        // Any cut into chunks gives the whole column's sum, bit for bit.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let values: Vec<f64> = (0..5000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x % 2_000_001) as f64 - 1e6) * 10f64.powi((x % 13) as i32 - 6)
            })
            .collect();
        let whole = Stat::sum_of(values.iter().copied()).value();
        for size in [1, 7, 100, 999, 5000] {
            let parts: Vec<Vec<Stat>> = values
                .chunks(size)
                .map(|c| vec![Stat::sum_of(c.iter().copied())])
                .collect();
            let combined = combine(&parts).expect("combine")[0].value();
            assert_eq!(combined.to_bits(), whole.to_bits(), "chunks of {size}");
        }
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
