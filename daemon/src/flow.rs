//! How one job's tables move through its stages: in one piece, or as
//! chunks that run on several nodes at once and stream from stage to stage,
//! along every edge of the job's graph.
//!
//! Each stage's tasks form a list of steps. Without chunking a step is a
//! whole stage. With chunking each run of consecutive row-local tasks is
//! one step, and each task that needs the whole table is a step of its own
//! (a barrier), except those that need only a few figures of it (sums,
//! counts, extremes: `rtl_tasks::reduce`). Such a task starts a reducing
//! step, with the row-local tasks after it: every chunk works out its
//! figures at the end of the step before, the relay combines them, and the
//! chunks go through the step each with the whole table's figures, still
//! on every node at once.
//!
//! A stage's table travels as lanes, kept in table order by their place
//! ([`Place`]). A source stage starts with one lane holding the job's
//! input. A table larger than a chunk that reaches a row-local step is
//! split into one lane per chunk, and each lane goes on by itself: a chunk
//! done with a stage goes straight into each consumer's row-local step,
//! without waiting for its siblings (on fan-out, each consumer gets the
//! same table: [`Pieces::share`]). Lanes meet again only at a barrier, at
//! a combining task (which waits for all of every input), or at a result,
//! where they are joined in order, whatever order they finished in. A
//! row-local task's output rows depend only on its own input rows (tested
//! for every such task in rtl-tasks), so the result is the one the whole
//! table would give.
//!
//! Every stage whose inputs are ready runs at once: branches of a graph
//! overlap on the nodes with room. `Flow` is bookkeeping only: what a
//! table is, and how it is split, joined and shared, is up to its caller
//! through [`Pieces`]; unit tests use plain vectors.

use rtl_dsl::{Graph, Plan};
use rtl_tasks::{combine, lookup, Installed, Stat, Table};
use std::collections::{BTreeMap, HashMap, VecDeque};
use uuid::Uuid;

/// `table` as consecutive chunks of at most `rows` rows.
pub fn split(table: &Table, rows: usize) -> Vec<Table> {
    let rows = rows.max(1);
    (0..table.rows().div_ceil(rows))
        .map(|k| table.slice(k * rows, (k + 1) * rows))
        .collect()
}

/// How the caller's tables are measured, split, joined and shared.
pub trait Pieces<T> {
    /// Rows in `table`.
    fn rows(&self, table: &T) -> usize;
    /// `table` as consecutive pieces of at most `rows` rows.
    fn split(&self, table: T, rows: usize) -> Result<Vec<T>, String>;
    /// `parts` as one table, in order.
    fn join(&self, parts: Vec<T>) -> Result<T, String>;
    /// `table` for `readers` consumers, each to read and let go of on its
    /// own (the first gets `table` itself).
    fn share(&self, table: T, readers: usize) -> Vec<T>;
    /// Several tables sent as one piece of work, for a combining task, in
    /// the order its stage lists its inputs.
    fn bundle(&self, tables: Vec<T>) -> Result<T, String>;
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
    /// The most rows a chunk of this step may have, when one of its tasks
    /// asks for fewer than `chunking_size` (an installed task's
    /// `chunk_rows`).
    pub rows: Option<usize>,
}

/// The steps of every stage of `plan`, stage by stage: chunk by chunk
/// (`chunk_rows` rows each) where row-local tasks allow it (built-in, or
/// `installed` ones whose manifest says so), whole stages when
/// `chunk_rows` is None.
pub fn steps_of(plan: &Plan, chunk_rows: Option<usize>, installed: &Installed) -> Vec<Vec<Step>> {
    plan.stages
        .iter()
        .enumerate()
        .map(|(stage, tasks)| {
            let stage = stage as u32;
            let mut steps: Vec<Step> = Vec::new();
            for (i, call) in tasks.tasks.iter().enumerate() {
                let i = i as u32;
                let spec = lookup(&call.name).filter(|_| chunk_rows.is_some());
                let manifest = installed.get(&call.name);
                let row_local = match spec {
                    Some(t) => t.row_local,
                    None => chunk_rows.is_some() && manifest.is_some_and(|m| m.row_local),
                };
                let rows = manifest
                    .and_then(|m| m.chunk_rows)
                    .and_then(|r| usize::try_from(r).ok());
                let reduce = spec
                    .and_then(|t| t.reduce.as_ref())
                    .is_some_and(|r| (r.applies)(&call.kwargs));
                match steps.last_mut() {
                    Some(last) if chunk_rows.is_none() || (row_local && last.row_local) => {
                        last.end = i + 1;
                        last.rows = match (last.rows, rows) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    _ => steps.push(Step {
                        stage,
                        start: i,
                        end: i + 1,
                        row_local: row_local || reduce,
                        reduce,
                        rows,
                    }),
                }
            }
            steps
        })
        .collect()
}

/// The most rows a chunk of `step` may have: `chunk_rows`
/// (`chunking_size`), or less when a task of the step asks for less; None
/// when chunking is off.
fn chunk_for(chunk_rows: Option<usize>, step: &Step) -> Option<usize> {
    chunk_rows.map(|n| step.rows.map_or(n, |r| r.clamp(1, n)))
}

/// Where a lane's table lies in its stage's table: lanes sort by place.
/// A whole table is `[]`; cutting a lane in pieces gives each its place
/// with the piece's number added, so they sort between the lane's
/// neighbours.
type Place = Vec<u32>;

enum State<T> {
    /// Out on a node as envelope `id`, which runs the stage's steps up to
    /// `until`.
    Running { id: Uuid, until: usize },
    /// Holding its table, before step `Lane::step` (or finished).
    Waiting(T),
}

struct Lane<T> {
    /// The stage's step it stands before; the stage's step count when it
    /// is through the stage.
    step: usize,
    state: State<T>,
    /// The figures the envelope that made this lane's table worked out for
    /// the next step; empty when a sibling split from the same table
    /// carries them. None: not worked out.
    partial: Option<Vec<Stat>>,
}

/// One stage's lanes and what it waits for.
struct StageFlow<T> {
    /// As messages name it.
    name: String,
    steps: Vec<Step>,
    inputs: Vec<usize>,
    consumers: Vec<usize>,
    /// Its first task combines its inputs.
    combines: bool,
    lanes: BTreeMap<Place, Lane<T>>,
    /// Inputs still sending lanes.
    open_inputs: usize,
    /// For a combining stage: the lanes of each input, gathered until all
    /// have come.
    gathered: Vec<BTreeMap<Place, T>>,
    /// Every lane has gone through (and on, or into the results).
    finished: bool,
    /// Its combining task has been sent its inputs.
    combined: bool,
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
    /// The table to run them on (for a combining task, its inputs'
    /// tables bundled).
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
    /// The lane's place among the stage's lanes when it was sent.
    pub seq: u32,
    /// How many lanes the stage had then.
    pub count: u32,
}

/// What an answer led to.
#[derive(Debug)]
pub enum Next<T> {
    /// Work to send (possibly none while other lanes are still out).
    Send(Vec<Work<T>>),
    /// The job is done: the table of each result stage, in stage order.
    Finished(Vec<(u32, T)>),
}

/// A job's stages, steps and lanes.
pub struct Flow<T> {
    stages: Vec<StageFlow<T>>,
    /// Whole-stage envelopes when None.
    chunk_rows: Option<usize>,
    /// The stage and place of the lane each envelope out runs, by envelope
    /// id: answers find their lane at once, however many chunks a job has.
    running: HashMap<Uuid, (usize, Place)>,
    /// Result stages' tables, as they finish.
    results: Vec<(u32, T)>,
    /// Result stages still running.
    results_left: usize,
    /// Stages in an order that puts each after its inputs.
    order: Vec<usize>,
}

impl<T> Flow<T> {
    /// The flow of `plan`, whose graph is `graph`; chunk by chunk
    /// (`chunk_rows` rows each) where row-local tasks allow it, whole
    /// stages when `chunk_rows` is None.
    pub fn new(
        plan: &Plan,
        graph: &Graph,
        chunk_rows: Option<usize>,
        installed: &Installed,
    ) -> Flow<T> {
        let stages: Vec<StageFlow<T>> = steps_of(plan, chunk_rows, installed)
            .into_iter()
            .enumerate()
            .map(|(s, steps)| {
                let inputs = graph.inputs(s).to_vec();
                let combines = inputs.len() > 1;
                StageFlow {
                    name: plan.stage_name(s),
                    steps,
                    consumers: graph.consumers(s).to_vec(),
                    combines,
                    open_inputs: inputs.len(),
                    gathered: if combines {
                        inputs.iter().map(|_| BTreeMap::new()).collect()
                    } else {
                        Vec::new()
                    },
                    inputs,
                    lanes: BTreeMap::new(),
                    finished: false,
                    combined: false,
                }
            })
            .collect();
        let results_left = stages.iter().filter(|s| s.consumers.is_empty()).count();
        Flow {
            stages,
            chunk_rows: chunk_rows.map(|n| n.max(1)),
            running: HashMap::new(),
            results: Vec::new(),
            results_left,
            order: graph.order().to_vec(),
        }
    }

    /// Starts the job: every source stage gets `input`.
    pub fn start(&mut self, input: T, pieces: &impl Pieces<T>) -> Result<Next<T>, String> {
        let sources: Vec<usize> = (0..self.stages.len())
            .filter(|&s| self.stages[s].inputs.is_empty())
            .collect();
        let mut todo = VecDeque::new();
        for (s, table) in sources.iter().zip(pieces.share(input, sources.len())) {
            let lane = Lane {
                step: 0,
                state: State::Waiting(table),
                partial: None,
            };
            self.stages[*s].lanes.insert(Vec::new(), lane);
            todo.push_back((*s, vec![Vec::new()]));
        }
        self.settle(todo, pieces)
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
        let Some((s, place)) = self.running.get(&id).cloned() else {
            return Err(output);
        };
        let until = match self.stages[s].lanes.get(&place).map(|l| &l.state) {
            Some(State::Running { id: out, until }) if *out == id => *until,
            _ => return Err(output),
        };
        self.running.remove(&id);
        self.stages[s].lanes.remove(&place);
        let stage = &self.stages[s];
        let asked = self.partial_for(s, until).is_some();
        let chunk = stage
            .steps
            .get(until)
            .filter(|s| s.row_local)
            .and_then(|s| chunk_for(self.chunk_rows, s));
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
        let fresh = self.place_pieces(s, &place, parts, until, |first| {
            known.then(|| {
                if first {
                    partial.take().unwrap_or_default()
                } else {
                    Vec::new()
                }
            })
        });
        Ok(self.settle(VecDeque::from([(s, fresh)]), pieces))
    }

    /// Puts `parts` (the pieces of the table at `place`, in order) into
    /// stage `s` as waiting lanes before `step`; returns their places.
    fn place_pieces(
        &mut self,
        s: usize,
        place: &Place,
        parts: Vec<T>,
        step: usize,
        mut partial: impl FnMut(bool) -> Option<Vec<Stat>>,
    ) -> Vec<Place> {
        let one = parts.len() == 1;
        let mut fresh = Vec::with_capacity(parts.len());
        for (k, table) in parts.into_iter().enumerate() {
            let mut at = place.clone();
            if !one {
                at.push(k as u32);
            }
            let lane = Lane {
                step,
                state: State::Waiting(table),
                partial: partial(k == 0),
            };
            self.stages[s].lanes.insert(at.clone(), lane);
            fresh.push(at);
        }
        fresh
    }

    /// The first unfinished stage, in running order, for messages.
    pub fn stage(&self) -> u32 {
        self.order
            .iter()
            .find(|&&s| !self.stages[s].finished)
            .or(self.order.last())
            .map_or(0, |&s| s as u32)
    }

    /// The tables the job holds while no node works on them.
    pub fn held(&self) -> impl Iterator<Item = &T> {
        self.stages
            .iter()
            .flat_map(|s| {
                let waiting = s.lanes.values().filter_map(|l| match &l.state {
                    State::Waiting(t) => Some(t),
                    State::Running { .. } => None,
                });
                waiting.chain(s.gathered.iter().flat_map(BTreeMap::values))
            })
            .chain(self.results.iter().map(|(_, t)| t))
    }

    /// Every table the job holds, so a failed job's can be released.
    pub fn drain(&mut self) -> Vec<T> {
        self.running.clear();
        let mut out = Vec::new();
        for stage in &mut self.stages {
            for (_, lane) in std::mem::take(&mut stage.lanes) {
                if let State::Waiting(t) = lane.state {
                    out.push(t);
                }
            }
            for gathered in &mut stage.gathered {
                out.extend(std::mem::take(gathered).into_values());
            }
        }
        out.extend(self.results.drain(..).map(|(_, t)| t));
        out
    }

    /// Works through the stages in `todo` (each with its lanes that are
    /// new where they stand) until nothing moves: lanes through a stage go
    /// on to its consumers, chunks go on alone, and stages whose inputs
    /// are all in run their barriers, combine, or finish.
    fn settle(
        &mut self,
        mut todo: VecDeque<(usize, Vec<Place>)>,
        pieces: &impl Pieces<T>,
    ) -> Result<Next<T>, String> {
        let mut out = Vec::new();
        while let Some((s, fresh)) = todo.pop_front() {
            self.advance(s, fresh, pieces, &mut out, &mut todo)?;
        }
        if self.results_left == 0 {
            let mut results = std::mem::take(&mut self.results);
            results.sort_by_key(|(s, _)| *s);
            return Ok(Next::Finished(results));
        }
        Ok(Next::Send(out))
    }

    fn advance(
        &mut self,
        s: usize,
        fresh: Vec<Place>,
        pieces: &impl Pieces<T>,
        out: &mut Vec<Work<T>>,
        todo: &mut VecDeque<(usize, Vec<Place>)>,
    ) -> Result<(), String> {
        let end = self.stages[s].steps.len();
        for place in &fresh {
            let Some(lane) = self.stages[s].lanes.get(place) else {
                continue;
            };
            if !matches!(lane.state, State::Waiting(_)) {
                continue;
            }
            if lane.step >= end {
                // Through the stage: on to its consumers, if it has any.
                if !self.stages[s].consumers.is_empty() {
                    self.hand_on(s, place, pieces, todo)?;
                }
                continue;
            }
            // A chunk at a row-local step goes on by itself.
            let step = self.stages[s].steps[lane.step];
            if !place.is_empty() && step.row_local && !step.reduce {
                let until = lane.step + 1;
                out.extend(self.send(s, place, until, Vec::new()));
            }
        }
        let stage = &self.stages[s];
        if stage.finished || stage.open_inputs > 0 {
            return Ok(());
        }
        if stage
            .lanes
            .values()
            .any(|l| matches!(l.state, State::Running { .. }))
        {
            return Ok(());
        }
        // Everything has come in and nothing is out.
        if stage.combines && !stage.combined {
            return self.combine(s, pieces, out);
        }
        let at = stage.lanes.values().map(|l| l.step).min();
        match at {
            Some(step) if step < end => self.barrier(s, step, pieces, out),
            // Through: the stage is done.
            _ => self.finish(s, pieces, todo),
        }
    }

    /// Hands the lane at `place`, through stage `s`, to each consumer: a
    /// combining one gathers it, any other takes it as a lane at the same
    /// place (in chunks, when its first step is row-local).
    fn hand_on(
        &mut self,
        s: usize,
        place: &Place,
        pieces: &impl Pieces<T>,
        todo: &mut VecDeque<(usize, Vec<Place>)>,
    ) -> Result<(), String> {
        let Some(Lane {
            state: State::Waiting(table),
            ..
        }) = self.stages[s].lanes.remove(place)
        else {
            return Ok(());
        };
        let consumers = self.stages[s].consumers.clone();
        for (c, table) in consumers.iter().zip(pieces.share(table, consumers.len())) {
            let consumer = &mut self.stages[*c];
            if consumer.combines {
                let input = consumer.inputs.iter().position(|&i| i == s).unwrap_or(0);
                consumer.gathered[input].insert(place.clone(), table);
                continue;
            }
            let chunk = consumer
                .steps
                .first()
                .filter(|s| s.row_local)
                .and_then(|s| chunk_for(self.chunk_rows, s));
            let parts = match chunk {
                Some(rows) => pieces.split(table, rows)?,
                None => vec![table],
            };
            let fresh = self.place_pieces(*c, place, parts, 0, |_| None);
            todo.push_back((*c, fresh));
        }
        Ok(())
    }

    /// Stage `s` is through: its table is a result, or its consumers have
    /// it all and one input fewer to wait for.
    fn finish(
        &mut self,
        s: usize,
        pieces: &impl Pieces<T>,
        todo: &mut VecDeque<(usize, Vec<Place>)>,
    ) -> Result<(), String> {
        let stage = &mut self.stages[s];
        stage.finished = true;
        if stage.consumers.is_empty() {
            let parts: Vec<T> = std::mem::take(&mut stage.lanes)
                .into_values()
                .filter_map(|l| match l.state {
                    State::Waiting(t) => Some(t),
                    State::Running { .. } => None,
                })
                .collect();
            let table = match parts.len() {
                1 => parts.into_iter().next().ok_or("no lanes")?,
                _ => pieces
                    .join(parts)
                    .map_err(|e| format!("stage {}: {e}", stage.name))?,
            };
            self.results.push((s as u32, table));
            self.results_left -= 1;
        }
        for c in self.stages[s].consumers.clone() {
            self.stages[c].open_inputs -= 1;
            todo.push_back((c, Vec::new()));
        }
        Ok(())
    }

    /// Every input of combining stage `s` is in: each is joined, and the
    /// combining task runs on them all.
    fn combine(
        &mut self,
        s: usize,
        pieces: &impl Pieces<T>,
        out: &mut Vec<Work<T>>,
    ) -> Result<(), String> {
        let stage = &mut self.stages[s];
        stage.combined = true;
        let mut tables = Vec::with_capacity(stage.gathered.len());
        let mut rows = 0;
        for gathered in &mut stage.gathered {
            let parts: Vec<T> = std::mem::take(gathered).into_values().collect();
            let table = match parts.len() {
                1 => parts.into_iter().next().ok_or("no lanes")?,
                _ => pieces
                    .join(parts)
                    .map_err(|e| format!("stage {}: {e}", stage.name))?,
            };
            rows += pieces.rows(&table);
            tables.push(table);
        }
        let bundle = pieces.bundle(tables)?;
        stage.lanes.insert(
            Vec::new(),
            Lane {
                step: 0,
                state: State::Waiting(bundle),
                partial: None,
            },
        );
        // Small inputs run the whole stage at once; large ones the
        // combining step alone, so that what follows can run in chunks.
        let big = self.chunk_rows.is_some_and(|n| rows > n);
        let until = if big { 1 } else { stage.steps.len() };
        out.extend(self.send(s, &Vec::new(), until, Vec::new()));
        Ok(())
    }

    /// Every lane of stage `s` waits before `step`, nothing more will
    /// come, and nothing is out: a reducing step whose chunks all brought
    /// their figures goes on chunk by chunk with the whole table's;
    /// otherwise the lanes are joined and the table goes on whole, or cut
    /// in chunks for a row-local step.
    fn barrier(
        &mut self,
        s: usize,
        step: usize,
        pieces: &impl Pieces<T>,
        out: &mut Vec<Work<T>>,
    ) -> Result<(), String> {
        if let Some(stats) = self.whole_figures(s, step)? {
            let places: Vec<Place> = self.stages[s].lanes.keys().cloned().collect();
            for place in places {
                out.extend(self.send(s, &place, step + 1, stats.clone()));
            }
            return Ok(());
        }
        let stage = &mut self.stages[s];
        let parts: Vec<T> = std::mem::take(&mut stage.lanes)
            .into_values()
            .filter_map(|l| match l.state {
                State::Waiting(t) => Some(t),
                State::Running { .. } => None,
            })
            .collect();
        let table = match parts.len() {
            1 => parts.into_iter().next().ok_or("no lanes")?,
            _ => pieces
                .join(parts)
                .map_err(|e| format!("stage {}: {e}", stage.name))?,
        };
        let rows = pieces.rows(&table);
        let here = stage.steps[step];
        let chunk = chunk_for(self.chunk_rows, &here).filter(|n| rows > *n);
        // Too big for a chunk of some step still to come: that step may
        // take it in chunks.
        let big = stage.steps[step..]
            .iter()
            .filter_map(|later| chunk_for(self.chunk_rows, later))
            .any(|n| rows > n);
        // A reducing step without figures runs on the joined table, as a
        // barrier does.
        if let Some(chunk) = chunk.filter(|_| here.row_local && !here.reduce) {
            let parts = pieces.split(table, chunk)?;
            let places = self.place_pieces(s, &Vec::new(), parts, step, |_| None);
            for place in places {
                out.extend(self.send(s, &place, step + 1, Vec::new()));
            }
            return Ok(());
        }
        stage.lanes.insert(
            Vec::new(),
            Lane {
                step,
                state: State::Waiting(table),
                partial: None,
            },
        );
        // A small table runs the rest of its stage in one envelope; a big
        // one runs the barrier alone so the next step can take its result
        // in chunks.
        let until = if big { step + 1 } else { stage.steps.len() };
        out.extend(self.send(s, &Vec::new(), until, Vec::new()));
        Ok(())
    }

    /// When the lanes of stage `s` (more than one, all waiting) stand
    /// before a reducing `step` and every one brought its figures: the
    /// whole table's.
    fn whole_figures(&self, s: usize, step: usize) -> Result<Option<Vec<Stat>>, String> {
        let stage = &self.stages[s];
        if stage.lanes.len() < 2 || !stage.steps.get(step).is_some_and(|s| s.reduce) {
            return Ok(None);
        }
        let Some(parts) = stage
            .lanes
            .values()
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

    /// The task whose figures an envelope of stage `s` ending before step
    /// `until` should work out: the first of that step when it reduces.
    fn partial_for(&self, s: usize, until: usize) -> Option<u32> {
        let next = self.stages[s].steps.get(until).filter(|s| s.reduce)?;
        Some(next.start)
    }

    /// Sends the lane of stage `s` at `place`, waiting before its step,
    /// through the steps up to `until` (exclusive), the first with `stats`
    /// when it reduces chunk by chunk.
    fn send(&mut self, s: usize, place: &Place, until: usize, stats: Vec<Stat>) -> Option<Work<T>> {
        let partial_for = self.partial_for(s, until);
        let stage = &mut self.stages[s];
        let count = stage.lanes.len() as u32;
        let seq = stage.lanes.range(..place.clone()).count() as u32;
        let lane = stage.lanes.get_mut(place)?;
        if !matches!(lane.state, State::Waiting(_)) || lane.step >= stage.steps.len() {
            return None;
        }
        let id = Uuid::new_v4();
        let State::Waiting(input) =
            std::mem::replace(&mut lane.state, State::Running { id, until })
        else {
            return None;
        };
        let (first, last) = (stage.steps[lane.step], stage.steps[until - 1]);
        let whole_stage = lane.step == 0 && until == stage.steps.len();
        self.running.insert(id, (s, place.clone()));
        Some(Work {
            id,
            stage: s as u32,
            tasks: (!whole_stage).then_some((first.start, last.end)),
            input,
            split_rows: stage
                .steps
                .get(until)
                .map_or(self.chunk_rows, |next| chunk_for(self.chunk_rows, next)),
            stats,
            partial_for,
            seq,
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
        fn share(&self, table: Vec<u32>, readers: usize) -> Vec<Vec<u32>> {
            vec![table; readers]
        }
        fn bundle(&self, tables: Vec<Vec<u32>>) -> Result<Vec<u32>, String> {
            Ok(tables.concat())
        }
    }

    /// The flow of `plan`.
    fn flow(plan: &Plan, chunk_rows: Option<usize>) -> Flow<Vec<u32>> {
        Flow::new(
            plan,
            &plan.graph().expect("graph"),
            chunk_rows,
            &Installed::default(),
        )
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
            unresolved: Vec::new(),
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
        let mut flow = flow(&plan(&[&["add", "sort"], &["log"]]), None);
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
            Ok(Next::Finished(t)) => assert_eq!(t, [(1, vec![3])]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_small_table_runs_a_whole_stage_at_once_even_with_chunking() {
        let mut flow = flow(&plan(&[&["add", "sort", "log"]]), Some(100));
        let work = sent(flow.start((0..10).collect(), &Rows).expect("start"));
        assert_eq!(work.len(), 1);
        assert_eq!(work[0].tasks, None);
    }

    #[test]
    fn chunks_stream_into_the_next_stage_and_meet_at_a_barrier() {
        let p = plan(&[&["open_array"], &["add", "log"], &["divide", "sort", "add"]]);
        let mut flow = flow(&p, Some(3));
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
        assert_eq!(
            result.expect("finished"),
            [(2, (10..18).collect::<Vec<_>>())]
        );
    }

    #[test]
    fn an_unknown_answer_is_handed_back() {
        let mut flow = flow(&plan(&[&["add"]]), None);
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
            unresolved: Vec::new(),
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
        let mut flow = flow(&reducing_plan(), Some(3));
        let shape: Vec<_> = steps_of(&reducing_plan(), Some(3), &Installed::default())[0]
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
        let mut flow = flow(&reducing_plan(), Some(3));
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
        let mut flow = flow(&p, Some(3));
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

    /// `load` (a source), `left` and `right` taking it, `both` joining them.
    fn diamond() -> Plan {
        Plan::builder(".")
            .named("load", &[])
            .task("open_array", json!({}))
            .named("left", &["load"])
            .task("add", json!({}))
            .named("right", &["load"])
            .task("multiply", json!({}))
            .named("both", &["left", "right"])
            .task("join", json!({"on": "k"}))
            .task("add", json!({}))
            .build()
    }

    /// Answers every piece of `work` with its own input, in the order given.
    fn answer_all(flow: &mut Flow<Vec<u32>>, work: &[Work<Vec<u32>>]) -> Vec<Work<Vec<u32>>> {
        let mut next = Vec::new();
        for w in work {
            next.extend(sent(
                flow.done(w.id, w.input.clone(), Vec::new(), &Rows)
                    .expect("known")
                    .expect("ok"),
            ));
        }
        next
    }

    #[test]
    fn branches_run_at_once_and_a_combining_stage_waits_for_all_its_inputs() {
        let mut flow = flow(&diamond(), None);
        let load = sent(flow.start(Vec::new(), &Rows).expect("start"));
        assert_eq!(load.len(), 1);
        let branches = sent(
            flow.done(load[0].id, vec![1, 2], Vec::new(), &Rows)
                .expect("known")
                .expect("ok"),
        );
        let stages: Vec<u32> = branches.iter().map(|w| w.stage).collect();
        assert_eq!(stages, [1, 2], "both branches at once");
        assert!(
            branches.iter().all(|w| w.input == [1, 2]),
            "each reads the same table"
        );
        // The right branch finishing first sends nothing: the join waits.
        let none = sent(
            flow.done(branches[1].id, vec![20], Vec::new(), &Rows)
                .expect("known")
                .expect("ok"),
        );
        assert!(none.is_empty());
        assert_eq!(flow.stage(), 1);
        let join = sent(
            flow.done(branches[0].id, vec![10], Vec::new(), &Rows)
                .expect("known")
                .expect("ok"),
        );
        assert_eq!(join.len(), 1);
        assert_eq!((join[0].stage, join[0].tasks), (3, None));
        assert_eq!(
            join[0].input,
            [10, 20],
            "inputs bundled in the order the stage lists them"
        );
        match flow
            .done(join[0].id, vec![7], Vec::new(), &Rows)
            .expect("known")
        {
            Ok(Next::Finished(results)) => assert_eq!(results, [(3, vec![7])]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_stage_no_stage_takes_is_a_result() {
        let plan = Plan::builder(".")
            .named("load", &[])
            .task("open_array", json!({}))
            .named("a", &["load"])
            .task("add", json!({}))
            .named("b", &["load"])
            .task("sort", json!({}))
            .build();
        let mut flow = flow(&plan, None);
        let load = sent(flow.start(Vec::new(), &Rows).expect("start"));
        let branches = answer_all(&mut flow, &load);
        let done = flow
            .done(branches[1].id, vec![2], Vec::new(), &Rows)
            .expect("known")
            .expect("ok");
        assert!(matches!(done, Next::Send(ref w) if w.is_empty()));
        match flow
            .done(branches[0].id, vec![1], Vec::new(), &Rows)
            .expect("known")
        {
            Ok(Next::Finished(results)) => assert_eq!(results, [(1, vec![1]), (2, vec![2])]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chunks_stream_into_every_consumer_and_meet_at_the_combining_task() {
        let mut flow = flow(&diamond(), Some(3));
        let load = sent(flow.start(Vec::new(), &Rows).expect("start"));
        // Eight rows come back: three chunks, each at once into both
        // branches' row-local steps.
        let chunks = sent(
            flow.done(load[0].id, (0..8).collect(), Vec::new(), &Rows)
                .expect("known")
                .expect("ok"),
        );
        assert_eq!(chunks.len(), 6);
        assert_eq!(chunks.iter().filter(|w| w.stage == 1).count(), 3);
        assert_eq!(chunks[2].input, [6, 7]);
        // Every chunk but one back: the join still waits.
        let (last, rest) = chunks.split_last().expect("chunks");
        assert!(answer_all(&mut flow, rest).is_empty());
        let join = answer_all(&mut flow, std::slice::from_ref(last));
        assert_eq!(join.len(), 1);
        assert_eq!(join[0].stage, 3);
        assert_eq!(
            join[0].tasks,
            Some((0, 1)),
            "a big join runs alone, so what follows can run in chunks"
        );
        let both: Vec<u32> = (0..8).chain(0..8).collect();
        assert_eq!(join[0].input, both, "each input joined in table order");
        let after = sent(
            flow.done(join[0].id, (0..8).collect(), Vec::new(), &Rows)
                .expect("known")
                .expect("ok"),
        );
        assert_eq!(after.len(), 3, "the join's result goes on in chunks");
        let mut result = None;
        for w in after.iter().rev() {
            if let Next::Finished(r) = flow
                .done(w.id, w.input.clone(), Vec::new(), &Rows)
                .expect("known")
                .expect("ok")
            {
                result = Some(r);
            }
        }
        assert_eq!(result.expect("finished"), [(3, (0..8).collect::<Vec<_>>())]);
    }

    #[test]
    fn a_failed_job_hands_back_every_table_it_holds() {
        let mut flow = flow(&diamond(), None);
        let load = sent(flow.start(Vec::new(), &Rows).expect("start"));
        let branches = answer_all(&mut flow, &load);
        sent(
            flow.done(branches[0].id, vec![1], Vec::new(), &Rows)
                .expect("known")
                .expect("ok"),
        );
        // The left branch's table waits for the join; the right is out.
        assert_eq!(flow.held().count(), 1);
        assert_eq!(flow.drain(), [vec![1]]);
        assert!(flow
            .done(branches[1].id, vec![2], Vec::new(), &Rows)
            .is_err());
    }

    #[test]
    fn a_stage_after_a_combining_stage_takes_its_table() {
        let plan = Plan::builder(".")
            .named("a", &[])
            .task("open_array", json!({}))
            .named("b", &[])
            .task("open_array", json!({}))
            .named("both", &["a", "b"])
            .task("concat", json!({}))
            .named("after", &["both"])
            .task("add", json!({}))
            .build();
        for chunk_rows in [None, Some(2)] {
            let mut flow = flow(&plan, chunk_rows);
            let sources = sent(flow.start(Vec::new(), &Rows).expect("start"));
            assert_eq!(sources.len(), 2);
            let mut next = Vec::new();
            for (w, rows) in sources.iter().zip([vec![1, 2], vec![3]]) {
                next = sent(
                    flow.done(w.id, rows, Vec::new(), &Rows)
                        .expect("known")
                        .expect("ok"),
                );
            }
            assert_eq!(next.len(), 1, "{chunk_rows:?}");
            assert_eq!((next[0].stage, next[0].input.clone()), (2, vec![1, 2, 3]));
            let after = sent(
                flow.done(next[0].id, vec![1, 2, 3], Vec::new(), &Rows)
                    .expect("known")
                    .expect("ok"),
            );
            assert!(after.iter().all(|w| w.stage == 3), "{chunk_rows:?}");
            let mut result = None;
            for w in &after {
                if let Next::Finished(r) = flow
                    .done(w.id, w.input.clone(), Vec::new(), &Rows)
                    .expect("known")
                    .expect("ok")
                {
                    result = Some(r);
                }
            }
            assert_eq!(
                result.expect("finished"),
                [(3, vec![1, 2, 3])],
                "{chunk_rows:?}"
            );
        }
    }
}
