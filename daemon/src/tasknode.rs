//! A task node: takes work envelopes from the relay, runs the stage's tasks
//! on the table and answers with the result or with an error naming the
//! stage and the task.
//!
//! Two threads. The socket thread owns the DEALER connected to the relay:
//! it announces the node's capacity in a heartbeat every second, queues
//! work, hands it to the worker one envelope at a time and forwards the
//! worker's answers. The worker runs tasks, so a long task never silences
//! the heartbeat. A task that never ends (a write into a FIFO nobody
//! reads, a hung network file system) would hold the node forever: after
//! `task_timeout_ms` the socket thread fails that envelope, leaves the
//! thread to its fate and starts a fresh worker.
//!
//! Quick work is the exception: a small table sent inline through tasks
//! that touch no file is done in microseconds, less than the two thread
//! wakeups of the handoff cost, so the socket thread runs it itself.

use crate::DaemonError;
use rtl_cache::Cache;
use rtl_config::Config;
use rtl_dsl::{Plan, TaskCall};
use rtl_log::{timestamp, Log};
use rtl_tasks::installed::{write_helper, Limits};
use rtl_tasks::{Context, Event, Input, Installed, Programs, Table, TaskError};
use rtl_wire::auth::Secret;
use rtl_wire::link::{hostname, RelayLink};
use rtl_wire::{
    Body, Done, Envelope, Failure, InstalledTask, Message, NodeInfo, PlanRef, ProgressEvent,
    WireError, Work as WorkMessage,
};
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use uuid::Uuid;

/// Settings of one task node.
pub struct TaskNodeConfig {
    /// The relay's node endpoint.
    pub relay: String,
    /// Envelopes accepted before answering any.
    pub capacity: u32,
    /// The shared cache, when this node has one.
    pub cache: Option<Cache>,
    /// Results at least this large go back through the cache.
    pub by_reference_bytes: usize,
    /// File tasks stay under this folder too, when set.
    pub data_root: Option<PathBuf>,
    /// How often to tell the relay this node is alive.
    pub heartbeat: Duration,
    /// How long the relay may stay silent before the node reconnects.
    pub relay_timeout: Duration,
    /// The cluster secret, when the relay asks for it.
    pub secret: Option<Secret>,
    /// Work still running after this long is failed; `None` waits forever.
    pub task_timeout: Option<Duration>,
    /// Folders of installed tasks, read when the node starts.
    pub task_dirs: Vec<PathBuf>,
    /// What installed tasks' programs run under.
    pub limits: Limits,
    /// Largest message part the relay takes (`max_message_bytes`): a
    /// result column larger than that cannot go inline.
    pub max_message_bytes: usize,
}

impl TaskNodeConfig {
    /// Settings for a node that serves `relay`, taken from `config`.
    pub fn new(config: &Config, relay: String, cache: Option<Cache>) -> TaskNodeConfig {
        TaskNodeConfig {
            relay,
            capacity: config.max_in_flight as u32,
            cache,
            by_reference_bytes: config.by_reference_bytes,
            data_root: config.data_root.clone(),
            heartbeat: config.heartbeat(),
            relay_timeout: config.node_timeout(),
            secret: None,
            task_timeout: config.task_timeout(),
            task_dirs: config.task_dirs(),
            limits: program_limits(config),
            max_message_bytes: config.max_message_bytes,
        }
    }
}

/// The limits of installed tasks' programs, from `config`; the Python
/// helper goes under `<home>/python` when a program first needs it.
pub fn program_limits(config: &Config) -> Limits {
    Limits {
        timeout: Duration::from_millis(config.program_timeout_ms),
        memory_mb: config.program_memory_mb,
        python_path: Some(config.home.join("python")),
        answer_bytes: config.max_message_bytes.max(config.cache_map_size) as u64,
        ..Limits::default()
    }
}

/// Runs a task node until `stop` is set; then it tells the relay it is
/// leaving, finishes the work it holds and returns.
pub fn run(
    ctx: &zmq::Context,
    settings: TaskNodeConfig,
    log: Log,
    stop: &AtomicBool,
) -> Result<(), DaemonError> {
    let mut link = RelayLink::connect(
        ctx,
        "tasknode",
        &settings.relay,
        settings.heartbeat,
        settings.relay_timeout,
        settings.secret.clone(),
    )?;
    let id = link.id.clone();
    let (installed, bad) = Installed::load_to_run(&settings.task_dirs);
    for problem in bad {
        log.error(format!("{problem}; the node starts without that task"));
    }
    let mut limits = settings.limits.clone();
    if !installed.is_empty() {
        if let Some(folder) = limits.python_path.take() {
            match write_helper(&folder) {
                Ok(folder) => limits.python_path = Some(folder),
                Err(e) => log.warn(format!(
                    "cannot write the Python helper rtl_task.py into {}: {e}",
                    folder.display()
                )),
            }
        }
    }
    let tools = Tools {
        cache: settings.cache.clone(),
        by_reference: settings.by_reference_bytes,
        data_root: settings.data_root.clone(),
        installed: installed.clone(),
        limits,
        max_message_bytes: settings.max_message_bytes,
    };
    let mut worker = Worker::start(&id, &tools, &log)?;
    let mut waiting: VecDeque<Work> = VecDeque::new();

    let mut info = NodeInfo {
        service: "tasknode".into(),
        pid: std::process::id(),
        host: hostname(),
        capacity: settings.capacity,
        cache_id: settings.cache.as_ref().map(Cache::id),
        envelopes: 0,
        tasks: installed
            .iter()
            .map(|m| InstalledTask {
                name: m.name.clone(),
                digest: m.digest.clone(),
                manifest: m.text.clone(),
            })
            .collect(),
    };
    if !info.tasks.is_empty() {
        let names: Vec<&str> = info.tasks.iter().map(|t| t.name.as_str()).collect();
        log.info(format!("installed tasks: {}", names.join(", ")));
    }
    log.info(format!("task node {id} connecting to {}", settings.relay));
    let mut leaving = false;
    let mut plans = Plans::new();
    loop {
        if stop.load(Ordering::Relaxed) && !leaving {
            leaving = true;
            info.capacity = 0;
            link.send(Envelope::control(Message::Bye), &log);
            log.info(format!(
                "task node {id} leaving; finishing {} envelope(s)",
                waiting.len() + usize::from(worker.busy.is_some())
            ));
        }
        if leaving && waiting.is_empty() && worker.busy.is_none() {
            break;
        }
        if let Some(limit) = settings.task_timeout {
            if let Some(busy) = worker.stuck(limit) {
                // The thread cannot be stopped; it is left to finish (or
                // never) on its own, and a fresh one takes the next work.
                log.error(format!(
                    "job {} stage {}: {} still running after {} ms; failing it and starting a fresh worker",
                    busy.job,
                    busy.stage,
                    busy.tasks,
                    limit.as_millis()
                ));
                link.answer(busy.timed_out(limit), &log, &mut |refs| {
                    discard(tools.cache.as_ref(), refs)
                });
                info.envelopes += 1;
                worker = Worker::start(&id, &tools, &log)?;
            }
        }
        if worker.busy.is_none() {
            if let Some(work) = waiting.pop_front() {
                worker.give(work);
            }
        }
        if link.heartbeat_if_due(&info, &log) {
            // Once a second is often enough to hand back the column memory
            // kept after a burst of work.
            rtl_tasks::alloc::release_idle();
        }
        let wait = link.until_heartbeat().min(Duration::from_millis(200));
        let (from_relay, from_worker) = {
            let mut items = [
                link.connection.socket().as_poll_item(link.poll_events()),
                zmq::PollItem::from_fd(worker.bell.as_raw_fd(), zmq::POLLIN),
            ];
            match zmq::poll(&mut items, wait.as_millis() as i64) {
                Ok(_) => (items[0].is_readable(), items[1].is_readable()),
                Err(zmq::Error::EINTR) => continue,
                Err(e) => return Err(WireError::socket("poll the relay's socket")(e).into()),
            }
        };
        link.flush(&log, &mut |refs| discard(tools.cache.as_ref(), refs));
        if from_worker {
            for env in worker.answers() {
                if is_answer(&env) {
                    info.envelopes += 1;
                }
                link.answer(env, &log, &mut |refs| discard(tools.cache.as_ref(), refs));
            }
        }
        if from_relay {
            while let Some(env) = link.next_message(&log) {
                let Envelope {
                    id,
                    job,
                    message,
                    body,
                } = env;
                match message {
                    Message::Work(spec) if !leaving => {
                        let plan = plans.of(&spec.plan, tools.cache.as_ref());
                        let work = Work {
                            id,
                            job,
                            spec,
                            input: body,
                            plan,
                        };
                        if work.is_quick() {
                            let answer =
                                serve(work, &tools, None, &log, &mut |e| link.send(e, &log));
                            info.envelopes += 1;
                            link.answer(answer, &log, &mut |refs| {
                                discard(tools.cache.as_ref(), refs)
                            });
                        } else {
                            waiting.push_back(work);
                        }
                    }
                    Message::Work(_) => {
                        log.warn("work arrived while leaving; the relay will see it unanswered")
                    }
                    other => log.warn(format!(
                        "ignored a {:?} message from the relay",
                        other.kind()
                    )),
                }
            }
        }
    }
    worker.finish()?;
    log.info(format!(
        "task node {id} stopped after {} envelope(s)",
        info.envelopes
    ));
    Ok(())
}

/// The thread that runs tasks, as the socket thread sees it. It gets one
/// envelope at a time, so the node always knows what it is running and
/// since when.
struct Worker {
    work: mpsc::Sender<Work>,
    answers: mpsc::Receiver<Envelope>,
    /// Readable when `answers` has something, so the socket thread can
    /// poll it beside the relay's socket. The worker holds no ZeroMQ
    /// socket: one stuck in a task would keep the context from closing.
    bell: UnixStream,
    thread: std::thread::JoinHandle<()>,
    busy: Option<Busy>,
}

/// The work a worker runs now.
struct Busy {
    since: Instant,
    id: Uuid,
    job: Uuid,
    stage: u32,
    /// The tasks it runs, for messages.
    tasks: String,
}

impl Busy {
    /// The failure sent for work that ran past `limit`.
    fn timed_out(&self, limit: Duration) -> Envelope {
        let failure = Failure::new(
            Some(self.stage),
            Some(self.tasks.clone()),
            format!(
                "did not finish within {} ms (task_timeout_ms); raise task_timeout_ms in rtl.toml if it needs longer, or 0 for no limit",
                limit.as_millis()
            ),
        );
        Envelope::with_id(self.id, self.job, Message::Failed(failure), Body::Empty)
    }
}

impl Worker {
    fn start(node: &str, tools: &Tools, log: &Log) -> Result<Worker, DaemonError> {
        let (work, work_rx) = mpsc::channel::<Work>();
        let (answer_tx, answers) = mpsc::channel::<Envelope>();
        let (bell, ringer) =
            UnixStream::pair().map_err(DaemonError::system("create the worker's bell"))?;
        for end in [&bell, &ringer] {
            end.set_nonblocking(true)
                .map_err(DaemonError::system("set up the worker's bell"))?;
        }
        let (tools, log) = (tools.clone(), log.clone());
        let thread = std::thread::Builder::new()
            .name(format!("{node}-worker"))
            .spawn(move || {
                // This thread's own programs, started as its work needs
                // them and stopped when it ends.
                let lines = log.clone();
                let programs = Programs::new(
                    tools.installed.clone(),
                    tools.limits.clone(),
                    Arc::new(move |line: &str| lines.info(format!("task {line}"))),
                );
                let mut ringer = ringer;
                let mut tell = |env: Envelope| {
                    if answer_tx.send(env).is_ok() {
                        // A full bell already rings: losing this byte is fine.
                        let _ = ringer.write(&[1]);
                    }
                };
                for work in work_rx {
                    let answer = serve(work, &tools, Some(&programs), &log, &mut tell);
                    tell(answer);
                }
            })
            .map_err(DaemonError::system("start the worker thread"))?;
        Ok(Worker {
            work,
            answers,
            bell,
            thread,
            busy: None,
        })
    }

    fn give(&mut self, work: Work) {
        let spec = &work.spec;
        let tasks = match &work.plan {
            Ok(plan) => calls_of(plan, spec.stage, spec.tasks).map_or_else(
                |_| "its tasks".to_string(),
                |calls| {
                    let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
                    names.join(", ")
                },
            ),
            Err(_) => "its tasks".to_string(),
        };
        self.busy = Some(Busy {
            since: Instant::now(),
            id: work.id,
            job: work.job,
            stage: spec.stage,
            tasks,
        });
        // The thread only ends when this sender is dropped.
        let _ = self.work.send(work);
    }

    /// What the worker has sent since the last call; its final answer
    /// frees it for the next envelope.
    fn answers(&mut self) -> Vec<Envelope> {
        let mut drained = [0u8; 64];
        while matches!((&self.bell).read(&mut drained), Ok(n) if n > 0) {}
        let answers: Vec<Envelope> = self.answers.try_iter().collect();
        if answers.iter().any(is_answer) {
            self.busy = None;
        }
        answers
    }

    /// The work it has run for longer than `limit`, taken from it.
    fn stuck(&mut self, limit: Duration) -> Option<Busy> {
        if self.busy.as_ref()?.since.elapsed() > limit {
            self.busy.take()
        } else {
            None
        }
    }

    /// Lets the thread end once its work is done, and waits for it.
    fn finish(self) -> Result<(), DaemonError> {
        drop(self.work);
        self.thread
            .join()
            .map_err(|_| DaemonError::Panicked("the worker thread".into()))
    }
}

/// Inline inputs up to this size, through tasks that touch no file, run on
/// the socket thread.
const QUICK_BYTES: usize = 64 << 10;

/// A piece of work and its plan, resolved where it arrived.
struct Work {
    id: Uuid,
    job: Uuid,
    spec: Box<WorkMessage>,
    input: Body,
    plan: Result<Arc<Plan>, String>,
}

impl Work {
    /// Small work that only transforms its inline input: no file to wait
    /// on, and microseconds of arithmetic.
    fn is_quick(&self) -> bool {
        let spec = &self.spec;
        self.input.keys().is_empty()
            && self.input.bytes() <= QUICK_BYTES
            && self.plan.as_ref().is_ok_and(|plan| {
                calls_of(plan, spec.stage, spec.tasks).is_ok_and(|calls| {
                    calls.iter().all(|call| {
                        rtl_tasks::lookup(&call.name)
                            .is_some_and(|t| matches!(t.role, rtl_tasks::Role::Transform))
                    })
                })
            })
    }
}

/// What stages are run with, on either thread.
#[derive(Clone)]
struct Tools {
    cache: Option<Cache>,
    /// Results at least this large go back by reference (with a cache).
    by_reference: usize,
    data_root: Option<PathBuf>,
    installed: Installed,
    limits: Limits,
    max_message_bytes: usize,
}

/// Runs one work envelope and returns the answer to send; progress and
/// charts go to `events` as they happen. Installed tasks run through
/// `programs` (the worker's; quick work has none).
fn serve(
    work: Work,
    tools: &Tools,
    programs: Option<&Programs>,
    log: &Log,
    events: &mut dyn FnMut(Envelope),
) -> Envelope {
    let (started, wall) = (Instant::now(), SystemTime::now());
    let (id, job, stage) = (work.id, work.job, work.spec.stage);
    let piece = (work.spec.seq, work.spec.count, work.spec.tasks);
    let (message, body) = run_work(work, tools, programs, log, events);
    let rows = body.rows();
    // One line per envelope with its start and length, so that the trace
    // shows which pieces ran side by side.
    log.profile(|| {
        let (seq, count, tasks) = piece;
        let tasks = tasks.map_or("all tasks".to_string(), |(a, b)| format!("tasks {a}..{b}"));
        format!(
            "job {job} stage {stage} {tasks} piece {}/{count}: started {}, {:.3} ms, {rows} rows out",
            seq + 1,
            timestamp(wall),
            started.elapsed().as_secs_f64() * 1e3
        )
    });
    Envelope::with_id(id, job, message, body)
}

/// Whether a worker's message answers its work (the rest are progress and
/// charts).
fn is_answer(env: &Envelope) -> bool {
    matches!(env.message, Message::Done(_) | Message::Failed(_))
}

/// The tasks an envelope asks for: the whole stage or a range of it.
fn calls_of(plan: &Plan, stage: u32, tasks: Option<(u32, u32)>) -> Result<&[TaskCall], String> {
    let stage_plan = plan
        .stages
        .get(stage as usize)
        .ok_or_else(|| format!("the plan has no stage {stage}"))?;
    match tasks {
        None => Ok(&stage_plan.tasks[..]),
        Some((start, end)) => stage_plan
            .tasks
            .get(start as usize..end as usize)
            .ok_or_else(|| format!("stage {stage} has no tasks {start}..{end}")),
    }
}

/// Runs one piece of work; returns the answer and its table.
fn run_work(
    work: Work,
    tools: &Tools,
    programs: Option<&Programs>,
    log: &Log,
    events: &mut dyn FnMut(Envelope),
) -> (Message, Body) {
    let Work {
        job,
        spec,
        input,
        plan,
        ..
    } = work;
    let cache = tools.cache.as_ref();
    let (stage, progress) = (spec.stage, spec.progress);
    let failed = |task: Option<String>, message: String| {
        let failure = Failure::new(Some(stage), task, message);
        (Message::Failed(failure), Body::Empty)
    };
    let plan = match plan {
        Ok(p) => p,
        Err(e) => return failed(None, e),
    };
    let calls = match calls_of(&plan, stage, spec.tasks) {
        Ok(calls) => calls,
        Err(e) => return failed(None, e),
    };
    // Chunks of one stage all run the same tasks: one chunk's progress
    // speaks for them.
    let progress = progress && spec.seq == 0;
    let read = |body: Body| match (body, cache) {
        (Body::Refs { keys, .. }, Some(cache)) => cache.read_tables(&keys).map_err(String::from),
        (Body::Refs { .. }, None) => {
            Err("the table was sent by reference but this node has no cache".to_string())
        }
        (inline, _) => inline.into_table().map_err(String::from),
    };
    // Several tables: the inputs of the stage's combining task.
    let combining = matches!(input, Body::Parts(_));
    let tables = match input.into_parts().into_iter().map(read).collect() {
        Ok(tables) => tables,
        Err(e) => return failed(None, format!("bad input table: {e}")),
    };
    let mut ctx = Context::new(&plan.base_dir);
    ctx.data_root = tools.data_root.as_deref();
    ctx.programs = programs;
    let mut on_event = |event: Event| {
        let message = match event {
            // Charts go to the plot node whether or not the client follows
            // progress.
            Event::Chart { chart, .. } => {
                log.debug(|| format!("job {job} stage {stage}: chart {}", chart.name));
                Message::Chart {
                    stage,
                    chart: Box::new(chart),
                }
            }
            event => {
                log.debug(|| format!("job {job} stage {stage}: {event:?}"));
                let Some(event) = progress.then(|| progress_event(stage, event)).flatten() else {
                    return;
                };
                Message::Progress(event)
            }
        };
        events(Envelope::new(job, message, Body::Empty));
    };
    // A chunk of a table whose next task reduces works out its figures for
    // it; a reducing task gets the whole table's.
    let then = match spec.partial_for {
        None => None,
        Some(n) => match plan
            .stages
            .get(stage as usize)
            .and_then(|s| s.tasks.get(n as usize))
        {
            Some(call) => Some(call),
            None => return failed(None, format!("stage {stage} has no task {n}")),
        },
    };
    let stats = Some(&spec.stats[..]).filter(|s| !s.is_empty());
    let outcome = combine(&plan, stage, calls, tables, combining, &ctx, &mut on_event).and_then(
        |(input, calls)| {
            rtl_tasks::run_chunk(
                stage as usize,
                calls,
                input,
                &ctx,
                &mut on_event,
                stats,
                then,
            )
        },
    );
    let (table, partial) = match outcome {
        Ok(done) => done,
        Err(e) => {
            log.info(format!("job {job}: {e}"));
            return failed(Some(e.task), e.message);
        }
    };
    // The task whose table it is, should it fail to move.
    let last_task = calls.last().map(|c| c.name.clone());
    let done = Message::Done(Done {
        stage,
        seq: spec.seq,
        count: spec.count,
        tasks: spec.tasks,
        partial,
    });
    // Only into the relay's own cache: a node on a host of its own (or
    // with a home of its own) answers inline, since a key into its cache
    // means nothing to the relay.
    let shared = cache.filter(|c| spec.cache_id == Some(c.id()));
    // A column too large for a message goes through the cache however
    // large the table is.
    let too_large = table
        .iter()
        .any(|(_, c)| c.wire_size() > tools.max_message_bytes);
    let by_reference = too_large || table.wire_size() >= tools.by_reference;
    let Some(cache) = shared.filter(|_| by_reference) else {
        let why = match shared {
            Some(_) => String::new(),
            None => "this node does not share the relay's cache".to_string(),
        };
        return inline(done, table, tools, (stage, last_task), &why);
    };
    // The relay spreads the pieces of a split result over nodes by key
    // alone, so they are written as separate entries here, where the
    // table already is.
    let rows = match usize::try_from(spec.split_rows) {
        Ok(0) | Err(_) => usize::MAX,
        Ok(rows) => rows,
    };
    let keys = match cache.put_pieces(job, &table, rows) {
        Ok(keys) => keys,
        Err(e) => {
            log.warn(format!("result goes inline: {e}"));
            return inline(done, table, tools, (stage, last_task), &e.to_string());
        }
    };
    (done, Body::refs(&table, keys))
}

/// A result sent inside the answer, unless a column of it is larger than
/// a message may carry (the relay would cut the node off, and the work
/// would be sent again and again): then the stage fails, saying which
/// setting to raise. `why` says why it could not go through the cache.
fn inline(
    done: Message,
    table: Table,
    tools: &Tools,
    (stage, task): (u32, Option<String>),
    why: &str,
) -> (Message, Body) {
    let largest = table.iter().map(|(_, c)| c.wire_size()).max().unwrap_or(0);
    if largest <= tools.max_message_bytes {
        return (done, Body::Table(table));
    }
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" ({why})")
    };
    let message = format!(
        "the stage's result ({} rows, {}) cannot reach the relay: it does not go through the cache{why}, and one of its columns ({}) is more than a message may carry (max_message_bytes = {}); raise cache_map_size or max_message_bytes, or make the result smaller",
        table.rows(),
        size(table.wire_size()),
        size(largest),
        size(tools.max_message_bytes)
    );
    (
        Message::Failed(Failure::new(Some(stage), task, message)),
        Body::Empty,
    )
}

/// A size in the unit people read it in.
fn size(bytes: usize) -> String {
    match bytes {
        0..1_000_000 => format!("{} KB", bytes.div_ceil(1000)),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

/// The table the stage's calls run on, and the calls left to run: for
/// work that carries several tables, what its first call (a combining
/// task) makes of them, and the calls after it.
fn combine<'a>(
    plan: &Plan,
    stage: u32,
    calls: &'a [TaskCall],
    mut tables: Vec<Table>,
    combining: bool,
    ctx: &Context,
    on_event: &mut dyn FnMut(Event),
) -> Result<(Table, &'a [TaskCall]), TaskError> {
    let Some((first, rest)) = calls.split_first().filter(|_| combining) else {
        return Ok((tables.pop().unwrap_or_default(), calls));
    };
    let names = plan.inputs_of(stage as usize);
    if names.len() != tables.len() {
        return Err(TaskError {
            stage: stage as usize,
            task: first.name.clone(),
            message: format!(
                "the work carried {} table(s) and the stage takes {} input(s)",
                tables.len(),
                names.len()
            ),
        });
    }
    let inputs = names
        .into_iter()
        .zip(tables)
        .map(|(i, table)| Input {
            stage: plan.stage_name(i),
            table,
        })
        .collect();
    let table = rtl_tasks::run_combining(stage as usize, first, inputs, ctx, on_event)?;
    Ok((table, rest))
}

/// What a client following progress hears of a task event.
fn progress_event(stage: u32, event: Event) -> Option<ProgressEvent> {
    let (task, ms, message) = match event {
        Event::Running { task } => (task, None, None),
        Event::Note { task, message } => (task, None, Some(message.into())),
        Event::Completed { task, elapsed } => (task, Some(elapsed.as_secs_f64() * 1e3), None),
        Event::Chart { .. } => return None,
    };
    Some(ProgressEvent {
        stage,
        task: task.into(),
        ms,
        message,
    })
}

/// Plans read from the cache, by key, so each is decoded once per node.
struct Plans {
    by_key: HashMap<String, Arc<Plan>>,
    /// Keys in the order they were read: the oldest goes first when
    /// [`PLANS`] are held.
    order: VecDeque<String>,
}

/// Plans a node remembers at most: a daemon that runs parameterised jobs
/// for months sees plans without end.
const PLANS: usize = 256;

impl Plans {
    fn new() -> Plans {
        Plans {
            by_key: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The envelope's plan: inline, remembered, or read from the cache.
    fn of(&mut self, plan: &PlanRef, cache: Option<&Cache>) -> Result<Arc<Plan>, String> {
        let key = match plan {
            PlanRef::Inline(plan) => return Ok(plan.clone()),
            PlanRef::Cached(key) => key.as_str(),
        };
        if let Some(plan) = self.by_key.get(key) {
            return Ok(plan.clone());
        }
        let cache = cache.ok_or("the work names a cached plan but this node has no cache")?;
        let plan = cache
            .load_plan(key)?
            .ok_or_else(|| format!("plan {key} is not in the cache"))?;
        let plan = Arc::new(plan);
        if self.order.len() >= PLANS {
            if let Some(oldest) = self.order.pop_front() {
                self.by_key.remove(&oldest);
            }
        }
        self.order.push_back(key.to_string());
        self.by_key.insert(key.to_string(), plan.clone());
        Ok(plan)
    }
}

/// Deletes cache entries nobody will read (an answer that could not go).
fn discard(cache: Option<&Cache>, refs: &[String]) {
    if let Some(cache) = cache {
        cache.discard(refs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtl_tasks::{Column, Table};

    fn work(job: &str, rows: usize, by_reference: bool) -> Work {
        let plan = Plan::parse(job, "<test>", PathBuf::from(".")).expect("a valid job");
        let body = if by_reference {
            Body::Refs {
                schema: Vec::new(),
                rows: 0,
                keys: vec!["table-key".into()],
            }
        } else {
            let values: Vec<f64> = (0..rows).map(|i| i as f64).collect();
            let table = Table::from_columns(vec![("x".into(), Column::Float64(values.into()))])
                .expect("a table");
            Body::Table(table)
        };
        let plan = Arc::new(plan);
        let spec = WorkMessage::stage(0, PlanRef::Inline(plan.clone()));
        Work {
            id: Uuid::new_v4(),
            job: Uuid::new_v4(),
            spec: Box::new(spec),
            input: body,
            plan: Ok(plan),
        }
    }

    const ADD: &str =
        r#"{"0": {"tasks": {"add": {"operations": [{"a": "x", "b": 1, "column": "y"}]}}}}"#;

    #[test]
    fn small_inline_transforms_run_on_the_socket_thread() {
        assert!(work(ADD, 1000, false).is_quick());
    }

    #[test]
    fn large_inputs_tables_by_reference_and_file_tasks_go_to_the_worker() {
        assert!(!work(ADD, 100_000, false).is_quick(), "800 KB inline");
        assert!(!work(ADD, 0, true).is_quick(), "by reference");
        let open = r#"{"0": {"tasks": {"open_array": {"path": "x.npy"}}}}"#;
        assert!(!work(open, 0, false).is_quick(), "reads a file");
        let write = r#"{"0": {"tasks": {"write": {"path": "out.csv"}}}}"#;
        assert!(!work(write, 10, false).is_quick(), "writes a file");
        let mut unknown = work(ADD, 10, false);
        unknown.plan = Err("no plan".into());
        assert!(!unknown.is_quick(), "errors are answered by the worker too");
    }
}
