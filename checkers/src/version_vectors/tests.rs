use super::*;
use serde_json::json;

#[test]
fn canonical_json_sorts_object_keys() {
    assert_eq!(
        canonical_json(&json!({"n2": 1, "n1": {"b": [1, 2], "a": null}})),
        r#"{"n1":{"a":null,"b":[1,2]},"n2":1}"#
    );
}
