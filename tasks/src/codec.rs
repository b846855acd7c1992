//! A column's bytes: the one encoding the wire, the LMDB cache and the
//! table's size estimates share (docs/PROTOCOL.md, "Column frames").
//!
//! int64 and float64 are 8 little-endian bytes per value, bool one byte
//! (0 or 1), utf8 `rows + 1` little-endian u64 offsets followed by the
//! concatenated UTF-8 bytes. Decoding checks every size against the bytes
//! there before allocating anything, since sizes come from other
//! processes.
//!
//! Written by hand because the layout is numpy's own (a `.npy` body or a
//! `frombuffer` call reads a frame as it is) and numeric columns go in and
//! out with one memory copy on little-endian hosts; a general serializer
//! would frame and copy value by value.

use crate::{Column, DType, Table};
use ndarray::Array1;
use serde::{Deserialize, Serialize};

/// One column's name and type, in frame order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// The column's name.
    pub name: String,
    /// Its type.
    pub dtype: DType,
}

/// The column specs of `table`, in frame order.
pub fn schema_of(table: &Table) -> Vec<ColumnSpec> {
    table
        .schema()
        .into_iter()
        .map(|(name, dtype)| ColumnSpec { name, dtype })
        .collect()
}

/// Bytes of rows `start..end` of a column in wire encoding.
pub fn wire_size_of_rows(column: &Column, start: usize, end: usize) -> usize {
    match column {
        Column::Int64(_) | Column::Float64(_) => (end - start) * 8,
        Column::Bool(_) => end - start,
        Column::Utf8(a) => {
            (end - start + 1) * 8
                + a.slice(ndarray::s![start..end])
                    .iter()
                    .map(String::len)
                    .sum::<usize>()
        }
    }
}

/// Rows `start..end` of a column in wire encoding, written into `out`
/// (`wire_size_of_rows` long): for writers that need them in one buffer
/// (the LMDB cache).
pub fn encode_rows_into(column: &Column, start: usize, end: usize, out: &mut [u8]) {
    let rows = ndarray::s![start..end];
    match column {
        Column::Int64(a) => words_into(a.slice(rows), out),
        Column::Float64(a) => words_into(a.slice(rows), out),
        Column::Bool(a) => {
            for (byte, v) in out.iter_mut().zip(a.slice(rows).iter()) {
                *byte = u8::from(*v);
            }
        }
        Column::Utf8(a) => {
            let values = a.slice(rows);
            let (offsets, data) = out.split_at_mut((values.len() + 1) * 8);
            let mut at = 0u64;
            offsets[..8].copy_from_slice(&0u64.to_le_bytes());
            for (slot, s) in offsets[8..].chunks_exact_mut(8).zip(values.iter()) {
                let start = at as usize;
                data[start..start + s.len()].copy_from_slice(s.as_bytes());
                at += s.len() as u64;
                slot.copy_from_slice(&at.to_le_bytes());
            }
        }
    }
}

/// Decodes one column frame of `rows` values of `dtype`, checking its size
/// and contents.
pub fn decode_column(dtype: DType, rows: usize, bytes: &[u8]) -> Result<Column, String> {
    decode_column_parts(dtype, &[(rows, bytes)])
}

/// Decodes consecutive frames of one column (`(rows, bytes)` each) into a
/// single column, written once into storage of its final size.
pub fn decode_column_parts(dtype: DType, parts: &[(usize, &[u8])]) -> Result<Column, String> {
    let total = parts
        .iter()
        .try_fold(0usize, |n, (rows, _)| n.checked_add(*rows))
        .ok_or("row count is too large")?;
    // Row counts come from the sender: nothing is allocated for them until
    // the bytes that hold those rows are known to be there.
    for &(rows, bytes) in parts {
        frame_holds(dtype, rows, bytes)?;
    }
    Ok(match dtype {
        DType::Int64 => Column::Int64(Array1::from(decode_words::<i64>(parts, total)?)),
        DType::Float64 => Column::Float64(Array1::from(decode_words::<f64>(parts, total)?)),
        DType::Bool => {
            let mut values = Vec::with_capacity(total);
            for &(_, bytes) in parts {
                for (i, b) in bytes.iter().enumerate() {
                    values.push(match b {
                        0 => false,
                        1 => true,
                        other => {
                            return Err(format!("bool value {other} at row {i} is neither 0 nor 1"))
                        }
                    });
                }
            }
            Column::Bool(Array1::from(values))
        }
        DType::Utf8 => {
            let mut values = Vec::with_capacity(total);
            for &(rows, bytes) in parts {
                decode_utf8_into(rows, bytes, &mut values)?;
            }
            Column::Utf8(Array1::from(values))
        }
    })
}

/// Checks, overflow-safe, that `bytes` can hold `rows` values of
/// `dtype`: exactly for fixed-width types, at least the offsets for utf8.
pub fn frame_holds(dtype: DType, rows: usize, bytes: &[u8]) -> Result<(), String> {
    let too_many = || {
        format!(
            "{dtype} frame said to hold {rows} rows, more than any message can (it has {} bytes)",
            bytes.len()
        )
    };
    match dtype {
        DType::Int64 | DType::Float64 => frame_size(
            dtype,
            rows,
            bytes,
            rows.checked_mul(8).ok_or_else(too_many)?,
        ),
        DType::Bool => frame_size(dtype, rows, bytes, rows),
        DType::Utf8 => {
            let offsets = rows
                .checked_add(1)
                .and_then(|n| n.checked_mul(8))
                .ok_or_else(too_many)?;
            if bytes.len() < offsets {
                return Err(format!(
                    "utf8 frame of {rows} rows needs {offsets} bytes of offsets, has {} bytes",
                    bytes.len()
                ));
            }
            Ok(())
        }
    }
}

/// Checks that a frame of `rows` rows has the `n` bytes it must have.
fn frame_size(dtype: DType, rows: usize, bytes: &[u8], n: usize) -> Result<(), String> {
    if bytes.len() == n {
        Ok(())
    } else {
        Err(format!(
            "{dtype} frame of {rows} rows must have {n} bytes, has {}",
            bytes.len()
        ))
    }
}

/// The 8-byte number types of columns: plain bytes (`Pod`), every bit
/// pattern a valid value.
pub trait Word: bytemuck::Pod {
    /// The value of 8 little-endian bytes.
    fn from_le(bytes: [u8; 8]) -> Self;
    /// The value's 8 little-endian bytes.
    fn to_le(self) -> [u8; 8];
}

impl Word for i64 {
    fn from_le(bytes: [u8; 8]) -> i64 {
        i64::from_le_bytes(bytes)
    }
    fn to_le(self) -> [u8; 8] {
        self.to_le_bytes()
    }
}

impl Word for f64 {
    fn from_le(bytes: [u8; 8]) -> f64 {
        f64::from_le_bytes(bytes)
    }
    fn to_le(self) -> [u8; 8] {
        self.to_le_bytes()
    }
}

/// Writes a numeric column's little-endian bytes into `out`: one memory
/// copy on little-endian hosts, value by value elsewhere.
fn words_into<T: Word>(a: ndarray::ArrayView1<'_, T>, out: &mut [u8]) {
    match le_bytes(&a) {
        Some(bytes) => out[..bytes.len()].copy_from_slice(bytes),
        None => {
            for (chunk, v) in out.chunks_exact_mut(8).zip(a.iter()) {
                chunk.copy_from_slice(&v.to_le());
            }
        }
    }
}

/// The column's memory as its little-endian bytes, where it already is
/// that: on little-endian hosts, for values laid out contiguously.
pub fn le_bytes<'a, T: Word>(a: &ndarray::ArrayView1<'a, T>) -> Option<&'a [u8]> {
    let values = a.to_slice().filter(|_| cfg!(target_endian = "little"))?;
    Some(bytemuck::cast_slice(values))
}

/// The values of consecutive frames of 8-byte words (sizes checked by the
/// caller). Frames need not be aligned: each word is read on its own, which
/// the compiler turns into plain copies.
fn decode_words<T: Word>(parts: &[(usize, &[u8])], total: usize) -> Result<Vec<T>, String> {
    let mut values: Vec<T> = Vec::with_capacity(total);
    for &(_, bytes) in parts {
        values.extend(bytes.chunks_exact(8).map(|c| {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            T::from_le(word)
        }));
    }
    Ok(values)
}

fn decode_utf8_into(rows: usize, bytes: &[u8], values: &mut Vec<String>) -> Result<(), String> {
    let head = rows
        .checked_add(1)
        .and_then(|n| n.checked_mul(8))
        .ok_or_else(|| format!("row count {rows} is too large"))?;
    if bytes.len() < head {
        return Err(format!(
            "utf8 frame of {rows} rows needs {head} bytes of offsets, has {} bytes",
            bytes.len()
        ));
    }
    let (offsets, data) = bytes.split_at(head);
    let offsets: Vec<u64> = offsets
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect();
    if offsets[0] != 0 || offsets[rows] != data.len() as u64 {
        return Err(format!(
            "utf8 offsets must start at 0 and end at the data length {}",
            data.len()
        ));
    }
    for (i, w) in offsets.windows(2).enumerate() {
        let (a, b) = (w[0] as usize, w[1] as usize);
        if a > b || b > data.len() {
            return Err(format!("utf8 offsets decrease at row {i}"));
        }
        let text =
            std::str::from_utf8(&data[a..b]).map_err(|_| format!("row {i} is not valid UTF-8"))?;
        values.push(text.to_string());
    }
    Ok(())
}

/// Bytes of rows `start..end` of a column in wire encoding.
pub fn encoded_rows_size(dtype: DType, column: &[u8], start: usize, end: usize) -> usize {
    match dtype {
        DType::Int64 | DType::Float64 => (end - start) * 8,
        DType::Bool => end - start,
        DType::Utf8 => {
            (end - start + 1) * 8 + offset(column, end).saturating_sub(offset(column, start))
        }
    }
}

/// Writes rows `start..end` of a column of `rows` rows into `out` (sized
/// by [`encoded_rows_size`]); text offsets are rebased to the piece.
pub fn copy_encoded_rows(
    dtype: DType,
    column: &[u8],
    rows: usize,
    (start, end): (usize, usize),
    out: &mut [u8],
) -> Result<(), String> {
    let corrupt = || "a text column's offsets run past its data".to_string();
    match dtype {
        DType::Int64 | DType::Float64 => out.copy_from_slice(&column[start * 8..end * 8]),
        DType::Bool => out.copy_from_slice(&column[start..end]),
        DType::Utf8 => {
            let data = &column[(rows + 1) * 8..];
            let base = offset(column, start);
            let (offsets, text) = out.split_at_mut((end - start + 1) * 8);
            for (slot, i) in offsets.chunks_exact_mut(8).zip(start..=end) {
                let at = offset(column, i).checked_sub(base).ok_or_else(corrupt)?;
                slot.copy_from_slice(&(at as u64).to_le_bytes());
            }
            let bytes = data.get(base..offset(column, end)).ok_or_else(corrupt)?;
            if bytes.len() != text.len() {
                return Err(corrupt());
            }
            text.copy_from_slice(bytes);
        }
    }
    Ok(())
}

/// Offset `i` of a utf8 column in wire encoding.
fn offset(column: &[u8], i: usize) -> usize {
    let mut word = [0u8; 8];
    word.copy_from_slice(&column[i * 8..i * 8 + 8]);
    u64::from_le_bytes(word) as usize
}

/// Size of an encoded column of `rows` rows at the start of `rest` (a
/// utf8 column carries its size in its last offset).
pub fn encoded_column_size(dtype: DType, rows: usize, rest: &[u8]) -> Result<usize, String> {
    Ok(match dtype {
        DType::Int64 | DType::Float64 => rows * 8,
        DType::Bool => rows,
        DType::Utf8 => {
            let head = (rows + 1) * 8;
            let last = rest.get(rows * 8..head).ok_or("utf8 column is truncated")?;
            head + u64::from_le_bytes(last.try_into().map_err(|_| "utf8 column is truncated")?)
                as usize
        }
    })
}
