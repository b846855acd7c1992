//! The relay's routing state: which nodes are alive, how much room each has,
//! which envelopes wait for a node and which are out on one.
//!
//! Pure bookkeeping with no sockets, so every rule here is unit-tested:
//! work goes only to a node with free credit (the least loaded first), a
//! node that stops heartbeating is dropped after a timeout and the envelopes
//! it held are reported back, a node found gone (its connection refused a
//! send, its process died) is dropped at once the same way, the work whose
//! send it refused goes back to the queue without spending an attempt, and
//! a node that says goodbye gets no new work. Silence is measured in time
//! the relay itself was running: a relay that stalled does not blame its
//! nodes for the messages it did not read.

use rtl_wire::{Envelope, Message, NodeInfo, NodeStatus};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A node's routing id on the relay's node socket.
pub type NodeId = Vec<u8>;

struct Node {
    info: NodeInfo,
    in_flight: u32,
    last_seen: Instant,
    /// When it joined this relay.
    joined: Instant,
    leaving: bool,
    /// Envelopes it answered, counted by the relay.
    answered: u64,
    /// `dispatched` when it last got work, so ties go round-robin.
    last_work: u64,
}

impl Node {
    fn room(&self) -> u32 {
        if self.leaving {
            0
        } else {
            self.info.capacity.saturating_sub(self.in_flight)
        }
    }
}

/// An envelope out on a node.
pub struct Assignment {
    /// The node it was sent to.
    pub node: NodeId,
    /// The job it belongs to.
    pub job: Uuid,
    /// The stage it runs.
    pub stage: u32,
    /// 1 for the first time it was sent, 2 for the first resend, ...
    pub attempt: u32,
    /// A copy to send again if the node dies before answering.
    pub retained: Option<Envelope>,
}

/// A node dropped (silent, or gone), with the envelopes it never answered.
pub struct Lost {
    /// The node's routing id.
    pub node: NodeId,
    /// What the node last said about itself.
    pub info: NodeInfo,
    /// Envelopes it held, with how they were sent.
    pub envelopes: Vec<(Uuid, Assignment)>,
}

/// The relay's routing state: which nodes are alive and what each holds,
/// the queue of envelopes waiting for room, and what is out where.
#[derive(Default)]
pub struct Routing {
    nodes: BTreeMap<NodeId, Node>,
    queue: VecDeque<Envelope>,
    /// Attempt numbers of queued envelopes sent before (absent: first).
    attempts: HashMap<Uuid, u32>,
    in_flight: HashMap<Uuid, Assignment>,
    dispatched: u64,
    /// The installed tasks each stage of a job needs, for jobs that use
    /// any: their work goes only to nodes that have those very tasks.
    needs: HashMap<Uuid, Vec<Vec<Need>>>,
}

/// An installed task a stage needs: its name and the digest of the
/// version the job runs.
pub type Need = (String, String);

/// Queued envelopes looked at for one that some node with room can run:
/// work waiting for a busy node with a special task lets the work behind
/// it go ahead, at a bounded cost per dispatch.
const SCAN: usize = 1024;

/// Whether `node` has every task of `needs`.
fn has(node: &Node, needs: &[Need]) -> bool {
    needs.iter().all(|(name, digest)| {
        node.info
            .tasks
            .iter()
            .any(|t| t.name == *name && t.digest == *digest)
    })
}

impl Routing {
    /// No nodes, nothing queued.
    pub fn new() -> Routing {
        Routing::default()
    }

    /// Records a heartbeat; returns true when the node is new.
    pub fn heard_from(&mut self, id: &[u8], info: NodeInfo, now: Instant) -> bool {
        match self.nodes.get_mut(id) {
            Some(node) => {
                node.info = info;
                node.last_seen = now;
                false
            }
            None => {
                self.nodes.insert(
                    id.to_vec(),
                    Node {
                        info,
                        in_flight: 0,
                        last_seen: now,
                        joined: now,
                        leaving: false,
                        answered: 0,
                        last_work: 0,
                    },
                );
                true
            }
        }
    }

    /// Marks a node as leaving: it finishes what it holds and gets nothing new.
    pub fn leaving(&mut self, id: &[u8]) {
        if let Some(node) = self.nodes.get_mut(id) {
            node.leaving = true;
        }
        self.forget_if_done(id);
    }

    /// What a known node last said about itself.
    pub fn node_info(&self, id: &[u8]) -> Option<&NodeInfo> {
        self.nodes.get(id).map(|n| &n.info)
    }

    /// Queues an envelope for the next node with room.
    pub fn enqueue(&mut self, envelope: Envelope) {
        self.queue.push_back(envelope);
    }

    /// Queues an envelope whose node died, ahead of new work: `attempt` is
    /// the number it will carry when sent.
    pub fn requeue(&mut self, envelope: Envelope, attempt: u32) {
        self.attempts.insert(envelope.id, attempt);
        self.queue.push_front(envelope);
    }

    /// Spends one more attempt of envelope `id`, wherever it is (queued
    /// or out on a node): its attempt number now, its job and stage; None
    /// once it is answered or gone with its job.
    pub fn charge(&mut self, id: &Uuid) -> Option<(u32, Uuid, u32)> {
        if let Some(a) = self.in_flight.get_mut(id) {
            a.attempt += 1;
            return Some((a.attempt, a.job, a.stage));
        }
        let queued = self.queue.iter().find(|e| e.id == *id)?;
        let (job, stage) = (queued.job, stage_of(queued));
        let attempt = self.attempts.entry(*id).or_insert(1);
        *attempt += 1;
        Some((*attempt, job, stage))
    }

    /// Keeps `copy` of out-going envelope `id`, to send again if need be.
    pub fn retain(&mut self, id: &Uuid, copy: Envelope) {
        if let Some(a) = self.in_flight.get_mut(id) {
            a.retained = Some(copy);
        }
    }

    /// Records the installed tasks each stage of `job` needs (by stage).
    pub fn require(&mut self, job: Uuid, needs: Vec<Vec<Need>>) {
        if needs.iter().any(|n| !n.is_empty()) {
            self.needs.insert(job, needs);
        }
    }

    /// Forgets what `job` needed (it ended).
    pub fn forget_needs(&mut self, job: &Uuid) {
        self.needs.remove(job);
    }

    /// The installed tasks envelope `env` needs.
    fn needs_of(&self, env: &Envelope) -> &[Need] {
        self.needs
            .get(&env.job)
            .and_then(|stages| stages.get(stage_of(env) as usize))
            .map_or(&[], Vec::as_slice)
    }

    /// The next queued envelope and the node to send it to, if a node with
    /// room can run it; the envelope is recorded as out on that node.
    pub fn next_dispatch(&mut self) -> Option<(NodeId, Envelope)> {
        if !self.nodes.values().any(|n| n.room() > 0) {
            return None;
        }
        let (index, id) = self
            .queue
            .iter()
            .take(SCAN)
            .enumerate()
            .find_map(|(index, env)| {
                let needs = self.needs_of(env);
                self.nodes
                    .iter()
                    .filter(|(_, n)| n.room() > 0 && has(n, needs))
                    .max_by_key(|(_, n)| (n.room(), std::cmp::Reverse(n.last_work)))
                    .map(|(id, _)| (index, id.clone()))
            })?;
        let envelope = self.queue.remove(index)?;
        self.dispatched += 1;
        if let Some(node) = self.nodes.get_mut(&id) {
            node.in_flight += 1;
            node.last_work = self.dispatched;
        }
        let attempt = self.attempts.remove(&envelope.id).unwrap_or(1);
        self.in_flight.insert(
            envelope.id,
            Assignment {
                node: id.clone(),
                job: envelope.job,
                stage: stage_of(&envelope),
                attempt,
                retained: None,
            },
        );
        Some((id, envelope))
    }

    /// A node answered envelope `id`; frees its credit. None when the
    /// envelope is unknown (a late answer after the node was dropped).
    pub fn answered(&mut self, id: &Uuid) -> Option<Assignment> {
        let assignment = self.in_flight.remove(id)?;
        if let Some(node) = self.nodes.get_mut(&assignment.node) {
            node.in_flight = node.in_flight.saturating_sub(1);
            node.answered += 1;
        }
        self.forget_if_done(&assignment.node.clone());
        Some(assignment)
    }

    /// Drops nodes not heard from within `timeout`.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<Lost> {
        let dead: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| now.saturating_duration_since(n.last_seen) > timeout)
            .map(|(id, _)| id.clone())
            .collect();
        dead.iter().filter_map(|id| self.drop_node(id)).collect()
    }

    /// Drops a node at once (its connection is gone, or its process died),
    /// with the envelopes it held. None when it was not known.
    pub fn drop_node(&mut self, id: &[u8]) -> Option<Lost> {
        let node = self.nodes.remove(id)?;
        let held: Vec<Uuid> = self
            .in_flight
            .iter()
            .filter(|(_, a)| a.node == id)
            .map(|(e, _)| *e)
            .collect();
        let envelopes = held
            .into_iter()
            .filter_map(|e| self.in_flight.remove(&e).map(|a| (e, a)))
            .collect();
        Some(Lost {
            node: id.to_vec(),
            info: node.info,
            envelopes,
        })
    }

    /// The node `next_dispatch` chose for `envelope` refused it (its
    /// connection is gone): the node is dropped with what it held, and the
    /// envelope goes back to the front of the queue with the attempt number
    /// it had, since it never reached a node.
    pub fn refused(&mut self, node: &[u8], envelope: Envelope) -> Option<Lost> {
        self.put_back(envelope);
        self.drop_node(node)
    }

    /// An envelope out on a node that could not take it just now (no room in
    /// its socket): back to the front of the queue, its attempt unspent, its
    /// credit freed; the node stays.
    pub fn put_back(&mut self, envelope: Envelope) {
        if let Some(a) = self.in_flight.remove(&envelope.id) {
            if let Some(node) = self.nodes.get_mut(&a.node) {
                node.in_flight = node.in_flight.saturating_sub(1);
            }
            self.requeue(envelope, a.attempt);
        }
    }

    /// Takes a queued envelope out of the queue: it was answered by a node
    /// that had been given up on before the copy sent again left.
    pub fn unqueue(&mut self, id: &Uuid) -> Option<Envelope> {
        let at = self.queue.iter().position(|e| e.id == *id)?;
        self.attempts.remove(id);
        self.queue.remove(at)
    }

    /// The relay itself did not run for `stalled` (stopped, swapped out,
    /// a long commit): the nodes' silence in that time is not theirs, so
    /// each one's clock moves on by as much.
    pub fn stalled(&mut self, stalled: Duration, now: Instant) {
        for node in self.nodes.values_mut() {
            node.last_seen = (node.last_seen + stalled).min(now);
        }
    }

    /// Every node the relay knows, with what it says of itself.
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeId, &NodeInfo)> {
        self.nodes.iter().map(|(id, n)| (id, &n.info))
    }

    /// Removes queued envelopes of `job` (it failed or expired).
    pub fn drop_queued(&mut self, job: &Uuid) -> Vec<Envelope> {
        let (gone, kept): (VecDeque<Envelope>, VecDeque<Envelope>) =
            self.queue.drain(..).partition(|e| e.job == *job);
        self.queue = kept;
        for e in &gone {
            self.attempts.remove(&e.id);
        }
        gone.into_iter().collect()
    }

    /// Jobs with queued work that needs installed tasks no node (that is
    /// not leaving) has, with the tasks missing.
    pub fn stranded(&self) -> Vec<(Uuid, Vec<Need>)> {
        let mut found: Vec<(Uuid, Vec<Need>)> = Vec::new();
        for env in &self.queue {
            let needs = self.needs_of(env);
            if needs.is_empty() || found.iter().any(|(job, _)| *job == env.job) {
                continue;
            }
            let servable = self.nodes.values().any(|n| !n.leaving && has(n, needs));
            if !servable {
                let missing = needs
                    .iter()
                    .filter(|need| {
                        !self
                            .nodes
                            .values()
                            .any(|n| !n.leaving && has(n, std::slice::from_ref(need)))
                    })
                    .cloned()
                    .collect();
                found.push((env.job, missing));
            }
        }
        found
    }

    /// Whether any node takes stage work at all.
    pub fn has_workers(&self) -> bool {
        self.nodes
            .values()
            .any(|n| n.info.capacity > 0 && !n.leaving)
    }

    /// Every node the relay knows.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.keys().cloned().collect()
    }

    /// Plot nodes that are not leaving: where charts go.
    pub fn plot_nodes(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.info.service == "plotnode" && !n.leaving)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Jobs with envelopes waiting in the queue, each with the stage of
    /// its first one.
    pub fn queued_jobs(&self) -> Vec<(Uuid, u32)> {
        let mut jobs: Vec<(Uuid, u32)> = Vec::new();
        for e in &self.queue {
            if !jobs.iter().any(|(job, _)| *job == e.job) {
                jobs.push((e.job, stage_of(e)));
            }
        }
        jobs
    }

    /// Envelopes waiting for a node.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Column bytes held by queued envelopes.
    pub fn queued_bytes(&self) -> usize {
        self.queue.iter().map(|e| e.body.bytes()).sum()
    }

    /// Envelopes sent to nodes since the relay started, resends included.
    pub fn dispatched(&self) -> u64 {
        self.dispatched
    }

    /// Status rows for `rtl status`.
    pub fn report(&self, now: Instant) -> Vec<NodeStatus> {
        self.nodes
            .iter()
            .map(|(id, n)| NodeStatus {
                id: String::from_utf8_lossy(id).into_owned(),
                info: n.info.clone(),
                in_flight: n.in_flight,
                envelopes: n.answered,
                last_seen_ms: now.duration_since(n.last_seen).as_millis() as u64,
                joined_ms: now.duration_since(n.joined).as_millis() as u64,
            })
            .collect()
    }

    fn forget_if_done(&mut self, id: &[u8]) {
        if self
            .nodes
            .get(id)
            .is_some_and(|n| n.leaving && n.in_flight == 0)
        {
            self.nodes.remove(id);
        }
    }
}

/// The stage a queued envelope is work for.
fn stage_of(env: &Envelope) -> u32 {
    match &env.message {
        Message::Work(work) => work.stage,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtl_wire::{Body, PlanRef, Work};

    fn info(capacity: u32) -> NodeInfo {
        NodeInfo {
            service: "tasknode".into(),
            pid: 1,
            host: "h".into(),
            capacity,
            cache_id: None,
            envelopes: 0,
            tasks: Vec::new(),
        }
    }

    fn work(job: Uuid) -> Envelope {
        let work = Work::stage(0, PlanRef::Cached("plan:test".into()));
        Envelope::new(job, Message::Work(Box::new(work)), Body::Empty)
    }

    #[test]
    fn work_goes_only_to_nodes_with_room_least_loaded_first() {
        let now = Instant::now();
        let mut r = Routing::new();
        assert!(r.heard_from(b"a", info(1), now));
        assert!(r.heard_from(b"b", info(2), now));
        assert!(!r.heard_from(b"a", info(1), now));
        for _ in 0..4 {
            r.enqueue(work(Uuid::new_v4()));
        }
        let picks: Vec<NodeId> = std::iter::from_fn(|| r.next_dispatch().map(|(n, _)| n)).collect();
        assert_eq!(picks.len(), 3, "three credits in all");
        assert_eq!(picks[0], b"b".to_vec(), "b has the most room");
        assert_eq!(
            picks[1],
            b"a".to_vec(),
            "ties go to the node that waited longest"
        );
        assert_eq!(r.queued(), 1);
        assert_eq!(r.dispatched(), 3);
    }

    #[test]
    fn an_answer_frees_credit() {
        let now = Instant::now();
        let mut r = Routing::new();
        r.heard_from(b"a", info(1), now);
        let job = Uuid::new_v4();
        r.enqueue(work(job));
        r.enqueue(work(job));
        let (_, first) = r.next_dispatch().expect("first");
        assert!(r.next_dispatch().is_none());
        let a = r.answered(&first.id).expect("known");
        assert_eq!(a.job, job);
        assert!(r.answered(&first.id).is_none(), "answers count once");
        assert!(r.next_dispatch().is_some());
    }

    #[test]
    fn silent_nodes_expire_with_what_they_held() {
        let start = Instant::now();
        let mut r = Routing::new();
        r.heard_from(b"a", info(2), start);
        r.heard_from(b"b", info(2), start);
        r.enqueue(work(Uuid::new_v4()));
        let (node, env) = r.next_dispatch().expect("dispatch");
        let later = start + Duration::from_secs(10);
        let other: &[u8] = if node == b"a" { b"b" } else { b"a" };
        r.heard_from(other, info(2), later);
        r.retain(&env.id, work(env.job));
        let mut lost = r.expire(later, Duration::from_secs(5));
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].node, node);
        let (id, held) = lost[0].envelopes.remove(0);
        assert_eq!((id, held.attempt), (env.id, 1));
        assert_eq!(r.report(later).len(), 1);
        // Sent again, it goes first and carries its attempt number.
        r.enqueue(work(Uuid::new_v4()));
        let mut again = held.retained.expect("a retained copy");
        again.id = id;
        r.requeue(again, 2);
        let (to, resent) = r.next_dispatch().expect("resend");
        assert_eq!((to.as_slice(), resent.id), (other, id));
        assert_eq!(r.answered(&id).expect("out").attempt, 2);
    }

    #[test]
    fn leaving_nodes_get_no_new_work_and_go_when_idle() {
        let now = Instant::now();
        let mut r = Routing::new();
        r.heard_from(b"a", info(2), now);
        r.enqueue(work(Uuid::new_v4()));
        let (_, env) = r.next_dispatch().expect("dispatch");
        r.leaving(b"a");
        r.enqueue(work(Uuid::new_v4()));
        assert!(r.next_dispatch().is_none());
        assert_eq!(r.report(now).len(), 1);
        r.answered(&env.id);
        assert!(r.report(now).is_empty());
    }

    #[test]
    fn a_refused_send_drops_the_node_and_requeues_the_work_unspent() {
        let now = Instant::now();
        let mut r = Routing::new();
        r.heard_from(b"a", info(2), now);
        r.heard_from(b"b", info(2), now);
        let job = Uuid::new_v4();
        for _ in 0..3 {
            r.enqueue(work(job));
        }
        let (first, held) = r.next_dispatch().expect("first");
        r.retain(&held.id, work(job));
        let (second, _) = r.next_dispatch().expect("second");
        assert_ne!(first, second, "ties go round-robin");
        let (third, refused) = r.next_dispatch().expect("third");
        assert_eq!(third, first, "the node that waited longest");
        let refused_id = refused.id;

        // The send of the third envelope is refused: its node is gone.
        let lost = r.refused(&third, refused).expect("a known node");
        assert_eq!(lost.node, first);
        let ids: Vec<Uuid> = lost.envelopes.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids,
            vec![held.id],
            "what it held comes back, not the refused one"
        );
        assert!(lost.envelopes[0].1.retained.is_some());
        assert!(r.refused(&third, work(job)).is_none(), "dropped once");
        assert_eq!(
            r.report(now).len(),
            1,
            "the gone node is out of the routing"
        );

        // The refused envelope goes first, to the other node, and is still
        // on its first attempt: it never reached a node.
        assert_eq!(r.queued(), 1);
        let (to, again) = r.next_dispatch().expect("sent again");
        assert_eq!((to, again.id), (second.clone(), refused_id));
        assert_eq!(r.answered(&refused_id).expect("out").attempt, 1);
    }

    #[test]
    fn an_attempt_is_charged_wherever_the_work_is() {
        let mut r = Routing::new();
        r.heard_from(b"n1", info(1), Instant::now());
        let (queued, out) = (work(Uuid::new_v4()), work(Uuid::new_v4()));
        let (queued_id, out_id) = (queued.id, out.id);
        r.enqueue(out);
        assert!(r.next_dispatch().is_some());
        r.enqueue(queued);
        assert_eq!(r.charge(&out_id).map(|c| c.0), Some(2), "out on a node");
        assert_eq!(r.charge(&queued_id).map(|c| c.0), Some(2), "queued");
        assert_eq!(r.charge(&queued_id).map(|c| c.0), Some(3));
        assert!(r.answered(&out_id).is_some());
        assert_eq!(r.charge(&out_id), None, "answered");
    }

    #[test]
    fn work_put_back_keeps_its_attempt_and_frees_the_credit() {
        let now = Instant::now();
        let mut r = Routing::new();
        r.heard_from(b"a", info(1), now);
        let mut env = work(Uuid::new_v4());
        env.id = Uuid::new_v4();
        let id = env.id;
        r.requeue(env, 2);
        let (_, env) = r.next_dispatch().expect("dispatch");
        assert!(r.next_dispatch().is_none());
        r.put_back(env);
        let (_, env) = r.next_dispatch().expect("credit freed");
        assert_eq!(env.id, id);
        assert_eq!(r.answered(&id).expect("out").attempt, 2);
    }

    #[test]
    fn an_answered_envelope_can_be_taken_out_of_the_queue() {
        let now = Instant::now();
        let mut r = Routing::new();
        r.heard_from(b"a", info(1), now);
        let env = work(Uuid::new_v4());
        let id = env.id;
        r.requeue(env, 2);
        assert_eq!(r.unqueue(&id).map(|e| e.id), Some(id));
        assert!(r.unqueue(&id).is_none());
        assert_eq!(r.queued(), 0);
    }

    #[test]
    fn a_relay_stall_is_not_the_nodes_silence() {
        let start = Instant::now();
        let mut r = Routing::new();
        r.heard_from(b"a", info(1), start);
        let woke = start + Duration::from_secs(7);
        // The relay was stopped for 7 s and reads nothing yet: the node's
        // clock moves on by the stall, so it is not judged on it.
        r.stalled(Duration::from_millis(6900), woke);
        assert!(r.expire(woke, Duration::from_secs(5)).is_empty());
        // Silence after the relay woke still counts.
        assert_eq!(
            r.expire(woke + Duration::from_secs(6), Duration::from_secs(5))
                .len(),
            1
        );
    }
}
