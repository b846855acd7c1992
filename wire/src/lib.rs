//! The wire format: the one place that turns ZeroMQ frames into envelopes and
//! back. Nothing else in rtl reads or writes frames.
//!
//! Every message is an [`Envelope`]: a 16-byte id frame (UUID v4), a CBOR
//! header map (decoded once into a [`Message`]), then one frame per column
//! holding its raw little-endian bytes. docs/PROTOCOL.md describes the frames byte by byte; keep the two in step.
//!
//! Column frames leave a process without being copied into another buffer:
//! a numeric column's own allocation is handed to libzmq, which frees it once
//! the bytes are on the wire. Frames that arrive are kept as they are, so the
//! relay forwards a table from one node to another without looking inside.
//!
//! Beside the envelope: [`auth`], the handshake that proves a peer holds
//! the cluster secret; [`connections`], which ROUTER connections are open;
//! [`link`], a node's connection to the relay.

pub mod auth;
pub mod connection;
pub mod connections;
pub mod link;
mod message;

pub use message::{
    CacheReport, Done, Failure, InstalledTask, Kind, Message, NodeInfo, NodeStatus, PlanRef,
    ProgressEvent, StatusReport, Submit, Work, VERSION,
};

use message::Header;
use ndarray::Array1;
use rtl_tasks::codec::{decode_column, encode_rows_into, frame_holds, le_bytes};
pub use rtl_tasks::codec::{schema_of, ColumnSpec};
use rtl_tasks::{Column, Table};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// The table an envelope carries, if any.
pub enum Body {
    /// No table (control messages).
    Empty,
    /// Column frames as received, not yet decoded; forwarded as they are.
    Frames {
        /// The columns, one frame each, in this order.
        schema: Vec<ColumnSpec>,
        /// Rows, as the sender said (checked when decoded).
        rows: u64,
        /// The frames.
        frames: Vec<zmq::Message>,
    },
    /// A table in the LMDB cache the sender shares with the receiver: the
    /// keys of its pieces, in row order.
    Refs {
        /// The columns.
        schema: Vec<ColumnSpec>,
        /// Rows in all the pieces.
        rows: u64,
        /// The pieces' cache keys.
        keys: Vec<String>,
    },
    /// A table to encode on send.
    Table(Table),
    /// A table its sender keeps as well (to send again): its numeric
    /// columns leave from where they are, without a copy, and libzmq holds
    /// a reference until it has sent them.
    Shared(Arc<Table>),
    /// Several tables, in order: the inputs of a combining task. Each is
    /// one of the kinds above.
    Parts(Vec<Body>),
}

impl Body {
    /// A table in the cache under `keys`.
    pub fn refs(table: &Table, keys: Vec<String>) -> Body {
        Body::Refs {
            schema: schema_of(table),
            rows: table.rows() as u64,
            keys,
        }
    }

    /// Bytes of column data it holds (nothing for references).
    pub fn bytes(&self) -> usize {
        match self {
            Body::Empty | Body::Refs { .. } => 0,
            Body::Frames { frames, .. } => frames.iter().map(|f| f.len()).sum(),
            Body::Table(table) => table.wire_size(),
            Body::Shared(table) => table.wire_size(),
            Body::Parts(parts) => parts.iter().map(Body::bytes).sum(),
        }
    }

    /// Rows of the table (as its sender said, for frames and references);
    /// of all of them, for several.
    pub fn rows(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Frames { rows, .. } | Body::Refs { rows, .. } => {
                usize::try_from(*rows).unwrap_or(usize::MAX)
            }
            Body::Table(t) => t.rows(),
            Body::Shared(t) => t.rows(),
            Body::Parts(parts) => parts.iter().map(Body::rows).sum(),
        }
    }

    /// The cache keys it names; none for an inline table.
    pub fn keys(&self) -> Cow<'_, [String]> {
        match self {
            Body::Refs { keys, .. } => Cow::Borrowed(keys),
            Body::Parts(parts) => {
                Cow::Owned(parts.iter().flat_map(|p| p.keys().into_owned()).collect())
            }
            _ => Cow::Borrowed(&[]),
        }
    }

    /// Takes the cache keys it names, leaving it empty (each of several
    /// tables by reference); none for an inline table, which stays.
    pub fn take_keys(&mut self) -> Vec<String> {
        match self {
            Body::Refs { .. } => match std::mem::replace(self, Body::Empty) {
                Body::Refs { keys, .. } => keys,
                _ => Vec::new(),
            },
            Body::Parts(parts) => parts.iter_mut().flat_map(Body::take_keys).collect(),
            _ => Vec::new(),
        }
    }

    /// The tables it carries: several for [`Body::Parts`], else itself.
    pub fn into_parts(self) -> Vec<Body> {
        match self {
            Body::Parts(parts) => parts,
            one => vec![one],
        }
    }

    /// A copy to send again: references cloned, column frames copied.
    pub fn duplicate(&self) -> Body {
        match self {
            Body::Empty => Body::Empty,
            Body::Frames {
                schema,
                rows,
                frames,
            } => Body::Frames {
                schema: schema.clone(),
                rows: *rows,
                frames: frames.iter().map(|f| zmq::Message::from(&f[..])).collect(),
            },
            Body::Refs { schema, rows, keys } => Body::Refs {
                schema: schema.clone(),
                rows: *rows,
                keys: keys.clone(),
            },
            Body::Table(table) => Body::Table(table.clone()),
            Body::Shared(table) => Body::Shared(table.clone()),
            Body::Parts(parts) => Body::Parts(parts.iter().map(Body::duplicate).collect()),
        }
    }

    /// Checks, without decoding, that inline column frames are as large as
    /// the row count says: what the relay passes on without reading must
    /// not lie to whoever reads it.
    pub fn check_frames(&self) -> Result<(), WireError> {
        if let Body::Parts(parts) = self {
            return parts.iter().try_for_each(Body::check_frames);
        }
        let Body::Frames {
            schema,
            rows,
            frames,
        } = self
        else {
            return Ok(());
        };
        let rows = usize::try_from(*rows)
            .map_err(|_| WireError::BadTable(format!("row count {rows} is too large")))?;
        for (spec, frame) in schema.iter().zip(frames) {
            frame_holds(spec.dtype, rows, frame)
                .map_err(|e| WireError::BadTable(format!("column {:?}: {e}", spec.name)))?;
        }
        Ok(())
    }

    /// The inline table, decoded; an empty table when there is none.
    /// References are an error: only a cache reads those.
    pub fn into_table(self) -> Result<Table, WireError> {
        match self {
            Body::Empty => Ok(Table::new()),
            Body::Table(t) => Ok(t),
            Body::Shared(t) => Ok(Arc::unwrap_or_clone(t)),
            Body::Refs { .. } => Err(WireError::BadTable(
                "the table was sent by reference, not inline".into(),
            )),
            Body::Parts(parts) => Err(WireError::BadTable(format!(
                "{} tables were sent where one was expected",
                parts.len()
            ))),
            Body::Frames {
                schema,
                rows,
                frames,
            } => {
                let rows = usize::try_from(rows)
                    .map_err(|_| WireError::BadTable(format!("row count {rows} is too large")))?;
                let columns = schema
                    .iter()
                    .zip(frames.iter())
                    .map(|(spec, frame)| {
                        decode_column(spec.dtype, rows, frame)
                            .map(|c| (spec.name.clone(), c))
                            .map_err(|e| format!("column {:?}: {e}", spec.name))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(WireError::BadTable)?;
                Table::from_columns(columns).map_err(WireError::BadTable)
            }
        }
    }

    /// Writes the table's description into a header's fields: its
    /// columns, rows and keys; for several tables, each one's after the
    /// other's, and `parts` says how many of each are whose.
    fn describe(&self, header: &mut Described) {
        match self {
            Body::Empty => {}
            Body::Frames { schema, rows, .. } => {
                header.schema.extend(schema.iter().cloned());
                header.rows += rows;
            }
            Body::Refs { schema, rows, keys } => {
                header.schema.extend(schema.iter().cloned());
                header.rows += rows;
                header.keys.extend(keys.iter().cloned());
            }
            Body::Table(t) => {
                header.schema.extend(schema_of(t));
                header.rows += t.rows() as u64;
            }
            Body::Shared(t) => {
                header.schema.extend(schema_of(t));
                header.rows += t.rows() as u64;
            }
            Body::Parts(parts) => {
                for part in parts {
                    let mut one = Described::default();
                    part.describe(&mut one);
                    header.parts.push(PartShape {
                        columns: one.schema.len() as u32,
                        rows: one.rows,
                        refs: one.keys.len() as u32,
                    });
                    header.schema.extend(one.schema);
                    header.keys.extend(one.keys);
                    header.rows += one.rows;
                }
            }
        }
    }

    /// Column frames that follow the header.
    fn frames(&self) -> usize {
        match self {
            Body::Empty | Body::Refs { .. } => 0,
            Body::Frames { frames, .. } => frames.len(),
            Body::Table(table) => table.width(),
            Body::Shared(table) => table.width(),
            Body::Parts(parts) => parts.iter().map(Body::frames).sum(),
        }
    }

    /// Sends the column frames; `sent` counts them across the parts of
    /// several tables, and the last of `total` ends the message.
    fn send_frames(
        self,
        socket: &mut zmq::Socket,
        sent: &mut usize,
        total: usize,
    ) -> Result<(), zmq::Error> {
        let mut more = || {
            *sent += 1;
            if *sent < total {
                zmq::SNDMORE
            } else {
                0
            }
        };
        match self {
            Body::Empty | Body::Refs { .. } => {}
            Body::Frames { frames, .. } => {
                for frame in frames {
                    socket.send(frame, more())?;
                }
            }
            Body::Table(table) => {
                for (_, column) in table.into_columns() {
                    send_column(socket, column, more())?;
                }
            }
            Body::Shared(table) => {
                for (_, column) in table.iter() {
                    send_shared_column(socket, &table, column, more())?;
                }
            }
            Body::Parts(parts) => {
                for part in parts {
                    part.send_frames(socket, sent, total)?;
                }
            }
        }
        Ok(())
    }
}

/// A body's description in a header.
#[derive(Default)]
pub(crate) struct Described {
    pub(crate) schema: Vec<ColumnSpec>,
    pub(crate) rows: u64,
    pub(crate) keys: Vec<String>,
    pub(crate) parts: Vec<PartShape>,
}

/// How many of a header's columns and keys, and which rows, belong to one
/// of several tables in a message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PartShape {
    pub(crate) columns: u32,
    pub(crate) rows: u64,
    pub(crate) refs: u32,
}

/// One message: its id, the job it belongs to (nil for messages about no
/// job), what it says, and the table it carries.
pub struct Envelope {
    /// The message's id: a job's id for a submit and its answers, a piece
    /// of work's id for work and its answer.
    pub id: Uuid,
    /// The job it belongs to; nil for heartbeats, the handshake, status.
    pub job: Uuid,
    /// What it says.
    pub message: Message,
    /// The table it carries.
    pub body: Body,
}

/// A message that could not be received or decoded.
#[derive(Debug)]
pub enum WireError {
    /// The socket failed (including EAGAIN on a non-blocking receive).
    Zmq(zmq::Error),
    /// The peer sent something that is not a valid envelope. `route` is
    /// its routing id and `id` the message's id, when known, so the relay
    /// can answer it.
    Malformed {
        /// The sender's routing id.
        route: Option<Vec<u8>>,
        /// The message's id.
        id: Option<Uuid>,
        /// What is wrong with it.
        reason: String,
    },
    /// A socket could not be made, configured, bound or connected.
    Socket {
        /// What was being done, e.g. `bind the client socket to tcp://...`.
        doing: String,
        /// What libzmq said.
        error: zmq::Error,
    },
    /// A table in a message whose columns do not match its row count or
    /// schema, or one sent by reference where only inline will do.
    BadTable(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Zmq(e) => write!(f, "socket error: {e}"),
            WireError::Malformed { reason, .. } => write!(f, "malformed message: {reason}"),
            WireError::Socket { doing, error } => write!(f, "cannot {doing}: {error}"),
            WireError::BadTable(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for WireError {}

impl From<WireError> for String {
    fn from(e: WireError) -> String {
        e.to_string()
    }
}

impl WireError {
    /// A failure of libzmq while doing what `doing` says.
    pub fn socket(doing: impl Into<String>) -> impl FnOnce(zmq::Error) -> WireError {
        let doing = doing.into();
        move |error| WireError::Socket { doing, error }
    }
}

impl From<zmq::Error> for WireError {
    fn from(e: zmq::Error) -> Self {
        WireError::Zmq(e)
    }
}

impl Envelope {
    /// A message with a fresh id.
    pub fn new(job: Uuid, message: Message, body: Body) -> Envelope {
        Envelope::with_id(Uuid::new_v4(), job, message, body)
    }

    /// A message with the given id (an answer carries its question's).
    pub fn with_id(id: Uuid, job: Uuid, message: Message, body: Body) -> Envelope {
        Envelope {
            id,
            job,
            message,
            body,
        }
    }

    /// A message that carries no table and belongs to no job.
    pub fn control(message: Message) -> Envelope {
        Envelope::new(Uuid::nil(), message, Body::Empty)
    }

    /// A copy with the same id, to send again.
    pub fn duplicate(&self) -> Envelope {
        Envelope {
            id: self.id,
            job: self.job,
            message: self.message.clone(),
            body: self.body.duplicate(),
        }
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

    /// The header frame's bytes.
    fn header_frame(&self) -> Result<Vec<u8>, zmq::Error> {
        let mut bytes = Vec::with_capacity(128);
        ciborium::into_writer(&Header::of(self.job, &self.message, &self.body), &mut bytes)
            .map_err(|_| zmq::Error::EINVAL)?;
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
        let frames = body.frames();
        socket.send(header_bytes, if frames > 0 { zmq::SNDMORE } else { 0 })?;
        body.send_frames(socket, &mut 0, frames)
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

    /// Receives one envelope on a DEALER or PAIR socket. Blocks unless
    /// `flags` has `zmq::DONTWAIT`.
    pub fn recv(socket: &zmq::Socket, flags: i32) -> Result<Envelope, WireError> {
        Envelope::decode(recv_parts(socket, flags)?, false).map(|(_, env)| env)
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
        let malformed = |id: Option<Uuid>, reason: String| WireError::Malformed {
            route: route.clone(),
            id,
            reason,
        };
        let id_frame = parts
            .next()
            .ok_or_else(|| malformed(None, "no id frame".into()))?;
        let id = Uuid::from_slice(&id_frame).map_err(|_| {
            malformed(
                None,
                format!("id frame has {} bytes, expected 16", id_frame.len()),
            )
        })?;
        let header_frame = parts
            .next()
            .ok_or_else(|| malformed(Some(id), "no header frame".into()))?;
        let mut header = Header::decode(&header_frame).map_err(|e| malformed(Some(id), e))?;
        let frames: Vec<zmq::Message> = parts.collect();
        let schema = std::mem::take(&mut header.schema);
        let keys = std::mem::take(&mut header.table_refs);
        let body = match std::mem::take(&mut header.parts) {
            shapes if shapes.is_empty() => {
                let shape = PartShape {
                    columns: u32::try_from(schema.len()).unwrap_or(u32::MAX),
                    rows: header.rows,
                    refs: u32::try_from(keys.len()).unwrap_or(u32::MAX),
                };
                let mut one =
                    cut(vec![shape], schema, keys, frames).map_err(|e| malformed(Some(id), e))?;
                one.pop().unwrap_or(Body::Empty)
            }
            shapes => {
                Body::Parts(cut(shapes, schema, keys, frames).map_err(|e| malformed(Some(id), e))?)
            }
        };
        let job = header.job;
        let message = header.message().map_err(|e| malformed(Some(id), e))?;
        Ok((
            route,
            Envelope {
                id,
                job,
                message,
                body,
            },
        ))
    }
}

/// The tables a header's `shapes` describe, cut from its columns, keys
/// and the column frames that followed it: a table by reference has no
/// frames, an inline one a frame per column.
fn cut(
    shapes: Vec<PartShape>,
    schema: Vec<ColumnSpec>,
    keys: Vec<String>,
    frames: Vec<zmq::Message>,
) -> Result<Vec<Body>, String> {
    let columns: u64 = shapes.iter().map(|s| u64::from(s.columns)).sum();
    let refs: u64 = shapes.iter().map(|s| u64::from(s.refs)).sum();
    let expected: u64 = shapes
        .iter()
        .filter(|s| s.refs == 0)
        .map(|s| u64::from(s.columns))
        .sum();
    if columns != schema.len() as u64 || refs != keys.len() as u64 {
        return Err(format!(
            "header describes {} columns and {} cache keys in its parts but has {} and {}",
            columns,
            refs,
            schema.len(),
            keys.len()
        ));
    }
    if frames.len() as u64 != expected {
        return Err(format!(
            "header describes {expected} column frames but {} followed",
            frames.len()
        ));
    }
    let (mut schema, mut keys, mut frames) =
        (schema.into_iter(), keys.into_iter(), frames.into_iter());
    Ok(shapes
        .into_iter()
        .map(|shape| {
            let schema: Vec<ColumnSpec> = schema.by_ref().take(shape.columns as usize).collect();
            let keys: Vec<String> = keys.by_ref().take(shape.refs as usize).collect();
            let rows = shape.rows;
            if !keys.is_empty() {
                Body::Refs { schema, rows, keys }
            } else if schema.is_empty() {
                Body::Empty
            } else {
                let frames = frames.by_ref().take(schema.len()).collect();
                Body::Frames {
                    schema,
                    rows,
                    frames,
                }
            }
        })
        .collect())
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
    use rtl_tasks::DType;

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
        let done = Message::Done(Done {
            stage: 2,
            ..Done::default()
        });
        Envelope::new(Uuid::new_v4(), done.clone(), Body::Table(sample()))
            .send(&mut a, None)
            .expect("send");
        let got = Envelope::recv(&b, 0).expect("recv");
        assert_eq!(got.message, done);
        assert_eq!(got.body.rows(), 3);
        let table = got.body.into_table().expect("decode");
        assert_eq!(format!("{table:?}"), format!("{:?}", sample()));
    }

    #[test]
    fn a_shared_table_goes_out_as_often_as_asked_and_is_released() {
        let (mut a, b) = pair();
        let shared = Arc::new(sample());
        for _ in 0..2 {
            Envelope::new(
                Uuid::new_v4(),
                Message::Result {
                    stage: 0,
                    seq: 0,
                    count: 1,
                },
                Body::Shared(shared.clone()),
            )
            .send(&mut a, None)
            .expect("send");
            let got = Envelope::recv(&b, 0).expect("recv");
            assert_eq!(got.body.rows(), 3);
            let table = got.body.into_table().expect("decode");
            assert_eq!(format!("{table:?}"), format!("{:?}", sample()));
        }
        // Over inproc the frames are received once the receiver has them;
        // libzmq has dropped its references by then.
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn received_frames_forward_unchanged() {
        let (mut a, b) = pair();
        Envelope::new(
            Uuid::nil(),
            Message::Done(Done::default()),
            Body::Table(sample()),
        )
        .send(&mut a, None)
        .expect("send");
        let got = Envelope::recv(&b, 0).expect("recv");
        assert!(matches!(got.body, Body::Frames { .. }));
        let (mut c, d) = pair();
        got.send(&mut c, None).expect("forward");
        let again = Envelope::recv(&d, 0).expect("recv");
        assert_eq!(
            format!("{:?}", again.body.into_table().expect("decode")),
            format!("{:?}", sample())
        );
    }

    #[test]
    fn several_tables_travel_in_one_message_by_reference_and_inline() {
        let (mut a, b) = pair();
        let refs = Body::Refs {
            schema: schema_of(&sample()),
            rows: 3,
            keys: vec!["t:one".into(), "t:two".into()],
        };
        let body = Body::Parts(vec![
            Body::Table(sample()),
            refs,
            Body::Shared(Arc::new(sample())),
        ]);
        Envelope::new(Uuid::nil(), Message::Done(Done::default()), body)
            .send(&mut a, None)
            .expect("send");
        let got = Envelope::recv(&b, 0).expect("recv");
        assert_eq!(got.body.keys().as_ref(), ["t:one", "t:two"]);
        let parts = got.body.into_parts();
        assert_eq!(parts.len(), 3);
        assert!(matches!(&parts[1], Body::Refs { rows: 3, keys, .. } if keys.len() == 2));
        for inline in [&parts[0], &parts[2]] {
            let table = inline.duplicate().into_table().expect("decode");
            assert_eq!(format!("{table:?}"), format!("{:?}", sample()));
        }
        // A header whose parts claim more columns than it has is refused.
        let mut header = Header::of(
            Uuid::new_v4(),
            &Message::Done(Done::default()),
            &Body::Parts(vec![Body::Table(sample())]),
        );
        header.parts[0].columns += 1;
        let mut bytes = Vec::new();
        ciborium::into_writer(&header, &mut bytes).expect("cbor");
        let (c, d) = pair();
        c.send(&Uuid::new_v4().as_bytes()[..], zmq::SNDMORE)
            .expect("send");
        c.send(bytes, 0).expect("send");
        let Err(err) = Envelope::recv(&d, 0) else {
            panic!("a lying header was taken")
        };
        assert!(err.to_string().contains("in its parts"), "{err}");
    }

    #[test]
    fn lies_about_sizes_are_refused() {
        let (a, b) = pair();
        let header = Header::of(
            Uuid::new_v4(),
            &Message::Result {
                stage: 0,
                seq: 0,
                count: 1,
            },
            &Body::Refs {
                schema: vec![ColumnSpec {
                    name: "x".into(),
                    dtype: DType::Float64,
                }],
                rows: 4,
                keys: Vec::new(),
            },
        );
        let mut bytes = Vec::new();
        ciborium::into_writer(&header, &mut bytes).expect("cbor");
        a.send(&Uuid::new_v4().as_bytes()[..], zmq::SNDMORE)
            .expect("send");
        a.send(bytes, zmq::SNDMORE).expect("send");
        a.send(&[0u8; 24][..], 0).expect("send");
        let env = Envelope::recv(&b, 0).expect("recv");
        let err = env.body.into_table().expect_err("short frame");
        assert!(
            matches!(&err, WireError::BadTable(why) if why.contains("must have 32 bytes, has 24")),
            "{err}"
        );
    }

    #[test]
    fn wrong_version_and_garbage_are_malformed() {
        let (a, b) = pair();
        let mut header = Header::of(Uuid::new_v4(), &Message::Ping, &Body::Empty);
        header.v = 99;
        let mut bytes = Vec::new();
        ciborium::into_writer(&header, &mut bytes).expect("cbor");
        a.send(&Uuid::new_v4().as_bytes()[..], zmq::SNDMORE)
            .expect("send");
        a.send(bytes, 0).expect("send");
        match Envelope::recv(&b, 0) {
            Err(WireError::Malformed { reason, .. }) => {
                assert!(reason.contains("version 99"), "{reason}")
            }
            other => panic!("expected malformed, got {:?}", other.map(|e| e.message)),
        }
        a.send(&b"short"[..], 0).expect("send");
        assert!(matches!(
            Envelope::recv(&b, 0),
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
