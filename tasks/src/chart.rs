//! Chart data: what `simple_plot` hands on to be drawn, taken from a table
//! and thinned to what a picture can show.
//!
//! A chart of 10M points would take minutes to draw and megabytes to send
//! while showing nothing more than a few thousand points do, so every layer
//! is thinned here, where the table is, and the chart's caption says how.
//! Lines keep, of each pixel column of the plot area, the first, last,
//! lowest and highest point (the M4 method): drawn, they cover exactly the
//! pixels all the points would, so this module knows where the renderer
//! puts the plot area ([`SIZE`], [`Columns`]). Scatters keep one point per
//! cell of a fine grid, bars are averaged over runs of rows. The axes'
//! ranges are fixed here, from every point before thinning, so thinning
//! never moves an axis. Drawing is the renderer's business (`rtl_plot`).

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

/// What the x values are, as the `x_type` kwarg says.
#[derive(Serialize, Deserialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum XType {
    #[default]
    /// Times when the column is named like a time and holds epoch seconds
    /// or milliseconds; numbers otherwise.
    Auto,
    /// Always numbers.
    Number,
    /// Always times: epoch seconds, or milliseconds when the values are
    /// too large to be seconds.
    Time,
}

/// The unit of an x axis of times.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Seconds since 1970-01-01 UTC.
    Seconds,
    /// Milliseconds since 1970-01-01 UTC.
    Milliseconds,
}

impl TimeUnit {
    /// Milliseconds per unit.
    pub fn millis(self) -> f64 {
        match self {
            TimeUnit::Seconds => 1000.0,
            TimeUnit::Milliseconds => 1.0,
        }
    }

    /// The unit's name, as an axis label says it.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Seconds => "epoch seconds",
            TimeUnit::Milliseconds => "epoch milliseconds",
        }
    }
}

/// One chart, ready to draw.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Chart {
    /// The NAME in `plots`: one chart per name.
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
    /// When x holds times: their unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_time: Option<TimeUnit>,
    /// The x axis, from its left end to its right end.
    pub x_range: [f64; 2],
    /// The y axis, from its bottom to its top.
    pub y_range: [f64; 2],
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

/// The picture's size in pixels.
pub const SIZE: (u32, u32) = (960, 540);
/// Space around the chart, in pixels.
pub const MARGIN: u32 = 16;
/// Width of the y axis's tick labels and description, in pixels.
pub const Y_LABELS: u32 = 72;
/// Width of the legend strip right of the plot, when there is a legend.
pub const LEGEND: u32 = 170;

/// Most series a chart tells apart by color; the rest are drawn as one.
pub const MAX_SERIES: usize = 12;
/// Scatter layers larger than this keep one point per grid cell.
const SCATTER_POINTS: usize = 5000;
const GRID: (usize, usize) = (320, 200);
/// Bar layers longer than this are averaged over runs of rows.
const BARS: usize = 400;

/// Where x values land in the plot area: its pixel columns, and the x
/// range they show.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Columns {
    /// The x range's ends.
    pub range: [f64; 2],
    /// The plot area's left and right pixel edges.
    pub pixels: (i32, i32),
}

impl Columns {
    /// The pixel column of `x`, as plotters maps a value onto a pixel range
    /// (the renderer's grid comes from plotters, its points from here; a
    /// test of the renderer holds the two to the same column).
    pub fn of(&self, x: f64) -> i32 {
        let [lo, hi] = self.range;
        let (left, right) = self.pixels;
        if hi == lo {
            return (right - left) / 2;
        }
        let share = (x - lo) / (hi - lo);
        if share.is_infinite() {
            return if share > 0.0 { right } else { left };
        }
        left + (f64::from(right - left) * share + 1e-3).floor() as i32
    }
}

impl Chart {
    /// The chart `name` of `entries` drawn from `table`, titled `title`,
    /// its x values taken as `x_type` says. Columns are checked by the
    /// caller; an entry naming a missing one is an error.
    pub fn from_table(
        name: &str,
        title: &str,
        entries: &[Entry<'_>],
        table: &Table,
        x_type: XType,
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
                if entry.mark == Mark::Line {
                    // A line joins its points in x order; a stable sort
                    // keeps rows of one x in table order.
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                }
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
        let x_time = if categories.is_empty() {
            time_unit(first.x, &layers, x_type)
        } else if x_type == XType::Time {
            return Err(format!(
                "x_type `time` needs a number column as x, and `{}` is text",
                first.x
            ));
        } else {
            None
        };
        let mut chart = Chart {
            name: name.to_string(),
            title: title.to_string(),
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
            x_time,
            layers,
            ..Chart::default()
        };
        chart.fit_axes();
        let columns = chart.columns();
        let mut how = Vec::new();
        for layer in &mut chart.layers {
            if let Some(note) = thin(layer, scale, &columns) {
                if !how.contains(&note) {
                    how.push(note);
                }
            }
        }
        let drawn: usize = chart.layers.iter().map(|l| l.x.len()).sum();
        let mut caption = if total == 1 {
            "1 point".to_string()
        } else {
            format!("{} points", thousands(total))
        };
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
        chart.caption = caption;
        Ok(chart)
    }

    /// Whether the chart has a legend (more than one layer).
    pub fn legend(&self) -> bool {
        self.layers.len() > 1
    }

    /// The plot area's pixel columns: where the renderer puts it, given
    /// [`SIZE`], [`MARGIN`], [`Y_LABELS`] and the legend's strip.
    pub fn columns(&self) -> Columns {
        let legend = if self.legend() { LEGEND } else { 0 };
        // Plotters maps onto the plot area's first to last pixel: its right
        // edge less one.
        Columns {
            range: self.x_range,
            pixels: (
                (MARGIN + Y_LABELS) as i32,
                (SIZE.0 - legend - MARGIN) as i32 - 1,
            ),
        }
    }

    /// Sets both axes' ranges to hold every finite point of the layers,
    /// with a margin; bars also reach down to zero on a linear scale.
    /// Ranges are always finite and no wider than f64 can measure: points
    /// near the ends of f64 lie beyond the axis (and are clipped) rather
    /// than make the axes infinite.
    pub fn fit_axes(&mut self) {
        let bounds = |values: &mut dyn Iterator<Item = f64>| {
            values
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                })
        };
        let (mut x0, mut x1) = bounds(&mut self.layers.iter().flat_map(|l| l.x.iter().copied()));
        let (mut y0, mut y1) = bounds(&mut self.layers.iter().flat_map(|l| l.y.iter().copied()));
        if x0 > x1 {
            (x0, x1) = (0.0, 1.0);
        }
        if y0 > y1 {
            (y0, y1) = if self.scale == Scale::Log {
                (1.0, 10.0)
            } else {
                (0.0, 1.0)
            };
        }
        let bars = self.layers.iter().any(|l| l.mark == Mark::Bar);
        self.x_range = if !self.categories.is_empty() {
            [-0.5, self.categories.len() as f64 - 0.5]
        } else {
            let half_bar = if bars { self.bar_width() / 2.0 } else { 0.0 };
            padded(x0, x1, 0.03, half_bar)
        };
        self.y_range = match self.scale {
            Scale::Log => measurable(y0 / 1.5, y1 * 1.5),
            Scale::Linear => {
                if bars {
                    (y0, y1) = (y0.min(0.0), y1.max(0.0));
                }
                let [lo, hi] = padded(y0, y1, 0.05, 0.0);
                [if bars && y0 == 0.0 { 0.0 } else { lo }, hi]
            }
        };
    }

    /// Bar width in x units: most of the smallest gap between bars.
    pub fn bar_width(&self) -> f64 {
        if !self.categories.is_empty() {
            return 0.8;
        }
        let mut xs: Vec<f64> = self
            .layers
            .iter()
            .filter(|l| l.mark == Mark::Bar)
            .flat_map(|l| l.x.iter().copied())
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let gap = xs
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::INFINITY, f64::min);
        if gap.is_finite() {
            gap * 0.8
        } else {
            1.0
        }
    }
}

/// `lo..hi` widened by `share` of its width (at least `least` each side),
/// or around a single value by half its size.
fn padded(lo: f64, hi: f64, share: f64, least: f64) -> [f64; 2] {
    // Halves first: the width of two huge values can overflow.
    let pad = if hi > lo {
        (hi / 2.0 - lo / 2.0) * 2.0 * share
    } else {
        lo.abs().max(1.0) * 0.5
    };
    let pad = pad.max(least);
    measurable(lo - pad, hi + pad)
}

/// A range with a finite width: the ends are pulled in as far as needed.
fn measurable(lo: f64, hi: f64) -> [f64; 2] {
    let (mut lo, mut hi) = (lo.max(-f64::MAX), hi.min(f64::MAX));
    if !(hi - lo).is_finite() {
        (lo, hi) = (lo.max(-f64::MAX / 2.0), hi.min(f64::MAX / 2.0));
    }
    [lo, hi]
}

/// Epoch seconds from 1980 to 2099; milliseconds are these times 1000.
const EPOCH_SECONDS: std::ops::RangeInclusive<f64> = 3.2e8..=4.1e9;

/// The unit of an x column of times, when `x_type` makes it one: `time`
/// always, `auto` when the column is named like a time and every value is
/// a plausible epoch second (or every one an epoch millisecond).
fn time_unit(column: &str, layers: &[Layer], x_type: XType) -> Option<TimeUnit> {
    let mut xs = layers.iter().flat_map(|l| l.x.iter().copied());
    match x_type {
        XType::Number => None,
        XType::Time => Some(if xs.any(|x| x.abs() >= 1e11) {
            TimeUnit::Milliseconds
        } else {
            TimeUnit::Seconds
        }),
        XType::Auto => {
            if !named_like_a_time(column) {
                return None;
            }
            let all = |f: &dyn Fn(f64) -> bool| {
                layers.iter().any(|l| !l.x.is_empty())
                    && layers.iter().flat_map(|l| l.x.iter()).all(|x| f(*x))
            };
            if all(&|x| EPOCH_SECONDS.contains(&x)) {
                Some(TimeUnit::Seconds)
            } else if all(&|x| EPOCH_SECONDS.contains(&(x / 1000.0))) {
                Some(TimeUnit::Milliseconds)
            } else {
                None
            }
        }
    }
}

/// `time`, `timestamp`, `ts`, `date`, `created_at`, `start_time`,
/// `sentAt`, `eventTime`, ...
fn named_like_a_time(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let words = ["time", "timestamp", "ts", "date", "datetime", "epoch"];
    words.contains(&lower.as_str())
        || ["_time", "_at", "_ts", "_date", "_timestamp", "-time", "-at"]
            .iter()
            .any(|end| lower.ends_with(end))
        || ["Time", "At", "Date", "Timestamp"].iter().any(|end| {
            name.strip_suffix(end)
                .and_then(|head| head.chars().last())
                .is_some_and(|c| c.is_lowercase())
        })
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
fn thin(layer: &mut Layer, scale: Scale, columns: &Columns) -> Option<String> {
    let n = layer.x.len();
    let (left, right) = columns.pixels;
    let keep: Vec<usize> = match layer.mark {
        // Four points per pixel column draw what all of them do; fewer
        // points than that are kept as they are.
        Mark::Line if n > 4 * (right - left + 1).max(1) as usize => m4(layer, columns),
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
        Mark::Line => "lines: first, last, lowest and highest point of each pixel column".into(),
        _ => format!("circles: one per cell of a {}x{} grid", GRID.0, GRID.1),
    })
}

/// M4: of the points (in x order) that fall in each pixel column, the
/// first, the lowest, the highest and the last, in their order. Joined by
/// a line they cover the same pixels of the column as all its points, and
/// the line between two columns runs from the same last point to the same
/// first one.
fn m4(layer: &Layer, columns: &Columns) -> Vec<usize> {
    let (xs, ys) = (&layer.x, &layer.y);
    let mut keep = Vec::new();
    let mut start = 0;
    while start < xs.len() {
        let column = columns.of(xs[start]);
        let (mut end, mut lo, mut hi) = (start + 1, start, start);
        while end < xs.len() && columns.of(xs[end]) == column {
            if ys[end] < ys[lo] {
                lo = end;
            }
            if ys[end] > ys[hi] {
                hi = end;
            }
            end += 1;
        }
        let mut four = [start, lo, hi, end - 1];
        four.sort_unstable();
        for i in four {
            if keep.last() != Some(&i) {
                keep.push(i);
            }
        }
        start = end;
    }
    keep
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
            "T",
            &[entry(Mark::Circle, Some("site"))],
            &table(30),
            XType::Auto,
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
        let chart = Chart::from_table("c", "c", &[entry(Mark::Line, None)], &t, XType::Auto)
            .expect("chart");
        let layer = &chart.layers[0];
        let (left, right) = chart.columns().pixels;
        assert!(
            layer.x.len() <= 4 * (right - left + 1) as usize,
            "{}",
            layer.x.len()
        );
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
        let chart = Chart::from_table("c", "c", &[entry(Mark::Circle, None)], &t, XType::Auto)
            .expect("chart");
        assert!(chart.layers[0].x.len() <= GRID.0 * GRID.1);
        let chart =
            Chart::from_table("c", "c", &[entry(Mark::Bar, None)], &t, XType::Auto).expect("chart");
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
        let chart = Chart::from_table("c", "c", &[e], &t, XType::Auto).expect("chart");
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
        let chart = Chart::from_table("c", "c", &[entry(Mark::Circle, Some("k"))], &t, XType::Auto)
            .expect("chart");
        assert_eq!(chart.layers.len(), MAX_SERIES);
        assert_eq!(chart.layers[MAX_SERIES - 1].label, "other values");
        assert_eq!(
            chart.layers[MAX_SERIES - 1].x.len(),
            (n as usize) - (MAX_SERIES - 1)
        );
    }

    fn layer(x: Vec<f64>, y: Vec<f64>) -> Layer {
        Layer {
            mark: Mark::Line,
            label: "y".into(),
            x,
            y,
        }
    }

    #[test]
    fn m4_keeps_the_first_last_lowest_and_highest_of_each_pixel_column() {
        let columns = Columns {
            range: [0.0, 100.0],
            pixels: (0, 10),
        };
        // Ten points per column, y a zigzag.
        let x: Vec<f64> = (0..100).map(f64::from).collect();
        let y: Vec<f64> = (0..100).map(|i| f64::from((i * 7) % 10)).collect();
        let keep = m4(&layer(x.clone(), y.clone()), &columns);
        assert!(keep.windows(2).all(|w| w[0] < w[1]), "in row order");
        for column in 0..10 {
            let rows: Vec<usize> = (0..100).filter(|&i| columns.of(x[i]) == column).collect();
            let kept: Vec<usize> = keep.iter().copied().filter(|i| rows.contains(i)).collect();
            let (first, last) = (rows[0], rows[rows.len() - 1]);
            let low = rows.iter().copied().min_by(|a, b| y[*a].total_cmp(&y[*b]));
            let high = rows.iter().copied().max_by(|a, b| y[*a].total_cmp(&y[*b]));
            assert!(
                kept.contains(&first) && kept.contains(&last),
                "column {column}"
            );
            assert!(kept.iter().any(|i| Some(y[*i]) == low.map(|l| y[l])));
            assert!(kept.iter().any(|i| Some(y[*i]) == high.map(|h| y[h])));
            assert!(kept.len() <= 4);
        }
    }

    #[test]
    fn lines_join_their_points_in_x_order() {
        let t = Table::from_columns(vec![
            (
                "t".into(),
                Column::Float64(Array1::from(vec![3.0, 1.0, 2.0])),
            ),
            (
                "v".into(),
                Column::Float64(Array1::from(vec![30.0, 10.0, 20.0])),
            ),
        ])
        .expect("table");
        let chart = Chart::from_table("c", "c", &[entry(Mark::Line, None)], &t, XType::Auto)
            .expect("chart");
        assert_eq!(chart.layers[0].x, [1.0, 2.0, 3.0]);
        assert_eq!(chart.layers[0].y, [10.0, 20.0, 30.0]);
        let one = Table::from_columns(vec![
            ("t".into(), Column::Int64(Array1::from(vec![1]))),
            ("v".into(), Column::Float64(Array1::from(vec![1.0]))),
        ])
        .expect("table");
        let chart = Chart::from_table("c", "c", &[entry(Mark::Line, None)], &one, XType::Auto)
            .expect("chart");
        assert_eq!(chart.caption, "1 point");
    }

    #[test]
    fn times_are_told_by_name_and_value_or_by_x_type() {
        let layers = |xs: &[f64]| vec![layer(xs.to_vec(), vec![0.0; xs.len()])];
        let seconds = layers(&[1.796e9, 1.797e9]);
        let millis = layers(&[1.796e12, 1.797e12]);
        let small = layers(&[0.0, 3600.0]);
        assert_eq!(
            time_unit("ts", &seconds, XType::Auto),
            Some(TimeUnit::Seconds)
        );
        assert_eq!(
            time_unit("created_at", &millis, XType::Auto),
            Some(TimeUnit::Milliseconds)
        );
        assert_eq!(
            time_unit("time", &small, XType::Auto),
            None,
            "not epoch times"
        );
        assert_eq!(
            time_unit("population", &seconds, XType::Auto),
            None,
            "not named so"
        );
        assert_eq!(time_unit("ts", &seconds, XType::Number), None);
        assert_eq!(time_unit("v", &small, XType::Time), Some(TimeUnit::Seconds));
        assert_eq!(
            time_unit("v", &millis, XType::Time),
            Some(TimeUnit::Milliseconds)
        );
        for name in [
            "time",
            "Timestamp",
            "ts",
            "date",
            "start_time",
            "sent_at",
            "eventTime",
            "createdAt",
        ] {
            assert!(named_like_a_time(name), "{name}");
        }
        for name in ["value", "status", "cat", "bats", "runtime", "heat"] {
            assert!(!named_like_a_time(name), "{name}");
        }
        let e = Entry {
            x: "site",
            y: "v",
            mark: Mark::Circle,
            scale: Scale::Linear,
            series: None,
        };
        let err = Chart::from_table("c", "c", &[e], &table(3), XType::Time).expect_err("text x");
        assert_eq!(
            err,
            "x_type `time` needs a number column as x, and `site` is text"
        );
    }
}
