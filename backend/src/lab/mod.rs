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

pub(crate) mod addr;
pub(crate) mod errno;
pub(crate) mod kernel;
mod places;
mod socket;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use shared::{
    Call, CallError, CallResult, Event, NextCall, Phase, ReturnValue, SockType, SocketState,
    SocketView,
};
use tokio::sync::mpsc;

use kernel::AddressPair;
pub(crate) use kernel::listening_on;
pub(crate) use places::Places;
use socket::{Blocking, LabSocket};

use crate::network::RunNetwork;
use crate::policy::{self, Policy};

/// What a run's stream carries: its events, the notices of a paused run, and the count of
/// events dropped because the stream's reader fell behind.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // Events are nearly every item; boxing them would cost an allocation each.
pub(crate) enum RunItem {
    /// An event.
    Event(Event),
    /// The run waits to make this call until the user says so.
    Paused(NextCall),
    /// Events that were not queued because the queue was full.
    Dropped(shared::Dropped),
    /// A watched run found a program (a process, or a Python file of one) that the events
    /// after this name.
    Program(shared::RoleProgram),
    /// A packet on the run's network.
    Packet(shared::Packet),
    /// Whether the run's packets are captured, and the counts of those not kept.
    Capture(shared::Capture),
}

/// The receiving end of a run's stream.
#[derive(Debug)]
pub(crate) struct RunItems {
    items: mpsc::Receiver<RunItem>,
    /// The count of events dropped after everything queued, shared with the sink.
    dropped: Arc<Mutex<Option<shared::Dropped>>>,
}

impl RunItems {
    /// The next item; `None` once the run has ended and everything is taken.
    ///
    /// Events dropped after everything queued are reported as soon as the queue is empty,
    /// and at the latest when the run ends: a run that drops its last events and then waits
    /// (or ends) still says so.
    pub(crate) async fn recv(&mut self) -> Option<RunItem> {
        match self.items.try_recv() {
            Ok(item) => return Some(item),
            Err(mpsc::error::TryRecvError::Empty) => {}
            Err(mpsc::error::TryRecvError::Disconnected) => return self.take_dropped(),
        }
        // The queue is empty, so any count waiting follows everything already taken.
        if let Some(dropped) = self.take_dropped() {
            return Some(dropped);
        }
        match self.items.recv().await {
            Some(item) => Some(item),
            None => self.take_dropped(),
        }
    }

    /// The next item if one is ready now.
    pub(crate) fn try_recv(&mut self) -> Option<RunItem> {
        match self.items.try_recv() {
            Ok(item) => Some(item),
            Err(_) => self.take_dropped(),
        }
    }

    fn take_dropped(&self) -> Option<RunItem> {
        lock(&self.dropped).take().map(RunItem::Dropped)
    }
}

/// Numbers events and hands them on in `seq` order, through a queue of bounded length.
///
/// Calls never wait for the queue's reader: a run's sockets go on at the kernel's pace
/// whoever watches. When the queue is full, events are counted instead of queued, and the
/// count goes into the queue as a [`RunItem::Dropped`] once there is room again, in its place
/// among the events. One place is always kept for a paused run's notice, which is never
/// dropped (a paused run makes no calls until the user has seen it).
#[derive(Debug)]
pub(crate) struct EventSink {
    started: Instant,
    state: Mutex<SinkState>,
    /// Whether anyone watches: an unwatched lab makes its calls and reads no kernel views.
    watched: bool,
}

#[derive(Debug)]
struct SinkState {
    next_seq: u64,
    events: mpsc::Sender<RunItem>,
    /// Places of the queue that only calls other than sends and receives may take: a
    /// firehose fills the queue with its data calls, and the calls that change what a socket
    /// is (an accept, a close) still reach the page whole, so its endpoints and states stay
    /// right and a busy run's last calls are seen.
    reserve: usize,
    /// Events dropped since the last one queued. The receiver takes the count itself when
    /// it finds the queue empty.
    dropped: Arc<Mutex<Option<shared::Dropped>>>,
}

impl EventSink {
    /// A sink queueing at most `capacity` events, and the queue's receiving end; events are
    /// timed from now.
    pub(crate) fn new(capacity: usize) -> (Self, RunItems) {
        // One more place for a pause notice.
        let (events, items) = mpsc::channel(capacity.max(1) + 1);
        let dropped = Arc::new(Mutex::new(None));
        let sink = EventSink {
            started: Instant::now(),
            state: Mutex::new(SinkState {
                next_seq: 0,
                events,
                reserve: capacity / 8,
                dropped: Arc::clone(&dropped),
            }),
            watched: true,
        };
        (sink, RunItems { items, dropped })
    }

    /// A sink for a run that nobody watches: its calls make no events at all. `backend bench`
    /// uses it, to measure what watching costs.
    pub(crate) fn unwatched() -> Self {
        EventSink::unwatched_stream().0
    }

    /// A sink that makes no events, and its stream, which only ends (with the run): a run
    /// played `quiet` over the WebSocket.
    pub(crate) fn unwatched_stream() -> (Self, RunItems) {
        let (mut sink, items) = EventSink::new(1);
        sink.watched = false;
        (sink, items)
    }

    /// Numbers, timestamps and sends an event. The sequence number and the timestamp are
    /// taken under one lock, so events from concurrent roles are in the same order by both.
    fn emit(&self, mut event: Event) -> Event {
        let mut state = lock(&self.state);
        event.seq = state.next_seq;
        event.t_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        state.next_seq += 1;
        state.queue(&event);
        event
    }

    /// Sends an event numbered and timed elsewhere (a watched run's, by the hub that gathers
    /// it), with the same rules for a full queue as [`EventSink::emit`]'s.
    pub(crate) fn forward(&self, event: &Event) {
        lock(&self.state).queue(event);
    }

    /// Sends a range of events that were not sent whole elsewhere, after what is queued.
    pub(crate) fn forward_dropped(&self, dropped: shared::Dropped) {
        let state = lock(&self.state);
        let mut waiting = lock(&state.dropped);
        match waiting.as_mut() {
            Some(range) => absorb(range, dropped),
            None => *waiting = Some(dropped),
        }
    }

    /// Sends a watched run's new program, in order with the events. Like a pause notice it
    /// is never dropped: it has places of its own in the queue.
    pub(crate) fn program(&self, program: shared::RoleProgram) {
        let mut state = lock(&self.state);
        state.flush_dropped(1);
        if state.events.try_send(RunItem::Program(program)).is_err() {
            tracing::warn!("a watched run's program did not fit in a page's queue");
        }
    }

    /// When the run's clock (every event's and packet's `t_us`) started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Sends a packet of the run's network, in order with the events; `false` when the
    /// queue had no room (the caller counts it). Packets leave the reserve to calls other
    /// than sends and receives, as data calls do.
    pub(crate) fn packet(&self, packet: shared::Packet) -> bool {
        if !self.watched {
            return true;
        }
        lock(&self.state).offer(RunItem::Packet(packet), true)
    }

    /// Sends the state of the run's capture. Like a program, it is never dropped.
    pub(crate) fn capture(&self, capture: shared::Capture) {
        if !self.watched {
            return;
        }
        let mut state = lock(&self.state);
        state.flush_dropped(1);
        if state.events.try_send(RunItem::Capture(capture)).is_err() {
            tracing::warn!("a run's capture state did not fit in its queue");
        }
    }

    /// Says which call the paused run will make next, in order with its events.
    pub(crate) fn paused(&self, next: NextCall) {
        let mut state = lock(&self.state);
        state.flush_dropped(1);
        // As for events: a closed receiver means nobody watches any more. The queue has a
        // place for this notice: a paused run sends one, then waits.
        let _ = state.events.try_send(RunItem::Paused(next));
    }
}

/// Adds `more` to `range`: the events of both, and their calls' tallies.
fn absorb(range: &mut shared::Dropped, more: shared::Dropped) {
    range.count += more.count;
    range.first_seq = range.first_seq.min(more.first_seq);
    range.last_seq = range.last_seq.max(more.last_seq);
    let both = [std::mem::take(&mut range.calls), more.calls];
    let ranges: Vec<shared::Dropped> = both
        .into_iter()
        .map(|calls| shared::Dropped {
            calls,
            ..Default::default()
        })
        .collect();
    range.calls = shared::message::total_calls(&ranges);
}

impl SinkState {
    /// Queues an event, or counts it as dropped when the queue is full.
    fn queue(&mut self, event: &Event) {
        if !self.offer(RunItem::Event(event.clone()), event.call.moves_data()) {
            self.count_dropped(event);
        }
    }

    /// Queues an item if there is room for it; `false` when there is not (the caller counts
    /// it). The last place is kept for a pause notice; a drop count needs one of its own;
    /// and items that move data (sends, receives, packets) leave the reserve to the calls
    /// that change what a socket is.
    fn offer(&mut self, item: RunItem, moves_data: bool) -> bool {
        let keep = if moves_data { 2 + self.reserve } else { 2 };
        if self.flush_dropped(keep) && self.events.capacity() >= keep {
            // A closed receiver means nobody watches any more (the browser left); the run
            // is being torn down and its remaining items have nowhere to go.
            let _ = self.events.try_send(item);
            true
        } else {
            false
        }
    }

    /// Queues the count of dropped events, if any, when at least `keep` places remain after
    /// it. Returns whether no count is left waiting.
    fn flush_dropped(&mut self, keep: usize) -> bool {
        let mut waiting = lock(&self.dropped);
        let Some(dropped) = waiting.take() else {
            return true;
        };
        if self.events.capacity() > keep {
            let _ = self.events.try_send(RunItem::Dropped(dropped));
            true
        } else {
            *waiting = Some(dropped);
            false
        }
    }

    fn count_dropped(&mut self, event: &Event) {
        let mut waiting = lock(&self.dropped);
        // Events are numbered under the sink's lock, so a dropped one always follows the
        // range waiting, if there is one.
        let extended = waiting.as_mut().is_some_and(|range| range.extend(event));
        if !extended {
            *waiting = Some(shared::Dropped::of(event));
        }
    }
}

/// A lab's open sockets by endpoint, in the order they were opened (the order of the kernel
/// view in every event). The server's [`Policy`] holds every lab's table, to keep sessions
/// from reaching each other's sockets.
#[derive(Debug, Default)]
pub(crate) struct SocketTable {
    sockets: Mutex<Vec<(String, Arc<LabSocket>)>>,
}

impl SocketTable {
    fn lock(&self) -> MutexGuard<'_, Vec<(String, Arc<LabSocket>)>> {
        lock(&self.sockets)
    }

    /// The IP addresses the table's sockets are bound to, as the kernel reports them, each
    /// with its socket's type: TCP's ports and UDP's are apart.
    pub(crate) fn local_addresses(&self) -> Vec<(SockType, std::net::SocketAddr)> {
        self.lock()
            .iter()
            .filter_map(|(_, socket)| {
                let address = policy::ip_address(&socket.local_addr()?)?;
                (address.port() != 0).then_some((socket.sock_type(), address))
            })
            .collect()
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
    /// The open sockets.
    sockets: Arc<SocketTable>,
    /// Every name an accepted connection has had, so that no two connections of a run share
    /// one (three `accept`s into `con` make `con`, `con2` and `con3`).
    accepted_names: Mutex<HashSet<String>>,
    /// TCP connections whose sockets the program closed, while the kernel may still keep them.
    lingering: Mutex<Vec<(String, AddressPair)>>,
    /// Where the lingering connections are looked up, kept open for the run.
    connections: Mutex<kernel::ConnectionTable>,
    sink: Arc<EventSink>,
    /// Where the lab's IP sockets are opened.
    network: RunNetwork,
    places: Places,
    /// Whether the lab takes its addresses from outside Socket Lab (the user's own calls in
    /// the sandbox, a run with an outside program): then the program at the other end of
    /// each connection is looked up, and destinations are checked against other sessions'
    /// sockets. Scenario runs whose roles are all Socket Lab's skip both.
    outside_facing: bool,
    /// How long one call may wait, where the run as a whole has no time limit (the sandbox).
    max_wait: Option<Duration>,
    /// The server's rules.
    policy: Arc<Policy>,
    /// The lab's id in the policy's registry.
    id: u64,
}

impl Lab {
    /// An empty lab whose events go to `sink`, whose Unix names live in `places`, and which
    /// follows `policy`.
    pub(crate) fn new(
        sink: EventSink,
        places: Places,
        policy: Arc<Policy>,
        network: RunNetwork,
    ) -> Self {
        let sockets = Arc::new(SocketTable::default());
        let id = policy.register(&sockets);
        Lab {
            sockets,
            accepted_names: Mutex::new(HashSet::new()),
            lingering: Mutex::new(Vec::new()),
            connections: Mutex::new(kernel::ConnectionTable::new(network.clone())),
            sink: Arc::new(sink),
            network,
            places,
            outside_facing: false,
            max_wait: None,
            policy,
            id,
        }
    }

    /// Makes the lab take addresses from outside: it finds the program at the other end of
    /// each connection, and refuses destinations that are other sessions' sockets.
    pub(crate) fn outside_facing(mut self) -> Self {
        self.outside_facing = true;
        self
    }

    /// Whether the lab meets programs of the machine's: it takes addresses from outside and is
    /// on the machine's network. (In a network of its own, /proc/net shows the machine's
    /// sockets, not its peers'.)
    fn meets_outside_programs(&self) -> bool {
        self.outside_facing && !self.network.is_own()
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
        // A call the kernel answers at once never waits, so a loop of them (a firehose of
        // sends and receives) would never give its thread back to tokio. Each call spends
        // the task's cooperative budget: every so many calls the task yields, and what its
        // events woke (the session's forwarder, held in this thread's LIFO slot, which no
        // other thread may steal) gets to run.
        tokio::task::consume_budget().await;
        let enter = Event::enter(caller.role, caller.endpoint, caller.line, call);
        let mut event = self.emit(enter);
        on_enter();
        let executing = self.execute(caller.endpoint, &event.call, conn_endpoint);
        let outcome = match self.max_wait {
            None => executing.await,
            Some(max_wait) => tokio::time::timeout(max_wait, executing)
                .await
                .unwrap_or_else(|_| {
                    Err(errno::refused_by_lab(
                        Errno::ETIMEDOUT,
                        format!(
                            "the call waited {} s, the longest this server lets a call wait \
                             (--max-call-wait)",
                            max_wait.as_secs()
                        ),
                    ))
                }),
        };
        event.phase = Phase::Return;
        match &outcome {
            Ok(result) => event.result = Some(result.clone()),
            Err(error) => event.error = Some(error.clone()),
        }
        self.emit(event);
        outcome
    }

    /// Makes each call give up, with `ETIMEDOUT` from the lab, once it has waited the
    /// server's `--max-call-wait`: for the sandbox, whose run has no time limit of its own.
    pub(crate) fn with_call_time_limit(mut self) -> Self {
        self.max_wait = Some(self.policy.limits().max_call_wait());
        self
    }

    /// The bounds the server sets.
    pub(crate) fn limits(&self) -> &crate::limits::Limits {
        self.policy.limits()
    }

    /// The lab's event stream, for notices that go with its events.
    pub(crate) fn sink(&self) -> &Arc<EventSink> {
        &self.sink
    }

    /// The network the lab's IP sockets are opened in.
    pub(crate) fn network(&self) -> &RunNetwork {
        &self.network
    }

    /// Closes, without events, every socket whose endpoint belongs to `role`: what the kernel
    /// does when a program exits.
    pub(crate) fn exit(&self, role: &str) {
        let prefix = format!("{role}.");
        let mut sockets = self.sockets.lock();
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
            if lingering.len() >= self.policy.limits().max_sockets {
                lingering.remove(0);
            }
            lingering.push((endpoint.to_owned(), pair));
        }
    }

    /// The kernel's view of the open socket named `endpoint`, or of the newest one named
    /// after it with a number (`server.con2` for `server.con`), as accept names them.
    pub(crate) fn view_of_newest(&self, endpoint: &str) -> Option<SocketView> {
        let sockets = self.sockets.lock();
        sockets
            .iter()
            .rev()
            .find(|(name, _)| {
                name.strip_prefix(endpoint)
                    .is_some_and(|number| number.bytes().all(|byte| byte.is_ascii_digit()))
            })
            .map(|(name, socket)| socket.view(name))
    }

    /// Sends an event with the kernel's view of every open socket. The view is read and the
    /// event numbered under the socket table's lock, so that the views of successive events
    /// follow each other in `seq` order.
    fn emit(&self, mut event: Event) -> Event {
        if !self.sink.watched {
            return event;
        }
        let sockets = self.sockets.lock();
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
        let table = lock(&self.connections).entries(&wanted);
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
            // Only a watched program's events have it; nothing asks the lab to make one.
            Call::Other { .. } => Err(errno::refused_by_lab(
                Errno::EINVAL,
                "`other` names a watched program's system call that the tutorial has no call \
                 for; the sandbox makes the tutorial's calls"
                    .to_owned(),
            )),
            Call::Socket { family, sock_type } => {
                let mut sockets = self.sockets.lock();
                if sockets.iter().any(|(id, _)| id == endpoint) {
                    return Err(errno::refused_by_lab(
                        Errno::EEXIST,
                        format!("an endpoint named {endpoint} is already open"),
                    ));
                }
                let max_sockets = self.policy.limits().max_sockets;
                if sockets.len() >= max_sockets {
                    return Err(errno::refused_by_lab(
                        Errno::EMFILE,
                        format!(
                            "a session may hold at most {max_sockets} sockets open at once \
                             (--max-sockets); close some first"
                        ),
                    ));
                }
                let socket =
                    LabSocket::open(*family, *sock_type, &self.network).map_err(io_error)?;
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
                let address = self.resolve(address, &socket, true)?;
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
                    .filter(|_| self.meets_outside_programs())
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
                let address = self.resolve(address, &socket, false)?;
                // The program that listens there is looked up before connecting: a quick
                // server may have answered, closed and ended by the time connect returns.
                let listener = address
                    .as_socket()
                    .filter(|_| self.meets_outside_programs() && socket.is_tcp())
                    .and_then(kernel::process_listening_on);
                socket.connect(&address).await.map_err(io_error)?;
                let mut result = snapshot(ReturnValue::None, &socket);
                result.peer_process = listener;
                Ok(result)
            }
            Call::Send { data } => {
                self.check_send_size(call)?;
                let socket = self.socket(endpoint)?;
                let count = socket.send(&data.0).await.map_err(io_error)?;
                Ok(snapshot(ReturnValue::Sent { count }, &socket))
            }
            Call::Sendall { data } => {
                self.check_send_size(call)?;
                let socket = self.socket(endpoint)?;
                socket.send_all(&data.0).await.map_err(io_error)?;
                Ok(snapshot(ReturnValue::None, &socket))
            }
            Call::Sendto { data, address } => {
                let socket = self.socket(endpoint)?;
                self.check_send_size(call)?;
                let address = self.resolve(address, &socket, false)?;
                let count = socket.send_to(&data.0, &address).await.map_err(io_error)?;
                Ok(snapshot(ReturnValue::Sent { count }, &socket))
            }
            Call::Recv { bufsize } | Call::Recvfrom { bufsize } => {
                let max_recv = self.policy.limits().max_recv_bytes;
                if *bufsize > max_recv {
                    return Err(errno::refused_by_lab(
                        Errno::EINVAL,
                        format!(
                            "{}({bufsize}) asks for more than this server's limit of \
                             {max_recv} bytes (--max-recv-bytes)",
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
                    let mut sockets = self.sockets.lock();
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

    /// The kernel address for an address the program gave, after the places' and the
    /// policy's checks.
    fn resolve(
        &self,
        address: &shared::SockAddr,
        socket: &LabSocket,
        binding: bool,
    ) -> Result<socket2::SockAddr, CallError> {
        if let Some(ip) = policy::ip_address(address) {
            self.policy.check_ip(ip.ip())?;
            // In a network of Socket Lab's own the kernel itself keeps a session from the
            // web server and from other sessions: nothing of theirs is on its loopback, and
            // the kernel's own answer (ECONNREFUSED) is the one to show.
            if !binding && !self.network.is_own() {
                self.policy.check_destination(
                    self.id,
                    socket.sock_type(),
                    ip,
                    self.outside_facing,
                )?;
            }
        }
        self.places.resolve(address, socket.family(), binding)
    }

    /// Refuses to send more bytes at once than the server allows.
    fn check_send_size(&self, call: &Call) -> Result<(), CallError> {
        let max_send = self.policy.limits().max_send_bytes;
        match call.sent_data() {
            Some(data) if data.len() > max_send => Err(errno::refused_by_lab(
                Errno::EMSGSIZE,
                format!(
                    "{} of {} bytes is more than this server's limit of {max_send} bytes a \
                     call (--max-send-bytes)",
                    call.name(),
                    data.len()
                ),
            )),
            _ => Ok(()),
        }
    }

    fn socket(&self, endpoint: &str) -> Result<Arc<LabSocket>, CallError> {
        self.sockets
            .lock()
            .iter()
            .find(|(id, _)| id == endpoint)
            .map(|(_, socket)| Arc::clone(socket))
            .ok_or_else(|| no_such_endpoint(endpoint))
    }

    /// Stores an accepted socket under a free endpoint id based on `wanted`.
    fn adopt(&self, wanted: &str, socket: LabSocket) -> String {
        let mut sockets = self.sockets.lock();
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
        self.sockets.lock().clear();
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
        peer_closed: false,
    }
}

/// A call's result with its socket's fd and addresses as the kernel reports them now.
fn snapshot(value: ReturnValue, socket: &LabSocket) -> CallResult {
    let (local, peer) = socket.names();
    CallResult {
        value,
        fd: Some(socket.fd()),
        local,
        peer,
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
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
