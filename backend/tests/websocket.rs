//! A real WebSocket client against the running server.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use shared::{ClientMessage, ErrorCode, PROTOCOL_VERSION, Phase, RunOutcome, ServerMessage};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

type Client = common::Ws;

/// Starts the server on a free loopback port; returns its address and a handle to stop it.
async fn start_server() -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = backend::Config::new(std::env::temp_dir().join("socket-lab-no-frontend"));
    tokio::spawn(backend::serve(listener, config, async {
        let _ = stop_rx.await;
    }));
    (addr, stop_tx)
}

async fn connect(addr: std::net::SocketAddr) -> Client {
    let (client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    client
}

/// The next message but packets and the capture's state, which `tests/packets.rs` checks:
/// these tests are about the calls.
async fn next_message(client: &mut Client) -> ServerMessage {
    loop {
        match common::next_server_message(client, Duration::from_secs(10)).await {
            ServerMessage::Packets { .. } | ServerMessage::Capture { .. } => {}
            other => return other,
        }
    }
}

/// Asks for `scenario`, played at once, its events sent, by Socket Lab alone.
async fn play(client: &mut Client, scenario: &str) {
    let message = ClientMessage::Play {
        scenario: scenario.into(),
        pause_before_calls: false,
        quiet: false,
        outside: None,
    };
    send(client, &message).await;
}

async fn send(client: &mut Client, message: &ClientMessage) {
    let json = serde_json::to_string(message).unwrap();
    client.send(Message::Text(json.into())).await.unwrap();
}

#[tokio::test]
async fn a_session_plays_the_simple_scenario() {
    let (addr, _stop) = start_server().await;
    let mut client = connect(addr).await;
    let ServerMessage::Hello {
        protocol,
        scenarios,
        ..
    } = next_message(&mut client).await
    else {
        panic!("the first message was not hello");
    };
    assert_eq!(protocol, PROTOCOL_VERSION);
    assert!(scenarios.iter().any(|s| s.id == "simple-server-client"));

    play(&mut client, "simple-server-client").await;
    let ServerMessage::RunStarted { run, programs, .. } = next_message(&mut client).await else {
        panic!("expected run_started");
    };
    assert_eq!(programs.len(), 2);
    let mut events = Vec::new();
    let outcome = loop {
        match next_message(&mut client).await {
            ServerMessage::Events {
                run: r,
                events: batch,
                dropped,
            } => {
                assert_eq!(r, run);
                assert_eq!(dropped, []);
                events.extend(batch);
            }
            ServerMessage::RunFinished { run: r, outcome } => {
                assert_eq!(r, run);
                break outcome;
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(outcome, RunOutcome::Completed);
    assert_eq!(events.len(), 24);
    let recv = events
        .iter()
        .find(|e| e.endpoint == "client.s" && e.call.name() == "recv" && e.phase == Phase::Return)
        .unwrap();
    assert!(
        serde_json::to_string(recv)
            .unwrap()
            .contains("Connection is successful")
    );
}

#[tokio::test]
async fn bad_messages_get_errors_and_the_session_goes_on() {
    let (addr, _stop) = start_server().await;
    let mut client = connect(addr).await;
    next_message(&mut client).await; // hello

    let expect_error = |message: ServerMessage, want: ErrorCode| match message {
        ServerMessage::Error { code, message } => {
            assert_eq!(code, want);
            assert!(!message.is_empty());
        }
        other => panic!("expected an error, got {other:?}"),
    };
    client.send(Message::Text("not json".into())).await.unwrap();
    expect_error(next_message(&mut client).await, ErrorCode::MalformedMessage);
    client
        .send(Message::Text(r#"{"type":"launch_missiles"}"#.into()))
        .await
        .unwrap();
    expect_error(next_message(&mut client).await, ErrorCode::MalformedMessage);
    client
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    expect_error(next_message(&mut client).await, ErrorCode::BinaryMessage);
    play(&mut client, "nope").await;
    expect_error(next_message(&mut client).await, ErrorCode::UnknownScenario);
    send(&mut client, &ClientMessage::Stop).await;
    expect_error(next_message(&mut client).await, ErrorCode::NoRunInProgress);

    // After all that, the session still plays.
    play(&mut client, "simple-server-client").await;
    assert!(matches!(
        next_message(&mut client).await,
        ServerMessage::RunStarted { .. }
    ));
}

#[tokio::test]
async fn an_oversized_message_closes_only_that_session() {
    let (addr, _stop) = start_server().await;
    let mut greedy = connect(addr).await;
    next_message(&mut greedy).await;
    let _ = greedy.send(Message::Text("x".repeat(1 << 20).into())).await;
    // The server drops that connection; a new one is served as before.
    let mut fresh = connect(addr).await;
    assert!(matches!(
        next_message(&mut fresh).await,
        ServerMessage::Hello { .. }
    ));
}

#[tokio::test]
async fn shutdown_closes_sessions_with_going_away() {
    let (addr, stop) = start_server().await;
    let mut client = connect(addr).await;
    next_message(&mut client).await;
    stop.send(()).unwrap();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), client.next())
            .await
            .expect("the session did not close within 5 s")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.unwrap().code), 1001);
}

#[tokio::test]
async fn a_paused_run_makes_each_call_only_when_told() {
    let (addr, _stop) = start_server().await;
    let mut client = connect(addr).await;
    next_message(&mut client).await; // hello
    send(&mut client, &ClientMessage::Next).await;
    assert!(matches!(
        next_message(&mut client).await,
        ServerMessage::Error {
            code: ErrorCode::NothingToResume,
            ..
        }
    ));
    send(
        &mut client,
        &ClientMessage::Play {
            scenario: "simple-server-client".into(),
            pause_before_calls: true,
            quiet: false,
            outside: None,
        },
    )
    .await;
    assert!(matches!(
        next_message(&mut client).await,
        ServerMessage::RunStarted { .. }
    ));
    // The first call is announced, with its line, and not made.
    let ServerMessage::Paused { next, .. } = next_message(&mut client).await else {
        panic!("expected paused");
    };
    assert_eq!(
        (next.endpoint.as_str(), next.call.name(), next.line),
        ("server.s", "socket", Some(3))
    );
    let nothing = tokio::time::timeout(Duration::from_millis(300), client.next()).await;
    assert!(
        nothing.is_err(),
        "the run went on without Next: {nothing:?}"
    );
    // Each Next makes one call: its enter and return, then the next call is announced.
    let mut calls = Vec::new();
    for _ in 0..3 {
        send(&mut client, &ClientMessage::Next).await;
        loop {
            match next_message(&mut client).await {
                ServerMessage::Events { events, .. } => {
                    calls.extend(events.iter().map(|e| (e.call.name(), e.phase)));
                }
                ServerMessage::Paused { .. } => break,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(
        calls,
        [
            ("socket", Phase::Enter),
            ("socket", Phase::Return),
            ("gethostname", Phase::Enter),
            ("gethostname", Phase::Return),
            ("bind", Phase::Enter),
            ("bind", Phase::Return),
        ]
    );
    send(&mut client, &ClientMessage::Stop).await;
    loop {
        if let ServerMessage::RunFinished { outcome, .. } = next_message(&mut client).await {
            assert!(matches!(outcome, RunOutcome::Cancelled { .. }));
            break;
        }
    }
}

#[tokio::test]
async fn an_outside_client_plays_against_the_sessions_server() {
    let (addr, _stop) = start_server().await;
    let mut client = connect(addr).await;
    next_message(&mut client).await; // hello
    let port = common::free_port();
    let play = |scenario: &str| ClientMessage::Play {
        scenario: scenario.into(),
        pause_before_calls: false,
        quiet: false,
        outside: Some(shared::OutsideRole {
            role: "client".into(),
            port,
            timeout_secs: Some(20),
        }),
    };
    // A scenario whose roles are not a plain server and client refuses.
    send(&mut client, &play("reset")).await;
    assert!(matches!(
        next_message(&mut client).await,
        ServerMessage::Error {
            code: ErrorCode::OutsideRoleRefused,
            ..
        }
    ));
    send(&mut client, &play("simple-server-client")).await;
    let ServerMessage::RunStarted { programs, .. } = next_message(&mut client).await else {
        panic!("expected run_started");
    };
    // The student's program to run comes with the run, marked as theirs.
    let theirs = programs.iter().find(|p| p.outside).unwrap();
    assert_eq!(theirs.role, "client");
    assert!(theirs.code.contains(&format!("port = {port}")));
    // The tutorial's client, as a student would run it.
    let student = tokio::task::spawn_blocking(move || common::tutorial_client(port));
    let mut events = Vec::new();
    let outcome = loop {
        match next_message(&mut client).await {
            ServerMessage::Events { events: batch, .. } => events.extend(batch),
            ServerMessage::RunFinished { outcome, .. } => break outcome,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(outcome, RunOutcome::Completed);
    let output = student.await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "b'Connection is successful'"
    );
    assert!(events.iter().all(|e| e.role == "server"));
    assert!(
        events
            .iter()
            .any(|e| e.call.name() == "accept" && e.phase == Phase::Return && e.error.is_none())
    );
}

#[tokio::test]
async fn the_sessions_client_plays_against_an_outside_server() {
    let (addr, _stop) = start_server().await;
    let mut client = connect(addr).await;
    next_message(&mut client).await; // hello
    let port = common::free_port();
    let student = common::tutorial_server(port);
    send(
        &mut client,
        &ClientMessage::Play {
            scenario: "simple-server-client".into(),
            pause_before_calls: false,
            quiet: false,
            outside: Some(shared::OutsideRole {
                role: "server".into(),
                port,
                timeout_secs: Some(20),
            }),
        },
    )
    .await;
    let mut received = None;
    let outcome = loop {
        match next_message(&mut client).await {
            ServerMessage::Events { events, .. } => {
                for event in events {
                    if let Some(Ok(result)) = event.outcome()
                        && let shared::ReturnValue::Received { data, .. } = &result.value
                    {
                        received = Some(data.0.clone());
                    }
                }
            }
            ServerMessage::RunFinished { outcome, .. } => break outcome,
            _ => {}
        }
    };
    assert_eq!(outcome, RunOutcome::Completed);
    assert_eq!(received.as_deref(), Some(&b"Connection is successful"[..]));
    let output = student.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("Connecting with"));
}

/// Opens `/ws` with these headers; returns the HTTP status of a refusal, or 101.
async fn handshake_status(addr: std::net::SocketAddr, path: &str, origin: Option<&str>) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("{other}"),
    }
}

#[tokio::test]
async fn other_origins_and_missing_tokens_are_refused_before_the_upgrade() {
    let (addr, _stop) = start_server().await;
    let own = format!("http://{addr}");
    assert_eq!(handshake_status(addr, "/ws", Some(&own)).await, 101);
    for evil in [
        "null",
        "http://evil.example",
        "http://localhost:3000.evil.example",
    ] {
        assert_eq!(
            handshake_status(addr, "/ws", Some(evil)).await,
            403,
            "{evil}"
        );
    }
    // A server that requires a token.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let secured = listener.local_addr().unwrap();
    let mut config = backend::Config::new(std::env::temp_dir().join("socket-lab-no-frontend"));
    config.token = Some("s3cret-token".into());
    tokio::spawn(backend::serve(listener, config, std::future::pending()));
    assert_eq!(handshake_status(secured, "/ws", None).await, 401);
    assert_eq!(
        handshake_status(secured, "/ws?token=wrong", None).await,
        401
    );
    assert_eq!(
        handshake_status(secured, "/ws?token=s3cret-token", None).await,
        101
    );
    // The page asks /access why its handshake failed, and gets the same answer in words.
    let (status, reason) = plain_get(secured, "/access?token=wrong").await;
    assert_eq!(status, 401);
    assert!(reason.contains("access token"), "{reason}");
    assert_eq!(
        plain_get(secured, "/access?token=s3cret-token").await.0,
        204
    );
    assert_eq!(plain_get(addr, "/access").await.0, 204);
}

/// A plain HTTP GET, as a page's `fetch` makes it; returns the status and the body.
async fn plain_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) = get_encoded(addr, path, "").await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A GET with `Accept-Encoding: accept` (none if empty): the status, the headers in lower
/// case, and the body's bytes.
async fn get_encoded(
    addr: std::net::SocketAddr,
    path: &str,
    accept: &str,
) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let accept = if accept.is_empty() {
        String::new()
    } else {
        format!("Accept-Encoding: {accept}\r\n")
    };
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, response[split + 4..].to_vec())
}

/// A built page in a directory of its own, served by a real server until dropped.
struct BuiltPage {
    addr: std::net::SocketAddr,
    dir: std::path::PathBuf,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl BuiltPage {
    /// Writes `files` (name, contents) into a new directory and serves it.
    async fn serve(name: &str, files: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("socket-lab-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (file, contents) in files {
            std::fs::write(dir.join(file), contents).unwrap();
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(backend::serve(
            listener,
            backend::Config::new(dir.clone()),
            async {
                let _ = stopped.await;
            },
        ));
        BuiltPage {
            addr,
            dir,
            _stop: stop,
        }
    }
}

impl Drop for BuiltPage {
    fn drop(&mut self) {
        // Dropping `_stop` stops the server.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn the_page_is_served_compressed_to_browsers_that_accept_it() {
    // A built page as scripts/post-build.sh leaves it: each file with its brotli and gzip
    // copies (their contents here only need to be told apart).
    let page = BuiltPage::serve(
        "precompressed",
        &[
            ("index.html", "<!doctype html><title>Socket Lab</title>"),
            ("index.html.gz", "gzip of the page"),
            ("app_bg.wasm", "\0asm the page's code"),
            ("app_bg.wasm.gz", "gzip of the code"),
            ("app_bg.wasm.br", "brotli of the code"),
        ],
    )
    .await;
    let addr = page.addr;

    let (status, head, body) = get_encoded(addr, "/app_bg.wasm", "gzip, deflate, br, zstd").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-encoding: br"), "{head}");
    assert!(head.contains("content-type: application/wasm"), "{head}");
    assert_eq!(body, b"brotli of the code");

    let (_, head, body) = get_encoded(addr, "/app_bg.wasm", "gzip").await;
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert_eq!(body, b"gzip of the code");

    // A client that accepts neither gets the file itself; so does one asking for a file
    // that has no compressed copy in the encoding it accepts.
    let (_, head, body) = get_encoded(addr, "/app_bg.wasm", "").await;
    assert!(!head.contains("content-encoding"), "{head}");
    assert_eq!(body, b"\0asm the page's code");
    let (_, head, body) = get_encoded(addr, "/", "br").await;
    assert!(!head.contains("content-encoding"), "{head}");
    assert!(body.starts_with(b"<!doctype html>"));
    let (_, head, body) = get_encoded(addr, "/", "gzip").await;
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert_eq!(body, b"gzip of the page");
}

#[tokio::test]
async fn the_pages_code_is_kept_by_browsers_and_its_index_asked_for_again() {
    // Trunk names the code after its contents; index.html names the current build's files.
    let page = BuiltPage::serve(
        "cached",
        &[
            ("index.html", "<!doctype html><title>Socket Lab</title>"),
            ("frontend-0123456789abcdef_bg.wasm", "\0asm the page's code"),
            ("frontend-0123456789abcdef_bg.wasm.gz", "gzip of the code"),
        ],
    )
    .await;
    let addr = page.addr;

    for accept in ["gzip", ""] {
        let (status, head, _) =
            get_encoded(addr, "/frontend-0123456789abcdef_bg.wasm", accept).await;
        assert_eq!(status, 200);
        assert!(
            head.contains("cache-control: public, max-age=31536000, immutable"),
            "{head}"
        );
    }
    for path in ["/", "/index.html"] {
        let (status, head, _) = get_encoded(addr, path, "gzip").await;
        assert_eq!(status, 200);
        assert!(head.contains("cache-control: no-cache"), "{path}: {head}");
    }
    // A file that is not there is not cached as anything.
    let (status, head, _) = get_encoded(addr, "/frontend-fedcba9876543210.js", "").await;
    assert_eq!(status, 404);
    assert!(!head.contains("cache-control"), "{head}");
}

#[tokio::test]
async fn a_quiet_play_sends_only_the_runs_start_and_end() {
    let (addr, _stop) = start_server().await;
    let mut client = connect(addr).await;
    assert!(matches!(
        next_message(&mut client).await,
        ServerMessage::Hello { .. }
    ));
    send(
        &mut client,
        &ClientMessage::Play {
            scenario: "simple-server-client".into(),
            pause_before_calls: false,
            quiet: true,
            outside: None,
        },
    )
    .await;
    assert!(matches!(
        next_message(&mut client).await,
        ServerMessage::RunStarted { .. }
    ));
    // The same calls are made on real sockets; nothing of them is sent.
    match next_message(&mut client).await {
        ServerMessage::RunFinished { outcome, .. } => assert_eq!(outcome, RunOutcome::Completed),
        other => panic!("a quiet run sent {other:?}"),
    }
}

/// The first IPv4 address the machine's name stands for, as Python's `bind((name, port))`
/// finds it (getaddrinfo).
fn hostname_address() -> Option<std::net::Ipv4Addr> {
    use std::net::ToSocketAddrs;
    let name = nix::unistd::gethostname()
        .ok()?
        .to_string_lossy()
        .into_owned();
    (name.as_str(), 0)
        .to_socket_addrs()
        .ok()?
        .find_map(|address| match address {
            std::net::SocketAddr::V4(v4) => Some(*v4.ip()),
            std::net::SocketAddr::V6(_) => None,
        })
}

/// Each run of a session has a network made for it alone, so the Simple Server binds the
/// tutorial's own `(socket.gethostname(), 12345)` in every run, though the run before left
/// its connection in TIME_WAIT on that address (the server closes first, and the tutorial
/// sets no SO_REUSEADDR: in one network the second bind would fail with EADDRINUSE). Its code
/// is the tutorial's, with no line of Socket Lab's giving another address.
#[tokio::test]
async fn every_run_binds_the_tutorials_own_address_in_a_network_of_its_own() {
    let (addr, _stop) = start_server().await;
    let mut client = connect(addr).await;
    let ServerMessage::Hello { .. } = next_message(&mut client).await else {
        panic!("the first message was not hello");
    };
    let named = hostname_address().filter(|address| address.is_loopback());
    for round in 0..3 {
        play(&mut client, "simple-server-client").await;
        let mut programs = Vec::new();
        let mut events = Vec::new();
        let mut captured = None;
        let outcome = loop {
            match common::next_server_message(&mut client, Duration::from_secs(10)).await {
                ServerMessage::RunStarted { programs: p, .. } => programs = p,
                ServerMessage::Events { events: batch, .. } => events.extend(batch),
                ServerMessage::Capture { capture, .. } => captured = Some(capture.on),
                ServerMessage::RunFinished { outcome, .. } => break outcome,
                _ => {}
            }
        };
        assert_eq!(outcome, RunOutcome::Completed, "round {round}");
        // On this project's machines Socket Lab has networks of its own (README).
        assert_eq!(
            captured,
            Some(true),
            "round {round}: the run was not in its own network"
        );
        let errors: Vec<_> = events.iter().filter_map(|e| e.error.as_ref()).collect();
        assert!(errors.is_empty(), "round {round}: {errors:?}");
        let bind = events
            .iter()
            .find(|e| e.endpoint == "server.s" && e.call.name() == "bind")
            .expect("the server binds");
        let shared::Call::Bind {
            address: shared::SockAddr::Inet { host, port },
        } = &bind.call
        else {
            panic!("{bind:?}");
        };
        assert_eq!(*port, 12345);
        let server = &programs.iter().find(|p| p.role == "server").unwrap().code;
        let client_code = &programs.iter().find(|p| p.role == "client").unwrap().code;
        match named {
            Some(address) => {
                assert_eq!(*host, address, "round {round}");
                for code in [server, client_code] {
                    assert!(
                        code.contains("host = socket.gethostname()\nport = 12345\n"),
                        "{code}"
                    );
                    assert!(!code.contains("host = '"), "{code}");
                }
            }
            // Where the machine's name is no loopback address, the run's own network cannot
            // have it, and the code says so where it sets another.
            None => {
                assert_eq!(*host, std::net::Ipv4Addr::LOCALHOST);
                assert!(server.contains("# Socket Lab: the machine's name is no loopback"));
            }
        }
    }
}
