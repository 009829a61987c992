//! `watch` and the page: the tutorial's server and client, each under its own `watch`, handed
//! to a running Socket Lab and seen by a page's WebSocket as one run.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{free_port, peer};
use futures_util::SinkExt;
use shared::{Call, ClientMessage, Event, Phase, ReturnValue, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

type Client = common::Ws;

/// A directory of this test's, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("socket-lab-page-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The next message the page gets, within 20 s (a `watch` starts a Python program first).
async fn next_message(client: &mut Client) -> ServerMessage {
    common::next_server_message(client, Duration::from_secs(20)).await
}

/// A page at `ws` that has said hello and asked for watched runs.
async fn watching_page(ws: String) -> Client {
    let (mut page, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    assert!(matches!(
        next_message(&mut page).await,
        ServerMessage::Hello { .. }
    ));
    let watch_message = serde_json::to_string(&ClientMessage::Watch).unwrap();
    page.send(Message::Text(watch_message.into()))
        .await
        .unwrap();
    page
}

/// A Socket Lab serving at a free port with its hand-in socket in `scratch`, and a page there
/// that watches: the hand-in socket, the address, what stops the server, and the page.
async fn serving_a_watching_page(
    scratch: &Scratch,
) -> (
    PathBuf,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    Client,
) {
    let hub = scratch.0.join("hub").join("watch.sock");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = backend::Config::new(scratch.0.join("no-page-here"));
    config.hub_socket = Some(hub.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(backend::serve(listener, config, async {
        let _ = stopped.await;
    }));
    let page = watching_page(format!("ws://{addr}/ws")).await;
    (hub, addr, stop, page)
}

/// `backend watch --no-page`'s opposite: a watch (given `options`) that hands its calls to
/// the hub at `hub`.
fn watch(hub: &std::path::Path, options: &[&str], program: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_backend"));
    command
        .env("SOCKET_LAB_HUB", hub)
        .args(["watch", "-o", "/dev/null"])
        .args(options)
        .arg("--")
        .args(program)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_server_and_client_are_one_run_on_the_page() {
    let scratch = Scratch::new("two");
    let (hub, addr, stop, mut page) = serving_a_watching_page(&scratch).await;

    let (messages, run) = play_server_and_client(&mut page, &hub, &[], &addr.to_string()).await;
    let _ = stop.send(());

    let mut events: Vec<Event> = Vec::new();
    let mut programs = Vec::new();
    for message in &messages {
        match message {
            ServerMessage::Events {
                run: id,
                events: batch,
                dropped,
            } => {
                assert_eq!(*id, run);
                assert!(dropped.is_empty(), "nothing was dropped: {dropped:?}");
                events.extend(batch.iter().cloned());
            }
            ServerMessage::Program { program, .. } => programs.push(program.clone()),
            ServerMessage::RunFinished { outcome, .. } => {
                assert_eq!(*outcome, shared::RunOutcome::Completed);
            }
            _ => {}
        }
    }
    // Every event once, in order.
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>());
    // Two processes, named by their scripts, each with its source.
    let roles: Vec<&str> = programs.iter().map(|p| p.role.as_str()).collect();
    assert_eq!(roles.len(), 2, "{roles:?}");
    assert!(roles[0].starts_with("simple_server.py["), "{roles:?}");
    assert!(roles[1].starts_with("simple_client.py["), "{roles:?}");
    assert!(programs[0].code.contains("con, addr = s.accept()"));
    // Each event names its line in its file, and a line of that file is what it says.
    for event in &events {
        let watched = event.watched.as_ref().expect("a watched event");
        let (Some(line), Some(file)) = (event.line, watched.file.as_ref()) else {
            continue;
        };
        let program = programs
            .iter()
            .find(|p| p.role == event.role && p.file.as_ref() == Some(file))
            .expect("its program came before it");
        let text = program
            .code
            .lines()
            .nth(line as usize - 1)
            .unwrap_or_default();
        let method = watched.python.as_deref().unwrap_or_default();
        assert!(
            text.contains(method),
            "line {line} `{text}` does not call {method}"
        );
    }
    // The server's send reaches the client's recv: the bytes, and the address pairs the page
    // draws the arrow by.
    let accepted = events
        .iter()
        .find_map(|e| match e.result.as_ref().map(|r| &r.value) {
            Some(ReturnValue::Accepted {
                endpoint, address, ..
            }) => Some((endpoint, address)),
            _ => None,
        })
        .expect("the server accepted");
    let (connection, client_address) = accepted;
    let sent = events
        .iter()
        .find(|e| &e.endpoint == connection && e.phase == Phase::Enter && e.call.name() == "send")
        .expect("the server sent on the connection");
    assert_eq!(
        sent.call,
        Call::Send {
            data: shared::Bytes(b"Connection is successful".to_vec())
        }
    );
    assert_eq!(sent.watched.as_ref().unwrap().syscall, "sendto");
    let received = events
        .iter()
        .find(|e| {
            e.role.starts_with("simple_client.py")
                && matches!(e.result.as_ref().map(|r| &r.value),
                    Some(ReturnValue::Received { data, .. }) if data.0 == b"Connection is successful")
        })
        .expect("the client received the bytes");
    let client_local = events
        .iter()
        .filter(|e| e.endpoint == received.endpoint)
        .find_map(|e| e.result.as_ref().and_then(|r| r.local.clone()))
        .expect("the client's socket's address was told");
    assert_eq!(&client_local, client_address);
    // The kernel's view of the listener after listen().
    let listened = events
        .iter()
        .find(|e| e.call.name() == "listen" && e.phase == Phase::Return)
        .unwrap();
    assert!(
        listened
            .kernel
            .iter()
            .any(|view| view.endpoint == listened.endpoint
                && view.state == shared::SocketState::Listen),
        "{listened:?}"
    );
}

/// The same two programs under `watch --private-net`: the page gets their network's packets
/// once each (both `watch`es capture them), numbered in order, the handshake first, from the
/// client's socket (the address its `connect` was given by the kernel) to the server's; and
/// the run's capture is on, with nothing lost. Without `--private-net`, the page is told why
/// there are no packets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_packets_of_programs_watched_in_their_private_network() {
    let scratch = Scratch::new("packets");
    let (hub, addr, stop, mut page) = serving_a_watching_page(&scratch).await;
    let (messages, run) =
        play_server_and_client(&mut page, &hub, &["--private-net"], &addr.to_string()).await;
    let mut events: Vec<Event> = Vec::new();
    let mut packets: Vec<shared::Packet> = Vec::new();
    let mut captures = Vec::new();
    for message in &messages {
        match message {
            ServerMessage::Events {
                run: id,
                events: batch,
                ..
            } => {
                assert_eq!(*id, run);
                events.extend(batch.iter().cloned());
            }
            ServerMessage::Packets {
                run: id,
                packets: batch,
            } => {
                assert_eq!(*id, run);
                packets.extend(batch.iter().cloned());
            }
            ServerMessage::Capture { run: id, capture } => {
                assert_eq!(*id, run);
                captures.push(capture.clone());
            }
            _ => {}
        }
    }
    // Once each, numbered in order.
    let seqs: Vec<u64> = packets.iter().map(|p| p.seq).collect();
    assert_eq!(
        seqs,
        (0..packets.len() as u64).collect::<Vec<_>>(),
        "{packets:#?}"
    );
    let flags: Vec<Vec<shared::TcpFlag>> = packets
        .iter()
        .filter_map(|p| p.tcp.as_ref().map(|tcp| tcp.flags.clone()))
        .collect();
    use shared::TcpFlag::{Ack, Fin, Syn};
    assert_eq!(
        flags[..3],
        [vec![Syn], vec![Syn, Ack], vec![Ack]],
        "{flags:?}"
    );
    assert_eq!(
        flags.iter().filter(|flags| flags.contains(&Fin)).count(),
        2,
        "{flags:?}"
    );
    // The SYN leaves the client's socket: the address the kernel gave its connect().
    let connected = events
        .iter()
        .find(|e| {
            e.role.starts_with("simple_client.py")
                && e.call.name() == "connect"
                && e.phase == Phase::Return
        })
        .expect("the client connected");
    let client_address = connected
        .result
        .as_ref()
        .and_then(|result| result.local.clone())
        .expect("the kernel told the client's address");
    assert_eq!(packets[0].src, client_address);
    // Packets and events are on one clock: the SYN is sent within the connect() call.
    let connect_entered = events
        .iter()
        .find(|e| e.endpoint == connected.endpoint && e.call.name() == "connect")
        .unwrap();
    assert!(
        connect_entered.t_us <= packets[0].t_us && packets[0].t_us <= connected.t_us,
        "connect {} .. {}, SYN at {}",
        connect_entered.t_us,
        connected.t_us,
        packets[0].t_us
    );
    let last = captures.last().expect("the capture's state was sent");
    assert!(last.on, "{last:?}");
    assert!(
        last.scope
            .as_deref()
            .unwrap_or_default()
            .contains("private network"),
        "{last:?}"
    );
    assert_eq!(last.kept, packets.len() as u64);
    assert!(!last.lost_any(), "{last:?}");

    // Without --private-net: no packets, and the reason.
    let (messages, _) = play_server_and_client(&mut page, &hub, &[], &addr.to_string()).await;
    assert!(
        !messages
            .iter()
            .any(|m| matches!(m, ServerMessage::Packets { .. })),
        "packets of the machine's network"
    );
    let off = messages
        .iter()
        .find_map(|m| match m {
            ServerMessage::Capture { capture, .. } => Some(capture.clone()),
            _ => None,
        })
        .expect("the page is told why there are no packets");
    assert!(!off.on);
    assert!(
        off.off_because
            .as_deref()
            .unwrap_or_default()
            .contains("--private-net"),
        "{off:?}"
    );
    let _ = stop.send(());
}

/// The tutorial's server, then its client, each under a `watch` given `options`, handing
/// in to `hub`; returns what the page got until the run finished, and the run's number.
async fn play_server_and_client(
    page: &mut Client,
    hub: &std::path::Path,
    options: &[&str],
    served_at: &str,
) -> (Vec<ServerMessage>, u64) {
    let port = free_port().to_string();
    let server_py = peer("simple_server.py");
    let client_py = peer("simple_client.py");
    let server_program = ["/usr/bin/python3", server_py.to_str().unwrap(), &port];
    let server = common::Running::new(watch(hub, options, &server_program).spawn().unwrap());
    // The server listens before the client starts: its first events come first.
    let mut messages = Vec::new();
    let mut run = None;
    while !messages.iter().any(|m: &ServerMessage| {
        matches!(m, ServerMessage::Events { events, .. }
        if events.iter().any(|e| e.call.name() == "listen" && e.phase == Phase::Return))
    }) {
        let message = next_message(page).await;
        if let ServerMessage::RunStarted {
            run: id, scenario, ..
        } = &message
        {
            assert!(scenario.title.contains("simple_server.py"), "{scenario:?}");
            run = Some(*id);
        }
        messages.push(message);
    }
    let client_program = [
        "/usr/bin/python3",
        client_py.to_str().unwrap(),
        "127.0.0.1",
        &port,
    ];
    let client = watch(hub, options, &client_program).output().unwrap();
    assert!(client.status.success(), "{client:?}");
    // The client's watch printed where the page is: this server's.
    let said = String::from_utf8_lossy(&client.stderr);
    assert!(
        said.contains(&format!("http://{served_at}/?watch")),
        "{said}"
    );
    let server = server.take().wait_with_output().unwrap();
    assert!(server.status.success(), "{server:?}");
    loop {
        let message = next_message(page).await;
        let finished = matches!(message, ServerMessage::RunFinished { .. });
        messages.push(message);
        if finished {
            break;
        }
    }
    (messages, run.expect("the run started"))
}

/// Reads the page's address from what `watch` printed on standard error.
fn printed_page(stderr: &mut impl std::io::BufRead) -> String {
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(at) = line.find("http://") {
            let url = line[at..].split_whitespace().next().unwrap_or_default();
            return url.to_owned();
        }
        line.clear();
    }
    panic!("watch printed no page address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_socket_lab_serving_watch_serves_the_page_and_names_the_crash() {
    let scratch = Scratch::new("alone");
    // No server takes hand-ins here: watch serves the page itself.
    let hub = scratch.0.join("hub").join("watch.sock");
    let program = "import os, signal, socket, sys, time\n\
                   sys.stdin.readline()\n\
                   s = socket.socket()\n\
                   os.kill(os.getpid(), signal.SIGSEGV)\n";
    let mut watched = watch(&hub, &[], &["/usr/bin/python3", "-c", program])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(watched.stderr.take().unwrap());
    let url = tokio::task::spawn_blocking(move || printed_page(&mut stderr))
        .await
        .unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/?watch"),
        "{url}"
    );
    let ws = url.replace("http://", "ws://").replace("/?watch", "/ws");
    let mut page = watching_page(ws).await;
    assert!(matches!(
        next_message(&mut page).await,
        ServerMessage::RunStarted { .. }
    ));
    // The page is there: the program may go on, make its socket and crash.
    {
        use std::io::Write;
        let mut stdin = watched.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }
    let mut saw_socket = false;
    let mut saw_end = false;
    let outcome = loop {
        match next_message(&mut page).await {
            ServerMessage::Events { events, .. } => {
                saw_socket |= events.iter().any(|e| e.call.name() == "socket");
                saw_end |= events.iter().any(|e| {
                    e.watched.as_ref().is_some_and(|w| w.process_ended)
                        && matches!(&e.call, shared::Call::Other { text }
                            if text.starts_with("was killed by SIGSEGV"))
                });
            }
            ServerMessage::RunFinished { outcome, .. } => break outcome,
            _ => {}
        }
    };
    assert!(saw_socket, "the page saw the program's socket()");
    assert!(
        saw_end,
        "the page saw the process end, which closes its socket"
    );
    match outcome {
        shared::RunOutcome::Cancelled { reason } => {
            assert!(reason.contains("was killed by SIGSEGV"), "{reason}");
        }
        other => panic!("the crash is not named: {other:?}"),
    }
    let status = tokio::task::spawn_blocking(move || watched.wait())
        .await
        .unwrap()
        .unwrap();
    // 128 + SIGSEGV, as a shell says.
    assert_eq!(status.code(), Some(139));
}
