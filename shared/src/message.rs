//! The WebSocket messages. See the crate documentation for the order they come in.

use serde::{Deserialize, Serialize};
use shared_derive::{Decode, Encode};

use crate::call::Call;
use crate::event::Event;
use crate::packet::{Capture, Packet};

/// A scenario the backend can play.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct ScenarioInfo {
    /// Its id, as used in `?scenario=` links and `backend trace <id>`.
    pub id: String,
    /// A short title.
    pub title: String,
    /// A paragraph on what it teaches.
    pub summary: String,
    /// The roles an outside program may play (`client`, `server`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outside_roles: Vec<String>,
}

/// One role's program in a run: the Python code a student would write to make the same calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct RoleProgram {
    /// The role, such as `server`; events name it in their `role` field.
    pub role: String,
    /// The program's source; an event's `line` counts lines of it from 1.
    pub code: String,
    /// For a watched program, which may run code from several files: the file this is, as
    /// the events' `watched.file` names it. Absent for a scenario's programs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The role is left to an outside program: this is the program to run, and no events of
    /// it will come.
    #[serde(default, skip_serializing_if = "is_false")]
    pub outside: bool,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every role ran its program to the end (a program that raised an error ends there, as
    /// Python's would).
    Completed,
    /// The run was stopped before its end.
    Cancelled {
        /// Why, in plain words.
        reason: String,
    },
    /// Socket Lab itself failed; the events so far are still true.
    Failed {
        /// What went wrong.
        message: String,
    },
}

/// A message from the page to the backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Play a scenario on real sockets, stopping any run in progress first.
    Play {
        /// The scenario's id.
        scenario: String,
        /// Pause before each call until [`ClientMessage::Next`], so that a student can
        /// predict what the call will do before the kernel answers (see
        /// [`ServerMessage::Paused`]).
        #[serde(default, skip_serializing_if = "is_false")]
        pause_before_calls: bool,
        /// Send no events, only `RunStarted` and `RunFinished`: the run's sockets are watched
        /// by nobody (no kernel views are read). For a script that wants only how a run ends,
        /// and for `backend bench`, which measures what watching costs against it. A run with
        /// an `outside` program sends its events whatever this says.
        #[serde(default, skip_serializing_if = "is_false")]
        quiet: bool,
        /// Leave one role to a program outside Socket Lab (the student's own), which meets
        /// the run on 127.0.0.1 at the given port.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outside: Option<OutsideRole>,
    },
    /// Make the call that the paused run waits to make.
    Next,
    /// Stop the run in progress, closing its sockets.
    Stop,
    /// Perform one call in the session's sandbox: the user's own sockets, any call in any
    /// order. The first `Call` starts a sandbox run (see [`SANDBOX_ID`]); its events come like
    /// any run's. A call that waits (`accept`, `recv`) does not hold up the next message, so
    /// a user can `accept` on one socket and `connect` another to it.
    ///
    /// In JSON: `{"type": "call", "endpoint": "s", "call": "socket", "args": {...}}`.
    Call {
        /// The endpoint: for `socket`, the name of the new one; for the other calls, an open
        /// one. A name is 1 to 32 letters, digits or `_`, not starting with a digit; `accept`
        /// names its new connection after the listener: `s.conn`, then `s.conn2`, ...
        endpoint: String,
        /// The call and its arguments.
        #[serde(flatten)]
        call: Call,
    },
    /// Start the sandbox afresh on `network`: the run in progress stops (a sandbox's
    /// sockets are closed) and a new sandbox run starts at once; the session's later `Call`s
    /// use this network until the next `Sandbox`. Without one, the first `Call` starts the
    /// sandbox on [`SandboxNetwork::Own`].
    ///
    /// In JSON: `{"type": "sandbox", "network": "machine"}`.
    Sandbox {
        /// Where the sandbox's IP sockets live.
        network: SandboxNetwork,
    },
    /// Show the programs `socket-lab watch` runs on this machine (the student's own), as one
    /// run: the one in progress, or else the last one, then each that follows, until another
    /// message starts something else or `Stop`. The page cannot start a program; only the
    /// `watch` command line can.
    Watch,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// Where a sandbox's IP sockets live: the choice between seeing their packets and letting the
/// student's own programs reach them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
#[serde(rename_all = "snake_case")]
pub enum SandboxNetwork {
    /// The session's own network, where every packet is captured and shown; nothing outside
    /// Socket Lab reaches it. (A server with `--allow-net`, or where Socket Lab can have no
    /// network of its own, keeps this on the machine's network, and the capture state says
    /// why.)
    #[default]
    Own,
    /// The machine's network, where the student's own programs (`nc`, a `client.py`) can
    /// reach the sandbox's listeners and the sandbox can connect to theirs; its packets are
    /// not captured, and the capture state says so.
    Machine,
}

/// A role of a scenario played by an outside program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutsideRole {
    /// The role, `client` or `server`.
    pub role: String,
    /// The port on 127.0.0.1 where the server listens.
    pub port: u16,
    /// How many seconds to wait for the outside program (the server's choice if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
}

/// A call a paused run is about to make, once the user says so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode)]
pub struct NextCall {
    /// The program that will make it.
    pub role: String,
    /// The endpoint it will be made on.
    pub endpoint: String,
    /// The line of the program that makes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The call and its arguments (`call` and `args` in JSON).
    #[serde(flatten)]
    pub call: Call,
}

/// The longest name of a sandbox socket.
pub const MAX_ENDPOINT_NAME: usize = 32;

/// The largest `recv` buffer a call may ask for. Python would allocate whatever it is asked;
/// a shared server must not. The page checks it before sending, the backend on receiving.
pub const MAX_RECV_BUFSIZE: usize = 1 << 20;

/// Checks the endpoint of a sandbox [`ClientMessage::Call`]: a Python-like name of 1 to
/// [`MAX_ENDPOINT_NAME`] letters, digits or `_`, not starting with a digit. `accept` names a
/// connection after its listener (`s.conn`), so other calls may name one such, but a new
/// socket (`new_socket`) may not.
pub fn check_endpoint_name(endpoint: &str, new_socket: bool) -> Result<(), String> {
    let names: Vec<&str> = endpoint.split('.').collect();
    let identifier = |name: &&str| {
        let mut chars = name.chars();
        name.len() <= MAX_ENDPOINT_NAME
            && chars
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !names.iter().all(identifier) || names.len() > 2 || (new_socket && names.len() != 1) {
        // The name is shown as given, but only its printable ASCII and at most 40 characters
        // of it, so that no control character or screenful of text reaches a log or the page.
        let shown: String = endpoint
            .chars()
            .take(40)
            .map(|c| {
                if c == ' ' || c.is_ascii_graphic() {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        let more = if endpoint.chars().nth(40).is_some() {
            "…"
        } else {
            ""
        };
        return Err(format!(
            "'{shown}{more}' is not a socket name: use 1 to {MAX_ENDPOINT_NAME} letters, digits \
             or '_', not starting with a digit, such as 's' or 'server' (an accepted connection \
             is named like 's.conn')"
        ));
    }
    Ok(())
}

/// Reads a message from the page: the server's one decoder, which the fuzz target
/// (`fuzz/fuzz_targets/protocol.rs`) drives with arbitrary input. Any text gives a
/// message or an error that says what was wrong; none makes it panic.
pub fn decode_client_message(text: &str) -> Result<ClientMessage, String> {
    serde_json::from_str(text).map_err(|error| error.to_string())
}

/// The `id` of the [`ScenarioInfo`] in the `RunStarted` of a sandbox run, and the `role` of
/// its events.
pub const SANDBOX_ID: &str = "sandbox";

/// A message from the backend to the page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The first message on every connection.
    Hello {
        /// The backend's [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
        protocol: u32,
        /// The backend's own version, for people reading logs.
        server_version: String,
        /// The scenarios the backend can play.
        scenarios: Vec<ScenarioInfo>,
    },
    /// A run has started; its events follow.
    RunStarted {
        /// The run's number, unique on this connection.
        run: u64,
        /// The scenario being played.
        scenario: ScenarioInfo,
        /// Each role's program, with the addresses this run uses written into it (none for
        /// a sandbox).
        programs: Vec<RoleProgram>,
        /// The run's own directory, where its `AF_UNIX` path names live. A relative path given
        /// to `bind`, `connect` or `sendto` is taken inside it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unix_dir: Option<String>,
    },
    /// Events of a run, in `seq` order, and the ranges of events the server did not send.
    ///
    /// Every `seq` of a run comes exactly once: as an event, or inside one of the `dropped`
    /// ranges of this or another `Events` message. A busy run's events come in at most 60
    /// messages a second, each with everything that happened since the one before.
    Events {
        /// The run they belong to.
        run: u64,
        /// The events.
        events: Vec<Event>,
        /// Events of the run that the server did not send because the page read more slowly
        /// than they came (see [`Dropped`]), in `seq` order; absent when there are none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        dropped: Vec<Dropped>,
    },
    /// A run played with `pause_before_calls` waits before its next call until the client
    /// sends [`ClientMessage::Next`]. Sent each time a call becomes the next to be made.
    Paused {
        /// The run.
        run: u64,
        /// The call that `Next` will make.
        next: NextCall,
    },
    /// A watched run has a program it had not sent yet: a new process, or a Python file of
    /// one that a call was first made from. It comes before the first event that names it.
    Program {
        /// The run.
        run: u64,
        /// The program.
        program: RoleProgram,
    },
    /// Packets of a run, captured on its network, in `seq` order (see [`Packet`]). They
    /// come in batches beside the events; a packet's `t_us` places it among them.
    Packets {
        /// The run.
        run: u64,
        /// The packets.
        packets: Vec<Packet>,
    },
    /// Whether a run's packets are captured, and what its capture could not keep: sent
    /// after `RunStarted`, and with the final counts before `RunFinished`.
    Capture {
        /// The run.
        run: u64,
        /// The capture's state.
        capture: Capture,
    },
    /// A run has ended; no more events of it follow.
    RunFinished {
        /// The run.
        run: u64,
        /// How it ended.
        #[serde(flatten)]
        outcome: RunOutcome,
    },
    /// The backend could not accept a message; the connection goes on.
    Error {
        /// What kind of problem it was.
        code: ErrorCode,
        /// What was wrong, in plain words.
        message: String,
    },
}

/// Events a run made but the server did not send whole: a page that cannot keep up with a
/// busy run (a client sending as fast as it can) gets this summary instead of making the
/// server hold every event, and a message carries at most about 256 KiB of events. The calls
/// happened; their events are counted, and the calls that returned are tallied by endpoint
/// and call, so the page can still say what the run did (`recv` 98,000 times, 100 MB).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Decode)]
pub struct Dropped {
    /// How many events.
    pub count: u64,
    /// The `seq` of the first one.
    pub first_seq: u64,
    /// The `seq` of the last one; every `seq` from `first_seq` to here is missing.
    pub last_seq: u64,
    /// The calls that returned among them, by endpoint and call, in the order first seen
    /// (absent when none returned).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<CallTally>,
}

/// How many times one endpoint's call returned within a [`Dropped`] range, and what it moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode)]
pub struct CallTally {
    /// The endpoint, such as `server.con`.
    pub endpoint: String,
    /// The call's name, such as `recv`.
    pub call: String,
    /// How many times it returned.
    pub count: u64,
    /// How many of those raised an error.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: u64,
    /// The bytes the calls sent or received, in all.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Dropped {
    /// A range of one event.
    pub fn of(event: &Event) -> Self {
        let mut range = Dropped {
            count: 1,
            first_seq: event.seq,
            last_seq: event.seq,
            calls: Vec::new(),
        };
        range.tally(event);
        range
    }

    /// Adds the event that comes next after the range; returns `false`, changing nothing,
    /// for any other.
    pub fn extend(&mut self, event: &Event) -> bool {
        if event.seq != self.last_seq + 1 {
            return false;
        }
        self.count += 1;
        self.last_seq = event.seq;
        self.tally(event);
        true
    }

    fn tally(&mut self, event: &Event) {
        if event.phase != crate::event::Phase::Return {
            return;
        }
        let call = event.call.name();
        let index = match self
            .calls
            .iter()
            .position(|tally| tally.endpoint == event.endpoint && tally.call == call)
        {
            Some(index) => index,
            None => {
                self.calls.push(CallTally {
                    endpoint: event.endpoint.clone(),
                    call: call.to_owned(),
                    count: 0,
                    failed: 0,
                    bytes: 0,
                });
                self.calls.len() - 1
            }
        };
        let tally = &mut self.calls[index];
        tally.count += 1;
        match event.outcome() {
            Some(Ok(result)) => tally.bytes += moved_bytes(&event.call, &result.value),
            Some(Err(_)) => tally.failed += 1,
            None => {}
        }
    }
}

/// The tallies of `ranges` added up by endpoint and call, in the order first seen: what the
/// calls whose events were not sent did, over a whole run.
pub fn total_calls<'a>(ranges: impl IntoIterator<Item = &'a Dropped>) -> Vec<CallTally> {
    let mut totals: Vec<CallTally> = Vec::new();
    for tally in ranges.into_iter().flat_map(|range| &range.calls) {
        match totals
            .iter_mut()
            .find(|total| total.endpoint == tally.endpoint && total.call == tally.call)
        {
            Some(total) => {
                total.count += tally.count;
                total.failed += tally.failed;
                total.bytes += tally.bytes;
            }
            None => totals.push(tally.clone()),
        }
    }
    totals
}

/// The bytes a returned call sent or received.
fn moved_bytes(call: &Call, value: &crate::call::ReturnValue) -> u64 {
    let bytes = match (call, value) {
        (_, crate::call::ReturnValue::Sent { count }) => *count,
        (_, crate::call::ReturnValue::Received { data, .. }) => data.len(),
        (Call::Sendall { data }, crate::call::ReturnValue::None) => data.len(),
        _ => 0,
    };
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

/// WebSocket close codes the server uses, besides the standard 1001 (the server is shutting
/// down) and 1009 (a message was larger than the server's limit). The close frame's reason
/// says which limit, in words.
pub mod close_code {
    /// The server is serving as many sessions as it may, in total or to this client's
    /// address; try again later (the standard "Try Again Later").
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// The session sent nothing for longer than the server's idle limit.
    pub const IDLE: u16 = 4000;
}

/// The kinds of problem [`ServerMessage::Error`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Decode)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message was not JSON of a known shape.
    MalformedMessage,
    /// The message was a binary frame; the protocol uses text frames only.
    BinaryMessage,
    /// No scenario has that id.
    UnknownScenario,
    /// `Stop` came when no run was in progress.
    NoRunInProgress,
    /// A sandbox `Call` came while a scenario is playing; stop it first.
    ScenarioInProgress,
    /// A sandbox `Call` named its endpoint with a name that is not allowed.
    InvalidEndpoint,
    /// A limit of the server was reached, such as the number of calls waiting at once or
    /// the number of messages a second; the message names the limit and its option.
    LimitReached,
    /// `Next` came when no paused run waits to make a call (a call may still be in progress).
    NothingToResume,
    /// A `Play` asked for an outside program in a role the scenario cannot leave to one.
    OutsideRoleRefused,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::call::{
        Call, CallError, CallResult, ErrorOrigin, ReturnValue, Shutdown, SockOption,
    };
    use crate::event::Phase;
    use crate::kernel::{SocketState, SocketView};
    use crate::net::{Bytes, Family, SockAddr, SockType};
    use std::net::Ipv4Addr;

    fn addr(port: u16) -> SockAddr {
        SockAddr::Inet {
            host: Ipv4Addr::new(127, 64, 0, 1),
            port,
        }
    }

    #[test]
    fn a_bad_socket_name_is_shown_printable_and_short() {
        for good in ["s", "server", "_x1", "s.conn"] {
            assert_eq!(
                check_endpoint_name(good, good != "s.conn"),
                Ok(()),
                "{good}"
            );
        }
        let error = check_endpoint_name("my sock\n\u{7}", true).unwrap_err();
        assert!(
            error.starts_with("'my sock??' is not a socket name"),
            "{error}"
        );
        let error = check_endpoint_name(&"x".repeat(10_000), true).unwrap_err();
        assert!(
            error.starts_with(&format!("'{}…' is not a socket name", "x".repeat(40))),
            "{error}"
        );
        let error = check_endpoint_name("s.conn", true).unwrap_err();
        assert!(
            error.starts_with("'s.conn' is not a socket name"),
            "{error}"
        );
    }

    fn event(call: Call, phase: Phase) -> Event {
        Event {
            seq: 3,
            t_us: 120,
            role: "server".into(),
            endpoint: "server.s".into(),
            line: Some(4),
            call,
            phase,
            result: None,
            error: None,
            kernel: vec![
                SocketView {
                    endpoint: "server.s".into(),
                    state: SocketState::Listen,
                    recv_queue: None,
                    send_queue: Some(0),
                    accept_queue: Some(1),
                    backlog: Some(5),
                    lingering: false,
                    peer_closed: false,
                },
                SocketView {
                    endpoint: "client.s".into(),
                    state: SocketState::TimeWait,
                    recv_queue: Some(3),
                    send_queue: None,
                    accept_queue: None,
                    backlog: None,
                    lingering: true,
                    peer_closed: false,
                },
                SocketView {
                    endpoint: "client.u".into(),
                    state: SocketState::Connected,
                    recv_queue: Some(24),
                    send_queue: Some(0),
                    accept_queue: None,
                    backlog: None,
                    lingering: false,
                    peer_closed: true,
                },
            ],
            watched: None,
        }
    }

    fn every_call() -> Vec<Call> {
        vec![
            Call::Socket {
                family: Family::Inet,
                sock_type: SockType::Stream,
            },
            Call::Gethostname,
            Call::Bind {
                address: addr(12345),
            },
            Call::Listen { backlog: 5 },
            Call::Accept,
            Call::Connect {
                address: addr(12345),
            },
            Call::Send {
                data: Bytes(b"Connection is successful".to_vec()),
            },
            Call::Sendall {
                data: Bytes(b"hello".to_vec()),
            },
            Call::Sendto {
                data: Bytes(b"hello".to_vec()),
                address: addr(9),
            },
            Call::Recv { bufsize: 1024 },
            Call::Recvfrom { bufsize: 8 },
            Call::Shutdown {
                how: Shutdown::Write,
            },
            Call::Getsockname,
            Call::Getpeername,
            Call::Setsockopt {
                option: SockOption::ReuseAddr(true),
            },
            Call::Setsockopt {
                option: SockOption::Linger(None),
            },
            Call::Setsockopt {
                option: SockOption::RecvBuffer(4096),
            },
            Call::Setsockopt {
                option: SockOption::Linger(Some(0)),
            },
            Call::Setsockopt {
                option: SockOption::NoDelay(true),
            },
            Call::Setsockopt {
                option: SockOption::SendBuffer(8192),
            },
            Call::Setblocking { flag: false },
            Call::Settimeout { millis: Some(500) },
            Call::Settimeout { millis: None },
            Call::Bind {
                address: SockAddr::Inet6 {
                    host: "fe80::1".parse().unwrap(),
                    port: 80,
                    flowinfo: 3,
                    scope_id: 2,
                },
            },
            Call::Connect {
                address: SockAddr::Unix {
                    path: "lab \"quoted\" é\n".into(),
                    r#abstract: true,
                },
            },
            Call::Close,
            Call::Other {
                text: "fds=[3, 4], timeout_ms=-1".into(),
            },
        ]
    }

    fn every_return_value() -> Vec<ReturnValue> {
        vec![
            ReturnValue::None,
            ReturnValue::Socket,
            ReturnValue::Hostname { name: "vm".into() },
            ReturnValue::Accepted {
                endpoint: "server.con".into(),
                fd: 7,
                address: addr(40000),
                process: Some(crate::call::PeerProcess {
                    pid: 4242,
                    name: "python3".into(),
                }),
            },
            ReturnValue::Sent { count: 24 },
            ReturnValue::Received {
                data: Bytes(vec![0, 255]),
                from: None,
                truncated_from: None,
            },
            ReturnValue::Received {
                data: Bytes(b"datagram".to_vec()),
                from: Some(addr(4000)),
                truncated_from: Some(20),
            },
            ReturnValue::Address {
                address: SockAddr::Unix {
                    path: "/tmp/socket-lab-1/server.sock".into(),
                    r#abstract: false,
                },
            },
        ]
    }

    /// One message of every kind, with every call, return value and outcome in them.
    pub(crate) fn every_server_message() -> Vec<ServerMessage> {
        let scenario = ScenarioInfo {
            id: "simple-server-client".into(),
            title: "Simple Server and Simple Client".into(),
            summary: "…".into(),
            outside_roles: vec![],
        };
        let mut events: Vec<Event> = every_call()
            .into_iter()
            .map(|call| event(call, Phase::Enter))
            .collect();
        for value in every_return_value() {
            let mut returned = event(Call::Accept, Phase::Return);
            returned.result = Some(CallResult {
                value,
                fd: Some(5),
                local: Some(addr(12345)),
                peer: None,
                peer_process: None,
            });
            events.push(returned);
        }
        let mut failed = event(Call::Connect { address: addr(1) }, Phase::Return);
        failed.error = Some(CallError {
            errno: "ECONNREFUSED".into(),
            code: 111,
            message: "Connection refused".into(),
            origin: ErrorOrigin::Kernel,
        });
        events.push(failed);
        let mut watched = event(
            Call::Sendall {
                data: Bytes(b"hi".to_vec()),
            },
            Phase::Enter,
        );
        watched.watched = Some(crate::event::Watched {
            pid: 4242,
            tid: 4243,
            syscall: "sendto".into(),
            fd: Some(3),
            python: Some("sendall".into()),
            file: Some("/home/ana/server.py".into()),
            process_ended: false,
        });
        events.push(watched);
        let mut bare = event(Call::Close, Phase::Return);
        bare.watched = Some(crate::event::Watched {
            pid: 1,
            tid: 1,
            syscall: "close".into(),
            ..Default::default()
        });
        events.push(bare);
        let mut ended = event(
            Call::Other {
                text: "was killed by SIGSEGV".into(),
            },
            Phase::Return,
        );
        ended.watched = Some(crate::event::Watched {
            pid: 1,
            tid: 1,
            process_ended: true,
            ..Default::default()
        });
        let bare = ended;
        events.push(bare);
        vec![
            ServerMessage::Hello {
                protocol: crate::PROTOCOL_VERSION,
                server_version: "0.1.0".into(),
                scenarios: vec![scenario.clone()],
            },
            ServerMessage::RunStarted {
                run: 1,
                scenario,
                programs: vec![RoleProgram {
                    role: "server".into(),
                    code: "import socket\n".into(),
                    outside: false,
                    file: None,
                }],
                unix_dir: Some("/tmp/socket-lab-1".into()),
            },
            ServerMessage::Program {
                run: 1,
                program: RoleProgram {
                    role: "server.py[4242]".into(),
                    code: "import socket\n".into(),
                    outside: false,
                    file: Some("/home/ana/server.py".into()),
                },
            },
            ServerMessage::Packets {
                run: 1,
                packets: crate::packet::examples(),
            },
            ServerMessage::Capture {
                run: 1,
                capture: Capture {
                    on: true,
                    started_unix_us: 1_700_000_000_000_000,
                    snaplen: 256,
                    beyond_limit: 2,
                    dropped_by_kernel: 1,
                    kept: 4,
                    ..Capture::default()
                },
            },
            ServerMessage::Capture {
                run: 1,
                capture: Capture::off("this kernel forbids user namespaces"),
            },
            ServerMessage::Paused {
                run: 1,
                next: NextCall {
                    role: "server".into(),
                    endpoint: "server.s".into(),
                    line: Some(7),
                    call: Call::Listen { backlog: 5 },
                },
            },
            ServerMessage::Events {
                run: 1,
                events,
                dropped: vec![Dropped {
                    count: 3,
                    first_seq: 4,
                    last_seq: 6,
                    calls: vec![CallTally {
                        endpoint: "server.con".into(),
                        call: "recv".into(),
                        count: 1,
                        failed: 0,
                        bytes: 1024,
                    }],
                }],
            },
            ServerMessage::RunFinished {
                run: 1,
                outcome: RunOutcome::Completed,
            },
            ServerMessage::RunFinished {
                run: 2,
                outcome: RunOutcome::Cancelled {
                    reason: "stopped".into(),
                },
            },
            ServerMessage::RunFinished {
                run: 3,
                outcome: RunOutcome::Failed {
                    message: "x".into(),
                },
            },
            ServerMessage::Error {
                code: ErrorCode::UnknownScenario,
                message: "no scenario 'x'".into(),
            },
        ]
    }

    #[test]
    fn every_server_message_round_trips() {
        for message in every_server_message() {
            let json = serde_json::to_string(&message).unwrap();
            let back: ServerMessage = serde_json::from_str(&json).unwrap();
            assert_eq!(back, message, "through {json}");
        }
    }

    /// One client message of every kind, and sandbox calls with and without arguments.
    pub(crate) fn every_client_message() -> Vec<ClientMessage> {
        let mut messages = vec![
            ClientMessage::Play {
                scenario: "simple-server-client".into(),
                pause_before_calls: false,
                quiet: false,
                outside: None,
            },
            ClientMessage::Play {
                scenario: "tcp-echo".into(),
                pause_before_calls: true,
                quiet: true,
                outside: None,
            },
            ClientMessage::Next,
            ClientMessage::Stop,
            ClientMessage::Watch,
            ClientMessage::Sandbox {
                network: SandboxNetwork::Machine,
            },
            ClientMessage::Sandbox {
                network: SandboxNetwork::Own,
            },
            ClientMessage::Call {
                endpoint: "s".into(),
                call: Call::Settimeout { millis: None },
            },
            ClientMessage::Call {
                endpoint: "s".into(),
                call: Call::Setsockopt {
                    option: SockOption::Linger(Some(0)),
                },
            },
            ClientMessage::Play {
                scenario: "tcp-echo".into(),
                pause_before_calls: false,
                quiet: false,
                outside: Some(OutsideRole {
                    role: "client".into(),
                    port: 40000,
                    timeout_secs: Some(60),
                }),
            },
            ClientMessage::Play {
                scenario: "udp-echo".into(),
                pause_before_calls: true,
                quiet: false,
                outside: Some(OutsideRole {
                    role: "server".into(),
                    port: 1,
                    timeout_secs: None,
                }),
            },
        ];
        messages.extend(every_call().into_iter().map(|call| ClientMessage::Call {
            endpoint: "s.conn".into(),
            call,
        }));
        messages
    }

    #[test]
    fn every_client_message_round_trips() {
        for message in every_client_message() {
            let json = serde_json::to_string(&message).unwrap();
            assert_eq!(
                serde_json::from_str::<ClientMessage>(&json).unwrap(),
                message
            );
        }
    }

    #[test]
    fn event_json_has_the_documented_flat_fields() {
        let mut returned = event(Call::Recv { bufsize: 1024 }, Phase::Return);
        returned.result = Some(CallResult {
            value: ReturnValue::Received {
                data: Bytes(b"hi".to_vec()),
                from: None,
                truncated_from: None,
            },
            fd: Some(5),
            local: None,
            peer: None,
            peer_process: None,
        });
        let json = serde_json::to_value(&returned).unwrap();
        assert_eq!(json["seq"], 3);
        assert_eq!(json["endpoint"], "server.s");
        assert_eq!(json["call"], "recv");
        assert_eq!(json["args"]["bufsize"], 1024);
        assert_eq!(json["phase"], "return");
        assert_eq!(json["result"]["value"]["data"]["text"], "hi");
        assert!(json.get("error").is_none());
        assert_eq!(json["kernel"][0]["state"], "LISTEN");
        assert_eq!(json["kernel"][0]["accept_queue"], 1);
    }

    #[test]
    fn a_sandbox_call_reads_as_documented() {
        let json = r#"{"type":"call","endpoint":"s","call":"socket","args":{"family":"AF_INET","type":"SOCK_DGRAM"}}"#;
        assert_eq!(
            serde_json::from_str::<ClientMessage>(json).unwrap(),
            ClientMessage::Call {
                endpoint: "s".into(),
                call: Call::Socket {
                    family: Family::Inet,
                    sock_type: SockType::Dgram
                }
            }
        );
        let json = r#"{"type":"call","endpoint":"s","call":"setsockopt","args":{"option":{"name":"SO_REUSEADDR","value":true}}}"#;
        assert!(serde_json::from_str::<ClientMessage>(json).is_ok());
    }

    #[test]
    fn client_messages_of_unknown_shape_are_rejected() {
        for bad in [
            "",
            "null",
            "{}",
            r#"{"type":"play"}"#,
            r#"{"type":"play","scenario":5}"#,
            r#"{"type":"dance"}"#,
            "[1,2,3]",
            r#"{"type":"call","endpoint":"s"}"#,
            r#"{"type":"call","endpoint":"s","call":"recv","args":{"bufsize":-1}}"#,
            r#"{"type":"call","endpoint":"s","call":"fork"}"#,
            r#"{"type":"call","endpoint":"s","call":"setsockopt","args":{"option":{"name":"SO_DEBUG","value":1}}}"#,
        ] {
            assert!(
                serde_json::from_str::<ClientMessage>(bad).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn a_dropped_range_counts_its_events_and_tallies_the_calls_that_returned() {
        let returned = |seq, call: Call, value: ReturnValue| {
            let mut event = event(call, Phase::Return);
            event.seq = seq;
            event.endpoint = "server.con".into();
            event.result = Some(crate::call::CallResult {
                value,
                fd: None,
                local: None,
                peer: None,
                peer_process: None,
            });
            event
        };
        let mut enter = event(Call::Recv { bufsize: 1024 }, Phase::Enter);
        enter.seq = 10;
        let mut range = Dropped::of(&enter);
        assert!(range.calls.is_empty(), "an enter is counted, not tallied");
        let data = crate::Bytes(vec![b'x'; 100]);
        assert!(range.extend(&returned(
            11,
            Call::Recv { bufsize: 1024 },
            ReturnValue::Received {
                data: data.clone(),
                from: None,
                truncated_from: None,
            },
        )));
        assert!(range.extend(&returned(12, Call::Sendall { data }, ReturnValue::None)));
        let mut failed = event(Call::Recv { bufsize: 1024 }, Phase::Return);
        failed.seq = 13;
        failed.endpoint = "server.con".into();
        failed.error = Some(crate::call::CallError {
            errno: "ECONNRESET".into(),
            code: 104,
            message: "Connection reset by peer".into(),
            origin: crate::call::ErrorOrigin::default(),
        });
        assert!(range.extend(&failed));
        // Only the event that comes next extends a range.
        assert!(!range.extend(&failed));
        assert_eq!((range.count, range.first_seq, range.last_seq), (4, 10, 13));
        let tally = |call: &str| range.calls.iter().find(|t| t.call == call).unwrap();
        assert_eq!(
            (
                tally("recv").count,
                tally("recv").bytes,
                tally("recv").failed
            ),
            (2, 100, 1)
        );
        assert_eq!((tally("sendall").count, tally("sendall").bytes), (1, 100));
        // The tallies go in the JSON and come back.
        let json = serde_json::to_string(&range).unwrap();
        assert_eq!(serde_json::from_str::<Dropped>(&json).unwrap(), range);
    }
}
