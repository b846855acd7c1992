//! Charts on disk: for each chart name, `<stem>.svg`, `<stem>.png` and
//! `<stem>.json` (the name, title, job, time and caption the page shows) in
//! one folder: `<home>/plots/` for the plot node, the `--plots` folder of
//! `rtl run`. A newer chart of a name replaces the older one.
//!
//! Files are written under a temporary name and renamed into place, the
//! `.json` last, so a reader never sees half a chart.

use crate::render;
use rtl_log::timestamp;
use rtl_tasks::Chart;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// What the page lists about one chart.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Entry {
    /// The chart's file name, without extension.
    pub name: String,
    /// Its title, as the job gave it.
    pub title: String,
    /// The line under it: task, stage and columns.
    pub caption: String,
    /// The job that drew it.
    pub job: Uuid,
    /// When it was drawn, as `2026-11-22T02:13:34.123Z`.
    pub time: String,
    /// Milliseconds since the epoch when it was drawn: orders the list and
    /// tells the page an image changed.
    pub stamp: u64,
    /// File name without extension, safe in a URL and on any file system.
    pub file: String,
}

/// Draws `chart` of `job` into `dir` (created if needed) as SVG and PNG.
pub fn store(dir: &Path, chart: &Chart, job: Uuid) -> Result<Entry, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let now = SystemTime::now();
    let entry = Entry {
        name: chart.name.clone(),
        title: chart.title.clone(),
        caption: chart.caption.clone(),
        job,
        time: timestamp(now),
        stamp: now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        file: stem(&chart.name),
    };
    let (svg, png) = render::pictures(chart)?;
    let meta = serde_json::to_vec_pretty(&entry).map_err(|e| e.to_string())?;
    put(&dir.join(format!("{}.svg", entry.file)), svg.as_bytes())?;
    put(&dir.join(format!("{}.png", entry.file)), &png)?;
    put(&dir.join(format!("{}.json", entry.file)), &meta)?;
    Ok(entry)
}

/// Every chart in `dir`, newest first. Files that are not chart records
/// are passed over.
pub fn list(dir: &Path) -> Vec<Entry> {
    let mut entries: Vec<Entry> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
        .collect();
    entries.sort_by(|a: &Entry, b: &Entry| b.stamp.cmp(&a.stamp).then(a.name.cmp(&b.name)));
    entries
}

/// The file for a chart's picture, if `file` is a stem this module made
/// and `ext` is one of its picture formats.
pub fn picture(dir: &Path, file: &str, ext: &str) -> Option<PathBuf> {
    let safe = !file.is_empty()
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (safe && matches!(ext, "svg" | "png")).then(|| dir.join(format!("{file}.{ext}")))
}

/// A chart name as a file stem: letters, digits, `-` and `_` kept, anything
/// else `_`, plus a short digest of the name when anything was changed, so
/// two names never share files.
pub fn stem(name: &str) -> String {
    let kept: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if kept == name && !kept.is_empty() {
        return kept;
    }
    let digest = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{kept}-{:08x}", digest as u32)
}

fn put(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("part")
    ));
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtl_tasks::chart::{Layer, Mark, Scale};

    fn chart(name: &str) -> Chart {
        let mut chart = Chart {
            name: name.into(),
            title: format!("{name} title"),
            x_label: "x".into(),
            y_label: "y".into(),
            scale: Scale::Linear,
            layers: vec![Layer {
                mark: Mark::Circle,
                label: "y".into(),
                x: vec![1.0, 2.0],
                y: vec![3.0, 4.0],
            }],
            caption: "2 points".into(),
            ..Chart::default()
        };
        chart.fit_axes();
        chart
    }

    #[test]
    fn newer_charts_replace_older_ones_and_come_first() {
        let dir = std::env::temp_dir().join(format!("rtl-gallery-{}", Uuid::new_v4()));
        let job = Uuid::new_v4();
        store(&dir, &chart("a"), job).expect("a");
        std::thread::sleep(std::time::Duration::from_millis(5));
        store(&dir, &chart("b"), job).expect("b");
        std::thread::sleep(std::time::Duration::from_millis(5));
        let again = store(&dir, &chart("a"), job).expect("a again");
        let names: Vec<String> = list(&dir).into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(list(&dir)[0], again);
        let files = std::fs::read_dir(&dir).expect("dir").count();
        assert_eq!(files, 6, "svg, png and json per chart, nothing else");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn names_become_safe_distinct_stems_and_pictures_refuse_anything_else() {
        assert_eq!(stem("temps_2"), "temps_2");
        let odd = stem("../etc/passwd");
        assert!(odd.starts_with("___etc_passwd-"), "{odd}");
        assert_ne!(stem("a b"), stem("a_b"));
        let dir = Path::new("/plots");
        assert_eq!(picture(dir, "a", "svg"), Some(dir.join("a.svg")));
        assert_eq!(picture(dir, "..", "svg"), None);
        assert_eq!(picture(dir, "a", "json"), None);
        assert_eq!(picture(dir, "a/b", "png"), None);
    }
}
