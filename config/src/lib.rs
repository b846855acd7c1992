//! rtl's settings, read in one place.
//!
//! Every rtl process gets a [`Config`] from [`Config::load`] (or, for services
//! started by the supervisor, from the serialized copy their parent hands them)
//! and passes it down. Nothing else in rtl reads `rtl.toml` or the `RTL_*`
//! environment: this crate owns the defaults, the file format, the environment
//! overrides and the record of where each value came from ([`Loaded`]).
//!
//! This crate knows nothing about sockets, tasks or jobs: it only turns text
//! into typed, validated settings.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Declares every setting once: its doc, type, default, how its text is
/// read and what a bad value is told it should be, and (when not its plain
/// value) how `rtl config` shows it. From that one table come the
/// [`Config`] struct, [`KEYS`], [`Config::defaults`], the parsing of
/// `rtl.toml` and `RTL_*` values and [`Config::value_of`].
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $key:ident: $ty:ty = $default:expr;
        read $read:expr, expecting $expected:literal
        $(, show $show:expr)?
        ;
    )*) => {
        /// The effective settings of an rtl installation.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct Config {
            $( $(#[doc = $doc])* pub $key: $ty, )*
        }

        /// Every key, in the order `rtl config` prints them.
        pub const KEYS: &[&str] = &[$(stringify!($key)),*];

        impl Config {
            /// The built-in defaults; `user_home` is the user's home
            /// directory.
            pub fn defaults(user_home: &Path) -> Config {
                Config {
                    $( $key: {
                        let default: fn(&Path) -> $ty = $default;
                        default(user_home)
                    }, )*
                }
            }

            /// Sets `key` (a known key) from its text; on a bad value, what
            /// was expected. None for an unknown key.
            fn read(&mut self, key: &str, raw: &str) -> Option<Result<(), &'static str>> {
                match key {
                    $( stringify!($key) => {
                        let read: fn(&str) -> Option<$ty> = $read;
                        Some(match read(raw) {
                            Some(value) => {
                                self.$key = value;
                                Ok(())
                            }
                            None => Err($expected),
                        })
                    } )*
                    _ => None,
                }
            }

            /// The value of `key` as `rtl config` prints it.
            pub fn value_of(&self, key: &str) -> String {
                match key {
                    $( stringify!($key) => settings!(@show self, $key $(, $show)?), )*
                    _ => String::new(),
                }
            }
        }
    };
    (@show $config:ident, $key:ident) => { Shown::shown(&$config.$key) };
    (@show $config:ident, $key:ident, $show:expr) => {{
        let show: fn(&Config) -> String = $show;
        show($config)
    }};
}

/// How a setting's value reads in `rtl config`.
trait Shown {
    fn shown(&self) -> String;
}

impl<T: fmt::Display> Shown for T {
    fn shown(&self) -> String {
        self.to_string()
    }
}

settings! {
    /// Root of rtl's state: `run/` (pid files), `log/`, `cache/` (LMDB).
    home: PathBuf = |user_home| user_home.join(".rtl");
    read |raw| (!raw.is_empty()).then(|| PathBuf::from(raw)), expecting "a directory path",
    show |c| c.home.display().to_string();
    /// Address the relay binds its client and node sockets to.
    relay_listen: String = |_| "127.0.0.1".into();
    read address, expecting "an IP address or host name";
    /// Address clients and task nodes use to reach the relay.
    relay_addr: String = |_| "127.0.0.1".into();
    read address, expecting "an IP address or host name";
    /// Relay port for clients.
    relay_port: u16 = |_| 19000;
    read port, expecting "a port number from 1 to 65535";
    /// Relay port for task nodes and the plot node.
    node_port: u16 = |_| 19001;
    read port, expecting "a port number from 1 to 65535";
    /// Address the plot node's web page binds to.
    plot_listen: String = |_| "127.0.0.1".into();
    read address, expecting "an IP address or host name";
    /// Port of the plot node's web page.
    plot_port: u16 = |_| 5006;
    read port, expecting "a port number from 1 to 65535";
    /// Number of task-node processes `rtl start` launches.
    task_workers: usize = |_| 3;
    read |raw| count(raw, 0), expecting "a whole number, 0 or more";
    /// Number of plot-node processes `rtl start` launches.
    plot_workers: usize = |_| 1;
    read |raw| count(raw, 0), expecting "a whole number, 0 or more";
    /// Runs of each chart the plot node (and `rtl run --plots`) keeps: the
    /// latest and the ones before it, each shown on the page with its job.
    plot_history: usize = |_| 5;
    read |raw| count(raw, 1), expecting "a whole number, 1 or more";
    /// Whether the relay splits large tables into chunks.
    chunking: bool = |_| true;
    read boolean, expecting "true or false";
    /// Largest chunk, in rows.
    chunking_size: usize = |_| 1_000_000;
    read |raw| count(raw, 1), expecting "a whole number of rows, 1 or more";
    /// Size of the LMDB map under `<home>/cache`, in bytes.
    cache_map_size: usize = |_| 512 << 20;
    read |raw| byte_size(raw).filter(|n| *n >= 1 << 20),
    expecting "a size of at least 1 MiB, in bytes or with a unit (512MiB, 2GiB)",
    show |c| in_units(c.cache_map_size);
    /// Envelopes a task node accepts before it has answered any of them.
    max_in_flight: usize = |_| 2;
    read |raw| count(raw, 1), expecting "a whole number, 1 or more";
    /// Tables at least this large pass between processes of one host by
    /// reference through the cache instead of through sockets.
    by_reference_bytes: usize = |_| 1 << 20;
    read byte_size, expecting "a size in bytes or with a unit (0 for always, 1MiB, 64KiB)",
    show |c| in_units(c.by_reference_bytes);
    /// Column bytes the relay may hold for queued work before it asks
    /// clients to send new jobs later.
    relay_memory: usize = |_| 1 << 30;
    read |raw| byte_size(raw).filter(|n| *n >= 1 << 20),
    expecting "a size of at least 1 MiB, in bytes or with a unit (1GiB, 256MiB)",
    show |c| in_units(c.relay_memory);
    /// Envelopes the relay may have waiting for a node before it asks
    /// clients to send new jobs later.
    relay_queue: usize = |_| 4096;
    read |raw| count(raw, 1), expecting "a whole number of envelopes, 1 or more";
    /// The cluster secret (`rtl keygen` writes it); when the file exists,
    /// every peer proves it holds the secret before the relay takes
    /// anything from it. Empty: `<home>/secret`.
    secret_file: Option<PathBuf> = |_| None;
    read optional_path, expecting "a file path",
    show |c| c.secret_path().display().to_string();
    /// Allows a relay on a non-loopback address without a secret.
    insecure: bool = |_| false;
    read boolean, expecting "true or false";
    /// When set, file tasks run by this installation's task nodes read and
    /// write only under this folder (and under the job's own folder).
    data_root: Option<PathBuf> = |_| None;
    read optional_path, expecting "a folder path",
    show |c| c.data_root.as_ref().map_or(String::new(), |p| p.display().to_string());
    /// Largest message part the relay accepts; a peer that sends a larger
    /// one is disconnected (ZeroMQ's ZMQ_MAXMSGSIZE).
    max_message_bytes: usize = |_| 2 << 30;
    read |raw| byte_size(raw).filter(|n| *n >= 64 << 10 && i64::try_from(*n).is_ok()),
    expecting "a size of at least 64 KiB (256MiB, 2GiB)",
    show |c| in_units(c.max_message_bytes);
    /// How often nodes and the relay tell each other they are alive, in ms.
    heartbeat_ms: u64 = |_| 1000;
    read |raw| millis(raw, 10), expecting "milliseconds, 10 or more";
    /// A node not heard from for this long (ms) is dropped and its work
    /// sent to another node.
    node_timeout_ms: u64 = |_| 5000;
    read |raw| millis(raw, 100), expecting "milliseconds, 100 or more";
    /// A client gives up on a relay that has not answered for this long (ms).
    job_timeout_ms: u64 = |_| 5000;
    read |raw| millis(raw, 100), expecting "milliseconds, 100 or more";
    /// A task node fails work its tasks have not finished in this long (ms)
    /// and carries on with a fresh worker; 0 waits forever.
    task_timeout_ms: u64 = |_| 600_000;
    read |raw| if raw == "0" { Some(0) } else { millis(raw, 100) },
    expecting "milliseconds, 100 or more, or 0 for no limit";
    /// Folders of installed tasks, each holding a `NAME.toml` manifest per
    /// task beside its program; `:` between folders, or a list in rtl.toml;
    /// relative ones are under `home`. Empty: `<home>/tasks`.
    task_dirs: Vec<PathBuf> = |_| Vec::new();
    read folders, expecting "folder paths separated by `:`",
    show |c| c.task_dirs().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":");
    /// How long one call of an installed task's program may take (ms)
    /// before the program is stopped; a manifest's `timeout_ms` overrides.
    program_timeout_ms: u64 = |_| 30_000;
    read |raw| millis(raw, 10), expecting "milliseconds, 10 or more";
    /// Address space an installed task's program may use, in MiB; a
    /// manifest's `memory_mb` overrides; 0 for no limit.
    program_memory_mb: u64 = |_| 4096;
    read |raw| raw.replace('_', "").parse().ok(), expecting "a whole number of MiB, or 0 for no limit";
    /// Turns on DEBUG traces in the logs.
    debug: bool = |_| false;
    read boolean, expecting "true or false";
    /// Turns on PROFILE timing traces in the logs.
    profile: bool = |_| false;
    read boolean, expecting "true or false";
}

/// Where one setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built into rtl.
    Default,
    /// Read from this rtl.toml.
    File(PathBuf),
    /// Taken from this environment variable.
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "environment {v}"),
        }
    }
}

/// A loaded configuration and the source of every key.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The settings, defaults filled in.
    pub config: Config,
    /// Where each key's value came from, by key.
    pub sources: BTreeMap<&'static str, Source>,
    /// The rtl.toml that was read, if any.
    pub file: Option<PathBuf>,
}

/// A setting that could not be used, naming the key and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What is wrong, in words for the user.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

const ENV_CONFIG: &str = "RTL_CONFIG";

/// What a task node tells the task programs it starts (docs/PROTOCOL.md):
/// not settings, so that an `rtl` command run by such a program works.
const PROGRAM_VARIABLES: [&str; 2] = ["RTL_TASK", "RTL_TASK_MEMORY"];

impl Config {
    /// Reads the settings of this process: `explicit` (from `--config`), else
    /// `$RTL_CONFIG`, else `$RTL_HOME/rtl.toml` when present; then `RTL_<KEY>`
    /// overrides. `env` is the process environment as (name, value) pairs.
    pub fn load<I>(explicit: Option<&Path>, env: I) -> Result<Loaded, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let user_home = env
            .get("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"));
        let mut config = Config::defaults(&user_home);
        let mut sources: BTreeMap<&'static str, Source> =
            KEYS.iter().map(|k| (*k, Source::Default)).collect();

        let file = match (explicit, env.get(ENV_CONFIG)) {
            (Some(p), _) => Some(p.to_path_buf()),
            (None, Some(p)) if !p.is_empty() => Some(PathBuf::from(p)),
            _ => env
                .get("RTL_HOME")
                .map(|h| Path::new(h).join("rtl.toml"))
                .filter(|p| p.is_file()),
        };
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                message: format!("cannot read config file {}: {e}", path.display()),
            })?;
            let table: toml::Table = text.parse().map_err(|e| ConfigError {
                message: format!("config file {} is not valid TOML: {e}", path.display()),
            })?;
            for (key, value) in &table {
                let raw = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    // A list of folders (task_dirs): the `:` form.
                    toml::Value::Array(items) => list_text(key, items, path)?,
                    other => {
                        return Err(ConfigError {
                            message: format!(
                                "key `{key}` in {}: expected a string, number or boolean, found {}",
                                path.display(),
                                other.type_str()
                            ),
                        })
                    }
                };
                let source = Source::File(path.clone());
                let key = config.set(key, &raw, &source)?;
                sources.insert(key, source);
            }
        }

        for (name, raw) in &env {
            let Some(key) = name.strip_prefix("RTL_") else {
                continue;
            };
            if name == ENV_CONFIG || PROGRAM_VARIABLES.contains(&name.as_str()) {
                continue;
            }
            let source = Source::Env(name.clone());
            let key = config.set(&key.to_ascii_lowercase(), raw, &source)?;
            sources.insert(key, source);
        }
        Ok(Loaded {
            config,
            sources,
            file,
        })
    }

    /// Sets `key` from its text form; returns the canonical key name.
    fn set(&mut self, key: &str, raw: &str, source: &Source) -> Result<&'static str, ConfigError> {
        let canonical = KEYS.iter().copied().find(|k| *k == key);
        match canonical.zip(self.read(key, raw.trim())) {
            Some((canonical, Ok(()))) => Ok(canonical),
            Some((canonical, Err(expected))) => Err(ConfigError {
                message: format!(
                    "setting `{canonical}` = {raw:?} (from {source}): expected {expected}"
                ),
            }),
            None => Err(ConfigError {
                message: format!(
                    "unknown setting `{key}` (from {source}); known settings: {}",
                    KEYS.join(", ")
                ),
            }),
        }
    }

    /// Where the services' pid files are.
    pub fn run_dir(&self) -> PathBuf {
        self.home.join("run")
    }

    /// Where the services' logs are.
    pub fn log_dir(&self) -> PathBuf {
        self.home.join("log")
    }

    /// Where the cluster secret is (or would be).
    pub fn secret_path(&self) -> PathBuf {
        self.secret_file
            .clone()
            .unwrap_or_else(|| self.home.join("secret"))
    }

    /// Whether the relay listens on a loopback address only.
    pub fn loopback_only(&self) -> bool {
        matches!(
            self.relay_listen.as_str(),
            "127.0.0.1" | "localhost" | "::1"
        ) || self.relay_listen.starts_with("127.")
    }

    /// How often nodes say they are alive (`heartbeat_ms`).
    pub fn heartbeat(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.heartbeat_ms)
    }

    /// How long a silent node is trusted (`node_timeout_ms`).
    pub fn node_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.node_timeout_ms)
    }

    /// How long a client waits for a silent relay (`job_timeout_ms`).
    pub fn job_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.job_timeout_ms)
    }

    /// How long a task node lets work run; `None` for no limit.
    pub fn task_timeout(&self) -> Option<std::time::Duration> {
        (self.task_timeout_ms > 0).then(|| std::time::Duration::from_millis(self.task_timeout_ms))
    }

    /// The folders installed tasks are read from (`task_dirs`).
    pub fn task_dirs(&self) -> Vec<PathBuf> {
        if self.task_dirs.is_empty() {
            return vec![self.home.join("tasks")];
        }
        self.task_dirs.iter().map(|d| self.home.join(d)).collect()
    }

    /// Where the LMDB cache lives.
    pub fn cache_dir(&self) -> PathBuf {
        self.home.join("cache")
    }

    /// Endpoint clients connect to.
    pub fn client_endpoint(&self) -> String {
        format!("tcp://{}:{}", self.relay_addr, self.relay_port)
    }

    /// Endpoint task nodes connect to.
    pub fn node_endpoint(&self) -> String {
        format!("tcp://{}:{}", self.relay_addr, self.node_port)
    }
}

fn address(raw: &str) -> Option<String> {
    let ok = !raw.is_empty()
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*' | '_'));
    ok.then(|| raw.to_string())
}

fn optional_path(raw: &str) -> Option<Option<PathBuf>> {
    Some((!raw.is_empty()).then(|| PathBuf::from(raw)))
}

fn folders(raw: &str) -> Option<Vec<PathBuf>> {
    Some(
        raw.split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect(),
    )
}

/// A TOML list of texts as one setting's text, `:` between them.
fn list_text(key: &str, items: &[toml::Value], path: &Path) -> Result<String, ConfigError> {
    let bad = |what: String| ConfigError {
        message: format!("key `{key}` in {}: {what}", path.display()),
    };
    let mut texts = Vec::with_capacity(items.len());
    for item in items {
        match item {
            toml::Value::String(s) if s.contains(':') => {
                return Err(bad(format!(
                    "the folder {s:?} has a `:`, which separates folders"
                )))
            }
            toml::Value::String(s) => texts.push(s.as_str()),
            other => {
                return Err(bad(format!(
                    "expected a list of folder paths, found {} in it",
                    other.type_str()
                )))
            }
        }
    }
    Ok(texts.join(":"))
}

fn port(raw: &str) -> Option<u16> {
    raw.parse::<u16>().ok().filter(|p| *p != 0)
}

fn count(raw: &str, min: usize) -> Option<usize> {
    raw.replace('_', "")
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= min)
}

fn boolean(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Milliseconds, at least `min`.
fn millis(raw: &str, min: u64) -> Option<u64> {
    raw.replace('_', "")
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= min)
}

/// A size in bytes as `rtl config` shows it: the bytes, and the size in
/// the largest binary unit it reaches (`536870912 (512 MiB)`).
fn in_units(bytes: usize) -> String {
    let unit = [("GiB", 1usize << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        .into_iter()
        .find(|(_, size)| bytes >= *size);
    match unit {
        Some((name, size)) if bytes.is_multiple_of(size) => {
            format!("{bytes} ({} {name})", bytes / size)
        }
        Some((name, size)) => format!("{bytes} ({:.1} {name})", bytes as f64 / size as f64),
        None => bytes.to_string(),
    }
}

/// `536870912`, `512MiB`, `512M`, `2GiB`, `64KiB`: binary units; `1GB`,
/// `500MB`: decimal ones, as disks and most tools count them.
fn byte_size(raw: &str) -> Option<usize> {
    let raw = raw.replace('_', "");
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: usize = digits.parse().ok()?;
    let unit: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// An rtl.toml holding `text`, in a folder removed when the first
    /// value is dropped.
    fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::Builder::new()
            .prefix(&format!("rtl-config-test-{name}-"))
            .tempdir()
            .expect("temp dir");
        let path = dir.path().join("rtl.toml");
        std::fs::write(&path, text).expect("write temp config");
        (dir, path)
    }

    #[test]
    fn defaults_follow_the_user_home() {
        let loaded = Config::load(None, env(&[("HOME", "/home/ada")])).expect("load");
        assert_eq!(loaded.config.home, PathBuf::from("/home/ada/.rtl"));
        assert_eq!(loaded.config.relay_port, 19000);
        assert_eq!(loaded.config.cache_map_size, 512 << 20);
        assert!(loaded.sources.values().all(|s| *s == Source::Default));
    }

    #[test]
    fn decimal_and_binary_units_mean_what_they_say() {
        assert_eq!(byte_size("1GB"), Some(1_000_000_000));
        assert_eq!(byte_size("1GiB"), Some(1 << 30));
        assert_eq!(byte_size("1g"), Some(1 << 30));
        assert_eq!(byte_size("500 MB"), Some(500_000_000));
        assert_eq!(byte_size("64KiB"), Some(65_536));
        assert_eq!(byte_size("2 furlongs"), None);
    }

    #[test]
    fn sizes_show_in_units_beside_the_bytes() {
        let loaded = Config::load(None, env(&[("RTL_RELAY_MEMORY", "1536MiB")])).expect("load");
        let config = loaded.config;
        assert_eq!(config.value_of("cache_map_size"), "536870912 (512 MiB)");
        assert_eq!(config.value_of("relay_memory"), "1610612736 (1.5 GiB)");
        assert_eq!(config.value_of("max_message_bytes"), "2147483648 (2 GiB)");
        assert_eq!(in_units(1000), "1000");
    }

    #[test]
    fn file_then_environment_with_sources() {
        let (_dir, path) = temp_file(
            "layers",
            "relay_port = 20000\ntask_workers = 5\ncache_map_size = \"1GiB\"\n",
        );
        let loaded = Config::load(
            Some(&path),
            env(&[
                ("HOME", "/h"),
                ("RTL_TASK_WORKERS", "2"),
                ("RTL_DEBUG", "true"),
            ]),
        )
        .expect("load");
        assert_eq!(loaded.config.relay_port, 20000);
        assert_eq!(loaded.config.task_workers, 2);
        assert_eq!(loaded.config.cache_map_size, 1 << 30);
        assert!(loaded.config.debug);
        assert_eq!(loaded.sources["relay_port"], Source::File(path.clone()));
        assert_eq!(
            loaded.sources["task_workers"],
            Source::Env("RTL_TASK_WORKERS".into())
        );
    }

    #[test]
    fn rtl_home_file_is_found() {
        let (_dir, path) = temp_file("home", "plot_port = 6000\n");
        let home = path
            .parent()
            .expect("parent")
            .to_str()
            .expect("utf8")
            .to_string();
        let loaded = Config::load(None, env(&[("RTL_HOME", &home)])).expect("load");
        assert_eq!(loaded.config.plot_port, 6000);
        assert_eq!(loaded.config.home, PathBuf::from(&home));
        assert_eq!(loaded.file, Some(path));
    }

    #[test]
    fn unknown_key_names_key_and_source() {
        let (_dir, path) = temp_file("unknown", "relay_prot = 1\n");
        let err = Config::load(Some(&path), env(&[])).expect_err("must fail");
        assert!(err.message.contains("relay_prot"), "{err}");
        assert!(err.message.contains("rtl.toml"), "{err}");
        let err = Config::load(None, env(&[("RTL_BOGUS", "1")])).expect_err("must fail");
        assert!(
            err.message.contains("bogus") && err.message.contains("RTL_BOGUS"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let err = Config::load(None, env(&[("RTL_RELAY_PORT", "99999")])).expect_err("must fail");
        assert!(
            err.message.contains("relay_port") && err.message.contains("1 to 65535"),
            "{err}"
        );
        let err = Config::load(None, env(&[("RTL_CHUNKING", "maybe")])).expect_err("must fail");
        assert!(err.message.contains("true or false"), "{err}");
        let err = Config::load(None, env(&[("RTL_CACHE_MAP_SIZE", "12 parsecs")]))
            .expect_err("must fail");
        assert!(err.message.contains("cache_map_size"), "{err}");
    }

    #[test]
    fn task_dirs_are_a_list_under_home() {
        let (_dir, path) = temp_file("dirs", "task_dirs = [\"mine\", \"/opt/rtl-tasks\"]\n");
        let loaded = Config::load(Some(&path), env(&[("RTL_HOME", "/h")])).expect("load");
        assert_eq!(
            loaded.config.task_dirs(),
            [PathBuf::from("/h/mine"), PathBuf::from("/opt/rtl-tasks")]
        );
        let loaded = Config::load(None, env(&[("RTL_HOME", "/h")])).expect("load");
        assert_eq!(loaded.config.task_dirs(), [PathBuf::from("/h/tasks")]);
        let loaded =
            Config::load(None, env(&[("RTL_TASK_DIRS", "/a:b"), ("RTL_HOME", "/")])).expect("load");
        // What a node sets for its task programs is not a setting.
        Config::load(None, env(&[("RTL_TASK", "t"), ("RTL_TASK_MEMORY", "3,4")]))
            .expect("inside a task program");
        assert_eq!(loaded.config.value_of("task_dirs"), "/a:/b");
        let (_dir, path) = temp_file("baddirs", "task_dirs = [1]\n");
        let err = Config::load(Some(&path), env(&[])).expect_err("a number");
        assert!(
            err.message
                .contains("expected a list of folder paths, found integer"),
            "{err}"
        );
    }

    #[test]
    fn serialized_config_round_trips() {
        let config = Config::defaults(Path::new("/x"));
        let text = toml::to_string(&config).expect("serialize");
        let back: Config = toml::from_str(&text).expect("deserialize");
        assert_eq!(back, config);
    }
}
