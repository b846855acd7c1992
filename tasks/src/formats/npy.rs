//! numpy's `.npy` (one array) and `.npz` (a zip of `.npy` files, one per
//! column, as numpy.savez writes it). A 1-D array is one column; a 1-D
//! record array is one column per field.

use super::dtype::{parse_fields, Encoded, Scalar};
use crate::{Column, Table};
use std::borrow::Cow;
use std::io::{Read, Seek, Write};

const MAGIC: &[u8] = b"\x93NUMPY";

/// Decodes one `.npy` file; a plain array becomes the column `name`. With
/// `partial`, `bytes` is the start of the file and holds as many rows as fit.
pub(crate) fn read_npy(
    bytes: &[u8],
    name: &str,
    origin: &str,
    partial: bool,
) -> Result<Table, String> {
    let fail = |e: String| format!("{origin}: {e}");
    if !bytes.starts_with(MAGIC) || bytes.len() < 10 {
        return Err(fail("not a .npy file (no \\x93NUMPY header)".into()));
    }
    let (len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(fail(format!(".npy format version {v} is not supported"))),
    };
    let header = bytes
        .get(start..start + len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| fail("the .npy header is truncated or not text".into()))?;
    let data = &bytes[start + len..];
    let descr =
        dict_value(header, "descr").ok_or_else(|| fail("the .npy header has no 'descr'".into()))?;
    let shape =
        dict_value(header, "shape").ok_or_else(|| fail("the .npy header has no 'shape'".into()))?;
    let dims: Vec<usize> = shape
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| fail(format!("bad shape {shape}"))))
        .collect::<Result<_, _>>()?;
    let [mut rows] = dims[..] else {
        return Err(fail(format!(
            "the array has shape {shape}; rtl reads 1-D arrays"
        )));
    };
    let fields = if descr.starts_with('[') {
        parse_fields(descr).map_err(fail)?
    } else {
        vec![(name.to_string(), unquote(descr).to_string())]
    };
    let scalars = fields
        .iter()
        .map(|(n, d)| Scalar::parse(d).map_err(|e| fail(format!("field `{n}`: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let record: usize = scalars.iter().map(|s| s.size()).sum();
    if record == 0 && rows > 0 {
        // Nothing would bound the rows a header claims.
        return Err(fail(format!(
            "its values take no bytes (dtype {descr}); rtl reads values of one byte or more"
        )));
    }
    if partial && record > 0 {
        rows = rows.min(data.len() / record);
    }
    match rows.checked_mul(record) {
        Some(need) if need <= data.len() => {}
        need => {
            let need = need.map_or("more".to_string(), |n| n.to_string());
            return Err(fail(format!(
                "{rows} rows need {need} bytes of data, the file has {}",
                data.len()
            )));
        }
    }
    let mut offset = 0;
    let mut columns = Vec::with_capacity(fields.len());
    for ((field, _), scalar) in fields.into_iter().zip(scalars) {
        let column = scalar
            .decode(data, rows, offset, record)
            .map_err(|e| fail(format!("`{field}`: {e}")))?;
        columns.push((field, column));
        offset += scalar.size();
    }
    Table::from_columns(columns).map_err(fail)
}

/// The `.npy` bytes of one column.
pub(crate) fn write_npy(column: &Column) -> Vec<u8> {
    let (mut out, data) = npy_parts(column);
    out.extend_from_slice(&data);
    out
}

/// One column's `.npy` file in two parts: its header, and its data,
/// borrowed from the column where its bytes are the file's already (a
/// contiguous number or bool column on a little-endian machine), so a
/// large column is written out without a copy.
pub(crate) fn npy_parts(column: &Column) -> (Vec<u8>, Cow<'_, [u8]>) {
    let enc = Encoded::of(column);
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({},), }}",
        enc.descr,
        column.len()
    );
    // numpy pads the header with spaces so the data starts 64-aligned.
    let unpadded = MAGIC.len() + 4 + dict.len() + 1;
    let padding = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + padding + 1;
    let mut header = Vec::with_capacity(unpadded + padding);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&[1, 0]);
    header.extend_from_slice(&(header_len as u16).to_le_bytes());
    header.extend_from_slice(dict.as_bytes());
    header.extend(std::iter::repeat_n(b' ', padding));
    header.push(b'\n');
    let borrowed: Option<&[u8]> = match column {
        _ if cfg!(target_endian = "big") => None,
        Column::Float64(v) => v.as_slice().map(bytemuck::cast_slice),
        Column::Int64(v) => v.as_slice().map(bytemuck::cast_slice),
        Column::Bool(v) => v.as_slice().map(bytemuck::cast_slice),
        Column::Utf8(_) => None,
    };
    if let Some(bytes) = borrowed {
        return (header, Cow::Borrowed(bytes));
    }
    let mut data = vec![0; enc.size * column.len()];
    enc.write(&mut data, 0, enc.size);
    (header, Cow::Owned(data))
}

/// The most room an `.npz` entry's stated size reserves before its bytes
/// are read.
const RESERVE_AT_MOST: usize = 1 << 30;

/// Reads every array of an `.npz` archive as a column named after its
/// entry; with `limit`, only the first `limit` bytes of each, and as many
/// rows as every column has.
pub(crate) fn read_npz(
    reader: impl Read + Seek,
    origin: &str,
    limit: Option<usize>,
) -> Result<Table, String> {
    let mut archive = zip::ZipArchive::new(reader)
        .map_err(|e| format!("{origin}: not a zip (.npz) archive: {e}"))?;
    let mut columns = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| format!("{origin}: {e}"))?;
        let name = entry.name().trim_end_matches(".npy").to_string();
        // Room for the whole entry at once: grown piece by piece, a large
        // column's buffer lands on fresh pages every time instead of
        // reusing the one freed by the last run (see `alloc`). The size is
        // the archive's word, so it is only a hint, and a bounded one.
        let expected = limit.map_or(entry.size(), |n| entry.size().min(n as u64));
        let mut bytes = Vec::new();
        let _ =
            bytes.try_reserve_exact(usize::try_from(expected).unwrap_or(0).min(RESERVE_AT_MOST));
        let read = match limit {
            Some(n) => (&mut entry).take(n as u64).read_to_end(&mut bytes),
            None => entry.read_to_end(&mut bytes),
        };
        read.map_err(|e| format!("{origin}: entry {name}: {e}"))?;
        let table = read_npy(
            &bytes,
            &name,
            &format!("{origin}: entry {name}.npy"),
            limit.is_some(),
        )?;
        columns.extend(table.into_columns());
    }
    if limit.is_some() {
        let rows = columns.iter().map(|(_, c)| c.len()).min().unwrap_or(0);
        columns = columns
            .into_iter()
            .map(|(n, c)| (n, c.slice(0, rows)))
            .collect();
    }
    Table::from_columns(columns).map_err(|e| format!("{origin}: {e}"))
}

/// Writes `table` as an `.npz` archive, one uncompressed `.npy` per column.
pub(crate) fn write_npz(table: &Table, writer: impl Write + Seek) -> Result<(), String> {
    let mut zip = zip::ZipWriter::new(writer);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(table.wire_size() > u32::MAX as usize / 2);
    for (name, column) in table.iter() {
        zip.start_file(format!("{name}.npy"), options)
            .map_err(|e| e.to_string())?;
        zip.write_all(&write_npy(column))
            .map_err(|e| e.to_string())?;
    }
    zip.finish().map_err(|e| e.to_string())?;
    Ok(())
}

/// The text of `key`'s value in a Python dict literal (a string, a list,
/// a tuple or a bare word).
fn dict_value<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let at = dict
        .find(&format!("'{key}'"))
        .or_else(|| dict.find(&format!("\"{key}\"")))?;
    let rest = dict[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let end = match rest.chars().next()? {
        q @ ('\'' | '"') => rest[1..].find(q)? + 2,
        open @ ('[' | '(') => {
            let close = if open == '[' { ']' } else { ')' };
            let mut depth = 0;
            let mut end = None;
            for (i, c) in rest.char_indices() {
                if c == open {
                    depth += 1;
                } else if c == close {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
            }
            end?
        }
        _ => rest.find([',', '}']).unwrap_or(rest.len()),
    };
    Some(rest[..end].trim())
}

fn unquote(s: &str) -> &str {
    s.trim_matches(|c| c == '\'' || c == '"')
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use std::io::Cursor;

    fn table() -> Table {
        Table::from_columns(vec![
            ("n".into(), Column::Int64(array![1, 2, 3])),
            ("x".into(), Column::Float64(array![0.5, f64::NAN, -1.0])),
            ("ok".into(), Column::Bool(array![true, false, true])),
            ("s".into(), Column::text(&["a", "bb", "ccc"])),
        ])
        .expect("table")
    }

    #[test]
    fn npy_headers_are_64_aligned_and_read_back() {
        let column = Column::Float64(array![1.0, 2.5]);
        let bytes = write_npy(&column);
        assert_eq!((bytes.len() - 16) % 64, 0);
        assert_eq!(
            bytes[10 + usize::from(u16::from_le_bytes([bytes[8], bytes[9]])) - 1],
            b'\n'
        );
        let t = read_npy(&bytes, "v", "v.npy", false).expect("read");
        assert_eq!(t.column("v"), Some(&column));
    }

    #[test]
    fn npz_round_trips_every_type() {
        let mut buf = Cursor::new(Vec::new());
        write_npz(&table(), &mut buf).expect("write");
        buf.set_position(0);
        let back = read_npz(buf, "t.npz", None).expect("read");
        assert_eq!(format!("{back:?}"), format!("{:?}", table()));
    }

    #[test]
    fn record_arrays_and_bad_shapes() {
        let header =
            "{'descr': [('a', '<i4'), ('b', '>f8')], 'fortran_order': False, 'shape': (1,), }";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&7i32.to_le_bytes());
        bytes.extend_from_slice(&2.5f64.to_be_bytes());
        let t = read_npy(&bytes, "ignored", "r.npy", false).expect("records");
        assert_eq!(t.column("a"), Some(&Column::Int64(array![7])));
        assert_eq!(t.column("b"), Some(&Column::Float64(array![2.5])));
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        let err = read_npy(&bytes, "m", "m.npy", false).expect_err("2-D");
        assert!(err.contains("shape (2, 2)"), "{err}");
        assert!(read_npy(b"PK\x03\x04", "z", "z.npy", false)
            .expect_err("zip")
            .contains("not a .npy"));
    }
}
