//! The laboratory: real sockets, called by name, with every call recorded as events.
//!
//! A [`Lab`] is one run's sandbox. It owns the sockets that the run's programs open, each
//! under an endpoint id such as `server.s`, and performs [`Call`]s on them. Each call emits
//! an enter event before the kernel is asked and a return event with the kernel's answer,
//! through the run's [`EventSink`], with the kernel's view of every open socket. Dropping the
//! lab closes every socket it still holds and removes every file it made.
//!
//! Architecture invariant: nothing here invents a result. Every value in a return event is
//! what a system call returned (`getsockname`/`getpeername` for addresses, the errno for
//! errors), except for the errors of [`errno::refused_by_lab`], which say so in their origin.

mod addr;
pub(crate) mod errno;
mod kernel;
mod places;
mod socket;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use shared::{
    Call, CallError, CallResult, Event, NextCall, Phase, ReturnValue, SocketState, SocketView,
};
use tokio::sync::mpsc;

use kernel::AddressPair;
pub(crate) use kernel::listening_on;
pub(crate) use places::Places;
use socket::{Blocking, LabSocket};

use shared::MAX_RECV_BUFSIZE;

/// The most sockets one lab may hold open at once. The tutorial's programs use a handful; a
/// student's loop that opens sockets without closing them must not exhaust the server's
/// descriptors.
pub(crate) const MAX_SOCKETS: usize = 64;

/// What a run's stream carries: its events, and the notices of a paused run.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // Events are nearly every item; boxing them would cost an allocation each.
pub(crate) enum RunItem {
    /// An event.
    Event(Event),
    /// The run waits to make this call until the user says so.
    Paused(NextCall),
}

/// Numbers events and hands them on in `seq` order.
#[derive(Debug)]
pub(crate) struct EventSink {
    started: Instant,
    state: Mutex<SinkState>,
}

#[derive(Debug)]
struct SinkState {
    next_seq: u64,
    events: mpsc::UnboundedSender<RunItem>,
}

impl EventSink {
    /// A sink whose events go to `events`, timed from now.
    pub(crate) fn new(events: mpsc::UnboundedSender<RunItem>) -> Self {
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
        let _ = state.events.send(RunItem::Event(event.clone()));
        event
    }

    /// Says which call the paused run will make next, in order with its events.
    pub(crate) fn paused(&self, next: NextCall) {
        let state = lock(&self.state);
        // As for events: a closed receiver means nobody watches any more.
        let _ = state.events.send(RunItem::Paused(next));
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

/// One run's sockets, files and event stream.
#[derive(Debug)]
pub(crate) struct Lab {
    /// The open sockets by endpoint, in the order they were opened (the order of the kernel
    /// view in every event).
    sockets: Mutex<Vec<(String, Arc<LabSocket>)>>,
    /// Every name an accepted connection has had, so that no two connections of a run share
    /// one (three `accept`s into `con` make `con`, `con2` and `con3`).
    accepted_names: Mutex<HashSet<String>>,
    /// TCP connections whose sockets the program closed, while the kernel may still keep them.
    lingering: Mutex<Vec<(String, AddressPair)>>,
    sink: EventSink,
    places: Places,
    /// Whether to find the program at the other end of accepted connections: where outside
    /// programs may connect (the sandbox, a run with an outside peer). Scenario runs whose
    /// roles are all Socket Lab's skip the search.
    look_up_peers: bool,
}

impl Lab {
    /// An empty lab whose events go to `sink` and whose Unix names live in `places`.
    pub(crate) fn new(sink: EventSink, places: Places) -> Self {
        Lab {
            sockets: Mutex::new(Vec::new()),
            accepted_names: Mutex::new(HashSet::new()),
            lingering: Mutex::new(Vec::new()),
            sink,
            places,
            look_up_peers: false,
        }
    }

    /// Makes the lab find the program at the other end of each accepted connection.
    pub(crate) fn look_up_peers(mut self) -> Self {
        self.look_up_peers = true;
        self
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
            kernel: Vec::new(),
        };
        let mut event = self.emit(enter);
        on_enter();
        let outcome = self
            .execute(caller.endpoint, &event.call, conn_endpoint)
            .await;
        event.phase = Phase::Return;
        match &outcome {
            Ok(result) => event.result = Some(result.clone()),
            Err(error) => event.error = Some(error.clone()),
        }
        self.emit(event);
        outcome
    }

    /// The lab's event stream, for notices that go with its events.
    pub(crate) fn sink(&self) -> &EventSink {
        &self.sink
    }

    /// Closes, without events, every socket whose endpoint belongs to `role`: what the kernel
    /// does when a program exits.
    pub(crate) fn exit(&self, role: &str) {
        let prefix = format!("{role}.");
        let mut sockets = lock(&self.sockets);
        for (endpoint, socket) in sockets.iter() {
            if endpoint.starts_with(&prefix) {
                self.linger(endpoint, socket);
            }
        }
        sockets.retain(|(endpoint, _)| !endpoint.starts_with(&prefix));
    }

    /// Keeps watching a TCP connection whose socket is being closed, in the kernel's table.
    fn linger(&self, endpoint: &str, socket: &LabSocket) {
        if let Some(pair) = socket.last_pair() {
            let mut lingering = lock(&self.lingering);
            if lingering.len() >= MAX_SOCKETS {
                lingering.remove(0);
            }
            lingering.push((endpoint.to_owned(), pair));
        }
    }

    /// Sends an event with the kernel's view of every open socket. The view is read and the
    /// event numbered under the socket table's lock, so that the views of successive events
    /// follow each other in `seq` order.
    fn emit(&self, mut event: Event) -> Event {
        let sockets = lock(&self.sockets);
        event.kernel = self.kernel_view(&sockets);
        self.sink.emit(event)
    }

    /// Every open socket as the kernel reports it, then every closed one's connection that
    /// the kernel still keeps.
    fn kernel_view(&self, sockets: &[(String, Arc<LabSocket>)]) -> Vec<SocketView> {
        let mut views = Vec::with_capacity(sockets.len());
        // Open TCP sockets that have let go of their connection: which view, which socket.
        let mut let_go = Vec::new();
        for (endpoint, socket) in sockets {
            let view = socket.view(endpoint);
            if view.state == SocketState::Closed
                && let Some(pair) = socket.last_pair()
            {
                let_go.push((views.len(), socket, pair));
            }
            views.push(view);
        }
        let mut lingering = lock(&self.lingering);
        if let_go.is_empty() && lingering.is_empty() {
            return views;
        }
        let wanted: Vec<AddressPair> = let_go
            .iter()
            .map(|(_, _, pair)| *pair)
            .chain(lingering.iter().map(|(_, pair)| *pair))
            .collect();
        let table = kernel::connection_table(&wanted);
        for (index, socket, pair) in let_go {
            match table.get(&pair) {
                Some(entry) => views[index] = lingering_view(&views[index].endpoint, entry),
                None => socket.forget_pair(),
            }
        }
        lingering.retain(|(_, pair)| table.contains_key(pair));
        views.extend(
            lingering
                .iter()
                .filter_map(|(endpoint, pair)| Some(lingering_view(endpoint, table.get(pair)?))),
        );
        views
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
                let mut sockets = lock(&self.sockets);
                if sockets.iter().any(|(id, _)| id == endpoint) {
                    return Err(errno::refused_by_lab(
                        Errno::EEXIST,
                        format!("an endpoint named {endpoint} is already open"),
                    ));
                }
                if sockets.len() >= MAX_SOCKETS {
                    return Err(errno::refused_by_lab(
                        Errno::EMFILE,
                        format!("a session may hold at most {MAX_SOCKETS} sockets open at once"),
                    ));
                }
                let socket = LabSocket::open(*family, *sock_type).map_err(io_error)?;
                let result = snapshot(ReturnValue::Socket, &socket);
                sockets.push((endpoint.to_owned(), Arc::new(socket)));
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
                        peer_process: None,
                    },
                })
            }
            Call::Bind { address } => {
                let socket = self.socket(endpoint)?;
                let address = self.places.resolve(address, socket.family(), true)?;
                socket.bind(&address).map_err(io_error)?;
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
                conn.remember_pair();
                // Only a TCP peer of another program is looked up; Socket Lab's own roles
                // are drawn from their own events.
                let process = conn
                    .last_pair()
                    .filter(|_| self.look_up_peers)
                    .and_then(kernel::process_at_other_end);
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
                        process,
                    },
                    &socket,
                ))
            }
            Call::Connect { address } => {
                let socket = self.socket(endpoint)?;
                let address = self.places.resolve(address, socket.family(), false)?;
                // The program that listens there is looked up before connecting: a quick
                // server may have answered, closed and ended by the time connect returns.
                let listener = address
                    .as_socket()
                    .filter(|_| self.look_up_peers && socket.is_tcp())
                    .and_then(kernel::process_listening_on);
                socket.connect(&address).await.map_err(io_error)?;
                let mut result = snapshot(ReturnValue::None, &socket);
                result.peer_process = listener;
                Ok(result)
            }
            Call::Send { data } => {
                let socket = self.socket(endpoint)?;
                let count = socket.send(&data.0).await.map_err(io_error)?;
                Ok(snapshot(ReturnValue::Sent { count }, &socket))
            }
            Call::Sendall { data } => {
                let socket = self.socket(endpoint)?;
                socket.send_all(&data.0).await.map_err(io_error)?;
                Ok(snapshot(ReturnValue::None, &socket))
            }
            Call::Sendto { data, address } => {
                let socket = self.socket(endpoint)?;
                let address = self.places.resolve(address, socket.family(), false)?;
                let count = socket.send_to(&data.0, &address).await.map_err(io_error)?;
                Ok(snapshot(ReturnValue::Sent { count }, &socket))
            }
            Call::Recv { bufsize } | Call::Recvfrom { bufsize } => {
                if *bufsize > MAX_RECV_BUFSIZE {
                    return Err(errno::refused_by_lab(
                        Errno::EINVAL,
                        format!(
                            "{}({bufsize}) asks for more than Socket Lab's limit of \
                             {MAX_RECV_BUFSIZE} bytes",
                            call.name()
                        ),
                    ));
                }
                let socket = self.socket(endpoint)?;
                let received = socket.recv_from(*bufsize).await.map_err(io_error)?;
                let from = match call {
                    Call::Recvfrom { .. } => received.from,
                    _ => None,
                };
                Ok(snapshot(
                    ReturnValue::Received {
                        data: received.data.into(),
                        from,
                        truncated_from: received.truncated_from,
                    },
                    &socket,
                ))
            }
            Call::Shutdown { how } => {
                let socket = self.socket(endpoint)?;
                let how = match how {
                    shared::Shutdown::Read => std::net::Shutdown::Read,
                    shared::Shutdown::Write => std::net::Shutdown::Write,
                    shared::Shutdown::Both => std::net::Shutdown::Both,
                };
                socket.shutdown(how).map_err(io_error)?;
                Ok(snapshot(ReturnValue::None, &socket))
            }
            Call::Getsockname | Call::Getpeername => {
                let socket = self.socket(endpoint)?;
                let address = socket
                    .name(matches!(call, Call::Getpeername))
                    .map_err(io_error)?;
                Ok(snapshot(ReturnValue::Address { address }, &socket))
            }
            Call::Setsockopt { option } => {
                let socket = self.socket(endpoint)?;
                socket.set_option(*option).map_err(io_error)?;
                Ok(snapshot(ReturnValue::None, &socket))
            }
            Call::Setblocking { flag } => {
                let socket = self.socket(endpoint)?;
                socket.set_blocking(if *flag {
                    Blocking::Wait
                } else {
                    Blocking::Never
                });
                Ok(snapshot(ReturnValue::None, &socket))
            }
            Call::Settimeout { millis } => {
                let socket = self.socket(endpoint)?;
                socket.set_blocking(match millis {
                    None => Blocking::Wait,
                    Some(0) => Blocking::Never,
                    Some(millis) => Blocking::Timeout(Duration::from_millis(*millis)),
                });
                Ok(snapshot(ReturnValue::None, &socket))
            }
            Call::Close => {
                let socket = {
                    let mut sockets = lock(&self.sockets);
                    let index = sockets
                        .iter()
                        .position(|(id, _)| id == endpoint)
                        .ok_or_else(|| no_such_endpoint(endpoint))?;
                    sockets.remove(index).1
                };
                self.linger(endpoint, &socket);
                match Arc::try_unwrap(socket) {
                    Ok(socket) => socket.close().map_err(io_error)?,
                    // Another call still waits on the socket: it is woken with what the kernel
                    // reports, and the descriptor is closed when that call lets go of it.
                    Err(shared_socket) => shared_socket.wake_waiting_calls(),
                }
                Ok(CallResult {
                    value: ReturnValue::None,
                    fd: None,
                    local: None,
                    peer: None,
                    peer_process: None,
                })
            }
        }
    }

    fn socket(&self, endpoint: &str) -> Result<Arc<LabSocket>, CallError> {
        lock(&self.sockets)
            .iter()
            .find(|(id, _)| id == endpoint)
            .map(|(_, socket)| Arc::clone(socket))
            .ok_or_else(|| no_such_endpoint(endpoint))
    }

    /// Stores an accepted socket under a free endpoint id based on `wanted`.
    fn adopt(&self, wanted: &str, socket: LabSocket) -> String {
        let mut sockets = lock(&self.sockets);
        let mut names = lock(&self.accepted_names);
        let mut id = wanted.to_owned();
        let mut number = 2;
        while names.contains(&id) || sockets.iter().any(|(taken, _)| *taken == id) {
            id = format!("{wanted}{number}");
            number += 1;
        }
        names.insert(id.clone());
        sockets.push((id.clone(), Arc::new(socket)));
        id
    }
}

impl Drop for Lab {
    /// Closes every socket before the lab's directory and its socket files are removed.
    fn drop(&mut self) {
        lock(&self.sockets).clear();
        self.places.remove();
    }
}

/// The view of a connection that outlived its socket, from the kernel's table.
fn lingering_view(endpoint: &str, entry: &kernel::TableEntry) -> SocketView {
    SocketView {
        endpoint: endpoint.to_owned(),
        state: entry.state,
        recv_queue: Some(entry.recv_queue),
        send_queue: Some(entry.send_queue),
        accept_queue: None,
        backlog: None,
        lingering: true,
    }
}

/// A call's result with its socket's fd and addresses as the kernel reports them now.
fn snapshot(value: ReturnValue, socket: &LabSocket) -> CallResult {
    socket.remember_pair();
    CallResult {
        value,
        fd: Some(socket.fd()),
        local: socket.local_addr(),
        peer: socket.peer_addr(),
        peer_process: None,
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
