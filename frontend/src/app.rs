//! The Leptos view and the WebSocket link (browser only).

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use shared::describe::{call_text, kernel_call_text, outcome_text};
use shared::{ClientMessage, OutsideRole, Phase, SandboxNetwork, ServerMessage, TraceFile};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::diagram::{HEADER_HEIGHT, Px, ROW_HEIGHT};
use crate::inbox::Inbox;
use crate::manual::{self, CallForm};
use crate::model::{Link, Model, RunView, Source, Step, role_colour};

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

/// What the diagram draws for the rows on screen, and which row holds the selected event
/// (`highlight_row` only when the user stepped to it; `selected_row` always, to keep in view).
#[derive(Clone, Debug, PartialEq)]
struct DiagramFrame {
    diagram: crate::diagram::Diagram,
    bands: Vec<crate::diagram::SummaryBand>,
    highlight_row: Option<usize>,
    selected_row: Option<usize>,
}

/// The marks on the programs' lines at the selected event, by the program's place in the
/// run: each program's highlighted line (`true` for the one that made the selected call)
/// and the line a paused run makes next.
#[derive(Clone, Debug, Default, PartialEq)]
struct LineMarks {
    highlighted: Vec<(usize, u32, bool)>,
    next: Option<(usize, u32)>,
}

/// How one line is marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LineMark {
    current: bool,
    other: bool,
    upcoming: bool,
}

impl LineMarks {
    fn of(&self, program: usize, number: u32) -> LineMark {
        let (current, other) = match self.highlighted.iter().find(|(p, ..)| *p == program) {
            Some((_, line, own)) if *line == number => (*own, !own),
            _ => (false, false),
        };
        LineMark {
            current,
            other,
            upcoming: self.next == Some((program, number)),
        }
    }
}

/// With `&perf=1`, the page times how long it takes to show what arrives, with the browser's
/// Performance API: a mark when a message (or an opened trace) arrives, and a measure once
/// the page has applied it, re-rendered and laid itself out. A script reads them with
/// `performance.getEntriesByType("measure")` (backend/tests/browser.rs, `page_performance`).
mod perf {
    use std::cell::Cell;

    use leptos::prelude::window;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    thread_local! {
        static NEXT_MARK: Cell<u64> = const { Cell::new(0) };
        static ENABLED: Cell<bool> = const { Cell::new(false) };
    }

    /// Turns the page's own timing on (`&perf=1`).
    pub(super) fn enable() {
        ENABLED.with(|enabled| enabled.set(true));
    }

    /// Times its own life as `name`, when timing is on: for the parts of the page that draw.
    pub(super) struct Span(Option<(&'static str, String)>);

    pub(super) fn span(name: &'static str) -> Span {
        Span(ENABLED.with(Cell::get).then(|| (name, start())))
    }

    impl Drop for Span {
        fn drop(&mut self) {
            if let Some((name, start)) = self.0.take() {
                measure_now(name, &start);
                forget(&start);
            }
        }
    }

    /// Clears a mark that has been measured from, or will not be.
    pub(super) fn forget(mark: &str) {
        if let Some(performance) = window().performance() {
            performance.clear_marks_with_mark_name(mark);
        }
    }

    /// Marks the moment something arrived; returns the mark's name.
    pub(super) fn start() -> String {
        start_named("arrived")
    }

    fn start_named(what: &str) -> String {
        let number = NEXT_MARK.with(|next| next.replace(next.get() + 1));
        let name = format!("{what}-{number}");
        if let Some(performance) = window().performance() {
            let _ = performance.mark(&name);
        }
        name
    }

    /// Measures from the mark `start` to now, as `name`: what was done at once, before the
    /// page's reactive updates.
    pub(super) fn measure_now(name: &str, start: &str) {
        if let Some(performance) = window().performance() {
            let _ = performance.measure_with_start_mark(name, start);
        }
    }

    /// Measures from the mark `start` to when the page shows what arrived, as `name`. The
    /// page's reactive updates run as microtasks after the message handler; a timeout runs
    /// after all of them, and reading the layout there makes the browser lay the page out.
    pub(super) fn measure_when_shown(name: String, start: String) {
        let measure = Closure::once_into_js(move || {
            let layout = start_named("layout");
            if let Some(root) = window().document().and_then(|d| d.document_element()) {
                let _ = root.client_height();
            }
            measure_now("layout", &layout);
            if let Some(performance) = window().performance() {
                let _ = performance.measure_with_start_mark(&name, &start);
                performance.clear_marks_with_mark_name(&start);
            }
        });
        let _ = window()
            .set_timeout_with_callback_and_timeout_and_arguments_0(measure.unchecked_ref(), 0);
    }
}

/// The WebSocket to the backend, reconnecting with backoff when it is lost.
struct Connection {
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

    fn send(&self, message: &ClientMessage) {
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
            <RunPanel model=model replay=Replay::new() filter=RwSignal::new(None)
                newest_first=RwSignal::new(false)/>
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
const REPLAY_SPEEDS: [(&str, u32, &str); 6] = [
    ("0.5", 2000, "½ event/s"),
    ("1", 1000, "1 event/s"),
    ("2", 500, "2 events/s"),
    ("5", 200, "5 events/s"),
    ("20", 50, "20 events/s"),
    ("200", 5, "200 events/s"),
];

/// Replaying recorded events at a chosen speed.
#[derive(Clone, Copy, Debug)]
struct Replay {
    playing: RwSignal<bool>,
    /// Milliseconds from one event to the next: one of [`REPLAY_SPEEDS`].
    delay_ms: RwSignal<u32>,
    /// Bumped at every start and stop, so that a stopped replay's pending tick does nothing.
    generation: RwSignal<u32>,
}

impl Replay {
    fn new() -> Self {
        Replay {
            playing: RwSignal::new(false),
            delay_ms: RwSignal::new(500),
            generation: RwSignal::new(0),
        }
    }

    fn toggle(self, model: RwSignal<Model>) {
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

    fn stop(self) {
        self.generation.update(|generation| *generation += 1);
        self.playing.set(false);
    }

    fn tick(self, model: RwSignal<Model>, generation: u32) {
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

/// Offers `contents` as a file download, through the page's one download link (which tests
/// can also read).
fn download(file_name: &str, contents: &str, mime: &str) {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(contents));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else {
        return;
    };
    offer(file_name, &blob);
}

/// Offers a blob as a file, through the page's one download link (whose last blob URL is
/// let go first).
fn offer(file_name: &str, blob: &web_sys::Blob) {
    let Some(document) = window().document() else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(blob) else {
        return;
    };
    let Some(link) = document
        .query_selector("[data-testid='download-link']")
        .ok()
        .flatten()
        .and_then(|element| element.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    else {
        return;
    };
    let old = link.href();
    if old.starts_with("blob:") {
        let _ = web_sys::Url::revoke_object_url(&old);
    }
    link.set_href(&url);
    link.set_download(file_name);
    link.click();
}

/// The diagram as a standalone SVG file: the page's SVG carries its own styles.
fn export_svg(file_name: &str) {
    let svg = window()
        .document()
        .and_then(|document| {
            document
                .query_selector("[data-testid='diagram']")
                .ok()
                .flatten()
        })
        .map(|element| element.outer_html());
    if let Some(svg) = svg {
        download(
            file_name,
            &format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{svg}"),
            "image/svg+xml",
        );
    }
}

/// What the page says of a run's capture: how many packets, on which network, and what was
/// lost, or why there are none.
fn capture_text(capture: &shared::Capture, packets: usize) -> String {
    if !capture.on {
        let why = capture.off_because.as_deref().unwrap_or("packets are off");
        return format!("Packets: none shown ({why}).");
    }
    let scope = capture
        .scope
        .as_deref()
        .unwrap_or("the run's own network (its own loopback)");
    let mut text = format!(
        "Packets: {packets} captured on {scope}, each kept to its first {} bytes.",
        capture.snaplen
    );
    if capture.beyond_limit > 0 {
        text.push_str(&format!(
            " {} more were not kept: the run's limit is {} packets.",
            capture.beyond_limit,
            shared::packet::PACKETS_PER_RUN
        ));
    }
    if capture.dropped_by_kernel > 0 {
        text.push_str(&format!(
            " The kernel dropped {} before Socket Lab could read them.",
            capture.dropped_by_kernel
        ));
    }
    text
}

/// Offers bytes as a file to download, through the page's download link.
fn download_bytes(file_name: &str, contents: &[u8], mime: &str) {
    let array = js_sys::Uint8Array::from(contents);
    let parts = js_sys::Array::of1(&array);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options) else {
        return;
    };
    offer(file_name, &blob);
}

/// The diagram's styles, inside the SVG so that an exported diagram looks the same. The
/// colours fall back to the light theme's outside the page. Every rule starts with `svg`: a
/// `<style>` in an inline SVG applies to the whole page.
const DIAGRAM_STYLE: &str = "
svg .lane-title { font: 600 13px ui-monospace, monospace; fill: var(--fg, #1d1d1f); }
svg .lane-process { font: 600 12px ui-monospace, monospace; fill: var(--muted, #666); }
svg .lifeline { stroke: var(--line, #ccc); stroke-dasharray: 4 4; }
svg .bar { fill: var(--muted, #666); opacity: .85; }
svg .bar.role-server { fill: var(--server, #0b63c5); } svg .bar.role-client { fill: var(--client, #d95f02); }
svg .bar.role-sandbox { fill: var(--sandbox, #1b9e77); }
svg .lane-title.outside { font-style: italic; }
svg .bar.waiting { fill: var(--wait, #b58900); } svg .bar.failed { fill: var(--bad, #c62828); }
svg .bar-label { font: 12px ui-monospace, monospace; fill: var(--fg, #1d1d1f); }
svg .message { stroke: var(--client, #d95f02); stroke-width: 1.5; }
svg .message.datagram { stroke-dasharray: 7 4; }
svg .arrowhead { fill: var(--client, #d95f02); }
svg .message-label { font: 600 12px ui-monospace, monospace; fill: var(--client-text, #b84f00); }
svg .selected-row { fill: var(--wait, #b58900); opacity: .15; }
svg .fold { fill: var(--client, #d95f02); opacity: .25; stroke: var(--client, #d95f02); stroke-dasharray: 3 3; }
svg .packet { stroke: var(--wire, #6a3d9a); stroke-width: 1; opacity: .8; }
svg .packet.selected { stroke-width: 3; opacity: 1; }
svg .packet-head { fill: var(--wire, #6a3d9a); }
svg .packet-label { font: 10px ui-monospace, monospace; fill: var(--wire, #6a3d9a); }
svg .packet-label.selected { font-weight: 700; }
";

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
            <ManualPanel connection=Rc::clone(&connection) model=model/>
            <Show when=move || model.with(|m| m.run.is_some())
                fallback=move || view! {
                    <p class="intro" data-testid="intro">{if watching {
                        "Waiting for a program: run yours under socket-lab watch (socket-lab watch -- python3 server.py, or cargo run -p backend -- watch -- ...) on this machine, and its socket calls appear here as it makes them."
                    } else {
                        "Pick a scenario and press Play: the backend performs every socket call on the kernel's real sockets, and this page draws each one as it enters and returns. Step through the events with ← and →, replay them with the space bar, and save a run as a trace file to open later, with no backend."
                    }}</p>
                }>
                <RunPanel model=model replay=replay filter=filter newest_first=newest_first/>
            </Show>
        </main>
    }
}

/// One field of the manual form, bound to `form`.
fn form_field(form: RwSignal<CallForm>, field: &'static manual::FormField) -> impl IntoView {
    use leptos::either::EitherOf3;
    let manual::FormField {
        testid,
        label,
        get,
        set,
        ..
    } = *field;
    let input = match field.input {
        manual::FieldInput::Text { placeholder } => EitherOf3::A(view! {
            <input type="text" data-testid=testid placeholder=placeholder
                prop:value=move || form.with(get)
                on:input=move |ev| form.update(|f| set(f, event_target_value(&ev)))/>
        }),
        manual::FieldInput::Choice { options } => EitherOf3::B(view! {
            <select data-testid=testid on:change=move |ev| form.update(|f| set(f, event_target_value(&ev)))>
                {options.iter().map(|&option| view! {
                    <option value=option selected=move || form.with(get) == option>{option}</option>
                }).collect_view()}
            </select>
        }),
        manual::FieldInput::Check => EitherOf3::C(view! {
            <input type="checkbox" data-testid=testid prop:checked=move || form.with(get) == "true"
                on:change=move |ev| form.update(|f| set(f, event_target_checked(&ev).to_string()))/>
        }),
    };
    view! { <label>{label}" "{input}</label> }
}

/// The manual mode: the user's own calls, one at a time, on real sockets in the sandbox.
#[component]
fn ManualPanel(connection: Rc<Connection>, model: RwSignal<Model>) -> impl IntoView {
    let form = RwSignal::new(CallForm::new());
    let problem = RwSignal::new(None::<String>);
    let shows = move |field: &'static str| form.with(|f| manual::fields(&f.call).contains(&field));
    let sandbox_connection = Rc::clone(&connection);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match form.with_untracked(CallForm::build) {
            Err(message) => problem.set(Some(message)),
            Ok((endpoint, call)) => {
                problem.set(None);
                if model.with_untracked(|m| m.link != Link::Connected) {
                    problem.set(Some(
                        "the backend is not connected; wait until it is".to_owned(),
                    ));
                    return;
                }
                connection.send(&ClientMessage::Call { endpoint, call });
            }
        }
    };
    // Where the sandbox's sockets live: choosing starts it afresh there, closing its sockets.
    let choose_network = move |ev: leptos::ev::Event| {
        let network = match event_target_value(&ev).as_str() {
            "machine" => SandboxNetwork::Machine,
            _ => SandboxNetwork::Own,
        };
        if model.with_untracked(|m| m.link != Link::Connected) {
            problem.set(Some(
                "the backend is not connected; wait until it is".to_owned(),
            ));
            return;
        }
        problem.set(None);
        sandbox_connection.send(&ClientMessage::Sandbox { network });
    };
    view! {
        <details class="manual" data-testid="manual">
            <summary>"Your own calls (manual mode)"</summary>
            <p class="hint">"Make any call on your own sockets, in any order, and see what the kernel answers. Name a socket (such as s), create it with socket, then bind, listen, accept, connect… A call that waits, such as accept, goes on while you make the next one."</p>
            <label class="sandbox-network">"Network "
                <select data-testid="sandbox-network" on:change=choose_network>
                    <option value="own" selected>"Socket Lab's own: see every packet"</option>
                    <option value="machine">"this machine's: your own programs (nc, client.py) can reach it, no packets"</option>
                </select>
            </label>
            <form on:submit=submit>
                // One loop over a table, rather than a view per field: each written-out
                // field was its own copy of the view code in the wasm.
                {manual::FIELDS.iter().map(|field| view! {
                    <Show when=move || field.always || shows(field.name)>{form_field(form, field)}</Show>
                }).collect_view()}
                <button type="submit" data-testid="manual-submit">"Call"</button>
            </form>
            <p class="error" data-testid="manual-error">{move || problem.get()}</p>
        </details>
    }
}

/// The height of a row of the event log, in pixels (fixed in style.css, so that only the rows
/// on screen need drawing).
const LOG_ROW_HEIGHT: Px = 28;

/// Rows drawn beyond the visible ones, above and below, so that scrolling shows no gap. Every
/// row on screen is redrawn each frame of a live run, so there are only a few.
const OVERSCAN_ROWS: usize = 4;

/// A list of at most this many rows is drawn whole, so that a short run's events are all in
/// the page (to search it, or print it); a longer one only where it is scrolled to.
const WHOLE_LIST_ROWS: usize = 64;

/// The rows of a list of `total` rows of `row_height` that a box scrolled to `scroll_top` and
/// `height` tall shows, with some to spare.
fn visible_rows(
    scroll_top: Px,
    height: Px,
    row_height: Px,
    total: usize,
) -> std::ops::Range<usize> {
    if total <= WHOLE_LIST_ROWS {
        return 0..total;
    }
    let first = usize::try_from(scroll_top.max(0) / row_height).unwrap_or(usize::MAX);
    let count = usize::try_from(
        height
            .max(0)
            .unsigned_abs()
            .div_ceil(row_height.unsigned_abs()),
    )
    .unwrap_or(usize::MAX);
    let start = first.saturating_sub(OVERSCAN_ROWS).min(total);
    let end = (first + count + OVERSCAN_ROWS).min(total);
    start..end
}

/// A count of rows as pixels' arithmetic needs it.
fn rows_as_px(rows: usize) -> Px {
    Px::try_from(rows).unwrap_or(Px::MAX / LOG_ROW_HEIGHT)
}

/// How far outside the window a box counts as on screen: it is drawn a little before it is
/// scrolled into view.
const ON_SCREEN_MARGIN: &str = "300px";

/// Keeps each flag saying whether its box is on screen (within [`ON_SCREEN_MARGIN`] of the
/// window), as the browser's IntersectionObserver reports it. The flags start true, so that
/// the boxes are drawn until the browser first says otherwise. `draw_all` is set while the
/// page is printed: a printed page shows both boxes as they are now, wherever the window is
/// scrolled.
fn watch_on_screen(
    boxes: [(NodeRef<leptos::html::Div>, RwSignal<bool>); 2],
    draw_all: RwSignal<bool>,
) {
    let _print = window_event_listener(leptos::ev::beforeprint, move |_| draw_all.set(true));
    let _printed = window_event_listener(leptos::ev::afterprint, move |_| draw_all.set(false));
    Effect::new(move |_| {
        let [(first, _), (second, _)] = boxes;
        let (Some(first), Some(second)) = (first.get(), second.get()) else {
            return;
        };
        let report = Closure::<dyn Fn(js_sys::Array)>::new(move |entries: js_sys::Array| {
            // In order: a box's last entry is its state now.
            for entry in entries.iter() {
                let entry: web_sys::IntersectionObserverEntry = entry.unchecked_into();
                let target: JsValue = entry.target().into();
                for (node, on_screen) in boxes {
                    if node
                        .get_untracked()
                        .is_some_and(|element| JsValue::from(element) == target)
                    {
                        on_screen.set(entry.is_intersecting());
                    }
                }
            }
        });
        let options = web_sys::IntersectionObserverInit::new();
        options.set_root_margin(ON_SCREEN_MARGIN);
        if let Ok(observer) = web_sys::IntersectionObserver::new_with_options(
            report.as_ref().unchecked_ref(),
            &options,
        ) {
            observer.observe(&first);
            observer.observe(&second);
            // The run panel, and so its boxes, stay for the page's life (the page shows it
            // once there is a run, and always has one after), and so does the observer.
            report.forget();
        }
    });
}

/// A flag that flips with each change of `model` while `on_screen` (or `draw_all`) is true,
/// and holds still while it is false: a part of the page that reads the model through it is
/// not drawn again while it is off screen, and is drawn once when it comes back, with
/// whatever changed meanwhile. Read it with `get`: a memo's `track` subscribes without
/// computing it.
fn changes_while_on_screen(
    model: RwSignal<Model>,
    on_screen: RwSignal<bool>,
    draw_all: RwSignal<bool>,
) -> Memo<bool> {
    Memo::new(move |flag: Option<&bool>| {
        let flag = flag.copied().unwrap_or_default();
        if on_screen.get() || draw_all.get() {
            model.track();
            !flag
        } else {
            flag
        }
    })
}

/// Where a scrolling box (the diagram's, the log's) is scrolled to, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BoxScroll {
    /// The top of what the box shows.
    top: Px,
    /// How tall the box is.
    height: Px,
    /// Scrolled to the end.
    at_end: bool,
}

impl BoxScroll {
    /// Where `element` is scrolled to now.
    fn of(element: &web_sys::Element) -> Self {
        let (top, height) = (element.scroll_top(), element.client_height());
        BoxScroll {
            top: Px::from(top),
            height: Px::from(height),
            at_end: top + height >= element.scroll_height() - 1,
        }
    }

    /// Of rows `row_height` tall, the first the box shows and how many it shows.
    fn rows(self, row_height: Px) -> (usize, usize) {
        let rows = |px: Px, round_up: bool| {
            let px = px.max(0).unsigned_abs();
            let row_height = row_height.unsigned_abs();
            let rows = if round_up {
                px.div_ceil(row_height)
            } else {
                px / row_height
            };
            usize::try_from(rows).unwrap_or(usize::MAX)
        };
        (rows(self.top, false), rows(self.height, true))
    }
}

/// A scroll handler that keeps `scroll` saying where the box `node` is scrolled to.
fn keep_scroll(
    node: NodeRef<leptos::html::Div>,
    scroll: RwSignal<BoxScroll>,
) -> impl Fn(leptos::ev::Event) + Copy {
    move |_| {
        if let Some(element) = node.get_untracked() {
            let now = BoxScroll::of(&element);
            scroll.maybe_update(|current| std::mem::replace(current, now) != now);
        }
    }
}

/// Scrolls a box so that the row at `y` (`row_height` tall) is in view: to the end when
/// following the newest event, otherwise only if the row is outside.
fn keep_in_view(element: &web_sys::Element, y: Px, row_height: Px, to_end: bool) {
    let height = Px::from(element.client_height());
    if to_end {
        element.set_scroll_top(element.scroll_height());
        return;
    }
    let top = Px::from(element.scroll_top());
    if y < top || y + row_height > top + height {
        element.set_scroll_top(i32::try_from((y - height / 2).max(0)).unwrap_or(i32::MAX));
    }
}

fn status_text(run: &RunView) -> String {
    match (&run.source, &run.outcome) {
        (Source::File { name }, _) => format!("from {name}"),
        (_, None) => "running…".to_owned(),
        (_, Some(shared::RunOutcome::Completed)) => "finished".to_owned(),
        (_, Some(shared::RunOutcome::Cancelled { reason })) => format!("stopped: {reason}"),
        (_, Some(shared::RunOutcome::Failed { message })) => format!("failed: {message}"),
    }
}

thread_local! {
    /// The run as it stood at the event last stepped to, kept for the next step: stepping or
    /// replaying forwards adds the events since, not every event from the first. (The page
    /// has one run panel; a view's closures must be `Send`, so it cannot hold this itself.)
    static PAST_VIEW: RefCell<Option<RunView>> = const { RefCell::new(None) };
}

#[component]
fn RunPanel(
    model: RwSignal<Model>,
    replay: Replay,
    filter: RwSignal<Option<String>>,
    newest_first: RwSignal<bool>,
) -> impl IntoView {
    // Each part of the panel reads only what it shows, so that a new event redraws the rows
    // on screen and not ten thousand others.
    let read = move |part: fn(&RunView) -> String| {
        model.with(|m| m.run.as_ref().map(part).unwrap_or_default())
    };
    let position = Memo::new(move |_| {
        model.with(|m| {
            m.run.as_ref().map_or((None, 0, true), |run| {
                (run.selected(), run.events.len(), run.cursor.is_none())
            })
        })
    });
    // The packet stepped to, and whether the step shown is the run's last.
    let packet_step = Memo::new(move |_| {
        model.with(|m| {
            m.run.as_ref().map_or((None, 0, true), |run| {
                (
                    run.selected_packet().map(|(index, _)| index),
                    run.packets.len(),
                    run.at_last_step(),
                )
            })
        })
    });
    let selected = move || position.get().0;
    let total = move || position.get().1;
    let following = move || position.get().2;
    let step_label = move || match (packet_step.get(), selected()) {
        ((Some(packet), packets, _), _) => format!("packet {} of {packets}", packet + 1),
        (_, Some(index)) => format!("event {} of {}", index + 1, total()),
        (_, None) => "no events yet".to_owned(),
    };
    let explanation = move || {
        model.with(|m| {
            let run = m.run.as_ref()?;
            if let Some(next) = run.paused.as_ref().filter(|_| run.cursor.is_none()) {
                return Some(format!(
                    "Next, {} calls {} (line {}). What will the kernel answer? Press Next call (n) to see.",
                    next.endpoint,
                    call_text(&next.call),
                    next.line.map_or_else(|| "?".to_owned(), |line| line.to_string())
                ));
            }
            // A run waiting for the student's program, or just started, has no call yet: the
            // line says what will come there rather than stand empty.
            if let Some((_, packet)) = run.selected_packet() {
                let cause = run.packet_cause(packet, &shared::cause::Endpoints::of(&run.events));
                // The reason is written to follow a packet's line in the log; here it starts a
                // sentence.
                let mut reason = cause.text.chars();
                let reason = reason
                    .next()
                    .map(|first| first.to_uppercase().chain(reason).collect::<String>())
                    .unwrap_or_default();
                return Some(format!(
                    "Packet {}: {}. {reason}",
                    cause.route(),
                    packet.summary()
                ));
            }
            let Some(selected) = run.selected() else {
                return Some("No calls yet: each call is explained here as it happens.".to_owned());
            };
            let event = &run.events[selected];
            Some(format!("{}: {}", event.endpoint, run.explain(event)))
        })
    };
    let save_packets = move |_| {
        if let Some((name, file)) = model.with_untracked(|m| {
            m.run.as_ref().map(|run| {
                let endpoints = shared::cause::Endpoints::of(&run.events);
                let capture = run.capture.clone().unwrap_or_default();
                (
                    format!("socket-lab-{}.pcapng", run.scenario.id),
                    shared::pcapng::write(&capture, &run.packets, |packet| {
                        Some(run.packet_cause(packet, &endpoints).text)
                    }),
                )
            })
        }) {
            download_bytes(&name, &file, "application/x-pcapng");
        }
    };
    let save_trace = move |_| {
        if let Some((name, json)) = model.with_untracked(|m| {
            m.run.as_ref().map(|run| {
                (
                    format!("socket-lab-{}.json", run.scenario.id),
                    run.to_file().to_json(),
                )
            })
        }) {
            download(&name, &json, "application/json");
        }
    };
    // The diagram and the log are drawn only while on screen: a student watching one of them
    // while a busy run pours in does not pay for laying out the other.
    let diagram_box: NodeRef<leptos::html::Div> = NodeRef::new();
    let diagram_on_screen = RwSignal::new(true);
    // Set while the page is printed or the diagram exported: both boxes are drawn wherever
    // they are.
    let draw_all = RwSignal::new(false);
    let export = move |_| {
        let id = model.with_untracked(|m| {
            m.run
                .as_ref()
                .map(|run| run.scenario.id.clone())
                .unwrap_or_default()
        });
        let file_name = format!("socket-lab-{id}.svg");
        if diagram_on_screen.get_untracked() {
            export_svg(&file_name);
        } else {
            // Scrolled away, the diagram may be behind the run: drawn first, as it is now.
            draw_all.set(true);
            request_animation_frame(move || {
                export_svg(&file_name);
                draw_all.set(false);
            });
        }
    };

    // The programs are drawn once a run; only the marks on their lines follow the events.
    let program_list = Memo::new(move |_| {
        model.with(|m| {
            m.run
                .as_ref()
                .map(|run| run.programs.clone())
                .unwrap_or_default()
        })
    });
    let marks = Memo::new(move |_| {
        let _span = perf::span("programs");
        model.with(|m| {
            let Some(run) = m.run.as_ref() else {
                return LineMarks::default();
            };
            let program = |role: &str| run.programs.iter().position(|p| p.role == role);
            LineMarks {
                highlighted: run.highlighted_lines(),
                next: run
                    .paused
                    .as_ref()
                    .filter(|_| run.cursor.is_none())
                    .and_then(|next| Some((program(&next.role)?, next.line?))),
            }
        })
    });
    let programs = move || {
        program_list.with(|programs| {
        programs.iter().enumerate().map(|(program_index, program)| {
            let caption = match (&program.file, program.outside) {
                (Some(file), _) => format!("{} — {file}", program.role),
                (None, true) => format!("{}.py — your program: run it with python3", program.role),
                (None, false) => format!("{}.py", program.role),
            };
            let testid = match &program.file {
                Some(file) => format!("code-{}", file.rsplit('/').next().unwrap_or(file)),
                None => format!("code-{}", program.role),
            };
            view! {
                <figure class=format!("program role-{}", role_colour(&program.role)) class:outside=program.outside>
                    <figcaption>{caption}</figcaption>
                    <pre data-testid=testid>
                        {program.code.lines().enumerate().map(|(index, text)| {
                            let number = index as u32 + 1;
                            let mark = move || marks.with(|marks| marks.of(program_index, number));
                            view! {
                                <span class="line" class:current=move || mark().current class:other=move || mark().other
                                    class:next=move || mark().upcoming
                                    data-testid=move || {
                                        let mark = mark();
                                        if mark.upcoming { Some("next-line") } else { mark.current.then_some("current-line") }
                                    }>
                                    <span class="number">{number}</span>{text.to_owned()}
                                    {move || mark().upcoming.then(|| view! { <span class="next-mark">"  ← next"</span> })}
                                    "\n"
                                </span>
                            }
                        }).collect_view()}
                    </pre>
                </figure>
            }
        }).collect::<Vec<_>>()
    })
    };
    let cards = move || {
        let _span = perf::span("cards");
        model.with(|m| {
            let Some(run) = m.run.as_ref() else {
                return Vec::new();
            };
            let cards = |shown: &RunView| {
                shown
                    .endpoints
                    .iter()
                    .map(|e| endpoint_card(e.clone(), shown.waiting_call(e)))
                    .collect::<Vec<_>>()
            };
            if run.cursor.is_some() && !run.at_end() {
                let earlier = PAST_VIEW.with_borrow_mut(Option::take);
                let past = run.as_selected_from(earlier);
                let shown = cards(&past);
                PAST_VIEW.set(Some(past));
                shown
            } else {
                cards(run)
            }
        })
    };

    let diagram_changes = changes_while_on_screen(model, diagram_on_screen, draw_all);
    let diagram_scroll = RwSignal::new(BoxScroll {
        top: 0,
        height: 600,
        at_end: true,
    });
    // While the diagram follows a live run at its end, it draws the last rows, however far
    // its box has scrolled yet: a new event is drawn in the frame it arrives, and the scroll
    // that follows it, to the rows already drawn, draws nothing again (as the log does).
    let diagram_anchor = Memo::new(move |_| {
        let scroll = diagram_scroll.get();
        let at_end = scroll.at_end && following();
        ((!at_end).then_some(scroll.top), scroll.height)
    });
    let show_hex = RwSignal::new(false);
    let zoomed_in = RwSignal::new(false);
    let show_packets = RwSignal::new(true);
    // What the diagram draws, computed once per change of the run, the scroll or the zoom,
    // and compared with what it drew: a new event below the rows on screen redraws nothing.
    let frame = Memo::new(move |_| {
        let _span = perf::span("diagram");
        let (anchor, height) = diagram_anchor.get();
        let zoomed_in = zoomed_in.get();
        // The top of the box scrolled to the end of a diagram of `rows` rows.
        let scroll_top = |rows: usize| {
            anchor.unwrap_or_else(|| {
                (HEADER_HEIGHT + (rows_as_px(rows) + 1) * ROW_HEIGHT - height).max(0)
            })
        };
        let _ = diagram_changes.get();
        model.with_untracked(|m| {
            // A run with no call yet has nothing to draw; the box says what will come there.
            let run = m.run.as_ref().filter(|run| !run.events.is_empty())?;
            let upto = run.selected().map_or(0, |index| index + 1);
            let selected_index = run.cursor.and(run.selected());
            // Long stretches of sends and receives are folded into one row each, unless the
            // user zooms in to see every call.
            let folded = if zoomed_in {
                std::borrow::Cow::Borrowed(&[][..])
            } else {
                crate::diagram::overview(run, upto)
            };
            let summarised = folded
                .iter()
                .any(|row| matches!(row, crate::diagram::OverviewRow::Summary { .. }));
            // The row of the selected event (kept in view), highlighted when stepped to.
            let selected_row = run
                .selected()
                .map(|index| crate::diagram::row_holding(&folded, index).unwrap_or(index));
            let highlight_row = selected_index.and(selected_row);
            let (diagram, bands) = if summarised {
                let rows = visible_rows(
                    scroll_top(folded.len()) - HEADER_HEIGHT,
                    height,
                    ROW_HEIGHT,
                    folded.len(),
                );
                crate::diagram::layout_overview(run, upto, &folded, rows)
            } else {
                let rows = visible_rows(scroll_top(upto) - HEADER_HEIGHT, height, ROW_HEIGHT, upto);
                (crate::diagram::layout_window(run, upto, rows), Vec::new())
            };
            Some(DiagramFrame {
                diagram,
                bands,
                highlight_row,
                selected_row,
            })
        })
    });
    let has_diagram = Memo::new(move |_| frame.with(Option::is_some));
    let size = move || {
        frame.with(|frame| {
            frame
                .as_ref()
                .map_or((0, 0), |frame| (frame.diagram.width, frame.diagram.height))
        })
    };
    let diagram_content = move || {
        let hex = show_hex.get();
        frame.with(|frame| {
            let DiagramFrame {
                diagram,
                bands,
                highlight_row,
                ..
            } = frame.as_ref()?;
            Some(view! {
                {highlight_row.map(|row| view! {
                    <rect class="selected-row" x="0" y=crate::diagram::row_y(row as u64) - ROW_HEIGHT / 2
                        width=diagram.width height=ROW_HEIGHT/>
                })}
                {diagram.lanes.iter().map(|lane| view! {
                    <text x=lane.x - crate::diagram::LANE_WIDTH / 2 + 8 y=14 class="lane-process">{lane.process.clone().unwrap_or_default()}</text>
                    <text x=lane.x y=HEADER_HEIGHT / 2 + 6 class="lane-title" text-anchor="middle">{lane.title.clone()}</text>
                    <line x1=lane.x y1=HEADER_HEIGHT - 8 x2=lane.x y2=diagram.height class="lifeline"/>
                }).collect_view()}
                {bands.iter().map(|band| view! {
                    <rect class="fold" data-testid="fold" x=band.x.0 y=band.y - ROW_HEIGHT / 2 + 3
                        width=band.x.1 - band.x.0 height=ROW_HEIGHT - 6 rx="4"/>
                    <text x=band.x.1 + 8 y=band.y + 4 class="bar-label">{band.label.clone()}</text>
                }).collect_view()}
                {diagram.bars.iter().map(|bar| {
                    let height = bar.bottom - bar.top + ROW_HEIGHT - 6;
                    let class = if bar.failed { "bar failed".to_owned() } else if bar.waiting { "bar waiting".to_owned() } else { format!("bar role-{}", role_colour(&bar.role)) };
                    view! {
                        <rect x=bar.x - 6 y=bar.top - ROW_HEIGHT / 2 + 3 width="12"
                            height=height class=class rx="3"/>
                        <text x=bar.x + 10 y=bar.top + 4 class="bar-label">{bar.label.clone()}</text>
                    }
                }).collect_view()}
                {diagram.arrows.iter().map(|arrow| {
                    let class = if arrow.datagram { "message datagram" } else { "message" };
                    let label = if hex { arrow.hex.clone() } else { arrow.label.clone() };
                    view! {
                        <line x1=arrow.from.0 y1=arrow.from.1 x2=arrow.to.0 y2=arrow.to.1 class=class marker-end="url(#arrowhead)"/>
                        <text x=(arrow.from.0 + arrow.to.0) / 2 y=(arrow.from.1 + arrow.to.1) / 2 - 6
                            class="message-label" text-anchor="middle">{label}</text>
                    }
                }).collect_view()}
                {diagram.packets.iter().map(|packet| {
                    let selected = if packet.selected { " selected" } else { "" };
                    let index = packet.index;
                    view! {
                        <g data-testid="packet" data-kind=packet.kind.clone() data-selected=packet.selected.to_string()
                            on:click=move |_| model.update(|m| m.with_run(|run| run.seek_packet(index)))>
                            <line x1=packet.from.0 y1=packet.from.1 x2=packet.to.0 y2=packet.to.1
                                class=format!("packet{selected}") marker-end="url(#packethead)"/>
                            <text x=packet.label_at.0 y=packet.label_at.1 class=format!("packet-label{selected}")
                                text-anchor="middle">{packet.label.clone()}</text>
                        </g>
                    }
                }).collect_view()}
            })
        })
    };
    // The SVG and its style stay while the run does; only what is drawn in it changes (a new
    // <style> element each frame would make the browser restyle the whole page).
    let diagram = move || {
        has_diagram.get().then(|| view! {
            <svg data-testid="diagram" xmlns="http://www.w3.org/2000/svg"
                width=move || size().0 height=move || size().1
                viewBox=move || { let (width, height) = size(); format!("0 0 {width} {height}") }>
                <style>{DIAGRAM_STYLE}</style>
                <defs>
                    <marker id="arrowhead" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">
                        <path d="M0,0 L10,4 L0,8 z" class="arrowhead"/>
                    </marker>
                    <marker id="packethead" markerWidth="7" markerHeight="6" refX="6" refY="3" orient="auto">
                        <path d="M0,0 L7,3 L0,6 z" class="packet-head"/>
                    </marker>
                </defs>
                <g>{diagram_content}</g>
            </svg>
        })
    };

    let log_box: NodeRef<leptos::html::Div> = NodeRef::new();
    let log_on_screen = RwSignal::new(true);
    watch_on_screen(
        [(diagram_box, diagram_on_screen), (log_box, log_on_screen)],
        draw_all,
    );
    let log_changes = changes_while_on_screen(model, log_on_screen, draw_all);
    let log_scroll = RwSignal::new(BoxScroll {
        top: 0,
        height: 15 * LOG_ROW_HEIGHT,
        at_end: true,
    });
    // Where the log is scrolled to, unless it is at its end: there, while it follows a live
    // run, where it is scrolled to changes with every frame's new rows, but the rows to show
    // are the last ones all the same; drawing them once is enough, not again when the scroll
    // catches up. Anywhere else, every row scrolled to is drawn.
    let log_anchor = Memo::new(move |_| {
        let scroll = log_scroll.get();
        let (first_row, rows_shown) = scroll.rows(LOG_ROW_HEIGHT);
        ((!scroll.at_end).then_some(first_row), rows_shown)
    });
    let endpoint_ids = move || {
        model.with(|m| {
            m.run
                .as_ref()
                .map(|run| {
                    run.endpoints
                        .iter()
                        .map(|e| e.id.clone())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    let log = move || {
        let _span = perf::span("log");
        let (scrolled_to, rows_shown) = log_anchor.get();
        let filter = filter.get();
        let newest_first = newest_first.get();
        let _ = log_changes.get();
        model.with_untracked(|m| {
            let run = m.run.as_ref()?;
            let rows = run.log_rows(filter.as_deref(), newest_first, show_packets.get());
            let first_row = match scrolled_to {
                Some(first_row) => first_row,
                None if run.cursor.is_none() && !newest_first => {
                    rows.len().saturating_sub(rows_shown)
                }
                None => log_scroll.get_untracked().rows(LOG_ROW_HEIGHT).0,
            };
            let window = visible_rows(
                rows_as_px(first_row) * LOG_ROW_HEIGHT,
                rows_as_px(rows_shown) * LOG_ROW_HEIGHT,
                LOG_ROW_HEIGHT,
                rows.len(),
            );
            let highlight = match run.selected_packet() {
                Some((packet, _)) => Some(Step::Packet(packet)),
                None => run.cursor.and(run.selected()).map(Step::Event),
            };
            let endpoints = std::cell::OnceCell::new();
            let above = rows_as_px(window.start) * LOG_ROW_HEIGHT;
            let below = rows_as_px(rows.len() - window.end) * LOG_ROW_HEIGHT;
            Some(view! {
                <tr class="spacer" style=format!("height: {above}px")></tr>
                {window.map(|row| {
                    let index = match rows.step(row) {
                        Step::Event(index) => index,
                        Step::Packet(index) => {
                            let packet = &run.packets[index];
                            let endpoints = endpoints.get_or_init(|| shared::cause::Endpoints::of(&run.events));
                            let cause = run.packet_cause(packet, endpoints);
                            let route = cause.route();
                            let class = if highlight == Some(Step::Packet(index)) { "packet selected" } else { "packet" };
                            let (text, title) = (cause.text.clone(), cause.text);
                            return view! {
                                <tr class=class data-testid="packet-row" on:click=move |_| model.update(|m| m.with_run(|run| run.seek_packet(index)))>
                                    <td>{format!("p{}", packet.seq)}</td>
                                    <td>{crate::model::millis_text(packet.t_us)}</td>
                                    <td>{route}</td>
                                    <td>"packet"</td>
                                    <td><code>{packet.summary()}</code></td>
                                    <td></td>
                                    <td title=title>{text}</td>
                                </tr>
                            }.into_any();
                        }
                    };
                    let event = &run.events[index];
                    let result = if event.phase == Phase::Return { outcome_text(event) } else { String::new() };
                    let meaning = run.explain(event);
                    let (result_title, meaning_title) = (result.clone(), meaning.clone());
                    let mut class = if event.error.is_some() { "failed".to_owned() } else { String::new() };
                    if Some(Step::Event(index)) == highlight {
                        class.push_str(" selected");
                    }
                    view! {
                        <tr class=class on:click=move |_| model.update(|m| m.with_run(|run| run.seek(index)))>
                            <td>{event.seq}</td>
                            <td>{crate::model::millis_text(event.t_us)}</td>
                            <td>{event.endpoint.clone()}</td>
                            <td>{if event.phase == Phase::Enter { "enter" } else { "return" }}</td>
                            <td>{python_call(event)}<code>{kernel_call_text(event)}</code></td>
                            <td title=result_title><code>{result}</code></td>
                            <td title=meaning_title>{meaning}</td>
                        </tr>
                    }.into_any()
                }).collect_view()}
                <tr class="spacer" style=format!("height: {below}px")></tr>
            })
        })
    };
    // Keep the selected event in view in the diagram and the log: the newest one while
    // following, the one stepped to otherwise.
    let diagram_to_selected = move |index: usize, following: bool| {
        let Some(element) = diagram_box.get_untracked() else {
            return;
        };
        let row = frame
            .with_untracked(|frame| frame.as_ref().and_then(|frame| frame.selected_row))
            .unwrap_or(index);
        // After the diagram has been redrawn at its new height (zooming changes it).
        request_animation_frame(move || {
            keep_in_view(
                &element,
                crate::diagram::row_y(row as u64) - ROW_HEIGHT / 2,
                ROW_HEIGHT,
                following,
            );
        });
    };
    let log_to_selected = move |index: usize, following: bool| {
        let Some(element) = log_box.get_untracked() else {
            return;
        };
        let row = model.with_untracked(|m| {
            m.run.as_ref().and_then(|run| {
                let step = match run.selected_packet() {
                    Some((packet, _)) => Step::Packet(packet),
                    None => Step::Event(index),
                };
                run.log_rows(
                    filter.get_untracked().as_deref(),
                    newest_first.get_untracked(),
                    show_packets.get_untracked(),
                )
                .row_of(step)
            })
        });
        if let Some(row) = row {
            let to_end = following && !newest_first.get_untracked();
            keep_in_view(
                &element,
                rows_as_px(row) * LOG_ROW_HEIGHT,
                LOG_ROW_HEIGHT,
                to_end,
            );
        }
    };
    // A box that comes back on screen is drawn anew first: the log is scrolled in the next
    // frame, once its new rows are there to scroll to (the diagram always is).
    Effect::new(move |was_on_screen: Option<(bool, bool)>| {
        let _span = perf::span("keep-in-view");
        let (selected, _, following) = position.get();
        // Read, not peeked: zooming in or out keeps the selected event in view too.
        zoomed_in.track();
        let draw_all = draw_all.get();
        let on_screen = (
            diagram_on_screen.get() || draw_all,
            log_on_screen.get() || draw_all,
        );
        if let Some(index) = selected {
            if on_screen.0 {
                diagram_to_selected(index, following);
            }
            if on_screen.1 && was_on_screen.is_some_and(|(_, log)| !log) {
                request_animation_frame(move || log_to_selected(index, following));
            } else if on_screen.1 {
                log_to_selected(index, following);
            }
        }
        on_screen
    });

    view! {
        <section class="summary">
            <h2>{move || read(|run| run.scenario.title.clone())} " " <small data-testid="run-status">{move || read(status_text)}</small></h2>
            <p>{move || read(|run| run.scenario.summary.clone())}</p>
        </section>
        <section class="controls" aria-label="Step through the events">
            <button data-testid="step-first" title="First event (Home)" disabled=move || selected().is_none_or(|i| i == 0)
                on:click=move |_| model.update(|m| m.with_run(|run| run.seek(0)))>"◀◀ first"</button>
            <button data-testid="step-back" title="Step back (←)" disabled=move || selected().is_none_or(|i| i == 0)
                on:click=move |_| model.update(|m| m.with_run(|run| run.step(-1)))>"◀ step"</button>
            <button data-testid="replay" title="Replay or pause (space)" disabled=move || total() == 0
                on:click=move |_| replay.toggle(model)>
                {move || if replay.playing.get() { "■ pause" } else { "▷ replay" }}
            </button>
            <button data-testid="step-forward" title="Step forward (→)" disabled=move || selected().is_none() || packet_step.get().2
                on:click=move |_| model.update(|m| m.with_run(|run| run.step(1)))>"step ▶"</button>
            <button data-testid="follow" title="Newest event (End)" disabled=following
                on:click=move |_| model.update(|m| m.with_run(RunView::follow))>"newest ▶▶"</button>
            <input type="range" data-testid="timeline" aria-label="Timeline" min="0"
                max=move || total().saturating_sub(1).to_string() prop:value=move || selected().unwrap_or(0).to_string()
                on:input=move |ev| {
                    if let Ok(index) = event_target_value(&ev).parse::<usize>() {
                        model.update(|m| m.with_run(|run| run.seek(index)));
                    }
                }/>
            <span data-testid="step-label">{step_label}</span>
            <label>"speed "
                <select data-testid="speed" on:change=move |ev| {
                    let value = event_target_value(&ev);
                    if let Some(&(_, delay_ms, _)) = REPLAY_SPEEDS.iter().find(|(speed, ..)| *speed == value) {
                        replay.delay_ms.set(delay_ms);
                    }
                }>
                    {REPLAY_SPEEDS.iter().map(|&(speed, delay_ms, label)| view! {
                        <option value=speed selected=replay.delay_ms.get_untracked() == delay_ms>{label}</option>
                    }).collect_view()}
                </select>
            </label>
            // Before the first call there is nothing to save or export.
            <button data-testid="save-trace" on:click=save_trace title="Save the run as a trace file" disabled=move || total() == 0>"Save trace"</button>
            <button data-testid="save-packets" on:click=save_packets title="Save the run's packets as pcapng, for Wireshark" disabled=move || packet_step.get().1 == 0>"Save packets"</button>
            <button data-testid="export-svg" on:click=export title="Save the diagram as SVG" disabled=move || total() == 0>"Export SVG"</button>
            <label title="Draw every call, instead of folding long stretches of sends and receives into one row">
                <input type="checkbox" data-testid="zoom-in" prop:checked=move || zoomed_in.get()
                    on:change=move |ev| zoomed_in.set(event_target_checked(&ev))/>" every call"
            </label>
            <label title="Label the messages with their bytes in hexadecimal">
                <input type="checkbox" data-testid="show-hex" prop:checked=move || show_hex.get()
                    on:change=move |ev| show_hex.set(event_target_checked(&ev))/>" hex"
            </label>
        </section>
        {move || model.with(|m| {
            let run = m.run.as_ref()?;
            let theirs = run.programs.iter().find(|program| program.outside)?;
            if run.outcome.is_some() {
                return None;
            }
            let (role, other) = if theirs.role == "client" { ("client", "server") } else { ("server", "client") };
            // Once their program has connected, the line says so in place (the page does not
            // jump under the student's eyes).
            let text = if run.has_connected() {
                format!("Your {role} has connected. Socket Lab plays the {other} and shows every call it makes.")
            } else {
                format!("Waiting for your {role}: run {role}.py below (it uses host '127.0.0.1' and the port written in it). Socket Lab plays the {other} and shows every call it makes.")
            };
            Some(view! {
                <p class="outside-wait" data-testid="outside-instructions">{text}</p>
            })
        })}
        {move || model.with(|m| {
            let run = m.run.as_ref()?;
            let dropped = run.dropped_count();
            (dropped > 0).then(|| {
                let calls = run.dropped_calls().iter().map(|tally| {
                    let mut text = format!("{} {} ×{}", tally.endpoint, tally.call, tally.count);
                    if tally.bytes > 0 {
                        text.push_str(&format!(", {} bytes", tally.bytes));
                    }
                    if tally.failed > 0 {
                        text.push_str(&format!(", {} failed", tally.failed));
                    }
                    text
                }).collect::<Vec<_>>();
                let summary = if calls.is_empty() {
                    String::new()
                } else {
                    format!(" Among them, the calls that returned: {}.", calls.join("; "))
                };
                view! {
                    <p class="dropped" data-testid="events-dropped">
                        {format!("{dropped} events of this run were not sent to this page whole: the run made them faster than a page can show them. The calls happened all the same, and each event shown has the kernel's view at that moment.{summary}")}
                    </p>
                }
            })
        })}
        <p class="explanation" data-testid="explanation">{explanation}</p>
        <p class="capture-status" data-testid="capture-status">{move || model.with(|m| {
            let run = m.run.as_ref()?;
            Some(capture_text(run.capture.as_ref()?, run.packets.len()))
        })}</p>
        <section class="workbench">
            <div class="programs">{programs}</div>
            <div class="endpoints">{cards}</div>
        </section>
        // Both boxes scroll, so keyboard users can reach them with Tab and scroll them with
        // the keys (← and → still step, as everywhere on the page).
        <div class="diagram" tabindex="0" node_ref=diagram_box on:scroll=keep_scroll(diagram_box, diagram_scroll)>{diagram}</div>
        <section class="log">
            <h2>"Events"</h2>
            <div class="log-tools">
                <label>"endpoint "
                    <select data-testid="log-filter" on:change=move |ev| {
                        let value = event_target_value(&ev);
                        filter.set((!value.is_empty()).then_some(value));
                    }>
                        <option value="" selected=move || filter.with(Option::is_none)>"all"</option>
                        {move || endpoint_ids().into_iter().map(|id| {
                            let chosen = filter.with_untracked(|f| f.as_deref() == Some(id.as_str()));
                            view! { <option value=id.clone() selected=chosen>{id.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label title="List the run's packets among its calls">
                    <input type="checkbox" data-testid="log-packets" prop:checked=move || show_packets.get()
                        on:change=move |ev| show_packets.set(event_target_checked(&ev))/>" packets"
                </label>
                <button data-testid="log-sort" on:click=move |_| newest_first.update(|newest| *newest = !*newest)>
                    {move || if newest_first.get() { "newest first ↓" } else { "oldest first ↑" }}
                </button>
            </div>
            <div class="log-box" tabindex="0" node_ref=log_box on:scroll=keep_scroll(log_box, log_scroll)>
                <table data-testid="event-log">
                    <thead><tr><th>"seq"</th><th>"ms"</th><th>"endpoint"</th><th>"phase"</th><th>"call"</th><th>"result"</th><th>"what it means"</th></tr></thead>
                    <tbody>{log}</tbody>
                </table>
            </div>
        </section>
    }
}

/// How many of the bytes an endpoint last received its card shows: a card is a few hundred
/// pixels wide, and a student's program may send a megabyte at once (the log and the diagram
/// show the call, the trace file has every byte).
const CARD_RECEIVED_BYTES: usize = 32;

/// An endpoint's card: its fd, addresses and the kernel's view of it; `waiting` is the call
/// it waits in, as Python writes it.
/// Which Python call made a watched program's system call, where it is not the same name
/// (`sendall() → sendto(...)`), written first so that a narrow column still shows it.
fn python_call(event: &shared::Event) -> Option<impl IntoView + use<>> {
    let watched = event.watched.as_ref()?;
    let python = watched.python.as_ref()?;
    (python != &watched.syscall).then(|| {
        view! { <span class="python-call" title="the Python call that made this system call">{format!("{python}() → ")}</span> }
    })
}

fn endpoint_card(e: crate::model::EndpointView, waiting: Option<String>) -> impl IntoView {
    let testid = format!("endpoint-{}", e.id);
    let address = e
        .local
        .as_ref()
        .map_or_else(|| "no address yet".to_owned(), |a| a.to_string());
    let peer = e.peer.as_ref().map(|a| a.to_string());
    let (state, state_title) = match &e.kernel {
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
        Some(kernel) => (kernel.state.name().to_owned(), "as the kernel reports it"),
        None => (
            e.state.label().to_owned(),
            if e.state == crate::model::EndpointState::Closed {
                "the kernel no longer has the socket"
            } else {
                "from the calls so far"
            },
        ),
    };
    let queues = e.queue_rows();
    view! {
        <div class=format!("card role-{}", role_colour(&e.role)) data-testid=testid>
            <h3>{e.id.clone()} <span class="state" title=state_title data-testid="state">{state}</span></h3>
            <dl>
                <dt>"fd"</dt><dd>{e.fd.map_or_else(|| "-".to_owned(), |fd| fd.to_string())}</dd>
                <dt>"local"</dt><dd>{address}</dd>
                <dt>"peer"</dt><dd>{peer.unwrap_or_else(|| "-".to_owned())}</dd>
                {queues.into_iter().map(|(name, value)| view! { <dt title=crate::model::queue_meaning(name)>{name}</dt><dd>{value}</dd> }).collect_view()}
            </dl>
            {waiting.map(|call| view! { <p class="waiting">"called, no answer yet: " <code>{call}</code></p> })}
            {e.last_received.map(|data| view! { <p class="received">"received " <code>{data.preview(CARD_RECEIVED_BYTES)}</code></p> })}
            {e.last_error.map(|error| view! { <p class="error">{error}</p> })}
        </div>
    }
}
