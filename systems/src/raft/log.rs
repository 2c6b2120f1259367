//! The in-memory Raft log: entries indexed from 1, with index 0 as the empty prefix (term 0).

use super::messages::Entry;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Log {
    /// `entries[i - 1]` holds index `i`.
    entries: Vec<Entry>,
}

impl Log {
    pub fn new() -> Self {
        Log::default()
    }

    pub fn from_entries(entries: Vec<Entry>) -> Self {
        Log { entries }
    }

    pub fn last_index(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn last_term(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.term)
    }

    /// The term of the entry at `index`; index 0 has term 0; `None` past the end.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        self.get(index).map(|e| e.term)
    }

    pub fn get(&self, index: u64) -> Option<&Entry> {
        let position = usize::try_from(index.checked_sub(1)?).ok()?;
        self.entries.get(position)
    }

    /// Appends one entry and returns its index.
    pub fn append(&mut self, entry: Entry) -> u64 {
        self.entries.push(entry);
        self.last_index()
    }

    /// Removes the entry at `index` and everything after it.
    pub fn truncate_from(&mut self, index: u64) {
        let keep = usize::try_from(index.saturating_sub(1)).unwrap_or(usize::MAX);
        self.entries.truncate(keep);
    }

    /// Up to `max` entries starting at `from` (fewer at the end of the log).
    pub fn slice(&self, from: u64, max: usize) -> &[Entry] {
        let start = usize::try_from(from.max(1) - 1).unwrap_or(usize::MAX);
        let start = start.min(self.entries.len());
        let end = start.saturating_add(max).min(self.entries.len());
        &self.entries[start..end]
    }

    /// The first index of the run of entries that share the term of the entry at `index`
    /// (used to skip a whole conflicting term at once when a follower rejects an append).
    pub fn first_index_of_term_at(&self, index: u64) -> u64 {
        let Some(term) = self.term_at(index) else {
            return index;
        };
        let mut first = index;
        while first > 1 && self.term_at(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }

    /// Raft's election restriction: a log ending at (`last_index`, `last_term`) is at least as
    /// up to date as this one.
    pub fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of_terms(terms: &[u64]) -> Log {
        Log::from_entries(terms.iter().map(|&t| Entry::noop(t)).collect())
    }

    #[test]
    fn indexes_from_one() {
        let log = log_of_terms(&[1, 1, 2]);
        assert_eq!(log.last_index(), 3);
        assert_eq!(log.last_term(), 2);
        assert_eq!(log.term_at(0), Some(0));
        assert_eq!(log.term_at(3), Some(2));
        assert_eq!(log.term_at(4), None);
        assert_eq!(Log::new().last_term(), 0);
    }

    #[test]
    fn slices_and_truncates() {
        let mut log = log_of_terms(&[1, 1, 2, 3, 3]);
        assert_eq!(log.slice(2, 2).len(), 2);
        assert_eq!(log.slice(5, 10).len(), 1);
        assert!(log.slice(6, 10).is_empty());
        assert!(log.slice(100, 10).is_empty());
        log.truncate_from(3);
        assert_eq!(log.last_index(), 2);
        log.truncate_from(0);
        assert_eq!(log.last_index(), 0);
    }

    #[test]
    fn finds_first_index_of_a_term() {
        let log = log_of_terms(&[1, 2, 2, 2, 3]);
        assert_eq!(log.first_index_of_term_at(4), 2);
        assert_eq!(log.first_index_of_term_at(1), 1);
        assert_eq!(log.first_index_of_term_at(9), 9);
    }

    #[test]
    fn up_to_date_compares_last_term_then_length() {
        let log = log_of_terms(&[1, 2, 2]);
        assert!(log.is_up_to_date(3, 2));
        assert!(log.is_up_to_date(1, 3));
        assert!(!log.is_up_to_date(2, 2));
        assert!(!log.is_up_to_date(10, 1));
    }
}
