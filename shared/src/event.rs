//! An [`Event`]: one call entering or returning on one endpoint.

use serde::{Deserialize, Serialize};
use shared_derive::{Decode, Encode};

use crate::call::{Call, CallError, CallResult};
use crate::kernel::SocketView;

/// Whether an event marks the start or the end of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Decode, Encode)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The program has called; the kernel has not answered yet.
    Enter,
    /// The kernel has answered, with a result or an error.
    Return,
}

/// One socket call entering or returning on one endpoint.
///
/// In JSON (the WebSocket and `backend trace --json` alike):
///
/// ```json
/// {"seq": 7, "t_us": 1843, "role": "client", "endpoint": "client.s", "line": 5,
///  "call": "connect", "args": {"address": {"family": "AF_INET", "host": "127.64.0.1", "port": 12345}},
///  "phase": "return",
///  "result": {"value": {"kind": "none"}, "fd": 9,
///             "local": {"family": "AF_INET", "host": "127.0.0.1", "port": 40112},
///             "peer": {"family": "AF_INET", "host": "127.64.0.1", "port": 12345}},
///  "kernel": [{"endpoint": "server.s", "state": "LISTEN", "accept_queue": 1, "backlog": 5},
///             {"endpoint": "client.s", "state": "ESTABLISHED", "recv_queue": 0, "send_queue": 0}]}
/// ```
///
/// A `return` event has exactly one of `result` and `error`; an `enter` event has neither.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct Event {
    /// The position of the event in its run, from 0, with no gaps.
    pub seq: u64,
    /// Microseconds since the run started, on the backend's monotonic clock.
    pub t_us: u64,
    /// The program that made the call, such as `server` or `client`.
    pub role: String,
    /// The endpoint (socket) the call was made on, such as `server.s` or `server.con`:
    /// the role, a dot, and the variable that holds the socket in the role's program.
    pub endpoint: String,
    /// The line of the role's program that made the call, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The call and its arguments (`call` and `args` in JSON).
    #[serde(flatten)]
    pub call: Call,
    /// Whether the call is entering or returning.
    pub phase: Phase,
    /// On return, what the call returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<CallResult>,
    /// On return, the error the call raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CallError>,
    /// Every live socket of the run as the kernel reports it at this event (after the call,
    /// on a return event), in the order the sockets were opened. A watched program's event
    /// (with `watched`) has the views of some of its process's sockets only (a send's or a
    /// receive's own socket): the others are as the last event that had them said.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel: Vec<SocketView>,
    /// For a program `socket-lab watch` runs (a student's own), what the kernel saw: the
    /// process, the system call and its descriptor. Absent for Socket Lab's own programs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched: Option<Watched>,
}

/// What an event of a watched program (`socket-lab watch`) says beyond a scenario's: the
/// call as the kernel saw it.
///
/// In JSON: `"watched": {"pid": 4242, "tid": 4242, "syscall": "sendto", "fd": 3,
/// "python": "sendall", "file": "/home/ana/server.py"}`.
///
/// The event's `role` is the process (`server.py[4242]`), its `endpoint` the descriptor in it
/// (`server.py[4242].fd3`, then `fd3#2` for the next socket that gets descriptor 3), and its
/// `call` the tutorial's call the system call does (`accept4` is `accept`, `write` on a
/// socket is `send`, `fcntl(O_NONBLOCK)` is `setblocking(False)`); a system call the tutorial
/// has no call for (`poll`, `getsockopt`, `socketpair`) is [`Call::Other`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct Watched {
    /// The process (its thread group's id).
    pub pid: u32,
    /// The thread that made the call.
    pub tid: u32,
    /// The system call's name as strace writes it (`accept4`, `sendto`, `recvfrom`).
    pub syscall: String,
    /// The descriptor the call was made on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    /// Where the program is Python: the `socket` method that made the call, such as
    /// `sendall` (which may make several `sendto`s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// Where the program is Python: the file of the program that `line` counts lines of (one
    /// of the role's [`RoleProgram`](crate::RoleProgram)s, by its `file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The event is the process's end, not a call: its `endpoint` is the role, its `call` is
    /// `other` with how it ended (`exited with status 0`, `killed by SIGSEGV`), and the
    /// kernel has closed every socket the process still held.
    #[serde(default, skip_serializing_if = "is_false")]
    pub process_ended: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

impl Event {
    /// A call entering on `endpoint` of `role`'s program, at `line`: numbered and timed
    /// (`seq`, `t_us`) when it is sent, and with the kernel's views then.
    pub fn enter(role: &str, endpoint: &str, line: Option<u32>, call: Call) -> Self {
        Event {
            seq: 0,
            t_us: 0,
            role: role.to_owned(),
            endpoint: endpoint.to_owned(),
            line,
            call,
            phase: Phase::Enter,
            result: None,
            error: None,
            kernel: Vec::new(),
            watched: None,
        }
    }

    /// The outcome of a returned call; `None` for an enter event.
    pub fn outcome(&self) -> Option<Result<&CallResult, &CallError>> {
        match (&self.result, &self.error) {
            (Some(result), _) => Some(Ok(result)),
            (None, Some(error)) => Some(Err(error)),
            (None, None) => None,
        }
    }
}
