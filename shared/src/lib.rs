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
//! - [`message`]: the WebSocket messages, [`ClientMessage`] and [`ServerMessage`].
//! - [`describe`]: plain-words renderings of calls and results, shared by the CLI and the page.
//!
//! # The WebSocket conversation
//! Every message is one JSON text frame, an object whose `type` field names it.
//!
//! 1. On connect the server sends [`ServerMessage::Hello`] first, carrying
//!    [`PROTOCOL_VERSION`]. A client built for another version must stop and say so.
//! 2. The client sends [`ClientMessage::Play`] with a scenario id.
//! 3. The server answers [`ServerMessage::RunStarted`], then any number of
//!    [`ServerMessage::Events`] batches (in `seq` order, none skipped unless `dropped` says so),
//!    then [`ServerMessage::RunFinished`].
//! 4. A message the server cannot accept gets a [`ServerMessage::Error`]; the connection and
//!    any run in progress go on.
//!
//! A new `Play` while a run is in progress stops that run first (it finishes as
//! [`RunOutcome::Cancelled`]); [`ClientMessage::Stop`] stops it without starting another.

pub mod call;
pub mod describe;
pub mod event;
pub mod message;
pub mod net;

pub use call::{Call, CallError, CallResult, ErrorOrigin, ReturnValue};
pub use event::{Event, Phase};
pub use message::{ClientMessage, ErrorCode, RoleProgram, RunOutcome, ScenarioInfo, ServerMessage};
pub use net::{Bytes, Family, SockAddr, SockType};

/// The version of this protocol. The server sends it first, in [`ServerMessage::Hello`];
/// it changes whenever a message changes shape, so that a page built for another version
/// can say so plainly instead of misreading events.
pub const PROTOCOL_VERSION: u32 = 1;
