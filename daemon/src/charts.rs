//! Charts on their way to plot nodes: each one sent is kept until its plot
//! node confirms it drew it, so the charts a plot node held when it died
//! go to another one; charts no plot node could take wait for the next one
//! to join, for a while.
//!
//! Pure bookkeeping with no sockets, like `routing`; the relay does the
//! sending.

use crate::routing::NodeId;
use rtl_tasks::Chart;
use rtl_wire::{Body, Envelope, Message};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Bytes of charts kept waiting for a plot node, at most. A chart is a
/// few hundred kilobytes at worst (its layers are thinned before they are
/// sent), so this holds hundreds; the count is bounded by the bytes since
/// every chart weighs at least `OVERHEAD`.
pub const WAITING_BYTES: usize = 64 << 20;

/// Bytes of charts sent and not yet confirmed, at most: past this the
/// oldest are forgotten (a plot node that never confirms must not grow the
/// relay). A forgotten chart is most likely drawn already; it is lost only
/// if its plot node dies before drawing it.
const UNCONFIRMED_BYTES: usize = 64 << 20;

/// What a chart weighs beyond its numbers: names, labels, bookkeeping.
const OVERHEAD: usize = 1024;

/// How long a chart waits for a plot node to join.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A chart a job made, as the relay passes it on.
#[derive(Debug, Clone)]
pub struct JobChart {
    /// The job that made it.
    pub job: Uuid,
    /// The stage whose task made it.
    pub stage: u32,
    /// The chart.
    pub chart: Box<Chart>,
}

impl JobChart {
    /// A message carrying it, under a fresh id.
    pub fn envelope(&self) -> Envelope {
        let message = Message::Chart {
            stage: self.stage,
            chart: self.chart.clone(),
        };
        Envelope::new(self.job, message, Body::Empty)
    }
}

/// The charts sent to plot nodes and not yet confirmed, and the charts
/// that wait for a plot node.
#[derive(Default)]
pub struct ChartPost {
    /// Sent as message `Uuid` to a plot node, not yet confirmed.
    out: VecDeque<(Uuid, NodeId, JobChart)>,
    out_bytes: usize,
    /// No plot node took them; since when.
    waiting: VecDeque<(Instant, JobChart)>,
    waiting_bytes: usize,
}

/// About how many bytes the relay holds for a chart message.
fn weight(chart: &JobChart) -> usize {
    let c = &chart.chart;
    let layers: usize = c
        .layers
        .iter()
        .map(|l| (l.x.len() + l.y.len()) * 8 + l.label.len())
        .sum();
    OVERHEAD + layers + c.categories.iter().map(String::len).sum::<usize>()
}

impl ChartPost {
    /// A post office with no charts waiting.
    pub fn new() -> ChartPost {
        ChartPost::default()
    }

    /// Chart message `id` went to `node`.
    pub fn sent(&mut self, id: Uuid, node: &[u8], chart: JobChart) {
        self.out_bytes += weight(&chart);
        self.out.push_back((id, node.to_vec(), chart));
        while self.out_bytes > UNCONFIRMED_BYTES && self.out.len() > 1 {
            if let Some((_, _, old)) = self.out.pop_front() {
                self.out_bytes -= weight(&old);
            }
        }
    }

    /// A plot node confirmed message `id`; false when it was not a chart
    /// the post waited on.
    pub fn confirmed(&mut self, id: &Uuid) -> bool {
        match self.out.iter().position(|(sent, _, _)| sent == id) {
            Some(at) => {
                if let Some((_, _, chart)) = self.out.remove(at) {
                    self.out_bytes -= weight(&chart);
                }
                true
            }
            None => false,
        }
    }

    /// The charts a plot node that is gone never confirmed.
    pub fn node_gone(&mut self, node: &[u8]) -> Vec<JobChart> {
        let (gone, kept): (VecDeque<_>, VecDeque<_>) =
            self.out.drain(..).partition(|(_, to, _)| to == node);
        self.out = kept;
        let gone: Vec<JobChart> = gone.into_iter().map(|(_, _, chart)| chart).collect();
        self.out_bytes -= gone.iter().map(weight).sum::<usize>();
        gone
    }

    /// Keeps a chart for the next plot node; returns the oldest ones when
    /// the waiting charts weigh more than [`WAITING_BYTES`], which are
    /// dropped.
    pub fn wait(&mut self, chart: JobChart, now: Instant) -> Vec<JobChart> {
        self.waiting_bytes += weight(&chart);
        self.waiting.push_back((now, chart));
        let mut dropped = Vec::new();
        while self.waiting_bytes > WAITING_BYTES && self.waiting.len() > 1 {
            if let Some((_, old)) = self.waiting.pop_front() {
                self.waiting_bytes -= weight(&old);
                dropped.push(old);
            }
        }
        dropped
    }

    /// Takes every waiting chart: those still worth sending, and those
    /// that waited longer than [`PATIENCE`].
    pub fn take_waiting(&mut self, now: Instant) -> (Vec<JobChart>, Vec<JobChart>) {
        self.waiting_bytes = 0;
        let (fresh, stale): (Vec<_>, Vec<_>) = self
            .waiting
            .drain(..)
            .partition(|(since, _)| now.duration_since(*since) <= PATIENCE);
        (
            fresh.into_iter().map(|(_, c)| c).collect(),
            stale.into_iter().map(|(_, c)| c).collect(),
        )
    }

    /// Whether any chart waits for a plot node.
    pub fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(k: u32) -> JobChart {
        big(k, 0)
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

    /// A chart of `points` points.
    fn big(k: u32, points: usize) -> JobChart {
        let layer = rtl_tasks::chart::Layer {
            mark: Default::default(),
            label: String::new(),
            x: vec![0.0; points],
            y: vec![0.0; points],
        };
        JobChart {
            job: Uuid::nil(),
            stage: k,
            chart: Box::new(rtl_tasks::chart::Chart {
                name: format!("c{k}"),
                layers: vec![layer],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn waiting_is_bounded_in_bytes_and_time() {
        let mut post = ChartPost::new();
        let start = Instant::now();
        // Small charts: thousands wait, none is dropped.
        for k in 0..2000 {
            assert!(post.wait(chart(k), start).is_empty());
        }
        let (fresh, _) = post.take_waiting(start);
        assert_eq!(fresh.len(), 2000);
        // Large ones: the oldest go once they weigh too much.
        let each = 1 << 20;
        let fit = WAITING_BYTES / (each * 16 + OVERHEAD);
        for k in 0..fit as u32 {
            assert!(post.wait(big(k, each), start).is_empty(), "chart {k}");
        }
        let dropped = post.wait(big(99, each), start + PATIENCE);
        assert_eq!(dropped.iter().map(|h| h.stage).collect::<Vec<_>>(), [0]);
        let (fresh, stale) = post.take_waiting(start + PATIENCE + Duration::from_millis(1));
        assert_eq!(fresh.len(), 1, "only the newest is still fresh");
        assert_eq!(stale.len(), fit - 1);
        assert!(!post.is_waiting());
        assert!(
            post.wait(chart(1), start).is_empty(),
            "the count starts over"
        );
    }

    #[test]
    fn unconfirmed_charts_are_bounded_in_bytes() {
        let mut post = ChartPost::new();
        let first = Uuid::new_v4();
        post.sent(first, b"p", big(0, 1 << 20));
        for _ in 0..1000 {
            post.sent(Uuid::new_v4(), b"p", chart(1));
        }
        assert!(post.confirmed(&first), "a thousand small charts fit");
        let first = Uuid::new_v4();
        post.sent(first, b"p", chart(0));
        for k in 0..8 {
            post.sent(Uuid::new_v4(), b"p", big(k, 1 << 20));
        }
        assert!(!post.confirmed(&first), "forgotten past the bound");
        assert!(post.out_bytes <= UNCONFIRMED_BYTES);
    }
}
