//! Why a relay, task node or embedded cluster could not start or run, as a
//! type callers can match on.

use rtl_cache::CacheError;
use rtl_wire::auth::SecretError;
use rtl_wire::WireError;
use std::fmt;

/// Why a service of the daemon could not start or had to stop.
#[derive(Debug)]
pub enum DaemonError {
    /// The settings do not let it run as they stand (a relay others can
    /// reach, with no cluster secret and `insecure` off); says what to do.
    Settings(String),
    /// The cluster secret cannot be read.
    Secret(SecretError),
    /// A socket could not be made, bound or connected.
    Wire(WireError),
    /// The cache could not be opened.
    Cache(CacheError),
    /// The operating system refused a thread or a pipe.
    System {
        /// What was being done, e.g. `start the worker thread`.
        doing: String,
        /// What the operating system said.
        reason: String,
    },
    /// A thread of the service panicked (a fault in rtl): which one.
    Panicked(String),
}

impl DaemonError {
    /// An operating system failure while doing what `doing` says.
    pub(crate) fn system(doing: &str) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
        move |e| DaemonError::System {
            doing: doing.to_string(),
            reason: e.to_string(),
        }
    }
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Settings(what) => f.write_str(what),
            DaemonError::Secret(e) => write!(f, "{e}"),
            DaemonError::Wire(e) => write!(f, "{e}"),
            DaemonError::Cache(e) => write!(f, "{e}"),
            DaemonError::System { doing, reason } => write!(f, "cannot {doing}: {reason}"),
            DaemonError::Panicked(thread) => write!(f, "{thread} panicked"),
        }
    }
}

impl std::error::Error for DaemonError {}

impl From<SecretError> for DaemonError {
    fn from(e: SecretError) -> Self {
        DaemonError::Secret(e)
    }
}

impl From<WireError> for DaemonError {
    fn from(e: WireError) -> Self {
        DaemonError::Wire(e)
    }
}

impl From<CacheError> for DaemonError {
    fn from(e: CacheError) -> Self {
        DaemonError::Cache(e)
    }
}

impl From<DaemonError> for String {
    fn from(e: DaemonError) -> String {
        e.to_string()
    }
}
