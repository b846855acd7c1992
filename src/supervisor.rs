//! The supervisor: `rtl start`, `rtl stop` and `rtl status`, and the entry
//! point of each daemonized service (`rtl serve SERVICE`).
//!
//! Every service is the `rtl` binary re-executed with the effective settings
//! on its command line; it detaches from the terminal (daemonize), writes
//! `<home>/run/<service>-<pid>.pid` and logs to `<home>/log/<service>.log`.
//! The pid files are the supervisor's only record of what runs: a file whose
//! process is gone is stale and gets removed, and only processes named by a
//! pid file that still run `rtl serve` are ever signalled.

use rtl_cache::Cache;
use rtl_client::Transform;
use rtl_config::Config;
use rtl_daemon::host::process_exists;
use rtl_daemon::relay::{Endpoints, Relay, RelayConfig};
use rtl_daemon::tasknode;
use rtl_log::Log;
use rtl_plot::plotnode;
use rtl_wire::auth::Secret;
use rtl_wire::link::hostname;
use rtl_wire::StatusReport;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The kinds of rtl process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Relay,
    TaskNode,
    PlotNode,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Relay, Service::TaskNode, Service::PlotNode];

    pub fn name(self) -> &'static str {
        match self {
            Service::Relay => "relay",
            Service::TaskNode => "tasknode",
            Service::PlotNode => "plotnode",
        }
    }

    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One `<home>/run/<service>-<pid>.pid` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidFile {
    pub path: PathBuf,
    pub service: Service,
    pub pid: u32,
}

/// The pid files under `<home>/run`, relay first.
pub fn pid_files(config: &Config) -> Vec<PidFile> {
    let mut files: Vec<PidFile> = std::fs::read_dir(config.run_dir())
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".pid")?;
            let (service, pid) = stem.rsplit_once('-')?;
            Some(PidFile {
                path: entry.path(),
                service: Service::from_name(service)?,
                pid: pid.parse().ok()?,
            })
        })
        .collect();
    files.sort_by_key(|f| (Service::ALL.iter().position(|s| *s == f.service), f.pid));
    files
}

/// Whether `pid` is a live (not zombie) process running `rtl serve`.
pub fn is_alive(pid: u32) -> bool {
    if !process_exists(pid) {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmd| cmd.split(|b| *b == 0).any(|arg| arg == b"serve"))
        .unwrap_or(true) // no procfs: trust kill(0)
}

/// The pid of a live `service` process of this home, when one runs.
pub fn live(config: &Config, service: Service) -> Option<u32> {
    pid_files(config)
        .into_iter()
        .find(|f| f.service == service && is_alive(f.pid))
        .map(|f| f.pid)
}

/// Removes pid files whose process is gone; returns them.
pub fn clean_stale(config: &Config) -> Vec<PidFile> {
    pid_files(config)
        .into_iter()
        .filter(|f| !is_alive(f.pid))
        .inspect(|f| {
            let _ = std::fs::remove_file(&f.path);
        })
        .collect()
}

/// What `rtl status` shows for one process.
#[derive(Debug, Clone)]
pub struct ServiceStatus {
    pub service: Service,
    pub pid: u32,
    pub alive: bool,
    pub uptime: Option<Duration>,
    pub envelopes: Option<u64>,
    /// Envelopes a node holds right now, as the relay counts them.
    pub in_flight: Option<u32>,
    pub host: Option<String>,
    /// False for a node that joined the relay on its own (`rtl node`,
    /// possibly on another machine): `rtl stop` leaves it alone.
    pub started_here: bool,
}

/// Everything `rtl status` knows.
#[derive(Debug, Clone)]
pub struct Status {
    pub services: Vec<ServiceStatus>,
    /// The relay's answer to a status request.
    pub relay: Option<StatusReport>,
    /// Why a relay whose process is alive gave no answer.
    pub relay_silent: Option<String>,
}

impl Status {
    /// rtl is running when its relay answers: a relay process that is
    /// alive but stuck serves nobody.
    pub fn running(&self) -> bool {
        self.relay.is_some()
    }

    /// Whether a relay process of this home is alive, answering or not.
    pub fn relay_alive(&self) -> bool {
        self.services
            .iter()
            .any(|s| s.service == Service::Relay && s.alive)
    }
}

/// Reads the pid files and asks the relay for its counters.
pub fn status(config: &Config) -> Status {
    let files = pid_files(config);
    let relay_alive = files
        .iter()
        .any(|f| f.service == Service::Relay && is_alive(f.pid));
    let (report, relay_silent) = if relay_alive {
        match Transform::status(config, Duration::from_secs(2)) {
            Ok(report) => (Some(report), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };
    let local: Vec<u32> = files.iter().map(|f| f.pid).collect();
    let here = hostname();
    let mut services: Vec<ServiceStatus> = files
        .into_iter()
        .map(|f| {
            let alive = is_alive(f.pid);
            let uptime = std::fs::metadata(&f.path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .filter(|_| alive);
            let node = report
                .as_ref()
                .and_then(|r| r.nodes.iter().find(|n| n.info.pid == f.pid));
            let envelopes = match f.service {
                Service::Relay => report
                    .as_ref()
                    .filter(|r| r.pid == f.pid)
                    .map(|r| r.envelopes),
                // A plot node's envelopes are charts, which the relay does
                // not count as answered work: the node counts those it drew.
                Service::PlotNode => node.map(|n| n.info.envelopes),
                Service::TaskNode => node.map(|n| n.envelopes),
            };
            ServiceStatus {
                service: f.service,
                pid: f.pid,
                alive,
                uptime,
                envelopes,
                in_flight: node.map(|n| n.in_flight),
                host: node.map(|n| n.info.host.clone()),
                started_here: true,
            }
        })
        .collect();
    // Nodes that joined the relay by themselves, here or on other hosts.
    let joined = report
        .iter()
        .flat_map(|r| r.nodes.iter())
        .filter(|n| !(n.info.host == here && local.contains(&n.info.pid)));
    for n in joined {
        services.push(ServiceStatus {
            service: Service::from_name(&n.info.service).unwrap_or(Service::TaskNode),
            pid: n.info.pid,
            alive: true,
            // Since it joined: the relay cannot know when it started.
            uptime: Some(Duration::from_millis(n.joined_ms)),
            envelopes: Some(n.envelopes),
            in_flight: Some(n.in_flight),
            host: Some(n.info.host.clone()),
            started_here: false,
        });
    }
    Status {
        services,
        relay: report,
        relay_silent,
    }
}

/// What `rtl start` did.
pub enum Started {
    /// rtl was already running; nothing was started.
    AlreadyRunning(Status),
    /// These services were started, after stale pid files were removed and
    /// nodes left running by a dead relay were stopped.
    Now {
        status: Status,
        stale: Vec<PidFile>,
        orphans: Vec<Stopped>,
        /// Where the cluster secret was made, on a first start.
        secret_made: Option<PathBuf>,
    },
}

/// How long `rtl start` waits for the relay and the nodes.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a relay just launched may take to write its pid file.
const RELAY_APPEARS: Duration = Duration::from_secs(5);

/// Starts the relay, `task_workers` task nodes and `plot_workers` plot
/// nodes as daemons from the binary `exe`, and returns once the relay
/// answers and the nodes have joined it.
pub fn start(config: &Config, exe: &Path) -> Result<Started, String> {
    private_dir(&config.home)?;
    for dir in [
        config.run_dir(),
        config.log_dir(),
        config.cache_dir(),
        config.home.join("plots"),
    ] {
        private_dir(&dir)?;
        // Files an earlier rtl made readable by others.
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                private(&entry.path(), 0o600)?;
            }
        }
    }
    // What the services create is the owner's only.
    // SAFETY: umask(2) only sets this process's file mode mask.
    unsafe {
        libc::umask(0o077);
    }
    // Two `rtl start` at once would each start a relay and its nodes: the
    // second waits for the first and then finds rtl running.
    let _one_at_a_time = lock(&config.run_dir().join("start.lock"))?;
    let secret_made = if config.insecure || config.secret_path().exists() {
        None
    } else {
        Secret::generate(&config.secret_path())?;
        Some(config.secret_path())
    };
    let stale = clean_stale(config);
    let current = status(config);
    // A relay that is alive but slow to answer is left alone: stopping it
    // would fail the jobs it runs.
    if current.relay_alive() {
        return Ok(Started::AlreadyRunning(current));
    }
    // Nodes of a relay that died: stop them and start afresh, so the new
    // relay gets exactly the nodes the settings ask for.
    let orphans = if current.services.iter().any(|s| s.alive && s.started_here) {
        stop(config, Duration::from_secs(5))
    } else {
        Vec::new()
    };
    let settings =
        toml::to_string(config).map_err(|e| format!("cannot pass the settings on: {e}"))?;
    let launch = |service: Service| launch(exe, service, &settings);
    let launched = (|| {
        launch(Service::Relay)?;
        wait_for("the relay to answer", config, || {
            Transform::status(config, Duration::from_millis(500)).is_ok()
        })?;
        for _ in 0..config.task_workers {
            launch(Service::TaskNode)?;
        }
        for _ in 0..config.plot_workers {
            launch(Service::PlotNode)?;
        }
        let expected = config.task_workers + config.plot_workers;
        wait_for("the nodes to join the relay", config, || {
            Transform::status(config, Duration::from_millis(500))
                .is_ok_and(|r| r.nodes.len() >= expected)
        })
    })();
    if let Err(e) = launched {
        // Half a daemon is worse than none: take down what did start.
        stop(config, Duration::from_secs(5));
        return Err(e);
    }
    Ok(Started::Now {
        status: status(config),
        stale,
        orphans,
        secret_made,
    })
}

/// Raises the open-file limit to what the system allows (up to 65536):
/// every connection to the relay is a descriptor, and a default of 1024
/// would let a flood of idle connections keep everyone else out.
fn allow_many_connections() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_cur.max(limit.rlim_max.min(65_536));
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// An exclusive lock on `path`, held until the file is dropped.
fn lock(path: &Path) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock(2) on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(format!(
            "cannot lock {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(file)
}

/// Creates `dir` (with its parents) and makes it its owner's only.
fn private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    private(dir, 0o700)
}

fn private(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot make {} private: {e}", path.display()))
}

/// How the relay of `config` lets peers in, in one line for `rtl start`.
pub fn security_mode(config: &Config) -> String {
    let path = config.secret_path();
    match Secret::load(&path) {
        Ok(Some(_)) => format!(
            "authenticated: every peer proves it holds the cluster secret ({}); other users of this machine cannot get in",
            path.display()
        ),
        Ok(None) if config.loopback_only() => format!(
            "INSECURE (insecure = true): no cluster secret; any user of this machine can submit jobs to {} or join as a node",
            config.relay_listen
        ),
        Ok(None) => format!(
            "INSECURE (insecure = true): listening on {} without a cluster secret; anyone who reaches ports {} and {} can submit jobs or join as a node",
            config.relay_listen, config.relay_port, config.node_port
        ),
        Err(e) => format!("unusable cluster secret: {e}"),
    }
}

/// Starts one service as a daemon from the binary `exe` with `settings`
/// (TOML); returns once it has detached.
fn launch(exe: &Path, service: Service, settings: &str) -> Result<(), String> {
    let out = Command::new(exe)
        .args(["serve", service.name(), "--settings", settings])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!(
            "the {} did not start: {}",
            service.name(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Runs beside the relay: a task or plot node that died without cleaning
/// up (its pid file is there, its process is not: killed, crashed, or
/// failed to start) is started again, once a heartbeat at most, and the
/// log says so. Nodes that stop cleanly remove their
/// pid file first, so `rtl stop` never brings one back.
fn watch_nodes(config: &Config, log: &Log, stop: &AtomicBool) {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            log.error(format!("cannot restart dead nodes: no path to rtl: {e}"));
            return;
        }
    };
    let settings = match toml::to_string(config) {
        Ok(s) => s,
        Err(e) => {
            log.error(format!("cannot restart dead nodes: {e}"));
            return;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(config.heartbeat());
        let dead = pid_files(config)
            .into_iter()
            .filter(|f| f.service != Service::Relay && !is_alive(f.pid));
        for file in dead {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let _ = std::fs::remove_file(&file.path);
            match launch(&exe, file.service, &settings) {
                Ok(()) => log.warn(format!(
                    "{} pid {} died; started a new one",
                    file.service.name(),
                    file.pid
                )),
                Err(e) => log.error(format!(
                    "{} pid {} died and could not be restarted: {e}",
                    file.service.name(),
                    file.pid
                )),
            }
        }
    }
}

fn wait_for(what: &str, config: &Config, mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let started = Instant::now();
    let deadline = started + START_TIMEOUT;
    // The relay writes its pid file after it detaches, which may be a while
    // after `launch` returned on a busy machine: only a relay that was
    // seen and is gone, or one never seen within a few seconds, is dead.
    let mut seen = false;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        let alive = pid_files(config)
            .iter()
            .any(|f| f.service == Service::Relay && is_alive(f.pid));
        seen |= alive;
        if !alive && (seen || started.elapsed() > RELAY_APPEARS) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = config.log_dir().join("relay.log");
    let last = std::fs::read_to_string(&log)
        .ok()
        .and_then(|text| {
            text.lines()
                .rfind(|l| l.contains("ERROR"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    Err(format!(
        "gave up waiting for {what}; see {} {last}",
        log.display()
    ))
}

/// What `rtl stop` did to one process.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub service: Service,
    pub pid: u32,
    /// false when it had to be killed (SIGKILL) after the grace period.
    pub graceful: bool,
}

/// Stops every rtl process of this home: SIGTERM, then SIGKILL for those
/// still running after `grace`. Removes the pid files.
pub fn stop(config: &Config, grace: Duration) -> Vec<Stopped> {
    // The relay first: it restarts nodes that die, so a node started
    // while the others stop would be left behind. Then every node, read
    // again from the pid files once the relay is gone.
    let mut stopped = terminate(config, grace, |s| s == Service::Relay);
    stopped.extend(terminate(config, grace, |s| s != Service::Relay));
    stopped
}

/// Stops the live services of `config` that `which` picks: SIGTERM, and
/// SIGKILL for those still alive after `grace`.
fn terminate(config: &Config, grace: Duration, which: impl Fn(Service) -> bool) -> Vec<Stopped> {
    let running: Vec<PidFile> = pid_files(config)
        .into_iter()
        .filter(|f| which(f.service))
        .filter(|f| {
            let alive = is_alive(f.pid);
            if !alive {
                let _ = std::fs::remove_file(&f.path);
            }
            alive
        })
        .collect();
    for f in &running {
        signal(f.pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && running.iter().any(|f| is_alive(f.pid)) {
        std::thread::sleep(Duration::from_millis(25));
    }
    let stopped = running
        .iter()
        .map(|f| {
            let graceful = !is_alive(f.pid);
            if !graceful {
                signal(f.pid, libc::SIGKILL);
            }
            Stopped {
                service: f.service,
                pid: f.pid,
                graceful,
            }
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && running.iter().any(|f| is_alive(f.pid)) {
        std::thread::sleep(Duration::from_millis(25));
    }
    for f in &running {
        let _ = std::fs::remove_file(&f.path);
    }
    stopped
}

/// The cache a task node opens: this home's, when it can. A node whose
/// cache is not the relay's gets every table inline.
fn node_cache(config: &Config, log: &Log) -> Option<Cache> {
    match Cache::open(&config.cache_dir(), config.cache_map_size) {
        Ok(c) => Some(c),
        Err(e) => {
            log.warn(format!("running without the shared cache: {e}"));
            None
        }
    }
}

/// `rtl node`: `workers` task nodes in this process, attached to the
/// terminal, joined to the relay at `relay` (possibly on another machine)
/// until SIGTERM or SIGINT.
pub fn run_nodes(config: &Config, relay: &str, workers: usize) -> Result<(), String> {
    install_signal_handlers();
    let log = Log::stderr("tasknode", config.debug, config.profile);
    let ctx = zmq::Context::new();
    let cache = node_cache(config, &log);
    let secret = Secret::load(&config.secret_path())?;
    log.info(format!(
        "{workers} task node(s) joining the relay at {relay} ({}); stop with Ctrl-C",
        if secret.is_some() {
            "with the cluster secret"
        } else {
            "without a cluster secret"
        }
    ));
    let threads: Vec<_> = (0..workers.max(1))
        .map(|n| {
            let mut settings =
                tasknode::TaskNodeConfig::new(config, relay.to_string(), cache.clone());
            settings.secret = secret.clone();
            let (ctx, log) = (ctx.clone(), log.clone());
            std::thread::Builder::new()
                .name(format!("rtl-node-{n}"))
                .spawn(move || tasknode::run(&ctx, settings, log, &TERMINATE))
                .map_err(|e| format!("cannot start a task node thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let mut failures = Vec::new();
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e.to_string()),
            Err(_) => failures.push("a task node thread panicked".to_string()),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is signal-safe.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_terminate as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGINT,
            on_terminate as *const () as libc::sighandler_t,
        );
    }
}

/// Makes the C allocator (which libzmq uses for message buffers) give
/// every buffer of 1 MiB or more back to the system when it is freed.
/// By default glibc raises that threshold as large buffers come and go and
/// then keeps freed ones in its heap, so the relay's memory would stay at
/// its highest point instead of following the data it holds. For the same
/// reason the relay keeps no freed column blocks (`rtl_tasks::alloc`): it
/// passes tables on rather than computing on them.
fn release_large_buffers() {
    rtl_tasks::alloc::keep_none();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a tuning parameter of the allocator.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: plain kill(2) on a pid taken from our own pid file and
        // checked to run `rtl serve`.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Set by SIGTERM and SIGINT; every service loop watches it.
static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_: libc::c_int) {
    TERMINATE.store(true, Ordering::Relaxed);
}

/// Entry point of `rtl serve SERVICE`: detaches (unless `foreground`),
/// writes the pid file, runs the service until SIGTERM, removes the pid file.
pub fn serve(service: Service, config: &Config, foreground: bool) -> Result<(), String> {
    // SAFETY: umask(2) only sets this process's file mode mask.
    unsafe {
        libc::umask(0o077);
    }
    allow_many_connections();
    for dir in [config.run_dir(), config.log_dir()] {
        private_dir(&dir)?;
    }
    if !foreground {
        use std::os::unix::fs::OpenOptionsExt;
        let log_path = config.log_dir().join(format!("{}.log", service.name()));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let err_file = log_file
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        daemonize::Daemonize::new()
            .working_directory(&config.home)
            .umask(0o077)
            .stdout(log_file)
            .stderr(err_file)
            .start()
            .map_err(|e| format!("cannot detach the {}: {e}", service.name()))?;
    }
    let pid = std::process::id();
    let pid_path = config
        .run_dir()
        .join(format!("{}-{pid}.pid", service.name()));
    std::fs::write(&pid_path, format!("{pid}\n"))
        .map_err(|e| format!("cannot write {}: {e}", pid_path.display()))?;
    install_signal_handlers();
    let log = Log::stderr(service.name(), config.debug, config.profile);
    let outcome = run_service(service, config, &log);
    if let Err(e) = &outcome {
        log.error(e);
    }
    // A node that failed (its port still held by the one it replaces, say)
    // leaves its pid file, so the relay starts it again; a clean stop, or
    // a relay, removes it.
    if outcome.is_ok() || service == Service::Relay || TERMINATE.load(Ordering::Relaxed) {
        let _ = std::fs::remove_file(&pid_path);
    }
    outcome
}

fn run_service(service: Service, config: &Config, log: &Log) -> Result<(), String> {
    let ctx = zmq::Context::new();
    match service {
        Service::Relay => {
            release_large_buffers();
            let (cache, renewed) =
                Cache::open_or_renew(&config.cache_dir(), config.cache_map_size)?;
            if let Some(note) = renewed {
                log.warn(note);
            }
            // Tables and plans of an earlier relay's jobs (one that was
            // killed, say) can never be used: no job of it will finish.
            match cache.discard_leftovers() {
                Ok(0) => {}
                Ok(n) => log.info(format!(
                    "removed {n} table(s) and plan(s) an earlier relay left in the cache"
                )),
                Err(e) => log.warn(format!("could not clear what an earlier relay left: {e}")),
            }
            let at = Endpoints {
                clients: format!("tcp://{}:{}", config.relay_listen, config.relay_port),
                nodes: format!("tcp://{}:{}", config.relay_listen, config.node_port),
            };
            let relay = Relay::bind(&ctx, &at, cache, log.clone(), RelayConfig::serving(config)?)?;
            std::thread::scope(|scope| {
                scope.spawn(|| watch_nodes(config, log, &TERMINATE));
                relay.run(&TERMINATE);
            });
            Ok(())
        }
        Service::TaskNode => {
            let mut settings = tasknode::TaskNodeConfig::new(
                config,
                config.node_endpoint(),
                node_cache(config, log),
            );
            settings.secret = Secret::load(&config.secret_path())?;
            Ok(tasknode::run(&ctx, settings, log.clone(), &TERMINATE)?)
        }
        Service::PlotNode => {
            let settings = plotnode::PlotNodeConfig {
                relay: config.node_endpoint(),
                heartbeat: config.heartbeat(),
                relay_timeout: config.node_timeout(),
                secret: Secret::load(&config.secret_path())?,
                listen: format!("{}:{}", config.plot_listen, config.plot_port),
                plots_dir: config.home.join("plots"),
                history: config.plot_history,
            };
            plotnode::run(&ctx, settings, log.clone(), &TERMINATE)
        }
    }
}
