//! The Leptos view and the WebSocket link (browser only).

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use shared::describe::{call_text, explain, outcome_text};
use shared::{ClientMessage, Phase, ServerMessage};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::diagram::{HEADER_HEIGHT, ROW_HEIGHT, layout};
use crate::model::{Link, Model, role_colour};

/// The scenario a `?scenario=` link names, and whether `&play=1` asks to play it at once.
fn deep_link() -> (Option<String>, bool) {
    let search = window().location().search().unwrap_or_default();
    let Ok(params) = web_sys::UrlSearchParams::new_with_str(&search) else {
        return (None, false);
    };
    let play = params
        .get("play")
        .is_some_and(|value| value == "1" || value == "true");
    (params.get("scenario"), play)
}

/// The WebSocket to the backend, reconnecting with backoff when it is lost.
struct Connection {
    socket: RefCell<Option<WebSocket>>,
    model: RwSignal<Model>,
    /// A play that waits for the link (from a deep link, or a click while reconnecting).
    pending_play: RefCell<Option<String>>,
    retries: RefCell<u32>,
}

impl Connection {
    fn open(self: &Rc<Self>) {
        let location = window().location();
        let scheme = if location.protocol().ok().as_deref() == Some("https:") {
            "wss"
        } else {
            "ws"
        };
        let url = format!("{scheme}://{}/ws", location.host().unwrap_or_default());
        let Ok(socket) = WebSocket::new(&url) else {
            self.schedule_reconnect();
            return;
        };
        let this = Rc::clone(self);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            match serde_json::from_str::<ServerMessage>(&text) {
                Ok(message) => {
                    let hello = matches!(message, ServerMessage::Hello { .. });
                    this.model.update(|model| model.apply(message));
                    if hello {
                        *this.retries.borrow_mut() = 0;
                        let pending = if this.model.with_untracked(|m| m.link == Link::Connected) {
                            this.pending_play.borrow_mut().take()
                        } else {
                            None
                        };
                        if let Some(scenario) = pending {
                            this.send(&ClientMessage::Play { scenario });
                        }
                    }
                }
                Err(error) => this.model.update(|model| {
                    model.error = Some(format!(
                        "the backend sent a message this page cannot read: {error}"
                    ));
                }),
            }
        });
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        let this = Rc::clone(self);
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_event: CloseEvent| {
            this.socket.borrow_mut().take();
            this.model.update(Model::lose_link);
            this.schedule_reconnect();
        });
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        on_close.forget();
        *self.socket.borrow_mut() = Some(socket);
    }

    fn schedule_reconnect(self: &Rc<Self>) {
        let attempt = {
            let mut retries = self.retries.borrow_mut();
            *retries += 1;
            *retries
        };
        // 0.5 s, 1 s, 2 s, 4 s, then every 5 s.
        let delay = (250u64 << attempt.min(5)).min(5_000);
        let this = Rc::clone(self);
        set_timeout(move || this.open(), std::time::Duration::from_millis(delay));
    }

    fn send(&self, message: &ClientMessage) {
        let Ok(json) = serde_json::to_string(message) else {
            return;
        };
        if let Some(socket) = self.socket.borrow().as_ref() {
            let _ = socket.send_with_str(&json);
        }
    }

    fn play(&self, scenario: String) {
        if self.model.with_untracked(|m| m.link == Link::Connected) {
            self.send(&ClientMessage::Play { scenario });
        } else {
            *self.pending_play.borrow_mut() = Some(scenario);
        }
    }
}

/// Mounts the app on the page's body.
pub fn mount() {
    console_error_panic_hook::set_once();
    mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let model = RwSignal::new(Model::default());
    let (linked_scenario, autoplay) = deep_link();
    let selected = RwSignal::new(
        linked_scenario
            .clone()
            .unwrap_or_else(|| "simple-server-client".to_owned()),
    );
    let connection = Rc::new(Connection {
        socket: RefCell::new(None),
        model,
        pending_play: RefCell::new(if autoplay { linked_scenario } else { None }),
        retries: RefCell::new(0),
    });
    connection.open();
    let play = {
        let connection = Rc::clone(&connection);
        move |_| connection.play(selected.get_untracked())
    };

    let link_text = move || match model.with(|m| m.link.clone()) {
        Link::Connecting => "connecting…".to_owned(),
        Link::Connected => "connected".to_owned(),
        Link::Lost => "backend lost: reconnecting…".to_owned(),
        Link::WrongVersion { server } => format!(
            "this page speaks protocol {} but the backend speaks {server}: reload the page, or rebuild the frontend",
            shared::PROTOCOL_VERSION
        ),
    };
    let link_class = move || match model.with(|m| m.link.clone()) {
        Link::Connected => "link ok",
        Link::Connecting => "link wait",
        _ => "link bad",
    };

    view! {
        <header>
            <h1>"Socket Lab"</h1>
            <span class=link_class data-testid="connection-status">{link_text}</span>
            <label>
                "Scenario "
                <select data-testid="scenario-select"
                    prop:value=move || selected.get()
                    on:change=move |ev| selected.set(event_target_value(&ev))>
                    // Each option says whether it is the chosen one: the list arrives after the
                    // select's value was set (from a deep link), which would otherwise be lost.
                    {move || model.with(|m| m.scenarios.iter().map(|s| {
                        let id = s.id.clone();
                        view! {
                            <option value=s.id.clone()
                                selected=move || selected.with(|chosen| *chosen == id)>
                                {s.title.clone()}
                            </option>
                        }
                    }).collect_view())}
                </select>
            </label>
            <button data-testid="play" on:click=play
                disabled=move || model.with(|m| m.link != Link::Connected)>"▶ Play"</button>
        </header>
        <Show when=move || model.with(|m| m.error.is_some())>
            <p class="error" data-testid="error">{move || model.with(|m| m.error.clone().unwrap_or_default())}</p>
        </Show>
        <main>{move || match model.with(|m| m.run.clone()) {
            None => view! {
                <p class="intro">"Pick a scenario and press Play: the backend performs every socket call on the kernel's real sockets, and this page draws each one as it enters and returns."</p>
            }.into_any(),
            Some(run) => view! { <RunPanel run=run/> }.into_any(),
        }}</main>
    }
}

#[component]
fn RunPanel(run: crate::model::RunView) -> impl IntoView {
    let status = match &run.outcome {
        None => "running…".to_owned(),
        Some(shared::RunOutcome::Completed) => "finished".to_owned(),
        Some(shared::RunOutcome::Cancelled { reason }) => format!("stopped: {reason}"),
        Some(shared::RunOutcome::Failed { message }) => format!("failed: {message}"),
    };
    let diagram = layout(&run);
    let endpoints = run.endpoints.clone();
    let events = run.events.clone();
    view! {
        <section class="summary">
            <h2>{run.scenario.title.clone()} <small data-testid="run-status">{status}</small></h2>
            <p>{run.scenario.summary.clone()}</p>
        </section>
        <section class="endpoints">
            {endpoints.into_iter().map(|e| {
                let testid = format!("endpoint-{}", e.id);
                let address = e.local.as_ref().map_or_else(|| "no address yet".to_owned(), |a| a.to_string());
                let peer = e.peer.as_ref().map(|a| a.to_string());
                let (state, state_title) = match &e.kernel {
                    Some(kernel) if kernel.lingering => (kernel.state.name().to_owned(), "closed by the program; the kernel still keeps the connection"),
                    Some(kernel) => (kernel.state.name().to_owned(), "as the kernel reports it"),
                    None => (e.state.label().to_owned(), "from the calls so far"),
                };
                let queues = e.kernel.as_ref().map(queue_rows).unwrap_or_default();
                view! {
                    <div class=format!("card role-{}", role_colour(&e.role)) data-testid=testid>
                        <h3>{e.id.clone()} <span class="state" title=state_title data-testid="state">{state}</span></h3>
                        <dl>
                            <dt>"fd"</dt><dd>{e.fd.map_or_else(|| "-".to_owned(), |fd| fd.to_string())}</dd>
                            <dt>"local"</dt><dd>{address}</dd>
                            <dt>"peer"</dt><dd>{peer.unwrap_or_else(|| "-".to_owned())}</dd>
                            {queues.into_iter().map(|(name, value)| view! { <dt>{name}</dt><dd>{value}</dd> }).collect_view()}
                        </dl>
                        {e.waiting.map(|call| view! { <p class="waiting">"⏳ waiting in " {call}</p> })}
                        {e.last_received.map(|data| view! { <p class="received">"received " <code>{data.to_string()}</code></p> })}
                        {e.last_error.map(|error| view! { <p class="error">{error}</p> })}
                    </div>
                }
            }).collect_view()}
        </section>
        <section class="diagram">
            <svg data-testid="diagram" width=diagram.width height=diagram.height
                viewBox=format!("0 0 {} {}", diagram.width, diagram.height)>
                <defs>
                    <marker id="arrowhead" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">
                        <path d="M0,0 L10,4 L0,8 z" class="arrowhead"/>
                    </marker>
                </defs>
                {diagram.lanes.iter().map(|lane| view! {
                    <text x=lane.x y=HEADER_HEIGHT / 2.0 class="lane-title" text-anchor="middle">{lane.endpoint.clone()}</text>
                    <line x1=lane.x y1=HEADER_HEIGHT - 8.0 x2=lane.x y2=diagram.height class="lifeline"/>
                }).collect_view()}
                {diagram.bars.iter().map(|bar| {
                    let height = bar.bottom - bar.top + ROW_HEIGHT - 6.0;
                    let class = if bar.failed { "bar failed".to_owned() } else if bar.waiting { "bar waiting".to_owned() } else { format!("bar role-{}", role_colour(&bar.role)) };
                    view! {
                        <rect x=bar.x - 6.0 y=bar.top - ROW_HEIGHT / 2.0 + 3.0 width="12"
                            height=height class=class rx="3"/>
                        <text x=bar.x + 10.0 y=bar.top + 4.0 class="bar-label">{bar.label.clone()}</text>
                    }
                }).collect_view()}
                {diagram.arrows.iter().map(|arrow| view! {
                    <line x1=arrow.from.0 y1=arrow.from.1 x2=arrow.to.0 y2=arrow.to.1 class="message" marker-end="url(#arrowhead)"/>
                    <text x=(arrow.from.0 + arrow.to.0) / 2.0 y=(arrow.from.1 + arrow.to.1) / 2.0 - 6.0
                        class="message-label" text-anchor="middle">{arrow.label.clone()}</text>
                }).collect_view()}
            </svg>
        </section>
        <section class="log">
            <h2>"Events"</h2>
            <table data-testid="event-log">
                <thead><tr><th>"seq"</th><th>"ms"</th><th>"endpoint"</th><th>"phase"</th><th>"call"</th><th>"result"</th><th>"what it means"</th></tr></thead>
                <tbody>
                    {events.into_iter().map(|event| {
                        let result = if event.phase == Phase::Return { outcome_text(&event) } else { String::new() };
                        let class = if event.error.is_some() { "failed" } else { "" };
                        view! {
                            <tr class=class>
                                <td>{event.seq}</td>
                                <td>{format!("{:.3}", event.t_us as f64 / 1000.0)}</td>
                                <td>{event.endpoint.clone()}</td>
                                <td>{if event.phase == Phase::Enter { "enter" } else { "return" }}</td>
                                <td><code>{call_text(&event.call)}</code></td>
                                <td><code>{result}</code></td>
                                <td>{explain(&event)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// The kernel's queue figures for a card, as label and value.
fn queue_rows(kernel: &shared::SocketView) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    if let (Some(queued), Some(backlog)) = (kernel.accept_queue, kernel.backlog) {
        rows.push(("accept queue", format!("{queued} of {backlog}")));
    }
    if let Some(bytes) = kernel.recv_queue {
        rows.push(("recv queue", format!("{bytes} B")));
    }
    if let Some(bytes) = kernel.send_queue {
        rows.push(("send queue", format!("{bytes} B")));
    }
    rows
}
