//! The real `backend` binary stopped with SIGTERM while pages are connected: every session
//! is closed with 1001, every file removed, and the process gone within 5 seconds.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use shared::ServerMessage;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads until a message that `wanted` picks.
async fn until<T>(socket: &mut Socket, wanted: impl Fn(ServerMessage) -> Option<T>) -> T {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("no message within 10 s")
            .expect("the session ended")
            .unwrap();
        if let Message::Text(text) = frame
            && let Some(found) = wanted(serde_json::from_str(text.as_str()).unwrap())
        {
            return found;
        }
    }
}

/// The real binary serving `static_dir` on a free loopback port, and its `/ws` URL.
fn start_backend(static_dir: &std::path::Path) -> (std::process::Child, String) {
    let port = common::free_port();
    let server = Command::new(env!("CARGO_BIN_EXE_backend"))
        .args(["--addr", &format!("127.0.0.1:{port}"), "--static-dir"])
        .arg(static_dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (server, format!("ws://127.0.0.1:{port}/ws"))
}

/// A session of the server at `url`, once it listens (until `deadline`).
async fn connect_by(url: &str, deadline: Instant) -> Socket {
    loop {
        match tokio_tungstenite::connect_async(url).await {
            Ok((socket, _)) => break socket,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("the server never listened: {error}"),
        }
    }
}

/// The run directory a `RunStarted` names.
fn run_dir(message: ServerMessage) -> Option<PathBuf> {
    match message {
        ServerMessage::RunStarted { unix_dir, .. } => unix_dir.map(PathBuf::from),
        _ => None,
    }
}

#[tokio::test]
async fn sigterm_closes_every_session_removes_every_file_and_exits_within_5_s() {
    let empty = tempdir();
    let (mut server, url) = start_backend(&empty);
    let deadline = Instant::now() + Duration::from_secs(20);
    let connect = async || connect_by(&url, deadline).await;

    // A sandbox with a Unix socket file, a paused scenario, and a page doing nothing.
    let mut sandbox = connect().await;
    let call = |endpoint: &str, call: serde_json::Value| {
        Message::Text(common::call_message(endpoint, call).to_string().into())
    };
    sandbox
        .send(call(
            "u",
            json!({"call": "socket", "args": {"family": "AF_UNIX", "type": "SOCK_STREAM"}}),
        ))
        .await
        .unwrap();
    let sandbox_dir = until(&mut sandbox, run_dir).await;
    sandbox
        .send(call(
            "u",
            json!({"call": "bind", "args": {"address": {"family": "AF_UNIX", "path": "lab.sock"}}}),
        ))
        .await
        .unwrap();
    until(&mut sandbox, |message| match message {
        ServerMessage::Events { events, .. } => events
            .iter()
            .any(|e| e.call.name() == "bind" && e.result.is_some())
            .then_some(()),
        _ => None,
    })
    .await;
    assert!(sandbox_dir.join("lab.sock").exists());

    let mut paused = connect().await;
    paused
        .send(Message::Text(
            json!({"type": "play", "scenario": "unix-stream", "pause_before_calls": true})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let paused_dir = until(&mut paused, run_dir).await;
    until(&mut paused, |message| {
        matches!(message, ServerMessage::Paused { .. }).then_some(())
    })
    .await;

    let mut idle = connect().await;

    let stopping = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for (name, socket) in [
        ("sandbox", &mut sandbox),
        ("paused", &mut paused),
        ("idle", &mut idle),
    ] {
        let close = loop {
            match tokio::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .unwrap_or_else(|_| panic!("the {name} session was not closed within 5 s"))
            {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => {}
                other => panic!("the {name} session ended without a close frame: {other:?}"),
            }
        };
        assert_eq!(u16::from(close.unwrap().code), 1001, "{name}");
    }
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(5),
            "the server still runs 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    for dir in [&sandbox_dir, &paused_dir] {
        assert!(!dir.exists(), "{} was left behind", dir.display());
    }
    std::fs::remove_dir_all(&empty).unwrap();
}

/// The threads of process `pid` named `name`.
fn threads_named(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter(|task| {
                    std::fs::read_to_string(task.path().join("comm"))
                        .is_ok_and(|comm| comm.trim() == name)
                })
                .count()
        })
        .unwrap_or(0)
}

/// Every scenario's run has a network of its own, each with a capture thread, and the
/// process keeps two made ahead for the runs to come. However many sessions play, and once
/// they have closed, no more are left: not their runs', not more made ahead.
#[tokio::test]
async fn the_networks_of_closed_sessions_end_and_few_are_made_ahead() {
    // Not `tempdir()`: the other test of this file removes that one when it ends.
    let empty =
        std::env::temp_dir().join(format!("socket-lab-networks-test-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let (mut server, url) = start_backend(&empty);
    let deadline = Instant::now() + Duration::from_secs(20);
    // Made ahead for the runs to come, whatever the number of sessions.
    const MADE_AHEAD: usize = 2;
    let capture_threads = || threads_named(server.id(), "capture");
    for round in 0..3 {
        let mut session = connect_by(&url, deadline).await;
        for _ in 0..3 {
            session
                .send(Message::Text(
                    json!({"type": "play", "scenario": "simple-server-client"})
                        .to_string()
                        .into(),
                ))
                .await
                .unwrap();
            until(&mut session, |message| {
                matches!(message, ServerMessage::RunFinished { .. }).then_some(())
            })
            .await;
        }
        session.close(None).await.unwrap();
        drop(session);
        // The runs' networks end a moment after their runs (their packet sockets wait for
        // the kernel), and the pool is full again.
        let settled = Instant::now() + Duration::from_secs(5);
        while capture_threads() != MADE_AHEAD {
            assert!(
                Instant::now() < settled,
                "after session {round}: {} capture threads, not the {MADE_AHEAD} made ahead",
                capture_threads()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    std::fs::remove_dir_all(&empty).ok();
}

/// An empty directory of this test's own, for `--static-dir`.
fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("socket-lab-shutdown-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
