//! Per-key causality with dotted version vectors (Preguiça, Baquero, Almeida et al.).
//!
//! An [`Object`] is what a replica stores for a key: the siblings (concurrent values), each
//! tagged with the *dot* `(node, counter)` of the write that created it, and a version vector,
//! the *causal context*, naming every dot the object has seen: `{n1: 3}` means the writes
//! `(n1, 1)`, `(n1, 2)` and `(n1, 3)`. A dot the context covers but that is not a sibling was
//! superseded. Merging keeps a sibling unless the other side has seen its dot and dropped it,
//! so merging is commutative, associative and idempotent, and replicas converge whatever the
//! order in which they exchange objects.
//!
//! A write carries the context its client read. The coordinator discards the siblings that
//! context covers (the client saw them and replaces them), joins the context, and adds the new
//! value with the next dot of its own node id. Because a node only mints dots from its own
//! stored object, which holds every dot it ever minted for the key (persisted before anything
//! is sent), its counters per key are contiguous and never reused.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A version vector: node (or, with the `client-ids` bug, client) → highest counter seen.
pub type VersionVector = BTreeMap<String, u64>;

/// One write event: the id that minted it and its counter. Serialized as `["n1", 3]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dot(pub String, pub u64);

/// A concurrent value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sibling {
    pub dot: Dot,
    pub value: Value,
    /// The minting coordinator's wall clock (only the `lww` bug looks at it).
    pub ts: i64,
}

/// A key's stored state: siblings (sorted by dot) and the causal context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Object {
    pub context: VersionVector,
    pub siblings: Vec<Sibling>,
}

/// Whether `vv` has seen `dot`.
pub fn covers(vv: &VersionVector, dot: &Dot) -> bool {
    vv.get(&dot.0).is_some_and(|&c| c >= dot.1)
}

/// Whether `a` has seen everything `b` has (`a ≥ b` pointwise).
pub fn dominates(a: &VersionVector, b: &VersionVector) -> bool {
    b.iter()
        .all(|(id, &c)| c == 0 || a.get(id).is_some_and(|&mine| mine >= c))
}

/// Pointwise maximum, into `a`.
pub fn join(a: &mut VersionVector, b: &VersionVector) {
    for (id, &c) in b {
        let mine = a.entry(id.clone()).or_insert(0);
        *mine = (*mine).max(c);
    }
}

/// How a write picks its dot and what it replaces; the bugs are deliberate mistakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Minting {
    /// The coordinator's node id, next counter after everything its object has seen.
    #[default]
    PerNode,
    /// Bug `client-ids`: the client's id, next counter after the client's own context entry.
    PerClient,
}

impl Object {
    pub fn is_empty(&self) -> bool {
        self.siblings.is_empty() && self.context.is_empty()
    }

    /// The sibling values, in dot order.
    pub fn values(&self) -> Vec<Value> {
        self.siblings.iter().map(|s| s.value.clone()).collect()
    }

    fn has_dot(&self, dot: &Dot) -> bool {
        self.siblings.binary_search_by(|s| s.dot.cmp(dot)).is_ok()
    }

    /// Merges another replica's object into this one.
    pub fn merge(&mut self, other: &Object) {
        let mut siblings: Vec<Sibling> = self
            .siblings
            .iter()
            .filter(|s| other.has_dot(&s.dot) || !covers(&other.context, &s.dot))
            .cloned()
            .collect();
        // On the same dot (only possible when dots collide: the `client-ids` bug) ours wins.
        siblings.extend(
            other
                .siblings
                .iter()
                .filter(|s| !self.has_dot(&s.dot) && !covers(&self.context, &s.dot))
                .cloned(),
        );
        siblings.sort_by(|a, b| a.dot.cmp(&b.dot));
        self.siblings = siblings;
        join(&mut self.context, &other.context);
    }

    /// Applies a client's write: the siblings `client_context` covers are replaced by `value`,
    /// minted by `coordinator` (or by `client`, with [`Minting::PerClient`]). Returns its dot.
    pub fn write(
        &mut self,
        client_context: Option<&VersionVector>,
        value: Value,
        ts: i64,
        coordinator: &str,
        client: Option<&str>,
        minting: Minting,
    ) -> Dot {
        if let Some(ctx) = client_context {
            self.siblings.retain(|s| !covers(ctx, &s.dot));
            join(&mut self.context, ctx);
        }
        let dot = match (minting, client) {
            (Minting::PerClient, Some(client)) => {
                // The client's entry, as the client's context has it: a client that did not
                // read its own latest write reuses a counter.
                let counter = client_context
                    .and_then(|c| c.get(client))
                    .copied()
                    .unwrap_or(0)
                    + 1;
                Dot(client.to_string(), counter)
            }
            _ => {
                let counter = self.context.get(coordinator).copied().unwrap_or(0) + 1;
                Dot(coordinator.to_string(), counter)
            }
        };
        let sibling = Sibling {
            dot: dot.clone(),
            value,
            ts,
        };
        match self.siblings.binary_search_by(|s| s.dot.cmp(&dot)) {
            Ok(i) => self.siblings[i] = sibling,
            Err(i) => self.siblings.insert(i, sibling),
        }
        let seen = self.context.entry(dot.0.clone()).or_insert(0);
        *seen = (*seen).max(dot.1);
        dot
    }

    /// Bug `lww`: keeps only the sibling with the newest timestamp (ties: the larger dot).
    pub fn keep_newest(&mut self) {
        if let Some(newest) = self
            .siblings
            .iter()
            .max_by(|a, b| (a.ts, &a.dot).cmp(&(b.ts, &b.dot)))
            .cloned()
        {
            self.siblings = vec![newest];
        }
    }

    /// Same causal state: the same context and the same sibling dots.
    pub fn same_as(&self, other: &Object) -> bool {
        self.context == other.context
            && self.siblings.len() == other.siblings.len()
            && self
                .siblings
                .iter()
                .zip(&other.siblings)
                .all(|(a, b)| a.dot == b.dot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vv(entries: &[(&str, u64)]) -> VersionVector {
        entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn write(obj: &mut Object, ctx: Option<&VersionVector>, v: i64, node: &str) -> Dot {
        obj.write(ctx, json!(v), 0, node, None, Minting::PerNode)
    }

    #[test]
    fn a_write_replaces_exactly_what_its_context_covers() {
        let mut a = Object::default();
        write(&mut a, None, 1, "n1");
        let read = a.context.clone();
        // A concurrent write the client did not see.
        write(&mut a, None, 2, "n1");
        assert_eq!(a.values(), vec![json!(1), json!(2)]);
        write(&mut a, Some(&read), 3, "n1");
        assert_eq!(a.values(), vec![json!(2), json!(3)]);
        assert_eq!(a.context, vv(&[("n1", 3)]));
        let all = a.context.clone();
        write(&mut a, Some(&all), 4, "n2");
        assert_eq!(a.values(), vec![json!(4)]);
        assert_eq!(a.context, vv(&[("n1", 3), ("n2", 1)]));
    }

    #[test]
    fn concurrent_writes_on_two_replicas_merge_into_siblings() {
        let mut base = Object::default();
        write(&mut base, None, 1, "n1");
        let ctx = base.context.clone();
        let mut a = base.clone();
        let mut b = base.clone();
        write(&mut a, Some(&ctx), 2, "n1");
        write(&mut b, Some(&ctx), 3, "n2");
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba, "merge is commutative");
        assert_eq!(ab.values(), vec![json!(2), json!(3)]);
        assert_eq!(ab.context, vv(&[("n1", 2), ("n2", 1)]));
        // A stale replica cannot bring back the superseded value 1.
        let mut again = ab.clone();
        again.merge(&base);
        assert_eq!(again, ab);
        again.merge(&ab);
        assert_eq!(again, ab, "merge is idempotent");
        // A write with the merged context resolves the siblings.
        let resolved_ctx = ab.context.clone();
        write(&mut ab, Some(&resolved_ctx), 4, "n3");
        assert_eq!(ab.values(), vec![json!(4)]);
    }

    #[test]
    fn merge_is_associative() {
        let mut objs = Vec::new();
        for (i, node) in ["n1", "n2", "n3"].iter().enumerate() {
            let mut o = Object::default();
            write(&mut o, None, i as i64, node);
            objs.push(o);
        }
        let mut left = objs[0].clone();
        left.merge(&objs[1]);
        left.merge(&objs[2]);
        let mut right = objs[1].clone();
        right.merge(&objs[2]);
        let mut right_all = objs[0].clone();
        right_all.merge(&right);
        assert_eq!(left, right_all);
        assert_eq!(left.siblings.len(), 3);
    }

    #[test]
    fn dominance_and_coverage() {
        let a = vv(&[("n1", 2), ("n2", 1)]);
        assert!(dominates(&a, &vv(&[("n1", 1)])));
        assert!(dominates(&a, &vv(&[("n3", 0)])));
        assert!(!dominates(&a, &vv(&[("n2", 2)])));
        assert!(!dominates(&vv(&[("n1", 1), ("n2", 2)]), &a));
        assert!(covers(&a, &Dot("n1".into(), 2)));
        assert!(!covers(&a, &Dot("n3".into(), 1)));
    }

    #[test]
    fn per_client_dots_collide_when_the_client_did_not_read_its_own_write() {
        let mut o = Object::default();
        let first = o.write(None, json!(1), 0, "n1", Some("c1"), Minting::PerClient);
        let second = o.write(None, json!(2), 0, "n1", Some("c1"), Minting::PerClient);
        assert_eq!(first, second);
        assert_eq!(o.values(), vec![json!(2)], "the first value is gone");
    }

    #[test]
    fn last_writer_wins_keeps_the_newest_timestamp() {
        let mut o = Object::default();
        o.write(None, json!(1), 50, "n1", None, Minting::PerNode);
        o.write(None, json!(2), 10, "n2", None, Minting::PerNode);
        o.keep_newest();
        assert_eq!(o.values(), vec![json!(1)]);
    }

    #[test]
    fn objects_round_trip_through_json() {
        let mut o = Object::default();
        write(&mut o, None, 7, "n1");
        let text = serde_json::to_string(&o).unwrap();
        assert_eq!(
            text,
            r#"{"context":{"n1":1},"siblings":[{"dot":["n1",1],"value":7,"ts":0}]}"#
        );
        assert_eq!(serde_json::from_str::<Object>(&text).unwrap(), o);
    }
}
