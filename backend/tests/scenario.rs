//! The Simple Server and Simple Client, played on real loopback sockets.

use shared::{Call, Event, Phase, ReturnValue, RunOutcome, SockAddr};

fn position(events: &[Event], endpoint: &str, call: &str, phase: Phase) -> usize {
    events
        .iter()
        .position(|e| e.endpoint == endpoint && e.call.name() == call && e.phase == phase)
        .unwrap_or_else(|| panic!("no {call} {phase:?} on {endpoint}"))
}

#[tokio::test]
async fn simple_server_client_makes_every_call_for_real() {
    let (events, outcome) = backend::record("simple-server-client").await.unwrap();
    assert_eq!(outcome, RunOutcome::Completed);

    // Sequence numbers run from 0 without gaps; time never goes back.
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.seq, index as u64);
    }
    assert!(events.windows(2).all(|pair| pair[0].t_us <= pair[1].t_us));

    // Every call entered and returned, without error, in the tutorial's order per endpoint.
    let calls = |endpoint: &str| -> Vec<(&'static str, Phase)> {
        events
            .iter()
            .filter(|e| e.endpoint == endpoint)
            .map(|e| (e.call.name(), e.phase))
            .collect()
    };
    let pairs = |names: &[&'static str]| -> Vec<(&'static str, Phase)> {
        names
            .iter()
            .flat_map(|name| [(*name, Phase::Enter), (*name, Phase::Return)])
            .collect()
    };
    assert_eq!(
        calls("server.s"),
        pairs(&["socket", "gethostname", "bind", "listen", "accept"])
    );
    assert_eq!(calls("server.con"), pairs(&["send", "close"]));
    assert_eq!(
        calls("client.s"),
        pairs(&["socket", "gethostname", "connect", "recv", "close"])
    );
    for event in events.iter().filter(|e| e.phase == Phase::Return) {
        assert!(event.error.is_none(), "{event:?} failed");
        assert!(event.result.is_some());
    }

    // The server waited in accept() before the client's connect() returned.
    assert!(
        position(&events, "server.s", "accept", Phase::Enter)
            < position(&events, "client.s", "connect", Phase::Return)
    );

    // The server bound the tutorial's port on a loopback address, and the kernel says so.
    let bind = &events[position(&events, "server.s", "bind", Phase::Return)];
    let Some(SockAddr::Inet { host, port }) = bind.result.as_ref().unwrap().local.clone() else {
        panic!("bind returned no IPv4 local address: {bind:?}");
    };
    assert!(host.is_loopback());
    assert_eq!(port, 12345);

    // accept() returned the client's own address: what the client's connect() reports as local.
    let accept = &events[position(&events, "server.s", "accept", Phase::Return)];
    let ReturnValue::Accepted {
        endpoint, address, ..
    } = &accept.result.as_ref().unwrap().value
    else {
        panic!("accept returned {accept:?}");
    };
    assert_eq!(endpoint, "server.con");
    let connect = &events[position(&events, "client.s", "connect", Phase::Return)];
    assert_eq!(
        connect.result.as_ref().unwrap().local.as_ref(),
        Some(address)
    );

    // The client's recv() returned exactly the bytes the server's send() sent.
    let send = &events[position(&events, "server.con", "send", Phase::Return)];
    let Call::Send { data: sent } = &send.call else {
        unreachable!()
    };
    assert_eq!(
        send.result.as_ref().unwrap().value,
        ReturnValue::Sent { count: sent.len() }
    );
    let recv = &events[position(&events, "client.s", "recv", Phase::Return)];
    assert_eq!(
        recv.result.as_ref().unwrap().value,
        ReturnValue::Received { data: sent.clone() }
    );
    assert_eq!(sent.0, b"Connection is successful");
}

#[tokio::test]
async fn concurrent_runs_do_not_collide() {
    let runs = (0..8).map(|_| backend::record("simple-server-client"));
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
