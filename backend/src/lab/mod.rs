//! The laboratory: real sockets, called by name, with every call recorded as events.
//!
//! A [`Lab`] is one run's sandbox. It owns the sockets that the run's programs open, each
//! under an endpoint id such as `server.s`, and performs [`Call`]s on them. Each call emits
//! an enter event before the kernel is asked and a return event with the kernel's answer,
//! through the run's [`EventSink`]. Dropping the lab closes every socket it still holds.
//!
//! Architecture invariant: nothing here invents a result. Every value in a return event is
//! what a system call returned (`getsockname`/`getpeername` for addresses, the errno for
//! errors), except for the errors of [`errno::refused_by_lab`], which say so in their origin.

mod addr;
pub(crate) mod errno;
mod socket;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use nix::errno::Errno;
use shared::{Call, CallError, CallResult, Event, Phase, ReturnValue};
use tokio::sync::mpsc;

use socket::LabSocket;

/// The largest `recv` buffer a program may ask for. Python would allocate whatever it is
/// asked; a shared server must not.
pub(crate) const MAX_RECV_BUFSIZE: usize = 1 << 20;

/// Numbers events and hands them on in `seq` order.
#[derive(Debug)]
pub(crate) struct EventSink {
    started: Instant,
    state: Mutex<SinkState>,
}

#[derive(Debug)]
struct SinkState {
    next_seq: u64,
    events: mpsc::UnboundedSender<Event>,
}

impl EventSink {
    /// A sink whose events go to `events`, timed from now.
    pub(crate) fn new(events: mpsc::UnboundedSender<Event>) -> Self {
        EventSink {
            started: Instant::now(),
            state: Mutex::new(SinkState {
                next_seq: 0,
                events,
            }),
        }
    }

    /// Numbers, timestamps and sends an event. The sequence number and the timestamp are
    /// taken under one lock, so events from concurrent roles are in the same order by both.
    fn emit(&self, mut event: Event) -> Event {
        let mut state = lock(&self.state);
        event.seq = state.next_seq;
        event.t_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        state.next_seq += 1;
        // A closed receiver means nobody watches any more (the browser left); the run is
        // being torn down and its remaining events have nowhere to go.
        let _ = state.events.send(event.clone());
        event
    }
}

/// Who makes a call, where, and from which line of their program.
#[derive(Clone, Debug)]
pub(crate) struct Caller<'a> {
    /// The program (role), such as `server`.
    pub(crate) role: &'a str,
    /// The endpoint the call is made on, such as `server.s`.
    pub(crate) endpoint: &'a str,
    /// The line of the role's program.
    pub(crate) line: Option<u32>,
}

/// One run's sockets and event stream.
#[derive(Debug)]
pub(crate) struct Lab {
    sockets: Mutex<HashMap<String, Arc<LabSocket>>>,
    sink: EventSink,
}

impl Lab {
    /// An empty lab whose events go to `sink`.
    pub(crate) fn new(sink: EventSink) -> Self {
        Lab {
            sockets: Mutex::new(HashMap::new()),
            sink,
        }
    }

    /// Performs `call` on the caller's endpoint, emitting its enter and return events.
    ///
    /// `accept` names its new endpoint `conn_endpoint` (or, if that is taken, the same name
    /// with a number: `server.con2`). `on_enter` runs right after the enter event is sent and
    /// before the kernel is asked, so that whoever waits for this call to start (a client
    /// waiting for the server's `accept`) starts after its enter event.
    pub(crate) async fn perform(
        &self,
        caller: &Caller<'_>,
        call: Call,
        conn_endpoint: Option<&str>,
        on_enter: impl FnOnce(),
    ) -> Result<CallResult, CallError> {
        let enter = Event {
            seq: 0,
            t_us: 0,
            role: caller.role.to_owned(),
            endpoint: caller.endpoint.to_owned(),
            line: caller.line,
            call,
            phase: Phase::Enter,
            result: None,
            error: None,
        };
        let mut event = self.sink.emit(enter);
        on_enter();
        let outcome = self
            .execute(caller.endpoint, &event.call, conn_endpoint)
            .await;
        event.phase = Phase::Return;
        match &outcome {
            Ok(result) => event.result = Some(result.clone()),
            Err(error) => event.error = Some(error.clone()),
        }
        self.sink.emit(event);
        outcome
    }

    /// Closes, without events, every socket whose endpoint belongs to `role`: what the kernel
    /// does when a program exits.
    pub(crate) fn exit(&self, role: &str) {
        let prefix = format!("{role}.");
        lock(&self.sockets).retain(|endpoint, _| !endpoint.starts_with(&prefix));
    }

    async fn execute(
        &self,
        endpoint: &str,
        call: &Call,
        conn_endpoint: Option<&str>,
    ) -> Result<CallResult, CallError> {
        let io_error = |error: std::io::Error| errno::from_io(&error);
        match call {
            Call::Socket { family, sock_type } => {
                let socket = LabSocket::open(*family, *sock_type).map_err(io_error)?;
                let result = snapshot(ReturnValue::Socket, &socket);
                let mut sockets = lock(&self.sockets);
                if sockets.contains_key(endpoint) {
                    return Err(errno::refused_by_lab(
                        Errno::EEXIST,
                        format!("an endpoint named {endpoint} is already open"),
                    ));
                }
                sockets.insert(endpoint.to_owned(), Arc::new(socket));
                Ok(result)
            }
            Call::Gethostname => {
                let name = nix::unistd::gethostname()
                    .map_err(|errno| errno::from_code(errno as i32))?
                    .to_string_lossy()
                    .into_owned();
                let value = ReturnValue::Hostname { name };
                Ok(match self.socket(endpoint) {
                    Ok(socket) => snapshot(value, &socket),
                    Err(_) => CallResult {
                        value,
                        fd: None,
                        local: None,
                        peer: None,
                    },
                })
            }
            Call::Bind { address } => {
                let socket = self.socket(endpoint)?;
                socket.bind(address).map_err(io_error)?;
                Ok(snapshot(ReturnValue::None, &socket))
            }
            Call::Listen { backlog } => {
                let socket = self.socket(endpoint)?;
                socket.listen(*backlog).map_err(io_error)?;
                Ok(snapshot(ReturnValue::None, &socket))
            }
            Call::Accept => {
                let socket = self.socket(endpoint)?;
                let (conn, peer) = socket.accept().await.map_err(io_error)?;
                let conn_fd = conn.fd();
                let address = peer.or_else(|| conn.peer_addr()).ok_or_else(|| {
                    errno::refused_by_lab(Errno::EAFNOSUPPORT, "peer address of an unknown family")
                })?;
                let conn_id = self.adopt(conn_endpoint.unwrap_or(endpoint), conn);
                Ok(snapshot(
                    ReturnValue::Accepted {
                        endpoint: conn_id,
                        fd: conn_fd,
                        address,
                    },
                    &socket,
                ))
            }
            Call::Connect { address } => {
                let socket = self.socket(endpoint)?;
                socket.connect(address).await.map_err(io_error)?;
                Ok(snapshot(ReturnValue::None, &socket))
            }
            Call::Send { data } => {
                let socket = self.socket(endpoint)?;
                let count = socket.send(&data.0).await.map_err(io_error)?;
                Ok(snapshot(ReturnValue::Sent { count }, &socket))
            }
            Call::Recv { bufsize } => {
                if *bufsize > MAX_RECV_BUFSIZE {
                    return Err(errno::refused_by_lab(
                        Errno::EINVAL,
                        format!(
                            "recv({bufsize}) asks for more than Socket Lab's limit of {MAX_RECV_BUFSIZE} bytes"
                        ),
                    ));
                }
                let socket = self.socket(endpoint)?;
                let data = socket.recv(*bufsize).await.map_err(io_error)?;
                Ok(snapshot(
                    ReturnValue::Received { data: data.into() },
                    &socket,
                ))
            }
            Call::Close => {
                let socket = lock(&self.sockets)
                    .remove(endpoint)
                    .ok_or_else(|| no_such_endpoint(endpoint))?;
                // Another call may still hold the socket (a recv waiting on it); then the
                // descriptor is closed when that call lets go, as the last reference drops.
                if let Ok(socket) = Arc::try_unwrap(socket) {
                    socket.close().map_err(io_error)?;
                }
                Ok(CallResult {
                    value: ReturnValue::None,
                    fd: None,
                    local: None,
                    peer: None,
                })
            }
        }
    }

    fn socket(&self, endpoint: &str) -> Result<Arc<LabSocket>, CallError> {
        lock(&self.sockets)
            .get(endpoint)
            .cloned()
            .ok_or_else(|| no_such_endpoint(endpoint))
    }

    /// Stores an accepted socket under a free endpoint id based on `wanted`.
    fn adopt(&self, wanted: &str, socket: LabSocket) -> String {
        let mut sockets = lock(&self.sockets);
        let mut id = wanted.to_owned();
        let mut number = 2;
        while sockets.contains_key(&id) {
            id = format!("{wanted}{number}");
            number += 1;
        }
        sockets.insert(id.clone(), Arc::new(socket));
        id
    }
}

/// A call's result with its socket's fd and addresses as the kernel reports them now.
fn snapshot(value: ReturnValue, socket: &LabSocket) -> CallResult {
    CallResult {
        value,
        fd: Some(socket.fd()),
        local: socket.local_addr(),
        peer: socket.peer_addr(),
    }
}

/// Python raises `EBADF` for a call on a closed socket.
fn no_such_endpoint(endpoint: &str) -> CallError {
    errno::refused_by_lab(
        Errno::EBADF,
        format!("{endpoint} is not an open socket (never created, or already closed)"),
    )
}

/// Locks a mutex. A poisoned lock only means another thread panicked while holding it; the
/// data (a map of sockets, a counter) is still consistent, so it is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
