//! The packets of runs, captured in Socket Lab's own networks and read back by tshark (the
//! independent witness): what each scenario teaches is on the wire, the bytes of the calls
//! are the bytes of the segments, a run captures its own packets only.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Ws, next_server_message};
use futures_util::SinkExt;
use serde_json::Value;
use shared::{ClientMessage, Packet, ServerMessage, SockAddr};
use tokio_tungstenite::tungstenite::Message;

/// A scratch folder, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("socket-lab-packets-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `backend trace SCENARIO --json --pcap FILE` (by `command`, which may run it as
/// another user); returns the JSON lines.
fn trace(mut command: Command, scenario: &str, pcap: &Path) -> Vec<Value> {
    let output = command
        .args(["trace", scenario, "--json", "--pcap"])
        .arg(pcap)
        .output()
        .unwrap();
    assert!(output.status.success(), "{scenario}: {output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The packets of a pcapng file as tshark reads them: one map of field to value a packet.
fn tshark(pcap: &Path) -> Vec<std::collections::HashMap<String, String>> {
    const FIELDS: [&str; 9] = [
        "frame.time_epoch",
        "ip.proto",
        "tcp.flags.str",
        "tcp.seq",
        "tcp.ack",
        "tcp.payload",
        "udp.payload",
        "icmp.type",
        "tcp.srcport",
    ];
    let mut command = Command::new("tshark");
    command
        .arg("-r")
        .arg(pcap)
        .args(["-T", "fields", "-E", "separator=|"]);
    for field in FIELDS {
        command.args(["-e", field]);
    }
    let output = command
        .output()
        .expect("tshark runs (scripts/setup.sh --test installs it)");
    assert!(output.status.success(), "tshark: {output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            FIELDS
                .iter()
                .zip(line.split('|'))
                .map(|(field, value)| ((*field).to_owned(), value.to_owned()))
                .collect()
        })
        .collect()
}

/// tshark's flags as `SYN`, `SYN,ACK`, `FIN,ACK`: it writes them as a row of dots and letters.
fn flags(packet: &std::collections::HashMap<String, String>) -> String {
    let text = &packet["tcp.flags.str"];
    let mut names = Vec::new();
    for (letter, name) in [
        ('S', "SYN"),
        ('R', "RST"),
        ('F', "FIN"),
        ('P', "PSH"),
        ('A', "ACK"),
    ] {
        if text.contains(letter) {
            names.push(name);
        }
    }
    names.join(",")
}

fn backend() -> Command {
    Command::new(env!("CARGO_BIN_EXE_backend"))
}

/// The bytes the events' calls sent, in order.
fn sent_bytes(lines: &[Value]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for line in lines {
        if line.get("kind").is_none()
            && line["phase"] == "enter"
            && matches!(line["call"].as_str(), Some("send" | "sendall" | "sendto"))
        {
            let hex = line["args"]["data"]["hex"].as_str().unwrap();
            bytes.extend(shared::Bytes::from_hex(hex).unwrap().0);
        }
    }
    bytes
}

fn payloads(packets: &[std::collections::HashMap<String, String>], field: &str) -> Vec<u8> {
    packets
        .iter()
        .flat_map(|packet| {
            shared::Bytes::from_hex(&packet[field].replace(':', ""))
                .unwrap()
                .0
        })
        .collect()
}

#[test]
fn tshark_finds_what_each_scenario_teaches() {
    let scratch = Scratch::new("scenarios");
    // The three-way handshake, the data, and both FINs.
    let pcap = scratch.0.join("simple.pcapng");
    let lines = trace(backend(), "simple-server-client", &pcap);
    let packets = tshark(&pcap);
    let all: Vec<String> = packets.iter().map(flags).collect();
    assert_eq!(all[..3], ["SYN", "SYN,ACK", "ACK"], "{all:?}");
    assert_eq!(
        all.iter().filter(|flags| flags.contains("FIN")).count(),
        2,
        "{all:?}"
    );
    assert_eq!(payloads(&packets, "tcp.payload"), sent_bytes(&lines));
    assert_eq!(
        payloads(&packets, "tcp.payload"),
        b"Connection is successful"
    );
    // Relative numbers as Wireshark computes them, and the JSON's packets agree.
    let json_packets: Vec<&Value> = lines
        .iter()
        .filter(|line| line["kind"] == "packet")
        .collect();
    assert_eq!(json_packets.len(), packets.len());
    for (ours, theirs) in json_packets.iter().zip(&packets) {
        assert_eq!(ours["tcp"]["seq"].to_string(), theirs["tcp.seq"]);
        assert_eq!(ours["tcp"]["ack"].to_string(), theirs["tcp.ack"]);
    }
    let capture = lines.last().unwrap();
    assert_eq!(capture["kind"], "capture");
    assert_eq!(capture["on"], true);
    assert_eq!(capture["dropped_by_kernel"], 0);
    // The timestamps are the run's, on the wall clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let first: f64 = packets[0]["frame.time_epoch"].parse().unwrap();
    assert!((now - first).abs() < 60.0, "packet time {first}, now {now}");

    // SO_LINGER 0: the close sends RST, not FIN.
    let pcap = scratch.0.join("reset.pcapng");
    trace(backend(), "reset", &pcap);
    let all: Vec<String> = tshark(&pcap).iter().map(flags).collect();
    assert!(all.iter().any(|flags| flags.contains("RST")), "{all:?}");
    assert!(!all.iter().any(|flags| flags.contains("FIN")), "{all:?}");

    // Nothing listens: the SYN is answered with RST.
    let pcap = scratch.0.join("refused.pcapng");
    trace(backend(), "connection-refused", &pcap);
    let all: Vec<String> = tshark(&pcap).iter().map(flags).collect();
    assert_eq!(all, ["SYN", "RST,ACK"]);

    // Datagrams, each the bytes of its sendto.
    let pcap = scratch.0.join("udp.pcapng");
    let lines = trace(backend(), "udp-echo", &pcap);
    let packets = tshark(&pcap);
    assert!(packets.iter().all(|packet| packet["ip.proto"] == "17"));
    assert_eq!(payloads(&packets, "udp.payload"), sent_bytes(&lines));

    // A datagram to a closed port: the kernel answers with ICMP port unreachable, which
    // quotes the datagram, and the connected socket's recv() fails.
    let pcap = scratch.0.join("unreachable.pcapng");
    let lines = trace(backend(), "port-unreachable", &pcap);
    let packets = tshark(&pcap);
    assert_eq!(packets.len(), 2, "{packets:?}");
    assert_eq!(packets[1]["icmp.type"], "3");
    assert_eq!(payloads(&packets[..1], "udp.payload"), b"Anyone there?");
    let icmp = lines
        .iter()
        .find(|line| line["kind"] == "packet" && line["protocol"] == "icmp")
        .expect("the ICMP packet in the JSON");
    assert_eq!(icmp["icmp"]["answers"], 0);
    assert!(lines.iter().any(|line| line["call"] == "recv"
        && line["phase"] == "return"
        && line["error"]["errno"] == "ECONNREFUSED"));

    // A TCP echo: every byte sent is in a segment, in order.
    let pcap = scratch.0.join("echo.pcapng");
    let lines = trace(backend(), "tcp-echo", &pcap);
    let mut sent = sent_bytes(&lines);
    let mut carried = payloads(&tshark(&pcap), "tcp.payload");
    sent.sort_unstable();
    carried.sort_unstable();
    assert_eq!(carried, sent);
}

#[test]
fn an_ordinary_user_captures_too() {
    if !nix::unistd::Uid::effective().is_root() {
        // Already an ordinary user: the test above is this one.
        return;
    }
    let scratch = Scratch::new("nobody");
    let command = common::as_nobody(env!("CARGO_BIN_EXE_backend"), "backend", &scratch.0);
    let pcap = scratch.0.join("simple.pcapng");
    let lines = trace(command, "simple-server-client", &pcap);
    assert_eq!(lines.last().unwrap()["on"], true, "{:?}", lines.last());
    let all: Vec<String> = tshark(&pcap).iter().map(flags).collect();
    assert_eq!(all[..3], ["SYN", "SYN,ACK", "ACK"], "{all:?}");
}

/// Where Socket Lab may make no network of its own (here, `SOCKET_LAB_NETNS=off` stands for a
/// system that forbids user namespaces): with `CAP_NET_RAW` (root here) the run's packets are
/// captured on the machine's loopback, filtered to the run's own address, and tshark finds
/// the handshake and the FINs, nothing of another run played at the same time; as an
/// ordinary user without it, the trace still plays and says why packets are off.
#[test]
fn without_a_network_of_its_own_the_machines_loopback_is_captured_with_cap_net_raw() {
    let scratch = Scratch::new("no-netns");
    let mut command = backend();
    command.env("SOCKET_LAB_NETNS", "off");
    // Another run on the machine's loopback at the same time, whose packets must not show.
    let mut other = backend();
    let other = other
        .env("SOCKET_LAB_NETNS", "off")
        .args(["trace", "tcp-echo", "--json"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pcap = scratch.0.join("machine.pcapng");
    let lines = trace(command, "simple-server-client", &pcap);
    let _ = { other }.wait();
    let capture = lines.last().unwrap();
    assert_eq!(capture["kind"], "capture", "{capture}");
    if nix::unistd::Uid::effective().is_root() {
        assert_eq!(capture["on"], true, "{capture}");
        assert!(
            capture["scope"]
                .as_str()
                .unwrap_or_default()
                .contains("machine's loopback"),
            "{capture}"
        );
        let packets = tshark(&pcap);
        let all: Vec<String> = packets.iter().map(flags).collect();
        assert_eq!(all[..3], ["SYN", "SYN,ACK", "ACK"], "{all:?}");
        assert_eq!(
            all.iter().filter(|f| f.contains("FIN")).count(),
            2,
            "{all:?}"
        );
        // Every packet is this run's: to or from the run's own address (a client's source
        // is 127.0.0.1, the loopback's first address), never the other run's.
        let packet_hosts: Vec<[String; 2]> = lines
            .iter()
            .filter(|line| line["kind"] == "packet")
            .map(|line| {
                [
                    line["src"]["host"].to_string(),
                    line["dst"]["host"].to_string(),
                ]
            })
            .collect();
        let run_hosts: std::collections::BTreeSet<&String> = packet_hosts
            .iter()
            .flatten()
            .filter(|host| host.as_str() != "\"127.0.0.1\"")
            .collect();
        assert_eq!(run_hosts.len(), 1, "{packet_hosts:?}");
        let ours = run_hosts.into_iter().next().unwrap();
        assert!(
            packet_hosts.iter().all(|hosts| hosts.contains(ours)),
            "{packet_hosts:?}"
        );
    }
    let as_nobody = common::as_nobody(env!("CARGO_BIN_EXE_backend"), "backend", &scratch.0);
    let mut as_nobody = as_nobody;
    as_nobody.env("SOCKET_LAB_NETNS", "off");
    let lines = trace(
        as_nobody,
        "simple-server-client",
        &scratch.0.join("nobody.pcapng"),
    );
    let capture = lines.last().unwrap();
    assert_eq!(capture["on"], false, "{capture}");
    let why = capture["off_because"].as_str().unwrap_or_default();
    assert!(
        why.contains("SOCKET_LAB_NETNS=off") && why.contains("CAP_NET_RAW"),
        "{why}"
    );
}

/// A page's WebSocket to a server of its own.
async fn page() -> (Ws, tokio::sync::oneshot::Sender<()>, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = backend::Config::new(std::env::temp_dir().join("socket-lab-no-frontend"));
    tokio::spawn(backend::serve(listener, config, async {
        let _ = stopped.await;
    }));
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    assert!(matches!(
        next_server_message(&mut socket, Duration::from_secs(10)).await,
        ServerMessage::Hello { .. }
    ));
    (socket, stop, addr)
}

async fn send(socket: &mut Ws, message: &ClientMessage) {
    let json = serde_json::to_string(message).unwrap();
    socket.send(Message::Text(json.into())).await.unwrap();
}

/// Everything of one run: its events' addresses and its packets, until `RunFinished` (or,
/// for a sandbox, until `until` says the packets are all there).
#[derive(Default)]
struct Seen {
    addresses: Vec<SockAddr>,
    packets: Vec<Packet>,
    captures: Vec<shared::Capture>,
    finished: bool,
}

async fn read_until(socket: &mut Ws, seen: &mut Seen, done: impl Fn(&Seen) -> bool) {
    while !done(seen) {
        match next_server_message(socket, Duration::from_secs(10)).await {
            ServerMessage::Events { events, .. } => {
                for event in events {
                    if let Some(Ok(result)) = event.outcome() {
                        seen.addresses.extend(result.local.clone());
                        seen.addresses.extend(result.peer.clone());
                    }
                }
            }
            ServerMessage::Packets { packets, .. } => seen.packets.extend(packets),
            ServerMessage::Capture { capture, .. } => seen.captures.push(capture),
            ServerMessage::RunFinished { .. } => seen.finished = true,
            _ => {}
        }
    }
}

#[tokio::test]
async fn two_sessions_side_by_side_capture_only_their_own_packets() {
    let ((mut first, _stop1, addr1), (mut second, _stop2, addr2)) = tokio::join!(page(), page());
    let play = ClientMessage::Play {
        scenario: "tcp-echo".into(),
        pause_before_calls: false,
        quiet: false,
        outside: None,
    };
    send(&mut first, &play).await;
    send(&mut second, &play).await;
    let (mut one, mut two) = (Seen::default(), Seen::default());
    tokio::join!(
        read_until(&mut first, &mut one, |seen| seen.finished),
        read_until(&mut second, &mut two, |seen| seen.finished),
    );
    for (seen, other, page) in [(&one, &two, addr1), (&two, &one, addr2)] {
        assert!(seen.packets.len() >= 10, "{} packets", seen.packets.len());
        assert_eq!(
            seen.captures.len(),
            2,
            "a capture state at the start and at the end"
        );
        assert!(
            seen.captures
                .iter()
                .all(|capture| capture.on && !capture.lost_any())
        );
        let seqs: Vec<u64> = seen.packets.iter().map(|packet| packet.seq).collect();
        assert_eq!(seqs, (0..seen.packets.len() as u64).collect::<Vec<_>>());
        for packet in &seen.packets {
            // Every packet is between addresses of this run's own sockets...
            assert!(seen.addresses.contains(&packet.src), "{packet:?}");
            assert!(seen.addresses.contains(&packet.dst), "{packet:?}");
            // ...never the other run's, nor the page's own WebSocket.
            let port = |address: &SockAddr| match address {
                SockAddr::Inet { port, .. } | SockAddr::Inet6 { port, .. } => *port,
                SockAddr::Unix { .. } => 0,
            };
            assert_ne!(port(&packet.src), page.port());
            assert_ne!(port(&packet.dst), page.port());
            let theirs = other
                .packets
                .iter()
                .any(|their| their.frame == packet.frame);
            assert!(!theirs, "a packet of the other session: {packet:?}");
        }
    }
}
