//! The CLI's informational commands and its settings errors.

mod common;

use common::{text, Home};

#[test]
fn config_shows_values_and_sources() {
    let home = Home::new("config");
    let out = home.rtl(&["config"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let relay_port = &home.env[1].1;
    let line = stdout
        .lines()
        .find(|l| l.starts_with("relay_port"))
        .expect("relay_port line");
    assert!(
        line.contains(relay_port.as_str()) && line.contains("environment RTL_RELAY_PORT"),
        "{line}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("task_workers"))
        .expect("task_workers line");
    assert!(line.contains("3") && line.contains("default"), "{line}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("cache_map_size"))
        .expect("cache_map_size line");
    assert!(line.contains("= 536870912 (512 MiB)"), "{line}");
}

#[test]
fn the_preview_counts_the_rows_it_leaves_out() {
    let home = Home::new("preview");
    let dir = &home.scratch.0;
    // The run's output for a job that opens `csv`.
    let run = |name: &str, csv: &str| {
        std::fs::write(dir.join(format!("{name}.csv")), csv).expect("csv");
        let job = common::write_job(
            dir,
            name,
            &format!(r#"{{"0": {{"tasks": {{"open_array": {{"filename": "{name}"}}}}}}}}"#),
        );
        let out = home.rtl(&["run", job.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stdout = run("six", "n\n1\n2\n3\n4\n5\n6\n");
    assert!(
        stdout.contains("Result: 6 rows x 1 column\n")
            && stdout.ends_with("          5\n  ... 1 more row\n"),
        "{stdout}"
    );
    // A cell of 70,000 characters with a line break is cut to one short line.
    let long = format!(
        "id,text\n1,\"{}\n{}\"\n",
        "y".repeat(35_000),
        "z".repeat(35_000)
    );
    let stdout = run("long", &long);
    assert!(
        stdout.ends_with(&format!("   1  {}…\n", "y".repeat(39))),
        "{stdout}"
    );
}

#[test]
fn bad_settings_name_the_key_and_source() {
    let home = Home::new("badconfig");
    let file = home.scratch.0.join("rtl.toml");
    std::fs::write(&file, "task_workers = \"many\"\n").expect("write config");
    let out = home.rtl(&["--config", file.to_str().unwrap(), "config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("task_workers")
            && err.contains("rtl.toml")
            && err.contains("expected a whole number"),
        "{err}"
    );
}

#[test]
fn tasks_lists_the_library() {
    let home = Home::new("tasks");
    for cmd in ["tasks", "plugins"] {
        let out = home.rtl(&[cmd]);
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.lines().any(|l| l.starts_with("null ")), "{stdout}");
        assert!(
            stdout.lines().any(|l| l.starts_with("open_array ")),
            "{stdout}"
        );
    }
}

#[test]
fn explain_shows_the_columns_after_each_task() {
    let home = Home::new("explain");
    let job = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/rows/job.json");
    let out = home.rtl(&["explain", job]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "stage 0",
        "      + run (int64), site (utf8), ok (bool), duration (float64), load (float64)",
        "  rename",
        "      + seconds (float64)",
        "      - duration",
        "result: run (int64), site (utf8), seconds (float64)",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }
}

#[test]
fn explain_shows_a_graph_and_draws_it_for_graphviz() {
    let home = Home::new("explain-graph");
    let job = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/graph/diamond/job.json"
    );
    let out = home.rtl(&["explain", job]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "stage load (a source)",
        "stage means (takes load)",
        "stage report (takes hot, means)",
        "  join",
        "      = sensor (utf8), temp (float64), hum (int64), temp_f (float64), mean_temp (float64), max_hum (float64), readings (float64)",
        "  first: load",
        "  then: hot, means",
        "  then: report",
        "    join: on one node with every input whole, once every input stage is done",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }
    let out = home.rtl(&["explain", "--dot", job]);
    assert!(out.status.success(), "{}", text(&out));
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(dot.starts_with("digraph job {"), "{dot}");
    for line in [
        "  \"s3\" [label=\"report\\njoin\\nsubtract\", peripheries=2];",
        "  \"s0\" -> \"s1\";",
        "  \"s1\" -> \"s3\" [label=\"1\"];",
        "  \"s2\" -> \"s3\" [label=\"2\"];",
    ] {
        assert!(
            dot.lines().any(|l| l == line),
            "missing {line:?} in:\n{dot}"
        );
    }
    // A broken job is drawn all the same, and its problems said.
    let broken = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/broken/graph_combine_missing.json"
    );
    let out = home.rtl(&["explain", "--dot", broken]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("digraph job {"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("so its first task must combine them"),
        "{}",
        text(&out)
    );
    // --format goes with --out.
    let out = home.rtl(&["run", job, "--format", "npz"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("--format says how --out DIR/ writes the results; give --out too"),
        "{}",
        text(&out)
    );
}

#[test]
fn explain_shows_how_a_big_table_runs_in_steps() {
    let home = Home::new("explain-steps");
    let job = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pipeline/job.json");
    let out = home.rtl(&["explain", job]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (tasks, how) in [
        (
            "filter, add, divide",
            "each chunk moves on as soon as it is done",
        ),
        ("simple_plot", "on one node with the whole table"),
        ("normalize, subtract", "has sent its figures"),
        ("average", "has sent its figures"),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{tasks}:")) && l.contains(how)),
            "missing {tasks}: ...{how} in:\n{stdout}"
        );
    }
}

#[test]
fn every_task_doc_prints_an_example_job_that_checks_clean() {
    let home = Home::new("taskdoc");
    let dir = &home.scratch.0;
    std::fs::write(
        dir.join("data.csv"),
        "x,y,n,site\n1.5,2.0,1,a\n2.5,3.5,2,b\n4.0,9.0,3,a\n",
    )
    .expect("data");
    let list = home.rtl(&["tasks"]);
    // The built-in tasks, before the installed ones (none here).
    let names: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(names.len() >= 27, "{names:?}");
    for name in names
        .iter()
        .filter(|n| !matches!(n.as_str(), "open" | "open_array"))
    {
        let out = home.rtl(&["tasks", "--doc", name]);
        assert!(out.status.success(), "{name}: {}", text(&out));
        let doc = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(doc.contains("\nkwargs:\n"), "{name}: {doc}");
        let job = doc
            .split("example job:\n")
            .nth(1)
            .and_then(|rest| rest.split("\n(").next())
            .unwrap_or_else(|| panic!("{name}: no example job in\n{doc}"));
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, job).expect("job");
        let check = home.rtl(&["check", path.to_str().unwrap()]);
        assert!(check.status.success(), "{name}'s example: {}", text(&check));
    }
}

#[test]
fn bench_quick_reports_every_figure_as_json() {
    let home = Home::new("bench");
    let numpy = std::process::Command::new("python3")
        .args(["-c", "import numpy"])
        .status()
        .is_ok_and(|s| s.success());
    for inline in [false, true] {
        let mut args = vec!["bench", "--quick", "--json"];
        if inline {
            args.push("--inline");
        }
        let out = home.rtl(&args);
        assert!(out.status.success(), "{}", text(&out));
        let figures: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("one JSON object");
        assert_eq!(figures["inline"], inline, "{figures}");
        let mut keys = vec![
            "null_p50_us",
            "null_p99_us",
            "floor_p50_us",
            "jobs_per_s_blocking",
            "jobs_per_s_pipelined",
            "move16_ms",
            "move16_floor_ms",
            "pipeline_1m_daemon_ms",
            "pipeline_1m_inproc_ms",
            "pipeline_10m_daemon_ms",
            "pipeline_10m_inproc_ms",
        ];
        // numpy's side runs where python3 has numpy (.ci/run installs it).
        if numpy {
            keys.extend(["pipeline_1m_numpy_ms", "pipeline_10m_numpy_ms"]);
        } else {
            assert!(figures["pipeline_10m_numpy_ms"].is_null(), "{figures}");
        }
        for key in keys {
            let value = figures[key].as_f64().unwrap_or(f64::NAN);
            assert!(value.is_finite() && value > 0.0, "{key}: {}", figures[key]);
        }
        for rows in ["10000", "100000", "1000000", "10000000"] {
            assert!(
                figures["ns_per_row"][rows]
                    .as_f64()
                    .is_some_and(|v| v > 0.0),
                "{figures}"
            );
        }
    }
}

#[test]
fn a_closed_stdout_does_not_keep_run_from_writing_its_result() {
    let home = Home::new("closed-stdout");
    let job = common::null_job(&home.scratch);
    let out_csv = home.scratch.0.join("out.csv");
    // `rtl run ... | head -1`: the reader is gone before the report ends.
    let mut child = home
        .command(&[
            "run",
            job.to_str().unwrap(),
            "--out",
            out_csv.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rtl run");
    drop(child.stdout.take());
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    assert_eq!(
        std::fs::read_to_string(&out_csv).expect("the result is written"),
        common::SENSORS_CSV
    );
}

#[test]
fn text_from_a_job_cannot_drive_the_terminal() {
    let home = Home::new("escapes");
    let job = common::write_job(
        &home.scratch.0,
        "escape",
        r#"{"0": {"tasks": {"select": {"columns": ["a\u001b[2J\u001b[31mred"]}}}}"#,
    );
    let out = home.rtl(&["run", job.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains('\u{1b}'), "{said:?}");
    assert!(said.contains("a\\u{1b}[2J\\u{1b}[31mred"), "{said:?}");
}
