//! Folders for unit tests that are removed when the test ends, passed or
//! failed.

use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A new empty folder under the system's temporary folder, removed on drop.
pub(crate) struct Scratch {
    _dir: tempfile::TempDir,
    /// The folder's canonical path (the temporary folder may be a link).
    path: PathBuf,
}

impl Scratch {
    /// A folder named `rtl-<what>-<random>`.
    pub(crate) fn new(what: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("rtl-{what}-"))
            .tempdir()
            .expect("a scratch folder");
        let path = dir.path().canonicalize().expect("its canonical path");
        Scratch { _dir: dir, path }
    }
}

impl Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}
