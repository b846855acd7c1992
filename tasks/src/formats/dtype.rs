//! numpy dtypes: the descriptors (`'<i8'`, `'|b1'`, `'<U10'`), the Python
//! literal that lists a record's fields (`[('a', '<i8'), ('b', '<f8')]`),
//! and the codec between raw little- or big-endian bytes and [`Column`]s.
//! `.dat`, `.npy` and `.npz` all go through this one codec.

use crate::Column;
use ndarray::Array1;

/// One numpy scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    Int {
        size: usize,
        signed: bool,
        big: bool,
    },
    Float {
        size: usize,
        big: bool,
    },
    Bool,
    /// `S<n>`: n bytes, NUL-padded.
    Bytes(usize),
    /// `U<n>`: n UTF-32 code units.
    Unicode {
        chars: usize,
        big: bool,
    },
}

impl Scalar {
    /// Parses a descriptor such as `<i8`, `|b1`, `?`, `>f4`, `<U12`, `|S3`.
    pub(crate) fn parse(descr: &str) -> Result<Scalar, String> {
        let bad = || {
            format!("numpy dtype {descr:?} is not supported; rtl reads integers, floats, bools and strings")
        };
        if descr == "?" {
            return Ok(Scalar::Bool);
        }
        let (big, rest) = match descr.as_bytes().first() {
            Some(b'>') => (true, &descr[1..]),
            Some(b'<' | b'|' | b'=') => (false, &descr[1..]),
            _ => (false, descr),
        };
        let mut chars = rest.chars();
        let kind = chars.next().ok_or_else(bad)?;
        let size: usize = chars.as_str().parse().map_err(|_| bad())?;
        match (kind, size) {
            ('i', 1 | 2 | 4 | 8) => Ok(Scalar::Int {
                size,
                signed: true,
                big,
            }),
            ('u', 1 | 2 | 4 | 8) => Ok(Scalar::Int {
                size,
                signed: false,
                big,
            }),
            ('f', 4 | 8) => Ok(Scalar::Float { size, big }),
            ('b', 1) => Ok(Scalar::Bool),
            ('S', n) => Ok(Scalar::Bytes(n)),
            ('U', n) => Ok(Scalar::Unicode { chars: n, big }),
            _ => Err(bad()),
        }
    }

    /// The column type values of this scalar become.
    pub(crate) fn column_type(self) -> crate::DType {
        match self {
            Scalar::Int { .. } => crate::DType::Int64,
            Scalar::Float { .. } => crate::DType::Float64,
            Scalar::Bool => crate::DType::Bool,
            Scalar::Bytes(_) | Scalar::Unicode { .. } => crate::DType::Utf8,
        }
    }

    /// Bytes one value takes.
    pub(crate) fn size(self) -> usize {
        match self {
            Scalar::Int { size, .. } | Scalar::Float { size, .. } => size,
            Scalar::Bool => 1,
            Scalar::Bytes(n) => n,
            Scalar::Unicode { chars, .. } => 4 * chars,
        }
    }

    /// Decodes `rows` values, the i-th at `bytes[offset + i * stride..]`.
    pub(crate) fn decode(
        self,
        bytes: &[u8],
        rows: usize,
        offset: usize,
        stride: usize,
    ) -> Result<Column, String> {
        // A plain array of rtl's own types, as rtl and numpy write them:
        // its bytes are the column's, so one copy makes it (opening an
        // .npz of three 1M-row columns took about 10 ms less than value by
        // value, from the nodes' PROFILE lines).
        if stride == self.size() && cfg!(target_endian = "little") {
            let data = &bytes[offset..offset + rows * stride];
            match self {
                Scalar::Float {
                    size: 8,
                    big: false,
                } => return Ok(Column::Float64(bytemuck::pod_collect_to_vec(data).into())),
                Scalar::Int {
                    size: 8,
                    signed: true,
                    big: false,
                } => return Ok(Column::Int64(bytemuck::pod_collect_to_vec(data).into())),
                _ => {}
            }
        }
        let field = |i: usize| &bytes[offset + i * stride..offset + i * stride + self.size()];
        let word = |b: &[u8], big: bool| -> u64 {
            let mut buf = [0u8; 8];
            if big {
                buf[8 - b.len()..].copy_from_slice(b);
                u64::from_be_bytes(buf)
            } else {
                buf[..b.len()].copy_from_slice(b);
                u64::from_le_bytes(buf)
            }
        };
        Ok(match self {
            Scalar::Int { size, signed, big } => {
                let values = (0..rows)
                    .map(|i| {
                        let raw = word(field(i), big);
                        if signed {
                            let shift = 64 - 8 * size as u32;
                            Ok(((raw << shift) as i64) >> shift)
                        } else {
                            i64::try_from(raw).map_err(|_| {
                                format!("row {i}: unsigned value {raw} does not fit int64")
                            })
                        }
                    })
                    .collect::<Result<Array1<i64>, String>>()?;
                Column::Int64(values)
            }
            Scalar::Float { size: 4, big } => Column::Float64(
                (0..rows)
                    .map(|i| f32::from_bits(word(field(i), big) as u32) as f64)
                    .collect(),
            ),
            Scalar::Float { big, .. } => Column::Float64(
                (0..rows)
                    .map(|i| f64::from_bits(word(field(i), big)))
                    .collect(),
            ),
            Scalar::Bool => Column::Bool((0..rows).map(|i| field(i)[0] != 0).collect()),
            Scalar::Bytes(_) => Column::Utf8(
                (0..rows)
                    .map(|i| {
                        let raw = field(i);
                        let end = raw.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
                        std::str::from_utf8(&raw[..end])
                            .map(str::to_string)
                            .map_err(|_| format!("row {i}: bytes are not UTF-8 text"))
                    })
                    .collect::<Result<Array1<String>, String>>()?,
            ),
            Scalar::Unicode { big, .. } => Column::Utf8(
                (0..rows)
                    .map(|i| {
                        // As numpy reads it: only trailing NULs are padding.
                        let units: Vec<u32> = field(i)
                            .chunks_exact(4)
                            .map(|c| word(c, big) as u32)
                            .collect();
                        let end = units.iter().rposition(|u| *u != 0).map_or(0, |p| p + 1);
                        units[..end]
                            .iter()
                            .map(|&u| {
                                char::from_u32(u)
                                    .ok_or_else(|| format!("row {i}: {u:#x} is not a character"))
                            })
                            .collect::<Result<String, String>>()
                    })
                    .collect::<Result<Array1<String>, String>>()?,
            ),
        })
    }
}

/// How rtl writes a column: its descriptor and its little-endian bytes at
/// `out[offset + i * stride..]`.
pub(crate) struct Encoded<'a> {
    pub(crate) descr: String,
    pub(crate) size: usize,
    column: &'a Column,
}

impl<'a> Encoded<'a> {
    pub(crate) fn of(column: &'a Column) -> Encoded<'a> {
        let (descr, size) = match column {
            Column::Int64(_) => ("<i8".to_string(), 8),
            Column::Float64(_) => ("<f8".to_string(), 8),
            Column::Bool(_) => ("|b1".to_string(), 1),
            Column::Utf8(a) => {
                let chars = a
                    .iter()
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(1);
                (format!("<U{chars}"), 4 * chars)
            }
        };
        Encoded {
            descr,
            size,
            column,
        }
    }

    pub(crate) fn write(&self, out: &mut [u8], offset: usize, stride: usize) {
        let mut at = offset;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += stride;
        };
        match self.column {
            Column::Int64(a) => a.iter().for_each(|v| put(&v.to_le_bytes())),
            Column::Float64(a) => a.iter().for_each(|v| put(&v.to_le_bytes())),
            Column::Bool(a) => a.iter().for_each(|v| put(&[u8::from(*v)])),
            Column::Utf8(a) => {
                let mut buf = vec![0u8; self.size];
                for s in a {
                    buf.fill(0);
                    for (slot, c) in buf.chunks_exact_mut(4).zip(s.chars()) {
                        slot.copy_from_slice(&(c as u32).to_le_bytes());
                    }
                    put(&buf);
                }
            }
        }
    }
}

/// Parses the Python literal of a record dtype: `[('a', '<i8'), ...]`.
pub(crate) fn parse_fields(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut p = Literal {
        s: text.as_bytes(),
        at: 0,
    };
    p.expect(b'[')?;
    let mut fields = Vec::new();
    loop {
        p.skip_space();
        if p.eat(b']') {
            break;
        }
        p.expect(b'(')?;
        let name = p.string()?;
        p.expect(b',')?;
        let descr = p.string()?;
        p.skip_space();
        if !p.eat(b')') {
            return Err(format!(
                "field {name:?} has a shape or more; rtl reads one value per field"
            ));
        }
        fields.push((name, descr));
        p.skip_space();
        if !p.eat(b',') {
            p.expect(b']')?;
            break;
        }
    }
    p.skip_space();
    if p.at != p.s.len() {
        return Err(format!(
            "unexpected text after the field list at byte {}",
            p.at
        ));
    }
    Ok(fields)
}

/// The Python literal of a record dtype, as numpy's `dtype.descr` prints it.
pub(crate) fn fields_literal(fields: &[(String, String)]) -> String {
    let items: Vec<String> = fields
        .iter()
        .map(|(name, descr)| format!("({}, {})", py_str(name), py_str(descr)))
        .collect();
    format!("[{}]", items.join(", "))
}

/// A Python string literal as repr() writes it.
fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

struct Literal<'a> {
    s: &'a [u8],
    at: usize,
}

impl Literal<'_> {
    fn skip_space(&mut self) {
        while self.s.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_space();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "expected `{}` at byte {} of the dtype list",
                c as char, self.at
            ))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.skip_space();
        let quote = match self.s.get(self.at) {
            Some(q @ (b'\'' | b'"')) => *q,
            _ => {
                return Err(format!(
                    "expected a quoted string at byte {} of the dtype list",
                    self.at
                ))
            }
        };
        self.at += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.at) {
            self.at += 1;
            match c {
                b'\\' => {
                    let e = *self
                        .s
                        .get(self.at)
                        .ok_or("unfinished escape in the dtype list")?;
                    self.at += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        other => other,
                    });
                }
                c if c == quote => {
                    return String::from_utf8(out)
                        .map_err(|_| "a name in the dtype list is not UTF-8".into())
                }
                c => out.push(c),
            }
        }
        Err("unterminated string in the dtype list".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn descriptors() {
        assert_eq!(
            Scalar::parse("<i8"),
            Ok(Scalar::Int {
                size: 8,
                signed: true,
                big: false
            })
        );
        assert_eq!(
            Scalar::parse(">u2"),
            Ok(Scalar::Int {
                size: 2,
                signed: false,
                big: true
            })
        );
        assert_eq!(Scalar::parse("|b1"), Ok(Scalar::Bool));
        assert_eq!(Scalar::parse("<U7").map(Scalar::size), Ok(28));
        assert!(Scalar::parse("<M8[ns]")
            .expect_err("datetime")
            .contains("not supported"));
    }

    #[test]
    fn decode_mixed_widths_and_orders() {
        // i2 little -2, f4 big 1.5
        let bytes = [0xfe, 0xff, 0x3f, 0xc0, 0x00, 0x00];
        let i = Scalar::parse("<i2")
            .expect("i2")
            .decode(&bytes, 1, 0, 6)
            .expect("decode");
        assert_eq!(i, Column::Int64(array![-2]));
        let f = Scalar::parse(">f4")
            .expect("f4")
            .decode(&bytes, 1, 2, 6)
            .expect("decode");
        assert_eq!(f, Column::Float64(array![1.5]));
        let big = Scalar::parse("<u8")
            .expect("u8")
            .decode(&[0xff; 8], 1, 0, 8)
            .expect_err("too big");
        assert!(big.contains("does not fit int64"), "{big}");
    }

    #[test]
    fn text_round_trips() {
        // An embedded NUL is text; only trailing NULs are padding, as in numpy.
        let column = Column::text(&["añb", "", "a\0b"]);
        let enc = Encoded::of(&column);
        assert_eq!(enc.descr, "<U3");
        let mut out = vec![0u8; 3 * enc.size];
        enc.write(&mut out, 0, enc.size);
        let back = Scalar::parse(&enc.descr)
            .expect("descr")
            .decode(&out, 3, 0, enc.size)
            .expect("decode");
        assert_eq!(back, column);
        let s = Scalar::Bytes(4).decode(b"a\0b\0", 1, 0, 4).expect("bytes");
        assert_eq!(s, Column::text(&["a\0b"]));
    }

    #[test]
    fn field_lists() {
        let fields = parse_fields("[('a', '<i8'), (\"it's\", '<f8') , ]").expect("parse");
        assert_eq!(
            fields,
            [
                ("a".to_string(), "<i8".to_string()),
                ("it's".to_string(), "<f8".to_string())
            ]
        );
        assert_eq!(fields_literal(&fields), "[('a', '<i8'), (\"it's\", '<f8')]");
        let err = parse_fields("[('a', '<f8', (3,))]").expect_err("shape");
        assert!(err.contains("shape"), "{err}");
    }
}
