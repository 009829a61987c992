//! Every scenario, played on real sockets, checked for what it teaches.

use std::path::Path;

use shared::{
    Bytes, Call, ErrorOrigin, Event, Phase, ReturnValue, RunOutcome, SockAddr, SocketState,
    SocketView,
};

/// A finished run's events, with the questions the tests ask of them.
struct Trace {
    events: Vec<Event>,
}

/// Plays a scenario to its end; it must complete, with its events numbered without gaps.
async fn play(id: &str) -> Trace {
    let (events, outcome) = backend::record(id).await.unwrap();
    assert_eq!(outcome, RunOutcome::Completed, "{id}: {events:#?}");
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.seq, index as u64, "{id}: a gap in seq");
        match event.phase {
            Phase::Enter => assert!(event.result.is_none() && event.error.is_none()),
            Phase::Return => assert!(
                event.result.is_some() != event.error.is_some(),
                "{id}: a return event needs exactly one of result and error: {event:?}"
            ),
        }
    }
    assert!(events.windows(2).all(|pair| pair[0].t_us <= pair[1].t_us));
    // The page reads events with its own decoder (shared::decode): every real event must
    // read back as the backend wrote it.
    for event in &events {
        let json = serde_json::to_string(event).unwrap();
        assert_eq!(
            shared::decode::from_str::<Event>(&json).as_ref(),
            Ok(event),
            "{json}"
        );
    }
    Trace { events }
}

impl Trace {
    /// The return events of `call` on `endpoint`, in order.
    fn returns(&self, endpoint: &str, call: &str) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.endpoint == endpoint && e.call.name() == call && e.phase == Phase::Return)
            .collect()
    }

    /// The only return event of `call` on `endpoint`.
    fn one(&self, endpoint: &str, call: &str) -> &Event {
        let found = self.returns(endpoint, call);
        assert_eq!(found.len(), 1, "{call} on {endpoint}: {found:#?}");
        found[0]
    }

    /// The enter event matching a return event.
    fn enter_of(&self, returned: &Event) -> &Event {
        self.events[..returned.seq as usize]
            .iter()
            .rev()
            .find(|e| e.endpoint == returned.endpoint && e.phase == Phase::Enter)
            .unwrap()
    }

    /// Every error, as (endpoint, call, errno).
    fn errors(&self) -> Vec<(&str, &str, &str)> {
        self.events
            .iter()
            .filter_map(|e| {
                let error = e.error.as_ref()?;
                Some((e.endpoint.as_str(), e.call.name(), error.errno.as_str()))
            })
            .collect()
    }

    /// The bytes each recv or recvfrom on `endpoint` returned.
    fn received(&self, endpoint: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.endpoint == endpoint && e.phase == Phase::Return)
            .filter_map(|e| match &e.result.as_ref()?.value {
                ReturnValue::Received { data, .. } => {
                    Some(String::from_utf8_lossy(&data.0).into_owned())
                }
                _ => None,
            })
            .collect()
    }
}

fn value(event: &Event) -> &ReturnValue {
    &event.result.as_ref().unwrap().value
}

fn local(event: &Event) -> SockAddr {
    event.result.as_ref().unwrap().local.clone().unwrap()
}

fn kernel<'a>(event: &'a Event, endpoint: &str) -> &'a SocketView {
    event
        .kernel
        .iter()
        .find(|view| view.endpoint == endpoint)
        .unwrap_or_else(|| panic!("no kernel view of {endpoint} in {event:?}"))
}

fn no_errors(trace: &Trace) {
    assert_eq!(trace.errors(), [], "{:#?}", trace.events);
}

#[tokio::test]
async fn simple_server_client_makes_every_call_for_real() {
    let trace = play("simple-server-client").await;
    no_errors(&trace);
    let bind = trace.one("server.s", "bind");
    let SockAddr::Inet { host, port } = local(bind) else {
        panic!("{bind:?}");
    };
    assert!(host.is_loopback());
    assert_eq!(port, 12345);
    // The server waited in accept() before the client's connect() returned.
    let accept = trace.one("server.s", "accept");
    let connect = trace.one("client.s", "connect");
    assert!(trace.enter_of(accept).seq < connect.seq);
    // accept() returned the client's own address, as the client's connect() reports it.
    let ReturnValue::Accepted {
        endpoint, address, ..
    } = value(accept)
    else {
        panic!("{accept:?}");
    };
    assert_eq!(endpoint, "server.con");
    assert_eq!(*address, local(connect));
    assert_eq!(trace.received("client.s"), ["Connection is successful"]);
    // Each line a step names is the line that makes the call.
    assert_eq!(trace.one("server.s", "accept").line, Some(10));
    // Closing the connection, the server's kernel keeps it to end it with FIN, and the page
    // says the client will see end of stream.
    let con_closed = shared::describe::explain(trace.one("server.con", "close"), None);
    assert!(
        con_closed.contains("the peer sees end of stream"),
        "{con_closed}"
    );
}

#[tokio::test]
async fn tcp_echo_sends_back_each_message_until_end_of_stream() {
    let trace = play("tcp-echo").await;
    no_errors(&trace);
    assert_eq!(
        trace.received("client.s"),
        ["Hello, server", "Echo this back"]
    );
    assert_eq!(
        trace.received("server.con"),
        ["Hello, server", "Echo this back", ""]
    );
    let peer = trace.one("server.con", "getpeername");
    assert_eq!(
        *value(peer),
        ReturnValue::Address {
            address: local(trace.one("client.s", "connect"))
        }
    );
}

#[tokio::test]
async fn udp_echo_needs_no_connection() {
    let trace = play("udp-echo").await;
    no_errors(&trace);
    for call in ["listen", "accept", "connect"] {
        assert!(trace.events.iter().all(|e| e.call.name() != call));
    }
    // The server learns the client's address from recvfrom: the port the kernel gave the
    // client at its first sendto (bound to the wildcard address 0.0.0.0, as `getsockname`
    // shows; the datagram came from 127.0.0.1).
    let sendto = trace.one("client.s", "sendto");
    let ReturnValue::Received { data, from, .. } = value(trace.one("server.s", "recvfrom")) else {
        panic!()
    };
    assert_eq!(data.0, b"Hello, UDP");
    assert_eq!(from.as_ref().and_then(SockAddr::port), local(sendto).port());
    let ReturnValue::Received { from, .. } = value(trace.one("client.s", "recvfrom")) else {
        panic!()
    };
    assert_eq!(from.as_ref(), Some(&local(trace.one("server.s", "bind"))));
    assert_eq!(
        kernel(trace.one("server.s", "bind"), "server.s").state,
        SocketState::Unconnected
    );
}

#[tokio::test]
async fn unix_stream_names_a_file_in_the_runs_own_directory_and_removes_it() {
    let trace = play("unix-stream").await;
    no_errors(&trace);
    let SockAddr::Unix { path, r#abstract } = local(trace.one("server.s", "bind")) else {
        panic!()
    };
    assert!(!r#abstract);
    let dir = Path::new(&path).parent().unwrap();
    assert!(dir.starts_with(std::env::temp_dir()));
    assert!(
        dir.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("socket-lab-")
    );
    assert!(!dir.exists(), "{} was left behind", dir.display());
    // The client never bound: the server sees it as an unnamed socket.
    let ReturnValue::Accepted { address, .. } = value(trace.one("server.s", "accept")) else {
        panic!()
    };
    assert_eq!(
        *address,
        SockAddr::Unix {
            path: String::new(),
            r#abstract: false
        }
    );
    assert_eq!(trace.received("client.s"), ["HELLO OVER A UNIX SOCKET"]);
    // Where TCP would say CLOSE_WAIT, the client's socket stays connected once the server has
    // closed, and its view says that the peer will send nothing more.
    let server_closed = trace.one("server.con", "close").seq;
    let client_views: Vec<(u64, &SocketView)> = trace
        .events
        .iter()
        .filter_map(|e| Some((e.seq, e.kernel.iter().find(|v| v.endpoint == "client.s")?)))
        .collect();
    assert!(client_views.iter().any(|(seq, _)| *seq > server_closed));
    for (seq, view) in client_views {
        assert_eq!(view.peer_closed, seq >= server_closed, "event {seq}");
        if view.peer_closed {
            assert_eq!(view.state, SocketState::Connected, "event {seq}");
        }
    }
}

#[tokio::test]
async fn unix_dgram_answers_a_client_bound_to_an_abstract_name() {
    let trace = play("unix-dgram").await;
    no_errors(&trace);
    let client = local(trace.one("client.s", "bind"));
    let SockAddr::Unix {
        path,
        r#abstract: true,
    } = &client
    else {
        panic!("{client:?}")
    };
    assert!(path.starts_with("socket-lab-") && path.ends_with("/client"));
    let ReturnValue::Received { from, .. } = value(trace.one("server.s", "recvfrom")) else {
        panic!()
    };
    assert_eq!(from.as_ref(), Some(&client));
    assert_eq!(trace.received("client.s"), ["Hello, datagram"]);
}

#[tokio::test]
async fn ipv6_echo_runs_on_the_ipv6_loopback() {
    let trace = play("ipv6-echo").await;
    no_errors(&trace);
    let SockAddr::Inet6 { host, .. } = local(trace.one("server.s", "bind")) else {
        panic!()
    };
    assert_eq!(host, std::net::Ipv6Addr::LOCALHOST);
    assert_eq!(
        trace.received("client.s"),
        ["Hello, server", "Echo this back"]
    );
}

#[tokio::test]
async fn multiple_clients_wait_in_the_accept_queue() {
    let trace = play("multiple-clients").await;
    no_errors(&trace);
    let accepts = trace.returns("server.s", "accept");
    assert_eq!(accepts.len(), 3);
    // All three connects returned before the first accept: the kernel queued them.
    let first_accept = trace.enter_of(accepts[0]);
    for client in ["client1.s", "client2.s", "client3.s"] {
        assert!(trace.one(client, "connect").seq < first_accept.seq);
    }
    let listener = kernel(first_accept, "server.s");
    assert_eq!(
        (listener.state, listener.accept_queue, listener.backlog),
        (SocketState::Listen, Some(3), Some(5))
    );
    // Each accept made a connection of its own, for the clients in the order they came.
    let mut names = Vec::new();
    for (accept, client) in accepts.iter().zip(["client1.s", "client2.s", "client3.s"]) {
        let ReturnValue::Accepted {
            endpoint, address, ..
        } = value(accept)
        else {
            panic!()
        };
        assert_eq!(*address, local(trace.one(client, "connect")));
        names.push(endpoint.clone());
    }
    assert_eq!(names, ["server.con", "server.con2", "server.con3"]);
    for (n, client) in ["client1.s", "client2.s", "client3.s"].iter().enumerate() {
        assert_eq!(
            trace.received(client),
            [format!("You are client {}", n + 1)]
        );
    }
}

#[tokio::test]
async fn a_byte_stream_keeps_no_message_boundaries() {
    let trace = play("byte-stream").await;
    no_errors(&trace);
    assert_eq!(trace.returns("client.s", "send").len(), 2);
    let recv = trace.one("server.con", "recv");
    assert_eq!(trace.received("server.con"), ["Hello, world!"]);
    // Both sends were waiting in the receive queue before the one recv took them.
    assert_eq!(
        kernel(trace.enter_of(recv), "server.con").recv_queue,
        Some(13)
    );
}

#[tokio::test]
async fn datagrams_keep_their_boundaries_and_a_small_buffer_truncates() {
    let trace = play("datagram-boundaries").await;
    no_errors(&trace);
    let received: Vec<(Vec<u8>, Option<usize>)> = trace
        .returns("server.s", "recvfrom")
        .iter()
        .map(|e| match value(e) {
            ReturnValue::Received {
                data,
                truncated_from,
                ..
            } => (data.0.clone(), *truncated_from),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        received,
        [
            (b"one".to_vec(), None),
            (b"two two".to_vec(), None),
            (b"three th".to_vec(), Some(17)),
        ]
    );
}

#[tokio::test]
async fn half_close_shows_the_tcp_states_in_order() {
    let trace = play("half-close").await;
    no_errors(&trace);
    assert_eq!(trace.received("server.con"), ["What is the answer?", ""]);
    assert_eq!(trace.received("client.s"), ["42", ""]);
    // The states each side passes through, as the kernel reported them at each event.
    let states = |endpoint: &str| {
        let mut seen: Vec<SocketState> = Vec::new();
        for event in &trace.events {
            if let Some(view) = event.kernel.iter().find(|v| v.endpoint == endpoint)
                && seen.last() != Some(&view.state)
            {
                seen.push(view.state);
            }
        }
        seen
    };
    let client = states("client.s");
    let position = |state| client.iter().position(|s| *s == state);
    let (established, fin_wait2, time_wait) = (
        position(SocketState::Established).expect("ESTABLISHED"),
        position(SocketState::FinWait2).expect("FIN_WAIT2"),
        position(SocketState::TimeWait).expect("TIME_WAIT"),
    );
    assert!(
        established < fin_wait2 && fin_wait2 < time_wait,
        "{client:?}"
    );
    assert!(states("server.con").contains(&SocketState::CloseWait));
    // After the client closed, the kernel still keeps its end in TIME_WAIT.
    let close = trace.one("client.s", "close");
    let lingering = kernel(close, "client.s");
    assert!(lingering.lingering);
    assert_eq!(lingering.state, SocketState::TimeWait);
    assert!(shared::describe::explain(close, None).contains("TIME_WAIT"));
}

#[tokio::test]
async fn connecting_where_nothing_listens_is_refused() {
    let trace = play("connection-refused").await;
    assert_eq!(trace.errors(), [("client.s", "connect", "ECONNREFUSED")]);
    let error = trace.one("client.s", "connect").error.clone().unwrap();
    assert_eq!(error.origin, ErrorOrigin::Kernel);
    assert_eq!(error.code, 111);
    // The program stopped at the uncaught error.
    assert!(trace.returns("client.s", "send").is_empty());
}

#[tokio::test]
async fn address_in_use_until_so_reuseaddr() {
    let trace = play("address-in-use").await;
    let errors = trace.errors();
    assert_eq!(
        errors,
        [
            ("second.s", "bind", "EADDRINUSE"),
            ("restarted.s", "bind", "EADDRINUSE")
        ]
    );
    // The restarted server's first bind failed while the old connection was in TIME_WAIT.
    let binds = trace.returns("restarted.s", "bind");
    assert_eq!(binds.len(), 2);
    let old = kernel(binds[0], "server.con");
    assert_eq!((old.state, old.lingering), (SocketState::TimeWait, true));
    // The kernel kept the closed connection from its close on, and said so at every event,
    // each of which asked it again (over the lab's one netlink socket).
    let closed = trace.one("server.con", "close");
    let after: Vec<_> = trace
        .events
        .iter()
        .filter(|event| event.seq >= closed.seq)
        .collect();
    assert!(after.len() > 5, "{} events after the close", after.len());
    for event in after {
        let view = kernel(event, "server.con");
        assert!(
            view.lingering
                && matches!(
                    view.state,
                    SocketState::FinWait1 | SocketState::FinWait2 | SocketState::TimeWait
                ),
            "event {}: {view:?}",
            event.seq
        );
    }
    assert!(binds[1].error.is_none());
    assert_eq!(
        kernel(trace.one("restarted.s", "listen"), "restarted.s").state,
        SocketState::Listen
    );
}

#[tokio::test]
async fn so_linger_zero_resets_the_connection() {
    let trace = play("reset").await;
    assert_eq!(
        trace.errors(),
        [
            ("server.con", "recv", "ECONNRESET"),
            ("server.con", "send", "EPIPE")
        ]
    );
    assert!(trace.one("client.s", "close").seq < trace.one("server.con", "recv").seq);
    // The reset connection is gone from the kernel's table: server.con is CLOSED while its
    // descriptor is open, not the listener that owns the same port (a lookup of a connection
    // the kernel no longer holds answers with the listener), and no event shows it lingering.
    // Nor does the page tell the student that the peer will see end of stream: it saw a reset.
    let closed = "The socket is closed and its file descriptor released.";
    assert_eq!(
        shared::describe::explain(trace.one("client.s", "close"), None),
        closed
    );
    // Closing the listener ends no connection either.
    assert_eq!(
        shared::describe::explain(trace.one("server.s", "close"), None),
        closed
    );
    let reset = trace.one("server.con", "recv");
    let view = kernel(reset, "server.con");
    assert_eq!((view.state, view.lingering), (SocketState::Closed, false));
    for event in &trace.events {
        for view in &event.kernel {
            assert!(
                view.endpoint == "server.s" || view.state != SocketState::Listen,
                "seq {}: {view:?}",
                event.seq
            );
        }
    }
}

#[tokio::test]
async fn nonblocking_calls_fail_at_once_and_timeouts_expire() {
    let trace = play("nonblocking").await;
    assert_eq!(
        trace.errors(),
        [
            ("server.s", "accept", "EAGAIN"),
            ("server.con", "recv", "EAGAIN"),
            ("client.s", "recv", "ETIMEDOUT")
        ]
    );
    let recvs = trace.returns("client.s", "recv");
    let timeout = recvs[0].error.clone().unwrap();
    assert_eq!(
        (timeout.origin, timeout.message.as_str()),
        (ErrorOrigin::Python, "timed out")
    );
    // It waited the whole half second first.
    let waited = recvs[0].t_us - trace.enter_of(recvs[0]).t_us;
    assert!(waited >= 500_000, "waited only {waited} µs");
    assert_eq!(
        value(recvs[1]),
        &ReturnValue::Received {
            data: Bytes(b"Hello, patient client".to_vec()),
            from: None,
            truncated_from: None
        }
    );
    let Call::Settimeout { millis } = &trace.one("client.s", "settimeout").call else {
        panic!()
    };
    assert_eq!(*millis, Some(500));
}

#[tokio::test]
async fn concurrent_runs_do_not_collide() {
    let ids = [
        "simple-server-client",
        "tcp-echo",
        "udp-echo",
        "unix-stream",
    ];
    let runs = ids.iter().cycle().take(12).map(|id| backend::record(id));
    for result in futures_util::future::join_all(runs).await {
        let (events, outcome) = result.unwrap();
        assert_eq!(outcome, RunOutcome::Completed);
        assert!(events.iter().all(|e| e.error.is_none()), "{events:#?}");
    }
}

#[tokio::test]
async fn an_unknown_scenario_is_a_clear_error() {
    let error = backend::record("no-such-scenario").await.unwrap_err();
    assert!(error.to_string().contains("no-such-scenario"));
}
