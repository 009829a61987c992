//! One browser's WebSocket session: hello, then scenarios played on request, or the user's
//! own calls in a sandbox.
//!
//! The session reads the browser's messages in one loop; a separate writer task owns the
//! sending half, fed through a bounded channel, so a run's events and replies to the browser
//! never wait on each other's locks. Each run is a task of its own; stopping it (a new Play,
//! a Stop, the browser leaving, the server shutting down) aborts the task, which drops its
//! lab and so closes every socket it opened.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use shared::message::{check_endpoint_name, close_code as app_close_code};
use shared::{
    Call, ClientMessage, ErrorCode, PROTOCOL_VERSION, RunOutcome, SANDBOX_ID, SandboxNetwork,
    ScenarioInfo, ServerMessage,
};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::capture::RunCapture;
use crate::hub::{Hub, WATCH_RUN_BASE};
use crate::lab::{Caller, EventSink, Lab, Places, RunItem, RunItems};
use crate::network::RunNetwork;
use crate::policy::Policy;
use crate::run::{Outside, OutsidePeer, Run};
use crate::scenario;
use crate::scenario::Gate;
use crate::server::{AppState, SessionPlace, Sessions};

/// The most messages waiting for the writer. Together with the run's event queue and
/// [`MAX_BATCH`], it bounds what a session holds for a page that reads slowly.
const OUTBOX_MESSAGES: usize = 4;

/// The query of the `/ws` handshake.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Handshake {
    token: Option<String>,
}

/// The bytes a session reads from its page at a time: a few of the page's messages.
const READ_BUFFER_BYTES: usize = 4096;

/// Upgrades `/ws` to a session, for the app's own pages only (see [`crate::access`]).
pub(crate) async fn handler(
    ws: WebSocketUpgrade,
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    Query(handshake): Query<Handshake>,
) -> Response {
    if let Err(refused) = state.access.check(&headers, handshake.token.as_deref()) {
        tracing::info!(reason = refused.reason, "refused a session");
        return (refused.status, refused.reason).into_response();
    }
    // tungstenite's defaults (64 MiB messages) would let one page make the server buffer
    // that much; the protocol's messages are a few hundred bytes.
    let max_message = state.policy.limits().max_message_bytes;
    let place = Sessions::admit(&state, client.ip());
    // Its 128 KiB read buffer, too, is sized for messages a thousand times larger than a
    // page's; a lab holds a thousand idle sessions, so each reads into a few KiB instead.
    ws.max_message_size(max_message)
        .max_frame_size(max_message)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| async move {
            match place {
                Ok(place) => session(socket, state, place).await,
                // The page cannot read an HTTP status from a refused handshake, so the
                // session opens only to say which limit it met, as its close reason.
                Err(reason) => refuse(socket, app_close_code::TRY_AGAIN_LATER, reason).await,
            }
        })
}

/// Answers whether `/ws` would let this page in, with the reason if not: 204, or 401/403
/// with the reason as text. Browsers hide why a WebSocket handshake failed, so the page asks
/// here after one fails, to tell "open the URL with the token" from "the backend is gone".
/// It says no more than `/ws` itself answers.
pub(crate) async fn access(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    Query(handshake): Query<Handshake>,
) -> Response {
    match state.access.check(&headers, handshake.token.as_deref()) {
        Ok(()) => axum::http::StatusCode::NO_CONTENT.into_response(),
        Err(refused) => (refused.status, refused.reason).into_response(),
    }
}

/// Closes a just-opened WebSocket with a code and the reason in words.
async fn refuse(mut socket: WebSocket, code: u16, reason: String) {
    tracing::info!(%reason, "refused a session");
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: close_reason(&reason).into(),
        })))
        .await;
}

/// A close frame's reason may be at most 123 bytes.
fn close_reason(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

/// What the writer task sends.
#[derive(Debug)]
enum Outgoing {
    Message(ServerMessage),
    Close { code: u16, reason: String },
}

type Outbox = mpsc::Sender<Outgoing>;

/// Counts a page's messages against `--max-messages-per-sec`: a bucket of as many tokens,
/// filled at that rate.
#[derive(Debug)]
struct RateLimit {
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    fn new(per_sec: u32) -> Self {
        RateLimit {
            per_sec: f64::from(per_sec),
            tokens: f64::from(per_sec),
            last: Instant::now(),
        }
    }

    /// Takes a token if there is one.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_sec;
        self.tokens = (self.tokens + refill).min(self.per_sec);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn session(socket: WebSocket, state: Arc<AppState>, place: SessionPlace) {
    let (ws_tx, mut ws_rx) = socket.split();
    let (outbox, outgoing) = mpsc::channel(OUTBOX_MESSAGES);
    let writer = tokio::spawn(write_messages(ws_tx, outgoing));
    let hello = ServerMessage::Hello {
        protocol: PROTOCOL_VERSION,
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        scenarios: scenario::CATALOG.iter().map(|s| s.info()).collect(),
    };
    let _ = outbox.send(Outgoing::Message(hello)).await;

    let limits = state.policy.limits();
    let mut runs = Runs::new(Arc::clone(&state.policy), Arc::clone(&state.hub));
    let mut shutdown = state.shutdown.clone();
    let mut rate = RateLimit::new(limits.max_messages_per_sec);
    let idle = limits.idle_timeout();
    let mut idle_since = Instant::now();
    loop {
        tokio::select! {
            incoming = ws_rx.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    idle_since = Instant::now();
                    if !rate.take() {
                        reply_error(&outbox, ErrorCode::LimitReached, format!(
                            "this page sent more than {} messages a second, the server's limit \
                             (--max-messages-per-sec); that message was not done, send it again",
                            limits.max_messages_per_sec
                        )).await;
                        continue;
                    }
                    match shared::message::decode_client_message(text.as_str()) {
                        Ok(message) => runs.handle(message, &outbox).await,
                        Err(error) => {
                            reply_error(&outbox, ErrorCode::MalformedMessage, format!(
                                "could not read that message ({error}); expected JSON such as \
                                 {{\"type\":\"play\",\"scenario\":\"simple-server-client\"}}"
                            )).await;
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    idle_since = Instant::now();
                    reply_error(&outbox, ErrorCode::BinaryMessage,
                        "binary frames are not part of the protocol; send JSON text".to_owned()).await;
                }
                // axum answers pings by itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Err(error)) => {
                    // A message over the size limit ends the session: the rest of it was
                    // never read, so nothing after it can be trusted to start where a
                    // message starts.
                    if is_too_big(&error) {
                        let _ = outbox.send(Outgoing::Close {
                            code: close_code::SIZE,
                            reason: format!(
                                "a message was larger than the server's limit of {} bytes \
                                 (--max-message-bytes)",
                                limits.max_message_bytes
                            ),
                        }).await;
                    }
                    break;
                }
                Some(Ok(Message::Close(_))) | None => break,
            },
            () = tokio::time::sleep_until(idle_since + idle) => {
                let _ = outbox.send(Outgoing::Close {
                    code: app_close_code::IDLE,
                    reason: format!(
                        "this page sent nothing for {} s, the server's limit (--idle-timeout)",
                        idle.as_secs()
                    ),
                }).await;
                break;
            }
            () = shutting_down(&mut shutdown) => {
                let _ = outbox.send(Outgoing::Close {
                    code: close_code::AWAY,
                    reason: "the server is shutting down".to_owned(),
                }).await;
                break;
            }
        }
    }
    runs.stop_current(&outbox, "the session ended").await;
    drop(outbox);
    let _ = writer.await;
    drop(place);
}

/// Whether reading failed because a message or frame was over the size limit.
fn is_too_big(error: &axum::Error) -> bool {
    use std::error::Error as _;
    // axum wraps tungstenite's error; its source is that error.
    error
        .source()
        .and_then(|inner| inner.downcast_ref::<tokio_tungstenite::tungstenite::Error>())
        .is_some_and(|inner| matches!(inner, tokio_tungstenite::tungstenite::Error::Capacity(_)))
}

/// Completes once the server starts shutting down.
async fn shutting_down(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // An error means the server's side of the channel is gone, which also means shutdown.
    let _ = shutdown.wait_for(|down| *down).await;
}

async fn reply_error(outbox: &Outbox, code: ErrorCode, message: String) {
    let _ = outbox
        .send(Outgoing::Message(ServerMessage::Error { code, message }))
        .await;
}

/// The session's runs: at most one in progress, a scenario or the sandbox.
#[derive(Debug)]
struct Runs {
    last_id: u64,
    current: Option<Current>,
    policy: Arc<Policy>,
    hub: Arc<Hub>,
    /// The session's own network, made at its first need: its sandbox opens its IP sockets
    /// there, and, where Socket Lab has no networks of its own, every run (the machine's).
    network: Option<RunNetwork>,
    /// Where the session's sandbox opens its IP sockets (`ClientMessage::Sandbox`).
    sandbox_network: SandboxNetwork,
}

#[derive(Debug)]
enum Current {
    /// A scenario playing in a task of its own; `gate` lets its calls through one at a time
    /// when it pauses before each (it is gone once the run has ended).
    Scenario {
        run: u64,
        task: JoinHandle<()>,
        gate: Option<Weak<Gate>>,
    },
    /// The user's sandbox.
    Sandbox(Sandbox),
    /// The programs `socket-lab watch` runs, one watched run after another; `shown` is the
    /// page's number of the run being sent, 0 between runs.
    Watching {
        task: JoinHandle<()>,
        shown: Arc<AtomicU64>,
    },
}

impl Drop for Runs {
    /// Ending a network of Socket Lab's waits for its capture thread and the kernel (about
    /// 10 ms: closing its packet socket waits for an RCU grace period), so the session's
    /// sandbox network ends on a blocking thread, not on the runtime's workers.
    fn drop(&mut self) {
        if let Some(network) = self.network.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn_blocking(move || drop(network));
        }
    }
}

impl Runs {
    fn new(policy: Arc<Policy>, hub: Arc<Hub>) -> Self {
        Runs {
            last_id: 0,
            current: None,
            policy,
            hub,
            network: None,
            sandbox_network: SandboxNetwork::default(),
        }
    }

    /// The session's network, made the first time it is asked for. A server that lets
    /// sessions reach networks beyond loopback (`--allow-net`) keeps them on the machine's,
    /// which alone reaches those.
    fn network(&mut self) -> RunNetwork {
        let policy = &self.policy;
        self.network
            .get_or_insert_with(|| {
                if policy.allows_beyond_loopback() {
                    RunNetwork::machine(
                        "this server lets sessions reach networks beyond loopback \
                         (--allow-net), so runs use the machine's network",
                    )
                } else {
                    RunNetwork::own()
                }
            })
            .clone()
    }

    /// A network for one scenario run alone, made ahead by the process's pool where it could
    /// be. Where sessions may reach beyond loopback, or Socket Lab has no networks of its own,
    /// the run shares the session's (the machine's).
    async fn run_network(&mut self) -> RunNetwork {
        if self.policy.allows_beyond_loopback()
            || self.network.as_ref().is_some_and(|n| !n.is_own())
        {
            return self.network();
        }
        let network = crate::network_pool::network_for_a_run().await;
        if !network.is_own() {
            // No networks of Socket Lab's here: every run of the session, and its sandbox,
            // use the machine's, and none is tried again.
            self.network.get_or_insert_with(|| network.clone());
        }
        network
    }

    async fn handle(&mut self, message: ClientMessage, outbox: &Outbox) {
        match message {
            ClientMessage::Play {
                scenario,
                pause_before_calls,
                quiet,
                outside,
            } => {
                let Some(scenario) = scenario::find(&scenario) else {
                    let known: Vec<&str> = scenario::CATALOG.iter().map(|s| s.id).collect();
                    reply_error(
                        outbox,
                        ErrorCode::UnknownScenario,
                        format!(
                            "there is no scenario '{scenario}'; the scenarios are: {}",
                            known.join(", ")
                        ),
                    )
                    .await;
                    return;
                };
                let policy = Arc::clone(&self.policy);
                let prepared = match outside {
                    None => {
                        let network = self.run_network().await;
                        Ok(if quiet {
                            Run::prepare_quiet(scenario, policy, &network)
                        } else {
                            Run::prepare(scenario, policy, &network)
                        })
                    }
                    Some(outside) => match outside_peer(&outside) {
                        Ok(peer) => Run::prepare_with_outside(scenario, peer, policy)
                            .map_err(|error| error.to_string()),
                        Err(problem) => Err(problem),
                    },
                };
                let (mut run, events) = match prepared {
                    Ok(prepared) => prepared,
                    Err(problem) => {
                        reply_error(outbox, ErrorCode::OutsideRoleRefused, problem).await;
                        return;
                    }
                };
                self.stop_current(outbox, "another run was started").await;
                self.last_id += 1;
                let run_id = self.last_id;
                let gate = pause_before_calls.then(|| run.pause_before_calls());
                let task = tokio::spawn(forward_run(
                    run_id,
                    scenario.info(),
                    run,
                    events,
                    outbox.clone(),
                ));
                self.current = Some(Current::Scenario {
                    run: run_id,
                    task,
                    gate,
                });
            }
            ClientMessage::Sandbox { network } => {
                self.sandbox_network = network;
                self.start_sandbox(outbox, "the sandbox was started afresh")
                    .await;
            }
            ClientMessage::Watch => {
                self.stop_current(outbox, "the page shows watched programs instead")
                    .await;
                let shown = Arc::new(AtomicU64::new(0));
                let task = tokio::spawn(forward_watched(
                    Arc::clone(&self.hub),
                    outbox.clone(),
                    Arc::clone(&shown),
                ));
                self.current = Some(Current::Watching { task, shown });
            }
            ClientMessage::Next => {
                let gate = match &self.current {
                    Some(Current::Scenario {
                        gate: Some(gate), ..
                    }) => gate.upgrade(),
                    _ => None,
                };
                if !gate.is_some_and(|gate| gate.open_once()) {
                    reply_error(
                        outbox,
                        ErrorCode::NothingToResume,
                        "no paused run waits to make a call (play a scenario with \
                         pause_before_calls, or wait for the call in progress to return)"
                            .to_owned(),
                    )
                    .await;
                }
            }
            ClientMessage::Stop => {
                if !self.stop_current(outbox, "stopped by the user").await {
                    reply_error(
                        outbox,
                        ErrorCode::NoRunInProgress,
                        "there is no run in progress to stop".to_owned(),
                    )
                    .await;
                }
            }
            ClientMessage::Call { endpoint, call } => {
                if let Err(problem) = check_endpoint_name(&endpoint, call.creates_endpoint()) {
                    reply_error(outbox, ErrorCode::InvalidEndpoint, problem).await;
                    return;
                }
                if matches!(&self.current, Some(Current::Scenario { task, .. }) if !task.is_finished())
                {
                    reply_error(
                        outbox,
                        ErrorCode::ScenarioInProgress,
                        "a scenario is playing; stop it before making calls of your own".to_owned(),
                    )
                    .await;
                    return;
                }
                if !matches!(self.current, Some(Current::Sandbox(_))) {
                    self.start_sandbox(outbox, "the sandbox was started").await;
                }
                if let Some(Current::Sandbox(sandbox)) = self.current.as_mut()
                    && let Err(problem) = sandbox.call(endpoint, call).await
                {
                    reply_error(outbox, ErrorCode::LimitReached, problem).await;
                }
            }
        }
    }

    /// Stops the run in progress (saying `reason`) and starts a sandbox run on the network
    /// the session chose for its sandbox.
    async fn start_sandbox(&mut self, outbox: &Outbox, reason: &str) {
        self.stop_current(outbox, reason).await;
        self.last_id += 1;
        let network = match self.sandbox_network {
            SandboxNetwork::Own => self.network(),
            // Nothing is captured there: a packet socket on the machine's loopback would
            // filter every packet of the machine's for as long as the sandbox is open, and
            // the sandbox's sockets may have any loopback address.
            SandboxNetwork::Machine => RunNetwork::uncaptured(
                "the sandbox is on the machine's network, so that your own programs (nc, a \
                 client.py) can reach its sockets; put it on Socket Lab's network to see its \
                 packets",
            ),
        };
        let sandbox = Sandbox::start(self.last_id, Arc::clone(&self.policy), outbox, network).await;
        self.current = Some(Current::Sandbox(sandbox));
    }

    /// Stops the run in progress, if any, and tells the browser. Returns whether there was one.
    async fn stop_current(&mut self, outbox: &Outbox, reason: &str) -> bool {
        let (run, forwarder) = match self.current.take() {
            None => return false,
            Some(Current::Watching { task, shown }) => {
                task.abort();
                let _ = task.await;
                // Stopping shows no more of the watched programs; they go on running.
                match shown.load(Ordering::Acquire) {
                    0 => return true,
                    run => (run, None),
                }
            }
            Some(Current::Scenario { task, .. }) if task.is_finished() => return false,
            Some(Current::Scenario { run, task, .. }) => {
                task.abort();
                // Waiting for the aborted task makes sure none of its messages follows
                // RunFinished.
                let _ = task.await;
                (run, None)
            }
            Some(Current::Sandbox(sandbox)) => {
                let run = sandbox.run;
                (run, Some(sandbox.stop().await))
            }
        };
        if let Some(forwarder) = forwarder {
            // The lab is gone, so its event stream ends once the forwarder has sent the rest.
            let _ = forwarder.await;
        }
        let outcome = RunOutcome::Cancelled {
            reason: reason.to_owned(),
        };
        let _ = outbox
            .send(Outgoing::Message(ServerMessage::RunFinished {
                run,
                outcome,
            }))
            .await;
        true
    }
}

/// How long a run waits for an outside program when the page does not say.
const DEFAULT_OUTSIDE_TIMEOUT: Duration = Duration::from_secs(600);

/// The longest a run waits for an outside program.
const MAX_OUTSIDE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Checks what the page asked for an outside program.
fn outside_peer(outside: &shared::OutsideRole) -> Result<OutsidePeer, String> {
    let role = match outside.role.as_str() {
        "client" => Outside::Client,
        "server" => Outside::Server,
        other => {
            return Err(format!(
                "an outside program can play the client or the server, not '{other}'"
            ));
        }
    };
    if outside.port == 0 {
        return Err("the port for an outside program must be 1 to 65535".to_owned());
    }
    let timeout = outside
        .timeout_secs
        .map_or(DEFAULT_OUTSIDE_TIMEOUT, |secs| {
            Duration::from_secs(u64::from(secs))
        })
        .min(MAX_OUTSIDE_TIMEOUT);
    Ok(OutsidePeer {
        role,
        port: outside.port,
        timeout,
    })
}

/// The most sandbox calls that may be waiting at once (each `accept` or `recv` that has not
/// returned).
const MAX_WAITING_CALLS: usize = 64;

/// A session's sandbox: the user's own sockets and the calls waiting on them.
#[derive(Debug)]
struct Sandbox {
    run: u64,
    lab: Arc<Lab>,
    /// The sandbox's share of the session network's capture.
    capture: Option<RunCapture>,
    waiting: JoinSet<()>,
    forwarder: JoinHandle<()>,
}

impl Sandbox {
    /// Starts a sandbox run and tells the browser.
    async fn start(run: u64, policy: Arc<Policy>, outbox: &Outbox, network: RunNetwork) -> Self {
        let (sink, events) = EventSink::new(policy.limits().event_queue);
        let places = Places::new();
        let unix_dir = places.dir().to_string_lossy().into_owned();
        let lab = Arc::new(
            Lab::new(sink, places, policy, network)
                .outside_facing()
                .with_call_time_limit(),
        );
        let started = ServerMessage::RunStarted {
            run,
            scenario: ScenarioInfo {
                id: SANDBOX_ID.to_owned(),
                title: "Sandbox".to_owned(),
                summary: "Your own sockets: any call, in any order, on real kernel sockets."
                    .to_owned(),
                outside_roles: Vec::new(),
            },
            programs: Vec::new(),
            unix_dir: Some(unix_dir),
        };
        let _ = outbox.send(Outgoing::Message(started)).await;
        let capture = lab.network().attach(lab.sink(), None);
        Sandbox {
            run,
            capture,
            lab,
            waiting: JoinSet::new(),
            forwarder: tokio::spawn(forward_events(run, events, outbox.clone())),
        }
    }

    /// Performs a call. A call the kernel answers at once is done before this returns, so the
    /// user's calls happen in the order they were sent; a call that has to wait goes on in
    /// the background, so that the next call can be the one it waits for.
    async fn call(&mut self, endpoint: String, call: Call) -> Result<(), String> {
        while self.waiting.try_join_next().is_some() {}
        if self.waiting.len() >= MAX_WAITING_CALLS {
            return Err(format!(
                "{MAX_WAITING_CALLS} calls are already waiting in this sandbox; close some \
                 sockets first"
            ));
        }
        let lab = Arc::clone(&self.lab);
        let mut performing = Box::pin(async move {
            let caller = Caller {
                role: SANDBOX_ID,
                endpoint: &endpoint,
                line: None,
            };
            let conn_endpoint = format!("{endpoint}.conn");
            // The outcome is in the return event; nothing else needs it.
            let _ = lab
                .perform(&caller, call, Some(&conn_endpoint), || {})
                .await;
        });
        let first_poll =
            std::future::poll_fn(|context| Poll::Ready(performing.as_mut().poll(context))).await;
        if first_poll.is_pending() {
            self.waiting.spawn(performing);
        }
        Ok(())
    }

    /// Stops every waiting call and closes every socket; returns the event forwarder, which
    /// ends once it has sent the last events.
    async fn stop(mut self) -> JoinHandle<()> {
        self.waiting.shutdown().await;
        drop(self.lab);
        if let Some(capture) = self.capture {
            capture.finish();
        }
        self.forwarder
    }
}

/// Sends the watched runs of the hub, one after another: for each, RunStarted, its programs
/// and events as they come, RunFinished. Waits for the first when there is none yet.
async fn forward_watched(hub: Arc<Hub>, outbox: Outbox, shown: Arc<AtomicU64>) {
    let mut changes = hub.changes();
    let mut after = 0;
    loop {
        let subscription = loop {
            if let Some(subscription) = hub.subscribe(after) {
                break subscription;
            }
            if changes.changed().await.is_err() {
                return;
            }
        };
        after = subscription.id;
        let run = WATCH_RUN_BASE + subscription.id;
        let started = ServerMessage::RunStarted {
            run,
            scenario: subscription.info,
            programs: Vec::new(),
            unix_dir: None,
        };
        if outbox.send(Outgoing::Message(started)).await.is_err() {
            return;
        }
        shown.store(run, Ordering::Release);
        forward_events(run, subscription.items, outbox.clone()).await;
        let outcome = hub
            .outcome(subscription.id)
            .unwrap_or(RunOutcome::Completed);
        // Told as finished before it is: a stop from now on has nothing to finish.
        shown.store(0, Ordering::Release);
        let finished = ServerMessage::RunFinished { run, outcome };
        if outbox.send(Outgoing::Message(finished)).await.is_err() {
            return;
        }
    }
}

/// Plays a run and sends its messages: RunStarted, its events in batches, RunFinished.
async fn forward_run(
    run_id: u64,
    scenario: shared::ScenarioInfo,
    run: Run,
    events: RunItems,
    outbox: Outbox,
) {
    let started = ServerMessage::RunStarted {
        run: run_id,
        scenario,
        programs: run.programs(),
        unix_dir: Some(run.unix_dir().to_owned()),
    };
    if outbox.send(Outgoing::Message(started)).await.is_err() {
        return;
    }
    let (outcome, ()) = tokio::join!(run.play(), forward_events(run_id, events, outbox.clone()));
    let _ = outbox
        .send(Outgoing::Message(ServerMessage::RunFinished {
            run: run_id,
            outcome,
        }))
        .await;
}

/// Sends a run's events in batches, and its pauses, until the run's stream ends.
///
/// A quiet run's events go out as soon as they are made, so the page shows each call as it
/// happens. A busy run's (more than [`BUSY_EVENTS_PER_SEC`]) are gathered into one message
/// every [`FRAME_INTERVAL`]: a page cannot draw more often than that anyway, and a message
/// per call would cost the page more in frames than in events.
async fn forward_events(run_id: u64, mut items: RunItems, outbox: Outbox) {
    let mut pacer = Pacer::new(Instant::now());
    let mut frame = Frame::default();
    let mut ended = false;
    while !ended {
        let Some(first) = items.recv().await else {
            break;
        };
        let mut next = Some(first);
        loop {
            if let Some(item) = next.take() {
                // A paused run makes no more calls until the user has seen its notice, and the
                // events after a program name it: each goes at once, after the events before.
                let notice = match item {
                    RunItem::Event(event) => {
                        frame.push(event);
                        pacer.count(1, Instant::now());
                        None
                    }
                    RunItem::Dropped(dropped) => {
                        frame.dropped.push(dropped);
                        None
                    }
                    RunItem::Paused(next) => Some(ServerMessage::Paused { run: run_id, next }),
                    RunItem::Program(program) => Some(ServerMessage::Program {
                        run: run_id,
                        program,
                    }),
                    RunItem::Packet(packet) => {
                        frame.packets.push(packet);
                        pacer.count(1, Instant::now());
                        None
                    }
                    RunItem::Capture(capture) => Some(ServerMessage::Capture {
                        run: run_id,
                        capture,
                    }),
                };
                if let Some(notice) = notice {
                    if !frame.send(run_id, &outbox).await
                        || outbox.send(Outgoing::Message(notice)).await.is_err()
                    {
                        return;
                    }
                    pacer.sent(Instant::now());
                }
            }
            if frame.events.len() + frame.packets.len() >= MAX_BATCH {
                break;
            }
            if let Some(item) = items.try_recv() {
                next = Some(item);
                continue;
            }
            // Nothing more is ready: a quiet run's frame goes now, a busy run's when due.
            let Some(due) = pacer.due(Instant::now()) else {
                break;
            };
            tokio::select! {
                item = items.recv() => match item {
                    Some(item) => next = Some(item),
                    None => {
                        ended = true;
                        break;
                    }
                },
                () = tokio::time::sleep_until(due) => break,
            }
        }
        // A full frame of a busy run still waits its turn; the run's queue holds (or counts)
        // what comes meanwhile.
        if let Some(due) = pacer.due(Instant::now())
            && !ended
        {
            tokio::time::sleep_until(due).await;
        }
        if !frame.send(run_id, &outbox).await {
            return;
        }
        pacer.sent(Instant::now());
    }
    frame.send(run_id, &outbox).await;
}

/// The most events in one message: at 60 messages a second, 245,760 events a second. A run
/// that makes more fills its queue, and the events that find it full are counted as dropped.
const MAX_BATCH: usize = 4096;

/// A run that makes more events a second than this is busy: its events go out in at most
/// 60 messages a second.
const BUSY_EVENTS_PER_SEC: u64 = 2_000;

/// The least time between two messages of events of a busy run: 1/60 s.
const FRAME_INTERVAL: Duration = Duration::from_micros(16_667);

/// How long a run's rate is measured over before it counts as quiet again.
const RATE_WINDOW: Duration = Duration::from_millis(100);

/// The most bytes of events one message carries, about: 60 such messages a second are as
/// much JSON as a page can read and still draw. A busy run's events beyond it are counted as
/// dropped in the message, so that a student's firehose never freezes the page.
const MAX_FRAME_BYTES: usize = 256 * 1024;

/// The bytes of a message that only calls other than sends and receives may take: room for
/// a few dozen of them, whatever a firehose's data calls have filled.
const FRAME_RESERVE_BYTES: usize = 16 * 1024;

/// The events and dropped ranges of one message, gathered in `seq` order.
#[derive(Debug, Default)]
struct Frame {
    events: Vec<shared::Event>,
    dropped: Vec<shared::Dropped>,
    /// The run's packets since the last message, sent after the events.
    packets: Vec<shared::Packet>,
    /// The JSON bytes of `events`, about.
    bytes: usize,
}

impl Frame {
    /// Adds an event, or counts it as dropped if the message is full. Sends and receives
    /// leave the last [`FRAME_RESERVE_BYTES`] to the other calls, so that an accept or a
    /// close in the middle or at the end of a firehose still reaches the page whole.
    fn push(&mut self, event: shared::Event) {
        let size = json_size_estimate(&event);
        let limit = if event.call.moves_data() {
            MAX_FRAME_BYTES - FRAME_RESERVE_BYTES
        } else {
            MAX_FRAME_BYTES
        };
        if self.events.is_empty() || self.bytes + size <= limit {
            self.bytes += size;
            self.events.push(event);
            return;
        }
        let extended = self
            .dropped
            .last_mut()
            .is_some_and(|range| range.extend(&event));
        if !extended {
            self.dropped.push(shared::Dropped::of(&event));
        }
    }

    /// Sends what was gathered as one message, if anything; `false` once the browser is gone.
    async fn send(&mut self, run_id: u64, outbox: &Outbox) -> bool {
        if !(self.events.is_empty() && self.dropped.is_empty()) {
            let message = ServerMessage::Events {
                run: run_id,
                events: std::mem::take(&mut self.events),
                dropped: std::mem::take(&mut self.dropped),
            };
            self.bytes = 0;
            if outbox.send(Outgoing::Message(message)).await.is_err() {
                return false;
            }
        }
        if self.packets.is_empty() {
            return true;
        }
        let message = ServerMessage::Packets {
            run: run_id,
            packets: std::mem::take(&mut self.packets),
        };
        outbox.send(Outgoing::Message(message)).await.is_ok()
    }
}

/// About how many bytes an event is in JSON, without writing it: what every event has, each
/// socket's kernel view, and its bytes three times over (`len`, `text` and `hex`).
fn json_size_estimate(event: &shared::Event) -> usize {
    use shared::{Call, ReturnValue};
    let sent = match &event.call {
        Call::Send { data, .. } | Call::Sendall { data, .. } | Call::Sendto { data, .. } => {
            data.len()
        }
        _ => 0,
    };
    let received = match event.result.as_ref().map(|result| &result.value) {
        Some(ReturnValue::Received { data, .. }) => data.len(),
        _ => 0,
    };
    300 + 150 * event.kernel.len() + 3 * (sent + received)
}

/// Decides when a run's next message of events may go: at once while the run is quiet, one
/// [`FRAME_INTERVAL`] after the last while it is busy.
#[derive(Debug)]
struct Pacer {
    window_start: Instant,
    window_events: u64,
    busy: bool,
    last_frame: Option<Instant>,
}

impl Pacer {
    fn new(now: Instant) -> Self {
        Pacer {
            window_start: now,
            window_events: 0,
            busy: false,
            last_frame: None,
        }
    }

    /// Counts `events` made by `now`.
    fn count(&mut self, events: u64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= RATE_WINDOW {
            // The rate over the window that ended decides until the next one ends.
            let per_sec = self.window_events as f64 / elapsed.as_secs_f64();
            self.busy = per_sec > BUSY_EVENTS_PER_SEC as f64;
            self.window_start = now;
            self.window_events = 0;
        }
        self.window_events += events;
        // A burst is busy as soon as it is, not only once its window ends.
        let burst = BUSY_EVENTS_PER_SEC * RATE_WINDOW.as_millis() as u64 / 1000;
        if self.window_events > burst {
            self.busy = true;
        }
    }

    /// Notes that a message went out `now`.
    fn sent(&mut self, now: Instant) {
        self.last_frame = Some(now);
    }

    /// When the next message may go, if not at once.
    fn due(&self, now: Instant) -> Option<Instant> {
        let due = self.last_frame? + FRAME_INTERVAL;
        (self.busy && due > now).then_some(due)
    }
}

/// Sends what the session queues until the queue closes or the browser is gone.
async fn write_messages(
    mut ws_tx: futures_util::stream::SplitSink<WebSocket, Message>,
    mut outgoing: mpsc::Receiver<Outgoing>,
) {
    'session: while let Some(first) = outgoing.recv().await {
        // What is queued already goes out in one write: a run's last events and its
        // RunFinished, say, cost the page one wake-up, not two.
        let mut next = Some(first);
        while let Some(item) = next.take() {
            if let Some(frame) = frame_of(item)
                && ws_tx.feed(frame).await.is_err()
            {
                break 'session;
            }
            next = outgoing.try_recv().ok();
        }
        if ws_tx.flush().await.is_err() {
            break;
        }
    }
    let _ = ws_tx.close().await;
}

/// The WebSocket frame of an outgoing message; `None` for one that cannot be written.
fn frame_of(item: Outgoing) -> Option<Message> {
    Some(match item {
        Outgoing::Message(message) => match serde_json::to_string(&message) {
            Ok(json) => Message::Text(json.into()),
            Err(error) => {
                tracing::error!(%error, "could not serialise a server message");
                return None;
            }
        },
        Outgoing::Close { code, reason } => Message::Close(Some(CloseFrame {
            code,
            reason: close_reason(&reason).into(),
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, call: shared::Call) -> shared::Event {
        shared::Event {
            seq,
            ..shared::Event::enter("server", "server.con", None, call)
        }
    }

    #[test]
    fn a_full_message_still_takes_the_calls_that_are_not_data() {
        let mut frame = Frame::default();
        let data = shared::Bytes(vec![b'x'; 1024]);
        let mut seq = 0;
        // A firehose's sends fill the message, and then its receives (smaller, without
        // data) fill what is left, until no data call fits: those are counted.
        let mut first_dropped = None;
        for call in [
            shared::Call::Sendall { data: data.clone() },
            shared::Call::Recv { bufsize: 1024 },
        ] {
            while frame.dropped.iter().map(|range| range.count).sum::<u64>() < 2 {
                frame.push(event(seq, call.clone()));
                first_dropped = first_dropped.or(frame.dropped.first().map(|r| r.first_seq));
                seq += 1;
            }
            frame.dropped.clear();
        }
        // The close still comes whole, and the sends after it are counted.
        frame.push(event(seq, shared::Call::Close));
        frame.push(event(seq + 1, shared::Call::Sendall { data }));
        assert_eq!(frame.events.last().map(|event| event.seq), Some(seq));
        assert_eq!(
            frame
                .dropped
                .iter()
                .map(|range| range.first_seq)
                .collect::<Vec<_>>(),
            [seq + 1]
        );
        assert!(first_dropped.is_some());
        assert!(frame.bytes <= MAX_FRAME_BYTES);
    }

    /// Counts `count` events spread evenly over `span`, starting at `start`.
    fn spread(pacer: &mut Pacer, start: Instant, span: Duration, count: u32) -> Instant {
        let step = span / count;
        let mut now = start;
        for _ in 0..count {
            now += step;
            pacer.count(1, now);
        }
        now
    }

    #[test]
    fn a_quiet_run_sends_each_event_at_once() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start);
        // 1,000 events a second for two seconds, a message after each.
        let mut now = start;
        for _ in 0..2000 {
            now += Duration::from_millis(1);
            pacer.count(1, now);
            assert_eq!(pacer.due(now), None);
            pacer.sent(now);
        }
    }

    #[test]
    fn a_busy_run_sends_at_most_one_message_a_frame_and_a_quiet_one_again_after() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start);
        pacer.sent(start);
        // 100,000 events a second: busy within the first window.
        let now = spread(&mut pacer, start, Duration::from_millis(10), 1000);
        assert_eq!(pacer.due(now), Some(start + FRAME_INTERVAL));
        pacer.sent(now);
        assert_eq!(pacer.due(now), Some(now + FRAME_INTERVAL));
        assert_eq!(pacer.due(now + FRAME_INTERVAL), None);
        // Then ten events a second: quiet once a window has shown it.
        let later = spread(&mut pacer, now, Duration::from_secs(1), 10);
        assert_eq!(pacer.due(later), None);
    }
}
