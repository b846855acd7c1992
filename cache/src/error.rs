//! What can go wrong in the cache, as a type callers can match on.

use std::fmt;
use std::path::PathBuf;

/// Why the cache could not do what was asked. The text of each says what
/// to change, naming the cache's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheError {
    /// The cache's folder or its LMDB files cannot be created or opened.
    Open {
        /// The folder.
        path: PathBuf,
        /// What the operating system or LMDB said.
        reason: String,
    },
    /// The cache's files are damaged or are not LMDB's: nothing in them can
    /// be read (the relay moves such a cache aside at start).
    Damaged {
        /// The folder.
        path: PathBuf,
        /// What LMDB said.
        reason: String,
    },
    /// The map is full: more is in flight than `cache_map_size` holds.
    Full {
        /// The folder.
        path: PathBuf,
        /// The map's size in bytes.
        map_size: usize,
    },
    /// The disk holding the cache has no room for what was to be stored.
    NoSpace {
        /// The folder.
        path: PathBuf,
        /// Bytes that were to be stored.
        needed: usize,
    },
    /// Every reader slot is taken by a live reader.
    ReadersFull {
        /// The folder.
        path: PathBuf,
        /// How many slots there are.
        slots: u32,
    },
    /// No table entry under this key: already taken, freed with its job,
    /// or never written.
    Missing {
        /// The key asked for.
        key: String,
        /// The folder.
        path: PathBuf,
    },
    /// A key that is not a table's where one was expected.
    NotATable {
        /// The key given.
        key: String,
    },
    /// A plan key that already holds other bytes: a plan is never swapped
    /// for another.
    PlanClash {
        /// The key.
        key: String,
        /// The folder.
        path: PathBuf,
    },
    /// An entry whose bytes do not decode, or pieces of one table that do
    /// not fit together.
    Corrupt {
        /// The entry's key, or the keys read together.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A plan or schema that cannot be encoded.
    Encode(String),
    /// Any other LMDB failure.
    Lmdb {
        /// The folder.
        path: PathBuf,
        /// What LMDB said.
        reason: String,
    },
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::Open { path, reason } => {
                write!(f, "cannot open the LMDB cache at {}: {reason}", path.display())
            }
            CacheError::Damaged { path, reason } => write!(
                f,
                "cannot open the LMDB cache at {}: {reason}; the cache is damaged or not rtl's",
                path.display()
            ),
            CacheError::Full { path, map_size } => write!(
                f,
                "the LMDB cache at {} is full ({map_size} bytes); raise cache_map_size",
                path.display()
            ),
            CacheError::NoSpace { path, needed } => write!(
                f,
                "the disk holding the cache at {} has no room for {needed} more bytes; free some space there",
                path.display()
            ),
            CacheError::ReadersFull { path, slots } => write!(
                f,
                "the LMDB cache at {} has {slots} readers at once, as many as it can; fewer task nodes on this host would help",
                path.display()
            ),
            CacheError::Missing { key, path } => {
                write!(f, "table {key} is not in the cache at {}", path.display())
            }
            CacheError::NotATable { key } => write!(f, "{key:?} is not a table key"),
            CacheError::PlanClash { key, path } => write!(
                f,
                "{key} in the cache at {} holds another plan",
                path.display()
            ),
            CacheError::Corrupt { key, reason } => {
                write!(f, "cached entry {key} is corrupt: {reason}")
            }
            CacheError::Encode(what) => f.write_str(what),
            CacheError::Lmdb { path, reason } => {
                write!(f, "LMDB cache at {}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for CacheError {}

impl From<CacheError> for String {
    fn from(e: CacheError) -> String {
        e.to_string()
    }
}
