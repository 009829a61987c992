//! `backend trace`: a run's events for the terminal, as a table or as JSON lines.
//!
//! Both formats are stable, because teachers grade and record runs with them:
//! - JSON lines: exactly one [`shared::Event`] per line, serialised as the WebSocket sends it
//!   (fields `seq`, `t_us`, `role`, `endpoint`, `line`, `call`, `args`, `phase`, and on return
//!   `result` or `error`, the latter with `errno`, `code`, `message`).
//!   Packets of the run (see [`shared::Packet`]) are lines of their own among them, in time
//!   order, each a packet's JSON with `"kind": "packet"` added; an event's line has no
//!   `kind`. The last line is the capture's state with `"kind": "capture"`.
//! - The table: one line per event, columns `SEQ`, `TIME_MS`, `ENDPOINT`, `LINE`, `PHASE` and
//!   the call as Python writes it, followed on return by `=` and the result or `!` and the
//!   error, and by the kernel's view of the socket in braces (`{ESTABLISHED recv-q 0
//!   send-q 0}`).

use std::fmt::Write as _;

use shared::describe::{call_text, error_text, result_text};
use shared::{Call, CallResult, Event, Phase, ReturnValue, SocketView};

/// The table's header line.
pub fn table_header() -> String {
    format!(
        "{:>4}  {:>9}  {:<12}  {:>4}  {:<6}  CALL",
        "SEQ", "TIME_MS", "ENDPOINT", "LINE", "PHASE"
    )
}

/// One event as a line of the table.
pub fn table_row(event: &Event) -> String {
    let phase = match event.phase {
        Phase::Enter => "enter",
        Phase::Return => "return",
    };
    let line = event
        .line
        .map_or_else(|| "-".to_owned(), |line| line.to_string());
    let mut row = format!(
        "{:>4}  {:>9.3}  {:<12}  {:>4}  {:<6}  {}",
        event.seq,
        event.t_us as f64 / 1000.0,
        event.endpoint,
        line,
        phase,
        call_text(&event.call)
    );
    match event.outcome() {
        None => {}
        Some(Ok(result)) => {
            let _ = write!(row, " = {}", result_text(result));
            let shows_addresses = matches!(
                event.call,
                Call::Bind { .. } | Call::Connect { .. } | Call::Accept
            );
            if shows_addresses && let Some(local) = &result.local {
                let _ = write!(row, "  [local {local}");
                match &result.peer {
                    Some(peer) => {
                        let _ = write!(row, ", peer {peer}]");
                    }
                    None => row.push(']'),
                }
            }
        }
        Some(Err(error)) => {
            let _ = write!(row, " ! {}", error_text(error));
        }
    }
    if let Some(Ok(CallResult {
        value:
            ReturnValue::Received {
                truncated_from: Some(whole),
                ..
            },
        ..
    })) = event.outcome()
    {
        let _ = write!(row, "  (a datagram of {whole} bytes, truncated)");
    }
    if let Some(Ok(result)) = event.outcome() {
        let process = match &result.value {
            ReturnValue::Accepted { process, .. } => process.as_ref(),
            _ => result.peer_process.as_ref(),
        };
        if let Some(process) = process {
            let _ = write!(row, "  (the peer is {}, pid {})", process.name, process.pid);
        }
    }
    if event.phase == Phase::Return
        && let Some(view) = event
            .kernel
            .iter()
            .find(|view| view.endpoint == event.endpoint)
    {
        let _ = write!(row, "  {{{}}}", kernel_text(view));
    }
    row
}

/// The kernel's view of a socket, as `ss` abbreviates it: `ESTABLISHED recv-q 13 send-q 0`.
pub fn kernel_text(view: &SocketView) -> String {
    let mut text = view.state.name().to_owned();
    if let (Some(queued), Some(backlog)) = (view.accept_queue, view.backlog) {
        let _ = write!(text, " accept-q {queued}/{backlog}");
    }
    if let Some(queued) = view.recv_queue {
        let _ = write!(text, " recv-q {queued}");
    }
    if let Some(queued) = view.send_queue {
        let _ = write!(text, " send-q {queued}");
    }
    if view.peer_closed {
        text.push_str(" (peer closed)");
    }
    if view.lingering {
        // After a close, or after the FIN exchange of a socket still open (TIME_WAIT).
        text.push_str(" (the connection, kept by the kernel)");
    }
    text
}

/// One packet as a line of the table: `SEQ` is the packet's own (`p3`), `ENDPOINT` is
/// `wire`, and the rest is what Wireshark's Info column would say.
pub fn packet_row(packet: &shared::Packet) -> String {
    format!(
        "{:>4}  {:>9.3}  {:<12}  {:>4}  {:<6}  {}",
        format!("p{}", packet.seq),
        packet.t_us as f64 / 1000.0,
        "wire",
        "-",
        "packet",
        packet.summary()
    )
}

/// One packet of a whole recording as a line of the table, followed by where it went and
/// why, in the words the page uses: `... [SYN, ACK] seq 0 ack 1 win 65483 len 0  server.s →
/// client.s: the kernel answers the SYN by itself ...`.
pub fn packet_row_explained(packet: &shared::Packet, cause: &shared::cause::PacketCause) -> String {
    format!("{}  {}: {}", packet_row(packet), cause.route(), cause.text)
}

/// One packet as a line of JSON: the packet's fields and `"kind": "packet"`.
pub fn packet_json_line(packet: &shared::Packet) -> String {
    tagged_json(packet, "packet")
}

/// The capture's state as the last line of JSON, with `"kind": "capture"`.
pub fn capture_json_line(capture: &shared::Capture) -> String {
    tagged_json(capture, "capture")
}

/// `value`'s JSON object with `"kind": KIND` first. Written straight from serde's output, not
/// through a `serde_json::Value` (a packet's is a few hundred bytes, and `watch` writes one a
/// packet while its program runs).
fn tagged_json(value: &impl serde::Serialize, kind: &str) -> String {
    let object = serde_json::to_string(value).expect("a packet always serialises to JSON");
    match object.strip_prefix('{') {
        Some("}") | None => format!("{{\"kind\":\"{kind}\"}}"),
        Some(fields) => format!("{{\"kind\":\"{kind}\",{fields}"),
    }
}

/// A run's events and packets in the order they happened, as the page steps through them
/// ([`shared::cause::steps`]).
pub fn in_time_order<'a>(events: &'a [Event], packets: &'a [shared::Packet]) -> Vec<Line<'a>> {
    shared::cause::steps(events, packets)
        .into_iter()
        .map(|step| match step {
            shared::cause::Step::Event(index) => Line::Event(&events[index]),
            shared::cause::Step::Packet(index) => Line::Packet(&packets[index]),
        })
        .collect()
}

/// A line of a run's trace.
#[derive(Clone, Copy, Debug)]
pub enum Line<'a> {
    /// A call entering or returning.
    Event(&'a Event),
    /// A packet.
    Packet(&'a shared::Packet),
}

/// One event as a line of JSON.
pub fn json_line(event: &Event) -> String {
    serde_json::to_string(event).expect("an event always serialises to JSON")
}
