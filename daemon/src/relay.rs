//! The relay: takes jobs from clients, sends each stage to a task node with
//! room, carries each stage's result on to the next stage and the last one
//! back to the client that asked.
//!
//! Two ROUTER sockets: clients on one, task and plot nodes on the other.
//! The routing bookkeeping lives in [`Routing`]; this module owns the jobs,
//! the sockets and the plan cache, and turns messages into routing calls.

use crate::charts::{self, ChartPost, JobChart};
use crate::flow::{split, Flow, Next, Pieces, Work};
use crate::routing::{Assignment, Lost, Need, NodeId, Routing};
use crate::DaemonError;
use rtl_cache::{Cache, PlanBytes};
use rtl_config::Config;
use rtl_dsl::{Graph, Plan};
use rtl_log::Log;
use rtl_tasks::{Installed, Manifest, Stat, Table};
use rtl_wire::auth::{Gate, Secret, Verdict};
use rtl_wire::connection::{Binding, Connection, Refused};
use rtl_wire::{
    Body, CacheReport, Done, Envelope, Failure, Message, Peer, PlanRef, ProgressEvent,
    StatusReport, Submit, WireError, Work as WorkMessage,
};
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Times a piece of work is sent before its job fails: a node that dies
/// holding it twice more is taken to be killed by the work itself.
pub const MAX_ATTEMPTS: u32 = 3;

/// Nodes lost within this long of each other died of one cause outside
/// the work (all killed at once, a machine in trouble): a node's death
/// spends an attempt of the work it held only when no other node, not
/// holding that work, died this close to it. The judgement waits this
/// long after the death.
const TOGETHER: Duration = Duration::from_millis(250);

/// Messages libzmq takes in from one peer before the relay has read them.
/// libzmq reads eagerly, so this (times the largest message) bounds what a
/// flooding peer puts in the relay's memory before `busy` answers reach it;
/// beyond it the peer's own sends wait.
const INBOUND_HWM: i32 = 8;

/// Messages queued in libzmq for one peer; beyond them answers wait in the
/// relay's outbox, where they count against `relay_memory`.
const OUTBOUND_HWM: i32 = 16;

/// Most messages taken from one socket before looking at the other.
const BATCH: usize = 256;

/// A turn of the main loop longer than this means the relay itself did not
/// run (stopped, swapped out, a long commit): polls wait at most 200 ms.
const STALL: Duration = Duration::from_millis(500);

/// The relay's settings, taken from the configuration.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Largest chunk in rows, when chunking is on.
    pub chunk_rows: Option<usize>,
    /// Column bytes held for queued work before new submits are refused
    /// as busy.
    pub memory: usize,
    /// Queued envelopes before new submits are refused as busy.
    pub queue: usize,
    /// How often the relay heartbeats to nodes (and they to it).
    pub heartbeat: Duration,
    /// A node silent this long is dropped and its work sent elsewhere.
    pub node_timeout: Duration,
    /// Largest message part accepted from a peer.
    pub max_message_bytes: usize,
    /// When set, peers must prove they hold it (see `auth`).
    pub secret: Option<Secret>,
}

impl RelayConfig {
    /// The settings for a relay serving on sockets others can reach (even
    /// on loopback, other users of the machine can): with the cluster
    /// secret, and refusing to run without one unless `insecure` says so.
    pub fn serving(config: &Config) -> Result<RelayConfig, DaemonError> {
        let secret = Secret::load(&config.secret_path())?;
        if secret.is_none() && !config.insecure {
            return Err(DaemonError::Settings(format!(
                "refusing to listen on {} without a cluster secret ({} is missing): `rtl start` makes one, or run `rtl keygen` (and copy it to every machine); insecure = true lets anyone who can reach the ports in",
                config.relay_listen,
                config.secret_path().display()
            )));
        }
        Ok(RelayConfig {
            secret,
            ..RelayConfig::from(config)
        })
    }
}

impl From<&Config> for RelayConfig {
    /// The settings without a secret (the embedded mode's in-process relay).
    fn from(config: &Config) -> RelayConfig {
        RelayConfig {
            chunk_rows: config.chunking.then_some(config.chunking_size),
            memory: config.relay_memory,
            queue: config.relay_queue,
            heartbeat: config.heartbeat(),
            node_timeout: config.node_timeout(),
            max_message_bytes: config.max_message_bytes,
            secret: None,
        }
    }
}

/// Where the relay listens.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Where clients connect (`tcp://address:port`).
    pub clients: String,
    /// Where task and plot nodes connect.
    pub nodes: String,
}

struct Job {
    client: Vec<u8>,
    plan: Arc<Plan>,
    plan_key: Option<String>,
    progress: bool,
    /// The client wants the job's charts too.
    charts: bool,
    lifespan: u64,
    deadline: Option<Instant>,
    client_cache: Option<Uuid>,
    started: Instant,
    /// The job's tables, held without decoding them: column frames as
    /// they came, or keys into the cache.
    flow: Flow<Body>,
}

/// Cache entries that more than one stage reads (a table fanned out to
/// several consumers, or a job's input to several sources): how many
/// readers each has beyond the one that will delete it. An entry is
/// deleted when its last reader lets it go.
#[derive(Default)]
struct Readers(Mutex<HashMap<String, u32>>);

impl Readers {
    /// The counts (only the relay's thread uses them: the lock is never
    /// contended, and a poisoned one still holds good counts).
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `keys` get `more` readers.
    fn add(&self, keys: &[String], more: u32) {
        let mut counts = self.counts();
        for key in keys {
            *counts.entry(key.clone()).or_default() += more;
        }
    }

    /// Whether another reader still needs `key`.
    fn shared(&self, key: &str) -> bool {
        self.counts().contains_key(key)
    }

    /// A reader lets go of `keys`: those nobody else reads, to delete.
    fn release(&self, keys: &[String]) -> Vec<String> {
        let mut counts = self.counts();
        keys.iter()
            .filter(|key| match counts.get_mut(key.as_str()) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    counts.remove(key.as_str());
                    false
                }
                None => true,
            })
            .cloned()
            .collect()
    }

    /// A job ended: its entries are deleted whoever would have read them.
    fn forget_job(&self, job: Uuid) {
        self.counts()
            .retain(|key, _| !rtl_cache::belongs_to(key, job));
    }
}

/// How the relay splits, joins and shares held tables: pieces already in
/// the cache are passed on by key; inline ones are decoded only when they
/// must be cut.
struct Tables {
    cache: Cache,
    readers: Arc<Readers>,
}

impl Tables {
    /// The held table, decoded (taken from the cache when it is there, or
    /// read, when another stage reads it too).
    fn materialize(&self, held: Body) -> Result<Table, String> {
        match held {
            Body::Refs { keys, .. } if keys.iter().any(|k| self.readers.shared(k)) => {
                let table = self.cache.read_tables(&keys)?;
                self.discard_keys(&keys);
                Ok(table)
            }
            Body::Refs { keys, .. } => Ok(self.cache.take_tables(&keys)?),
            inline => Ok(inline.into_table()?),
        }
    }

    /// The held table (or tables) inline, for a node that does not share
    /// the cache.
    fn inline(&self, held: Body) -> Result<Body, String> {
        match held {
            Body::Parts(parts) => Ok(Body::Parts(
                parts
                    .into_iter()
                    .map(|p| self.inline(p))
                    .collect::<Result<_, _>>()?,
            )),
            refs @ Body::Refs { .. } => Ok(Body::Table(self.materialize(refs)?)),
            inline => Ok(inline),
        }
    }

    /// Lets go of a held table: its cache entries go once no other stage
    /// reads them.
    fn discard(&self, held: &Body) {
        self.discard_keys(&held.keys());
    }

    fn discard_keys(&self, keys: &[String]) {
        self.cache.discard(&self.readers.release(keys));
    }
}

impl Pieces<Body> for Tables {
    fn rows(&self, held: &Body) -> usize {
        held.rows()
    }

    fn split(&self, held: Body, rows: usize) -> Result<Vec<Body>, String> {
        let total = held.rows();
        let pieces = |schema: Vec<_>, keys: Vec<String>| {
            keys.into_iter()
                .enumerate()
                .map(|(k, key)| Body::Refs {
                    schema: schema.clone(),
                    rows: rows.min(total.saturating_sub(k * rows)) as u64,
                    keys: vec![key],
                })
                .collect()
        };
        match held {
            // A node wrote its result in pieces of `rows` rows.
            Body::Refs { schema, keys, .. } if keys.len() > 1 => Ok(pieces(schema, keys)),
            held if total <= rows => Ok(vec![held]),
            // One big entry (a client's input, say) that only this stage
            // reads: cut it in the map.
            Body::Refs { schema, keys, .. } if !self.readers.shared(&keys[0]) => {
                let keys = match keys.as_slice() {
                    [key] => self.cache.split_table(key, rows)?,
                    _ => keys,
                };
                Ok(pieces(schema, keys))
            }
            held => {
                let table = self.materialize(held)?;
                Ok(split(&table, rows).into_iter().map(Body::Table).collect())
            }
        }
    }

    fn join(&self, parts: Vec<Body>) -> Result<Body, String> {
        if parts.iter().all(|p| matches!(p, Body::Refs { .. })) {
            let rows = parts.iter().map(|p| p.rows() as u64).sum();
            // Specs are compared as they are; only a mismatch is told.
            let specs: Vec<&[rtl_tasks::codec::ColumnSpec]> = parts
                .iter()
                .filter_map(|p| match p {
                    Body::Refs { schema, .. } => Some(&schema[..]),
                    _ => None,
                })
                .collect();
            if let Some(index) = specs.iter().position(|s| *s != specs[0]) {
                let pairs =
                    |s: &[rtl_tasks::codec::ColumnSpec]| -> Vec<(String, rtl_tasks::DType)> {
                        s.iter().map(|c| (c.name.clone(), c.dtype)).collect()
                    };
                let why = rtl_tasks::table::schema_difference(
                    &pairs(specs[0]),
                    &pairs(specs[index]),
                    index,
                );
                return Err(why.unwrap_or_default());
            }
            let mut parts = parts.into_iter();
            let Some(Body::Refs {
                schema, mut keys, ..
            }) = parts.next()
            else {
                return Err("nothing to join".into());
            };
            keys.extend(parts.flat_map(|mut p| p.take_keys()));
            return Ok(Body::Refs { schema, rows, keys });
        }
        let tables: Vec<Result<Table, String>> =
            parts.into_iter().map(|p| self.materialize(p)).collect();
        let tables = tables.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Body::Table(Table::concat(tables)?))
    }

    fn share(&self, held: Body, readers: usize) -> Vec<Body> {
        if readers > 1 {
            self.readers.add(&held.keys(), readers as u32 - 1);
        }
        let mut copies: Vec<Body> = (1..readers).map(|_| held.duplicate()).collect();
        copies.insert(0, held);
        copies.truncate(readers);
        copies
    }

    fn bundle(&self, tables: Vec<Body>) -> Result<Body, String> {
        Ok(Body::Parts(tables))
    }
}

/// The relay: takes jobs from clients, splits them into envelopes, sends
/// them to task nodes and hands results, progress and failures back.
pub struct Relay {
    /// Clients' connections, with answers waiting for those that cannot
    /// take them yet.
    clients: Connection,
    /// Task and plot nodes' connections.
    nodes: Connection,
    routing: Routing,
    jobs: HashMap<Uuid, Job>,
    /// Plans in the cache, with how many running jobs use each: a plan
    /// goes when its last job ends, so distinct jobs cannot fill the map.
    stored_plans: HashMap<String, usize>,
    cache: Cache,
    /// Cache entries of fanned-out tables, with their readers.
    readers: Arc<Readers>,
    log: Log,
    started: Instant,
    /// Since when no node takes stage work, if none does.
    no_workers_since: Option<Instant>,
    settings: RelayConfig,
    /// Submits refused as busy since the last report in the log.
    busy_refusals: u64,
    /// Task nodes that have joined since the relay started, for whoever
    /// starts nodes beside it and must wait for them (embedded runs).
    task_nodes_joined: Arc<AtomicUsize>,
    /// Who has proven they hold the cluster secret, when there is one.
    gate: Option<Gate>,
    /// Results sent to each client by reference (their cache keys): the
    /// client deletes them as it reads them; what a client that went away
    /// did not read is deleted then.
    unread_results: HashMap<Vec<u8>, VecDeque<Vec<String>>>,
    /// Charts sent to plot nodes and not yet confirmed, and charts that
    /// wait for a plot node (only once one has been seen: a cluster without
    /// plot nodes keeps none).
    charts: ChartPost,
    plot_node_seen: bool,
    /// This host's name: nodes on it whose cache is the relay's are
    /// watched by pid, so a killed one is dropped within a tick.
    host: String,
    /// When the relay last looked at the clock (see `notice_stall`).
    awake: Instant,
    /// This relay's run: clients see a new one after a restart.
    run: Uuid,
    /// Task nodes lost lately, with the work they held: whether that work
    /// spends an attempt is settled once it is clear the node did not die
    /// together with others (see [`TOGETHER`]).
    losses: VecDeque<Loss>,
    /// Installed tasks' manifests as nodes sent them, parsed, by digest
    /// (None: this relay cannot read it).
    manifests: HashMap<String, Option<Manifest>>,
    /// Jobs with work only nodes that are gone could run, and since when.
    stranded_since: HashMap<Uuid, Instant>,
}

/// A task node lost, and the work it held.
struct Loss {
    at: Instant,
    node: NodeId,
    /// For messages: the node, and how it was lost.
    said: String,
    held: Vec<Uuid>,
    settled: bool,
}

impl Relay {
    /// Binds both sockets.
    pub fn bind(
        ctx: &zmq::Context,
        at: &Endpoints,
        cache: Cache,
        log: Log,
        settings: RelayConfig,
    ) -> Result<Relay, DaemonError> {
        let binding = |what, outbound| Binding {
            what,
            inbound: INBOUND_HWM,
            outbound,
            max_message_bytes: settings.max_message_bytes,
        };
        Ok(Relay {
            clients: Connection::bind(ctx, &at.clients, &binding("client", Some(OUTBOUND_HWM)))?,
            nodes: Connection::bind(ctx, &at.nodes, &binding("node", None))?,
            routing: Routing::new(),
            jobs: HashMap::new(),
            stored_plans: HashMap::new(),
            cache,
            readers: Arc::default(),
            log,
            started: Instant::now(),
            no_workers_since: Some(Instant::now()),
            gate: settings.secret.clone().map(Gate::new),
            unread_results: HashMap::new(),
            charts: ChartPost::new(),
            plot_node_seen: false,
            host: rtl_wire::link::hostname(),
            awake: Instant::now(),
            run: Uuid::new_v4(),
            losses: VecDeque::new(),
            manifests: HashMap::new(),
            stranded_since: HashMap::new(),
            settings,
            busy_refusals: 0,
            task_nodes_joined: Arc::default(),
        })
    }

    /// How many task nodes have joined so far, kept up to date as it runs.
    pub fn task_nodes_joined(&self) -> Arc<AtomicUsize> {
        self.task_nodes_joined.clone()
    }

    /// The job tables' keeper: the cache and who reads what in it.
    fn tables(&self) -> Tables {
        Tables {
            cache: self.cache.clone(),
            readers: self.readers.clone(),
        }
    }

    /// Where the sockets are bound, with the ports the system picked for
    /// endpoints that asked for any (`tcp://127.0.0.1:*`).
    pub fn endpoints(&self) -> Result<Endpoints, DaemonError> {
        Ok(Endpoints {
            clients: self.clients.endpoint()?,
            nodes: self.nodes.endpoint()?,
        })
    }

    /// Serves until `stop` is set, then tells the nodes and clients it is
    /// leaving and returns.
    pub fn run(mut self, stop: &AtomicBool) {
        self.log
            .info(format!("relay up; cache {}", self.cache.path().display()));
        let mut next_tick = Instant::now() + self.settings.heartbeat;
        while !stop.load(Ordering::Relaxed) {
            self.notice_stall();
            let mut wait = next_tick
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200));
            // A client's socket at its high-water mark does not wake the
            // poll when it has room again: what waits for it is retried
            // soon, not at the next message or tick (a job of many quick
            // tasks stalled 200 ms every 16 progress messages).
            if self.clients.has_waiting() {
                wait = wait.min(Duration::from_millis(1));
            }
            let (clients_ready, nodes_ready) = {
                let mut items = self.clients.poll_items();
                let first_node = items.len();
                items.extend(self.nodes.poll_items());
                match zmq::poll(&mut items, wait.as_millis() as i64) {
                    Ok(_) => (items[0].is_readable(), items[first_node].is_readable()),
                    Err(zmq::Error::EINTR) => continue,
                    Err(e) => {
                        self.log.error(format!("poll failed: {e}"));
                        break;
                    }
                }
            };
            // A stop is most likely to land in the poll.
            self.notice_stall();
            self.drop_closed_connections();
            if nodes_ready {
                for _ in 0..BATCH {
                    match self.nodes.recv_from() {
                        Ok(Some((peer, env))) => {
                            self.drop_closed_connections();
                            if self.admitted(&peer, &env, false) {
                                self.guarded("a node's message", |relay| {
                                    relay.on_node(peer.route, env)
                                })
                            }
                        }
                        Ok(None) => break,
                        Err(e) => self.log.warn(format!("dropped a message from a node: {e}")),
                    }
                }
            }
            if clients_ready {
                for _ in 0..BATCH {
                    match self.clients.recv_from() {
                        Ok(Some((peer, env))) => {
                            self.drop_closed_connections();
                            if self.admitted(&peer, &env, true) {
                                self.guarded("a client's message", |relay| {
                                    relay.on_client(peer.route, env)
                                })
                            }
                        }
                        Ok(None) => break,
                        Err(WireError::Malformed {
                            route: Some(route),
                            id,
                            reason,
                        }) => {
                            self.log
                                .warn(format!("refused a malformed client message: {reason}"));
                            self.reply_error(
                                &route,
                                id.unwrap_or_default(),
                                None,
                                format!("malformed message: {reason}"),
                            );
                        }
                        Err(e) => self.log.warn(format!("dropped a client message: {e}")),
                    }
                }
            }
            self.guarded("a dispatch", Relay::dispatch);
            self.flush_outbox();
            if Instant::now() >= next_tick {
                self.guarded("a tick", Relay::tick);
                next_tick = Instant::now() + self.settings.heartbeat;
            }
        }
        // Clients of jobs still running are told, rather than left to
        // find out when their patience runs out.
        let _ = self.clients.set_linger(Duration::from_secs(1));
        let running: Vec<Uuid> = self.jobs.keys().copied().collect();
        for job in &running {
            self.fail_job(
                *job,
                None,
                "the relay stopped (`rtl stop` or `rtl restart`) before the job finished; run it again once rtl is back".into(),
            );
        }
        self.flush_outbox();
        self.log.info(format!(
            "relay stopping; {} running job(s) told",
            running.len()
        ));
    }

    /// Runs one step of the loop; a panic in it (a bug, or input no check
    /// caught) costs that step and is logged, never the relay: a relay
    /// whose thread died would look alive to `rtl status` and answer
    /// nothing.
    fn guarded(&mut self, what: &str, step: impl FnOnce(&mut Relay)) {
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| step(self))) {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            self.log.error(format!(
                "{what} was dropped: handling it failed ({why}); this is a bug in rtl, please report it with this log"
            ));
        }
    }

    /// Whether a message may be handled: always without a secret; with
    /// one, only from a peer that proved it holds it. The handshake's own
    /// messages are answered here.
    fn admitted(&mut self, from: &Peer, env: &Envelope, client: bool) -> bool {
        let route = from.route.as_slice();
        let Some(gate) = &mut self.gate else {
            return true;
        };
        let kind = env.message.kind();
        let is_proof = matches!(env.message, Message::Proof { .. });
        let proof = match &env.message {
            Message::Proof { nonce, proof } if !proof.is_empty() => {
                Some((nonce.as_slice(), proof.as_slice()))
            }
            _ => None,
        };
        let peer = peer_name(route);
        // An empty proof from a trusted peer says the peer does not know
        // it was welcomed (the welcome was lost, or did not match its last
        // proof): the handshake starts again rather than leave it silent.
        if is_proof && proof.is_none() && gate.trusts(from) {
            gate.forget(route);
        }
        let reply = match gate.admit(from, proof) {
            Verdict::Pass => return !is_proof,
            Verdict::Challenge { nonce, first } => {
                if first && !is_proof {
                    self.log.warn(format!(
                        "refused a {kind:?} from {} {peer}: it has not proven it holds the cluster secret; challenged it",
                        if client { "client" } else { "node" }
                    ));
                }
                Message::Challenge { nonce }
            }
            Verdict::Welcome(proof) => {
                self.log
                    .debug(|| format!("{peer} proved it holds the cluster secret"));
                Message::Welcome { proof }
            }
            Verdict::Refuse(reason) => {
                self.log.warn(format!("refused {peer}: {reason}"));
                if client {
                    self.reply_error(
                        route,
                        env.job,
                        None,
                        format!("refused: {reason}; is this machine's secret the cluster's?"),
                    );
                }
                return false;
            }
        };
        let answer = Envelope::with_id(env.id, Uuid::nil(), reply, Body::Empty);
        let socket = if client {
            &mut self.clients
        } else {
            &mut self.nodes
        };
        if let Err(e) = socket.send_now_to(route, answer) {
            self.log
                .debug(|| format!("handshake answer to {peer} lost: {e}"));
        }
        false
    }

    fn on_client(&mut self, route: Vec<u8>, env: Envelope) {
        let Envelope {
            id,
            job,
            message,
            body,
        } = env;
        match message {
            Message::Ping => {
                let pong = Message::Pong {
                    relay: Some(self.run),
                };
                self.send_client(&route, Envelope::with_id(id, job, pong, Body::Empty));
            }
            Message::Status => {
                let status = StatusReport {
                    pid: std::process::id(),
                    uptime_ms: self.started.elapsed().as_millis() as u64,
                    envelopes: self.routing.dispatched(),
                    jobs_running: self.jobs.len() as u64,
                    queued: self.routing.queued() as u64,
                    nodes: self.routing.report(Instant::now()),
                    cache: self.cache_report(),
                };
                let reply = Message::StatusReply(Box::new(status));
                self.send_client(&route, Envelope::with_id(id, job, reply, Body::Empty));
            }
            Message::Submit(submit) => self.submit(route, id, *submit, body),
            other => self.reply_error(
                &route,
                job,
                None,
                format!("a client cannot send `{}` messages", other.kind()),
            ),
        }
    }

    fn submit(&mut self, route: Vec<u8>, job_id: Uuid, submit: Submit, input: Body) {
        if let Body::Parts(parts) = &input {
            // A job's input is one table; several are for combining tasks.
            // Nothing it names is let go: it may name another job's entries.
            let why = format!("the input is {} tables; a job takes one", parts.len());
            return self.reply_error(&route, job_id, None, why);
        }
        if !input.keys().is_empty() && submit.cache_id != Some(self.cache.id()) {
            return self.reply_error(
                &route,
                job_id,
                None,
                "the input was sent by reference to a cache this relay does not share".into(),
            );
        }
        // A client names only entries of its own job: others belong to
        // other jobs, and whoever reads an entry deletes it.
        if let Some(key) = input
            .keys()
            .iter()
            .find(|key| !rtl_cache::belongs_to(key, job_id))
        {
            return self.reply_error(
                &route,
                job_id,
                None,
                format!("the input names cache entry {key}, which is not this job's"),
            );
        }
        if let Some(why) = self.too_busy(input.bytes()) {
            // The client keeps its input, references included, and resends.
            self.busy_refusals += 1;
            self.log.debug(|| format!("job {job_id}: busy, {why}"));
            let busy = Envelope::with_id(job_id, job_id, Message::Busy, Body::Empty);
            return self.send_client(&route, busy);
        }
        // From here on the input is the relay's to pass on or release.
        let (graph, installed) = match self.admit(job_id, &submit.plan) {
            Ok(admitted) => admitted,
            Err((at, message)) => {
                self.tables().discard(&input);
                let failure = failure(Some(&submit.plan), at, message);
                return self.reply_failure(&route, job_id, failure);
            }
        };
        let plan = submit.plan;
        let plan_key = self.store_plan(&plan);
        let lifespan = submit.lifespan;
        self.log
            .debug(|| format!("job {job_id}: {} stage(s) from a client", plan.stages.len()));
        let flow = Flow::new(&plan, &graph, self.settings.chunk_rows, &installed);
        self.routing.require(job_id, needs(&plan, &installed));
        self.jobs.insert(
            job_id,
            Job {
                client: route,
                plan: Arc::new(plan),
                plan_key,
                progress: submit.progress,
                charts: submit.charts,
                lifespan,
                deadline: (lifespan > 0).then(|| Instant::now() + Duration::from_millis(lifespan)),
                client_cache: submit.cache_id,
                started: Instant::now(),
                flow,
            },
        );
        let tables = self.tables();
        let next = match self.jobs.get_mut(&job_id) {
            Some(job) => job.flow.start(input, &tables),
            None => return,
        };
        self.follow(job_id, next);
    }

    /// A submitted plan's graph and the installed tasks it may use, when it
    /// can run; if not, where and why.
    fn admit(&mut self, job_id: Uuid, plan: &Plan) -> Result<(Graph, Installed), Refusal> {
        if self.jobs.contains_key(&job_id) {
            return Err((None, "a job with this id is already running".into()));
        }
        let installed = self.installed();
        for (index, stage) in plan.stages.iter().enumerate() {
            for call in &stage.tasks {
                if rtl_tasks::lookup(&call.name).is_none() && installed.get(&call.name).is_none() {
                    let at = Some((index as u32, call.name.clone()));
                    return Err((at, self.no_node_has(&call.name, &installed)));
                }
            }
        }
        // Clients check jobs before sending them; one that did not still
        // gets nothing past the relay that cannot decode.
        if let Some(p) = rtl_tasks::check_calls(plan, Some(&installed))
            .into_iter()
            .next()
        {
            let stage = p
                .stage
                .as_deref()
                .and_then(|name| (0..plan.stages.len()).find(|&i| plan.stage_name(i) == name));
            // Said as a task says it, for `failure` to take apart again.
            let message = match &p.field {
                Some(field) => format!("field `{field}`: {}", p.message),
                None => p.message,
            };
            let at = stage.map(|s| (s as u32, p.task.unwrap_or_default()));
            return Err((at, message));
        }
        let graph = plan.graph().map_err(|p| (None, p.to_string()))?;
        Ok((graph, installed))
    }

    /// The installed tasks of the connected task nodes, one version of
    /// each name: the one most of them have.
    fn installed(&mut self) -> Installed {
        let reports = self
            .routing
            .nodes()
            .flat_map(|(_, info)| &info.tasks)
            .map(|t| (t.name.as_str(), t.digest.as_str(), t.manifest.as_str()));
        let chosen = rtl_tasks::installed::most_common(reports);
        if self.manifests.len() > MANIFESTS {
            // Nodes come and go with new versions for months.
            self.manifests.clear();
        }
        let mut tasks = Vec::with_capacity(chosen.len());
        for (name, digest, text) in chosen {
            // Parsed once per version, not once per job.
            let parsed = self.manifests.entry(digest.to_string()).or_insert_with(|| {
                let origin = format!("{name}.toml on the task nodes");
                let mut manifest = Manifest::parse(text, &origin, PathBuf::new()).ok()?;
                manifest.digest = digest.to_string();
                Some(manifest)
            });
            tasks.extend(parsed.clone());
        }
        Installed::new(tasks)
    }

    /// Why a job naming task `name` cannot run: no node has it.
    fn no_node_has(&self, name: &str, installed: &Installed) -> String {
        let nodes = self
            .routing
            .nodes()
            .filter(|(_, info)| info.service == "tasknode")
            .count();
        let names = rtl_tasks::registry()
            .iter()
            .map(|t| t.name)
            .chain(installed.iter().map(|m| m.name.as_str()));
        let hint = rtl_tasks::closest(name, names)
            .map_or(String::new(), |c| format!(" did you mean {c}?"));
        let listed: Vec<String> = installed
            .iter()
            .map(|m| {
                let with = self
                    .routing
                    .nodes()
                    .filter(|(_, info)| info.tasks.iter().any(|t| t.name == m.name))
                    .count();
                format!("{} ({with} of {nodes} task nodes)", m.name)
            })
            .collect();
        if listed.is_empty() {
            format!("no task node has `{name}`;{hint} no connected task node has installed tasks (`rtl tasks` lists rtl's own)")
        } else {
            format!(
                "no task node has `{name}`;{hint} installed on the task nodes: {}",
                listed.join(", ")
            )
        }
    }

    /// Why a new job carrying `bytes` of columns must wait, if it must:
    /// the queue or the column bytes held for queued work are at their
    /// limit. With no job running anything is taken, so that a job larger
    /// than `relay_memory` still runs.
    fn too_busy(&self, bytes: usize) -> Option<String> {
        if self.jobs.is_empty() {
            return None;
        }
        let queued = self.routing.queued();
        if queued >= self.settings.queue {
            return Some(format!("{queued} envelopes queued (relay_queue)"));
        }
        let held = self.routing.queued_bytes()
            + self
                .jobs
                .values()
                .flat_map(|j| j.flow.held())
                .map(Body::bytes)
                .sum::<usize>()
            + self.clients.outbox_bytes();
        (held + bytes > self.settings.memory)
            .then(|| format!("{held} column bytes held (relay_memory)"))
    }

    /// Puts the plan in the shared cache once; nodes that share the cache
    /// then get only its key.
    fn store_plan(&mut self, plan: &Plan) -> Option<String> {
        let stored = PlanBytes::of(plan).ok()?;
        let key = stored.key();
        if let Some(jobs) = self.stored_plans.get_mut(&key) {
            *jobs += 1;
            return Some(key);
        }
        match self.cache.put_plan(&stored.digest, &stored.bytes) {
            Ok(key) => {
                self.stored_plans.insert(key.clone(), 1);
                Some(key)
            }
            Err(e) => {
                self.log.warn(format!("plans go inline: {e}"));
                None
            }
        }
    }

    /// A job using the plan at `key` ended: the plan leaves the cache with
    /// its last job.
    fn release_plan(&mut self, key: Option<&String>) {
        let Some(key) = key else {
            return;
        };
        if let Some(jobs) = self.stored_plans.get_mut(key) {
            *jobs -= 1;
            if *jobs == 0 {
                self.stored_plans.remove(key);
                self.cache.discard(std::slice::from_ref(key));
            }
        }
    }

    /// Acts on what the job's flow asks for next: work to queue, the
    /// result to send, or a failure.
    fn follow(&mut self, job_id: Uuid, next: Result<Next<Body>, String>) {
        match next {
            Err(e) => self.fail_job(job_id, None, e),
            Ok(Next::Send(work)) => {
                for w in work {
                    self.enqueue(job_id, w);
                }
            }
            Ok(Next::Finished(result)) => self.finish(job_id, result),
        }
    }

    /// Queues one work envelope.
    fn enqueue(&mut self, job_id: Uuid, work: Work<Body>) {
        let Some(job) = self.jobs.get(&job_id) else {
            return self.tables().discard(&work.input);
        };
        let message = WorkMessage {
            stage: work.stage,
            plan: match &job.plan_key {
                Some(key) => PlanRef::Cached(key.clone()),
                None => PlanRef::Inline(job.plan.clone()),
            },
            tasks: work.tasks,
            lifespan: job.lifespan,
            progress: job.progress,
            seq: work.seq,
            count: work.count,
            split_rows: work.split_rows.unwrap_or(0) as u64,
            stats: work.stats,
            partial_for: work.partial_for,
            cache_id: None,
        };
        self.log.debug(|| {
            format!(
                "job {job_id}: stage {} tasks {:?}, piece {} of {}, {} rows",
                work.stage,
                work.tasks,
                work.seq,
                work.count,
                work.input.rows()
            )
        });
        let message = Message::Work(Box::new(message));
        self.routing
            .enqueue(Envelope::with_id(work.id, job_id, message, work.input));
    }

    /// Sends queued work to nodes with room.
    fn dispatch(&mut self) {
        while let Some((node, mut env)) = self.routing.next_dispatch() {
            let shares_cache = self
                .routing
                .node_info(&node)
                .is_some_and(|info| info.cache_id == Some(self.cache.id()));
            let (job, id, stage) = (env.job, env.id, stage_of(&env));
            if let Message::Work(work) = &mut env.message {
                // Which cache the node may answer into by reference: the
                // relay's, and only when the node shares it.
                work.cache_id = shares_cache.then(|| self.cache.id());
                if !shares_cache {
                    if let Some(j) = self.jobs.get(&job) {
                        work.plan = PlanRef::Inline(j.plan.clone());
                    }
                }
            }
            if !shares_cache && !env.body.keys().is_empty() {
                let held = std::mem::replace(&mut env.body, Body::Empty);
                match self.tables().inline(held) {
                    Ok(inline) => env.body = inline,
                    Err(e) => {
                        self.routing.answered(&id);
                        self.fail_job(job, None, e);
                        continue;
                    }
                }
            }
            let copy = env.duplicate();
            self.log.debug(|| {
                format!(
                    "job {job}: stage {stage} to {}",
                    String::from_utf8_lossy(&node)
                )
            });
            match self.nodes.send_now_to(&node, env) {
                Ok(()) => self.routing.retain(&id, copy),
                // The node's connection is gone (killed, crashed, or a
                // network that dropped it): the work never reached it.
                Err(zmq::Error::EHOSTUNREACH) => {
                    if let Some(lost) = self.routing.refused(&node, copy) {
                        self.node_lost(lost, "has gone (its connection closed)");
                    }
                }
                // No room in its socket just now: try again next turn.
                Err(zmq::Error::EAGAIN) => {
                    self.routing.put_back(copy);
                    break;
                }
                Err(e) => {
                    self.routing.answered(&id);
                    self.release(copy);
                    let at = self.stage_tasks(job, stage);
                    self.fail_job(
                        job,
                        at,
                        format!("the relay could not send this stage's work to a task node ({e})"),
                    );
                }
            }
        }
    }

    /// A stage and its tasks, as an error names them.
    fn stage_tasks(&self, job: Uuid, stage: u32) -> Option<(u32, String)> {
        let tasks = self.jobs.get(&job)?.plan.stages.get(stage as usize)?;
        let names: Vec<&str> = tasks.tasks.iter().map(|t| t.name.as_str()).collect();
        Some((stage, names.join(", ")))
    }

    /// A node is out of the routing (silent, gone, or dead): the log says
    /// so once, the gate forgets it, and what it held is sent again.
    fn node_lost(&mut self, lost: Lost, how: &str) {
        let node = format!(
            "{} {} (pid {} on {})",
            lost.info.service,
            String::from_utf8_lossy(&lost.node),
            lost.info.pid,
            lost.info.host
        );
        if lost.info.service == "plotnode" {
            self.log.warn(format!(
                "{node} {how}; charts go to the other plot nodes, or wait for its replacement"
            ));
        } else {
            self.log.warn(format!(
                "{node} {how}; {} envelope(s) it held go to other nodes",
                lost.envelopes.len()
            ));
        }
        if let Some(gate) = &mut self.gate {
            gate.forget(&lost.node);
        }
        let held = lost.envelopes.iter().map(|(id, _)| *id).collect();
        for (id, assignment) in lost.envelopes {
            self.resend(id, assignment, &node, how);
        }
        if lost.info.service != "plotnode" {
            self.losses.push_back(Loss {
                at: Instant::now(),
                node: lost.node.clone(),
                said: format!("{node} {how}"),
                held,
                settled: false,
            });
        }
        for chart in self.charts.node_gone(&lost.node) {
            self.post_chart(chart);
        }
    }

    /// Checks whether the relay itself stopped running since it last
    /// looked (polls wait at most 200 ms, so a longer gap is a stall):
    /// nodes are not blamed for the time it did not read their heartbeats.
    fn notice_stall(&mut self) {
        let now = Instant::now();
        let stalled = now.duration_since(std::mem::replace(&mut self.awake, now));
        if stalled <= STALL {
            return;
        }
        self.log.warn(format!(
            "the relay did not run for {} ms (stopped, or starved of CPU or memory); nodes get a fresh heartbeat window",
            stalled.as_millis()
        ));
        self.routing.stalled(stalled, now);
        if let Some(since) = &mut self.no_workers_since {
            *since = (*since + stalled).min(now);
        }
    }

    /// Deletes the cache entries an envelope's input was passed by.
    fn release(&self, env: Envelope) {
        self.tables().discard(&env.body);
    }

    /// A node answered envelope `id`: its credit is free and its input can
    /// go. An envelope queued to be sent again (its node had been given up
    /// on, and answered after all) leaves the queue. False when the relay
    /// was not waiting for it: a late answer to work another node did.
    fn answered(&mut self, id: &Uuid) -> Option<(Uuid, u32)> {
        if let Some(a) = self.routing.answered(id) {
            if let Some(copy) = a.retained {
                self.release(copy);
            }
            return Some((a.job, a.stage));
        }
        let queued = self.routing.unqueue(id)?;
        let at = (queued.job, stage_of(&queued));
        self.release(queued);
        Some(at)
    }

    /// Why a node's answer cannot name these cache entries, if it cannot:
    /// only a node that shares the relay's cache writes into it, and only
    /// entries of the job it worked for.
    fn foreign_refs(&self, route: &[u8], env: &Envelope) -> Option<String> {
        let refs = env.body.keys();
        if refs.is_empty() {
            return None;
        }
        let shares = self
            .routing
            .node_info(route)
            .is_some_and(|info| info.cache_id == Some(self.cache.id()));
        if !shares {
            return Some("it named cache entries but does not share the relay's cache".into());
        }
        let job = env.job;
        refs.iter()
            .find(|key| !rtl_cache::belongs_to(key, job))
            .map(|key| format!("it named cache entry {key}, which is not its job's"))
    }

    fn on_node(&mut self, route: NodeId, env: Envelope) {
        let Envelope {
            id,
            job,
            message,
            body,
        } = env;
        match message {
            Message::Heartbeat(node) => {
                if let Some(info) = node {
                    let (service, pid, host) = (info.service.clone(), info.pid, info.host.clone());
                    if self.routing.heard_from(&route, info, Instant::now()) {
                        self.log.info(format!(
                            "{service} {} joined (pid {pid} on {host})",
                            String::from_utf8_lossy(&route)
                        ));
                        if service == "plotnode" {
                            self.plot_node_seen = true;
                            self.pass_waiting_charts();
                        } else {
                            self.task_nodes_joined.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Message::Bye => {
                self.log
                    .info(format!("{} is leaving", String::from_utf8_lossy(&route)));
                self.routing.leaving(&route);
                if let Some(gate) = &mut self.gate {
                    gate.forget(&route);
                }
            }
            Message::Progress(event) => {
                if let Some(client) = self
                    .jobs
                    .get(&job)
                    .filter(|j| j.progress)
                    .map(|j| j.client.clone())
                {
                    let progress = Envelope::new(job, Message::Progress(event), Body::Empty);
                    self.send_client(&client, progress);
                }
            }
            Message::Chart { stage, chart } => self.chart(JobChart { job, stage, chart }),
            // A plot node confirms the charts it drew (or ones an earlier
            // relay sent it).
            Message::Done(_) if self.charts.confirmed(&id) || self.is_plot_node(&route) => {}
            Message::Done(done) => {
                let env = Envelope::with_id(id, job, Message::Done(Done::default()), body);
                if let Some((job, stage)) = self.answered(&id) {
                    // The work sent decides which job and stage an answer
                    // is for, not what the answer says.
                    let checked = match &env.body {
                        Body::Parts(_) => {
                            Err("it holds several tables where one belongs".to_string())
                        }
                        body => body.check_frames().map_err(|e| e.to_string()),
                    };
                    if let Err(why) = checked {
                        let at = self.stage_tasks(job, stage);
                        return self.fail_job(
                            job,
                            at,
                            format!("a task node answered with a malformed table: {why}"),
                        );
                    }
                    if let Some(why) = self.foreign_refs(&route, &env) {
                        let at = self.stage_tasks(job, stage);
                        self.log.warn(format!(
                            "node {} answered job {job} wrongly: {why}",
                            String::from_utf8_lossy(&route)
                        ));
                        return self.fail_job(
                            job,
                            at,
                            format!("a task node answered with a table it cannot have made: {why}"),
                        );
                    }
                    self.stage_done(id, job, stage, done.partial, env.body);
                } else {
                    // Another node answered it first, or its job ended.
                    self.log
                        .info(format!("late answer {id} for job {job} dropped"));
                    self.release(env);
                }
            }
            Message::Failed(failure) => {
                let Some((job, _)) = self.answered(&id) else {
                    // Another node did this work already: its answer
                    // stands (and this one may have failed only because
                    // the input was released after it).
                    return self
                        .log
                        .debug(|| format!("late failure {id} for job {job} ignored"));
                };
                self.fail_job(
                    job,
                    failure.stage.zip(failure.task.clone()),
                    failure.message,
                );
            }
            other => self.log.warn(format!(
                "ignored a {:?} message from node {}",
                other.kind(),
                String::from_utf8_lossy(&route)
            )),
        }
    }

    /// Copies a chart to every plot node, and to the job's client when it
    /// asked for charts.
    fn chart(&mut self, chart: JobChart) {
        if let Some(client) = self
            .jobs
            .get(&chart.job)
            .filter(|j| j.charts)
            .map(|j| j.client.clone())
        {
            self.send_client(&client, chart.envelope());
        }
        self.post_chart(chart);
    }

    /// Sends a chart to every plot node, each copy kept until its node
    /// confirms it. When no plot node takes it (the one there was is gone,
    /// and its replacement has not joined yet), the chart waits for the
    /// next plot node to join, and the job's client is told.
    fn post_chart(&mut self, chart: JobChart) {
        if self.send_to_plot_nodes(&chart) {
            return;
        }
        let job = chart.job;
        if !self.plot_node_seen {
            return self
                .log
                .debug(|| format!("job {job}: a chart, and no plot node to draw it"));
        }
        let name = chart_name(&chart);
        self.log.info(format!(
            "job {job}: chart `{name}` waits for a plot node (none is connected)"
        ));
        self.tell_about_chart(
            &chart,
            format!(
                "chart `{name}` is not on the plot page yet: no plot node is connected (the last one stopped); it is drawn when one joins, within {} s",
                charts::PATIENCE.as_secs()
            ),
        );
        self.keep_for_plot_node(chart);
    }

    /// Keeps a chart until a plot node joins; the oldest waiting charts go
    /// when they weigh too much.
    fn keep_for_plot_node(&mut self, chart: JobChart) {
        for dropped in self.charts.wait(chart, Instant::now()) {
            self.chart_dropped(
                &dropped,
                format!(
                    "no plot node took it, and newer charts waiting for one hold {} MiB",
                    charts::WAITING_BYTES >> 20
                ),
            );
        }
    }

    /// Tells the client of a chart's job, when it follows progress, what
    /// became of the chart.
    fn tell_about_chart(&mut self, chart: &JobChart, message: String) {
        let job = chart.job;
        let Some(client) = self
            .jobs
            .get(&job)
            .filter(|j| j.progress)
            .map(|j| j.client.clone())
        else {
            return;
        };
        let event = ProgressEvent {
            stage: chart.stage,
            task: "simple_plot".into(),
            ms: None,
            message: Some(message),
        };
        self.send_client(
            &client,
            Envelope::new(job, Message::Progress(event), Body::Empty),
        );
    }

    /// Logs a chart no plot node will draw, and tells its client.
    fn chart_dropped(&mut self, chart: &JobChart, why: String) {
        let name = chart_name(chart).to_string();
        self.log
            .warn(format!("job {}: chart `{name}` dropped: {why}", chart.job));
        self.tell_about_chart(
            chart,
            format!("chart `{name}` will not be on the plot page: {why}"),
        );
    }

    /// Sends a chart to every plot node; false when none took it. A plot
    /// node whose connection is gone is dropped at once.
    fn send_to_plot_nodes(&mut self, chart: &JobChart) -> bool {
        let mut taken = false;
        for node in self.routing.plot_nodes() {
            let copy = chart.envelope();
            let id = copy.id;
            match self.nodes.send_now_to(&node, copy) {
                Ok(()) => {
                    self.charts.sent(id, &node, chart.clone());
                    taken = true;
                }
                Err(zmq::Error::EHOSTUNREACH) => {
                    if let Some(lost) = self.routing.drop_node(&node) {
                        self.node_lost(lost, "has gone (its connection closed)");
                    }
                }
                Err(e) => self.log.warn(format!(
                    "job {}: could not pass a chart to plot node {}: {e}",
                    chart.job,
                    String::from_utf8_lossy(&node)
                )),
            }
        }
        taken
    }

    /// Passes the charts that wait to the plot nodes, if there are any now;
    /// charts that waited too long are dropped, and the log says so.
    fn pass_waiting_charts(&mut self) {
        if !self.charts.is_waiting() {
            return;
        }
        let (fresh, stale) = self.charts.take_waiting(Instant::now());
        for chart in stale {
            self.chart_dropped(
                &chart,
                format!(
                    "no plot node joined within {} s",
                    charts::PATIENCE.as_secs()
                ),
            );
        }
        for chart in fresh {
            if !self.send_to_plot_nodes(&chart) {
                self.keep_for_plot_node(chart);
            }
        }
    }

    fn stage_done(&mut self, id: Uuid, job_id: Uuid, stage: u32, partial: Vec<Stat>, held: Body) {
        let tables = self.tables();
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return tables.discard(&held);
        };
        match job.flow.done(id, held, partial, &tables) {
            Ok(next) => self.follow(job_id, next),
            Err(held) => {
                tables.discard(&held);
                self.log
                    .warn(format!("job {job_id}: unexpected answer for stage {stage}"));
            }
        }
    }

    /// Sends the job's results to its client, one message each.
    fn finish(&mut self, job_id: Uuid, results: Vec<(u32, Body)>) {
        let Some(job) = self.jobs.remove(&job_id) else {
            let tables = self.tables();
            return results.iter().for_each(|(_, r)| tables.discard(r));
        };
        self.routing.forget_needs(&job_id);
        self.release_plan(job.plan_key.as_ref());
        self.log.profile(|| {
            format!(
                "job {job_id}: {:.3} ms in the relay",
                job.started.elapsed().as_secs_f64() * 1e3
            )
        });
        let by_reference = job.client_cache == Some(self.cache.id());
        let tables = self.tables();
        let mut bodies = Vec::with_capacity(results.len());
        for (stage, body) in results {
            let body = if by_reference {
                Ok(body)
            } else {
                tables.inline(body)
            };
            bodies.push((stage, body));
        }
        let kept: Vec<String> = bodies
            .iter()
            .filter_map(|(_, b)| b.as_ref().ok())
            .flat_map(|b| b.keys().into_owned())
            .collect();
        self.readers.forget_job(job_id);
        self.cache.discard_job(job_id, &kept);
        let count = bodies.len() as u32;
        for (seq, (stage, body)) in bodies.into_iter().enumerate() {
            let body = match body {
                Ok(body) => body,
                Err(e) => {
                    let failure = failure(Some(&job.plan), None, e);
                    return self.reply_failure(&job.client, job_id, failure);
                }
            };
            if !body.keys().is_empty() {
                let unread = self.unread_results.entry(job.client.clone()).or_default();
                if unread.len() >= UNREAD_RESULTS {
                    unread.pop_front();
                }
                unread.push_back(body.keys().into_owned());
            }
            let seq = seq as u32;
            let message = Message::Result { stage, seq, count };
            self.send_client(
                &job.client,
                Envelope::with_id(job_id, job_id, message, body),
            );
        }
    }

    fn fail_job(&mut self, job_id: Uuid, at: Option<(u32, String)>, message: String) {
        if let Some(job) = self.drop_job(job_id) {
            self.log.info(format!("job {job_id} failed: {message}"));
            let failure = failure(Some(&job.plan), at, message);
            self.reply_failure(&job.client, job_id, failure);
        }
    }

    /// Ends a job: its queued work and the tables it holds are released.
    /// Work out on nodes is released when they answer.
    fn drop_job(&mut self, job_id: Uuid) -> Option<Job> {
        for env in self.routing.drop_queued(&job_id) {
            self.release(env);
        }
        self.routing.forget_needs(&job_id);
        let mut job = self.jobs.remove(&job_id)?;
        self.release_plan(job.plan_key.as_ref());
        let tables = self.tables();
        job.flow
            .drain()
            .iter()
            .for_each(|held| tables.discard(held));
        self.readers.forget_job(job_id);
        self.cache.discard_job(job_id, &[]);
        Some(job)
    }

    fn reply_error(
        &mut self,
        client: &[u8],
        job: Uuid,
        at: Option<(u32, String)>,
        message: String,
    ) {
        self.reply_failure(client, job, failure(None, at, message));
    }

    fn reply_failure(&mut self, client: &[u8], job: Uuid, failure: Failure) {
        let error = Envelope::with_id(job, job, Message::Error(failure), Body::Empty);
        self.send_client(client, error);
    }

    /// Sends to a client; what it cannot take now waits in its outbox, in
    /// order, and counts against `relay_memory` until it goes.
    fn send_client(&mut self, client: &[u8], env: Envelope) {
        if let Err(refused) = self.clients.send_to(client, env) {
            self.client_refused(client, refused);
        }
    }

    /// Sends what waits in the clients' outboxes, as far as they take it.
    fn flush_outbox(&mut self) {
        for (client, refused) in self.clients.flush() {
            self.client_refused(&client, refused);
        }
    }

    /// A client's socket refused an answer for good.
    fn client_refused(&mut self, client: &[u8], refused: Refused) {
        if let Some(env) = refused.unsent {
            self.release(*env);
        }
        self.client_gone(client, &refused_why(refused.error));
    }

    /// A client that cannot be answered any more (its connection closed,
    /// or its socket refuses answers): its waiting answers and its running
    /// jobs are dropped, with the tables they hold, and the gate forgets
    /// it. A client that reconnects is a new peer, under a new routing id.
    fn client_gone(&mut self, client: &[u8], why: &str) {
        for refs in self.unread_results.remove(client).into_iter().flatten() {
            self.cache.discard(&refs);
        }
        let answers = self.clients.forget(client);
        let had_answers = !answers.is_empty();
        for env in answers {
            self.release(env);
        }
        let jobs: Vec<Uuid> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.client == client)
            .map(|(id, _)| *id)
            .collect();
        if had_answers || !jobs.is_empty() {
            self.log.info(format!(
                "client {} has gone ({why}); dropped its answers and {} running job(s)",
                peer_name(client),
                jobs.len()
            ));
        } else {
            self.log
                .debug(|| format!("client {} has gone ({why})", peer_name(client)));
        }
        for job in jobs {
            self.drop_job(job);
        }
        if let Some(gate) = &mut self.gate {
            gate.forget(client);
        }
    }

    /// Lets go of the peers whose connection has closed since the last
    /// look: before each message, so that a message can never pass for
    /// one of a peer whose connection is gone (its routing id is free for
    /// anyone to take).
    fn drop_closed_connections(&mut self) {
        for client in self.clients.closed() {
            self.client_gone(&client, "its connection closed");
        }
        for node in self.nodes.closed() {
            if let Some(gate) = &mut self.gate {
                gate.forget(&node);
            }
            if let Some(lost) = self.routing.drop_node(&node) {
                self.node_lost(lost, "has gone (its connection closed)");
            }
        }
    }

    /// Sends again, to another node, an envelope whose node died, its
    /// attempt not spent yet ([`Relay::settle_losses`] decides).
    fn resend(&mut self, id: Uuid, assignment: Assignment, node: &str, how: &str) {
        let job_id = assignment.job;
        if !self.jobs.contains_key(&job_id) {
            if let Some(copy) = assignment.retained {
                self.release(copy);
            }
            return;
        }
        let stage = assignment.stage;
        match assignment.retained {
            Some(copy) => {
                self.log.warn(format!(
                    "job {job_id}: stage {stage} sent again: {node}, which held it, {how}"
                ));
                self.routing.requeue(copy, assignment.attempt);
            }
            None => {
                let at = self.stage_tasks(job_id, stage);
                self.fail_job(
                    job_id,
                    at,
                    format!("the task node running this stage {how}, and the relay kept no copy of its work (envelope {id})"),
                );
            }
        }
    }

    /// Spends an attempt of the work each lost node held, unless another
    /// node not holding that work was lost together with it; a job whose
    /// work used up [`MAX_ATTEMPTS`] fails, naming the stage and its tasks.
    fn settle_losses(&mut self) {
        let now = Instant::now();
        for k in 0..self.losses.len() {
            let loss = &self.losses[k];
            if loss.settled || now.duration_since(loss.at) <= TOGETHER {
                continue;
            }
            let spent: Vec<Uuid> = loss
                .held
                .iter()
                .filter(|id| {
                    !self.losses.iter().any(|other| {
                        other.node != loss.node
                            && other.at.max(loss.at) - other.at.min(loss.at) <= TOGETHER
                            && !other.held.contains(id)
                    })
                })
                .copied()
                .collect();
            let said = loss.said.clone();
            self.losses[k].settled = true;
            for id in spent {
                let Some((attempt, job, stage)) = self.routing.charge(&id) else {
                    continue; // answered since, or its job ended
                };
                if attempt > MAX_ATTEMPTS {
                    let at = self.stage_tasks(job, stage);
                    self.fail_job(
                        job,
                        at,
                        format!(
                            "the task node running this stage died or stopped answering {MAX_ATTEMPTS} times (last: {said}); the work may be what kills it (envelope {id})"
                        ),
                    );
                }
            }
        }
        while self
            .losses
            .front()
            .is_some_and(|l| l.settled && now.duration_since(l.at) > 2 * TOGETHER)
        {
            self.losses.pop_front();
        }
    }

    /// Tells every node the relay is alive; a node whose connection is
    /// gone is dropped at once.
    fn heartbeat_nodes(&mut self) {
        for node in self.routing.node_ids() {
            let beat = Envelope::control(Message::Heartbeat(None));
            match self.nodes.send_now_to(&node, beat) {
                Ok(()) => {}
                Err(zmq::Error::EHOSTUNREACH) => {
                    if let Some(lost) = self.routing.drop_node(&node) {
                        self.node_lost(lost, "has gone (its connection closed)");
                    }
                }
                Err(e) => self.log.debug(|| {
                    format!(
                        "heartbeat to {} not sent: {e}",
                        String::from_utf8_lossy(&node)
                    )
                }),
            }
        }
    }

    fn is_plot_node(&self, node: &[u8]) -> bool {
        self.routing
            .node_info(node)
            .is_some_and(|info| info.service == "plotnode")
    }

    /// Drops the nodes of this host (same host name, same cache) whose
    /// process is gone: a killed node is out of the routing within a tick,
    /// before its heartbeats are missed.
    fn drop_dead_local_nodes(&mut self) {
        let cache = self.cache.id();
        let dead: Vec<NodeId> = self
            .routing
            .nodes()
            .filter(|(_, info)| info.host == self.host && info.cache_id == Some(cache))
            .filter(|(_, info)| !crate::host::process_exists(info.pid))
            .map(|(id, _)| id.clone())
            .collect();
        for node in dead {
            if let Some(lost) = self.routing.drop_node(&node) {
                self.node_lost(lost, "died (its process is gone)");
            }
        }
    }

    fn cache_report(&self) -> CacheReport {
        let (readers, max_readers) = self.cache.readers();
        CacheReport {
            tables: self.cache.table_entries() as u64,
            plans: self.cache.plan_entries() as u64,
            readers: u32::try_from(readers).unwrap_or(u32::MAX),
            max_readers: u32::try_from(max_readers).unwrap_or(u32::MAX),
        }
    }

    /// Drops silent nodes and expired jobs.
    fn tick(&mut self) {
        let now = Instant::now();
        if self.busy_refusals > 0 {
            self.log.info(format!(
                "busy: asked clients to resend {} job(s) later ({} queued, {} jobs running)",
                self.busy_refusals,
                self.routing.queued(),
                self.jobs.len()
            ));
            self.busy_refusals = 0;
        }
        self.notice_stall();
        self.heartbeat_nodes();
        self.drop_dead_local_nodes();
        match self.cache.clear_stale_readers() {
            0 => {}
            n => self.log.info(format!(
                "freed {n} cache reader slot(s) held by processes that died mid-read"
            )),
        }
        rtl_tasks::alloc::release_idle();
        for lost in self.routing.expire(now, self.settings.node_timeout) {
            self.node_lost(lost, "stopped answering");
        }
        self.settle_losses();
        self.pass_waiting_charts();
        // Work nobody can take fails rather than waiting forever.
        if self.routing.has_workers() {
            self.no_workers_since = None;
        } else {
            let since = *self.no_workers_since.get_or_insert(now);
            if now.duration_since(since) > self.settings.node_timeout {
                for (job, stage) in self.routing.queued_jobs() {
                    let at = self.stage_tasks(job, stage);
                    self.fail_job(
                        job,
                        at,
                        format!(
                            "nothing could run this stage: no task node has answered the relay for {} ms (none is connected, or every one is stopped); check `rtl status` and task_workers",
                            self.settings.node_timeout.as_millis()
                        ),
                    );
                }
            }
        }
        self.fail_stranded(now);
        let expired: Vec<(Uuid, String, u64)> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.deadline.is_some_and(|d| d <= now))
            .map(|(id, j)| (*id, j.plan.stage_name(j.flow.stage() as usize), j.lifespan))
            .collect();
        for (id, stage, lifespan) in expired {
            self.fail_job(
                id,
                None,
                format!("the job exceeded its lifespan of {lifespan} ms while at stage {stage}"),
            );
        }
    }
}

impl Relay {
    /// Fails jobs whose queued work needs installed tasks that no node has
    /// had for `node_timeout` (the nodes that had them left): a node that
    /// restarts comes back well within it.
    fn fail_stranded(&mut self, now: Instant) {
        let stranded = self.routing.stranded();
        self.stranded_since
            .retain(|job, _| stranded.iter().any(|(j, _)| j == job));
        for (job, missing) in stranded {
            let since = *self.stranded_since.entry(job).or_insert(now);
            if now.duration_since(since) <= self.settings.node_timeout {
                continue;
            }
            self.stranded_since.remove(&job);
            let names: Vec<String> = missing
                .iter()
                .map(|(name, digest)| {
                    format!("`{name}` (version {})", &digest[..digest.len().min(12)])
                })
                .collect();
            self.fail_job(
                job,
                None,
                format!(
                    "no task node has {} any more: the nodes that had it left, and none came back within {} ms",
                    names.join(", "),
                    self.settings.node_timeout.as_millis()
                ),
            );
        }
    }
}

/// Parsed manifests the relay keeps at most (see `Relay::installed`).
const MANIFESTS: usize = 1024;

/// Why a job is refused: where (a stage and its task), if it is one
/// place, and what is wrong.
type Refusal = (Option<(u32, String)>, String);

/// The installed tasks each stage of `plan` runs, with the version
/// (digest) the job gets, by stage.
fn needs(plan: &Plan, installed: &Installed) -> Vec<Vec<Need>> {
    plan.stages
        .iter()
        .map(|stage| {
            let mut needs: Vec<Need> = Vec::new();
            for call in &stage.tasks {
                if rtl_tasks::lookup(&call.name).is_some() {
                    continue;
                }
                if let Some(m) = installed.get(&call.name) {
                    let need = (m.name.clone(), m.digest.clone());
                    if !needs.contains(&need) {
                        needs.push(need);
                    }
                }
            }
            needs
        })
        .collect()
}

/// A failure at `at` (a stage and its task), named as `plan` names it,
/// with the field a task's message names in its prefix, as `rtl check`
/// gives it.
fn failure(plan: Option<&Plan>, at: Option<(u32, String)>, message: String) -> Failure {
    let (stage, task) = at.map_or((None, None), |(s, t)| (Some(s), Some(t)));
    let task = task.filter(|t| !t.is_empty());
    let (field, message) = match task {
        Some(_) => rtl_tasks::field_of(&message),
        None => (None, message),
    };
    let mut failure = Failure::new(stage, task, message);
    failure.field = field;
    failure.stage_name = stage.zip(plan).map(|(s, plan)| plan.stage_name(s as usize));
    failure
}

/// Why a send to a client failed, in words.
fn refused_why(e: zmq::Error) -> String {
    match e {
        zmq::Error::EHOSTUNREACH => "its connection closed".to_string(),
        e => format!("its socket refused an answer: {e}"),
    }
}

/// Results by reference remembered per client, at most: a client that
/// reads them deletes them itself, so this only bounds the bookkeeping.
const UNREAD_RESULTS: usize = 256;

/// A peer's routing id for the log: as text when it is (nodes name
/// themselves), in hex when libzmq made it up (clients).
fn peer_name(route: &[u8]) -> String {
    if route.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(route).into_owned()
    } else {
        route.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The name of a chart.
fn chart_name(chart: &JobChart) -> &str {
    &chart.chart.name
}

/// The stage a piece of work is for.
fn stage_of(env: &Envelope) -> u32 {
    match &env.message {
        Message::Work(work) => work.stage,
        _ => 0,
    }
}
