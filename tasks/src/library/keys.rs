//! Row order shared by the tasks that sort or group: a total order on one or
//! more columns, ascending, lexicographic across columns. Numbers compare by
//! value; nan sorts after every number and equals every other nan (as
//! numpy.sort and numpy.unique treat it); false < true; strings by bytes.

use crate::Column;
use std::cmp::Ordering;

/// Order of rows `i` and `j` in `column`.
pub(crate) fn cmp_rows(column: &Column, i: usize, j: usize) -> Ordering {
    match column {
        Column::Int64(a) => a[i].cmp(&a[j]),
        Column::Float64(a) => cmp_f64(a[i], a[j]),
        Column::Bool(a) => a[i].cmp(&a[j]),
        Column::Utf8(a) => a[i].cmp(&a[j]),
    }
}

/// Total order on f64 with nan last.
pub(crate) fn cmp_f64(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Lexicographic order of rows `i` and `j` over `columns`.
pub(crate) fn cmp_keys(columns: &[&Column], i: usize, j: usize) -> Ordering {
    columns
        .iter()
        .map(|c| cmp_rows(c, i, j))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// The rows grouped by equal keys, groups in ascending key order, rows in
/// each group in their original order.
pub(crate) fn groups(columns: &[&Column], rows: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..rows).collect();
    order.sort_by(|&i, &j| cmp_keys(columns, i, j)); // stable: ties keep row order
    let mut out: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match out.last_mut() {
            Some(group) if cmp_keys(columns, group[0], i).is_eq() => group.push(i),
            _ => out.push(vec![i]),
        }
    }
    out
}

/// A u64 whose unsigned order is the column's order at row `i` (nan last,
/// all nan equal); None for bool and utf8 columns.
pub(crate) fn radix_keys(column: &Column, descending: bool) -> Option<Vec<u64>> {
    const SIGN: u64 = 1 << 63;
    let flip = |k: u64| if descending { !k } else { k };
    match column {
        Column::Int64(a) => Some(a.iter().map(|v| flip(*v as u64 ^ SIGN)).collect()),
        Column::Float64(a) => Some(
            a.iter()
                .map(|v| {
                    if v.is_nan() {
                        return u64::MAX; // last, whichever the direction
                    }
                    let bits = (v + 0.0).to_bits(); // -0.0 sorts with 0.0
                    let key = if bits & SIGN != 0 { !bits } else { bits | SIGN };
                    flip(key).min(u64::MAX - 1)
                })
                .collect(),
        ),
        Column::Bool(_) | Column::Utf8(_) => None,
    }
}

/// The stable order of `keys`, ascending: an LSD radix sort, 16 bits a
/// pass, skipping passes where every key has the same digit.
pub(crate) fn radix_order(keys: &[u64]) -> Vec<usize> {
    let n = keys.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut scratch = vec![0usize; n];
    let mut counts = vec![0usize; 1 << 16];
    for pass in 0..4 {
        let shift = 16 * pass;
        counts.fill(0);
        for k in keys {
            counts[(k >> shift) as usize & 0xffff] += 1;
        }
        if counts.contains(&n) {
            continue; // one digit for all: this pass would not move anything
        }
        let mut total = 0;
        for c in counts.iter_mut() {
            let here = *c;
            *c = total;
            total += here;
        }
        for &i in &order {
            let digit = (keys[i] >> shift) as usize & 0xffff;
            scratch[counts[digit]] = i;
            counts[digit] += 1;
        }
        std::mem::swap(&mut order, &mut scratch);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn nan_sorts_last_and_groups_together() {
        let c = Column::Float64(array![2.0, f64::NAN, -1.0, f64::NAN, 2.0]);
        assert_eq!(groups(&[&c], 5), vec![vec![2], vec![0, 4], vec![1, 3]]);
    }

    #[test]
    fn radix_order_agrees_with_the_comparison_sort() {
        let values = [
            3.5,
            -0.0,
            f64::NAN,
            -2.0,
            0.0,
            f64::INFINITY,
            -f64::INFINITY,
            3.5,
            1e-300,
            -1e300,
            f64::NAN,
        ];
        let c = Column::Float64(ndarray::Array1::from(values.to_vec()));
        let mut expected: Vec<usize> = (0..values.len()).collect();
        expected.sort_by(|&i, &j| cmp_rows(&c, i, j));
        let keys = radix_keys(&c, false).expect("keys");
        assert_eq!(radix_order(&keys), expected);
        let ints = Column::Int64(array![5, -1, i64::MIN, i64::MAX, 0, -1, 70000, -70000]);
        let mut expected: Vec<usize> = (0..8).collect();
        expected.sort_by(|&i, &j| cmp_rows(&ints, i, j));
        assert_eq!(
            radix_order(&radix_keys(&ints, false).expect("keys")),
            expected
        );
        let mut descending: Vec<usize> = (0..8).collect();
        descending.sort_by(|&i, &j| cmp_rows(&ints, j, i));
        assert_eq!(
            radix_order(&radix_keys(&ints, true).expect("keys")),
            descending
        );
    }

    #[test]
    fn several_columns_compare_lexicographically() {
        let a = Column::text(&["b", "a", "b"]);
        let b = Column::Int64(array![2, 9, 1]);
        assert_eq!(groups(&[&a, &b], 3), vec![vec![1], vec![2], vec![0]]);
    }
}
