//! The sandbox over a real WebSocket: the user's own calls, in any order, with the kernel's
//! real answers.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use shared::describe::explain;
use shared::{
    Bytes, Call, Capture, ClientMessage, ErrorCode, ErrorOrigin, Event, Family, Packet, Phase,
    ReturnValue, RunOutcome, SANDBOX_ID, SandboxNetwork, ServerMessage, SockAddr, SockOption,
    SockType, TcpFlag,
};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A browser driving the sandbox, and everything the server has said.
struct User {
    socket: Socket,
    events: Vec<Event>,
    errors: Vec<(ErrorCode, String)>,
    unix_dir: Option<String>,
    finished: Option<RunOutcome>,
    packets: Vec<Packet>,
    capture: Option<Capture>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl User {
    async fn connect() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = backend::Config::new(std::env::temp_dir().join("socket-lab-no-frontend"));
        tokio::spawn(backend::serve(listener, config, async {
            let _ = stopped.await;
        }));
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        let mut user = User {
            socket,
            events: Vec::new(),
            errors: Vec::new(),
            unix_dir: None,
            finished: None,
            packets: Vec::new(),
            capture: None,
            _stop: stop,
        };
        assert!(matches!(user.next().await, ServerMessage::Hello { .. }));
        user
    }

    async fn next(&mut self) -> ServerMessage {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("no message within 10 s")
                .expect("the connection ended")
                .unwrap();
            if let Message::Text(text) = frame {
                let message: ServerMessage = serde_json::from_str(text.as_str()).unwrap();
                match &message {
                    ServerMessage::RunStarted { unix_dir, .. } => {
                        self.unix_dir = unix_dir.clone();
                    }
                    ServerMessage::Events {
                        events, dropped, ..
                    } => {
                        // This user reads every message at once; nothing should be dropped.
                        assert!(dropped.is_empty(), "events were dropped: {dropped:?}");
                        self.events.extend(events.clone());
                    }
                    ServerMessage::Error { code, message } => {
                        self.errors.push((*code, message.clone()));
                    }
                    ServerMessage::RunFinished { outcome, .. } => {
                        self.finished = Some(outcome.clone());
                    }
                    ServerMessage::Packets { packets, .. } => {
                        self.packets.extend(packets.clone());
                    }
                    ServerMessage::Capture { capture, .. } => {
                        self.capture = Some(capture.clone());
                    }
                    ServerMessage::Hello { .. }
                    | ServerMessage::Paused { .. }
                    | ServerMessage::Program { .. } => {}
                }
                return message;
            }
        }
    }

    /// Waits until the run's capture state has come, and returns it.
    async fn capture_state(&mut self) -> Capture {
        loop {
            if let Some(capture) = &self.capture {
                return capture.clone();
            }
            self.next().await;
        }
    }

    /// Waits for the first packet of the flags `flags` exactly, and returns it.
    async fn packet_with(&mut self, flags: &[TcpFlag]) -> Packet {
        loop {
            if let Some(packet) = self.packets.iter().find(|packet| {
                packet
                    .tcp
                    .as_ref()
                    .is_some_and(|tcp| tcp.flags.as_slice() == flags)
            }) {
                return packet.clone();
            }
            self.next().await;
        }
    }

    async fn send(&mut self, message: &ClientMessage) {
        let json = serde_json::to_string(message).unwrap();
        self.socket.send(Message::Text(json.into())).await.unwrap();
    }

    /// Sends a call without waiting for its answer.
    async fn start(&mut self, endpoint: &str, call: Call) -> usize {
        let before = self.count(endpoint, &call);
        self.send(&ClientMessage::Call {
            endpoint: endpoint.into(),
            call: call.clone(),
        })
        .await;
        before
    }

    fn count(&self, endpoint: &str, call: &Call) -> usize {
        self.events
            .iter()
            .filter(|e| e.endpoint == endpoint && e.call.name() == call.name())
            .filter(|e| e.phase == Phase::Return)
            .count()
    }

    /// Waits for the return of the `nth` call of this name on `endpoint`.
    async fn returned(&mut self, endpoint: &str, call: &str, nth: usize) -> Event {
        loop {
            if let Some(event) = self
                .events
                .iter()
                .filter(|e| e.endpoint == endpoint && e.call.name() == call)
                .filter(|e| e.phase == Phase::Return)
                .nth(nth)
            {
                return event.clone();
            }
            self.next().await;
        }
    }

    /// Makes a call and waits for its return event.
    async fn call(&mut self, endpoint: &str, call: Call) -> Event {
        let name = call.name();
        let nth = self.start(endpoint, call).await;
        self.returned(endpoint, name, nth).await
    }

    /// Makes a call that must fail, and returns its errno.
    async fn fails(&mut self, endpoint: &str, call: Call) -> (String, ErrorOrigin) {
        let event = self.call(endpoint, call).await;
        let error = event
            .error
            .unwrap_or_else(|| panic!("{endpoint} succeeded: {:?}", event.result));
        (error.errno, error.origin)
    }

    /// Makes a call that must succeed, and returns its value.
    async fn ok(&mut self, endpoint: &str, call: Call) -> ReturnValue {
        let event = self.call(endpoint, call).await;
        match event.result {
            Some(result) => result.value,
            None => panic!("{endpoint} {}: {:?}", event.call.name(), event.error),
        }
    }
}

fn socket(family: Family, sock_type: SockType) -> Call {
    Call::Socket { family, sock_type }
}

fn inet(host: Ipv4Addr, port: u16) -> SockAddr {
    SockAddr::Inet { host, port }
}

/// A loopback address no other test uses.
fn own_host(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 33, (std::process::id() % 250) as u8, last)
}

#[tokio::test]
async fn wrong_orders_get_the_kernels_errors() {
    let mut user = User::connect().await;
    let tcp = socket(Family::Inet, SockType::Stream);
    let udp = socket(Family::Inet, SockType::Dgram);
    user.ok("s", tcp.clone()).await;
    // Not connected yet.
    assert_eq!(user.fails("s", Call::Getpeername).await.0, "ENOTCONN");
    assert_eq!(
        user.fails("s", Call::Recv { bufsize: 10 }).await.0,
        "ENOTCONN"
    );
    assert_eq!(
        user.fails(
            "s",
            Call::Send {
                data: Bytes(b"x".to_vec())
            }
        )
        .await
        .0,
        "EPIPE"
    );
    // Nothing listens there.
    let host = own_host(1);
    assert_eq!(
        user.fails(
            "s",
            Call::Connect {
                address: inet(host, 9)
            }
        )
        .await,
        ("ECONNREFUSED".to_owned(), ErrorOrigin::Kernel)
    );
    // A datagram socket cannot listen.
    user.ok("u", udp.clone()).await;
    assert_eq!(
        user.fails("u", Call::Listen { backlog: 1 }).await.0,
        "EOPNOTSUPP"
    );
    // Two sockets on one address.
    user.ok("a", tcp.clone()).await;
    user.ok(
        "a",
        Call::Bind {
            address: inet(host, 4000),
        },
    )
    .await;
    user.ok("b", tcp.clone()).await;
    assert_eq!(
        user.fails(
            "b",
            Call::Bind {
                address: inet(host, 4000)
            }
        )
        .await
        .0,
        "EADDRINUSE"
    );
    // A closed socket.
    user.ok("b", Call::Close).await;
    assert_eq!(
        user.fails("b", Call::Listen { backlog: 1 }).await,
        ("EBADF".to_owned(), ErrorOrigin::Lab)
    );
    // A non-blocking accept with nobody connecting.
    user.ok("a", Call::Listen { backlog: 1 }).await;
    user.ok("a", Call::Setblocking { flag: false }).await;
    assert_eq!(user.fails("a", Call::Accept).await.0, "EAGAIN");
    // A datagram larger than the socket may send. (Sent as JSON with only `len` and `hex`,
    // the bytes' one required form, to stay under the server's message size limit.)
    user.ok("d", socket(Family::Unix, SockType::Dgram)).await;
    user.ok(
        "d",
        Call::Setsockopt {
            option: SockOption::SendBuffer(1),
        },
    )
    .await;
    user.ok("e", socket(Family::Unix, SockType::Dgram)).await;
    let server = SockAddr::Unix {
        path: "d.sock".into(),
        r#abstract: false,
    };
    user.ok("e", Call::Bind { address: server }).await;
    let raw = format!(
        r#"{{"type":"call","endpoint":"d","call":"sendto","args":{{"data":{{"len":6000,"hex":"{}"}},"address":{{"family":"AF_UNIX","path":"d.sock"}}}}}}"#,
        "78".repeat(6000)
    );
    user.socket.send(Message::Text(raw.into())).await.unwrap();
    let sendto = user.returned("d", "sendto", 0).await;
    assert_eq!(sendto.error.unwrap().errno, "EMSGSIZE");
}

#[tokio::test]
async fn connect_is_explained_for_the_kind_of_socket_it_is_on() {
    let mut user = User::connect().await;
    // UDP: connect sends nothing; the page must not speak of a handshake.
    user.ok("u", socket(Family::Inet, SockType::Dgram)).await;
    let connected = user
        .call(
            "u",
            Call::Connect {
                address: inet(own_host(90), 9),
            },
        )
        .await;
    assert!(connected.result.is_some(), "{connected:?}");
    let enter = user
        .events
        .iter()
        .rev()
        .find(|event| event.endpoint == "u" && event.phase == Phase::Enter)
        .unwrap()
        .clone();
    let udp = Some((Family::Inet, SockType::Dgram));
    assert!(
        explain(&enter, udp).contains("sends nothing"),
        "{}",
        explain(&enter, udp)
    );
    assert!(
        explain(&connected, udp).contains("No packet was sent"),
        "{}",
        explain(&connected, udp)
    );
    // Not told the socket's type, the words follow the kernel's view: no TCP state.
    assert!(explain(&connected, None).contains("No packet was sent"));
    // TCP: a handshake, and the local address the kernel picked.
    let listener = socket(Family::Inet, SockType::Stream);
    user.ok("l", listener.clone()).await;
    user.ok(
        "l",
        Call::Bind {
            address: inet(own_host(91), 12345),
        },
    )
    .await;
    user.ok("l", Call::Listen { backlog: 1 }).await;
    user.ok("t", listener).await;
    let connected = user
        .call(
            "t",
            Call::Connect {
                address: inet(own_host(91), 12345),
            },
        )
        .await;
    let text = explain(&connected, Some((Family::Inet, SockType::Stream)));
    assert!(
        text.starts_with("Connected. This end's local address is"),
        "{text}"
    );
}

#[tokio::test]
async fn an_empty_datagram_is_received_as_no_bytes_and_is_not_end_of_stream() {
    let mut user = User::connect().await;
    let address = inet(own_host(92), 12345);
    user.ok("r", socket(Family::Inet, SockType::Dgram)).await;
    user.ok(
        "r",
        Call::Bind {
            address: address.clone(),
        },
    )
    .await;
    user.ok("w", socket(Family::Inet, SockType::Dgram)).await;
    let sent = user
        .call(
            "w",
            Call::Sendto {
                data: Bytes(Vec::new()),
                address,
            },
        )
        .await;
    assert_eq!(
        sent.result.as_ref().map(|result| &result.value),
        Some(&ReturnValue::Sent { count: 0 }),
        "{sent:?}"
    );
    // The kernel queued a datagram of no bytes, and recv() takes it whole.
    let received = user.call("r", Call::Recv { bufsize: 1024 }).await;
    let Some(ReturnValue::Received { data, .. }) = received.result.as_ref().map(|r| &r.value)
    else {
        panic!("recv did not return bytes: {received:?}");
    };
    assert!(data.is_empty(), "{data:?}");
    let text = explain(&received, Some((Family::Inet, SockType::Dgram)));
    assert!(text.starts_with("An empty datagram"), "{text}");
    assert!(!text.contains("closed its side"), "{text}");
}

#[tokio::test]
async fn one_listener_accepts_several_clients_as_endpoints_of_their_own() {
    let mut user = User::connect().await;
    let tcp = socket(Family::Inet, SockType::Stream);
    let address = inet(own_host(2), 12345);
    user.ok("server", tcp.clone()).await;
    user.ok(
        "server",
        Call::Bind {
            address: address.clone(),
        },
    )
    .await;
    user.ok("server", Call::Listen { backlog: 5 }).await;
    // accept() waits, and the next calls go on meanwhile: they are what it waits for.
    user.start("server", Call::Accept).await;
    user.ok("one", tcp.clone()).await;
    user.ok(
        "one",
        Call::Connect {
            address: address.clone(),
        },
    )
    .await;
    let first = user.returned("server", "accept", 0).await;
    user.ok("two", tcp.clone()).await;
    user.ok(
        "two",
        Call::Connect {
            address: address.clone(),
        },
    )
    .await;
    let second = user.ok("server", Call::Accept).await;
    let ReturnValue::Accepted { endpoint, .. } = first.result.unwrap().value else {
        panic!()
    };
    assert_eq!(endpoint, "server.conn");
    let ReturnValue::Accepted {
        endpoint,
        address: peer,
        ..
    } = second
    else {
        panic!()
    };
    assert_eq!(endpoint, "server.conn2");
    let two = user.returned("two", "connect", 0).await;
    assert_eq!(Some(peer), two.result.unwrap().local);
    // Each connection is its own endpoint: bytes sent on one arrive only at its client.
    user.ok(
        "server.conn2",
        Call::Sendall {
            data: Bytes(b"for two".to_vec()),
        },
    )
    .await;
    user.ok("two", Call::Setblocking { flag: false }).await;
    user.ok("one", Call::Setblocking { flag: false }).await;
    let ReturnValue::Received { data, .. } = user.ok("two", Call::Recv { bufsize: 100 }).await
    else {
        panic!()
    };
    assert_eq!(data.0, b"for two");
    assert_eq!(
        user.fails("one", Call::Recv { bufsize: 100 }).await.0,
        "EAGAIN"
    );
}

#[tokio::test]
async fn closing_a_socket_wakes_the_call_waiting_on_it() {
    let mut user = User::connect().await;
    user.ok("s", socket(Family::Inet, SockType::Stream)).await;
    user.ok(
        "s",
        Call::Bind {
            address: inet(own_host(3), 1),
        },
    )
    .await;
    user.ok("s", Call::Listen { backlog: 1 }).await;
    user.start("s", Call::Accept).await;
    user.ok("s", Call::Close).await;
    let accept = user.returned("s", "accept", 0).await;
    assert_eq!(accept.error.unwrap().errno, "EINVAL");
}

#[tokio::test]
async fn refused_places_and_names_are_clear_errors() {
    let mut user = User::connect().await;
    user.ok("s", socket(Family::Inet, SockType::Stream)).await;
    let (errno, origin) = user
        .fails(
            "s",
            Call::Connect {
                address: inet(Ipv4Addr::new(10, 1, 2, 3), 80),
            },
        )
        .await;
    assert_eq!((errno.as_str(), origin), ("EACCES", ErrorOrigin::Lab));
    user.ok("u", socket(Family::Unix, SockType::Stream)).await;
    for escape in ["../../etc/evil.sock", "/tmp/evil.sock"] {
        let address = SockAddr::Unix {
            path: escape.into(),
            r#abstract: false,
        };
        assert_eq!(user.fails("u", Call::Bind { address }).await.0, "EACCES");
    }
    for bad in ["", "1abc", "a b", "x.y", "\u{0}"] {
        user.send(&ClientMessage::Call {
            endpoint: bad.into(),
            call: socket(Family::Inet, SockType::Stream),
        })
        .await;
        user.next().await;
        let (code, message) = user.errors.pop().unwrap();
        assert_eq!(code, ErrorCode::InvalidEndpoint, "{bad:?}");
        assert!(message.contains("not a socket name"));
    }
    // A relative Unix path lands in the session's own directory.
    let address = SockAddr::Unix {
        path: "mine.sock".into(),
        r#abstract: false,
    };
    user.ok("u", Call::Bind { address }).await;
    let dir = user.unix_dir.clone().unwrap();
    assert!(std::path::Path::new(&dir).join("mine.sock").exists());
    // Stopping the sandbox closes its sockets and removes its directory.
    user.send(&ClientMessage::Stop).await;
    while user.finished.is_none() {
        user.next().await;
    }
    assert!(matches!(user.finished, Some(RunOutcome::Cancelled { .. })));
    assert!(!std::path::Path::new(&dir).exists());
}

#[tokio::test]
async fn no_calls_of_ones_own_while_a_scenario_plays() {
    let mut user = User::connect().await;
    // This scenario takes at least half a second (a timeout expires in it).
    user.send(&ClientMessage::Play {
        scenario: "nonblocking".into(),
        pause_before_calls: false,
        quiet: false,
        outside: None,
    })
    .await;
    user.send(&ClientMessage::Call {
        endpoint: "s".into(),
        call: socket(Family::Inet, SockType::Stream),
    })
    .await;
    while user.errors.is_empty() {
        user.next().await;
    }
    assert_eq!(user.errors[0].0, ErrorCode::ScenarioInProgress);
    assert!(user.events.iter().all(|e| e.role != SANDBOX_ID));
}

/// The sandbox opens its sockets in the session's own network: a listener there takes a port
/// the machine's loopback holds, no connection of it reaches the machine's listener, and its
/// handshake's packets come to the page.
#[tokio::test]
async fn the_sandbox_has_a_network_of_its_own_and_shows_its_packets() {
    let mut user = User::connect().await;
    // The machine's listener on the port the sandbox will use: were the sandbox on the
    // machine's network, its bind would fail and its connect would reach this one.
    let machine = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    machine.set_nonblocking(true).unwrap();
    let port = machine.local_addr().unwrap().port();
    let address = inet(Ipv4Addr::LOCALHOST, port);
    user.ok("s", socket(Family::Inet, SockType::Stream)).await;
    let capture = user.capture_state().await;
    assert!(capture.on, "{capture:?}");
    assert_eq!(capture.scope, None, "a network of the session's own");
    user.ok(
        "s",
        Call::Bind {
            address: address.clone(),
        },
    )
    .await;
    user.ok("s", Call::Listen { backlog: 1 }).await;
    user.ok("c", socket(Family::Inet, SockType::Stream)).await;
    user.ok(
        "c",
        Call::Connect {
            address: address.clone(),
        },
    )
    .await;
    let syn = user.packet_with(&[TcpFlag::Syn]).await;
    assert_eq!(syn.dst, address);
    let syn_ack = user.packet_with(&[TcpFlag::Syn, TcpFlag::Ack]).await;
    assert_eq!(syn_ack.src, address);
    assert_eq!(syn_ack.dst, syn.src);
    user.ok("s", Call::Accept).await;
    assert_eq!(
        machine.accept().map_err(|error| error.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "the sandbox's connect reached the machine's listener"
    );
    assert!(user.errors.is_empty(), "{:?}", user.errors);
}

#[tokio::test]
async fn manual_mode_accepts_an_outside_client_and_names_its_program() {
    let mut user = User::connect().await;
    // The student's own programs reach the sandbox on the machine's network only.
    user.send(&ClientMessage::Sandbox {
        network: SandboxNetwork::Machine,
    })
    .await;
    let capture = user.capture_state().await;
    assert!(!capture.on);
    assert!(
        capture
            .off_because
            .as_deref()
            .is_some_and(|why| why.contains("machine's network")),
        "{capture:?}"
    );
    let port = common::free_port();
    let address = inet(Ipv4Addr::LOCALHOST, port);
    user.ok("s", socket(Family::Inet, SockType::Stream)).await;
    user.ok("s", Call::Bind { address }).await;
    user.ok("s", Call::Listen { backlog: 1 }).await;
    user.start("s", Call::Accept).await;
    // A student's client, from outside Socket Lab.
    let student = tokio::task::spawn_blocking(move || common::tutorial_client(port));
    let accept = user.returned("s", "accept", 0).await;
    let ReturnValue::Accepted { process, .. } = accept.result.unwrap().value else {
        panic!("accept returned no connection");
    };
    assert_eq!(process.map(|p| p.name), Some("python3".to_owned()));
    user.ok(
        "s.conn",
        Call::Sendall {
            data: Bytes(b"hello, outside".to_vec()),
        },
    )
    .await;
    user.ok("s.conn", Call::Close).await;
    let output = student.await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "b'hello, outside'"
    );
}
