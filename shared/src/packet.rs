//! [`Packet`]: one packet a run's sockets put on the wire, captured from the kernel; and
//! [`Capture`]: whether a run's packets are captured, and what its capture could not keep.
//!
//! Socket Lab runs its labs' IP sockets in a network of its own (a Linux network namespace
//! with a loopback of its own), where it reads every packet with an `AF_PACKET` socket, so
//! the packets shown are the packets the kernel sent, never drawn from a model. They share
//! the events' clock: a packet's `t_us` and an event's are microseconds since the same start,
//! so their order by `t_us` is the order they happened.
//!
//! In JSON (the WebSocket's [`ServerMessage::Packets`](crate::ServerMessage::Packets), and a
//! line of `backend trace --json` with `"kind": "packet"`):
//!
//! ```json
//! {"seq": 0, "t_us": 912, "protocol": "tcp",
//!  "src": {"family": "AF_INET", "host": "127.0.0.1", "port": 40112},
//!  "dst": {"family": "AF_INET", "host": "127.64.0.1", "port": 12345},
//!  "length": 60, "tcp": {"flags": ["SYN"], "seq": 0, "ack": 0, "window": 65495},
//!  "payload_len": 0, "payload": {"len": 0, "text": "", "hex": ""},
//!  "frame": "000000000000000000000000080045..."}
//! ```

use serde::{Deserialize, Serialize};
use shared_derive::{Decode, Encode};

use crate::net::{Bytes, SockAddr};

/// The most bytes of a packet kept (its Ethernet, IP and transport headers and the first of
/// its payload): what Save packets writes and what the page can show.
pub const SNAPLEN: u32 = 256;

/// The most bytes of a packet's payload carried in [`Packet::payload`] for people to read.
pub const PAYLOAD_SHOWN: usize = 64;

/// A run keeps at most this many packets; the ones after are counted in
/// [`Capture::beyond_limit`].
pub const PACKETS_PER_RUN: u64 = 20_000;

/// One packet on the run's network, as the capture saw it leave a socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct Packet {
    /// The packet's position among the run's packets, from 0. Packets beyond the run's limit
    /// are counted in [`Capture`], not numbered.
    pub seq: u64,
    /// Microseconds since the run started, on the clock of the run's events.
    pub t_us: u64,
    /// The transport protocol.
    pub protocol: Protocol,
    /// Where the packet comes from (an ICMP message's port is 0).
    pub src: SockAddr,
    /// Where it goes.
    pub dst: SockAddr,
    /// The IP packet's length in bytes, headers included, as it was on the wire.
    pub length: u32,
    /// A TCP segment's header: flags, sequence numbers, window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpSegment>,
    /// An ICMP message's type, and the packet it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpMessage>,
    /// The payload's length in bytes (TCP data or a UDP datagram's), all of it, even where
    /// fewer were kept.
    pub payload_len: u32,
    /// The payload's first bytes (at most [`PAYLOAD_SHOWN`]).
    pub payload: Bytes,
    /// The frame as captured, in hexadecimal: its Ethernet header onward, at most
    /// [`SNAPLEN`] bytes. Save packets writes these bytes.
    pub frame: String,
}

/// A packet's transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Decode, Encode)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (`SOCK_STREAM`).
    Tcp,
    /// UDP (`SOCK_DGRAM`).
    Udp,
    /// ICMP, IPv4's error messages.
    Icmp,
    /// ICMPv6.
    Icmpv6,
    /// Anything else.
    Other,
}

impl Protocol {
    /// The protocol's name as Wireshark writes it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Icmp => "ICMP",
            Protocol::Icmpv6 => "ICMPv6",
            Protocol::Other => "IP",
        }
    }
}

/// A TCP segment's header, with its numbers relative to each side's first, as Wireshark
/// shows them: a connection's SYN has `seq` 0, the first byte of data `seq` 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct TcpSegment {
    /// The flags that are set, in the order Wireshark lists them.
    pub flags: Vec<TcpFlag>,
    /// The sequence number, relative to the sender's initial one.
    pub seq: u32,
    /// The acknowledgement number, relative to the receiver's initial sequence number; 0
    /// when the ACK flag is not set.
    pub ack: u32,
    /// The window the sender advertises, in bytes (after the connection's window scale).
    pub window: u32,
}

impl TcpSegment {
    /// Whether `flag` is set.
    pub fn has(&self, flag: TcpFlag) -> bool {
        self.flags.contains(&flag)
    }
}

/// A TCP flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Decode, Encode)]
pub enum TcpFlag {
    /// Synchronise: opens a connection.
    #[serde(rename = "SYN")]
    Syn,
    /// Finish: the sender has no more data.
    #[serde(rename = "FIN")]
    Fin,
    /// Reset: the connection is aborted, or there never was one.
    #[serde(rename = "RST")]
    Rst,
    /// Push: hand the data to the application now.
    #[serde(rename = "PSH")]
    Psh,
    /// The acknowledgement number is valid.
    #[serde(rename = "ACK")]
    Ack,
    /// Urgent data.
    #[serde(rename = "URG")]
    Urg,
    /// ECN echo.
    #[serde(rename = "ECE")]
    Ece,
    /// Congestion window reduced.
    #[serde(rename = "CWR")]
    Cwr,
}

impl TcpFlag {
    /// The flag's name, as in Wireshark's `[SYN, ACK]`.
    pub fn name(self) -> &'static str {
        match self {
            TcpFlag::Syn => "SYN",
            TcpFlag::Fin => "FIN",
            TcpFlag::Rst => "RST",
            TcpFlag::Psh => "PSH",
            TcpFlag::Ack => "ACK",
            TcpFlag::Urg => "URG",
            TcpFlag::Ece => "ECE",
            TcpFlag::Cwr => "CWR",
        }
    }
}

/// An ICMP message: its type and code, in words, and the packet it answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct IcmpMessage {
    /// The ICMP type (3 is "destination unreachable" in ICMP, 1 in ICMPv6).
    pub kind: u32,
    /// The code (3 is "port unreachable" in ICMP, 4 in ICMPv6).
    pub code: u32,
    /// The type and code in words, as Wireshark writes them: `Destination unreachable
    /// (Port unreachable)`.
    pub text: String,
    /// For an error: the packet it quotes, by its protocol and addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted: Option<Quoted>,
    /// The `seq` of the run's packet it answers (the last one with the quoted addresses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<u64>,
}

impl IcmpMessage {
    /// Whether the message says that no socket has the port the quoted packet went to.
    pub fn is_port_unreachable(&self, protocol: Protocol) -> bool {
        match protocol {
            Protocol::Icmp => self.kind == 3 && self.code == 3,
            Protocol::Icmpv6 => self.kind == 1 && self.code == 4,
            _ => false,
        }
    }
}

/// The packet an ICMP error quotes: enough of its headers to say which it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct Quoted {
    /// Its transport protocol.
    pub protocol: Protocol,
    /// Where it came from.
    pub src: SockAddr,
    /// Where it went.
    pub dst: SockAddr,
}

/// Whether a run's packets are captured, and what its capture could not keep.
///
/// Sent after `RunStarted` ([`ServerMessage::Capture`](crate::ServerMessage::Capture)) and
/// again, with the final counts, before `RunFinished`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct Capture {
    /// Whether packets are captured for this run.
    pub on: bool,
    /// Why they are not, in plain words, when `on` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_because: Option<String>,
    /// The wall-clock time of the run's start (its `t_us` 0), in microseconds since the Unix
    /// epoch: what a pcapng file's timestamps are counted from.
    pub started_unix_us: u64,
    /// The most bytes kept of each packet.
    pub snaplen: u32,
    /// Packets captured after the run's limit ([`PACKETS_PER_RUN`]): counted, not kept.
    pub beyond_limit: u64,
    /// Packets the kernel could not hand to the capture (its queue was full), from the
    /// capture socket's `PACKET_STATISTICS`.
    pub dropped_by_kernel: u64,
    /// Packets kept, so far.
    pub kept: u64,
    /// Where they are captured, in plain words, when it is not a network of the run's own:
    /// on a system without one, the machine's loopback with a filter for the run's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl Capture {
    /// A run whose packets are not captured, and why.
    pub fn off(because: impl Into<String>) -> Self {
        Capture {
            on: false,
            off_because: Some(because.into()),
            ..Capture::default()
        }
    }

    /// Whether some packets of the run are missing (beyond the limit, or lost by the kernel).
    pub fn lost_any(&self) -> bool {
        self.beyond_limit > 0 || self.dropped_by_kernel > 0
    }
}

impl Packet {
    /// The frame's bytes (from the hexadecimal of [`Packet::frame`]).
    pub fn frame_bytes(&self) -> Result<Vec<u8>, String> {
        Bytes::from_hex(&self.frame).map(|bytes| bytes.0)
    }

    /// The TCP flags as Wireshark writes them: `[SYN, ACK]`; empty for other protocols.
    pub fn flags_text(&self) -> String {
        match &self.tcp {
            Some(tcp) => format!(
                "[{}]",
                tcp.flags
                    .iter()
                    .map(|flag| flag.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => String::new(),
        }
    }

    /// Whether the packet is a TCP segment with `flag` set.
    pub fn has(&self, flag: TcpFlag) -> bool {
        self.tcp.as_ref().is_some_and(|tcp| tcp.has(flag))
    }

    /// A line for a table of packets, like Wireshark's Info column:
    /// `TCP 127.0.0.1:40112 → 127.64.0.1:12345 [SYN] seq 0 win 65495 len 0`.
    pub fn summary(&self) -> String {
        let route = format!(
            "{} → {}",
            endpoint_text(&self.src),
            endpoint_text(&self.dst)
        );
        match (&self.tcp, &self.icmp) {
            (Some(tcp), _) => {
                let ack = if tcp.has(TcpFlag::Ack) {
                    format!(" ack {}", tcp.ack)
                } else {
                    String::new()
                };
                format!(
                    "TCP {route} {} seq {}{ack} win {} len {}",
                    self.flags_text(),
                    tcp.seq,
                    tcp.window,
                    self.payload_len
                )
            }
            (None, Some(icmp)) => format!("{} {route} {}", self.protocol.name(), icmp.text),
            (None, None) => format!("{} {route} len {}", self.protocol.name(), self.payload_len),
        }
    }
}

/// An address as `host:port` (`[::1]:12345` for IPv6), or the host alone for port 0.
pub fn endpoint_text(address: &SockAddr) -> String {
    match address {
        SockAddr::Inet { host, port: 0 } => host.to_string(),
        SockAddr::Inet { host, port } => format!("{host}:{port}"),
        SockAddr::Inet6 { host, port: 0, .. } => host.to_string(),
        SockAddr::Inet6 { host, port, .. } => format!("[{host}]:{port}"),
        SockAddr::Unix { path, .. } => path.clone(),
    }
}

/// Packets of every shape, for the codec's tests: a SYN, an ACK with data, a UDP datagram
/// on IPv6 and the ICMP port unreachable that answers it.
#[cfg(test)]
pub(crate) fn examples() -> Vec<Packet> {
    let v4 = |port| SockAddr::Inet {
        host: std::net::Ipv4Addr::new(127, 64, 0, 1),
        port,
    };
    let v6 = |port| SockAddr::Inet6 {
        host: std::net::Ipv6Addr::LOCALHOST,
        port,
        flowinfo: 0,
        scope_id: 0,
    };
    let base = Packet {
        seq: 0,
        t_us: 912,
        protocol: Protocol::Tcp,
        src: v4(40112),
        dst: v4(12345),
        length: 60,
        tcp: Some(TcpSegment {
            flags: vec![TcpFlag::Syn],
            seq: 0,
            ack: 0,
            window: 65495,
        }),
        icmp: None,
        payload_len: 0,
        payload: Bytes::default(),
        frame: "0000000000000000000000000800".into(),
    };
    let data = Packet {
        seq: 1,
        t_us: 950,
        tcp: Some(TcpSegment {
            flags: vec![TcpFlag::Psh, TcpFlag::Ack],
            seq: 1,
            ack: 1,
            window: 512,
        }),
        payload_len: 24,
        payload: Bytes::from(&b"Connection is \"successful\"\n"[..]),
        ..base.clone()
    };
    let datagram = Packet {
        seq: 2,
        protocol: Protocol::Udp,
        src: v6(50000),
        dst: v6(9),
        tcp: None,
        payload_len: 5,
        payload: Bytes::from(&b"hello"[..]),
        ..base.clone()
    };
    let unreachable = Packet {
        seq: 3,
        protocol: Protocol::Icmpv6,
        src: v6(0),
        dst: v6(0),
        tcp: None,
        icmp: Some(IcmpMessage {
            kind: 1,
            code: 4,
            text: "Destination unreachable (Port unreachable)".into(),
            quoted: Some(Quoted {
                protocol: Protocol::Udp,
                src: v6(50000),
                dst: v6(9),
            }),
            answers: Some(2),
        }),
        ..base.clone()
    };
    vec![base, data, datagram, unreachable]
}
