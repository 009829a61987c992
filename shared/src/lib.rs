//! The wire protocol of Socket Lab, the one vocabulary of the whole app.
//!
//! The backend performs socket calls on real kernel sockets and describes each one as an
//! [`Event`]; the frontend only draws events. Both sides, and the `backend trace --json` output
//! that teachers grade with, use the types of this crate and nothing else.
//!
//! # Layout
//! - [`net`]: the nouns of the socket API: families, types, addresses and byte strings, each
//!   serialised the way Python's `socket` module names it (`AF_INET`, `SOCK_STREAM`).
//! - [`call`]: one enum of the calls, with their arguments, results and errors.
//! - [`event`]: an [`Event`] is one call entering or returning on one endpoint.
//! - [`kernel`]: the kernel's own view of each socket (TCP state, queues), on every event.
//! - [`message`]: the WebSocket messages, [`ClientMessage`] and [`ServerMessage`].
//! - [`packet`]: the packets a run's sockets put on the wire, captured from the kernel, and
//!   [`pcapng`], the file Wireshark opens of them, and [`cause`], why each was sent.
//! - [`describe`]: plain-words renderings of calls and results, shared by the CLI and the page.
//! - [`trace_file`]: a recorded run as a file, to replay with no backend.
//! - [`decode`] and [`encode`]: the page's own JSON reader and writer of these types, which
//!   read and write exactly what serde does, without serde's code in the page's wasm.
//!
//! # The WebSocket conversation
//! Every message is one JSON text frame, an object whose `type` field names it.
//!
//! 1. On connect the server sends [`ServerMessage::Hello`] first, carrying
//!    [`PROTOCOL_VERSION`]. A client built for another version must stop and say so.
//! 2. The client sends [`ClientMessage::Play`] with a scenario id.
//! 3. The server answers [`ServerMessage::RunStarted`], then any number of
//!    [`ServerMessage::Events`] batches, in `seq` order, none skipped unless a batch's
//!    `dropped` ranges say so, then [`ServerMessage::RunFinished`]. Events go out as they
//!    happen; when a run makes more than 2,000 a second, at most 60 batches a second carry
//!    them, each with at most about 256 KiB of events. The events beyond that, and those a
//!    page that reads too slowly missed, are [`Dropped`] ranges: counted, with the calls that
//!    returned in them tallied by endpoint and call ([`CallTally`]: how many, how many
//!    failed, how many bytes).
//! 4. A message the server cannot accept gets a [`ServerMessage::Error`]; the connection and
//!    any run in progress go on.
//!
//! The server may close the connection with a code and a reason that names the limit:
//! 1001 when it shuts down, 1009 for a message over its size limit, and those of
//! [`message::close_code`] (too many sessions, idle too long). Limits that do not end the
//! session (messages a second, calls waiting) are [`ServerMessage::Error`]s with code
//! `limit_reached`.
//!
//! A new `Play` while a run is in progress stops that run first (it finishes as
//! [`RunOutcome::Cancelled`]); [`ClientMessage::Stop`] stops it without starting another.
//!
//! A `Play` with `quiet` sends no events: only `RunStarted` and `RunFinished` (what a script
//! that wants only the outcome needs, and what `backend bench` measures watching against).
//!
//! A `Play` with `pause_before_calls` makes the run wait before each call: the server sends
//! [`ServerMessage::Paused`] naming the call that is next, and makes it when the client sends
//! [`ClientMessage::Next`].
//!
//! Instead of a scenario, the client may drive a sandbox: each [`ClientMessage::Call`] performs
//! one call on the user's own sockets. The first one starts a sandbox run (a `RunStarted`
//! whose scenario id is [`SANDBOX_ID`]); its events then arrive like a scenario's, and it
//! lasts until `Stop`, a `Play`, or the end of the connection, which close all its sockets and
//! remove its files. Its IP sockets are in the session's own network, where their packets are
//! captured, unless a [`ClientMessage::Sandbox`] asks for the machine's, where the student's
//! own programs can reach them.
//!
//! Beside the events, a run's packets come in [`ServerMessage::Packets`] batches, after a
//! [`ServerMessage::Capture`] that says whether they are captured at all (and why not); a
//! second `Capture` before `RunFinished` gives the final counts of packets not kept.
//!
//! [`ClientMessage::Watch`] shows the programs `socket-lab watch` runs on the server's machine
//! instead: a run whose roles are processes and whose events carry [`Watched`]; its
//! programs come as they are found, in [`ServerMessage::Program`]s before the events that
//! name them, and the next watched run follows its `RunFinished` on the same subscription.

pub mod call;
pub mod cause;
pub mod decode;
pub mod describe;
pub mod encode;
pub mod event;
pub mod kernel;
pub mod message;
pub mod net;
pub mod packet;
pub mod pcapng;
pub mod trace_file;

pub use call::{
    Call, CallError, CallResult, ErrorOrigin, PeerProcess, ReturnValue, Shutdown, SockOption,
};
pub use event::{Event, Phase, Watched};
pub use kernel::{SocketState, SocketView};
pub use message::{
    CallTally, ClientMessage, Dropped, ErrorCode, MAX_ENDPOINT_NAME, MAX_RECV_BUFSIZE, NextCall,
    OutsideRole, RoleProgram, RunOutcome, SANDBOX_ID, SandboxNetwork, ScenarioInfo, ServerMessage,
};
pub use net::{Bytes, Family, SockAddr, SockType};
pub use packet::{Capture, IcmpMessage, Packet, Protocol, Quoted, TcpFlag, TcpSegment};
pub use trace_file::{TRACE_FORMAT, TraceFile};

/// The version of this protocol. The server sends it first, in [`ServerMessage::Hello`];
/// it changes whenever a message changes shape, so that a page built for another version
/// can say so plainly instead of misreading events.
pub const PROTOCOL_VERSION: u32 = 9;
