//! The rtl client library: run a job on the relay as if it were a function
//! call.
//!
//! ```no_run
//! # fn main() -> Result<(), rtl_client::Error> {
//! use rtl_client::{Config, Plan, Transform};
//! let config = Config::load(None, std::env::vars())?.config;
//! let table = Transform::connect(&config)?.execute("job.json")?;
//! println!("{} rows", table.rows());
//!
//! // or build the job in code, and follow it as it runs
//! let plan = Plan::builder(".")
//!     .task("open_array", serde_json::json!({"filename": "sensors"}))
//!     .build();
//! let mut transform = Transform::embedded(&config)?;
//! let mut show = |event: &rtl_client::ProgressEvent| println!("stage {} {}", event.stage, event.task);
//! let table = transform.execute_with(&plan, None, &mut show)?;
//! # Ok(()) }
//! ```
//!
//! This crate re-exports what a client program needs ([`Config`],
//! [`Plan`], [`Table`], [`ProgressEvent`], [`Failure`]), so `rtl-client`
//! is its one rtl dependency.
//!
//! [`Transform::connect`] talks to a running daemon; [`Transform::embedded`]
//! starts the same relay and task-node code inside this process. Both block
//! in `execute` until the job's result or error arrives, and neither ever
//! waits forever: a relay that stops answering is an error within seconds.
//!
//! This crate speaks to the relay only through `rtl_wire`.

#![forbid(unsafe_code)]

pub use rtl_config::{Config, ConfigError};
pub use rtl_dsl::Plan;
pub use rtl_tasks::{Chart, Column, DType, Table};
pub use rtl_wire::{Failure, ProgressEvent};

use rtl_cache::Cache;
pub use rtl_cache::CacheError;
use rtl_daemon::embedded::Cluster;
pub use rtl_daemon::DaemonError;
use rtl_dsl::Problems;
use rtl_tasks::installed::Limits;
use rtl_tasks::{Installed, Programs};
pub use rtl_wire::auth::SecretError;
use rtl_wire::auth::{ProofError, Secret};
use rtl_wire::connection::{Connection, Options};
use rtl_wire::{Body, Envelope, Message, StatusReport, Submit};
use std::collections::HashMap;
use std::fmt;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A job to run: a parsed plan, a job file, or job text.
///
/// `&Plan`, `&Path` and `&PathBuf` convert as you would expect; a `&str`
/// is job text when it starts with `{` or `[`, and a file path otherwise.
pub enum Job<'a> {
    /// A plan already parsed.
    Plan(&'a Plan),
    /// A job file (JSON or TOML).
    File(&'a Path),
    /// Job text.
    Text(&'a str),
}

impl<'a> From<&'a Plan> for Job<'a> {
    fn from(plan: &'a Plan) -> Job<'a> {
        Job::Plan(plan)
    }
}

impl<'a> From<&'a Path> for Job<'a> {
    fn from(path: &'a Path) -> Job<'a> {
        Job::File(path)
    }
}

impl<'a> From<&'a PathBuf> for Job<'a> {
    fn from(path: &'a PathBuf) -> Job<'a> {
        Job::File(path)
    }
}

impl<'a> From<&'a str> for Job<'a> {
    fn from(text: &'a str) -> Job<'a> {
        match text.trim_start().chars().next() {
            Some('{' | '[') => Job::Text(text),
            _ => Job::File(Path::new(text)),
        }
    }
}

impl<'a> Job<'a> {
    /// The plan, and whether it is checked with its data (files and text:
    /// columns included, which reads the start of the job's input files)
    /// or by its task names and kwargs only (a parsed plan: no file
    /// access).
    fn plan(self) -> Result<(std::borrow::Cow<'a, Plan>, bool), Error> {
        use std::borrow::Cow;
        match self {
            Job::Plan(plan) => {
                // The folder is the client's: a relative one (as
                // `Plan::builder(".")` gives) would mean the node's.
                if plan.base_dir.is_absolute() {
                    return Ok((Cow::Borrowed(plan), false));
                }
                let mut owned = plan.clone();
                owned.base_dir = std::env::current_dir()
                    .map(|here| here.join(&plan.base_dir))
                    .unwrap_or_else(|_| plan.base_dir.clone());
                Ok((Cow::Owned(owned), false))
            }
            Job::File(path) => {
                let plan = Plan::from_file(path).map_err(Error::Invalid)?;
                Ok((Cow::Owned(plan), true))
            }
            Job::Text(text) => {
                let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                let plan = Plan::parse(text, "<string>", here).map_err(Error::Invalid)?;
                Ok((Cow::Owned(plan), true))
            }
        }
    }
}

/// The tasks installed on this machine (`task_dirs`), for checks: their
/// programs run on the check's samples, as the nodes will run them. A bad
/// manifest is the nodes' to report; here its task is simply not known.
fn local_programs(config: &Config) -> Programs {
    let (installed, _) = Installed::load(&config.task_dirs());
    let mut limits = rtl_daemon::tasknode::program_limits(config);
    if !installed.is_empty() {
        limits.python_path = limits
            .python_path
            .and_then(|folder| rtl_tasks::installed::write_helper(&folder).ok());
    }
    // A program's stderr shows in the check's message when it fails.
    Programs::new(installed, limits, Arc::new(|_| {}))
}

/// The installed tasks the nodes in `report` have, one version of each.
fn nodes_tasks(report: &StatusReport) -> Installed {
    Installed::reported(
        report
            .nodes
            .iter()
            .flat_map(|n| &n.info.tasks)
            .map(|t| (t.name.as_str(), t.digest.as_str(), t.manifest.as_str())),
    )
}

/// The tasks a check of `plans` can know: those installed on this machine
/// (`task_dirs`), whose programs run on the check's samples, and, when the
/// plans name others, those the daemon's nodes have (their kwargs are
/// checked from the manifests the nodes sent). A daemon that does not
/// answer within a second adds none.
pub fn known_tasks(config: &Config, plans: &[&Plan]) -> Programs {
    let mut programs = local_programs(config);
    if plans
        .iter()
        .all(|plan| rtl_tasks::installed::all_known(plan, programs.installed()))
    {
        return programs;
    }
    if let Ok(report) = Transform::status(config, Duration::from_secs(1)) {
        programs.learn(&nodes_tasks(&report));
    }
    programs
}

/// [`Error::SeveralResults`] for a plan with more than one result.
fn one_result(plan: &Plan) -> Result<(), Error> {
    let results = plan.graph().map_err(Error::Invalid)?.results();
    if results.len() > 1 {
        return Err(Error::SeveralResults {
            stages: results.iter().map(|&s| plan.stage_name(s)).collect(),
        });
    }
    Ok(())
}

fn refuse(problems: Vec<rtl_dsl::Problem>) -> Result<(), Error> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(Problems(problems)))
    }
}

/// A turn of a client's wait longer than its longest poll by this much
/// means the client itself was not running.
const STALL: Duration = Duration::from_millis(500);

/// Why a job did not produce a table. `{}` and `{:?}` print the same
/// sentence, so a `main` that returns `Result<_, Error>` says what went
/// wrong in words; match the variants to tell the cases apart.
pub enum Error {
    /// The settings (`rtl.toml`, `RTL_*`) could not be read.
    Settings(ConfigError),
    /// The job has problems; it was not sent.
    Invalid(Problems),
    /// Nothing listens at the configured relay address.
    NoDaemon {
        /// The relay address tried.
        endpoint: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// Something listens at the relay address but did not answer in time:
    /// a relay that is stopped, overloaded or swapping.
    NotAnswering {
        /// The relay address.
        endpoint: String,
        /// How long the client waited.
        waited: Duration,
        /// The setting that says how long, when one does.
        setting: Option<&'static str>,
    },
    /// The job ran and failed; the failure names the stage and task.
    Job(Failure),
    /// The relay went away or the socket failed.
    Transport(String),
    /// This host's cache, shared with the daemon, could not hold the input
    /// or give back the result.
    Cache(CacheError),
    /// This machine's cluster secret file is there but cannot be used.
    Secret(SecretError),
    /// The in-process cluster of embedded mode could not start.
    Embedded(DaemonError),
    /// The relay wants the cluster secret and this machine lacks it, or
    /// holds another one.
    Refused(String),
    /// The relay was replaced (restarted, or killed and started again)
    /// while the job ran: the new relay does not know the job.
    RelayRestarted {
        /// The relay address.
        endpoint: String,
    },
    /// The job has several results (stages no stage takes), and one
    /// table was asked for: `execute_all` and friends return them all.
    SeveralResults {
        /// The result stages, in stage order.
        stages: Vec<String>,
    },
}

/// A failed handshake with the relay at `endpoint`, as a client error.
fn proof_error(endpoint: &str, e: ProofError) -> Error {
    match e {
        ProofError::Silent(waited) => Error::NotAnswering {
            endpoint: endpoint.to_string(),
            waited,
            setting: Some("job_timeout_ms"),
        },
        ProofError::Refused(why) => Error::Refused(format!("{endpoint}: {why}")),
        ProofError::Transport(why) => Error::Transport(format!("{endpoint}: {why}")),
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoDaemon { endpoint, reason } => {
                write!(f, "no rtl daemon answers at {endpoint} ({reason})")
            }
            Error::NotAnswering {
                endpoint,
                waited,
                setting,
            } => write!(
                f,
                "the rtl daemon at {endpoint} accepts connections but did not answer within {} ms{}: it may be stopped, overloaded or short of memory; `rtl status` tells",
                waited.as_millis(),
                setting.map_or(String::new(), |s| format!(" ({s})"))
            ),
            Error::Invalid(problems) => write!(f, "the job was not run:\n{problems}"),
            Error::Job(failure) => write!(f, "{failure}"),
            Error::Transport(m) | Error::Refused(m) => f.write_str(m),
            Error::Cache(e) => write!(f, "{e}"),
            Error::Settings(e) => write!(f, "{e}"),
            Error::Secret(e) => write!(f, "{e}"),
            Error::Embedded(e) => write!(f, "cannot run the job in this process: {e}"),
            Error::RelayRestarted { endpoint } => write!(
                f,
                "the relay at {endpoint} was restarted while the job ran, and the new one does not know it: the job was lost; run it again"
            ),
            Error::SeveralResults { stages } => write!(
                f,
                "the job has {} results ({}): collect them with `execute_all` (or `follow_all`, `wait_all`), which return each by stage name",
                stages.len(),
                stages.join(", ")
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::Settings(e)
    }
}

/// A job's results: the table of every stage that no stage takes, by
/// stage name, in stage order. A chain has one, its last stage's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Results {
    tables: Vec<(String, Table)>,
}

impl Results {
    /// The result of stage `stage` (its name, or its number in a job of
    /// numbered stages).
    pub fn get(&self, stage: &str) -> Option<&Table> {
        self.tables.iter().find(|(s, _)| s == stage).map(|(_, t)| t)
    }

    /// Takes the result of stage `stage` out.
    pub fn take(&mut self, stage: &str) -> Option<Table> {
        let at = self.tables.iter().position(|(s, _)| s == stage)?;
        Some(self.tables.remove(at).1)
    }

    /// The result stages' names, in stage order.
    pub fn stages(&self) -> impl Iterator<Item = &str> {
        self.tables.iter().map(|(s, _)| s.as_str())
    }

    /// Each result with its stage's name, in stage order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Table)> {
        self.tables.iter().map(|(s, t)| (s.as_str(), t))
    }

    /// How many results there are.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The one result of a job that has one; [`Error::SeveralResults`]
    /// otherwise.
    pub fn into_single(self) -> Result<Table, Error> {
        match <[(String, Table); 1]>::try_from(self.tables) {
            Ok([(_, table)]) => Ok(table),
            Err(tables) => Err(Error::SeveralResults {
                stages: tables.into_iter().map(|(s, _)| s).collect(),
            }),
        }
    }
}

impl IntoIterator for Results {
    type Item = (String, Table);
    type IntoIter = std::vec::IntoIter<(String, Table)>;

    fn into_iter(self) -> Self::IntoIter {
        self.tables.into_iter()
    }
}

/// A job sent with [`Transform::submit`]; collect it with
/// [`JobHandle::wait`].
#[must_use = "a submitted job's result is only collected by waiting on its handle"]
#[derive(Debug)]
pub struct JobHandle {
    id: Uuid,
}

impl JobHandle {
    /// The job's id, as the relay and its logs know it.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Waits for the job's result on the connection that sent it.
    pub fn wait(self, transform: &mut Transform) -> Result<Table, Error> {
        transform.wait(self)
    }

    /// Waits for all of the job's results on the connection that sent it.
    pub fn wait_all(self, transform: &mut Transform) -> Result<Results, Error> {
        transform.wait_all(self)
    }
}

/// A job in flight on a connection: what to resend if the relay is busy,
/// and its outcome once it arrived.
struct Pending {
    submit: Submit,
    /// The input: references into the cache, or a table shared with the
    /// messages that carry it, which send its numeric columns without
    /// copying them.
    input: Body,
    backoff: Duration,
    resend_at: Option<Instant>,
    /// The job's stage names, to name its results by.
    stages: Vec<String>,
    /// Results come one message each: those in so far.
    arrived: Vec<(u32, Table)>,
    outcome: Option<Result<Results, Error>>,
}

/// A connection to a relay: jobs run one at a time with `execute`, or many
/// at once with `submit`.
pub struct Transform {
    connection: Connection,
    endpoint: String,
    cache: Option<Cache>,
    /// Inputs at least this large go to the relay through the shared cache.
    by_reference_bytes: usize,
    /// The relay's chunk size, when it chunks: a large input goes into the
    /// cache already in chunk-sized entries, so the relay need not cut it.
    chunk_rows: Option<usize>,
    /// How long the relay may stay silent (not even answering pings)
    /// before the client gives up on it (`job_timeout_ms`).
    silence: Duration,
    lifespan: Duration,
    /// Charts of the jobs run since the last `take_charts`, when asked for.
    charts: Option<Vec<(Uuid, Chart)>>,
    /// Jobs sent and not yet collected.
    pending: HashMap<Uuid, Pending>,
    ctx: zmq::Context,
    /// The cluster secret this connection proved it holds, if any.
    secret: Option<Secret>,
    /// The run of the relay this connection talks to, from its pong: a
    /// different one later means the relay was replaced.
    relay_run: Option<Uuid>,
    /// The tasks installed on this machine, which checks run on samples.
    programs: Programs,
    // Declared last: the socket must close before the cluster's threads stop.
    cluster: Option<Cluster>,
}

impl Transform {
    /// Connects to the daemon at `relay_addr:relay_port`, checking that it
    /// answers.
    pub fn connect(config: &Config) -> Result<Transform, Error> {
        // How long the relay may take to answer: as long as it may stay
        // silent during a job.
        Transform::dial(config, config.job_timeout(), true)
    }

    /// Asks the daemon's relay how it is (its counters, its nodes, its
    /// cache), waiting at most about `timeout` for each step: `rtl status`
    /// and `rtl start` use it.
    pub fn status(config: &Config, timeout: Duration) -> Result<StatusReport, Error> {
        Transform::dial(config, timeout, false)?.ask_status(timeout)
    }

    /// The relay's status report, asked on this connection.
    fn ask_status(&mut self, timeout: Duration) -> Result<StatusReport, Error> {
        let id = Uuid::new_v4();
        let ask = Envelope::with_id(id, id, Message::Status, Body::Empty);
        self.connection.send(ask).map_err(|e| {
            Error::Transport(format!("cannot reach the relay at {}: {e}", self.endpoint))
        })?;
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next_message(left)? {
                Some(Envelope {
                    id: answer,
                    message: Message::StatusReply(report),
                    ..
                }) if answer == id => return Ok(*report),
                _ => continue,
            }
        }
        Err(Error::NotAnswering {
            endpoint: self.endpoint.clone(),
            waited: timeout,
            setting: None,
        })
    }

    /// Connects, proves the secret and pings, giving the relay `patience`
    /// to answer each; opens this host's cache when `with_cache`.
    fn dial(config: &Config, patience: Duration, with_cache: bool) -> Result<Transform, Error> {
        let endpoint = config.client_endpoint();
        let no_daemon = |reason: String| Error::NoDaemon {
            endpoint: endpoint.clone(),
            reason,
        };
        // A closed port answers at once; spare the user the wait. Anything
        // else (a connection taken, or one that timed out) may be a relay
        // that is slow to answer, and gets the full patience.
        let addr = format!("{}:{}", config.relay_addr, config.relay_port)
            .to_socket_addrs()
            .map_err(|e| no_daemon(rtl_dsl::words::io(&e)))?
            .next()
            .ok_or_else(|| no_daemon("the address resolves to nothing".into()))?;
        if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                return Err(no_daemon(rtl_dsl::words::io(&e)));
            }
        }
        // Results may come back by reference when this host shares the
        // daemon's cache; a client elsewhere gets them inline.
        let cache = (with_cache && config.cache_dir().is_dir())
            .then(|| Cache::open(&config.cache_dir(), config.cache_map_size).ok())
            .flatten();
        let mut transform = Transform::open(&zmq::Context::new(), &endpoint, cache, None)?;
        transform.by_reference_bytes = config.by_reference_bytes;
        transform.chunk_rows = config.chunking.then_some(config.chunking_size);
        transform.silence = config.job_timeout();
        transform.programs = local_programs(config);
        let secret = Secret::load(&config.secret_path()).map_err(Error::Secret)?;
        if let Some(secret) = secret {
            transform
                .connection
                .prove(&secret, patience)
                .map_err(|e| proof_error(&endpoint, e))?;
            transform.secret = Some(secret);
        }
        transform.ping(patience).map_err(|e| match e {
            Error::Refused(why) => Error::Refused(format!("{endpoint}: {why}")),
            Error::NotAnswering { waited, .. } => Error::NotAnswering {
                endpoint: endpoint.clone(),
                waited,
                setting: Some("job_timeout_ms"),
            },
            e => e,
        })?;
        Ok(transform)
    }

    /// Starts a relay and task nodes inside this process and connects to them.
    pub fn embedded(config: &Config) -> Result<Transform, Error> {
        Transform::in_process(config, Cluster::start(config).map_err(Error::Embedded)?)
    }

    /// The same, with the relay and nodes talking over TCP loopback as a
    /// daemon's do (for measuring; `rtl bench`).
    pub fn embedded_on_loopback(config: &Config) -> Result<Transform, Error> {
        let cluster = Cluster::start_on_loopback(config).map_err(Error::Embedded)?;
        Transform::in_process(config, cluster)
    }

    fn in_process(config: &Config, cluster: Cluster) -> Result<Transform, Error> {
        let ctx = cluster.context().clone();
        let endpoint = cluster.endpoint().to_string();
        let cache = Some(cluster.cache().clone());
        let mut transform = Transform::open(&ctx, &endpoint, cache, Some(cluster))?;
        transform.by_reference_bytes = config.by_reference_bytes;
        transform.chunk_rows = config.chunking.then_some(config.chunking_size);
        transform.silence = config.job_timeout();
        transform.programs = local_programs(config);
        Ok(transform)
    }

    fn open(
        ctx: &zmq::Context,
        endpoint: &str,
        cache: Option<Cache>,
        cluster: Option<Cluster>,
    ) -> Result<Transform, Error> {
        let id = rtl_wire::connections::fresh_routing_id().map_err(Error::Transport)?;
        let options = Options {
            identity: Some(id.to_vec()),
            ..Options::default()
        };
        let connection = Connection::connect(ctx, endpoint, &options)
            .map_err(|e| Error::Transport(format!("cannot connect to {endpoint}: {e}")))?;
        Ok(Transform {
            connection,
            endpoint: endpoint.to_string(),
            cache,
            by_reference_bytes: usize::MAX,
            chunk_rows: None,
            silence: Duration::from_secs(5),
            lifespan: Duration::ZERO,
            charts: None,
            pending: HashMap::new(),
            ctx: ctx.clone(),
            secret: None,
            relay_run: None,
            programs: Programs::new(Installed::default(), Limits::default(), Arc::new(|_| {})),
            cluster,
        })
    }

    /// Another connection to the same relay, with the same settings (for
    /// several clients in one program, one per thread). Jobs of one
    /// connection are not seen by the other. It must not outlive `self`
    /// when `self` runs the relay in this process.
    pub fn sibling(&self) -> Result<Transform, Error> {
        let mut other = Transform::open(&self.ctx, &self.endpoint, self.cache.clone(), None)?;
        other.programs = self.programs.fresh();
        other.by_reference_bytes = self.by_reference_bytes;
        other.chunk_rows = self.chunk_rows;
        other.silence = self.silence;
        other.lifespan = self.lifespan;
        if let Some(secret) = &self.secret {
            other
                .connection
                .prove(secret, self.silence)
                .map_err(|e| proof_error(&self.endpoint, e))?;
            other.secret = Some(secret.clone());
        }
        Ok(other)
    }

    /// Whether the relay runs inside this process.
    pub fn is_embedded(&self) -> bool {
        self.cluster.is_some()
    }

    /// Fails jobs that take longer than `lifespan` (zero: no limit).
    pub fn with_lifespan(mut self, lifespan: Duration) -> Transform {
        self.lifespan = lifespan;
        self
    }

    /// Also collects the charts that jobs' `simple_plot` tasks draw (the
    /// plot node gets them either way); [`Transform::take_charts`] hands
    /// them over.
    pub fn with_charts(mut self) -> Transform {
        self.charts = Some(Vec::new());
        self
    }

    /// The charts collected since the last call, each with its job's id.
    pub fn take_charts(&mut self) -> Vec<(Uuid, Chart)> {
        self.charts.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The plan of `job`, checked as [`Job::plan`] says, with the tasks
    /// installed on this machine and, when it names others, those the
    /// relay's nodes have.
    fn checked<'a>(&mut self, job: Job<'a>) -> Result<std::borrow::Cow<'a, Plan>, Error> {
        let (plan, with_data) = job.plan()?;
        if !rtl_tasks::installed::all_known(&plan, self.programs.installed()) {
            if let Ok(report) = self.ask_status(self.silence) {
                self.programs.learn(&nodes_tasks(&report));
            }
        }
        let problems = if with_data {
            rtl_tasks::check(&plan, Some(&self.programs))
        } else {
            rtl_tasks::check_calls(&plan, Some(self.programs.installed()))
        };
        refuse(problems).map(|_| plan)
    }

    /// Runs a job (a `&Plan`, a path to a job file, or job text) and
    /// returns its result table. The job is checked first and not sent when
    /// it has problems ([`Error::Invalid`]).
    /// A job with several results is [`Error::SeveralResults`], before it
    /// is sent: [`Transform::execute_all`] returns them all.
    pub fn execute<'a>(&mut self, job: impl Into<Job<'a>>) -> Result<Table, Error> {
        let plan = self.checked(job.into())?;
        one_result(&plan)?;
        let handle = self.send_job(&plan, None, false)?;
        self.collect(handle.id, None)?.into_single()
    }

    /// Runs a job and returns every result (the table of each stage that
    /// no stage takes), by stage name.
    pub fn execute_all<'a>(&mut self, job: impl Into<Job<'a>>) -> Result<Results, Error> {
        let plan = self.checked(job.into())?;
        let handle = self.send_job(&plan, None, false)?;
        self.collect(handle.id, None)
    }

    /// Runs a job on `input` (the input table of its first stage, or of
    /// every stage that takes no other), calling `on_progress` as each
    /// task starts, leaves a note, and finishes.
    pub fn execute_with<'a>(
        &mut self,
        job: impl Into<Job<'a>>,
        input: Option<Table>,
        on_progress: &mut dyn FnMut(&ProgressEvent),
    ) -> Result<Table, Error> {
        let plan = self.checked(job.into())?;
        one_result(&plan)?;
        let handle = self.send_job(&plan, input, true)?;
        self.follow(handle, on_progress)
    }

    /// Sends a job on `input` with its progress asked for and returns at
    /// once, so the caller knows the job's id before it runs;
    /// [`Transform::follow`] then collects its progress and result.
    pub fn start_with<'a>(
        &mut self,
        job: impl Into<Job<'a>>,
        input: Option<Table>,
    ) -> Result<JobHandle, Error> {
        let plan = self.checked(job.into())?;
        self.send_job(&plan, input, true)
    }

    /// Waits for a job sent with [`Transform::start_with`], calling
    /// `on_progress` as each task starts, leaves a note, and finishes.
    pub fn follow(
        &mut self,
        handle: JobHandle,
        on_progress: &mut dyn FnMut(&ProgressEvent),
    ) -> Result<Table, Error> {
        self.collect(handle.id, Some(on_progress))?.into_single()
    }

    /// [`Transform::follow`] for every result, by stage name.
    pub fn follow_all(
        &mut self,
        handle: JobHandle,
        on_progress: &mut dyn FnMut(&ProgressEvent),
    ) -> Result<Results, Error> {
        self.collect(handle.id, Some(on_progress))
    }

    /// Sends a job and returns at once; [`JobHandle::wait`] (or
    /// [`Transform::wait`]) collects its result. One connection can keep
    /// many jobs in flight this way; their results are kept as they arrive,
    /// whatever order they are collected in.
    pub fn submit<'a>(&mut self, job: impl Into<Job<'a>>) -> Result<JobHandle, Error> {
        self.submit_with(job, None)
    }

    /// Like [`Transform::submit`], on `input`.
    pub fn submit_with<'a>(
        &mut self,
        job: impl Into<Job<'a>>,
        input: Option<Table>,
    ) -> Result<JobHandle, Error> {
        let plan = self.checked(job.into())?;
        self.send_job(&plan, input, false)
    }

    /// Waits for a submitted job's result.
    pub fn wait(&mut self, handle: JobHandle) -> Result<Table, Error> {
        self.collect(handle.id, None)?.into_single()
    }

    /// Waits for all of a submitted job's results, by stage name.
    pub fn wait_all(&mut self, handle: JobHandle) -> Result<Results, Error> {
        self.collect(handle.id, None)
    }

    /// Jobs submitted and not yet collected.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    fn send_job(
        &mut self,
        plan: &Plan,
        input: Option<Table>,
        progress: bool,
    ) -> Result<JobHandle, Error> {
        let job = Uuid::new_v4();
        let submit = Submit {
            plan: plan.clone(),
            progress,
            charts: self.charts.is_some(),
            cache_id: self.cache.as_ref().map(Cache::id),
            lifespan: self.lifespan.as_millis() as u64,
        };
        // The input stays here until the job is done: a busy relay asks for
        // it again.
        let input = match (input, &self.cache) {
            (Some(table), Some(cache)) if table.wire_size() >= self.by_reference_bytes => {
                let rows = self.chunk_rows.unwrap_or(usize::MAX);
                match cache.put_pieces(job, &table, rows) {
                    Ok(keys) => Body::refs(&table, keys),
                    // No room in the cache or on its disk: the table goes
                    // inside the message, as to a relay on another host.
                    Err(CacheError::Full { .. } | CacheError::NoSpace { .. }) => {
                        Body::Shared(Arc::new(table))
                    }
                    Err(e) => return Err(Error::Cache(e)),
                }
            }
            (Some(table), _) => Body::Shared(Arc::new(table)),
            (None, _) => Body::Empty,
        };
        self.resubmit(job, &submit, &input)?;
        self.pending.insert(
            job,
            Pending {
                submit,
                input,
                backoff: Duration::from_millis(10),
                resend_at: None,
                stages: (0..plan.stages.len()).map(|s| plan.stage_name(s)).collect(),
                arrived: Vec::new(),
                outcome: None,
            },
        );
        Ok(JobHandle { id: job })
    }

    /// Reads the relay's answers, filing each under its job, until job
    /// `id` has its outcome; resends jobs the relay was too busy to take.
    fn collect(
        &mut self,
        id: Uuid,
        mut on_progress: Option<&mut dyn FnMut(&ProgressEvent)>,
    ) -> Result<Results, Error> {
        let mut heard = Instant::now();
        let mut pinged = Instant::now();
        // Ping often enough that a live relay always answers in time.
        let ping_every = (self.silence / 4).min(Duration::from_secs(1));
        // Silence is counted while this client runs: one that was stopped
        // (suspended, swapped out) gives the relay a fresh window and asks
        // again, rather than blame it.
        let mut awake = Instant::now();
        let mut stalled = |heard: &mut Instant| {
            let now = Instant::now();
            let gap = now.duration_since(std::mem::replace(&mut awake, now));
            if gap > ping_every + STALL {
                *heard = now;
            }
        };
        loop {
            stalled(&mut heard);
            match self.pending.get_mut(&id) {
                None => {
                    return Err(Error::Transport(format!(
                        "job {id} is not in flight on this connection"
                    )))
                }
                Some(p) if p.outcome.is_some() => {
                    let outcome = p.outcome.take();
                    self.pending.remove(&id);
                    return outcome.unwrap_or_else(|| Err(Error::Transport("no outcome".into())));
                }
                Some(_) => {}
            }
            let now = Instant::now();
            let due: Vec<Uuid> = self
                .pending
                .iter()
                .filter(|(_, p)| p.resend_at.is_some_and(|at| at <= now))
                .map(|(job, _)| *job)
                .collect();
            for job in due {
                if let Some(p) = self.pending.get_mut(&job) {
                    p.resend_at = None;
                    let (submit, input) = (p.submit.clone(), p.input.duplicate());
                    self.resubmit(job, &submit, &input)?;
                }
            }
            let next_resend = self
                .pending
                .values()
                .filter_map(|p| p.resend_at)
                .min()
                .map_or(ping_every, |at| at.saturating_duration_since(now));
            let message = self.next_message(ping_every.min(next_resend))?;
            stalled(&mut heard);
            let Some(env) = message else {
                if heard.elapsed() > self.silence {
                    return Err(Error::Transport(format!(
                        "the relay at {} stopped answering for {} ms while running the job (job_timeout_ms); is it still running? `rtl status` tells",
                        self.endpoint,
                        self.silence.as_millis()
                    )));
                }
                if pinged.elapsed() >= ping_every {
                    self.send_control(Message::Ping)?;
                    pinged = Instant::now();
                }
                continue;
            };
            heard = Instant::now();
            let replaced = match &env.message {
                Message::Pong { relay } => {
                    relay.is_some_and(|run| self.relay_run.is_some_and(|known| known != run))
                }
                // Only a relay that does not know this connection asks.
                Message::Challenge { .. } => true,
                _ => false,
            };
            if replaced {
                let endpoint = self.endpoint.clone();
                for p in self.pending.values_mut() {
                    p.outcome.get_or_insert_with(|| {
                        Err(Error::RelayRestarted {
                            endpoint: endpoint.clone(),
                        })
                    });
                }
                continue;
            }
            let job = env.job;
            let Some(pending) = self.pending.get_mut(&job) else {
                continue; // a pong, or an answer to an abandoned job
            };
            match env.message {
                Message::Progress(event) if job == id => {
                    if let Some(cb) = on_progress.as_mut() {
                        cb(&event);
                    }
                }
                Message::Result { stage, count, .. } => {
                    let table = match (env.body, &self.cache) {
                        (Body::Refs { keys, .. }, Some(cache)) => {
                            cache.take_tables(&keys).map_err(Error::Cache)
                        }
                        (Body::Refs { .. }, None) => Err(Error::Transport(
                            "the result came by reference but this client has no cache".into(),
                        )),
                        (inline, _) => inline
                            .into_table()
                            .map_err(|e| Error::Transport(format!("bad result table: {e}"))),
                    };
                    match table {
                        Err(e) => pending.outcome = Some(Err(e)),
                        Ok(table) if pending.outcome.is_none() => {
                            pending.arrived.push((stage, table));
                            if pending.arrived.len() >= count as usize {
                                let mut arrived = std::mem::take(&mut pending.arrived);
                                arrived.sort_by_key(|(s, _)| *s);
                                let name = |s: u32| {
                                    pending
                                        .stages
                                        .get(s as usize)
                                        .cloned()
                                        .unwrap_or_else(|| s.to_string())
                                };
                                let tables =
                                    arrived.into_iter().map(|(s, t)| (name(s), t)).collect();
                                pending.outcome = Some(Ok(Results { tables }));
                            }
                        }
                        Ok(_) => {}
                    }
                }
                Message::Chart { chart, .. } => {
                    if let Some(charts) = &mut self.charts {
                        charts.push((job, *chart));
                    }
                }
                Message::Busy => {
                    pending.resend_at = Some(Instant::now() + pending.backoff);
                    pending.backoff = (pending.backoff * 2).min(Duration::from_millis(500));
                }
                Message::Error(failure) => pending.outcome = Some(Err(Error::Job(failure))),
                _ => {}
            }
        }
    }

    fn resubmit(&mut self, job: Uuid, submit: &Submit, input: &Body) -> Result<(), Error> {
        let message = Message::Submit(Box::new(submit.clone()));
        self.connection
            .send(Envelope::with_id(job, job, message, input.duplicate()))
            .map_err(|e| Error::Transport(format!("cannot send the job to {}: {e}", self.endpoint)))
    }

    /// Checks the relay answers within `timeout`.
    pub fn ping(&mut self, timeout: Duration) -> Result<(), Error> {
        self.send_control(Message::Ping)?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(env) =
                self.next_message(deadline.saturating_duration_since(Instant::now()))?
            {
                match env.message {
                    Message::Pong { relay } => {
                        self.relay_run = self.relay_run.or(relay);
                        return Ok(());
                    }
                    Message::Challenge { .. } => {
                        return Err(Error::Refused(
                            "the relay asks for the cluster secret and this machine has none; copy the relay's secret file here (see `rtl keygen`)".into(),
                        ))
                    }
                    _ => {}
                }
            }
        }
        Err(Error::NotAnswering {
            endpoint: self.endpoint.clone(),
            waited: timeout,
            setting: None,
        })
    }

    fn send_control(&mut self, message: Message) -> Result<(), Error> {
        self.connection
            .send(Envelope::control(message))
            .map_err(|e| {
                Error::Transport(format!("cannot reach the relay at {}: {e}", self.endpoint))
            })
    }

    /// The next message, or None when nothing came within `wait`.
    fn next_message(&mut self, wait: Duration) -> Result<Option<Envelope>, Error> {
        self.connection.recv(wait).map_err(|e| match e {
            rtl_wire::WireError::Zmq(e) => Error::Transport(format!("socket error: {e}")),
            e => Error::Transport(format!("bad message from the relay: {e}")),
        })
    }
}

/// The README's Rust example, compiled by `cargo test --doc` so that it
/// stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExample;
