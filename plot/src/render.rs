//! Draws a [`Chart`] as SVG and PNG.
//!
//! The picture is drawn once, as SVG; the PNG is that SVG rasterised by
//! resvg, so both show the same chart. The font is DejaVu Sans, compiled
//! into the binary: plotters measures text with it (its ab_glyph backend)
//! and resvg draws text with it (as its only font), so charts read the same
//! on a machine with no fonts installed and nothing links fontconfig. The
//! SVG keeps its text as `<text>` elements (titles and axis labels stay
//! searchable).
//!
//! Plotters draws the frame: title, axes, grid, tick labels, legend and
//! caption, at ticks chosen here so labels never overlap (times as dates,
//! categories turned upright or thinned out when they would collide, a log
//! axis labelled at its powers of ten). The series are written here, as SVG
//! inside a clip path of the plot area, and cut to it point by point as
//! well, so nothing a series holds reaches the title, labels or caption.
//! Their x pixel is the chart's own [`Columns`] mapping, the one its line
//! thinning used, so a thinned line covers the pixels the whole one would.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;
use plotters::style::FontTransform;
use resvg::{tiny_skia, usvg};
use rtl_tasks::chart::{Chart, Columns, Mark, Scale, TimeUnit, MARGIN, SIZE, Y_LABELS};
use std::fmt::Write;
use std::sync::OnceLock;

/// The font family of every text: plotters measures text under this name
/// (the built-in DejaVu Sans is registered as it), and the SVG's
/// `font-family` says it, so resvg, and a browser that has DejaVu Sans,
/// draw the text in the font it was measured in; others fall back to
/// their sans-serif.
const FONT: &str = "DejaVu Sans, sans-serif";
const FOOTER: u32 = 30;
/// Height of the x axis's tick labels and description, when level.
const X_LABELS: u32 = 48;
/// Tick label size, in plotters' font units.
const LABEL_FONT: f64 = 13.0;
/// Longest category label, in characters; longer ones end in `…`.
const CATEGORY_CHARS: usize = 20;
/// Least room between two tick labels, in pixels.
const LABEL_GAP: i32 = 14;
/// Least distance between two x ticks, in pixels: more would crowd the axis.
const X_TICK_GAP: i32 = 70;
/// Least distance between two y ticks, in pixels.
const Y_TICK_GAP: i32 = 36;

/// Ten colors that stay apart for most eyes, in legend order.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The chart as SVG and as PNG: drawn once, as SVG, and rasterised, so
/// the two are the same picture (text, line widths and clipping included).
pub fn pictures(chart: &Chart) -> Result<(String, Vec<u8>), String> {
    let svg = svg(chart)?;
    let png = rasterise(&svg).map_err(|e| format!("cannot draw chart {}: {e}", chart.name))?;
    Ok((svg, png))
}

/// The chart as an SVG document.
fn svg(chart: &Chart) -> Result<String, String> {
    fonts()?;
    let mut out = String::new();
    let series = {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        let series = draw(&root, chart)?;
        root.present()
            .map_err(|e| format!("cannot draw chart {}: {e}", chart.name))?;
        series
    };
    // The series go last, over the grid: plotters has no clip paths, so
    // they are written into its document before it closes.
    let end = out.rfind("</svg>").unwrap_or(out.len());
    out.insert_str(end, &series);
    Ok(out)
}

/// An SVG of [`SIZE`] as PNG bytes, drawn by resvg with the built-in fonts
/// only: nothing on the machine changes how a chart looks.
fn rasterise(svg: &str) -> Result<Vec<u8>, String> {
    let tree = usvg::Tree::from_str(svg, svg_options()).map_err(|e| e.to_string())?;
    let (w, h) = SIZE;
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or("no memory for the picture")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::identity(),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(|e| e.to_string())
}

/// usvg's options: the DejaVu fonts plotters measured the text with, as the
/// only fonts, and as the `sans-serif` family too.
fn svg_options() -> &'static usvg::Options<'static> {
    static OPTIONS: OnceLock<usvg::Options<'static>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut fonts = usvg::fontdb::Database::new();
        fonts.load_font_data(dejavu::sans::regular().to_vec());
        fonts.load_font_data(dejavu::sans::bold().to_vec());
        fonts.set_sans_serif_family("DejaVu Sans");
        let mut options = usvg::Options {
            font_family: "DejaVu Sans".into(),
            ..usvg::Options::default()
        };
        options.fontdb = std::sync::Arc::new(fonts);
        options
    })
}

fn fonts() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let fail = |_| "the built-in DejaVu font could not be loaded".to_string();
            plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
                .map_err(fail)?;
            plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold())
                .map_err(fail)
        })
        .clone()
}

/// How wide `text` is in tick labels, in pixels.
fn text_width(text: &str) -> i32 {
    width_at(text, LABEL_FONT)
}

fn width_at(text: &str, size: f64) -> i32 {
    (FONT, size)
        .into_font()
        .box_size(text)
        .map_or(text.chars().count() as i32 * size as i32, |(w, _)| w as i32)
}

/// `text` cut (with an ellipsis) to fit `width` pixels at `size`: a long
/// chart name or caption would run off the picture.
fn fitted(text: &str, size: f64, width: i32) -> String {
    if width_at(text, size) <= width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    // The longest start that fits, found by halving.
    let (mut fits, mut too_long) = (0, chars.len());
    while too_long - fits > 1 {
        let mid = (fits + too_long) / 2;
        let candidate: String = chars[..mid].iter().chain(['…'].iter()).collect();
        if width_at(&candidate, size) <= width {
            fits = mid;
        } else {
            too_long = mid;
        }
    }
    chars[..fits].iter().chain(['…'].iter()).collect()
}

/// A tick label: short, and in exponent form only when it must be.
fn number(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        // 1.50e6 as 1.5e6, 1.00e-4 as 1e-4.
        let text = format!("{v:.2e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exponent}");
    }
    let text = format!("{v:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

/// The labels of `ticks` and the axis's description: short numbers, or,
/// where those would read alike (a range of 1 to 1.000000000009, epoch
/// seconds a minute apart), each tick's offset from the first, which the
/// description names.
fn labelled(ticks: &[f64], description: &str) -> (Vec<String>, String) {
    let plain: Vec<String> = ticks.iter().map(|t| number(*t)).collect();
    let distinct = plain.windows(2).all(|w| w[0] != w[1]);
    if distinct || ticks.len() < 2 {
        return (plain, description.to_string());
    }
    let base = ticks[0];
    let labels = ticks
        .iter()
        .map(|t| {
            if *t == base {
                "0".to_string()
            } else {
                format!("+{}", number(t - base))
            }
        })
        .collect();
    let offset = format!("offset from {base}");
    let description = if description.is_empty() {
        offset
    } else {
        format!("{description} ({offset})")
    };
    (labels, description)
}

/// One axis's ticks: where, what each says, where faint lines go between
/// them, and the axis's description.
#[derive(Debug, Default, PartialEq)]
struct Axis {
    ticks: Vec<f64>,
    labels: Vec<String>,
    light: Vec<f64>,
    /// Category labels stand upright, reading upwards.
    upright: bool,
    description: String,
}

impl Axis {
    fn label(&self, v: f64) -> String {
        self.ticks
            .iter()
            .position(|t| *t == v)
            .map_or_else(String::new, |i| self.labels[i].clone())
    }
}

/// The first ticks at multiples of 1, 2 or 5 times a power of ten in
/// `lo..=hi`, from the densest, that `fits` takes.
fn number_ticks(lo: f64, hi: f64, fits: impl Fn(&[f64], f64) -> bool) -> Vec<f64> {
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) {
        return vec![lo];
    }
    let first = span.log10().floor() as i32 - 2;
    let mut ticks = Vec::new();
    for exponent in first..first + 6 {
        for m in [1.0, 2.0, 5.0] {
            let step = m * 10f64.powi(exponent);
            let (a, b) = ((lo / step).ceil(), (hi / step).floor());
            // Also false for nan, from ranges too wide to count in steps.
            let countable = b - a < 60.0;
            if !countable {
                continue;
            }
            ticks = (a as i64..=b as i64).map(|k| k as f64 * step).collect();
            if fits(&ticks, step) {
                return ticks;
            }
        }
    }
    ticks
}

fn x_axis(chart: &Chart, width: i32) -> Axis {
    let [lo, hi] = chart.x_range;
    let px = |step: f64| step / (hi - lo) * f64::from(width);
    if !chart.categories.is_empty() {
        return category_axis(chart, width);
    }
    if let Some(unit) = chart.x_time {
        if let Some(axis) = time_axis(chart, unit, width) {
            return axis;
        }
    }
    let ticks = number_ticks(lo, hi, |ticks, step| {
        let widest = labelled(ticks, "").0.iter().map(|l| text_width(l)).max();
        px(step) >= f64::from((widest.unwrap_or(0) + LABEL_GAP).max(X_TICK_GAP))
    });
    let (labels, description) = labelled(&ticks, &chart.x_label);
    Axis {
        labels,
        ticks,
        description,
        ..Axis::default()
    }
}

/// Categories side by side when their labels fit; upright when they would
/// collide; upright and only every k-th when even that is too tight.
fn category_axis(chart: &Chart, width: i32) -> Axis {
    let n = chart.categories.len();
    let labels: Vec<String> = chart
        .categories
        .iter()
        .map(|c| {
            if c.chars().count() > CATEGORY_CHARS {
                c.chars().take(CATEGORY_CHARS - 1).chain(['…']).collect()
            } else {
                c.clone()
            }
        })
        .collect();
    let slot = f64::from(width) / n as f64;
    let widest = labels.iter().map(|l| text_width(l)).max().unwrap_or(0);
    let upright = slot < f64::from(widest + LABEL_GAP / 2);
    // Upright labels need a line's height each.
    let every = if upright {
        (18.0 / slot).ceil().max(1.0) as usize
    } else {
        1
    };
    let (ticks, labels) = labels
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, l)| (i as f64, l))
        .unzip();
    Axis {
        ticks,
        labels,
        upright,
        description: chart.x_label.clone(),
        ..Axis::default()
    }
}

/// How a time tick reads, by the step between ticks.
#[derive(Clone, Copy, PartialEq)]
enum Clock {
    Millis,
    Seconds,
    Minutes,
    Days,
}

/// Steps between time ticks, in milliseconds, with how their ticks read.
const TIME_STEPS: [(f64, Clock); 35] = {
    const S: f64 = 1000.0;
    const M: f64 = 60.0 * S;
    const H: f64 = 60.0 * M;
    const D: f64 = 24.0 * H;
    [
        (1.0, Clock::Millis),
        (2.0, Clock::Millis),
        (5.0, Clock::Millis),
        (10.0, Clock::Millis),
        (20.0, Clock::Millis),
        (50.0, Clock::Millis),
        (100.0, Clock::Millis),
        (200.0, Clock::Millis),
        (500.0, Clock::Millis),
        (S, Clock::Seconds),
        (2.0 * S, Clock::Seconds),
        (5.0 * S, Clock::Seconds),
        (10.0 * S, Clock::Seconds),
        (15.0 * S, Clock::Seconds),
        (30.0 * S, Clock::Seconds),
        (M, Clock::Minutes),
        (2.0 * M, Clock::Minutes),
        (5.0 * M, Clock::Minutes),
        (10.0 * M, Clock::Minutes),
        (15.0 * M, Clock::Minutes),
        (30.0 * M, Clock::Minutes),
        (H, Clock::Minutes),
        (2.0 * H, Clock::Minutes),
        (3.0 * H, Clock::Minutes),
        (6.0 * H, Clock::Minutes),
        (12.0 * H, Clock::Minutes),
        (D, Clock::Days),
        (2.0 * D, Clock::Days),
        (7.0 * D, Clock::Days),
        (14.0 * D, Clock::Days),
        (30.0 * D, Clock::Days),
        (91.0 * D, Clock::Days),
        (365.0 * D, Clock::Days),
        (3652.0 * D, Clock::Days),
        (36524.0 * D, Clock::Days),
    ]
};

/// `ms` after 1970-01-01 UTC as `2026-12-02` and `15:30:05.250`.
fn clock(ms: f64) -> (String, String) {
    let ms = ms.round() as i64;
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = rtl_log::civil_date(days);
    let date = format!("{y:04}-{m:02}-{d:02}");
    let (h, min, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    (date, format!("{h:02}:{min:02}:{s:02}.{milli:03}"))
}

/// Ticks at round times (UTC) that do not overlap, labelled
/// `2026-12-02 15:30` (the date alone for steps of days; the time alone
/// when the axis stays within one day, whose date its description names).
/// None when the range is beyond what dates can say.
fn time_axis(chart: &Chart, unit: TimeUnit, width: i32) -> Option<Axis> {
    let [lo, hi] = chart.x_range.map(|v| v * unit.millis());
    if !(lo.abs() < 1e17 && hi.abs() < 1e17) {
        return None;
    }
    let one_day = clock(lo).0 == clock(hi).0;
    let label = |ms: f64, how: Clock| {
        let (date, time) = clock(ms);
        let time = match how {
            Clock::Millis => &time[..],
            Clock::Seconds => &time[..8],
            Clock::Minutes => &time[..5],
            Clock::Days => return date,
        };
        if one_day {
            time.to_string()
        } else {
            format!("{date} {time}")
        }
    };
    let chosen = TIME_STEPS.iter().find_map(|&(step, how)| {
        let (a, b) = ((lo / step).ceil(), (hi / step).floor());
        let countable = b - a < 60.0;
        if !countable {
            return None;
        }
        let ticks: Vec<f64> = (a as i64..=b as i64).map(|k| k as f64 * step).collect();
        let labels: Vec<String> = ticks.iter().map(|t| label(*t, how)).collect();
        let widest = labels.iter().map(|l| text_width(l)).max().unwrap_or(0);
        let room = step / (hi - lo) * f64::from(width);
        (room >= f64::from((widest + LABEL_GAP).max(X_TICK_GAP))).then_some((ticks, labels))
    })?;
    let (ticks, labels) = chosen;
    let within = if one_day {
        format!("UTC, {}", clock(lo).0)
    } else {
        "UTC".into()
    };
    Some(Axis {
        ticks: ticks.iter().map(|t| t / unit.millis()).collect(),
        labels,
        description: format!("{} ({within}; {})", chart.x_label, unit.name()),
        ..Axis::default()
    })
}

fn y_axis(chart: &Chart, height: i32) -> Axis {
    let [lo, hi] = chart.y_range;
    let ticks = match chart.scale {
        Scale::Linear => number_ticks(lo, hi, |_, step| {
            step / (hi - lo) * f64::from(height) >= f64::from(Y_TICK_GAP)
        }),
        Scale::Log => return log_axis(chart, height),
    };
    let (labels, description) = labelled(&ticks, &chart.y_label);
    Axis {
        labels,
        ticks,
        description,
        ..Axis::default()
    }
}

/// A log axis: each power of ten once (1, 2 and 5 times them when the axis
/// holds fewer than two), faint lines at the multiples between, and the
/// axis's top, when it is clear of the others.
fn log_axis(chart: &Chart, height: i32) -> Axis {
    let [lo, hi] = chart.y_range;
    let (a, b) = (lo.log10(), hi.log10());
    let at = |v: f64| (v.log10() - a) / (b - a) * f64::from(height);
    // Over many decades, every n-th power of ten (n of 1, 2, 5, 10, 20,
    // ...), so labels keep their distance; the faint lines then mark the
    // powers between, and the multiples only where a decade has room.
    let decade = f64::from(height) / (b - a);
    let stride = [1, 2, 5, 10, 20, 50, 100, 200, 500]
        .into_iter()
        .find(|n| f64::from(*n) * decade >= f64::from(Y_TICK_GAP))
        .unwrap_or(1000);
    let powers = a.ceil() as i32..=b.floor() as i32;
    let mut ticks: Vec<f64> = powers
        .clone()
        .filter(|k| k % stride == 0)
        .map(|k| 10f64.powi(k))
        .collect();
    let light: Vec<f64> = if decade >= 40.0 {
        (a.floor() as i32..=b.floor() as i32)
            .flat_map(|k| (2..10).map(move |m| f64::from(m) * 10f64.powi(k)))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    } else if decade >= 4.0 {
        powers
            .filter(|k| k % stride != 0)
            .map(|k| 10f64.powi(k))
            .collect()
    } else {
        Vec::new()
    };
    if ticks.len() < 2 {
        ticks = (a.floor() as i32..=b.floor() as i32)
            .flat_map(|k| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(k)))
            .filter(|v| (lo..=hi).contains(v))
            .collect();
    }
    // The top, to two significant digits, rounded down into the axis.
    let power = 10f64.powi(hi.log10().floor() as i32 - 1);
    let top = (hi / power).floor() * power;
    if top > lo
        && ticks
            .iter()
            .all(|t| (at(top) - at(*t)).abs() >= f64::from(Y_TICK_GAP))
    {
        ticks.push(top);
    }
    Axis {
        labels: ticks.iter().map(|t| number(*t)).collect(),
        ticks,
        light,
        description: chart.y_label.clone(),
        ..Axis::default()
    }
}

/// An axis of plotters' with the ticks chosen here, its bold key points
/// (plotters' own `with_key_points` leaves the mesh without a label
/// formatter).
struct Ticked<R> {
    inner: R,
    ticks: Vec<f64>,
    light: Vec<f64>,
}

impl<R: Ranged<ValueType = f64>> Ticked<R> {
    fn new(inner: impl Into<R>, axis: &Axis) -> Self {
        Ticked {
            inner: inner.into(),
            ticks: axis.ticks.clone(),
            light: axis.light.clone(),
        }
    }
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// Room the title takes above the plot, in pixels (plotters' caption).
const TITLE: u32 = 40;

/// Draws the frame onto `root` and returns the series as SVG markup.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> Result<String, String> {
    let fail =
        |e: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw chart {}: {e}", chart.name);
    root.fill(&WHITE).map_err(fail)?;
    let (upper, footer) = root.split_vertically(SIZE.1 - FOOTER);
    footer
        .draw(&Text::new(
            fitted(&chart.caption, 14.0, SIZE.0 as i32 - 28),
            (14, 6),
            (FONT, 14).into_font().color(&RGBColor(90, 90, 90)),
        ))
        .map_err(fail)?;
    // The legend gets a strip of its own, so it never hides a point.
    let area = if chart.legend() {
        let (area, legend) = upper.split_horizontally(chart.columns().pixels.1 + 1 + MARGIN as i32);
        for (i, layer) in chart.layers.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let y = 70 + 24 * i as i32;
            legend
                .draw(&Rectangle::new([(8, y), (22, y + 14)], color.filled()))
                .map_err(fail)?;
            let mut label = layer.label.clone();
            if label.chars().count() > 18 {
                label = label.chars().take(17).chain(['…']).collect();
            }
            legend
                .draw(&Text::new(label, (30, y), (FONT, 14).into_font()))
                .map_err(fail)?;
        }
        area
    } else {
        upper
    };
    let columns = chart.columns();
    let x = x_axis(chart, columns.pixels.1 - columns.pixels.0);
    // Upright labels take their length below the axis, and the
    // description its line under them.
    let x_area = if x.upright {
        x.labels.iter().map(|l| text_width(l)).max().unwrap_or(0) as u32 + 40
    } else {
        X_LABELS
    };
    let y = y_axis(
        chart,
        (SIZE.1 - FOOTER - TITLE - 2 * MARGIN - x_area) as i32,
    );
    let mut builder = ChartBuilder::on(&area);
    builder
        .caption(
            fitted(
                &chart.title,
                26.0,
                area.dim_in_pixel().0 as i32 - 2 * MARGIN as i32,
            ),
            (FONT, 24).into_font().style(FontStyle::Bold),
        )
        .margin(MARGIN)
        .x_label_area_size(x_area)
        .y_label_area_size(Y_LABELS);
    let [x0, x1] = chart.x_range;
    let [y0, y1] = chart.y_range;
    let xs = Ticked::<RangedCoordf64>::new(x0..x1, &x);
    let x_label = |v: &f64| {
        if x.upright {
            String::new()
        } else {
            x.label(*v)
        }
    };
    let y_label = |v: &f64| y.label(*v);
    // The same drawing on two kinds of y axis, whose types differ.
    macro_rules! plot {
        ($ys:expr) => {{
            let mut cc = builder.build_cartesian_2d(xs, $ys).map_err(fail)?;
            let mut mesh = cc.configure_mesh();
            mesh.x_desc(&x.description)
                .y_desc(&y.description)
                .axis_desc_style((FONT, 16))
                .label_style((FONT, LABEL_FONT))
                .x_label_formatter(&x_label)
                .y_label_formatter(&y_label)
                .bold_line_style(RGBColor(225, 225, 225))
                .light_line_style(RGBColor(242, 242, 242));
            if !chart.categories.is_empty() {
                mesh.disable_x_mesh();
            }
            mesh.draw().map_err(fail)?;
            let (px, py) = cc.plotting_area().get_pixel_range();
            if x.upright {
                let font = (FONT, LABEL_FONT)
                    .into_font()
                    .transform(FontTransform::Rotate270)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Center));
                for (tick, label) in x.ticks.iter().zip(&x.labels) {
                    let at = (columns.of(*tick), py.end + 8);
                    root.draw(&Text::new(label.clone(), at, font.clone()))
                        .map_err(fail)?;
                }
            }
            let rect = [px.start, py.start, px.end, py.end].map(f64::from);
            series(chart, &columns, rect, |v| {
                f64::from(cc.backend_coord(&(x0, v)).1)
            })
        }};
    }
    Ok(match chart.scale {
        Scale::Linear => plot!(Ticked::<RangedCoordf64>::new(y0..y1, &y)),
        Scale::Log => plot!(Ticked::<LogCoord<f64>>::new((y0..y1).log_scale(), &y)),
    })
}

/// The series as SVG: a clip path of the plot area `[left, top, right,
/// bottom]` and, inside it, each layer's points, x placed by `columns`
/// and y by `y_of`. Lines are cut where they leave the area, circles
/// outside it left out, bars cut to it.
fn series(chart: &Chart, columns: &Columns, rect: [f64; 4], y_of: impl Fn(f64) -> f64) -> String {
    let [left, top, right, bottom] = rect;
    let mut out = format!(
        "<defs><clipPath id=\"plot-area\"><rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\"/></clipPath></defs>\n<g clip-path=\"url(#plot-area)\">\n",
        right - left,
        bottom - top
    );
    let inside = |(x, y): (f64, f64)| (left..=right).contains(&x) && (top..=bottom).contains(&y);
    let bar_half = chart.bar_width() / 2.0;
    let base = match chart.scale {
        Scale::Linear => 0f64.clamp(chart.y_range[0], chart.y_range[1]),
        Scale::Log => chart.y_range[0],
    };
    for (i, layer) in chart.layers.iter().enumerate() {
        let RGBColor(r, g, b) = PALETTE[i % PALETTE.len()];
        let color = format!("#{r:02x}{g:02x}{b:02x}");
        let points = layer
            .x
            .iter()
            .zip(&layer.y)
            .map(|(x, y)| (f64::from(columns.of(*x)), y_of(*y)));
        match layer.mark {
            // A line of one point has nothing to join: it gets a marker.
            Mark::Line if layer.x.len() > 1 => {
                for piece in clip_line(points, rect) {
                    let mut text = String::new();
                    for (x, y) in piece {
                        let _ = write!(text, "{},{} ", short(x), short(y));
                    }
                    let _ = writeln!(
                        out,
                        "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\" points=\"{}\"/>",
                        text.trim_end()
                    );
                }
            }
            Mark::Line | Mark::Circle => {
                let (radius, opacity) = if layer.mark == Mark::Line {
                    (4, 1.0)
                } else {
                    (3, 0.75)
                };
                for (x, y) in points.filter(|p| inside(*p)) {
                    let _ = writeln!(
                        out,
                        "<circle cx=\"{}\" cy=\"{}\" r=\"{radius}\" fill=\"{color}\" fill-opacity=\"{opacity}\"/>",
                        short(x),
                        short(y)
                    );
                }
            }
            Mark::Bar => {
                for (x, y) in layer.x.iter().zip(&layer.y) {
                    let xs = [x - bar_half, x + bar_half].map(|v| f64::from(columns.of(v)));
                    let ys = [y_of(*y), y_of(base)];
                    let (x0, x1) = (xs[0].max(left), xs[1].min(right));
                    let (y0, y1) = (ys[0].min(ys[1]).max(top), ys[0].max(ys[1]).min(bottom));
                    if x1 > x0 && y1 > y0 {
                        let _ = writeln!(
                            out,
                            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{color}\" fill-opacity=\"0.85\"/>",
                            short(x0),
                            short(y0),
                            short(x1 - x0),
                            short(y1 - y0)
                        );
                    }
                }
            }
        }
    }
    out.push_str("</g>\n");
    out
}

/// A pixel coordinate as short text: whole pixels without decimals.
fn short(v: f64) -> String {
    if v == v.round() {
        format!("{v}")
    } else {
        format!("{v:.2}")
    }
}

/// A polyline cut to `[left, top, right, bottom]`: the pieces of it inside,
/// each a list of points; a point repeating the one before is dropped.
fn clip_line(points: impl Iterator<Item = (f64, f64)>, rect: [f64; 4]) -> Vec<Vec<(f64, f64)>> {
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut last: Option<(f64, f64)> = None;
    let mut open = false;
    for p in points {
        let Some(from) = last.replace(p) else {
            if clip_segment(p, p, rect).is_some() {
                pieces.push(vec![p]);
                open = true;
            }
            continue;
        };
        if from == p {
            continue;
        }
        match clip_segment(from, p, rect) {
            Some((a, b)) => {
                if !(open && a == from) {
                    pieces.push(vec![a]);
                }
                if let Some(piece) = pieces.last_mut() {
                    piece.push(b);
                }
                open = b == p;
            }
            None => open = false,
        }
    }
    pieces
}

/// The part of the segment `a`-`b` inside `[left, top, right, bottom]`
/// (Liang-Barsky), if any.
fn clip_segment(
    a: (f64, f64),
    b: (f64, f64),
    [left, top, right, bottom]: [f64; 4],
) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - left),
        (dx, right - a.0),
        (-dy, a.1 - top),
        (dy, bottom - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    if t0 > t1 || !t0.is_finite() || !t1.is_finite() {
        return None;
    }
    let at = |t: f64| {
        if t == 0.0 {
            a
        } else if t == 1.0 {
            b
        } else {
            (a.0 + t * dx, a.1 + t * dy)
        }
    };
    Some((at(t0), at(t1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtl_tasks::chart::Layer;

    fn chart(mark: Mark, scale: Scale, categories: Vec<String>) -> Chart {
        let mut chart = Chart {
            name: "temps".into(),
            title: "Temperature by hour".into(),
            x_label: "hour".into(),
            y_label: "celsius".into(),
            scale,
            categories,
            layers: vec![
                Layer {
                    mark,
                    label: "north".into(),
                    x: vec![0.0, 1.0, 2.0],
                    y: vec![3.5, 7.25, 12.0],
                },
                Layer {
                    mark,
                    label: "south".into(),
                    x: vec![0.0, 1.0, 2.0],
                    y: vec![5.0, 9.0, 15.5],
                },
            ],
            caption: "6 points".into(),
            ..Chart::default()
        };
        chart.fit_axes();
        chart
    }

    #[test]
    fn svg_has_the_title_axis_labels_legend_and_caption_as_text() {
        for mark in [Mark::Line, Mark::Circle, Mark::Bar] {
            for scale in [Scale::Linear, Scale::Log] {
                let svg = svg(&chart(mark, scale, Vec::new())).expect("svg");
                assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
                for text in [
                    "Temperature by hour",
                    "hour",
                    "celsius",
                    "north",
                    "south",
                    "6 points",
                ] {
                    assert!(
                        svg.contains(&format!("\n{text}\n")),
                        "{mark:?} {scale:?}: {text} missing"
                    );
                }
            }
        }
    }

    #[test]
    fn values_at_the_ends_of_f64_are_drawn_in_bounded_time() {
        for mark in [Mark::Line, Mark::Circle, Mark::Bar] {
            for scale in [Scale::Linear, Scale::Log] {
                for (x, y) in [
                    (vec![-1.7e308, 0.0, 1.7e308], vec![1.0, -1.7e308, 1.7e308]),
                    (
                        vec![f64::NEG_INFINITY, 0.0, f64::INFINITY],
                        vec![f64::NAN, 1.0, f64::INFINITY],
                    ),
                    (vec![f64::MAX; 3], vec![f64::MIN; 3]),
                ] {
                    let mut c = chart(mark, scale, Vec::new());
                    c.layers[0].x = x.clone();
                    c.layers[0].y = y.clone();
                    c.fit_axes();
                    pictures(&c).expect("pictures");
                }
            }
        }
    }

    #[test]
    fn categories_label_the_x_axis() {
        let svg = svg(&chart(
            Mark::Bar,
            Scale::Linear,
            vec!["a".into(), "b".into(), "c".into()],
        ))
        .expect("svg");
        for text in ["\na\n", "\nb\n", "\nc\n"] {
            assert!(svg.contains(text), "{text} missing");
        }
    }

    #[test]
    fn png_is_a_png_with_text_drawn() {
        let (_, bytes) = pictures(&chart(Mark::Line, Scale::Linear, Vec::new())).expect("png");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let pixmap = tiny_skia::Pixmap::decode_png(&bytes).expect("decodes");
        assert_eq!((pixmap.width(), pixmap.height()), SIZE);
        // Text and lines leave dark pixels on the white page.
        let dark = pixmap
            .pixels()
            .iter()
            .filter(|p| p.red() < 80 && p.green() < 80 && p.blue() < 80)
            .count();
        assert!(dark > 500, "{dark} dark pixels");
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1.0 / 3.0), "0.3333");
        assert_eq!(number(250_000.0), "250000");
        assert_eq!(number(1_000_000.0), "1e6");
        assert_eq!(number(1_500_000.0), "1.5e6");
        assert_eq!(number(-0.0001), "-1e-4");
    }

    #[test]
    fn an_empty_chart_still_draws() {
        let mut c = chart(Mark::Circle, Scale::Linear, Vec::new());
        c.layers.iter_mut().for_each(|l| {
            l.x.clear();
            l.y.clear()
        });
        pictures(&c).expect("pictures");
    }

    /// The x of every vertical grid line of an SVG, in order.
    fn grid_columns(svg: &str) -> Vec<i32> {
        svg.split("<line ")
            .skip(1)
            .filter(|l| l.contains("stroke=\"#E1E1E1\""))
            .filter_map(|l| {
                let attr = |n: &str| {
                    l.split_once(&format!("{n}=\""))
                        .and_then(|(_, r)| r.split_once('"'))
                        .and_then(|(v, _)| v.parse::<i32>().ok())
                };
                (attr("x1")? == attr("x2")?).then(|| attr("x1")).flatten()
            })
            .collect()
    }

    #[test]
    fn series_and_grid_put_a_value_in_the_same_pixel_column() {
        for layers in [1, 2] {
            let mut c = chart(Mark::Line, Scale::Linear, Vec::new());
            c.layers.truncate(layers);
            c.layers[0].x = vec![-3.7, 0.25, 17.9];
            c.fit_axes();
            let columns = c.columns();
            let (left, right) = columns.pixels;
            let axis = x_axis(&c, right - left);
            assert!(axis.ticks.len() >= 3, "{axis:?}");
            let svg = svg(&c).expect("svg");
            let want: Vec<i32> = axis.ticks.iter().map(|t| columns.of(*t)).collect();
            assert_eq!(grid_columns(&svg), want, "{layers} layer(s)");
            let clip = format!("<rect x=\"{left}\" y=");
            assert!(svg.contains(&clip), "plot area from {left}: {svg}");
            assert!(svg.contains(&format!("width=\"{}\"", right + 1 - left)));
        }
    }

    #[test]
    fn a_log_axis_labels_each_power_of_ten_once_and_its_top() {
        let mut c = chart(Mark::Bar, Scale::Log, Vec::new());
        c.layers[0].y = vec![3.0, 40.0, 300.0];
        c.fit_axes();
        let axis = log_axis(&c, 400);
        assert_eq!(axis.labels, ["10", "100", "450"]);
        assert!(axis.light.contains(&20.0) && axis.light.contains(&300.0));
        // Within one decade: 1, 2 and 5 times its power, and the top.
        c.layers.iter_mut().for_each(|l| l.y = vec![21.0, 40.0]);
        c.fit_axes();
        assert_eq!(log_axis(&c, 400).labels, ["20", "50", "60"]);
        // Many decades: powers of ten far enough apart to read, each once.
        c.layers[0].y = vec![1e-3, 1e9];
        c.fit_axes();
        let axis = log_axis(&c, 400);
        let mut once = axis.labels.clone();
        once.dedup();
        assert_eq!(once, axis.labels);
        assert_eq!(axis.labels[..3], ["0.01", "1", "100"], "every other power");
        // All of f64's range: a label every 50 decades, no grey mesh.
        c.layers[0].y = vec![1.0, 1e308];
        c.fit_axes();
        let axis = log_axis(&c, 400);
        assert!(
            axis.labels.len() <= 400 / Y_TICK_GAP as usize,
            "{:?}",
            axis.labels
        );
        assert!(axis.light.len() < 100, "{} faint lines", axis.light.len());
    }

    #[test]
    fn ticks_that_would_read_alike_show_their_offsets() {
        let (labels, description) = labelled(&[1.0, 1.0 + 2e-12, 1.0 + 4e-12], "y");
        assert_eq!(labels, ["0", "+2e-12", "+4e-12"]);
        assert_eq!(description, "y (offset from 1)");
        let (labels, description) = labelled(&[1.7648e9, 1.7648e9 + 60.0], "");
        assert_eq!(labels, ["0", "+60"]);
        assert_eq!(description, "offset from 1764800000");
        let (labels, _) = labelled(&[0.5, 1.0], "x");
        assert_eq!(labels, ["0.5", "1"]);
    }

    #[test]
    fn crowded_categories_stand_upright_then_thin_out() {
        fonts().expect("fonts");
        let names = |n: usize, long: &str| (0..n).map(|i| format!("{long} {i}")).collect();
        let level = category_axis(&chart(Mark::Bar, Scale::Linear, names(3, "r")), 850);
        assert!(!level.upright);
        assert_eq!(level.ticks, [0.0, 1.0, 2.0]);
        let regions = category_axis(
            &chart(Mark::Bar, Scale::Linear, names(20, "Sub-Saharan Africa")),
            850,
        );
        assert!(regions.upright);
        assert_eq!(regions.ticks.len(), 20, "every one labelled");
        let many = category_axis(&chart(Mark::Bar, Scale::Linear, names(200, "host")), 850);
        assert!(
            many.upright && many.ticks.len() < 60,
            "{}",
            many.ticks.len()
        );
        assert_eq!(many.ticks[1] - many.ticks[0], many.ticks[2] - many.ticks[1]);
        let long = category_axis(&chart(Mark::Bar, Scale::Linear, vec!["x".repeat(50)]), 850);
        assert_eq!(long.labels[0].chars().count(), CATEGORY_CHARS);
    }

    #[test]
    fn times_read_as_dates_and_their_labels_never_overlap() {
        fonts().expect("fonts");
        let day = 1_796_169_600.0; // 2026-12-02 00:00 UTC
        for (span, unit, first, within) in [
            (
                5.0 * 3600.0,
                TimeUnit::Seconds,
                "15:30",
                "(UTC, 2026-12-02; epoch seconds)",
            ),
            (
                3.0 * 86400.0,
                TimeUnit::Seconds,
                "2026-12-03 00:00",
                "(UTC; epoch seconds)",
            ),
            (
                90.0 * 86400.0,
                TimeUnit::Milliseconds,
                "2026-12-",
                "(UTC; epoch milliseconds)",
            ),
        ] {
            let start = day + 15.5 * 3600.0;
            let k = unit.millis();
            let mut c = chart(Mark::Line, Scale::Linear, Vec::new());
            c.x_time = Some(unit);
            c.x_range = [start * 1000.0 / k, (start + span) * 1000.0 / k];
            let axis = x_axis(&c, 850);
            assert!(axis.ticks.len() >= 3, "{axis:?}");
            assert!(
                axis.labels.iter().any(|l| l.starts_with(first)),
                "{:?}",
                axis.labels
            );
            assert!(axis.description.ends_with(within), "{}", axis.description);
            let widest = axis.labels.iter().map(|l| text_width(l)).max().unwrap_or(0);
            let at: Vec<f64> = axis
                .ticks
                .iter()
                .map(|t| (t - c.x_range[0]) / (c.x_range[1] - c.x_range[0]) * 850.0)
                .collect();
            assert!(
                at.windows(2).all(|w| w[1] - w[0] >= f64::from(widest)),
                "{:?}",
                axis.labels
            );
        }
    }

    #[test]
    fn a_line_of_one_point_gets_a_marker() {
        let mut c = chart(Mark::Line, Scale::Linear, Vec::new());
        c.layers.truncate(1);
        c.layers[0].x = vec![2.0];
        c.layers[0].y = vec![5.0];
        c.fit_axes();
        let svg = svg(&c).expect("svg");
        let (_, series) = svg.split_once("url(#plot-area)").expect("series");
        assert_eq!(series.matches("<circle").count(), 1, "{series}");
        assert!(!series.contains("<polyline"));
    }

    #[test]
    fn lines_are_cut_where_they_leave_the_plot_area() {
        let rect = [0.0, 0.0, 10.0, 10.0];
        let pieces = clip_line(
            [
                (5.0, 5.0),
                (5.0, 5.0),
                (15.0, 5.0),
                (15.0, 8.0),
                (5.0, 8.0),
                (6.0, 9.0),
            ]
            .into_iter(),
            rect,
        );
        assert_eq!(
            pieces,
            [
                vec![(5.0, 5.0), (10.0, 5.0)],
                vec![(10.0, 8.0), (5.0, 8.0), (6.0, 9.0)]
            ]
        );
        assert!(clip_line([(-5.0, -5.0), (-1.0, 20.0)].into_iter(), rect).is_empty());
    }
}
