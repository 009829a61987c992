//! A card per socket: its descriptor, its addresses and the kernel's view of it (state and
//! queues) at the step shown, the call it waits in, what it last received, its last error.

use std::cell::RefCell;

use leptos::prelude::*;

use crate::model::{EndpointView, Model, RunView, role_colour};
use crate::perf;
use crate::view::Panel;

thread_local! {
    /// The run as it stood at the event last stepped to, kept for the next step: stepping or
    /// replaying forwards adds the events since, not every event from the first. (The page
    /// has one run panel; a view's closures must be `Send`, so it cannot hold this itself.)
    static PAST_VIEW: RefCell<Option<RunView>> = const { RefCell::new(None) };
}

/// A socket as it stood at the step shown.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ShownSocket {
    pub(crate) view: EndpointView,
    /// The call it waits in, as Python writes it.
    pub(crate) waiting: Option<String>,
    /// Its queues over the run so far, as the chart's markup (none while they stayed empty).
    pub(crate) chart: Option<String>,
}

/// The sockets as they stood at the step shown, each with the call it waits in: what the
/// cards and the state diagram show. Stepping or replaying forwards adds the events since
/// the last step to the view kept from it, rather than every event from the first.
pub(crate) fn shown_sockets(model: RwSignal<Model>) -> Memo<Vec<ShownSocket>> {
    Memo::new(move |_| {
        let _span = perf::span("cards");
        model.with(|m| {
            let Some(run) = m.run.as_ref() else {
                return Vec::new();
            };
            // The charts come from the whole run's history, up to the step shown.
            let upto = run.selected().unwrap_or(0);
            let sockets = |shown: &RunView| {
                shown
                    .endpoints
                    .iter()
                    .map(|e| ShownSocket {
                        view: e.clone(),
                        waiting: shown.waiting_call(e),
                        chart: crate::queue_chart::markup(run.queue_samples(&e.id, upto), upto),
                    })
                    .collect::<Vec<_>>()
            };
            if run.cursor.is_some() && !run.at_end() {
                let earlier = PAST_VIEW.with_borrow_mut(Option::take);
                let past = run.as_selected_from(earlier);
                let shown = sockets(&past);
                PAST_VIEW.set(Some(past));
                shown
            } else {
                sockets(run)
            }
        })
    })
}

/// The sockets' cards, as they stood at the step shown.
pub(crate) fn sockets(panel: Panel) -> impl IntoView {
    let cards = move || {
        panel.sockets.with(|sockets| {
            sockets
                .iter()
                .map(|socket| endpoint_card(socket.clone()))
                .collect::<Vec<_>>()
        })
    };
    view! {
        <div class="endpoints" role="region" aria-label="The sockets, as the kernel reports them" tabindex="0">{cards}</div>
    }
}

/// The state a card shows, and what it means: the kernel's, or while the kernel has no view
/// of the socket, what its calls make it.
pub(crate) fn card_state(e: &EndpointView) -> (String, &'static str) {
    match &e.kernel {
        // The kernel keeps a connection after a close, and also after its FIN exchange
        // while the program still holds the socket (TIME_WAIT): the words follow the calls.
        Some(kernel) if kernel.lingering => (
            kernel.state.name().to_owned(),
            if e.state == crate::model::EndpointState::Closed {
                "closed by the program; the kernel still keeps the connection"
            } else {
                "the connection has ended, though the program still holds the socket; the kernel keeps the connection"
            },
        ),
        // A Unix stream socket stays connected when its peer closes; TCP would say CLOSE_WAIT.
        Some(kernel) if kernel.peer_closed => (
            format!("{} · peer closed", kernel.state.name()),
            "as the kernel reports it: still connected, and the peer will send nothing more (it closed, or shut down its sending side); recv() returns b'' once the queue is read",
        ),
        Some(kernel) => (
            kernel.state.name().to_owned(),
            "as the kernel reports it at each call (at a packet, its report at the call before; the TCP states say what the packet changed)",
        ),
        None => (
            e.state.label().to_owned(),
            if e.state == crate::model::EndpointState::Closed {
                "the kernel no longer has the socket"
            } else {
                "from the calls so far"
            },
        ),
    }
}

/// How many of the bytes an endpoint last received its card shows: a card is a few hundred
/// pixels wide, and a student's program may send a megabyte at once (the log and the diagram
/// show the call, the trace file has every byte).
const CARD_RECEIVED_BYTES: usize = 32;

/// An endpoint's card: its fd, addresses and the kernel's view of it; `waiting` is the call
/// it waits in, as Python writes it.
fn endpoint_card(socket: ShownSocket) -> impl IntoView {
    let ShownSocket {
        view: e,
        waiting,
        chart,
    } = socket;
    let testid = format!("endpoint-{}", e.id);
    let address = e
        .local
        .as_ref()
        .map_or_else(|| "no address yet".to_owned(), |a| a.to_string());
    let peer = e.peer.as_ref().map(|a| a.to_string());
    let (state, state_title) = card_state(&e);
    let queues = e.queue_rows();
    let fd = e.fd.map(|fd| format!("fd {fd}"));
    let role = format!("card role-{}", role_colour(&e.role));
    // One line for the addresses and one for the kernel's queues: a card stays a few lines
    // tall, so that a run's sockets fit in one screen's column beside the diagram.
    view! {
        <div class=role data-testid="socket-card" data-endpoint=e.id.clone()>
            <div data-testid=testid>
                <h3>{e.id.clone()} {fd.map(|fd| view! { <span class="fd" title="its file descriptor, as the kernel gave it">{fd}</span> })}
                    <span class="state" title=state_title data-testid="state">{state}</span></h3>
                <p class="addresses"><span title="its local address">{address}</span>
                    {peer.map(|peer| view! { " → " <span title="its peer's address">{peer}</span> })}</p>
                // The queues' figures now, and beside them their chart over the run.
                {(!queues.is_empty() || chart.is_some()).then(|| view! {
                    <div class="queues-row">
                        <p class="queues">{queues.into_iter().enumerate().map(|(index, (name, value))| view! {
                            {(index > 0).then_some(" · ")}
                            <span title=crate::model::queue_meaning(name)>{name}" "<b>{value}</b></span>
                        }).collect_view()}</p>
                        {chart.map(|chart| view! {
                            <svg class="queue-chart" data-testid="queue-chart" viewBox=format!("0 0 {} {}", crate::queue_chart::WIDTH, crate::queue_chart::HEIGHT)
                                preserveAspectRatio="none" role="img" aria-label="its queues over the run" inner_html=chart></svg>
                        })}
                    </div>
                })}
                {waiting.map(|call| view! { <p class="waiting">"called, no answer yet: " <code>{call}</code></p> })}
                {e.last_received.map(|data| view! { <p class="received">"received " <code>{data.preview(CARD_RECEIVED_BYTES)}</code></p> })}
                {e.last_error.map(|error| view! { <p class="error">{error}</p> })}
            </div>
        </div>
    }
}
