//! A connection: one ZeroMQ socket and everything about speaking over it.
//! It waits for and receives whole envelopes (a bad one is an error, never
//! a panic), and sends without blocking when asked to.
//!
//! Two kinds: a client's or a node's DEALER, connected to the relay, which
//! also proves the cluster secret ([`Connection::prove`]); and one of the
//! relay's ROUTERs ([`Connection::bind`]), which also knows which peer
//! spoke over which connection ([`crate::connections`]) and keeps answers
//! a peer cannot take yet in an outbox, in order. Clients, nodes, the
//! supervisor's status query and the relay all go through it; nothing
//! else receives on an rtl socket.

use crate::auth::{ProofError, Prover, Secret};
use crate::connections::Connections;
use crate::{Envelope, Message, Peer, WireError};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How a connection's socket is set up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The routing id the relay will know it by (libzmq makes one up
    /// when absent).
    pub identity: Option<Vec<u8>>,
    /// How long messages still queued may delay closing.
    pub linger: Duration,
    /// Largest message accepted (0: no limit).
    pub max_message_bytes: usize,
}

/// How one of the relay's sockets is set up.
#[derive(Debug, Clone)]
pub struct Binding {
    /// What it serves ("client", "node"), for errors.
    pub what: &'static str,
    /// Messages libzmq takes in from one peer before they are read.
    pub inbound: i32,
    /// Messages libzmq queues for one peer (None: its default).
    pub outbound: Option<i32>,
    /// Largest message part accepted from a peer.
    pub max_message_bytes: usize,
}

/// A socket, with what it knows of its peers when it is a ROUTER.
pub struct Connection {
    socket: zmq::Socket,
    /// A ROUTER's peers; None for a DEALER.
    peers: Option<Peers>,
}

/// What a ROUTER knows of its peers.
struct Peers {
    /// Which connection each spoke over, and which have closed.
    open: Connections,
    /// Peers whose connection closed, found while receiving and not yet
    /// taken by [`Connection::closed`].
    gone: Vec<Vec<u8>>,
    /// Answers waiting for peers that cannot take them yet, in order.
    outbox: HashMap<Vec<u8>, VecDeque<Envelope>>,
}

/// A send that failed for good: the peer's connection is gone, or its
/// socket refuses.
#[derive(Debug)]
pub struct Refused {
    /// Why.
    pub error: zmq::Error,
    /// The envelope, when it was not sent at all.
    pub unsent: Option<Box<Envelope>>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("id", &self.id)
            .field("job", &self.job)
            .field("kind", &self.message.kind())
            .field("bytes", &self.body.bytes())
            .finish()
    }
}

impl Connection {
    /// Connects a DEALER to `endpoint`.
    pub fn connect(
        ctx: &zmq::Context,
        endpoint: &str,
        options: &Options,
    ) -> Result<Connection, WireError> {
        let socket = ctx
            .socket(zmq::DEALER)
            .map_err(WireError::socket("create a socket"))?;
        let configured = (|| {
            if let Some(id) = &options.identity {
                socket.set_identity(id)?;
            }
            socket.set_linger(i32::try_from(options.linger.as_millis()).unwrap_or(i32::MAX))?;
            if options.max_message_bytes > 0 {
                socket
                    .set_maxmsgsize(i64::try_from(options.max_message_bytes).unwrap_or(i64::MAX))?;
            }
            Ok(())
        })();
        configured.map_err(WireError::socket("configure a socket"))?;
        socket
            .connect(endpoint)
            .map_err(WireError::socket(format!("connect to {endpoint}")))?;
        Ok(Connection {
            socket,
            peers: None,
        })
    }

    /// Wraps a socket made elsewhere (a DEALER or PAIR).
    pub fn from_socket(socket: zmq::Socket) -> Connection {
        Connection {
            socket,
            peers: None,
        }
    }

    /// Binds a ROUTER at `endpoint` (`tcp://127.0.0.1:*` picks a free port;
    /// [`Connection::endpoint`] tells which) and starts watching its
    /// connections.
    pub fn bind(
        ctx: &zmq::Context,
        endpoint: &str,
        binding: &Binding,
    ) -> Result<Connection, WireError> {
        let what = binding.what;
        let socket = ctx
            .socket(zmq::ROUTER)
            .map_err(WireError::socket(format!("create the {what} socket")))?;
        // Fail loudly on a vanished peer instead of dropping silently.
        socket
            .set_router_mandatory(true)
            .and_then(|_| socket.set_linger(0))
            .and_then(|_| socket.set_rcvhwm(binding.inbound))
            .and_then(|_| {
                socket.set_maxmsgsize(i64::try_from(binding.max_message_bytes).unwrap_or(i64::MAX))
            })
            .and_then(|_| match binding.outbound {
                Some(hwm) => socket.set_sndhwm(hwm),
                None => Ok(()),
            })
            .map_err(WireError::socket(format!("configure the {what} socket")))?;
        socket.bind(endpoint).map_err(WireError::socket(format!(
            "bind the {what} socket to {endpoint}"
        )))?;
        let open = Connections::watch(ctx, &socket, what)?;
        Ok(Connection {
            socket,
            peers: Some(Peers {
                open,
                gone: Vec::new(),
                outbox: HashMap::new(),
            }),
        })
    }

    /// Where a bound socket listens, with the port the system picked.
    pub fn endpoint(&self) -> Result<String, WireError> {
        let doing = "tell where a socket is bound";
        match self.socket.get_last_endpoint() {
            Ok(Ok(endpoint)) => Ok(endpoint),
            Ok(Err(_)) => Err(WireError::socket(doing)(zmq::Error::EINVAL)),
            Err(e) => Err(WireError::socket(doing)(e)),
        }
    }

    /// Sets how long messages still queued may delay closing.
    pub fn set_linger(&self, linger: Duration) -> Result<(), zmq::Error> {
        self.socket
            .set_linger(i32::try_from(linger.as_millis()).unwrap_or(i32::MAX))
    }

    /// What to poll: the socket for messages and, for a ROUTER, its
    /// connection watch for closures.
    pub fn poll_items(&self) -> Vec<zmq::PollItem<'_>> {
        let mut items = vec![self.socket.as_poll_item(zmq::POLLIN)];
        if let Some(peers) = &self.peers {
            items.push(peers.open.as_poll_item());
        }
        items
    }

    /// A ROUTER's next envelope if one is there now, with who sent it. The
    /// closures libzmq reported before it are noted first (see
    /// [`Connection::closed`]), so the sender's connection is its current
    /// one.
    pub fn recv_from(&mut self) -> Result<Option<(Peer, Envelope)>, WireError> {
        let received = match Envelope::recv_from(&self.socket, zmq::DONTWAIT) {
            Ok(received) => received,
            Err(WireError::Zmq(zmq::Error::EAGAIN | zmq::Error::EINTR)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if let Some(peers) = &mut self.peers {
            let gone = peers.open.closed();
            peers.gone.extend(gone);
            peers.open.spoke(&received.0);
        }
        Ok(Some(received))
    }

    /// A ROUTER's peers whose connection has closed since the last call.
    /// Their routing ids are free for anyone to take: whatever is known of
    /// them must go before the next message is handled.
    pub fn closed(&mut self) -> Vec<Vec<u8>> {
        let Some(peers) = &mut self.peers else {
            return Vec::new();
        };
        let mut gone = std::mem::take(&mut peers.gone);
        gone.extend(peers.open.closed());
        gone
    }

    /// Sends to `route` without waiting: an error when the peer cannot
    /// take it now or is gone (EHOSTUNREACH).
    pub fn send_now_to(&mut self, route: &[u8], env: Envelope) -> Result<(), zmq::Error> {
        env.send_now(&mut self.socket, Some(route))
    }

    /// Sends to `route`, in order after what already waits for it; what
    /// the peer cannot take now waits in its outbox.
    pub fn send_to(&mut self, route: &[u8], env: Envelope) -> Result<(), Refused> {
        let Some(peers) = &mut self.peers else {
            return Err(Refused {
                error: zmq::Error::ENOTSUP,
                unsent: Some(Box::new(env)),
            });
        };
        if let Some(waiting) = peers.outbox.get_mut(route) {
            waiting.push_back(env);
            return Ok(());
        }
        match env.send_or_keep(&mut self.socket, Some(route)) {
            Ok(()) => Ok(()),
            Err((zmq::Error::EAGAIN, Some(env))) => {
                peers
                    .outbox
                    .entry(route.to_vec())
                    .or_default()
                    .push_back(*env);
                Ok(())
            }
            Err((error, unsent)) => Err(Refused { error, unsent }),
        }
    }

    /// Sends what waits in the outboxes, as far as the peers take it; the
    /// peers whose sends failed for good, each with why and what was not
    /// sent (the rest of its outbox stays until [`Connection::forget`]).
    pub fn flush(&mut self) -> Vec<(Vec<u8>, Refused)> {
        let Some(peers) = &mut self.peers else {
            return Vec::new();
        };
        let mut failed = Vec::new();
        for (route, waiting) in peers.outbox.iter_mut() {
            while let Some(env) = waiting.pop_front() {
                match env.send_or_keep(&mut self.socket, Some(route)) {
                    Ok(()) => {}
                    Err((zmq::Error::EAGAIN, Some(env))) => {
                        waiting.push_front(*env);
                        break;
                    }
                    Err((error, unsent)) => {
                        failed.push((route.clone(), Refused { error, unsent }));
                        break;
                    }
                }
            }
        }
        peers.outbox.retain(|_, waiting| !waiting.is_empty());
        failed
    }

    /// Drops what waits for `route`, and gives it back (to release what it
    /// holds).
    pub fn forget(&mut self, route: &[u8]) -> VecDeque<Envelope> {
        self.peers
            .as_mut()
            .and_then(|p| p.outbox.remove(route))
            .unwrap_or_default()
    }

    /// Whether anything waits in an outbox.
    pub fn has_waiting(&self) -> bool {
        self.peers.as_ref().is_some_and(|p| !p.outbox.is_empty())
    }

    /// Column bytes waiting in the outboxes.
    pub fn outbox_bytes(&self) -> usize {
        self.peers.as_ref().map_or(0, |p| {
            p.outbox.values().flatten().map(|e| e.body.bytes()).sum()
        })
    }

    /// The socket, given back.
    pub fn into_socket(self) -> zmq::Socket {
        self.socket
    }

    /// The socket, for polling it together with other things.
    pub fn socket(&self) -> &zmq::Socket {
        &self.socket
    }

    /// Sends, waiting while the socket has no room.
    pub fn send(&mut self, env: Envelope) -> Result<(), zmq::Error> {
        env.send(&mut self.socket, None)
    }

    /// Sends without waiting; when there is no room now (the relay is
    /// away, or slower than this peer), the envelope comes back to send
    /// later (see [`Envelope::send_or_keep`]).
    pub fn send_or_keep(
        &mut self,
        env: Envelope,
    ) -> Result<(), (zmq::Error, Option<Box<Envelope>>)> {
        env.send_or_keep(&mut self.socket, None)
    }

    /// The next envelope, waiting at most `wait` for one: None when none
    /// came (or a signal cut the wait short).
    pub fn recv(&mut self, wait: Duration) -> Result<Option<Envelope>, WireError> {
        let millis = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        match self.socket.poll(zmq::POLLIN, millis) {
            Ok(0) | Err(zmq::Error::EINTR) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(WireError::Zmq(e)),
        }
        self.try_recv()
    }

    /// The next envelope if one is there now.
    pub fn try_recv(&mut self) -> Result<Option<Envelope>, WireError> {
        match Envelope::recv(&self.socket, zmq::DONTWAIT) {
            Ok(env) => Ok(Some(env)),
            Err(WireError::Zmq(zmq::Error::EAGAIN | zmq::Error::EINTR)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Proves to the relay that this peer holds `secret`, and checks that
    /// the relay does too; for clients, before they send anything else.
    pub fn prove(&mut self, secret: &Secret, timeout: Duration) -> Result<(), ProofError> {
        let mut prover = Prover::new(secret.clone());
        // An empty proof asks for a challenge.
        self.send_proof(Vec::new(), Vec::new())?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ProofError::Silent(timeout));
            }
            let env = match self.recv(left) {
                Ok(Some(env)) => env,
                Ok(None) => continue,
                Err(e) => {
                    return Err(ProofError::Transport(format!(
                        "bad message from the relay: {e}"
                    )))
                }
            };
            match env.message {
                Message::Challenge { nonce } => {
                    let (nonce, proof) = prover
                        .answer(&nonce)
                        .map_err(|e| ProofError::Transport(e.to_string()))?;
                    self.send_proof(nonce, proof)?;
                }
                Message::Welcome { proof } if prover.welcomed(&proof) => return Ok(()),
                Message::Welcome { .. } => {
                    return Err(ProofError::Refused(
                        "the relay's answer does not match this machine's cluster secret: is it another cluster's relay?"
                            .into(),
                    ))
                }
                Message::Error(failure) => {
                    return Err(ProofError::Refused(format!(
                        "the relay refused this machine's cluster secret: {}",
                        failure.message
                    )));
                }
                _ => {}
            }
        }
    }

    fn send_proof(&mut self, nonce: Vec<u8>, proof: Vec<u8>) -> Result<(), ProofError> {
        self.send(Envelope::control(Message::Proof { nonce, proof }))
            .map_err(|e| ProofError::Transport(format!("cannot reach the relay: {e}")))
    }
}
