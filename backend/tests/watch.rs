//! `backend watch`: real programs under the real tracer, each checked against what the kernel
//! did, with strace as an independent witness where it can be one.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, peer, tutorial_client};
use serde_json::Value;

/// A scratch directory of this test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("socket-lab-watch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A C program of the test's, built here with `cc` as a student builds theirs.
    fn compile_c(&self, name: &str, source: &str) -> PathBuf {
        let source_path = self.path(&format!("{name}.c"));
        std::fs::write(&source_path, source).unwrap();
        let binary = self.path(name);
        let built = Command::new("cc")
            .arg("-o")
            .arg(&binary)
            .arg(&source_path)
            .output()
            .expect("cc is not installed: run scripts/setup.sh --test");
        assert!(built.status.success(), "{built:?}");
        binary
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `backend watch --json -o FILE -- program...`, as a command to start.
fn watch_command(output: &Path, program: &[&str]) -> Command {
    watch_with(Command::new(env!("CARGO_BIN_EXE_backend")), output, program)
}

/// `launcher` (the binary, or a command that runs it) given `watch --json -o FILE --
/// program...`.
fn watch_with(mut launcher: Command, output: &Path, program: &[&str]) -> Command {
    launcher
        .args(["watch", "--no-page", "--json", "-o"])
        .arg(output)
        .arg("--")
        .args(program);
    launcher
}

/// A Python program that opens a socket and closes it.
const ONE_SOCKET: &str = "import socket; socket.socket().close()";

/// The events `watch --json` wrote.
fn events(output: &Path) -> Vec<Value> {
    std::fs::read_to_string(output)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect()
}

/// The returns of watched calls, as (syscall, event).
fn returns(events: &[Value]) -> Vec<(&str, &Value)> {
    events
        .iter()
        .filter(|event| event["event"] == "syscall" && event["phase"] == "return")
        .map(|event| (event["syscall"].as_str().unwrap(), event))
        .collect()
}

/// How many times each call of strace's network class returned, and with which errnos.
fn network_counts(events: &[Value]) -> (BTreeMap<String, usize>, Vec<String>) {
    let network = [
        "socket",
        "socketpair",
        "bind",
        "listen",
        "accept",
        "accept4",
        "connect",
        "getsockname",
        "getpeername",
        "sendto",
        "recvfrom",
        "sendmsg",
        "recvmsg",
        "sendmmsg",
        "recvmmsg",
        "shutdown",
        "setsockopt",
        "getsockopt",
    ];
    let mut counts = BTreeMap::new();
    let mut errnos = Vec::new();
    for (name, event) in returns(events) {
        // A call a signal interrupted (a child's SIGCHLD wakes a waiting accept under any
        // tracer) returns ERESTARTSYS to the tracer and is made again: when that happens
        // depends on timing, so neither count includes it.
        let restarted = event["error"]["errno"]
            .as_str()
            .is_some_and(|errno| errno.starts_with("ERESTART"));
        if network.contains(&name) && !restarted {
            *counts.entry(name.to_owned()).or_insert(0) += 1;
            if let Some(errno) = event["error"]["errno"].as_str() {
                errnos.push(format!("{name} {errno}"));
            }
        }
    }
    (counts, errnos)
}

/// The same, from strace's output (`-f -qq -e trace=%network`).
fn strace_counts(log: &str) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut counts = BTreeMap::new();
    let mut errnos = Vec::new();
    for line in log.lines() {
        // "1234  connect(3, {...}, 16) = -1 ECONNREFUSED (Connection refused)", or a call
        // split in two: "<unfinished ...>" and "<... connect resumed>", counted once.
        let Some(rest) = line
            .split_once(char::is_whitespace)
            .map(|(_, rest)| rest.trim_start())
        else {
            continue;
        };
        if line.contains("= ? ERESTART") {
            continue;
        }
        let name = if let Some(resumed) = rest.strip_prefix("<... ") {
            resumed.split_whitespace().next().unwrap_or_default()
        } else if rest.contains("<unfinished ...>") {
            continue;
        } else {
            rest.split('(').next().unwrap_or_default()
        };
        if name.is_empty() || name.starts_with('+') || name.starts_with('-') {
            continue;
        }
        *counts.entry(name.to_owned()).or_insert(0) += 1;
        if let Some((_, result)) = line.rsplit_once(" = -1 ") {
            errnos.push(format!(
                "{name} {}",
                result.split_whitespace().next().unwrap_or_default()
            ));
        }
    }
    (counts, errnos)
}

/// Runs `program` under strace's network class while `peer` plays the other side.
fn under_strace(scratch: &Scratch, program: &[&str], peer: impl FnOnce()) -> String {
    let log = scratch.path("strace.log");
    let mut traced = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=%network", "-o"])
        .arg(&log)
        .args(program)
        .stdout(Stdio::null())
        .spawn()
        .expect("strace is not installed: run scripts/setup.sh --test");
    peer();
    assert!(traced.wait().unwrap().success());
    std::fs::read_to_string(log).unwrap()
}

/// Runs `program` under watch while `peer` plays the other side; returns its events.
fn under_watch(scratch: &Scratch, program: &[&str], peer: impl FnOnce()) -> (Output, Vec<Value>) {
    let log = scratch.path("watch.jsonl");
    let watched = watch_command(&log, program)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    peer();
    let output = watched.wait_with_output().unwrap();
    (output, events(&log))
}

fn python() -> &'static str {
    // Debian's interpreter itself; the shim on some PATHs is a shell script (watched too,
    // but strace and watch would then both show the shell's calls).
    "/usr/bin/python3"
}

#[test]
fn the_tutorials_server_makes_the_calls_strace_sees() {
    let scratch = Scratch::new("tutorial");
    let server = peer("simple_server.py");
    let server = server.to_str().unwrap();
    let port = free_port();
    let port_text = port.to_string();
    let program = [python(), server, &port_text];
    let strace_log = under_strace(&scratch, &program, || {
        assert!(tutorial_client(port).status.success());
    });
    let port = free_port();
    let port_text = port.to_string();
    let program = [python(), server, &port_text];
    let (output, events) = under_watch(&scratch, &program, || {
        assert!(tutorial_client(port).status.success());
    });
    assert!(output.status.success(), "{output:?}");
    // The program's own output stays its own.
    assert!(String::from_utf8_lossy(&output.stdout).contains("Connecting with"));
    let (watched, watched_errnos) = network_counts(&events);
    let (traced, traced_errnos) = strace_counts(&strace_log);
    assert_eq!(
        watched, traced,
        "watch's calls against strace's:\n{strace_log}"
    );
    assert_eq!(watched_errnos, traced_errnos);
    // The arguments and results are the kernel's.
    let calls = returns(&events);
    let bind = events
        .iter()
        .find(|e| e["syscall"] == "bind" && e["phase"] == "enter")
        .unwrap();
    assert_eq!(bind["args"]["address"]["port"], port);
    let (_, accepted) = calls.iter().find(|(name, _)| *name == "accept4").unwrap();
    let connection = accepted["result"].as_i64().unwrap();
    assert_eq!(accepted["out"]["address"]["host"], "127.0.0.1");
    let sent = events
        .iter()
        .find(|e| e["syscall"] == "sendto" && e["phase"] == "enter")
        .unwrap();
    assert_eq!(sent["fd"], connection);
    assert_eq!(sent["args"]["data"]["text"], "Connection is successful");
    // Each call names the Python call and the line of the program that made it.
    let source = std::fs::read_to_string(peer("simple_server.py")).unwrap();
    let line_of = |text: &str| source.lines().position(|line| line.contains(text)).unwrap() + 1;
    assert_eq!(sent["python"]["call"], "send");
    assert_eq!(sent["python"]["line"], line_of("con.send("));
    assert!(
        sent["python"]["file"]
            .as_str()
            .unwrap()
            .ends_with("simple_server.py")
    );
    assert_eq!(accepted["python"]["line"], line_of("s.accept()"));
    assert_eq!(bind["python"]["call"], "bind");
    // After each return, the kernel's view of the call's socket, read from the program's own.
    let (_, listened) = calls.iter().find(|(name, _)| *name == "listen").unwrap();
    assert_eq!(listened["kernel"][0]["state"], "LISTEN");
    assert_eq!(listened["kernel"][0]["backlog"], 5);
    let connection_view = accepted["kernel"]
        .as_array()
        .unwrap()
        .iter()
        .find(|view| view["endpoint"] == format!("fd{connection}"))
        .expect("accept's return shows its new connection");
    assert_eq!(connection_view["state"], "ESTABLISHED");
    // Both sockets' close() is shown; the files Python closed at start are not.
    let closes: Vec<i64> = calls
        .iter()
        .filter(|(name, _)| *name == "close")
        .map(|(_, event)| event["fd"].as_i64().unwrap())
        .collect();
    assert_eq!(closes.len(), 2, "{closes:?}");
    assert!(closes.contains(&connection));
    // The program's process, from its exec (the launcher's own wake-up is not shown), to its end.
    assert_eq!(events[0]["event"], "exec", "{:?}", events[0]);
    let last = events.last().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["code"].as_i64()),
        (Some("exited"), Some(0))
    );
    assert!(events.iter().all(|e| e["pid"] == events[0]["pid"]));
}

#[test]
fn a_refused_datagram_is_the_kernels_econnrefused() {
    let scratch = Scratch::new("udp");
    let port = free_port().to_string();
    let script = "import socket, sys\n\
                  s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                  s.connect(('127.0.0.1', int(sys.argv[1])))\n\
                  s.send(b'anyone?')\n\
                  try:\n    s.recv(100)\nexcept ConnectionRefusedError:\n    print('refused')\n";
    let program = [python(), "-c", script, &port];
    let strace_log = under_strace(&scratch, &program, || {});
    let (output, events) = under_watch(&scratch, &program, || {});
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "refused\n");
    let (watched, watched_errnos) = network_counts(&events);
    let (traced, traced_errnos) = strace_counts(&strace_log);
    assert_eq!(watched, traced, "{strace_log}");
    assert_eq!(watched_errnos, vec!["recvfrom ECONNREFUSED".to_owned()]);
    assert_eq!(watched_errnos, traced_errnos);
}

#[test]
fn exit_statuses_are_the_programs_own_as_a_shell_gives_them() {
    let scratch = Scratch::new("status");
    let log = scratch.path("events.jsonl");
    let run = |program: &[&str]| watch_command(&log, program).output().unwrap();
    let three = run(&["sh", "-c", "exit 3"]);
    assert_eq!(three.status.code(), Some(3));
    let crashed = run(&[
        python(),
        "-c",
        "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)",
    ]);
    assert_eq!(crashed.status.code(), Some(128 + 11));
    assert!(
        String::from_utf8_lossy(&crashed.stderr).contains("killed by SIGSEGV"),
        "{crashed:?}"
    );
    let last = events(&log).pop().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["signal"].as_str()),
        (Some("killed"), Some("SIGSEGV"))
    );
    let missing = run(&["no-such-program-socket-lab"]);
    assert_eq!(missing.status.code(), Some(127));
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(
        said.contains("cannot run 'no-such-program-socket-lab'"),
        "{said}"
    );
    let at_once = run(&["true"]);
    assert_eq!(at_once.status.code(), Some(0));
    let nothing = Command::new(env!("CARGO_BIN_EXE_backend"))
        .arg("watch")
        .output()
        .unwrap();
    assert_eq!(nothing.status.code(), Some(2));
}

#[test]
fn threads_and_forked_children_are_followed() {
    let scratch = Scratch::new("children");
    let script = "import os, socket, threading\n\
                  def work():\n    a, b = socket.socketpair()\n    a.send(b'from a thread')\n    b.recv(100)\n\
                  t = threading.Thread(target=work); t.start(); t.join()\n\
                  pid = os.fork()\n\
                  if pid == 0:\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n    s.close()\n    os._exit(0)\n\
                  os.waitpid(pid, 0)\n";
    let (output, events) = under_watch(&scratch, &[python(), "-c", script], || {});
    assert!(output.status.success(), "{output:?}");
    let root = events[0]["pid"].as_i64().unwrap();
    let send = events
        .iter()
        .find(|e| e["syscall"] == "sendto" && e["phase"] == "enter")
        .unwrap();
    assert_eq!(send["pid"], root);
    assert_ne!(send["tid"], root, "the thread's call is its own tid's");
    assert_eq!(send["args"]["data"]["text"], "from a thread");
    let forked = events
        .iter()
        .find(|e| e["event"] == "spawned" && e["thread"] == false)
        .expect("the fork is reported");
    let child = forked["child"].as_i64().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["syscall"] == "socket" && e["pid"] == child)
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "exited" && e["pid"] == child)
    );
}

#[test]
fn sigterm_to_watch_ends_the_program_and_its_children() {
    let scratch = Scratch::new("sigterm");
    let log = scratch.path("events.jsonl");
    let script = "import os, time\nos.fork()\ntime.sleep(600)\n";
    let mut watched = watch_command(&log, &[python(), "-c", script])
        .spawn()
        .unwrap();
    // Both processes are running once the fork is reported.
    let deadline = Instant::now() + Duration::from_secs(20);
    let pids = loop {
        let events = events(&log);
        let pids: Vec<i32> = events
            .iter()
            .filter(|e| e["event"] == "spawned")
            .map(|e| e["child"].as_i64().unwrap() as i32)
            .chain(events.first().map(|e| e["pid"].as_i64().unwrap() as i32))
            .collect();
        if pids.len() == 2 {
            break pids;
        }
        assert!(Instant::now() < deadline, "the program never forked");
        std::thread::sleep(Duration::from_millis(50));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watched.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = watched.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "watch did not end within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(128 + 15));
    for pid in pids {
        // Gone, or a zombie its new parent has not reaped yet: nothing runs or stays stopped.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = state.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
        assert!(
            matches!(state, None | Some("Z")),
            "process {pid} outlived watch: {state:?}"
        );
    }
}

#[test]
fn an_ordinary_user_can_watch() {
    if !nix::unistd::Uid::effective().is_root() {
        // Already an ordinary user: every other test here is this one.
        return;
    }
    let scratch = Scratch::new("nobody");
    let log = scratch.path("events.jsonl");
    // watch runs itself again as the program's launcher: the copy is what it runs.
    let setpriv = common::as_nobody(env!("CARGO_BIN_EXE_backend"), "socket-lab", &scratch.0);
    let output = watch_with(setpriv, &log, &[python(), "-c", ONE_SOCKET])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let events = events(&log);
    assert!(
        events
            .iter()
            .any(|e| e["syscall"] == "socket" && e["phase"] == "return")
    );
    assert!(
        events
            .iter()
            .any(|e| e["syscall"] == "close" && e["phase"] == "return")
    );
}

/// The forking server of a C course: one child per connection, which writes its greeting
/// with write(2) (a socket call on a socket, shown like send) and exits.
const FORKING_SERVER_C: &str = r#"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons(atoi(argv[1]));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&address, sizeof address) < 0) return 1;
    listen(s, 5);
    for (int served = 0; served < 2; served++) {
        int connection = accept(s, 0, 0);
        if (fork() == 0) {
            close(s);
            write(connection, "hello from a child", 18);
            close(connection);
            _exit(0);
        }
        close(connection);
    }
    while (wait(0) > 0) {}
    close(s);
    return 0;
}
"#;

#[test]
fn a_forking_server_in_c_shows_each_childs_calls() {
    let scratch = Scratch::new("forking");
    let binary = scratch.compile_c("server", FORKING_SERVER_C);
    let binary = binary.to_str().unwrap();
    let two_clients = |port: u16| {
        move || {
            for _ in 0..2 {
                let client = tutorial_client(port);
                assert!(client.status.success(), "{client:?}");
                assert!(String::from_utf8_lossy(&client.stdout).contains("hello from a child"));
            }
        }
    };
    let port = free_port();
    let strace_log = under_strace(&scratch, &[binary, &port.to_string()], two_clients(port));
    let port = free_port();
    let (output, events) = under_watch(&scratch, &[binary, &port.to_string()], two_clients(port));
    assert!(output.status.success(), "{output:?}");
    let (watched, watched_errnos) = network_counts(&events);
    let (traced, traced_errnos) = strace_counts(&strace_log);
    assert_eq!(watched, traced, "{strace_log}");
    assert_eq!(watched_errnos, traced_errnos);
    let root = events[0]["pid"].clone();
    let children: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "spawned" && e["thread"] == false)
        .map(|e| &e["child"])
        .collect();
    assert_eq!(children.len(), 2);
    for child in children {
        let write = events
            .iter()
            .find(|e| e["syscall"] == "write" && e["phase"] == "enter" && &e["pid"] == child)
            .unwrap_or_else(|| panic!("child {child} wrote nothing shown"));
        assert_eq!(write["args"]["data"]["text"], "hello from a child");
        // The child's close of the listener it inherited is its own call, on its own copy.
        assert!(
            events
                .iter()
                .any(|e| e["syscall"] == "close" && &e["pid"] == child)
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["syscall"] == "accept" && e["pid"] == root)
    );
}

#[test]
fn netcat_reads_and_writes_its_socket() {
    use std::io::Write as _;
    let scratch = Scratch::new("nc");
    let port = free_port();
    let port_text = port.to_string();
    let say_hello = || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut stream = loop {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break stream,
                Err(error) if Instant::now() > deadline => panic!("nc never listened: {error}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.write_all(b"hello nc\n").unwrap();
    };
    let log = scratch.path("nc.jsonl");
    let watched = watch_command(&log, &["nc", "-l", "127.0.0.1", &port_text])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    say_hello();
    let output = watched.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello nc\n");
    let events = events(&log);
    let read = events
        .iter()
        .find(|e| e["syscall"] == "read" && e["phase"] == "return" && e["result"] == 9)
        .expect("nc's read of the socket is shown");
    assert_eq!(read["out"]["data"]["text"], "hello nc\\n");
    // Its write of the same bytes to standard output is not: that is no socket.
    assert!(
        !events
            .iter()
            .any(|e| e["syscall"] == "write" && e["fd"] == 1)
    );
    assert!(
        events
            .iter()
            .any(|e| e["syscall"] == "poll" && e["phase"] == "enter")
    );
}

#[test]
fn socket_lab_is_the_same_command_under_the_name_students_type() {
    let scratch = Scratch::new("name");
    let log = scratch.path("events.jsonl");
    let socket_lab = Command::new(env!("CARGO_BIN_EXE_socket-lab"));
    let output = watch_with(socket_lab, &log, &[python(), "-c", ONE_SOCKET])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(events(&log).iter().any(|e| e["syscall"] == "socket"));
}

#[test]
fn every_system_call_of_one_python_call_names_it() {
    let scratch = Scratch::new("sendall");
    // sendall() on a socket with a timeout (non-blocking in the kernel) of more than the
    // socket buffer holds makes several sendto()s, waiting in poll() between them, while a
    // thread reads the other end; each one names the sendall() and its line.
    let script = "import socket, threading\n\
                  a, b = socket.socketpair()\n\
                  a.settimeout(10)\n\
                  def drain():\n    while b.recv(65536):\n        pass\n\
                  t = threading.Thread(target=drain); t.start()\n\
                  a.sendall(b'x' * 2_000_000)\n\
                  a.close(); t.join()\n";
    let (output, events) = under_watch(&scratch, &[python(), "-c", script], || {});
    assert!(output.status.success(), "{output:?}");
    let root = &events[0]["pid"];
    let sends: Vec<&Value> = events
        .iter()
        .filter(|e| e["syscall"] == "sendto" && e["phase"] == "return" && &e["tid"] == root)
        .collect();
    assert!(sends.len() > 1, "one sendto took it all: {}", sends.len());
    let total: i64 = sends.iter().map(|e| e["result"].as_i64().unwrap()).sum();
    assert_eq!(total, 2_000_000);
    for send in &sends {
        assert_eq!(send["python"]["call"], "sendall");
        assert_eq!(send["python"]["line"], 8);
    }
    // The reading thread's calls are its own recv()'s, not the sendall's.
    let read = events
        .iter()
        .find(|e| e["syscall"] == "recvfrom" && &e["tid"] != root)
        .unwrap();
    assert_eq!(read["python"]["call"], "recv");
    // A program's own sys.path is as it would be unwatched.
    let (output, _) = under_watch(
        &scratch,
        &[python(), "-c", "import sys; print(sys.path[1:])"],
        || {},
    );
    let plain = Command::new(python())
        .args(["-c", "import sys; print(sys.path[1:])"])
        .output()
        .unwrap();
    assert_eq!(output.stdout, plain.stdout);
}

#[test]
fn an_asyncio_server_shows_its_event_loop_waiting_on_sockets() {
    let scratch = Scratch::new("asyncio");
    let port = free_port();
    let script = "import asyncio, sys\n\
                  async def serve(reader, writer):\n    data = await reader.read(100)\n    writer.write(data.upper())\n    await writer.drain()\n    writer.close()\n    await writer.wait_closed()\n    done.set()\n\
                  async def main():\n    global done\n    done = asyncio.Event()\n    server = await asyncio.start_server(serve, '127.0.0.1', int(sys.argv[1]))\n    print('listening', flush=True)\n    await done.wait()\n    server.close()\n    await server.wait_closed()\n\
                  asyncio.run(main())\n";
    let port_text = port.to_string();
    let (output, events) = under_watch(&scratch, &[python(), "-c", script, &port_text], || {
        use std::io::{Read, Write};
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut stream = loop {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break stream,
                Err(error) if Instant::now() > deadline => panic!("never listened: {error}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.write_all(b"hello asyncio").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "HELLO ASYNCIO");
    });
    assert!(output.status.success(), "{output:?}");
    assert!(
        events
            .iter()
            .any(|e| e["syscall"] == "epoll_wait" && e["phase"] == "return")
    );
    let received = events
        .iter()
        .find(|e| e["syscall"] == "recvfrom" && e["result"] == 13)
        .expect("the server's read of the client's bytes");
    assert_eq!(received["out"]["data"]["text"], "hello asyncio");
    let sent = events
        .iter()
        .find(|e| e["syscall"] == "sendto" && e["phase"] == "enter")
        .unwrap();
    assert_eq!(sent["args"]["data"]["text"], "HELLO ASYNCIO");
    // A listener made non-blocking, as every asyncio socket is.
    assert!(
        events
            .iter()
            .any(|e| e["syscall"] == "accept4" && e["phase"] == "return")
    );
}

#[test]
fn a_gigabyte_is_summarised_and_watch_stays_small() {
    let scratch = Scratch::new("gigabyte");
    let log = scratch.path("events.jsonl");
    let script = "import socket, threading\n\
                  a, b = socket.socketpair()\n\
                  got = 0\n\
                  def drain():\n    global got\n    while True:\n        chunk = b.recv(1 << 20)\n        if not chunk:\n            break\n        got += len(chunk)\n\
                  t = threading.Thread(target=drain); t.start()\n\
                  block = b'x' * (1 << 20)\n\
                  for _ in range(1024):\n    a.sendall(block)\n\
                  a.close(); t.join()\n\
                  print(got)\n";
    let mut watched = watch_command(&log, &[python(), "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = watched.id();
    let mut most_kib = 0u64;
    while watched.try_wait().unwrap().is_none() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(kib) = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches(" kB").parse::<u64>().ok())
        {
            most_kib = most_kib.max(kib);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = watched.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        (1u64 << 30).to_string()
    );
    // Each event carries the first bytes and the count of all, so nothing grows with the data.
    let events = events(&log);
    let sent: i64 = events
        .iter()
        .filter(|e| e["syscall"] == "sendto" && e["phase"] == "return")
        .map(|e| e["result"].as_i64().unwrap())
        .sum();
    assert_eq!(sent, 1 << 30);
    assert!(
        events
            .iter()
            .all(|e| e["args"]["data"]["len"].as_u64().unwrap_or(0) <= 256)
    );
    assert!(most_kib < 64 * 1024, "watch held {most_kib} KiB");
}

#[test]
fn a_thousand_sockets_are_each_shown() {
    let scratch = Scratch::new("thousand");
    let script = "import socket\n\
                  sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(1000)]\n\
                  for s in sockets:\n    s.close()\n";
    let (output, events) = under_watch(&scratch, &[python(), "-c", script], || {});
    let opened = returns(&events)
        .iter()
        .filter(|(name, _)| *name == "socket")
        .count();
    let closed = returns(&events)
        .iter()
        .filter(|(name, _)| *name == "close")
        .count();
    // As many as the system let the program open (its descriptor limit may be lower).
    if output.status.success() {
        assert_eq!((opened, closed), (1000, 1000));
    } else {
        assert!(String::from_utf8_lossy(&output.stderr).contains("Too many open files"));
        assert!(events.iter().any(|e| e["error"]["errno"] == "EMFILE"));
    }
}

#[test]
fn ctrl_c_ends_the_program_and_watch_with_it() {
    use std::os::unix::process::CommandExt;
    let scratch = Scratch::new("ctrl-c");
    let log = scratch.path("events.jsonl");
    let script =
        "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen(1)\ns.accept()\n";
    // A terminal's Ctrl-C goes to its foreground process group: watch and the program.
    let mut watched = watch_command(&log, &[python(), "-c", script])
        .process_group(0)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !events(&log)
        .iter()
        .any(|e| e["syscall"] == "accept4" && e["phase"] == "enter")
    {
        assert!(
            Instant::now() < deadline,
            "the program never waited in accept"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let group = nix::unistd::Pid::from_raw(-(watched.id() as i32));
    nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while watched.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "watch did not end within 10 s of Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = watched.wait_with_output().unwrap();
    // Python ends itself by SIGINT after its KeyboardInterrupt, as a shell reports: 130.
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    let events = events(&log);
    let returned = events
        .iter()
        .find(|e| e["syscall"] == "accept4" && e["phase"] == "return")
        .expect("the interrupted accept returns");
    assert!(
        returned["error"]["errno"]
            .as_str()
            .unwrap()
            .starts_with("E"),
        "{returned}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "signal" && e["signal"] == "SIGINT")
    );
}

#[test]
fn a_program_that_traces_itself_fails_as_it_would_under_any_tracer() {
    let scratch = Scratch::new("traced");
    let log = scratch.path("events.jsonl");
    // strace cannot attach to its child, which watch already traces: it says so and fails,
    // and nothing is left running or stopped.
    let output = watch_command(&log, &["strace", "-o", "/dev/null", "true"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("strace"),
        "{output:?}"
    );
    for event in events(&log).iter().filter(|e| e["event"] == "spawned") {
        let child = event["child"].as_i64().unwrap();
        let state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z"),
            "{child} outlived watch: {state}"
        );
    }
}

/// Runs a command with one system call refused (`EPERM`) by a seccomp filter, as some
/// containers refuse ptrace or seccomp: `deny NUMBER PROGRAM ARGS...`.
const DENY_C: &str = r#"
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, atoi(argv[1]), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {sizeof filter / sizeof filter[0], filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program)) {
        return 99;
    }
    execvp(argv[2], argv + 2);
    return 98;
}
"#;

#[test]
fn where_ptrace_or_seccomp_is_refused_watch_says_which_and_fails() {
    let scratch = Scratch::new("refused");
    let deny = scratch.compile_c("deny", DENY_C);
    let log = scratch.path("events.jsonl");
    let refusing = |call: i64| {
        Command::new(&deny)
            .arg(call.to_string())
            .arg(env!("CARGO_BIN_EXE_backend"))
            .args(["watch", "--no-page", "--json", "-o"])
            .arg(&log)
            .args(["--", python(), "-c", "print('ran')"])
            .output()
            .unwrap()
    };
    let no_ptrace = refusing(libc::SYS_ptrace);
    assert_eq!(no_ptrace.status.code(), Some(2), "{no_ptrace:?}");
    let said = String::from_utf8_lossy(&no_ptrace.stderr);
    assert!(said.contains("ptrace is not allowed here"), "{said}");
    assert!(
        no_ptrace.stdout.is_empty(),
        "the program ran untraced: {no_ptrace:?}"
    );
    let no_seccomp = refusing(libc::SYS_seccomp);
    assert_eq!(no_seccomp.status.code(), Some(125), "{no_seccomp:?}");
    let said = String::from_utf8_lossy(&no_seccomp.stderr);
    assert!(
        said.contains("seccomp filters are not allowed here"),
        "{said}"
    );
    assert!(
        no_seccomp.stdout.is_empty(),
        "the program ran unfiltered: {no_seccomp:?}"
    );
}

#[test]
fn a_python3_that_is_a_shell_shim_is_followed_and_the_table_shows_the_program() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("shim");
    // As pyenv's shims do: a shell script that runs helpers, then executes the interpreter.
    let shim = scratch.path("python3");
    std::fs::write(
        &shim,
        "#!/bin/sh\nls / >/dev/null\nversion=$(cat /proc/version)\nexec /usr/bin/python3 \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = "import socket\ns = socket.socket()\ns.close()\n";
    let program = [shim.to_str().unwrap(), "-c", script];
    let (output, events) = under_watch(&scratch, &program, || {});
    assert!(output.status.success(), "{output:?}");
    // The JSON has every program the process ran, and the helpers the shell started.
    let execs: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "exec")
        .map(|e| e["program"].as_str().unwrap())
        .collect();
    assert!(
        execs.iter().any(|program| program.starts_with("/bin/sh")),
        "{execs:?}"
    );
    assert!(
        execs.iter().any(|program| program.starts_with("ls")),
        "{execs:?}"
    );
    assert!(
        execs.last().unwrap().starts_with("/usr/bin/python3"),
        "{execs:?}"
    );
    let socket = events
        .iter()
        .find(|e| e["syscall"] == "socket" && e["phase"] == "return")
        .expect("Python's socket() after the shim's exec");
    assert_eq!(socket["python"]["line"], 2);
    // The table shows the program, not the shim's helpers.
    let table = scratch.path("table.txt");
    let shown = Command::new(env!("CARGO_BIN_EXE_backend"))
        .args(["watch", "--no-page", "-o"])
        .arg(&table)
        .arg("--")
        .args(program)
        .output()
        .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    let table = std::fs::read_to_string(table).unwrap();
    let exec_lines: Vec<&str> = table
        .lines()
        .filter(|line| line.contains(" exec "))
        .collect();
    assert_eq!(exec_lines.len(), 1, "{table}");
    assert!(exec_lines[0].contains("/usr/bin/python3 -c"), "{table}");
    assert!(
        !table.contains("SIGCHLD") && !table.contains("ls /"),
        "{table}"
    );
    assert!(
        table.contains("socket(family=AF_INET") && table.contains("exited with status 0"),
        "{table}"
    );
}
