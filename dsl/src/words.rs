//! Decoding errors in the words of a job's author.
//!
//! serde describes what it wanted in Rust's terms (`expected usize`,
//! `invalid type: unit value`, `expected struct Kwargs`). Everything that
//! decodes something a person wrote (task kwargs, a client's message) says
//! it through [`plain`] instead, in the terms of JSON: a whole number, a
//! list, an object, null.

/// An I/O error as the system says it, without Rust's `(os error 2)`.
pub fn io(e: &std::io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .unwrap_or(&text)
            .to_string(),
        None => text,
    }
}

/// serde's message `message`, in plain words: `invalid type: string "10",
/// expected usize` becomes `expected a whole number (0 or more), found the
/// text "10"`. Messages it does not recognise come back unchanged.
pub fn plain(message: &str) -> String {
    if let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
    {
        if let Some((found, wanted)) = rest.rsplit_once(", expected ") {
            return format!(
                "expected {}, found {}",
                expected(wanted),
                found_value(found)
            );
        }
    }
    // An enum's cases are values to a job's author, not variants.
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return format!("unknown value {rest}");
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        if let Some((length, wanted)) = rest.split_once(", expected ") {
            return format!("expected {}, found {length} values", expected(wanted));
        }
    }
    message.to_string()
}

/// The candidate nearest to `name` by edit distance, if one is near enough
/// to be a likely misspelling.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= c.len().max(name.len()) / 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edits between `a` and `b`, in characters: insertions, deletions,
/// substitutions and swaps of two neighbours (`laod` is one edit from
/// `load`, the typo people make most).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows of the table: two back, one back, this one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut last, row);
    }
    last[b.len()]
}

/// What serde's visitor said it expected, as a kind of JSON value.
fn expected(wanted: &str) -> String {
    let plain = match wanted {
        "usize" | "u64" | "u32" | "u16" | "u8" | "u128" => "a whole number (0 or more)",
        "isize" | "i64" | "i32" | "i16" | "i8" | "i128" => "a whole number",
        "f64" | "f32" => "a number",
        "a sequence" | "array" => "a list",
        "a map" | "map" => "an object",
        "a borrowed string" | "string or map" => "a string",
        "path string" => "a string (a path)",
        "option" => "a value or null",
        "a character" => "one character",
        "field identifier" | "variant identifier" => "a name",
        "unit" => "null",
        other => {
            if other.starts_with("struct ") {
                "an object"
            } else if let Some(size) = other
                .strip_prefix("a tuple of size ")
                .or_else(|| other.strip_prefix("tuple of "))
            {
                return format!("a list of {size} values");
            } else if other.starts_with("enum ") {
                "one of the names this field takes"
            } else {
                other
            }
        }
    };
    plain.to_string()
}

/// serde's description of the value it found, as JSON words.
fn found_value(found: &str) -> String {
    let value_in_backticks = |prefix: &str| {
        found
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('`'))
            .and_then(|rest| rest.strip_suffix('`'))
            .map(str::to_string)
    };
    if let Some(b) = value_in_backticks("boolean ") {
        return b;
    }
    if let Some(n) = value_in_backticks("integer ") {
        return format!("the number {n}");
    }
    if let Some(n) = value_in_backticks("floating point ") {
        // A whole number past 64 bits is read as a float: say so rather
        // than show it as 1.8446744073709552e19.
        return match n.parse::<f64>() {
            Ok(x) if x.fract() == 0.0 && x.abs() >= 9.2e18 => {
                format!("a whole number too large to count with (about {x:.1e})")
            }
            _ => format!("the number {n}"),
        };
    }
    if let Some(text) = found.strip_prefix("string ") {
        return format!("the text {text}");
    }
    if let Some(c) = value_in_backticks("character ") {
        return format!("the text {c:?}");
    }
    match found {
        "unit value" | "null" => "null".into(),
        "sequence" => "a list".into(),
        "map" => "an object".into(),
        "byte array" => "bytes".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{closest, edit_distance, plain};

    #[test]
    fn rust_types_become_json_words() {
        for (serde, words) in [
            (
                r#"invalid type: string "10", expected usize"#,
                r#"expected a whole number (0 or more), found the text "10""#,
            ),
            (
                "invalid value: integer `-1`, expected usize",
                "expected a whole number (0 or more), found the number -1",
            ),
            (
                "invalid type: floating point `2.5`, expected i64",
                "expected a whole number, found the number 2.5",
            ),
            (
                "invalid type: map, expected a sequence",
                "expected a list, found an object",
            ),
            (
                "invalid type: unit value, expected a string",
                "expected a string, found null",
            ),
            (
                "invalid type: boolean `true`, expected f64",
                "expected a number, found true",
            ),
            (
                "invalid type: sequence, expected struct Kwargs",
                "expected an object, found a list",
            ),
            (
                "invalid length 3, expected a tuple of size 2",
                "expected a list of 2 values, found 3 values",
            ),
            ("missing field `column`", "missing field `column`"),
            (
                "invalid type: floating point `1.8446744073709552e19`, expected usize",
                "expected a whole number (0 or more), found a whole number too large to count with (about 1.8e19)",
            ),
            (
                "unknown variant `gtt`, expected one of `eq`, `ne`",
                "unknown value `gtt`, expected one of `eq`, `ne`",
            ),
        ] {
            assert_eq!(plain(serde), words, "{serde}");
        }
    }

    #[test]
    fn a_swap_of_neighbours_is_one_edit() {
        assert_eq!(edit_distance("laod", "load"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest("laod", ["load", "hot"].into_iter()), Some("load"));
    }
}
