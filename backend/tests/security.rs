//! The server's defences, tried over real WebSockets: where sessions' sockets may go, every
//! limit and what the page is told when it is reached, and a page that reads too slowly.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use backend::limits::Limits;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use shared::{ErrorCode, ErrorOrigin, Event, Phase, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Starts a server with `limits`; returns its address and what stops it.
async fn start_server(limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut config = backend::Config::new(std::env::temp_dir().join("socket-lab-no-frontend"));
    config.limits = limits;
    tokio::spawn(backend::serve(listener, config, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// A page: its WebSocket and everything the server has said on it.
struct Page {
    socket: Socket,
    events: Vec<Event>,
    errors: Vec<(ErrorCode, String)>,
    dropped: Vec<shared::Dropped>,
    finished: bool,
}

impl Page {
    /// Opens a session and reads its Hello.
    async fn open(addr: SocketAddr) -> Self {
        let mut page = Page::open_raw(addr).await;
        assert!(matches!(
            page.next().await,
            Some(ServerMessage::Hello { .. })
        ));
        page
    }

    async fn open_raw(addr: SocketAddr) -> Self {
        Page::open_with_receive_buffer(addr, None).await
    }

    /// Opens a session whose TCP receive buffer is `receive_buffer` bytes: a page on a slow
    /// link, which the kernel cannot hide by buffering megabytes for it.
    async fn open_with_receive_buffer(addr: SocketAddr, receive_buffer: Option<u32>) -> Self {
        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(size) = receive_buffer {
            tcp.set_recv_buffer_size(size).unwrap();
        }
        let stream = tcp.connect(addr).await.unwrap();
        let (socket, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/ws"),
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
        )
        .await
        .unwrap();
        Page {
            socket,
            events: Vec::new(),
            errors: Vec::new(),
            dropped: Vec::new(),
            finished: false,
        }
    }

    /// The next message, or `None` once the server has closed the session.
    async fn next(&mut self) -> Option<ServerMessage> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("no message within 20 s")?;
            match frame.ok()? {
                Message::Text(text) => {
                    let message: ServerMessage = serde_json::from_str(text.as_str()).unwrap();
                    match &message {
                        ServerMessage::Events {
                            events, dropped, ..
                        } => {
                            self.events.extend(events.iter().cloned());
                            self.dropped.extend(dropped.iter().cloned());
                        }
                        ServerMessage::Error { code, message } => {
                            self.errors.push((*code, message.clone()));
                        }
                        ServerMessage::RunFinished { .. } => self.finished = true,
                        _ => {}
                    }
                    return Some(message);
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Reads until the server closes the session; returns its close frame.
    async fn closed(&mut self) -> CloseFrame {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("the session was not closed within 20 s");
            match frame {
                Some(Ok(Message::Close(Some(close)))) => return close,
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    /// Makes a sandbox call, written as raw JSON, and waits for its return event.
    async fn call(&mut self, endpoint: &str, call: Value) -> Event {
        let name = call["call"].as_str().unwrap().to_owned();
        let returned = |events: &[Event]| {
            events
                .iter()
                .filter(|e| e.endpoint == endpoint && e.call.name() == name)
                .filter(|e| e.phase == Phase::Return)
                .count()
        };
        let before = returned(&self.events);
        let errors = self.errors.len();
        self.send(common::call_message(endpoint, call)).await;
        while returned(&self.events) == before {
            assert_eq!(
                self.errors.len(),
                errors,
                "the call was refused: {:?}",
                self.errors.last()
            );
            self.next().await.expect("the session ended");
        }
        self.events
            .iter()
            .rev()
            .find(|e| e.endpoint == endpoint && e.call.name() == name && e.phase == Phase::Return)
            .unwrap()
            .clone()
    }

    /// Makes a call that must fail; returns the error.
    async fn fails(&mut self, endpoint: &str, call: Value) -> shared::CallError {
        let event = self.call(endpoint, call).await;
        event
            .error
            .unwrap_or_else(|| panic!("{endpoint} succeeded: {:?}", event.result))
    }

    /// Sends a message the server must refuse with an error; returns it.
    async fn refused(&mut self, message: Value) -> (ErrorCode, String) {
        let errors = self.errors.len();
        self.send(message).await;
        while self.errors.len() == errors {
            self.next().await.expect("the session ended");
        }
        self.errors.last().unwrap().clone()
    }
}

fn inet(host: &str, port: u16) -> Value {
    json!({"family": "AF_INET", "host": host, "port": port})
}

fn socket_call(kind: &str) -> Value {
    json!({"call": "socket", "args": {"family": "AF_INET", "type": kind}})
}

/// A listener of the page's own on 127.0.0.1, bound with an unusual spelling; returns its port.
async fn listen(page: &mut Page, endpoint: &str, spelling: &str) -> u16 {
    page.call(endpoint, socket_call("SOCK_STREAM")).await;
    let port = common::free_port();
    let bound = page
        .call(
            endpoint,
            json!({"call": "bind", "args": {"address": inet(spelling, port)}}),
        )
        .await;
    assert!(bound.error.is_none(), "{:?}", bound.error);
    page.call(endpoint, json!({"call": "listen", "args": {"backlog": 5}}))
        .await;
    port
}

#[tokio::test]
async fn every_spelling_of_loopback_works_and_nothing_else_is_reached() {
    let (addr, _stop) = start_server(Limits::default()).await;
    let mut page = Page::open(addr).await;
    let port = listen(&mut page, "srv", "0x7f000001").await;
    for (endpoint, spelling) in [("a", "127.1"), ("b", "2130706433"), ("c", "localhost")] {
        page.call(endpoint, socket_call("SOCK_STREAM")).await;
        let connected = page
            .call(
                endpoint,
                json!({"call": "connect", "args": {"address": inet(spelling, port)}}),
            )
            .await;
        let result = connected
            .result
            .unwrap_or_else(|| panic!("{spelling}: {:?}", connected.error));
        // The kernel's own account of the peer: the one canonical address.
        assert_eq!(
            result.peer.unwrap().to_string(),
            format!("('127.0.0.1', {port})")
        );
    }
    page.call(
        "v6",
        json!({"call": "socket", "args": {"family": "AF_INET6", "type": "SOCK_STREAM"}}),
    )
    .await;
    for host in ["10.0.0.1", "0.0.0.0", "192.168.1.1", "0xa000001"] {
        let error = page
            .fails(
                "a2",
                json!({"call": "connect", "args": {"address": inet(host, 80)}}),
            )
            .await;
        // The socket was never made: EBADF. Make it, then try.
        assert_eq!(error.errno, "EBADF");
        page.call("a2", socket_call("SOCK_STREAM")).await;
        let error = page
            .fails(
                "a2",
                json!({"call": "connect", "args": {"address": inet(host, 80)}}),
            )
            .await;
        assert_eq!(
            (error.errno.as_str(), error.origin),
            ("EACCES", ErrorOrigin::Lab),
            "{host}"
        );
        assert!(
            error.message.contains("not a loopback address"),
            "{}",
            error.message
        );
        page.call("a2", json!({"call": "close"})).await;
    }
    for host in ["::ffff:10.0.0.1", "fe80::1%1", "::"] {
        let error = page
            .fails(
                "v6",
                json!({"call": "connect", "args": {"address":
                    {"family": "AF_INET6", "host": host, "port": 80}}}),
            )
            .await;
        assert_eq!(
            (error.errno.as_str(), error.origin),
            ("EACCES", ErrorOrigin::Lab),
            "{host}"
        );
    }
    let (code, message) = page
        .refused(common::call_message(
            "a",
            json!({"call": "connect", "args": {"address": inet("example.com", 80)}}),
        ))
        .await;
    assert_eq!(code, ErrorCode::MalformedMessage);
    assert!(
        message.contains("names other than localhost are not looked up"),
        "{message}"
    );
}

#[tokio::test]
async fn a_session_cannot_reach_the_server_itself_or_another_session() {
    let (addr, _stop) = start_server(Limits::default()).await;
    // In the sessions' own networks the kernel keeps them apart: nothing of alice's is on
    // bob's loopback, and the kernel's answer is what he sees.
    let mut alice = Page::open(addr).await;
    let mut bob = Page::open(addr).await;
    let alices_port = listen(&mut alice, "srv", "127.0.0.1").await;
    bob.call("s", socket_call("SOCK_STREAM")).await;
    let error = bob
        .fails(
            "s",
            json!({"call": "connect", "args": {"address": inet("127.0.0.1", alices_port)}}),
        )
        .await;
    assert_eq!(
        (error.errno.as_str(), error.origin),
        ("ECONNREFUSED", ErrorOrigin::Kernel)
    );
    drop((alice, bob));

    // On the machine's network, where their own programs reach them, Socket Lab refuses.
    let mut alice = Page::open(addr).await;
    let mut bob = Page::open(addr).await;
    for page in [&mut alice, &mut bob] {
        page.send(json!({"type": "sandbox", "network": "machine"}))
            .await;
    }
    let alices_port = listen(&mut alice, "srv", "127.0.0.1").await;

    bob.call("s", socket_call("SOCK_STREAM")).await;
    let error = bob
        .fails(
            "s",
            json!({"call": "connect", "args": {"address": inet("127.0.0.1", addr.port())}}),
        )
        .await;
    assert_eq!(error.errno, "EACCES");
    assert!(
        error.message.contains("own web server"),
        "{}",
        error.message
    );
    let error = bob
        .fails(
            "s",
            json!({"call": "connect", "args": {"address": inet("127.1", alices_port)}}),
        )
        .await;
    assert_eq!(error.errno, "EACCES");
    assert!(
        error.message.contains("another session"),
        "{}",
        error.message
    );

    // Datagrams too.
    alice.call("u", socket_call("SOCK_DGRAM")).await;
    let udp_port = common::free_port();
    alice
        .call(
            "u",
            json!({"call": "bind", "args": {"address": inet("127.0.0.1", udp_port)}}),
        )
        .await;
    bob.call("u", socket_call("SOCK_DGRAM")).await;
    let error = bob
        .fails(
            "u",
            json!({"call": "sendto", "args": {
            "data": {"len": 2, "hex": "6869"},
            "address": inet("127.0.0.1", udp_port)}}),
        )
        .await;
    assert!(
        error.message.contains("another session"),
        "{}",
        error.message
    );

    // TCP's ports and UDP's are apart. The web server listens on TCP: a datagram to its port
    // number reaches no listener, and is the student's to send (a UDP client's port, which
    // the kernel picks, may be the same number: the echo's reply to it was once refused).
    let sent = bob
        .call(
            "u",
            json!({"call": "sendto", "args": {
            "data": {"len": 2, "hex": "6869"},
            "address": inet("127.0.0.1", addr.port())}}),
        )
        .await;
    assert!(sent.error.is_none(), "{:?}", sent.error);
    // And a TCP connection to the port number of Alice's UDP socket is refused by the
    // kernel (nothing listens there), not by the lab.
    bob.call("t", socket_call("SOCK_STREAM")).await;
    let error = bob
        .fails(
            "t",
            json!({"call": "connect", "args": {"address": inet("127.0.0.1", udp_port)}}),
        )
        .await;
    assert_eq!(error.errno, "ECONNREFUSED", "{}", error.message);

    // Alice may still reach her own listener.
    alice.call("c", socket_call("SOCK_STREAM")).await;
    let own = alice
        .call(
            "c",
            json!({"call": "connect", "args": {"address": inet("127.0.0.1", alices_port)}}),
        )
        .await;
    assert!(own.error.is_none(), "{:?}", own.error);
}

#[tokio::test]
async fn too_many_sessions_from_one_address_are_told_why() {
    let limits = Limits {
        max_sessions_per_client: 2,
        ..Limits::default()
    };
    let (addr, _stop) = start_server(limits).await;
    let first = Page::open(addr).await;
    let _second = Page::open(addr).await;
    let mut third = Page::open_raw(addr).await;
    let close = third.closed().await;
    assert_eq!(
        u16::from(close.code),
        shared::message::close_code::TRY_AGAIN_LATER
    );
    assert!(
        close.reason.contains("--max-sessions-per-client"),
        "{}",
        close.reason
    );
    // A place given back is free again.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = Page::open_raw(addr).await;
        match again.next().await {
            Some(ServerMessage::Hello { .. }) => break,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("the freed place was not given: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_page_that_sends_too_fast_is_told_which_limit() {
    let limits = Limits {
        max_messages_per_sec: 5,
        ..Limits::default()
    };
    let (addr, _stop) = start_server(limits).await;
    let mut page = Page::open(addr).await;
    for _ in 0..20 {
        page.send(json!({"type": "stop"})).await;
    }
    while page.errors.len() < 20 {
        page.next().await.expect("the session ended");
    }
    let limited = page
        .errors
        .iter()
        .filter(|(code, message)| {
            *code == ErrorCode::LimitReached && message.contains("--max-messages-per-sec")
        })
        .count();
    // The burst allows five; a few more may have been earned while the rest arrived.
    assert!((10..=15).contains(&limited), "{limited} of 20 were limited");
    // The session goes on.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (code, _) = page.refused(json!({"type": "stop"})).await;
    assert_eq!(code, ErrorCode::NoRunInProgress);
}

#[tokio::test]
async fn an_idle_session_is_closed_with_its_reason() {
    let limits = Limits {
        idle_timeout: 1,
        ..Limits::default()
    };
    let (addr, _stop) = start_server(limits).await;
    let mut page = Page::open(addr).await;
    let started = Instant::now();
    let close = page.closed().await;
    assert_eq!(u16::from(close.code), shared::message::close_code::IDLE);
    assert!(close.reason.contains("--idle-timeout"), "{}", close.reason);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_call_that_waits_too_long_is_given_up() {
    let limits = Limits {
        max_call_wait: 1,
        ..Limits::default()
    };
    let (addr, _stop) = start_server(limits).await;
    let mut page = Page::open(addr).await;
    listen(&mut page, "srv", "127.0.0.1").await;
    let started = Instant::now();
    let error = page.fails("srv", json!({"call": "accept"})).await;
    assert_eq!(
        (error.errno.as_str(), error.origin),
        ("ETIMEDOUT", ErrorOrigin::Lab)
    );
    assert!(
        error.message.contains("--max-call-wait"),
        "{}",
        error.message
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn sends_and_buffers_over_the_limits_are_refused() {
    let limits = Limits {
        max_send_bytes: 4,
        max_recv_bytes: 100,
        ..Limits::default()
    };
    let (addr, _stop) = start_server(limits).await;
    let mut page = Page::open(addr).await;
    page.call("u", socket_call("SOCK_DGRAM")).await;
    let error = page
        .fails(
            "u",
            json!({"call": "sendto", "args": {
            "data": {"len": 5, "hex": "6869686968"},
            "address": inet("127.0.0.1", 9)}}),
        )
        .await;
    assert_eq!(
        (error.errno.as_str(), error.origin),
        ("EMSGSIZE", ErrorOrigin::Lab)
    );
    assert!(
        error.message.contains("--max-send-bytes"),
        "{}",
        error.message
    );
    let error = page
        .fails("u", json!({"call": "recv", "args": {"bufsize": 101}}))
        .await;
    assert!(
        error.message.contains("--max-recv-bytes"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn an_oversized_message_closes_the_session_with_its_reason() {
    let limits = Limits {
        max_message_bytes: 2048,
        ..Limits::default()
    };
    let (addr, _stop) = start_server(limits).await;
    let mut page = Page::open(addr).await;
    let _ = page
        .socket
        .send(Message::Text("x".repeat(4096).into()))
        .await;
    let close = page.closed().await;
    assert_eq!(u16::from(close.code), 1009);
    assert!(
        close.reason.contains("--max-message-bytes"),
        "{}",
        close.reason
    );
    // Others are served as before.
    Page::open(addr).await;
}

/// A student's client sending as fast as it can to Socket Lab's echo server, while the page
/// reads nothing for a while: the server queues a bounded number of events, counts the rest,
/// and every event is either delivered or counted.
#[tokio::test]
async fn a_page_that_reads_too_slowly_is_told_how_many_events_it_missed() {
    const ROUNDS: usize = 10_000;
    let limits = Limits {
        event_queue: 32,
        ..Limits::default()
    };
    let (addr, _stop) = start_server(limits).await;
    let mut page = Page::open_with_receive_buffer(addr, Some(4096)).await;
    assert!(matches!(
        page.next().await,
        Some(ServerMessage::Hello { .. })
    ));
    let port = common::free_port();
    page.send(json!({"type": "play", "scenario": "tcp-echo",
        "outside": {"role": "client", "port": port, "timeout_secs": 30}}))
        .await;
    // The student's client: one small message, its echo, again.
    let firehose = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("the echo server never listened: {error}"),
            }
        };
        stream.set_nodelay(true).unwrap();
        let mut echo = [0u8; 8];
        for round in 0..ROUNDS {
            let message = format!("{:08}", round % 100_000_000);
            stream.write_all(message.as_bytes()).await.unwrap();
            stream.read_exact(&mut echo).await.unwrap();
            assert_eq!(&echo, message.as_bytes());
        }
    });
    // The page reads nothing until the client is done.
    firehose.await.unwrap();
    while !page.finished {
        page.next().await.expect("the session ended");
    }
    let dropped: u64 = page.dropped.iter().map(|d| d.count).sum();
    assert!(dropped > 0, "nothing was dropped; the test did not test");
    // Every seq is either an event received or inside a dropped range, exactly once.
    let mut seen: Vec<(u64, u64)> = page.events.iter().map(|e| (e.seq, e.seq)).collect();
    seen.extend(page.dropped.iter().map(|d| (d.first_seq, d.last_seq)));
    seen.sort_unstable();
    let mut next = 0;
    for (first, last) in &seen {
        assert_eq!(*first, next, "a gap or an overlap before seq {first}");
        next = last + 1;
    }
    let counted: u64 = page
        .dropped
        .iter()
        .map(|d| d.last_seq - d.first_seq + 1)
        .sum();
    assert_eq!(counted, dropped);
    // The echo server made its calls whoever watched: at least two events a round.
    assert!(next >= 2 * ROUNDS as u64, "only {next} events");
}
