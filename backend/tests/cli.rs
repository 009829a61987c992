//! The `backend` command as a teacher uses it from the terminal.

use std::process::{Command, Output};

fn backend(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backend"))
        .args(args)
        .output()
        .expect("the backend binary runs")
}

#[test]
fn trace_json_prints_one_event_per_line_with_the_documented_fields() {
    let output = backend(&["trace", "simple-server-client", "--json"]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // Packets and the capture's state are lines of their own, with a `kind`; events have none.
    let events: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line.get("kind").is_none())
        .collect();
    assert_eq!(events.len(), 24);
    assert!(lines.iter().any(|line| line["kind"] == "packet"));
    assert_eq!(lines.last().unwrap()["kind"], "capture");
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["seq"], index);
        for field in ["endpoint", "call", "phase"] {
            assert!(event[field].is_string(), "{field} missing in {event}");
        }
        if event["phase"] == "return" {
            assert!(event.get("result").is_some() != event.get("error").is_some());
        }
    }
    let received = events
        .iter()
        .find(|e| e["call"] == "recv" && e["phase"] == "return")
        .unwrap();
    assert_eq!(
        received["result"]["value"]["data"]["text"],
        "Connection is successful"
    );
}

#[test]
fn trace_table_and_scenarios_are_readable() {
    let table = backend(&["trace", "simple-server-client"]);
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with(" SEQ"));
    assert!(table.contains("recv(1024) = b'Connection is successful'"));
    // Where the run has a network of its own, its packets are rows too, each saying where
    // it went and why, as the page does.
    if table.contains(" packet ") {
        let syn_ack = table
            .lines()
            .find(|line| line.contains("[SYN, ACK]"))
            .expect("the handshake's SYN-ACK");
        assert!(
            syn_ack.contains("server.s → client.s: the kernel answers the SYN by itself"),
            "{syn_ack}"
        );
    }
    let list = String::from_utf8(backend(&["scenarios"]).stdout).unwrap();
    assert!(list.contains("simple-server-client"));
}

#[test]
fn an_unknown_scenario_fails_with_a_clear_message() {
    let output = backend(&["trace", "no-such-scenario"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("no-such-scenario") && stderr.contains("backend scenarios"));
}

#[test]
fn a_port_already_taken_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = backend(&["--addr", &addr]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&addr) && stderr.contains("--addr"),
        "{stderr}"
    );
}
