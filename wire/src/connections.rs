//! Which connection each peer of a ROUTER socket speaks over, and which
//! peers go when a connection closes.
//!
//! A routing id is only a name: once its connection closes, anyone may
//! connect under it. So the relay ties what it knows about a peer (trust
//! from the handshake, jobs, held work) to the connection the peer spoke
//! over, and lets it all go the moment that connection closes, before it
//! reads another message. libzmq tells which connection a message came
//! over (its file descriptor, in the message's `__fd` property, see
//! [`crate::Peer`]) and, through a socket monitor, when one closes.
//!
//! Order matters: libzmq reports a closed connection before it closes the
//! descriptor, so before a new connection can reuse the number. The relay
//! drains the closures before each message it handles, so a message can
//! never be taken for one of a connection that has already closed.
//!
//! The monitor's event frames are libzmq's format, not rtl's: a 6-byte
//! frame (event number as u16, value as u32, both native-endian), then the
//! endpoint. They are read here and nowhere else.

use crate::{Peer, WireError};
use std::collections::HashMap;
use uuid::Uuid;

/// A routing id for a client's connection: 16 random bytes, so nobody can
/// guess it to squat on it (a name taken by a live connection is refused,
/// so a squatter could keep a client that reconnects out).
pub fn fresh_routing_id() -> Result<Vec<u8>, String> {
    let mut id = crate::auth::random::<16>()?;
    // Ids starting with a zero byte are libzmq's own.
    id[0] |= 0x80;
    Ok(id.to_vec())
}

/// The routing ids of one ROUTER socket, by connection.
pub struct Connections {
    monitor: zmq::Socket,
    /// The connection each routing id last spoke over.
    connection_of: HashMap<Vec<u8>, i32>,
    /// The routing ids that spoke over each connection (one, for rtl's own
    /// peers).
    routes_of: HashMap<i32, Vec<Vec<u8>>>,
}

impl Connections {
    /// Starts watching the connections of `socket` (`what` names it in
    /// errors).
    pub fn watch(
        ctx: &zmq::Context,
        socket: &zmq::Socket,
        what: &str,
    ) -> Result<Connections, WireError> {
        let endpoint = format!("inproc://rtl-monitor-{what}-{}", Uuid::new_v4().simple());
        let monitor = (|| {
            socket.monitor(&endpoint, zmq_sys::ZMQ_EVENT_DISCONNECTED as i32)?;
            let monitor = ctx.socket(zmq::PAIR)?;
            monitor.connect(&endpoint)?;
            Ok(monitor)
        })()
        .map_err(WireError::socket(format!(
            "watch the {what} socket's connections"
        )))?;
        Ok(Connections {
            monitor,
            connection_of: HashMap::new(),
            routes_of: HashMap::new(),
        })
    }

    /// Readable when a connection has closed.
    pub fn as_poll_item(&self) -> zmq::PollItem<'_> {
        self.monitor.as_poll_item(zmq::POLLIN)
    }

    /// Notes the connection `peer` spoke over.
    pub fn spoke(&mut self, peer: &Peer) {
        let Some(fd) = peer.connection else {
            return;
        };
        match self.connection_of.insert(peer.route.clone(), fd) {
            Some(old) if old == fd => {}
            old => {
                if let Some(old) = old {
                    self.unlink(old, &peer.route);
                }
                self.routes_of
                    .entry(fd)
                    .or_default()
                    .push(peer.route.clone());
            }
        }
    }

    /// The routing ids whose connection has closed since the last call.
    pub fn closed(&mut self) -> Vec<Vec<u8>> {
        let mut gone = Vec::new();
        while let Ok(frames) = self.monitor.recv_multipart(zmq::DONTWAIT) {
            let Some(fd) = frames.first().and_then(|f| disconnected(f)) else {
                continue;
            };
            for route in self.routes_of.remove(&fd).unwrap_or_default() {
                self.connection_of.remove(&route);
                gone.push(route);
            }
        }
        gone
    }

    fn unlink(&mut self, fd: i32, route: &[u8]) {
        if let Some(routes) = self.routes_of.get_mut(&fd) {
            routes.retain(|r| r != route);
            if routes.is_empty() {
                self.routes_of.remove(&fd);
            }
        }
    }
}

/// The descriptor of a `disconnected` monitor event's first frame.
fn disconnected(frame: &[u8]) -> Option<i32> {
    let event = u16::from_ne_bytes(frame.get(..2)?.try_into().ok()?);
    let value = u32::from_ne_bytes(frame.get(2..6)?.try_into().ok()?);
    (u32::from(event) == zmq_sys::ZMQ_EVENT_DISCONNECTED).then_some(value as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_connection_takes_its_routing_ids_and_only_those() {
        let ctx = zmq::Context::new();
        let router = ctx.socket(zmq::ROUTER).expect("router");
        router.bind("tcp://127.0.0.1:*").expect("bind");
        let endpoint = router.get_last_endpoint().expect("endpoint").expect("utf8");
        let mut connections = Connections::watch(&ctx, &router, "test").expect("watch");
        let dealer = |id: &[u8]| {
            let s = ctx.socket(zmq::DEALER).expect("dealer");
            s.set_identity(id).expect("id");
            s.set_linger(0).expect("linger");
            s.connect(&endpoint).expect("connect");
            s.send("hello", 0).expect("send");
            s
        };
        // Messages tell which connection they came over.
        let a = dealer(b"peer-a");
        let b = dealer(b"peer-b");
        for _ in 0..2 {
            let route = router.recv_bytes(0).expect("route");
            let mut payload = router.recv_msg(0).expect("payload");
            let fd = payload.gets("__fd").and_then(|s| s.parse().ok());
            assert!(fd.is_some(), "no descriptor on a TCP message");
            connections.spoke(&Peer {
                route,
                connection: fd,
            });
        }
        drop(a);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let gone = loop {
            let gone = connections.closed();
            if !gone.is_empty() || std::time::Instant::now() > deadline {
                break gone;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(gone, [b"peer-a".to_vec()]);
        drop(b);
    }
}
