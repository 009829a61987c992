//! A JSON writer for what the page sends and saves: [`ClientMessage`]s and [`TraceFile`]s.
//!
//! The page reads messages with [`crate::decode`] rather than serde, to keep the wasm small;
//! this is the same for writing. serde's derived `Serialize` for the protocol's enums and its
//! JSON writer were about 6 KB of the page's gzipped wasm, for a message a click and a trace
//! file now and then. Written out by hand, with nothing that can fail, the page is 3.3 KB
//! smaller than with them.
//!
//! The JSON is exactly what `serde_json::to_string` writes for the same value (the same fields
//! in the same order, the same escapes): the tests below hold it to serde for every message,
//! call, return value and outcome, and for any text. The backend, which writes events by the
//! hundred thousand, keeps serde's writer; both read each other's JSON.
//!
//! The plain structs and unit enums derive `Encode` from their serde attributes
//! (`shared-derive`); the `encode`s here, of the tagged enums and the types with a form of
//! their own, mirror their types' serde attributes by hand, so a change to one of those must
//! be made here as well as in `decode/protocol.rs`; the tests fail until it is.

use crate::call::{Call, ReturnValue, SockOption};
use crate::kernel::SocketState;
use crate::message::{ClientMessage, OutsideRole, RunOutcome};
use crate::net::{Bytes, SockAddr};

/// Writes `value` as JSON.
pub fn to_string<T: Encode + ?Sized>(value: &T) -> String {
    let mut writer = Writer {
        out: String::new(),
        first: true,
    };
    value.encode(&mut writer);
    writer.out
}

/// A value that can be written as JSON by [`to_string`].
pub trait Encode {
    /// Writes the value at the writer's current place: an object's value or an array's element.
    fn encode(&self, writer: &mut Writer);
}

/// The JSON being written. `first` says whether the object or array just opened has nothing
/// in it yet, so that the next key or element needs no comma before it.
#[derive(Debug)]
pub struct Writer {
    out: String,
    first: bool,
}

impl Writer {
    pub(crate) fn open(&mut self, bracket: char) {
        self.out.push(bracket);
        self.first = true;
    }

    pub(crate) fn close(&mut self, bracket: char) {
        self.out.push(bracket);
        self.first = false;
    }

    fn comma(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    /// Starts the field `name` of the object being written; its value comes next. Names are
    /// the protocol's own, plain ASCII with nothing to escape.
    pub(crate) fn key(&mut self, name: &str) {
        self.comma();
        self.out.push('"');
        self.out.push_str(name);
        self.out.push_str("\":");
    }

    pub(crate) fn field(&mut self, name: &str, value: &(impl Encode + ?Sized)) {
        self.key(name);
        value.encode(self);
    }

    /// A field serde leaves out when it is `None` (`skip_serializing_if = "Option::is_none"`).
    pub(crate) fn optional(&mut self, name: &str, value: Option<&(impl Encode + ?Sized)>) {
        if let Some(value) = value {
            self.field(name, value);
        }
    }

    /// A field serde leaves out when it is false (`skip_serializing_if = "is_false"`).
    pub(crate) fn flag(&mut self, name: &str, value: bool) {
        if value {
            self.field(name, &true);
        }
    }

    /// A field serde leaves out when it is empty (`skip_serializing_if = "Vec::is_empty"`).
    pub(crate) fn list<T: Encode>(&mut self, name: &str, items: &[T]) {
        if !items.is_empty() {
            self.field(name, items);
        }
    }

    fn unsigned(&mut self, value: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = value;
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        for &digit in &digits[at..] {
            self.out.push(char::from(digit));
        }
    }

    fn signed(&mut self, value: i64) {
        if value < 0 {
            self.out.push('-');
        }
        self.unsigned(value.unsigned_abs());
    }

    /// A JSON string, escaped as `serde_json` escapes it: quotes, backslashes and control
    /// characters, nothing else.
    fn string(&mut self, text: &str) {
        self.out.push('"');
        let mut plain_from = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..0x20 => "",
                _ => continue,
            };
            self.out.push_str(&text[plain_from..at]);
            plain_from = at + 1;
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.out.push_str("\\u00");
                self.out.push(char::from(HEX[usize::from(byte >> 4)]));
                self.out.push(char::from(HEX[usize::from(byte & 0xf)]));
            } else {
                self.out.push_str(escape);
            }
        }
        self.out.push_str(&text[plain_from..]);
        self.out.push('"');
    }

    /// The `"type"`, `"kind"` or other tag field that opens an internally tagged object.
    fn tagged(&mut self, tag: &str, name: &str) {
        self.open('{');
        self.field(tag, name);
    }
}

impl Encode for str {
    fn encode(&self, writer: &mut Writer) {
        writer.string(self);
    }
}

impl Encode for String {
    fn encode(&self, writer: &mut Writer) {
        writer.string(self);
    }
}

impl Encode for bool {
    fn encode(&self, writer: &mut Writer) {
        writer.out.push_str(if *self { "true" } else { "false" });
    }
}

impl Encode for u64 {
    fn encode(&self, writer: &mut Writer) {
        writer.unsigned(*self);
    }
}

impl Encode for u32 {
    fn encode(&self, writer: &mut Writer) {
        writer.unsigned(u64::from(*self));
    }
}

impl Encode for u16 {
    fn encode(&self, writer: &mut Writer) {
        writer.unsigned(u64::from(*self));
    }
}

impl Encode for usize {
    fn encode(&self, writer: &mut Writer) {
        // usize is at most 64 bits on every target Socket Lab builds for.
        writer.unsigned(*self as u64);
    }
}

impl Encode for i32 {
    fn encode(&self, writer: &mut Writer) {
        writer.signed(i64::from(*self));
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, writer: &mut Writer) {
        match self {
            Some(value) => value.encode(writer),
            None => writer.out.push_str("null"),
        }
    }
}

impl<T: Encode> Encode for [T] {
    fn encode(&self, writer: &mut Writer) {
        writer.open('[');
        for item in self {
            writer.comma();
            item.encode(writer);
        }
        writer.close(']');
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, writer: &mut Writer) {
        self.as_slice().encode(writer);
    }
}

// ----- The protocol -----

impl Encode for RunOutcome {
    fn encode(&self, writer: &mut Writer) {
        match self {
            RunOutcome::Completed => writer.tagged("outcome", "completed"),
            RunOutcome::Cancelled { reason } => {
                writer.tagged("outcome", "cancelled");
                writer.field("reason", reason);
            }
            RunOutcome::Failed { message } => {
                writer.tagged("outcome", "failed");
                writer.field("message", message);
            }
        }
        writer.close('}');
    }
}

impl Encode for ClientMessage {
    fn encode(&self, writer: &mut Writer) {
        match self {
            ClientMessage::Play {
                scenario,
                pause_before_calls,
                quiet,
                outside,
            } => {
                writer.tagged("type", "play");
                writer.field("scenario", scenario);
                writer.flag("pause_before_calls", *pause_before_calls);
                writer.flag("quiet", *quiet);
                writer.optional("outside", outside.as_ref());
            }
            ClientMessage::Next => writer.tagged("type", "next"),
            ClientMessage::Stop => writer.tagged("type", "stop"),
            ClientMessage::Watch => writer.tagged("type", "watch"),
            ClientMessage::Sandbox { network } => {
                writer.tagged("type", "sandbox");
                writer.field("network", network);
            }
            ClientMessage::Call { endpoint, call } => {
                writer.tagged("type", "call");
                writer.field("endpoint", endpoint);
                call_fields(writer, call);
            }
        }
        writer.close('}');
    }
}

impl Encode for OutsideRole {
    fn encode(&self, writer: &mut Writer) {
        writer.open('{');
        writer.field("role", &self.role);
        writer.field("port", &self.port);
        writer.optional("timeout_secs", self.timeout_secs.as_ref());
        writer.close('}');
    }
}

/// A type whose fields are written inline, into the object of the type that holds it
/// (serde's `flatten`); the derived `Encode` of the holder calls it in the field's place.
pub(crate) trait EncodeFlat {
    /// Writes its fields into the object being written.
    fn encode_fields(&self, writer: &mut Writer);
}

impl EncodeFlat for Call {
    fn encode_fields(&self, writer: &mut Writer) {
        call_fields(writer, self);
    }
}

impl Encode for SocketState {
    fn encode(&self, writer: &mut Writer) {
        writer.string(self.name());
    }
}

/// A [`Call`] flattened into the object being written: `"call"` names it, and `"args"`, if
/// the call has any, holds them (serde's `tag = "call", content = "args"`).
fn call_fields(writer: &mut Writer, call: &Call) {
    writer.field("call", call.name());
    let no_args = matches!(
        call,
        Call::Gethostname | Call::Accept | Call::Getsockname | Call::Getpeername | Call::Close
    );
    if no_args {
        return;
    }
    writer.key("args");
    writer.open('{');
    match call {
        Call::Socket { family, sock_type } => {
            writer.field("family", family.name());
            writer.field("type", sock_type.name());
        }
        Call::Bind { address } | Call::Connect { address } => writer.field("address", address),
        Call::Listen { backlog } => writer.field("backlog", backlog),
        Call::Send { data } | Call::Sendall { data } => writer.field("data", data),
        Call::Sendto { data, address } => {
            writer.field("data", data);
            writer.field("address", address);
        }
        Call::Recv { bufsize } | Call::Recvfrom { bufsize } => writer.field("bufsize", bufsize),
        Call::Shutdown { how } => writer.field("how", how.name()),
        Call::Setsockopt { option } => writer.field("option", option),
        Call::Setblocking { flag } => writer.field("flag", flag),
        Call::Settimeout { millis } => writer.optional("millis", millis.as_ref()),
        Call::Other { text } => writer.field("text", text),
        Call::Gethostname | Call::Accept | Call::Getsockname | Call::Getpeername | Call::Close => {}
    }
    writer.close('}');
}

impl Encode for SockOption {
    fn encode(&self, writer: &mut Writer) {
        writer.tagged("name", self.name());
        writer.key("value");
        match *self {
            SockOption::ReuseAddr(on) | SockOption::NoDelay(on) => on.encode(writer),
            SockOption::Linger(seconds) => seconds.encode(writer),
            SockOption::RecvBuffer(bytes) | SockOption::SendBuffer(bytes) => bytes.encode(writer),
        }
        writer.close('}');
    }
}

impl Encode for SockAddr {
    fn encode(&self, writer: &mut Writer) {
        match self {
            SockAddr::Inet { host, port } => {
                writer.tagged("family", "AF_INET");
                writer.key("host");
                writer.string(&host.to_string());
                writer.field("port", port);
            }
            SockAddr::Inet6 {
                host,
                port,
                flowinfo,
                scope_id,
            } => {
                writer.tagged("family", "AF_INET6");
                writer.key("host");
                writer.string(&host.to_string());
                writer.field("port", port);
                writer.field("flowinfo", flowinfo);
                writer.field("scope_id", scope_id);
            }
            SockAddr::Unix { path, r#abstract } => {
                writer.tagged("family", "AF_UNIX");
                writer.field("path", path);
                writer.flag("abstract", *r#abstract);
            }
        }
        writer.close('}');
    }
}

impl Encode for Bytes {
    fn encode(&self, writer: &mut Writer) {
        writer.open('{');
        writer.field("len", &self.len());
        writer.field("text", &self.escaped());
        writer.field("hex", &self.hex());
        writer.close('}');
    }
}

impl Encode for ReturnValue {
    fn encode(&self, writer: &mut Writer) {
        match self {
            ReturnValue::None => writer.tagged("kind", "none"),
            ReturnValue::Socket => writer.tagged("kind", "socket"),
            ReturnValue::Hostname { name } => {
                writer.tagged("kind", "hostname");
                writer.field("name", name);
            }
            ReturnValue::Accepted {
                endpoint,
                fd,
                address,
                process,
            } => {
                writer.tagged("kind", "accepted");
                writer.field("endpoint", endpoint);
                writer.field("fd", fd);
                writer.field("address", address);
                writer.optional("process", process.as_ref());
            }
            ReturnValue::Sent { count } => {
                writer.tagged("kind", "sent");
                writer.field("count", count);
            }
            ReturnValue::Received {
                data,
                from,
                truncated_from,
            } => {
                writer.tagged("kind", "received");
                writer.field("data", data);
                writer.optional("from", from.as_ref());
                writer.optional("truncated_from", truncated_from.as_ref());
            }
            ReturnValue::Address { address } => {
                writer.tagged("kind", "address");
                writer.field("address", address);
            }
        }
        writer.close('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::message::tests::{every_client_message, every_server_message};
    use crate::message::{RoleProgram, ScenarioInfo};
    use crate::trace_file::TraceFile;
    use crate::{ServerMessage, SocketState, SocketView};

    /// The events of the test messages (every call entering, every return value, an error),
    /// numbered in order as a run's are.
    fn every_event() -> Vec<Event> {
        let mut events: Vec<Event> = every_server_message()
            .into_iter()
            .flat_map(|message| match message {
                ServerMessage::Events { events, .. } => events,
                _ => Vec::new(),
            })
            .collect();
        for (seq, event) in (1..).zip(&mut events) {
            event.seq = seq;
        }
        events
    }

    fn trace(events: Vec<Event>, outcome: Option<RunOutcome>) -> TraceFile {
        TraceFile {
            format: crate::TRACE_FORMAT.into(),
            protocol: crate::PROTOCOL_VERSION,
            scenario: ScenarioInfo {
                id: "tcp-echo".into(),
                title: "TCP \"echo\"".into(),
                summary: "a\tb\u{1}\u{7f}é".into(),
                outside_roles: vec!["client".into()],
            },
            programs: vec![
                RoleProgram {
                    role: "server".into(),
                    code: "import socket\n\ts = socket.socket()\r\n".into(),
                    outside: false,
                    file: Some("/home/ana/server.py".into()),
                },
                RoleProgram {
                    role: "client".into(),
                    code: String::new(),
                    outside: true,
                    file: None,
                },
            ],
            events,
            outcome,
            capture: Some(crate::packet::Capture::off("no namespaces")),
            packets: crate::packet::examples(),
        }
    }

    #[test]
    fn client_messages_are_written_as_serde_writes_them() {
        let messages = every_client_message();
        assert!(messages.len() > 20);
        for message in messages {
            assert_eq!(
                to_string(&message),
                serde_json::to_string(&message).unwrap()
            );
        }
    }

    #[test]
    fn events_are_written_as_serde_writes_them() {
        let mut events = every_event();
        assert!(events.len() > 30);
        // Kernel views with every state and each optional field on its own.
        for (index, state) in SocketState::ALL.into_iter().enumerate() {
            let number = u32::try_from(index).unwrap();
            events[index].kernel = vec![SocketView {
                endpoint: format!("e{index}"),
                state,
                recv_queue: (index % 2 == 0).then_some(number),
                send_queue: (index % 3 == 0).then_some(u32::MAX),
                accept_queue: (index % 4 == 0).then_some(0),
                backlog: (index % 5 == 0).then_some(number * 7),
                lingering: index % 2 == 1,
                peer_closed: index % 3 == 1,
            }];
        }
        events[0].line = Some(12);
        events[1].seq = u64::MAX;
        for event in &events {
            assert_eq!(to_string(event), serde_json::to_string(event).unwrap());
        }
    }

    #[test]
    fn trace_files_are_written_as_serde_writes_them_and_read_back() {
        let outcomes = [
            None,
            Some(RunOutcome::Completed),
            Some(RunOutcome::Cancelled {
                reason: "stopped".into(),
            }),
            Some(RunOutcome::Failed {
                message: "the \\ server \"failed\"".into(),
            }),
        ];
        for outcome in outcomes {
            let file = trace(every_event(), outcome);
            let json = to_string(&file);
            assert_eq!(json, serde_json::to_string(&file).unwrap());
            assert_eq!(TraceFile::parse(&json), Ok(file));
        }
        let empty = trace(Vec::new(), None);
        assert_eq!(to_string(&empty), serde_json::to_string(&empty).unwrap());
    }

    #[test]
    fn numbers_are_written_whole() {
        for value in [0, 9, 10, 99, 100, 12345, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(to_string(&value), value.to_string());
        }
        for value in [0, -1, 7, -10, i32::MIN, i32::MAX] {
            assert_eq!(to_string(&value), value.to_string());
        }
    }

    #[test]
    fn every_ascii_character_is_escaped_as_serde_escapes_it() {
        for byte in 0..0x80u8 {
            let text = format!("a{}b", char::from(byte));
            assert_eq!(to_string(&text), serde_json::to_string(&text).unwrap());
        }
    }

    /// Text of any characters, ASCII ones (where the escapes are) as often as the rest.
    fn any_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(
            prop_oneof![any::<char>(), (0..0x80u8).prop_map(char::from)],
            0..24,
        )
        .prop_map(String::from_iter)
    }

    proptest::proptest! {
        /// Any text, in every place text goes, is escaped as serde escapes it.
        #[test]
        fn any_text_is_escaped_as_serde_escapes_it(
            text in any_text(),
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let message = ClientMessage::Call {
                endpoint: text.clone(),
                call: Call::Sendto {
                    data: Bytes(data),
                    address: SockAddr::Unix { path: text.clone(), r#abstract: true },
                },
            };
            proptest::prop_assert_eq!(to_string(&message), serde_json::to_string(&message).unwrap());
            let program = RoleProgram { role: text.clone(), code: text, outside: false, file: None };
            proptest::prop_assert_eq!(to_string(&program), serde_json::to_string(&program).unwrap());
        }
    }
}
