//! `regression {operations: [{x, y, model, d, space}]}`: a least-squares
//! polynomial fit of column `y` on column `x` (numpy.polyfit), `model`
//! `Linear` (degree 1) or `Poly` (degree `d`), evaluated on
//! column_space(`space`) of `x` (see `column_space`) into a new float64
//! column `<y><model>`, such as `yLinear`. The coefficients (highest power
//! first, as numpy.polyfit returns them) and r squared of the fit go to the
//! run's progress output.
//!
//! The fit solves the normal equations on x mapped to [-1, 1], which keeps
//! them well conditioned, then maps the coefficients back.

use super::column_space::space_of;
use super::operand::{at, Operations};
use crate::{decodes, kwargs, Column, Context, Role, Table, TaskSpec};
use ndarray::Array1;
use serde::Deserialize;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "regression",
    aliases: &[],
    about: "<y><model>: least-squares Linear or Poly (degree d) fit of y on x, evaluated on a space of x",
    kernel: run,
    kwargs: "operations: list of {x, y, model, d, space}\n  x, y: number columns\n  model: Linear | Poly\n  d: the degree, needed by Poly (at most 12)\n  space: where to evaluate the fit, as column_space's space (default: x sorted)\nwrites <y><model> (float64): row i holds the fitted polynomial at row i of the space; coefficients and r squared go to the progress output",
    example: r#"{"operations": [{"x": "x", "y": "y", "model": "Poly", "d": 2, "space": "linear"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: false,
    ignored: &[],
    reduce: None,
};

/// Highest degree accepted: beyond it the fit is numerically meaningless.
const MAX_DEGREE: usize = 12;

type Kwargs = Operations<Operation>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Operation {
    x: String,
    y: String,
    model: Model,
    #[serde(default)]
    d: Option<usize>,
    #[serde(default)]
    space: Option<String>,
}

#[derive(Deserialize, Clone, Copy, Debug)]
enum Model {
    Linear,
    Poly,
}

fn run(mut table: Table, args: &Value, ctx: &Context) -> Result<Table, String> {
    let Operations { operations } = kwargs::<Kwargs>(args)?;
    for (i, o) in operations.into_iter().enumerate() {
        let degree = match (o.model, o.d) {
            (Model::Linear, _) => 1,
            (Model::Poly, Some(d)) if d <= MAX_DEGREE => d,
            (Model::Poly, Some(d)) => {
                return Err(at(i)(format!("degree d = {d} is above {MAX_DEGREE}")))
            }
            (Model::Poly, None) => return Err(at(i)("model Poly needs the degree `d`".into())),
        };
        let x = table.numeric(&o.x).map_err(at(i))?;
        let y = table.numeric(&o.y).map_err(at(i))?;
        if ctx.checking {
            // A sample says nothing about whether the full data can be fit.
            let column = Column::Float64(Array1::from_elem(x.len(), f64::NAN));
            drop((x, y));
            table
                .set_column(format!("{}{:?}", o.y, o.model), column)
                .map_err(at(i))?;
            continue;
        }
        if let Some(row) = x
            .iter()
            .zip(y.iter())
            .position(|(a, b)| !a.is_finite() || !b.is_finite())
        {
            return Err(at(i)(format!(
                "row {row} of `{}` or `{}` is not a finite number",
                o.x, o.y
            )));
        }
        if x.len() <= degree {
            return Err(at(i)(format!(
                "a degree {degree} fit needs at least {} rows, the table has {}",
                degree + 1,
                x.len()
            )));
        }
        let coefficients = polyfit(x.as_ref(), y.as_ref(), degree).ok_or_else(|| {
            at(i)(format!(
                "the fit is singular: `{}` has too few distinct values for degree {degree}",
                o.x
            ))
        })?;
        let fitted = x.mapv(|v| polyval(&coefficients, v));
        let shown: Vec<String> = coefficients.iter().map(|c| short(*c)).collect();
        ctx.note(format!(
            "{} on {}: coefficients [{}] (highest power first), r squared {}",
            o.y,
            o.x,
            shown.join(", "),
            short(r_squared(y.as_ref(), &fitted))
        ));
        let at_space = space_of(x.as_ref(), o.space.as_deref().unwrap_or("sorted"))
            .mapv(|v| polyval(&coefficients, v));
        table
            .set_column(format!("{}{:?}", o.y, o.model), Column::Float64(at_space))
            .map_err(at(i))?;
    }
    Ok(table)
}

/// Least-squares coefficients, highest power first; None when singular.
fn polyfit(x: &Array1<f64>, y: &Array1<f64>, degree: usize) -> Option<Vec<f64>> {
    let (lo, hi) = x
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let center = (lo + hi) / 2.0;
    let scale = if hi > lo { (hi - lo) / 2.0 } else { 1.0 };
    let k = degree + 1;
    // Normal equations in t = (x - center) / scale: sums of t^p and y t^p.
    let mut powers = vec![0.0; 2 * degree + 1];
    let mut rhs = vec![0.0; k];
    for (&xv, &yv) in x.iter().zip(y.iter()) {
        let t = (xv - center) / scale;
        let mut tp = 1.0;
        for (p, slot) in powers.iter_mut().enumerate() {
            *slot += tp;
            if p < k {
                rhs[p] += yv * tp;
            }
            tp *= t;
        }
    }
    let mut a: Vec<Vec<f64>> = (0..k)
        .map(|r| (0..k).map(|c| powers[r + c]).collect())
        .collect();
    let b = solve(&mut a, rhs)?; // b[p] multiplies t^p
                                 // Expand sum b[p] * ((x - center) / scale)^p into powers of x (Horner).
    let mut poly = vec![0.0; k]; // poly[p] multiplies x^p
    for &bp in b.iter().rev() {
        let mut next = vec![0.0; k];
        for (p, &c) in poly.iter().enumerate() {
            if p + 1 < k {
                next[p + 1] += c / scale;
            }
            next[p] -= c * center / scale;
        }
        next[0] += bp;
        poly = next;
    }
    poly.reverse();
    Some(poly)
}

/// Gaussian elimination with partial pivoting; None when singular.
fn solve(a: &mut [Vec<f64>], mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    let norm = a.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= norm * 1e-13 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (offset, row) in rest.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (cell, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *cell -= f * p;
            }
            b[col + 1 + offset] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

/// numpy.polyval: coefficients highest power first.
fn polyval(coefficients: &[f64], x: f64) -> f64 {
    coefficients.iter().fold(0.0, |acc, c| acc * x + c)
}

/// Ten decimals without trailing zeros: enough to read, short to print.
fn short(v: f64) -> String {
    let text = format!("{v:.10}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

fn r_squared(y: &Array1<f64>, fitted: &Array1<f64>) -> f64 {
    let mean = y.sum() / y.len() as f64;
    let total: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let residual: f64 = y.iter().zip(fitted).map(|(v, f)| (v - f).powi(2)).sum();
    1.0 - residual / total
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    fn close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= tol * w.abs().max(1.0),
                "{got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn exact_polynomials_are_recovered() {
        let x = Array1::linspace(-3.0, 40.0, 50);
        let y = x.mapv(|v| 2.0 * v * v * v - 0.5 * v + 7.0);
        close(
            &polyfit(&x, &y, 3).expect("fit"),
            &[2.0, 0.0, -0.5, 7.0],
            1e-9,
        );
        let line = x.mapv(|v| 3.0 * v + 1.0);
        close(&polyfit(&x, &line, 1).expect("fit"), &[3.0, 1.0], 1e-12);
    }

    #[test]
    fn matches_numpy_polyfit_on_noisy_data() {
        // numpy.polyfit([1, 2, 3, 4, 5], [2.2, 2.8, 3.6, 4.5, 5.1], 1).tolist()
        let x = array![1.0, 2.0, 3.0, 4.0, 5.0];
        let y = array![2.2, 2.8, 3.6, 4.5, 5.1];
        close(
            &polyfit(&x, &y, 1).expect("fit"),
            &[0.7499999999999997, 1.3900000000000006],
            1e-12,
        );
    }

    #[test]
    fn evaluates_on_the_space_and_notes_the_fit() {
        let t = Table::from_columns(vec![
            ("x".into(), Column::Int64(array![4, 1, 3, 2])),
            ("y".into(), Column::Float64(array![9.0, 3.0, 7.0, 5.0])),
        ])
        .expect("table");
        let ctx = Context::new(Path::new("."));
        let t = run(
            t,
            &json!({"operations": [{"x": "x", "y": "y", "model": "Linear", "space": "linear"}]}),
            &ctx,
        )
        .expect("regression");
        // y = 2x + 1 on linspace(0, 4, 4)
        match t.column("yLinear") {
            Some(Column::Float64(a)) => close(
                &a.to_vec(),
                &[1.0, 1.0 + 8.0 / 3.0, 1.0 + 16.0 / 3.0, 9.0],
                1e-12,
            ),
            other => panic!("{other:?}"),
        }
        let notes = ctx.notes.take();
        assert_eq!(
            notes,
            ["y on x: coefficients [2, 1] (highest power first), r squared 1"]
        );
    }

    #[test]
    fn a_check_on_a_sample_does_not_fit() {
        let t = Table::from_columns(vec![
            ("x".into(), Column::Float64(array![])),
            ("y".into(), Column::Float64(array![])),
        ])
        .expect("table");
        let mut ctx = Context::new(Path::new("."));
        ctx.checking = true;
        let out = run(
            t,
            &json!({"operations": [{"x": "x", "y": "y", "model": "Linear"}]}),
            &ctx,
        )
        .expect("checked");
        assert_eq!(out.column("yLinear").map(Column::len), Some(0));
    }

    #[test]
    fn problems_are_named() {
        let t = Table::from_columns(vec![
            ("x".into(), Column::Float64(array![1.0, 1.0, f64::NAN])),
            ("y".into(), Column::Float64(array![1.0, 2.0, 3.0])),
        ])
        .expect("table");
        let ctx = Context::new(Path::new("."));
        let err = run(
            t.clone(),
            &json!({"operations": [{"x": "x", "y": "y", "model": "Poly"}]}),
            &ctx,
        )
        .expect_err("no d");
        assert!(err.contains("needs the degree `d`"), "{err}");
        let err = run(
            t.clone(),
            &json!({"operations": [{"x": "x", "y": "y", "model": "Linear"}]}),
            &ctx,
        )
        .expect_err("nan");
        assert!(err.contains("row 2"), "{err}");
        let two = t.take(&[0, 1]);
        let err = run(
            two,
            &json!({"operations": [{"x": "x", "y": "y", "model": "Linear"}]}),
            &ctx,
        )
        .expect_err("singular");
        assert!(err.contains("singular"), "{err}");
    }
}
