//! calibrate: `gain * column + offset`, in a new column `<column>Cal`.
//!
//! An rtl task program with nothing but Rust's standard library, to show
//! that the task-program protocol (docs/PROTOCOL.md, "Task programs") is
//! small enough to speak by hand: a call is one line of JSON and then each
//! column as a .npy file; the answer is the same, or a line with an error.
//! The columns the task does not touch go back as they came.
//!
//! Build: `rustc --edition 2021 -O calibrate.rs` (beside calibrate.toml).

use std::io::{self, BufRead, Read, Write};

fn main() {
    let stdin = io::stdin();
    let mut calls = stdin.lock();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        match calls.read_until(b'\n', &mut line) {
            Ok(0) => return, // rtl closed stdin: no more calls
            Ok(_) => {}
            Err(e) => fail_hard(&format!("cannot read a call: {e}")),
        }
        let header = match Json::parse(&String::from_utf8_lossy(&line)) {
            Some(h) => h,
            None => fail_hard("a call's first line is not JSON"),
        };
        // Read every column of the call before answering, whatever happens.
        let mut columns = Vec::new();
        for part in header.get("columns").map(Json::items).unwrap_or_default() {
            let name = part.get("name").and_then(Json::text).unwrap_or_default();
            let bytes = part.get("bytes").and_then(Json::number).unwrap_or(0.0) as usize;
            let mut blob = vec![0u8; bytes];
            if let Err(e) = calls.read_exact(&mut blob) {
                fail_hard(&format!("cannot read column {name}: {e}"));
            }
            columns.push((name.to_string(), blob));
        }
        let answer = match calibrate(header.get("kwargs"), &mut columns) {
            Ok(()) => answer_table(&columns),
            Err(message) => format!("{{\"error\": {}}}\n", quoted(&message)).into_bytes(),
        };
        if out.write_all(&answer).and_then(|()| out.flush()).is_err() {
            return; // rtl went away
        }
    }
}

fn fail_hard(why: &str) -> ! {
    eprintln!("calibrate: {why}");
    std::process::exit(2);
}

/// Adds `<column>Cal` to the columns, or says why it cannot.
fn calibrate(kwargs: Option<&Json>, columns: &mut Vec<(String, Vec<u8>)>) -> Result<(), String> {
    let kwargs = kwargs.ok_or("the call has no kwargs")?;
    let column = kwargs.get("column").and_then(Json::text).ok_or("no column")?;
    let gain = kwargs.get("gain").and_then(Json::number).unwrap_or(1.0);
    let offset = kwargs.get("offset").and_then(Json::number).unwrap_or(0.0);
    let (_, blob) = columns
        .iter()
        .find(|(name, _)| name == column)
        .ok_or_else(|| format!("no column {column}"))?;
    let values = numbers(blob).map_err(|e| format!("column {column}: {e}"))?;
    let calibrated: Vec<f64> = values.iter().map(|x| gain * x + offset).collect();
    columns.push((format!("{column}Cal"), npy_f64(&calibrated)));
    Ok(())
}

/// The values of a .npy array of little-endian float64 or int64 numbers.
fn numbers(npy: &[u8]) -> Result<Vec<f64>, String> {
    if npy.len() < 10 || &npy[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".into());
    }
    let (len, start) = match npy[6] {
        1 => (u16::from_le_bytes([npy[8], npy[9]]) as usize, 10),
        _ => (u32::from_le_bytes([npy[8], npy[9], npy[10], npy[11]]) as usize, 12),
    };
    let header = String::from_utf8_lossy(&npy[start..start + len]);
    let data = &npy[start + len..];
    let eight = |chunk: &[u8]| <[u8; 8]>::try_from(chunk).unwrap_or([0; 8]);
    if header.contains("'<f8'") {
        Ok(data.chunks_exact(8).map(|c| f64::from_le_bytes(eight(c))).collect())
    } else if header.contains("'<i8'") {
        Ok(data.chunks_exact(8).map(|c| i64::from_le_bytes(eight(c)) as f64).collect())
    } else {
        Err(format!("is not a number column ({})", header.trim()))
    }
}

/// A .npy file (format 1.0) of float64 values.
fn npy_f64(values: &[f64]) -> Vec<u8> {
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({},), }}", values.len());
    // The data starts 64-byte aligned, as numpy writes it.
    let padding = (64 - (10 + dict.len() + 1) % 64) % 64;
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&((dict.len() + padding + 1) as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat(b' ').take(padding));
    out.push(b'\n');
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn answer_table(columns: &[(String, Vec<u8>)]) -> Vec<u8> {
    let parts: Vec<String> = columns
        .iter()
        .map(|(name, blob)| format!("{{\"name\": {}, \"bytes\": {}}}", quoted(name), blob.len()))
        .collect();
    let mut out = format!("{{\"columns\": [{}]}}\n", parts.join(", ")).into_bytes();
    for (_, blob) in columns {
        out.extend_from_slice(blob);
    }
    out
}

fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Just enough JSON for a call's first line.
enum Json {
    Null,
    Bool,
    Number(f64),
    Text(String),
    List(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Option<Json> {
        let chars: Vec<char> = text.chars().collect();
        let mut at = 0;
        Json::value(&chars, &mut at)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn items(&self) -> Vec<&Json> {
        match self {
            Json::List(items) => items.iter().collect(),
            _ => Vec::new(),
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Json::Text(s) => Some(s),
            _ => None,
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Json::Number(n) => Some(*n),
            _ => None,
        }
    }

    fn value(s: &[char], at: &mut usize) -> Option<Json> {
        while s.get(*at).is_some_and(|c| c.is_whitespace()) {
            *at += 1;
        }
        match *s.get(*at)? {
            '{' => {
                *at += 1;
                let mut fields = Vec::new();
                loop {
                    match Json::value(s, at)? {
                        Json::Text(key) => {
                            Json::expect(s, at, ':')?;
                            fields.push((key, Json::value(s, at)?));
                        }
                        Json::Null if s.get(*at - 1) == Some(&'}') => return Some(Json::Object(fields)),
                        _ => return None,
                    }
                    match Json::next(s, at)? {
                        ',' => continue,
                        '}' => return Some(Json::Object(fields)),
                        _ => return None,
                    }
                }
            }
            '[' => {
                *at += 1;
                let mut items = Vec::new();
                loop {
                    match Json::value(s, at)? {
                        Json::Null if s.get(*at - 1) == Some(&']') => return Some(Json::List(items)),
                        item => items.push(item),
                    }
                    match Json::next(s, at)? {
                        ',' => continue,
                        ']' => return Some(Json::List(items)),
                        _ => return None,
                    }
                }
            }
            // An empty object or list closes here; its opener sees it.
            '}' | ']' => {
                *at += 1;
                Some(Json::Null)
            }
            '"' => {
                *at += 1;
                let mut text = String::new();
                loop {
                    let c = *s.get(*at)?;
                    *at += 1;
                    match c {
                        '"' => return Some(Json::Text(text)),
                        '\\' => {
                            let e = *s.get(*at)?;
                            *at += 1;
                            text.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                'u' => {
                                    let hex: String = s.get(*at..*at + 4)?.iter().collect();
                                    *at += 4;
                                    char::from_u32(u32::from_str_radix(&hex, 16).ok()?).unwrap_or('?')
                                }
                                other => other,
                            });
                        }
                        c => text.push(c),
                    }
                }
            }
            't' | 'f' | 'n' => {
                let word: String = s[*at..].iter().take_while(|c| c.is_alphabetic()).collect();
                *at += word.len();
                match word.as_str() {
                    "true" | "false" => Some(Json::Bool),
                    "null" => Some(Json::Null),
                    _ => None,
                }
            }
            _ => {
                let number: String = s[*at..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit() || "+-.eE".contains(**c))
                    .collect();
                *at += number.len();
                number.parse().ok().map(Json::Number)
            }
        }
    }

    fn expect(s: &[char], at: &mut usize, want: char) -> Option<()> {
        (Json::next(s, at)? == want).then_some(())
    }

    fn next(s: &[char], at: &mut usize) -> Option<char> {
        while s.get(*at).is_some_and(|c| c.is_whitespace()) {
            *at += 1;
        }
        let c = *s.get(*at)?;
        *at += 1;
        Some(c)
    }
}
