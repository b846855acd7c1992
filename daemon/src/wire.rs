//! The wire format: the one place that turns ZeroMQ frames into envelopes and
//! back. Nothing else in rtl reads or writes frames.
//!
//! Every message is an [`Envelope`]: a 16-byte id frame (UUID v4), a CBOR
//! [`Header`], then one frame per column holding its raw little-endian bytes.
//! docs/PROTOCOL.md describes the frames byte by byte; keep the two in step.
//!
//! Column frames leave a process without being copied into another buffer:
//! a numeric column's own allocation is handed to libzmq, which frees it once
//! the bytes are on the wire. Frames that arrive are kept as they are, so the
//! relay forwards a table from one node to another without looking inside.

use ndarray::Array1;
use rtl_dsl::Plan;
use rtl_tasks::{Chart, Column, DType, Stat, Table};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

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
    Pong,
    /// client -> relay, answered by `StatusReply`.
    Status,
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
    /// relay -> peer: prove you hold the cluster secret (`auth.nonce`).
    Challenge,
    /// peer -> relay: `auth.nonce` (the peer's) and `auth.proof`.
    Proof,
    /// relay -> peer: the proof held; `auth.proof` is the relay's own.
    Welcome,
    /// relay -> client: the submit was not taken because the relay holds
    /// as much work as it may; send it again later.
    Busy,
}

/// One column's name and type, in frame order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    pub name: String,
    pub dtype: DType,
}

/// Where a failure happened and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.stage, &self.task) {
            (Some(s), Some(t)) => write!(f, "stage {s}, task {t}: {}", self.message),
            (Some(s), None) => write!(f, "stage {s}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// A task starting (neither `ms` nor `message`), leaving a note
/// (`message`), or finishing (`ms`, its run time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    pub stage: u32,
    pub task: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Who a node is and how much work it takes; sent in every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// "tasknode" or "plotnode".
    pub service: String,
    pub pid: u32,
    pub host: String,
    /// Envelopes it accepts at once; 0 for nodes that take no stage work.
    pub capacity: u32,
    /// Id of the LMDB cache it opened; equal to the relay's when both share
    /// one, so tables may travel by reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_id: Option<Uuid>,
    /// Envelopes it has answered since it started.
    pub envelopes: u64,
}

/// A handshake message's nonce and proof (either may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AuthFields {
    #[serde(default)]
    pub nonce: Vec<u8>,
    #[serde(default)]
    pub proof: Vec<u8>,
}

/// The relay's answer to `Status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub pid: u32,
    pub uptime_ms: u64,
    /// Envelopes the relay has dispatched to nodes.
    pub envelopes: u64,
    pub jobs_running: u64,
    pub queued: u64,
    pub nodes: Vec<NodeStatus>,
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
    pub max_readers: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: String,
    pub info: NodeInfo,
    pub in_flight: u32,
    /// Envelopes the node answered, as the relay counted them.
    pub envelopes: u64,
    pub last_seen_ms: u64,
}

/// The CBOR header frame. Fields a kind does not use are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub v: u32,
    pub kind: Kind,
    /// The job this message belongs to (nil for node heartbeats).
    pub job: Uuid,
    #[serde(default)]
    pub stage: u32,
    /// Milliseconds the job may take before the relay fails it; 0: no limit.
    #[serde(default)]
    pub lifespan: u64,
    /// Chunk sequence number and count of chunks in the stage.
    #[serde(default)]
    pub seq: u32,
    #[serde(default = "one")]
    pub count: u32,
    /// Work: run only the stage's tasks `start..end` (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<(u32, u32)>,
    /// Columns of the table that follows, one frame each, in this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema: Vec<ColumnSpec>,
    #[serde(default)]
    pub rows: u64,
    /// The job's plan, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// Key of the plan in the shared LMDB cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_key: Option<String>,
    /// Keys of the table's pieces in the shared LMDB cache, in row order;
    /// no column frames follow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub table_refs: Vec<String>,
    /// Work: hand the result back in pieces of at most this many rows
    /// (0: in one piece), because the relay will spread them over nodes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub split_rows: u64,
    /// Work: the whole table's figures for the first task, which then runs
    /// on this chunk alone (`rtl_tasks::reduce`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stats: Vec<Stat>,
    /// Work: after the tasks, work out this chunk's figures for task `n` of
    /// the stage (the next one, which will run chunk by chunk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_for: Option<u32>,
    /// Done: this chunk's figures, as `partial_for` asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<Stat>,
    /// Submit: the client's cache id, so results may come back by reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_id: Option<Uuid>,
    /// Submit: send `Progress` messages while the job runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub progress: bool,
    /// Submit: send the job's charts to the client too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub charts: bool,
    /// Challenge, Proof, Welcome: the handshake (see `auth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthFields>,
    /// Chart: the chart's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<Chart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<ProgressEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusReport>,
    /// Pong: the relay's run, a new id each time a relay starts, so a
    /// client can tell that the relay it waits on was replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<Uuid>,
}

fn one() -> u32 {
    1
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Header {
    /// A header of `kind` for `job` with every optional field empty.
    pub fn new(kind: Kind, job: Uuid) -> Header {
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

    /// Describes `table`, which follows inline.
    pub fn with_table(mut self, table: &Table) -> Header {
        self.schema = schema_of(table);
        self.rows = table.rows() as u64;
        self.table_refs.clear();
        self
    }

    /// Copies the table description (schema, rows, references) from `other`.
    pub fn with_table_of(mut self, other: &Header) -> Header {
        self.schema = other.schema.clone();
        self.rows = other.rows;
        self.table_refs = other.table_refs.clone();
        self
    }
}

/// The table carried by an envelope.
pub enum Body {
    /// No table (control messages).
    Empty,
    /// Column frames as received, not yet decoded; forwarded as they are.
    Frames(Vec<zmq::Message>),
    /// A table to encode on send.
    Table(Table),
    /// A table its sender keeps as well (to send again): its numeric
    /// columns leave from where they are, without a copy, and libzmq holds
    /// a reference until it has sent them.
    Shared(Arc<Table>),
}

impl Body {
    /// Bytes of column data it holds.
    pub fn bytes(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Frames(frames) => frames.iter().map(|f| f.len()).sum(),
            Body::Table(table) => table.wire_size(),
            Body::Shared(table) => table.wire_size(),
        }
    }
}

/// One message: id, header, table.
pub struct Envelope {
    pub id: Uuid,
    pub header: Header,
    pub body: Body,
}

/// A message that could not be received or decoded.
#[derive(Debug)]
pub enum WireError {
    /// The socket failed (including EAGAIN on a non-blocking receive).
    Zmq(zmq::Error),
    /// The peer sent something that is not a valid envelope. `route` is
    /// its routing id when known, so the relay can answer it.
    Malformed {
        route: Option<Vec<u8>>,
        reason: String,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Zmq(e) => write!(f, "socket error: {e}"),
            WireError::Malformed { reason, .. } => write!(f, "malformed message: {reason}"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<zmq::Error> for WireError {
    fn from(e: zmq::Error) -> Self {
        WireError::Zmq(e)
    }
}

impl Envelope {
    pub fn new(header: Header, body: Body) -> Envelope {
        Envelope {
            id: Uuid::new_v4(),
            header,
            body,
        }
    }

    /// A copy with the same id, to send again: headers and references are
    /// cloned, column frames copied.
    pub fn duplicate(&self) -> Envelope {
        let body = match &self.body {
            Body::Empty => Body::Empty,
            Body::Frames(frames) => {
                Body::Frames(frames.iter().map(|f| zmq::Message::from(&f[..])).collect())
            }
            Body::Table(table) => Body::Table(table.clone()),
            Body::Shared(table) => Body::Shared(table.clone()),
        };
        Envelope {
            id: self.id,
            header: self.header.clone(),
            body,
        }
    }

    /// A control message with no table.
    pub fn control(kind: Kind, job: Uuid) -> Envelope {
        Envelope::new(Header::new(kind, job), Body::Empty)
    }

    /// Sends the envelope, preceded by `route` on a ROUTER socket; blocks
    /// while the socket cannot take it.
    pub fn send(self, socket: &mut zmq::Socket, route: Option<&[u8]>) -> Result<(), zmq::Error> {
        self.send_with(socket, route, 0)
    }

    /// Sends without waiting: EAGAIN when no peer can take the message now.
    /// Services use this so that a vanished peer never blocks them.
    pub fn send_now(
        self,
        socket: &mut zmq::Socket,
        route: Option<&[u8]>,
    ) -> Result<(), zmq::Error> {
        self.send_with(socket, route, zmq::DONTWAIT)
    }

    /// Sends without waiting, like [`Envelope::send_now`], but when there is
    /// no room for it now hands the envelope back untouched, to send later.
    pub fn send_or_keep(
        self,
        socket: &mut zmq::Socket,
        route: Option<&[u8]>,
    ) -> Result<(), (zmq::Error, Option<Box<Envelope>>)> {
        let header = match self.header_frame() {
            Ok(h) => h,
            Err(e) => return Err((e, Some(Box::new(self)))),
        };
        // Only the first frame can fail for want of room: once it is
        // queued, libzmq takes the rest of the message.
        let first = match route {
            Some(route) => socket.send(route, zmq::DONTWAIT | zmq::SNDMORE),
            None => socket.send(&self.id.as_bytes()[..], zmq::DONTWAIT | zmq::SNDMORE),
        };
        if let Err(e) = first {
            return Err((e, Some(Box::new(self))));
        }
        self.send_rest(socket, header, route.is_some())
            .map_err(|e| (e, None))
    }

    fn send_with(
        self,
        socket: &mut zmq::Socket,
        route: Option<&[u8]>,
        flags: i32,
    ) -> Result<(), zmq::Error> {
        let header = self.header_frame()?;
        match route {
            Some(route) => socket.send(route, flags | zmq::SNDMORE)?,
            None => socket.send(&self.id.as_bytes()[..], flags | zmq::SNDMORE)?,
        }
        self.send_rest(socket, header, route.is_some())
    }

    /// The header frame's bytes, describing an inline table when there is
    /// one.
    fn header_frame(&self) -> Result<Vec<u8>, zmq::Error> {
        let mut bytes = Vec::with_capacity(128);
        let written = match &self.body {
            Body::Table(table) => {
                ciborium::into_writer(&self.header.clone().with_table(table), &mut bytes)
            }
            Body::Shared(table) => {
                ciborium::into_writer(&self.header.clone().with_table(table), &mut bytes)
            }
            _ => ciborium::into_writer(&self.header, &mut bytes),
        };
        written.map_err(|_| zmq::Error::EINVAL)?;
        Ok(bytes)
    }

    /// Everything after the first frame (the route, or the id when there is
    /// no route): the id, the header, the columns.
    fn send_rest(
        self,
        socket: &mut zmq::Socket,
        header_bytes: Vec<u8>,
        routed: bool,
    ) -> Result<(), zmq::Error> {
        let Envelope { id, body, .. } = self;
        if routed {
            socket.send(&id.as_bytes()[..], zmq::SNDMORE)?;
        }
        let parts = match &body {
            Body::Empty => 0,
            Body::Frames(frames) => frames.len(),
            Body::Table(table) => table.width(),
            Body::Shared(table) => table.width(),
        };
        socket.send(header_bytes, if parts > 0 { zmq::SNDMORE } else { 0 })?;
        let more = |k: usize| if k + 1 < parts { zmq::SNDMORE } else { 0 };
        match body {
            Body::Empty => {}
            Body::Frames(frames) => {
                for (k, frame) in frames.into_iter().enumerate() {
                    socket.send(frame, more(k))?;
                }
            }
            Body::Table(table) => {
                for (k, (_, column)) in table.into_columns().into_iter().enumerate() {
                    send_column(socket, column, more(k))?;
                }
            }
            Body::Shared(table) => {
                for (k, (_, column)) in table.iter().enumerate() {
                    send_shared_column(socket, &table, column, more(k))?;
                }
            }
        }
        Ok(())
    }

    /// Receives one envelope on a ROUTER socket, with who sent it: its
    /// routing id and the connection it came over. A malformed message is
    /// an error that still names its sender's routing id.
    pub fn recv_from(socket: &zmq::Socket, flags: i32) -> Result<(Peer, Envelope), WireError> {
        let mut parts = recv_parts(socket, flags)?;
        // The routing id frame is made by the ROUTER; the sender's frames
        // carry the connection's properties.
        let connection = parts
            .get_mut(1)
            .and_then(|m| m.gets("__fd"))
            .and_then(|fd| fd.parse().ok());
        let (route, env) = Envelope::decode(parts, true)?;
        let peer = Peer {
            route: route.unwrap_or_default(),
            connection,
        };
        Ok((peer, env))
    }

    /// Receives one envelope; on a ROUTER socket (`routed`) also returns the
    /// sender's routing id. Blocks unless `flags` has `zmq::DONTWAIT`.
    pub fn recv(
        socket: &zmq::Socket,
        routed: bool,
        flags: i32,
    ) -> Result<(Option<Vec<u8>>, Envelope), WireError> {
        Envelope::decode(recv_parts(socket, flags)?, routed)
    }

    /// The envelope in the message parts of one multipart message (the
    /// sender's routing id first when `routed`). Only the header is decoded
    /// here; columns are checked when the table is taken.
    pub fn decode(
        parts: Vec<zmq::Message>,
        routed: bool,
    ) -> Result<(Option<Vec<u8>>, Envelope), WireError> {
        let mut parts = parts.into_iter();
        let route = if routed {
            parts.next().map(|r| r.to_vec())
        } else {
            None
        };
        let malformed = |reason: String| WireError::Malformed {
            route: route.clone(),
            reason,
        };
        let id = parts
            .next()
            .ok_or_else(|| malformed("no id frame".into()))?;
        let id = Uuid::from_slice(&id)
            .map_err(|_| malformed(format!("id frame has {} bytes, expected 16", id.len())))?;
        let header_frame = parts
            .next()
            .ok_or_else(|| malformed("no header frame".into()))?;
        let header = decode_header(&header_frame).map_err(&malformed)?;
        let frames: Vec<zmq::Message> = parts.collect();
        let expected = if !header.table_refs.is_empty() {
            0
        } else {
            header.schema.len()
        };
        if frames.len() != expected {
            return Err(malformed(format!(
                "header describes {expected} column frames but {} followed",
                frames.len()
            )));
        }
        let body = if frames.is_empty() {
            Body::Empty
        } else {
            Body::Frames(frames)
        };
        Ok((route, Envelope { id, header, body }))
    }

    /// Checks, without decoding, that the inline column frames are as
    /// large as the header's row count says: what the relay passes on
    /// without reading must not lie to whoever reads it.
    pub fn check_frames(&self) -> Result<(), String> {
        let Body::Frames(frames) = &self.body else {
            return Ok(());
        };
        let rows = usize::try_from(self.header.rows)
            .map_err(|_| format!("row count {} is too large", self.header.rows))?;
        for (spec, frame) in self.header.schema.iter().zip(frames) {
            frame_holds(spec.dtype, rows, frame)
                .map_err(|e| format!("column {:?}: {e}", spec.name))?;
        }
        Ok(())
    }

    /// The envelope's inline table, decoded. A body without frames is an
    /// empty table unless the header names columns.
    pub fn take_table(&mut self) -> Result<Table, String> {
        match std::mem::replace(&mut self.body, Body::Empty) {
            Body::Table(t) => Ok(t),
            Body::Shared(t) => Ok(Arc::unwrap_or_clone(t)),
            Body::Empty if self.header.schema.is_empty() => Ok(Table::new()),
            Body::Empty => Err("the envelope describes columns but carries none".into()),
            Body::Frames(frames) => {
                let rows = usize::try_from(self.header.rows)
                    .map_err(|_| format!("row count {} is too large", self.header.rows))?;
                let columns = self
                    .header
                    .schema
                    .iter()
                    .zip(frames.iter())
                    .map(|(spec, frame)| {
                        decode_column(spec.dtype, rows, frame)
                            .map(|c| (spec.name.clone(), c))
                            .map_err(|e| format!("column {:?}: {e}", spec.name))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Table::from_columns(columns)
            }
        }
    }
}

/// The parts of one multipart message.
fn recv_parts(socket: &zmq::Socket, flags: i32) -> Result<Vec<zmq::Message>, WireError> {
    let mut parts = Vec::new();
    let first = socket.recv_msg(flags)?;
    let mut more = first.get_more();
    parts.push(first);
    while more {
        let part = socket.recv_msg(0)?;
        more = part.get_more();
        parts.push(part);
    }
    Ok(parts)
}

/// Who sent a message to a ROUTER socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its routing id: only a name, which anyone may take once its
    /// connection has closed.
    pub route: Vec<u8>,
    /// The connection it came over (libzmq's file descriptor for it), for
    /// TCP and IPC peers; none in-process.
    pub connection: Option<i32>,
}

/// The column specs of `table`, in frame order.
pub fn schema_of(table: &Table) -> Vec<ColumnSpec> {
    table
        .schema()
        .into_iter()
        .map(|(name, dtype)| ColumnSpec { name, dtype })
        .collect()
}

fn decode_header(bytes: &[u8]) -> Result<Header, String> {
    #[derive(Deserialize)]
    struct Version {
        v: u32,
    }
    let version: Version = ciborium::from_reader(bytes)
        .map_err(|e| format!("header is not a CBOR map with a version `v`: {e}"))?;
    if version.v != VERSION {
        return Err(format!(
            "protocol version {} is not supported; this rtl speaks version {VERSION}",
            version.v
        ));
    }
    ciborium::from_reader(bytes).map_err(|e| format!("bad header: {e}"))
}

/// Bytes of rows `start..end` of a column in wire encoding.
pub fn wire_size_of_rows(column: &Column, start: usize, end: usize) -> usize {
    match column {
        Column::Int64(_) | Column::Float64(_) => (end - start) * 8,
        Column::Bool(_) => end - start,
        Column::Utf8(a) => {
            (end - start + 1) * 8
                + a.slice(ndarray::s![start..end])
                    .iter()
                    .map(String::len)
                    .sum::<usize>()
        }
    }
}

/// Rows `start..end` of a column in wire encoding, written into `out`
/// (`wire_size_of_rows` long): for writers that need them in one buffer
/// (the LMDB cache).
pub fn encode_rows_into(column: &Column, start: usize, end: usize, out: &mut [u8]) {
    let rows = ndarray::s![start..end];
    match column {
        Column::Int64(a) => words_into(a.slice(rows), out),
        Column::Float64(a) => words_into(a.slice(rows), out),
        Column::Bool(a) => {
            for (byte, v) in out.iter_mut().zip(a.slice(rows).iter()) {
                *byte = u8::from(*v);
            }
        }
        Column::Utf8(a) => {
            let values = a.slice(rows);
            let (offsets, data) = out.split_at_mut((values.len() + 1) * 8);
            let mut at = 0u64;
            offsets[..8].copy_from_slice(&0u64.to_le_bytes());
            for (slot, s) in offsets[8..].chunks_exact_mut(8).zip(values.iter()) {
                let start = at as usize;
                data[start..start + s.len()].copy_from_slice(s.as_bytes());
                at += s.len() as u64;
                slot.copy_from_slice(&at.to_le_bytes());
            }
        }
    }
}

/// Decodes one column frame of `rows` values of `dtype`, checking its size
/// and contents.
pub fn decode_column(dtype: DType, rows: usize, bytes: &[u8]) -> Result<Column, String> {
    decode_column_parts(dtype, &[(rows, bytes)])
}

/// Decodes consecutive frames of one column (`(rows, bytes)` each) into a
/// single column, written once into storage of its final size.
pub fn decode_column_parts(dtype: DType, parts: &[(usize, &[u8])]) -> Result<Column, String> {
    let total = parts
        .iter()
        .try_fold(0usize, |n, (rows, _)| n.checked_add(*rows))
        .ok_or("row count is too large")?;
    // Row counts come from the sender: nothing is allocated for them until
    // the bytes that hold those rows are known to be there.
    for &(rows, bytes) in parts {
        frame_holds(dtype, rows, bytes)?;
    }
    Ok(match dtype {
        DType::Int64 => Column::Int64(Array1::from(decode_words::<i64>(parts, total)?)),
        DType::Float64 => Column::Float64(Array1::from(decode_words::<f64>(parts, total)?)),
        DType::Bool => {
            let mut values = Vec::with_capacity(total);
            for &(_, bytes) in parts {
                for (i, b) in bytes.iter().enumerate() {
                    values.push(match b {
                        0 => false,
                        1 => true,
                        other => {
                            return Err(format!("bool value {other} at row {i} is neither 0 nor 1"))
                        }
                    });
                }
            }
            Column::Bool(Array1::from(values))
        }
        DType::Utf8 => {
            let mut values = Vec::with_capacity(total);
            for &(rows, bytes) in parts {
                decode_utf8_into(rows, bytes, &mut values)?;
            }
            Column::Utf8(Array1::from(values))
        }
    })
}

/// Checks, overflow-safe, that `bytes` can hold `rows` values of
/// `dtype`: exactly for fixed-width types, at least the offsets for utf8.
fn frame_holds(dtype: DType, rows: usize, bytes: &[u8]) -> Result<(), String> {
    let too_many = || {
        format!(
            "{dtype} frame said to hold {rows} rows, more than any message can (it has {} bytes)",
            bytes.len()
        )
    };
    match dtype {
        DType::Int64 | DType::Float64 => frame_size(
            dtype,
            rows,
            bytes,
            rows.checked_mul(8).ok_or_else(too_many)?,
        ),
        DType::Bool => frame_size(dtype, rows, bytes, rows),
        DType::Utf8 => {
            let offsets = rows
                .checked_add(1)
                .and_then(|n| n.checked_mul(8))
                .ok_or_else(too_many)?;
            if bytes.len() < offsets {
                return Err(format!(
                    "utf8 frame of {rows} rows needs {offsets} bytes of offsets, has {} bytes",
                    bytes.len()
                ));
            }
            Ok(())
        }
    }
}

/// Checks that a frame of `rows` rows has the `n` bytes it must have.
fn frame_size(dtype: DType, rows: usize, bytes: &[u8], n: usize) -> Result<(), String> {
    if bytes.len() == n {
        Ok(())
    } else {
        Err(format!(
            "{dtype} frame of {rows} rows must have {n} bytes, has {}",
            bytes.len()
        ))
    }
}

/// The 8-byte number types of columns.
///
/// # Safety
/// Every 8-byte pattern must be a valid value, so that column bytes may be
/// copied into a `Vec<Self>` as they are.
unsafe trait Word: Copy {
    fn from_le(bytes: [u8; 8]) -> Self;
    fn to_le(self) -> [u8; 8];
}

// SAFETY: every bit pattern is an i64.
unsafe impl Word for i64 {
    fn from_le(bytes: [u8; 8]) -> i64 {
        i64::from_le_bytes(bytes)
    }
    fn to_le(self) -> [u8; 8] {
        self.to_le_bytes()
    }
}

// SAFETY: every bit pattern is an f64 (some of them NaN).
unsafe impl Word for f64 {
    fn from_le(bytes: [u8; 8]) -> f64 {
        f64::from_le_bytes(bytes)
    }
    fn to_le(self) -> [u8; 8] {
        self.to_le_bytes()
    }
}

/// Writes a numeric column's little-endian bytes into `out`: one memory
/// copy on little-endian hosts, value by value elsewhere.
fn words_into<T: Word>(a: ndarray::ArrayView1<'_, T>, out: &mut [u8]) {
    match le_bytes(&a) {
        Some(bytes) => out[..bytes.len()].copy_from_slice(bytes),
        None => {
            for (chunk, v) in out.chunks_exact_mut(8).zip(a.iter()) {
                chunk.copy_from_slice(&v.to_le());
            }
        }
    }
}

/// The column's memory as its little-endian bytes, where it already is
/// that: on little-endian hosts, for values laid out contiguously.
fn le_bytes<'a, T: Word>(a: &ndarray::ArrayView1<'a, T>) -> Option<&'a [u8]> {
    let values = a.to_slice().filter(|_| cfg!(target_endian = "little"))?;
    // SAFETY: `values` is a live slice of plain 8-byte numbers; viewing its
    // memory as bytes reads nothing out of bounds.
    Some(unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    })
}

fn decode_words<T: Word>(parts: &[(usize, &[u8])], total: usize) -> Result<Vec<T>, String> {
    let mut values: Vec<T> = Vec::with_capacity(total);
    for &(rows, bytes) in parts {
        // Sizes were checked by the caller.
        let n = rows * 8;
        if cfg!(target_endian = "little") && values.capacity() - values.len() >= rows {
            // SAFETY: the spare capacity holds `rows` more values; `bytes`
            // has exactly `rows * 8` bytes (checked above), and any 8 bytes
            // are a valid `T` (`Word`). The source may be unaligned: it is
            // copied byte-wise.
            unsafe {
                let end = values.as_mut_ptr().add(values.len()).cast::<u8>();
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), end, n);
                values.set_len(values.len() + rows);
            }
        } else {
            values.extend(
                bytes
                    .chunks_exact(8)
                    .map(|c| T::from_le(c.try_into().expect("chunks of 8"))),
            );
        }
    }
    Ok(values)
}

fn decode_utf8_into(rows: usize, bytes: &[u8], values: &mut Vec<String>) -> Result<(), String> {
    let head = rows
        .checked_add(1)
        .and_then(|n| n.checked_mul(8))
        .ok_or_else(|| format!("row count {rows} is too large"))?;
    if bytes.len() < head {
        return Err(format!(
            "utf8 frame of {rows} rows needs {head} bytes of offsets, has {} bytes",
            bytes.len()
        ));
    }
    let (offsets, data) = bytes.split_at(head);
    let offsets: Vec<u64> = offsets
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect();
    if offsets[0] != 0 || offsets[rows] != data.len() as u64 {
        return Err(format!(
            "utf8 offsets must start at 0 and end at the data length {}",
            data.len()
        ));
    }
    for (i, w) in offsets.windows(2).enumerate() {
        let (a, b) = (w[0] as usize, w[1] as usize);
        if a > b || b > data.len() {
            return Err(format!("utf8 offsets decrease at row {i}"));
        }
        let text =
            std::str::from_utf8(&data[a..b]).map_err(|_| format!("row {i} is not valid UTF-8"))?;
        values.push(text.to_string());
    }
    Ok(())
}

/// Sends one column frame. Numeric columns on little-endian hosts go out
/// from their own allocation; the rest are encoded into a fresh buffer.
fn send_column(socket: &mut zmq::Socket, column: Column, flags: i32) -> Result<(), zmq::Error> {
    match column {
        Column::Float64(a) if cfg!(target_endian = "little") => {
            send_owned(socket, contiguous(a), flags)
        }
        Column::Int64(a) if cfg!(target_endian = "little") => {
            send_owned(socket, contiguous(a), flags)
        }
        other => send_encoded(socket, &other, flags),
    }
}

/// Sends a column encoded into a fresh buffer.
fn send_encoded(socket: &mut zmq::Socket, column: &Column, flags: i32) -> Result<(), zmq::Error> {
    let mut bytes = vec![0u8; column.wire_size()];
    encode_rows_into(column, 0, column.len(), &mut bytes);
    socket.send(bytes, flags)
}

/// Sends `column` of a shared `table`. Numeric columns on little-endian
/// hosts go out from the table's own memory: the message holds a reference
/// to the table, dropped by [`free_shared`] once libzmq is done with it.
fn send_shared_column(
    socket: &mut zmq::Socket,
    table: &Arc<Table>,
    column: &Column,
    flags: i32,
) -> Result<(), zmq::Error> {
    let raw = match column {
        Column::Float64(a) => le_bytes(&a.view()),
        Column::Int64(a) => le_bytes(&a.view()),
        _ => None,
    };
    let Some(raw) = raw else {
        return send_encoded(socket, column, flags);
    };
    if raw.is_empty() {
        return socket.send(&[][..], flags);
    }
    let (data, bytes) = (raw.as_ptr(), raw.len());
    let hint = Box::into_raw(Box::new(table.clone())) as *mut std::ffi::c_void;
    // SAFETY: `data` points to `bytes` bytes inside a column of the table
    // that the leaked Arc behind `hint` keeps alive and unchanged (an Arc's
    // contents are shared, never mutated) until `free_shared` drops it.
    unsafe { send_without_copy(socket, data, bytes, free_shared, hint, flags) }
}

/// libzmq calls this once it no longer needs a frame sent by
/// [`send_shared_column`].
unsafe extern "C" fn free_shared(_data: *mut std::ffi::c_void, hint: *mut std::ffi::c_void) {
    // SAFETY: `hint` is the Box<Arc<Table>> leaked by send_shared_column,
    // and libzmq calls the free function exactly once.
    drop(unsafe { Box::from_raw(hint as *mut Arc<Table>) });
}

/// The array's values as a Vec, reusing its allocation when it is laid out
/// contiguously from the start.
fn contiguous<T: Clone>(a: Array1<T>) -> Vec<T> {
    if !a.is_standard_layout() {
        return a.to_vec();
    }
    let n = a.len();
    let (mut v, offset) = a.into_raw_vec_and_offset();
    let offset = offset.unwrap_or(0);
    v.truncate(offset + n);
    v.drain(..offset);
    v
}

/// libzmq calls this once it no longer needs a frame sent by [`send_owned`].
unsafe extern "C" fn free_owned<T>(_data: *mut std::ffi::c_void, hint: *mut std::ffi::c_void) {
    // SAFETY: `hint` is the Box<Vec<T>> leaked by `send_owned`, and libzmq
    // calls the free function exactly once.
    drop(unsafe { Box::from_raw(hint as *mut Vec<T>) });
}

/// libzmq's message struct must be 8-aligned; the binding declares bytes.
#[repr(C, align(8))]
struct RawMessage(zmq_sys::zmq_msg_t);

/// Sends `values` as one frame without copying them: libzmq takes ownership
/// of the allocation and frees it through [`free_owned`].
fn send_owned<T: Copy + Send + 'static>(
    socket: &mut zmq::Socket,
    values: Vec<T>,
    flags: i32,
) -> Result<(), zmq::Error> {
    let bytes = std::mem::size_of_val(values.as_slice());
    if bytes == 0 {
        return socket.send(&[][..], flags);
    }
    let boxed = Box::new(values);
    let data = boxed.as_ptr().cast::<u8>();
    let hint = Box::into_raw(boxed) as *mut std::ffi::c_void;
    // SAFETY: `data` points to `bytes` initialized bytes owned by the leaked
    // box `hint`, which stays alive until `free_owned` drops it.
    unsafe { send_without_copy(socket, data, bytes, free_owned::<T>, hint, flags) }
}

type FreeFn = unsafe extern "C" fn(*mut std::ffi::c_void, *mut std::ffi::c_void);

/// Sends the `bytes` at `data` as one frame, leaving them where they are.
///
/// # Safety
/// The bytes must stay valid and unchanged until `free(data, hint)` is
/// called, which happens exactly once: by libzmq when it is done with the
/// frame, or here when the frame cannot be made or sent.
unsafe fn send_without_copy(
    socket: &mut zmq::Socket,
    data: *const u8,
    bytes: usize,
    free: FreeFn,
    hint: *mut std::ffi::c_void,
    flags: i32,
) -> Result<(), zmq::Error> {
    let data = data as *mut std::ffi::c_void;
    let mut msg = RawMessage(zmq_sys::zmq_msg_t::default());
    // SAFETY: the caller keeps the bytes alive until `free`; the socket
    // pointer is valid for the duration of the calls, and closing a message
    // that failed to send calls `free`.
    unsafe {
        if zmq_sys::zmq_msg_init_data(&mut msg.0, data, bytes, Some(free), hint) != 0 {
            free(data, hint);
            return Err(zmq::Error::from_raw(zmq_sys::zmq_errno()));
        }
        if zmq_sys::zmq_msg_send(&mut msg.0, socket.as_mut_ptr(), flags) == -1 {
            let err = zmq::Error::from_raw(zmq_sys::zmq_errno());
            zmq_sys::zmq_msg_close(&mut msg.0);
            return Err(err);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn pair() -> (zmq::Socket, zmq::Socket) {
        let ctx = zmq::Context::new();
        let endpoint = format!("inproc://wire-{}", Uuid::new_v4());
        let a = ctx.socket(zmq::PAIR).expect("socket");
        a.bind(&endpoint).expect("bind");
        let b = ctx.socket(zmq::PAIR).expect("socket");
        b.connect(&endpoint).expect("connect");
        (a, b)
    }

    fn sample() -> Table {
        Table::from_columns(vec![
            ("i".into(), Column::Int64(array![1, -2, 3])),
            ("f".into(), Column::Float64(array![0.5, f64::NAN, -1e300])),
            ("b".into(), Column::Bool(array![true, false, true])),
            ("s".into(), rtl_tasks::Column::text(&["a", "", "ü,\"x"])),
        ])
        .expect("table")
    }

    #[test]
    fn a_table_survives_the_wire() {
        let (mut a, b) = pair();
        let mut header = Header::new(Kind::Done, Uuid::new_v4());
        header.stage = 2;
        Envelope::new(header.clone(), Body::Table(sample()))
            .send(&mut a, None)
            .expect("send");
        let (_, mut got) = Envelope::recv(&b, false, 0).expect("recv");
        assert_eq!(got.header.stage, 2);
        assert_eq!(got.header.rows, 3);
        let table = got.take_table().expect("decode");
        assert_eq!(format!("{table:?}"), format!("{:?}", sample()));
    }

    #[test]
    fn a_shared_table_goes_out_as_often_as_asked_and_is_released() {
        let (mut a, b) = pair();
        let shared = Arc::new(sample());
        for _ in 0..2 {
            Envelope::new(
                Header::new(Kind::Submit, Uuid::new_v4()),
                Body::Shared(shared.clone()),
            )
            .send(&mut a, None)
            .expect("send");
            let (_, mut got) = Envelope::recv(&b, false, 0).expect("recv");
            assert_eq!(got.header.rows, 3);
            let table = got.take_table().expect("decode");
            assert_eq!(format!("{table:?}"), format!("{:?}", sample()));
        }
        // Over inproc the frames are received once the receiver has them;
        // libzmq has dropped its references by then.
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn received_frames_forward_unchanged() {
        let (mut a, b) = pair();
        Envelope::new(Header::new(Kind::Work, Uuid::nil()), Body::Table(sample()))
            .send(&mut a, None)
            .expect("send");
        let (_, got) = Envelope::recv(&b, false, 0).expect("recv");
        assert!(matches!(got.body, Body::Frames(_)));
        let (mut c, d) = pair();
        got.send(&mut c, None).expect("forward");
        let (_, mut again) = Envelope::recv(&d, false, 0).expect("recv");
        assert_eq!(
            format!("{:?}", again.take_table().expect("decode")),
            format!("{:?}", sample())
        );
    }

    #[test]
    fn lies_about_sizes_are_refused() {
        let (a, b) = pair();
        let mut header = Header::new(Kind::Submit, Uuid::new_v4());
        header.schema = vec![ColumnSpec {
            name: "x".into(),
            dtype: DType::Float64,
        }];
        header.rows = 4;
        let mut bytes = Vec::new();
        ciborium::into_writer(&header, &mut bytes).expect("cbor");
        a.send(&Uuid::new_v4().as_bytes()[..], zmq::SNDMORE)
            .expect("send");
        a.send(bytes, zmq::SNDMORE).expect("send");
        a.send(&[0u8; 24][..], 0).expect("send");
        let (_, mut env) = Envelope::recv(&b, false, 0).expect("recv");
        let err = env.take_table().expect_err("short frame");
        assert!(err.contains("must have 32 bytes, has 24"), "{err}");
    }

    #[test]
    fn wrong_version_and_garbage_are_malformed() {
        let (a, b) = pair();
        let mut header = Header::new(Kind::Ping, Uuid::new_v4());
        header.v = 99;
        let mut bytes = Vec::new();
        ciborium::into_writer(&header, &mut bytes).expect("cbor");
        a.send(&Uuid::new_v4().as_bytes()[..], zmq::SNDMORE)
            .expect("send");
        a.send(bytes, 0).expect("send");
        match Envelope::recv(&b, false, 0) {
            Err(WireError::Malformed { reason, .. }) => {
                assert!(reason.contains("version 99"), "{reason}")
            }
            other => panic!("expected malformed, got {:?}", other.map(|(_, e)| e.header)),
        }
        a.send(&b"short"[..], 0).expect("send");
        assert!(matches!(
            Envelope::recv(&b, false, 0),
            Err(WireError::Malformed { .. })
        ));
    }

    #[test]
    fn utf8_offsets_are_checked() {
        let mut bytes = vec![0u8; 16];
        bytes[8] = 5; // claims 5 bytes of data, none follow
        let err = decode_column(DType::Utf8, 1, &bytes).expect_err("bad offsets");
        assert!(err.contains("end at the data length"), "{err}");
    }

    #[test]
    fn row_counts_are_checked_against_the_bytes_before_anything_is_allocated() {
        for dtype in [DType::Int64, DType::Float64, DType::Bool, DType::Utf8] {
            for rows in [1 << 62, usize::MAX, usize::MAX / 8 + 1] {
                let err = decode_column(dtype, rows, &[0u8; 8]).expect_err("a lie");
                assert!(err.contains("has 8"), "{dtype}: {err}");
            }
        }
        // Offsets that jump past the data and come back.
        let mut bytes = vec![0u8; 24 + 5];
        bytes[8] = 100;
        bytes[16] = 5;
        bytes[24..].copy_from_slice(b"hello");
        let err = decode_column(DType::Utf8, 2, &bytes).expect_err("bad offsets");
        assert!(err.contains("offsets"), "{err}");
    }

    #[test]
    fn sliced_arrays_send_their_own_values() {
        let a = array![1.0, 2.0, 3.0, 4.0];
        let tail = a.slice_move(ndarray::s![2..]);
        assert_eq!(contiguous(tail), vec![3.0, 4.0]);
    }
}
