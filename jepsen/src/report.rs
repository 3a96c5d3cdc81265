//! The report directory of a run: `history.jsonl`, `verdict.json`,
//! `setup.json`, `faults.json`, `timeline.html` (every call as a bar, per
//! process, coloured by outcome, faults shaded), `latency.svg` and
//! `throughput.svg` (plotters, fault periods shaded) and `nodes/` with
//! every node's log.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::checker::{Setup, Verdict};
use crate::history::{write_jsonl, Call, Op, OpType, F, NEMESIS_PROCESS};
use crate::runner::{FaultPeriod, RunOptions};

/// Calls drawn in the timeline (the rest are in the history).
const TIMELINE_CALLS_MAX: usize = 5_000;

#[allow(clippy::too_many_arguments)]
pub(crate) fn write(
    dir: &Path,
    ops: &[Op],
    calls: &[Call],
    setup: &Setup,
    faults: &[FaultPeriod],
    verdict: &Verdict,
    logs: &[(u64, PathBuf)],
    opts: &RunOptions,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("history.jsonl"))?);
    write_jsonl(ops, &mut f).map_err(std::io::Error::other)?;
    std::io::Write::flush(&mut f)?;
    std::fs::write(dir.join("verdict.json"), serde_json::to_string_pretty(verdict)?)?;
    std::fs::write(dir.join("setup.json"), serde_json::to_string_pretty(setup)?)?;
    std::fs::write(dir.join("faults.json"), serde_json::to_string_pretty(faults)?)?;
    let nodes = dir.join("nodes");
    std::fs::create_dir_all(&nodes)?;
    for (id, log) in logs {
        let _ = std::fs::copy(log, nodes.join(format!("node{id}.log")));
    }
    std::fs::write(dir.join("timeline.html"), timeline(calls, faults, verdict, opts))?;
    let _ = plots(dir, calls, faults);
    Ok(())
}

fn color(c: &Call) -> &'static str {
    match c.outcome() {
        OpType::Ok => "#7c7",
        OpType::Fail => "#e88",
        _ => "#fc6",
    }
}

fn timeline(calls: &[Call], faults: &[FaultPeriod], verdict: &Verdict, opts: &RunOptions) -> String {
    let client: Vec<&Call> = calls.iter().filter(|c| c.invoke.process != NEMESIS_PROCESS).collect();
    let end_ms = client.iter().filter_map(|c| c.complete.as_ref().map(Op::time_ms)).max().unwrap_or(1).max(1);
    let mut processes: Vec<u64> = client.iter().map(|c| c.invoke.process).collect();
    processes.sort_unstable();
    processes.dedup();
    let width = 1600.0;
    let x = |ms: u64| ms as f64 / end_ms as f64 * width;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><meta charset=utf-8><title>jepsen run</title><style>body{{font:12px sans-serif}}\
         .op{{position:absolute;height:10px;border:1px solid #555;box-sizing:border-box}}\
         .fault{{position:absolute;top:0;bottom:0;background:rgba(120,120,255,.15)}}</style>\
         <h1>{}: {}</h1><p>mix {:?}, seed {}, plant {:?}, network {:?}, {} s, {} calls. Failed checkers: {:?}</p>\
         <p>green ok, red fail, yellow unknown (info); blue bands are faults.</p>",
        if verdict.valid { "valid" } else { "INVALID" },
        opts.out.display(),
        opts.mix,
        opts.seed,
        opts.plant,
        opts.net,
        opts.time_limit_secs,
        client.len(),
        verdict.failed(),
    );
    let _ =
        write!(html, "<div style='position:relative;width:{width}px;height:{}px'>", processes.len().min(400) * 12 + 20);
    for f in faults {
        let _ = write!(
            html,
            "<div class=fault style='left:{:.1}px;width:{:.1}px' title='{} {:?}'></div>",
            x(f.from_ms),
            (x(f.to_ms) - x(f.from_ms)).max(1.0),
            f.name,
            f.nodes
        );
    }
    for c in client.iter().take(TIMELINE_CALLS_MAX) {
        let Ok(row) = processes.binary_search(&c.invoke.process) else { continue };
        if row >= 400 {
            continue;
        }
        let to = c.complete.as_ref().map_or(end_ms, Op::time_ms);
        let title = format!(
            "{:?} p{} {:?} {} {}",
            c.invoke.f,
            c.invoke.process,
            c.outcome(),
            c.error().unwrap_or(""),
            serde_json::to_string(c.result()).unwrap_or_default().replace('\'', "&#39;").replace('<', "&lt;")
        );
        let _ = write!(
            html,
            "<div class=op style='left:{:.1}px;top:{}px;width:{:.1}px;background:{}' title='{}'></div>",
            x(c.inv_ms()),
            row * 12,
            (x(to) - x(c.inv_ms())).max(2.0),
            color(c),
            title
        );
    }
    html.push_str("</div><h2>Verdict</h2><pre>");
    html.push_str(&serde_json::to_string_pretty(verdict).unwrap_or_default().replace('<', "&lt;"));
    html.push_str("</pre>");
    html
}

fn plots(dir: &Path, calls: &[Call], faults: &[FaultPeriod]) -> Result<(), Box<dyn std::error::Error>> {
    let client: Vec<&Call> =
        calls.iter().filter(|c| c.invoke.process < NEMESIS_PROCESS - 1000 && c.invoke.f != F::Nemesis).collect();
    let end_s =
        client.iter().filter_map(|c| c.complete.as_ref().map(|o| o.time_ms())).max().unwrap_or(1000) as f64 / 1000.0;
    // Latency: one point per completed call.
    {
        let path = dir.join("latency.svg");
        let root = SVGBackend::new(&path, (1200, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let lat_max = client
            .iter()
            .filter_map(|c| Some(c.complete.as_ref()?.time_ms().saturating_sub(c.inv_ms())))
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption("latency (ms) per call; faults shaded", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..end_s.max(1.0), 0f64..lat_max * 1.05)?;
        chart.configure_mesh().x_desc("s").y_desc("ms").draw()?;
        for f in faults {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(f.from_ms as f64 / 1000.0, 0.0), (f.to_ms as f64 / 1000.0, lat_max * 1.05)],
                RGBColor(120, 120, 255).mix(0.15).filled(),
            )))?;
        }
        for (ty, col) in [(OpType::Ok, GREEN), (OpType::Fail, RED), (OpType::Info, RGBColor(230, 160, 0))] {
            chart.draw_series(client.iter().filter(|c| c.outcome() == ty).filter_map(|c| {
                let done = c.complete.as_ref()?;
                Some(Circle::new(
                    (c.inv_ms() as f64 / 1000.0, done.time_ms().saturating_sub(c.inv_ms()) as f64),
                    2,
                    col.filled(),
                ))
            }))?;
        }
        root.present()?;
    }
    // Throughput: completions per second by outcome.
    {
        let path = dir.join("throughput.svg");
        let root = SVGBackend::new(&path, (1200, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let secs = end_s.ceil() as usize + 1;
        let mut per = vec![[0u32; 3]; secs];
        for c in &client {
            let Some(done) = &c.complete else { continue };
            let k = match c.outcome() {
                OpType::Ok => 0,
                OpType::Fail => 1,
                _ => 2,
            };
            per[((done.time_ms() / 1000) as usize).min(secs - 1)][k] += 1;
        }
        let top = per.iter().map(|p| p.iter().sum::<u32>()).max().unwrap_or(1).max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption("completions per second (green ok, red fail, orange info); faults shaded", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..secs as f64, 0f64..top * 1.1)?;
        chart.configure_mesh().x_desc("s").y_desc("calls/s").draw()?;
        for f in faults {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(f.from_ms as f64 / 1000.0, 0.0), (f.to_ms as f64 / 1000.0, top * 1.1)],
                RGBColor(120, 120, 255).mix(0.15).filled(),
            )))?;
        }
        for (k, col) in [(0usize, GREEN), (1, RED), (2, RGBColor(230, 160, 0))] {
            chart.draw_series(LineSeries::new(per.iter().enumerate().map(|(s, p)| (s as f64, p[k] as f64)), col))?;
        }
        root.present()?;
    }
    Ok(())
}
