//! The socket calls, with their arguments, results and errors.

use serde::{Deserialize, Serialize};
use shared_derive::{Decode, Encode};

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
    /// `s.connect(address)`: connects to a listener (stream) or sets the only peer (datagram).
    Connect {
        /// The address of the peer.
        address: SockAddr,
    },
    /// `s.send(data)`: hands bytes to the kernel to send; returns how many it took.
    Send {
        /// The bytes to send.
        data: Bytes,
    },
    /// `s.sendall(data)`: sends until every byte is taken, waiting for room as needed.
    Sendall {
        /// The bytes to send.
        data: Bytes,
    },
    /// `s.sendto(data, address)`: sends one datagram to an address.
    Sendto {
        /// The datagram's bytes.
        data: Bytes,
        /// Where it goes.
        address: SockAddr,
    },
    /// `s.recv(bufsize)`: waits for bytes and takes at most `bufsize` of them.
    Recv {
        /// The most bytes to take.
        bufsize: usize,
    },
    /// `s.recvfrom(bufsize)`: like `recv`, and also says who sent the bytes.
    Recvfrom {
        /// The most bytes to take.
        bufsize: usize,
    },
    /// `s.shutdown(how)`: ends one or both directions of a connection, without closing.
    Shutdown {
        /// Which directions.
        how: Shutdown,
    },
    /// `s.getsockname()`: the socket's own address.
    Getsockname,
    /// `s.getpeername()`: the address of the socket's peer.
    Getpeername,
    /// `s.setsockopt(level, option, value)`.
    Setsockopt {
        /// The option and its value (the level follows from the option).
        option: SockOption,
    },
    /// `s.setblocking(flag)`: whether calls wait (`True`) or fail with `EAGAIN` at once.
    Setblocking {
        /// `True` to wait.
        flag: bool,
    },
    /// `s.settimeout(seconds)`: calls wait at most this long; `None` waits for ever, `0` never.
    Settimeout {
        /// The timeout in milliseconds; absent for `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        millis: Option<u64>,
    },
    /// `s.close()`: releases the socket.
    Close,
    /// A system call of a watched program that the tutorial has no call for (`poll`,
    /// `getsockopt`, `socketpair`, `epoll_wait`); the event's `watched.syscall` names it.
    Other {
        /// Its arguments as the terminal shows them, such as `fds=[3, 4], timeout_ms=-1`.
        text: String,
    },
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
            Call::Sendall { .. } => "sendall",
            Call::Sendto { .. } => "sendto",
            Call::Recv { .. } => "recv",
            Call::Recvfrom { .. } => "recvfrom",
            Call::Shutdown { .. } => "shutdown",
            Call::Getsockname => "getsockname",
            Call::Getpeername => "getpeername",
            Call::Setsockopt { .. } => "setsockopt",
            Call::Setblocking { .. } => "setblocking",
            Call::Settimeout { .. } => "settimeout",
            Call::Close => "close",
            Call::Other { .. } => "other",
        }
    }

    /// Whether the call only moves data (what a firehose repeats), rather than making,
    /// naming, connecting, configuring or ending a socket. A busy run may summarise these.
    pub fn moves_data(&self) -> bool {
        matches!(
            self,
            Call::Send { .. }
                | Call::Sendall { .. }
                | Call::Sendto { .. }
                | Call::Recv { .. }
                | Call::Recvfrom { .. }
        )
    }

    /// Whether the call creates its endpoint rather than acting on one that exists.
    pub fn creates_endpoint(&self) -> bool {
        matches!(self, Call::Socket { .. })
    }

    /// The bytes the call sends, if it sends any.
    pub fn sent_data(&self) -> Option<&Bytes> {
        match self {
            Call::Send { data } | Call::Sendall { data } | Call::Sendto { data, .. } => Some(data),
            _ => None,
        }
    }
}

/// The `how` of `shutdown(how)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Shutdown {
    /// No more receiving.
    #[serde(rename = "SHUT_RD")]
    Read,
    /// No more sending: the peer reads end of stream.
    #[serde(rename = "SHUT_WR")]
    Write,
    /// Neither.
    #[serde(rename = "SHUT_RDWR")]
    Both,
}

impl Shutdown {
    /// Every `how`, in the order of the enum.
    pub const ALL: [Shutdown; 3] = [Shutdown::Read, Shutdown::Write, Shutdown::Both];

    /// The constant's name in Python's `socket` module.
    pub fn name(self) -> &'static str {
        match self {
            Shutdown::Read => "SHUT_RD",
            Shutdown::Write => "SHUT_WR",
            Shutdown::Both => "SHUT_RDWR",
        }
    }
}

/// A socket option and the value to set. In JSON: `{"name": "SO_REUSEADDR", "value": true}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "name", content = "value")]
pub enum SockOption {
    /// `SO_REUSEADDR`: may bind an address that a connection in `TIME_WAIT` still holds.
    #[serde(rename = "SO_REUSEADDR")]
    ReuseAddr(bool),
    /// `SO_LINGER`: how `close` ends a connection. Seconds to wait for unsent data, or absent
    /// (`null`) for the default. `0` makes `close` reset the connection at once.
    #[serde(rename = "SO_LINGER")]
    Linger(Option<u32>),
    /// `TCP_NODELAY`: send small segments at once instead of waiting to gather them (Nagle).
    #[serde(rename = "TCP_NODELAY")]
    NoDelay(bool),
    /// `SO_RCVBUF`: the receive buffer size asked for (the kernel doubles it).
    #[serde(rename = "SO_RCVBUF")]
    RecvBuffer(u32),
    /// `SO_SNDBUF`: the send buffer size asked for (the kernel doubles it).
    #[serde(rename = "SO_SNDBUF")]
    SendBuffer(u32),
}

impl SockOption {
    /// The option's name in Python's `socket` module.
    pub fn name(self) -> &'static str {
        match self {
            SockOption::ReuseAddr(_) => "SO_REUSEADDR",
            SockOption::Linger(_) => "SO_LINGER",
            SockOption::NoDelay(_) => "TCP_NODELAY",
            SockOption::RecvBuffer(_) => "SO_RCVBUF",
            SockOption::SendBuffer(_) => "SO_SNDBUF",
        }
    }

    /// The option's level in Python's `socket` module.
    pub fn level(self) -> &'static str {
        match self {
            SockOption::NoDelay(_) => "IPPROTO_TCP",
            _ => "SOL_SOCKET",
        }
    }
}

/// What a call returned, with the state of its socket right after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
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
    /// After `connect`, the program at the other end when it is not Socket Lab (a student's
    /// own server) and the kernel lets us see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_process: Option<PeerProcess>,
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
        /// The program at the other end, when it is not Socket Lab (a student's own client)
        /// and the kernel lets us see it, as `ss -p` shows it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        process: Option<PeerProcess>,
    },
    /// `send()` or `sendto()` returned how many bytes the kernel took.
    Sent {
        /// The byte count.
        count: usize,
    },
    /// `recv()` or `recvfrom()` returned bytes; none, on a stream, means the peer closed its
    /// side (end of stream).
    Received {
        /// The bytes.
        data: Bytes,
        /// For `recvfrom`, who sent them (absent on a connected stream, as Python's `None`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<SockAddr>,
        /// When a datagram was longer than the buffer, its whole length: the kernel kept only
        /// the first `bufsize` bytes and dropped the rest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        truncated_from: Option<usize>,
    },
    /// `getsockname()` or `getpeername()` returned an address.
    Address {
        /// The address.
        address: SockAddr,
    },
}

/// A process of this machine that holds the other end of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct PeerProcess {
    /// Its process id.
    pub pid: u32,
    /// Its command name (`/proc/<pid>/comm`), such as `python3`.
    pub name: String,
}

/// Who reported an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
#[serde(rename_all = "snake_case")]
pub enum ErrorOrigin {
    /// The kernel returned the errno.
    #[default]
    Kernel,
    /// Python's `socket` module raised it by itself, with no failed system call: a call on a
    /// socket with a timeout that waited that long raises `TimeoutError: timed out`.
    Python,
    /// Socket Lab refused the call before it reached the kernel (a limit or a safety policy),
    /// with the errno Python would raise for the same refusal.
    Lab,
}

/// An error a call raised: Python's `OSError`, with its errno.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
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
