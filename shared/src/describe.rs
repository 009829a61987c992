//! Plain renderings of calls and their outcomes, shared by the terminal table and the page so
//! that both say the same thing in the same words.

use crate::call::{Call, CallError, CallResult, ErrorOrigin, ReturnValue, SockOption};
use crate::event::{Event, Phase};
use crate::kernel::SocketState;
use crate::net::{Family, SockAddr, SockType};

/// The call as a line of Python: `bind(('127.64.0.1', 12345))`.
pub fn call_text(call: &Call) -> String {
    match call {
        Call::Socket { family, sock_type } => {
            format!("socket({}, {})", family.name(), sock_type.name())
        }
        Call::Bind { address } => format!("bind({address})"),
        Call::Listen { backlog } => format!("listen({backlog})"),
        Call::Connect { address } => format!("connect({address})"),
        Call::Send { data } => format!("send({data})"),
        Call::Sendall { data } => format!("sendall({data})"),
        Call::Sendto { data, address } => format!("sendto({data}, {address})"),
        Call::Recv { bufsize } => format!("recv({bufsize})"),
        Call::Recvfrom { bufsize } => format!("recvfrom({bufsize})"),
        Call::Shutdown { how } => format!("shutdown({})", how.name()),
        Call::Setsockopt { option } => {
            let value = match option {
                SockOption::ReuseAddr(on) | SockOption::NoDelay(on) => u8::from(*on).to_string(),
                SockOption::Linger(Some(seconds)) => format!("struct.pack('ii', 1, {seconds})"),
                SockOption::Linger(None) => "struct.pack('ii', 0, 0)".to_owned(),
                SockOption::RecvBuffer(size) | SockOption::SendBuffer(size) => size.to_string(),
            };
            format!("setsockopt({}, {}, {value})", option.level(), option.name())
        }
        Call::Setblocking { flag } => {
            format!("setblocking({})", if *flag { "True" } else { "False" })
        }
        Call::Settimeout { millis: None } => "settimeout(None)".to_owned(),
        Call::Settimeout {
            millis: Some(millis),
        } => format!("settimeout({})", seconds_text(*millis)),
        Call::Gethostname | Call::Accept | Call::Getsockname | Call::Getpeername | Call::Close => {
            format!("{}()", call.name())
        }
        Call::Other { text } => format!("other({text})"),
    }
}

/// The call as the kernel saw it, where it did (a watched program's): the system call's
/// name with the tutorial call's arguments, such as `sendto(b'hi')` for a `send` that was
/// a `sendto`, or `poll(fds=[3], timeout_ms=-1)`. A scenario's call is as [`call_text`].
pub fn kernel_call_text(event: &Event) -> String {
    let Some(watched) = &event.watched else {
        return call_text(&event.call);
    };
    match &event.call {
        Call::Other { text } if watched.process_ended => format!("+++ {text} +++"),
        Call::Other { text } => format!("{}({text})", watched.syscall),
        call => {
            let text = call_text(call);
            let args = text.find('(').map_or("()", |at| &text[at..]);
            format!("{}{args}", watched.syscall)
        }
    }
}

/// Milliseconds as Python would write the seconds: `0.5`, `2`, `0.25`.
fn seconds_text(millis: u64) -> String {
    let whole = millis / 1000;
    let fraction = millis % 1000;
    if fraction == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{fraction:03}")
            .trim_end_matches('0')
            .to_owned()
    }
}

/// The return value as Python would print it: `None`, `'vm'`, `24`, `b'...'`.
pub fn result_text(result: &CallResult) -> String {
    match &result.value {
        ReturnValue::None => "None".to_owned(),
        ReturnValue::Socket => match result.fd {
            Some(fd) => format!("<socket fd={fd}>"),
            None => "<socket>".to_owned(),
        },
        ReturnValue::Hostname { name } => format!("'{name}'"),
        ReturnValue::Accepted { fd, address, .. } => format!("(<socket fd={fd}>, {address})"),
        ReturnValue::Sent { count } => count.to_string(),
        ReturnValue::Received {
            data,
            from: Some(from),
            ..
        } => format!("({data}, {from})"),
        ReturnValue::Received { data, .. } => data.to_string(),
        ReturnValue::Address { address } => address.to_string(),
    }
}

/// The error as Python would raise it: `ConnectionRefusedError: [Errno 111] Connection refused`.
pub fn error_text(error: &CallError) -> String {
    if error.origin == ErrorOrigin::Python {
        return format!("{}: {}", python_exception(&error.errno), error.message);
    }
    format!(
        "{}: [Errno {}] {} ({})",
        python_exception(&error.errno),
        error.code,
        error.message,
        error.errno
    )
}

/// The class of the `OSError` Python raises for an errno (PEP 3151).
pub fn python_exception(errno: &str) -> &'static str {
    match errno {
        "EAGAIN" | "EWOULDBLOCK" | "EINPROGRESS" | "EALREADY" => "BlockingIOError",
        "ECONNREFUSED" => "ConnectionRefusedError",
        "ECONNRESET" => "ConnectionResetError",
        "ECONNABORTED" => "ConnectionAbortedError",
        "EPIPE" | "ESHUTDOWN" => "BrokenPipeError",
        "ETIMEDOUT" => "TimeoutError",
        "ENOENT" => "FileNotFoundError",
        "EEXIST" => "FileExistsError",
        "EACCES" | "EPERM" => "PermissionError",
        "EINTR" => "InterruptedError",
        _ => "OSError",
    }
}

/// What the event shows after the call: its result, its error, or that it is waiting.
pub fn outcome_text(event: &Event) -> String {
    match event.outcome() {
        None => "…".to_owned(),
        Some(Ok(result)) => result_text(result),
        Some(Err(error)) => error_text(error),
    }
}

/// One sentence in plain words on what the event means, for a student. `kind` is the family
/// and type of the socket the call was made on, where known (the `socket()` that made it): a
/// recv that returns no bytes means end of stream on a stream socket, an empty datagram on a
/// datagram socket; a Unix socket has no packets, ports or handshakes.
pub fn explain(event: &Event, kind: Option<(Family, SockType)>) -> String {
    if event.watched.as_ref().is_some_and(|w| w.process_ended) {
        return "The process ended: the kernel closed every socket it still held, as close() \
                would (a connection's peer then reads the end of the stream)."
            .to_owned();
    }
    let sock_type = kind.map(|(_, sock_type)| sock_type);
    // Without the socket() that made it, a result's addresses tell a Unix socket.
    let unix = kind.map_or_else(
        || event.result.as_ref().is_some_and(on_unix),
        |(family, _)| family == Family::Unix,
    );
    match (event.phase, event.outcome()) {
        (_, Some(Ok(_)) | None) if datagram_connect(event, sock_type) => {
            if event.phase == Phase::Enter {
                "On a datagram socket connect() sends nothing: the kernel only records the peer."
                    .to_owned()
            } else {
                "The peer is recorded: send() now goes to it, and recv() takes only its \
                 datagrams. No packet was sent."
                    .to_owned()
            }
        }
        (Phase::Enter, _) => explain_enter(&event.call, sock_type, unix),
        (Phase::Return, Some(Err(error))) => explain_error(error, sock_type, unix),
        (Phase::Return, Some(Ok(_))) if event.call == Call::Close => explain_close(event),
        (Phase::Return, Some(Ok(result))) => explain_result(&event.call, result, sock_type, unix),
        (Phase::Return, None) => String::new(),
    }
}

fn explain_enter(call: &Call, sock_type: Option<SockType>, unix: bool) -> String {
    match call {
        // Each says what a blocking socket does when nothing is ready, since a non-blocking
        // one fails at once instead (EAGAIN, explained on its return).
        Call::Accept if unix => {
            "accept() takes the next connection from the accept queue, where the kernel puts \
             each one as soon as a client connects; with none there, a blocking socket waits \
             for a client."
                .to_owned()
        }
        Call::Accept => {
            "accept() takes the next connection from the accept queue, where the kernel puts \
             each one once it has completed its handshake on its own; with none there, a \
             blocking socket waits for a client."
                .to_owned()
        }
        Call::Connect {
            address: SockAddr::Unix { .. },
        } => "connect() asks the kernel for a connection to the socket listening at that \
              address. No packets: both ends are in this kernel, which queues the connection for \
              the listener's accept() at once (waiting only while that queue is full)."
            .to_owned(),
        Call::Connect { .. } => {
            "connect() asks the kernel to open a connection; it returns once the handshake \
             with the listener is done."
                .to_owned()
        }
        Call::Recv { .. } if sock_type == Some(SockType::Dgram) => {
            "recv() takes the next datagram from the receive queue, as recvfrom() does without \
             telling its sender; with none there, a blocking socket waits for one."
                .to_owned()
        }
        Call::Recv { .. } => {
            "recv() takes what is in the socket's receive queue; with nothing there, a blocking \
             socket waits until bytes arrive or the peer closes."
                .to_owned()
        }
        Call::Recvfrom { .. } => {
            "recvfrom() takes the next datagram from the receive queue; with none there, a \
             blocking socket waits for one."
                .to_owned()
        }
        Call::Sendall { .. } if unix => {
            "sendall() hands every byte to the kernel, waiting whenever too much of what this \
             socket sent is still unread by the peer."
                .to_owned()
        }
        Call::Sendall { .. } => {
            "sendall() hands every byte to the kernel, waiting whenever the send queue is full."
                .to_owned()
        }
        other => format!(
            "The program calls {}; the kernel answers next.",
            call_text(other)
        ),
    }
}

fn explain_result(
    call: &Call,
    result: &CallResult,
    sock_type: Option<SockType>,
    unix: bool,
) -> String {
    match (call, &result.value) {
        (Call::Socket { .. }, _) => format!(
            "The kernel created a socket and gave it file descriptor {}; it has no address yet.",
            result
                .fd
                .map_or_else(|| "?".to_owned(), |fd| fd.to_string())
        ),
        (_, ReturnValue::Hostname { name }) => {
            format!("The machine calls itself '{name}'.")
        }
        (Call::Bind { .. }, _) => match &result.local {
            Some(local) => format!("The socket now owns the local address {local}."),
            None => "The socket now owns its local address.".to_owned(),
        },
        (Call::Listen { backlog }, _) => format!(
            "The socket is now a listener: the kernel completes connections for it on its own \
             and queues them for accept(), up to {backlog} (Linux queues one more)."
        ),
        (_, ReturnValue::Accepted { address, .. }) if unnamed(address) => {
            "A client connected from an unbound Unix socket, which has no address (''); \
             accept() returned a new socket for that one connection, while the listener goes on \
             listening."
                .to_owned()
        }
        (_, ReturnValue::Accepted { address, .. }) => format!(
            "A client at {address} connected; accept() returned a new socket for that one \
             connection, while the listener goes on listening."
        ),
        (Call::Connect { .. }, _) if result.local.as_ref().is_some_and(unnamed) => {
            "Connected. This end has no address (''): a Unix socket not bound before stays \
             unnamed, and its peer sees '' as its address."
                .to_owned()
        }
        (Call::Connect { .. }, _) => match (&result.local, &result.peer) {
            (Some(local), Some(_)) => format!(
                "Connected. This end's local address is {local}: for a socket not bound \
                 before, the kernel picks one itself."
            ),
            _ => "Connected.".to_owned(),
        },
        (Call::Sendall { data }, _) => format!(
            "All {} bytes are in the kernel's hands; sendall() does not wait for the peer to \
             read them.",
            data.len()
        ),
        (
            Call::Sendto {
                address: address @ SockAddr::Unix { .. },
                ..
            },
            ReturnValue::Sent { count },
        ) => unix_datagram_sent(*count, address),
        (Call::Sendto { address, .. }, ReturnValue::Sent { count }) => format!(
            "The kernel sent one datagram of {count} bytes to {address}; nothing tells the \
             sender whether anyone received it."
        ),
        (_, ReturnValue::Sent { count }) if sock_type == Some(SockType::Dgram) => {
            match &result.peer {
                Some(peer @ SockAddr::Unix { .. }) => unix_datagram_sent(*count, peer),
                _ => format!(
                    "The kernel sent one datagram of {count} bytes to the socket's connected \
                     peer; nothing tells the sender whether anyone received it."
                ),
            }
        }
        (_, ReturnValue::Sent { count }) if unix => format!(
            "The kernel put {count} bytes straight into the peer's receive queue: a Unix stream \
             has no send queue of its own. send() does not wait for the peer to read them."
        ),
        (_, ReturnValue::Sent { count }) => format!(
            "The kernel took {count} bytes into the socket's send queue; send() does not wait \
             for the peer to read them."
        ),
        (
            _,
            ReturnValue::Received {
                data,
                truncated_from: Some(whole),
                ..
            },
        ) => format!(
            "The datagram was {whole} bytes but the buffer held only {}: the kernel gave the \
             first {} and dropped the other {} for good.",
            data.len(),
            data.len(),
            whole.saturating_sub(data.len())
        ),
        (
            Call::Recvfrom { .. },
            ReturnValue::Received {
                data,
                from: Some(from),
                ..
            },
        ) => format!(
            "One datagram of {} bytes from {from}: recvfrom() takes exactly one datagram, \
             whatever its size.",
            data.len()
        ),
        (_, ReturnValue::Received { data, .. }) if data.is_empty() => {
            if sock_type == Some(SockType::Dgram) {
                "An empty datagram: a datagram may hold no bytes at all, and recv() returns b'' \
                 for it. On a datagram socket b'' is not end of stream: there is no connection \
                 to end."
                    .to_owned()
            } else {
                "No bytes: the peer has closed its side and nothing more will come (end of \
                 stream)."
                    .to_owned()
            }
        }
        (_, ReturnValue::Received { data, .. }) if sock_type == Some(SockType::Dgram) => format!(
            "One datagram of {} bytes: on a datagram socket recv() takes exactly one datagram, \
             whatever its size, as it was sent.",
            data.len()
        ),
        (_, ReturnValue::Received { data, .. }) => format!(
            "{} bytes were waiting in the receive queue and the call took them; a stream keeps \
             no message boundaries, so they may come from several sends.",
            data.len()
        ),
        (_, ReturnValue::Address { address }) => format!("The kernel reports {address}."),
        (Call::Shutdown { how }, _) => match how {
            crate::call::Shutdown::Read => "This side will receive no more.".to_owned(),
            crate::call::Shutdown::Write if unix => {
                "This side will send no more: once the peer has read what is queued, its recv() \
                 returns end of stream, and this side can still receive."
                    .to_owned()
            }
            crate::call::Shutdown::Write => {
                "This side has sent its FIN: the peer's recv() will return end of stream, and \
                 this side can still receive."
                    .to_owned()
            }
            crate::call::Shutdown::Both => {
                "Both directions are shut; the socket stays open until close().".to_owned()
            }
        },
        (Call::Setsockopt { option }, _) => match option {
            SockOption::ReuseAddr(true) if unix => "SO_REUSEADDR changes nothing for a Unix \
                socket: bind() takes a path only once its file is removed."
                .to_owned(),
            SockOption::ReuseAddr(true) => "bind() may now take an address that a closed \
                connection still holds in TIME_WAIT."
                .to_owned(),
            SockOption::Linger(_) if unix => "SO_LINGER changes nothing for a Unix socket: \
                close() neither waits nor resets."
                .to_owned(),
            SockOption::Linger(Some(0)) => "close() will now reset the connection (RST) \
                instead of ending it with FIN, dropping anything unsent."
                .to_owned(),
            other => format!("{} is set.", other.name()),
        },
        (Call::Setblocking { flag: false }, _) | (Call::Settimeout { millis: Some(0) }, _) => {
            "Calls on this socket no longer wait: when nothing is ready they fail at once with \
             EAGAIN (BlockingIOError)."
                .to_owned()
        }
        (
            Call::Settimeout {
                millis: Some(millis),
            },
            _,
        ) => format!(
            "Calls on this socket now wait at most {} s, then raise TimeoutError.",
            seconds_text(*millis)
        ),
        _ => format!("{} returned.", call_text(call)),
    }
}

/// Whether an address is that of an unbound Unix socket, which has none (Python shows `''`).
fn unnamed(address: &SockAddr) -> bool {
    matches!(address, SockAddr::Unix { path, .. } if path.is_empty())
}

/// Whether the event is a `connect()` on a datagram socket, which sends nothing: a datagram
/// socket, when its type is known, else one the kernel reports no TCP state for connecting
/// to an IP address (UDP; a Unix socket's state does not tell stream from datagram).
fn datagram_connect(event: &Event, sock_type: Option<SockType>) -> bool {
    let Call::Connect { address } = &event.call else {
        return false;
    };
    match sock_type {
        Some(sock_type) => sock_type == SockType::Dgram,
        None => {
            matches!(address, SockAddr::Inet { .. } | SockAddr::Inet6 { .. })
                && event
                    .kernel
                    .iter()
                    .find(|view| view.endpoint == event.endpoint)
                    .is_some_and(|view| {
                        matches!(
                            view.state,
                            SocketState::Unconnected | SocketState::Connected
                        )
                    })
        }
    }
}

/// Whether the call was on a Unix socket, as its addresses tell (an unbound one is '').
fn on_unix(result: &CallResult) -> bool {
    [&result.local, &result.peer]
        .into_iter()
        .any(|address| matches!(address, Some(SockAddr::Unix { .. })))
}

/// A Unix datagram handed to the socket bound to `address`, by `sendto` or by `send` on a
/// connected socket.
fn unix_datagram_sent(count: usize, address: &SockAddr) -> String {
    format!(
        "The kernel put one datagram of {count} bytes into the receive queue of the socket \
         bound to {address}: on one machine a Unix datagram is not lost (with that queue \
         full, the sender waits)."
    )
}

/// What a `close()` did, told from the kernel's views just after it, which show whether the
/// kernel kept the connection to end it. A listener, a datagram socket or a connection reset
/// (SO_LINGER 0) is simply gone, and then nothing more is said than is known.
fn explain_close(event: &Event) -> String {
    let closed = "The socket is closed and its file descriptor released";
    let kept = event
        .kernel
        .iter()
        .find(|view| view.lingering && view.endpoint == event.endpoint);
    match kept.map(|view| view.state) {
        None => format!("{closed}."),
        Some(SocketState::TimeWait) => format!(
            "{closed}. The connection has ended; the kernel keeps it in TIME_WAIT for a while, \
             so that its late packets are not taken for a new connection's."
        ),
        Some(
            state @ (SocketState::FinWait1
            | SocketState::FinWait2
            | SocketState::LastAck
            | SocketState::Closing),
        ) => format!(
            "{closed}. The kernel keeps the connection ({}) until its FIN exchange is done: \
             the peer sees end of stream.",
            state.name()
        ),
        Some(state) => format!(
            "{closed}; the kernel still keeps its connection ({}).",
            state.name()
        ),
    }
}

fn explain_error(error: &CallError, sock_type: Option<SockType>, unix: bool) -> String {
    let meaning = match error.errno.as_str() {
        "ECONNREFUSED" if unix => {
            "No socket is there to take it: the file at that path remains, but its socket is \
             closed or not listening."
        }
        "ECONNREFUSED" if sock_type == Some(SockType::Dgram) => {
            "An earlier datagram was answered with ICMP port unreachable: nothing was bound to \
             the port it went to."
        }
        "EADDRINUSE" if unix => {
            "A file already exists at that path: bind() makes the socket's file and will not \
             take one that exists (the file stays after its socket closes, until removed)."
        }
        "ECONNREFUSED" => {
            "Nothing is listening at that address: the kernel answered the connection attempt \
             with a reset."
        }
        "EADDRINUSE" => {
            "Another socket already owns that address and port (a listener, or a closed \
             connection still in TIME_WAIT unless SO_REUSEADDR is set)."
        }
        "EADDRNOTAVAIL" => "That address does not belong to this machine.",
        "ECONNRESET" => {
            "The peer reset the connection (it closed with data unread, or with SO_LINGER 0)."
        }
        "EPIPE" => "The connection is closed, so nothing more can be sent on it.",
        "ENOTCONN" => "The socket is not connected.",
        "EISCONN" => "The socket is already connected.",
        "EINVAL" => "The call is not valid for this socket in its present state.",
        "EOPNOTSUPP" => "This kind of socket does not support that call.",
        "EMSGSIZE" => "The datagram is larger than the most the kernel will send in one piece.",
        "EDESTADDRREQ" => "The socket has no peer, so the call needs an address.",
        "EBADF" => "The socket is already closed.",
        "ENOENT" => "No socket file exists at that path.",
        "EAGAIN" | "EWOULDBLOCK" => "Nothing is ready yet and the socket does not wait.",
        "EINPROGRESS" => "The handshake has started; the socket does not wait for it to finish.",
        "ETIMEDOUT" => "The call waited as long as the socket's timeout allows.",
        _ => "",
    };
    if meaning.is_empty() {
        error_text(error)
    } else {
        format!("{} {meaning}", error.errno)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Bytes, SockAddr};
    use std::net::Ipv4Addr;

    #[test]
    fn calls_read_as_python() {
        let address = SockAddr::Inet {
            host: Ipv4Addr::new(127, 64, 0, 1),
            port: 12345,
        };
        assert_eq!(
            call_text(&Call::Bind { address }),
            "bind(('127.64.0.1', 12345))"
        );
        assert_eq!(
            call_text(&Call::Send {
                data: Bytes(b"hi".to_vec())
            }),
            "send(b'hi')"
        );
        assert_eq!(
            call_text(&Call::Settimeout { millis: Some(250) }),
            "settimeout(0.25)"
        );
        assert_eq!(
            call_text(&Call::Setsockopt {
                option: SockOption::Linger(Some(0))
            }),
            "setsockopt(SOL_SOCKET, SO_LINGER, struct.pack('ii', 1, 0))"
        );
    }

    /// `call` on `client.s` entering, and returning `value`.
    fn call_and_return(call: Call, value: ReturnValue) -> (Event, Event) {
        let enter = Event::enter("client", "client.s", None, call);
        let mut returned = enter.clone();
        returned.phase = Phase::Return;
        returned.result = Some(CallResult {
            value,
            fd: Some(3),
            local: None,
            peer: None,
            peer_process: None,
        });
        (enter, returned)
    }

    #[test]
    fn sends_and_receives_are_explained_for_the_kind_of_socket() {
        let dgram = Some((Family::Inet, SockType::Dgram));
        let stream = Some((Family::Inet, SockType::Stream));
        let (enter, sent) = call_and_return(
            Call::Send {
                data: Bytes(b"hi".to_vec()),
            },
            ReturnValue::Sent { count: 2 },
        );
        assert!(explain(&sent, dgram).starts_with("The kernel sent one datagram of 2 bytes"));
        assert!(explain(&sent, stream).contains("send queue"));
        assert!(explain(&sent, None).contains("send queue"));
        assert!(explain(&enter, dgram).starts_with("The program calls send"));
        let to = |address: SockAddr| {
            call_and_return(
                Call::Sendto {
                    data: Bytes(b"hi".to_vec()),
                    address,
                },
                ReturnValue::Sent { count: 2 },
            )
            .1
        };
        let udp = to(SockAddr::Inet {
            host: Ipv4Addr::new(127, 0, 0, 1),
            port: 9,
        });
        assert!(explain(&udp, dgram).contains("nothing tells the sender"));
        let unix = to(SockAddr::Unix {
            path: "/tmp/s".into(),
            r#abstract: false,
        });
        assert!(
            explain(&unix, dgram).contains("a Unix datagram is not lost"),
            "{}",
            explain(&unix, dgram)
        );
        // send() on a connected Unix datagram socket: the kernel names the peer.
        let (_, mut unix_send) = call_and_return(
            Call::Send {
                data: Bytes(b"hi".to_vec()),
            },
            ReturnValue::Sent { count: 2 },
        );
        if let Some(result) = unix_send.result.as_mut() {
            result.peer = Some(SockAddr::Unix {
                path: "/tmp/s".into(),
                r#abstract: false,
            });
        }
        let unix_dgram = Some((Family::Unix, SockType::Dgram));
        assert!(
            explain(&unix_send, unix_dgram).contains("the socket bound to '/tmp/s'"),
            "{}",
            explain(&unix_send, unix_dgram)
        );
        let received = |data: &[u8]| {
            call_and_return(
                Call::Recv { bufsize: 1024 },
                ReturnValue::Received {
                    data: Bytes(data.to_vec()),
                    from: None,
                    truncated_from: None,
                },
            )
        };
        let (enter, two) = received(b"hi");
        assert!(explain(&enter, dgram).starts_with("recv() takes the next datagram"));
        assert!(explain(&enter, stream).contains("until bytes arrive or the peer closes"));
        assert!(explain(&two, dgram).starts_with("One datagram of 2 bytes"));
        assert!(explain(&two, stream).contains("no message boundaries"));
        let (_, none) = received(b"");
        assert!(explain(&none, dgram).starts_with("An empty datagram"));
        assert!(explain(&none, stream).contains("end of stream"));
        // Not knowing the kind, a recv is taken as a stream's, as most are.
        assert!(explain(&none, None).contains("end of stream"));
    }

    #[test]
    fn unix_connections_are_explained_without_packets_or_ports() {
        let path = SockAddr::Unix {
            path: "/tmp/server.sock".into(),
            r#abstract: false,
        };
        let unnamed = SockAddr::Unix {
            path: String::new(),
            r#abstract: false,
        };
        let (enter, mut connected) = call_and_return(
            Call::Connect {
                address: path.clone(),
            },
            ReturnValue::None,
        );
        connected.result.as_mut().unwrap().local = Some(unnamed.clone());
        let stream = Some((Family::Unix, SockType::Stream));
        for sock_type in [stream, None] {
            let text = explain(&enter, sock_type);
            assert!(text.contains("No packets"), "{text}");
            assert!(!text.contains("handshake"), "{text}");
            let text = explain(&connected, sock_type);
            assert!(
                text.starts_with("Connected. This end has no address ('')"),
                "{text}"
            );
            assert!(!text.contains("picks"), "{text}");
        }
        // A Unix datagram socket's connect() only records its peer, as UDP's does.
        let dgram = Some((Family::Unix, SockType::Dgram));
        assert!(explain(&enter, dgram).contains("sends nothing"));
        let (_, accepted) = call_and_return(
            Call::Accept,
            ReturnValue::Accepted {
                fd: 5,
                address: unnamed,
                endpoint: "server.con".into(),
                process: None,
            },
        );
        let text = explain(&accepted, stream);
        assert!(
            text.starts_with("A client connected from an unbound Unix socket"),
            "{text}"
        );
        // A Unix stream has no FIN and no send queue: bytes sent go straight to the peer.
        let on_unix = |call: Call, value: ReturnValue| {
            let (_, mut returned) = call_and_return(call, value);
            if let Some(result) = returned.result.as_mut() {
                result.local = Some(path.clone());
            }
            explain(&returned, stream)
        };
        let shut = on_unix(
            Call::Shutdown {
                how: crate::call::Shutdown::Write,
            },
            ReturnValue::None,
        );
        assert!(shut.starts_with("This side will send no more"), "{shut}");
        assert!(!shut.contains("FIN"), "{shut}");
        let sent = on_unix(
            Call::Send {
                data: Bytes(b"hi".to_vec()),
            },
            ReturnValue::Sent { count: 2 },
        );
        assert!(
            sent.contains("straight into the peer's receive queue"),
            "{sent}"
        );
        // The same calls on TCP.
        let (_, tcp_shut) = call_and_return(
            Call::Shutdown {
                how: crate::call::Shutdown::Write,
            },
            ReturnValue::None,
        );
        let tcp = Some((Family::Inet, SockType::Stream));
        assert!(explain(&tcp_shut, tcp).contains("FIN"));
        // Accepting and the errors of Unix names, told without handshakes, resets or ports.
        let sendall = Event::enter(
            "client",
            "client.s",
            None,
            Call::Sendall {
                data: Bytes(b"hi".to_vec()),
            },
        );
        assert!(explain(&sendall, stream).contains("unread by the peer"));
        assert!(explain(&sendall, tcp).contains("send queue"));
        let accept = Event::enter("server", "server.s", None, Call::Accept);
        assert!(!explain(&accept, stream).contains("handshake"));
        assert!(explain(&accept, tcp).contains("handshake"));
        let failed = |errno: &str, kind| {
            let mut event = accept.clone();
            event.phase = Phase::Return;
            event.error = Some(CallError {
                errno: errno.to_owned(),
                code: 0,
                message: String::new(),
                origin: ErrorOrigin::Kernel,
            });
            explain(&event, kind)
        };
        assert!(failed("ECONNREFUSED", stream).contains("the file at that path remains"));
        assert!(failed("ECONNREFUSED", tcp).contains("reset"));
        let udp = Some((Family::Inet, SockType::Dgram));
        assert!(failed("ECONNREFUSED", udp).contains("ICMP port unreachable"));
        assert!(failed("EADDRINUSE", stream).contains("A file already exists"));
        assert!(failed("EADDRINUSE", tcp).contains("port"));
        let (_, mut reuse) = call_and_return(
            Call::Setsockopt {
                option: SockOption::ReuseAddr(true),
            },
            ReturnValue::None,
        );
        assert!(explain(&reuse, stream).contains("changes nothing for a Unix socket"));
        assert!(explain(&reuse, tcp).contains("TIME_WAIT"));
        // Known from the socket's own address alone.
        if let Some(result) = reuse.result.as_mut() {
            result.local = Some(path.clone());
        }
        assert!(explain(&reuse, None).contains("Unix"));
        let (_, linger) = call_and_return(
            Call::Setsockopt {
                option: SockOption::Linger(Some(0)),
            },
            ReturnValue::None,
        );
        assert!(explain(&linger, stream).contains("changes nothing for a Unix socket"));
        assert!(explain(&linger, tcp).contains("RST"));
    }

    #[test]
    fn errors_read_as_python_exceptions() {
        let error = CallError {
            errno: "ECONNREFUSED".into(),
            code: 111,
            message: "Connection refused".into(),
            origin: Default::default(),
        };
        assert_eq!(
            error_text(&error),
            "ConnectionRefusedError: [Errno 111] Connection refused (ECONNREFUSED)"
        );
        assert!(
            explain_error(&error, Some(SockType::Stream), false).contains("Nothing is listening")
        );
    }
}
