//! [`TraceFile`]: a recorded run, saved by the page and opened again with no backend at all.

use serde::{Deserialize, Serialize};
use shared_derive::{Decode, Encode};

use crate::event::Event;
use crate::message::{RoleProgram, RunOutcome, ScenarioInfo};
use crate::packet::{Capture, Packet};

/// The `format` field of every trace file, so that a file of another kind is named as such.
pub const TRACE_FORMAT: &str = "socket-lab-trace";

/// A run as a file: what the page needs to show it again, step by step.
///
/// In JSON: `{"format": "socket-lab-trace", "protocol": 2, "scenario": {...}, "programs":
/// [...], "events": [...], "outcome": {...}}`. The events are exactly those the WebSocket sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct TraceFile {
    /// Always [`TRACE_FORMAT`].
    pub format: String,
    /// The [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION) the events are written in.
    pub protocol: u32,
    /// The scenario that was played (or the sandbox).
    pub scenario: ScenarioInfo,
    /// Each role's program.
    pub programs: Vec<RoleProgram>,
    /// Every event of the run, in `seq` order.
    pub events: Vec<Event>,
    /// How the run ended, if it had when the file was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RunOutcome>,
    /// Whether the run's packets were captured, and what was not kept (protocol 8 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<Capture>,
    /// The run's packets, in `seq` order (protocol 8 on; absent in older files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packets: Vec<Packet>,
}

/// The oldest protocol whose trace files this version reads: events have kept their shape
/// since (protocols 3 to 5 only changed the messages around them, and 6 added a kernel
/// view's `peer_closed`, which older files leave out and which reads as false; 7 added a
/// watched program's `watched`, a program's `file` and the `other` call, all optional or
/// new, so a file of 2 to 6 reads as it always did; 8 added the run's `packets` and
/// `capture`, which older files leave out).
pub const OLDEST_READABLE_PROTOCOL: u32 = 2;

impl TraceFile {
    /// Reads a trace file, saying plainly what is wrong with one that cannot be shown.
    pub fn parse(json: &str) -> Result<TraceFile, String> {
        let file: TraceFile = crate::decode::from_str(json)
            .map_err(|error| format!("this is not a Socket Lab trace file ({error})"))?;
        if file.format != TRACE_FORMAT {
            return Err(format!(
                "this file's format is '{}', not '{TRACE_FORMAT}'",
                file.format
            ));
        }
        if !(OLDEST_READABLE_PROTOCOL..=crate::PROTOCOL_VERSION).contains(&file.protocol) {
            return Err(format!(
                "this trace was written in protocol {}, and this page reads protocols \
                 {OLDEST_READABLE_PROTOCOL} to {}",
                file.protocol,
                crate::PROTOCOL_VERSION
            ));
        }
        // Events the server dropped for a slow page leave gaps, so only the order is checked.
        if let Some(index) = file
            .events
            .windows(2)
            .position(|pair| pair[1].seq <= pair[0].seq)
        {
            return Err(format!(
                "event {} of the file has seq {} after seq {}: events must be in seq order",
                index + 1,
                file.events[index + 1].seq,
                file.events[index].seq
            ));
        }
        Ok(file)
    }

    /// The file as JSON, as serde would write it (written by [`crate::encode`], which the
    /// page uses to keep serde's writer out of its wasm).
    pub fn to_json(&self) -> String {
        crate::encode::to_string(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> TraceFile {
        TraceFile {
            format: TRACE_FORMAT.into(),
            protocol: crate::PROTOCOL_VERSION,
            scenario: ScenarioInfo {
                id: "tcp-echo".into(),
                title: "TCP echo".into(),
                summary: "s".into(),
                outside_roles: vec![],
            },
            programs: vec![],
            events: vec![],
            outcome: Some(RunOutcome::Completed),
            capture: None,
            packets: vec![],
        }
    }

    #[test]
    fn a_trace_file_round_trips() {
        let file = file();
        assert_eq!(TraceFile::parse(&file.to_json()), Ok(file));
    }

    #[test]
    fn other_files_are_refused_with_a_reason() {
        assert!(
            TraceFile::parse("{\"hello\": 1}")
                .unwrap_err()
                .contains("not a Socket Lab trace")
        );
        let mut other = file();
        other.format = "har".into();
        assert!(
            TraceFile::parse(&other.to_json())
                .unwrap_err()
                .contains("'har'")
        );
        let mut old = file();
        old.protocol = 1;
        assert!(
            TraceFile::parse(&old.to_json())
                .unwrap_err()
                .contains("protocol 1")
        );
    }
}
