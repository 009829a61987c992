//! `watch --private-net`: the tutorial's server and client, each under its own `watch`, in
//! the user's private network: they reach each other on 127.0.0.1 at a port the machine's
//! loopback has taken for something else, their handshake is captured (tshark reads the
//! pcapng), and nothing is left when they have ended. As root and as an ordinary user.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::peer;
use serde_json::Value;

/// A directory of this test's, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "socket-lab-private-net-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Who runs the `watch`es.
#[derive(Clone, Copy, Debug)]
enum User {
    /// This test's own user.
    Me,
    /// `nobody`, through setpriv.
    Nobody,
}

/// `watch --no-page --private-net --json -o OUTPUT [--pcap PCAP] -- python3 PROGRAM ARGS`,
/// its hand-in socket (and so its private network) in `scratch`.
fn watch(
    scratch: &Scratch,
    user: User,
    output: &Path,
    pcap: Option<&Path>,
    program: &[&str],
) -> Command {
    let mut command = match user {
        User::Me => Command::new(env!("CARGO_BIN_EXE_backend")),
        // A copy for each `watch`: one being run cannot be copied over.
        User::Nobody => common::as_nobody(
            env!("CARGO_BIN_EXE_backend"),
            &format!("backend-{}", output.file_stem().unwrap().to_string_lossy()),
            &scratch.0,
        ),
    };
    command
        .env("SOCKET_LAB_HUB", scratch.path("hub/watch.sock"))
        .env("HOME", &scratch.0)
        .args(["watch", "--no-page", "--private-net", "--json", "-o"])
        .arg(output);
    if let Some(pcap) = pcap {
        command.arg("--pcap").arg(pcap);
    }
    command
        .arg("--")
        .arg("/usr/bin/python3")
        .args(program)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The JSON lines `watch` wrote.
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn kind<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|line| line["kind"] == kind).collect()
}

/// The tutorial's server and client under two `watch --private-net`s, by `user`.
fn server_and_client(user: User) {
    let scratch = Scratch::new(&format!("{user:?}").to_lowercase());
    // The programs are copied where `nobody` may read them.
    let server_py = scratch.path("simple_server.py");
    let client_py = scratch.path("simple_client.py");
    std::fs::copy(peer("simple_server.py"), &server_py).unwrap();
    std::fs::copy(peer("simple_client.py"), &client_py).unwrap();
    // The machine's loopback has the port: only in a network of its own can the server
    // bind it, and the client reaches that server, not this listener.
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    taken.set_nonblocking(true).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (server_json, client_json, pcap) = (
        scratch.path("server.json"),
        scratch.path("client.json"),
        scratch.path("server.pcapng"),
    );
    let mut server = common::Running::new(
        watch(
            &scratch,
            user,
            &server_json,
            Some(&pcap),
            &[server_py.to_str().unwrap(), &port],
        )
        .spawn()
        .unwrap(),
    );
    // The server says `listening` once it listens.
    let mut stdout = std::io::BufReader::new(server.child().stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert_eq!(first.trim(), "listening", "the server did not start");
    let client = watch(
        &scratch,
        user,
        &client_json,
        None,
        &[client_py.to_str().unwrap(), "127.0.0.1", &port],
    )
    .output()
    .unwrap();
    assert!(client.status.success(), "{}", said(&client));
    assert!(
        String::from_utf8_lossy(&client.stdout).contains("Connection is successful"),
        "{}",
        said(&client)
    );
    let server = server.take().wait_with_output().unwrap();
    assert!(server.status.success(), "{}", said(&server));
    assert!(
        matches!(taken.accept(), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock),
        "the client reached the machine's loopback"
    );
    assert!(
        said(&server).contains("packets captured in the private network"),
        "{}",
        said(&server)
    );

    // Each watch's JSON has the network's packets and its capture's state, last.
    for path in [&server_json, &client_json] {
        let lines = lines(path);
        let packets = kind(&lines, "packet");
        let flags: Vec<String> = packets
            .iter()
            .take(3)
            .map(|packet| {
                packet["tcp"]["flags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|flag| flag.as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        assert_eq!(flags, ["SYN", "SYN,ACK", "ACK"], "{}", path.display());
        for packet in &packets {
            for end in ["src", "dst"] {
                assert_eq!(packet[end]["host"], "127.0.0.1", "{packet}");
            }
        }
        let capture = lines.last().unwrap();
        assert_eq!(capture["kind"], "capture", "{capture}");
        assert_eq!(capture["on"], true);
        assert_eq!(capture["dropped_by_kernel"], 0);
        assert_eq!(capture["kept"].as_u64(), Some(packets.len() as u64));
    }
    // The server's watch saw the whole conversation: its packets carry the port.
    let server_lines = lines(&server_json);
    let server_packets = kind(&server_lines, "packet");
    assert!(
        server_packets
            .iter()
            .all(|packet| [&packet["src"]["port"], &packet["dst"]["port"]]
                .contains(&&Value::from(port.parse::<u16>().unwrap()))),
        "a packet of another conversation"
    );

    // tshark, the independent witness, reads the pcapng: the handshake, the server's
    // bytes, a FIN each way.
    let tshark = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "tcp.flags.str",
            "-e",
            "tcp.payload",
            "-e",
            "frame.time_epoch",
        ])
        .output()
        .expect("tshark is not installed: run scripts/setup.sh --test");
    assert!(tshark.status.success(), "{tshark:?}");
    let rows: Vec<Vec<String>> = String::from_utf8_lossy(&tshark.stdout)
        .lines()
        .map(|row| row.split('|').map(str::to_owned).collect())
        .collect();
    let flags: Vec<&str> = rows.iter().map(|row| row[0].trim_matches('·')).collect();
    assert_eq!(rows.len(), server_packets.len(), "{rows:?}");
    assert!(
        rows[0][0].ends_with("S·") && !rows[0][0].contains('A'),
        "{rows:?}"
    );
    assert!(
        rows[1][0].contains('A') && rows[1][0].ends_with("S·"),
        "{rows:?}"
    );
    assert_eq!(
        rows.iter().filter(|row| row[0].ends_with('F')).count(),
        2,
        "{flags:?}"
    );
    let payload: String = rows.iter().map(|row| row[1].clone()).collect();
    assert_eq!(payload, hex(b"Connection is successful"), "{rows:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let first_time: f64 = rows[0][2].parse().unwrap();
    assert!((now - first_time).abs() < 60.0, "{first_time} is not now");

    // Nothing is left: the holder ends with its last member and takes its socket away.
    let holder_socket = scratch.path("hub/private-net.sock");
    let deadline = Instant::now() + Duration::from_secs(5);
    while holder_socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the private network's holder is still there"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn said(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn two_programs_under_watch_private_net_talk_on_their_own_loopback_and_their_handshake_is_captured()
{
    server_and_client(User::Me);
}

#[test]
fn the_same_as_an_ordinary_user() {
    server_and_client(User::Nobody);
}

/// Where Socket Lab may not make a network of its own (`SOCKET_LAB_NETNS=off` stands for a
/// system that forbids user namespaces), `--private-net` says why and runs nothing.
#[test]
fn private_net_without_networks_of_its_own_says_why_and_runs_nothing() {
    let scratch = Scratch::new("no-netns");
    let marker = scratch.path("ran");
    let output = Command::new(env!("CARGO_BIN_EXE_backend"))
        .env("SOCKET_LAB_HUB", scratch.path("hub/watch.sock"))
        .env("SOCKET_LAB_NETNS", "off")
        .args(["watch", "--no-page", "--private-net", "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", said(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("SOCKET_LAB_NETNS=off"),
        "{}",
        said(&output)
    );
    assert!(!marker.exists(), "the program ran");
}

#[test]
fn pcap_without_private_net_is_refused_before_anything_runs() {
    let scratch = Scratch::new("refused");
    let marker = scratch.path("ran");
    let output = Command::new(env!("CARGO_BIN_EXE_backend"))
        .env("SOCKET_LAB_HUB", scratch.path("hub/watch.sock"))
        .args(["watch", "--no-page", "--pcap"])
        .arg(scratch.path("x.pcapng"))
        .args(["--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--private-net"),
        "{}",
        said(&output)
    );
    assert!(!marker.exists(), "the program ran");
}
