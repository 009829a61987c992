//! The page's model: server messages in, endpoints, messages and diagram geometry out.
//!
//! Plain Rust with no browser types, so `cargo test` checks it natively. The view only reads
//! it; every change of state goes through [`Model::apply`].

use std::sync::atomic::{AtomicU64, Ordering};

pub use shared::cause::Step;
use shared::cause::{Endpoints, PacketCause};
use shared::describe::{call_text, outcome_text};
use shared::{
    Bytes, Call, Event, Family, NextCall, PROTOCOL_VERSION, Phase, ReturnValue, RoleProgram,
    RunOutcome, ScenarioInfo, ServerMessage, SockAddr, SockType, SocketView, TRACE_FORMAT,
    TraceFile,
};
use shared::{Capture, Packet};

/// The colour a role's endpoints are drawn in: clients (`client`, `client2`) in the client
/// colour, every other program (`server`, a `second` or `restarted` server) in the server
/// colour, the user's own sandbox sockets and outside programs in their own. A watched
/// process whose program's name says client (`client.py[4242]`, `simple_client.py[7]`) is
/// drawn as a client too.
pub fn role_colour(role: &str) -> &'static str {
    if role.contains("client") {
        "client"
    } else if role == shared::SANDBOX_ID {
        "sandbox"
    } else if role == OUTSIDE_ROLE {
        "outside"
    } else {
        "server"
    }
}

/// An event's time since the run started, in milliseconds to the microsecond: `12.045`.
/// Written from the integer, as `{:.3}` of a float would, without the float formatting code
/// in the page.
pub fn millis_text(t_us: u64) -> String {
    format!("{}.{:03}", t_us / 1000, t_us % 1000)
}

/// The state of the WebSocket to the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Connecting (or reconnecting after a loss).
    Connecting,
    /// Connected and speaking the same protocol version.
    Connected,
    /// The backend is gone; the page retries on its own.
    Lost,
    /// The server closed the session for a reason it gave (too many sessions, a limit);
    /// the page retries on its own.
    Refused {
        /// The server's reason, in words.
        reason: String,
    },
    /// The server closed the session because it was idle; the page does not come back on
    /// its own (a forgotten tab should not hold a session), but on a reload.
    Closed {
        /// The server's reason, in words.
        reason: String,
    },
    /// The backend speaks another protocol version; the page must not guess.
    WrongVersion {
        /// The backend's version.
        server: u32,
    },
}

/// Everything the page shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    /// The link to the backend.
    pub link: Link,
    /// The scenarios the backend offers.
    pub scenarios: Vec<ScenarioInfo>,
    /// The latest run, live or finished.
    pub run: Option<RunView>,
    /// The latest error the backend reported, for the user to read.
    pub error: Option<String>,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            link: Link::Connecting,
            scenarios: Vec::new(),
            run: None,
            error: None,
        }
    }
}

impl Model {
    /// Applies one message from the backend.
    pub fn apply(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::Hello {
                protocol,
                scenarios,
                ..
            } => {
                if protocol == PROTOCOL_VERSION {
                    self.link = Link::Connected;
                    self.scenarios = scenarios;
                } else {
                    self.link = Link::WrongVersion { server: protocol };
                }
            }
            ServerMessage::RunStarted {
                run,
                scenario,
                programs,
                ..
            } => {
                self.error = None;
                self.run = Some(RunView::new(run, scenario, programs));
            }
            ServerMessage::Events {
                run,
                events,
                dropped,
            } => {
                if let Some(view) = self.run.as_mut().filter(|view| view.id == run) {
                    for event in events {
                        view.push(event);
                    }
                    view.dropped.extend(dropped);
                }
            }
            ServerMessage::Packets { run, packets } => {
                if let Some(view) = self.run.as_mut().filter(|view| view.id == run) {
                    view.packets.extend(packets);
                }
            }
            ServerMessage::Capture { run, capture } => {
                if let Some(view) = self.run.as_mut().filter(|view| view.id == run) {
                    view.capture = Some(capture);
                }
            }
            ServerMessage::Program { run, program } => {
                if let Some(view) = self.run.as_mut().filter(|view| view.id == run) {
                    view.programs.push(program);
                }
            }
            ServerMessage::Paused { run, next } => {
                if let Some(view) = self.run.as_mut().filter(|view| view.id == run) {
                    view.paused = Some(next);
                }
            }
            ServerMessage::RunFinished { run, outcome } => {
                if let Some(view) = self.run.as_mut().filter(|view| view.id == run) {
                    view.finish(outcome);
                }
            }
            ServerMessage::Error { message, .. } => self.error = Some(message),
        }
    }

    /// Changes the run shown, if there is one (stepping, seeking).
    pub fn with_run(&mut self, change: impl FnOnce(&mut RunView)) {
        if let Some(run) = self.run.as_mut() {
            change(run);
        }
    }

    /// Shows a trace file instead of a live run; a file that cannot be read is an error shown
    /// to the user, and the run shown before stays.
    pub fn open_trace(&mut self, json: &str, name: String) {
        self.show_trace(TraceFile::parse(json), name);
    }

    /// Shows a trace file read by [`TraceFile::parse`], or the reason it could not be read.
    pub fn show_trace(&mut self, file: Result<TraceFile, String>, name: String) {
        match file {
            Ok(file) => {
                self.error = None;
                self.run = Some(RunView::from_file(file, name));
            }
            Err(problem) => self.error = Some(format!("{name}: {problem}")),
        }
    }

    /// The link was lost: nothing shown may look live any more.
    pub fn lose_link(&mut self) {
        self.close_link(None);
    }

    /// The backend closed the connection with a WebSocket close code and reason: the link
    /// says why, and a live run is marked as ended (it is not live any more, whatever the
    /// page last drew).
    pub fn close_link(&mut self, closed: Option<(u16, String)>) {
        // A page the server refused gets refused again at every retry; the reason stays
        // shown rather than flickering to "lost" between the retry and the server's answer.
        let refused_again = matches!(self.link, Link::Refused { .. })
            && matches!(&closed, Some((1006, reason)) if reason.is_empty());
        if !matches!(self.link, Link::WrongVersion { .. }) && !refused_again {
            self.link = match closed {
                Some((shared::message::close_code::IDLE, reason)) => Link::Closed { reason },
                // 1000 is a plain end, 1001 the server going away, 1006 a lost connection:
                // the page retries as for any loss.
                Some((code, reason)) if !reason.is_empty() && code != 1001 => {
                    Link::Refused { reason }
                }
                _ => Link::Lost,
            };
        }
        if let Some(run) = self.run.as_mut()
            && run.outcome.is_none()
            && run.source == Source::Live
        {
            run.finish(RunOutcome::Cancelled {
                reason: "the connection to the backend was lost".to_owned(),
            });
        }
    }
}

/// The program an event's line is in: its role's, and for a watched process, its file.
fn program_key(event: &Event) -> (&str, Option<&str>) {
    let file = event.watched.as_ref().and_then(|w| w.file.as_deref());
    (event.role.as_str(), file)
}

/// The role of a program outside Socket Lab drawn from what the kernel says of it.
pub const OUTSIDE_ROLE: &str = "outside";

/// The endpoint id of an outside program: its name and pid, as `ps` shows them.
pub fn outside_id(process: &shared::PeerProcess) -> String {
    format!("{}[{}]", process.name, process.pid)
}

/// What an endpoint is doing, as its calls so far tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointState {
    /// Made by `socket()`; no address yet.
    Created,
    /// Has a local address from `bind()`.
    Bound,
    /// A listener, after `listen()`.
    Listening,
    /// Connected to a peer.
    Connected,
    /// Closed by `close()`, or by the end of its program.
    Closed,
}

impl EndpointState {
    /// The state in words.
    pub fn label(self) -> &'static str {
        match self {
            EndpointState::Created => "created",
            EndpointState::Bound => "bound",
            EndpointState::Listening => "listening",
            EndpointState::Connected => "connected",
            EndpointState::Closed => "closed",
        }
    }
}

/// One endpoint (socket) of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointView {
    /// Its id, such as `server.s`.
    pub id: String,
    /// Its program.
    pub role: String,
    /// Its file descriptor, as the kernel reported it.
    pub fd: Option<i32>,
    /// Its local address, from the kernel.
    pub local: Option<SockAddr>,
    /// Its peer address, from the kernel.
    pub peer: Option<SockAddr>,
    /// What its calls so far make it.
    pub state: EndpointState,
    /// The enter event of the call it is waiting in, if one has entered and not returned
    /// (its text, made only when shown: [`RunView::waiting_call`]).
    pub waiting: Option<usize>,
    /// The bytes its last `recv` returned.
    pub last_received: Option<Bytes>,
    /// The last error a call on it raised.
    pub last_error: Option<String>,
    /// The index of the first event that named it.
    pub first_event: usize,
    /// The kernel's view of it at the latest event (state, queues), if the kernel still
    /// knows it.
    pub kernel: Option<SocketView>,
    /// What `socket()` made it (an accepted socket is its listener's kind), when known: the
    /// kernel's queue figures mean other things for other kinds of socket.
    pub kind: Option<(Family, SockType)>,
    /// The index of the event that closed it (its `close()`'s return, the end of its program,
    /// or the event whose kernel views no longer had it): bytes still waiting in its queue
    /// then are discarded, and the diagram draws them so.
    pub closed_at: Option<usize>,
}

impl EndpointView {
    /// It is closed as of the event at `index`, if it was not already.
    fn mark_closed(&mut self, index: usize) {
        self.state = EndpointState::Closed;
        self.closed_at.get_or_insert(index);
    }

    /// Its program (or the run) ended at the event at `index`, which closed it without a
    /// call: only a connection the kernel keeps after its socket (TIME_WAIT) is still as last
    /// reported.
    fn closed_by_its_end(&mut self, index: usize) {
        self.waiting = None;
        self.mark_closed(index);
        if self.kernel.as_ref().is_some_and(|kernel| !kernel.lingering) {
            self.kernel = None;
        }
    }

    /// The kernel's queue figures as the card shows them, named for what the kernel counts.
    /// For a TCP socket the queues are bytes: unread, and sent but not yet acknowledged. For
    /// a datagram socket Linux reports the size of the next datagram waiting, not of all of
    /// them; and for UDP and Unix sockets the send figure is the memory that sent data still
    /// takes in the kernel (a Unix socket's until the peer reads it), not its bytes.
    pub fn queue_rows(&self) -> Vec<(&'static str, String)> {
        let Some(kernel) = &self.kernel else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        if let (Some(queued), Some(backlog)) = (kernel.accept_queue, kernel.backlog) {
            rows.push((ACCEPT_QUEUE, format!("{queued} of {backlog}")));
        }
        let datagrams = matches!(self.kind, Some((_, SockType::Dgram)));
        let tcp = matches!(
            self.kind,
            None | Some((Family::Inet | Family::Inet6, SockType::Stream))
        );
        if let Some(bytes) = kernel.recv_queue {
            let name = if datagrams { NEXT_DATAGRAM } else { RECV_QUEUE };
            rows.push((name, format!("{bytes} B")));
        }
        if let Some(bytes) = kernel.send_queue {
            if tcp {
                rows.push((SEND_QUEUE, format!("{bytes} B")));
            } else {
                rows.push((SEND_BUFFERS, format!("{bytes} B in use")));
            }
        }
        rows
    }
}

/// The names of the kernel's queue figures on a card.
const ACCEPT_QUEUE: &str = "accept queue";
const RECV_QUEUE: &str = "recv queue";
const SEND_QUEUE: &str = "send queue";
const NEXT_DATAGRAM: &str = "next datagram";
const SEND_BUFFERS: &str = "send buffers";

/// Each queue figure's name with what it counts, in a sentence for the card's tooltip.
const QUEUE_MEANINGS: [(&str, &str); 5] = [
    (
        ACCEPT_QUEUE,
        "Connections the kernel has completed, waiting for accept(), of the most listen() lets it queue",
    ),
    (
        RECV_QUEUE,
        "Bytes that arrived and the program has not read yet",
    ),
    (
        SEND_QUEUE,
        "Bytes sent and not yet acknowledged by the peer; a SYN or a FIN counts as one",
    ),
    (
        NEXT_DATAGRAM,
        "The size of the next datagram waiting to be read: Linux reports that one, not all of them",
    ),
    (
        SEND_BUFFERS,
        "Kernel memory that sent data still takes (a Unix socket's, until the peer reads it)",
    ),
];

/// What a queue figure of [`EndpointView::queue_rows`] counts, for the card's tooltip.
pub fn queue_meaning(name: &str) -> &'static str {
    QUEUE_MEANINGS
        .iter()
        .find(|(figure, _)| *figure == name)
        .map_or("", |(_, meaning)| meaning)
}

/// The log's rows, and the event each shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRows {
    /// The steps shown, in order, when not every event alone is (a filter, or packets).
    events: Option<Vec<Step>>,
    count: usize,
    newest_first: bool,
}

impl LogRows {
    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// What `row` shows (an event or a packet), for a row below [`len`](Self::len).
    pub fn step(&self, row: usize) -> Step {
        let nth = if self.newest_first {
            self.count - 1 - row
        } else {
            row
        };
        self.events
            .as_ref()
            .map_or(Step::Event(nth), |events| events[nth])
    }

    /// The row that shows this step, if one does.
    pub fn row_of(&self, step: Step) -> Option<usize> {
        let nth = match (&self.events, step) {
            (None, Step::Event(index)) => (index < self.count).then_some(index)?,
            (None, Step::Packet(_)) => return None,
            (Some(steps), step) => steps.iter().position(|shown| *shown == step)?,
        };
        Some(if self.newest_first {
            self.count - 1 - nth
        } else {
            nth
        })
    }
}

/// What a recv's matching needs of the endpoint that received: a copy, since the messages
/// it marks are borrowed mutably beside the endpoints.
struct Receiver {
    id: String,
    local: Option<SockAddr>,
    peer: Option<SockAddr>,
    /// A datagram socket takes one datagram a recv, an empty one too; a stream's recv that
    /// gets no bytes took nothing (the peer has closed).
    datagram: bool,
}

/// Bytes that went from one endpoint to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageView {
    /// The sending endpoint.
    pub from: String,
    /// The receiving endpoint, once a `recv` has taken the bytes.
    pub to: Option<String>,
    /// The endpoint whose queue the bytes went into, as the send found it: the one socket
    /// at the other end of the sender's connection, or bound to the datagram's address. The
    /// diagram draws bytes no `recv` has taken yet into its queue.
    pub meant_for: Option<String>,
    /// The bytes sent.
    pub data: Bytes,
    /// Whether the bytes went as one datagram (rather than into a byte stream).
    pub datagram: bool,
    /// For a datagram sent with `sendto`, the address it was sent to.
    pub to_address: Option<SockAddr>,
    /// How many of the bytes a `recv` has taken so far (a datagram is taken whole, even when
    /// the buffer was too small for it).
    pub taken: usize,
    /// The index (in the run's events) of the send's return.
    pub sent_at: u64,
    /// The index of the recv's return that took the last of them.
    pub received_at: Option<u64>,
    /// For a datagram longer than the buffer that took it: how many bytes the receiver got
    /// (the kernel dropped the rest).
    pub truncated_to: Option<usize>,
}

impl MessageView {
    /// Whether a recv has taken all of it: a datagram once a recv took it (an empty datagram
    /// is taken too, by a recv that returns `b''`), stream bytes once they have all been read.
    fn is_taken(&self) -> bool {
        if self.datagram {
            self.received_at.is_some()
        } else {
            self.taken == self.data.len()
        }
    }
}

/// Where a run's events come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The backend, as they happen.
    Live,
    /// A trace file the user opened; no backend is involved.
    File {
        /// The file's name.
        name: String,
    },
}

/// A run as the page shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunView {
    /// The run's number on this connection.
    pub id: u64,
    /// The scenario.
    pub scenario: ScenarioInfo,
    /// Each role's program.
    pub programs: Vec<RoleProgram>,
    /// Every event so far, in seq order.
    pub events: Vec<Event>,
    /// The endpoints, in the order they appeared.
    pub endpoints: Vec<EndpointView>,
    /// The bytes sent so far.
    pub messages: Vec<MessageView>,
    /// How the run ended, once it has.
    pub outcome: Option<RunOutcome>,
    /// Where the events come from.
    pub source: Source,
    /// The event the user has stepped to, by index; `None` follows the newest event.
    pub cursor: Option<usize>,
    /// For each event, the index of the event that ends its call: an enter's return.
    pub returns: Vec<Option<usize>>,
    /// The call a paused run will make when the user says so.
    pub paused: Option<NextCall>,
    /// The events the server did not send because this page fell behind, in order.
    pub dropped: Vec<shared::Dropped>,
    /// The diagram's overview rows of every event so far, kept as events come.
    pub overview: crate::diagram::Overview,
    /// The run's packets so far, in seq order (and in time order).
    pub packets: Vec<Packet>,
    /// Whether the run's packets are captured, and what was not kept.
    pub capture: Option<Capture>,
    /// The packet the user has stepped to, by index: then `cursor` is the last event before
    /// it.
    pub packet_cursor: Option<usize>,
    /// Which run of the page's this is, or is a view of (the run as it stood at an event):
    /// each run made anew gets a number of its own.
    origin: u64,
    /// Enter events whose call has not returned yet.
    open_calls: Vec<usize>,
    /// Per role, its events that name a line of its program, in order: the line a role is
    /// at, at any event, is found by bisection (a role that makes no calls for ten thousand
    /// events is not looked for through all of them every frame).
    lines_by_role: Vec<(String, Option<String>, Vec<usize>)>,
    /// Every message before this one has been taken whole: a recv looks for its bytes from
    /// here, not through every message of the run.
    first_untaken: usize,
    /// How many datagrams sent with `sendto` are not taken yet: while there are none, a recv
    /// on an endpoint with no sender in the run (its peer is outside, unseen) has nothing to
    /// look for, and does not walk the messages its own sends left untaken.
    untaken_sent_to: usize,
    /// Per socket, its queue figures at each event where the kernel reported them changed:
    /// what a card's queue chart draws, up to the step shown.
    queue_history: Vec<(String, Vec<QueueSample>)>,
}

/// A socket's receive and send queues as the kernel reported them at an event, in bytes (for
/// a datagram socket, the receive figure is the next datagram's size, as Linux reports it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSample {
    pub event: usize,
    pub recv: u32,
    pub send: u32,
}

impl RunView {
    /// A socket's queue figures where they changed, at the events up to `upto` (included).
    pub fn queue_samples(&self, endpoint: &str, upto: usize) -> &[QueueSample] {
        self.queue_history
            .iter()
            .find(|(id, _)| id == endpoint)
            .map_or(&[][..], |(_, samples)| {
                &samples[..samples.partition_point(|sample| sample.event <= upto)]
            })
    }

    /// An empty run.
    pub fn new(id: u64, scenario: ScenarioInfo, programs: Vec<RoleProgram>) -> Self {
        RunView {
            id,
            scenario,
            programs,
            events: Vec::new(),
            endpoints: Vec::new(),
            messages: Vec::new(),
            outcome: None,
            source: Source::Live,
            cursor: None,
            returns: Vec::new(),
            open_calls: Vec::new(),
            lines_by_role: Vec::new(),
            queue_history: Vec::new(),
            first_untaken: 0,
            untaken_sent_to: 0,
            paused: None,
            dropped: Vec::new(),
            overview: crate::diagram::Overview::default(),
            packets: Vec::new(),
            capture: None,
            packet_cursor: None,
            origin: {
                static RUNS: AtomicU64 = AtomicU64::new(0);
                RUNS.fetch_add(1, Ordering::Relaxed)
            },
        }
    }

    /// A run read from a trace file, shown from its first event.
    pub fn from_file(file: TraceFile, name: String) -> Self {
        let mut run = RunView::new(0, file.scenario, file.programs);
        for event in file.events {
            run.push(event);
        }
        if let Some(outcome) = file.outcome {
            run.finish(outcome);
        }
        run.packets = file.packets;
        run.capture = file.capture;
        run.source = Source::File { name };
        run.cursor = Some(0);
        run
    }

    /// The run as a trace file.
    pub fn to_file(&self) -> TraceFile {
        TraceFile {
            format: TRACE_FORMAT.to_owned(),
            protocol: PROTOCOL_VERSION,
            scenario: self.scenario.clone(),
            programs: self.programs.clone(),
            events: self.events.clone(),
            outcome: self.outcome.clone(),
            capture: self.capture.clone(),
            packets: self.packets.clone(),
        }
    }

    /// How many of the run's events the server did not send to this page.
    pub fn dropped_count(&self) -> u64 {
        self.dropped.iter().map(|dropped| dropped.count).sum()
    }

    /// What the calls whose events were not sent did, by endpoint and call, over every
    /// dropped range: `server.con recv` 98,000 times, 100 MB.
    pub fn dropped_calls(&self) -> Vec<shared::CallTally> {
        shared::message::total_calls(&self.dropped)
    }

    /// The index of the event shown as the current one: the cursor, or the newest event.
    pub fn selected(&self) -> Option<usize> {
        match self.cursor {
            Some(index) => Some(index.min(self.events.len().checked_sub(1)?)),
            None => self.events.len().checked_sub(1),
        }
    }

    /// Steps by `delta` steps through the run's calls and packets in the order they
    /// happened, staying within what is recorded. A packet stepped to is the selected
    /// packet, and the event before it the selected event.
    pub fn step(&mut self, delta: isize) {
        let Some(last) = self.events.len().checked_sub(1) else {
            return;
        };
        if self.packets.is_empty() {
            let from = self.selected().unwrap_or(0);
            self.cursor = Some(from.saturating_add_signed(delta).min(last));
            return;
        }
        let steps = self.steps();
        let here = match self.packet_cursor {
            Some(packet) => steps.iter().position(|step| *step == Step::Packet(packet)),
            None => {
                let event = self.selected().unwrap_or(0);
                steps.iter().position(|step| *step == Step::Event(event))
            }
        }
        .unwrap_or(0);
        let there = here.saturating_add_signed(delta).min(steps.len() - 1);
        match steps[there] {
            Step::Event(index) => {
                self.cursor = Some(index);
                self.packet_cursor = None;
            }
            Step::Packet(packet) => {
                let before = steps[..there].iter().rev().find_map(|step| match step {
                    Step::Event(index) => Some(*index),
                    Step::Packet(_) => None,
                });
                self.cursor = Some(before.unwrap_or(0));
                self.packet_cursor = Some(packet);
            }
        }
    }

    /// The run's calls and packets in the order they happened: by time, an event before a
    /// packet of the same microsecond (the call that sent it). A packet always follows the
    /// call that sent it, so one before the first event (there is none) follows it.
    pub fn steps(&self) -> Vec<Step> {
        shared::cause::steps(&self.events, &self.packets)
    }

    /// Whether the selected step is the run's last (the newest event, with no packet after
    /// it, or the last packet).
    pub fn at_last_step(&self) -> bool {
        let (Some(last_event), Some(last_packet)) = (self.events.last(), self.packets.last())
        else {
            return self.at_end();
        };
        // The run's last step is its last packet when that came at or after its last event
        // (see `steps`), else its last event.
        let packet_is_last = last_packet.t_us >= last_event.t_us;
        match self.selected_packet() {
            Some((index, _)) => packet_is_last && index + 1 == self.packets.len(),
            None => !packet_is_last && self.at_end(),
        }
    }

    /// The packet stepped to, if one is.
    pub fn selected_packet(&self) -> Option<(usize, &Packet)> {
        let index = self.packet_cursor?;
        Some((index, self.packets.get(index)?))
    }

    /// How many packets are shown: those up to the selected packet, or up to the next event
    /// after the selected one (the packets a call caused come before the next event), or
    /// all of them while following the newest event.
    pub fn packets_shown(&self) -> usize {
        if let Some((index, _)) = self.selected_packet() {
            return index + 1;
        }
        match (self.cursor, self.selected()) {
            (Some(_), Some(index)) => {
                let next = self
                    .events
                    .get(index + 1)
                    .map_or(u64::MAX, |next| next.t_us);
                self.packets.partition_point(|packet| packet.t_us < next)
            }
            _ => self.packets.len(),
        }
    }

    /// Why a packet was sent, between which endpoints, in plain words.
    pub fn packet_cause(&self, packet: &Packet, endpoints: &Endpoints) -> PacketCause {
        shared::cause::cause(packet, &self.events, endpoints)
    }

    /// Moves the cursor to an event (clamped to the recorded ones).
    pub fn seek(&mut self, index: usize) {
        self.packet_cursor = None;
        if let Some(last) = self.events.len().checked_sub(1) {
            self.cursor = Some(index.min(last));
        }
    }

    /// Moves the cursor to a packet, and the event cursor to the last event before it.
    pub fn seek_packet(&mut self, packet: usize) {
        let Some(at) = self.packets.get(packet).map(|packet| packet.t_us) else {
            return;
        };
        let before = self.events.partition_point(|event| event.t_us <= at);
        self.cursor = Some(before.saturating_sub(1));
        self.packet_cursor = Some(packet);
    }

    /// Whether the selected event is the newest one recorded (or there are none).
    pub fn at_end(&self) -> bool {
        self.selected()
            .is_none_or(|index| index + 1 >= self.events.len())
    }

    /// Follows the newest event again.
    pub fn follow(&mut self) {
        self.cursor = None;
        self.packet_cursor = None;
    }

    /// The run as it stood at the selected event: endpoints, messages and kernel views as of
    /// that event. A run that follows its newest event is shown as it is.
    pub fn as_selected(&self) -> RunView {
        self.as_selected_from(None)
    }

    /// [`as_selected`](Self::as_selected), continued from `earlier`, a view this gave before
    /// of the same run at an earlier event: stepping or replaying forwards through a long run
    /// adds the events since, rather than replaying every event from the first.
    pub fn as_selected_from(&self, earlier: Option<RunView>) -> RunView {
        match self.cursor {
            Some(index) if index + 1 < self.events.len() => {
                let mut past = earlier
                    .filter(|past| past.leads_to(self, index))
                    .unwrap_or_else(|| RunView {
                        origin: self.origin,
                        ..RunView::new(self.id, self.scenario.clone(), self.programs.clone())
                    });
                for event in &self.events[past.events.len()..=index] {
                    past.push(event.clone());
                }
                past.source = self.source.clone();
                past.cursor = self.cursor;
                past
            }
            _ => self.clone(),
        }
    }

    /// Whether this is `run` as it stood at an event up to `index`: a view of the same run
    /// (whose events only ever grow), with no more events.
    fn leads_to(&self, run: &RunView, index: usize) -> bool {
        self.origin == run.origin && self.events.len() <= index + 1
    }

    /// Whether a connection has been made in this run: an `accept` or a `connect` returned.
    /// In a run that leaves a role to the student's program (only TCP scenarios do), that
    /// is when their program has come. These calls are among a run's first, so this looks
    /// no further than them once they have come.
    pub fn has_connected(&self) -> bool {
        self.events.iter().any(|event| {
            event.phase == Phase::Return
                && event.result.is_some()
                && matches!(event.call, Call::Accept | Call::Connect { .. })
        })
    }

    /// For each program, by its place in `programs`, the line to highlight at the selected
    /// event: the selected event's own line for its program (`true`), and for the other
    /// programs the line of their latest event until then (`false`). A watched process may
    /// have several programs (its Python files); its events name theirs.
    pub fn highlighted_lines(&self) -> Vec<(usize, u32, bool)> {
        let Some(selected) = self.selected() else {
            return Vec::new();
        };
        let current = program_key(&self.events[selected]);
        self.programs
            .iter()
            .enumerate()
            .filter_map(|(index, program)| {
                let key = (program.role.as_str(), program.file.as_deref());
                let (_, _, with_lines) = self
                    .lines_by_role
                    .iter()
                    .find(|(role, file, _)| (role.as_str(), file.as_deref()) == key)?;
                let until = with_lines.partition_point(|&event| event <= selected);
                let event = &self.events[*with_lines[..until].last()?];
                Some((index, event.line?, key == current))
            })
            .collect()
    }

    /// The call an endpoint is waiting in, as Python writes it.
    pub fn waiting_call(&self, endpoint: &EndpointView) -> Option<String> {
        let enter = self.events.get(endpoint.waiting?)?;
        Some(call_text(&enter.call))
    }

    /// The log's rows: every event, or one endpoint's, oldest or newest first; with
    /// `packets`, the run's packets among them (an endpoint's: those it sent or received).
    pub fn log_rows(&self, endpoint: Option<&str>, newest_first: bool, packets: bool) -> LogRows {
        if endpoint.is_none() && (!packets || self.packets.is_empty()) {
            // Every event: a row's event is found from its number, with no list of them all.
            return LogRows {
                events: None,
                count: self.events.len(),
                newest_first,
            };
        }
        let endpoints = (packets && endpoint.is_some()).then(|| Endpoints::of(&self.events));
        let steps: Vec<Step> = if packets {
            self.steps()
        } else {
            (0..self.events.len()).map(Step::Event).collect()
        };
        let steps: Vec<Step> = match endpoint {
            None => steps,
            Some(endpoint) => steps
                .into_iter()
                .filter(|step| match *step {
                    Step::Event(index) => self.events[index].endpoint == endpoint,
                    Step::Packet(index) => endpoints.as_ref().is_some_and(|endpoints| {
                        let packet = &self.packets[index];
                        let until = self
                            .events
                            .partition_point(|event| event.t_us <= packet.t_us);
                        endpoints.at(&packet.src, &packet.dst, until) == Some(endpoint)
                            || endpoints.at(&packet.dst, &packet.src, until) == Some(endpoint)
                    }),
                })
                .collect(),
        };
        LogRows {
            count: steps.len(),
            events: Some(steps),
            newest_first,
        }
    }

    /// What an event means, in plain words, told for the kind of socket it was made on.
    pub fn explain(&self, event: &Event) -> String {
        let kind = self
            .endpoint(&event.endpoint)
            .and_then(|endpoint| endpoint.kind);
        shared::describe::explain(event, kind)
    }

    /// The endpoint with this id.
    pub fn endpoint(&self, id: &str) -> Option<&EndpointView> {
        self.endpoints.iter().find(|endpoint| endpoint.id == id)
    }

    fn endpoint_mut(&mut self, id: &str, role: &str) -> &mut EndpointView {
        let first_event = self.events.len();
        let index = match self.endpoints.iter().position(|e| e.id == id) {
            Some(index) => index,
            None => {
                self.endpoints.push(EndpointView {
                    id: id.to_owned(),
                    role: role.to_owned(),
                    fd: None,
                    local: None,
                    peer: None,
                    state: EndpointState::Created,
                    waiting: None,
                    last_received: None,
                    last_error: None,
                    first_event,
                    kernel: None,
                    kind: None,
                    closed_at: None,
                });
                self.endpoints.len() - 1
            }
        };
        &mut self.endpoints[index]
    }

    /// Adds one event and updates what it changes.
    pub fn push(&mut self, event: Event) {
        if event.watched.as_ref().is_some_and(|w| w.process_ended) {
            // A watched process ended: its sockets are closed, and it is no socket itself.
            self.returns.push(None);
            let index = self.events.len();
            for endpoint in self.endpoints.iter_mut().filter(|e| e.role == event.role) {
                endpoint.closed_by_its_end(index);
            }
            self.overview.push(self.events.len(), &event);
            self.events.push(event);
            return;
        }
        self.pair_with_its_enter(&event);
        if self.paused.as_ref().is_some_and(|next| {
            event.phase == Phase::Enter
                && next.endpoint == event.endpoint
                && next.call == event.call
        }) {
            self.paused = None;
        }
        if event.phase == Phase::Return && event.call.creates_endpoint() && event.result.is_some() {
            // A new socket under a name used before (a program that makes `s` again).
            if let Some(index) = self.endpoints.iter().position(|e| e.id == event.endpoint) {
                self.endpoints.remove(index);
            }
        }
        // The event is about to be pushed: its index is the number of events so far.
        let index = self.events.len();
        let endpoint = self.endpoint_mut(&event.endpoint, &event.role);
        match event.phase {
            Phase::Enter => endpoint.waiting = Some(index),
            Phase::Return => {
                endpoint.waiting = None;
                match event.outcome() {
                    Some(Ok(result)) => {
                        // An error is shown until a later call on the socket succeeds (a
                        // program that caught it and went on).
                        endpoint.last_error = None;
                        if result.fd.is_some() {
                            endpoint.fd = result.fd;
                        }
                        if result.local.is_some() {
                            endpoint.local = result.local.clone();
                        }
                        if result.peer.is_some() {
                            endpoint.peer = result.peer.clone();
                        }
                        if let Call::Socket { family, sock_type } = &event.call {
                            endpoint.kind = Some((*family, *sock_type));
                        }
                        endpoint.state = match &event.call {
                            Call::Bind { .. } if endpoint.state == EndpointState::Created => {
                                EndpointState::Bound
                            }
                            Call::Listen { .. } => EndpointState::Listening,
                            Call::Connect { .. } => EndpointState::Connected,
                            _ => endpoint.state,
                        };
                        if event.call == Call::Close {
                            endpoint.mark_closed(index);
                        }
                        // A closed socket has no view of its own; the event's views below
                        // give back a connection the kernel still keeps (TIME_WAIT).
                        if event.call == Call::Close {
                            endpoint.kernel = None;
                        }
                        // Connected to a program outside Socket Lab: it gets a lifeline.
                        if let Some(process) = &result.peer_process {
                            let (theirs, ours) = (result.peer.clone(), result.local.clone());
                            let outside = self.endpoint_mut(&outside_id(process), OUTSIDE_ROLE);
                            outside.local = theirs;
                            outside.peer = ours;
                            outside.state = EndpointState::Connected;
                        }
                        let result = result.clone();
                        self.record_result(&event, &result.value);
                    }
                    Some(Err(_)) => endpoint.last_error = Some(outcome_text(&event)),
                    None => {}
                }
            }
        }
        // After the call's own changes, so that a socket the event made (an accepted
        // connection) has the kernel's view from its first event on.
        // A watched program's event has the views of some of its process's sockets only.
        let partial = event.watched.is_some();
        let mut queues_changed = Vec::new();
        for endpoint in &mut self.endpoints {
            if partial && !event.kernel.iter().any(|view| view.endpoint == endpoint.id) {
                continue;
            }
            let view = event
                .kernel
                .iter()
                .find(|view| view.endpoint == endpoint.id);
            // Most events leave most sockets as they were: copied only when changed.
            if endpoint.kernel.as_ref() != view {
                // Every event has a view of every socket the kernel still has. One it no
                // longer reports is closed: by this close(), or by the end of its program,
                // which closes its sockets without a call.
                if view.is_none() {
                    endpoint.mark_closed(index);
                }
                let queues = |view: Option<&SocketView>| {
                    view.map_or((0, 0), |view| {
                        (view.recv_queue.unwrap_or(0), view.send_queue.unwrap_or(0))
                    })
                };
                if queues(endpoint.kernel.as_ref()) != queues(view) {
                    queues_changed.push((endpoint.id.clone(), queues(view)));
                }
                endpoint.kernel = view.cloned();
            }
        }
        for (endpoint, (recv, send)) in queues_changed {
            let sample = QueueSample {
                event: index,
                recv,
                send,
            };
            match self
                .queue_history
                .iter_mut()
                .find(|(id, _)| *id == endpoint)
            {
                Some((_, samples)) => samples.push(sample),
                None => self.queue_history.push((endpoint, vec![sample])),
            }
        }
        self.overview.push(index, &event);
        if event.line.is_some() {
            let key = program_key(&event);
            match self
                .lines_by_role
                .iter_mut()
                .find(|(role, file, _)| (role.as_str(), file.as_deref()) == key)
            {
                Some((_, _, with_lines)) => with_lines.push(index),
                None => self.lines_by_role.push((
                    event.role.clone(),
                    key.1.map(str::to_owned),
                    vec![index],
                )),
            }
        }
        self.events.push(event);
    }

    /// Notes which enter a return event ends: the oldest open call of the same name on the
    /// same endpoint.
    fn pair_with_its_enter(&mut self, event: &Event) {
        let index = self.events.len();
        self.returns.push(None);
        match event.phase {
            Phase::Enter => self.open_calls.push(index),
            Phase::Return => {
                let events = &self.events;
                if let Some(position) = self.open_calls.iter().position(|&open| {
                    events[open].endpoint == event.endpoint
                        && events[open].call.name() == event.call.name()
                }) {
                    let enter = self.open_calls.remove(position);
                    self.returns[enter] = Some(index);
                }
            }
        }
    }

    fn record_result(&mut self, event: &Event, value: &ReturnValue) {
        match value {
            ReturnValue::Accepted {
                endpoint,
                fd,
                address,
                process,
            } => {
                // The new socket's own local address comes with its first call's result; its
                // listener's local address is the same.
                let listener = self.endpoint(&event.endpoint);
                let local = listener.and_then(|l| l.local.clone());
                let kind = listener.and_then(|l| l.kind);
                let conn = self.endpoint_mut(endpoint, &event.role);
                conn.kind = kind;
                conn.fd = Some(*fd);
                conn.peer = Some(address.clone());
                conn.state = EndpointState::Connected;
                if conn.local.is_none() {
                    conn.local = local.clone();
                }
                // A program outside Socket Lab connected: it gets a lifeline of its own.
                if let Some(process) = process {
                    let outside = self.endpoint_mut(&outside_id(process), OUTSIDE_ROLE);
                    outside.local = Some(address.clone());
                    outside.peer = local;
                    outside.state = EndpointState::Connected;
                }
                self.claim_bytes_sent_before_accept(endpoint);
            }
            ReturnValue::Sent { count } => self.record_sent(event, *count),
            ReturnValue::None => {
                if let Call::Sendall { data } = &event.call {
                    self.record_sent(event, data.len());
                }
            }
            ReturnValue::Received { data, from, .. } => {
                let Some(receiver) = self.endpoints.iter_mut().find(|e| e.id == event.endpoint)
                else {
                    return;
                };
                receiver.last_received = Some(data.clone());
                let receiver = Receiver {
                    id: receiver.id.clone(),
                    local: receiver.local.clone(),
                    peer: receiver.peer.clone(),
                    datagram: matches!(receiver.kind, Some((_, SockType::Dgram))),
                };
                let index = self.events.len() as u64;
                self.take(&receiver, data, from.as_ref(), index);
            }
            _ => {}
        }
    }

    /// Records the bytes a send handed to the kernel.
    fn record_sent(&mut self, event: &Event, count: usize) {
        let Some(data) = event.call.sent_data() else {
            return;
        };
        let to_address = match &event.call {
            Call::Sendto { address, .. } => Some(address.clone()),
            _ => None,
        };
        // The endpoint's first event is the socket() that made it (an accepted connection's
        // is its accept, and is a stream): looked up, not searched for, on every send.
        let datagram = to_address.is_some()
            || self
                .endpoint(&event.endpoint)
                .and_then(|endpoint| self.events.get(endpoint.first_event))
                .is_some_and(|e| {
                    matches!(
                        e.call,
                        Call::Socket {
                            sock_type: shared::SockType::Dgram,
                            ..
                        }
                    )
                });
        let data = Bytes(data.0[..count.min(data.len())].to_vec());
        // Bytes for an outside program: it reads them where Socket Lab cannot see, so the
        // arrow ends at its lifeline at once.
        let outside = self.outside_peer_of(&event.endpoint);
        if to_address.is_some() && outside.is_none() {
            self.untaken_sent_to += 1;
        }
        let meant_for = outside
            .clone()
            .or_else(|| self.receiver_of(&event.endpoint, to_address.as_ref()));
        // The event is about to be pushed: its index is the number of events so far.
        let index = self.events.len() as u64;
        self.messages.push(MessageView {
            from: event.endpoint.clone(),
            meant_for,
            taken: if outside.is_some() { data.len() } else { 0 },
            received_at: outside.as_ref().map(|_| index),
            to: outside,
            data,
            datagram,
            to_address,
            sent_at: index,
            truncated_to: None,
        });
    }

    /// Bytes a client sent before `accept()` took its connection waited in the connection's
    /// queue all along, which the accepted socket `receiver` now holds: they are meant for it.
    fn claim_bytes_sent_before_accept(&mut self, receiver: &str) {
        let Some(conn) = self.endpoint(receiver) else {
            return;
        };
        let (Some(local), Some(peer)) = (conn.local.clone(), conn.peer.clone()) else {
            return;
        };
        let mut senders = self.endpoints.iter().filter(|e| {
            e.id != receiver && e.local.as_ref() == Some(&peer) && e.peer.as_ref() == Some(&local)
        });
        let (Some(sender), None) = (senders.next(), senders.next()) else {
            return;
        };
        let sender = sender.id.clone();
        for message in &mut self.messages {
            if message.from == sender
                && message.to.is_none()
                && message.meant_for.is_none()
                && !message.datagram
            {
                message.meant_for = Some(receiver.to_owned());
            }
        }
    }

    /// The one endpoint that bytes sent by `sender` go to: the socket bound to `to_address`
    /// for a datagram sent there, else the socket whose address pair mirrors the sender's.
    /// None where no socket, or more than one (Unix clients all unnamed), fits.
    fn receiver_of(&self, sender: &str, to_address: Option<&SockAddr>) -> Option<String> {
        let sender = self.endpoint(sender)?;
        let mut fitting = self.endpoints.iter().filter(|e| {
            e.id != sender.id
                && e.state != EndpointState::Closed
                && e.local.is_some()
                && match to_address {
                    Some(address) => e.local.as_ref() == Some(address),
                    None => e.local == sender.peer && e.peer == sender.local,
                }
        });
        let receiver = fitting.next()?;
        fitting.next().is_none().then(|| receiver.id.clone())
    }

    /// The outside program at the other end of an endpoint's connection, if that is one.
    fn outside_peer_of(&self, endpoint: &str) -> Option<String> {
        let peer = self.endpoint(endpoint)?.peer.clone()?;
        self.endpoints
            .iter()
            .find(|e| e.role == OUTSIDE_ROLE && e.local.as_ref() == Some(&peer))
            .map(|e| e.id.clone())
    }

    /// Marks what a recv took: the oldest datagram meant for the receiver, or as many stream
    /// bytes as it got, from the sends of the endpoint whose address pair mirrors its own.
    fn take(&mut self, receiver: &Receiver, data: &Bytes, from: Option<&SockAddr>, seq: u64) {
        if data.is_empty() && !receiver.datagram {
            return;
        }
        let sender_ids: Vec<String> = self
            .endpoints
            .iter()
            .filter(|e| {
                e.id != receiver.id
                    && e.local.is_some()
                    && (from.is_some_and(|from| e.local.as_ref() == Some(from))
                        || (e.local == receiver.peer && e.peer == receiver.local))
            })
            .map(|e| e.id.clone())
            .collect();
        if let Some(outside) = self.outside_peer_of(&receiver.id) {
            // Sent by an outside program: the arrow starts at its lifeline where they arrive.
            self.messages.push(MessageView {
                from: outside,
                to: Some(receiver.id.clone()),
                meant_for: Some(receiver.id.clone()),
                data: data.clone(),
                datagram: false,
                to_address: None,
                taken: data.len(),
                sent_at: seq,
                received_at: Some(seq),
                truncated_to: None,
            });
            return;
        }
        // Bytes from no endpoint of the run, and no datagram waiting for an address: a peer
        // outside that Socket Lab could not name sent them (its sends are not in the run).
        if sender_ids.is_empty() && self.untaken_sent_to == 0 {
            return;
        }
        let mut left = data.len();
        for message in &mut self.messages[self.first_untaken..] {
            if (left == 0 && !receiver.datagram) || message.is_taken() {
                continue;
            }
            let meant_for_receiver = message
                .to_address
                .as_ref()
                .is_some_and(|to| receiver.local.as_ref() == Some(to));
            if !(sender_ids.contains(&message.from) || meant_for_receiver) {
                continue;
            }
            message.to = Some(receiver.id.clone());
            if message.datagram {
                if message.to_address.is_some() {
                    self.untaken_sent_to -= 1;
                }
                message.taken = message.data.len();
                message.received_at = Some(seq);
                if data.len() < message.data.len() {
                    message.truncated_to = Some(data.len());
                }
                break;
            }
            let taking = left.min(message.data.len() - message.taken);
            message.taken += taking;
            left -= taking;
            if message.taken == message.data.len() {
                message.received_at = Some(seq);
            }
        }
        // Messages are mostly taken in the order they were sent, so this moves on with them;
        // a message nobody takes (a datagram to no one) holds it back, which costs only time.
        while self
            .messages
            .get(self.first_untaken)
            .is_some_and(MessageView::is_taken)
        {
            self.first_untaken += 1;
        }
    }

    /// Marks the run ended: every endpoint still open was closed when its program ended.
    pub fn finish(&mut self, outcome: RunOutcome) {
        self.paused = None;
        // Drawn at the run's last row: bytes its programs never read die with them.
        let end = self.events.len().saturating_sub(1);
        for endpoint in &mut self.endpoints {
            endpoint.closed_by_its_end(end);
        }
        self.outcome = Some(outcome);
    }
}
