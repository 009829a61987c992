//! The TCP state diagram beside the run: RFC 9293's states and transitions
//! (`crate::state_machine`), each TCP socket's state, as its card shows it, marked on its box,
//! and the transitions taken at the step shown lit and explained. Sockets that are not TCP
//! are named below it, with what their cards show instead.

use leptos::prelude::*;
use shared::describe::call_text;
use shared::{Family, SockType, SocketState};

use crate::model::EndpointView;
use crate::state_machine::{
    self as figure, Change, HEIGHT, NODE_HEIGHT, NODE_WIDTH, NODES, TIME_WAIT_ENDS, TRANSITIONS,
    WIDTH,
};
use crate::view::Panel;
use crate::view::sockets::card_state;

/// A socket's mark on the diagram.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mark {
    endpoint: String,
    /// The state its card shows, word for word.
    shown: String,
    /// The box it is marked on.
    state: SocketState,
}

/// Where each socket stands: TCP sockets on a box, the others apart with their kind.
fn marks(sockets: &[(EndpointView, Option<String>)]) -> (Vec<Mark>, Vec<(String, String)>) {
    let mut tcp = Vec::new();
    let mut others = Vec::new();
    for (socket, _) in sockets {
        let kernel_state = socket.kernel.as_ref().map(|kernel| kernel.state);
        let is_tcp = match socket.kind {
            Some((Family::Inet | Family::Inet6, SockType::Stream)) => true,
            Some(_) => false,
            // Before socket() has returned, the socket is no kind yet.
            None if kernel_state.is_none() => {
                others.push((
                    socket.id.clone(),
                    "not made yet: socket() has not returned".to_owned(),
                ));
                continue;
            }
            None => kernel_state.is_some_and(figure::is_tcp),
        };
        if is_tcp {
            // A socket the kernel has no view of (new, bound, or gone) is CLOSED in TCP's
            // terms: it has no connection.
            tcp.push(Mark {
                endpoint: socket.id.clone(),
                shown: card_state(socket).0,
                state: kernel_state
                    .filter(|state| figure::is_tcp(*state))
                    .unwrap_or(SocketState::Closed),
            });
        } else {
            let kind = match socket.kind {
                Some((Family::Unix, SockType::Stream)) => "a Unix stream socket",
                Some((Family::Unix, SockType::Dgram)) => "a Unix datagram socket",
                _ => "a UDP socket",
            };
            others.push((
                socket.id.clone(),
                format!("{kind}, which has no TCP states (no handshake, no FIN): its card shows whether it has a peer"),
            ));
        }
    }
    (tcp, others)
}

/// The state diagram's panel.
pub(crate) fn state_machine(panel: Panel) -> impl IntoView {
    let Panel { model, sockets, .. } = panel;
    let placed = Memo::new(move |_| sockets.with(|sockets| marks(sockets)));
    // The transitions taken at the event shown, and the call that was made there.
    let step = Memo::new(move |_| {
        let selected = panel.selected();
        model.with(|m| {
            let run = m.run.as_ref()?;
            let index = selected?;
            let event = run.events.get(index)?;
            let changes = figure::changes_at(&run.events, index);
            Some((event.endpoint.clone(), call_text(&event.call), changes))
        })
    });
    let lit = move |from: SocketState, to: SocketState| {
        step.with(|step| {
            step.as_ref().is_some_and(|(_, _, changes)| {
                changes
                    .iter()
                    .any(|change| change.steps().contains(&(from, to)))
            })
        })
    };
    let focus = move || {
        step.with(|step| {
            let endpoint = step.as_ref().map(|(endpoint, ..)| endpoint.clone())?;
            placed.with(|(tcp, _)| {
                tcp.iter()
                    .find(|mark| mark.endpoint == endpoint)
                    .map(|mark| mark.state)
            })
        })
    };
    let edges = TRANSITIONS
        .iter()
        .filter(|transition| transition.drawn)
        .filter_map(|transition| {
            let ((x1, y1), (x2, y2)) = figure::edge_ends(transition)?;
            let path = match transition.bend {
                Some(x) => format!("M{x1},{y1} C{x},{y1} {x},{y2} {x2},{y2}"),
                None => format!("M{x1},{y1} L{x2},{y2}"),
            };
            let (from, to) = (transition.from, transition.to);
            Some(view! {
                <path d=path class=move || if lit(from, to) { "edge lit" } else { "edge" } marker-end="url(#state-arrow)">
                    <title>{format!("{} → {}: {}", figure::label(from), figure::label(to), transition.cause)}</title>
                </path>
            })
        })
        .collect_view();
    let nodes = NODES
        .iter()
        .map(|node| {
            let state = node.state;
            let count = move || placed.with(|(tcp, _)| tcp.iter().filter(|mark| mark.state == state).count());
            let names = move || {
                placed.with(|(tcp, _)| {
                    tcp.iter()
                        .filter(|mark| mark.state == state)
                        .map(|mark| mark.endpoint.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
            };
            let kernel_name = (node.label.replace('-', "_") != state.name())
                .then(|| format!(" (the kernel: {})", state.name()));
            view! {
                <g class=move || {
                        let mut class = String::from("state");
                        if count() > 0 { class.push_str(" occupied"); }
                        if focus() == Some(state) { class.push_str(" current"); }
                        class
                    }
                    data-testid="state-node" data-state=state.name()>
                    <title>{move || format!("{}{}: {}", node.label, kernel_name.clone().unwrap_or_default(), if count() == 0 { "no socket".to_owned() } else { names() })}</title>
                    <rect x=node.x - NODE_WIDTH / 2 y=node.y - NODE_HEIGHT / 2 width=NODE_WIDTH height=NODE_HEIGHT rx="4"/>
                    <text x=node.x y=node.y + 4 text-anchor="middle">{node.label}</text>
                    {move || (count() > 0).then(|| view! {
                        <text class="count" x=node.x + NODE_WIDTH / 2 + 3 y=node.y - 2>{count()}</text>
                    })}
                </g>
            }
        })
        .collect_view();
    let marks_line = move || {
        placed.with(|(tcp, others)| {
            let mut by_state: Vec<(SocketState, Vec<&Mark>)> = Vec::new();
            for mark in tcp {
                match by_state.iter_mut().find(|(state, _)| *state == mark.state) {
                    Some((_, marks)) => marks.push(mark),
                    None => by_state.push((mark.state, vec![mark])),
                }
            }
            let tcp_marks = by_state
                .into_iter()
                .map(|(state, marks)| {
                    view! {
                        <span class="marks-of-state"><b>{figure::label(state)}</b>": "
                            {marks.into_iter().enumerate().map(|(index, mark)| view! {
                                {(index > 0).then_some(", ")}
                                <span data-testid="state-mark" data-endpoint=mark.endpoint.clone()
                                    data-shown=mark.shown.clone() data-state=mark.state.name()>{mark.endpoint.clone()}</span>
                            }).collect_view()}
                        </span>
                    }
                })
                .collect_view();
            let other_text = (!others.is_empty()).then(|| {
                view! {
                    <p class="not-tcp">{others.iter().map(|(endpoint, what)| view! {
                        <span data-testid="state-machine-other" data-endpoint=endpoint.clone()>{format!("{endpoint}: {what}. ")}</span>
                    }).collect_view()}</p>
                }
            });
            view! { <p class="marks">{tcp_marks}</p> {other_text} }
        })
    };
    let change_text = move || {
        step.with(|step| match step {
            None => "Each socket's state is marked here as the kernel reports it.".to_owned(),
            Some((_, _, changes)) if changes.is_empty() => {
                "No socket changed state at this step.".to_owned()
            }
            Some((_, call, changes)) => changes
                .iter()
                .map(|change: &Change| change.text(call))
                .collect::<Vec<_>>()
                .join(". "),
        })
    };
    view! {
        <section class="state-machine" data-testid="state-machine" aria-label="The TCP states of RFC 9293, with each socket's">
            <h3>"TCP states " <small>"(RFC 9293)"</small></h3>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label="The TCP state diagram">
                <defs>
                    <marker id="state-arrow" markerWidth="7" markerHeight="6" refX="6" refY="3" orient="auto" markerUnits="userSpaceOnUse">
                        <path d="M0,0 L7,3 L0,6 z" class="state-arrow-head"/>
                    </marker>
                </defs>
                {edges}
                {nodes}
                {figure::node_of(SocketState::TimeWait).map(|node| view! {
                    <text class="note" x=node.x y=node.y + NODE_HEIGHT / 2 + 11 text-anchor="middle">
                        <title>{TIME_WAIT_ENDS.cause}</title>"→ CLOSED after 60 s"
                    </text>
                })}
            </svg>
            <p class="state-change" data-testid="state-change">{change_text}</p>
            {marks_line}
        </section>
    }
}
