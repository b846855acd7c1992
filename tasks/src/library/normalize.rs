//! `normalize {model, columns: [..], weight}`: for each listed column `c` a
//! new float64 column `<c>Normal`; `c` itself is left as it was (raspi-rtl
//! overwrote it). Models:
//!
//! - `Squash`: mn = min(c), avg = mean(c); values above 2*avg are clipped to
//!   2*avg; mx = max of the clipped values; out = (clipped - mn) / mx * 100.
//! - `PercentOfMax`: (c - min) / (max - min) * 100.
//! - `DistanceFromMean` (needs `weight`): walking i = 0..n-1 over a working
//!   copy x, m = mean(x[i-1], x[i], x[i+1]) for 1 <= i <= n-2 (x[i-1]
//!   already updated), else m = x[i]; x[i] is clamped into the interval
//!   between m - m*weight and m + m*weight; out = x.
//! - `null` (or a JSON null): a copy.

use super::operand::map;
use crate::reduce::{extremes, Reduce, Stat};
use crate::{decodes, kwargs, Column, Role, Table, TaskSpec};
use ndarray::Array1;
use serde::Deserialize;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "normalize",
    aliases: &[],
    about: "<c>Normal for each column: Squash, PercentOfMax, DistanceFromMean or null",
    kernel: |t, a, _| run(t, a),
    kwargs: "model: one of (each computed in float64 over all the rows)\n  Squash: clip c at 2 * mean(c), then (clipped - min(c)) / max(clipped) * 100\n  PercentOfMax: (c - min(c)) / (max(c) - min(c)) * 100\n  DistanceFromMean: row by row, each value clamped between m - m * weight\n    and m + m * weight, m the mean of the row before (as clamped), the row\n    and the row after; the first and last rows are their own m\n  null (the default): a copy\ncolumns: the number columns; each gets <c>Normal (float64), c is kept\nweight: number, needed by DistanceFromMean",
    example: r#"{"model": "PercentOfMax", "columns": ["x", "y"]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: false,
    ignored: &[],
    reduce: Some(Reduce {
        applies,
        partial,
        apply,
    }),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kwargs {
    #[serde(default)]
    model: Option<Model>,
    columns: Vec<String>,
    #[serde(default)]
    weight: Option<f64>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
enum Model {
    Squash,
    PercentOfMax,
    DistanceFromMean,
    #[serde(rename = "null")]
    Null,
}

fn run(mut table: Table, args: &Value) -> Result<Table, String> {
    let Kwargs {
        model,
        columns,
        weight,
    } = kwargs(args)?;
    let model = model.unwrap_or(Model::Null);
    let weight = match (model, weight) {
        (Model::DistanceFromMean, None) => {
            return Err("bad kwargs at `model`: DistanceFromMean needs `weight`, the fraction of the local mean a value may stray from it (e.g. 0.1)".into())
        }
        (_, w) => w.unwrap_or(0.0),
    };
    for (i, name) in columns.iter().enumerate() {
        // Each column sees the <c>Normal columns written before it.
        let values = table
            .numeric(name)
            .map_err(|e| format!("columns[{i}]: {e}"))?;
        let out = match model {
            Model::DistanceFromMean => distance_from_mean(values.as_ref(), weight),
            model => normal(model, values.as_ref(), &figures(values.as_ref())),
        };
        table.set_column(format!("{name}Normal"), Column::Float64(out))?;
    }
    Ok(table)
}

/// Chunk by chunk for the models that need only the column's extremes and
/// mean, and only when no column listed is one an earlier one writes.
fn applies(args: &Value) -> bool {
    kwargs::<Kwargs>(args).is_ok_and(|k| {
        k.model != Some(Model::DistanceFromMean)
            && k.columns.iter().enumerate().all(|(i, c)| {
                k.columns[..i]
                    .iter()
                    .all(|earlier| format!("{earlier}Normal") != *c)
            })
    })
}

/// Per column: min, max, sum and row count.
fn partial(table: &Table, args: &Value) -> Result<Vec<Stat>, String> {
    let k: Kwargs = kwargs(args)?;
    let mut out = Vec::with_capacity(4 * k.columns.len());
    for name in &k.columns {
        out.extend(figures(table.numeric(name)?.as_ref()));
    }
    Ok(out)
}

fn apply(mut table: Table, args: &Value, stats: &[Stat]) -> Result<Table, String> {
    let k: Kwargs = kwargs(args)?;
    if stats.len() != 4 * k.columns.len() {
        return Err(format!(
            "{} figures for {} columns",
            stats.len(),
            k.columns.len()
        ));
    }
    let model = k.model.unwrap_or(Model::Null);
    for (name, figures) in k.columns.iter().zip(stats.chunks(4)) {
        let out = normal(model, table.numeric(name)?.as_ref(), figures);
        table.set_column(format!("{name}Normal"), Column::Float64(out))?;
    }
    Ok(table)
}

fn figures(values: &Array1<f64>) -> [Stat; 4] {
    let (min, max) = extremes(values);
    [
        min,
        max,
        Stat::sum_of(values.iter().copied()),
        Stat::Sum(vec![values.len() as f64]),
    ]
}

/// `<c>Normal` for the models that need only the whole column's figures
/// (min, max, sum, count).
fn normal(model: Model, c: &Array1<f64>, figures: &[Stat]) -> Array1<f64> {
    let (mn, mx) = (figures[0].value(), figures[1].value());
    let avg = figures[2].value() / figures[3].value();
    match model {
        // Values above 2*avg are clipped to it, so the largest clipped
        // value is the smaller of the column's max and 2*avg.
        Model::Squash => {
            let top = 2.0 * avg;
            let top_clipped = if mx.is_nan() || top.is_nan() {
                f64::NAN
            } else {
                mx.min(top)
            };
            map(c, |v| {
                let clipped = if v > top { top } else { v };
                (clipped - mn) / top_clipped * 100.0
            })
        }
        Model::PercentOfMax => map(c, |v| (v - mn) / (mx - mn) * 100.0),
        // DistanceFromMean needs the rows in order and never comes here.
        Model::Null | Model::DistanceFromMean => c.clone(),
    }
}

fn distance_from_mean(c: &Array1<f64>, weight: f64) -> Array1<f64> {
    let mut x = c.to_vec();
    let n = x.len();
    for i in 0..n {
        let m = if i >= 1 && i + 2 <= n {
            (x[i - 1] + x[i] + x[i + 1]) / 3.0
        } else {
            x[i]
        };
        let (a, b) = (m - m * weight, m + m * weight);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        if x[i] < lo {
            x[i] = lo;
        } else if x[i] > hi {
            x[i] = hi;
        }
    }
    Array1::from(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    fn normal(model: Value, values: Array1<f64>, weight: Option<f64>) -> Result<Vec<f64>, String> {
        let t = Table::from_columns(vec![("c".into(), Column::Float64(values.clone()))])
            .expect("table");
        let mut args = json!({"model": model, "columns": ["c"]});
        if let Some(w) = weight {
            args["weight"] = json!(w);
        }
        let t = (SPEC.kernel)(t, &args, &Context::new(Path::new(".")))?;
        assert_eq!(
            t.column("c"),
            Some(&Column::Float64(values)),
            "the input column is left alone"
        );
        match t.column("cNormal") {
            Some(Column::Float64(a)) => Ok(a.to_vec()),
            other => panic!("{other:?}"),
        }
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn squash_clips_at_twice_the_mean() {
        // mean 4, clip at 8: [1, 2, 3, 8]; min 1, max 8 -> (v-1)/8*100
        close(
            &normal(json!("Squash"), array![1.0, 2.0, 3.0, 10.0], None).expect("squash"),
            &[0.0, 12.5, 25.0, 87.5],
        );
    }

    #[test]
    fn percent_of_max_spans_0_to_100() {
        close(
            &normal(json!("PercentOfMax"), array![2.0, 4.0, 6.0], None).expect("pom"),
            &[0.0, 50.0, 100.0],
        );
        let flat = normal(json!("PercentOfMax"), array![5.0, 5.0], None).expect("flat");
        assert!(flat.iter().all(|v| v.is_nan()), "0/0 as numpy gives it");
    }

    #[test]
    fn distance_from_mean_walks_with_updated_neighbours() {
        // i=0: m=10, clamp 10 into [9, 11] -> 10
        // i=1: m=(10+20+10)/3=13.33, [12, 14.67] -> 14.67
        // i=2: m=(14.67+10+10)/3=11.56, [10.4, 12.71] -> 10.4
        // i=3: last, m=x -> 10
        let out = normal(
            json!("DistanceFromMean"),
            array![10.0, 20.0, 10.0, 10.0],
            Some(0.1),
        )
        .expect("dfm");
        let m1 = 40.0 / 3.0;
        let x1 = m1 * 1.1;
        let m2 = (x1 + 20.0) / 3.0;
        close(&out, &[10.0, x1, m2 * 0.9, 10.0]);
        let err = normal(json!("DistanceFromMean"), array![1.0], None).expect_err("no weight");
        assert!(err.contains("needs `weight`"), "{err}");
    }

    #[test]
    fn null_model_copies_and_unknown_models_are_named() {
        assert_eq!(
            normal(Value::Null, array![1.0, 2.0], None).expect("null"),
            [1.0, 2.0]
        );
        assert_eq!(
            normal(json!("null"), array![1.0], None).expect("null"),
            [1.0]
        );
        let err = normal(json!("Zscore"), array![1.0], None).expect_err("unknown");
        assert!(err.contains("unknown value `Zscore`"), "{err}");
    }
}
