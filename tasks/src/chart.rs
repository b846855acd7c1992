//! Chart data: what `simple_plot` hands on to be drawn, taken from a table
//! and thinned to what a picture can show.
//!
//! A chart of 10M points would take minutes to draw and megabytes to send
//! while showing nothing more than a few thousand points do, so every layer
//! is thinned here, where the table is, and the chart's caption says how:
//! lines keep the lowest and highest point of each run of rows (so peaks
//! survive), scatters keep one point per cell of a fine grid, bars are
//! averaged over runs of rows. Drawing is the renderer's business
//! (`rtl_daemon::render`); this module knows nothing of pixels beyond the
//! budgets below.

use crate::{Column, Table};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How a layer's points are drawn.
#[derive(Serialize, Deserialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    #[default]
    /// A point per row.
    Circle,
    /// Points joined in x order.
    Line,
    /// A bar per row.
    Bar,
}

/// As jobs write it: `circle`, `line`, `bar`.
impl std::fmt::Display for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mark::Circle => "circle",
            Mark::Line => "line",
            Mark::Bar => "bar",
        })
    }
}

/// The y axis.
#[derive(Serialize, Deserialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    #[default]
    /// Values as they are.
    Linear,
    /// Powers of ten equally spaced; only positive values are drawn.
    Log,
}

/// As jobs write it: `linear`, `log`.
impl std::fmt::Display for Scale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scale::Linear => "linear",
            Scale::Log => "log",
        })
    }
}

/// One chart, ready to draw.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Chart {
    /// The NAME in `plots`: one chart per name, a newer one replaces it.
    pub name: String,
    /// The chart's title.
    pub title: String,
    /// The x axis's label.
    pub x_label: String,
    /// The y axis's label.
    pub y_label: String,
    /// How the y axis is spaced.
    pub scale: Scale,
    /// When x is a text column: its values, in order of first appearance;
    /// the layers' x are then indexes into this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// What is drawn, in legend order.
    pub layers: Vec<Layer>,
    /// How many points there were and how they were drawn.
    pub caption: String,
}

/// One group of points: an entry of the chart, or one series of it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Layer {
    /// How the points are drawn.
    pub mark: Mark,
    /// The legend's text.
    pub label: String,
    /// Each point's x.
    pub x: Vec<f64>,
    /// Each point's y.
    pub y: Vec<f64>,
}

/// What one `plots` entry asks for.
pub struct Entry<'a> {
    /// The x column.
    pub x: &'a str,
    /// The y column.
    pub y: &'a str,
    /// How the points are drawn.
    pub mark: Mark,
    /// How the y axis is spaced.
    pub scale: Scale,
    /// A text column whose values each get a layer of their own.
    pub series: Option<&'a str>,
}

/// Most series a chart tells apart by color; the rest are drawn as one.
pub const MAX_SERIES: usize = 12;
/// Line layers longer than twice this keep two points per run of rows.
const LINE_RUNS: usize = 2000;
/// Scatter layers larger than this keep one point per grid cell.
const SCATTER_POINTS: usize = 5000;
const GRID: (usize, usize) = (320, 200);
/// Bar layers longer than this are averaged over runs of rows.
const BARS: usize = 400;

impl Chart {
    /// The chart `name` of `entries` drawn from `table`. Columns are
    /// checked by the caller; an entry naming a missing one is an error.
    pub fn from_table(
        name: &str,
        title: Option<&str>,
        entries: &[Entry<'_>],
        table: &Table,
    ) -> Result<Chart, String> {
        let first = entries.first().ok_or("no entries to draw")?;
        let scale = if entries.iter().any(|e| e.scale == Scale::Log) {
            Scale::Log
        } else {
            Scale::Linear
        };
        let mut categories: Vec<String> = Vec::new();
        let mut layers = Vec::new();
        let (mut total, mut dropped) = (0usize, 0usize);
        for entry in entries {
            let x = x_values(table.require(entry.x)?, &mut categories);
            let y = table.numeric(entry.y)?;
            let groups = match entry.series {
                Some(series) => groups(table.require(series)?),
                None => vec![(entry.y.to_string(), (0..table.rows()).collect())],
            };
            for (label, rows) in groups {
                let mut points = Vec::with_capacity(rows.len());
                for i in rows {
                    let (px, py) = (x[i], y[i]);
                    let shown =
                        px.is_finite() && py.is_finite() && (scale == Scale::Linear || py > 0.0);
                    if shown {
                        points.push((px, py));
                    } else {
                        dropped += 1;
                    }
                }
                total += points.len();
                let (x, y) = points.into_iter().unzip();
                layers.push(Layer {
                    mark: entry.mark,
                    label,
                    x,
                    y,
                });
            }
        }
        // Two entries drawing the same column apart: the legend names the mark.
        let labels: Vec<String> = layers.iter().map(|l| l.label.clone()).collect();
        for layer in &mut layers {
            if labels.iter().filter(|l| **l == layer.label).count() > 1 {
                layer.label = format!("{} ({})", layer.label, layer.mark);
            }
        }
        let mut how = Vec::new();
        for layer in &mut layers {
            if let Some(note) = thin(layer, scale) {
                if !how.contains(&note) {
                    how.push(note);
                }
            }
        }
        let drawn: usize = layers.iter().map(|l| l.x.len()).sum();
        let mut caption = format!("{} points", thousands(total));
        if drawn < total {
            caption.push_str(&format!(
                ", drawn as {} ({})",
                thousands(drawn),
                how.join("; ")
            ));
        }
        if dropped > 0 {
            let why = if scale == Scale::Log {
                "nan, infinite or not positive on a log scale"
            } else {
                "nan or infinite"
            };
            caption.push_str(&format!("; {} left out ({why})", thousands(dropped)));
        }
        Ok(Chart {
            name: name.to_string(),
            title: title.unwrap_or(name).to_string(),
            x_label: first.x.to_string(),
            y_label: entries
                .iter()
                .map(|e| e.y)
                .fold(Vec::<&str>::new(), |mut ys, y| {
                    if !ys.contains(&y) {
                        ys.push(y);
                    }
                    ys
                })
                .join(", "),
            scale,
            categories,
            layers,
            caption,
        })
    }
}

/// x as numbers: numeric columns as they are, text as category indexes.
fn x_values(column: &Column, categories: &mut Vec<String>) -> Vec<f64> {
    if let Column::Utf8(values) = column {
        let mut index: HashMap<&str, usize> = categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let mut added = Vec::new();
        let xs = values
            .iter()
            .map(|v| {
                let next = index.len();
                let i = *index.entry(v.as_str()).or_insert_with(|| {
                    added.push(v.clone());
                    next
                });
                i as f64
            })
            .collect();
        categories.extend(added);
        return xs;
    }
    column.as_f64().map_or_else(Vec::new, |a| a.to_vec())
}

/// Rows by the text of their series value, in order of first appearance;
/// past [`MAX_SERIES`] values the rest share one group.
fn groups(column: &Column) -> Vec<(String, Vec<usize>)> {
    let mut order: Vec<(String, Vec<usize>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for i in 0..column.len() {
        let label = label_of(column, i);
        let slot = match index.get(&label) {
            Some(slot) => *slot,
            None if order.len() < MAX_SERIES - 1 => {
                index.insert(label.clone(), order.len());
                order.push((label, Vec::new()));
                order.len() - 1
            }
            None => {
                if order.len() < MAX_SERIES {
                    order.push(("other values".into(), Vec::new()));
                }
                MAX_SERIES - 1
            }
        };
        order[slot].1.push(i);
    }
    order
}

fn label_of(column: &Column, i: usize) -> String {
    match column {
        Column::Int64(a) => a[i].to_string(),
        Column::Float64(a) => a[i].to_string(),
        Column::Bool(a) => a[i].to_string(),
        Column::Utf8(a) => a[i].clone(),
    }
}

/// Thins a layer to what a chart can show; says how, if it did.
fn thin(layer: &mut Layer, scale: Scale) -> Option<String> {
    let n = layer.x.len();
    let keep: Vec<usize> = match layer.mark {
        Mark::Line if n > 2 * LINE_RUNS => {
            let runs = split_runs(n, LINE_RUNS);
            let mut keep = Vec::with_capacity(2 * LINE_RUNS);
            for (start, end) in runs {
                let slice = &layer.y[start..end];
                let (lo, hi) = slice.iter().enumerate().fold((0, 0), |(lo, hi), (i, v)| {
                    (
                        if *v < slice[lo] { i } else { lo },
                        if *v > slice[hi] { i } else { hi },
                    )
                });
                keep.push(start + lo.min(hi));
                if lo != hi {
                    keep.push(start + lo.max(hi));
                }
            }
            keep
        }
        Mark::Circle if n > SCATTER_POINTS => {
            let ys: Vec<f64> = match scale {
                Scale::Log => layer.y.iter().map(|v| v.log10()).collect(),
                Scale::Linear => layer.y.clone(),
            };
            let cell = |values: &[f64], cells: usize| {
                let (lo, hi) = values
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                        (a.min(*v), b.max(*v))
                    });
                let width = if hi > lo {
                    (hi - lo) / cells as f64
                } else {
                    1.0
                };
                move |v: f64| (((v - lo) / width) as usize).min(cells - 1)
            };
            let (cx, cy) = (cell(&layer.x, GRID.0), cell(&ys, GRID.1));
            let mut taken = vec![false; GRID.0 * GRID.1];
            (0..n)
                .filter(|&i| {
                    let at = cy(ys[i]) * GRID.0 + cx(layer.x[i]);
                    !std::mem::replace(&mut taken[at], true)
                })
                .collect()
        }
        Mark::Bar if n > BARS => {
            let runs = split_runs(n, BARS);
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let (x, y) = runs
                .iter()
                .map(|&(s, e)| (mean(&layer.x[s..e]), mean(&layer.y[s..e])))
                .unzip();
            layer.x = x;
            layer.y = y;
            return Some(format!("bars: mean of each of {BARS} runs of rows"));
        }
        _ => return None,
    };
    layer.x = keep.iter().map(|&i| layer.x[i]).collect();
    layer.y = keep.iter().map(|&i| layer.y[i]).collect();
    Some(match layer.mark {
        Mark::Line => {
            format!("lines: lowest and highest point of each of {LINE_RUNS} runs of rows")
        }
        _ => format!("circles: one per cell of a {}x{} grid", GRID.0, GRID.1),
    })
}

/// `n` rows as `parts` consecutive runs of nearly equal length.
fn split_runs(n: usize, parts: usize) -> Vec<(usize, usize)> {
    (0..parts)
        .map(|k| (k * n / parts, (k + 1) * n / parts))
        .filter(|(s, e)| e > s)
        .collect()
}

/// 1234567 as "1,234,567".
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;

    fn table(n: usize) -> Table {
        Table::from_columns(vec![
            ("t".into(), Column::Int64(Array1::from_iter(0..n as i64))),
            (
                "v".into(),
                Column::Float64(Array1::from_iter((0..n).map(|i| (i as f64 * 0.01).sin()))),
            ),
            (
                "site".into(),
                Column::Utf8(Array1::from_iter(
                    (0..n).map(|i| ["a", "b", "c"][i % 3].to_string()),
                )),
            ),
        ])
        .expect("table")
    }

    fn entry<'a>(mark: Mark, series: Option<&'a str>) -> Entry<'a> {
        Entry {
            x: "t",
            y: "v",
            mark,
            scale: Scale::Linear,
            series,
        }
    }

    #[test]
    fn small_charts_keep_every_point_and_split_series() {
        let chart = Chart::from_table(
            "c",
            Some("T"),
            &[entry(Mark::Circle, Some("site"))],
            &table(30),
        )
        .expect("chart");
        assert_eq!((chart.title.as_str(), chart.x_label.as_str()), ("T", "t"));
        assert_eq!(
            chart
                .layers
                .iter()
                .map(|l| l.label.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(chart.layers[1].x[..3], [1.0, 4.0, 7.0]);
        assert_eq!(chart.caption, "30 points");
    }

    #[test]
    fn big_lines_keep_their_extremes_and_say_so() {
        let t = table(1_000_000);
        let chart = Chart::from_table("c", None, &[entry(Mark::Line, None)], &t).expect("chart");
        let layer = &chart.layers[0];
        assert!(layer.x.len() <= 2 * LINE_RUNS, "{}", layer.x.len());
        let max = layer.y.iter().cloned().fold(f64::MIN, f64::max);
        let min = layer.y.iter().cloned().fold(f64::MAX, f64::min);
        assert!(max > 0.99999 && min < -0.99999, "peaks kept: {min} {max}");
        assert!(
            layer.x.windows(2).all(|w| w[0] < w[1]),
            "rows stay in order"
        );
        assert!(
            chart.caption.starts_with("1,000,000 points, drawn as "),
            "{}",
            chart.caption
        );
    }

    #[test]
    fn big_scatters_and_bars_are_bounded() {
        let t = table(200_000);
        let chart = Chart::from_table("c", None, &[entry(Mark::Circle, None)], &t).expect("chart");
        assert!(chart.layers[0].x.len() <= GRID.0 * GRID.1);
        let chart = Chart::from_table("c", None, &[entry(Mark::Bar, None)], &t).expect("chart");
        assert_eq!(chart.layers[0].x.len(), BARS);
        assert!(
            chart.caption.contains("mean of each of"),
            "{}",
            chart.caption
        );
    }

    #[test]
    fn text_x_becomes_categories_and_log_scale_drops_what_it_cannot_show() {
        let t = table(9);
        let e = Entry {
            x: "site",
            y: "v",
            mark: Mark::Bar,
            scale: Scale::Log,
            series: None,
        };
        let chart = Chart::from_table("c", None, &[e], &t).expect("chart");
        assert_eq!(chart.categories, ["a", "b", "c"]);
        assert!(chart.layers[0].y.iter().all(|v| *v > 0.0));
        assert!(chart.caption.contains("left out"), "{}", chart.caption);
    }

    #[test]
    fn many_series_share_the_last_color() {
        let n = 100;
        let t = Table::from_columns(vec![
            ("t".into(), Column::Int64(Array1::from_iter(0..n))),
            (
                "v".into(),
                Column::Float64(Array1::from_elem(n as usize, 1.0)),
            ),
            ("k".into(), Column::Int64(Array1::from_iter(0..n))),
        ])
        .expect("table");
        let chart =
            Chart::from_table("c", None, &[entry(Mark::Circle, Some("k"))], &t).expect("chart");
        assert_eq!(chart.layers.len(), MAX_SERIES);
        assert_eq!(chart.layers[MAX_SERIES - 1].label, "other values");
        assert_eq!(
            chart.layers[MAX_SERIES - 1].x.len(),
            (n as usize) - (MAX_SERIES - 1)
        );
    }
}
