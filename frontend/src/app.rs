//! The page's frame (the header's choices, the deep link, the keys) and the WebSocket link
//! (browser only). The run panel's components are `crate::view`'s.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use shared::{ClientMessage, OutsideRole, ServerMessage, TraceFile};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::inbox::Inbox;
use crate::model::{Link, Model, RunView};
use crate::perf;
use crate::view::run_panel;

/// What a link asks for: `?scenario=<id>` picks a scenario, `&play=1` plays it at once,
/// `&pause=1` pauses before each call, `&outside=client&port=<p>` leaves a role to the
/// student's own program on 127.0.0.1:p (an instructor's link for a lab exercise), and
/// `&step=<n>` shows event `n` once the run has ended. `&perf=1` makes the page time how long
/// it takes to show what arrives (see [`perf`]).
#[derive(Debug, Default)]
struct DeepLink {
    scenario: Option<String>,
    play: bool,
    pause: bool,
    outside: Option<OutsideRole>,
    step: Option<usize>,
    perf: bool,
    /// `?watch`: show the programs `socket-lab watch` runs (the address it prints).
    watch: bool,
}

fn deep_link() -> DeepLink {
    let search = window().location().search().unwrap_or_default();
    let Ok(params) = web_sys::UrlSearchParams::new_with_str(&search) else {
        return DeepLink::default();
    };
    let flag = |name: &str| {
        params
            .get(name)
            .is_some_and(|value| value == "1" || value == "true")
    };
    DeepLink {
        scenario: params.get("scenario"),
        play: flag("play"),
        pause: flag("pause"),
        // A port that is not a number leaves the role to Socket Lab; the server checks the
        // rest (the role's name, a port it may not use) and says what is wrong.
        outside: params.get("outside").and_then(|role| {
            Some(OutsideRole {
                role,
                port: params.get("port")?.parse().ok()?,
                timeout_secs: None,
            })
        }),
        step: params.get("step").and_then(|step| step.parse().ok()),
        perf: flag("perf"),
        watch: params.has("watch"),
    }
}

/// The WebSocket to the backend, reconnecting with backoff when it is lost.
pub(crate) struct Connection {
    socket: RefCell<Option<WebSocket>>,
    model: RwSignal<Model>,
    /// A play that waits for the link (from a deep link, or a click while reconnecting).
    pending_play: RefCell<Option<ClientMessage>>,
    /// The page shows watched programs: it asks for them again on every connection.
    watching: std::cell::Cell<bool>,
    /// Whether to time how long the page takes to show each message (`&perf=1`).
    perf: bool,
    /// The event a deep link asks to show once its run has ended.
    pending_step: RefCell<Option<usize>>,
    retries: RefCell<u32>,
    /// Messages that came since the page last drew, and whether a frame will look at them.
    inbox: RefCell<Inbox>,
    flush_scheduled: std::cell::Cell<bool>,
    /// With `&perf=1`, the mark of the oldest message in the inbox: how long events wait
    /// before they are shown is measured from it.
    arrival_mark: RefCell<Option<String>>,
}

/// The page's clock (`performance.now()`, ms), which the inbox times bursts by.
fn now_ms() -> f64 {
    window()
        .performance()
        .map_or_else(js_sys::Date::now, |performance| performance.now())
}

impl Connection {
    /// Queues a message, to be applied with the rest of its burst (see [`Inbox`]).
    fn deliver(self: &Rc<Self>, message: ServerMessage) {
        let first = self.inbox.borrow_mut().push(message, now_ms());
        if first && self.perf {
            *self.arrival_mark.borrow_mut() = Some(perf::start());
        }
        if self.flush_scheduled.replace(true) {
            return;
        }
        self.flush_when_due();
    }

    /// Applies the inbox in the next frame if it is due then, else looks again in the frame
    /// after.
    fn flush_when_due(self: &Rc<Self>) {
        // A hidden tab gets no animation frames: it applies each message as it comes.
        let hidden = window()
            .document()
            .is_some_and(|document| document.hidden());
        if hidden {
            self.flush();
            return;
        }
        let this = Rc::clone(self);
        request_animation_frame(move || {
            if this.inbox.borrow().due(now_ms()) {
                this.flush();
            } else {
                this.flush_when_due();
            }
        });
    }

    /// Applies every queued message, in order, in one update of the model.
    fn flush(self: &Rc<Self>) {
        self.flush_scheduled.set(false);
        let messages = self.inbox.borrow_mut().take();
        if messages.is_empty() {
            return;
        }
        let timing = self.perf.then(perf::start);
        let events: usize = messages
            .iter()
            .map(|message| match message {
                ServerMessage::Events { events, .. } => events.len(),
                _ => 0,
            })
            .sum();
        let hello = messages
            .iter()
            .any(|message| matches!(message, ServerMessage::Hello { .. }));
        let finished = messages
            .iter()
            .any(|message| matches!(message, ServerMessage::RunFinished { .. }));
        self.model.update(|model| {
            for message in messages {
                model.apply(message);
            }
        });
        if let Some(start) = timing
            && events > 0
        {
            perf::measure_now(&format!("applied:{events}"), &start);
            perf::measure_when_shown(format!("events:{events}"), start);
        }
        if let Some(arrived) = self.arrival_mark.borrow_mut().take() {
            if events > 0 {
                perf::measure_when_shown(format!("arrival-to-shown:{events}"), arrived);
            } else {
                perf::forget(&arrived);
            }
        }
        if finished && let Some(step) = self.pending_step.borrow_mut().take() {
            self.model
                .update(|model| model.with_run(|run| run.seek(step)));
        }
        if hello {
            *self.retries.borrow_mut() = 0;
            let pending = if self.model.with_untracked(|m| m.link == Link::Connected) {
                self.pending_play.borrow_mut().take()
            } else {
                None
            };
            if let Some(play) = pending {
                self.send(&play);
            } else if self.watching.get()
                && self.model.with_untracked(|m| m.link == Link::Connected)
            {
                self.send(&ClientMessage::Watch);
            }
        }
    }

    fn open(self: &Rc<Self>) {
        let location = window().location();
        let scheme = if location.protocol().ok().as_deref() == Some("https:") {
            "wss"
        } else {
            "ws"
        };
        // A server reached beyond loopback wants the access token it printed, which came in
        // the page's own URL.
        let token = web_sys::UrlSearchParams::new_with_str(&location.search().unwrap_or_default())
            .ok()
            .and_then(|params| params.get("token"));
        let query = token.map_or_else(String::new, |token| {
            format!(
                "?token={}",
                String::from(js_sys::encode_uri_component(&token))
            )
        });
        let url = format!(
            "{scheme}://{}/ws{query}",
            location.host().unwrap_or_default()
        );
        let Ok(socket) = WebSocket::new(&url) else {
            self.schedule_reconnect();
            return;
        };
        let this = Rc::clone(self);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            match shared::decode::from_str::<ServerMessage>(&text) {
                Ok(message) => this.deliver(message),
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
        let access_url = format!("/access{query}");
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            this.socket.borrow_mut().take();
            // A handshake the server refused (a wrong token, another origin) looks to the
            // page like a lost backend; the server says which it was when asked.
            let never_opened =
                this.model.with_untracked(|m| m.link != Link::Connected) && event.code() == 1006;
            this.model
                .update(|model| model.close_link(Some((event.code(), event.reason()))));
            if never_opened {
                let model = this.model;
                let url = access_url.clone();
                leptos::task::spawn_local(async move {
                    if let Some(reason) = refused_because(&url).await {
                        model.update(|m| m.close_link(Some((1008, reason))));
                    }
                });
            }
            // An idle session is not reopened on its own; a reload starts a new one.
            if !matches!(
                this.model.with_untracked(|m| m.link.clone()),
                Link::Closed { .. }
            ) {
                this.schedule_reconnect();
            }
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

    pub(crate) fn send(&self, message: &ClientMessage) {
        // Anything else asked for (a scenario, a sandbox call, a stop) ends showing watched
        // programs, and a reconnection does not bring them back.
        if !matches!(message, ClientMessage::Watch) {
            self.watching.set(false);
        }
        let json = shared::encode::to_string(message);
        if let Some(socket) = self.socket.borrow().as_ref() {
            let _ = socket.send_with_str(&json);
        }
    }

    fn play(
        &self,
        scenario: String,
        pause_before_calls: bool,
        outside: Option<shared::OutsideRole>,
    ) {
        let play = ClientMessage::Play {
            scenario,
            pause_before_calls,
            quiet: false,
            outside,
        };
        if self.model.with_untracked(|m| m.link == Link::Connected) {
            self.send(&play);
        } else {
            *self.pending_play.borrow_mut() = Some(play);
        }
    }
}

/// Asks the server whether it would open a session for this page, after a handshake
/// failed; returns its reason when it would not (`None` when it would, or is not there).
async fn refused_because(url: &str) -> Option<String> {
    let response = wasm_bindgen_futures::JsFuture::from(window().fetch_with_str(url))
        .await
        .ok()?
        .dyn_into::<web_sys::Response>()
        .ok()?;
    if !matches!(response.status(), 401 | 403) {
        return None;
    }
    let text = wasm_bindgen_futures::JsFuture::from(response.text().ok()?)
        .await
        .ok()?
        .as_string()?;
    Some(text)
}

/// Mounts the run panel alone on `parent`, showing what `model` holds: what the component
/// tests (`frontend/tests/web.rs`) drive. The panel stays mounted for the page's life.
pub fn mount_run_panel(parent: web_sys::HtmlElement, model: RwSignal<Model>) {
    leptos::mount::mount_to(parent, move || {
        view! {
            {run_panel(model, Replay::new(), RwSignal::new(None), RwSignal::new(false))}
        }
    })
    .forget();
}

/// Mounts the app on the page's body.
pub fn mount() {
    console_error_panic_hook::set_once();
    mount_to_body(App);
}

/// The replay speeds on offer: the option's value (events per second), the milliseconds from
/// one event to the next, and the label.
pub(crate) const REPLAY_SPEEDS: [(&str, u32, &str); 6] = [
    ("0.5", 2000, "½ event/s"),
    ("1", 1000, "1 event/s"),
    ("2", 500, "2 events/s"),
    ("5", 200, "5 events/s"),
    ("20", 50, "20 events/s"),
    ("200", 5, "200 events/s"),
];

/// Replaying recorded events at a chosen speed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Replay {
    pub(crate) playing: RwSignal<bool>,
    /// Milliseconds from one event to the next: one of [`REPLAY_SPEEDS`].
    pub(crate) delay_ms: RwSignal<u32>,
    /// Bumped at every start and stop, so that a stopped replay's pending tick does nothing.
    pub(crate) generation: RwSignal<u32>,
}

impl Replay {
    pub(crate) fn new() -> Self {
        Replay {
            playing: RwSignal::new(false),
            delay_ms: RwSignal::new(500),
            generation: RwSignal::new(0),
        }
    }

    pub(crate) fn toggle(self, model: RwSignal<Model>) {
        self.generation.update(|generation| *generation += 1);
        if self.playing.get_untracked() {
            self.playing.set(false);
            return;
        }
        // From the end, a replay starts again from the first event.
        model.update(|model| {
            model.with_run(|run| {
                if run.at_end() {
                    run.seek(0);
                }
            });
        });
        self.playing.set(true);
        self.tick(model, self.generation.get_untracked());
    }

    pub(crate) fn stop(self) {
        self.generation.update(|generation| *generation += 1);
        self.playing.set(false);
    }

    pub(crate) fn tick(self, model: RwSignal<Model>, generation: u32) {
        let delay = u64::from(self.delay_ms.get_untracked());
        set_timeout(
            move || {
                if self.generation.get_untracked() != generation || !self.playing.get_untracked() {
                    return;
                }
                let mut at_end = true;
                model.update(|model| {
                    model.with_run(|run| {
                        run.step(1);
                        at_end = run.at_end();
                    });
                });
                if at_end {
                    self.playing.set(false);
                } else {
                    self.tick(model, generation);
                }
            },
            std::time::Duration::from_millis(delay),
        );
    }
}

/// Whether a key press is meant for a form field rather than for the page's shortcuts.
fn typing_in_a_field(event: &web_sys::KeyboardEvent) -> bool {
    event
        .target()
        .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|element| {
            matches!(element.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA")
        })
}

#[component]
fn App() -> impl IntoView {
    let model = RwSignal::new(Model::default());
    let link = deep_link();
    let perf_on = link.perf;
    // The form shows the role a link left to the student's program, and its port.
    let (linked_role, linked_port) = link.outside.as_ref().map_or_else(
        || (String::new(), "12345".to_owned()),
        |outside| (outside.role.clone(), outside.port.to_string()),
    );
    if perf_on {
        perf::enable();
    }
    let selected = RwSignal::new(
        link.scenario
            .clone()
            .unwrap_or_else(|| "simple-server-client".to_owned()),
    );
    let watching = link.watch;
    let connection = Rc::new(Connection {
        socket: RefCell::new(None),
        model,
        pending_play: RefCell::new(if link.play {
            link.scenario.map(|scenario| ClientMessage::Play {
                scenario,
                pause_before_calls: link.pause,
                quiet: false,
                outside: link.outside,
            })
        } else {
            None
        }),
        perf: link.perf,
        watching: std::cell::Cell::new(watching),
        pending_step: RefCell::new(link.step),
        retries: RefCell::new(0),
        inbox: RefCell::new(Inbox::default()),
        flush_scheduled: std::cell::Cell::new(false),
        arrival_mark: RefCell::new(None),
    });
    connection.open();
    let replay = Replay::new();
    let pause_before_calls = RwSignal::new(link.pause);
    // Which role the student's own program plays, if any, and on which port.
    let outside_role = RwSignal::new(linked_role);
    let outside_port = RwSignal::new(linked_port);
    let outside_problem = RwSignal::new(None::<String>);
    let outside_roles = move || {
        model.with(|m| {
            let chosen = selected.get();
            m.scenarios
                .iter()
                .find(|scenario| scenario.id == chosen)
                .map(|scenario| scenario.outside_roles.clone())
                .unwrap_or_default()
        })
    };
    let play = {
        let connection = Rc::clone(&connection);
        move |_| {
            replay.stop();
            let role = outside_role.get_untracked();
            let allowed = outside_roles();
            let outside = if role.is_empty() || !allowed.contains(&role) {
                None
            } else {
                match outside_port.get_untracked().trim().parse::<u16>() {
                    Ok(port) if port > 0 => Some(shared::OutsideRole {
                        role,
                        port,
                        timeout_secs: None,
                    }),
                    _ => {
                        outside_problem.set(Some(
                            "the port for your program must be 1 to 65535".to_owned(),
                        ));
                        return;
                    }
                }
            };
            outside_problem.set(None);
            connection.play(
                selected.get_untracked(),
                pause_before_calls.get_untracked(),
                outside,
            );
        }
    };
    let next_call = {
        let connection = Rc::clone(&connection);
        move || {
            if model.with_untracked(|m| m.run.as_ref().is_some_and(|run| run.paused.is_some())) {
                connection.send(&ClientMessage::Next);
            }
        }
    };
    let next_key = next_call.clone();
    // Keyboard shortcuts: ← and → step, Home goes to the first event, End follows the newest,
    // and the space bar replays or pauses.
    let _shortcuts = window_event_listener(leptos::ev::keydown, move |event| {
        if typing_in_a_field(&event) || event.ctrl_key() || event.meta_key() || event.alt_key() {
            return;
        }
        match event.key().as_str() {
            "ArrowLeft" => model.update(|m| m.with_run(|run| run.step(-1))),
            "ArrowRight" => model.update(|m| m.with_run(|run| run.step(1))),
            "Home" => model.update(|m| m.with_run(|run| run.seek(0))),
            "End" => model.update(|m| m.with_run(RunView::follow)),
            " " => replay.toggle(model),
            "n" => next_key(),
            _ => return,
        }
        event.prevent_default();
    });
    let open_trace = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|files| files.get(0)) else {
            return;
        };
        input.set_value("");
        let name = file.name();
        replay.stop();
        leptos::task::spawn_local(async move {
            // The file's bytes, not its text: copying UTF-8 bytes into wasm and checking them
            // is faster than having the browser decode them to a string and encode it back.
            match wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await {
                Ok(buffer) => {
                    let timing = perf_on.then(perf::start);
                    let text = {
                        let _span = perf::span("open-trace-text");
                        String::from_utf8(js_sys::Uint8Array::new(&buffer).to_vec())
                    };
                    let file = {
                        let _span = perf::span("open-trace-decode");
                        text.map_err(|_| {
                            "this file is not UTF-8 text, so not a trace file".to_owned()
                        })
                        .and_then(|text| TraceFile::parse(&text))
                    };
                    model.update(|m| m.show_trace(file, name));
                    if let Some(start) = &timing {
                        perf::measure_now("open-trace-model", start);
                    }
                    if let Some(start) = timing {
                        perf::measure_when_shown("open-trace".to_owned(), start);
                    }
                }
                Err(_) => model.update(|m| m.error = Some(format!("{name} could not be read"))),
            }
        });
    };

    let link_text = move || match model.with(|m| m.link.clone()) {
        Link::Connecting => "connecting…".to_owned(),
        Link::Connected => "connected".to_owned(),
        Link::Lost => "backend lost: reconnecting…".to_owned(),
        Link::Refused { reason } => format!("the server refused this session: {reason}; retrying…"),
        Link::Closed { reason } => {
            format!("the server closed this session: {reason}. Reload the page to start again.")
        }
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
    let filter = RwSignal::new(None::<String>);
    let newest_first = RwSignal::new(false);
    let theme = RwSignal::new("auto");

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
            <label title="Stop before each call until you press Next, to predict what it will do">
                <input type="checkbox" data-testid="pause-before-calls"
                    prop:checked=move || pause_before_calls.get()
                    on:change=move |ev| pause_before_calls.set(event_target_checked(&ev))/>
                " pause before each call"
            </label>
            <Show when=move || !outside_roles().is_empty()>
                <label title="Let your own program play one side; Socket Lab plays the other">
                    "played by "
                    <select data-testid="outside-role" on:change=move |ev| outside_role.set(event_target_value(&ev))>
                        <option value="" selected=move || outside_role.with(String::is_empty)>"Socket Lab"</option>
                        {move || outside_roles().into_iter().map(|role| {
                            let label = format!("my program plays the {role}");
                            let value = role.clone();
                            view! { <option value=value selected=move || outside_role.with(|r| *r == role)>{label}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <Show when=move || !outside_role.with(String::is_empty)>
                    <label>"port "
                        <input type="text" data-testid="outside-port" size="6"
                            prop:value=move || outside_port.get()
                            on:input=move |ev| outside_port.set(event_target_value(&ev))/>
                    </label>
                </Show>
            </Show>
            <span class="error" data-testid="outside-error">{move || outside_problem.get()}</span>
            <button data-testid="play" on:click=play
                disabled=move || model.with(|m| m.link != Link::Connected)>"▶ Play"</button>
            <button data-testid="next-call" title="Make the next call (n)"
                disabled=move || model.with(|m| m.run.as_ref().is_none_or(|run| run.paused.is_none()))
                on:click=move |_| next_call()>"Next call"</button>
            <label class="button" title="Open a trace file saved from this page">
                "Open trace…"
                <input type="file" accept=".json,application/json" data-testid="open-trace" on:change=open_trace/>
            </label>
            <button data-testid="theme" title="Light or dark colours" on:click=move |_| {
                let next = match theme.get_untracked() { "auto" => "light", "light" => "dark", _ => "auto" };
                theme.set(next);
                if let Some(root) = window().document().and_then(|document| document.document_element()) {
                    let _ = if next == "auto" { root.remove_attribute("data-theme") } else { root.set_attribute("data-theme", next) };
                }
            }>{move || format!("theme: {}", theme.get())}</button>
            <a data-testid="download-link" class="hidden" href="#">"download"</a>
        </header>
        <main>
            <Show when=move || model.with(|m| m.error.is_some())>
                <p class="error" data-testid="error">{move || model.with(|m| m.error.clone().unwrap_or_default())}</p>
            </Show>
            {crate::view::manual::manual_panel(Rc::clone(&connection), model)}
            <Show when=move || model.with(|m| m.run.is_some())
                fallback=move || view! {
                    <p class="intro" data-testid="intro">{if watching {
                        "Waiting for a program: run yours under socket-lab watch (socket-lab watch -- python3 server.py, or cargo run -p backend -- watch -- ...) on this machine, and its socket calls appear here as it makes them."
                    } else {
                        "Pick a scenario and press Play: the backend performs every socket call on the kernel's real sockets, and this page draws each one as it enters and returns. Step through the events with ← and →, replay them with the space bar, and save a run as a trace file to open later, with no backend."
                    }}</p>
                }>
                {run_panel(model, replay, filter, newest_first)}
            </Show>
        </main>
    }
}
