//! One browser's WebSocket session: hello, then scenarios played on request.
//!
//! The session reads the browser's messages in one loop; a separate writer task owns the
//! sending half, fed through a bounded channel, so a run's events and replies to the browser
//! never wait on each other's locks. Each run is a task of its own; stopping it (a new Play,
//! a Stop, the browser leaving, the server shutting down) aborts the task, which drops its
//! lab and so closes every socket it opened.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use shared::{ClientMessage, ErrorCode, PROTOCOL_VERSION, RunOutcome, ServerMessage};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::run::Run;
use crate::scenario;
use crate::server::AppState;

/// The largest message a browser may send. The protocol's messages are a few dozen bytes;
/// tungstenite's default (64 MiB) would let one browser make the server buffer that much.
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

/// The most events sent in one WebSocket message: enough to keep frames few when a run is
/// busy, small enough that the page draws each batch at once.
const MAX_BATCH: usize = 256;

/// Upgrades `/ws` to a session.
pub(crate) async fn handler(ws: WebSocketUpgrade, State(state): State<Arc<AppState>>) -> Response {
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| session(socket, state))
}

/// What the writer task sends.
#[derive(Debug)]
enum Outgoing {
    Message(ServerMessage),
    Close { code: u16, reason: &'static str },
}

type Outbox = mpsc::Sender<Outgoing>;

async fn session(socket: WebSocket, state: Arc<AppState>) {
    let (ws_tx, mut ws_rx) = socket.split();
    let (outbox, outgoing) = mpsc::channel(64);
    let writer = tokio::spawn(write_messages(ws_tx, outgoing));
    let hello = ServerMessage::Hello {
        protocol: PROTOCOL_VERSION,
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        scenarios: scenario::CATALOG.iter().map(|s| s.info()).collect(),
    };
    let _ = outbox.send(Outgoing::Message(hello)).await;

    let mut runs = Runs::default();
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            incoming = ws_rx.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    match serde_json::from_str::<ClientMessage>(text.as_str()) {
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
                    reply_error(&outbox, ErrorCode::BinaryMessage,
                        "binary frames are not part of the protocol; send JSON text".to_owned()).await;
                }
                // axum answers pings by itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
            () = shutting_down(&mut shutdown) => {
                let _ = outbox.send(Outgoing::Close {
                    code: close_code::AWAY,
                    reason: "the server is shutting down",
                }).await;
                break;
            }
        }
    }
    runs.stop_current(&outbox, "the session ended").await;
    drop(outbox);
    let _ = writer.await;
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

/// The session's runs: at most one in progress.
#[derive(Debug, Default)]
struct Runs {
    last_id: u64,
    current: Option<(u64, JoinHandle<()>)>,
}

impl Runs {
    async fn handle(&mut self, message: ClientMessage, outbox: &Outbox) {
        match message {
            ClientMessage::Play { scenario } => {
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
                self.stop_current(outbox, "another run was started").await;
                self.last_id += 1;
                let run_id = self.last_id;
                let (run, events) = Run::prepare(scenario);
                let task = tokio::spawn(forward_run(
                    run_id,
                    scenario.info(),
                    run,
                    events,
                    outbox.clone(),
                ));
                self.current = Some((run_id, task));
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
        }
    }

    /// Stops the run in progress, if any, and tells the browser. Returns whether there was one.
    async fn stop_current(&mut self, outbox: &Outbox, reason: &str) -> bool {
        let Some((run, task)) = self.current.take() else {
            return false;
        };
        if task.is_finished() {
            return false;
        }
        task.abort();
        // Waiting for the aborted task makes sure none of its messages follows RunFinished.
        let _ = task.await;
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

/// Plays a run and sends its messages: RunStarted, its events in batches, RunFinished.
async fn forward_run(
    run_id: u64,
    scenario: shared::ScenarioInfo,
    run: Run,
    mut events: mpsc::UnboundedReceiver<shared::Event>,
    outbox: Outbox,
) {
    let started = ServerMessage::RunStarted {
        run: run_id,
        scenario,
        programs: run.programs(),
    };
    if outbox.send(Outgoing::Message(started)).await.is_err() {
        return;
    }
    let forward = async {
        while let Some(first) = events.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match events.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            let message = ServerMessage::Events {
                run: run_id,
                events: batch,
            };
            if outbox.send(Outgoing::Message(message)).await.is_err() {
                break;
            }
        }
    };
    let (outcome, ()) = tokio::join!(run.play(), forward);
    let _ = outbox
        .send(Outgoing::Message(ServerMessage::RunFinished {
            run: run_id,
            outcome,
        }))
        .await;
}

/// Sends what the session queues until the queue closes or the browser is gone.
async fn write_messages(
    mut ws_tx: futures_util::stream::SplitSink<WebSocket, Message>,
    mut outgoing: mpsc::Receiver<Outgoing>,
) {
    while let Some(item) = outgoing.recv().await {
        let frame = match item {
            Outgoing::Message(message) => match serde_json::to_string(&message) {
                Ok(json) => Message::Text(json.into()),
                Err(error) => {
                    tracing::error!(%error, "could not serialise a server message");
                    continue;
                }
            },
            Outgoing::Close { code, reason } => Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
        };
        if ws_tx.send(frame).await.is_err() {
            break;
        }
    }
    let _ = ws_tx.close().await;
}
