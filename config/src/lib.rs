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

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The effective settings of an rtl installation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Root of rtl's state: `run/` (pid files), `log/`, `cache/` (LMDB).
    pub home: PathBuf,
    /// Address the relay binds its client and node sockets to.
    pub relay_listen: String,
    /// Address clients and task nodes use to reach the relay.
    pub relay_addr: String,
    /// Relay port for clients.
    pub relay_port: u16,
    /// Relay port for task nodes and the plot node.
    pub node_port: u16,
    /// Address the plot node's web page binds to.
    pub plot_listen: String,
    /// Port of the plot node's web page.
    pub plot_port: u16,
    /// Number of task-node processes `rtl start` launches.
    pub task_workers: usize,
    /// Number of plot-node processes `rtl start` launches.
    pub plot_workers: usize,
    /// Whether the relay splits large tables into chunks.
    pub chunking: bool,
    /// Largest chunk, in rows.
    pub chunking_size: usize,
    /// Size of the LMDB map under `<home>/cache`, in bytes.
    pub cache_map_size: usize,
    /// Envelopes a task node accepts before it has answered any of them.
    pub max_in_flight: usize,
    /// Tables at least this large pass between processes of one host by
    /// reference through the cache instead of through sockets.
    pub by_reference_bytes: usize,
    /// Column bytes the relay may hold for queued work before it asks
    /// clients to send new jobs later.
    pub relay_memory: usize,
    /// Envelopes the relay may have waiting for a node before it asks
    /// clients to send new jobs later.
    pub relay_queue: usize,
    /// The cluster secret (`rtl keygen` writes it); when the file exists,
    /// every peer proves it holds the secret before the relay takes
    /// anything from it. Empty: `<home>/secret`.
    pub secret_file: Option<PathBuf>,
    /// Allows a relay on a non-loopback address without a secret.
    pub insecure: bool,
    /// When set, file tasks run by this installation's task nodes read and
    /// write only under this folder (and under the job's own folder).
    pub data_root: Option<PathBuf>,
    /// Largest message part the relay accepts; a peer that sends a larger
    /// one is disconnected (ZeroMQ's ZMQ_MAXMSGSIZE).
    pub max_message_bytes: usize,
    /// How often nodes and the relay tell each other they are alive, in ms.
    pub heartbeat_ms: u64,
    /// A node not heard from for this long (ms) is dropped and its work
    /// sent to another node.
    pub node_timeout_ms: u64,
    /// A client gives up on a relay that has not answered for this long (ms).
    pub job_timeout_ms: u64,
    /// A task node fails work its tasks have not finished in this long (ms)
    /// and carries on with a fresh worker; 0 waits forever.
    pub task_timeout_ms: u64,
    /// Turns on DEBUG traces in the logs.
    pub debug: bool,
    /// Turns on PROFILE timing traces in the logs.
    pub profile: bool,
}

/// Where one setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
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
    pub config: Config,
    pub sources: BTreeMap<&'static str, Source>,
    /// The rtl.toml that was read, if any.
    pub file: Option<PathBuf>,
}

/// A setting that could not be used, naming the key and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every key, in the order `rtl config` prints them.
pub const KEYS: &[&str] = &[
    "home",
    "relay_listen",
    "relay_addr",
    "relay_port",
    "node_port",
    "plot_listen",
    "plot_port",
    "task_workers",
    "plot_workers",
    "chunking",
    "chunking_size",
    "cache_map_size",
    "max_in_flight",
    "by_reference_bytes",
    "relay_memory",
    "relay_queue",
    "secret_file",
    "insecure",
    "data_root",
    "max_message_bytes",
    "heartbeat_ms",
    "node_timeout_ms",
    "job_timeout_ms",
    "task_timeout_ms",
    "debug",
    "profile",
];

const ENV_CONFIG: &str = "RTL_CONFIG";

impl Config {
    /// The built-in defaults; `user_home` is the user's home directory.
    pub fn defaults(user_home: &Path) -> Config {
        Config {
            home: user_home.join(".rtl"),
            relay_listen: "127.0.0.1".into(),
            relay_addr: "127.0.0.1".into(),
            relay_port: 19000,
            node_port: 19001,
            plot_listen: "127.0.0.1".into(),
            plot_port: 5006,
            task_workers: 3,
            plot_workers: 1,
            chunking: true,
            chunking_size: 1_000_000,
            cache_map_size: 512 << 20,
            max_in_flight: 2,
            by_reference_bytes: 1 << 20,
            relay_memory: 1 << 30,
            relay_queue: 4096,
            secret_file: None,
            insecure: false,
            data_root: None,
            max_message_bytes: 2 << 30,
            heartbeat_ms: 1000,
            node_timeout_ms: 5000,
            job_timeout_ms: 5000,
            task_timeout_ms: 600_000,
            debug: false,
            profile: false,
        }
    }

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
            if name == ENV_CONFIG {
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
        let Some(canonical) = KEYS.iter().copied().find(|k| *k == key) else {
            return Err(ConfigError {
                message: format!(
                    "unknown setting `{key}` (from {source}); known settings: {}",
                    KEYS.join(", ")
                ),
            });
        };
        let bad = |expected: &str| ConfigError {
            message: format!(
                "setting `{canonical}` = {raw:?} (from {source}): expected {expected}"
            ),
        };
        let raw = raw.trim();
        match canonical {
            "home" => {
                if raw.is_empty() {
                    return Err(bad("a directory path"));
                }
                self.home = PathBuf::from(raw);
            }
            "relay_listen" => {
                self.relay_listen = address(raw).ok_or_else(|| bad("an IP address or host name"))?
            }
            "relay_addr" => {
                self.relay_addr = address(raw).ok_or_else(|| bad("an IP address or host name"))?
            }
            "plot_listen" => {
                self.plot_listen = address(raw).ok_or_else(|| bad("an IP address or host name"))?
            }
            "relay_port" => {
                self.relay_port = port(raw).ok_or_else(|| bad("a port number from 1 to 65535"))?
            }
            "node_port" => {
                self.node_port = port(raw).ok_or_else(|| bad("a port number from 1 to 65535"))?
            }
            "plot_port" => {
                self.plot_port = port(raw).ok_or_else(|| bad("a port number from 1 to 65535"))?
            }
            "task_workers" => {
                self.task_workers = count(raw, 0).ok_or_else(|| bad("a whole number, 0 or more"))?
            }
            "plot_workers" => {
                self.plot_workers = count(raw, 0).ok_or_else(|| bad("a whole number, 0 or more"))?
            }
            "chunking_size" => {
                self.chunking_size =
                    count(raw, 1).ok_or_else(|| bad("a whole number of rows, 1 or more"))?
            }
            "max_in_flight" => {
                self.max_in_flight =
                    count(raw, 1).ok_or_else(|| bad("a whole number, 1 or more"))?
            }
            "cache_map_size" => {
                self.cache_map_size = byte_size(raw).filter(|n| *n >= 1 << 20).ok_or_else(|| {
                    bad("a size of at least 1 MiB, in bytes or with a unit (512MiB, 2GiB)")
                })?
            }
            "by_reference_bytes" => {
                self.by_reference_bytes = byte_size(raw).ok_or_else(|| {
                    bad("a size in bytes or with a unit (0 for always, 1MiB, 64KiB)")
                })?
            }
            "relay_memory" => {
                self.relay_memory = byte_size(raw).filter(|n| *n >= 1 << 20).ok_or_else(|| {
                    bad("a size of at least 1 MiB, in bytes or with a unit (1GiB, 256MiB)")
                })?
            }
            "relay_queue" => {
                self.relay_queue =
                    count(raw, 1).ok_or_else(|| bad("a whole number of envelopes, 1 or more"))?
            }
            "data_root" => {
                self.data_root = (!raw.is_empty()).then(|| PathBuf::from(raw));
            }
            "secret_file" => {
                self.secret_file = (!raw.is_empty()).then(|| PathBuf::from(raw));
            }
            "insecure" => self.insecure = boolean(raw).ok_or_else(|| bad("true or false"))?,
            "max_message_bytes" => {
                self.max_message_bytes = byte_size(raw)
                    .filter(|n| *n >= 64 << 10 && i64::try_from(*n).is_ok())
                    .ok_or_else(|| bad("a size of at least 64 KiB (256MiB, 2GiB)"))?
            }
            "heartbeat_ms" => {
                self.heartbeat_ms =
                    millis(raw, 10).ok_or_else(|| bad("milliseconds, 10 or more"))?
            }
            "node_timeout_ms" => {
                self.node_timeout_ms =
                    millis(raw, 100).ok_or_else(|| bad("milliseconds, 100 or more"))?
            }
            "job_timeout_ms" => {
                self.job_timeout_ms =
                    millis(raw, 100).ok_or_else(|| bad("milliseconds, 100 or more"))?
            }
            "task_timeout_ms" => {
                self.task_timeout_ms = match raw.trim() {
                    "0" => 0,
                    _ => millis(raw, 100)
                        .ok_or_else(|| bad("milliseconds, 100 or more, or 0 for no limit"))?,
                }
            }
            "chunking" => self.chunking = boolean(raw).ok_or_else(|| bad("true or false"))?,
            "debug" => self.debug = boolean(raw).ok_or_else(|| bad("true or false"))?,
            "profile" => self.profile = boolean(raw).ok_or_else(|| bad("true or false"))?,
            _ => unreachable!("every key in KEYS has a parser"),
        }
        Ok(canonical)
    }

    /// The value of `key` as `rtl config` prints it.
    pub fn value_of(&self, key: &str) -> String {
        match key {
            "home" => self.home.display().to_string(),
            "relay_listen" => self.relay_listen.clone(),
            "relay_addr" => self.relay_addr.clone(),
            "relay_port" => self.relay_port.to_string(),
            "node_port" => self.node_port.to_string(),
            "plot_listen" => self.plot_listen.clone(),
            "plot_port" => self.plot_port.to_string(),
            "task_workers" => self.task_workers.to_string(),
            "plot_workers" => self.plot_workers.to_string(),
            "chunking" => self.chunking.to_string(),
            "chunking_size" => self.chunking_size.to_string(),
            "cache_map_size" => self.cache_map_size.to_string(),
            "max_in_flight" => self.max_in_flight.to_string(),
            "by_reference_bytes" => self.by_reference_bytes.to_string(),
            "relay_memory" => self.relay_memory.to_string(),
            "relay_queue" => self.relay_queue.to_string(),
            "secret_file" => self.secret_path().display().to_string(),
            "insecure" => self.insecure.to_string(),
            "data_root" => self
                .data_root
                .as_ref()
                .map_or(String::new(), |p| p.display().to_string()),
            "max_message_bytes" => self.max_message_bytes.to_string(),
            "heartbeat_ms" => self.heartbeat_ms.to_string(),
            "node_timeout_ms" => self.node_timeout_ms.to_string(),
            "job_timeout_ms" => self.job_timeout_ms.to_string(),
            "task_timeout_ms" => self.task_timeout_ms.to_string(),
            "debug" => self.debug.to_string(),
            "profile" => self.profile.to_string(),
            _ => String::new(),
        }
    }

    pub fn run_dir(&self) -> PathBuf {
        self.home.join("run")
    }

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

    pub fn heartbeat(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.heartbeat_ms)
    }

    pub fn node_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.node_timeout_ms)
    }

    pub fn job_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.job_timeout_ms)
    }

    /// How long a task node lets work run; `None` for no limit.
    pub fn task_timeout(&self) -> Option<std::time::Duration> {
        (self.task_timeout_ms > 0).then(|| std::time::Duration::from_millis(self.task_timeout_ms))
    }

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

/// `536870912`, `512MiB`, `512M`, `2GiB`, `64KiB`.
fn millis(raw: &str, min: u64) -> Option<u64> {
    raw.replace('_', "")
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= min)
}

fn byte_size(raw: &str) -> Option<usize> {
    let raw = raw.replace('_', "");
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: usize = digits.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    n.checked_mul(1usize.checked_shl(shift)?)
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

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rtl-config-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("rtl.toml");
        std::fs::write(&path, text).expect("write temp config");
        path
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
    fn file_then_environment_with_sources() {
        let path = temp_file(
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
        let path = temp_file("home", "plot_port = 6000\n");
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
        let path = temp_file("unknown", "relay_prot = 1\n");
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
    fn serialized_config_round_trips() {
        let config = Config::defaults(Path::new("/x"));
        let text = toml::to_string(&config).expect("serialize");
        let back: Config = toml::from_str(&text).expect("deserialize");
        assert_eq!(back, config);
    }
}
