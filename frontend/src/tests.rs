//! Model and geometry tests, on the events of a Simple Server / Simple Client run.

use std::net::Ipv4Addr;

use shared::{
    Bytes, Call, CallError, CallResult, ErrorOrigin, Event, PROTOCOL_VERSION, Phase, ReturnValue,
    RunOutcome, ScenarioInfo, ServerMessage, SockAddr, SockType, SocketState, SocketView,
};

use crate::diagram::{layout, row_y};
use crate::model::{EndpointState, Link, Model};

const SERVER: SockAddr = SockAddr::Inet {
    host: Ipv4Addr::new(127, 64, 0, 1),
    port: 12345,
};
const CLIENT: SockAddr = SockAddr::Inet {
    host: Ipv4Addr::new(127, 0, 0, 1),
    port: 40000,
};

/// Builds a run's events: `enter` and `ret` append in seq order.
#[derive(Default)]
struct Script(Vec<Event>);

impl Script {
    fn enter(&mut self, endpoint: &str, call: Call) -> &mut Self {
        let seq = self.0.len() as u64;
        let role = endpoint.split('.').next().unwrap();
        self.0.push(Event {
            seq,
            t_us: seq * 10,
            ..Event::enter(role, endpoint, None, call)
        });
        self
    }

    /// `client.s` sends `data` to the UDP server at [`SERVER`] with `sendto`, from `client`.
    fn client_sends_datagram(&mut self, data: &Bytes, client: &SockAddr) -> &mut Self {
        self.enter(
            "client.s",
            Call::Sendto {
                data: data.clone(),
                address: SERVER,
            },
        )
        .ret(
            "client.s",
            ReturnValue::Sent { count: data.len() },
            Some(client.clone()),
            None,
        )
    }

    /// `endpoint` is made by `socket(AF_INET, sock_type)`.
    fn socket(&mut self, endpoint: &str, sock_type: SockType) -> &mut Self {
        self.enter(
            endpoint,
            Call::Socket {
                family: shared::Family::Inet,
                sock_type,
            },
        )
        .ret(endpoint, ReturnValue::Socket, None, None)
    }

    /// `server.s`'s `accept()` returns `server.con`, connected to the client at [`CLIENT`].
    fn server_accepts(&mut self) -> &mut Self {
        self.ret(
            "server.s",
            ReturnValue::Accepted {
                process: None,
                endpoint: "server.con".into(),
                fd: 7,
                address: CLIENT,
            },
            Some(SERVER),
            None,
        )
    }

    /// `server.s`, at [`SERVER`], takes `data` with `recv(1024)`.
    fn server_receives(&mut self, data: &[u8]) -> &mut Self {
        self.enter("server.s", Call::Recv { bufsize: 1024 }).ret(
            "server.s",
            ReturnValue::Received {
                data: Bytes(data.to_vec()),
                from: None,
                truncated_from: None,
            },
            Some(SERVER),
            None,
        )
    }

    /// Gives the last event the kernel's view of its endpoint.
    fn kernel(&mut self, state: SocketState, recv_queue: u32) -> &mut Self {
        let last = self.0.last_mut().unwrap();
        last.kernel = vec![SocketView {
            endpoint: last.endpoint.clone(),
            state,
            recv_queue: Some(recv_queue),
            send_queue: Some(0),
            accept_queue: None,
            backlog: None,
            lingering: false,
            peer_closed: false,
        }];
        self
    }

    fn ret(
        &mut self,
        endpoint: &str,
        value: ReturnValue,
        local: Option<SockAddr>,
        peer: Option<SockAddr>,
    ) -> &mut Self {
        let enter = self
            .0
            .iter()
            .rev()
            .find(|e| e.endpoint == endpoint && e.phase == Phase::Enter)
            .unwrap()
            .clone();
        let seq = self.0.len() as u64;
        self.0.push(Event {
            seq,
            t_us: seq * 10,
            phase: Phase::Return,
            result: Some(CallResult {
                value,
                fd: Some(5),
                local,
                peer,
                peer_process: None,
            }),
            ..enter
        });
        self
    }
}

fn simple_run() -> Vec<Event> {
    let data = Bytes(b"Connection is successful".to_vec());
    let mut s = Script::default();
    s.enter("server.s", Call::Bind { address: SERVER })
        .ret("server.s", ReturnValue::None, Some(SERVER), None)
        .enter("server.s", Call::Listen { backlog: 5 })
        .ret("server.s", ReturnValue::None, Some(SERVER), None)
        .enter("server.s", Call::Accept)
        .enter("client.s", Call::Connect { address: SERVER })
        .ret("client.s", ReturnValue::None, Some(CLIENT), Some(SERVER))
        .server_accepts()
        .enter("client.s", Call::Recv { bufsize: 1024 })
        .enter("server.con", Call::Send { data: data.clone() })
        .ret(
            "server.con",
            ReturnValue::Sent { count: 24 },
            Some(SERVER),
            Some(CLIENT),
        )
        .ret(
            "client.s",
            ReturnValue::Received {
                data,
                from: None,
                truncated_from: None,
            },
            Some(CLIENT),
            Some(SERVER),
        );
    s.0
}

/// The kernel's view of a TCP socket with empty queues, in `state`.
fn kernel_view(endpoint: &str, state: shared::SocketState) -> shared::SocketView {
    shared::SocketView {
        endpoint: endpoint.into(),
        state,
        recv_queue: Some(0),
        send_queue: Some(0),
        accept_queue: None,
        backlog: None,
        lingering: false,
        peer_closed: false,
    }
}

fn model_with(events: Vec<Event>) -> Model {
    let mut model = Model::default();
    model.apply(ServerMessage::Hello {
        protocol: PROTOCOL_VERSION,
        server_version: "t".into(),
        scenarios: vec![],
    });
    model.apply(ServerMessage::RunStarted {
        run: 1,
        scenario: ScenarioInfo {
            id: "simple-server-client".into(),
            title: "t".into(),
            summary: "s".into(),
            outside_roles: vec![],
        },
        programs: vec![],
        unix_dir: None,
    });
    model.apply(ServerMessage::Events {
        run: 1,
        events,
        dropped: vec![],
    });
    model
}

#[test]
fn a_backend_of_another_protocol_version_is_named_not_trusted() {
    let mut model = Model::default();
    model.apply(ServerMessage::Hello {
        protocol: PROTOCOL_VERSION + 1,
        server_version: "9".into(),
        scenarios: vec![],
    });
    assert_eq!(
        model.link,
        Link::WrongVersion {
            server: PROTOCOL_VERSION + 1
        }
    );
}

#[test]
fn a_run_has_connected_once_an_accept_or_a_connect_returns() {
    let events = simple_run();
    let connected_at = events
        .iter()
        .position(|event| {
            event.phase == Phase::Return && event.call == Call::Connect { address: SERVER }
        })
        .unwrap();
    let before = model_with(events[..connected_at].to_vec());
    assert!(!before.run.as_ref().unwrap().has_connected());
    let after = model_with(events[..=connected_at].to_vec());
    assert!(after.run.as_ref().unwrap().has_connected());
    // A connect that fails is no connection.
    let mut refused = Script::default();
    refused.enter("client.s", Call::Connect { address: SERVER });
    let mut failed = refused.0[0].clone();
    failed.seq = 1;
    failed.phase = Phase::Return;
    failed.error = Some(CallError {
        errno: "ECONNREFUSED".into(),
        code: 111,
        message: "Connection refused".into(),
        origin: ErrorOrigin::Kernel,
    });
    refused.0.push(failed);
    assert!(!model_with(refused.0).run.as_ref().unwrap().has_connected());
}

#[test]
fn endpoints_follow_their_calls() {
    let model = model_with(simple_run());
    let run = model.run.as_ref().unwrap();
    let ids: Vec<&str> = run.endpoints.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["server.s", "client.s", "server.con"]);
    let listener = run.endpoint("server.s").unwrap();
    assert_eq!(listener.state, EndpointState::Listening);
    assert_eq!(listener.local, Some(SERVER));
    let conn = run.endpoint("server.con").unwrap();
    assert_eq!(
        (conn.state, conn.fd, conn.peer.clone()),
        (EndpointState::Connected, Some(5), Some(CLIENT))
    );
    let client = run.endpoint("client.s").unwrap();
    assert_eq!(
        client.last_received.as_ref().unwrap().0,
        b"Connection is successful"
    );
    assert!(client.waiting.is_none());
}

#[test]
fn a_socket_the_kernel_no_longer_reports_is_closed() {
    // The listener is reported while it listens; then its program ends without calling
    // close(), and the next event's views (of every socket the kernel still has) leave it out.
    let mut s = Script::default();
    s.enter("server.s", Call::Bind { address: SERVER })
        .ret("server.s", ReturnValue::None, Some(SERVER), None)
        .enter("server.s", Call::Listen { backlog: 5 })
        .ret("server.s", ReturnValue::None, Some(SERVER), None)
        .kernel(SocketState::Listen, 0)
        .enter("client.s", Call::Recv { bufsize: 1024 })
        .kernel(SocketState::Established, 0);
    let model = model_with(s.0);
    let run = model.run.as_ref().unwrap();
    let listener = run.endpoint("server.s").unwrap();
    assert_eq!(
        (listener.state, &listener.kernel),
        (EndpointState::Closed, &None)
    );
    // Stepped back to the listen, it is listening, as the kernel said then.
    let mut run = run.clone();
    run.seek(3);
    let past = run.as_selected_from(None);
    let listener = past.endpoint("server.s").unwrap();
    assert_eq!(listener.state, EndpointState::Listening);
    assert_eq!(
        listener.kernel.as_ref().map(|view| view.state),
        Some(SocketState::Listen)
    );
}

#[test]
fn an_accepted_socket_shows_the_kernels_view_from_its_accept() {
    let mut events = simple_run();
    // The accept's return (event 7) reports the new connection with the 24 bytes the client
    // had sent before it; the card shows them at once, not from the connection's first call.
    let accept = events
        .iter_mut()
        .find(|e| e.phase == Phase::Return && e.call == Call::Accept)
        .unwrap();
    accept.kernel = vec![SocketView {
        endpoint: "server.con".into(),
        state: SocketState::Established,
        recv_queue: Some(24),
        send_queue: Some(0),
        accept_queue: None,
        backlog: None,
        lingering: false,
        peer_closed: false,
    }];
    let upto = events
        .iter()
        .position(|e| e.call == Call::Accept && e.phase == Phase::Return);
    events.truncate(upto.unwrap() + 1);
    let model = model_with(events);
    let conn = model.run.as_ref().unwrap().endpoint("server.con").unwrap();
    let view = conn
        .kernel
        .as_ref()
        .expect("the kernel's view of the accepted socket");
    assert_eq!(
        (view.state, view.recv_queue),
        (SocketState::Established, Some(24))
    );
}

#[test]
fn a_waiting_call_shows_until_it_returns() {
    let events = simple_run();
    // Stop right after the server entered accept().
    let model = model_with(events[..5].to_vec());
    let run = model.run.as_ref().unwrap();
    assert_eq!(
        run.waiting_call(run.endpoint("server.s").unwrap())
            .as_deref(),
        Some("accept()")
    );
    let diagram = layout(run);
    let accept = diagram
        .bars
        .iter()
        .find(|bar| bar.label == "accept()")
        .unwrap();
    assert!(accept.waiting);
    assert_eq!(
        accept.bottom,
        diagram.height - crate::diagram::ROW_HEIGHT / 2
    );
}

#[test]
fn the_message_goes_from_the_send_to_the_recv_that_took_it() {
    let model = model_with(simple_run());
    let run = model.run.as_ref().unwrap();
    assert_eq!(run.messages.len(), 1);
    let message = &run.messages[0];
    assert_eq!(
        (message.from.as_str(), message.to.as_deref()),
        ("server.con", Some("client.s"))
    );

    let diagram = layout(run);
    let arrow = &diagram.arrows[0];
    let lane = |id: &str| diagram.lanes.iter().find(|l| l.endpoint == id).unwrap().x;
    assert_eq!(
        arrow.from,
        (lane("server.con"), row_y(message.sent_at as usize))
    );
    assert_eq!(
        arrow.to,
        (
            lane("client.s"),
            row_y(message.received_at.unwrap() as usize)
        )
    );
    assert_eq!(arrow.label, "b'Connection is successful'");
    // The accept bar spans from its enter to its return: it waited for the client.
    let accept = diagram
        .bars
        .iter()
        .find(|bar| bar.label == "accept()")
        .unwrap();
    assert_eq!((accept.top, accept.bottom), (row_y(4), row_y(7)));
    assert!(!accept.waiting);
}

/// The simple run up to the server's send, with no recv yet.
fn simple_run_until_the_send() -> Vec<Event> {
    let mut events = simple_run();
    events.pop();
    events
}

#[test]
fn sent_bytes_wait_in_the_receivers_queue_until_a_recv_takes_them() {
    use crate::diagram::{Fate, layout_window};
    // Live: the send has returned and no recv has taken the bytes; the send found where
    // they went by the connection's address pair.
    let model = model_with(simple_run_until_the_send());
    let run = model.run.as_ref().unwrap();
    let message = &run.messages[0];
    assert_eq!(message.to, None);
    assert_eq!(message.meant_for.as_deref(), Some("client.s"));
    let diagram = layout(run);
    let lane = |id: &str| diagram.lanes.iter().find(|l| l.endpoint == id).unwrap().x;
    let arrow = &diagram.arrows[0];
    assert_eq!(arrow.fate, Fate::Queued);
    assert_eq!(
        arrow.from,
        (lane("server.con"), row_y(message.sent_at as usize))
    );
    // It runs into the receiver's lane down to the step shown, below the send's row.
    assert_eq!(arrow.to, (lane("client.s"), diagram.height - 13));
    assert!(arrow.to.1 > arrow.from.1);
    assert_eq!(arrow.label, "b'Connection is successful' (queued)");

    // Stepped back through the whole run: queued at the send, taken at the recv's return.
    let model = model_with(simple_run());
    let run = model.run.as_ref().unwrap();
    let sent = run.messages[0].sent_at as usize;
    let all = run.events.len();
    let at = |upto: usize| {
        layout_window(run, upto, 0..upto)
            .arrows
            .iter()
            .map(|arrow| arrow.fate)
            .collect::<Vec<_>>()
    };
    assert_eq!(at(sent), vec![]);
    assert_eq!(at(sent + 1), vec![Fate::Queued]);
    assert_eq!(at(all - 1), vec![Fate::Queued]);
    assert_eq!(at(all), vec![Fate::Taken]);
    // A window below the send still draws the arrow that crosses it.
    assert_eq!(
        layout_window(run, all - 1, all - 2..all - 1).arrows.len(),
        1
    );
}

#[test]
fn bytes_sent_before_the_accept_are_drawn_into_the_accepted_sockets_queue() {
    use crate::diagram::{Fate, layout_window};
    let data = Bytes(b"early".to_vec());
    let mut s = Script::default();
    s.enter("server.s", Call::Bind { address: SERVER })
        .ret("server.s", ReturnValue::None, Some(SERVER), None)
        .enter("server.s", Call::Listen { backlog: 5 })
        .ret("server.s", ReturnValue::None, Some(SERVER), None)
        .enter("client.s", Call::Connect { address: SERVER })
        .ret("client.s", ReturnValue::None, Some(CLIENT), Some(SERVER))
        .enter("client.s", Call::Send { data })
        .ret(
            "client.s",
            ReturnValue::Sent { count: 5 },
            Some(CLIENT),
            Some(SERVER),
        );
    let sent = s.0.len() - 1;
    s.enter("server.s", Call::Accept).server_accepts();
    let accepted = s.0.len();
    let model = model_with(s.0.clone());
    let run = model.run.as_ref().unwrap();
    // No socket held the connection when the bytes were sent: the accept found their owner.
    assert_eq!(run.messages[0].meant_for.as_deref(), Some("server.con"));
    let diagram = layout(run);
    let lane = |id: &str| diagram.lanes.iter().find(|l| l.endpoint == id).unwrap().x;
    let arrow = &diagram.arrows[0];
    assert_eq!(arrow.fate, Fate::Queued);
    assert_eq!(arrow.from, (lane("client.s"), row_y(sent)));
    assert_eq!(arrow.to.0, lane("server.con"));
    // Before the accept returned there was no socket to draw them into.
    assert!(
        layout_window(run, accepted - 1, 0..accepted - 1)
            .arrows
            .is_empty()
    );
}

#[test]
fn bytes_never_read_are_discarded_when_their_receiver_is_closed() {
    use crate::diagram::{Fate, layout_window};
    let mut s = Script(simple_run_until_the_send());
    s.enter("client.s", Call::Close)
        .ret("client.s", ReturnValue::None, None, None);
    let model = model_with(s.0.clone());
    let run = model.run.as_ref().unwrap();
    let close = run.events.len() - 1;
    assert_eq!(run.endpoint("client.s").unwrap().closed_at, Some(close));
    let diagram = layout(run);
    let arrow = &diagram.arrows[0];
    assert_eq!(arrow.fate, Fate::Discarded);
    assert_eq!(arrow.to.1, row_y(close));
    assert_eq!(arrow.label, "b'Connection is successful' ✕ discarded");
    // Before the close they were still waiting.
    assert_eq!(
        layout_window(run, close, 0..close).arrows[0].fate,
        Fate::Queued
    );

    // A run that ends with them unread: its programs' end threw them away, at its last row.
    let mut model = model_with(simple_run_until_the_send());
    model.apply(ServerMessage::RunFinished {
        run: 1,
        outcome: RunOutcome::Completed,
    });
    let run = model.run.as_ref().unwrap();
    let diagram = layout(run);
    assert_eq!(diagram.arrows[0].fate, Fate::Discarded);
    assert_eq!(diagram.arrows[0].to.1, row_y(run.events.len() - 1));
}

#[test]
fn errors_and_a_lost_link_are_shown_as_such() {
    let mut events = simple_run()[..1].to_vec();
    events.push(Event {
        seq: 1,
        phase: Phase::Return,
        error: Some(CallError {
            errno: "EADDRINUSE".into(),
            code: 98,
            message: "Address already in use".into(),
            origin: ErrorOrigin::Kernel,
        }),
        ..events[0].clone()
    });
    let mut model = model_with(events);
    let run = model.run.as_ref().unwrap();
    assert!(
        run.endpoint("server.s")
            .unwrap()
            .last_error
            .as_ref()
            .unwrap()
            .contains("EADDRINUSE")
    );
    assert!(layout(run).bars[0].failed);

    model.lose_link();
    assert_eq!(model.link, Link::Lost);
    assert!(matches!(
        model.run.unwrap().outcome,
        Some(RunOutcome::Cancelled { .. })
    ));
}

#[test]
fn one_recv_that_takes_two_sends_is_drawn_from_both() {
    let mut s = Script::default();
    s.enter("client.s", Call::Connect { address: SERVER })
        .ret("client.s", ReturnValue::None, Some(CLIENT), Some(SERVER))
        .enter("server.con", Call::Accept)
        .ret("server.con", ReturnValue::None, Some(SERVER), Some(CLIENT));
    for part in ["Hello, ", "world!"] {
        let data = Bytes(part.as_bytes().to_vec());
        s.enter("client.s", Call::Send { data: data.clone() }).ret(
            "client.s",
            ReturnValue::Sent { count: data.len() },
            Some(CLIENT),
            Some(SERVER),
        );
    }
    s.enter("server.con", Call::Recv { bufsize: 1024 })
        .kernel(SocketState::Established, 13)
        .ret(
            "server.con",
            ReturnValue::Received {
                data: Bytes(b"Hello, world!".to_vec()),
                from: None,
                truncated_from: None,
            },
            Some(SERVER),
            Some(CLIENT),
        )
        .kernel(SocketState::Established, 0);
    let model = model_with(s.0);
    let run = model.run.as_ref().unwrap();
    assert_eq!(run.messages.len(), 2);
    for message in &run.messages {
        assert_eq!(message.to.as_deref(), Some("server.con"));
        assert_eq!(message.received_at, Some(9));
        assert!(!message.datagram);
    }
    assert_eq!(layout(run).arrows.len(), 2);
    let kernel = run.endpoint("server.con").unwrap().kernel.clone().unwrap();
    assert_eq!(
        (kernel.state, kernel.recv_queue),
        (SocketState::Established, Some(0))
    );
}

#[test]
fn a_send_taken_in_parts_ends_at_the_recv_that_took_its_last_byte() {
    // The server takes "abcdef" 4 bytes at a time while echoing; each echo is taken whole
    // by the client. The first send is still partly untaken when the later ones are taken.
    let mut s = Script::default();
    s.enter("client.s", Call::Connect { address: SERVER })
        .ret("client.s", ReturnValue::None, Some(CLIENT), Some(SERVER))
        .enter("server.con", Call::Accept)
        .ret("server.con", ReturnValue::None, Some(SERVER), Some(CLIENT));
    let received = |data: &[u8]| ReturnValue::Received {
        data: Bytes(data.to_vec()),
        from: None,
        truncated_from: None,
    };
    let send = |data: &[u8]| Call::Sendall {
        data: Bytes(data.to_vec()),
    };
    s.enter("client.s", send(b"abcdef")).ret(
        "client.s",
        ReturnValue::None,
        Some(CLIENT),
        Some(SERVER),
    );
    for (round, part) in [&b"abcd"[..], &b"efgh"[..]].into_iter().enumerate() {
        s.enter("server.con", Call::Recv { bufsize: 4 })
            .ret("server.con", received(part), Some(SERVER), Some(CLIENT))
            .enter("server.con", send(part))
            .ret("server.con", ReturnValue::None, Some(SERVER), Some(CLIENT))
            .enter("client.s", Call::Recv { bufsize: 1024 })
            .ret("client.s", received(part), Some(CLIENT), Some(SERVER));
        if round == 0 {
            s.enter("client.s", send(b"gh")).ret(
                "client.s",
                ReturnValue::None,
                Some(CLIENT),
                Some(SERVER),
            );
        }
    }
    let model = model_with(s.0);
    let run = model.run.as_ref().unwrap();
    let arrows: Vec<(&str, &str, u64, Option<u64>)> = run
        .messages
        .iter()
        .map(|m| {
            (
                m.from.as_str(),
                m.to.as_deref().unwrap_or("-"),
                m.sent_at,
                m.received_at,
            )
        })
        .collect();
    assert_eq!(
        arrows,
        [
            // Sent at event 5; 4 bytes taken at 7, the last 2 at 15.
            ("client.s", "server.con", 5, Some(15)),
            ("server.con", "client.s", 9, Some(11)),
            ("client.s", "server.con", 13, Some(15)),
            ("server.con", "client.s", 17, Some(19)),
        ]
    );
}

/// A run's first events: `server.s` made as a UDP socket and bound to `SERVER`.
fn udp_server_bound() -> Script {
    let mut s = Script::default();
    s.socket("server.s", SockType::Dgram)
        .enter("server.s", Call::Bind { address: SERVER })
        .ret("server.s", ReturnValue::None, Some(SERVER), None);
    s
}

#[test]
fn the_queues_are_named_for_what_the_kernel_counts() {
    // A UDP socket: Linux reports the next datagram's size, and the memory its sends take.
    let mut udp = udp_server_bound();
    udp.kernel(SocketState::Unconnected, 7);
    let model = model_with(udp.0);
    let rows = model.run.as_ref().unwrap().endpoints[0].queue_rows();
    assert_eq!(
        rows,
        [
            ("next datagram", "7 B".to_owned()),
            ("send buffers", "0 B in use".to_owned())
        ]
    );
    // A TCP connection, accepted from a TCP listener: bytes, unread and unacknowledged.
    let mut tcp = Script::default();
    tcp.socket("server.s", SockType::Stream);
    tcp.0.extend(simple_run().into_iter().map(|mut event| {
        event.seq += 2;
        event
    }));
    tcp.0.last_mut().unwrap().kernel = vec![SocketView {
        endpoint: "server.con".into(),
        state: SocketState::Established,
        recv_queue: Some(13),
        send_queue: Some(0),
        accept_queue: None,
        backlog: None,
        lingering: false,
        peer_closed: false,
    }];
    let model = model_with(tcp.0);
    let con = model.run.as_ref().unwrap().endpoint("server.con").unwrap();
    assert_eq!(con.kind, Some((shared::Family::Inet, SockType::Stream)));
    // Each figure says on the card what it counts.
    for (name, _) in rows.iter().chain(&con.queue_rows()) {
        assert!(!crate::model::queue_meaning(name).is_empty(), "{name}");
    }
    assert_eq!(
        con.queue_rows(),
        [
            ("recv queue", "13 B".to_owned()),
            ("send queue", "0 B".to_owned())
        ]
    );
}

#[test]
fn each_recvfrom_takes_one_datagram_even_when_truncated() {
    let client = SockAddr::Inet {
        host: Ipv4Addr::new(127, 0, 0, 1),
        port: 5000,
    };
    let mut s = udp_server_bound();
    for part in ["one", "three three three"] {
        s.client_sends_datagram(&Bytes(part.as_bytes().to_vec()), &client);
    }
    for (bufsize, got, whole) in [(1024, "one", None), (8, "three th", Some(17))] {
        s.enter("server.s", Call::Recvfrom { bufsize }).ret(
            "server.s",
            ReturnValue::Received {
                data: Bytes(got.as_bytes().to_vec()),
                from: Some(client.clone()),
                truncated_from: whole,
            },
            Some(SERVER),
            None,
        );
    }
    let model = model_with(s.0);
    let run = model.run.as_ref().unwrap();
    let received: Vec<Option<u64>> = run.messages.iter().map(|m| m.received_at).collect();
    assert_eq!(received, [Some(9), Some(11)]);
    assert!(
        run.messages
            .iter()
            .all(|m| m.datagram && m.taken == m.data.len())
    );
}

#[test]
fn a_long_message_is_labelled_by_its_first_bytes_and_its_length() {
    let client = SockAddr::Inet {
        host: Ipv4Addr::new(127, 0, 0, 1),
        port: 5000,
    };
    let mut s = udp_server_bound();
    s.client_sends_datagram(&Bytes(vec![b'x'; 1000]), &client)
        .enter("server.s", Call::Recvfrom { bufsize: 600 })
        .ret(
            "server.s",
            ReturnValue::Received {
                data: Bytes(vec![b'x'; 600]),
                from: Some(client),
                truncated_from: Some(1000),
            },
            Some(SERVER),
            None,
        );
    let model = model_with(s.0);
    let diagram = layout(model.run.as_ref().unwrap());
    let arrow = &diagram.arrows[0];
    let first_bytes = format!("b'{}'…", "x".repeat(48));
    assert_eq!(
        arrow.label,
        format!("{first_bytes} (1000 bytes) ✂ kept 600 of 1000")
    );
    assert_eq!(arrow.hex, format!("1000 B: {}…", "78".repeat(48)));
}

#[test]
fn times_are_milliseconds_to_the_microsecond() {
    use crate::model::millis_text;
    for t_us in [0, 7, 999, 1_000, 12_045, 1_234_567, 98_765_432_100] {
        assert_eq!(millis_text(t_us), format!("{:.3}", t_us as f64 / 1000.0));
    }
}

#[test]
fn every_client_is_coloured_as_a_client_and_other_programs_as_servers() {
    use crate::model::role_colour;
    assert_eq!(role_colour("client3"), "client");
    assert_eq!(role_colour("restarted"), "server");
    assert_eq!(role_colour(shared::SANDBOX_ID), "sandbox");
}

/// The simple run with each event on a line of its role's program, and the programs.
fn run_with_code() -> crate::model::RunView {
    let mut events = simple_run();
    for event in &mut events {
        event.line = Some(match (event.role.as_str(), event.call.name()) {
            ("server", "bind") => 7,
            ("server", "listen") => 8,
            ("server", "accept") => 10,
            ("server", "send") => 12,
            ("client", "connect") => 7,
            ("client", "recv") => 8,
            _ => 1,
        });
    }
    let mut model = model_with(events);
    let run = model.run.as_mut().unwrap();
    run.programs = vec![
        shared::RoleProgram {
            role: "server".into(),
            code: "server code".into(),
            outside: false,
            file: None,
        },
        shared::RoleProgram {
            role: "client".into(),
            code: "client code".into(),
            outside: false,
            file: None,
        },
    ];
    model.run.unwrap()
}

#[test]
fn stepping_back_and_forth_moves_the_highlighted_lines() {
    let mut run = run_with_code();
    let last = run.events.len() - 1;
    assert_eq!(run.selected(), Some(last));
    // At the end the client's recv returned: its line is the current one.
    assert_eq!(run.highlighted_lines(), [(0, 12, false), (1, 8, true)]);
    // Step back to the server entering accept (event 4): the client has not started.
    run.seek(4);
    assert_eq!(run.highlighted_lines(), [(0, 10, true)]);
    run.step(1);
    assert_eq!(run.selected(), Some(5));
    run.step(-10);
    assert_eq!(run.selected(), Some(0));
    run.step(100);
    assert_eq!(run.selected(), Some(last));
    // At every event, each role is at the line of its latest event until then.
    for selected in 0..=last {
        run.seek(selected);
        let latest_line = |role: &str| {
            run.events[..=selected]
                .iter()
                .rev()
                .find(|event| event.role == role)
                .and_then(|event| event.line)
        };
        let expected: Vec<(usize, u32, bool)> = ["server", "client"]
            .into_iter()
            .enumerate()
            .filter_map(|(index, role)| {
                let current = run.events[selected].role == role;
                Some((index, latest_line(role)?, current))
            })
            .collect();
        assert_eq!(run.highlighted_lines(), expected, "at event {selected}");
    }
    run.follow();
    assert_eq!(run.cursor, None);
}

/// Stepping forwards from a view of the run at an earlier event adds only the events since;
/// whatever the view it starts from (none, an earlier one, a later one, another run's), the
/// result is the run as it stood at the selected event.
#[test]
fn the_run_at_an_event_continues_from_an_earlier_view() {
    let mut run = run_with_code();
    let last = run.events.len() - 1;
    let mut other = model_with(firehose(3)).run.unwrap();
    other.seek(2);
    let mut earlier = None;
    for index in (0..last).chain([3, 1, last - 1]) {
        run.seek(index);
        let from_scratch = run.as_selected();
        let continued = run.as_selected_from(earlier.take());
        assert_eq!(continued, from_scratch, "at event {index}");
        assert_eq!(
            run.as_selected_from(Some(other.as_selected())),
            from_scratch,
            "from another run, at event {index}"
        );
        earlier = Some(continued);
    }
}

#[test]
fn the_run_as_it_stood_at_an_earlier_event() {
    let mut run = run_with_code();
    run.seek(4);
    let past = run.as_selected();
    assert_eq!(past.events.len(), 5);
    let listener = past.endpoint("server.s").unwrap();
    assert_eq!(listener.state, EndpointState::Listening);
    assert_eq!(past.waiting_call(listener).as_deref(), Some("accept()"));
    assert!(past.endpoint("server.con").is_none());
    assert!(past.messages.is_empty());
}

#[test]
fn the_log_filters_by_endpoint_and_sorts_by_time() {
    let run = run_with_code();
    let shown = |rows: &crate::model::LogRows| {
        (0..rows.len())
            .filter_map(|row| match rows.step(row) {
                crate::model::Step::Event(index) => Some(index),
                crate::model::Step::Packet(_) => None,
            })
            .collect::<Vec<_>>()
    };
    let client_rows = run.log_rows(Some("client.s"), false, true);
    let client = shown(&client_rows);
    assert!(!client.is_empty());
    assert!(client.iter().all(|&i| run.events[i].endpoint == "client.s"));
    assert!(client.windows(2).all(|pair| pair[0] < pair[1]));
    let all = run.events.len();
    assert_eq!(
        shown(&run.log_rows(None, false, true)),
        (0..all).collect::<Vec<_>>()
    );
    assert_eq!(
        shown(&run.log_rows(None, true, true)),
        (0..all).rev().collect::<Vec<_>>()
    );
    let client_newest_first = run.log_rows(Some("client.s"), true, true);
    assert_eq!(
        shown(&client_newest_first),
        client.iter().rev().copied().collect::<Vec<_>>()
    );
    // Each event is found in the row that shows it, and only there.
    for rows in [
        run.log_rows(None, false, true),
        run.log_rows(None, true, true),
        client_rows,
        client_newest_first,
    ] {
        for index in 0..all + 1 {
            let step = crate::model::Step::Event(index);
            let row = (0..rows.len()).find(|&row| rows.step(row) == step);
            assert_eq!(rows.row_of(step), row, "event {index} in {rows:?}");
        }
    }
}

#[test]
fn a_saved_trace_opens_again_without_a_backend() {
    let mut run = run_with_code();
    run.finish(RunOutcome::Completed);
    let json = run.to_file().to_json();
    let mut model = Model::default();
    model.open_trace(&json, "simple.json".into());
    let opened = model.run.as_ref().unwrap();
    assert_eq!(opened.events, run.events);
    assert_eq!(opened.programs, run.programs);
    assert_eq!(opened.outcome, Some(RunOutcome::Completed));
    assert_eq!(opened.cursor, Some(0));
    assert_eq!(
        opened.source,
        crate::model::Source::File {
            name: "simple.json".into()
        }
    );
    // A file of another kind is refused, and what was shown stays.
    model.open_trace("{\"not\": \"a trace\"}", "other.json".into());
    assert!(model.error.as_ref().unwrap().contains("other.json"));
    assert_eq!(model.run.as_ref().unwrap().events.len(), run.events.len());
    // A page that loses its backend keeps showing an opened file as it is.
    model.lose_link();
    assert_eq!(model.run.unwrap().outcome, Some(RunOutcome::Completed));
}

/// A long run: a client that sends 5,000 times on one connection (10,000 events and more).
fn firehose(sends: usize) -> Vec<Event> {
    let mut s = Script::default();
    s.enter("client.s", Call::Connect { address: SERVER }).ret(
        "client.s",
        ReturnValue::None,
        Some(CLIENT),
        Some(SERVER),
    );
    let data = Bytes(b"x".to_vec());
    for _ in 0..sends {
        s.enter("client.s", Call::Send { data: data.clone() }).ret(
            "client.s",
            ReturnValue::Sent { count: 1 },
            Some(CLIENT),
            Some(SERVER),
        );
    }
    s.0
}

#[test]
fn a_window_of_a_long_run_draws_only_its_rows() {
    let model = model_with(firehose(5_000));
    let run = model.run.as_ref().unwrap();
    assert_eq!(run.events.len(), 10_002);
    let window = crate::diagram::layout_window(run, run.events.len(), 5_000..5_040);
    assert_eq!(window.bars.len(), 20);
    assert!(window.bars.iter().all(|bar| !bar.waiting));
    // The diagram keeps its whole height, so that it scrolls as one.
    assert_eq!(window.height, layout(run).height);
    // Every call's return is known without searching.
    assert!(
        run.events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.phase == Phase::Enter)
            .all(|(index, _)| run.returns[index] == Some(index + 1))
    );
    // As it stood after 3 events, the second send has entered and not returned.
    let early = crate::diagram::layout_window(run, 3, 0..3);
    assert!(early.bars.last().unwrap().waiting);
}

#[test]
fn a_paused_run_names_its_next_call_until_it_is_made() {
    let mut model = model_with(Vec::new());
    let next = shared::NextCall {
        role: "server".into(),
        endpoint: "server.s".into(),
        line: Some(7),
        call: Call::Bind { address: SERVER },
    };
    model.apply(ServerMessage::Paused {
        run: 1,
        next: next.clone(),
    });
    assert_eq!(model.run.as_ref().unwrap().paused, Some(next));
    let mut s = Script::default();
    s.enter("server.s", Call::Bind { address: SERVER });
    model.apply(ServerMessage::Events {
        run: 1,
        events: s.0,
        dropped: vec![],
    });
    assert_eq!(model.run.as_ref().unwrap().paused, None);
}

#[test]
fn the_overview_folds_a_long_stream_into_one_row() {
    let model = model_with(firehose(5_000));
    let run = model.run.as_ref().unwrap();
    let rows = crate::diagram::overview(run, run.events.len());
    // The connect's enter and return, then one row for 10,000 send events.
    assert_eq!(rows.len(), 3);
    let crate::diagram::OverviewRow::Summary {
        calls,
        bytes,
        first,
        last,
    } = &rows[2]
    else {
        panic!("{:?}", rows[2]);
    };
    assert_eq!((*first, *last), (2, 10_001));
    assert_eq!(calls, &[("client.s".to_owned(), "send", 5_000)]);
    assert_eq!(*bytes, 5_000);
    let (diagram, bands) = crate::diagram::layout_overview(run, run.events.len(), &rows, 0..3, 0);
    // Every event is found in its row, by bisection as by search.
    for index in [0, 1, 2, 500, 10_001] {
        assert_eq!(
            crate::diagram::row_holding(&rows, index),
            rows.iter().position(|row| row.holds(index)),
            "{index}"
        );
    }
    assert_eq!(crate::diagram::row_holding(&rows, 10_002), None);
    assert_eq!(bands.len(), 1);
    assert!(bands[0].label.contains("client.s send × 5000, 5000 bytes"));
    assert_eq!(diagram.bars.len(), 1);
    // A short exchange is drawn call by call.
    let short = model_with(simple_run());
    let short_run = short.run.as_ref().unwrap();
    let short_rows = crate::diagram::overview(short_run, short_run.events.len());
    assert_eq!(short_rows.len(), short_run.events.len());
    for index in 0..short_run.events.len() {
        assert_eq!(crate::diagram::row_holding(&short_rows, index), Some(index));
    }
}

/// The overview rows of `events` made from scratch, the way the page first made them (every
/// stretch of sends and receives walked whole): what the rows kept as events come must be.
fn overview_from_scratch(events: &[Event]) -> Vec<crate::diagram::OverviewRow> {
    use crate::diagram::{OverviewRow, SUMMARY_MIN_EVENTS};
    let moves_data = |event: &Event| {
        matches!(
            event.call.name(),
            "send" | "sendall" | "sendto" | "recv" | "recvfrom"
        )
    };
    let mut rows = Vec::new();
    let mut index = 0;
    while index < events.len() {
        let stretch = events[index..].iter().take_while(|e| moves_data(e)).count();
        if stretch < SUMMARY_MIN_EVENTS {
            rows.extend((index..index + stretch.max(1)).map(OverviewRow::Event));
            index += stretch.max(1);
            continue;
        }
        let mut calls: Vec<(String, &'static str, usize)> = Vec::new();
        let mut bytes = 0;
        for event in &events[index..index + stretch] {
            let Some(Ok(result)) = event.outcome() else {
                continue;
            };
            bytes += match &result.value {
                ReturnValue::Sent { count } => *count,
                ReturnValue::Received { data, .. } => data.len(),
                ReturnValue::None => event.call.sent_data().map_or(0, |data| data.len()),
                _ => 0,
            };
            match calls.iter_mut().find(|(endpoint, name, _)| {
                *endpoint == event.endpoint && *name == event.call.name()
            }) {
                Some((_, _, count)) => *count += 1,
                None => calls.push((event.endpoint.clone(), event.call.name(), 1)),
            }
        }
        rows.push(OverviewRow::Summary {
            first: index,
            last: index + stretch - 1,
            calls,
            bytes,
        });
        index += stretch;
    }
    rows
}

/// A live run keeps its overview as events come: after every event it is what walking the
/// whole run would make, through stretches too short to fold, one that folds on its 40th
/// event, one cut by another call, and one that ends the run; stepped back into a folded
/// stretch, the rows up to there fold only what is long enough there.
#[test]
fn the_overview_kept_as_events_come_is_the_whole_runs() {
    let mut events = firehose(30);
    let mut s = Script(events.split_off(0));
    s.enter("client.s", Call::Recv { bufsize: 4 }).ret(
        "client.s",
        ReturnValue::Received {
            data: Bytes(b"ok".to_vec()),
            from: None,
            truncated_from: None,
        },
        Some(CLIENT),
        Some(SERVER),
    );
    s.enter("client.s", Call::Getsockname).ret(
        "client.s",
        ReturnValue::Address { address: CLIENT },
        Some(CLIENT),
        Some(SERVER),
    );
    let data = Bytes(b"xy".to_vec());
    for sends in [19, 20, 25] {
        for _ in 0..sends {
            s.enter("client.s", Call::Sendall { data: data.clone() })
                .ret("client.s", ReturnValue::None, Some(CLIENT), Some(SERVER));
        }
        s.enter("client.s", Call::Getpeername).ret(
            "client.s",
            ReturnValue::Address { address: SERVER },
            Some(CLIENT),
            Some(SERVER),
        );
    }
    for _ in 0..30 {
        s.enter("client.s", Call::Send { data: data.clone() }).ret(
            "client.s",
            ReturnValue::Sent { count: 1 },
            Some(CLIENT),
            Some(SERVER),
        );
    }
    let events = s.0;
    let mut run = crate::model::RunView::new(
        1,
        ScenarioInfo {
            id: "test".into(),
            title: "Test".into(),
            summary: String::new(),
            outside_roles: Vec::new(),
        },
        Vec::new(),
    );
    let mut folded = 0;
    for (index, event) in events.iter().enumerate() {
        run.push(event.clone());
        let expected = overview_from_scratch(&events[..=index]);
        assert_eq!(
            run.overview.rows(),
            expected.as_slice(),
            "after event {index}"
        );
        folded = expected
            .iter()
            .filter(|row| matches!(row, crate::diagram::OverviewRow::Summary { .. }))
            .count();
    }
    // The first stream (with its recv), the stretches of 40 and 50 events, and the last.
    assert_eq!(folded, 4);
    for upto in 0..events.len() {
        assert_eq!(
            &*crate::diagram::overview(&run, upto),
            overview_from_scratch(&events[..upto]).as_slice(),
            "up to {upto}"
        );
    }
}

/// A `recv` (not `recvfrom`) on a socket with no peer names no sender: the datagrams it takes
/// are found by the address they were sent to.
#[test]
fn a_plain_recv_takes_the_datagrams_sent_to_its_address() {
    let mut s = udp_server_bound();
    for part in ["one", "two"] {
        let data = Bytes(part.as_bytes().to_vec());
        s.enter(
            "client.s",
            Call::Sendto {
                data: data.clone(),
                address: SERVER,
            },
        )
        .ret("client.s", ReturnValue::Sent { count: 3 }, None, None);
    }
    for part in ["one", "two"] {
        s.server_receives(part.as_bytes());
    }
    let model = model_with(s.0);
    let run = model.run.as_ref().unwrap();
    let routes: Vec<(Option<&str>, Option<u64>)> = run
        .messages
        .iter()
        .map(|m| (m.to.as_deref(), m.received_at))
        .collect();
    assert_eq!(
        routes,
        [(Some("server.s"), Some(9)), (Some("server.s"), Some(11))]
    );
}

#[test]
fn an_empty_datagram_is_taken_by_a_recv_and_drawn() {
    let client = SockAddr::Inet {
        host: Ipv4Addr::new(127, 0, 0, 1),
        port: 40001,
    };
    let mut s = udp_server_bound();
    s.socket("client.s", SockType::Dgram);
    for part in ["", "two"] {
        s.client_sends_datagram(&Bytes(part.as_bytes().to_vec()), &client);
    }
    for part in ["", "two"] {
        s.server_receives(part.as_bytes());
    }
    let model = model_with(s.0);
    let run = model.run.as_ref().unwrap();
    // Each recv took one datagram, the empty one first: both are drawn as arrows.
    let routes: Vec<(usize, Option<&str>, Option<u64>)> = run
        .messages
        .iter()
        .map(|m| (m.data.len(), m.to.as_deref(), m.received_at))
        .collect();
    assert_eq!(
        routes,
        [
            (0, Some("server.s"), Some(11)),
            (3, Some("server.s"), Some(13))
        ]
    );
    let diagram = layout(run);
    let labels: Vec<&str> = diagram.arrows.iter().map(|a| a.label.as_str()).collect();
    assert_eq!(labels, ["b''", "b'two'"]);
    // On a datagram socket b'' is an empty datagram, not the peer closing, and a recv takes
    // one datagram, not what a stream has gathered.
    let empty_recv = &run.events[11];
    assert!(
        run.explain(empty_recv).starts_with("An empty datagram"),
        "{}",
        run.explain(empty_recv)
    );
    let recv = &run.events[13];
    assert!(
        run.explain(recv).starts_with("One datagram of 3 bytes"),
        "{}",
        run.explain(recv)
    );
}

/// A run's first events: `server.s` bound to `SERVER` and its accept returned `server.con`,
/// connected to `peer` (a program outside Socket Lab, named by `process` when it could be).
fn server_accepted(peer: &SockAddr, process: Option<shared::PeerProcess>) -> Script {
    let mut s = Script::default();
    s.enter("server.s", Call::Bind { address: SERVER })
        .ret("server.s", ReturnValue::None, Some(SERVER), None)
        .enter("server.s", Call::Accept)
        .ret(
            "server.s",
            ReturnValue::Accepted {
                endpoint: "server.con".into(),
                fd: 7,
                address: peer.clone(),
                process,
            },
            Some(SERVER),
            None,
        );
    s
}

/// A connection from a program Socket Lab could not name (no process came with the accept):
/// the server's bytes go to no lifeline, and the bytes it receives come from none.
#[test]
fn bytes_to_and_from_a_peer_nobody_named_are_drawn_with_no_other_end() {
    let stranger = SockAddr::Inet {
        host: Ipv4Addr::new(127, 0, 0, 1),
        port: 50001,
    };
    let mut s = server_accepted(&stranger, None);
    for _ in 0..3 {
        let data = Bytes(b"echo".to_vec());
        s.enter("server.con", Call::Recv { bufsize: 10 })
            .ret(
                "server.con",
                ReturnValue::Received {
                    data: data.clone(),
                    from: None,
                    truncated_from: None,
                },
                Some(SERVER),
                Some(stranger.clone()),
            )
            .enter("server.con", Call::Sendall { data })
            .ret(
                "server.con",
                ReturnValue::None,
                Some(SERVER),
                Some(stranger.clone()),
            );
    }
    let model = model_with(s.0);
    let run = model.run.as_ref().unwrap();
    assert_eq!(run.endpoints.len(), 2, "no lifeline for the stranger");
    assert_eq!(run.messages.len(), 3, "the server's three sends");
    assert!(
        run.messages
            .iter()
            .all(|m| m.from == "server.con" && m.to.is_none() && m.taken == 0)
    );
    assert_eq!(
        run.endpoint("server.con").unwrap().last_received,
        Some(Bytes(b"echo".to_vec()))
    );
}

#[test]
fn an_outside_program_gets_a_lifeline_and_its_bytes_arrows() {
    let student = SockAddr::Inet {
        host: Ipv4Addr::new(127, 0, 0, 1),
        port: 50000,
    };
    let mut s = server_accepted(
        &student,
        Some(shared::PeerProcess {
            pid: 4242,
            name: "python3".into(),
        }),
    );
    let hello = Bytes(b"hello".to_vec());
    s.enter(
        "server.con",
        Call::Send {
            data: hello.clone(),
        },
    )
    .ret(
        "server.con",
        ReturnValue::Sent { count: 5 },
        Some(SERVER),
        Some(student.clone()),
    );
    s.enter("server.con", Call::Recv { bufsize: 10 }).ret(
        "server.con",
        ReturnValue::Received {
            data: Bytes(b"hi".to_vec()),
            from: None,
            truncated_from: None,
        },
        Some(SERVER),
        Some(student.clone()),
    );
    let model = model_with(s.0);
    let run = model.run.as_ref().unwrap();
    let outside = run.endpoint("python3[4242]").unwrap();
    assert_eq!(outside.role, crate::model::OUTSIDE_ROLE);
    assert_eq!(outside.local, Some(student));
    let routes: Vec<(&str, Option<&str>)> = run
        .messages
        .iter()
        .map(|m| (m.from.as_str(), m.to.as_deref()))
        .collect();
    assert_eq!(
        routes,
        [
            ("server.con", Some("python3[4242]")),
            ("python3[4242]", Some("server.con"))
        ]
    );
    assert_eq!(layout(run).arrows.len(), 2);
    assert_eq!(crate::model::role_colour("outside"), "outside");
}

#[test]
fn events_the_server_dropped_leave_a_count_and_the_rest_still_lines_up() {
    // The server sent the first two events, dropped the next 50, then sent the rest.
    let mut events = simple_run();
    for event in &mut events[2..] {
        event.seq += 50;
    }
    let mut model = model_with(events[..2].to_vec());
    model.apply(ServerMessage::Events {
        run: 1,
        events: events[2..].to_vec(),
        dropped: vec![
            shared::Dropped {
                count: 30,
                first_seq: 2,
                last_seq: 31,
                calls: vec![shared::CallTally {
                    endpoint: "client.s".into(),
                    call: "send".into(),
                    count: 15,
                    failed: 0,
                    bytes: 15,
                }],
            },
            shared::Dropped {
                count: 20,
                first_seq: 32,
                last_seq: 51,
                calls: vec![shared::CallTally {
                    endpoint: "client.s".into(),
                    call: "send".into(),
                    count: 10,
                    failed: 1,
                    bytes: 9,
                }],
            },
        ],
    });
    let run = model.run.as_ref().unwrap();
    assert_eq!(run.dropped_count(), 50);
    // What the missing calls did is added up over the ranges.
    assert_eq!(
        run.dropped_calls(),
        vec![shared::CallTally {
            endpoint: "client.s".into(),
            call: "send".into(),
            count: 25,
            failed: 1,
            bytes: 24,
        }]
    );
    // Arrows are placed by the events' places in the run, not by their seq.
    let message = &run.messages[0];
    assert!(message.received_at.unwrap() < run.events.len() as u64);
    let diagram = layout(run);
    assert!(diagram.arrows[0].to.1 <= row_y(run.events.len()));
    // Such a run can be saved and opened again.
    let json = run.to_file().to_json();
    let mut reopened = Model::default();
    reopened.open_trace(&json, "gap.json".into());
    assert_eq!(reopened.error, None);
    assert_eq!(reopened.run.unwrap().events.len(), run.events.len());
}

#[test]
fn a_session_the_server_closed_says_why_and_is_not_shown_as_live() {
    let mut idle = model_with(simple_run()[..3].to_vec());
    idle.close_link(Some((
        shared::message::close_code::IDLE,
        "this page sent nothing for 3600 s".into(),
    )));
    assert!(matches!(&idle.link, Link::Closed { reason } if reason.contains("3600 s")));
    assert!(matches!(
        idle.run.unwrap().outcome,
        Some(RunOutcome::Cancelled { .. })
    ));

    let mut full = Model::default();
    full.close_link(Some((1013, "the server is serving 2000 sessions".into())));
    assert!(matches!(&full.link, Link::Refused { reason } if reason.contains("2000")));

    // A refused page retrying is refused again: the reason stays shown.
    full.close_link(Some((1006, String::new())));
    assert!(matches!(&full.link, Link::Refused { .. }));

    let mut lost = Model::default();
    lost.close_link(Some((1006, String::new())));
    assert_eq!(lost.link, Link::Lost);
    let mut shut_down = Model::default();
    shut_down.close_link(Some((1001, "the server is shutting down".into())));
    assert_eq!(shut_down.link, Link::Lost);
}

/// A watched process's event on `endpoint`, from `file` at `line`, with views of some of the
/// process's sockets only.
fn watched(seq: u64, endpoint: &str, call: Call, file: &str, line: u32) -> Event {
    let role = endpoint.rsplit_once('.').map_or(endpoint, |(role, _)| role);
    Event {
        seq,
        watched: Some(shared::Watched {
            pid: 7,
            tid: 7,
            syscall: call.name().into(),
            file: Some(file.into()),
            ..Default::default()
        }),
        ..Event::enter(role, endpoint, Some(line), call)
    }
}

#[test]
fn a_watched_process_has_a_program_per_file_and_views_of_some_sockets_leave_the_others() {
    let mut model = model_with(Vec::new());
    for (file, code) in [
        ("/a/server.py", "import helper\nhelper.serve()\n"),
        (
            "/a/helper.py",
            "import socket\ns = socket.socket()\nc = socket.socket()\n",
        ),
    ] {
        model.apply(ServerMessage::Program {
            run: 1,
            program: shared::RoleProgram {
                role: "server.py[7]".into(),
                code: code.into(),
                outside: false,
                file: Some(file.into()),
            },
        });
    }
    let mut first = watched(
        0,
        "server.py[7].fd3",
        Call::Listen { backlog: 5 },
        "/a/helper.py",
        2,
    );
    first.phase = Phase::Return;
    first.kernel = vec![kernel_view("server.py[7].fd3", shared::SocketState::Listen)];
    let mut second = watched(
        1,
        "server.py[7].fd4",
        Call::Recv { bufsize: 4 },
        "/a/helper.py",
        3,
    );
    second.kernel = vec![kernel_view(
        "server.py[7].fd4",
        shared::SocketState::Established,
    )];
    second.phase = Phase::Return;
    model.apply(ServerMessage::Events {
        run: 1,
        events: vec![first, second],
        dropped: vec![],
    });
    let run = model.run.as_ref().unwrap();
    assert_eq!(run.programs.len(), 2);
    // The line is in the helper's file, the second program.
    assert_eq!(run.highlighted_lines(), [(1, 3, true)]);
    // fd4's view said nothing of fd3: fd3 still listens, as the kernel last said.
    let listener = run.endpoint("server.py[7].fd3").unwrap();
    assert_eq!(
        listener.kernel.as_ref().map(|view| view.state),
        Some(shared::SocketState::Listen)
    );
    assert_ne!(listener.state, crate::model::EndpointState::Closed);
    // Its close() returning leaves no view of it (the kernel has none to give).
    let mut closed = watched(2, "server.py[7].fd3", Call::Close, "/a/helper.py", 4);
    closed.phase = Phase::Return;
    closed.result = Some(CallResult {
        value: ReturnValue::None,
        fd: None,
        local: None,
        peer: None,
        peer_process: None,
    });
    model.apply(ServerMessage::Events {
        run: 1,
        events: vec![closed],
        dropped: vec![],
    });
    let run = model.run.as_ref().unwrap();
    let listener = run.endpoint("server.py[7].fd3").unwrap();
    assert_eq!(listener.kernel, None);
    assert_eq!(listener.state, crate::model::EndpointState::Closed);
    assert!(run.endpoint("server.py[7].fd4").unwrap().kernel.is_some());
}

#[test]
fn a_watched_process_that_ends_closes_its_own_sockets_only() {
    let mut model = model_with(Vec::new());
    let mut client = watched(
        0,
        "client.py[8].fd3",
        Call::Recv { bufsize: 4 },
        "/a/c.py",
        1,
    );
    client.phase = Phase::Enter;
    let mut server = watched(1, "server.py[7].fd3", Call::Accept, "/a/s.py", 1);
    server.phase = Phase::Enter;
    let mut ended = watched(
        2,
        "client.py[8]",
        Call::Other {
            text: "was killed by SIGKILL".into(),
        },
        "/a/c.py",
        1,
    );
    ended.phase = Phase::Return;
    ended.line = None;
    ended.role = "client.py[8]".into();
    if let Some(watched) = ended.watched.as_mut() {
        watched.process_ended = true;
    }
    model.apply(ServerMessage::Events {
        run: 1,
        events: vec![client, server, ended],
        dropped: vec![],
    });
    let run = model.run.as_ref().unwrap();
    let client = run.endpoint("client.py[8].fd3").unwrap();
    assert_eq!(client.state, crate::model::EndpointState::Closed);
    assert_eq!(client.waiting, None, "its recv will never return");
    let server = run.endpoint("server.py[7].fd3").unwrap();
    assert_ne!(server.state, crate::model::EndpointState::Closed);
    assert!(server.waiting.is_some());
    assert!(
        run.endpoint("client.py[8]").is_none(),
        "the process is no endpoint"
    );
}

#[test]
fn a_watched_runs_lanes_are_grouped_by_process_under_its_name() {
    let mut model = model_with(Vec::new());
    let mut events = Vec::new();
    for (seq, (role, endpoint)) in [
        ("server.py[7]", "server.py[7].fd3"),
        ("client.py[8]", "client.py[8].fd3"),
        ("server.py[7]", "server.py[7].fd4"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut event = watched(seq as u64, endpoint, Call::Close, "/a/x.py", 1);
        event.role = role.into();
        events.push(event);
    }
    model.apply(ServerMessage::Events {
        run: 1,
        events,
        dropped: vec![],
    });
    let diagram = crate::diagram::layout(model.run.as_ref().unwrap());
    let lanes: Vec<(&str, &str, Option<&str>)> = diagram
        .lanes
        .iter()
        .map(|lane| {
            (
                lane.endpoint.as_str(),
                lane.title.as_str(),
                lane.process.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        lanes,
        [
            ("server.py[7].fd3", "fd3", Some("server.py[7]")),
            ("server.py[7].fd4", "fd4", None),
            ("client.py[8].fd3", "fd3", Some("client.py[8]")),
        ]
    );
    // A scenario's lanes keep their order and their whole names.
    let scenario = crate::diagram::layout(model_with(simple_run()).run.as_ref().unwrap());
    assert!(
        scenario
            .lanes
            .iter()
            .all(|lane| lane.title == lane.endpoint && lane.process.is_none())
    );
}

/// A TCP segment of the simple run's connection, `at` µs into the run.
fn segment(seq: u64, at: u64, outwards: bool, flags: &[shared::TcpFlag]) -> shared::Packet {
    let (src, dst) = if outwards {
        (CLIENT, SERVER)
    } else {
        (SERVER, CLIENT)
    };
    shared::Packet {
        seq,
        t_us: at,
        protocol: shared::Protocol::Tcp,
        src,
        dst,
        length: 40,
        tcp: Some(shared::TcpSegment {
            flags: flags.to_vec(),
            seq: 0,
            ack: 0,
            window: 65535,
        }),
        icmp: None,
        payload_len: 0,
        payload: Bytes::default(),
        frame: String::new(),
    }
}

#[test]
fn a_handshakes_packets_are_arrows_one_under_the_other_inside_the_connects_bar() {
    use shared::TcpFlag::{Ack, Syn};
    let mut model = model_with(simple_run());
    // The connect enters at 50 µs and returns at 60: its three packets come between.
    model.apply(ServerMessage::Packets {
        run: 1,
        packets: vec![
            segment(0, 51, true, &[Syn]),
            segment(1, 52, false, &[Syn, Ack]),
            segment(2, 53, true, &[Ack]),
        ],
    });
    let run = model.run.as_ref().unwrap();
    let diagram = layout(run);
    let lane = |id: &str| diagram.lanes.iter().find(|l| l.endpoint == id).unwrap().x;
    let kinds: Vec<&str> = diagram.packets.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["SYN", "SYN,ACK", "ACK"]);
    let connect = diagram
        .bars
        .iter()
        .find(|bar| bar.label.starts_with("connect("))
        .unwrap();
    let mut below = connect.top;
    for packet in &diagram.packets {
        let (top, bottom) = (
            packet.from.1.min(packet.to.1),
            packet.from.1.max(packet.to.1),
        );
        assert!(
            top > below,
            "each packet's arrow is below the last: {:?}",
            diagram.packets
        );
        assert!(
            bottom < connect.bottom,
            "inside the connect's bar: {connect:?}"
        );
        // Its label is over its own arrow, below the arrow before it.
        assert!(packet.label_at.1 <= top + (bottom - top) / 2 && packet.label_at.1 > below);
        below = bottom;
    }
    // Each goes between the two sockets, the way it went.
    let syn = &diagram.packets[0];
    assert_eq!((syn.from.0, syn.to.0), (lane("client.s"), lane("server.s")));
    assert_eq!(diagram.packets[1].to.0, lane("client.s"));
    // Three rows more than the events: the connect's return, and what follows, moved down.
    assert_eq!(connect.bottom, row_y(6 + 3));
    assert_eq!(
        diagram.height,
        layout(&model_with(simple_run()).run.unwrap()).height + 3 * crate::diagram::ROW_HEIGHT
    );
}

#[test]
fn each_packet_of_a_handshake_and_a_close_names_the_transition_it_made() {
    use crate::state_machine::changes_at_packet;
    use shared::SocketState::{Closed, Established, FinWait1, FinWait2, Listen, SynSent, TimeWait};
    use shared::TcpFlag::{Ack, Fin, Syn};
    let mut events = simple_run();
    // The kernel's views at the connect's enter and return, and at the client's close
    // (entered at 200 µs, returned at 210, its FIN and the server's answer in between), as
    // the kernel reports them: the server's listener listens throughout.
    let connect = events
        .iter()
        .position(|event| matches!(event.call, Call::Connect { .. }))
        .unwrap();
    events[connect].kernel = vec![
        kernel_view("client.s", Closed),
        kernel_view("server.s", Listen),
    ];
    events[connect + 1].kernel = vec![
        kernel_view("client.s", Established),
        kernel_view("server.s", Listen),
    ];
    let mut close = Event::enter("client", "client.s", Some(8), Call::Close);
    close.seq = events.len() as u64;
    close.t_us = 200;
    close.kernel = vec![kernel_view("client.s", Established)];
    let mut closed = close.clone();
    closed.seq += 1;
    closed.t_us = 210;
    closed.phase = Phase::Return;
    closed.result = Some(shared::CallResult {
        value: ReturnValue::None,
        fd: None,
        local: Some(CLIENT),
        peer: Some(SERVER),
        peer_process: None,
    });
    closed.kernel = vec![kernel_view("client.s", TimeWait)];
    events.extend([close, closed]);
    let packets = [
        segment(0, 51, true, &[Syn]),
        segment(1, 52, false, &[Syn, Ack]),
        segment(2, 53, true, &[Ack]),
        segment(3, 201, true, &[Fin, Ack]),
        segment(4, 202, false, &[Ack]),
        segment(5, 203, false, &[Fin, Ack]),
        segment(6, 204, true, &[Ack]),
    ];
    let endpoints = shared::cause::Endpoints::of(&events);
    let made = |index: usize| {
        changes_at_packet(&events, &packets, index, &endpoints)
            .into_iter()
            .map(|change| (change.endpoint, change.from.unwrap(), change.to))
            .collect::<Vec<_>>()
    };
    let client = |from, to| ("client.s".to_owned(), from, to);
    // The SYN that left makes SYN-SENT, the SYN-ACK that came in ESTABLISHED; the ACK
    // moves nobody the kernel reports on (the server's listener stays LISTEN).
    assert_eq!(made(0), [client(Closed, SynSent)]);
    assert_eq!(made(1), [client(SynSent, Established)]);
    assert_eq!(made(2), []);
    // The close: its FIN, then the ACK of it, then the server's FIN.
    assert_eq!(made(3), [client(Established, FinWait1)]);
    assert_eq!(made(4), [client(FinWait1, FinWait2)]);
    assert_eq!(made(5), [client(FinWait2, TimeWait)]);
    assert_eq!(made(6), []);
    // The figure's words for a packet's step name it as the cause.
    let text = changes_at_packet(&events, &packets, 1, &endpoints)[0].text("this packet");
    assert_eq!(
        text,
        "client.s: SYN-SENT → ESTABLISHED at this packet: SYN-ACK came in; the kernel sends \
         ACK, and connect() returns"
    );
}
