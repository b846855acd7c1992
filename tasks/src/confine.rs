//! Where file tasks may read and write: under the job's folder (the folder
//! of the job file, which the client sends with the job), narrowed to the
//! daemon's `data_root` when that is set. A path is refused, before any
//! byte is read or written, when it leads out by `..`, by being absolute,
//! or through a symbolic link.

use std::path::{Component, Path, PathBuf};

/// `path` (relative to `base_dir`, or absolute) as a file under the data
/// root, or why not.
pub fn confine(base_dir: &Path, data_root: Option<&Path>, path: &Path) -> Result<PathBuf, String> {
    let base = base_dir.canonicalize().map_err(|e| {
        format!(
            "the job's folder {} cannot be used on this host: {e}",
            base_dir.display()
        )
    })?;
    let root = match data_root {
        None => base.clone(),
        Some(limit) => {
            let limit = limit
                .canonicalize()
                .map_err(|e| format!("data_root {} cannot be used: {e}", limit.display()))?;
            if base.starts_with(&limit) {
                base.clone()
            } else if limit.starts_with(&base) {
                limit
            } else {
                return Err(format!(
                    "the job's folder {} is outside the daemon's data_root {}; \
                     file tasks may only use files under data_root",
                    base.display(),
                    limit.display()
                ));
            }
        }
    };
    let wanted = normalize(&base.join(path));
    let outside =
        |how: &str| {
            format!(
            "{} leads outside {} ({how}); file tasks read and write only under the job's folder{}",
            path.display(),
            root.display(),
            if data_root.is_some() { " and data_root" } else { "" }
        )
        };
    if !wanted.starts_with(&root) {
        let how = if path.is_absolute() {
            "an absolute path"
        } else if path.components().any(|c| c == Component::ParentDir) {
            "by `..`"
        } else {
            "outside data_root"
        };
        return Err(outside(how));
    }
    // Symbolic links: the deepest part of the path that exists must still
    // be under the root once links are followed.
    let existing = wanted
        .ancestors()
        .find(|p| p.symlink_metadata().is_ok())
        .unwrap_or(&root);
    let real = existing
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", existing.display()))?;
    if !real.starts_with(&root) {
        return Err(outside("through a symbolic link"));
    }
    Ok(wanted)
}

/// `path` with `.` and `..` worked out by name, without touching the disk.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "rtl-confine-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(dir.join("job/data")).expect("dirs");
        std::fs::create_dir_all(dir.join("elsewhere")).expect("dirs");
        std::fs::write(dir.join("elsewhere/secret.csv"), "x\n1\n").expect("file");
        dir.canonicalize().expect("canonical")
    }

    #[test]
    fn files_under_the_job_folder_are_fine_and_others_refused() {
        let dir = scratch();
        let job = dir.join("job");
        assert_eq!(
            confine(&job, None, Path::new("data/./a.csv")).expect("inside"),
            job.join("data/a.csv")
        );
        assert_eq!(
            confine(&job, None, Path::new("data/../b.csv")).expect("still inside"),
            job.join("b.csv")
        );
        let err = confine(&job, None, Path::new("../elsewhere/secret.csv")).expect_err("..");
        assert!(
            err.contains("leads outside") && err.contains("by `..`"),
            "{err}"
        );
        let err = confine(&job, None, &dir.join("elsewhere/secret.csv")).expect_err("absolute");
        assert!(err.contains("an absolute path"), "{err}");
        assert!(
            confine(&job, None, &job.join("data/c.csv")).is_ok(),
            "absolute but inside"
        );
    }

    #[test]
    fn symbolic_links_out_are_refused() {
        let dir = scratch();
        let job = dir.join("job");
        std::os::unix::fs::symlink(dir.join("elsewhere"), job.join("link")).expect("link");
        std::os::unix::fs::symlink(dir.join("elsewhere/secret.csv"), job.join("s.csv"))
            .expect("link");
        for p in ["link/secret.csv", "link/new.csv", "s.csv"] {
            let err = confine(&job, None, Path::new(p)).expect_err(p);
            assert!(err.contains("through a symbolic link"), "{p}: {err}");
        }
    }

    #[test]
    fn data_root_narrows_the_job_folder() {
        let dir = scratch();
        let job = dir.join("job");
        assert!(confine(&job, Some(&dir), Path::new("data/a.csv")).is_ok());
        let inner = job.join("data");
        let err = confine(&job, Some(&inner), Path::new("a.csv")).expect_err("narrowed");
        assert!(err.contains("outside data_root"), "{err}");
        assert!(confine(&job, Some(&inner), Path::new("data/a.csv")).is_ok());
        let err =
            confine(&job, Some(&dir.join("elsewhere")), Path::new("a.csv")).expect_err("disjoint");
        assert!(err.contains("is outside the daemon's data_root"), "{err}");
    }
}
