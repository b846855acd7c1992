//! Draws a [`Chart`] as SVG and PNG with plotters.
//!
//! The picture is drawn once, as SVG; the PNG is that SVG rasterised by
//! resvg, so both show the same chart. The font is DejaVu Sans, compiled
//! into the binary: plotters measures text with it (its ab_glyph backend)
//! and resvg draws text with it (as its only font), so charts read the same
//! on a machine with no fonts installed and nothing links fontconfig. The
//! SVG keeps its text as `<text>` elements (titles and axis labels stay
//! searchable).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use resvg::{tiny_skia, usvg};
use rtl_tasks::chart::{Chart, Mark, Scale};
use std::ops::Range;
use std::sync::OnceLock;

/// Picture size in pixels.
pub const SIZE: (u32, u32) = (960, 540);
const FOOTER: u32 = 30;
/// Width of the legend strip right of the plot, when there is a legend.
const LEGEND: u32 = 170;

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

/// The chart as an SVG document.
fn svg(chart: &Chart) -> Result<String, String> {
    fonts()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        draw(&root, chart)?;
        root.present()
            .map_err(|e| format!("cannot draw chart {}: {e}", chart.name))?;
    }
    Ok(out)
}

/// The chart as SVG and as PNG: drawn once, as SVG, and rasterised, so
/// the two are the same picture (text, line widths and clipping included).
pub fn pictures(chart: &Chart) -> Result<(String, Vec<u8>), String> {
    let svg = svg(chart)?;
    let png = rasterise(&svg, &chart.name)?;
    Ok((svg, png))
}

/// An SVG of [`SIZE`] as PNG bytes, drawn by resvg with the built-in fonts
/// only: nothing on the machine changes how a chart looks.
fn rasterise(svg: &str, name: &str) -> Result<Vec<u8>, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("cannot {what} chart {name}: {e}");
    let tree = usvg::Tree::from_str(svg, svg_options()).map_err(|e| fail("read the SVG of", &e))?;
    let (w, h) = SIZE;
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or_else(|| fail("allocate", &"no memory"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::identity(),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(|e| fail("encode as PNG", &e))
}

/// usvg's options: the DejaVu fonts plotters measured the text with, as the
/// only fonts and the `sans-serif` family.
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
            plotters::style::register_font(
                "sans-serif",
                FontStyle::Normal,
                dejavu::sans::regular(),
            )
            .map_err(fail)?;
            plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold())
                .map_err(fail)
        })
        .clone()
}

/// The x and y ranges that hold every finite point, with a margin; bars
/// also reach down to zero on a linear scale. Ranges are always finite and
/// no wider than f64 can measure: points near the ends of f64 are drawn
/// at the edge rather than make the axes infinite (which would never
/// finish drawing).
fn ranges(chart: &Chart) -> (Range<f64>, Range<f64>) {
    let bounds = |values: &mut dyn Iterator<Item = f64>| {
        values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (mut x0, mut x1) = bounds(&mut chart.layers.iter().flat_map(|l| l.x.iter().copied()));
    let (mut y0, mut y1) = bounds(&mut chart.layers.iter().flat_map(|l| l.y.iter().copied()));
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if y0 > y1 {
        (y0, y1) = if chart.scale == Scale::Log {
            (1.0, 10.0)
        } else {
            (0.0, 1.0)
        };
    }
    let bars = chart.layers.iter().any(|l| l.mark == Mark::Bar);
    let x = if !chart.categories.is_empty() {
        -0.5..chart.categories.len() as f64 - 0.5
    } else {
        let half_bar = if bars { bar_width(chart) / 2.0 } else { 0.0 };
        padded(x0, x1, 0.03, half_bar)
    };
    let y = match chart.scale {
        Scale::Log => measurable(y0 / 1.5, y1 * 1.5),
        Scale::Linear => {
            if bars {
                (y0, y1) = (y0.min(0.0), y1.max(0.0));
            }
            let y = padded(y0, y1, 0.05, 0.0);
            let low = if bars && y0 == 0.0 { 0.0 } else { y.start };
            low..y.end
        }
    };
    (x, y)
}

/// `lo..hi` widened by `share` of its width (at least `least` each side),
/// or around a single value by half its size.
fn padded(lo: f64, hi: f64, share: f64, least: f64) -> Range<f64> {
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
fn measurable(lo: f64, hi: f64) -> Range<f64> {
    let (mut lo, mut hi) = (lo.max(-f64::MAX), hi.min(f64::MAX));
    if !(hi - lo).is_finite() {
        (lo, hi) = (lo.max(-f64::MAX / 2.0), hi.min(f64::MAX / 2.0));
    }
    lo..hi
}

/// Bar width in x units: most of the smallest gap between bars.
fn bar_width(chart: &Chart) -> f64 {
    if !chart.categories.is_empty() {
        return 0.8;
    }
    let mut xs: Vec<f64> = chart
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

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<(), String> {
    let fail =
        |e: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw chart {}: {e}", chart.name);
    root.fill(&WHITE).map_err(fail)?;
    let (upper, footer) = root.split_vertically(SIZE.1 - FOOTER);
    footer
        .draw(&Text::new(
            chart.caption.clone(),
            (14, 6),
            ("sans-serif", 14).into_font().color(&RGBColor(90, 90, 90)),
        ))
        .map_err(fail)?;
    // The legend gets a strip of its own, so it never hides a point.
    let area = if chart.layers.len() > 1 {
        let (area, legend) = upper.split_horizontally(SIZE.0 - LEGEND);
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
                .draw(&Text::new(label, (30, y), ("sans-serif", 14).into_font()))
                .map_err(fail)?;
        }
        area
    } else {
        upper
    };
    let (xs, ys) = ranges(chart);
    let width = bar_width(chart);
    let categories = &chart.categories;
    let x_label = |x: &f64| {
        if categories.is_empty() {
            return number(*x);
        }
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            categories.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let y_label = |y: &f64| number(*y);
    let mut builder = ChartBuilder::on(&area);
    builder
        .caption(
            &chart.title,
            ("sans-serif", 24).into_font().style(FontStyle::Bold),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72);
    // The same drawing on two kinds of y axis, whose types differ.
    macro_rules! plot {
        ($y:expr, $base:expr) => {{
            let mut cc = builder.build_cartesian_2d(xs.clone(), $y).map_err(fail)?;
            let mut mesh = cc.configure_mesh();
            mesh.x_desc(&chart.x_label)
                .y_desc(&chart.y_label)
                .axis_desc_style(("sans-serif", 16))
                .label_style(("sans-serif", 13))
                .x_label_formatter(&x_label)
                .y_label_formatter(&y_label)
                .bold_line_style(RGBColor(225, 225, 225))
                .light_line_style(TRANSPARENT);
            if !categories.is_empty() {
                mesh.x_labels(categories.len() + 1);
            }
            mesh.draw().map_err(fail)?;
            for (i, layer) in chart.layers.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let points = layer.x.iter().copied().zip(layer.y.iter().copied());
                match layer.mark {
                    Mark::Line => {
                        cc.draw_series(LineSeries::new(points, color.stroke_width(2)))
                            .map_err(fail)?;
                    }
                    Mark::Circle => {
                        cc.draw_series(points.map(|p| Circle::new(p, 3, color.mix(0.75).filled())))
                            .map_err(fail)?;
                    }
                    Mark::Bar => {
                        cc.draw_series(points.map(|(x, y)| {
                            Rectangle::new(
                                [(x - width / 2.0, $base), (x + width / 2.0, y)],
                                color.mix(0.85).filled(),
                            )
                        }))
                        .map_err(fail)?;
                    }
                }
            }
        }};
    }
    match chart.scale {
        Scale::Linear => plot!(ys.clone(), ys.start.max(0.0).min(ys.end)),
        Scale::Log => plot!(ys.clone().log_scale(), ys.start),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtl_tasks::chart::Layer;

    fn chart(mark: Mark, scale: Scale, categories: Vec<String>) -> Chart {
        Chart {
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
        }
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
}
