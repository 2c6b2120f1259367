//! Raft's durable state through `ctx.disk_*`: the hard state (term and vote) in one small file,
//! and the log in fixed-size segments, so an append rewrites only the tail segment.
//!
//! Files (no directories, so every runtime can store them flat):
//! - `<prefix>.state`: `{"term": T, "voted_for": "n2" | null}`;
//! - `<prefix>.log.<segment>`: JSON Lines `{"i": index, "t": term, "c": command}` for indices
//!   `segment * SEGMENT_ENTRIES + 1 ..`. The disk cannot delete files, so a truncation writes the
//!   segments past the new end as empty files; recovery reads segments until an empty, missing
//!   or partial one.

use super::log::Log;
use super::messages::{Command, Entry};
use crate::node::{Context, NodeId};
use serde::{Deserialize, Serialize};

/// Entries per log segment: small enough that rewriting the tail segment per append is cheap.
pub const SEGMENT_ENTRIES: u64 = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct HardState {
    term: u64,
    voted_for: Option<NodeId>,
}

#[derive(Serialize)]
struct DiskEntryRef<'a> {
    i: u64,
    t: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<&'a Command>,
}

#[derive(Deserialize)]
struct DiskEntry {
    i: u64,
    t: u64,
    #[serde(default)]
    c: Option<Command>,
}

/// What `on_start` finds on disk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovered {
    pub term: u64,
    pub voted_for: Option<NodeId>,
    pub log: Log,
    /// Recovery staged writes (cleanup of stale segments) that need a sync.
    pub needs_sync: bool,
}

/// The tail segment's bytes as last written, so the next append only adds lines.
#[derive(Debug, Clone)]
struct TailSegment {
    segment: u64,
    bytes: Vec<u8>,
    last_index: u64,
}

#[derive(Debug, Clone)]
pub struct Storage {
    prefix: String,
    /// Every log index past this one has an empty or missing segment on disk.
    written_last: u64,
    tail: Option<TailSegment>,
}

fn segment_of(index: u64) -> u64 {
    (index.max(1) - 1) / SEGMENT_ENTRIES
}

fn segment_start(segment: u64) -> u64 {
    segment * SEGMENT_ENTRIES + 1
}

fn push_line(bytes: &mut Vec<u8>, index: u64, entry: &Entry) {
    let line = DiskEntryRef {
        i: index,
        t: entry.term,
        c: entry.command.as_ref(),
    };
    // Serializing plain data to a Vec cannot fail.
    if serde_json::to_writer(&mut *bytes, &line).is_ok() {
        bytes.push(b'\n');
    }
}

impl Storage {
    pub fn new(prefix: &str) -> Self {
        Storage {
            prefix: prefix.to_string(),
            written_last: 0,
            tail: None,
        }
    }

    pub fn state_file(&self) -> String {
        format!("{}.state", self.prefix)
    }

    pub fn segment_file(&self, segment: u64) -> String {
        format!("{}.log.{segment:06}", self.prefix)
    }

    /// Reads the hard state and the longest well-formed log prefix from the synced disk, and
    /// stages empty contents for stale segments past it so they can never be read back.
    pub fn recover(&mut self, ctx: &mut Context) -> Recovered {
        let mut recovered = Recovered::default();
        if let Some(bytes) = ctx.disk_read(&self.state_file())
            && let Ok(state) = serde_json::from_slice::<HardState>(bytes)
        {
            recovered.term = state.term;
            recovered.voted_for = state.voted_for;
        }
        let mut entries = Vec::new();
        let mut segment = 0;
        while let Some(bytes) = ctx.disk_read(&self.segment_file(segment)) {
            let before = entries.len();
            for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                match serde_json::from_slice::<DiskEntry>(line) {
                    Ok(e) if e.i == entries.len() as u64 + 1 => entries.push(Entry {
                        term: e.t,
                        command: e.c,
                    }),
                    // A torn or foreign line ends the log.
                    _ => break,
                }
            }
            let read = (entries.len() - before) as u64;
            segment += 1;
            if read < SEGMENT_ENTRIES {
                break;
            }
        }
        // `segment` is now the first segment past the recovered log: empty any stale ones.
        while ctx
            .disk_read(&self.segment_file(segment))
            .is_some_and(|b| !b.is_empty())
        {
            ctx.disk_write(&self.segment_file(segment), Vec::new());
            recovered.needs_sync = true;
            segment += 1;
        }
        recovered.log = Log::from_entries(entries);
        self.written_last = recovered.log.last_index();
        self.tail = None;
        recovered
    }

    pub fn write_hard_state(&self, ctx: &mut Context, term: u64, voted_for: Option<&str>) {
        let state = HardState {
            term,
            voted_for: voted_for.map(str::to_string),
        };
        let bytes = serde_json::to_vec(&state).unwrap_or_default();
        ctx.disk_write(&self.state_file(), bytes);
    }

    /// Stages the log from `dirty_from` on (every index before it is already on disk): rewrites
    /// the segments from the one holding `dirty_from` to the last, and empties the segments
    /// past the end that a truncation left behind. The caller syncs.
    pub fn write_log(&mut self, ctx: &mut Context, log: &Log, dirty_from: u64) {
        let last = log.last_index();
        if last >= 1 {
            for segment in segment_of(dirty_from)..=segment_of(last) {
                let start = segment_start(segment);
                let end = (start + SEGMENT_ENTRIES - 1).min(last);
                let mut tail = match self.tail.take() {
                    // The cached bytes are still a valid prefix of this segment: extend them.
                    Some(t)
                        if t.segment == segment
                            && t.last_index < dirty_from
                            && t.last_index < end =>
                    {
                        t
                    }
                    _ => TailSegment {
                        segment,
                        bytes: Vec::new(),
                        last_index: start - 1,
                    },
                };
                for index in tail.last_index + 1..=end {
                    if let Some(entry) = log.get(index) {
                        push_line(&mut tail.bytes, index, entry);
                    }
                }
                tail.last_index = end;
                ctx.disk_write(&self.segment_file(segment), tail.bytes.clone());
                self.tail = Some(tail);
            }
        }
        let first_stale = if last == 0 { 0 } else { segment_of(last) + 1 };
        if self.written_last >= 1 {
            for segment in first_stale..=segment_of(self.written_last) {
                ctx.disk_write(&self.segment_file(segment), Vec::new());
                if self.tail.as_ref().is_some_and(|t| t.segment == segment) {
                    self.tail = None;
                }
            }
        }
        self.written_last = last;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Clocks, DiskImage, Effect};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    /// Runs `f` with a context over `disk`, then applies its disk effects as a sync would.
    fn with_disk<R>(disk: &mut DiskImage, f: impl FnOnce(&mut Context) -> R) -> R {
        with_disk_counting(disk, f).0
    }

    /// Like `with_disk`, also counting the files written.
    fn with_disk_counting<R>(
        disk: &mut DiskImage,
        f: impl FnOnce(&mut Context) -> R,
    ) -> (R, usize) {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let peers = vec![];
        let clocks = Clocks {
            wall_clock_ns: 0,
            monotonic_ns: 0,
            epsilon_ns: 0,
        };
        let snapshot = disk.clone();
        let mut ctx = Context::new("n1", &peers, clocks, &mut rng, &snapshot);
        let result = f(&mut ctx);
        let mut written = 0;
        for effect in ctx.into_effects() {
            if let Effect::DiskWrite { file, bytes } = effect {
                disk.insert(file, bytes);
                written += 1;
            }
        }
        (result, written)
    }

    fn entries(terms: impl IntoIterator<Item = u64>) -> Vec<Entry> {
        terms
            .into_iter()
            .enumerate()
            .map(|(i, t)| Entry::command(t, &json!({"n": i})))
            .collect()
    }

    #[test]
    fn hard_state_and_log_survive_recovery() {
        let mut disk = DiskImage::new();
        let mut storage = Storage::new("raft");
        let log = Log::from_entries(entries((0..150).map(|i| 1 + i / 50)));
        with_disk(&mut disk, |ctx| {
            storage.write_hard_state(ctx, 4, Some("n3"));
            storage.write_log(ctx, &log, 1);
        });
        assert_eq!(disk.len(), 1 + 3, "one state file and three segments");
        let recovered = with_disk(&mut disk, |ctx| Storage::new("raft").recover(ctx));
        assert_eq!(recovered.term, 4);
        assert_eq!(recovered.voted_for.as_deref(), Some("n3"));
        assert_eq!(recovered.log, log);
        assert!(!recovered.needs_sync);
    }

    #[test]
    fn appends_rewrite_only_the_tail_segment() {
        let mut disk = DiskImage::new();
        let mut storage = Storage::new("raft");
        let mut log = Log::from_entries(entries((0..SEGMENT_ENTRIES + 3).map(|_| 1)));
        with_disk(&mut disk, |ctx| storage.write_log(ctx, &log, 1));
        log.append(Entry::noop(2));
        let ((), written) = with_disk_counting(&mut disk, |ctx| {
            storage.write_log(ctx, &log, log.last_index())
        });
        assert_eq!(written, 1);
        let recovered = with_disk(&mut disk, |ctx| Storage::new("raft").recover(ctx));
        assert_eq!(recovered.log, log);
    }

    #[test]
    fn truncation_empties_stale_segments() {
        let mut disk = DiskImage::new();
        let mut storage = Storage::new("raft");
        let mut log = Log::from_entries(entries((0..3 * SEGMENT_ENTRIES).map(|_| 1)));
        with_disk(&mut disk, |ctx| storage.write_log(ctx, &log, 1));
        // A conflicting leader replaces everything from index 10 with two entries of term 2.
        log.truncate_from(10);
        log.append(Entry::noop(2));
        log.append(Entry::noop(2));
        with_disk(&mut disk, |ctx| storage.write_log(ctx, &log, 10));
        let recovered = with_disk(&mut disk, |ctx| Storage::new("raft").recover(ctx));
        assert_eq!(recovered.log, log);
        // Truncating exactly at a segment boundary.
        log.truncate_from(1);
        with_disk(&mut disk, |ctx| storage.write_log(ctx, &log, 1));
        let recovered = with_disk(&mut disk, |ctx| Storage::new("raft").recover(ctx));
        assert_eq!(recovered.log.last_index(), 0);
    }

    #[test]
    fn a_torn_tail_is_cut_and_stale_segments_are_emptied() {
        let mut disk = DiskImage::new();
        let mut storage = Storage::new("raft");
        let log = Log::from_entries(entries((0..2 * SEGMENT_ENTRIES + 5).map(|_| 1)));
        with_disk(&mut disk, |ctx| storage.write_log(ctx, &log, 1));
        let middle = disk.get_mut("raft.log.000001").unwrap();
        middle.truncate(middle.len() / 2);
        let mut storage = Storage::new("raft");
        let recovered = with_disk(&mut disk, |ctx| storage.recover(ctx));
        assert!(recovered.log.last_index() > SEGMENT_ENTRIES);
        assert!(recovered.log.last_index() < 2 * SEGMENT_ENTRIES);
        assert!(recovered.needs_sync);
        assert_eq!(disk["raft.log.000002"], Vec::<u8>::new());
        assert_eq!(storage.written_last, recovered.log.last_index());
    }

    #[test]
    fn garbage_on_disk_recovers_as_empty() {
        let mut disk = DiskImage::new();
        disk.insert("raft.state".into(), b"{not json".to_vec());
        disk.insert("raft.log.000000".into(), b"\xff\xfe".to_vec());
        let recovered = with_disk(&mut disk, |ctx| Storage::new("raft").recover(ctx));
        assert_eq!(recovered.term, 0);
        assert_eq!(recovered.log.last_index(), 0);
    }
}
