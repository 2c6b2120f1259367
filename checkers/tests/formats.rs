//! History formats: JSON Lines and Jepsen EDN, import, export, errors and robustness.

use checkers::InputError;
use checkers::history::{Format, History, Op, OpType, Process, edn, jsonl};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers

fn edn_ok(text: &str) -> History {
    match edn::parse_history(text, "mem.edn") {
        Ok(h) => h,
        Err(e) => panic!("expected {text:?} to parse, got: {e}"),
    }
}

fn edn_err(text: &str) -> InputError {
    match edn::parse_history(text, "mem.edn") {
        Ok(h) => panic!("expected {text:?} to fail, got {h:?}"),
        Err(e) => {
            assert_eq!(e.source, "mem.edn");
            e
        }
    }
}

fn jsonl_err(text: &str) -> InputError {
    match jsonl::parse(text, "mem.jsonl") {
        Ok(h) => panic!("expected {text:?} to fail, got {h:?}"),
        Err(e) => e,
    }
}

fn op(index: u64, process: Process, kind: OpType, f: &str, value: Value) -> Op {
    Op {
        index,
        time: None,
        process,
        kind,
        f: f.to_string(),
        value,
        error: None,
        node: None,
        extra: Map::new(),
    }
}

fn client(p: u64) -> Process {
    Process::Client(p)
}

fn edn_round_trip(h: &History) -> History {
    let mut out = Vec::new();
    edn::write_history(h, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    match edn::parse_history(&text, "export.edn") {
        Ok(back) => back,
        Err(e) => panic!("exported EDN does not parse: {e}\n{text}"),
    }
}

fn jsonl_round_trip(h: &History) -> History {
    let mut out = Vec::new();
    jsonl::write(h, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    jsonl::parse(&text, "export.jsonl").unwrap()
}

/// Runs `f`, turning a panic into a test failure that shows the input.
fn no_panic<T>(what: &str, input: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => panic!("{what} panicked on input {input:?}"),
    }
}

/// An independent, simple scan of well-formed EDN: the number of op maps (maps at the top
/// level or directly inside the top-level vector or list), and whether the text ends inside an
/// open collection or string.
fn scan(text: &str) -> (usize, bool) {
    let mut maps = 0;
    let mut stack: Vec<u8> = Vec::new();
    let mut bytes = text.bytes();
    let mut in_string = false;
    while let Some(b) = bytes.next() {
        if in_string {
            match b {
                b'\\' => {
                    bytes.next();
                }
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b';' => {
                for c in bytes.by_ref() {
                    if c == b'\n' {
                        break;
                    }
                }
            }
            b'{' => {
                if stack.len() <= 1 && !stack.contains(&b'{') {
                    maps += 1;
                }
                stack.push(b);
            }
            b'[' | b'(' => stack.push(b),
            b']' | b')' | b'}' => {
                stack.pop();
            }
            _ => {}
        }
    }
    (maps, in_string || !stack.is_empty())
}

// ---------------------------------------------------------------------------------------------
// EDN import: every variant

#[test]
fn edn_vector_with_comments_commas_and_any_key_order() {
    let h = edn_ok(
        "; a comment\n\
         [{:process 4, :type :invoke, :f :write, :value 2}\n\
          ; between ops\n\
          {:type :ok :value 2 :f :write :process 4} ; trailing\n\
          {:f :read, :process 6, :type :invoke, :value nil},,,]\n",
    );
    assert_eq!(
        h.ops,
        vec![
            op(0, client(4), OpType::Invoke, "write", json!(2)),
            op(1, client(4), OpType::Ok, "write", json!(2)),
            op(2, client(6), OpType::Invoke, "read", Value::Null),
        ]
    );
}

#[test]
fn edn_list_and_bare_stream() {
    let list = edn_ok(
        "({:type :invoke, :f :read, :process 1}\n {:type :ok, :f :read, :value 3, :process 1}\n)",
    );
    let stream = edn_ok(
        "{:type :invoke, :f :read, :process 1}\n{:type :ok, :f :read, :value 3, :process 1}\n",
    );
    let expected = vec![
        op(0, client(1), OpType::Invoke, "read", Value::Null),
        op(1, client(1), OpType::Ok, "read", json!(3)),
    ];
    assert_eq!(list.ops, expected);
    assert_eq!(stream.ops, expected);
    assert!(edn_ok("").ops.is_empty());
    assert!(edn_ok("  ; only a comment\n").ops.is_empty());
    assert!(edn_ok("[]").ops.is_empty());
    assert_eq!(
        edn_ok("\u{feff}[{:type :ok, :f :read, :process 1}]")
            .ops
            .len(),
        1
    );
    assert!(edn_ok("()\n; done\n#_ {:ignored 1}").ops.is_empty());
}

#[test]
fn edn_index_time_present_or_absent() {
    let h = edn_ok(
        "[{:index 10, :time 5, :process 0, :type :invoke, :f :read}\n\
          {:process 0, :type :ok, :f :read, :value 1}]",
    );
    assert_eq!(h.ops[0].index, 10);
    assert_eq!(h.ops[0].time, Some(5));
    // Absent: the position in the history.
    assert_eq!(h.ops[1].index, 1);
    assert_eq!(h.ops[1].time, None);
}

#[test]
fn edn_errors_nemesis_and_nested_values() {
    let h = edn_ok(
        "[{:type :fail, :process 101, :f :write, :value 3, :error [:temporarily-unavailable nil]}\n\
          {:type :fail, :f :release, :process 1, :error :not-held}\n\
          {:process :nemesis, :type :info, :f :start, :value \"Cut off {:n1 #{:n2}}\"}\n\
          {:type :ok, :f :txn, :value [[:read :x 0] [:write :y [1 [2 {:deep true}]]]], :process 3}\n\
          {:type :ok, :f :cas, :value [2 3], :process 7, :node \"n1\", :commit_ts 99}]",
    );
    assert_eq!(
        h.ops[0].error,
        Some(json!(["temporarily-unavailable", null]))
    );
    assert_eq!(h.ops[1].error, Some(json!("not-held")));
    assert_eq!(h.ops[1].value, Value::Null);
    assert_eq!(h.ops[2].process, Process::Nemesis);
    assert_eq!(h.ops[2].value, json!("Cut off {:n1 #{:n2}}"));
    assert_eq!(
        h.ops[3].value,
        json!([["read", "x", 0], ["write", "y", [1, [2, {"deep": true}]]]])
    );
    assert_eq!(h.ops[4].value, json!([2, 3]));
    assert_eq!(h.ops[4].node.as_deref(), Some("n1"));
    assert_eq!(h.ops[4].extra.get("commit_ts"), Some(&json!(99)));
}

#[test]
fn edn_tagged_literals_sets_and_discards() {
    let h = edn_ok(
        "[#jepsen.history.Op{:index 0, :time 1, :type :invoke, :process 0, :f :add, :value 1}\n\
          #jepsen.history.Op {:index 1, :time 2, :type :ok, :process 0, :f :add, :value 1}\n\
          #_ {:index 99, :type :ok, :process 0, :f :ignored}\n\
          {:index 2, :type :ok, :process 1, :f :read, :value #{1 2 3}, :at #inst \"2024-01-02T03:04:05.000-00:00\",\n\
           :id #uuid \"f81d4fae-7dec-11d0-a765-00a0c91e6bf6\" #_ :dropped-key #_ 12\n\
           :meta ^{:tag :x} [1 #_ 2 3]}]",
    );
    assert_eq!(h.ops.len(), 3);
    assert_eq!(h.ops[0].f, "add");
    assert_eq!(h.ops[1].kind, OpType::Ok);
    assert_eq!(h.ops[2].index, 2);
    assert_eq!(h.ops[2].value, json!([1, 2, 3]));
    assert_eq!(
        h.ops[2].extra.get("at"),
        Some(&json!("2024-01-02T03:04:05.000-00:00"))
    );
    assert_eq!(
        h.ops[2].extra.get("id"),
        Some(&json!("f81d4fae-7dec-11d0-a765-00a0c91e6bf6"))
    );
    assert_eq!(h.ops[2].extra.get("meta"), Some(&json!([1, 3])));
    assert_eq!(h.ops[2].extra.len(), 3);

    // A tagged stream, and a tag in front of the whole history.
    let stream = edn_ok(
        "#jepsen.history.Op{:type :invoke, :process 0, :f :r}\n#jepsen.history.Op{:type :ok, :process 0, :f :r}",
    );
    assert_eq!(stream.ops.len(), 2);
    let tagged = edn_ok("#jepsen/history [{:type :invoke, :process 0, :f :r}]");
    assert_eq!(tagged.ops.len(), 1);
}

#[test]
fn edn_scalars() {
    let h = edn_ok(
        r#"[{:process 0, :type :ok, :f :read,
             :value ["a\"b\\c\n\t\r\u00e9\u263A\uD83D\uDE00" "multi
line" "" "é😀"],
             :nums [0 -7 +7 42N 18446744073709551615 -9223372036854775808
                    123456789012345678901234567890 -123456789012345678901234567890N
                    1.5 -2.5e3 1e-7 3.0 1.5M 1/2 -3/4 0x1F 017 2r101],
             :lits [nil true false],
             :chars [\a \newline \space \tab \u0041 \é \( \"],
             :syms [foo my.ns/bar + - -> nil? .],
             :kws [:x :a/b :nemesis :start-partition ::auto],
             :specials [##Inf ##-Inf ##NaN #"re\"gex\d"]}]"#,
    );
    let x = &h.ops[0].extra;
    assert_eq!(
        h.ops[0].value,
        json!([
            "a\"b\\c\n\t\r\u{e9}\u{263a}\u{1f600}",
            "multi\nline",
            "",
            "é😀"
        ])
    );
    assert_eq!(
        x["nums"],
        json!([
            0,
            -7,
            7,
            42,
            u64::MAX,
            i64::MIN,
            "123456789012345678901234567890",
            "-123456789012345678901234567890",
            1.5,
            -2500.0,
            1e-7,
            3.0,
            1.5,
            0.5,
            -0.75,
            31,
            15,
            5
        ])
    );
    assert_eq!(x["lits"], json!([null, true, false]));
    assert_eq!(
        x["chars"],
        json!(["a", "\n", " ", "\t", "A", "é", "(", "\""])
    );
    assert_eq!(
        x["syms"],
        json!(["foo", "my.ns/bar", "+", "-", "->", "nil?", "."])
    );
    assert_eq!(
        x["kws"],
        json!(["x", "a/b", "nemesis", "start-partition", ":auto"])
    );
    assert_eq!(
        x["specials"],
        json!(["##Inf", "##-Inf", "##NaN", "re\\\"gex\\d"])
    );
}

#[test]
fn edn_non_string_map_keys() {
    let h = edn_ok(
        "[{:process 0, :type :ok, :f :read, :value {:x 1, \"y\" 2, 3 4, nil 5, true 6, [1 2] 7, 1.5 8}}]",
    );
    assert_eq!(
        h.ops[0].value,
        json!({"x": 1, "y": 2, "3": 4, "nil": 5, "true": 6, "[1,2]": 7, "1.5": 8})
    );
    // Keys keep their order.
    let keys: Vec<&str> = h.ops[0]
        .value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["x", "y", "3", "nil", "true", "[1,2]", "1.5"]);
}

#[test]
fn edn_through_history_parse_and_detect() {
    let text = "[{:process 0, :type :invoke, :f :read}]";
    assert_eq!(Format::detect(Path::new("h.edn"), text), Format::Edn);
    let h = History::parse(text, Format::Edn, "x.edn").unwrap();
    assert_eq!(h.ops.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// EDN errors name the line and what was expected

#[test]
fn edn_op_field_errors_name_the_line_where_the_map_starts() {
    let e = edn_err(
        "[{:process 0, :type :invoke, :f :read}\n\
          {:process 0,\n\
           :type :okay,\n\
           :f :read}]",
    );
    assert_eq!(e.line, Some(2), "{e}");
    assert!(e.message.contains("type"), "{e}");
    assert!(e.message.contains("okay"), "{e}");
    assert!(e.to_string().starts_with("mem.edn:2: "), "{e}");

    let e = edn_err("\n\n[{:type :invoke, :f :read}]");
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("missing field `process`"), "{e}");

    let e = edn_err("{:process 0, :type :ok, :f :read}\n{:process -1, :type :ok, :f :read}");
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("process"), "{e}");

    let e = edn_err("[{:process 0, :type :ok, :f :read, :index \"x\"}]");
    assert!(e.message.contains("index"), "{e}");
    let e = edn_err("[{:process 0, :type :ok, :f 12}]");
    assert!(e.message.contains("`f`"), "{e}");
}

#[test]
fn edn_syntax_errors_name_the_line() {
    let cases: &[(&str, usize, &[&str])] = &[
        // Truncated: the line where the input ends, and which bracket was open where.
        (
            "[{:process 0, :type :ok, :f :read}\n {:process 0,",
            2,
            &["end of input", "`}`", "line 2"],
        ),
        (
            "[{:process 0, :type :ok, :f :read}\n",
            2,
            &["end of input", "`]`", "line 1"],
        ),
        ("{:a [1 2\n\n", 3, &["`]`", "vector opened on line 1"]),
        ("{:a", 1, &["value for key `a`"]),
        ("[#_", 1, &["form after `#_`"]),
        (
            "#jepsen.history.Op",
            1,
            &["form after `#jepsen.history.Op`"],
        ),
        // Unbalanced.
        ("[{:a 1)]", 1, &["expected `}`", "found `)`"]),
        ("\n]", 2, &["unexpected `]`", "no collection"]),
        (
            "[{:process 0, :type :ok, :f :read}]\n]",
            2,
            &["no collection"],
        ),
        // Strings.
        ("[{:process 0,\n :f \"abc\n\n", 2, &["unterminated string"]),
        ("[{:f \"a\\qb\"}]", 1, &["invalid escape"]),
        ("[{:f \"\\u12\"}]", 1, &["\\u escape"]),
        // Bad tokens.
        (
            "[{:process 0, :type :ok, :f :read, :value 12abc}]",
            1,
            &["invalid number `12abc`"],
        ),
        ("[{:value 08}]", 1, &["invalid number"]),
        ("[{:value 1/0}]", 1, &["invalid number"]),
        ("[{:value \\bogus}]", 1, &["character literal"]),
        ("[{: 1}]", 1, &["keyword name"]),
        ("[{:value #?(:clj 1)}]", 1, &["after `#`"]),
        ("[{:value #:ns{:a 1}}]", 1, &["namespaced map"]),
        ("[{:value ##Foo}]", 1, &["##Inf"]),
        ("[{:value `x}]", 1, &["reader macro"]),
        ("[{:value \u{1}}]", 1, &["control character U+0001"]),
        // Maps.
        (
            "\n[{:process 0 :type}]",
            2,
            &["value for key `type`", "found `}`"],
        ),
        ("[{:f :a\n :f :b}]", 2, &["duplicate key `f`", "line 1"]),
        // Not op maps.
        (
            ":foo",
            1,
            &["expected an op map or a vector of op maps", "keyword"],
        ),
        ("\n42", 2, &["found a number"]),
        (
            "[{:process 0, :type :ok, :f :read}\n 42]",
            2,
            &["expected an op map, found a number"],
        ),
        (
            "[[{:process 0, :type :ok, :f :read}]]",
            1,
            &["expected an op map, found a vector"],
        ),
        (
            "{:process 0, :type :ok, :f :read}\n[]",
            2,
            &["expected an op map, found a vector"],
        ),
        (
            "[]\n\n{:process 0, :type :ok, :f :read}",
            3,
            &["end of the input", "found a map"],
        ),
    ];
    for (text, line, needles) in cases {
        let e = edn_err(text);
        assert_eq!(e.line, Some(*line), "{text:?}: {e}");
        for needle in *needles {
            assert!(
                e.message.contains(needle),
                "{text:?}: {e:?} should mention {needle:?}"
            );
        }
    }
}

#[test]
fn edn_deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(100_000);
    assert!(edn_err(&deep).message.contains("nested"));
    assert!(edn_err(&"#_".repeat(100_000)).message.contains("nested"));
    assert!(edn_err(&"{:a ".repeat(100_000)).message.contains("nested"));
    assert!(
        edn_err(&format!("[{{:value {}}}]", "#{".repeat(100_000)))
            .message
            .contains("nested")
    );
    assert!(edn_err(&"#t ".repeat(100_000)).message.contains("nested"));

    // Deep but within the limit is fine.
    let depth = 400;
    let text = format!(
        "[{{:process 0, :type :ok, :f :read, :value {}1{}}}]",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let h = edn_ok(&text);
    assert_eq!(edn_round_trip(&h), h);
}

// ---------------------------------------------------------------------------------------------
// JSONL errors

#[test]
fn jsonl_errors_name_the_line_and_field() {
    let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
                {\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n\
                {\"process\":1,\"type\":\"okay\",\"f\":\"read\",\"value\":null}\n";
    let e = jsonl_err(text);
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.message.contains("type"), "{e}");
    assert_eq!(e.source, "mem.jsonl");

    let e = jsonl_err("\n{\"type\":\"ok\",\"f\":\"read\"}\n");
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("process"), "{e}");

    let e = jsonl_err("{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"time\":-5}");
    assert!(e.message.contains("time"), "{e}");

    let e = jsonl_err("{\"process\":0,\"type\":\"ok\",\"f\":\"read\"}\n[1,2]\n");
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("JSON object"), "{e}");

    let e = jsonl_err("{\"process\":0,\"type\":\"ok\",\"f\":\"read\"}\n\n{\"process\":0,");
    assert_eq!(e.line, Some(3));

    // Blank lines are fine; missing index means the position.
    let h = jsonl::parse(
        "\n{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n\n{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"kill\",\"commit_ts\":3}\n",
        "mem.jsonl",
    )
    .unwrap();
    assert_eq!(h.ops.len(), 2);
    assert_eq!(h.ops[1].index, 1);
    assert_eq!(h.ops[1].process, Process::Nemesis);
    assert_eq!(h.ops[1].extra["commit_ts"], json!(3));
}

// ---------------------------------------------------------------------------------------------
// Export and round trips

fn sample_history() -> History {
    let mut ops = vec![
        op(0, client(3), OpType::Invoke, "cas", json!([1, 4])),
        op(1, client(3), OpType::Ok, "cas", json!([1, 4])),
        op(
            2,
            Process::Nemesis,
            OpType::Info,
            "start-partition",
            json!({"n1": ["n2", "n3"], "has space": null}),
        ),
        op(
            3,
            client(1),
            OpType::Fail,
            "write",
            json!(-9223372036854775808i64),
        ),
        op(
            4,
            client(2),
            OpType::Ok,
            "read all",
            json!([u64::MAX, 0.1, 3.0, 1e300, -2.5e-8, true, false, null]),
        ),
        op(
            5,
            client(4),
            OpType::Ok,
            "txn",
            json!([["r", "x", 1], ["w", "y", [1, 2]]]),
        ),
        op(
            6,
            client(5),
            OpType::Info,
            "write",
            json!("quote \" backslash \\ newline \n tab \t ctl \u{1} é 😀"),
        ),
        op(
            7,
            client(6),
            OpType::Ok,
            "read",
            json!({"": 1, "1abc": 2, "a/b": 3, "a/b/c": 4, "-1": 5, "nil": 6, "ok?": {"nested": [{}]}, "é": 7}),
        ),
    ];
    ops[1].time = Some(1_200_345);
    ops[3].error = Some(json!(["not-found", "lease \"7\" not found"]));
    ops[3].node = Some("n1".into());
    ops[4].extra.insert("commit_ts".into(), json!(17));
    ops[4].extra.insert("weird key".into(), json!({"k": "v"}));
    ops[5].time = Some(u64::MAX);
    History::new(ops)
}

#[test]
fn edn_export_format() {
    let mut o = op(7, client(3), OpType::Ok, "cas", json!([1, 4]));
    o.time = Some(1_200_345);
    assert_eq!(
        edn::op_to_edn(&o),
        "{:index 7, :time 1200345, :process 3, :type :ok, :f :cas, :value [1 4]}"
    );
    let mut n = op(0, Process::Nemesis, OpType::Info, "kill", Value::Null);
    n.error = Some(json!("timeout"));
    n.node = Some("n1".into());
    n.extra.insert("commit_ts".into(), json!(5));
    n.extra
        .insert("odd key".into(), json!({"a": 1, "b c": [null]}));
    assert_eq!(
        edn::op_to_edn(&n),
        "{:index 0, :process :nemesis, :type :info, :f :kill, :value nil, :error \"timeout\", \
         :node \"n1\", :commit_ts 5, \"odd key\" {:a 1, \"b c\" [nil]}}"
    );

    let mut out = Vec::new();
    edn::write_history(&History::new(vec![o.clone(), o]), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("[{:index 7,"));
    assert_eq!(text.lines().count(), 2);
    assert!(text.ends_with("}]\n"));

    let mut out = Vec::new();
    edn::write_history(&History::default(), &mut out).unwrap();
    assert_eq!(out, b"[]\n");
}

#[test]
fn round_trips_jsonl_and_edn() {
    let h = sample_history();
    assert_eq!(jsonl_round_trip(&h), h);
    assert_eq!(edn_round_trip(&h), h);
    // Across formats.
    assert_eq!(edn_round_trip(&jsonl_round_trip(&h)), h);
    assert_eq!(edn_round_trip(&History::default()), History::default());
}

#[test]
fn edn_keywords_and_strings_are_not_distinguished() {
    // The documented caveat: after import, `:x` and "x" are the same value.
    let h = edn_ok("[{:process 0, :type :ok, :f :read, :value [:x \"x\"]}]");
    assert_eq!(h.ops[0].value, json!(["x", "x"]));
    let text = edn::op_to_edn(&h.ops[0]);
    assert!(text.contains(":value [\"x\" \"x\"]"), "{text}");
}

fn random_string(rng: &mut ChaCha8Rng) -> String {
    const POOL: &[char] = &[
        'a', 'b', 'x', '0', '1', ' ', ':', '/', '-', '_', '?', '"', '\\', '\n', '\t', '\r',
        '\u{0}', '\u{1f}', '\u{7f}', '{', '}', '[', ']', '#', ';', ',', 'é', '😀', '\u{2028}',
        '\u{fffd}',
    ];
    let len = rng.random_range(0..8);
    (0..len)
        .map(|_| POOL[rng.random_range(0..POOL.len())])
        .collect()
}

fn random_value(rng: &mut ChaCha8Rng, depth: u32) -> Value {
    let choice = if depth == 0 {
        rng.random_range(0..6)
    } else {
        rng.random_range(0..8)
    };
    match choice {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(rng.random::<u64>() >> rng.random_range(0..64)),
        3 => json!(-((rng.random::<u64>() >> rng.random_range(1..64)) as i64)),
        4 => {
            let x: f64 = rng.random::<f64>() * 10f64.powi(rng.random_range(-20..20));
            json!(if rng.random() { x } else { -x })
        }
        5 => Value::String(random_string(rng)),
        6 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.random_range(0..4))
                .map(|_| (random_string(rng), random_value(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// Equal, except that floats may differ in the last place.
fn nearly_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| nearly_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| nearly_equal(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn random_histories_round_trip() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    const FS: &[&str] = &[
        "read",
        "write",
        "cas",
        "txn",
        "start-partition",
        "a/b",
        "",
        "with space",
        "9lives",
        "é",
    ];
    const EXTRA: &[&str] = &["commit_ts", "tag", "a b", "", "1", "nested/key", "é"];
    for case in 0..300 {
        let ops = (0..rng.random_range(0..20u64))
            .map(|i| {
                let process = if rng.random_range(0..5) == 0 {
                    Process::Nemesis
                } else {
                    Process::Client(rng.random_range(0..1000))
                };
                let kinds = [OpType::Invoke, OpType::Ok, OpType::Fail, OpType::Info];
                let mut o = op(
                    i * 2,
                    process,
                    kinds[rng.random_range(0..4)],
                    FS[rng.random_range(0..FS.len())],
                    random_value(&mut rng, 3),
                );
                o.time = rng.random::<bool>().then(|| rng.random());
                if rng.random_range(0..4) == 0 {
                    o.error = Some(random_value(&mut rng, 2)).filter(|e| !e.is_null());
                }
                if rng.random_range(0..4) == 0 {
                    o.node = Some(random_string(&mut rng));
                }
                for _ in 0..rng.random_range(0..3) {
                    let k = EXTRA[rng.random_range(0..EXTRA.len())];
                    o.extra.insert(k.to_string(), random_value(&mut rng, 2));
                }
                o
            })
            .collect();
        let h = History::new(ops);
        assert_eq!(edn_round_trip(&h), h, "case {case}");
        // serde_json (without its `float_roundtrip` feature) may read a float back one unit in
        // the last place off, so JSONL is compared with that tolerance.
        let back = jsonl_round_trip(&h);
        assert_eq!(back.ops.len(), h.ops.len());
        for (a, b) in back.ops.iter().zip(&h.ops) {
            let (a, b) = (Value::Object(a.to_map()), Value::Object(b.to_map()));
            assert!(nearly_equal(&a, &b), "case {case}: {a} != {b}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Robustness: random input and truncation never panic

#[test]
fn random_bytes_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    for _ in 0..4000 {
        let mut bytes = vec![0u8; rng.random_range(0..300)];
        rng.fill_bytes(&mut bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        no_panic("edn", &text, || edn::parse_history(&text, "rand").ok());
        no_panic("jsonl", &text, || jsonl::parse(&text, "rand").ok());
    }
}

#[test]
fn random_token_soup_never_panics() {
    const TOKENS: &[&str] = &[
        "[",
        "]",
        "{",
        "}",
        "(",
        ")",
        "#{",
        "#_",
        "#inst",
        "#jepsen.history.Op",
        "#",
        "##Inf",
        "##",
        ":type",
        ":invoke",
        ":ok",
        ":info",
        ":fail",
        ":f",
        ":read",
        ":cas",
        ":process",
        ":value",
        ":index",
        ":time",
        ":error",
        ":nemesis",
        ":",
        "::",
        "nil",
        "true",
        "false",
        "sym",
        "0",
        "1",
        "-5",
        "+",
        "-",
        "18446744073709551616",
        "1.5e3",
        "1e",
        "1/2",
        "1/0",
        "0x1F",
        "0x",
        "08",
        "2r",
        "36rZZ",
        "99r1",
        "\"s\\n\"",
        "\"",
        "\"\\u",
        "\"\\uD83D\"",
        "\\a",
        "\\",
        "\\u00",
        "\\o7",
        "\\newline",
        ";c\n",
        "\n",
        " ",
        ",",
        "é",
        "😀",
        "^",
        "'",
        "`",
        "#\"re",
        "#!",
        "#:",
        "#'",
        "\u{0}",
        "\r\n",
        "\t",
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut ok = 0;
    for _ in 0..6000 {
        let n = rng.random_range(0..60);
        let mut text = String::new();
        for _ in 0..n {
            text.push_str(TOKENS[rng.random_range(0..TOKENS.len())]);
            if rng.random_range(0..3) == 0 {
                text.push(' ');
            }
        }
        if no_panic("edn", &text, || edn::parse_history(&text, "soup").is_ok()) {
            ok += 1;
        }
    }
    assert!(ok > 0, "some soups (e.g. the empty one) parse");
}

#[test]
fn mutated_histories_never_panic() {
    let base = "; comment\n[{:index 0, :time 1, :process 0, :type :invoke, :f :cas, :value [1 2]}\n \
                {:index 1, :process :nemesis, :type :info, :f :start, :value \"Cut off {:n1 #{:n2}}\"}\n \
                #jepsen.history.Op{:index 2, :type :fail, :process 0, :f :cas, :error [:x \"é\\\"\"]}]\n";
    let chars: Vec<char> = base.chars().collect();
    const INSERTS: &[char] = &[
        '[', ']', '{', '}', '(', ')', '"', '\\', '#', '_', ':', ';', '\n', ' ', '1', 'é', '^',
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    for _ in 0..4000 {
        let mut c = chars.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..=c.len());
            match rng.random_range(0..3) {
                0 if at < c.len() => {
                    c.remove(at);
                }
                1 if at < c.len() => c[at] = INSERTS[rng.random_range(0..INSERTS.len())],
                _ => c.insert(at, INSERTS[rng.random_range(0..INSERTS.len())]),
            }
        }
        let text: String = c.into_iter().collect();
        no_panic("edn", &text, || edn::parse_history(&text, "mutant").ok());
    }
}

/// Checks every truncation of `text` at the given char boundaries: never a panic; a prefix that
/// ends inside an open collection or string is an error; any other prefix parses to the op maps
/// it holds.
fn check_truncations(name: &str, text: &str, cuts: impl Iterator<Item = usize>) {
    for cut in cuts {
        let Some(prefix) = text.get(..cut) else {
            continue;
        };
        let result = no_panic("edn", prefix, || edn::parse_history(prefix, name));
        let (maps, open) = scan(prefix);
        match result {
            Err(e) => assert!(open, "{name} cut at {cut}: complete prefix rejected: {e}"),
            Ok(h) => {
                assert!(
                    !open,
                    "{name} cut at {cut}: truncated prefix accepted:\n{prefix}"
                );
                assert_eq!(h.ops.len(), maps, "{name} cut at {cut}");
            }
        }
    }
}

#[test]
fn truncations_never_panic_and_half_maps_are_errors() {
    let fixtures = [
        (
            "vector",
            "; leading comment\n[{:process 4, :type :invoke, :f :write, :value 2}\n \
             {:process 4, :type :ok, :f :write, :value \"é 😀 \\\" ; [\"}\n \
             {:process :nemesis, :type :info, :f :start, :value #{:n1 :n2}, :error [:x 1.5]}]\n",
        ),
        (
            "stream",
            "{:type :invoke, :f :read, :process 1}\n; between\n{:type :ok, :f :read, :value [3 [4]], :process 1}\n\
             {:type :ok, :f :txn, :value [[:r :x nil]], :process 2, :time 12}\n",
        ),
        (
            "list",
            "({:type :invoke, :f :read, :process 1}\n {:type :ok, :f :read, :process 1, :value \\a})",
        ),
    ];
    for (name, text) in fixtures {
        check_truncations(name, text, 0..=text.len());
    }
}

#[test]
fn corpus_truncations_never_panic() {
    let Some(dir) = corpus_dir() else { return };
    for file in [
        "knossos/cas-register/bad/bad-analysis.edn",
        "knossos/cas-register/bad/rethink-fail-minimal.edn",
        "knossos/cas-register/bad/rethink-fail.edn",
        "knossos/multi-register/good/multi-register.edn",
        "knossos/mutex/bad/etcd.edn",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let len = text.len();
        // Every cut in the first 3000 bytes, then about 400 spread over the rest.
        let step = (len / 400).max(1);
        let cuts = (0..=len.min(3000))
            .chain((3000..=len).step_by(step))
            .chain([len]);
        check_truncations(file, &text, cuts);
    }
}

// ---------------------------------------------------------------------------------------------
// The Knossos corpus

/// The corpus directory: `VERITY_CORPUS`, else `../shared/corpus` next to the workspace.
/// `None` (with a note) when the default is missing; a set but missing directory fails the test.
fn corpus_dir() -> Option<PathBuf> {
    match std::env::var_os("VERITY_CORPUS") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.is_dir(),
                "VERITY_CORPUS={} is not a directory",
                dir.display()
            );
            Some(dir)
        }
        None => {
            let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"));
            if dir.is_dir() {
                Some(dir)
            } else {
                eprintln!(
                    "note: corpus not found at {}; set VERITY_CORPUS to run",
                    dir.display()
                );
                None
            }
        }
    }
}

fn edn_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            edn_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "edn") {
            out.push(path);
        }
    }
}

#[test]
fn corpus_parses_completely() {
    let Some(dir) = corpus_dir() else { return };
    let mut files = Vec::new();
    edn_files(&dir, &mut files);
    assert!(
        files.len() >= 100,
        "expected the Knossos corpus in {}, found {} files",
        dir.display(),
        files.len()
    );

    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    let mut total_ops = 0;
    let mut elapsed = Duration::ZERO;
    let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();
    for (path, text) in &texts {
        let name = path.display().to_string();
        let start = Instant::now();
        let h = edn::parse_history(text, &name).unwrap_or_else(|e| panic!("{e}"));
        elapsed += start.elapsed();
        let (maps, open) = scan(text);
        assert!(!open, "{name}");
        assert!(maps > 0, "{name}");
        assert_eq!(h.ops.len(), maps, "{name}: op count");
        total_ops += h.ops.len();
        // Indices are unique and increasing, whether given or positional.
        assert!(h.ops.windows(2).all(|w| w[0].index < w[1].index), "{name}");
        // Round trips through both formats.
        assert_eq!(edn_round_trip(&h), h, "{name}: EDN round trip");
        assert_eq!(jsonl_round_trip(&h), h, "{name}: JSONL round trip");
    }
    eprintln!(
        "parsed {} corpus files, {bytes} bytes, {total_ops} ops, in {elapsed:?} ({} build)",
        texts.len(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
}

fn corpus_history(dir: &Path, file: &str) -> History {
    History::read(&dir.join("knossos").join(file), None).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn corpus_specific_files() {
    let Some(dir) = corpus_dir() else { return };

    let h = corpus_history(&dir, "cas-register/bad/bad-analysis.edn");
    assert_eq!(h.ops.len(), 16);
    assert_eq!(
        h.ops[0],
        op(0, client(4), OpType::Invoke, "write", json!(2))
    );
    assert_eq!(h.ops[15], op(15, client(22), OpType::Ok, "read", json!(3)));

    let h = corpus_history(&dir, "cas-register/bad/rethink-fail-minimal.edn");
    assert_eq!(h.ops.len(), 8);
    assert_eq!(h.ops[4], op(4, client(1), OpType::Ok, "read", json!(3)));
    assert_eq!(h.ops[7], op(7, client(3), OpType::Ok, "read", json!(4)));

    let h = corpus_history(&dir, "cas-register/bad/immediate-failure.edn");
    assert_eq!(
        h.ops[2].error,
        Some(json!(["temporarily-unavailable", null]))
    );
    assert_eq!(h.ops[2].process, client(101));

    let h = corpus_history(&dir, "cas-register/good/mongodb-v0-ack-rollback-.edn");
    assert_eq!(h.ops.len(), 28);
    assert!(
        h.ops
            .iter()
            .all(|o| o.process == Process::Nemesis && o.kind == OpType::Info)
    );

    let h = corpus_history(&dir, "cas-register/bad/cas-failure.edn");
    assert!(h.ops.iter().any(|o| {
        o.value
            .as_str()
            .is_some_and(|s| s.starts_with("Cut off [:n3 #[:n4"))
    }));
    assert!(
        h.ops
            .iter()
            .any(|o| o.f == "cas" && o.value == json!([2, 1]))
    );

    let h = corpus_history(&dir, "cas-register/bad/rethink-fail.edn");
    let with_error = h.ops.iter().find(|o| o.error.is_some()).unwrap();
    let error = with_error.error.as_ref().unwrap().as_str().unwrap();
    assert!(
        error.contains("{:t 18, :e 4200000, :r [\"Cannot perform write"),
        "{error}"
    );

    let h = corpus_history(&dir, "multi-register/good/multi-register.edn");
    let first = &h.ops[0];
    assert_eq!(
        (first.kind, first.process, first.time),
        (OpType::Invoke, client(3), Some(7_686_455_705))
    );
    assert_eq!(first.f, "txn");
    assert_eq!(first.value, json!([["read", "x", null]]));
    assert_eq!(h.ops.last().unwrap().value, json!("fully connected"));

    let h = corpus_history(&dir, "mutex/bad/etcd.edn");
    assert_eq!(h.ops.len(), 1135);
    assert_eq!(h.ops[1].error, Some(json!("not-held")));
    assert_eq!(h.ops[1].time, Some(342_667_129));
    let last = h.ops.last().unwrap();
    assert_eq!(last.index, 1134);
    assert_eq!(last.kind, OpType::Fail);
    assert_eq!(last.f, "release");
    assert_eq!(last.value, Value::Null);
    assert_eq!(
        last.error,
        Some(json!([
            "not-found",
            "etcdserver: requested lease not found"
        ]))
    );
    assert!(
        h.ops
            .iter()
            .any(|o| o.process == Process::Nemesis && o.f == "start")
    );
}
