//! The plot node through a real daemon: a job's charts are drawn, listed
//! on the page, served as SVG and PNG, kept beside a later run's for as
//! many runs as `plot_history` says, written by `rtl run --plots`, listed
//! by `rtl plots` (which says when the plot node is down) and counted by
//! `rtl status`; a chart of a million points is thinned and says so; a line
//! of random rows stays inside its plot area; a thinned line draws the
//! same pixels as all its points.

mod common;

use common::{http, text, write_job, Daemon, Home};
use std::path::Path;
use std::time::{Duration, Instant};

fn pipeline() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pipeline/job.json")
}

/// The page's chart list, once it has `n` charts (the plot node draws
/// them as they arrive).
fn charts(port: u16, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = http("GET", port, "/charts.json", None).expect("charts.json");
        assert_eq!(status, 200);
        let list: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("json list");
        if list.len() >= n {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "only {} chart(s) after 20 s",
            list.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn assert_png(bytes: &[u8], what: &str) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{what}: not a PNG");
    // IHDR: width and height right after the chunk header.
    let width = u32::from_be_bytes(bytes[16..20].try_into().expect("width"));
    let height = u32::from_be_bytes(bytes[20..24].try_into().expect("height"));
    assert_eq!((width, height), (960, 540), "{what}");
    assert!(
        bytes.len() > 5_000,
        "{what}: {} bytes is too little for a chart",
        bytes.len()
    );
}

#[test]
fn the_pipelines_charts_are_drawn_served_and_replaced() {
    let daemon = Daemon::start("plots");
    let port = daemon.home.port("RTL_PLOT_PORT");
    let out_dir = daemon.home.scratch.0.join("charts");
    let out = daemon.rtl(&[
        "run",
        "--connect",
        pipeline(),
        "--plots",
        out_dir.to_str().expect("path"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Drew chart cpu"), "{}", text(&out));

    let list = charts(port, 2);
    let names: Vec<&str> = list.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.contains(&"cpu") && names.contains(&"io_per_cpu"),
        "{names:?}"
    );
    let first_stamp = list
        .iter()
        .map(|c| c["stamp"].as_u64().expect("stamp"))
        .max();

    let (status, headers, page) = http("GET", port, "/", None).expect("page");
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("<title>rtl charts</title>") && page.contains("charts.json"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no outside resources"
    );

    for name in ["cpu", "io_per_cpu"] {
        let (status, headers, svg) =
            http("GET", port, &format!("/charts/{name}.svg"), None).expect("svg");
        assert_eq!(status, 200, "{name}.svg");
        assert_eq!(header(&headers, "content-type"), "image/svg+xml");
        let svg = String::from_utf8_lossy(&svg);
        assert!(
            svg.starts_with("<svg"),
            "{name}: {}",
            &svg[..60.min(svg.len())]
        );
        for label in [
            "Busy hosts: CPU and I/O per CPU",
            "\ntime\n",
            &format!("\n{name}\n"),
        ] {
            assert!(svg.contains(label), "{name}.svg lacks {label:?}");
        }
        let (status, headers, png) =
            http("GET", port, &format!("/charts/{name}.png"), None).expect("png");
        assert_eq!(status, 200, "{name}.png");
        assert_eq!(header(&headers, "content-type"), "image/png");
        assert_png(&png, name);
    }
    for bad in [
        "/charts/../rtl.toml",
        "/charts/cpu.json",
        "/charts/nope.svg",
        "/elsewhere",
    ] {
        let (status, _, _) = http("GET", port, bad, None).expect("request");
        assert_eq!(status, 404, "{bad}");
    }

    // `--plots` wrote the same charts where it was told.
    for file in ["cpu.svg", "cpu.png", "cpu.json", "io_per_cpu.svg"] {
        assert!(out_dir.join(file).is_file(), "{file} not written");
    }
    assert_png(
        &std::fs::read(out_dir.join("cpu.png")).expect("png"),
        "--plots cpu.png",
    );

    // A second run's charts come first; the first run's are kept beside
    // them (plot_history), under names of their own.
    let out = daemon.rtl(&["run", "--connect", pipeline()]);
    assert!(out.status.success(), "{}", text(&out));
    let list = charts(port, 4);
    let newest = list[..2]
        .iter()
        .map(|c| c["stamp"].as_u64().expect("stamp"))
        .min();
    assert!(newest > first_stamp, "the new run first: {list:?}");
    let files: Vec<&str> = list.iter().filter_map(|c| c["file"].as_str()).collect();
    assert_eq!(
        &files[..2],
        ["io_per_cpu", "cpu"],
        "the latest under the plain names"
    );
    assert!(
        files[2].starts_with("io_per_cpu~") && files[3].starts_with("cpu~"),
        "{files:?}"
    );
    assert_ne!(list[0]["job"], list[2]["job"]);
    for file in &files {
        let (status, _, _) = http("GET", port, &format!("/charts/{file}.png"), None).expect("png");
        assert_eq!(status, 200, "{file}.png");
    }
    let files = std::fs::read_dir(daemon.home.dir().join("plots"))
        .expect("plots dir")
        .count();
    assert_eq!(files, 12, "svg, png and json per chart and run");

    let out = daemon.rtl(&["plots"]);
    assert!(out.status.success(), "{}", text(&out));
    let listing = text(&out);
    assert!(
        listing.contains(&format!("http://127.0.0.1:{port}/")),
        "{listing}"
    );
    assert!(
        listing.contains("io_per_cpu") && listing.contains("cpu.svg"),
        "{listing}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = text(&daemon.rtl(&["status"]));
        if status.contains("charts drawn by the plot node since it started: 4") {
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // With the daemon stopped, `rtl plots` says nothing serves the page.
    let out = daemon.rtl(&["stop"]);
    assert!(out.status.success(), "{}", text(&out));
    let listing = text(&daemon.rtl(&["plots"]));
    assert!(
        listing.contains("\nthe plot node is not running, so nothing serves the page"),
        "{listing}"
    );
    assert!(
        listing.contains("io_per_cpu"),
        "the charts are still listed: {listing}"
    );
}

#[test]
fn plot_history_says_how_many_runs_of_a_chart_are_kept() {
    let daemon = Daemon::start_in(Home::new("plots-history").with("RTL_PLOT_HISTORY", "2"));
    let port = daemon.home.port("RTL_PLOT_PORT");
    let mut jobs = Vec::new();
    for _ in 0..3 {
        let out = daemon.rtl(&["run", "--connect", pipeline()]);
        assert!(out.status.success(), "{}", text(&out));
        let printed = text(&out);
        let job = printed
            .lines()
            .find_map(|l| l.strip_prefix("Job: "))
            .unwrap_or_else(|| panic!("no job id printed: {printed}"));
        jobs.push(job.to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    // The plot node draws a run's two charts one after the other: wait for
    // both of the last run's, then look at the whole list.
    let list = loop {
        let list = charts(port, 4);
        let last_run = list.iter().filter(|c| c["job"] == jobs[2].as_str()).count();
        if (last_run == 2 && files(&daemon) == 12) || Instant::now() >= deadline {
            break list;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let runs: Vec<&str> = list.iter().filter_map(|c| c["job"].as_str()).collect();
    assert_eq!(
        runs,
        [&jobs[2], &jobs[2], &jobs[1], &jobs[1]],
        "two runs of each chart"
    );
    assert_eq!(files(&daemon), 12);
}

/// How many files the plot node keeps in the home's plots folder.
fn files(daemon: &Daemon) -> usize {
    std::fs::read_dir(daemon.home.dir().join("plots"))
        .expect("plots dir")
        .count()
}

#[test]
fn strings_from_jobs_are_escaped_in_pictures() {
    let daemon = Daemon::start("plots-escape");
    let port = daemon.home.port("RTL_PLOT_PORT");
    let dir = daemon.home.scratch.0.clone();
    std::fs::write(dir.join("d.csv"), "x,y\n1,2\n2,3\n").expect("data");
    let job = write_job(
        &dir,
        "hostile",
        r#"{"0": {"tasks": [{"open_array": {"filename": "d"}},
             {"simple_plot": {"title": "<script>alert(1)</script> & \"q\"",
                              "plots": {"a<b>&c": [{"x": "x", "y": "y"}]}}}]}}"#,
    );
    let out = daemon.rtl(&["run", "--connect", job.to_str().expect("path")]);
    assert!(out.status.success(), "{}", text(&out));
    let list = charts(port, 1);
    assert_eq!(list[0]["name"], "a<b>&c", "the name is kept as written");
    let file = list[0]["file"].as_str().expect("file");
    assert!(
        file.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "{file}"
    );
    let (_, _, svg) = http("GET", port, &format!("/charts/{file}.svg"), None).expect("svg");
    let svg = String::from_utf8_lossy(&svg);
    assert!(
        !svg.contains("<script"),
        "markup from a job reached the SVG"
    );
    assert!(
        svg.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;"),
        "{svg}"
    );
}

#[test]
fn embedded_runs_write_their_charts_too() {
    let home = Home::new("plots-embedded");
    let out_dir = home.scratch.0.join("charts");
    let out = home.rtl(&[
        "run",
        pipeline(),
        "--plots",
        out_dir.to_str().expect("path"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("embedded"), "{}", text(&out));
    let svg = std::fs::read_to_string(out_dir.join("io_per_cpu.svg")).expect("svg written");
    assert!(svg.contains("io_per_cpu"));
}

#[test]
fn a_chart_of_a_million_points_is_thinned_and_says_how() {
    let daemon = Daemon::start("plots-big");
    let port = daemon.home.port("RTL_PLOT_PORT");
    let dir = daemon.home.scratch.0.clone();
    write_series(&dir.join("big.csv"), 1_000_000);
    let job = write_job(
        &dir,
        "big",
        r#"{"0": {"tasks": [{"open_array": {"filename": "big"}},
             {"simple_plot": {"plots": {"wave": [{"x": "t", "y": "v", "type": "line"}],
                                        "cloud": [{"x": "v", "y": "w"}]}}}]}}"#,
    );
    let out = daemon.rtl(&["run", "--connect", job.to_str().expect("path")]);
    assert!(out.status.success(), "{}", text(&out));
    for chart in charts(port, 2) {
        let caption = chart["caption"].as_str().expect("caption");
        assert!(
            caption.starts_with("1,000,000 points, drawn as "),
            "{}: {caption}",
            chart["name"]
        );
        let file = chart["file"].as_str().expect("file");
        let (_, _, svg) = http("GET", port, &format!("/charts/{file}.svg"), None).expect("svg");
        assert!(svg.len() < 8 << 20, "{file}.svg is {} bytes", svg.len());
        assert!(
            String::from_utf8_lossy(&svg).contains("drawn as"),
            "caption in the picture"
        );
    }
}

/// `t` (0..n), `v` (a slow wave), `w` (another): a CSV of `n` rows.
fn write_series(path: &Path, n: usize) {
    use std::fmt::Write;
    let mut csv = String::with_capacity(n * 24);
    csv.push_str("t,v,w\n");
    for i in 0..n {
        let t = i as f64 * 1e-4;
        let _ = writeln!(csv, "{i},{:.5},{:.5}", t.sin(), (3.0 * t).cos());
    }
    std::fs::write(path, csv).expect("write csv");
}

#[test]
fn the_page_answers_fifty_requests_at_once_while_a_silent_connection_waits() {
    use std::io::Read;
    let daemon = Daemon::start_in(Home::new("page-many").with("RTL_TASK_WORKERS", "1"));
    let port = daemon.home.port("RTL_PLOT_PORT");
    // A connection that says nothing at all.
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let opened = Instant::now();
    let ready = std::sync::Barrier::new(50);
    let waits: Vec<Duration> = std::thread::scope(|scope| {
        let asks: Vec<_> = (0..50)
            .map(|_| {
                scope.spawn(|| {
                    ready.wait();
                    let asked = Instant::now();
                    let (status, _, body) = http("GET", port, "/charts.json", None).expect("page");
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                    asked.elapsed()
                })
            })
            .collect();
        asks.into_iter()
            .map(|a| a.join().expect("request"))
            .collect()
    });
    let slowest = waits.iter().max().copied().unwrap_or_default();
    eprintln!("50 requests at once, slowest answered in {slowest:?}");
    // The silent connection is given 2 s for its request; every other
    // request was answered before that, so it held none of them.
    assert!(
        slowest < Duration::from_millis(1500),
        "a request waited {slowest:?} beside a silent connection"
    );
    // And it is closed once its time is up, not kept forever.
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = [0u8; 256];
    match silent.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the silent connection was not closed: {other:?}"),
    }
    assert!(
        opened.elapsed() < Duration::from_secs(15),
        "the silent connection was kept {:?}",
        opened.elapsed()
    );
}

/// A PNG's pixels, as RGBA.
fn pixels(png: &[u8]) -> Vec<[u8; 4]> {
    let pixmap = resvg::tiny_skia::Pixmap::decode_png(png).expect("a PNG");
    assert_eq!((pixmap.width(), pixmap.height()), (960, 540));
    pixmap
        .pixels()
        .iter()
        .map(|p| {
            let c = p.demultiply();
            [c.red(), c.green(), c.blue(), c.alpha()]
        })
        .collect()
}

/// The plot area of a chart's SVG, `[left, top, right, bottom]`: the
/// rectangle its series are clipped to.
fn plot_area(svg: &str) -> [f64; 4] {
    let rect = svg
        .split_once("<clipPath id=\"plot-area\"><rect ")
        .and_then(|(_, rest)| rest.split_once("/>"))
        .map(|(attrs, _)| attrs)
        .expect("a clip path of the plot area");
    let attr = |name: &str| -> f64 {
        rect.split_once(&format!("{name}=\""))
            .and_then(|(_, rest)| rest.split_once('"'))
            .and_then(|(v, _)| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {rect}"))
    };
    let (x, y) = (attr("x"), attr("y"));
    [x, y, x + attr("width"), y + attr("height")]
}

/// Every point a chart's SVG draws a series through: polyline points and
/// circle centres, after the plot area's clip path.
fn series_points(svg: &str) -> Vec<(f64, f64)> {
    let (_, series) = svg
        .split_once("clip-path=\"url(#plot-area)\"")
        .expect("series");
    let mut points = Vec::new();
    for element in series.split('<').skip(1) {
        let attr = |name: &str| {
            element
                .split_once(&format!(" {name}=\""))
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(v, _)| v)
        };
        if element.starts_with("polyline") {
            for pair in attr("points").expect("points").split_whitespace() {
                let (x, y) = pair.split_once(',').expect("x,y");
                points.push((x.parse().expect("x"), y.parse().expect("y")));
            }
        } else if element.starts_with("circle") {
            let at = |n| attr(n).and_then(|v| v.parse().ok()).expect("centre");
            points.push((at("cx"), at("cy")));
        }
    }
    points
}

/// A reproducible stream of numbers in 0..1.
fn noise(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The chart a `simple_plot` line of `y` against `x` makes of `csv`, as the
/// task node makes it.
fn line_chart(csv: &Path, name: &str) -> rtl_tasks::Chart {
    use rtl_tasks::chart::{Chart, Entry, Mark, Scale, XType};
    let table = common::read_csv(csv);
    let entry = Entry {
        x: "x",
        y: "y",
        mark: Mark::Line,
        scale: Scale::Linear,
        series: None,
    };
    Chart::from_table(name, name, &[entry], &table, XType::Auto).expect("chart")
}

/// Runs a job drawing `y` against `x` of `csv` as a line chart called
/// `name` through `daemon`; its SVG and PNG as the page serves them.
fn drawn_by_the_daemon(daemon: &Daemon, csv: &Path, name: &str) -> (String, Vec<u8>) {
    let port = daemon.home.port("RTL_PLOT_PORT");
    let stem = csv.file_stem().and_then(|s| s.to_str()).expect("stem");
    let job = write_job(
        &daemon.home.scratch.0,
        name,
        &format!(
            r#"{{"0": {{"tasks": [{{"open_array": {{"filename": "{stem}"}}}},
                 {{"simple_plot": {{"plots": {{"{name}": [{{"x": "x", "y": "y", "type": "line"}}]}}}}}}]}}}}"#
        ),
    );
    let out = daemon.rtl(&["run", "--connect", job.to_str().expect("path")]);
    assert!(out.status.success(), "{}", text(&out));
    charts(port, 1);
    let (_, _, svg) = http("GET", port, &format!("/charts/{name}.svg"), None).expect("svg");
    let (_, _, png) = http("GET", port, &format!("/charts/{name}.png"), None).expect("png");
    (String::from_utf8(svg).expect("utf-8 svg"), png)
}

#[test]
fn a_line_of_50000_random_rows_stays_inside_the_plot_area() {
    let daemon = Daemon::start("plots-clip");
    let csv = daemon.home.scratch.0.join("random.csv");
    let mut next = noise(7);
    let rows: String = (0..50_000)
        .map(|i| format!("{i},{:.6}\n", next()))
        .collect();
    std::fs::write(&csv, format!("x,y\n{rows}")).expect("csv");
    let (svg, png) = drawn_by_the_daemon(&daemon, &csv, "random");

    let [left, top, right, bottom] = plot_area(&svg);
    let points = series_points(&svg);
    assert!(points.len() > 1000, "{} points", points.len());
    let outside: Vec<_> = points
        .iter()
        .filter(|(x, y)| !(left..=right).contains(x) || !(top..=bottom).contains(y))
        .collect();
    assert!(
        outside.is_empty(),
        "points outside the plot area: {outside:?}"
    );

    // The same axes with nothing drawn on them.
    let mut empty = line_chart(&csv, "random");
    for layer in &mut empty.layers {
        (layer.x, layer.y) = (Vec::new(), Vec::new());
    }
    let (_, empty) = rtl_plot::render::pictures(&empty).expect("empty chart");
    let (drawn, empty) = (pixels(&png), pixels(&empty));
    let changed: Vec<(usize, usize)> = (0..drawn.len())
        .filter(|&i| drawn[i] != empty[i])
        .map(|i| (i % 960, i / 960))
        .collect();
    let beyond: Vec<_> = changed
        .iter()
        .filter(|&&(x, y)| {
            let (x, y) = (x as f64, y as f64);
            x < left || x >= right || y < top || y >= bottom
        })
        .collect();
    assert!(
        changed.len() > 100_000,
        "the line was drawn: {}",
        changed.len()
    );
    assert!(
        beyond.is_empty(),
        "{} pixels outside the plot area changed, such as {:?}",
        beyond.len(),
        &beyond[..beyond.len().min(10)]
    );
}

#[test]
fn a_thinned_line_draws_the_same_pixels_as_every_point() {
    let daemon = Daemon::start("plots-m4");
    let csv = daemon.home.scratch.0.join("noisy.csv");
    let mut next = noise(11);
    let mut walk = 0.0;
    let rows: String = (0..200_000)
        .map(|i| {
            walk += next() - 0.5;
            format!("{i},{:.6}\n", walk + 8.0 * (next() - 0.5))
        })
        .collect();
    std::fs::write(&csv, format!("x,y\n{rows}")).expect("csv");
    let (_, png) = drawn_by_the_daemon(&daemon, &csv, "noisy");

    let thinned = line_chart(&csv, "noisy");
    let drawn: usize = thinned.layers.iter().map(|l| l.x.len()).sum();
    assert!(drawn < 4000, "thinned to {drawn} points");
    let table = common::read_csv(&csv);
    let mut full = thinned.clone();
    full.layers[0].x = table.numeric("x").expect("x").to_vec();
    full.layers[0].y = table.numeric("y").expect("y").to_vec();
    let (_, thinned_png) = rtl_plot::render::pictures(&thinned).expect("thinned");
    let (_, full_png) = rtl_plot::render::pictures(&full).expect("full");
    let (daemon_px, thinned_px, full_px) = (pixels(&png), pixels(&thinned_png), pixels(&full_png));
    assert!(daemon_px == thinned_px, "the plot node drew another chart");
    let differ = (0..full_px.len())
        .filter(|&i| full_px[i] != thinned_px[i])
        .count();
    eprintln!("200,000 points thinned to {drawn}: {differ} pixels differ");
    assert_eq!(differ, 0, "pixels that differ between thinned and full");
}
