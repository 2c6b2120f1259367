//! Small helpers shared by the server-drawn SVG figures: escaping, axis ticks, time labels.

use super::data::Axis;
use std::fmt::Write;

/// Escapes text for SVG/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A "nice" step (1, 2 or 5 × 10^k) giving at most about `target` intervals over `span`.
pub fn nice_step(span: f64, target: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / target.max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let m = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// Tick positions from `lo` to `hi` with a nice step.
pub fn ticks(lo: f64, hi: f64, target: f64) -> Vec<f64> {
    let step = nice_step(hi - lo, target);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 && out.len() < 1000 {
        out.push(t);
        t += step;
    }
    out
}

/// A time on the report's axis as a label: seconds for nanosecond axes, `#n` for index axes.
pub fn time_label(axis: Axis, t: f64, span: f64) -> String {
    match axis {
        Axis::Index => format!("#{}", t.round() as i64),
        Axis::Nanos => {
            let secs = t / 1e9;
            let decimals = if span >= 10e9 {
                0
            } else if span >= 1e9 {
                1
            } else if span >= 100e6 {
                2
            } else {
                3
            };
            format!("{secs:.decimals$} s")
        }
    }
}

/// A duration in nanoseconds, readably: `850 µs`, `12.3 ms`, `1.20 s`.
pub fn duration_label(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns < 1e9 {
        let ms = ns / 1e6;
        if ms < 10.0 {
            format!("{ms:.1} ms")
        } else {
            format!("{ms:.0} ms")
        }
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// Appends `<rect>`s shading fault windows over a plot area `[x0, x1] × [y0, y1]`.
pub fn shade_windows(
    out: &mut String,
    windows: &[super::data::FaultWindow],
    x_of: impl Fn(f64) -> f64,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) {
    for w in windows {
        let a = x_of(w.start as f64).clamp(x0, x1);
        let b = x_of(w.end as f64).clamp(x0, x1).max(a + 1.0);
        let _ = write!(
            out,
            r#"<rect class="fault {cls}" x="{a:.1}" y="{y0:.1}" width="{w:.1}" height="{h:.1}"><title>{title}</title></rect>"#,
            cls = super::data::fault_class(&w.kind),
            w = b - a,
            h = y1 - y0,
            title = esc(&w.label),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_nice() {
        assert_eq!(nice_step(60.0, 6.0), 10.0);
        assert_eq!(nice_step(7.0, 10.0), 1.0);
        assert_eq!(nice_step(1.3, 6.0), 0.5);
        assert_eq!(ticks(0.0, 60.0, 6.0).len(), 7);
    }

    #[test]
    fn labels_read_well() {
        assert_eq!(duration_label(850_000.0), "850 µs");
        assert_eq!(duration_label(12_300_000.0), "12 ms");
        assert_eq!(duration_label(1_200_000_000.0), "1.20 s");
        assert_eq!(time_label(Axis::Nanos, 12.4e9, 60e9), "12 s");
        assert_eq!(time_label(Axis::Index, 12.0, 60.0), "#12");
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
