//! Outside programs as peers: the tutorial's Python client and server, and `nc`, against
//! `backend trace --external`.

mod common;

use common::{free_port, peer, run_until_it_succeeds, tutorial_client};

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn backend() -> Command {
    Command::new(env!("CARGO_BIN_EXE_backend"))
}

/// Starts `backend trace <scenario> --external <role>` on `port`.
fn trace_with_outside(scenario: &str, role: &str, port: u16, timeout: &str) -> Child {
    backend()
        .args(["trace", scenario, "--external", role, "--port"])
        .arg(port.to_string())
        .args(["--timeout", timeout])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_tutorials_client_talks_to_socket_labs_server() {
    let port = free_port();
    let trace = trace_with_outside("simple-server-client", "client", port, "20");
    let client = tutorial_client(port);
    assert!(client.status.success(), "{}", text(&client.stderr));
    assert_eq!(text(&client.stdout).trim(), "b'Connection is successful'");
    let trace = trace.wait_with_output().unwrap();
    let table = text(&trace.stdout);
    assert!(trace.status.success(), "{}{table}", text(&trace.stderr));
    assert!(text(&trace.stderr).contains(&format!("('127.0.0.1', {port})")));
    // The server accepted the outside client and sent it the tutorial's message.
    assert!(table.contains("accept() = (<socket fd="), "{table}");
    // The kernel shows which program is at the other end, as `ss -p` does.
    assert!(table.contains("(the peer is python3, pid "), "{table}");
    assert!(
        table.contains("send(b'Connection is successful') = 24"),
        "{table}"
    );
    assert!(
        !table.contains("client.s"),
        "Socket Lab played the client too: {table}"
    );
}

#[test]
fn socket_labs_client_talks_to_the_tutorials_server() {
    let port = free_port();
    let server = Command::new("python3")
        .arg(peer("simple_server.py"))
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let trace = trace_with_outside("simple-server-client", "server", port, "20")
        .wait_with_output()
        .unwrap();
    let table = text(&trace.stdout);
    assert!(trace.status.success(), "{}{table}", text(&trace.stderr));
    assert!(
        table.contains("recv(1024) = b'Connection is successful'"),
        "{table}"
    );
    assert!(
        !table.contains("server.s"),
        "Socket Lab played the server too: {table}"
    );
    // The kernel shows which program the client connected to.
    assert!(table.contains("(the peer is python3, pid "), "{table}");
    let server_out = server.wait_with_output().unwrap();
    assert!(text(&server_out.stdout).contains("Connecting with ('127.0.0.1'"));
}

#[test]
fn nc_as_a_client_gets_the_servers_message() {
    let port = free_port();
    let trace = trace_with_outside("simple-server-client", "client", port, "20");
    let nc = run_until_it_succeeds(|| {
        let mut command = Command::new("nc");
        command
            .args(["-N", "127.0.0.1", &port.to_string()])
            .stdin(Stdio::null());
        command
    });
    assert_eq!(text(&nc.stdout), "Connection is successful");
    assert!(trace.wait_with_output().unwrap().status.success());
}

#[test]
fn a_client_that_resets_is_shown_and_the_run_ends() {
    let port = free_port();
    let trace = trace_with_outside("tcp-echo", "client", port, "20");
    let client = run_until_it_succeeds(|| {
        let mut command = Command::new("python3");
        command
            .arg(peer("simple_client.py"))
            .args(["127.0.0.1", &port.to_string(), "--reset"]);
        command
    });
    assert!(client.status.success(), "{}", text(&client.stderr));
    let trace = trace.wait_with_output().unwrap();
    let table = text(&trace.stdout);
    // The echo server's next call on the connection sees the reset (getpeername finds it
    // gone, or recv gets ECONNRESET, depending on when the RST arrives), and its program ends
    // there, as Python's would; the run itself completes.
    assert!(
        table.contains("! OSError: [Errno 107]") || table.contains("! ConnectionResetError"),
        "{table}"
    );
    assert!(trace.status.success(), "{}", text(&trace.stderr));
}

#[test]
fn a_peer_that_never_comes_times_out_with_a_clear_message() {
    let port = free_port();
    let started = Instant::now();
    let trace = trace_with_outside("simple-server-client", "client", port, "1")
        .wait_with_output()
        .unwrap();
    assert_eq!(trace.status.code(), Some(1));
    let stderr = text(&trace.stderr);
    assert!(
        stderr.contains(&format!("no outside client connected to 127.0.0.1:{port}")),
        "{stderr}"
    );
    // It says where the run stopped: the server program waits in accept(), on its line 10,
    // and what the kernel then had for it: no connection to accept.
    assert!(
        stderr.contains(
            "server waits in accept() (line 10), with 0 connections in server.s's accept queue"
        ),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    // A scenario without such a role says which ones have one.
    let refused = backend()
        .args(["trace", "reset", "--external", "client"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("simple-server-client, tcp-echo"));
}

#[test]
fn a_client_that_sends_garbage_and_too_much_does_not_stop_the_run() {
    let port = free_port();
    let trace = trace_with_outside("tcp-echo", "client", port, "20");
    let client = run_until_it_succeeds(|| {
        let mut command = Command::new("python3");
        command
            .arg(peer("noisy_client.py"))
            .args(["127.0.0.1", &port.to_string()]);
        command
    });
    assert!(client.status.success(), "{}", text(&client.stderr));
    let trace = trace.wait_with_output().unwrap();
    let table = text(&trace.stdout);
    assert!(trace.status.success(), "{}{table}", text(&trace.stderr));
    // The echo server took the bytes as they came and sent them back, up to the end of stream.
    assert!(table.contains("recv(1024) = b'\\x00\\x01\\x02"), "{table}");
    assert!(table.contains("recv(1024) = b''"), "{table}");
}
