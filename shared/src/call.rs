//! The socket calls, with their arguments, results and errors.

use serde::{Deserialize, Serialize};

use crate::net::{Bytes, Family, SockAddr, SockType};

/// A socket call and its arguments, named as the tutorial names them.
///
/// In JSON the name is the `call` field and the arguments are the `args` object, so an event
/// reads `{"call": "bind", "args": {"address": {...}}, ...}`. Calls without arguments have no
/// `args` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", content = "args", rename_all = "lowercase")]
pub enum Call {
    /// `socket.socket(family, type)`: creates an endpoint.
    Socket {
        /// The address family.
        family: Family,
        /// The socket type.
        #[serde(rename = "type")]
        sock_type: SockType,
    },
    /// `socket.gethostname()`: the machine's host name.
    Gethostname,
    /// `s.bind(address)`: gives the socket its local address.
    Bind {
        /// The local address asked for.
        address: SockAddr,
    },
    /// `s.listen(backlog)`: turns a stream socket into a listener.
    Listen {
        /// How many connections the kernel may queue before `accept` takes them.
        backlog: i32,
    },
    /// `s.accept()`: waits for a connection and returns a new socket for it.
    Accept,
    /// `s.connect(address)`: connects to a listener.
    Connect {
        /// The address of the listener.
        address: SockAddr,
    },
    /// `s.send(data)`: hands bytes to the kernel to send.
    Send {
        /// The bytes to send.
        data: Bytes,
    },
    /// `s.recv(bufsize)`: waits for bytes and takes at most `bufsize` of them.
    Recv {
        /// The most bytes to take.
        bufsize: usize,
    },
    /// `s.close()`: releases the socket.
    Close,
}

impl Call {
    /// The call's name as the tutorial writes it, which is also its `call` field in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Socket { .. } => "socket",
            Call::Gethostname => "gethostname",
            Call::Bind { .. } => "bind",
            Call::Listen { .. } => "listen",
            Call::Accept => "accept",
            Call::Connect { .. } => "connect",
            Call::Send { .. } => "send",
            Call::Recv { .. } => "recv",
            Call::Close => "close",
        }
    }
}

/// What a call returned, with the state of its socket right after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallResult {
    /// The return value, as Python would give it.
    pub value: ReturnValue,
    /// The file descriptor of the socket the call was made on (absent once it is closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    /// The socket's local address, from `getsockname` right after the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<SockAddr>,
    /// The socket's peer address, from `getpeername` right after the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<SockAddr>,
}

/// The return value of a call. In JSON, `kind` names the variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReturnValue {
    /// The call returns `None` in Python.
    None,
    /// `socket()` returned a new socket object.
    Socket,
    /// `gethostname()` returned the host name.
    Hostname {
        /// The name.
        name: String,
    },
    /// `accept()` returned `(conn, address)`: a new endpoint for the connection.
    Accepted {
        /// The new endpoint's id.
        endpoint: String,
        /// The new socket's file descriptor.
        fd: i32,
        /// The address of the peer that connected.
        address: SockAddr,
    },
    /// `send()` returned how many bytes the kernel took.
    Sent {
        /// The byte count.
        count: usize,
    },
    /// `recv()` returned bytes; none means the peer closed its side (end of stream).
    Received {
        /// The bytes.
        data: Bytes,
    },
}

/// Who reported an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorOrigin {
    /// The kernel returned the errno.
    #[default]
    Kernel,
    /// Socket Lab refused the call before it reached the kernel (a limit or a safety policy),
    /// with the errno Python would raise for the same refusal.
    Lab,
}

/// An error a call raised: Python's `OSError`, with its errno.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    /// The errno's symbolic name, such as `ECONNREFUSED`.
    pub errno: String,
    /// The errno's number on the machine that ran the call.
    pub code: i32,
    /// The errno's message, such as `Connection refused`.
    pub message: String,
    /// Who reported the error.
    #[serde(default)]
    pub origin: ErrorOrigin,
}
