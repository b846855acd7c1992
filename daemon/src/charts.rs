//! Charts on their way to plot nodes: each one sent is kept until its plot
//! node confirms it drew it, so the charts a plot node held when it died
//! go to another one; charts no plot node could take wait for the next one
//! to join, for a while.
//!
//! Pure bookkeeping with no sockets, like `routing`; the relay does the
//! sending.

use crate::routing::NodeId;
use crate::wire::Header;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Charts kept waiting for a plot node, at most.
pub const WAITING: usize = 64;

/// Charts sent and not yet confirmed, at most: past this the oldest are
/// forgotten (a plot node that never confirms must not grow the relay).
const UNCONFIRMED: usize = 256;

/// How long a chart waits for a plot node to join.
pub const PATIENCE: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct ChartPost {
    /// Sent as message `Uuid` to a plot node, not yet confirmed.
    out: VecDeque<(Uuid, NodeId, Header)>,
    /// No plot node took them; since when.
    waiting: VecDeque<(Instant, Header)>,
}

impl ChartPost {
    pub fn new() -> ChartPost {
        ChartPost::default()
    }

    /// Chart message `id` went to `node`.
    pub fn sent(&mut self, id: Uuid, node: &[u8], chart: Header) {
        if self.out.len() >= UNCONFIRMED {
            self.out.pop_front();
        }
        self.out.push_back((id, node.to_vec(), chart));
    }

    /// A plot node confirmed message `id`; false when it was not a chart
    /// the post waited on.
    pub fn confirmed(&mut self, id: &Uuid) -> bool {
        match self.out.iter().position(|(sent, _, _)| sent == id) {
            Some(at) => {
                self.out.remove(at);
                true
            }
            None => false,
        }
    }

    /// The charts a plot node that is gone never confirmed.
    pub fn node_gone(&mut self, node: &[u8]) -> Vec<Header> {
        let (gone, kept): (VecDeque<_>, VecDeque<_>) =
            self.out.drain(..).partition(|(_, to, _)| to == node);
        self.out = kept;
        gone.into_iter().map(|(_, _, chart)| chart).collect()
    }

    /// Keeps a chart for the next plot node; returns the oldest one when
    /// that many already wait, which is dropped.
    pub fn wait(&mut self, chart: Header, now: Instant) -> Option<Header> {
        let dropped = (self.waiting.len() >= WAITING)
            .then(|| self.waiting.pop_front().map(|(_, c)| c))
            .flatten();
        self.waiting.push_back((now, chart));
        dropped
    }

    /// Takes every waiting chart: those still worth sending, and those
    /// that waited longer than [`PATIENCE`].
    pub fn take_waiting(&mut self, now: Instant) -> (Vec<Header>, Vec<Header>) {
        let (fresh, stale): (Vec<_>, Vec<_>) = self
            .waiting
            .drain(..)
            .partition(|(since, _)| now.duration_since(*since) <= PATIENCE);
        (
            fresh.into_iter().map(|(_, c)| c).collect(),
            stale.into_iter().map(|(_, c)| c).collect(),
        )
    }

    pub fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Kind;

    fn chart(k: u32) -> Header {
        Header {
            stage: k,
            ..Header::new(Kind::Chart, Uuid::nil())
        }
    }

    #[test]
    fn unconfirmed_charts_of_a_gone_plot_node_come_back() {
        let mut post = ChartPost::new();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        post.sent(a, b"p1", chart(1));
        post.sent(b, b"p2", chart(1));
        post.sent(c, b"p1", chart(2));
        assert!(post.confirmed(&a));
        assert!(!post.confirmed(&a), "confirmed once");
        assert!(!post.confirmed(&Uuid::new_v4()), "not a chart");
        let back: Vec<u32> = post.node_gone(b"p1").iter().map(|h| h.stage).collect();
        assert_eq!(back, [2], "only what p1 never confirmed");
        assert!(post.node_gone(b"p1").is_empty());
        assert!(post.confirmed(&b), "p2's chart is still out");
    }

    #[test]
    fn waiting_is_bounded_in_number_and_time() {
        let mut post = ChartPost::new();
        let start = Instant::now();
        for k in 0..WAITING as u32 {
            assert!(post.wait(chart(k), start).is_none());
        }
        let dropped = post.wait(chart(99), start + PATIENCE);
        assert_eq!(dropped.map(|h| h.stage), Some(0), "the oldest goes");
        let (fresh, stale) = post.take_waiting(start + PATIENCE + Duration::from_millis(1));
        assert_eq!(fresh.len(), 1, "only the newest is still fresh");
        assert_eq!(stale.len(), WAITING - 1);
        assert!(!post.is_waiting());
    }

    #[test]
    fn unconfirmed_charts_are_bounded() {
        let mut post = ChartPost::new();
        let first = Uuid::new_v4();
        post.sent(first, b"p", chart(0));
        for _ in 0..UNCONFIRMED {
            post.sent(Uuid::new_v4(), b"p", chart(1));
        }
        assert!(!post.confirmed(&first), "forgotten past the bound");
        assert_eq!(post.node_gone(b"p").len(), UNCONFIRMED);
    }
}
