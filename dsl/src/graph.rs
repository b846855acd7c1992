//! The shape of a job: which stage takes which stage's table.
//!
//! A chain is the graph in which every stage takes the one before; a job
//! written as an object of named stages wires them with `inputs`. Either
//! way the runner, the checker and `rtl explain` see the same [`Graph`]:
//! each stage's inputs and consumers, an order in which every stage comes
//! after its inputs, the stages whose tables are the job's results, and
//! which stages may run at the same time.

use crate::{Plan, Problem, Problems};

/// The stages of a plan as a graph of producers and consumers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    inputs: Vec<Vec<usize>>,
    consumers: Vec<Vec<usize>>,
    order: Vec<usize>,
    depth: Vec<usize>,
}

impl Graph {
    /// The stages `stage` takes, in the order the job lists them.
    pub fn inputs(&self, stage: usize) -> &[usize] {
        &self.inputs[stage]
    }

    /// The stages that take `stage`'s table, in stage order.
    pub fn consumers(&self, stage: usize) -> &[usize] {
        &self.consumers[stage]
    }

    /// Every stage, each after its inputs (and otherwise in the job's
    /// order).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The stages no stage takes: the job's results, in stage order.
    pub fn results(&self) -> Vec<usize> {
        (0..self.inputs.len())
            .filter(|&s| self.consumers[s].is_empty())
            .collect()
    }

    /// Stages grouped by how many stages lie before them on the longest
    /// path from a source: the stages of one group never feed each other,
    /// so they can run at the same time.
    pub fn waves(&self) -> Vec<Vec<usize>> {
        let mut waves: Vec<Vec<usize>> = Vec::new();
        for (stage, &d) in self.depth.iter().enumerate() {
            if waves.len() <= d {
                waves.resize(d + 1, Vec::new());
            }
            waves[d].push(stage);
        }
        waves
    }

    /// Stages in all.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether the plan has no stages.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

impl Plan {
    /// The stages `stage` takes: the ones it names, else the stage before.
    pub fn inputs_of(&self, stage: usize) -> Vec<usize> {
        match self.stages.get(stage).and_then(|s| s.inputs.as_ref()) {
            Some(named) => named.iter().map(|&i| i as usize).collect(),
            None => stage.checked_sub(1).into_iter().collect(),
        }
    }

    /// How a stage is named in messages: its name in the job, else its
    /// number.
    pub fn stage_name(&self, stage: usize) -> String {
        match self.stages.get(stage) {
            Some(s) if !s.name.is_empty() => s.name.clone(),
            _ => stage.to_string(),
        }
    }

    /// The plan's graph, or why it is not one a job can run: an input that
    /// is not a stage, a stage named twice among one stage's inputs, or a
    /// cycle (each with the stages it goes through).
    pub fn graph(&self) -> Result<Graph, Problems> {
        if !self.unresolved.is_empty() {
            return Err(Problems(self.unresolved.clone()));
        }
        let n = self.stages.len();
        let mut problems = self.naming_problems();
        let mut inputs = Vec::with_capacity(n);
        for stage in 0..n {
            let mut listed: Vec<usize> = Vec::new();
            for input in self.inputs_of(stage) {
                let here = || {
                    Problem::in_file(&self.origin, "")
                        .stage(self.stage_name(stage))
                        .at(self.stages[stage].at)
                };
                if input >= n {
                    problems.push(Problem {
                        message: format!(
                            "`inputs` names a stage the job does not have (number {input}; it has {n})"
                        ),
                        ..here()
                    });
                } else if input == stage {
                    problems.push(Problem {
                        message: "a stage cannot take its own table as input".into(),
                        ..here()
                    });
                } else if listed.contains(&input) {
                    problems.push(Problem {
                        message: format!(
                            "`inputs` names `{}` twice; a stage takes each input once",
                            self.stage_name(input)
                        ),
                        ..here()
                    });
                } else {
                    listed.push(input);
                }
            }
            inputs.push(listed);
        }
        let mut consumers = vec![Vec::new(); n];
        for (stage, ins) in inputs.iter().enumerate() {
            for &i in ins {
                consumers[i].push(stage);
            }
        }
        if let Some(cycle) = find_cycle(&inputs) {
            let mut path: Vec<String> = cycle.iter().map(|&s| self.stage_name(s)).collect();
            // A long cycle is told by its ends: the first stages and the
            // last, back to the first.
            if path.len() > 12 {
                let cut = path.len() - 10;
                path.splice(6..path.len() - 4, [format!("... ({cut} more) ...")]);
            }
            problems.push(
                Problem::in_file(
                    &self.origin,
                    format!(
                        "the stages' inputs go round in a cycle: {}; a stage can only take stages that do not depend on it",
                        path.join(" -> ")
                    ),
                )
                .stage(self.stage_name(cycle[0]))
                .at(self.stages[cycle[0]].at),
            );
        }
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        // Kahn's order, taking the lowest-numbered ready stage first, so a
        // chain keeps its order and a graph its written one where it can.
        let mut waiting: Vec<usize> = inputs.iter().map(Vec::len).collect();
        let mut ready: std::collections::BTreeSet<usize> =
            (0..n).filter(|&s| waiting[s] == 0).collect();
        let mut order = Vec::with_capacity(n);
        let mut depth = vec![0; n];
        while let Some(stage) = ready.pop_first() {
            order.push(stage);
            for &c in &consumers[stage] {
                depth[c] = depth[c].max(depth[stage] + 1);
                waiting[c] -= 1;
                if waiting[c] == 0 {
                    ready.insert(c);
                }
            }
        }
        Ok(Graph {
            inputs,
            consumers,
            order,
            depth,
        })
    }
}

impl Plan {
    /// Names a job's text could not have given (a plan built in code or
    /// sent by another program): one that is not letters, digits, `_` and
    /// `-`, or that two stages go by (a number counts as the name of an
    /// unnamed stage).
    fn naming_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for (stage, s) in self.stages.iter().enumerate() {
            let name = self.stage_name(stage);
            let fine = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !fine {
                problems.push(Problem::in_file(
                    &self.origin,
                    format!("{name:?} cannot name a stage: stage names are ASCII letters, digits, `_` and `-`"),
                ).at(s.at));
            } else if let Some(long) = crate::too_long(&name) {
                problems.push(Problem::in_file(&self.origin, long).at(s.at));
            } else if let Some(first) = seen.insert(name.clone(), stage) {
                problems.push(
                    Problem::in_file(
                        &self.origin,
                        format!("stages {first} and {stage} are both called `{name}`; each stage has a name of its own"),
                    )
                    .at(s.at),
                );
            }
        }
        problems
    }
}

/// A cycle among `inputs` (stage -> the stages it takes), as the stages
/// it passes through in the direction tables flow, its first stage again
/// at the end: `a -> b -> a`.
fn find_cycle(inputs: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; inputs.len()];
    for root in 0..inputs.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // Depth-first along inputs, without recursion (a job may have
        // thousands of stages): the path, and how far through each
        // stage's inputs it has gone.
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::OnPath;
        while let Some((stage, next)) = path.last_mut() {
            let stage = *stage;
            match inputs[stage].get(*next) {
                Some(&input) => {
                    *next += 1;
                    match mark[input] {
                        Mark::New => {
                            mark[input] = Mark::OnPath;
                            path.push((input, 0));
                        }
                        Mark::OnPath => {
                            // The path runs consumer -> input; tables flow
                            // the other way.
                            let from = path.iter().position(|&(s, _)| s == input).unwrap_or(0);
                            let mut cycle: Vec<usize> =
                                path[from..].iter().map(|&(s, _)| s).collect();
                            cycle.reverse();
                            // From the stage written first.
                            let first = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
                            cycle.rotate_left(first);
                            cycle.push(cycle[0]);
                            return Some(cycle);
                        }
                        Mark::Done => {}
                    }
                }
                None => {
                    mark[stage] = Mark::Done;
                    path.pop();
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_found_in_the_direction_tables_flow() {
        // 0 takes 2, 1 takes 0, 2 takes 1: 2 -> 0 -> 1 -> 2.
        let inputs = vec![vec![2], vec![0], vec![1]];
        let cycle = find_cycle(&inputs).expect("cycle");
        assert_eq!(cycle.first(), cycle.last());
        assert_eq!(cycle.len(), 4);
        // Each stage feeds the next one named.
        for pair in cycle.windows(2) {
            assert!(inputs[pair[1]].contains(&pair[0]), "{cycle:?}");
        }
        assert_eq!(find_cycle(&[vec![], vec![0], vec![0, 1]]), None);
    }

    #[test]
    fn a_long_cycle_is_told_by_its_ends() {
        // Stage i takes stage i + 1, the last takes the first.
        let stages: Vec<String> = (0..1000)
            .map(|i| {
                format!(
                    r#""s{i}": {{"inputs": "s{}", "tasks": {{"null": {{}}}}}}"#,
                    (i + 1) % 1000
                )
            })
            .collect();
        let text = format!(r#"{{"stages": {{{}}}}}"#, stages.join(", "));
        let plan = Plan::parse(&text, "job.json", ".".into()).expect("parse");
        let problems = plan.graph().expect_err("a cycle").0;
        let message = &problems[0].message;
        assert!(message.len() < 300, "{message}");
        assert!(message.contains(" -> ... (991 more) ... -> "), "{message}");
    }
}
