//! `backend trace`: a run's events for the terminal, as a table or as JSON lines.
//!
//! Both formats are stable, because teachers grade and record runs with them:
//! - JSON lines: exactly one [`shared::Event`] per line, serialised as the WebSocket sends it
//!   (fields `seq`, `t_us`, `role`, `endpoint`, `line`, `call`, `args`, `phase`, and on return
//!   `result` or `error`, the latter with `errno`, `code`, `message`).
//! - The table: one line per event, columns `SEQ`, `TIME_MS`, `ENDPOINT`, `LINE`, `PHASE` and
//!   the call as Python writes it, followed on return by `=` and the result or `!` and the
//!   error.

use std::fmt::Write as _;

use shared::describe::{call_text, error_text, result_text};
use shared::{Call, Event, Phase};

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
    row
}

/// One event as a line of JSON.
pub fn json_line(event: &Event) -> String {
    serde_json::to_string(event).expect("an event always serialises to JSON")
}
