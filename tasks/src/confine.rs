//! Where file tasks may read and write: under the job's folder (the folder
//! of the job file, which the client sends with the job), narrowed to the
//! daemon's `data_root` when that is set. A path is refused, before any
//! byte is read or written, when it leads out by `..`, by being absolute,
//! or through a symbolic link.
//!
//! Checking a path and then opening it by name would leave a gap: a link
//! swapped in between leads anywhere. So a [`Confined`] file is opened
//! from the folder down, one component at a time with `openat`, and no
//! component, the file's own name included, may be a symbolic link
//! (`O_NOFOLLOW`); the `.meta` beside a table is opened the same way.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A file under the folder file tasks may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confined {
    /// The folder, resolved.
    root: PathBuf,
    /// The file, relative to `root`, with no `.` or `..` left.
    rel: PathBuf,
    /// `root` joined with `rel`, for messages.
    shown: PathBuf,
}

/// Where a table file is read from or written to: a [`Confined`] file for
/// file tasks, or a plain path (the user's own file, named on the command
/// line).
pub trait Place: Sized {
    /// The path, for messages and for its extension.
    fn path(&self) -> &Path;
    /// Opens the file to read.
    fn open(&self) -> io::Result<File>;
    /// Creates the file to write, which must not exist yet, and any
    /// missing folders.
    fn create_new(&self) -> io::Result<File>;
    /// The file beside this one with another extension.
    fn sibling(&self, extension: &str) -> Self;
    /// A file beside this one, hidden, with a name no other writer uses:
    /// where a new version of it is written before it replaces it.
    fn temporary(&self) -> Self;
    /// Renames this file over `target`, which is in the same folder.
    fn rename_over(&self, target: &Self) -> io::Result<()>;
    /// Removes the file if it is there.
    fn remove(&self) -> io::Result<()>;
}

/// `.<name>.<pid>-<n>.part`: hidden, and unique in this process.
fn temporary_name(path: &Path) -> std::ffi::OsString {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}-{n}.part", std::process::id()));
    name
}

/// Ok when the file was removed or was not there.
fn removed(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl Place for PathBuf {
    fn path(&self) -> &Path {
        self
    }

    fn open(&self) -> io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(self)?;
        regular(file)
    }

    fn create_new(&self) -> io::Result<File> {
        if let Some(dir) = self.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        File::create_new(self)
    }

    fn sibling(&self, extension: &str) -> PathBuf {
        self.with_extension(extension)
    }

    fn temporary(&self) -> PathBuf {
        self.with_file_name(temporary_name(self))
    }

    fn rename_over(&self, target: &PathBuf) -> io::Result<()> {
        std::fs::rename(self, target)
    }

    fn remove(&self) -> io::Result<()> {
        removed(std::fs::remove_file(self))
    }
}

impl Place for Confined {
    fn path(&self) -> &Path {
        &self.shown
    }

    fn open(&self) -> io::Result<File> {
        let (dir, name) = self.folder(false)?;
        regular(openat(&dir, name, libc::O_RDONLY | libc::O_NONBLOCK, 0)?)
    }

    fn create_new(&self) -> io::Result<File> {
        let (dir, name) = self.folder(true)?;
        openat(
            &dir,
            name,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0o666,
        )
    }

    fn temporary(&self) -> Confined {
        let name = temporary_name(&self.rel);
        Confined {
            root: self.root.clone(),
            rel: self.rel.with_file_name(&name),
            shown: self.shown.with_file_name(&name),
        }
    }

    fn rename_over(&self, target: &Confined) -> io::Result<()> {
        if self.rel.parent() != target.rel.parent() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not in the same folder",
            ));
        }
        let (dir, from) = self.folder(false)?;
        let (from, to) = (
            c_name(from)?,
            c_name(target.rel.file_name().unwrap_or_default())?,
        );
        // SAFETY: a valid directory descriptor and two C strings; renameat
        // replaces a link at `to` itself, never what it points to.
        let done =
            unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) };
        if done == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn sibling(&self, extension: &str) -> Confined {
        Confined {
            root: self.root.clone(),
            rel: self.rel.with_extension(extension),
            shown: self.shown.with_extension(extension),
        }
    }

    fn remove(&self) -> io::Result<()> {
        let (dir, name) = match self.folder(false) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            other => other?,
        };
        let c = c_name(name)?;
        // SAFETY: a valid directory descriptor and a C string; unlinkat
        // removes a link itself, never what it points to.
        let done = unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) };
        removed(if done == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        })
    }
}

impl Confined {
    /// The folder holding the file, opened from the root down without
    /// following links (created as needed when `create`), and the file's
    /// name in it.
    fn folder(&self, create: bool) -> io::Result<(OwnedFd, &OsStr)> {
        let name = self
            .rel
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
        let root = File::open(&self.root)?;
        let mut dir = OwnedFd::from(root);
        for part in self.rel.parent().into_iter().flat_map(Path::components) {
            let Component::Normal(part) = part else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a plain path",
                ));
            };
            let next = match openat(&dir, part, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
                Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
                    let c = c_name(part)?;
                    // SAFETY: a valid directory descriptor and a C string.
                    let made = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o777) };
                    if made != 0 {
                        let e = io::Error::last_os_error();
                        if e.kind() != io::ErrorKind::AlreadyExists {
                            return Err(e);
                        }
                    }
                    openat(&dir, part, libc::O_RDONLY | libc::O_DIRECTORY, 0)?
                }
                other => other?,
            };
            dir = OwnedFd::from(next);
        }
        Ok((dir, name))
    }
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a file name"))
}

/// `openat(2)` of `name` in `dir`, never following a symbolic link.
/// `file` if it is a regular file. Opened without blocking (a named pipe
/// would wait for a writer forever), a pipe, device or socket is refused:
/// reading one might never end.
fn regular(file: File) -> io::Result<File> {
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a pipe, device or socket might never end); give a file",
        ))
    }
}

fn openat(dir: &OwnedFd, name: &OsStr, flags: libc::c_int, mode: libc::c_uint) -> io::Result<File> {
    let c = c_name(name)?;
    // SAFETY: a valid directory descriptor, a C string, and flags that
    // make a new descriptor we own.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        // A link where a folder or the file should be.
        return Err(match e.raw_os_error() {
            Some(libc::ELOOP) => io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is a symbolic link, which file tasks do not follow",
                    Path::new(name).display()
                ),
            ),
            _ => e,
        });
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// `path` (relative to `base_dir`, or absolute) as a file under the data
/// root, or why not.
pub fn confine(base_dir: &Path, data_root: Option<&Path>, path: &Path) -> Result<Confined, String> {
    let base = base_dir.canonicalize().map_err(|e| {
        format!(
            "the job's folder {} cannot be used on this host: {}",
            base_dir.display(),
            rtl_dsl::words::io(&e)
        )
    })?;
    let root = match data_root {
        None => base.clone(),
        Some(limit) => {
            let limit = limit.canonicalize().map_err(|e| {
                format!(
                    "data_root {} cannot be used: {}",
                    limit.display(),
                    rtl_dsl::words::io(&e)
                )
            })?;
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
    let Ok(rel) = wanted.strip_prefix(&root).map(Path::to_path_buf) else {
        let how = if path.is_absolute() {
            "an absolute path"
        } else if path.components().any(|c| c == Component::ParentDir) {
            "by `..`"
        } else {
            "outside data_root"
        };
        return Err(outside(how));
    };
    // Symbolic links, said early and plainly (opening refuses them too):
    // the deepest part of the path that exists must be reached without one.
    let mut at = root.clone();
    for part in rel.components() {
        at.push(part);
        match at.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "{} goes through a symbolic link ({}); file tasks do not follow links",
                    path.display(),
                    at.display()
                ))
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(Confined {
        shown: root.join(&rel),
        root,
        rel,
    })
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

    fn scratch() -> crate::scratch::Scratch {
        let dir = crate::scratch::Scratch::new("confine");
        std::fs::create_dir_all(dir.join("job/data")).expect("dirs");
        std::fs::create_dir_all(dir.join("elsewhere")).expect("dirs");
        std::fs::write(dir.join("elsewhere/secret.csv"), "x\n1\n").expect("file");
        dir
    }

    #[test]
    fn a_named_pipe_is_refused_at_once_not_waited_on() {
        let dir = scratch();
        let pipe = dir.join("job/data/pipe.csv");
        let c = std::ffi::CString::new(pipe.as_os_str().as_encoded_bytes()).expect("c path");
        // SAFETY: a C string naming a path in our own scratch folder.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = pipe.open().expect_err("a pipe");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let confined = confine(&dir.join("job"), None, Path::new("data/pipe.csv")).expect("inside");
        let err = confined.open().expect_err("a pipe, confined");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn files_under_the_job_folder_are_fine_and_others_refused() {
        let dir = scratch();
        let job = dir.join("job");
        assert_eq!(
            confine(&job, None, Path::new("data/./a.csv"))
                .expect("inside")
                .path(),
            job.join("data/a.csv")
        );
        assert_eq!(
            confine(&job, None, Path::new("data/../b.csv"))
                .expect("still inside")
                .path(),
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

    #[test]
    fn links_are_not_followed_at_open_even_when_swapped_in_after_the_check() {
        let dir = scratch();
        let job = dir.join("job");
        std::fs::write(job.join("data/a.csv"), "x\n1\n").expect("file");
        let file = confine(&job, None, Path::new("data/a.csv")).expect("inside");
        let meta = file.sibling("meta");
        // The checked file, then its folder, then its .meta become links.
        std::fs::remove_file(job.join("data/a.csv")).expect("rm");
        std::os::unix::fs::symlink(dir.join("elsewhere/secret.csv"), job.join("data/a.csv"))
            .expect("link");
        let err = file.open().expect_err("a link");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(file.create_new().is_err(), "writes through a link");
        std::os::unix::fs::symlink(dir.join("elsewhere/secret.csv"), job.join("data/a.meta"))
            .expect("link");
        assert!(meta.open().is_err() && meta.create_new().is_err());
        std::fs::rename(job.join("data"), job.join("moved")).expect("mv");
        std::os::unix::fs::symlink(dir.join("elsewhere"), job.join("data")).expect("link");
        assert!(file.open().is_err() && file.create_new().is_err());
        assert_eq!(
            std::fs::read_to_string(dir.join("elsewhere/secret.csv")).expect("read"),
            "x\n1\n",
            "nothing outside was touched"
        );
        // Missing folders are made on the way, under the folder only.
        let deep = confine(&job, None, Path::new("out/a/b.csv")).expect("inside");
        std::io::Write::write_all(&mut deep.create_new().expect("create"), b"y\n").expect("write");
        assert_eq!(
            std::fs::read_to_string(job.join("out/a/b.csv")).expect("read"),
            "y\n"
        );
    }
}
