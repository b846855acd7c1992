//! Charts on disk, in one folder: `<home>/plots/` for the plot node, the
//! `--plots` folder of `rtl run`. A chart is three files: `<file>.svg`,
//! `<file>.png` and `<file>.json` (the name, title, job, time and caption
//! the page shows). The latest run of a chart name is `<stem>.*` (so
//! `/charts/NAME.svg` is always the newest); when a later job draws the
//! same name, the earlier one moves to `<stem>~<stamp>.*`, and of each name
//! only the `keep` latest runs stay (`plot_history`).
//!
//! A reader never sees half a chart: new files are written under a
//! temporary name and renamed into place, the `.json` last; an earlier run
//! is kept by hard links to its pictures before they are replaced, and its
//! `.json` moved last.

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
    /// The chart's name, as the job gave it.
    pub name: String,
    /// Its title, as the job gave it.
    pub title: String,
    /// The line under it: how many points, and how they were drawn.
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

/// The two pictures' extensions.
const PICTURES: [&str; 2] = ["svg", "png"];

/// Draws `chart` of `job` into `dir` (created if needed) as SVG and PNG,
/// keeping the `keep` latest runs of its name (at least this one).
pub fn store(dir: &Path, chart: &Chart, job: Uuid, keep: usize) -> Result<Entry, String> {
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
    let latest = dir.join(format!("{}.json", entry.file));
    if keep > 1 {
        // A chart drawn again by the same job (or by a second plot node)
        // replaces its own run; another job's run is kept.
        if let Some(earlier) = read(&latest).filter(|e| e.job != job) {
            keep_earlier(dir, &entry.file, earlier.stamp);
        }
    }
    put(&dir.join(format!("{}.svg", entry.file)), svg.as_bytes())?;
    put(&dir.join(format!("{}.png", entry.file)), &png)?;
    put(&latest, &meta)?;
    prune(dir, &entry.file, keep);
    Ok(entry)
}

/// Keeps the latest run of chart files `stem`, drawn at `stamp`, as
/// `stem~stamp`: links to its pictures, then its record moved. When that
/// cannot be done (its files were taken away), the run is let go, and the
/// new one drawn all the same.
fn keep_earlier(dir: &Path, stem: &str, stamp: u64) {
    let kept = format!("{stem}~{stamp}");
    let moved = PICTURES
        .iter()
        .try_for_each(|ext| {
            let to = dir.join(format!("{kept}.{ext}"));
            let _ = std::fs::remove_file(&to);
            std::fs::hard_link(dir.join(format!("{stem}.{ext}")), to)
        })
        .and_then(|()| {
            std::fs::rename(
                dir.join(format!("{stem}.json")),
                dir.join(format!("{kept}.json")),
            )
        });
    if moved.is_err() {
        for ext in PICTURES {
            let _ = std::fs::remove_file(dir.join(format!("{kept}.{ext}")));
        }
    }
}

/// Removes the earlier runs of the chart files `stem` beyond the `keep`
/// latest runs (the latest, `stem` itself, included).
fn prune(dir: &Path, stem: &str, keep: usize) {
    let prefix = format!("{stem}~");
    let mut earlier: Vec<(u64, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let file = name.strip_suffix(".json")?;
            let stamp = file.strip_prefix(&prefix)?.parse().ok()?;
            Some((stamp, file.to_string()))
        })
        .collect();
    earlier.sort_unstable_by(|a, b| b.cmp(a));
    for (_, file) in earlier.into_iter().skip(keep.saturating_sub(1)) {
        // The record first, so the page never lists a chart whose pictures
        // are gone.
        for ext in ["json", "svg", "png"] {
            let _ = std::fs::remove_file(dir.join(format!("{file}.{ext}")));
        }
    }
}

/// Every chart run in `dir`, newest first. Files that are not chart
/// records are passed over.
pub fn list(dir: &Path) -> Vec<Entry> {
    let mut entries: Vec<Entry> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| read(&p))
        .collect();
    entries.sort_by(|a: &Entry, b: &Entry| b.stamp.cmp(&a.stamp).then(a.name.cmp(&b.name)));
    entries
}

/// The record at `path`, its `file` named by the path (an earlier run's
/// record was written when it was the latest).
fn read(path: &Path) -> Option<Entry> {
    let mut entry: Entry = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    entry.file = path.file_stem()?.to_str()?.to_string();
    Some(entry)
}

/// The file for a chart's picture, if `file` is a name this module made
/// and `ext` is one of its picture formats.
pub fn picture(dir: &Path, file: &str, ext: &str) -> Option<PathBuf> {
    let (stem, run) = file.split_once('~').unwrap_or((file, "0"));
    let safe = !stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !run.is_empty()
        && run.bytes().all(|b| b.is_ascii_digit());
    (safe && PICTURES.contains(&ext)).then(|| dir.join(format!("{file}.{ext}")))
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

    fn pause() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }

    #[test]
    fn a_job_drawing_a_chart_again_replaces_it_and_comes_first() {
        let dir = std::env::temp_dir().join(format!("rtl-gallery-{}", Uuid::new_v4()));
        let job = Uuid::new_v4();
        store(&dir, &chart("a"), job, 5).expect("a");
        pause();
        store(&dir, &chart("b"), job, 5).expect("b");
        pause();
        let again = store(&dir, &chart("a"), job, 5).expect("a again");
        let names: Vec<String> = list(&dir).into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(list(&dir)[0], again);
        let files = std::fs::read_dir(&dir).expect("dir").count();
        assert_eq!(files, 6, "svg, png and json per chart, nothing else");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn each_chart_keeps_its_latest_runs() {
        let dir = std::env::temp_dir().join(format!("rtl-gallery-{}", Uuid::new_v4()));
        let jobs: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        let mut drawn = Vec::new();
        for job in &jobs {
            drawn.push(store(&dir, &chart("a"), *job, 3).expect("a"));
            store(&dir, &chart("b"), *job, 1).expect("b");
            pause();
        }
        let listed = list(&dir);
        let runs: Vec<(&str, Uuid)> = listed.iter().map(|e| (e.name.as_str(), e.job)).collect();
        assert_eq!(
            runs,
            [
                ("b", jobs[3]),
                ("a", jobs[3]),
                ("a", jobs[2]),
                ("a", jobs[1])
            ],
            "newest first; three runs of a, one of b"
        );
        assert_eq!(listed[1].file, "a", "the latest run keeps the plain name");
        assert_eq!(listed[2].file, format!("a~{}", drawn[2].stamp));
        for e in &listed {
            for ext in PICTURES {
                let path = picture(&dir, &e.file, ext).expect("a picture's path");
                assert!(path.is_file(), "{}", path.display());
            }
        }
        let files = std::fs::read_dir(&dir).expect("dir").count();
        assert_eq!(files, 3 * 4, "nothing left of the runs let go");
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
        assert_eq!(
            picture(dir, "a~1700000000000", "png"),
            Some(dir.join("a~1700000000000.png"))
        );
        assert_eq!(picture(dir, "a~", "png"), None);
        assert_eq!(picture(dir, "a~1~2", "png"), None);
        assert_eq!(picture(dir, "~1", "png"), None);
    }
}
