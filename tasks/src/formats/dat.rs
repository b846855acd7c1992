//! raspi-rtl's `.dat` + `.meta` pair: the raw bytes of a numpy record array
//! (fields packed, no padding), and beside it the record's dtype list in
//! the original's encoding: base64 of the Python repr of `dtype.descr`, with
//! `(` written `<@` and `)` written `@>`. Existing raspi-rtl data files load
//! unchanged, and files rtl writes load in raspi-rtl.

use super::dtype::{fields_literal, parse_fields, Encoded, Scalar};
use crate::Table;

/// Decodes a `.meta` file's text into `(name, descriptor)` pairs.
pub(crate) fn read_meta(text: &str, origin: &str) -> Result<Vec<(String, String)>, String> {
    let bytes = base64_decode(text.trim()).map_err(|e| format!("{origin}: not base64: {e}"))?;
    let literal = String::from_utf8(bytes)
        .map_err(|_| format!("{origin}: the decoded dtype list is not UTF-8"))?;
    let literal = literal.replace("<@", "(").replace("@>", ")");
    let fields = parse_fields(&literal).map_err(|e| format!("{origin}: {e}"))?;
    if fields.is_empty() {
        return Err(format!("{origin}: lists no columns"));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some((name, _)) = fields.iter().find(|(name, _)| !seen.insert(name.as_str())) {
        return Err(format!("{origin}: lists column `{name}` twice"));
    }
    Ok(fields)
}

/// The `.meta` text for `fields`.
pub(crate) fn write_meta(fields: &[(String, String)]) -> String {
    let literal = fields_literal(fields).replace('(', "<@").replace(')', "@>");
    base64_encode(literal.as_bytes())
}

/// Bytes of one record with `fields`.
pub(crate) fn record_size(fields: &[(String, String)], origin: &str) -> Result<usize, String> {
    fields
        .iter()
        .map(|(name, descr)| {
            Scalar::parse(descr)
                .map(Scalar::size)
                .map_err(|e| format!("{origin}: field `{name}`: {e}"))
        })
        .sum::<Result<usize, String>>()
        .and_then(|n| {
            if n == 0 {
                Err(format!("{origin}: the records have no bytes"))
            } else {
                Ok(n)
            }
        })
}

/// Decodes a record array with `fields` into a table.
pub(crate) fn decode(
    bytes: &[u8],
    fields: &[(String, String)],
    origin: &str,
) -> Result<Table, String> {
    let scalars = fields
        .iter()
        .map(|(name, descr)| {
            Scalar::parse(descr).map_err(|e| format!("{origin}: field `{name}`: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let record: usize = scalars.iter().map(|s| s.size()).sum();
    if record == 0 || !bytes.len().is_multiple_of(record) {
        return Err(format!(
            "{origin}: {} bytes is not a whole number of {record}-byte records as the dtypes say",
            bytes.len()
        ));
    }
    let rows = bytes.len() / record;
    let mut offset = 0;
    let mut columns = Vec::with_capacity(fields.len());
    for ((name, _), scalar) in fields.iter().zip(scalars) {
        let column = scalar
            .decode(bytes, rows, offset, record)
            .map_err(|e| format!("{origin}: field `{name}`: {e}"))?;
        columns.push((name.clone(), column));
        offset += scalar.size();
    }
    Table::from_columns(columns).map_err(|e| format!("{origin}: {e}"))
}

/// Encodes `table` as packed records (their fields: [`fields`]).
pub(crate) fn encode(table: &Table) -> Vec<u8> {
    let encoded: Vec<Encoded> = table.iter().map(|(_, c)| Encoded::of(c)).collect();
    let record: usize = encoded.iter().map(|e| e.size).sum();
    let mut out = vec![0u8; record * table.rows()];
    let mut offset = 0;
    for e in &encoded {
        e.write(&mut out, offset, record);
        offset += e.size;
    }
    out
}

/// The `.meta` fields of `table`: each column's name and numpy type.
pub(crate) fn fields(table: &Table) -> Vec<(String, String)> {
    table
        .iter()
        .map(|(n, c)| (n.to_string(), Encoded::of(c).descr))
        .collect()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return Err(format!("unexpected character {:?}", c as char)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Column;
    use ndarray::array;

    #[test]
    fn a_meta_lists_each_column_once() {
        let twice = [("a", "<i8"), ("a", "<f8")].map(|(n, d)| (n.to_string(), d.to_string()));
        let err = read_meta(&write_meta(&twice), "t.meta").expect_err("twice");
        assert_eq!(err, "t.meta: lists column `a` twice");
        let err = read_meta(&write_meta(&[]), "e.meta").expect_err("none");
        assert_eq!(err, "e.meta: lists no columns");
    }

    #[test]
    fn base64_matches_python() {
        // base64.b64encode(b"[<@'a', '<i8'@>]")
        assert_eq!(
            base64_encode(b"[<@'a', '<i8'@>]"),
            "WzxAJ2EnLCAnPGk4J0A+XQ=="
        );
        assert_eq!(
            base64_decode("WzxAJ2EnLCAnPGk4J0A+XQ==").expect("decode"),
            b"[<@'a', '<i8'@>]"
        );
        for n in 0..5 {
            let bytes: Vec<u8> = (0..n).map(|i| i * 77).collect();
            assert_eq!(
                base64_decode(&base64_encode(&bytes)).expect("round trip"),
                bytes
            );
        }
    }

    #[test]
    fn records_round_trip_with_meta() {
        let table = Table::from_columns(vec![
            ("id".into(), Column::Int64(array![1, -2])),
            ("x".into(), Column::Float64(array![0.5, f64::INFINITY])),
            ("ok".into(), Column::Bool(array![true, false])),
            ("site".into(), Column::text(&["n", "south"])),
        ])
        .expect("table");
        let (bytes, fields) = (encode(&table), fields(&table));
        assert_eq!(bytes.len(), 2 * (8 + 8 + 1 + 20));
        let meta = write_meta(&fields);
        let back =
            decode(&bytes, &read_meta(&meta, "t.meta").expect("meta"), "t.dat").expect("decode");
        assert_eq!(back, table);
    }

    #[test]
    fn a_short_file_is_named() {
        let fields = vec![("a".to_string(), "<i8".to_string())];
        let err = decode(&[0u8; 12], &fields, "x.dat").expect_err("short");
        assert_eq!(
            err,
            "x.dat: 12 bytes is not a whole number of 8-byte records as the dtypes say"
        );
    }
}
