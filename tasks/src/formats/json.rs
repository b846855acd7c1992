//! JSON output: one object mapping each column name to the array of its
//! values, in column order. Numbers that JSON cannot hold (nan, inf) are
//! written as null.

use crate::{Column, Table};
use serde_json::{Map, Number, Value};

/// The table as a JSON object of column arrays.
pub(crate) fn to_value(table: &Table) -> Value {
    let mut object = Map::with_capacity(table.width());
    for (name, column) in table.iter() {
        let values: Vec<Value> = match column {
            Column::Int64(a) => a.iter().map(|v| Value::from(*v)).collect(),
            Column::Float64(a) => a
                .iter()
                .map(|v| Number::from_f64(*v).map_or(Value::Null, Value::Number))
                .collect(),
            Column::Bool(a) => a.iter().map(|v| Value::Bool(*v)).collect(),
            Column::Utf8(a) => a.iter().map(|v| Value::String(v.clone())).collect(),
        };
        object.insert(name.to_string(), Value::Array(values));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn columns_in_order_and_non_finite_as_null() {
        let t = Table::from_columns(vec![
            (
                "z".into(),
                Column::Float64(array![1.5, f64::NAN, f64::INFINITY]),
            ),
            ("a".into(), Column::text(&["x", "y", "\"q\""])),
        ])
        .expect("table");
        assert_eq!(
            to_value(&t).to_string(),
            r#"{"z":[1.5,null,null],"a":["x","y","\"q\""]}"#
        );
    }
}
