//! Why each packet was sent: the two endpoints it travels between, found by their addresses
//! in the run's events, and the call that made it, or the kernel acting by itself, in plain
//! words. The page (its log, its diagram) and `backend trace --pcap` (each packet's comment)
//! say the same.

use std::collections::HashMap;

use crate::call::{Call, ReturnValue, SockOption};
use crate::event::{Event, Phase};
use crate::net::SockAddr;
use crate::packet::{Packet, Protocol, TcpFlag, endpoint_text};

/// A step of a run: an event or a packet, by its index in the run's events or packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The event with this index.
    Event(usize),
    /// The packet with this index.
    Packet(usize),
}

/// A run's events and packets in the order they happened: by time, each packet after the
/// last event at or before its time (an event before a packet of the same microsecond: the
/// call that sent it). A packet always follows a call that sent it, so one before the first
/// event (there is none) follows that event. Both lists are in time order.
pub fn steps(events: &[Event], packets: &[Packet]) -> Vec<Step> {
    let mut steps = Vec::with_capacity(events.len() + packets.len());
    let mut packets = packets.iter().enumerate().peekable();
    for index in 0..events.len() {
        steps.push(Step::Event(index));
        let next = events.get(index + 1).map_or(u64::MAX, |next| next.t_us);
        while let Some((packet, _)) = packets.next_if(|(_, packet)| packet.t_us < next) {
            steps.push(Step::Packet(packet));
        }
    }
    steps
}

/// A packet's place in its run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketCause {
    /// The endpoint that sent it, when the run's events name one with its address.
    pub from: Option<String>,
    /// The endpoint it went to.
    pub to: Option<String>,
    /// The `seq` of the event of the call that made it; `None` when the kernel sent it by
    /// itself (a SYN-ACK, an ACK, a RST or an ICMP error).
    pub call: Option<u64>,
    /// What the packet is and why it was sent, in plain words.
    pub text: String,
}

impl PacketCause {
    /// Between which endpoints the packet went, as the page writes it: `client.s → server.s`,
    /// or the one side known, or `on the wire` when the run's events name neither.
    pub fn route(&self) -> String {
        match (&self.from, &self.to) {
            (Some(from), Some(to)) => format!("{from} → {to}"),
            (Some(one), None) | (None, Some(one)) => one.clone(),
            (None, None) => "on the wire".to_owned(),
        }
    }
}

/// Where the run's endpoints are: each endpoint's local and peer address, as its events
/// last reported them, and from which event on it exists.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    entries: Vec<EndpointEntry>,
    by_name: HashMap<String, usize>,
}

#[derive(Clone, Debug)]
struct EndpointEntry {
    name: String,
    local: Option<SockAddr>,
    peer: Option<SockAddr>,
    /// The index of the first event that names it: its own, or the `accept()` that made it.
    since: usize,
}

impl Endpoints {
    /// The endpoints of a run's events.
    pub fn of(events: &[Event]) -> Self {
        let mut endpoints = Endpoints::default();
        for (index, event) in events.iter().enumerate() {
            endpoints.entry(&event.endpoint, index);
            let Some(Ok(result)) = event.outcome() else {
                continue;
            };
            if let Some(local) = &result.local {
                endpoints.entry(&event.endpoint, index).local = Some(local.clone());
            }
            if let Some(peer) = &result.peer {
                endpoints.entry(&event.endpoint, index).peer = Some(peer.clone());
            }
            if let ReturnValue::Accepted {
                endpoint, address, ..
            } = &result.value
            {
                endpoints.entry(endpoint, index).peer = Some(address.clone());
            }
        }
        // Endpoints named but never given an address cannot be found by one.
        endpoints
    }

    /// The entry of `name`, made at event `index` if it is new.
    fn entry(&mut self, name: &str, index: usize) -> &mut EndpointEntry {
        let at = match self.by_name.get(name) {
            Some(&at) => at,
            None => {
                self.entries.push(EndpointEntry {
                    name: name.to_owned(),
                    local: None,
                    peer: None,
                    since: index,
                });
                self.by_name.insert(name.to_owned(), self.entries.len() - 1);
                self.entries.len() - 1
            }
        };
        &mut self.entries[at]
    }

    /// The endpoints that exist once the first `before` events have happened, newest first.
    fn existing(&self, before: usize) -> impl Iterator<Item = &EndpointEntry> {
        self.entries
            .iter()
            .rev()
            .filter(move |entry| entry.since < before)
    }

    /// The endpoint bound to `local` with no peer, among those that exist after the first
    /// `before` events: the listener a connection not accepted yet belongs to, or an
    /// unconnected datagram socket.
    pub fn bound_at(&self, local: &SockAddr, before: usize) -> Option<&str> {
        self.existing(before)
            .find(|entry| {
                entry.local.as_ref().is_some_and(|ours| covers(ours, local)) && entry.peer.is_none()
            })
            .map(|entry| entry.name.as_str())
    }

    /// The endpoint whose socket has address `local` and is connected to `peer`; else one
    /// bound to `local` with no peer (a listener, an unconnected datagram socket); among
    /// those that exist after the first `before` events (a connection not accepted yet is
    /// its listener's). An endpoint bound to the unspecified address (`0.0.0.0`) has every
    /// address of its port.
    pub fn at(&self, local: &SockAddr, peer: &SockAddr, before: usize) -> Option<&str> {
        let exact = self.existing(before).find(|entry| {
            entry.local.as_ref().is_some_and(|ours| covers(ours, local))
                && entry.peer.as_ref() == Some(peer)
        });
        exact
            .map(|entry| entry.name.as_str())
            .or_else(|| self.bound_at(local, before))
    }
}

/// Whether a socket bound to `bound` has `address` (the same, or the same port on the
/// unspecified address of its family).
fn covers(bound: &SockAddr, address: &SockAddr) -> bool {
    match (bound, address) {
        (SockAddr::Inet { host, port }, SockAddr::Inet { port: other, .. })
            if host.is_unspecified() =>
        {
            port == other
        }
        (SockAddr::Inet6 { host, port, .. }, SockAddr::Inet6 { port: other, .. })
            if host.is_unspecified() =>
        {
            port == other
        }
        (
            SockAddr::Inet6 {
                host: a, port: p, ..
            },
            SockAddr::Inet6 {
                host: b, port: q, ..
            },
        ) => a == b && p == q,
        _ => bound == address,
    }
}

/// Why `packet` was sent, given its run's events.
pub fn packet_cause(packet: &Packet, events: &[Event]) -> Option<PacketCause> {
    Some(cause(packet, events, &Endpoints::of(events)))
}

/// Why `packet` was sent, with the run's endpoints already found (for a whole run's packets
/// at once).
pub fn cause(packet: &Packet, events: &[Event], endpoints: &Endpoints) -> PacketCause {
    // The events up to the packet's time: the sockets that existed when it was sent.
    let until = events.partition_point(|event| event.t_us <= packet.t_us);
    let from = endpoints
        .at(&packet.src, &packet.dst, until)
        .map(str::to_owned);
    // An ICMP error goes to the socket that sent the packet it quotes (its own addresses
    // have no ports to find a socket by).
    let quoted = packet.icmp.as_ref().and_then(|icmp| icmp.quoted.as_ref());
    let to = endpoints
        .at(&packet.dst, &packet.src, until)
        .or_else(|| quoted.and_then(|quoted| endpoints.at(&quoted.src, &quoted.dst, until)))
        .map(str::to_owned);
    // The call the sender was in, or had made last, when the packet left.
    let last_call = from.as_deref().and_then(|from| {
        events[..until]
            .iter()
            .rev()
            .find(|event| event.endpoint == from)
    });
    let made_by = |fits: &dyn Fn(&Call) -> bool| {
        last_call
            .filter(|event| fits(&event.call))
            .map(|event| (event.seq, event.call.name(), event.phase))
    };
    let dst = endpoint_text(&packet.dst);
    let (call, text) = match (packet.protocol, &packet.tcp, &packet.icmp) {
        (Protocol::Tcp, Some(tcp), _) => {
            let syn = tcp.has(TcpFlag::Syn);
            let ack = tcp.has(TcpFlag::Ack);
            if tcp.has(TcpFlag::Rst) {
                let lingered = from
                    .as_deref()
                    .is_some_and(|from| linger_zero(events, from));
                match made_by(&|call| matches!(call, Call::Close)) {
                    Some((seq, ..)) if lingered => (
                        Some(seq),
                        "close() with SO_LINGER 0 aborts the connection: the kernel sends RST \
                         instead of FIN, and drops any data not yet sent"
                            .to_owned(),
                    ),
                    _ if tcp.seq == 0 || (ack && to.is_some() && from.is_none()) => (
                        None,
                        format!(
                            "nothing listens on port {}: the kernel refuses the connection by \
                             itself with RST, and connect() fails with ECONNREFUSED",
                            port(&packet.src)
                        ),
                    ),
                    _ => (
                        None,
                        "the kernel resets the connection: a segment came for a socket that no \
                         longer has it"
                            .to_owned(),
                    ),
                }
            } else if syn && !ack {
                let call = made_by(&|call| matches!(call, Call::Connect { .. }));
                (
                    call.map(|(seq, ..)| seq),
                    format!(
                        "connect() sends SYN: the first step of TCP's three-way handshake asks \
                         {dst} for a connection, and connect() waits for the answer"
                    ),
                )
            } else if syn {
                (
                    None,
                    "the kernel answers the SYN by itself with SYN-ACK: the listener's backlog \
                     has room, and no call is needed (accept() only takes a connection the \
                     handshake has made)"
                        .to_owned(),
                )
            } else if tcp.has(TcpFlag::Fin) {
                match made_by(&|call| matches!(call, Call::Close | Call::Shutdown { .. })) {
                    Some((seq, name, _)) => (
                        Some(seq),
                        format!(
                            "{name}() sends FIN: this side has nothing more to send (the other \
                             side's recv() will return b'' once it has read the rest)"
                        ),
                    ),
                    None => (
                        None,
                        "the kernel sends FIN: the socket was closed (its program ended, or \
                         the run closed what was left open)"
                            .to_owned(),
                    ),
                }
            } else if packet.payload_len > 0 {
                match made_by(&|call| {
                    matches!(
                        call,
                        Call::Send { .. } | Call::Sendall { .. } | Call::Sendto { .. }
                    )
                }) {
                    Some((seq, name, _)) => (
                        Some(seq),
                        format!(
                            "{name}() hands {} bytes to the kernel, which sends them in this \
                             segment; they wait in the receiver's queue until its recv()",
                            packet.payload_len
                        ),
                    ),
                    None => (
                        None,
                        format!(
                            "the kernel sends {} bytes the program gave it earlier",
                            packet.payload_len
                        ),
                    ),
                }
            } else if tcp.seq == 1
                && tcp.ack == 1
                && made_by(&|call| matches!(call, Call::Connect { .. })).is_some()
            {
                (
                    made_by(&|call| matches!(call, Call::Connect { .. })).map(|(seq, ..)| seq),
                    "the client's kernel acknowledges the SYN-ACK: the handshake is complete, \
                     connect() returns, and the connection waits in the listener's accept queue"
                        .to_owned(),
                )
            } else {
                (
                    None,
                    format!(
                        "the kernel acknowledges what it has received (up to byte {}), by itself",
                        tcp.ack
                    ),
                )
            }
        }
        (Protocol::Udp, _, _) => {
            let call = made_by(&|call| {
                matches!(
                    call,
                    Call::Send { .. } | Call::Sendall { .. } | Call::Sendto { .. }
                )
            });
            (
                call.map(|(seq, ..)| seq),
                format!(
                    "{}() sends a datagram of {} bytes to {dst}: UDP sends it at once, with no \
                     connection and no acknowledgement",
                    call.map_or("sendto", |(_, name, _)| name),
                    packet.payload_len
                ),
            )
        }
        (protocol, _, Some(icmp)) if icmp.is_port_unreachable(protocol) => {
            let port = icmp.quoted.as_ref().map_or_else(String::new, |quoted| {
                format!(" {}", self::port(&quoted.dst))
            });
            (
                None,
                format!(
                    "no socket has port{port}: the kernel answers the datagram with ICMP port \
                     unreachable, and the sender's next call on its socket may fail with \
                     ECONNREFUSED"
                ),
            )
        }
        (_, _, Some(icmp)) => (None, format!("the kernel sends ICMP: {}", icmp.text)),
        _ => (None, format!("a {} packet", packet.protocol.name())),
    };
    PacketCause {
        from,
        to,
        call,
        text,
    }
}

fn port(address: &SockAddr) -> u16 {
    match address {
        SockAddr::Inet { port, .. } | SockAddr::Inet6 { port, .. } => *port,
        SockAddr::Unix { .. } => 0,
    }
}

/// Whether `endpoint` had `SO_LINGER` set to 0 seconds by one of its calls.
fn linger_zero(events: &[Event], endpoint: &str) -> bool {
    events.iter().any(|event| {
        event.endpoint == endpoint
            && event.phase == Phase::Return
            && matches!(
                event.call,
                Call::Setsockopt {
                    option: SockOption::Linger(Some(0))
                }
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{CallResult, ReturnValue};

    #[test]
    fn an_icmp_error_goes_to_the_socket_that_sent_what_it_quotes() {
        let packets = crate::packet::examples();
        let (datagram, unreachable) = (&packets[2], &packets[3]);
        let mut connect = Event::enter(
            "client",
            "client.s",
            None,
            Call::Connect {
                address: datagram.dst.clone(),
            },
        );
        connect.phase = Phase::Return;
        connect.t_us = datagram.t_us;
        connect.result = Some(CallResult {
            value: ReturnValue::None,
            fd: Some(3),
            local: Some(datagram.src.clone()),
            peer: Some(datagram.dst.clone()),
            peer_process: None,
        });
        let events = [connect];
        let cause = packet_cause(unreachable, &events).unwrap();
        assert_eq!(cause.to.as_deref(), Some("client.s"));
        assert_eq!(cause.route(), "client.s");
        assert!(cause.text.contains("port unreachable"), "{}", cause.text);
        let sent = packet_cause(datagram, &events).unwrap();
        assert_eq!(sent.from.as_deref(), Some("client.s"));
        // Steps: the event, then the packets at or after its time.
        assert_eq!(
            steps(&events, &packets[2..])[..2],
            [Step::Event(0), Step::Packet(0)]
        );
    }

    /// A returned call of `endpoint` at `t_us` with its socket's addresses.
    fn returned(endpoint: &str, t_us: u64, value: ReturnValue, local: SockAddr) -> Event {
        let mut event = Event::enter("r", endpoint, None, Call::Listen { backlog: 5 });
        event.phase = Phase::Return;
        event.t_us = t_us;
        event.result = Some(CallResult {
            value,
            fd: Some(3),
            local: Some(local),
            peer: None,
            peer_process: None,
        });
        event
    }

    #[test]
    fn a_connection_not_accepted_yet_is_its_listeners() {
        let address = |port| SockAddr::Inet {
            host: std::net::Ipv4Addr::LOCALHOST,
            port,
        };
        let packets = crate::packet::examples();
        let mut syn = packets[0].clone();
        (syn.src, syn.dst, syn.t_us) = (address(5000), address(12345), 3);
        let listened = returned("server.s", 1, ReturnValue::None, address(12345));
        let mut connected = returned("client.s", 4, ReturnValue::None, address(5000));
        connected.result.as_mut().unwrap().peer = Some(address(12345));
        let accepted = returned(
            "server.s",
            5,
            ReturnValue::Accepted {
                endpoint: "server.con".into(),
                fd: 4,
                address: address(5000),
                process: None,
            },
            address(12345),
        );
        let mut sent = returned("server.con", 6, ReturnValue::None, address(12345));
        sent.result.as_mut().unwrap().peer = Some(address(5000));
        let mut connecting = Event::enter(
            "client",
            "client.s",
            None,
            Call::Connect {
                address: address(12345),
            },
        );
        connecting.t_us = 2;
        let events = [listened, connecting, connected, accepted, sent];
        // The SYN came before accept() made the connection's socket: it is the listener's.
        let cause = packet_cause(&syn, &events).unwrap();
        assert_eq!(cause.to.as_deref(), Some("server.s"));
        assert_eq!(cause.from.as_deref(), Some("client.s"));
        // A segment after accept() is the connection's.
        let mut data = packets[1].clone();
        (data.src, data.dst, data.t_us) = (address(12345), address(5000), 7);
        let cause = packet_cause(&data, &events).unwrap();
        assert_eq!(cause.from.as_deref(), Some("server.con"));
        assert_eq!(cause.route(), "server.con → client.s");
    }
}
