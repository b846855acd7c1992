//! The LMDB cache under `<home>/cache`, shared by the processes of one host.
//!
//! Two things go through it, both on the hot path:
//! - stage plans: the relay stores a job's plan once under a digest of its
//!   bytes; every work envelope carries only the key, and each task node
//!   reads a plan from LMDB the first time it sees the key and then keeps it.
//! - large tables: a stage result of at least `by_reference_bytes` is written
//!   once into the map (in pieces, when the relay will spread it over
//!   nodes) and its keys travel instead of the columns, so the
//!   relay hands it to the next stage (or to a client on the same host)
//!   without the bytes crossing a socket. Whoever consumes a table entry
//!   deletes it.
//!
//! A table entry's key names the job it belongs to (`table:<job>:<uuid>`),
//! so when a job ends the relay deletes whatever of it is left: pieces a
//! task node wrote just before it was killed, which no message will ever
//! name.
//!
//! Every cache has a random id, stored in it when it is created; peers
//! compare ids to know whether they share one. LMDB must not be opened twice
//! by one process, so [`Cache::open`] hands out one handle per path.
//!
//! A process killed inside a read transaction leaves its LMDB reader slot
//! taken: the snapshot it pinned keeps freed pages from being reused (the
//! map fills) and, after enough kills, no process can start a read. Slots
//! of dead processes are cleared when a cache is opened, when a read finds
//! the table full, and by the relay on every tick
//! ([`Cache::clear_stale_readers`]).

mod error;

pub use error::CacheError;

use lmdb::{Cursor, Database, Environment, EnvironmentFlags, Transaction, WriteFlags};
use rtl_dsl::Plan;
use rtl_tasks::codec::{
    copy_encoded_rows, decode_column_parts, encode_rows_into, encoded_column_size,
    encoded_rows_size, schema_of, wire_size_of_rows, ColumnSpec,
};
use rtl_tasks::Table;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use uuid::Uuid;

const ID_KEY: &[u8] = b"rtl:cache-id";
const PLAN_PREFIX: &str = "plan:";
const TABLE_PREFIX: &str = "table:";
/// Reader slots: one per process and thread reading at a time.
const MAX_READERS: u32 = 256;

/// A handle on one LMDB environment; cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    env: Environment,
    db: Database,
    id: Uuid,
    path: PathBuf,
    map_size: usize,
}

fn open_caches() -> &'static Mutex<HashMap<PathBuf, Weak<Inner>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<Inner>>>> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Cache {
    /// Opens (creating if needed) the cache in `dir` with a map of `map_size` bytes.
    pub fn open(dir: &Path, map_size: usize) -> Result<Cache, CacheError> {
        Cache::open_in(dir, map_size)
    }

    /// [`Cache::open`] for the relay, which owns the cache: a cache whose
    /// files are not LMDB's, or are damaged, holds nothing of value (every
    /// start clears what an earlier relay left), so it is moved aside to
    /// `<dir>.broken-<seconds>` and a new one made. The second value says
    /// so, for the log.
    pub fn open_or_renew(
        dir: &Path,
        map_size: usize,
    ) -> Result<(Cache, Option<String>), CacheError> {
        match Cache::open_in(dir, map_size) {
            Err(damaged @ CacheError::Damaged { .. }) => {
                let seconds = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let aside = PathBuf::from(format!("{}.broken-{seconds}", dir.display()));
                std::fs::rename(dir, &aside).map_err(|e| CacheError::Open {
                    path: dir.to_path_buf(),
                    reason: format!("{damaged}, and it cannot be moved aside: {e}"),
                })?;
                let cache = Cache::open_in(dir, map_size)?;
                let note = format!(
                    "{damaged}; it was moved to {} and a new one made",
                    aside.display()
                );
                Ok((cache, Some(note)))
            }
            other => other.map(|cache| (cache, None)),
        }
    }

    fn open_in(dir: &Path, map_size: usize) -> Result<Cache, CacheError> {
        // The cache holds the users' tables: its owner's only, whether a
        // daemon or an embedded cluster makes it.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CacheError::Open {
                path: dir.to_path_buf(),
                reason: format!("cannot create the folder: {e}"),
            })?;
        let path = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let mut open = open_caches().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(inner) = open.get(&path).and_then(Weak::upgrade) {
            return Ok(Cache { inner });
        }
        // The cache holds nothing that must survive a power cut, so commits
        // skip fsync; LMDB stays consistent either way.
        let env = Environment::new()
            .set_map_size(map_size)
            .set_max_readers(MAX_READERS)
            .set_flags(
                EnvironmentFlags::NO_SYNC
                    | EnvironmentFlags::NO_META_SYNC
                    | EnvironmentFlags::WRITE_MAP,
            )
            .open_with_permissions(&path, 0o600)
            .map_err(|e| match e {
                lmdb::Error::Invalid
                | lmdb::Error::Corrupted
                | lmdb::Error::VersionMismatch
                | lmdb::Error::Panic => CacheError::Damaged {
                    path: path.clone(),
                    reason: e.to_string(),
                },
                e => CacheError::Open {
                    path: path.clone(),
                    reason: e.to_string(),
                },
            })?;
        // Opening the database takes a reader slot, which nodes killed
        // earlier may have used up.
        stale_readers(&env);
        let db = env.open_db(None).map_err(|e| CacheError::Open {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let id = {
            let mut txn = env
                .begin_rw_txn()
                .map_err(|e| lmdb_error(&path, map_size, e))?;
            let existing = match txn.get(db, &ID_KEY) {
                Ok(bytes) => Uuid::from_slice(bytes).ok(),
                Err(_) => None,
            };
            let id = match existing {
                Some(id) => id,
                None => {
                    let id = Uuid::new_v4();
                    txn.put(db, &ID_KEY, id.as_bytes(), WriteFlags::empty())
                        .map_err(|e| lmdb_error(&path, map_size, e))?;
                    id
                }
            };
            txn.commit().map_err(|e| lmdb_error(&path, map_size, e))?;
            id
        };
        let inner = Arc::new(Inner {
            env,
            db,
            id,
            path: path.clone(),
            map_size,
        });
        open.insert(path, Arc::downgrade(&inner));
        Ok(Cache { inner })
    }

    /// This cache's id; equal ids mean one shared cache.
    pub fn id(&self) -> Uuid {
        self.inner.id
    }

    /// The folder that holds the LMDB files.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Frees the reader slots of processes that died mid-read; returns how
    /// many there were.
    pub fn clear_stale_readers(&self) -> usize {
        stale_readers(&self.inner.env)
    }

    /// Reader slots held by live transactions (of any process), and the
    /// most there can be.
    pub fn readers(&self) -> (usize, usize) {
        unsafe extern "C" fn count(
            msg: *const libc::c_char,
            ctx: *mut libc::c_void,
        ) -> libc::c_int {
            // SAFETY: LMDB passes a NUL-terminated line, and `ctx` is the
            // counter below, alive for the whole call.
            let line = unsafe { std::ffi::CStr::from_ptr(msg) }.to_bytes();
            // One line per reader, each starting with its pid; the header
            // and "(no active readers)" do not.
            let readers = line
                .split(|b| *b == b'\n')
                .filter(|l| l.trim_ascii_start().first().is_some_and(u8::is_ascii_digit))
                .count();
            // SAFETY: `ctx` is the counter below (see above).
            unsafe { *(ctx as *mut usize) += readers };
            0
        }
        let mut readers = 0usize;
        // SAFETY: the environment is open for as long as `self` lives.
        unsafe {
            lmdb_sys::mdb_reader_list(
                self.inner.env.env(),
                Some(count),
                &mut readers as *mut usize as *mut libc::c_void,
            );
        }
        (readers, MAX_READERS as usize)
    }

    /// Stores plan bytes under `digest` unless already there; returns the
    /// key. Other bytes already under that key are an error: a plan is
    /// never silently swapped for another.
    pub fn put_plan(&self, digest: &str, cbor: &[u8]) -> Result<String, CacheError> {
        let key = format!("{PLAN_PREFIX}{digest}");
        let mut txn = self.rw(cbor.len())?;
        match txn.put(self.inner.db, &key, &cbor, WriteFlags::NO_OVERWRITE) {
            Ok(()) => {}
            Err(lmdb::Error::KeyExist) => {
                let same = txn.get(self.inner.db, &key).is_ok_and(|held| held == cbor);
                if !same {
                    return Err(CacheError::PlanClash {
                        key,
                        path: self.inner.path.clone(),
                    });
                }
            }
            Err(e) => return Err(self.error(e)),
        }
        txn.commit().map_err(|e| self.error(e))?;
        Ok(key)
    }

    /// The plan stored under `key`, if any.
    pub fn load_plan(&self, key: &str) -> Result<Option<Plan>, CacheError> {
        let Some(bytes) = self.get_plan(key)? else {
            return Ok(None);
        };
        ciborium::from_reader(bytes.as_slice())
            .map(Some)
            .map_err(|e| CacheError::Corrupt {
                key: key.to_string(),
                reason: e.to_string(),
            })
    }

    /// Plan bytes stored under `key`, if any.
    pub fn get_plan(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let txn = self.ro()?;
        match txn.get(self.inner.db, &key) {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(lmdb::Error::NotFound) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Writes `table`, of `job`, under a fresh key; returns the key.
    pub fn put_table(&self, job: Uuid, table: &Table) -> Result<String, CacheError> {
        self.put_rows(job, table, 0, table.rows())
    }

    /// Writes `table`, of `job`, as entries of at most `rows` rows each, in
    /// order, straight from its columns; returns the keys. None is left
    /// behind when one cannot be written.
    pub fn put_pieces(
        &self,
        job: Uuid,
        table: &Table,
        rows: usize,
    ) -> Result<Vec<String>, CacheError> {
        let rows = rows.max(1);
        let mut keys = Vec::new();
        for start in (0..table.rows().max(1)).step_by(rows) {
            match self.put_rows(job, table, start, (start + rows).min(table.rows())) {
                Ok(key) => keys.push(key),
                Err(e) => {
                    self.discard(&keys);
                    return Err(e);
                }
            }
        }
        Ok(keys)
    }

    /// Writes rows `start..end` of `table` under a fresh key.
    ///
    /// Layout: u32 LE length of a CBOR list of column specs, the list, a u64
    /// LE row count, then each column in wire encoding.
    fn put_rows(
        &self,
        job: Uuid,
        table: &Table,
        start: usize,
        end: usize,
    ) -> Result<String, CacheError> {
        let key = table_key(&job.to_string());
        let specs = schema_of(table);
        let mut head = Vec::new();
        ciborium::into_writer(&specs, &mut head)
            .map_err(|e| CacheError::Encode(format!("cannot encode a schema: {e}")))?;
        let sizes: Vec<usize> = table
            .iter()
            .map(|(_, c)| wire_size_of_rows(c, start, end))
            .collect();
        let total = 4 + head.len() + 8 + sizes.iter().sum::<usize>();
        let mut txn = self.rw(total)?;
        {
            let out = txn
                .reserve(self.inner.db, &key, total, WriteFlags::empty())
                .map_err(|e| self.error(e))?;
            let mut at = write_head(out, &head, end - start);
            for ((_, column), size) in table.iter().zip(sizes) {
                encode_rows_into(column, start, end, &mut out[at..at + size]);
                at += size;
            }
        }
        txn.commit().map_err(|e| self.error(e))?;
        Ok(key)
    }

    /// Cuts the table under `key` into entries of at most `rows` rows, in
    /// order, copying bytes from the old entry into the new ones inside the
    /// map: nothing is decoded and nothing lands in this process's heap, so
    /// the relay can spread a 1 GB table over nodes without holding it.
    /// The old entry is deleted; the new ones belong to its job.
    pub fn split_table(&self, key: &str, rows: usize) -> Result<Vec<String>, CacheError> {
        let owner = owner_of(key).ok_or_else(|| CacheError::NotATable {
            key: key.to_string(),
        })?;
        let rows = rows.max(1);
        let reader = self.ro()?;
        let bytes = reader
            .get(self.inner.db, &key)
            .map_err(|e| self.missing(key, e))?;
        let entry = Entry::parse(bytes).map_err(|e| corrupt(key, e))?;
        let mut head = Vec::new();
        ciborium::into_writer(&entry.specs, &mut head)
            .map_err(|e| CacheError::Encode(format!("cannot encode a schema: {e}")))?;
        // The pieces take about what the entry does, beside it until it goes.
        let mut txn = self.rw(bytes.len())?;
        let mut keys = Vec::new();
        for start in (0..entry.rows).step_by(rows) {
            let end = (start + rows).min(entry.rows);
            let piece = table_key(owner);
            let sizes: Vec<usize> = entry
                .specs
                .iter()
                .zip(&entry.columns)
                .map(|(spec, column)| encoded_rows_size(spec.dtype, column, start, end))
                .collect();
            let total = 4 + head.len() + 8 + sizes.iter().sum::<usize>();
            let out = txn
                .reserve(self.inner.db, &piece, total, WriteFlags::empty())
                .map_err(|e| self.error(e))?;
            let mut at = write_head(out, &head, end - start);
            for ((spec, column), size) in entry.specs.iter().zip(&entry.columns).zip(sizes) {
                copy_encoded_rows(
                    spec.dtype,
                    column,
                    entry.rows,
                    (start, end),
                    &mut out[at..at + size],
                )
                .map_err(|e| corrupt(key, e))?;
                at += size;
            }
            keys.push(piece);
        }
        txn.del(self.inner.db, &key, None)
            .map_err(|e| self.error(e))?;
        txn.commit().map_err(|e| self.error(e))?;
        drop(reader);
        Ok(keys)
    }

    /// Reads and deletes the table stored under `key`.
    pub fn take_table(&self, key: &str) -> Result<Table, CacheError> {
        self.take_tables(&[key.to_string()])
    }

    /// Reads and deletes the tables under `keys` and joins them in order,
    /// decoding each column straight into its final place. Every key is
    /// consumed, even when one is bad, so none is left behind.
    pub fn take_tables(&self, keys: &[String]) -> Result<Table, CacheError> {
        self.tables(keys, true)
    }

    /// Reads the tables under `keys`, joined in order, and leaves them in
    /// place: a task node's input stays until the relay knows it was
    /// answered, so the work can be sent again if the node dies.
    pub fn read_tables(&self, keys: &[String]) -> Result<Table, CacheError> {
        self.tables(keys, false)
    }

    fn tables(&self, keys: &[String], consume: bool) -> Result<Table, CacheError> {
        if !consume {
            let txn = self.ro()?;
            return self.join(&txn, keys);
        }
        let mut txn = self.rw(0)?;
        let table = self.join(&txn, keys);
        for key in keys {
            match txn.del(self.inner.db, &key, None) {
                Ok(()) | Err(lmdb::Error::NotFound) => {}
                Err(e) => return Err(self.error(e)),
            }
        }
        txn.commit().map_err(|e| self.error(e))?;
        table
    }

    /// The tables under `keys`, read in place and joined in order.
    fn join(&self, txn: &impl Transaction, keys: &[String]) -> Result<Table, CacheError> {
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            if !key.starts_with(TABLE_PREFIX) {
                return Err(CacheError::NotATable { key: key.clone() });
            }
            let bytes = txn
                .get(self.inner.db, &key)
                .map_err(|e| self.missing(key, e))?;
            entries.push(Entry::parse(bytes).map_err(|e| corrupt(key, e))?);
        }
        join_entries(&entries).map_err(|e| corrupt(&keys.join(", "), e))
    }

    /// Deletes table entries whose consumer went away, in one transaction;
    /// missing keys are fine.
    pub fn discard(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        if let Ok(mut txn) = self.rw(0) {
            for key in keys {
                let _ = txn.del(self.inner.db, key, None);
            }
            let _ = txn.commit();
        }
    }

    /// Deletes every table entry of `job` but those in `keep`: what is
    /// left of a job that ended (pieces written by a node that was killed
    /// before it could name them). Looks before it writes, so a job that
    /// left nothing costs no write transaction.
    pub fn discard_job(&self, job: Uuid, keep: &[String]) {
        let prefix = format!("{TABLE_PREFIX}{job}:");
        let left: Vec<Vec<u8>> = {
            let Ok(txn) = self.ro() else {
                return;
            };
            let Ok(mut cursor) = txn.open_ro_cursor(self.inner.db) else {
                return;
            };
            cursor
                .iter_from(prefix.as_bytes())
                .filter_map(Result::ok)
                .take_while(|(k, _)| k.starts_with(prefix.as_bytes()))
                .filter(|(k, _)| !keep.iter().any(|kept| kept.as_bytes() == *k))
                .map(|(k, _)| k.to_vec())
                .collect()
        };
        if left.is_empty() {
            return;
        }
        if let Ok(mut txn) = self.rw(0) {
            for key in &left {
                let _ = txn.del(self.inner.db, key, None);
            }
            let _ = txn.commit();
        }
    }

    /// Deletes every table and plan entry; returns how many there were.
    /// For a relay starting up: no job of an earlier one can finish, so
    /// what they left is garbage.
    pub fn discard_leftovers(&self) -> Result<usize, CacheError> {
        let mut txn = self.rw(0)?;
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for prefix in [TABLE_PREFIX, PLAN_PREFIX] {
            let mut cursor = txn
                .open_ro_cursor(self.inner.db)
                .map_err(|e| self.error(e))?;
            keys.extend(
                cursor
                    .iter_from(prefix.as_bytes())
                    .filter_map(Result::ok)
                    .take_while(|(k, _)| k.starts_with(prefix.as_bytes()))
                    .map(|(k, _)| k.to_vec()),
            );
        }
        for key in &keys {
            txn.del(self.inner.db, key, None)
                .map_err(|e| self.error(e))?;
        }
        txn.commit().map_err(|e| self.error(e))?;
        Ok(keys.len())
    }

    /// Number of table entries held, for status and tests.
    pub fn table_entries(&self) -> usize {
        self.entries(TABLE_PREFIX)
    }

    /// Number of plans held, for status and tests.
    pub fn plan_entries(&self) -> usize {
        self.entries(PLAN_PREFIX)
    }

    fn entries(&self, prefix: &str) -> usize {
        let Ok(txn) = self.ro() else {
            return 0;
        };
        let Ok(mut cursor) = txn.open_ro_cursor(self.inner.db) else {
            return 0;
        };
        cursor
            .iter_from(prefix.as_bytes())
            .filter_map(Result::ok)
            .take_while(|(k, _)| k.starts_with(prefix.as_bytes()))
            .count()
    }

    /// A read transaction; when the reader table is full, slots of dead
    /// processes are freed and the read tried once more.
    fn ro(&self) -> Result<lmdb::RoTransaction<'_>, CacheError> {
        match self.inner.env.begin_ro_txn() {
            Err(lmdb::Error::ReadersFull) if self.clear_stale_readers() > 0 => {
                self.inner.env.begin_ro_txn()
            }
            other => other,
        }
        .map_err(|e| self.error(e))
    }

    /// A write transaction that may add about `bytes` to the cache.
    fn rw(&self, bytes: usize) -> Result<lmdb::RwTransaction<'_>, CacheError> {
        self.make_room(bytes)?;
        self.inner.env.begin_rw_txn().map_err(|e| self.error(e))
    }

    /// Gives the cache's file disk blocks for `bytes` more than it uses,
    /// and a margin, before a write. The map is writable (WRITE_MAP, for
    /// speed) and its file sparse: a store into a hole the disk has no
    /// block for kills the process with SIGBUS. Allocating first turns a
    /// full disk into an error here instead.
    fn make_room(&self, bytes: usize) -> Result<(), CacheError> {
        const MARGIN: usize = 4 << 20;
        let env = &self.inner.env;
        let (Ok(info), Ok(stat)) = (env.info(), env.stat()) else {
            return Ok(());
        };
        let used = (info.last_pgno() + 1).saturating_mul(stat.page_size() as usize);
        let want = used
            .saturating_add(bytes)
            .saturating_add(MARGIN)
            .min(self.inner.map_size);
        let mut fd: lmdb_sys::mdb_filehandle_t = -1;
        // SAFETY: a live environment and a valid place for its descriptor.
        if unsafe { lmdb_sys::mdb_env_get_fd(env.env(), &mut fd) } != 0 || fd < 0 {
            return Ok(());
        }
        // fallocate(2), not posix_fallocate: where the file system cannot
        // allocate ahead, glibc's posix_fallocate writes to every block of
        // the range instead, on every write transaction.
        // SAFETY: LMDB's own open descriptor of its data file; mode 0 only
        // gives the range blocks, never changes what is in it.
        let rc = match unsafe { libc::fallocate(fd, 0, 0, want as libc::off_t) } {
            0 => 0,
            _ => std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        };
        match rc {
            0 => Ok(()),
            // A file system that cannot allocate ahead: nothing to do.
            libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
            // Deleting needs a few pages, which earlier writes' margins
            // hold: a full disk must not keep results from being taken.
            libc::ENOSPC if bytes == 0 => Ok(()),
            libc::ENOSPC => Err(CacheError::NoSpace {
                path: self.inner.path.clone(),
                needed: bytes,
            }),
            other => Err(CacheError::Lmdb {
                path: self.inner.path.clone(),
                reason: std::io::Error::from_raw_os_error(other).to_string(),
            }),
        }
    }

    fn error(&self, e: lmdb::Error) -> CacheError {
        lmdb_error(&self.inner.path, self.inner.map_size, e)
    }

    /// `e` from reading table `key`: not found is [`CacheError::Missing`].
    fn missing(&self, key: &str, e: lmdb::Error) -> CacheError {
        match e {
            lmdb::Error::NotFound => CacheError::Missing {
                key: key.to_string(),
                path: self.inner.path.clone(),
            },
            e => self.error(e),
        }
    }
}

/// A fresh table key belonging to `owner` (a job id).
fn table_key(owner: &str) -> String {
    format!("{TABLE_PREFIX}{owner}:{}", Uuid::new_v4())
}

/// Whether table key `key` belongs to `job`.
pub fn belongs_to(key: &str, job: Uuid) -> bool {
    owner_of(key).is_some_and(|owner| owner == job.to_string())
}

/// The job a table key belongs to.
fn owner_of(key: &str) -> Option<&str> {
    key.strip_prefix(TABLE_PREFIX)?
        .rsplit_once(':')
        .map(|(owner, _)| owner)
}

/// Clears the reader slots of dead processes in `env`.
fn stale_readers(env: &Environment) -> usize {
    let mut dead: libc::c_int = 0;
    // SAFETY: `env` is an open environment; LMDB only writes `dead`.
    let rc = unsafe { lmdb_sys::mdb_reader_check(env.env(), &mut dead) };
    if rc == 0 {
        usize::try_from(dead).unwrap_or(0)
    } else {
        0
    }
}

fn lmdb_error(path: &Path, map_size: usize, e: lmdb::Error) -> CacheError {
    let path = path.to_path_buf();
    match e {
        lmdb::Error::MapFull => CacheError::Full { path, map_size },
        lmdb::Error::ReadersFull => CacheError::ReadersFull {
            path,
            slots: MAX_READERS,
        },
        e => CacheError::Lmdb {
            path,
            reason: e.to_string(),
        },
    }
}

/// Entry `key` whose bytes are wrong in the way `reason` says.
fn corrupt(key: &str, reason: impl ToString) -> CacheError {
    CacheError::Corrupt {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

/// A table entry's layout, read in place from the map.
struct Entry<'a> {
    specs: Vec<ColumnSpec>,
    rows: usize,
    columns: Vec<&'a [u8]>,
}

impl<'a> Entry<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Entry<'a>, String> {
        let short = || "entry is shorter than its header says".to_string();
        let word = |at: usize, n: usize| bytes.get(at..at + n).ok_or_else(short);
        let head_len = u32::from_le_bytes(word(0, 4)?.try_into().map_err(|_| short())?) as usize;
        let specs: Vec<ColumnSpec> =
            ciborium::from_reader(word(4, head_len)?).map_err(|e| format!("bad schema: {e}"))?;
        let mut at = 4 + head_len;
        let rows = u64::from_le_bytes(word(at, 8)?.try_into().map_err(|_| short())?);
        let rows = usize::try_from(rows).map_err(|_| format!("row count {rows} is too large"))?;
        at += 8;
        let mut columns = Vec::with_capacity(specs.len());
        for spec in &specs {
            let size = encoded_column_size(spec.dtype, rows, bytes.get(at..).ok_or_else(short)?)?;
            columns.push(word(at, size)?);
            at += size;
        }
        Ok(Entry {
            specs,
            rows,
            columns,
        })
    }
}

/// The entries' rows, one after another, as one table.
fn join_entries(entries: &[Entry<'_>]) -> Result<Table, String> {
    let Some(first) = entries.first() else {
        return Ok(Table::new());
    };
    if let Some(k) = entries.iter().position(|e| e.specs != first.specs) {
        return Err(format!("piece {k} has different columns from the first"));
    }
    let columns = first
        .specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let parts: Vec<(usize, &[u8])> =
                entries.iter().map(|e| (e.rows, e.columns[i])).collect();
            decode_column_parts(spec.dtype, &parts).map(|c| (spec.name.clone(), c))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Table::from_columns(columns)
}

/// Writes an entry's head (schema length, schema CBOR, row count) at the
/// start of `out`; returns where the columns begin.
fn write_head(out: &mut [u8], schema: &[u8], rows: usize) -> usize {
    out[..4].copy_from_slice(&(schema.len() as u32).to_le_bytes());
    out[4..4 + schema.len()].copy_from_slice(schema);
    let at = 4 + schema.len();
    out[at..at + 8].copy_from_slice(&(rows as u64).to_le_bytes());
    at + 8
}

/// A plan as the cache stores it: its CBOR bytes and their SHA-256, a
/// digest two different plans cannot share.
pub struct PlanBytes {
    /// The SHA-256 of `bytes`, in hex.
    pub digest: String,
    /// The plan's CBOR encoding.
    pub bytes: Vec<u8>,
}

impl PlanBytes {
    /// Encodes `plan`.
    pub fn of(plan: &Plan) -> Result<PlanBytes, CacheError> {
        use sha2::Digest;
        let mut bytes = Vec::new();
        ciborium::into_writer(plan, &mut bytes)
            .map_err(|e| CacheError::Encode(format!("cannot encode the plan: {e}")))?;
        let digest = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(PlanBytes { digest, bytes })
    }

    /// The key it is stored under.
    pub fn key(&self) -> String {
        format!("{PLAN_PREFIX}{}", self.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rtl_tasks::Column;

    /// A folder for a cache, removed when it is dropped.
    fn scratch(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("rtl-cache-{name}-"))
            .tempdir()
            .expect("scratch folder")
    }

    #[test]
    fn tables_round_trip_and_are_taken_once() {
        let dir = scratch("tables");
        let cache = Cache::open(dir.path(), 16 << 20).expect("open");
        let table = Table::from_columns(vec![
            ("s".into(), rtl_tasks::Column::text(&["x", "yz"])),
            ("f".into(), Column::Float64(array![1.5, -2.0])),
            ("b".into(), Column::Bool(array![false, true])),
        ])
        .expect("table");
        let key = cache.put_table(Uuid::nil(), &table).expect("put");
        assert_eq!(cache.table_entries(), 1);
        assert_eq!(cache.take_table(&key).expect("take"), table);
        assert_eq!(cache.table_entries(), 0);
        assert!(cache.take_table(&key).is_err());
    }

    #[test]
    fn pieces_join_in_order_and_are_all_consumed_even_when_one_is_missing() {
        let dir = scratch("pieces");
        let cache = Cache::open(dir.path(), 16 << 20).expect("open");
        let table = Table::from_columns(vec![
            ("s".into(), Column::text(&["a", "bc", "", "d", "e"])),
            ("n".into(), Column::Int64(array![1, 2, 3, 4, 5])),
            (
                "b".into(),
                Column::Bool(array![true, false, true, true, false]),
            ),
        ])
        .expect("table");
        let keys: Vec<String> = (0..3)
            .map(|k| table.slice(k * 2, (k + 1) * 2))
            .map(|t| cache.put_table(Uuid::nil(), &t).expect("put"))
            .collect();
        assert_eq!(keys.len(), 3);
        assert_eq!(cache.take_tables(&keys).expect("join"), table);
        assert_eq!(cache.table_entries(), 0);

        let kept = cache.put_table(Uuid::nil(), &table).expect("put");
        let err = cache
            .take_tables(&[kept, "table:gone".into()])
            .expect_err("a missing piece");
        assert!(
            matches!(&err, CacheError::Missing { key, .. } if key == "table:gone"),
            "{err:?}"
        );
        assert!(err.to_string().contains("table:gone"), "{err}");
        assert_eq!(
            cache.table_entries(),
            0,
            "the present piece is consumed too"
        );
    }

    #[test]
    fn a_table_is_cut_into_pieces_inside_the_map() {
        let dir = scratch("split");
        let cache = Cache::open(dir.path(), 16 << 20).expect("open");
        let table = Table::from_columns(vec![
            ("s".into(), Column::text(&["a", "bc", "", "déf", "e"])),
            ("n".into(), Column::Int64(array![1, 2, 3, 4, 5])),
            ("f".into(), Column::Float64(array![0.5, 1.5, 2.5, 3.5, 4.5])),
            (
                "b".into(),
                Column::Bool(array![true, false, true, true, false]),
            ),
        ])
        .expect("table");
        let key = cache.put_table(Uuid::nil(), &table).expect("put");
        let pieces = cache.split_table(&key, 2).expect("split");
        assert_eq!(pieces.len(), 3);
        assert_eq!(cache.table_entries(), 3, "the whole one is gone");
        let second = cache.read_tables(&pieces[1..2]).expect("piece");
        assert_eq!(second, table.slice(2, 4));
        assert_eq!(cache.take_tables(&pieces).expect("join"), table);
        assert_eq!(cache.table_entries(), 0);
    }

    #[test]
    fn what_is_left_of_a_job_goes_when_it_ends() {
        let dir = scratch("orphans");
        let cache = Cache::open(dir.path(), 1 << 24).expect("open");
        let table = Table::from_columns(vec![(
            "x".into(),
            Column::Int64(ndarray::Array1::from_iter(0..10)),
        )])
        .expect("table");
        let (ended, other) = (Uuid::new_v4(), Uuid::new_v4());
        let result = cache.put_table(ended, &table).expect("put");
        let orphans = cache.put_pieces(ended, &table, 3).expect("pieces");
        let pieces = cache.split_table(&result, 4).expect("split");
        let theirs = cache.put_table(other, &table).expect("put");
        assert_eq!(cache.table_entries(), 4 + 3 + 1);
        // Pieces cut from an entry belong to its job.
        cache.discard_job(ended, &pieces[..1]);
        assert_eq!(
            cache.table_entries(),
            2,
            "the kept piece and the other job's"
        );
        assert!(cache.read_tables(&pieces[..1]).is_ok());
        assert!(cache.read_tables(&orphans[..1]).is_err());
        assert!(cache.read_tables(std::slice::from_ref(&theirs)).is_ok());
        assert!(cache.put_plan("p", b"plan").is_ok());
        assert_eq!(cache.plan_entries(), 1);
        assert_eq!(cache.discard_leftovers(), Ok(3));
        assert_eq!(cache.table_entries(), 0);
        assert_eq!(cache.plan_entries(), 0);
    }

    #[test]
    fn a_plan_key_never_holds_another_plan() {
        let dir = scratch("plans");
        let cache = Cache::open(dir.path(), 16 << 20).expect("open");
        let key = cache.put_plan("k", b"plan one").expect("put");
        assert_eq!(
            cache.put_plan("k", b"plan one"),
            Ok(key.clone()),
            "the same again"
        );
        let err = cache.put_plan("k", b"plan two").expect_err("another plan");
        assert!(
            matches!(&err, CacheError::PlanClash { key: k, .. } if *k == key),
            "{err:?}"
        );
        assert!(err.to_string().contains("holds another plan"), "{err}");
        assert_eq!(
            cache.get_plan(&key).expect("get").as_deref(),
            Some(&b"plan one"[..])
        );
    }

    #[test]
    fn a_damaged_cache_is_moved_aside_and_made_anew_for_the_relay() {
        let dir = scratch("damaged");
        let at = dir.path().join("cache");
        std::fs::create_dir_all(&at).expect("cache folder");
        std::fs::write(at.join("data.mdb"), vec![0xde; 64 << 10]).expect("garbage");
        let err = Cache::open(&at, 16 << 20).err().expect("damaged");
        assert!(matches!(err, CacheError::Damaged { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("the cache is damaged or not rtl's"),
            "{err}"
        );
        let (cache, note) = Cache::open_or_renew(&at, 16 << 20).expect("renewed");
        let note = note.expect("a note for the log");
        assert!(
            note.contains("it was moved to") && note.contains(".broken-"),
            "{note}"
        );
        let key = cache.put_plan("abc", b"plan").expect("the new cache works");
        assert_eq!(cache.get_plan(&key).expect("get"), Some(b"plan".to_vec()));
    }

    #[test]
    fn one_handle_per_path_and_a_stable_id() {
        let dir = scratch("id");
        let a = Cache::open(dir.path(), 16 << 20).expect("open");
        let b = Cache::open(dir.path(), 16 << 20).expect("open again");
        assert_eq!(a.id(), b.id());
        let key = a.put_plan("abc", b"plan").expect("put plan");
        assert_eq!(b.get_plan(&key).expect("get"), Some(b"plan".to_vec()));
        assert_eq!(b.get_plan("plan:nope").expect("get"), None);
    }

    #[test]
    fn a_full_map_says_to_raise_cache_map_size() {
        let dir = scratch("full");
        let cache = Cache::open(dir.path(), 1 << 20).expect("open");
        let big = Table::from_columns(vec![(
            "x".into(),
            Column::Float64(ndarray::Array1::zeros(400_000)),
        )])
        .expect("table");
        let err = cache.put_table(Uuid::nil(), &big).expect_err("map full");
        assert!(matches!(err, CacheError::Full { .. }), "{err:?}");
        assert!(err.to_string().contains("raise cache_map_size"), "{err}");
    }
}
