//! The sequence diagram's geometry: one lifeline per endpoint, a bar per call (as long as the
//! call waited), an arrow per message. Pure arithmetic on a [`RunView`], so it is tested
//! natively; the view only turns it into SVG.
//!
//! Coordinates are whole pixels ([`Px`]): every length here is a whole number anyway, and the
//! page then writes them with integer formatting, which keeps floating-point formatting (about
//! ten kilobytes of wasm) out of the bundle.

use std::borrow::Cow;
use std::ops::Range;

use shared::describe::call_text;
use shared::{Event, Phase};

use crate::model::RunView;
use crate::timeline::Timeline;

/// How many of a message's bytes its arrow's label shows: an arrow is a few hundred pixels
/// long, and a student's program may send a megabyte at once.
const ARROW_LABEL_BYTES: usize = 48;

/// A coordinate or length in the diagram, in pixels.
pub type Px = i64;

/// The width of one lifeline's column, where the diagram's box has room for it.
pub const LANE_WIDTH: Px = 260;
/// The narrowest a lane is drawn to fit the diagram's box (a laptop's, with three sockets): a
/// call's label is wider, but a row holds one call, whose label may run over the next line.
pub const MIN_LANE_WIDTH: Px = 180;
/// Room kept right of the last lane's line, when lanes are fitted to a box, for its labels.
const FIT_LABEL_ROOM: Px = 150;

/// The width of each of `lanes` lanes, so that every line fits a box `fit_width` wide with
/// room for the last one's labels (0: no box to fit), between [`MIN_LANE_WIDTH`] and
/// [`LANE_WIDTH`].
pub fn lane_width(lanes: usize, fit_width: Px) -> Px {
    if fit_width <= 0 {
        return LANE_WIDTH;
    }
    // The last lane's line is half a lane in from its left edge.
    let halves = 2 * count(lanes.max(1)) - 1;
    (2 * (fit_width - FIT_LABEL_ROOM) / halves).clamp(MIN_LANE_WIDTH, LANE_WIDTH)
}
/// The height of one row: an event's, or a packet's.
pub const ROW_HEIGHT: Px = 26;
/// How far a packet's arrow falls on each side of its row's middle: time runs down, and it
/// tells a packet's arrow from a message's, which runs from row to row.
const PACKET_SLANT: Px = 5;
/// The space above the first row, for the lifelines' titles.
pub const HEADER_HEIGHT: Px = 48;

/// A lifeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Lane {
    /// The endpoint's id.
    pub endpoint: String,
    /// The line's x.
    pub x: Px,
    /// The title over the line: the endpoint's id, or for a watched process's socket the
    /// socket alone (`fd4`), under its process.
    pub title: String,
    /// For the first lane of a watched process's sockets, which are drawn side by side: the
    /// process (`server.py[4242]`), written over them.
    pub process: Option<String>,
}

/// A call on a lifeline, from its enter row to its return row.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// The lifeline's x.
    pub x: Px,
    /// The enter row's y.
    pub top: Px,
    /// The return row's y, or the bottom of the diagram while the call is still waiting.
    pub bottom: Px,
    /// The call as Python writes it.
    pub label: String,
    /// Whether the call has not returned yet.
    pub waiting: bool,
    /// Whether the call raised an error.
    pub failed: bool,
    /// The seq of the enter event.
    pub seq: u64,
    /// The program that made the call, which picks its colour.
    pub role: String,
}

/// Where sent bytes are at the step shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// A `recv` has taken them: the arrow ends at its row.
    Taken,
    /// They wait in the receiver's queue: the arrow, dashed, runs to the step shown.
    Queued,
    /// The receiver was closed with them unread, and the kernel threw them away: the arrow
    /// ends, crossed out, at the row that closed it.
    Discarded,
}

/// Bytes travelling from a send to the recv that took them: drawn into the receiver's queue
/// from the send on, so that what a send did is seen before any recv.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrow {
    /// Where it starts.
    pub from: (Px, Px),
    /// Where it ends.
    pub to: (Px, Px),
    /// The bytes, as Python prints them.
    pub label: String,
    /// The same bytes in hexadecimal with their count, for the page's "hex" view.
    pub hex: String,
    /// Whether the bytes went as one datagram rather than into a byte stream.
    pub datagram: bool,
    /// Taken, waiting in the queue, or discarded.
    pub fate: Fate,
    /// Where its label's middle sits: along the arrow, where it covers no packet's label
    /// and no other message's ([`place_labels`]).
    pub label_at: (Px, Px),
}

/// A packet on the wire, between the lifelines of the sockets it travels between, drawn in
/// a row of its own among the events' ([`Timeline`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PacketArrow {
    /// The packet's index in the run.
    pub index: usize,
    /// Where it starts.
    pub from: (Px, Px),
    /// Where it ends.
    pub to: (Px, Px),
    /// What it is: `SYN`, `PSH, ACK 24 B`, `UDP 10 B`, `ICMP port unreachable`.
    pub label: String,
    /// Where its label goes: over the arrow's middle, or further along it where that would
    /// cover another packet's label ([`place_labels`]).
    pub label_at: (Px, Px),
    /// The TCP flags, or the protocol, for tests and styles: `SYN,ACK`, `UDP`.
    pub kind: String,
    /// Whether it is the packet stepped to.
    pub selected: bool,
}

/// The whole diagram.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Diagram {
    /// The total width.
    pub width: Px,
    /// The total height.
    pub height: Px,
    /// One per endpoint.
    pub lanes: Vec<Lane>,
    /// One per call.
    pub bars: Vec<Bar>,
    /// One per message.
    pub arrows: Vec<Arrow>,
    /// One per packet shown.
    pub packets: Vec<PacketArrow>,
    /// The width of each lane.
    pub lane_width: Px,
}

/// Extra width right of the last lane, so its labels are not cut off.
pub const LABEL_ROOM: Px = 200;

/// The y of the middle of the diagram's `row`th row (an event's index, in a run without
/// packets; [`Timeline`] finds the rows of a run with them).
pub fn row_y(row: usize) -> Px {
    HEADER_HEIGHT + count(row) * ROW_HEIGHT + ROW_HEIGHT / 2
}

/// The row of what is stepped to: the packet, or the event, in the window's rows (where no
/// stretch is folded).
pub fn selected_row(run: &RunView, timeline: &Timeline<'_>) -> Option<usize> {
    match run.selected_packet() {
        Some((packet, _)) => Some(timeline.packet_row(packet)),
        None => run.selected().map(|index| timeline.event_row(index)),
    }
}

/// A count of rows or lanes as pixels' arithmetic needs it (no page holds more than `Px::MAX`).
fn count(rows: usize) -> Px {
    Px::try_from(rows).unwrap_or(Px::MAX / ROW_HEIGHT / 2)
}

/// The lifelines of the endpoints that the run's first `upto` events made.
///
/// A watched run's lanes are grouped by process, each process's sockets side by side in the
/// order the processes first appeared, so that a process reads as one lifeline of sockets.
fn lanes(run: &RunView, upto: usize, fit_width: Px) -> (Vec<Lane>, Px) {
    let mut shown: Vec<&crate::model::EndpointView> = run
        .endpoints
        .iter()
        .filter(|endpoint| endpoint.first_event < upto)
        .collect();
    let watched = run
        .events
        .first()
        .is_some_and(|event| event.watched.is_some());
    if watched {
        // Each process's sockets after its first, in the order the processes came.
        let mut grouped = Vec::with_capacity(shown.len());
        while let Some(first) = shown.first().copied() {
            let (same, others): (Vec<_>, Vec<_>) = shown
                .into_iter()
                .partition(|endpoint| endpoint.role == first.role);
            grouped.extend(same);
            shown = others;
        }
        shown = grouped;
    }
    let mut previous_role: Option<&str> = None;
    let lane_width = lane_width(shown.len(), fit_width);
    let lanes = shown
        .into_iter()
        .enumerate()
        .map(|(index, endpoint)| {
            let socket = endpoint
                .id
                .strip_prefix(endpoint.role.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .filter(|_| watched);
            let first_of_process = previous_role != Some(endpoint.role.as_str());
            previous_role = Some(&endpoint.role);
            Lane {
                endpoint: endpoint.id.clone(),
                x: lane_width * count(index) + lane_width / 2,
                title: socket.unwrap_or(&endpoint.id).to_owned(),
                process: (socket.is_some() && first_of_process).then(|| endpoint.role.clone()),
            }
        })
        .collect();
    (lanes, lane_width)
}

/// The diagram's width: its lanes, and room on the right for the last lane's call labels.
fn width(lanes: &[Lane], lane_width: Px) -> Px {
    lane_width * count(lanes.len().max(1)) + LABEL_ROOM
}

/// Lays out a whole run.
pub fn layout(run: &RunView) -> Diagram {
    let upto = run.events.len();
    layout_window(run, upto, 0..Timeline::of(run, upto).len())
}

/// The sizes the diagram is drawn at, in pixels: its label fonts, which its labels are placed
/// by, and the box its lanes are fitted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// A message's bytes, and a call's label beside its bar.
    pub message: Px,
    /// A packet's flags and length.
    pub packet: Px,
    /// The width of the box the lanes are fitted to (0: none, every lane [`LANE_WIDTH`]).
    pub fit_width: Px,
}

impl Sizes {
    /// The page's usual sizes.
    pub const USUAL: Sizes = Sizes {
        message: 12,
        packet: 10,
        fit_width: 0,
    };
    /// On a projector's width (the page's style says from when): read from across a room.
    pub const PROJECTOR: Sizes = Sizes {
        message: 14,
        packet: 14,
        fit_width: 0,
    };
}

/// Lays out the run as it stood after its first `upto` events, drawing only the calls,
/// messages and packets that touch the rows in `rows` (the [`Timeline`]'s, one an event and
/// one a packet): a page with ten thousand events draws the few dozen on screen. The size is
/// the whole diagram's, so that it scrolls as one.
pub fn layout_window(run: &RunView, upto: usize, rows: Range<usize>) -> Diagram {
    layout_window_at(run, upto, rows, Sizes::USUAL)
}

/// [`layout_window`] with labels of the font sizes given.
pub fn layout_window_at(run: &RunView, upto: usize, rows: Range<usize>, sizes: Sizes) -> Diagram {
    let upto = upto.min(run.events.len());
    let (lanes, lane_width) = lanes(run, upto, sizes.fit_width);
    let lane_x = |endpoint: &str| {
        lanes
            .iter()
            .find(|lane| lane.endpoint == endpoint)
            .map_or(0, |lane| lane.x)
    };
    let timeline = Timeline::of(run, upto);
    let event_y = |index: usize| row_y(timeline.event_row(index));
    // The events whose rows are drawn: a call or message of an event outside them is drawn
    // when it spans them.
    let events = timeline.events_in(rows.clone());
    let height = HEADER_HEIGHT + (count(timeline.len()) + 1) * ROW_HEIGHT;
    let ended = run.outcome.is_some() && upto == run.events.len();
    // A bar that starts above the window but ends in or below it crosses the window too.
    let mut bars = Vec::new();
    for (index, enter) in run.events[..upto].iter().enumerate() {
        if enter.phase != Phase::Enter {
            continue;
        }
        let returned = run
            .returns
            .get(index)
            .copied()
            .flatten()
            .filter(|&end| end < upto);
        let last_event = returned.unwrap_or(upto);
        if last_event < events.start || index >= events.end {
            continue;
        }
        bars.push(Bar {
            x: lane_x(&enter.endpoint),
            top: event_y(index),
            bottom: returned.map_or(height - ROW_HEIGHT / 2, event_y),
            label: call_text(&enter.call),
            waiting: returned.is_none() && !ended,
            failed: returned.is_some_and(|end| run.events[end].error.is_some()),
            seq: enter.seq,
            role: enter.role.clone(),
        });
    }
    let now = height - ROW_HEIGHT / 2;
    let mut arrows: Vec<Arrow> = run
        .messages
        .iter()
        .filter_map(|message| {
            let sent = message.sent_at as usize;
            if sent >= upto || sent >= events.end {
                return None;
            }
            let taken = message.received_at.filter(|&at| (at as usize) < upto);
            let receiver = message.to.as_ref().or(message.meant_for.as_ref())?;
            let lane = lanes.iter().find(|lane| &lane.endpoint == receiver)?;
            let closed = run
                .endpoint(receiver)
                .and_then(|endpoint| endpoint.closed_at)
                .filter(|&at| at < upto);
            let (fate, end) = match (taken, closed) {
                (Some(at), _) => (Fate::Taken, Some(at as usize)),
                // Closed before the bytes came: the kernel refused them on arrival.
                (None, Some(at)) => (Fate::Discarded, Some(at.max(sent))),
                (None, None) => (Fate::Queued, None),
            };
            if end.unwrap_or(upto) < events.start {
                return None;
            }
            let bytes = message.data.preview(ARROW_LABEL_BYTES);
            Some(Arrow {
                from: (lane_x(&message.from), event_y(sent)),
                to: (lane.x, end.map_or(now, event_y)),
                label_at: (0, 0),
                label: match (fate, message.truncated_to) {
                    (Fate::Taken, Some(kept)) => {
                        format!("{bytes} ✂ kept {kept} of {}", message.data.len())
                    }
                    (Fate::Taken, None) => bytes,
                    (Fate::Queued, _) => format!("{bytes} (queued)"),
                    (Fate::Discarded, _) => format!("{bytes} ✕ discarded"),
                },
                hex: message.data.hex_preview(ARROW_LABEL_BYTES),
                datagram: message.datagram,
                fate,
            })
        })
        .collect();
    let mut packets = packet_arrows(run, &timeline, rows, &lanes);
    place_labels(&mut arrows, &mut packets, &bars, sizes);
    Diagram {
        width: width(&lanes, lane_width),
        height,
        lanes,
        bars,
        arrows,
        packets,
        lane_width,
    }
}

/// A label's box as drawn: `chars` characters of a monospace font of `size` px (0.6 of the
/// size wide each) centred on `at`'s x, with its baseline at `at`'s y; left, top, right,
/// bottom.
fn label_box(at: (Px, Px), chars: usize, size: Px) -> (Px, Px, Px, Px) {
    let half = count(chars) * size * 3 / 10;
    (
        at.0 - half,
        at.1 - size * 9 / 10,
        at.0 + half,
        at.1 + size / 4,
    )
}

fn overlap(a: (Px, Px, Px, Px), b: (Px, Px, Px, Px)) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// The points along an arrow, as fractions, where its label may go, the first preferred.
const ALONG: [(Px, Px); 7] = [(1, 2), (1, 3), (2, 3), (1, 5), (4, 5), (1, 10), (9, 10)];

/// Places the labels so that none covers another where that can be: each packet's over its
/// arrow's middle if that is free, else at the first free point along its arrow; then each
/// message's at its arrow's middle if that is free, else at the first free point further
/// along either way (6 px above the line); a label with no free place keeps the first. The
/// widths are those of the diagram's monospace font: 0.6 of its size a character.
fn place_labels(arrows: &mut [Arrow], packets: &mut [PacketArrow], bars: &[Bar], sizes: Sizes) {
    // The calls' labels stay where they are, beside their bars' tops, as the page draws them
    // (starting 10 px right of the bar, 4 px below its row's middle).
    let mut taken: Vec<(Px, Px, Px, Px)> = bars
        .iter()
        .map(|bar| {
            let (left, top, right, bottom) =
                label_box((0, bar.top + 4), bar.label.chars().count(), sizes.message);
            (bar.x + 10, top, bar.x + 10 + (right - left), bottom)
        })
        .collect();
    let mut place =
        |first: (Px, Px), others: &mut dyn Iterator<Item = (Px, Px)>, label: &str, size: Px| {
            let chars = label.chars().count();
            let free = |at: (Px, Px), taken: &[(Px, Px, Px, Px)]| {
                let placed = label_box(at, chars, size);
                !taken.iter().any(|other| overlap(placed, *other))
            };
            let at = std::iter::once(first)
                .chain(others)
                .find(|&at| free(at, &taken))
                .unwrap_or(first);
            taken.push(label_box(at, chars, size));
            at
        };
    for packet in packets.iter_mut() {
        let (from, to, y) = (packet.from.0, packet.to.0, packet.label_at.1);
        let mut others = ALONG
            .into_iter()
            .map(|(part, of)| (from.min(to) + (from - to).abs() * part / of, y));
        packet.label_at = place(packet.label_at, &mut others, &packet.label, sizes.packet);
    }
    for arrow in arrows {
        let (from, to) = (arrow.from, arrow.to);
        let at = move |(part, of): (Px, Px)| {
            (
                from.0 + (to.0 - from.0) * part / of,
                from.1 + (to.1 - from.1) * part / of - 6,
            )
        };
        let mut others = ALONG[1..].iter().map(|&along| at(along));
        arrow.label_at = place(at(ALONG[0]), &mut others, &arrow.label, sizes.message);
    }
}

/// The packets shown (up to the step selected) whose rows are in `rows`: each in a row of
/// its own, slanting down from the socket that sent it to the one it went to.
fn packet_arrows(
    run: &RunView,
    timeline: &Timeline<'_>,
    rows: Range<usize>,
    lanes: &[Lane],
) -> Vec<PacketArrow> {
    let lane_of = |endpoint: &str| {
        lanes
            .iter()
            .find(|lane| lane.endpoint == endpoint)
            .map(|lane| lane.x)
    };
    let in_rows = timeline.packets_in(rows);
    if in_rows.is_empty() {
        return Vec::new();
    }
    let endpoints = shared::cause::Endpoints::of(&run.events);
    let selected = run.selected_packet().map(|(index, _)| index);
    let mut arrows = Vec::new();
    for index in in_rows {
        let packet = &run.packets[index];
        let y = row_y(timeline.packet_row(index));
        // Only the sockets that exist by the packet (at least the first event's): a
        // connection not accepted yet is its listener's (it waits in the listener's accept
        // queue).
        let events_before = timeline.events_until(packet.t_us).max(1);
        let lane = |local: &shared::SockAddr, peer: &shared::SockAddr| {
            endpoints
                .at(local, peer, events_before)
                .and_then(lane_of)
                .or_else(|| endpoints.bound_at(local, events_before).and_then(lane_of))
        };
        let from = lane(&packet.src, &packet.dst);
        let to = lane(&packet.dst, &packet.src);
        // A side whose socket the events do not name (a connect that failed has no
        // address) is drawn beside the other.
        let (from_x, to_x) = match (from, to) {
            (Some(from), Some(to)) if from != to => (from, to),
            (Some(x), _) | (_, Some(x)) => (x, x + LANE_WIDTH / 3),
            (None, None) => continue,
        };
        let (label, kind) = packet_label(packet);
        arrows.push(PacketArrow {
            index,
            from: (from_x, y - PACKET_SLANT),
            to: (to_x, y + PACKET_SLANT),
            // Over the arrow's middle, clear of its line.
            label_at: ((from_x + to_x) / 2, y - PACKET_SLANT),
            label,
            kind,
            selected: selected == Some(index),
        });
    }
    arrows
}

/// A packet's label and kind: `SYN, ACK` and `SYN,ACK`; `PSH, ACK 24 B`; `UDP 10 B`.
fn packet_label(packet: &shared::Packet) -> (String, String) {
    match (&packet.tcp, &packet.icmp) {
        (Some(tcp), _) => {
            let names: Vec<&str> = tcp.flags.iter().map(|flag| flag.name()).collect();
            let mut label = names.join(", ");
            if packet.payload_len > 0 {
                label.push_str(&format!(" {} B", packet.payload_len));
            }
            (label, names.join(","))
        }
        (None, Some(icmp)) if icmp.is_port_unreachable(packet.protocol) => (
            format!("{} port unreachable", packet.protocol.name()),
            packet.protocol.name().to_owned(),
        ),
        _ => (
            format!("{} {} B", packet.protocol.name(), packet.payload_len),
            packet.protocol.name().to_owned(),
        ),
    }
}

/// The fewest events of back-to-back sends and receives that the overview folds into one row.
pub const SUMMARY_MIN_EVENTS: usize = 40;

/// A row of the overview: one event, or a long stretch of sends and receives folded into one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OverviewRow {
    /// The event with this index.
    Event(usize),
    /// The events `first..=last`, all sends and receives.
    Summary {
        /// The first event folded in.
        first: usize,
        /// The last event folded in.
        last: usize,
        /// Per endpoint and call: how many calls returned.
        calls: Vec<(String, &'static str, usize)>,
        /// The bytes that the returned calls sent or received.
        bytes: usize,
    },
}

impl OverviewRow {
    /// Whether the row shows the event with this index.
    pub fn holds(&self, index: usize) -> bool {
        match self {
            OverviewRow::Event(event) => *event == index,
            OverviewRow::Summary { first, last, .. } => (*first..=*last).contains(&index),
        }
    }

    /// The last event the row shows.
    fn last(&self) -> usize {
        match self {
            OverviewRow::Event(event) => *event,
            OverviewRow::Summary { last, .. } => *last,
        }
    }
}

/// The row of `rows` (an [`overview`], whose rows hold the events in order) that shows the
/// event with this index, found by bisection: a live run asks for it every frame.
pub fn row_holding(rows: &[OverviewRow], index: usize) -> Option<usize> {
    let row = rows.partition_point(|row| row.last() < index);
    rows.get(row).filter(|row| row.holds(index)).map(|_| row)
}

fn moves_data(call: &shared::Call) -> bool {
    matches!(
        call.name(),
        "send" | "sendall" | "sendto" | "recv" | "recvfrom"
    )
}

/// The run's first `upto` events as overview rows: every stretch of at least
/// [`SUMMARY_MIN_EVENTS`] back-to-back sends and receives becomes one row that counts them.
/// The whole run's are kept by the run as its events come ([`RunView::overview`]); a run
/// stepped back to an earlier event has its rows up to there made again.
pub fn overview(run: &RunView, upto: usize) -> Cow<'_, [OverviewRow]> {
    if upto >= run.events.len() {
        return Cow::Borrowed(run.overview.rows());
    }
    let mut rows = Overview::default();
    for (index, event) in run.events[..upto].iter().enumerate() {
        rows.push(index, event);
    }
    Cow::Owned(rows.rows)
}

/// A run's overview rows, made one event at a time: a live run adds an event in the time it
/// takes to count it, not to walk the ten thousand before it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overview {
    rows: Vec<OverviewRow>,
    tail: Tail,
}

/// The end of the events so far, as the overview sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Tail {
    /// No stretch of sends and receives.
    #[default]
    Other,
    /// A stretch of sends and receives too short to fold yet, each its own row, and what
    /// the stretch did so far, for the row that will fold it.
    Short {
        first: usize,
        calls: Vec<(String, &'static str, usize)>,
        bytes: usize,
    },
    /// A folded stretch: the last row, which counts each new send and receive.
    Folded,
}

impl Overview {
    /// The rows so far.
    pub fn rows(&self) -> &[OverviewRow] {
        &self.rows
    }

    /// Adds the event with this index, the next one of the run.
    pub fn push(&mut self, index: usize, event: &Event) {
        if !moves_data(&event.call) {
            self.tail = Tail::Other;
            self.rows.push(OverviewRow::Event(index));
            return;
        }
        if let Tail::Folded = self.tail {
            if let Some(OverviewRow::Summary {
                last, calls, bytes, ..
            }) = self.rows.last_mut()
            {
                *last = index;
                count_into(calls, bytes, event);
            }
            return;
        }
        if let Tail::Other = self.tail {
            self.tail = Tail::Short {
                first: index,
                calls: Vec::new(),
                bytes: 0,
            };
        }
        if let Tail::Short { calls, bytes, .. } = &mut self.tail {
            count_into(calls, bytes, event);
        }
        self.rows.push(OverviewRow::Event(index));
        self.fold_if_long(index);
    }

    /// Folds a short stretch that the event with this index made long enough into one row.
    fn fold_if_long(&mut self, index: usize) {
        let Tail::Short { first, .. } = &self.tail else {
            return;
        };
        let events = index + 1 - first;
        if events < SUMMARY_MIN_EVENTS {
            return;
        }
        let Tail::Short {
            first,
            calls,
            bytes,
        } = std::mem::replace(&mut self.tail, Tail::Folded)
        else {
            return;
        };
        self.rows.truncate(self.rows.len() - events);
        self.rows.push(OverviewRow::Summary {
            first,
            last: index,
            calls,
            bytes,
        });
    }
}

/// Counts a send or receive into a folded row's tally: per endpoint and call, the calls that
/// returned, and the bytes they moved.
fn count_into(calls: &mut Vec<(String, &'static str, usize)>, bytes: &mut usize, event: &Event) {
    let Some(Ok(result)) = event.outcome() else {
        return;
    };
    *bytes += match &result.value {
        shared::ReturnValue::Sent { count } => *count,
        shared::ReturnValue::Received { data, .. } => data.len(),
        shared::ReturnValue::None => event.call.sent_data().map_or(0, |data| data.len()),
        _ => 0,
    };
    match calls
        .iter_mut()
        .find(|(endpoint, name, _)| *endpoint == event.endpoint && *name == event.call.name())
    {
        Some((_, _, count)) => *count += 1,
        None => calls.push((event.endpoint.clone(), event.call.name(), 1)),
    }
}

/// A folded stretch, drawn as one band across the lanes it involves.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryBand {
    /// The band's left and right.
    pub x: (Px, Px),
    /// Its row's y.
    pub y: Px,
    /// What it folds, such as `client.s send × 5000, 45000 bytes`.
    pub label: String,
}

/// Lays out the overview's rows in `rows`: one row per overview row, bars only for single
/// events whose call starts and ends outside folded stretches.
pub fn layout_overview(
    run: &RunView,
    upto: usize,
    all: &[OverviewRow],
    rows: Range<usize>,
    fit_width: Px,
) -> (Diagram, Vec<SummaryBand>) {
    let (lanes, lane_width) = lanes(run, upto, fit_width);
    let mut diagram = Diagram {
        width: width(&lanes, lane_width),
        height: HEADER_HEIGHT + (count(all.len()) + 1) * ROW_HEIGHT,
        lanes,
        bars: Vec::new(),
        arrows: Vec::new(),
        packets: Vec::new(),
        lane_width,
    };
    let lane_x = |endpoint: &str| {
        diagram
            .lanes
            .iter()
            .find(|lane| lane.endpoint == endpoint)
            .map_or(0, |lane| lane.x)
    };
    let row_of = |index: usize| row_holding(all, index);
    let mut bars = Vec::new();
    let mut bands = Vec::new();
    let end = rows.end.min(all.len());
    for (row, item) in all.iter().enumerate().take(end).skip(rows.start) {
        match item {
            OverviewRow::Event(index) => {
                let enter = &run.events[*index];
                if enter.phase != Phase::Enter {
                    continue;
                }
                let returned = run.returns[*index].filter(|&end| end < upto);
                let bottom = match returned.and_then(row_of) {
                    Some(end_row) => row_y(end_row),
                    None => diagram.height - ROW_HEIGHT / 2,
                };
                bars.push(Bar {
                    x: lane_x(&enter.endpoint),
                    top: row_y(row),
                    bottom,
                    label: call_text(&enter.call),
                    waiting: returned.is_none() && run.outcome.is_none(),
                    failed: returned.is_some_and(|end| run.events[end].error.is_some()),
                    seq: enter.seq,
                    role: enter.role.clone(),
                });
            }
            OverviewRow::Summary { calls, bytes, .. } => {
                let xs = calls.iter().map(|(endpoint, ..)| lane_x(endpoint));
                let left = xs.clone().min().unwrap_or(0);
                let right = xs.max().unwrap_or(0);
                let counts: Vec<String> = calls
                    .iter()
                    .map(|(endpoint, name, count)| format!("{endpoint} {name} × {count}"))
                    .collect();
                bands.push(SummaryBand {
                    x: (left - 8, right + 8),
                    y: row_y(row),
                    label: format!(
                        "{}, {bytes} bytes (zoom in to see each call)",
                        counts.join(", ")
                    ),
                });
            }
        }
    }
    diagram.bars = bars;
    (diagram, bands)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrow(from: (Px, Px), to: (Px, Px), label: &str) -> Arrow {
        Arrow {
            from,
            to,
            label: label.into(),
            hex: String::new(),
            datagram: false,
            fate: Fate::Taken,
            label_at: (0, 0),
        }
    }

    fn packet(label_at: (Px, Px), label: &str) -> PacketArrow {
        PacketArrow {
            index: 0,
            from: (130, label_at.1 + 2),
            to: (390, label_at.1 + 6),
            label: label.into(),
            label_at,
            kind: String::new(),
            selected: false,
        }
    }

    /// A laptop's diagram box (about 580 px at 1440 × 900) holds the lines of the Simple
    /// Server's three sockets; lanes never grow past their usual width, nor shrink past the
    /// narrowest, however many there are.
    #[test]
    fn lanes_fit_the_box_they_are_drawn_in() {
        let last_line = |lanes: usize, width: Px| {
            let lane = lane_width(lanes, width);
            lane * (2 * count(lanes) - 1) / 2
        };
        assert!(last_line(3, 580) + 120 <= 580, "{}", last_line(3, 580));
        assert_eq!(lane_width(2, 580), LANE_WIDTH);
        assert_eq!(lane_width(3, 1900), LANE_WIDTH);
        assert_eq!(lane_width(7, 580), MIN_LANE_WIDTH);
        // No box measured yet: the usual width.
        assert_eq!(lane_width(3, 0), LANE_WIDTH);
        assert_eq!(lane_width(0, 580), LANE_WIDTH);
    }

    #[test]
    fn a_message_label_moves_along_its_arrow_off_a_packets_label() {
        // A queued message's arrow, down from the sender to the receiver's lane, whose
        // middle is where the data segment's label is.
        let mut arrows = [arrow((390, 100), (130, 200), "b'Connection is successful'")];
        let mut packets = [packet((260, 144), "PSH, ACK 24 B")];
        let middle = (260, 144);
        assert!(overlap(
            label_box(middle, 27, 12),
            label_box(packets[0].label_at, 13, 10)
        ));
        place_labels(&mut arrows, &mut packets, &[], Sizes::USUAL);
        assert_eq!(packets[0].label_at, (260, 144));
        let placed = arrows[0].label_at;
        assert_ne!(placed, middle);
        assert!(!overlap(
            label_box(placed, 27, 12),
            label_box(packets[0].label_at, 13, 10)
        ));
        // Still on the arrow (6 px above it), to the pixel.
        let (dx, dy) = (placed.0 - 390, placed.1 + 6 - 100);
        assert!((dx * 100 + dy * 260).abs() <= 260, "{placed:?}");
        assert!((130..=390).contains(&placed.0));

        // With nothing in the way it sits at the middle; two messages never share a place.
        let mut two = [
            arrow((130, 100), (390, 100), "b'one'"),
            arrow((130, 100), (390, 100), "b'two'"),
        ];
        place_labels(&mut two, &mut [], &[], Sizes::USUAL);
        assert_eq!(two[0].label_at, (260, 94));
        assert!(!overlap(
            label_box(two[0].label_at, 6, 12),
            label_box(two[1].label_at, 6, 12)
        ));
    }

    #[test]
    fn a_message_label_moves_off_a_calls_label() {
        // The send's bytes run down to the client's lane, past the server's close(), whose
        // label is where the arrow's middle is (the Simple Server's last rows).
        let close = Bar {
            x: 250,
            top: 150,
            bottom: 176,
            label: "close()".into(),
            waiting: false,
            failed: false,
            seq: 20,
            role: "server".into(),
        };
        let mut arrows = [arrow((390, 100), (130, 200), "b'Connection is successful'")];
        let call_label = (260, 146, 260 + 7 * 12 * 6 / 10, 157);
        assert!(overlap(label_box((260, 144), 27, 12), call_label));
        place_labels(
            &mut arrows,
            &mut [],
            std::slice::from_ref(&close),
            Sizes::USUAL,
        );
        assert!(
            !overlap(label_box(arrows[0].label_at, 27, 12), call_label),
            "{:?}",
            arrows[0].label_at
        );
    }

    #[test]
    fn packets_labels_in_one_gap_stand_apart_at_a_projectors_size() {
        // A data segment and the echo going back, in one gap: at 14 px their labels, at a
        // third and two thirds of the way, would cover each other.
        let mut packets = [
            packet((216, 139), "PSH, ACK 24 B"),
            packet((303, 148), "PSH, ACK 24 B"),
        ];
        packets[1].from = (390, 150);
        packets[1].to = (130, 154);
        let boxes = |packets: &[PacketArrow], size| {
            (
                label_box(packets[0].label_at, 13, size),
                label_box(packets[1].label_at, 13, size),
            )
        };
        // At the usual 10 px they stand apart as they are.
        let (first, second) = boxes(&packets, 10);
        assert!(!overlap(first, second));
        let (first, second) = boxes(&packets, 14);
        assert!(overlap(first, second));
        place_labels(&mut [], &mut packets, &[], Sizes::PROJECTOR);
        let (first, second) = boxes(&packets, 14);
        assert!(!overlap(first, second), "{:?}", packets.map(|p| p.label_at));
        // Each still over its own line, at its own height.
        assert_eq!(packets[0].label_at, (216, 139));
        assert_eq!(packets[1].label_at.1, 148);
        assert!((130..=390).contains(&packets[1].label_at.0));
    }
}
