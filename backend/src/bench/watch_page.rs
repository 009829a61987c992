//! A page watching `watch`'s programs, for the benchmark: a Socket Lab server taking
//! hand-ins on a socket of its own, and a WebSocket client that asks for watched runs and
//! times each event's arrival. Against it, the bare relay the latency goal is a ratio to: a
//! plain TCP server that forwards each line it reads to a plain WebSocket client.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use shared::{Call, ClientMessage, Phase, ServerMessage};
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::{BenchError, fail};

/// A served page's WebSocket, watching.
pub(super) struct WatchPage {
    /// The hand-in socket to give `watch` (`SOCKET_LAB_HUB`).
    pub(super) hub: PathBuf,
    /// Each `sendto`'s return the page received, with its bytes and when it arrived.
    pub(super) sends: mpsc::UnboundedReceiver<(Vec<u8>, Instant)>,
    _stop: oneshot::Sender<()>,
}

/// Serves the page in `static_dir` with a hub at `dir/hub/watch.sock`, and opens a page on it
/// that watches.
pub(super) async fn open(dir: &Path, static_dir: &Path) -> Result<WatchPage, BenchError> {
    let hub = dir.join("hub").join("watch.sock");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| fail("serving the watching page", error))?;
    let addr = listener
        .local_addr()
        .map_err(|error| fail("serving the watching page", error))?;
    let mut config = crate::Config::new(static_dir);
    config.hub_socket = Some(hub.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(crate::serve(listener, config, async {
        let _ = stopped.await;
    }));
    let (mut page, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .map_err(|error| fail("opening the watching page", error))?;
    let watch = serde_json::to_string(&ClientMessage::Watch).unwrap_or_default();
    page.send(Message::Text(watch.into()))
        .await
        .map_err(|error| fail("asking for watched runs", error))?;
    let (found, sends) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = page.next().await {
            let Message::Text(text) = frame else {
                continue;
            };
            let arrived = Instant::now();
            let Ok(ServerMessage::Events { events, .. }) = serde_json::from_str(text.as_str())
            else {
                continue;
            };
            for event in events {
                let is_sendto = event
                    .watched
                    .as_ref()
                    .is_some_and(|watched| watched.syscall == "sendto");
                if let (true, Phase::Return, Call::Sendto { data, .. } | Call::Send { data }) =
                    (is_sendto, event.phase, event.call)
                    && found.send((data.0, arrived)).is_err()
                {
                    return;
                }
            }
        }
    });
    // The hub is bound when the server starts: wait for its socket.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !hub.exists() {
        if Instant::now() > deadline {
            return Err(BenchError("the watching page's hub never opened".into()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(WatchPage {
        hub,
        sends,
        _stop: stop,
    })
}

/// The bare relay: a TCP port whose lines come out, as they are read, as WebSocket text
/// messages to one client of its own; the receiver has each line and when it arrived.
pub(super) async fn relay() -> Result<(u16, mpsc::UnboundedReceiver<(Vec<u8>, Instant)>), BenchError>
{
    let lines_in = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| fail("starting the relay", error))?;
    let ws_in = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| fail("starting the relay", error))?;
    let port = lines_in
        .local_addr()
        .map_err(|error| fail("starting the relay", error))?
        .port();
    let ws_addr = ws_in
        .local_addr()
        .map_err(|error| fail("starting the relay", error))?;
    tokio::spawn(async move {
        let Ok((ws, _)) = ws_in.accept().await else {
            return;
        };
        let _ = ws.set_nodelay(true);
        let Ok(mut ws) = tokio_tungstenite::accept_async(ws).await else {
            return;
        };
        let Ok((program, _)) = lines_in.accept().await else {
            return;
        };
        let mut lines = tokio::io::BufReader::new(program).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if ws.send(Message::Text(line.into())).await.is_err() {
                return;
            }
        }
    });
    let (client, _) = tokio_tungstenite::connect_async(format!("ws://{ws_addr}/"))
        .await
        .map_err(|error| fail("connecting to the relay", error))?;
    let (found, lines) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut client = client;
        while let Some(Ok(frame)) = client.next().await {
            if let Message::Text(text) = frame
                && found
                    .send((text.as_str().as_bytes().to_vec(), Instant::now()))
                    .is_err()
            {
                return;
            }
        }
    });
    Ok((port, lines))
}
