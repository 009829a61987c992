//! What `watch` reports: a watched program's socket calls and the life of its processes.
//!
//! In JSON (`watch --json`), one object a line:
//!
//! ```json
//! {"seq": 4, "t_us": 5120, "pid": 4242, "tid": 4242, "event": "syscall", "syscall": "connect",
//!  "fd": 3, "phase": "enter", "args": {"address": {"family": "AF_INET", "host": "127.0.0.1", "port": 12345}}}
//! {"seq": 5, "t_us": 5188, "pid": 4242, "tid": 4242, "event": "syscall", "syscall": "connect",
//!  "fd": 3, "phase": "return", "result": 0}
//! {"seq": 9, "t_us": 9001, "pid": 4242, "tid": 4242, "event": "syscall", "syscall": "recvfrom",
//!  "fd": 3, "phase": "return", "result": 5, "out": {"data": {"len": 5, "text": "hello", "hex": "68656c6c6f"}, "size": 5}}
//! {"seq": 12, "t_us": 9100, "pid": 4242, "tid": 4242, "event": "exited", "code": 0}
//! ```
//!
//! `syscall` is the system call's name as strace writes it; `args` is what went in, `out` what
//! the call wrote back; a failed call has `error` (`errno`, `code`, `message`) instead of
//! `result`. Bytes (`data`) are the first 256 of them; `size` counts them all. The other
//! events: `exec` (the process now runs `program`), `spawned` (a new process or thread,
//! `child`), `signal` (the process was sent `signal`), `exited` (with `code`) and `killed` (by
//! `signal`). Where the program is Python, a call also has `python`: the `file`, `line` and
//! socket method (`call`) that made it, so that `sendall`'s three `sendto`s all name
//! `sendall`. A return also has `kernel`: the kernel's view of every socket of the process
//! (the call's own first, then the connection an `accept` made, at most 16; after a send or
//! a receive, its own alone), as `backend trace` has for a scenario's sockets: `state`, `recv_queue`, `send_queue`, and a
//! listener's `accept_queue` and `backlog`.

use serde::Serialize;
use shared::{CallError, Phase, SockAddr, SocketView};

use super::args::Args;
use super::python::PythonCall;

/// One thing a watched program did.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct WatchEvent {
    /// The event's position, from 0, with no gaps.
    pub(crate) seq: u64,
    /// Microseconds since `watch` started the program.
    pub(crate) t_us: u64,
    /// The process (its thread group's id).
    pub(crate) pid: i32,
    /// The thread.
    pub(crate) tid: i32,
    /// What happened.
    #[serde(flatten)]
    pub(crate) what: What,
}

/// What happened, by kind.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // Nearly every event is a call; boxing each would cost an allocation.
pub(crate) enum What {
    /// A socket system call entered or returned.
    Syscall {
        /// Its name as strace writes it (`accept4`, `sendto`).
        syscall: &'static str,
        /// The socket it was made on.
        #[serde(skip_serializing_if = "Option::is_none")]
        fd: Option<i32>,
        /// Entering or returning.
        phase: Phase,
        /// Its arguments (on entry).
        #[serde(skip_serializing_if = "Args::is_empty")]
        args: Args,
        /// On return without an error: the value it returned.
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<i64>,
        /// On return: what it wrote back (bytes received, an address).
        #[serde(skip_serializing_if = "Args::is_empty")]
        out: Args,
        /// On return: the error, with the errno the kernel gave.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<CallError>,
        /// Where the program is Python: the socket method that made this call, and its line.
        #[serde(skip_serializing_if = "Option::is_none")]
        python: Option<PythonCall>,
        /// On return: the kernel's view of every socket of the process, named `fd{N}`: the
        /// call's own first, then one it made (`accept`'s connection), at most 16; after a
        /// send or a receive, its own alone.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        kernel: Vec<SocketView>,
        /// On return of a call that names or connects a socket (`bind`, `connect`, `listen`,
        /// `accept`, ...), and of the first call on each socket of a process: the socket's
        /// local address as the kernel reports it (`getsockname`); for `accept`, the new
        /// connection's.
        #[serde(skip_serializing_if = "Option::is_none")]
        local: Option<SockAddr>,
        /// Beside `local`: the address of the socket's peer (`getpeername`), if it has one.
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<SockAddr>,
    },
    /// The process executed a new program.
    Exec {
        /// The program's command line.
        program: String,
    },
    /// The process started a child process or a thread.
    Spawned {
        /// The new process's or thread's id.
        child: i32,
        /// Whether it is a thread of the same process.
        thread: bool,
    },
    /// A signal was delivered to the process.
    Signal {
        /// Its name, such as `SIGINT`.
        signal: String,
    },
    /// The process exited.
    Exited {
        /// Its exit status.
        code: i32,
    },
    /// A signal ended the process.
    Killed {
        /// The signal's name, such as `SIGSEGV`.
        signal: String,
        /// Whether it dumped core.
        core_dumped: bool,
    },
}
