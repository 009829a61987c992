//! Plain renderings of calls and their outcomes, shared by the terminal table and the page so
//! that both say the same thing in the same words.

use crate::call::{Call, CallError, CallResult, ReturnValue};
use crate::event::{Event, Phase};

/// The call as a line of Python: `bind(('127.64.0.1', 12345))`.
pub fn call_text(call: &Call) -> String {
    match call {
        Call::Socket { family, sock_type } => {
            format!("socket({}, {})", family.name(), sock_type.name())
        }
        Call::Gethostname => "gethostname()".to_owned(),
        Call::Bind { address } => format!("bind({address})"),
        Call::Listen { backlog } => format!("listen({backlog})"),
        Call::Accept => "accept()".to_owned(),
        Call::Connect { address } => format!("connect({address})"),
        Call::Send { data } => format!("send({data})"),
        Call::Recv { bufsize } => format!("recv({bufsize})"),
        Call::Close => "close()".to_owned(),
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
        ReturnValue::Received { data } => data.to_string(),
    }
}

/// The error as Python would raise it: `ConnectionRefusedError: [Errno 111] Connection refused`.
pub fn error_text(error: &CallError) -> String {
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

/// One sentence in plain words on what the event means, for a student.
pub fn explain(event: &Event) -> String {
    match (event.phase, event.outcome()) {
        (Phase::Enter, _) => explain_enter(&event.call),
        (Phase::Return, Some(Err(error))) => explain_error(error),
        (Phase::Return, Some(Ok(result))) => explain_result(&event.call, result),
        (Phase::Return, None) => String::new(),
    }
}

fn explain_enter(call: &Call) -> String {
    match call {
        Call::Accept => {
            "accept() waits until a client has connected; the kernel completes the handshake \
             on its own and queues the connection for accept to take."
                .to_owned()
        }
        Call::Connect { .. } => {
            "connect() asks the kernel to open a connection; it returns once the handshake \
             with the listener is done."
                .to_owned()
        }
        Call::Recv { .. } => {
            "recv() waits until bytes arrive in the socket's receive queue or the peer closes."
                .to_owned()
        }
        other => format!("{} is running.", call_text(other)),
    }
}

fn explain_result(call: &Call, result: &CallResult) -> String {
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
            "The socket is now a listener: the kernel will accept connections for it and queue \
             up to {backlog} of them until the program calls accept()."
        ),
        (_, ReturnValue::Accepted { address, .. }) => format!(
            "A client at {address} connected; accept() returned a new socket for that one \
             connection, while the listener goes on listening."
        ),
        (Call::Connect { .. }, _) => match &result.local {
            Some(local) => format!(
                "Connected. The kernel picked the local address {local} for this end by itself."
            ),
            None => "Connected.".to_owned(),
        },
        (_, ReturnValue::Sent { count }) => format!(
            "The kernel took {count} bytes into the socket's send queue; send() does not wait \
             for the peer to read them."
        ),
        (_, ReturnValue::Received { data }) if data.is_empty() => {
            "recv() returned no bytes: the peer has closed its side and nothing more will come \
             (end of stream)."
                .to_owned()
        }
        (_, ReturnValue::Received { data }) => format!(
            "{} bytes were waiting in the receive queue and recv() took them.",
            data.len()
        ),
        (Call::Close, _) => {
            "The socket is closed and its file descriptor released; the peer will see end of \
             stream."
                .to_owned()
        }
        _ => format!("{} returned.", call_text(call)),
    }
}

fn explain_error(error: &CallError) -> String {
    let meaning = match error.errno.as_str() {
        "ECONNREFUSED" => {
            "Nothing is listening at that address: the kernel answered the \
                           connection attempt with a reset."
        }
        "EADDRINUSE" => "Another socket already owns that address and port.",
        "EADDRNOTAVAIL" => "That address does not belong to this machine.",
        "ECONNRESET" => "The peer reset the connection (it closed with data unread, or abruptly).",
        "EPIPE" => "The peer has closed the connection, so nothing more can be sent on it.",
        "ENOTCONN" => "The socket is not connected.",
        "EINVAL" => "The call is not valid for this socket in its present state.",
        "EBADF" => "The socket is already closed.",
        "EAGAIN" | "EWOULDBLOCK" => "Nothing is ready yet and the socket does not wait.",
        "ETIMEDOUT" => "The call waited longer than allowed.",
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
        assert!(explain_error(&error).contains("Nothing is listening"));
    }
}
