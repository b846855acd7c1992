//! Typed messages: the header frame, decoded once into what its kind says.
//!
//! On the wire every header is one CBOR map (docs/PROTOCOL.md lists its
//! fields); which fields mean something depends on `kind`. [`Header`] is
//! that map as it is, and is private to this crate: everything outside
//! sees a [`Message`], one variant per kind, each carrying only its own
//! fields. A header that lacks what its kind needs is refused here, once,
//! with the reason, instead of being checked field by field by whoever
//! reads it.

use crate::{Body, ColumnSpec, Described, PartShape};
use rtl_dsl::Plan;
use rtl_tasks::{Chart, Stat};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// What was wrong with CBOR bytes, in words for whoever wrote the sender
/// (serde's own text, without the decoder's wrapping).
fn plain<T>(e: ciborium::de::Error<T>) -> String {
    match e {
        ciborium::de::Error::Semantic(_, what) => rtl_dsl::words::plain(&what),
        ciborium::de::Error::Syntax(at) => format!("not valid CBOR (at byte {at})"),
        ciborium::de::Error::RecursionLimitExceeded => "nested too deeply".into(),
        ciborium::de::Error::Io(_) => "cut short: the header ends before its last value".into(),
    }
}

/// The field of a header at fault, when decoding failed because `what`.
/// The CBOR decoder does not say where it stopped, so the header is
/// decoded again, as a tree, by a decoder that does; only ever on the way
/// to an error, so speed does not matter. The tree is JSON, which differs
/// from CBOR in small ways (see [`as_json`]): the field is trusted only
/// when the second decode fails for the very same reason.
fn field_at_fault(bytes: &[u8], what: &str) -> Option<String> {
    let tree: ciborium::Value = ciborium::from_reader(bytes).ok()?;
    let e = serde_path_to_error::deserialize::<_, Header>(as_json(tree)).err()?;
    let field = e.path().to_string();
    (field != "." && rtl_dsl::words::plain(&e.inner().to_string()) == what).then_some(field)
}

/// A CBOR tree as JSON, close enough to decode the header again: 16
/// bytes become a UUID's text (as JSON spells the job id), other bytes
/// lists of numbers (as byte fields also accept), tags are dropped.
fn as_json(value: ciborium::Value) -> serde_json::Value {
    use ciborium::Value as Cbor;
    use serde_json::Value as Json;
    match value {
        Cbor::Integer(i) => {
            let i = i128::from(i);
            i64::try_from(i)
                .map(Json::from)
                .or_else(|_| u64::try_from(i).map(Json::from))
                .unwrap_or(Json::Null)
        }
        Cbor::Float(f) => Json::from(f),
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Null => Json::Null,
        Cbor::Text(t) => Json::String(t),
        Cbor::Bytes(b) if b.len() == 16 => match Uuid::from_slice(&b) {
            Ok(id) => Json::String(id.to_string()),
            Err(_) => Json::Null,
        },
        Cbor::Bytes(b) => Json::Array(b.into_iter().map(Json::from).collect()),
        Cbor::Array(items) => Json::Array(items.into_iter().map(as_json).collect()),
        Cbor::Map(pairs) => Json::Object(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Cbor::Text(t) => t,
                        other => format!("{other:?}"),
                    };
                    (key, as_json(v))
                })
                .collect(),
        ),
        Cbor::Tag(_, inner) => as_json(*inner),
        _ => Json::Null,
    }
}

/// What a message is for. See docs/PROTOCOL.md for who sends which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// client -> relay: run a job.
    Submit,
    /// relay -> client: the job's result table.
    Result,
    /// relay -> client: the job failed.
    Error,
    /// node -> relay -> client: a task started or finished.
    Progress,
    /// client -> relay, answered by `Pong`.
    Ping,
    /// relay -> client: the answer to `Ping`.
    Pong,
    /// client -> relay, answered by `StatusReply`.
    Status,
    /// relay -> client: the answer to `Status`.
    StatusReply,
    /// node -> relay: hello, and every heartbeat interval after it.
    Heartbeat,
    /// relay -> node: run one stage on the table.
    Work,
    /// node -> relay: the stage's result table.
    Done,
    /// node -> relay: the stage failed.
    Failed,
    /// node -> relay: leaving; take no more work.
    Bye,
    /// node -> relay -> plot nodes (and the client, if it asked): a chart.
    Chart,
    /// relay -> peer: prove you hold the cluster secret.
    Challenge,
    /// peer -> relay: the peer's nonce and its proof.
    Proof,
    /// relay -> peer: the proof held; here is the relay's own.
    Welcome,
    /// relay -> client: the submit was not taken because the relay holds
    /// as much work as it may; send it again later.
    Busy,
}

impl fmt::Display for Kind {
    /// The name the wire gives it (`status_reply`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match ciborium::Value::serialized(self) {
            Ok(ciborium::Value::Text(name)) => f.write_str(&name),
            _ => write!(f, "{self:?}"),
        }
    }
}

/// Where a failure happened and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The stage that failed, when known, by number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<u32>,
    /// The stage's name in the job, when it has one (the relay fills it in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_name: Option<String>,
    /// The task (or tasks) that failed, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The task's keyword argument at fault (`operations[0].b`), when the
    /// failure is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What went wrong, in words for the user.
    pub message: String,
}

impl Failure {
    /// A failure in `stage` (and `task`, when known).
    pub fn new(stage: Option<u32>, task: Option<String>, message: String) -> Failure {
        Failure {
            stage,
            stage_name: None,
            task,
            field: None,
            message,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = self
            .stage_name
            .clone()
            .or_else(|| self.stage.map(|s| s.to_string()));
        let mut place = Vec::new();
        if let Some(s) = stage {
            place.push(format!("stage {s}"));
        }
        if let Some(t) = &self.task {
            place.push(format!("task {t}"));
        }
        if let Some(x) = &self.field {
            place.push(format!("field {x}"));
        }
        if place.is_empty() {
            return f.write_str(&self.message);
        }
        write!(f, "{}: {}", place.join(", "), self.message)
    }
}

/// A task starting (neither `ms` nor `message`), leaving a note
/// (`message`), or finishing (`ms`, its run time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    /// The stage the task is in.
    pub stage: u32,
    /// The task's name.
    pub task: String,
    /// How long the task took, when it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<f64>,
    /// A note the task left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Who a node is and how much work it takes; sent in every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// "tasknode" or "plotnode".
    pub service: String,
    /// Its process id.
    pub pid: u32,
    /// Its host name.
    pub host: String,
    /// Envelopes it accepts at once; 0 for nodes that take no stage work.
    pub capacity: u32,
    /// Id of the LMDB cache it opened; equal to the relay's when both share
    /// one, so tables may travel by reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_id: Option<Uuid>,
    /// Envelopes it has answered since it started.
    pub envelopes: u64,
    /// The tasks installed on it (task nodes only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<InstalledTask>,
}

/// A task installed on a node: its name, the digest of its manifest and
/// program (two nodes run the same task only if these are equal), and its
/// manifest, from which the relay checks kwargs and plans chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledTask {
    /// The name jobs call it by.
    pub name: String,
    /// SHA-256 of its manifest and program, in hex.
    pub digest: String,
    /// Its manifest's text.
    pub manifest: String,
}

/// The relay's answer to `Status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The relay's process id.
    pub pid: u32,
    /// Milliseconds since the relay started.
    pub uptime_ms: u64,
    /// Envelopes the relay has dispatched to nodes.
    pub envelopes: u64,
    /// Jobs it runs now.
    pub jobs_running: u64,
    /// Envelopes waiting for a node.
    pub queued: u64,
    /// The nodes it knows.
    pub nodes: Vec<NodeStatus>,
    /// Its cache.
    #[serde(default)]
    pub cache: CacheReport,
}

/// The relay's cache as `rtl status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CacheReport {
    /// Table entries held (none when no job is running).
    pub tables: u64,
    /// Plans held (one per distinct plan of the running jobs).
    #[serde(default)]
    pub plans: u64,
    /// Reader slots in use, of `max_readers`.
    pub readers: u32,
    /// Reader slots there are.
    pub max_readers: u32,
}

/// One node as the relay sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Its routing id.
    pub id: String,
    /// What it said of itself in its last heartbeat.
    pub info: NodeInfo,
    /// Envelopes it holds now.
    pub in_flight: u32,
    /// Envelopes the node answered, as the relay counted them.
    pub envelopes: u64,
    /// Milliseconds since the relay last heard from it.
    pub last_seen_ms: u64,
    /// Milliseconds since it joined the relay.
    #[serde(default)]
    pub joined_ms: u64,
}

/// A job sent to the relay. The input table is the envelope's body.
#[derive(Debug, Clone, PartialEq)]
pub struct Submit {
    /// What to run.
    pub plan: Plan,
    /// Milliseconds the job may take before the relay fails it; 0: no limit.
    pub lifespan: u64,
    /// The client's cache, so results may come back by reference.
    pub cache_id: Option<Uuid>,
    /// Send `Progress` messages while the job runs.
    pub progress: bool,
    /// Send the job's charts to the client too.
    pub charts: bool,
}

/// Where a node finds the plan of the work it gets.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanRef {
    /// The plan itself.
    Inline(Arc<Plan>),
    /// Its key in the cache the node shares with the relay.
    Cached(String),
}

/// One stage's work (or some of its tasks, or a chunk of its table) for a
/// task node. The input table is the envelope's body.
#[derive(Debug, Clone, PartialEq)]
pub struct Work {
    /// The stage, counted from 0.
    pub stage: u32,
    /// The job's plan.
    pub plan: PlanRef,
    /// Run only the stage's tasks `start..end` (all when absent).
    pub tasks: Option<(u32, u32)>,
    /// The job's lifespan, as submitted.
    pub lifespan: u64,
    /// The client follows progress.
    pub progress: bool,
    /// This chunk's number, and how many chunks the stage has.
    pub seq: u32,
    /// How many chunks the stage has.
    pub count: u32,
    /// Hand the result back in pieces of at most this many rows (0: in
    /// one piece), because the relay will spread them over nodes.
    pub split_rows: u64,
    /// The whole table's figures for the first task, which then runs on
    /// this chunk alone (`rtl_tasks::reduce`).
    pub stats: Vec<Stat>,
    /// After the tasks, work out this chunk's figures for task `n` of the
    /// stage (the next one, which will run chunk by chunk).
    pub partial_for: Option<u32>,
    /// The cache the node may answer into by reference: the relay's, when
    /// the node shares it.
    pub cache_id: Option<Uuid>,
}

impl Work {
    /// All of stage `stage`, on one piece, with nothing else asked.
    pub fn stage(stage: u32, plan: PlanRef) -> Work {
        Work {
            stage,
            plan,
            tasks: None,
            lifespan: 0,
            progress: false,
            seq: 0,
            count: 1,
            split_rows: 0,
            stats: Vec::new(),
            partial_for: None,
            cache_id: None,
        }
    }
}

/// A node's answer to [`Work`]. The result table is the envelope's body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Done {
    /// The stage, as the work said.
    pub stage: u32,
    /// The chunk, as the work said.
    pub seq: u32,
    /// How many chunks, as the work said.
    pub count: u32,
    /// The tasks run, as the work said.
    pub tasks: Option<(u32, u32)>,
    /// This chunk's figures, as `partial_for` asked.
    pub partial: Vec<Stat>,
}

/// What a message says: one variant per [`Kind`], each with its own fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// client -> relay: run a job.
    Submit(Box<Submit>),
    /// relay -> client: one of the job's results: the table of a stage
    /// that no stage takes (a chain has one, its last).
    Result {
        /// The stage, by number.
        stage: u32,
        /// Which of the job's results this is, from 0.
        seq: u32,
        /// How many results the job has.
        count: u32,
    },
    /// relay -> client: the job failed.
    Error(Failure),
    /// node -> relay -> client: a task started, left a note, or finished.
    Progress(ProgressEvent),
    /// client -> relay: are you there?
    Ping,
    /// relay -> client: yes.
    Pong {
        /// The relay's run: a new id each time a relay starts, so a client
        /// can tell that the relay it waits on was replaced.
        relay: Option<Uuid>,
    },
    /// client -> relay: how are you?
    Status,
    /// relay -> client: the answer to `Status`.
    StatusReply(Box<StatusReport>),
    /// node -> relay: who it is; relay -> node: the relay is alive (no
    /// info).
    Heartbeat(Option<NodeInfo>),
    /// relay -> node: run this.
    Work(Box<Work>),
    /// node -> relay: done; plot node -> relay: chart drawn.
    Done(Done),
    /// node -> relay: the work failed.
    Failed(Failure),
    /// node -> relay: leaving; take no more work.
    Bye,
    /// node -> relay -> plot nodes (and the client, if it asked).
    Chart {
        /// The stage whose task made it.
        stage: u32,
        /// The chart's data.
        chart: Box<Chart>,
    },
    /// relay -> peer: prove you hold the cluster secret.
    Challenge {
        /// The relay's nonce.
        nonce: Vec<u8>,
    },
    /// peer -> relay: the proof (both empty: "challenge me").
    Proof {
        /// The peer's nonce.
        nonce: Vec<u8>,
        /// Its proof.
        proof: Vec<u8>,
    },
    /// relay -> peer: the proof held.
    Welcome {
        /// The relay's own proof.
        proof: Vec<u8>,
    },
    /// relay -> client: the submit was not taken; send it again later.
    Busy,
}

impl Message {
    /// The kind on the wire.
    pub fn kind(&self) -> Kind {
        match self {
            Message::Submit(_) => Kind::Submit,
            Message::Result { .. } => Kind::Result,
            Message::Error(_) => Kind::Error,
            Message::Progress(_) => Kind::Progress,
            Message::Ping => Kind::Ping,
            Message::Pong { .. } => Kind::Pong,
            Message::Status => Kind::Status,
            Message::StatusReply(_) => Kind::StatusReply,
            Message::Heartbeat(_) => Kind::Heartbeat,
            Message::Work(_) => Kind::Work,
            Message::Done(_) => Kind::Done,
            Message::Failed(_) => Kind::Failed,
            Message::Bye => Kind::Bye,
            Message::Chart { .. } => Kind::Chart,
            Message::Challenge { .. } => Kind::Challenge,
            Message::Proof { .. } => Kind::Proof,
            Message::Welcome { .. } => Kind::Welcome,
            Message::Busy => Kind::Busy,
        }
    }
}

/// The handshake fields of a header (either may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
struct AuthFields {
    #[serde(default)]
    nonce: Vec<u8>,
    #[serde(default)]
    proof: Vec<u8>,
}

/// The header frame as it is on the wire: one map for every kind, fields a
/// kind does not use left out. Its field order is the wire's; keep it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Header {
    pub(crate) v: u32,
    pub(crate) kind: Kind,
    pub(crate) job: Uuid,
    #[serde(default)]
    stage: u32,
    #[serde(default)]
    lifespan: u64,
    #[serde(default)]
    seq: u32,
    #[serde(default = "one")]
    count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tasks: Option<(u32, u32)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) schema: Vec<ColumnSpec>,
    #[serde(default)]
    pub(crate) rows: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plan: Option<Plan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plan_key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) table_refs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) parts: Vec<PartShape>,
    #[serde(default, skip_serializing_if = "is_zero")]
    split_rows: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    stats: Vec<Stat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partial_for: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    partial: Vec<Stat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    progress: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    charts: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<AuthFields>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chart: Option<Chart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<ProgressEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<NodeInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<StatusReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    relay: Option<Uuid>,
}

fn one() -> u32 {
    1
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Header {
    fn new(kind: Kind, job: Uuid) -> Header {
        Header {
            v: VERSION,
            kind,
            job,
            stage: 0,
            lifespan: 0,
            seq: 0,
            count: 1,
            tasks: None,
            schema: Vec::new(),
            rows: 0,
            parts: Vec::new(),
            plan: None,
            plan_key: None,
            table_refs: Vec::new(),
            split_rows: 0,
            stats: Vec::new(),
            partial_for: None,
            partial: Vec::new(),
            cache_id: None,
            progress: false,
            charts: false,
            auth: None,
            chart: None,
            error: None,
            event: None,
            node: None,
            status: None,
            relay: None,
        }
    }

    /// The header in a header frame's bytes, in a version this build speaks.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Header, String> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let version: Version = ciborium::from_reader(bytes)
            .map_err(|e| format!("header is not a CBOR map with a version `v`: {}", plain(e)))?;
        if version.v != VERSION {
            return Err(format!(
                "protocol version {} is not supported; this rtl speaks version {VERSION}",
                version.v
            ));
        }
        ciborium::from_reader(bytes).map_err(|e| {
            let what = plain(e);
            match field_at_fault(bytes, &what) {
                Some(field) => format!("bad header: field `{field}`: {what}"),
                None => format!("bad header: {what}"),
            }
        })
    }

    /// The header that says `message` for `job`, describing `body`.
    pub(crate) fn of(job: Uuid, message: &Message, body: &Body) -> Header {
        let mut h = Header::new(message.kind(), job);
        match message {
            Message::Submit(s) => {
                h.plan = Some(s.plan.clone());
                h.lifespan = s.lifespan;
                h.cache_id = s.cache_id;
                h.progress = s.progress;
                h.charts = s.charts;
            }
            Message::Result { stage, seq, count } => {
                h.stage = *stage;
                h.seq = *seq;
                h.count = *count;
            }
            Message::Error(f) => h.error = Some(f.clone()),
            Message::Failed(f) => {
                h.stage = f.stage.unwrap_or(0);
                h.error = Some(f.clone());
            }
            Message::Progress(e) => h.event = Some(e.clone()),
            Message::Pong { relay } => h.relay = *relay,
            Message::StatusReply(s) => h.status = Some((**s).clone()),
            Message::Heartbeat(node) => h.node = node.clone(),
            Message::Work(w) => {
                h.stage = w.stage;
                match &w.plan {
                    PlanRef::Inline(plan) => h.plan = Some((**plan).clone()),
                    PlanRef::Cached(key) => h.plan_key = Some(key.clone()),
                }
                h.tasks = w.tasks;
                h.lifespan = w.lifespan;
                h.progress = w.progress;
                h.seq = w.seq;
                h.count = w.count;
                h.split_rows = w.split_rows;
                h.stats = w.stats.clone();
                h.partial_for = w.partial_for;
                h.cache_id = w.cache_id;
            }
            Message::Done(d) => {
                h.stage = d.stage;
                h.seq = d.seq;
                h.count = d.count;
                h.tasks = d.tasks;
                h.partial = d.partial.clone();
            }
            Message::Chart { stage, chart } => {
                h.stage = *stage;
                h.chart = Some((**chart).clone());
            }
            Message::Challenge { nonce } => {
                h.auth = Some(AuthFields {
                    nonce: nonce.clone(),
                    proof: Vec::new(),
                })
            }
            Message::Proof { nonce, proof } => {
                h.auth = Some(AuthFields {
                    nonce: nonce.clone(),
                    proof: proof.clone(),
                })
            }
            Message::Welcome { proof } => {
                h.auth = Some(AuthFields {
                    nonce: Vec::new(),
                    proof: proof.clone(),
                })
            }
            Message::Ping | Message::Status | Message::Bye | Message::Busy => {}
        }
        let mut described = Described::default();
        body.describe(&mut described);
        h.schema = described.schema;
        h.rows = described.rows;
        h.table_refs = described.keys;
        h.parts = described.parts;
        h
    }

    /// The message this header says, or why it says none.
    pub(crate) fn message(self) -> Result<Message, String> {
        let h = self;
        let auth = h.auth.unwrap_or_default();
        Ok(match h.kind {
            Kind::Submit => Message::Submit(Box::new(Submit {
                plan: h.plan.ok_or("the submit message carries no plan")?,
                lifespan: h.lifespan,
                cache_id: h.cache_id,
                progress: h.progress,
                charts: h.charts,
            })),
            Kind::Result => Message::Result {
                stage: h.stage,
                seq: h.seq,
                count: h.count,
            },
            Kind::Error => Message::Error(h.error.unwrap_or_else(|| {
                Failure::new(
                    None,
                    None,
                    "the relay reported an error without a cause".into(),
                )
            })),
            Kind::Failed => Message::Failed(h.error.unwrap_or(Failure::new(
                Some(h.stage),
                None,
                "the task node reported a failure without a cause".into(),
            ))),
            Kind::Progress => {
                Message::Progress(h.event.ok_or("the progress message carries no event")?)
            }
            Kind::Ping => Message::Ping,
            Kind::Pong => Message::Pong { relay: h.relay },
            Kind::Status => Message::Status,
            Kind::StatusReply => Message::StatusReply(Box::new(
                h.status.ok_or("the status reply carries no status")?,
            )),
            Kind::Heartbeat => Message::Heartbeat(h.node),
            Kind::Work => Message::Work(Box::new(Work {
                stage: h.stage,
                plan: match (h.plan, h.plan_key) {
                    (Some(plan), _) => PlanRef::Inline(Arc::new(plan)),
                    (None, Some(key)) => PlanRef::Cached(key),
                    (None, None) => {
                        return Err("the work carries neither a plan nor a plan key".into())
                    }
                },
                tasks: h.tasks,
                lifespan: h.lifespan,
                progress: h.progress,
                seq: h.seq,
                count: h.count,
                split_rows: h.split_rows,
                stats: h.stats,
                partial_for: h.partial_for,
                cache_id: h.cache_id,
            })),
            Kind::Done => Message::Done(Done {
                stage: h.stage,
                seq: h.seq,
                count: h.count,
                tasks: h.tasks,
                partial: h.partial,
            }),
            Kind::Bye => Message::Bye,
            Kind::Chart => Message::Chart {
                stage: h.stage,
                chart: Box::new(h.chart.ok_or("the chart message carries no chart")?),
            },
            Kind::Challenge => Message::Challenge { nonce: auth.nonce },
            Kind::Proof => Message::Proof {
                nonce: auth.nonce,
                proof: auth.proof,
            },
            Kind::Welcome => Message::Welcome { proof: auth.proof },
            Kind::Busy => Message::Busy,
        })
    }
}
