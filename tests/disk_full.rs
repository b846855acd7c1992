//! A full disk under the daemon's home: the cache (a sparse LMDB file
//! written through a map) must not kill the relay or a task node with
//! SIGBUS. Jobs still run, their tables inside the messages, and the
//! daemon keeps answering. Needs root to mount a small tmpfs; skipped,
//! saying so, without it (.ci/run runs as root).

mod common;

use common::{text, write_job, Daemon, Home};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test, unmounted when dropped. It is dropped
/// after the daemon and its home, whose removal could not take the mount
/// point: the folders left go here.
struct Mount(PathBuf);

impl Mount {
    fn new(at: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).ok()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .ok()?;
        out.status.success().then(|| Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
        if let Some(scratch) = self.0.parent() {
            // Only when empty: the home's own removal took the rest.
            let _ = std::fs::remove_dir(scratch);
        }
    }
}

/// Fills the file system holding `dir` until a write fails.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).expect("filler");
    let block = vec![7u8; 256 * 1024];
    while file.write_all(&block).and_then(|_| file.flush()).is_ok() {}
    filler
}

#[test]
fn a_full_disk_under_the_cache_fails_nothing_and_kills_nothing() {
    let home = Home::new("disk-full")
        .with("RTL_CACHE_MAP_SIZE", "64MiB")
        .with("RTL_TASK_WORKERS", "1")
        .with("RTL_PLOT_WORKERS", "0");
    // Declared before the daemon, so dropped after it.
    let Some(_mount) = Mount::new(&home.dir(), "48m") else {
        common::skip(
            "a_full_disk_under_the_cache_fails_nothing_and_kills_nothing",
            "cannot mount a tmpfs (needs root)",
        );
        return;
    };
    let daemon = Daemon::start_in(home);
    // A table of about 8 MB, outside the full disk, so it goes through the
    // cache between the node and the relay.
    let jobs = daemon.home.scratch.0.join("jobs");
    std::fs::create_dir_all(&jobs).expect("jobs folder");
    let mut csv = String::from("x,y\n");
    for i in 0..400_000 {
        csv.push_str(&format!("{i},{}.5\n", i % 977));
    }
    std::fs::write(jobs.join("big.csv"), csv).expect("csv");
    let job = write_job(
        &jobs,
        "add",
        r#"{"0": {"tasks": [{"open_array": {"filename": "big"}},
                            {"add": {"operations": [{"a": "x", "b": "y", "column": "z"}]}}]}}"#,
    );
    // A job that writes onto the full disk, over an earlier result.
    let full = daemon.home.dir().join("jobs");
    std::fs::create_dir_all(&full).expect("jobs on the full disk");
    std::fs::copy(jobs.join("big.csv"), full.join("big.csv")).expect("copy");
    std::fs::write(full.join("out.csv"), "x\n1\n").expect("an earlier result");
    let writes = write_job(
        &full,
        "write",
        r#"{"0": {"tasks": [{"open_array": {"filename": "big"}},
                            {"write": {"filename": "out"}}]}}"#,
    );
    let filler = fill(&daemon.home.dir());
    let out = daemon.rtl(&["run", "--connect", writes.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot write")
            && String::from_utf8_lossy(&out.stderr).contains("No space left on device"),
        "{}",
        text(&out)
    );
    let mut left: Vec<String> = std::fs::read_dir(&full)
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["big.csv", "out.csv", "write.json"],
        "no half-written file"
    );
    assert_eq!(
        std::fs::read_to_string(full.join("out.csv")).expect("read"),
        "x\n1\n",
        "the earlier result is kept"
    );

    let out = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("400000 rows"),
        "{}",
        text(&out)
    );
    let status = daemon.rtl(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains("dead"),
        "{}",
        text(&status)
    );

    // With room again, the same job runs through the cache as before.
    std::fs::remove_file(filler).expect("remove the filler");
    let out = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
}
