//! `simple_plot {plots: {NAME: [{x, y, type, scale, series}]}, title}`: one
//! chart per NAME; each entry draws column `y` against column `x` as
//! `circle` (scatter), `line` or `bar`, on a `linear` (default) or `log` y
//! scale, with `series` (a column, or null) splitting the points into
//! colored groups. Each chart has its own title: `title` as text titles a
//! task's only chart, or each of several as "TITLE: NAME"; an object gives
//! each chart's title by name; the default is the chart's name. `x_type`
//! says whether x holds times (`auto`, `time`, `number`; see
//! `crate::chart::XType`). The task builds each chart's data from the whole table
//! (thinned for display, see `crate::chart`), hands it on through the
//! context (the task node sends it to the plot node and to a client that
//! asked for charts), and passes the table on unchanged.

use crate::chart::{Chart, Entry, Mark, Scale, XType};
use crate::{decodes, kwargs, Context, Role, Table, TaskSpec};
use indexmap::IndexMap;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "simple_plot",
    aliases: &["simplePlot"],
    about: "charts: y against x as circle, line or bar, per NAME, drawn by the plot node",
    kernel: run,
    kwargs: "plots: an object of chart name -> list of {x, y, type, scale, series}\n  x: a column (text columns become categories)\n  y: a number column\n  type: circle | line (points joined in x order) | bar (default circle)\n  scale: linear | log (default linear; log if any entry of the chart says so)\n  series: a column splitting the points into colored groups, or null\ntitle: each chart's title: text (one chart: that title; several: \"TITLE: NAME\"), or an object of chart name -> title (default: the chart's name)\nx_label, y_label: axis labels (default: the column names)\nx_type: auto | time | number (default auto: a number column named like a time (time, timestamp, ts, date, *_time, *_at, ...) holding epoch seconds or milliseconds gets date and time labels; time: always, as epoch seconds, or milliseconds when the values are too large for seconds)",
    example: r#"{"title": "Readings", "plots": {"readings": [{"x": "n", "y": "x", "type": "line", "series": "site"}]}}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    // A chart shows every row of the table, so it is drawn once, from the
    // whole table, never per chunk.
    row_local: false,
    ignored: &[],
    reduce: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Kwargs {
    /// Charts in the order the job writes them.
    pub(crate) plots: IndexMap<String, Vec<Series>>,
    #[serde(default)]
    pub(crate) title: Option<Title>,
    #[serde(default)]
    pub(crate) x_label: Option<String>,
    #[serde(default)]
    pub(crate) y_label: Option<String>,
    #[serde(default)]
    pub(crate) x_type: XType,
}

/// `title`: one text for every chart, or each chart's by name.
pub(crate) enum Title {
    One(String),
    Each(BTreeMap<String, String>),
}

impl Title {
    /// The title of chart `name`, one of `charts` charts.
    fn of(&self, name: &str, charts: usize) -> String {
        match self {
            Title::One(title) if charts == 1 => title.clone(),
            Title::One(title) => format!("{title}: {name}"),
            Title::Each(titles) => titles.get(name).cloned().unwrap_or_else(|| name.into()),
        }
    }
}

impl<'de> Deserialize<'de> for Title {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Title, D::Error> {
        struct Either;
        impl<'de> Visitor<'de> for Either {
            type Value = Title;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a title, or an object of chart name -> title")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Title, E> {
                Ok(Title::One(text.to_string()))
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Title, M::Error> {
                let mut titles = BTreeMap::new();
                while let Some((name, title)) = map.next_entry::<String, String>()? {
                    titles.insert(name, title);
                }
                Ok(Title::Each(titles))
            }
        }
        deserializer.deserialize_any(Either)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Series {
    pub(crate) x: String,
    pub(crate) y: String,
    #[serde(rename = "type", default)]
    pub(crate) kind: Mark,
    #[serde(default)]
    pub(crate) scale: Scale,
    #[serde(default)]
    pub(crate) series: Option<String>,
}

fn run(table: Table, args: &Value, ctx: &Context) -> Result<Table, String> {
    let Kwargs {
        plots,
        title,
        x_label,
        y_label,
        x_type,
    } = kwargs(args)?;
    if plots.is_empty() {
        return Err("`plots` names no chart".into());
    }
    if let Some(Title::Each(titles)) = &title {
        if let Some(name) = titles.keys().find(|name| !plots.contains_key(*name)) {
            let known: Vec<&str> = plots.keys().map(String::as_str).collect();
            return Err(format!(
                "title.{name}: `plots` has no chart `{name}` (it has {})",
                known.join(", ")
            ));
        }
    }
    for (name, entries) in &plots {
        if entries.is_empty() {
            return Err(format!("plots.{name}: no entries to draw"));
        }
        for (i, s) in entries.iter().enumerate() {
            let at = |e: String| format!("plots.{name}[{i}]: {e}");
            table.numeric(&s.y).map_err(at)?;
            table.require(&s.x).map_err(at)?;
            if let Some(series) = &s.series {
                table.require(series).map_err(at)?;
            }
            if s.scale == Scale::Log && !table.numeric(&s.y).map_err(at)?.iter().any(|v| *v > 0.0) {
                return Err(at(format!(
                    "`{}` has no positive value to draw on a log scale",
                    s.y
                )));
            }
        }
        let wanted: Vec<Entry> = entries
            .iter()
            .map(|s| Entry {
                x: &s.x,
                y: &s.y,
                mark: s.kind,
                scale: s.scale,
                series: s.series.as_deref(),
            })
            .collect();
        let titled = title
            .as_ref()
            .map_or_else(|| name.clone(), |t| t.of(name, plots.len()));
        let mut chart = Chart::from_table(name, &titled, &wanted, &table, x_type)
            .map_err(|e| format!("plots.{name}: {e}"))?;
        if let Some(label) = &x_label {
            chart.x_label.clone_from(label);
        }
        if let Some(label) = &y_label {
            chart.y_label.clone_from(label);
        }
        let drawn: Vec<String> = entries
            .iter()
            .map(|s| format!("{} against {} ({}, {} scale)", s.y, s.x, s.kind, s.scale))
            .collect();
        ctx.note(format!(
            "chart {name} \"{}\": {}; {}",
            chart.title,
            drawn.join("; "),
            chart.caption
        ));
        ctx.chart(chart);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Column, Context};
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    fn table() -> Table {
        Table::from_columns(vec![
            ("t".into(), Column::Int64(array![1, 2])),
            ("v".into(), Column::Float64(array![0.5, 0.7])),
            ("site".into(), Column::text(&["a", "b"])),
        ])
        .expect("table")
    }

    fn plot(args: Value) -> Result<Table, String> {
        (SPEC.kernel)(table(), &args, &Context::new(Path::new(".")))
    }

    #[test]
    fn notes_what_each_chart_draws() {
        let ctx = Context::new(Path::new("."));
        let args =
            json!({"title": "Sensors", "plots": {"r": [{"x": "t", "y": "v", "type": "bar"}]}});
        run(table(), &args, &ctx).expect("plot");
        assert_eq!(
            ctx.notes.take(),
            ["chart r \"Sensors\": v against t (bar, linear scale); 2 points"]
        );
        let charts = ctx.charts.take();
        assert_eq!(charts.len(), 1);
        assert_eq!(
            (charts[0].name.as_str(), charts[0].title.as_str()),
            ("r", "Sensors")
        );
        assert_eq!(charts[0].layers[0].y, [0.5, 0.7]);
        let err = plot(json!({"plots": {"p": [{"x": "t", "y": "v", "scale": "log"}]}})).map(|_| ());
        assert!(err.is_ok());
    }

    #[test]
    fn notes_keep_the_columns_case() {
        let ctx = Context::new(Path::new("."));
        let t = Table::from_columns(vec![
            ("timeStamp".into(), Column::Int64(array![1, 2])),
            ("heatNormal".into(), Column::Float64(array![0.5, 0.7])),
        ])
        .expect("table");
        let args =
            json!({"plots": {"Heat": [{"x": "timeStamp", "y": "heatNormal", "scale": "log"}]}});
        run(t, &args, &ctx).expect("plot");
        let notes = ctx.notes.take();
        assert!(
            notes[0].contains("heatNormal against timeStamp (circle, log scale)"),
            "{notes:?}"
        );
    }

    #[test]
    fn charts_come_in_the_order_the_job_writes_them() {
        let ctx = Context::new(Path::new("."));
        let args =
            json!({"plots": {"zeta": [{"x": "t", "y": "v"}], "alpha": [{"x": "t", "y": "v"}]}});
        run(table(), &args, &ctx).expect("plot");
        let names: Vec<String> = ctx.charts.take().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["zeta", "alpha"]);
    }

    #[test]
    fn axis_labels_default_to_the_columns_and_can_be_named() {
        let ctx = Context::new(Path::new("."));
        run(
            table(),
            &json!({"plots": {"r": [{"x": "t", "y": "v"}]}}),
            &ctx,
        )
        .expect("plot");
        let chart = ctx.charts.take().remove(0);
        assert_eq!((chart.x_label.as_str(), chart.y_label.as_str()), ("t", "v"));
        assert_eq!(chart.title, "r");
        let args =
            json!({"x_label": "hour", "y_label": "volts", "plots": {"r": [{"x": "t", "y": "v"}]}});
        run(table(), &args, &ctx).expect("plot");
        let chart = ctx.charts.take().remove(0);
        assert_eq!(
            (chart.x_label.as_str(), chart.y_label.as_str()),
            ("hour", "volts")
        );
    }

    #[test]
    fn valid_plots_pass_the_table_on() {
        let out = plot(json!({"title": "Sensors", "plots": {"readings": [
            {"x": "t", "y": "v", "type": "line", "scale": "log", "series": "site"},
            {"x": "t", "y": "v"}
        ]}}))
        .expect("plot");
        assert_eq!(out, table());
    }

    #[test]
    fn mistakes_are_named() {
        let err = plot(json!({"plots": {"p": [{"x": "t", "y": "site"}]}})).expect_err("utf8 y");
        assert!(err.contains("plots.p[0]: column `site` is utf8"), "{err}");
        let err =
            plot(json!({"plots": {"p": [{"x": "t", "y": "v", "type": "pie"}]}})).expect_err("pie");
        assert!(err.contains("unknown value `pie`"), "{err}");
        let err = plot(json!({"plots": {"p": [{"x": "t", "y": "v", "series": "zone"}]}}))
            .expect_err("series");
        assert!(err.contains("no column `zone`"), "{err}");
        assert!(plot(json!({"plots": {}}))
            .expect_err("empty")
            .contains("names no chart"));
        let negative = Table::from_columns(vec![
            ("t".into(), Column::Int64(array![1])),
            ("v".into(), Column::Float64(array![-1.0])),
        ])
        .expect("table");
        let err = (SPEC.kernel)(
            negative,
            &json!({"plots": {"p": [{"x": "t", "y": "v", "scale": "log"}]}}),
            &Context::new(Path::new(".")),
        )
        .expect_err("log of negatives");
        assert!(err.contains("no positive value"), "{err}");
    }

    #[test]
    fn every_chart_has_its_own_title_and_notes_keep_the_columns_case() {
        let t = Table::from_columns(vec![
            ("t".into(), Column::Int64(array![1, 2])),
            ("heatNormal".into(), Column::Float64(array![0.5, 0.7])),
        ])
        .expect("table");
        let titles = |args: Value| {
            let ctx = Context::new(Path::new("."));
            run(t.clone(), &args, &ctx).expect("plot");
            let notes = ctx.notes.take();
            let titles: Vec<String> = ctx.charts.take().into_iter().map(|c| c.title).collect();
            (titles, notes)
        };
        let two = json!([{"x": "t", "y": "heatNormal", "type": "line"}]);
        let (got, notes) = titles(json!({"title": "Heat", "plots": {"a": two, "b": two}}));
        assert_eq!(got, ["Heat: a", "Heat: b"]);
        assert!(
            notes[0].contains("heatNormal against t (line, linear scale)"),
            "{notes:?}"
        );
        let (got, _) = titles(json!({"title": {"b": "Bee"}, "plots": {"a": two, "b": two}}));
        assert_eq!(got, ["a", "Bee"]);
        let (got, _) = titles(json!({"plots": {"a": two, "b": two}}));
        assert_eq!(got, ["a", "b"]);
        let err = run(
            t.clone(),
            &json!({"title": {"c": "Sea"}, "plots": {"a": two, "b": two}}),
            &Context::new(Path::new(".")),
        )
        .expect_err("unknown chart");
        assert_eq!(err, "title.c: `plots` has no chart `c` (it has a, b)");
    }

    #[test]
    fn a_bad_x_type_or_title_is_named() {
        let err = plot(json!({"x_type": "date", "plots": {"p": [{"x": "t", "y": "v"}]}}))
            .expect_err("x_type");
        assert_eq!(
            err,
            "bad kwargs at `x_type`: unknown value `date`, expected one of `auto`, `number`, `time`"
        );
        let err =
            plot(json!({"title": 3, "plots": {"p": [{"x": "t", "y": "v"}]}})).expect_err("title");
        assert!(
            err.contains("bad kwargs at `title`: expected a title, or an object of chart name -> title, found the number 3"),
            "{err}"
        );
        let chart = |args: Value| {
            let ctx = Context::new(Path::new("."));
            run(table(), &args, &ctx).expect("plot");
            ctx.charts.take().remove(0)
        };
        let forced = chart(json!({"x_type": "time", "plots": {"p": [{"x": "t", "y": "v"}]}}));
        assert_eq!(forced.x_time, Some(crate::chart::TimeUnit::Seconds));
        let plain = chart(json!({"plots": {"p": [{"x": "t", "y": "v"}]}}));
        assert_eq!(plain.x_time, None);
    }
}
