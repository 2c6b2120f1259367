//! Jepsen EDN import and export.
//!
//! Import accepts what Jepsen and Knossos write: one vector or list of op maps, or a bare stream
//! of op maps. EDN values become JSON values: keywords and symbols become strings without the
//! colon (`:cas` → `"cas"`, `:a/b` → `"a/b"`), vectors, lists and sets become arrays, `nil`
//! becomes `null`, tagged literals keep their inner value (`#jepsen.history.Op{...}` keeps the
//! map, `#inst "..."` keeps the string), `#_` discards the next form, and map keys that are not
//! strings are written out as strings (`:x` → `"x"`, `1` → `"1"`). Integers too large for 64
//! bits are kept as strings of their digits, so that distinct values stay distinct.
//!
//! Export writes one vector with one op map per line, with `:type`, `:f` and map keys written as
//! keywords. After a round trip a keyword and a string with the same name are the same value:
//! import cannot tell `:x` and `"x"` apart, and export writes string values as strings.
//!
//! The parser works byte by byte with an explicit stack, so deeply nested input cannot overflow
//! the call stack; nesting beyond [`MAX_DEPTH`] is reported as an error.

use super::{History, Op, Process};
use crate::error::InputError;
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// The deepest nesting of collections, tags and discards that the parser accepts.
pub const MAX_DEPTH: usize = 512;

const BOM: char = '\u{feff}';

/// Parses a Jepsen EDN history; `source` names it in errors.
///
/// Each op map becomes an [`Op`] through [`Op::from_map`]; an op map without `:index` gets its
/// position in the history. Errors carry the 1-based line where the offending form started (or,
/// for input that ends too early, the last line).
pub fn parse_history(text: &str, source: &str) -> Result<History, InputError> {
    // A byte-order mark is not part of the text.
    let start = if text.starts_with(BOM) {
        BOM.len_utf8()
    } else {
        0
    };
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: start,
        line: 1,
        source,
        stack: Vec::new(),
        ops: Vec::new(),
        history_closed: None,
    };
    parser.run()?;
    Ok(History { ops: parser.ops })
}

/// One operation as one EDN map (without a newline), e.g.
/// `{:index 7, :time 1200345, :process 3, :type :ok, :f :cas, :value [1 4]}`.
pub fn op_to_edn(op: &Op) -> String {
    let mut out = String::with_capacity(96);
    write_op(&mut out, op);
    out
}

/// Writes a whole history as one EDN vector, one op map per line, as Jepsen's tools read it.
pub fn write_history(h: &History, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let mut buf = String::with_capacity(128);
    out.write_all(b"[")?;
    for (i, op) in h.ops.iter().enumerate() {
        buf.clear();
        if i > 0 {
            buf.push_str("\n ");
        }
        write_op(&mut buf, op);
        out.write_all(buf.as_bytes())?;
    }
    out.write_all(b"]\n")
}

// ---------------------------------------------------------------------------------------------
// Import

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeqKind {
    Vector,
    List,
    Set,
}

impl SeqKind {
    fn close(self) -> u8 {
        match self {
            SeqKind::Vector => b']',
            SeqKind::List => b')',
            SeqKind::Set => b'}',
        }
    }

    fn name(self) -> &'static str {
        match self {
            SeqKind::Vector => "vector",
            SeqKind::List => "list",
            SeqKind::Set => "set",
        }
    }

    fn a_name(self) -> &'static str {
        match self {
            SeqKind::Vector => "a vector",
            SeqKind::List => "a list",
            SeqKind::Set => "a set",
        }
    }
}

/// A form being read: an open collection, or a prefix waiting for the form it applies to.
enum Frame {
    /// The top-level vector or list holding the ops; its elements become ops as they close.
    History { kind: SeqKind, line: usize },
    Seq {
        kind: SeqKind,
        items: Vec<Value>,
        line: usize,
    },
    Map {
        map: Map<String, Value>,
        /// A key read, waiting for its value, and the line where it was.
        key: Option<(String, usize)>,
        line: usize,
    },
    /// A tag, quote or metadata target: the next form passes through unchanged.
    Pass { label: String, line: usize },
    /// `#_` or metadata: the next form is dropped.
    Discard { label: &'static str, line: usize },
}

impl Frame {
    /// What the frame still needs, for an error at the end of the input.
    fn expectation(&self) -> String {
        match self {
            Frame::History { kind, line } => format!(
                "expected `{}` to close the history {} opened on line {line}",
                kind.close() as char,
                kind.name()
            ),
            Frame::Seq { kind, line, .. } => format!(
                "expected `{}` to close the {} opened on line {line}",
                kind.close() as char,
                kind.name()
            ),
            Frame::Map {
                key: Some((k, _)),
                line,
                ..
            } => format!("expected a value for key `{k}` in the map opened on line {line}"),
            Frame::Map { line, .. } => {
                format!("expected `}}` to close the map opened on line {line}")
            }
            Frame::Pass { label, line } => {
                format!("expected a form after `{label}` on line {line}")
            }
            Frame::Discard { label, line } => {
                format!("expected a form after `{label}` on line {line}")
            }
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    source: &'a str,
    stack: Vec<Frame>,
    ops: Vec<Op>,
    /// The line where the top-level history vector was opened, once it has been closed.
    history_closed: Option<usize>,
}

fn input_error(source: &str, line: usize, message: impl Into<String>) -> InputError {
    InputError::new(source, Some(line), message)
}

/// Bytes that end a token (besides the end of the input).
fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b' ' | b',' | b'"' | b';' | b'(' | b')' | b'[' | b']' | b'{' | b'}'
    ) || b < 0x20
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b',' | b'\n' | b'\t' | b'\r' | 0x0b | 0x0c)
}

impl<'a> Parser<'a> {
    fn err(&self, line: usize, message: impl Into<String>) -> InputError {
        input_error(self.source, line, message)
    }

    /// The text between two byte offsets. Callers only pass offsets at ASCII bytes or at the end
    /// of the input, which are character boundaries; `get` keeps even a mistake from panicking.
    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.text.get(from..to).unwrap_or("")
    }

    /// A short description of what is at `pos`, for error messages.
    fn found_at(&self, pos: usize) -> String {
        match self.text.get(pos..).and_then(|rest| rest.chars().next()) {
            None => "end of input".to_string(),
            Some(c) if c.is_control() => format!("control character U+{:04X}", c as u32),
            Some(c) => format!("`{c}`"),
        }
    }

    /// The end of the token that starts at `from`.
    fn token_end(&self, from: usize) -> usize {
        let mut end = from;
        while let Some(&b) = self.bytes.get(end) {
            if is_delimiter(b) {
                break;
            }
            end += 1;
        }
        end
    }

    /// Skips whitespace, commas and `;` comments, counting lines.
    fn skip_space(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b';' => self.skip_line(),
                _ if is_space(b) => self.pos += 1,
                _ => break,
            }
        }
    }

    /// Skips to the end of the line (leaving the newline to be counted).
    fn skip_line(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if b == b'\n' {
                break;
            }
            self.pos += 1;
        }
    }

    fn push(&mut self, frame: Frame, line: usize) -> Result<(), InputError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.err(
                line,
                format!("input nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn run(&mut self) -> Result<(), InputError> {
        loop {
            self.skip_space();
            let Some(&b) = self.bytes.get(self.pos) else {
                return match self.stack.last() {
                    None => Ok(()),
                    Some(frame) => Err(self.err(
                        self.line,
                        format!("unexpected end of input: {}", frame.expectation()),
                    )),
                };
            };
            let line = self.line;
            match b {
                b'[' => self.open_seq(SeqKind::Vector, line)?,
                b'(' => self.open_seq(SeqKind::List, line)?,
                b'{' => {
                    self.pos += 1;
                    let frame = Frame::Map {
                        // Room for a typical op without growing.
                        map: Map::with_capacity(8),
                        key: None,
                        line,
                    };
                    self.push(frame, line)?;
                }
                b']' | b')' | b'}' => self.close(b, line)?,
                b'"' => {
                    let s = self.string(line)?;
                    self.emit(Value::String(s), line, "a string")?;
                }
                b':' => {
                    let end = self.token_end(self.pos + 1);
                    if end == self.pos + 1 {
                        return Err(self.err(
                            line,
                            format!(
                                "expected a keyword name after `:`, found {}",
                                self.found_at(end)
                            ),
                        ));
                    }
                    let name = self.slice(self.pos + 1, end);
                    self.pos = end;
                    self.emit(Value::String(name.to_string()), line, "a keyword")?;
                }
                b'\\' => {
                    let c = self.character(line)?;
                    self.emit(Value::String(c.to_string()), line, "a character")?;
                }
                b'#' => self.dispatch(line)?,
                b'\'' => {
                    self.pos += 1;
                    let label = "'".to_string();
                    self.push(Frame::Pass { label, line }, line)?;
                }
                b'^' => {
                    // Metadata: `^meta form` is read as `form`.
                    self.pos += 1;
                    let label = "^".to_string();
                    self.push(Frame::Pass { label, line }, line)?;
                    self.push(Frame::Discard { label: "^", line }, line)?;
                }
                b'`' | b'~' | b'@' => {
                    return Err(self.err(
                        line,
                        format!(
                            "unsupported reader macro `{}`: expected an EDN value",
                            b as char
                        ),
                    ));
                }
                b'0'..=b'9' => self.number(line)?,
                b'+' | b'-' if self.bytes.get(self.pos + 1).is_some_and(u8::is_ascii_digit) => {
                    self.number(line)?
                }
                _ if b < 0x20 => {
                    return Err(self.err(
                        line,
                        format!("expected an EDN value, found {}", self.found_at(self.pos)),
                    ));
                }
                _ => {
                    let end = self.token_end(self.pos);
                    let name = self.slice(self.pos, end);
                    self.pos = end;
                    let (value, kind) = match name {
                        "nil" => (Value::Null, "nil"),
                        "true" => (Value::Bool(true), "a boolean"),
                        "false" => (Value::Bool(false), "a boolean"),
                        _ => (Value::String(name.to_string()), "a symbol"),
                    };
                    self.emit(value, line, kind)?;
                }
            }
        }
    }

    fn open_seq(&mut self, kind: SeqKind, line: usize) -> Result<(), InputError> {
        self.pos += 1;
        // The first vector or list at the top level (perhaps under a tag) holds the history.
        let is_history = self.ops.is_empty()
            && self.history_closed.is_none()
            && self.stack.iter().all(|f| matches!(f, Frame::Pass { .. }));
        let frame = if is_history {
            Frame::History { kind, line }
        } else {
            Frame::Seq {
                kind,
                items: Vec::new(),
                line,
            }
        };
        self.push(frame, line)
    }

    fn close(&mut self, closer: u8, line: usize) -> Result<(), InputError> {
        let Some(frame) = self.stack.pop() else {
            return Err(self.err(
                line,
                format!("unexpected `{}`: no collection is open", closer as char),
            ));
        };
        match frame {
            Frame::Seq {
                kind,
                items,
                line: open,
            } if kind.close() == closer => {
                self.pos += 1;
                self.emit(Value::Array(items), open, kind.a_name())
            }
            Frame::Map {
                map,
                key,
                line: open,
            } if closer == b'}' => {
                if let Some((k, _)) = key {
                    return Err(self.err(
                        line,
                        format!(
                            "expected a value for key `{k}` in the map opened on line {open}, \
                             found `}}`"
                        ),
                    ));
                }
                self.pos += 1;
                self.emit(Value::Object(map), open, "a map")
            }
            Frame::History { kind, line: open } if kind.close() == closer => {
                self.pos += 1;
                self.history_closed = Some(open);
                // Tags in front of the history vector have been applied to it.
                while matches!(self.stack.last(), Some(Frame::Pass { .. })) {
                    self.stack.pop();
                }
                Ok(())
            }
            other => {
                let message = format!("{}, found `{}`", other.expectation(), closer as char);
                Err(self.err(line, message))
            }
        }
    }

    /// Hands a finished value to the innermost open form.
    fn emit(&mut self, value: Value, line: usize, kind: &'static str) -> Result<(), InputError> {
        loop {
            match self.stack.last_mut() {
                None => return self.top_level(value, line, kind),
                Some(Frame::Pass { .. }) => {
                    self.stack.pop();
                }
                Some(Frame::Discard { .. }) => {
                    self.stack.pop();
                    return Ok(());
                }
                Some(Frame::Seq { items, .. }) => {
                    items.push(value);
                    return Ok(());
                }
                Some(Frame::Map {
                    map,
                    key,
                    line: open,
                }) => {
                    match key.take() {
                        Some((k, key_line)) => match map.entry(k) {
                            Entry::Vacant(slot) => {
                                slot.insert(value);
                            }
                            Entry::Occupied(slot) => {
                                let message = format!(
                                    "duplicate key `{}` in the map opened on line {open}",
                                    slot.key()
                                );
                                return Err(self.err(key_line, message));
                            }
                        },
                        None => *key = Some((key_string(value), line)),
                    }
                    return Ok(());
                }
                Some(Frame::History { .. }) => return self.op(value, line, kind),
            }
        }
    }

    fn top_level(
        &mut self,
        value: Value,
        line: usize,
        kind: &'static str,
    ) -> Result<(), InputError> {
        if let Some(open) = self.history_closed {
            return Err(self.err(
                line,
                format!(
                    "expected the end of the input after the history opened on line {open}, \
                     found {kind}"
                ),
            ));
        }
        if !value.is_object() {
            let expected = if self.ops.is_empty() {
                "an op map or a vector of op maps"
            } else {
                "an op map"
            };
            return Err(self.err(line, format!("expected {expected}, found {kind}")));
        }
        self.op(value, line, kind)
    }

    fn op(&mut self, value: Value, line: usize, kind: &'static str) -> Result<(), InputError> {
        let Value::Object(map) = value else {
            return Err(self.err(line, format!("expected an op map, found {kind}")));
        };
        let op = Op::from_map(map, self.ops.len() as u64).map_err(|m| self.err(line, m))?;
        self.ops.push(op);
        Ok(())
    }

    /// Reads a string literal starting at the `"` at `pos`.
    fn string(&mut self, line: usize) -> Result<String, InputError> {
        self.pos += 1;
        let mut out = String::new();
        let mut segment = self.pos;
        loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(self.err(
                    line,
                    "unterminated string: expected a closing `\"` before the end of input",
                ));
            };
            match b {
                b'"' => {
                    out.push_str(self.slice(segment, self.pos));
                    self.pos += 1;
                    return Ok(out);
                }
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b'\\' => {
                    out.push_str(self.slice(segment, self.pos));
                    self.pos += 1;
                    self.escape(&mut out)?;
                    segment = self.pos;
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Reads the escape after a `\` in a string, leaving `pos` after it.
    fn escape(&mut self, out: &mut String) -> Result<(), InputError> {
        let Some(&b) = self.bytes.get(self.pos) else {
            return Err(self.err(
                self.line,
                "unterminated string: expected an escape after `\\`, found end of input",
            ));
        };
        let simple = match b {
            b'n' => Some('\n'),
            b't' => Some('\t'),
            b'r' => Some('\r'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'"' => Some('"'),
            b'\\' => Some('\\'),
            b'\'' => Some('\''),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            self.pos += 1;
            return Ok(());
        }
        match b {
            b'u' => {
                let unit = self.hex4(self.pos + 1)?;
                self.pos += 5;
                let c = if (0xD800..0xDC00).contains(&unit) {
                    // A UTF-16 surrogate pair spelled as two escapes.
                    let low = if self.bytes.get(self.pos) == Some(&b'\\')
                        && self.bytes.get(self.pos + 1) == Some(&b'u')
                    {
                        self.hex4(self.pos + 2)
                            .ok()
                            .filter(|u| (0xDC00..0xE000).contains(u))
                    } else {
                        None
                    };
                    match low {
                        Some(low) => {
                            self.pos += 6;
                            char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                        }
                        None => None,
                    }
                } else {
                    char::from_u32(unit)
                };
                // A lone surrogate (possible in a Java string) cannot be kept: mark it.
                out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
                Ok(())
            }
            b'0'..=b'7' => {
                let mut value = 0u32;
                let mut n = 0;
                while n < 3 {
                    match self.bytes.get(self.pos) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            self.pos += 1;
                            n += 1;
                        }
                        _ => break,
                    }
                }
                match char::from_u32(value).filter(|_| value <= 0o377) {
                    Some(c) => {
                        out.push(c);
                        Ok(())
                    }
                    None => Err(self.err(self.line, "octal escape in string is above \\377")),
                }
            }
            _ => {
                const ESCAPES: &str = r#"\n \t \r \b \f \" \\ \uXXXX or an octal \NNN"#;
                // "`q`" becomes "`\q`"; a control character is described as such.
                let found = self.found_at(self.pos).replacen('`', "`\\", 1);
                Err(self.err(
                    self.line,
                    format!("invalid escape in string: expected one of {ESCAPES}, found {found}"),
                ))
            }
        }
    }

    /// Four hex digits at `at`, as a number.
    fn hex4(&self, at: usize) -> Result<u32, InputError> {
        let digits = self.bytes.get(at..at + 4).unwrap_or_default();
        if digits.len() == 4 && digits.iter().all(u8::is_ascii_hexdigit) {
            let text = self.slice(at, at + 4);
            if let Ok(v) = u32::from_str_radix(text, 16) {
                return Ok(v);
            }
        }
        Err(self.err(self.line, "invalid \\u escape: expected four hex digits"))
    }

    /// Reads a character literal such as `\a`, `\newline` or `\u00e9`.
    fn character(&mut self, line: usize) -> Result<char, InputError> {
        let start = self.pos + 1;
        let Some(first) = self.text.get(start..).and_then(|rest| rest.chars().next()) else {
            return Err(self.err(line, "expected a character after `\\`, found end of input"));
        };
        let end = self.token_end(start + first.len_utf8());
        let name = self.slice(start, end);
        self.pos = end;
        if name.len() == first.len_utf8() {
            if first == '\n' {
                self.line += 1;
            }
            return Ok(first);
        }
        let named = match name {
            "newline" => Some('\n'),
            "space" => Some(' '),
            "tab" => Some('\t'),
            "return" => Some('\r'),
            "backspace" => Some('\u{8}'),
            "formfeed" => Some('\u{c}'),
            _ => None,
        };
        let parsed = named.or_else(|| {
            if let Some(hex) = name.strip_prefix('u') {
                (hex.len() == 4)
                    .then(|| u32::from_str_radix(hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32)
            } else if let Some(oct) = name.strip_prefix('o') {
                (1..=3)
                    .contains(&oct.len())
                    .then(|| u32::from_str_radix(oct, 8).ok())
                    .flatten()
                    .filter(|&v| v <= 0o377)
                    .and_then(char::from_u32)
            } else {
                None
            }
        });
        parsed.ok_or_else(|| {
            self.err(
                line,
                format!("unknown character literal `\\{}`", shorten(name)),
            )
        })
    }

    /// Reads what follows a `#`.
    fn dispatch(&mut self, line: usize) -> Result<(), InputError> {
        match self.bytes.get(self.pos + 1) {
            Some(b'{') => {
                self.pos += 2;
                let frame = Frame::Seq {
                    kind: SeqKind::Set,
                    items: Vec::new(),
                    line,
                };
                self.push(frame, line)
            }
            Some(b'_') => {
                self.pos += 2;
                self.push(Frame::Discard { label: "#_", line }, line)
            }
            Some(b'!') => {
                self.skip_line();
                Ok(())
            }
            Some(b'"') => {
                // A regex: kept as its source text, escapes untouched.
                self.pos += 2;
                let start = self.pos;
                loop {
                    match self.bytes.get(self.pos) {
                        None => {
                            return Err(
                                self.err(line, "unterminated regex: expected a closing `\"`")
                            );
                        }
                        Some(b'"') => break,
                        Some(b'\\') => {
                            self.pos += 1;
                            if self.bytes.get(self.pos) == Some(&b'\n') {
                                self.line += 1;
                            }
                        }
                        Some(b'\n') => self.line += 1,
                        Some(_) => {}
                    }
                    self.pos += 1;
                }
                let pattern = self.slice(start, self.pos.min(self.bytes.len()));
                self.pos += 1;
                self.emit(Value::String(pattern.to_string()), line, "a regex")
            }
            Some(b'#') => {
                let end = self.token_end(self.pos + 2);
                let name = self.slice(self.pos + 2, end);
                if !matches!(name, "Inf" | "-Inf" | "NaN") {
                    return Err(self.err(
                        line,
                        format!(
                            "expected ##Inf, ##-Inf or ##NaN, found `##{}`",
                            shorten(name)
                        ),
                    ));
                }
                self.pos = end;
                // JSON has no infinities: keep the spelling.
                self.emit(Value::String(format!("##{name}")), line, "a number")
            }
            Some(b'\'') => {
                self.pos += 2;
                let label = "#'".to_string();
                self.push(Frame::Pass { label, line }, line)
            }
            Some(&b) if b.is_ascii_alphabetic() => {
                let end = self.token_end(self.pos + 1);
                let label = self.slice(self.pos, end).to_string();
                self.pos = end;
                self.push(Frame::Pass { label, line }, line)
            }
            Some(b':') => Err(self.err(
                line,
                "namespaced map literals (`#:ns{...}`) are not supported: expected a plain map",
            )),
            _ => Err(self.err(
                line,
                format!(
                    "expected a tag, `{{`, `_` or a string after `#`, found {}",
                    self.found_at(self.pos + 1)
                ),
            )),
        }
    }

    fn number(&mut self, line: usize) -> Result<(), InputError> {
        let end = self.token_end(self.pos);
        let token = self.slice(self.pos, end);
        self.pos = end;
        match parse_number(token) {
            Some(value) => self.emit(value, line, "a number"),
            None => Err(self.err(line, format!("invalid number `{}`", shorten(token)))),
        }
    }
}

/// At most 40 characters of a token, for messages.
fn shorten(token: &str) -> String {
    let mut chars = token.chars();
    let head: String = chars.by_ref().take(40).collect();
    if chars.next().is_some() {
        format!("{head}...")
    } else {
        head
    }
}

/// A map key as a JSON object key.
fn key_string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Null => "nil".to_string(),
        other => other.to_string(),
    }
}

/// Parses an EDN number token: integers (with an optional `N`, hex `0x`, octal `0`, radix
/// `NrDDD`), ratios `a/b` (as floats), floats (with an optional `M`).
fn parse_number(token: &str) -> Option<Value> {
    let (negative, body) = match token.as_bytes().first()? {
        b'-' => (true, token.get(1..)?),
        b'+' => (false, token.get(1..)?),
        _ => (false, token),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());

    let int_body = body.strip_suffix('N').unwrap_or(body);
    if all_digits(int_body) {
        return if int_body.len() > 1 && int_body.starts_with('0') {
            integer(negative, int_body.get(1..)?, 8, token)
        } else {
            integer(negative, int_body, 10, token)
        };
    }
    if let Some(hex) = int_body
        .strip_prefix("0x")
        .or_else(|| int_body.strip_prefix("0X"))
    {
        return integer(negative, hex, 16, token);
    }
    if let Some((radix, digits)) = int_body.split_once(['r', 'R'])
        && all_digits(radix)
    {
        let radix: u32 = radix.parse().ok().filter(|r| (2..=36).contains(r))?;
        return integer(negative, digits, radix, token);
    }
    if let Some((num, den)) = body.split_once('/') {
        if !all_digits(num) || !all_digits(den) {
            return None;
        }
        let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
        if den == 0.0 {
            return None;
        }
        let ratio = if negative { -num / den } else { num / den };
        return Some(
            Number::from_f64(ratio).map_or_else(|| Value::String(token.to_string()), Value::Number),
        );
    }

    // digits ('.' digits*)? ([eE] [+-]? digits)? M?
    let float = body.strip_suffix('M').unwrap_or(body);
    let bytes = float.as_bytes();
    let mut i = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if i == 0 {
        return None;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        i += bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if exp == 0 {
            return None;
        }
        i += exp;
    }
    if i != bytes.len() {
        return None;
    }
    let magnitude: f64 = float.parse().ok()?;
    let x = if negative { -magnitude } else { magnitude };
    Some(Number::from_f64(x).map_or_else(|| Value::String(token.to_string()), Value::Number))
}

/// An integer in the given radix; one that does not fit 64 bits is kept as a string.
fn integer(negative: bool, digits: &str, radix: u32, token: &str) -> Option<Value> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if let Ok(magnitude) = u64::from_str_radix(digits, radix) {
        if !negative {
            return Some(Value::from(magnitude));
        }
        if let Ok(v) = i64::try_from(-i128::from(magnitude)) {
            return Some(Value::from(v));
        }
    }
    let text = if radix == 10 {
        let digits = digits.trim_start_matches('0');
        let digits = if digits.is_empty() { "0" } else { digits };
        if negative {
            format!("-{digits}")
        } else {
            digits.to_string()
        }
    } else {
        token.to_string()
    };
    Some(Value::String(text))
}

// ---------------------------------------------------------------------------------------------
// Export

fn write_op(out: &mut String, op: &Op) {
    let _ = write!(out, "{{:index {}", op.index);
    if let Some(t) = op.time {
        let _ = write!(out, ", :time {t}");
    }
    match op.process {
        Process::Client(p) => {
            let _ = write!(out, ", :process {p}");
        }
        Process::Nemesis => out.push_str(", :process :nemesis"),
    }
    out.push_str(", :type :");
    out.push_str(op.kind.as_str());
    out.push_str(", :f ");
    write_name(out, &op.f);
    out.push_str(", :value ");
    write_value(out, &op.value);
    if let Some(e) = op.error.as_ref().filter(|e| !e.is_null()) {
        out.push_str(", :error ");
        write_value(out, e);
    }
    if let Some(node) = &op.node {
        out.push_str(", :node ");
        write_string(out, node);
    }
    for (k, v) in &op.extra {
        out.push_str(", ");
        write_name(out, k);
        out.push(' ');
        write_value(out, v);
    }
    out.push('}');
}

/// Whether `s` can be written as a keyword `:s` that reads back as exactly `s`.
fn is_keyword_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    let constituent = |b: &u8| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'*' | b'+' | b'!' | b'-' | b'_' | b'?' | b'<' | b'>' | b'=' | b'.' | b'/'
            )
    };
    if first.is_ascii_digit() || first == b'/' || !bytes.iter().all(constituent) {
        return false;
    }
    if matches!(first, b'+' | b'-' | b'.') && bytes.get(1).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    match s.split_once('/') {
        None => true,
        Some((ns, name)) => {
            !ns.is_empty()
                && !name.is_empty()
                && !name.contains('/')
                && !name.as_bytes().first().is_some_and(u8::is_ascii_digit)
        }
    }
}

/// A name (function, map key): a keyword when possible, else a string.
fn write_name(out: &mut String, name: &str) {
    if is_keyword_name(name) {
        out.push(':');
        out.push_str(name);
    } else {
        write_string(out, name);
    }
}

fn write_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(f) = n.as_f64() {
                // `Debug` always marks a float as one (`3.0`, `1e300`) and round-trips exactly.
                let _ = write!(out, "{f:?}");
            } else {
                let _ = write!(out, "{n}");
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_name(out, k);
                out.push(' ');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}
