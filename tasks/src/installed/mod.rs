//! Installed tasks: tasks of one's own, written in any language, that an
//! operator puts in a task folder as a manifest (`NAME.toml`) beside a
//! program.
//!
//! [`Installed`] is the set a node read from its folders (or the relay
//! learnt from its nodes); [`Manifest`] checks a call's kwargs as a
//! built-in's struct would; [`Programs`] keeps each task's program warm
//! and calls it, with the bytes of [`protocol`]. `rtl_task.py` is the
//! Python helper that makes a function such a program; [`write_helper`]
//! puts it where the programs rtl starts can import it.

mod manifest;
mod program;
mod protocol;

pub use manifest::{Kind, Kwarg, Manifest, ManifestError};
pub use program::{Limits, Programs, Sink};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The installed tasks one process knows, by name.
#[derive(Debug, Clone, Default)]
pub struct Installed {
    tasks: Arc<Vec<Manifest>>,
    /// Manifests that could not be used, by the name their file gives,
    /// so that a job naming one is told why it is not there.
    broken: Arc<Vec<(String, ManifestError)>>,
}

impl Installed {
    /// Reads every `*.toml` manifest in `folders`, in order (a name
    /// installed twice is taken from the first folder). Manifests that
    /// cannot be used come back as errors, each naming its file and line;
    /// their tasks are left out. What a client or `rtl tasks` needs; a
    /// node, which reports its tasks' digests, uses [`Installed::load_to_run`].
    pub fn load(folders: &[PathBuf]) -> (Installed, Vec<ManifestError>) {
        Installed::read(folders, false)
    }

    /// [`Installed::load`], with each task's [`Manifest::digest`] worked
    /// out from its program's files.
    pub fn load_to_run(folders: &[PathBuf]) -> (Installed, Vec<ManifestError>) {
        Installed::read(folders, true)
    }

    fn read(folders: &[PathBuf], digest: bool) -> (Installed, Vec<ManifestError>) {
        let mut tasks: Vec<Manifest> = Vec::new();
        let mut errors = Vec::new();
        let mut broken = Vec::new();
        for folder in folders {
            let entries = match std::fs::read_dir(folder) {
                Ok(entries) => entries,
                // No folder, no tasks: a task folder need not exist until
                // a task is put there (`rtl tasks` says which are read).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    errors.push(ManifestError {
                        at: folder.display().to_string(),
                        message: format!("cannot read the task folder: {e}"),
                    });
                    continue;
                }
            };
            // Every *.toml, a broken link included, so that it is named.
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml") && !p.is_dir())
                .collect();
            files.sort();
            for file in files {
                let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
                let read = Manifest::read(&file).and_then(|mut manifest| {
                    if digest {
                        manifest.digest_files()?;
                    }
                    Ok(manifest)
                });
                match read {
                    Ok(manifest) => match tasks.iter().find(|t| t.name == manifest.name) {
                        Some(first) => errors.push(ManifestError {
                            at: file.display().to_string(),
                            message: format!(
                                "`{}` is installed already from {}; this one is left out",
                                manifest.name, first.origin
                            ),
                        }),
                        None => tasks.push(manifest),
                    },
                    Err(e) => {
                        broken.extend(stem.map(|stem| (stem, e.clone())));
                        errors.push(e);
                    }
                }
            }
        }
        let mut installed = Installed::new(tasks);
        installed.broken = Arc::new(broken);
        (installed, errors)
    }

    /// Why the manifest of task `name` could not be used, if it is one
    /// that could not.
    pub fn broken(&self, name: &str) -> Option<&ManifestError> {
        self.broken.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }

    /// These manifests.
    pub fn new(tasks: Vec<Manifest>) -> Installed {
        Installed {
            tasks: Arc::new(tasks),
            broken: Arc::default(),
        }
    }

    /// The task called `name`.
    pub fn get(&self, name: &str) -> Option<&Manifest> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// Every installed task, in the order they were read.
    pub fn iter(&self) -> impl Iterator<Item = &Manifest> {
        self.tasks.iter()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// These tasks, and those of `more` whose names these lack.
    pub fn merged(&self, more: &Installed) -> Installed {
        let mut tasks: Vec<Manifest> = self.tasks.to_vec();
        for task in more.iter() {
            if self.get(&task.name).is_none() {
                tasks.push(task.clone());
            }
        }
        Installed {
            tasks: Arc::new(tasks),
            broken: self.broken.clone(),
        }
    }

    /// The tasks nodes report, as (name, digest, manifest text): one
    /// version of each name (see [`most_common`]), known by its manifest
    /// alone: its program is on the nodes.
    pub fn reported<'a>(
        reports: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Installed {
        let tasks = most_common(reports)
            .into_iter()
            .filter_map(|(name, digest, text)| {
                let origin = format!("{name}.toml on the task nodes");
                let mut manifest = Manifest::parse(text, &origin, PathBuf::new()).ok()?;
                manifest.digest = digest.to_string();
                Some(manifest)
            })
            .collect();
        Installed::new(tasks)
    }
}

/// Among the versions of installed tasks nodes report, as (name, digest,
/// manifest text), one of each name: the one most of them have (among
/// equals, the same one every time), so that every chunk of a job runs
/// the same version.
pub fn most_common<'a>(
    reports: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> Vec<(&'a str, &'a str, &'a str)> {
    let mut versions: BTreeMap<&str, BTreeMap<&str, (usize, &str)>> = BTreeMap::new();
    for (name, digest, text) in reports {
        versions
            .entry(name)
            .or_default()
            .entry(digest)
            .or_insert((0, text))
            .0 += 1;
    }
    versions
        .into_iter()
        .filter_map(|(name, digests)| {
            let (digest, (_, text)) = digests
                .into_iter()
                .max_by_key(|(digest, (nodes, _))| (*nodes, std::cmp::Reverse(*digest)))?;
            Some((name, digest, text))
        })
        .collect()
}

/// Whether every task `plan` names is a built-in or one of `installed`.
pub fn all_known(plan: &rtl_dsl::Plan, installed: &Installed) -> bool {
    plan.stages
        .iter()
        .flat_map(|s| &s.tasks)
        .all(|call| crate::lookup(&call.name).is_some() || installed.get(&call.name).is_some())
}

/// The Python helper, `rtl_task.py`.
pub const HELPER: &str = include_str!("rtl_task.py");

/// Writes the Python helper into `folder` (when it is not there as it
/// should be) and returns the folder, for [`Limits::python_path`].
pub fn write_helper(folder: &Path) -> std::io::Result<PathBuf> {
    let path = folder.join("rtl_task.py");
    if std::fs::read_to_string(&path).is_ok_and(|text| text == HELPER) {
        return Ok(folder.to_path_buf());
    }
    std::fs::create_dir_all(folder)?;
    // Nodes start together (as processes, or as threads of one): each
    // writes a file of its own and renames it into place, so no program
    // ever imports half a helper.
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    let part = folder.join(format!(
        ".rtl_task.py.{}.{}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&part, HELPER)?;
    std::fs::rename(&part, &path)?;
    Ok(folder.to_path_buf())
}
