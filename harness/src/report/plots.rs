//! Latency (per operation, by function and outcome, log scale) and throughput (ops/s by
//! outcome) as SVG, with fault windows shaded.
//!
//! A scatter of 100k points would be megabytes of SVG, so points are snapped to a 2-pixel grid
//! and each occupied cell is drawn once per series: the picture is the same, the size bounded.

use super::data::{Axis, Outcome, ReportData};
use super::svg::{duration_label, esc, nice_step, shade_windows, ticks, time_label};
use serde::Serialize;
use std::collections::HashSet;
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 34.0;
/// Scatter points are snapped to a grid of this many pixels.
const GRID: f64 = 2.0;

/// One latency series, for the legend.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub id: String,
    pub f: String,
    pub outcome: &'static str,
    pub count: usize,
    /// A small inline SVG of the series' mark.
    pub swatch: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plots {
    pub latency_svg: String,
    pub throughput_svg: String,
    pub series: Vec<Series>,
}

/// The mark of the n-th function, as a path fragment centred on (x, y).
fn mark(shape: usize, x: i64, y: i64) -> String {
    match shape % 6 {
        0 => format!("M{} {}h3v3h-3z", x - 1, y - 1),
        1 => format!("M{x} {}l2 4h-4z", y - 2),
        2 => format!("M{x} {}l2 2-2 2-2-2z", y - 2),
        3 => format!("M{x} {}l2-4h-4z", y + 2),
        4 => format!("M{} {}h5v2h-5z", x - 2, y - 1),
        _ => format!("M{} {}h2v5h-2z", x - 1, y - 2),
    }
}

fn outcome_rank(o: Outcome) -> usize {
    match o {
        Outcome::Ok => 0,
        Outcome::Fail => 1,
        Outcome::Info => 2,
        Outcome::Pending => 3,
    }
}

fn open_svg(out: &mut String, class: &str, label: &str) {
    let _ = write!(
        out,
        r#"<svg class="plot {class}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">"#
    );
}

fn x_axis(out: &mut String, data: &ReportData, x_of: &dyn Fn(f64) -> f64) {
    let span = data.end.max(1) as f64;
    let bottom = HEIGHT - BOTTOM;
    for t in ticks(0.0, span, 10.0) {
        let x = x_of(t);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            bottom + 16.0,
            esc(&time_label(data.axis, t, span))
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{:.1}" y2="{bottom}"/><line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>"#,
        WIDTH - RIGHT
    );
}

/// Both plots, or `None` for histories without timestamps (nothing to measure).
pub fn plots(data: &ReportData) -> Option<Plots> {
    if data.axis != Axis::Nanos || data.ops.is_empty() {
        return None;
    }
    let span = data.end.max(1) as f64;
    let x_of = |t: f64| LEFT + (t / span) * (WIDTH - LEFT - RIGHT);
    let (latency_svg, series) = latency(data, &x_of);
    let throughput_svg = throughput(data, &x_of);
    Some(Plots {
        latency_svg,
        throughput_svg,
        series,
    })
}

fn latency(data: &ReportData, x_of: &dyn Fn(f64) -> f64) -> (String, Vec<Series>) {
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    for o in &data.ops {
        if let Some(l) = o.latency() {
            let l = l.max(1) as f64;
            lo = lo.min(l);
            hi = hi.max(l);
        }
    }
    if hi == 0.0 {
        lo = 1e6;
        hi = 1e7;
    }
    let (dlo, mut dhi) = (lo.log10().floor(), hi.log10().ceil());
    if dhi <= dlo {
        dhi = dlo + 1.0;
    }
    let bottom = HEIGHT - BOTTOM;
    let y_of = |ns: f64| bottom - (ns.max(1.0).log10() - dlo) / (dhi - dlo) * (bottom - TOP);

    // Series in order of each function's first appearance, then ok, fail, info.
    let mut fs: Vec<&str> = Vec::new();
    for o in &data.ops {
        if !fs.contains(&o.f) {
            fs.push(o.f);
        }
    }
    let mut cells: Vec<HashSet<(i64, i64)>> = vec![HashSet::new(); fs.len() * 3];
    let mut counts = vec![0usize; fs.len() * 3];
    for o in &data.ops {
        let Some(l) = o.latency() else { continue };
        let rank = outcome_rank(o.outcome);
        if rank > 2 {
            continue;
        }
        let fi = fs.iter().position(|f| *f == o.f).unwrap_or(0);
        let s = fi * 3 + rank;
        counts[s] += 1;
        let x = (x_of(o.start as f64) / GRID).round() as i64;
        let y = (y_of(l as f64) / GRID).round() as i64;
        cells[s].insert((x, y));
    }

    let mut out = String::new();
    open_svg(
        &mut out,
        "latency",
        "Latency of each operation over time, log scale",
    );
    shade_windows(
        &mut out,
        &data.windows,
        x_of,
        (LEFT, WIDTH - RIGHT),
        (TOP, bottom),
    );
    let mut decade = dlo;
    while decade <= dhi {
        let y = y_of(10f64.powf(decade));
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            duration_label(10f64.powf(decade))
        );
        decade += 1.0;
    }
    x_axis(&mut out, data, x_of);
    let mut series = Vec::new();
    for (s, cell_set) in cells.iter().enumerate() {
        if counts[s] == 0 {
            continue;
        }
        let (fi, rank) = (s / 3, s % 3);
        let outcome = ["ok", "fail", "info"][rank];
        let id = format!("s{s}");
        // Sorted so the same history always gives the same bytes.
        let mut points: Vec<&(i64, i64)> = cell_set.iter().collect();
        points.sort_unstable();
        let mut d = String::with_capacity(points.len() * 16);
        for &&(x, y) in &points {
            d.push_str(&mark(fi, x * GRID as i64, y * GRID as i64));
        }
        let _ = write!(
            out,
            r#"<path class="pt {outcome}" data-series="{id}" d="{d}"><title>{} {outcome}: {} operations</title></path>"#,
            esc(fs[fi]),
            counts[s]
        );
        series.push(Series {
            id,
            f: fs[fi].to_string(),
            outcome,
            count: counts[s],
            swatch: format!(
                r#"<svg class="swatch" viewBox="0 0 10 10" width="12" height="12"><path class="pt {outcome}" d="{}"/></svg>"#,
                mark(fi, 5, 5)
            ),
        });
    }
    let _ = write!(
        out,
        r#"<text class="axis-title" x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">latency</text></svg>"#,
        (TOP + bottom) / 2.0,
        (TOP + bottom) / 2.0
    );
    (out, series)
}

fn throughput(data: &ReportData, x_of: &dyn Fn(f64) -> f64) -> String {
    let span = data.end.max(1) as f64;
    // About a hundred buckets, never narrower than a millisecond.
    let bucket = nice_step(span, 100.0).max(1e6);
    let buckets = (span / bucket).ceil().max(1.0) as usize;
    let mut counts = vec![[0u64; 3]; buckets];
    for o in &data.ops {
        let (Some(end), rank) = (o.end, outcome_rank(o.outcome)) else {
            continue;
        };
        if rank > 2 {
            continue;
        }
        let b = ((end as f64 / bucket) as usize).min(buckets - 1);
        counts[b][rank] += 1;
    }
    let per_sec = 1e9 / bucket;
    let max = counts
        .iter()
        .flat_map(|c| c.iter())
        .copied()
        .max()
        .unwrap_or(0) as f64
        * per_sec;
    let top = ticks(0.0, max.max(1.0), 5.0)
        .last()
        .copied()
        .unwrap_or(1.0)
        .max(max)
        .max(1.0);
    let bottom = HEIGHT - BOTTOM;
    let y_of = |v: f64| bottom - v / top * (bottom - TOP);
    let mut out = String::new();
    open_svg(
        &mut out,
        "throughput",
        "Completed operations per second by outcome",
    );
    shade_windows(
        &mut out,
        &data.windows,
        x_of,
        (LEFT, WIDTH - RIGHT),
        (TOP, bottom),
    );
    for v in ticks(0.0, top, 5.0) {
        let y = y_of(v);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    x_axis(&mut out, data, x_of);
    for (rank, outcome) in ["ok", "fail", "info"].iter().enumerate() {
        let total: u64 = counts.iter().map(|c| c[rank]).sum();
        if total == 0 {
            continue;
        }
        let mut d = String::new();
        for (b, c) in counts.iter().enumerate() {
            let x0 = x_of(b as f64 * bucket);
            let x1 = x_of(((b + 1) as f64 * bucket).min(span));
            let y = y_of(c[rank] as f64 * per_sec);
            let _ = write!(
                d,
                "{}{x0:.1} {y:.1}H{x1:.1}",
                if b == 0 { "M" } else { "L" }
            );
        }
        let _ = write!(
            out,
            r#"<path class="rate {outcome}" d="{d}"><title>{outcome}: {total} operations</title></path>"#
        );
    }
    let _ = write!(
        out,
        r#"<text class="axis-title" x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">ops/s ({} buckets)</text></svg>"#,
        (TOP + bottom) / 2.0,
        (TOP + bottom) / 2.0,
        duration_label(bucket)
    );
    out
}
