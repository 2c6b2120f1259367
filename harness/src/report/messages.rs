//! The message sequence diagram of a simulated run: one vertical line per node (and one for the
//! clients), one arrow per message in a window around the first failure, faults marked.
//!
//! `messages.jsonl` can be far larger than the report may be, so it is streamed and only the
//! drawn window is kept; it is sorted by send time, so reading stops after the window.

use super::data::{FaultWindow, ReportData, fault_class, truncate};
use super::svg::{duration_label, esc, ticks, time_label};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::io::BufRead;
use std::path::Path;

/// At most this many arrows are drawn.
pub const MAX_ARROWS: usize = 240;
/// Arrows are labelled with their type when there are at most this many.
const LABEL_ARROWS: usize = 30;
const WIDTH: f64 = 960.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 46.0;
const MS: u64 = 1_000_000;

/// One line of `messages.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub sent_ns: u64,
    pub delivered_ns: Option<u64>,
    pub from: String,
    pub to: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub fate: String,
}

/// Message types get these colour classes, in order of first appearance; the rest share the
/// last.
const TYPE_CLASSES: usize = 6;

#[derive(Debug, Clone, Serialize)]
pub struct MessageType {
    pub class: String,
    pub name: String,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessagesView {
    pub svg: String,
    pub caption: String,
    pub types: Vec<MessageType>,
    /// Faults in force at some point of the window.
    pub faults: Vec<String>,
}

/// The send time of a `{"sent_ns":N,...}` line without parsing the rest of it.
fn quick_sent_ns(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("{\"sent_ns\":")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..digits].parse().ok()
}

/// How far out of send order a trace may be (a relay between real processes records messages
/// as they reach it): reading starts this much early and stops this much late.
const DISORDER_NS: u64 = 1_000_000_000;

/// Messages sent in `[from, to]`, read from a trace sorted (near enough) by send time.
fn read_window(path: &Path, from: u64, to: u64) -> std::io::Result<Vec<Message>> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let start = seek_before(&mut file, from.saturating_sub(DISORDER_NS))?;
    file.seek(SeekFrom::Start(start))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut bytes = Vec::new();
    if start > 0 {
        // Mid-line: the rest of this line belongs to a message before the window.
        reader.read_until(b'\n', &mut bytes)?;
    }
    let mut out = Vec::new();
    loop {
        bytes.clear();
        if reader.read_until(b'\n', &mut bytes)? == 0 {
            break;
        }
        let Ok(line) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let sent = match quick_sent_ns(line) {
            Some(s) => s,
            None => match serde_json::from_str::<Message>(line) {
                Ok(m) => m.sent_ns,
                Err(_) => continue,
            },
        };
        if sent > to.saturating_add(DISORDER_NS) {
            break;
        }
        if sent < from || sent > to {
            continue;
        }
        if let Ok(m) = serde_json::from_str::<Message>(line) {
            out.push(m);
        }
    }
    Ok(out)
}

/// A byte offset at or before the first line sent at `from` or later, found by bisecting the
/// file (it is sorted by send time), so a large trace is not read from its start.
fn seek_before(file: &mut std::fs::File, from: u64) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    const CLOSE_ENOUGH: u64 = 1 << 16;
    let (mut lo, mut hi) = (0u64, file.metadata()?.len());
    while hi - lo > CLOSE_ENOUGH {
        let mid = lo + (hi - lo) / 2;
        file.seek(SeekFrom::Start(mid))?;
        let mut reader = std::io::BufReader::with_capacity(4096, &mut *file);
        let mut bytes = Vec::new();
        reader.read_until(b'\n', &mut bytes)?;
        bytes.clear();
        reader.read_until(b'\n', &mut bytes)?;
        match std::str::from_utf8(&bytes).ok().and_then(quick_sent_ns) {
            Some(sent) if sent < from => lo = mid,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// `n2` < `n10`: names compared by their text, then numeric suffix.
fn node_order(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, num) = name.split_at(name.len() - digits);
    (stem.to_string(), num.parse().unwrap_or(0))
}

/// The window to draw: around the failing operation, else around the first fault.
fn centre(data: &ReportData) -> (u64, u64, String) {
    if let Some(focus) = &data.focus {
        let op = &data.ops[focus.op];
        let end = op.end_or(data.end);
        return (
            op.start,
            end,
            format!("around op {}", op.complete_index.unwrap_or(op.invoke_index)),
        );
    }
    let first_fault = data
        .windows
        .iter()
        .map(|w| w.start)
        .chain(data.markers.iter().map(|m| m.time))
        .min();
    match first_fault {
        Some(t) => (t, t + 20 * MS, "around the first fault".into()),
        None => (0, 50 * MS, "at the start of the run".into()),
    }
}

/// The diagram, or `None` when there is no trace (or the history has no timestamps).
pub fn diagram(data: &ReportData, trace: &Path, nodes: &[String]) -> Option<MessagesView> {
    // No trace, or an empty one (a run whose runtime records none): nothing to draw.
    let recorded = std::fs::metadata(trace).is_ok_and(|m| m.is_file() && m.len() > 0);
    if data.axis != super::data::Axis::Nanos || !recorded {
        return None;
    }
    let (a, b, why) = centre(data);
    let pad = ((b - a) / 10).max(20 * MS);
    let mut messages = read_window(trace, a.saturating_sub(pad), b + pad).ok()?;
    let in_window = messages.len();
    // Too many: keep those sent closest to the moment the failing operation returned.
    if messages.len() > MAX_ARROWS {
        messages.sort_by_key(|m| m.sent_ns.abs_diff(b));
        messages.truncate(MAX_ARROWS);
    }
    messages.sort_by_key(|m| m.sent_ns);
    let mut node_set: BTreeSet<String> = nodes.iter().cloned().collect();
    for m in &messages {
        node_set.insert(m.from.clone());
        node_set.insert(m.to.clone());
    }
    let mut node_list: Vec<String> = node_set.into_iter().collect();
    node_list.sort_by_key(|n| node_order(n));
    if node_list.is_empty() {
        return None;
    }

    let typical_latency = {
        let delivered: Vec<u64> = messages
            .iter()
            .filter_map(|m| m.delivered_ns.map(|d| d - m.sent_ns))
            .collect();
        if delivered.is_empty() {
            2 * MS
        } else {
            delivered.iter().sum::<u64>() / delivered.len() as u64
        }
    };
    // The window spans the sends drawn; a message held up (by a pause, say) past its end is
    // drawn to the bottom edge rather than stretching the picture.
    let (mut w0, mut w1) = match (messages.first(), messages.last()) {
        (Some(first), Some(last)) => (first.sent_ns, last.sent_ns + 2 * typical_latency),
        _ => (a.saturating_sub(pad), b + pad),
    };
    if messages.len() < MAX_ARROWS {
        // Room to spare: show the whole failing operation.
        w0 = w0.min(a.saturating_sub(MS));
        w1 = w1.max(b + MS);
    }
    w1 = w1.max(w0 + MS);
    let height = (messages.len() as f64 * 7.0).clamp(420.0, 1500.0);
    let bottom = TOP + height;
    let y_of = |t: u64| TOP + (t.saturating_sub(w0)) as f64 / (w1 - w0) as f64 * height;
    let clients_x = LEFT;
    let step = (WIDTH - LEFT - RIGHT) / node_list.len() as f64;
    let node_x = |n: &str| {
        let i = node_list.iter().position(|m| m == n).unwrap_or(0);
        LEFT + step * (i as f64 + 1.0) - step / 2.0 + 20.0
    };

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="messages" viewBox="0 0 {WIDTH} {:.0}" role="img" aria-label="Messages between nodes around the first failure" xmlns="http://www.w3.org/2000/svg"><defs><marker id="msg-head" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L8 4 0 8z" class="head"/></marker></defs>"#,
        bottom + 20.0
    );
    // Faults in force during the window.
    let visible = |w: &FaultWindow| w.start <= w1 && w.end >= w0;
    for w in data.windows.iter().filter(|w| visible(w)) {
        let y0 = y_of(w.start.max(w0));
        let y1 = y_of(w.end.min(w1)).max(y0 + 2.0);
        let class = fault_class(&w.kind);
        if w.nodes.is_empty() {
            let _ = write!(
                out,
                r#"<rect class="fault {class}" x="{LEFT}" y="{y0:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
                WIDTH - LEFT - RIGHT + 20.0,
                y1 - y0,
                esc(&w.label)
            );
        } else {
            for n in w.nodes.iter().filter(|n| node_list.contains(n)) {
                let x = node_x(n);
                let _ = write!(
                    out,
                    r#"<rect class="fault {class} node-fault" x="{:.1}" y="{y0:.1}" width="14" height="{:.1}"><title>{} ({n})</title></rect>"#,
                    x - 7.0,
                    y1 - y0,
                    esc(&w.label)
                );
            }
        }
    }
    // Time ticks.
    for t in ticks(w0 as f64, w1 as f64, 10.0) {
        let y = y_of(t as u64);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 4.0,
            WIDTH - RIGHT + 20.0,
            LEFT - 8.0,
            y + 4.0,
            esc(&time_label(data.axis, t, (w1 - w0) as f64))
        );
    }
    // Lifelines.
    let _ = write!(
        out,
        r#"<line class="lifeline clients" x1="{clients_x}" y1="{TOP}" x2="{clients_x}" y2="{bottom:.1}"/><text class="node-name" x="{clients_x}" y="{:.1}" text-anchor="middle">clients</text>"#,
        TOP - 18.0
    );
    for n in &node_list {
        let x = node_x(n);
        let _ = write!(
            out,
            r#"<line class="lifeline" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom:.1}"/><text class="node-name" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP - 18.0,
            esc(n)
        );
    }
    // Fault operations inside the window, as labelled lines.
    let starts = data
        .windows
        .iter()
        .map(|w| (w.start, &w.label, fault_class(&w.kind)));
    let marks = data.markers.iter().map(|m| (m.time, &m.label, "other"));
    for (t, label, class) in starts.chain(marks).filter(|(t, _, _)| *t >= w0 && *t <= w1) {
        let y = y_of(t);
        let _ = write!(
            out,
            r#"<g class="fault-line {class}"><line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">⚡ {}</text></g>"#,
            WIDTH - RIGHT + 20.0,
            WIDTH - RIGHT + 18.0,
            y - 3.0,
            esc(label)
        );
    }
    // Messages, coloured by type.
    let mut types: Vec<MessageType> = Vec::new();
    for m in &messages {
        match types.iter_mut().find(|t| t.name == m.kind) {
            Some(t) => t.count += 1,
            None => types.push(MessageType {
                class: format!("t{}", types.len().min(TYPE_CLASSES - 1)),
                name: m.kind.clone(),
                count: 1,
            }),
        }
    }
    let label_arrows = messages.len() <= LABEL_ARROWS;
    for m in &messages {
        let type_class = types
            .iter()
            .find(|t| t.name == m.kind)
            .map_or("t0", |t| t.class.as_str());
        let (x0, y0) = (node_x(&m.from), y_of(m.sent_ns));
        let x_to = node_x(&m.to);
        let title = match m.delivered_ns {
            Some(d) => format!(
                "{} → {} {} · sent {} · delivered after {}",
                m.from,
                m.to,
                m.kind,
                time_label(data.axis, m.sent_ns as f64, 1.0),
                duration_label((d - m.sent_ns) as f64)
            ),
            None => format!(
                "{} → {} {} · sent {} · {}",
                m.from,
                m.to,
                m.kind,
                time_label(data.axis, m.sent_ns as f64, 1.0),
                m.fate
            ),
        };
        match m.delivered_ns {
            Some(d) => {
                let late = d > w1;
                let (x1, y1) = if late {
                    // Cut at the bottom edge, where the line would cross it.
                    let f = (w1 - m.sent_ns) as f64 / (d - m.sent_ns).max(1) as f64;
                    (x0 + (x_to - x0) * f, bottom)
                } else {
                    (x_to, y_of(d))
                };
                let _ = write!(
                    out,
                    r#"<g class="msg delivered {type_class}{}"><line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}"{}/><title>{}</title></g>"#,
                    if late { " late" } else { "" },
                    if late {
                        ""
                    } else {
                        r#" marker-end="url(#msg-head)""#
                    },
                    esc(&title)
                );
                if label_arrows {
                    let _ = write!(
                        out,
                        r#"<text class="msg-label" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                        (x0 + x1) / 2.0,
                        (y0 + y1) / 2.0 - 2.0,
                        esc(&truncate(&m.kind, 22))
                    );
                }
            }
            None => {
                // Undelivered: the arrow stops part way and ends in a cross.
                let x1 = x0 + (x_to - x0) * 0.6;
                let y1 = y_of(m.sent_ns + typical_latency).max(y0 + 6.0);
                let fate = match m.fate.as_str() {
                    "cut" | "dead" => m.fate.as_str(),
                    _ => "lost",
                };
                let _ = write!(
                    out,
                    r#"<g class="msg {fate} {type_class}"><line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}"/><path class="cross" d="M{:.1} {:.1}l8 8m0-8l-8 8"/><title>{}</title></g>"#,
                    x1 - 4.0,
                    y1 - 4.0,
                    esc(&title)
                );
            }
        }
    }
    // The failing operation (and the ones named with it) as client requests and replies.
    if let Some(focus) = &data.focus {
        let named = std::iter::once((focus.op, "failing"))
            .chain(focus.previous_ok.map(|p| (p, "previous")))
            .chain(focus.concurrent.iter().map(|&c| (c, "concurrent")));
        for (i, class) in named {
            let o = &data.ops[i];
            let Some(node) = o.node.filter(|n| node_list.iter().any(|m| m == n)) else {
                continue;
            };
            let end = o.end_or(data.end);
            if end < w0 || o.start > w1 {
                continue;
            }
            let x = node_x(node);
            let text = esc(&truncate(&o.describe(), 60));
            if o.start >= w0 {
                let y = y_of(o.start);
                let _ = write!(
                    out,
                    r#"<g class="client {class}"><line x1="{clients_x}" y1="{y:.1}" x2="{x:.1}" y2="{y:.1}" marker-end="url(#msg-head)"/><text x="{:.1}" y="{:.1}">{text}</text><title>invoke: {text}</title></g>"#,
                    clients_x + 4.0,
                    y - 3.0
                );
            }
            if o.end.is_some() && end <= w1 {
                let y = y_of(end);
                let _ = write!(
                    out,
                    r#"<g class="client {class}"><line x1="{x:.1}" y1="{y:.1}" x2="{clients_x}" y2="{y:.1}" marker-end="url(#msg-head)"/><text x="{:.1}" y="{:.1}">{text}</text><title>complete: {text}</title></g>"#,
                    clients_x + 4.0,
                    y + 12.0
                );
            }
        }
    }
    out.push_str("</svg>");
    let shown = messages.len();
    let caption = format!(
        "{why}: {shown} of {in_window} messages sent between {} and {} ({}){}",
        time_label(data.axis, w0 as f64, (w1 - w0) as f64),
        time_label(data.axis, w1 as f64, (w1 - w0) as f64),
        duration_label((w1 - w0) as f64),
        if shown < in_window {
            format!(", the {shown} sent closest to the failing operation's completion")
        } else {
            String::new()
        }
    );
    let faults = data
        .windows
        .iter()
        .filter(|w| visible(w))
        .map(|w| w.label.clone())
        .chain(
            data.markers
                .iter()
                .filter(|m| m.time >= w0 && m.time <= w1)
                .map(|m| m.label.clone()),
        )
        .collect();
    Some(MessagesView {
        svg: out,
        caption,
        types,
        faults,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_time_is_read_from_the_line_prefix() {
        assert_eq!(
            quick_sent_ns(r#"{"sent_ns":181313917,"delivered_ns":null}"#),
            Some(181313917)
        );
        assert_eq!(quick_sent_ns(r#"{"from":"n1"}"#), None);
    }

    #[test]
    fn a_window_is_read_from_the_middle_of_a_large_trace() {
        let dir = std::env::temp_dir().join(format!("verity-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("messages.jsonl");
        let mut text = String::new();
        for i in 0..50_000u64 {
            text.push_str(&format!(
                "{{\"sent_ns\":{},\"delivered_ns\":null,\"from\":\"n1\",\"to\":\"n2\",\"type\":\"m\",\"fate\":\"lost\"}}\n",
                i * 1000
            ));
        }
        std::fs::write(&path, text).unwrap();
        let window = read_window(&path, 20_000_000, 20_010_000).unwrap();
        let sent: Vec<u64> = window.iter().map(|m| m.sent_ns).collect();
        assert_eq!(
            sent,
            (20_000..=20_010).map(|i| i * 1000).collect::<Vec<_>>()
        );
        assert!(
            read_window(&path, 90_000_000_000, 91_000_000_000)
                .unwrap()
                .is_empty()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn nodes_sort_naturally() {
        let mut v = vec!["n10", "n2", "n1"];
        v.sort_by_key(|n| node_order(n));
        assert_eq!(v, vec!["n1", "n2", "n10"]);
    }
}
