//! The relay: takes jobs from clients, sends each stage to a task node with
//! room, carries each stage's result on to the next stage and the last one
//! back to the client that asked.
//!
//! Two ROUTER sockets: clients on one, task and plot nodes on the other.
//! The routing bookkeeping lives in [`Routing`]; this module owns the jobs,
//! the sockets and the plan cache, and turns messages into routing calls.

use crate::cache::Cache;
use crate::chunking::{segments, split, Assembly, Segment};
use crate::log::Log;
use crate::routing::{NodeId, Routing};
use crate::wire::{Body, Envelope, Failure, Header, Kind, StatusReport, WireError};
use rtl_dsl::Plan;
use rtl_tasks::Table;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How often nodes heartbeat, and how long the relay waits for one.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
pub const NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most messages taken from one socket before looking at the other.
const BATCH: usize = 256;

/// Where the relay listens.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub clients: String,
    pub nodes: String,
}

struct Job {
    client: Vec<u8>,
    plan: Arc<Plan>,
    plan_key: Option<String>,
    stage: usize,
    progress: bool,
    lifespan: u64,
    deadline: Option<Instant>,
    client_cache: Option<Uuid>,
    started: Instant,
    /// The current stage's segments when it runs in pieces (empty: the
    /// whole stage goes as one envelope), and which one is running.
    segments: Vec<Segment>,
    segment: usize,
    /// Chunk results of the running segment, when it went out in chunks.
    assembly: Option<Assembly>,
}

pub struct Relay {
    clients: zmq::Socket,
    nodes: zmq::Socket,
    routing: Routing,
    jobs: HashMap<Uuid, Job>,
    stored_plans: HashSet<String>,
    cache: Cache,
    log: Log,
    started: Instant,
    /// Since when no node takes stage work, if none does.
    no_workers_since: Option<Instant>,
    /// Largest chunk in rows, when chunking is on.
    chunk_rows: Option<usize>,
}

impl Relay {
    /// Binds both sockets.
    pub fn bind(
        ctx: &zmq::Context,
        at: &Endpoints,
        cache: Cache,
        log: Log,
        chunk_rows: Option<usize>,
    ) -> Result<Relay, String> {
        let socket = |endpoint: &str, what: &str| -> Result<zmq::Socket, String> {
            let s = ctx
                .socket(zmq::ROUTER)
                .map_err(|e| format!("cannot create the {what} socket: {e}"))?;
            // Fail loudly on a vanished peer instead of dropping silently.
            s.set_router_mandatory(true)
                .and_then(|_| s.set_linger(0))
                .map_err(|e| format!("cannot configure the {what} socket: {e}"))?;
            s.bind(endpoint)
                .map_err(|e| format!("cannot bind the {what} socket to {endpoint}: {e}"))?;
            Ok(s)
        };
        Ok(Relay {
            clients: socket(&at.clients, "client")?,
            nodes: socket(&at.nodes, "node")?,
            routing: Routing::new(),
            jobs: HashMap::new(),
            stored_plans: HashSet::new(),
            cache,
            log,
            started: Instant::now(),
            no_workers_since: Some(Instant::now()),
            chunk_rows,
        })
    }

    /// Serves until `stop` is set.
    pub fn run(mut self, stop: &AtomicBool) {
        self.log
            .info(format!("relay up; cache {}", self.cache.path().display()));
        let mut next_tick = Instant::now() + HEARTBEAT;
        while !stop.load(Ordering::Relaxed) {
            let wait = next_tick
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200));
            let (clients_ready, nodes_ready) = {
                let mut items = [
                    self.clients.as_poll_item(zmq::POLLIN),
                    self.nodes.as_poll_item(zmq::POLLIN),
                ];
                match zmq::poll(&mut items, wait.as_millis() as i64) {
                    Ok(_) => (items[0].is_readable(), items[1].is_readable()),
                    Err(zmq::Error::EINTR) => continue,
                    Err(e) => {
                        self.log.error(format!("poll failed: {e}"));
                        break;
                    }
                }
            };
            if nodes_ready {
                for _ in 0..BATCH {
                    match Envelope::recv(&self.nodes, true, zmq::DONTWAIT) {
                        Ok((Some(route), env)) => self.on_node(route, env),
                        Ok((None, _)) => {}
                        Err(WireError::Zmq(zmq::Error::EAGAIN)) => break,
                        Err(e) => self.log.warn(format!("dropped a message from a node: {e}")),
                    }
                }
            }
            if clients_ready {
                for _ in 0..BATCH {
                    match Envelope::recv(&self.clients, true, zmq::DONTWAIT) {
                        Ok((Some(route), env)) => self.on_client(route, env),
                        Ok((None, _)) => {}
                        Err(WireError::Zmq(zmq::Error::EAGAIN)) => break,
                        Err(WireError::Malformed {
                            route: Some(route),
                            reason,
                        }) => {
                            self.log
                                .warn(format!("refused a malformed client message: {reason}"));
                            self.reply_error(
                                &route,
                                Uuid::nil(),
                                None,
                                format!("malformed message: {reason}"),
                            );
                        }
                        Err(e) => self.log.warn(format!("dropped a client message: {e}")),
                    }
                }
            }
            self.dispatch();
            if Instant::now() >= next_tick {
                self.tick();
                next_tick = Instant::now() + HEARTBEAT;
            }
        }
        self.log.info("relay stopping");
    }

    fn on_client(&mut self, route: Vec<u8>, mut env: Envelope) {
        match env.header.kind {
            Kind::Ping => {
                let pong = Envelope {
                    id: env.id,
                    header: Header::new(Kind::Pong, env.header.job),
                    body: Body::Empty,
                };
                self.send_client(&route, pong);
            }
            Kind::Status => {
                let mut header = Header::new(Kind::StatusReply, env.header.job);
                header.status = Some(StatusReport {
                    pid: std::process::id(),
                    uptime_ms: self.started.elapsed().as_millis() as u64,
                    envelopes: self.routing.dispatched(),
                    jobs_running: self.jobs.len() as u64,
                    queued: self.routing.queued() as u64,
                    nodes: self.routing.report(Instant::now()),
                });
                self.send_client(
                    &route,
                    Envelope {
                        id: env.id,
                        header,
                        body: Body::Empty,
                    },
                );
            }
            Kind::Submit => self.submit(route, &mut env),
            other => self.reply_error(
                &route,
                env.header.job,
                None,
                format!("a client cannot send {other:?} messages"),
            ),
        }
    }

    fn submit(&mut self, route: Vec<u8>, env: &mut Envelope) {
        let job_id = env.id;
        let Some(plan) = env.header.plan.take() else {
            return self.reply_error(
                &route,
                job_id,
                None,
                "the submit message carries no plan".into(),
            );
        };
        if self.jobs.contains_key(&job_id) {
            return self.reply_error(
                &route,
                job_id,
                None,
                "a job with this id is already running".into(),
            );
        }
        // Clients check jobs before sending them; one that did not still
        // gets nothing past the relay that cannot decode.
        if let Some(p) = rtl_tasks::check_calls(&plan).into_iter().next() {
            let stage = p.stage.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0);
            let message = match &p.field {
                Some(field) => format!("field {field}: {}", p.message),
                None => p.message,
            };
            return self.reply_error(&route, job_id, p.task.map(|t| (stage, t)), message);
        }
        let plan_key = self.store_plan(&plan);
        let lifespan = env.header.lifespan;
        self.log
            .debug(|| format!("job {job_id}: {} stage(s) from a client", plan.stages.len()));
        self.jobs.insert(
            job_id,
            Job {
                client: route,
                plan: Arc::new(plan),
                plan_key,
                stage: 0,
                progress: env.header.progress,
                lifespan,
                deadline: (lifespan > 0).then(|| Instant::now() + Duration::from_millis(lifespan)),
                client_cache: env.header.cache_id,
                started: Instant::now(),
                segments: Vec::new(),
                segment: 0,
                assembly: None,
            },
        );
        let body = std::mem::replace(&mut env.body, Body::Empty);
        let table_header = env.header.clone();
        self.enqueue_stage(job_id, &table_header, body);
    }

    /// Puts the plan in the shared cache once; nodes that share the cache
    /// then get only its key.
    fn store_plan(&mut self, plan: &Plan) -> Option<String> {
        let mut bytes = Vec::new();
        ciborium::into_writer(plan, &mut bytes).ok()?;
        let digest = digest(&bytes);
        let key = format!("plan:{digest}");
        if self.stored_plans.contains(&key) {
            return Some(key);
        }
        match self.cache.put_plan(&digest, &bytes) {
            Ok(key) => {
                self.stored_plans.insert(key.clone());
                Some(key)
            }
            Err(e) => {
                self.log.warn(format!("plans go inline: {e}"));
                None
            }
        }
    }

    /// Queues the job's current stage with `body` as its input table: as
    /// one envelope, or in segments when chunking applies to its rows.
    fn enqueue_stage(&mut self, job_id: Uuid, table: &Header, body: Body) {
        let rows = rows_of(table, &body);
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return;
        };
        job.segment = 0;
        job.assembly = None;
        job.segments = match self.chunk_rows {
            Some(n) if rows > n => {
                let segments = segments(&job.plan.stages[job.stage]);
                if segments.iter().any(|s| s.row_local) {
                    segments
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        };
        if job.segments.is_empty() {
            self.enqueue_work(job_id, table, body, None, 0, 1);
        } else {
            self.enqueue_segment(job_id, table, body);
        }
    }

    /// Queues the job's current segment: in chunks when it is row-local and
    /// its input is larger than a chunk.
    fn enqueue_segment(&mut self, job_id: Uuid, table: &Header, body: Body) {
        let rows = rows_of(table, &body);
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return;
        };
        let segment = job.segments[job.segment];
        let tasks = Some((segment.start, segment.end));
        let chunk = self.chunk_rows.filter(|n| segment.row_local && rows > *n);
        let Some(chunk) = chunk else {
            job.assembly = None;
            return self.enqueue_work(job_id, table, body, tasks, 0, 1);
        };
        let whole = match self.table_of(table, body) {
            Ok(whole) => whole,
            Err(e) => {
                return self.fail_job(job_id, None, format!("cannot split the stage's table: {e}"))
            }
        };
        let parts = split(&whole, chunk);
        drop(whole);
        let count = parts.len();
        if let Some(job) = self.jobs.get_mut(&job_id) {
            job.assembly = Some(Assembly::new(count));
        }
        self.log
            .debug(|| format!("job {job_id}: {rows} rows in {count} chunks"));
        for (seq, part) in parts.into_iter().enumerate() {
            self.enqueue_work(
                job_id,
                table,
                Body::Table(part),
                tasks,
                seq as u32,
                count as u32,
            );
        }
    }

    /// Queues one work envelope for the job's current stage.
    fn enqueue_work(
        &mut self,
        job_id: Uuid,
        table: &Header,
        body: Body,
        tasks: Option<(u32, u32)>,
        seq: u32,
        count: u32,
    ) {
        let Some(job) = self.jobs.get(&job_id) else {
            return;
        };
        let mut header = Header::new(Kind::Work, job_id);
        if !matches!(body, Body::Table(_)) {
            header = header.with_table_of(table);
        }
        header.stage = job.stage as u32;
        header.lifespan = job.lifespan;
        header.progress = job.progress;
        header.plan_key = job.plan_key.clone();
        header.tasks = tasks;
        header.seq = seq;
        header.count = count;
        self.routing.enqueue(Envelope::new(header, body));
    }

    /// The table a header and body carry, decoded (taken from the cache
    /// when it travels by reference).
    fn table_of(&self, header: &Header, body: Body) -> Result<Table, String> {
        if let Some(key) = &header.table_ref {
            return self.cache.take_table(key);
        }
        match body {
            Body::Table(t) => Ok(t),
            body => Envelope {
                id: Uuid::nil(),
                header: header.clone(),
                body,
            }
            .take_table(),
        }
    }

    /// Sends queued work to nodes with room.
    fn dispatch(&mut self) {
        while let Some((node, mut env)) = self.routing.next_dispatch() {
            let shares_cache = self
                .routing
                .node_info(&node)
                .is_some_and(|info| info.cache_id == Some(self.cache.id()));
            if !shares_cache || env.header.plan_key.is_none() {
                env.header.plan = self.jobs.get(&env.header.job).map(|j| (*j.plan).clone());
                env.header.plan_key = None;
            }
            if !shares_cache {
                if let Some(key) = env.header.table_ref.take() {
                    match self.cache.take_table(&key) {
                        Ok(table) => env.body = Body::Table(table),
                        Err(e) => {
                            let job = env.header.job;
                            self.routing.answered(&env.id);
                            self.fail_job(job, None, e);
                            continue;
                        }
                    }
                }
            }
            let (job, id) = (env.header.job, env.id);
            self.log.debug(|| {
                format!(
                    "job {job}: stage {} to {}",
                    env.header.stage,
                    String::from_utf8_lossy(&node)
                )
            });
            if let Err(e) = env.send_now(&mut self.nodes, Some(&node)) {
                self.routing.answered(&id);
                self.fail_job(
                    job,
                    None,
                    format!("could not send work to a task node: {e}"),
                );
            }
        }
    }

    fn on_node(&mut self, route: NodeId, mut env: Envelope) {
        match env.header.kind {
            Kind::Heartbeat => {
                if let Some(info) = env.header.node.take() {
                    let (service, pid, host) = (info.service.clone(), info.pid, info.host.clone());
                    if self.routing.heard_from(&route, info, Instant::now()) {
                        self.log.info(format!(
                            "{service} {} joined (pid {pid} on {host})",
                            String::from_utf8_lossy(&route)
                        ));
                    }
                }
            }
            Kind::Bye => {
                self.log
                    .info(format!("{} is leaving", String::from_utf8_lossy(&route)));
                self.routing.leaving(&route);
            }
            Kind::Progress => {
                if let Some(job) = self.jobs.get(&env.header.job).filter(|j| j.progress) {
                    let client = job.client.clone();
                    let header = Header {
                        event: env.header.event.take(),
                        ..Header::new(Kind::Progress, env.header.job)
                    };
                    self.send_client(&client, Envelope::new(header, Body::Empty));
                }
            }
            Kind::Done => {
                if self.routing.answered(&env.id).is_none() {
                    self.log
                        .warn(format!("late answer {} for job {}", env.id, env.header.job));
                }
                self.stage_done(env);
            }
            Kind::Failed => {
                self.routing.answered(&env.id);
                let failure = env.header.error.take().unwrap_or(Failure {
                    stage: Some(env.header.stage),
                    task: None,
                    message: "the task node reported a failure without a cause".into(),
                });
                let job = env.header.job;
                self.fail_job(
                    job,
                    failure.stage.zip(failure.task.clone()),
                    failure.message,
                );
            }
            other => self.log.warn(format!(
                "ignored a {other:?} message from node {}",
                String::from_utf8_lossy(&route)
            )),
        }
    }

    fn stage_done(&mut self, mut env: Envelope) {
        let job_id = env.header.job;
        let Some(job) = self.jobs.get_mut(&job_id) else {
            if let Some(key) = &env.header.table_ref {
                self.cache.discard(key);
            }
            return;
        };
        if env.header.stage as usize != job.stage {
            self.log.warn(format!(
                "job {job_id}: unexpected answer for stage {}",
                env.header.stage
            ));
            return;
        }
        let mut body = std::mem::replace(&mut env.body, Body::Empty);
        if job.assembly.is_some() {
            let part = match self.table_of(&env.header, body) {
                Ok(part) => part,
                Err(e) => {
                    return self.fail_job(
                        job_id,
                        None,
                        format!("chunk {} came back unreadable: {e}", env.header.seq),
                    )
                }
            };
            let Some(job) = self.jobs.get_mut(&job_id) else {
                return;
            };
            let done = job
                .assembly
                .as_mut()
                .and_then(|a| a.put(env.header.seq as usize, part));
            match done {
                None => return, // more chunks to come
                Some(Err(e)) => {
                    return self.fail_job(
                        job_id,
                        None,
                        format!("cannot reassemble the chunks: {e}"),
                    )
                }
                Some(Ok(whole)) => {
                    env.header.table_ref = None;
                    env.header.rows = whole.rows() as u64;
                    body = Body::Table(whole);
                }
            }
        }
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return;
        };
        job.assembly = None;
        if job.segment + 1 < job.segments.len() {
            job.segment += 1;
            return self.enqueue_segment(job_id, &env.header, body);
        }
        job.stage += 1;
        if job.stage < job.plan.stages.len() {
            return self.enqueue_stage(job_id, &env.header, body);
        }
        let Some(job) = self.jobs.remove(&job_id) else {
            return;
        };
        self.log.profile(|| {
            format!(
                "job {job_id}: {:.3} ms in the relay",
                job.started.elapsed().as_secs_f64() * 1e3
            )
        });
        let mut header = Header::new(Kind::Result, job_id);
        if !matches!(body, Body::Table(_)) {
            header = header.with_table_of(&env.header);
        }
        header.stage = env.header.stage;
        if let Some(key) = header.table_ref.clone() {
            if job.client_cache != Some(self.cache.id()) {
                header.table_ref = None;
                body = match self.cache.take_table(&key) {
                    Ok(table) => Body::Table(table),
                    Err(e) => return self.reply_error(&job.client, job_id, None, e),
                };
            }
        }
        self.send_client(
            &job.client,
            Envelope {
                id: job_id,
                header,
                body,
            },
        );
    }

    fn fail_job(&mut self, job_id: Uuid, at: Option<(u32, String)>, message: String) {
        for env in self.routing.drop_queued(&job_id) {
            if let Some(key) = env.header.table_ref {
                self.cache.discard(&key);
            }
        }
        if let Some(job) = self.jobs.remove(&job_id) {
            self.log.info(format!("job {job_id} failed: {message}"));
            self.reply_error(&job.client, job_id, at, message);
        }
    }

    fn reply_error(
        &mut self,
        client: &[u8],
        job: Uuid,
        at: Option<(u32, String)>,
        message: String,
    ) {
        let mut header = Header::new(Kind::Error, job);
        let (stage, task) = at.map_or((None, None), |(s, t)| (Some(s), Some(t)));
        header.error = Some(Failure {
            stage,
            task,
            message,
        });
        self.send_client(
            client,
            Envelope {
                id: job,
                header,
                body: Body::Empty,
            },
        );
    }

    fn send_client(&mut self, client: &[u8], env: Envelope) {
        if let Err(e) = env.send_now(&mut self.clients, Some(client)) {
            self.log
                .warn(format!("could not answer a client ({e}); it has gone"));
        }
    }

    /// Drops silent nodes and expired jobs.
    fn tick(&mut self) {
        let now = Instant::now();
        for lost in self.routing.expire(now, NODE_TIMEOUT) {
            self.log.warn(format!(
                "{} {} (pid {} on {}) stopped answering",
                lost.info.service,
                String::from_utf8_lossy(&lost.node),
                lost.info.pid,
                lost.info.host
            ));
            for (_, assignment) in lost.envelopes {
                let task = self.jobs.get(&assignment.job).map(|j| {
                    j.plan.stages[assignment.stage as usize]
                        .tasks
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                });
                self.fail_job(
                    assignment.job,
                    task.map(|t| (assignment.stage, t)),
                    format!(
                        "task node {} (pid {}) stopped answering while running this stage",
                        String::from_utf8_lossy(&lost.node),
                        lost.info.pid
                    ),
                );
            }
        }
        // Work nobody can take fails rather than waiting forever.
        if self.routing.has_workers() {
            self.no_workers_since = None;
        } else {
            let since = *self.no_workers_since.get_or_insert(now);
            if now.duration_since(since) > NODE_TIMEOUT {
                for job in self.routing.queued_jobs() {
                    self.fail_job(
                        job,
                        None,
                        format!(
                            "no task node has been connected to the relay for {} s; check `rtl status` and task_workers",
                            NODE_TIMEOUT.as_secs()
                        ),
                    );
                }
            }
        }
        let expired: Vec<(Uuid, usize, u64)> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.deadline.is_some_and(|d| d <= now))
            .map(|(id, j)| (*id, j.stage, j.lifespan))
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

/// Rows of the table a header and body carry.
fn rows_of(header: &Header, body: &Body) -> usize {
    match body {
        Body::Table(t) => t.rows(),
        _ => usize::try_from(header.rows).unwrap_or(usize::MAX),
    }
}

/// FNV-1a over the plan bytes, with their length: a key for identical plans.
fn digest(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}-{}", bytes.len())
}
