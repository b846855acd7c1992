//! Table file formats: reading and writing by extension.
//!
//! | extension | read | write |
//! |---|---|---|
//! | `csv` | header row (or names from a `.meta`), types inferred or from the `.meta` | header row and `.meta`, shortest round-trip floats |
//! | `dat` | raspi-rtl record array with its `.meta` | the same, `.meta` included |
//! | `npy` | one 1-D array, or a 1-D record array | - |
//! | `npz` | one 1-D array per column (numpy.savez) | the same |
//! | `json` | - | an object of column arrays |

pub mod csv;
mod dat;
mod dtype;
mod json;
pub(crate) mod npy;

use crate::confine::Place;
use crate::{DType, Table};
use std::io::Write;
use std::path::Path;

/// A table file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated text.
    Csv,
    /// raspi-rtl's record array with its `.meta`.
    Dat,
    /// numpy's `.npy`.
    Npy,
    /// numpy's `.npz` (numpy.savez).
    Npz,
    /// An object of column arrays.
    Json,
}

impl Format {
    /// The format of `path`'s extension.
    pub fn of(path: &Path) -> Result<Format, String> {
        let extension = path.extension().and_then(|e| e.to_str());
        match extension.map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("dat") => Ok(Format::Dat),
            Some("npy") => Ok(Format::Npy),
            Some("npz") => Ok(Format::Npz),
            Some("json") => Ok(Format::Json),
            _ => Err(format!(
                "{}: {} files are not a table format rtl knows; use .csv, .dat, .npz, .npy (read only) or .json (written only)",
                path.display(),
                extension.map_or("extension-less".to_string(), |e| format!(".{e}"))
            )),
        }
    }

    /// Whether rtl can write this format.
    pub fn writable(self) -> bool {
        !matches!(self, Format::Npy)
    }

    /// Whether rtl can read this format.
    pub fn readable(self) -> bool {
        !matches!(self, Format::Json)
    }
}

/// How a CSV file is read or written.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// The field delimiter.
    pub delimiter: u8,
    /// Whether the first row names the columns. Reading, None: it does,
    /// unless the `.meta` says otherwise (see [`csv::Declared::header`]);
    /// writing, None: a header row is written.
    pub header: Option<bool>,
    /// Reading: whether a `.meta` beside the file gives the columns' types
    /// (when there is one). Writing: whether to write one, so that rtl,
    /// and numpy with the original's readers, read back the same types.
    pub meta: bool,
    /// Reading: types the job gives, by column name.
    pub types: Vec<(String, DType)>,
}

impl Default for CsvOptions {
    fn default() -> CsvOptions {
        CsvOptions {
            delimiter: b',',
            header: None,
            meta: true,
            types: Vec::new(),
        }
    }
}

/// Reads the table at `place`, by extension; `csv` applies to csv files.
pub fn read(place: &impl Place, csv: &CsvOptions) -> Result<Table, String> {
    load(place, csv, None)
}

/// How much of a file [`sample`] reads.
pub const SAMPLE_BYTES: usize = 1 << 20;

/// The first rows of the table at `path` (about its first MiB): its columns
/// and their types without reading it all. Checks use it.
pub fn sample(place: &impl Place, csv: &CsvOptions) -> Result<Table, String> {
    load(place, csv, Some(SAMPLE_BYTES))
}

/// The first `limit` bytes of a file (all of it when None), and whether
/// that is all of it.
fn head(place: &impl Place, limit: Option<usize>) -> Result<(Vec<u8>, bool), String> {
    let fail = |e: std::io::Error| cannot_read(place.path(), &e);
    let file = place.open().map_err(fail)?;
    let mut bytes = Vec::new();
    match limit {
        None => std::io::Read::read_to_end(&mut std::io::BufReader::new(file), &mut bytes)
            .map_err(fail)?,
        Some(n) => {
            std::io::Read::read_to_end(&mut std::io::Read::take(file, n as u64 + 1), &mut bytes)
                .map_err(fail)?
        }
    };
    let whole = limit.is_none_or(|n| bytes.len() <= n);
    if let Some(n) = limit {
        bytes.truncate(n);
    }
    Ok((bytes, whole))
}

/// The most a check reads of a text table, however long its first rows.
const SAMPLE_MOST: usize = 64 << 20;

/// `cannot read PATH: why`; for a file that is not there, with the file
/// of its folder whose name is nearest (`sensor.csv`: did you mean
/// `sensors.csv`?).
pub(crate) fn cannot_read(path: &Path, e: &std::io::Error) -> String {
    let mut message = format!("cannot read {}: {}", path.display(), rtl_dsl::words::io(e));
    if e.kind() == std::io::ErrorKind::NotFound {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let names: Vec<String> = path
            .parent()
            .and_then(|dir| std::fs::read_dir(dir).ok())
            .into_iter()
            .flatten()
            .flatten()
            // A folder of millions of files costs a glance, not a crawl.
            .take(10_000)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        if let Some(near) = crate::closest(name, names.iter().map(String::as_str)) {
            message.push_str(&format!("; did you mean {near}?"));
        }
    }
    message
}

/// Where the part of a text table that `rtl check` reads ends: the first
/// [`SAMPLE_BYTES`], or twice, four times as many... (up to 64 MiB) until
/// they hold three line ends (the header, a whole row, and the start of
/// one more), cut back to the last line end; or the whole text when it is
/// shorter. Both a check and a full read take the types from the rows in
/// it.
pub(crate) fn sample_cut(text: &[u8]) -> usize {
    let mut n = SAMPLE_BYTES;
    while n < text.len() {
        let part = &text[..n];
        if n >= SAMPLE_MOST || part.iter().filter(|b| **b == b'\n').count() >= 3 {
            return part.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        }
        n = n.saturating_mul(2);
    }
    text.len()
}

/// A text table's bytes: all of them, or (`sample`) the part
/// [`sample_cut`] says a check reads; and whether that is all of them.
pub(crate) fn text_head(
    mut reader: impl std::io::Read,
    sample: bool,
) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::Read;
    let mut bytes = Vec::new();
    if !sample {
        reader.read_to_end(&mut bytes)?;
        return Ok((bytes, true));
    }
    let mut want = SAMPLE_BYTES;
    loop {
        let more = (want + 1).saturating_sub(bytes.len()) as u64;
        (&mut reader).take(more).read_to_end(&mut bytes)?;
        if bytes.len() <= want {
            return Ok((bytes, true));
        }
        let cut = sample_cut(&bytes);
        if cut == 0 && want >= SAMPLE_MOST {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no line ends in its first 64 MiB: a text table has one row per line",
            ));
        }
        if cut < bytes.len() {
            bytes.truncate(cut);
            return Ok((bytes, false));
        }
        want = want.saturating_mul(2);
    }
}

fn load(place: &impl Place, options: &CsvOptions, limit: Option<usize>) -> Result<Table, String> {
    let path = place.path();
    let origin = path.display().to_string();
    let format = Format::of(path)?;
    // The `.meta` beside the file (`data.csv` -> `data.meta`).
    let meta_place = place.sibling("meta");
    let meta_path = meta_place.path().to_path_buf();
    let meta = || -> Result<Option<Vec<(String, String)>>, String> {
        let fail = |e: std::io::Error| {
            format!(
                "cannot read {}: {}",
                meta_path.display(),
                rtl_dsl::words::io(&e)
            )
        };
        let mut text = String::new();
        match meta_place.open() {
            Ok(file) => {
                // A .meta is a few lines; a huge one is not one.
                std::io::Read::read_to_string(&mut std::io::Read::take(file, 1 << 20), &mut text)
                    .map_err(fail)?;
                dat::read_meta(&text, &meta_path.display().to_string()).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fail(e)),
        }
    };
    match format {
        Format::Csv => {
            let file = place.open().map_err(|e| cannot_read(path, &e))?;
            let (raw, whole) = text_head(std::io::BufReader::new(file), limit.is_some())
                .map_err(|e| format!("cannot read {origin}: {}", rtl_dsl::words::io(&e)))?;
            let text = std::str::from_utf8(&raw).map_err(|e| {
                format!("{origin}: not UTF-8 text (byte {}); is it really a CSV file?", e.valid_up_to())
            })?;
            let meta = match meta()? {
                Some(fields) if options.meta => Some((
                    meta_path.display().to_string(),
                    fields
                        .into_iter()
                        .map(|(name, descr)| dtype::Scalar::parse(&descr).map(|s| (name, s.column_type())))
                        .collect::<Result<Vec<(String, DType)>, String>>()
                        .map_err(|e| format!("{}: {e}", meta_path.display()))?,
                )),
                _ => None,
            };
            let declared = csv::Declared {
                meta,
                types: options.types.clone(),
                header: options.header,
            };
            csv::read_text(text, options.delimiter, &origin, &declared, whole)
        }
        Format::Dat => {
            let fields = meta()?.ok_or_else(|| {
                format!("{origin}: a .dat file needs its .meta beside it ({} is missing)", meta_path.display())
            })?;
            let (mut bytes, whole) = head(place, limit)?;
            if !whole {
                let record = dat::record_size(&fields, &origin)?;
                bytes.truncate(bytes.len() / record * record);
            }
            dat::decode(&bytes, &fields, &origin)
        }
        Format::Npy => {
            let name = path.file_stem().map_or("values".into(), |s| s.to_string_lossy().into_owned());
            let (bytes, whole) = head(place, limit)?;
            npy::read_npy(&bytes, &name, &origin, !whole)
        }
        Format::Npz => {
            let file = place.open().map_err(|e| cannot_read(path, &e))?;
            npy::read_npz(std::io::BufReader::new(file), &origin, limit)
        }
        Format::Json => Err(format!("{origin}: rtl writes .json tables but does not read them; use open with encoding for JSON lines")),
    }
}

/// Writes `table` to `place`, by extension; `.dat`, and `.csv` unless
/// `csv.meta` is false, also write a `.meta`. Missing folders are created.
pub fn write(table: &Table, place: &impl Place, csv: &CsvOptions) -> Result<(), String> {
    let meta = place.sibling("meta");
    let fail = |at: &Path, e: std::io::Error| {
        format!("cannot write {}: {}", at.display(), rtl_dsl::words::io(&e))
    };
    fn buffered<'w>(
        write: &'w dyn Fn(&mut dyn Write) -> std::io::Result<()>,
    ) -> impl FnOnce(std::fs::File) -> std::io::Result<()> + 'w {
        move |file| {
            let mut out = std::io::BufWriter::new(file);
            write(&mut out)?;
            out.flush()
        }
    }
    let header = csv.header.unwrap_or(true);
    let write_csv = |out: &mut dyn Write| self::csv::write(table, csv.delimiter, header, out);
    let write_meta =
        |out: &mut dyn Write| out.write_all(dat::write_meta(&dat::fields(table)).as_bytes());
    let format = Format::of(place.path())?;
    let with_meta = match format {
        Format::Csv => csv.meta,
        Format::Dat => true,
        Format::Npz | Format::Json | Format::Npy => false,
    };
    // The .meta's format writes `(` and `)` as `<@` and `@>`, so a name
    // holding either would read back changed.
    if let Some(name) = table
        .names()
        .find(|n| with_meta && (n.contains("<@") || n.contains("@>")))
    {
        let way_out = if format == Format::Csv {
            ", or give write \"meta\": false"
        } else {
            ""
        };
        return Err(format!(
            "{}: column `{name}` cannot be named in a .meta, whose format reads `<@` and `@>` as parentheses; rename the column{way_out}",
            meta.path().display()
        ));
    }
    // The table's file, and its .meta when it has one: each written whole
    // beside its place, then both renamed into place, so a failed write
    // (a full disk) leaves no half-written file and no empty .meta.
    let data = match format {
        Format::Csv => stage(place, buffered(&write_csv)),
        Format::Dat => stage(place, buffered(&|out| out.write_all(&dat::encode(table)))),
        Format::Npz => stage(place, |file| {
            npy::write_npz(table, file).map_err(std::io::Error::other)
        }),
        Format::Json => stage(
            place,
            buffered(&|out| {
                serde_json::to_writer(&mut *out, &json::to_value(table))
                    .map_err(std::io::Error::from)
            }),
        ),
        Format::Npy => {
            return Err(format!(
                "{}: a .npy file holds one array; write .npz for a table",
                place.path().display()
            ))
        }
    };
    let data = data.map_err(|e| fail(place.path(), e))?;
    if with_meta {
        let staged_meta = match stage(&meta, buffered(&write_meta)) {
            Ok(staged) => staged,
            Err(e) => {
                data.abandon();
                return Err(fail(meta.path(), e));
            }
        };
        staged_meta.commit().map_err(|e| fail(meta.path(), e))?;
    } else if format == Format::Csv {
        // A .meta left from an earlier write would be read with this file
        // and give it the old names and types.
        if let Err(e) = meta.remove() {
            data.abandon();
            return Err(format!(
                "cannot remove the old {}: {}",
                meta.path().display(),
                rtl_dsl::words::io(&e)
            ));
        }
    }
    data.commit().map_err(|e| fail(place.path(), e))
}

/// A file written whole beside its place, not yet in it.
struct Staged<'a, P: Place> {
    temp: P,
    target: &'a P,
}

impl<P: Place> Staged<'_, P> {
    /// Puts the file in its place, replacing what was there.
    fn commit(self) -> std::io::Result<()> {
        let done = self.temp.rename_over(self.target);
        if done.is_err() {
            let _ = self.temp.remove();
        }
        done
    }

    /// Drops the file, leaving its place as it was.
    fn abandon(self) {
        let _ = self.temp.remove();
    }
}

/// Writes `target`'s new content into a temporary file beside it.
fn stage<'a, P: Place>(
    target: &'a P,
    write: impl FnOnce(std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<Staged<'a, P>> {
    refuse_special(target.path())?;
    let temp = target.temporary();
    match temp.create_new().and_then(write) {
        Ok(()) => Ok(Staged { temp, target }),
        Err(e) => {
            let _ = temp.remove();
            Err(e)
        }
    }
}

/// An error when `path` is there and is not a plain file: a named pipe or
/// device (writing one might never end), a folder, or a symbolic link
/// (file tasks never write through one).
pub(crate) fn refuse_special(path: &Path) -> std::io::Result<()> {
    let refuse = |what: &str| {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {what}, not a file; write to another name"),
        ))
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "it is a symbolic link, which file tasks do not follow",
        )),
        Ok(m) if m.is_dir() => refuse("a folder"),
        Ok(m) if !m.is_file() => {
            refuse("a named pipe, device or socket (writing to it might never end)")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Column;
    use ndarray::array;

    fn scratch(name: &str) -> crate::scratch::Scratch {
        crate::scratch::Scratch::new(&format!("formats-{name}"))
    }

    fn table() -> Table {
        Table::from_columns(vec![
            ("id".into(), Column::Int64(array![1, 2])),
            ("x".into(), Column::Float64(array![0.1, -3.5e-9])),
            ("ok".into(), Column::Bool(array![false, true])),
            ("site".into(), Column::text(&["north", "a, \"b\""])),
        ])
        .expect("table")
    }

    #[test]
    fn every_writable_readable_format_round_trips() {
        let dir = scratch("round");
        for ext in ["csv", "dat", "npz"] {
            let path = dir.join(format!("t.{ext}"));
            write(&table(), &path, &CsvOptions::default()).expect("write");
            assert_eq!(
                read(&path, &CsvOptions::default()).expect("read"),
                table(),
                "{ext}"
            );
        }
        let path = dir.join("t.json");
        write(&table(), &path, &CsvOptions::default()).expect("write json");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("json")).expect("parse");
        assert_eq!(v["site"][1], "a, \"b\"");
    }

    #[test]
    fn meta_types_a_csv() {
        let dir = scratch("meta");
        let csv = dir.join("m.csv");
        std::fs::write(&csv, "a,b\n1,2\n").expect("csv");
        std::fs::write(
            dir.join("m.meta"),
            dat::write_meta(&[("a".into(), "<f8".into()), ("b".into(), "<U4".into())]),
        )
        .expect("meta");
        let t = read(&csv, &CsvOptions::default()).expect("read");
        assert_eq!(t.column("a"), Some(&Column::Float64(array![1.0])));
        assert_eq!(t.column("b"), Some(&Column::text(&["2"])));
    }

    #[test]
    fn wrong_files_get_clear_errors() {
        let dir = scratch("wrong");
        let dat = dir.join("lonely.dat");
        std::fs::write(&dat, [0u8; 8]).expect("dat");
        assert!(read(&dat, &CsvOptions::default())
            .expect_err("no meta")
            .contains("needs its .meta"));
        let fake = dir.join("fake.csv");
        std::fs::write(&fake, [0x93, b'N', 0xff, 0xfe]).expect("fake");
        // A file that is not there: the nearest name beside it.
        let err = read(&dir.join("fakes.csv"), &CsvOptions::default()).expect_err("missing");
        assert!(
            err.ends_with("No such file or directory; did you mean fake.csv?"),
            "{err}"
        );
        assert!(read(&fake, &CsvOptions::default())
            .expect_err("binary")
            .contains("not UTF-8"));
        assert!(read(&dir.join("x.xlsx"), &CsvOptions::default())
            .expect_err("ext")
            .contains(".xlsx files"));
        assert!(write(&table(), &dir.join("t.npy"), &CsvOptions::default())
            .expect_err("npy")
            .contains("write .npz"));
    }
}
