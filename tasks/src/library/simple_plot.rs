//! `simple_plot {plots: {NAME: [{x, y, type, scale, series}]}, title}`: one
//! chart per NAME; each entry draws column `y` against column `x` as
//! `circle` (scatter), `line` or `bar`, on a `linear` (default) or `log` y
//! scale, with `series` (a column, or null) splitting the points into
//! colored groups. The task builds each chart's data from the whole table
//! (thinned for display, see `crate::chart`), hands it on through the
//! context (the task node sends it to the plot node and to a client that
//! asked for charts), and passes the table on unchanged.

use crate::chart::{Chart, Entry, Mark, Scale};
use crate::{decodes, kwargs, Context, Role, Table, TaskSpec};
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "simple_plot",
    aliases: &["simplePlot"],
    about: "charts: y against x as circle, line or bar, per NAME, drawn by the plot node",
    kernel: run,
    kwargs: "plots: an object of chart name -> list of {x, y, type, scale, series}\n  x: a column (text columns become categories)\n  y: a number column\n  type: circle | line | bar (default circle)\n  scale: linear | log (default linear; log if any entry of the chart says so)\n  series: a column splitting the points into colored groups, or null\ntitle: the charts' title (default: the chart's name)\nx_label, y_label: axis labels (default: the column names)",
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
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) x_label: Option<String>,
    #[serde(default)]
    pub(crate) y_label: Option<String>,
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
    } = kwargs(args)?;
    if plots.is_empty() {
        return Err("`plots` names no chart".into());
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
        let mut chart = Chart::from_table(name, title.as_deref(), &wanted, &table)
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
        assert!(err.contains("unknown variant `pie`"), "{err}");
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
}
