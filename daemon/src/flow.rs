//! How one job's table moves through its stages: in one piece, or as
//! chunks that run on several nodes at once and stream from stage to stage.
//!
//! The job's tasks form a list of steps. Without chunking a step is a whole
//! stage. With chunking each run of consecutive row-local tasks in a stage
//! is one step, and each task that needs the whole table is a step of its
//! own (a barrier), except those that need only a few figures of it
//! (sums, counts, extremes: `rtl_tasks::reduce`). Such a task starts a
//! reducing step, with the row-local tasks after it: every chunk works
//! out its figures at the end of the step before, the relay combines
//! them, and the chunks go through the step each with the whole table's
//! figures, still on every node at once.
//!
//! The table travels as lanes. A job starts with one lane; a table larger
//! than a chunk that reaches a row-local step is split into one lane per
//! chunk, and each lane goes on by itself: a chunk finished with one stage's
//! row-local step goes straight into the next stage's row-local step,
//! without waiting for its siblings. Lanes meet again only at a barrier or
//! at the end, where they are joined in order, whatever order they finished
//! in. A row-local task's output rows depend only on its own input rows
//! (tested for every such task in rtl-tasks), so the result is the one the
//! whole table would give.
//!
//! `Flow` is bookkeeping only: what a table is, and how it is split and
//! joined, is up to its caller through [`Pieces`]; unit tests use plain
//! vectors.

use rtl_dsl::Plan;
use rtl_tasks::{combine, lookup, Stat, Table};
use std::collections::HashMap;
use uuid::Uuid;

/// `table` as consecutive chunks of at most `rows` rows.
pub fn split(table: &Table, rows: usize) -> Vec<Table> {
    let rows = rows.max(1);
    (0..table.rows().div_ceil(rows))
        .map(|k| table.slice(k * rows, (k + 1) * rows))
        .collect()
}

/// How the caller's tables are measured, split and joined.
pub trait Pieces<T> {
    /// Rows in `table`.
    fn rows(&self, table: &T) -> usize;
    /// `table` as consecutive pieces of at most `rows` rows.
    fn split(&self, table: T, rows: usize) -> Result<Vec<T>, String>;
    /// `parts` as one table, in order.
    fn join(&self, parts: Vec<T>) -> Result<T, String>;
}

/// Tasks `start..end` of a stage, and whether they may run chunk by chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Index of the stage in the plan.
    pub stage: u32,
    /// First task of the step.
    pub start: u32,
    /// One past the step's last task.
    pub end: u32,
    /// Every task of the step keeps rows independent, so chunks may run apart.
    pub row_local: bool,
    /// The first task runs chunk by chunk given the whole table's figures
    /// (the rest are row-local).
    pub reduce: bool,
}

enum State<T> {
    /// Out on a node as envelope `id`, which runs steps up to `until`.
    Running { id: Uuid, until: usize },
    /// Holding its table, before step `Lane::step` (or finished).
    Waiting(T),
}

struct Lane<T> {
    step: usize,
    state: State<T>,
    /// The figures the envelope that made this lane's table worked out for
    /// the next step; empty when a sibling split from the same table
    /// carries them. None: not worked out.
    partial: Option<Vec<Stat>>,
}

/// One envelope's worth of work for the relay to send.
#[derive(Debug)]
pub struct Work<T> {
    /// The envelope's id, which its answer carries.
    pub id: Uuid,
    /// The stage the tasks belong to.
    pub stage: u32,
    /// The stage's tasks to run; None: all of them.
    pub tasks: Option<(u32, u32)>,
    /// The table to run them on.
    pub input: T,
    /// Ask the node to hand its result back in pieces of at most this many
    /// rows: the next step may run them in parallel, and whatever comes
    /// next, entries of a chunk's size keep the cache's pages in use (a
    /// freed chunk entry is the right size for the next one, where one
    /// large entry needs a long free run and makes the map grow).
    pub split_rows: Option<usize>,
    /// The whole table's figures for the first task (empty: none).
    pub stats: Vec<Stat>,
    /// Work out the result's figures for this task of the stage.
    pub partial_for: Option<u32>,
    /// The lane's place among the job's lanes when it was sent.
    pub seq: u32,
    /// How many lanes the job had then.
    pub count: u32,
}

/// What an answer led to.
#[derive(Debug)]
pub enum Next<T> {
    /// Work to send (possibly none while other lanes are still out).
    Send(Vec<Work<T>>),
    /// The job is done: its result.
    Finished(T),
}

/// A job's steps and lanes.
pub struct Flow<T> {
    steps: Vec<Step>,
    /// Whole-stage envelopes when None.
    chunk_rows: Option<usize>,
    /// In table order.
    lanes: Vec<Lane<T>>,
    /// The lane each envelope out runs, by envelope id: answers find their
    /// lane at once, however many chunks a job has.
    running: HashMap<Uuid, usize>,
}

impl<T> Flow<T> {
    /// Splits `plan` into steps; chunk by chunk (`chunk_rows` rows each) where
    /// row-local tasks allow it, whole stages when `chunk_rows` is None.
    pub fn new(plan: &Plan, chunk_rows: Option<usize>) -> Flow<T> {
        let mut steps: Vec<Step> = Vec::new();
        for (stage, tasks) in plan.stages.iter().enumerate() {
            let stage = stage as u32;
            let first = steps.len();
            for (i, call) in tasks.tasks.iter().enumerate() {
                let i = i as u32;
                let spec = lookup(&call.name).filter(|_| chunk_rows.is_some());
                let row_local = spec.is_some_and(|t| t.row_local);
                let reduce = spec
                    .and_then(|t| t.reduce.as_ref())
                    .is_some_and(|r| (r.applies)(&call.kwargs));
                let in_stage = steps.len() > first;
                match steps.last_mut() {
                    Some(last)
                        if in_stage && (chunk_rows.is_none() || (row_local && last.row_local)) =>
                    {
                        last.end = i + 1
                    }
                    _ => steps.push(Step {
                        stage,
                        start: i,
                        end: i + 1,
                        row_local: row_local || reduce,
                        reduce,
                    }),
                }
            }
        }
        Flow {
            steps,
            chunk_rows: chunk_rows.map(|n| n.max(1)),
            lanes: Vec::new(),
            running: HashMap::new(),
        }
    }

    /// The job's steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Starts the job on its input table.
    pub fn start(&mut self, input: T, pieces: &impl Pieces<T>) -> Result<Next<T>, String> {
        self.lanes = vec![Lane {
            step: 0,
            state: State::Waiting(input),
            partial: None,
        }];
        self.running.clear();
        self.schedule(pieces, 0..1)
    }

    /// Takes the answer to envelope `id`: its table and the figures it
    /// worked out (empty when it was not asked to). None when no lane waits
    /// for it (an answer to a job that has moved on); the table is handed
    /// back.
    pub fn done(
        &mut self,
        id: Uuid,
        output: T,
        partial: Vec<Stat>,
        pieces: &impl Pieces<T>,
    ) -> Result<Result<Next<T>, String>, T> {
        let Some(at) = self.running.get(&id).copied() else {
            return Err(output);
        };
        let State::Running { until, .. } = self.lanes[at].state else {
            return Err(output);
        };
        self.running.remove(&id);
        let asked = self.partial_for(until).is_some();
        let chunk = self
            .chunk_rows
            .filter(|_| self.steps.get(until).is_some_and(|s| s.row_local));
        let parts = match chunk {
            Some(rows) => match pieces.split(output, rows) {
                Ok(parts) => parts,
                Err(e) => return Ok(Err(e)),
            },
            None => vec![output],
        };
        // The figures cover the whole output: the first piece carries them,
        // the others an empty list. A node that was asked and gave none
        // leaves them unknown, and the step runs on the joined table.
        let known = asked && !partial.is_empty();
        let mut partial = Some(partial);
        let count = parts.len();
        let lanes = parts.into_iter().map(|t| Lane {
            step: until,
            state: State::Waiting(t),
            partial: known.then(|| partial.take().unwrap_or_default()),
        });
        self.lanes.splice(at..=at, lanes);
        if count != 1 {
            // The lanes after it moved.
            self.running = self
                .lanes
                .iter()
                .enumerate()
                .filter_map(|(seq, l)| match l.state {
                    State::Running { id, .. } => Some((id, seq)),
                    State::Waiting(_) => None,
                })
                .collect();
        }
        Ok(self.schedule(pieces, at..at + count))
    }

    /// The first stage a lane is still at, for messages.
    pub fn stage(&self) -> u32 {
        let step = self.lanes.iter().map(|l| l.step).min().unwrap_or(0);
        self.steps
            .get(step)
            .map_or(self.steps.last().map_or(0, |s| s.stage), |s| s.stage)
    }

    /// The tables waiting lanes hold.
    pub fn held(&self) -> impl Iterator<Item = &T> {
        self.lanes.iter().filter_map(|l| match &l.state {
            State::Waiting(t) => Some(t),
            State::Running { .. } => None,
        })
    }

    /// The tables held by waiting lanes, so a failed job's can be released.
    pub fn drain(&mut self) -> Vec<T> {
        self.running.clear();
        self.lanes
            .drain(..)
            .filter_map(|l| match l.state {
                State::Waiting(t) => Some(t),
                State::Running { .. } => None,
            })
            .collect()
    }

    /// What to send now that the lanes in `fresh` are waiting (the others
    /// were looked at when they came back).
    fn schedule(
        &mut self,
        pieces: &impl Pieces<T>,
        fresh: std::ops::Range<usize>,
    ) -> Result<Next<T>, String> {
        let mut out = Vec::new();
        let count = self.lanes.len() as u32;
        if self.lanes.len() > 1 {
            // Chunks at a row-local step go on by themselves.
            for seq in fresh {
                let step = self.lanes[seq].step;
                if self
                    .steps
                    .get(step)
                    .is_some_and(|s| s.row_local && !s.reduce)
                {
                    if let Some(work) = self.send(seq, step + 1, count, Vec::new()) {
                        out.push(work);
                    }
                }
            }
        }
        let all_waiting = self.running.is_empty();
        if !out.is_empty() || !all_waiting {
            return Ok(Next::Send(out));
        }
        // Every lane waits at the same step. At a reducing step where every
        // chunk brought its figures, the chunks go on with the whole
        // table's.
        if let Some(stats) = self.whole_figures()? {
            let step = self.lanes[0].step;
            let out = (0..self.lanes.len())
                .filter_map(|seq| self.send(seq, step + 1, count, stats.clone()))
                .collect();
            return Ok(Next::Send(out));
        }
        // Otherwise (a barrier, the end, or figures missing): join them.
        let step = self.lanes[0].step;
        let parts = self.drain();
        let table = if parts.len() == 1 {
            parts.into_iter().next().ok_or("no lanes")?
        } else {
            pieces.join(parts)?
        };
        if step >= self.steps.len() {
            return Ok(Next::Finished(table));
        }
        let rows = pieces.rows(&table);
        let big = self.chunk_rows.is_some_and(|n| rows > n);
        // A reducing step without figures runs on the joined table, as a
        // barrier does.
        if big && self.steps[step].row_local && !self.steps[step].reduce {
            let parts = pieces.split(table, self.chunk_rows.unwrap_or(rows))?;
            self.lanes = parts
                .into_iter()
                .map(|t| Lane {
                    step,
                    state: State::Waiting(t),
                    partial: None,
                })
                .collect();
            if self.lanes.len() > 1 {
                let all = 0..self.lanes.len();
                return self.schedule(pieces, all);
            }
        } else {
            self.lanes = vec![Lane {
                step,
                state: State::Waiting(table),
                partial: None,
            }];
        }
        // One lane: a small table runs the rest of its stage in one
        // envelope; a big one runs the barrier alone so the next step can
        // take its result in chunks.
        let until = if big {
            step + 1
        } else {
            let stage = self.steps[step].stage;
            step + self.steps[step..]
                .iter()
                .take_while(|s| s.stage == stage)
                .count()
        };
        Ok(Next::Send(
            self.send(0, until, 1, Vec::new()).into_iter().collect(),
        ))
    }

    /// When the lanes (more than one, all waiting) stand before a reducing
    /// step and every one brought its figures: the whole table's.
    fn whole_figures(&self) -> Result<Option<Vec<Stat>>, String> {
        let step = self.lanes[0].step;
        if self.lanes.len() < 2 || !self.steps.get(step).is_some_and(|s| s.reduce) {
            return Ok(None);
        }
        let Some(parts) = self
            .lanes
            .iter()
            .map(|l| l.partial.clone())
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(None);
        };
        let parts: Vec<Vec<Stat>> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        if parts.is_empty() {
            return Ok(None);
        }
        combine(&parts).map(Some)
    }

    /// The task whose figures an envelope ending before step `until`
    /// should work out: the first of that step when it reduces, in the
    /// same stage.
    fn partial_for(&self, until: usize) -> Option<u32> {
        let next = self.steps.get(until).filter(|s| s.reduce)?;
        let last = until.checked_sub(1).and_then(|k| self.steps.get(k))?;
        (last.stage == next.stage).then_some(next.start)
    }

    /// Sends lane `seq`, waiting before its step, through the steps up to
    /// `until` (exclusive, all in one stage), the first with `stats` when
    /// it reduces chunk by chunk.
    fn send(&mut self, seq: usize, until: usize, count: u32, stats: Vec<Stat>) -> Option<Work<T>> {
        let partial_for = self.partial_for(until);
        let lane = &mut self.lanes[seq];
        if !matches!(lane.state, State::Waiting(_)) || lane.step >= self.steps.len() {
            return None;
        }
        let id = Uuid::new_v4();
        let State::Waiting(input) =
            std::mem::replace(&mut lane.state, State::Running { id, until })
        else {
            return None;
        };
        self.running.insert(id, seq);
        let (first, last) = (self.steps[lane.step], self.steps[until - 1]);
        let whole_stage = first.start == 0
            && self
                .steps
                .get(until)
                .is_none_or(|next| next.stage != first.stage);
        Some(Work {
            id,
            stage: first.stage,
            tasks: (!whole_stage).then_some((first.start, last.end)),
            input,
            split_rows: self.chunk_rows,
            stats,
            partial_for,
            seq: seq as u32,
            count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtl_dsl::{Stage, TaskCall};
    use serde_json::json;

    /// Tables as vectors of row numbers.
    struct Rows;

    impl Pieces<Vec<u32>> for Rows {
        fn rows(&self, table: &Vec<u32>) -> usize {
            table.len()
        }
        fn split(&self, table: Vec<u32>, rows: usize) -> Result<Vec<Vec<u32>>, String> {
            Ok(table.chunks(rows).map(<[u32]>::to_vec).collect())
        }
        fn join(&self, parts: Vec<Vec<u32>>) -> Result<Vec<u32>, String> {
            Ok(parts.concat())
        }
    }

    fn plan(stages: &[&[&str]]) -> Plan {
        Plan {
            stages: stages
                .iter()
                .map(|tasks| {
                    Stage::new(tasks.iter().map(|n| TaskCall::new(*n, json!({}))).collect())
                })
                .collect(),
            base_dir: Default::default(),
            origin: String::new(),
        }
    }

    fn sent(next: Next<Vec<u32>>) -> Vec<Work<Vec<u32>>> {
        match next {
            Next::Send(work) => work,
            Next::Finished(t) => panic!("finished early with {t:?}"),
        }
    }

    #[test]
    fn without_chunking_each_stage_is_one_envelope() {
        let mut flow = Flow::new(&plan(&[&["add", "sort"], &["log"]]), None);
        let work = sent(flow.start((0..10).collect(), &Rows).expect("start"));
        assert_eq!(work.len(), 1);
        assert_eq!((work[0].stage, work[0].tasks), (0, None));
        let next = flow
            .done(work[0].id, vec![1, 2], Vec::new(), &Rows)
            .expect("known");
        let work = sent(next.expect("ok"));
        assert_eq!(
            (work[0].stage, work[0].tasks, work[0].split_rows),
            (1, None, None)
        );
        match flow
            .done(work[0].id, vec![3], Vec::new(), &Rows)
            .expect("known")
        {
            Ok(Next::Finished(t)) => assert_eq!(t, [3]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_small_table_runs_a_whole_stage_at_once_even_with_chunking() {
        let mut flow = Flow::new(&plan(&[&["add", "sort", "log"]]), Some(100));
        let work = sent(flow.start((0..10).collect(), &Rows).expect("start"));
        assert_eq!(work.len(), 1);
        assert_eq!(work[0].tasks, None);
    }

    #[test]
    fn chunks_stream_into_the_next_stage_and_meet_at_a_barrier() {
        let p = plan(&[&["open_array"], &["add", "log"], &["divide", "sort", "add"]]);
        let mut flow = Flow::new(&p, Some(3));
        // The source stage asks for its result in chunks.
        let work = sent(flow.start(Vec::new(), &Rows).expect("start"));
        assert_eq!((work[0].stage, work[0].split_rows), (0, Some(3)));
        let work = sent(
            flow.done(work[0].id, (0..8).collect(), Vec::new(), &Rows)
                .expect("known")
                .expect("ok"),
        );
        // Three chunks of stage 1, all at once.
        assert_eq!(work.len(), 3);
        assert!(work.iter().all(|w| w.stage == 1 && w.tasks.is_none()));
        assert_eq!(work[2].input, [6, 7]);
        // The last chunk finishes first and goes straight on to stage 2's
        // row-local step, while the others are still out.
        let next = sent(
            flow.done(work[2].id, vec![6, 7], Vec::new(), &Rows)
                .expect("known")
                .expect("ok"),
        );
        assert_eq!(next.len(), 1);
        assert_eq!((next[0].stage, next[0].tasks), (2, Some((0, 1))));
        assert_eq!(
            next[0].split_rows,
            Some(3),
            "results always come back in chunk-sized pieces"
        );
        let mut outstanding = vec![next.into_iter().next().expect("one")];
        for w in [&work[1], &work[0]] {
            let more = sent(
                flow.done(w.id, w.input.clone(), Vec::new(), &Rows)
                    .expect("known")
                    .expect("ok"),
            );
            outstanding.extend(more);
        }
        assert_eq!(flow.stage(), 2);
        // Finish stage 2's first step out of order; sort then gets the
        // whole table, in order, as one envelope.
        outstanding.reverse();
        let mut barrier = Vec::new();
        for w in outstanding {
            barrier.extend(sent(
                flow.done(w.id, w.input.clone(), Vec::new(), &Rows)
                    .expect("known")
                    .expect("ok"),
            ));
        }
        assert_eq!(barrier.len(), 1);
        assert_eq!(barrier[0].tasks, Some((1, 2)));
        assert_eq!(barrier[0].input, (0..8).collect::<Vec<_>>());
        assert_eq!(barrier[0].split_rows, Some(3));
        // After the barrier, the big result is chunked again.
        let last = sent(
            flow.done(barrier[0].id, (10..18).collect(), Vec::new(), &Rows)
                .expect("known")
                .expect("ok"),
        );
        assert_eq!(last.len(), 3);
        assert!(last.iter().all(|w| w.tasks == Some((2, 3))));
        let mut result = None;
        for w in last.iter().rev() {
            if let Next::Finished(t) = flow
                .done(w.id, w.input.clone(), Vec::new(), &Rows)
                .expect("known")
                .expect("ok")
            {
                result = Some(t);
            }
        }
        assert_eq!(result.expect("finished"), (10..18).collect::<Vec<_>>());
    }

    #[test]
    fn an_unknown_answer_is_handed_back() {
        let mut flow = Flow::new(&plan(&[&["add"]]), None);
        sent(flow.start(vec![1], &Rows).expect("start"));
        assert_eq!(
            flow.done(Uuid::new_v4(), vec![9], Vec::new(), &Rows).err(),
            Some(vec![9])
        );
    }

    /// One stage of these calls.
    fn one_stage(tasks: Vec<TaskCall>) -> Plan {
        Plan {
            stages: vec![Stage::new(tasks)],
            base_dir: Default::default(),
            origin: String::new(),
        }
    }

    /// add; normalize Squash, subtract; sort.
    fn reducing_plan() -> Plan {
        one_stage(vec![
            TaskCall::new("add", json!({})),
            TaskCall::new("normalize", json!({"model": "Squash", "columns": ["x"]})),
            TaskCall::new("subtract", json!({})),
            TaskCall::new("sort", json!({})),
        ])
    }

    #[test]
    fn a_reducing_task_runs_chunk_by_chunk_with_the_combined_figures() {
        let mut flow = Flow::new(&reducing_plan(), Some(3));
        let shape: Vec<_> = flow
            .steps()
            .iter()
            .map(|s| (s.start, s.end, s.reduce))
            .collect();
        assert_eq!(shape, [(0, 1, false), (1, 3, true), (3, 4, false)]);
        let work = sent(flow.start((0..8).collect(), &Rows).expect("start"));
        assert_eq!(work.len(), 3);
        assert!(work
            .iter()
            .all(|w| w.partial_for == Some(1) && w.stats.is_empty()));
        // Each chunk brings its figures; the last to arrive sends all three
        // on with the sum of them.
        let mut next = Vec::new();
        for (k, w) in work.iter().enumerate() {
            let figures = vec![Stat::Sum(vec![k as f64 + 1.0])];
            next = sent(
                flow.done(w.id, w.input.clone(), figures, &Rows)
                    .expect("known")
                    .expect("ok"),
            );
            assert_eq!(next.is_empty(), k < 2);
        }
        assert_eq!(next.len(), 3);
        assert!(next.iter().all(|w| w.tasks == Some((1, 3))
            && w.stats == [Stat::Sum(vec![6.0])]
            && w.partial_for.is_none()));
        assert_eq!(next[1].input, [3, 4, 5]);
        // Sort then gets the whole table.
        let mut barrier = Vec::new();
        for w in &next {
            barrier.extend(sent(
                flow.done(w.id, w.input.clone(), Vec::new(), &Rows)
                    .expect("known")
                    .expect("ok"),
            ));
        }
        assert_eq!(barrier.len(), 1);
        assert_eq!(barrier[0].tasks, Some((3, 4)));
        assert_eq!(barrier[0].input, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn without_every_chunks_figures_a_reducing_task_runs_on_the_joined_table() {
        let mut flow = Flow::new(&reducing_plan(), Some(3));
        let work = sent(flow.start((0..8).collect(), &Rows).expect("start"));
        let mut next = Vec::new();
        for (k, w) in work.iter().enumerate() {
            // The middle chunk's node gave no figures.
            let figures = if k == 1 {
                Vec::new()
            } else {
                vec![Stat::Sum(vec![1.0])]
            };
            next = sent(
                flow.done(w.id, w.input.clone(), figures, &Rows)
                    .expect("known")
                    .expect("ok"),
            );
        }
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].tasks, Some((1, 3)));
        assert!(next[0].stats.is_empty());
        assert_eq!(next[0].input, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn a_barrier_works_out_the_figures_for_a_reducing_step_after_it() {
        let p = one_stage(vec![
            TaskCall::new("sort", json!({})),
            TaskCall::new(
                "average",
                json!({"operations": [{"a": "x", "column": "m"}]}),
            ),
        ]);
        let mut flow = Flow::new(&p, Some(3));
        let work = sent(flow.start((0..8).collect(), &Rows).expect("start"));
        assert_eq!((work.len(), work[0].partial_for), (1, Some(1)));
        // The sorted table comes back in three pieces; the figures cover
        // all three and count once.
        let next = sent(
            flow.done(
                work[0].id,
                (0..8).collect(),
                vec![Stat::Sum(vec![28.0])],
                &Rows,
            )
            .expect("known")
            .expect("ok"),
        );
        assert_eq!(next.len(), 3);
        assert!(next.iter().all(|w| w.stats == [Stat::Sum(vec![28.0])]));
    }
}
