//! Durable state through `ctx.disk_*`: one file per key, and an index of the keys (the disk
//! cannot be listed). A node stages and syncs a key's file before it acknowledges or sends
//! anything derived from it, so a restart never forgets a dot it has minted or a hint it owes.
//!
//! Files: `dynamo.keys` — a JSON array of key texts; `dynamo.key.<hex of the key text>` —
//! `{"key": K, "object": {...}, "hints": ["n3", ...]}`.

use super::object::Object;
use crate::node::{Context, NodeId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub const INDEX_FILE: &str = "dynamo.keys";

/// What a node holds for one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredKey {
    pub key: Value,
    pub object: Object,
    /// Home replicas this node (not one of them) still owes a hinted handoff.
    pub hints: BTreeSet<NodeId>,
}

pub fn key_file(key_text: &str) -> String {
    let hex: String = key_text.bytes().map(|b| format!("{b:02x}")).collect();
    format!("dynamo.key.{hex}")
}

/// Everything synced before the last crash. Unreadable files are skipped: they were never
/// synced whole, so nothing was acknowledged from them.
pub fn load(ctx: &Context) -> BTreeMap<String, StoredKey> {
    let mut store = BTreeMap::new();
    let Some(index) = ctx
        .disk_read(INDEX_FILE)
        .and_then(|b| serde_json::from_slice::<Vec<String>>(b).ok())
    else {
        return store;
    };
    for key_text in index {
        if let Some(stored) = ctx
            .disk_read(&key_file(&key_text))
            .and_then(|b| serde_json::from_slice::<StoredKey>(b).ok())
        {
            store.insert(key_text, stored);
        }
    }
    store
}

/// Stages one key's file (and the index, when the key is new to the disk). The caller syncs.
pub fn stage(
    ctx: &mut Context,
    key_text: &str,
    stored: &StoredKey,
    index: Option<&BTreeMap<String, StoredKey>>,
) {
    if let Some(store) = index {
        let keys: Vec<&String> = store.keys().collect();
        ctx.disk_write(INDEX_FILE, serde_json::to_vec(&keys).unwrap_or_default());
    }
    ctx.disk_write(
        &key_file(key_text),
        serde_json::to_vec(stored).unwrap_or_default(),
    );
}
