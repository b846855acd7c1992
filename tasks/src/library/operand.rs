//! Kwargs pieces several tasks share: a list of operations, and an operand
//! that is a column name or a number, resolved against a table to float64
//! values.

use crate::Table;
use ndarray::{Array1, Zip};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// Kwargs of the tasks that take a list of operations, applied in order:
/// `{operations: [...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Operations<T> {
    pub(crate) operations: Vec<T>,
}

/// `"column"` or `2.5`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Number(f64),
    Column(String),
}

impl<'de> Deserialize<'de> for Operand {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Expect;
        impl Visitor<'_> for Expect {
            type Value = Operand;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a column name or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Operand, E> {
                Ok(Operand::Column(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Operand, E> {
                Ok(Operand::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Operand, E> {
                Ok(Operand::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Operand, E> {
                Ok(Operand::Number(v as f64))
            }
        }
        d.deserialize_any(Expect)
    }
}

/// An operand's values: one number for every row, or a column.
pub(crate) enum Values<'a> {
    Scalar(f64),
    Array(Cow<'a, Array1<f64>>),
}

impl Operand {
    pub(crate) fn resolve<'a>(&self, table: &'a Table) -> Result<Values<'a>, String> {
        match self {
            Operand::Number(v) => Ok(Values::Scalar(*v)),
            Operand::Column(name) => table.numeric(name).map(Values::Array),
        }
    }
}

/// `op(a, b)` row by row; `rows` sizes the result when both are scalars.
pub(crate) fn combine(
    a: &Values,
    b: &Values,
    rows: usize,
    op: impl Fn(f64, f64) -> f64,
) -> Array1<f64> {
    match (a, b) {
        (Values::Array(a), Values::Array(b)) => match (a.as_slice(), b.as_slice()) {
            // Plain slices let the compiler vectorize the loop.
            (Some(x), Some(y)) => x.iter().zip(y).map(|(x, y)| op(*x, *y)).collect(),
            _ => Zip::from(a.as_ref())
                .and(b.as_ref())
                .map_collect(|&x, &y| op(x, y)),
        },
        (Values::Array(a), Values::Scalar(s)) => map(a, |x| op(x, *s)),
        (Values::Scalar(s), Values::Array(b)) => map(b, |y| op(*s, y)),
        (Values::Scalar(x), Values::Scalar(y)) => Array1::from_elem(rows, op(*x, *y)),
    }
}

/// `f` over every value, through a slice when the array is contiguous.
pub(crate) fn map(a: &Array1<f64>, f: impl Fn(f64) -> f64) -> Array1<f64> {
    match a.as_slice() {
        Some(x) => x.iter().map(|v| f(*v)).collect(),
        None => a.mapv(f),
    }
}

/// Prefixes an error with the operation it came from: `operations[2]: ...`.
pub(crate) fn at(index: usize) -> impl Fn(String) -> String {
    move |e| format!("operations[{index}]: {e}")
}
