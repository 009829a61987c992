//! The TCP state diagram of RFC 9293 (section 3.3.2, figure 5) as geometry and words: where
//! each state sits, its transitions and what causes each, and which transitions the sockets
//! took at an event, read from the kernel's views of them. Plain Rust; the page draws it
//! (`view::state_machine`).
//!
//! The states are the kernel's (`SocketState`, as `ss` names them); the boxes are labelled as
//! the RFC spells them (`SYN-RECEIVED`), with the kernel's name beside where it differs.

use shared::cause::Endpoints;
use shared::{Event, Packet, SocketState, TcpFlag};

/// The diagram's size, in its own units (the page scales it to its box).
pub const WIDTH: i32 = 440;
pub const HEIGHT: i32 = 150;
/// A state's box.
pub const NODE_WIDTH: i32 = 100;
pub const NODE_HEIGHT: i32 = 22;

/// A state's box: the state, the RFC's name for it, and its centre.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub state: SocketState,
    pub label: &'static str,
    pub x: i32,
    pub y: i32,
}

const fn node(state: SocketState, label: &'static str, x: i32, y: i32) -> Node {
    Node { state, label, x, y }
}

/// The eleven states, in four rows as wide as a column of the page: opening at the top, the
/// active close down the left, the passive close down the right.
pub const NODES: [Node; 11] = [
    node(SocketState::Listen, "LISTEN", 60, 14),
    node(SocketState::Closed, "CLOSED", 210, 14),
    node(SocketState::SynRecv, "SYN-RECEIVED", 60, 50),
    node(SocketState::Established, "ESTABLISHED", 210, 50),
    node(SocketState::SynSent, "SYN-SENT", 350, 50),
    node(SocketState::FinWait1, "FIN-WAIT-1", 60, 86),
    node(SocketState::Closing, "CLOSING", 210, 86),
    node(SocketState::CloseWait, "CLOSE-WAIT", 350, 86),
    node(SocketState::FinWait2, "FIN-WAIT-2", 60, 122),
    node(SocketState::TimeWait, "TIME-WAIT", 210, 122),
    node(SocketState::LastAck, "LAST-ACK", 350, 122),
];

/// A transition of the RFC's figure and what makes it: the call, or the segment received
/// and the one sent. `bend` curves a long edge around the others (the control points' x);
/// an edge that is not `drawn` would lie on another one the other way (it is still named
/// when a socket takes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: SocketState,
    pub to: SocketState,
    pub cause: &'static str,
    pub bend: Option<i32>,
    pub drawn: bool,
}

const fn edge(from: SocketState, to: SocketState, cause: &'static str) -> Transition {
    Transition {
        from,
        to,
        cause,
        bend: None,
        drawn: true,
    }
}

const fn back(from: SocketState, to: SocketState, cause: &'static str) -> Transition {
    Transition {
        from,
        to,
        cause,
        bend: None,
        drawn: false,
    }
}

const fn bent(from: SocketState, to: SocketState, cause: &'static str, x: i32) -> Transition {
    Transition {
        from,
        to,
        cause,
        bend: Some(x),
        drawn: true,
    }
}

use SocketState as S;

/// The RFC's transitions (a simultaneous open's SYN-SENT → SYN-RECEIVED left out: no
/// scenario makes one, and it would cross the figure).
pub const TRANSITIONS: [Transition; 16] = [
    edge(S::Closed, S::Listen, "listen(): a passive open"),
    edge(
        S::Closed,
        S::SynSent,
        "connect(): an active open, the kernel sends SYN",
    ),
    edge(
        S::Listen,
        S::SynRecv,
        "a SYN came in; the kernel answers SYN-ACK by itself",
    ),
    back(S::Listen, S::Closed, "close() of the listener"),
    edge(
        S::SynRecv,
        S::Established,
        "the client's ACK completed the handshake",
    ),
    edge(
        S::SynSent,
        S::Established,
        "SYN-ACK came in; the kernel sends ACK, and connect() returns",
    ),
    back(
        S::SynSent,
        S::Closed,
        "RST came in (nothing listens there), or close()",
    ),
    edge(
        S::SynRecv,
        S::FinWait1,
        "close() before the handshake ended",
    ),
    edge(
        S::Established,
        S::FinWait1,
        "close() or shutdown(SHUT_WR): the kernel sends FIN",
    ),
    edge(
        S::Established,
        S::CloseWait,
        "the peer's FIN came in; the kernel ACKs it, and recv() will return b''",
    ),
    edge(
        S::FinWait1,
        S::FinWait2,
        "the ACK of this side's FIN came in",
    ),
    edge(
        S::FinWait1,
        S::Closing,
        "the peer's FIN came in before the ACK of this side's (both closed at once)",
    ),
    edge(
        S::FinWait2,
        S::TimeWait,
        "the peer's FIN came in; the kernel ACKs it",
    ),
    edge(
        S::Closing,
        S::TimeWait,
        "the ACK of this side's FIN came in",
    ),
    edge(
        S::CloseWait,
        S::LastAck,
        "close() after the peer's: the kernel sends FIN",
    ),
    bent(
        S::LastAck,
        S::Closed,
        "the ACK of this side's FIN came in: the connection is gone",
        432,
    ),
];

/// TIME-WAIT's way out, written under its box rather than drawn across the figure: the
/// kernel waits twice the segment lifetime (60 s on Linux) before it forgets the connection.
pub const TIME_WAIT_ENDS: Transition = back(
    S::TimeWait,
    S::Closed,
    "the kernel waited out TIME-WAIT (60 s on Linux) and forgot the connection",
);

/// The box of a TCP state; `None` for the states of sockets that are not TCP.
pub fn node_of(state: SocketState) -> Option<&'static Node> {
    NODES.iter().find(|node| node.state == state)
}

/// The transition from `from` to `to`, if the figure has one.
pub fn transition(from: SocketState, to: SocketState) -> Option<&'static Transition> {
    TRANSITIONS
        .iter()
        .chain(std::iter::once(&TIME_WAIT_ENDS))
        .find(|transition| transition.from == from && transition.to == to)
}

/// Whether a state is one of TCP's (the kernel reports others for UDP and Unix sockets).
pub fn is_tcp(state: SocketState) -> bool {
    node_of(state).is_some()
}

/// A socket's change of state at an event, as the kernel's views before and at it show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub endpoint: String,
    /// Its state at its last view before the event; `None` for a socket first seen here.
    pub from: Option<SocketState>,
    pub to: SocketState,
}

/// The shortest way through the figure from `from` to `to` (both included): between two of
/// the kernel's views a socket may pass states no view caught, as a `connect()` on loopback
/// passes SYN-SENT within the call. A way never passes through CLOSED (a connection that
/// ends there is over; a socket made again is another). `None` when the figure has no way.
pub fn path(from: SocketState, to: SocketState) -> Option<Vec<SocketState>> {
    let mut came_from: Vec<(SocketState, SocketState)> = Vec::new();
    let mut frontier = vec![from];
    let mut seen = vec![from];
    while !frontier.is_empty() {
        if seen.contains(&to) {
            break;
        }
        let mut next = Vec::new();
        for state in frontier {
            if state == SocketState::Closed && state != from {
                continue;
            }
            for transition in TRANSITIONS.iter().chain([&TIME_WAIT_ENDS]) {
                if transition.from == state && !seen.contains(&transition.to) {
                    seen.push(transition.to);
                    came_from.push((transition.to, state));
                    next.push(transition.to);
                }
            }
        }
        frontier = next;
    }
    if !seen.contains(&to) {
        return None;
    }
    let mut way = vec![to];
    while let Some(&last) = way.last() {
        if last == from {
            break;
        }
        way.push(came_from.iter().find(|(state, _)| *state == last)?.1);
    }
    way.reverse();
    Some(way)
}

impl Change {
    /// The change in words: the states and what made the kernel move.
    pub fn text(&self, call: &str) -> String {
        let to = label(self.to);
        match self.from {
            None => format!(
                "{}: {to}, as the kernel first shows it, at {call}",
                self.endpoint
            ),
            Some(from) => match path(from, self.to) {
                Some(way) if way.len() > 1 => {
                    let names = way.iter().map(|state| label(*state)).collect::<Vec<_>>();
                    let causes = way
                        .windows(2)
                        .filter_map(|step| transition(step[0], step[1]))
                        .map(|transition| transition.cause)
                        .collect::<Vec<_>>();
                    format!(
                        "{}: {} at {call}: {}",
                        self.endpoint,
                        names.join(" → "),
                        causes.join("; then ")
                    )
                }
                _ => format!(
                    "{}: {} → {to} at {call}, a step the figure leaves out",
                    self.endpoint,
                    label(from)
                ),
            },
        }
    }

    /// The figure's transitions this change went through.
    pub fn steps(&self) -> Vec<(SocketState, SocketState)> {
        self.from
            .and_then(|from| path(from, self.to))
            .map(|way| way.windows(2).map(|step| (step[0], step[1])).collect())
            .unwrap_or_default()
    }
}

/// The RFC's name of a state, or the kernel's for a state the figure does not have.
pub fn label(state: SocketState) -> &'static str {
    node_of(state).map_or_else(|| state.name(), |node| node.label)
}

/// The TCP sockets whose state changed at `events[index]`: each view of the event against
/// the socket's last view before it. A socket first seen in a state other than `CLOSED` (an
/// accepted connection) counts as a change from nothing.
pub fn changes_at(events: &[Event], index: usize) -> Vec<Change> {
    let Some(event) = events.get(index) else {
        return Vec::new();
    };
    event
        .kernel
        .iter()
        .filter(|view| is_tcp(view.state))
        .filter_map(|view| {
            let from = events[..index].iter().rev().find_map(|earlier| {
                earlier
                    .kernel
                    .iter()
                    .find(|old| old.endpoint == view.endpoint)
                    .map(|old| old.state)
            });
            let changed = match from {
                None => view.state != SocketState::Closed,
                Some(from) => from != view.state,
            };
            changed.then(|| Change {
                endpoint: view.endpoint.clone(),
                from,
                to: view.state,
            })
        })
        .collect()
}

/// The segment that makes a transition: whether the socket sends it (`true`) or receives it,
/// and the flag that marks it (a SYN-ACK by its SYN); `None` for one a call makes alone.
fn segment_of(from: SocketState, to: SocketState) -> Option<(bool, TcpFlag)> {
    Some(match (from, to) {
        (S::Closed, S::SynSent) => (true, TcpFlag::Syn),
        (S::Listen, S::SynRecv) | (S::SynSent, S::Established) => (false, TcpFlag::Syn),
        (S::SynSent, S::Closed) => (false, TcpFlag::Rst),
        (S::Established | S::SynRecv, S::FinWait1) | (S::CloseWait, S::LastAck) => {
            (true, TcpFlag::Fin)
        }
        (S::Established, S::CloseWait) | (S::FinWait1, S::Closing) | (S::FinWait2, S::TimeWait) => {
            (false, TcpFlag::Fin)
        }
        (S::SynRecv, S::Established)
        | (S::FinWait1, S::FinWait2)
        | (S::Closing, S::TimeWait)
        | (S::LastAck, S::Closed) => (false, TcpFlag::Ack),
        _ => return None,
    })
}

/// The transitions `packets[index]` made, each a change of one step. The kernel reports
/// states at calls only, so a socket's way between the two events around the packet
/// ([`changes_at`] the event after it) is what it went through; each step of that way made by
/// a segment is the first packet's, since the event before, that the socket sent or received
/// with the step's flag (a FIN-ACK coming in may make two). No step is given to a packet
/// without the kernel's two reports around it.
pub fn changes_at_packet(
    events: &[Event],
    packets: &[Packet],
    index: usize,
    endpoints: &Endpoints,
) -> Vec<Change> {
    let Some(packet) = packets.get(index) else {
        return Vec::new();
    };
    let after = events.partition_point(|event| event.t_us <= packet.t_us);
    let since = after.checked_sub(1).map_or(0, |before| events[before].t_us);
    let first = packets.partition_point(|earlier| earlier.t_us <= since);
    let mut made = Vec::new();
    for change in changes_at(events, after) {
        let way = change.steps();
        let mut step = 0;
        for (at, earlier) in packets.iter().enumerate().take(index + 1).skip(first) {
            // The socket that sent it and the one it went to, among those existing at the
            // event after the packet.
            let sent_by = endpoints.at(&earlier.src, &earlier.dst, after);
            let went_to = endpoints.at(&earlier.dst, &earlier.src, after);
            while let Some(&(from, to)) = way.get(step) {
                // A step a call makes alone (listen()) needs no packet.
                if let Some((sends, flag)) = segment_of(from, to) {
                    let ours = if sends { sent_by } else { went_to };
                    if ours != Some(change.endpoint.as_str())
                        || !earlier.tcp.as_ref().is_some_and(|tcp| tcp.has(flag))
                    {
                        break;
                    }
                    if at == index {
                        made.push(Change {
                            endpoint: change.endpoint.clone(),
                            from: Some(from),
                            to,
                        });
                    }
                }
                step += 1;
            }
        }
    }
    made
}

/// Where an edge starts and ends: on the edges of its two boxes, along the line between
/// their centres (or towards the control point of a bent edge).
pub fn edge_ends(transition: &Transition) -> Option<((i32, i32), (i32, i32))> {
    let (from, to) = (node_of(transition.from)?, node_of(transition.to)?);
    let towards = |node: &Node, other: (i32, i32)| {
        let (dx, dy) = (f64::from(other.0 - node.x), f64::from(other.1 - node.y));
        let half = (f64::from(NODE_WIDTH) / 2.0, f64::from(NODE_HEIGHT) / 2.0);
        let scale = match (dx == 0.0, dy == 0.0) {
            (true, true) => 0.0,
            (true, false) => half.1 / dy.abs(),
            (false, true) => half.0 / dx.abs(),
            (false, false) => (half.0 / dx.abs()).min(half.1 / dy.abs()),
        };
        (
            node.x + (dx * scale).round() as i32,
            node.y + (dy * scale).round() as i32,
        )
    };
    let (start_towards, end_towards) = match transition.bend {
        Some(x) => ((x, from.y), (x, to.y)),
        None => ((to.x, to.y), (from.x, from.y)),
    };
    Some((towards(from, start_towards), towards(to, end_towards)))
}

/// A socket marked on the figure: its name, the state its card shows, and the box it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub endpoint: String,
    pub shown: String,
    pub state: SocketState,
}

/// Text for HTML or SVG markup: a socket's name is the program's to choose.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The figure's markup, inside an `<svg>` of `0 0 WIDTH HEIGHT`: the edges (those `lit`
/// drawn so), the boxes (a box with sockets on it `occupied`, with their count, and the one
/// of the call shown `current`), and TIME-WAIT's way out. Made as one string rather than a
/// view per box and edge: the figure is drawn anew each step, and a view each would cost the
/// page's code some kilobytes.
pub fn figure_markup(
    marks: &[Mark],
    focus: Option<SocketState>,
    lit: &[(SocketState, SocketState)],
) -> String {
    use std::fmt::Write;
    let mut svg = String::from(
        "<defs><marker id=\"state-arrow\" markerWidth=\"7\" markerHeight=\"6\" refX=\"6\" refY=\"3\" \
         orient=\"auto\" markerUnits=\"userSpaceOnUse\"><path d=\"M0,0 L7,3 L0,6 z\" \
         class=\"state-arrow-head\"/></marker></defs>",
    );
    for transition in TRANSITIONS.iter().filter(|transition| transition.drawn) {
        let Some(((x1, y1), (x2, y2))) = edge_ends(transition) else {
            continue;
        };
        let path = match transition.bend {
            Some(x) => format!("M{x1},{y1} C{x},{y1} {x},{y2} {x2},{y2}"),
            None => format!("M{x1},{y1} L{x2},{y2}"),
        };
        let class = if lit.contains(&(transition.from, transition.to)) {
            "edge lit"
        } else {
            "edge"
        };
        let _ = write!(
            svg,
            "<path d=\"{path}\" class=\"{class}\" marker-end=\"url(#state-arrow)\"><title>{} → {}: {}</title></path>",
            label(transition.from),
            label(transition.to),
            escape(transition.cause)
        );
    }
    for node in &NODES {
        let on_it: Vec<&str> = marks
            .iter()
            .filter(|mark| mark.state == node.state)
            .map(|mark| mark.endpoint.as_str())
            .collect();
        let mut class = String::from("state");
        if !on_it.is_empty() {
            class.push_str(" occupied");
        }
        if focus == Some(node.state) {
            class.push_str(" current");
        }
        let kernel = if node.label.replace('-', "_") == node.state.name() {
            String::new()
        } else {
            format!(" (the kernel: {})", node.state.name())
        };
        let who = if on_it.is_empty() {
            "no socket".to_owned()
        } else {
            escape(&on_it.join(", "))
        };
        let _ = write!(
            svg,
            "<g class=\"{class}\" data-testid=\"state-node\" data-state=\"{state}\"><title>{label}{kernel}: {who}</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{NODE_WIDTH}\" height=\"{NODE_HEIGHT}\" rx=\"4\"/>\
             <text x=\"{cx}\" y=\"{ty}\" text-anchor=\"middle\">{label}</text>",
            state = node.state.name(),
            label = node.label,
            x = node.x - NODE_WIDTH / 2,
            y = node.y - NODE_HEIGHT / 2,
            cx = node.x,
            ty = node.y + 4,
        );
        if !on_it.is_empty() {
            let _ = write!(
                svg,
                "<text class=\"count\" x=\"{}\" y=\"{}\">{}</text>",
                node.x + NODE_WIDTH / 2 + 3,
                node.y - 2,
                on_it.len()
            );
        }
        svg.push_str("</g>");
    }
    if let Some(node) = node_of(SocketState::TimeWait) {
        let _ = write!(
            svg,
            "<text class=\"note\" x=\"{}\" y=\"{}\" text-anchor=\"middle\"><title>{}</title>→ CLOSED after 60 s</text>",
            node.x,
            node.y + NODE_HEIGHT / 2 + 11,
            escape(TIME_WAIT_ENDS.cause)
        );
    }
    svg
}

/// The line under the figure: the sockets on each state, by the RFC's name, each name
/// carrying what its card shows; then the sockets that are not on the figure, and why.
pub fn marks_markup(marks: &[Mark], others: &[(String, String)]) -> String {
    use std::fmt::Write;
    let mut by_state: Vec<(SocketState, Vec<&Mark>)> = Vec::new();
    for mark in marks {
        match by_state.iter_mut().find(|(state, _)| *state == mark.state) {
            Some((_, on_it)) => on_it.push(mark),
            None => by_state.push((mark.state, vec![mark])),
        }
    }
    let mut html = String::new();
    for (index, (state, on_it)) in by_state.iter().enumerate() {
        if index > 0 {
            html.push_str(" · ");
        }
        let _ = write!(html, "<b>{}</b>: ", label(*state));
        for (index, mark) in on_it.iter().enumerate() {
            if index > 0 {
                html.push_str(", ");
            }
            let _ = write!(
                html,
                "<span data-testid=\"state-mark\" data-endpoint=\"{name}\" data-shown=\"{}\" data-state=\"{}\">{name}</span>",
                escape(&mark.shown),
                mark.state.name(),
                name = escape(&mark.endpoint),
            );
        }
    }
    for (endpoint, what) in others {
        let _ = write!(
            html,
            "<span class=\"not-tcp\" data-testid=\"state-machine-other\" data-endpoint=\"{name}\">{}{name}: {}.</span>",
            if html.is_empty() { "" } else { "<br>" },
            escape(what),
            name = escape(endpoint),
        );
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{Call, SocketView};

    fn view(endpoint: &str, state: SocketState) -> SocketView {
        SocketView {
            endpoint: endpoint.to_owned(),
            state,
            recv_queue: None,
            send_queue: None,
            accept_queue: None,
            backlog: None,
            lingering: false,
            peer_closed: false,
        }
    }

    fn event(views: Vec<SocketView>) -> Event {
        let mut event = Event::enter("client", "client.s", None, Call::Close);
        event.kernel = views;
        event
    }

    #[test]
    fn every_tcp_state_has_a_box_inside_the_figure_and_the_others_none() {
        for state in SocketState::ALL {
            match node_of(state) {
                Some(node) => {
                    assert!(node.x - NODE_WIDTH / 2 >= 0 && node.x + NODE_WIDTH / 2 <= WIDTH);
                    assert!(node.y - NODE_HEIGHT / 2 >= 0 && node.y + NODE_HEIGHT / 2 <= HEIGHT);
                }
                None => assert!(
                    matches!(state, SocketState::Unconnected | SocketState::Connected),
                    "{state:?}"
                ),
            }
        }
        // No two boxes overlap.
        for (index, a) in NODES.iter().enumerate() {
            for b in &NODES[index + 1..] {
                assert!(
                    (a.x - b.x).abs() >= NODE_WIDTH || (a.y - b.y).abs() >= NODE_HEIGHT,
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn the_markup_marks_each_socket_and_escapes_its_name() {
        let marks = [
            Mark {
                endpoint: "server.s".into(),
                shown: "LISTEN".into(),
                state: SocketState::Listen,
            },
            Mark {
                endpoint: "<b>evil</b>".into(),
                shown: "created".into(),
                state: SocketState::Closed,
            },
        ];
        let svg = figure_markup(
            &marks,
            Some(SocketState::Listen),
            &[(SocketState::Closed, SocketState::Listen)],
        );
        assert!(svg.contains("<g class=\"state occupied current\" data-testid=\"state-node\" data-state=\"LISTEN\">"), "{svg}");
        assert!(svg.contains(
            "<g class=\"state occupied\" data-testid=\"state-node\" data-state=\"CLOSED\">"
        ));
        assert!(
            svg.contains("<g class=\"state\" data-testid=\"state-node\" data-state=\"TIME_WAIT\">")
        );
        assert_eq!(svg.matches("class=\"edge lit\"").count(), 1);
        assert!(!svg.contains("<b>evil"), "{svg}");
        let line = marks_markup(&marks, &[("u".into(), "a UDP socket".into())]);
        assert!(
            line.contains("data-endpoint=\"server.s\" data-shown=\"LISTEN\" data-state=\"LISTEN\""),
            "{line}"
        );
        assert!(
            line.contains("&lt;b&gt;evil&lt;/b&gt;") && !line.contains("<b>evil"),
            "{line}"
        );
        assert!(
            line.contains("data-testid=\"state-machine-other\" data-endpoint=\"u\""),
            "{line}"
        );
    }

    #[test]
    fn every_edge_ends_on_its_boxes_edges() {
        for transition in TRANSITIONS.iter().filter(|transition| transition.drawn) {
            let (start, end) = edge_ends(transition).unwrap();
            for (point, node) in [
                (start, node_of(transition.from).unwrap()),
                (end, node_of(transition.to).unwrap()),
            ] {
                let on_side = (point.0 - node.x).abs() == NODE_WIDTH / 2
                    || (point.1 - node.y).abs() == NODE_HEIGHT / 2;
                assert!(
                    on_side,
                    "{transition:?}: {point:?} is not on {node:?}'s edge"
                );
            }
        }
    }

    #[test]
    fn a_change_is_read_from_the_kernels_views_before_and_at_the_event() {
        let events = vec![
            event(vec![view("client.s", SocketState::Closed)]),
            event(vec![
                view("client.s", SocketState::Established),
                view("server.s", SocketState::Listen),
            ]),
            // Another endpoint's event, with no view of client.s.
            event(vec![view("server.s", SocketState::Listen)]),
            event(vec![
                view("client.s", SocketState::FinWait1),
                view("server.s", SocketState::Listen),
                view("server.con", SocketState::CloseWait),
            ]),
        ];
        // A new socket is CLOSED: no change.
        assert_eq!(changes_at(&events, 0), []);
        let at_connect = changes_at(&events, 1);
        assert_eq!(
            at_connect,
            [
                Change {
                    endpoint: "client.s".into(),
                    from: Some(SocketState::Closed),
                    to: SocketState::Established
                },
                Change {
                    endpoint: "server.s".into(),
                    from: None,
                    to: SocketState::Listen
                }
            ]
        );
        assert_eq!(changes_at(&events, 2), []);
        let at_close = changes_at(&events, 3);
        assert_eq!(at_close.len(), 2, "{at_close:?}");
        assert_eq!(
            at_close[0].text("close()"),
            "client.s: ESTABLISHED → FIN-WAIT-1 at close(): close() or shutdown(SHUT_WR): the kernel sends FIN"
        );
        assert!(
            at_close[1]
                .text("close()")
                .starts_with("server.con: CLOSE-WAIT, as the kernel first shows it"),
            "{}",
            at_close[1].text("close()")
        );
        // A step the figure leaves out is named as such rather than given a cause.
        let skipped = Change {
            endpoint: "s".into(),
            from: Some(SocketState::TimeWait),
            to: SocketState::Listen,
        };
        assert!(
            skipped.text("close()").contains("leaves out"),
            "{}",
            skipped.text("close()")
        );
        // Between two views a socket may pass a state no view caught: the way is named whole.
        let connected = Change {
            endpoint: "client.s".into(),
            from: Some(SocketState::Closed),
            to: SocketState::Established,
        };
        assert_eq!(
            connected.steps(),
            [
                (SocketState::Closed, SocketState::SynSent),
                (SocketState::SynSent, SocketState::Established)
            ]
        );
        assert!(
            connected.text("connect()").starts_with(
                "client.s: CLOSED → SYN-SENT → ESTABLISHED at connect(): connect(): an active open"
            ),
            "{}",
            connected.text("connect()")
        );
        assert!(changes_at(&events, 9).is_empty());
    }
}
