//! A job's text as a tree that remembers where each value was written.
//!
//! serde_json forgets positions and silently keeps the last of two equal
//! keys; a job language needs both: errors point at the line and column of
//! the stage, task or field at fault, and a stage key written twice is a
//! mistake to report, not to resolve. JSON is parsed here by hand; TOML
//! comes through the toml crate (its values carry no positions).

use serde_json::{Map, Number, Value};
use std::cell::Cell;

/// Line and column, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// A value and where it starts (None when the format gives no positions).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value starts, when known.
    pub at: Option<Pos>,
    /// The value.
    pub kind: Kind,
}

/// A JSON value whose parts keep their positions.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written.
    Number(Number),
    /// A string.
    String(String),
    /// A list.
    Array(Vec<Node>),
    /// Entries in written order, duplicates kept.
    Object(Vec<(String, Option<Pos>, Node)>),
}

impl Node {
    /// The plain JSON value (the last of duplicate keys wins).
    pub fn to_value(&self) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Number(n) => Value::Number(n.clone()),
            Kind::String(s) => Value::String(s.clone()),
            Kind::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Kind::Object(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (k, _, v) in entries {
                    map.insert(k.clone(), v.to_value());
                }
                Value::Object(map)
            }
        }
    }

    /// A tree without positions from a plain value.
    pub fn from_value(value: &Value) -> Node {
        let kind = match value {
            Value::Null => Kind::Null,
            Value::Bool(b) => Kind::Bool(*b),
            Value::Number(n) => Kind::Number(n.clone()),
            Value::String(s) => Kind::String(s.clone()),
            Value::Array(items) => Kind::Array(items.iter().map(Node::from_value).collect()),
            Value::Object(map) => Kind::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), None, Node::from_value(v)))
                    .collect(),
            ),
        };
        Node { at: None, kind }
    }

    /// What kind of value this is, for error messages.
    pub fn describe(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Number(_) => "a number",
            Kind::String(_) => "a string",
            Kind::Array(_) => "a list",
            Kind::Object(_) => "an object",
        }
    }

    /// Positions of every key and list item below this node, by path
    /// (`operations[0].b`), for pointing at a field an error names.
    pub fn paths(&self) -> Vec<(String, Pos)> {
        let mut out = Vec::new();
        self.collect_paths("", &mut out);
        out
    }

    fn collect_paths(&self, prefix: &str, out: &mut Vec<(String, Pos)>) {
        match &self.kind {
            Kind::Object(entries) => {
                for (key, at, value) in entries {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    if let Some(at) = at.or(value.at) {
                        out.push((path.clone(), at));
                    }
                    value.collect_paths(&path, out);
                }
            }
            Kind::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let path = format!("{prefix}[{i}]");
                    if let Some(at) = item.at {
                        out.push((path.clone(), at));
                    }
                    item.collect_paths(&path, out);
                }
            }
            _ => {}
        }
    }
}

/// A JSON syntax error and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub at: Pos,
    pub message: String,
}

/// Parses JSON text into a [`Node`] tree with positions.
pub fn parse_json(text: &str) -> Result<Node, SyntaxError> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        line: 1,
        line_start: 0,
        depth: 0,
        counted: Cell::new((0, 0)),
    };
    p.skip_ws();
    let node = p.value()?;
    p.skip_ws();
    if p.i < p.s.len() {
        return Err(p.error("unexpected text after the end of the job"));
    }
    Ok(node)
}

/// Deeper nesting than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 256;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
    line_start: usize,
    depth: usize,
    /// A byte offset on the current line and the characters before it on
    /// the line: positions are asked for in order, so counting goes on from
    /// the last one instead of from the line's start (a job written on one
    /// long line would take quadratic time).
    counted: Cell<(usize, usize)>,
}

impl Parser<'_> {
    fn pos(&self) -> Pos {
        let (from, before) = match self.counted.get() {
            (at, chars) if (self.line_start..=self.i).contains(&at) => (at, chars),
            _ => (self.line_start, 0),
        };
        let chars = before
            + String::from_utf8_lossy(&self.s[from..self.i])
                .chars()
                .count();
        self.counted.set((self.i, chars));
        Pos {
            line: self.line,
            column: chars + 1,
        }
    }

    fn error(&self, message: &str) -> SyntaxError {
        SyntaxError {
            at: self.pos(),
            message: message.to_string(),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'\n' => {
                    self.i += 1;
                    self.line += 1;
                    self.line_start = self.i;
                }
                b' ' | b'\t' | b'\r' => self.i += 1,
                _ => break,
            }
        }
    }

    fn value(&mut self) -> Result<Node, SyntaxError> {
        let at = Some(self.pos());
        let kind = match self.s.get(self.i) {
            None => return Err(self.error("the text ends where a value was expected")),
            Some(b'{') => self.object()?,
            Some(b'[') => self.array()?,
            Some(b'"') => Kind::String(self.string()?),
            Some(b't') => self.word("true", Kind::Bool(true))?,
            Some(b'f') => self.word("false", Kind::Bool(false))?,
            Some(b'n') => self.word("null", Kind::Null)?,
            Some(c) if *c == b'-' || c.is_ascii_digit() => self.number()?,
            Some(_) => {
                return Err(self.error(
                    "expected a value (an object, list, string, number, true, false or null); strings take double quotes",
                ))
            }
        };
        Ok(Node { at, kind })
    }

    fn nest(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("the job nests deeper than 256 levels"));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Kind, SyntaxError> {
        self.nest()?;
        self.i += 1;
        let mut entries = Vec::new();
        self.skip_ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(Kind::Object(entries));
        }
        loop {
            self.skip_ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.error("expected a key in double quotes"));
            }
            let at = Some(self.pos());
            let key = self.string()?;
            self.skip_ws();
            if self.s.get(self.i) != Some(&b':') {
                return Err(self.error("expected `:` after the key"));
            }
            self.i += 1;
            self.skip_ws();
            let value = self.value()?;
            entries.push((key, at, value));
            self.skip_ws();
            match self.s.get(self.i) {
                Some(b',') => {
                    self.i += 1;
                    self.skip_ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        return Err(self.error("a comma before `}`: JSON allows no trailing comma"));
                    }
                }
                Some(b'}') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(Kind::Object(entries));
                }
                _ => return Err(self.error("expected `,` or `}` after a value in an object")),
            }
        }
    }

    fn array(&mut self) -> Result<Kind, SyntaxError> {
        self.nest()?;
        self.i += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            self.depth -= 1;
            return Ok(Kind::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.s.get(self.i) {
                Some(b',') => {
                    self.i += 1;
                    self.skip_ws();
                    if self.s.get(self.i) == Some(&b']') {
                        return Err(self.error("a comma before `]`: JSON allows no trailing comma"));
                    }
                }
                Some(b']') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(Kind::Array(items));
                }
                _ => return Err(self.error("expected `,` or `]` after a value in a list")),
            }
        }
    }

    fn word(&mut self, word: &str, kind: Kind) -> Result<Kind, SyntaxError> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(kind)
        } else {
            Err(self.error("expected a value; strings take double quotes"))
        }
    }

    fn number(&mut self) -> Result<Kind, SyntaxError> {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        match serde_json::from_str::<Number>(text) {
            Ok(n) => Ok(Kind::Number(n)),
            Err(_) => {
                self.i = start;
                let why = match text.parse::<f64>() {
                    Ok(x) if x.is_infinite() => {
                        format!("{text} is too large: a number in a job is at most about 1.8e308")
                    }
                    _ => format!("{text:?} is not a JSON number"),
                };
                Err(self.error(&why))
            }
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let start = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                self.i = start;
                return Err(self.error("this string is never closed"));
            };
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    let raw = self
                        .s
                        .get(self.i..(self.i + 6).min(self.s.len()))
                        .unwrap_or(&[]);
                    let (ch, len) = match raw.get(1) {
                        Some(b'"') => ('"', 2),
                        Some(b'\\') => ('\\', 2),
                        Some(b'/') => ('/', 2),
                        Some(b'b') => ('\u{8}', 2),
                        Some(b'f') => ('\u{c}', 2),
                        Some(b'n') => ('\n', 2),
                        Some(b'r') => ('\r', 2),
                        Some(b't') => ('\t', 2),
                        Some(b'u') => {
                            // Let serde_json decode \u escapes, surrogate pairs included.
                            let end = if raw.len() == 6
                                && self.s.get(self.i + 6..self.i + 8) == Some(b"\\u")
                            {
                                12
                            } else {
                                6
                            };
                            let piece = self.s.get(self.i..self.i + end).unwrap_or(&[]);
                            let quoted = format!("\"{}\"", String::from_utf8_lossy(piece));
                            match serde_json::from_str::<String>(&quoted) {
                                Ok(s) => {
                                    out.push_str(&s);
                                    self.i += end;
                                    continue;
                                }
                                Err(_) => return Err(self.error("bad \\u escape")),
                            }
                        }
                        _ => {
                            return Err(self
                                .error("unknown escape; a backslash in a string is written \\\\"))
                        }
                    };
                    out.push(ch);
                    self.i += len;
                }
                b'\n' => return Err(self.error("a string cannot run over the end of the line")),
                _ => {
                    let len = utf8_len(c);
                    let piece = self
                        .s
                        .get(self.i..self.i + len)
                        .and_then(|b| std::str::from_utf8(b).ok());
                    match piece {
                        Some(p) => out.push_str(p),
                        None => return Err(self.error("the text is not valid UTF-8")),
                    }
                    self.i += len;
                }
            }
        }
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_past_f64_is_too_large_not_malformed() {
        let err = parse_json("[1e999]").expect_err("too large");
        assert!(
            err.message.starts_with("1e999 is too large"),
            "{}",
            err.message
        );
        let err = parse_json("[1e]").expect_err("malformed");
        assert!(
            err.message.contains("is not a JSON number"),
            "{}",
            err.message
        );
    }

    #[test]
    fn numbers_are_the_nearest_double() {
        // Each is the double nearest the decimal, as Python and numpy read it.
        for (text, want) in [
            ("9007199254740993.0", 9007199254740992.0),
            ("2.2250738585072011e-308", 2.225073858507201e-308),
            ("4.9e-324", 5e-324),
            ("0.1", 0.1),
        ] {
            let node = parse_json(text).expect("parse");
            assert_eq!(node.to_value().as_f64(), Some(want), "{text}");
        }
    }

    #[test]
    fn values_and_positions() {
        let node = parse_json("{\n  \"a\": [1, -2.5e3, true, null],\n  \"b\": \"x\\u00e9\\n\"\n}")
            .expect("parse");
        assert_eq!(
            node.to_value(),
            serde_json::json!({"a": [1, -2500.0, true, null], "b": "xé\n"})
        );
        let paths = node.paths();
        assert_eq!(paths[0], ("a".to_string(), Pos { line: 2, column: 3 }));
        assert!(
            paths.contains(&(
                "a[2]".to_string(),
                Pos {
                    line: 2,
                    column: 20
                }
            )),
            "{paths:?}"
        );
        assert!(
            paths.contains(&("b".to_string(), Pos { line: 3, column: 3 })),
            "{paths:?}"
        );
    }

    #[test]
    fn duplicates_are_kept_in_order() {
        let node = parse_json(r#"{"0": 1, "0": 2}"#).expect("parse");
        let Kind::Object(entries) = node.kind else {
            panic!("object")
        };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn syntax_errors_point_at_the_place() {
        let err = parse_json("{\n  \"a\": 1,\n}").expect_err("trailing comma");
        assert_eq!(err.at, Pos { line: 3, column: 1 });
        assert!(err.message.contains("trailing comma"), "{err:?}");
        let err = parse_json("{'a': 1}").expect_err("single quotes");
        assert!(err.message.contains("double quotes"), "{err:?}");
        let err = parse_json("[1, 2").expect_err("open");
        assert!(err.message.contains("expected `,` or `]`"), "{err:?}");
        let deep = "[".repeat(300);
        assert!(parse_json(&deep).expect_err("deep").message.contains("256"));
    }
}
