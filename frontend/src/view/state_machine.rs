//! The TCP state diagram beside the run: RFC 9293's states and transitions
//! (`crate::state_machine`), each TCP socket's state, as its card shows it, marked on its box,
//! and the transitions taken at the step shown lit and explained. Sockets that are not TCP
//! are named below it, with what their cards show instead.

use leptos::prelude::*;
use shared::describe::call_text;
use shared::{Family, SockType, SocketState};

use crate::state_machine::{self as figure, Change, HEIGHT, Mark, WIDTH};
use crate::view::Panel;
use crate::view::sockets::{ShownSocket, card_state};

/// Where each socket stands: TCP sockets on a box, the others apart with their kind.
fn marks(sockets: &[ShownSocket]) -> (Vec<Mark>, Vec<(String, String)>) {
    let mut tcp = Vec::new();
    let mut others = Vec::new();
    for socket in sockets.iter().map(|shown| &shown.view) {
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
    // Closures, not memos: each is read once or twice a step, and a memo of each type would
    // cost the page's code more than the work it saves.
    let placed = move || sockets.with(|sockets| marks(sockets));
    // The transitions taken at the step shown: at an event, those its kernel views show and
    // the call made there; at a packet, those the packet made.
    let step = move || {
        let selected = panel.selected();
        let packet = panel.packet_step.get().0;
        model.with(|m| {
            let run = m.run.as_ref()?;
            if let Some(packet) = packet {
                let endpoints = shared::cause::Endpoints::of(&run.events);
                let changes =
                    figure::changes_at_packet(&run.events, &run.packets, packet, &endpoints);
                let endpoint = changes.first().map(|change| change.endpoint.clone());
                return Some((
                    endpoint.unwrap_or_default(),
                    "this packet".to_owned(),
                    changes,
                ));
            }
            let index = selected?;
            let event = run.events.get(index)?;
            let changes = figure::changes_at(&run.events, index);
            Some((event.endpoint.clone(), call_text(&event.call), changes))
        })
    };
    let figure_now = move || {
        let (tcp, _) = placed();
        let step = step();
        let focus = step.as_ref().and_then(|(endpoint, ..)| {
            tcp.iter()
                .find(|mark| mark.endpoint == *endpoint)
                .map(|mark| mark.state)
        });
        let lit: Vec<(SocketState, SocketState)> = step
            .as_ref()
            .map(|(_, _, changes)| changes.iter().flat_map(Change::steps).collect())
            .unwrap_or_default();
        figure::figure_markup(&tcp, focus, &lit)
    };
    let marks_line = move || {
        let (tcp, others) = placed();
        figure::marks_markup(&tcp, &others)
    };
    let change_text = move || match step() {
        None => "Each socket's state is marked here as the kernel reports it.".to_owned(),
        Some((_, _, changes)) if changes.is_empty() => {
            "No socket changed state at this step.".to_owned()
        }
        Some((_, call, changes)) => changes
            .iter()
            .map(|change: &Change| change.text(&call))
            .collect::<Vec<_>>()
            .join(". "),
    };
    view! {
        <section class="state-machine" data-testid="state-machine" aria-label="The TCP states of RFC 9293, with each socket's">
            <h3>"TCP states " <small>"(RFC 9293)"</small></h3>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label="The TCP state diagram"
                inner_html=figure_now></svg>
            <p class="state-change" data-testid="state-change">{change_text}</p>
            <p class="marks" inner_html=marks_line></p>
        </section>
    }
}
