//! Reads a captured Ethernet frame into a [`Packet`], with TCP's numbers made relative to
//! each side's first as Wireshark shows them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use etherparse::{LaxNetSlice, LaxSlicedPacket, TcpOptionElement, TransportSlice};
use shared::packet::PAYLOAD_SHOWN;
use shared::{Bytes, IcmpMessage, Packet, Protocol, Quoted, SockAddr, TcpFlag, TcpSegment};

/// What a run's packets so far say about its connections: each direction's initial
/// sequence number and window scale, and the last packet of each address pair (what an
/// ICMP error answers).
#[derive(Debug, Default)]
pub(crate) struct Flows {
    directions: HashMap<(SocketAddr, SocketAddr), Direction>,
    last_of_pair: HashMap<(Protocol, SocketAddr, SocketAddr), u64>,
}

#[derive(Clone, Copy, Debug)]
struct Direction {
    initial_seq: u32,
    /// The window scale the direction's SYN offered, if it did.
    scale: Option<u8>,
}

/// Reads `frame` (the captured bytes, at most the snap length) as packet `seq` at `t_us`.
/// `None` for a frame that is not IP (there are none on a loopback but IP's).
pub(crate) fn packet(frame: &[u8], seq: u64, t_us: u64, flows: &mut Flows) -> Option<Packet> {
    let sliced = LaxSlicedPacket::from_ethernet(frame).ok()?;
    let (source, destination, length) = ip_header(sliced.net.as_ref()?)?;
    let mut packet = Packet {
        seq,
        t_us,
        protocol: Protocol::Other,
        src: address(SocketAddr::new(source, 0)),
        dst: address(SocketAddr::new(destination, 0)),
        length,
        tcp: None,
        icmp: None,
        payload_len: 0,
        payload: Bytes::default(),
        frame: Bytes::from(frame).hex(),
    };
    let ip_header = frame.len().saturating_sub(14)
        - sliced
            .net
            .as_ref()
            .and_then(|net| net.ip_payload_ref())
            .map_or(0, |payload| payload.payload.len());
    match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => {
            let from = SocketAddr::new(source, tcp.source_port());
            let to = SocketAddr::new(destination, tcp.destination_port());
            packet.protocol = Protocol::Tcp;
            packet.src = address(from);
            packet.dst = address(to);
            let header = u32::from(tcp.data_offset()) * 4;
            packet.payload_len = length.saturating_sub(ip_header as u32 + header);
            packet.payload = shown(tcp.payload());
            packet.tcp = Some(flows.segment(from, to, tcp));
            flows.saw(Protocol::Tcp, from, to, seq);
        }
        Some(TransportSlice::Udp(udp)) => {
            let from = SocketAddr::new(source, udp.source_port());
            let to = SocketAddr::new(destination, udp.destination_port());
            packet.protocol = Protocol::Udp;
            packet.src = address(from);
            packet.dst = address(to);
            packet.payload_len = u32::from(udp.length()).saturating_sub(8);
            packet.payload = shown(udp.payload());
            flows.saw(Protocol::Udp, from, to, seq);
        }
        Some(TransportSlice::Icmpv4(icmp)) => {
            packet.protocol = Protocol::Icmp;
            packet.icmp = Some(flows.icmp(Protocol::Icmp, icmp.slice()));
        }
        Some(TransportSlice::Icmpv6(icmp)) => {
            packet.protocol = Protocol::Icmpv6;
            packet.icmp = Some(flows.icmp(Protocol::Icmpv6, icmp.slice()));
        }
        None => {}
    }
    Some(packet)
}

/// An IP header's source, destination and the packet's whole length; `None` for ARP.
fn ip_header(net: &LaxNetSlice<'_>) -> Option<(IpAddr, IpAddr, u32)> {
    match net {
        LaxNetSlice::Ipv4(ip) => Some((
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            u32::from(ip.header().total_len()),
        )),
        LaxNetSlice::Ipv6(ip) => Some((
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            40 + u32::from(ip.header().payload_length()),
        )),
        LaxNetSlice::Arp(_) => None,
    }
}

fn shown(payload: &[u8]) -> Bytes {
    Bytes::from(&payload[..payload.len().min(PAYLOAD_SHOWN)])
}

fn address(address: SocketAddr) -> SockAddr {
    match address {
        SocketAddr::V4(v4) => SockAddr::Inet {
            host: *v4.ip(),
            port: v4.port(),
        },
        SocketAddr::V6(v6) => SockAddr::Inet6 {
            host: *v6.ip(),
            port: v6.port(),
            flowinfo: 0,
            scope_id: 0,
        },
    }
}

impl Flows {
    /// The segment's header, its numbers made relative, after noting a SYN's initial number.
    fn segment(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        tcp: &etherparse::TcpSlice<'_>,
    ) -> TcpSegment {
        let mut flags = Vec::new();
        for (set, flag) in [
            (tcp.syn(), TcpFlag::Syn),
            (tcp.fin(), TcpFlag::Fin),
            (tcp.rst(), TcpFlag::Rst),
            (tcp.psh(), TcpFlag::Psh),
            (tcp.ack(), TcpFlag::Ack),
            (tcp.urg(), TcpFlag::Urg),
            (tcp.ece(), TcpFlag::Ece),
            (tcp.cwr(), TcpFlag::Cwr),
        ] {
            if set {
                flags.push(flag);
            }
        }
        if tcp.syn() {
            let scale = tcp.options_iterator().find_map(|option| match option {
                Ok(TcpOptionElement::WindowScale(scale)) => Some(scale),
                _ => None,
            });
            self.directions.insert(
                (from, to),
                Direction {
                    initial_seq: tcp.sequence_number(),
                    scale,
                },
            );
        }
        // A connection whose SYN was not seen counts from its first segment seen.
        let ours = *self.directions.entry((from, to)).or_insert(Direction {
            initial_seq: tcp.sequence_number(),
            scale: None,
        });
        let theirs = self.directions.get(&(to, from)).copied();
        let ack = match (tcp.ack(), theirs) {
            (true, Some(theirs)) => tcp.acknowledgment_number().wrapping_sub(theirs.initial_seq),
            (true, None) => tcp.acknowledgment_number(),
            (false, _) => 0,
        };
        // Windows are scaled once both SYNs offered a scale, and never in a SYN itself.
        let scale = match (
            tcp.syn(),
            ours.scale,
            theirs.and_then(|theirs| theirs.scale),
        ) {
            (false, Some(scale), Some(_)) => scale.min(14),
            _ => 0,
        };
        TcpSegment {
            flags,
            seq: tcp.sequence_number().wrapping_sub(ours.initial_seq),
            ack,
            window: u32::from(tcp.window_size()) << scale,
        }
    }

    fn saw(&mut self, protocol: Protocol, from: SocketAddr, to: SocketAddr, seq: u64) {
        self.last_of_pair.insert((protocol, from, to), seq);
    }

    /// An ICMP message, and for an error the packet it quotes and answers.
    fn icmp(&self, protocol: Protocol, message: &[u8]) -> IcmpMessage {
        let (kind, code) = (
            u32::from(message.first().copied().unwrap_or(0)),
            u32::from(message.get(1).copied().unwrap_or(0)),
        );
        let is_error = match protocol {
            Protocol::Icmpv6 => kind < 128,
            _ => matches!(kind, 3 | 4 | 5 | 11 | 12),
        };
        let quoted = is_error
            .then(|| message.get(8..))
            .flatten()
            .and_then(quoted_packet);
        let answers = quoted.as_ref().and_then(|(protocol, from, to)| {
            self.last_of_pair.get(&(*protocol, *from, *to)).copied()
        });
        IcmpMessage {
            kind,
            code,
            text: icmp_text(protocol, kind, code),
            quoted: quoted.map(|(protocol, from, to)| Quoted {
                protocol,
                src: address(from),
                dst: address(to),
            }),
            answers,
        }
    }
}

/// The protocol and addresses of the packet an ICMP error quotes (its IP header and at least
/// the first 8 bytes after it, which hold the ports).
fn quoted_packet(quoted: &[u8]) -> Option<(Protocol, SocketAddr, SocketAddr)> {
    let sliced = LaxSlicedPacket::from_ip(quoted).ok()?;
    let (source, destination, _) = ip_header(sliced.net.as_ref()?)?;
    // The transport header may be cut short (a TCP header is quoted by its first 8 bytes
    // only), so the ports are read from the bytes themselves.
    let payload = sliced.net.as_ref()?.ip_payload_ref()?;
    let protocol = match payload.ip_number {
        etherparse::IpNumber::TCP => Protocol::Tcp,
        etherparse::IpNumber::UDP => Protocol::Udp,
        _ => return None,
    };
    let ports = payload.payload.get(..4)?;
    let port = |at: usize| u16::from_be_bytes([ports[at], ports[at + 1]]);
    Some((
        protocol,
        SocketAddr::new(source, port(0)),
        SocketAddr::new(destination, port(2)),
    ))
}

/// An ICMP type and code as Wireshark names them.
fn icmp_text(protocol: Protocol, kind: u32, code: u32) -> String {
    let known = match (protocol, kind, code) {
        (Protocol::Icmp, 0, _) => Some("Echo (ping) reply"),
        (Protocol::Icmp, 8, _) => Some("Echo (ping) request"),
        (Protocol::Icmp, 3, 0) => Some("Destination unreachable (Network unreachable)"),
        (Protocol::Icmp, 3, 1) => Some("Destination unreachable (Host unreachable)"),
        (Protocol::Icmp, 3, 3) => Some("Destination unreachable (Port unreachable)"),
        (Protocol::Icmp, 3, 4) => Some("Destination unreachable (Fragmentation needed)"),
        (Protocol::Icmp, 11, _) => Some("Time-to-live exceeded"),
        (Protocol::Icmpv6, 1, 4) => Some("Destination Unreachable (Port unreachable)"),
        (Protocol::Icmpv6, 1, _) => Some("Destination Unreachable"),
        (Protocol::Icmpv6, 2, _) => Some("Packet Too Big"),
        (Protocol::Icmpv6, 128, _) => Some("Echo (ping) request"),
        (Protocol::Icmpv6, 129, _) => Some("Echo (ping) reply"),
        _ => None,
    };
    known.map_or_else(|| format!("type {kind} code {code}"), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const CLIENT: [u8; 4] = [127, 0, 0, 1];
    const SERVER: [u8; 4] = [127, 64, 0, 1];

    struct Segment<'a> {
        ips: ([u8; 4], [u8; 4]),
        ports: (u16, u16),
        seq: u32,
        ack: Option<u32>,
        syn: bool,
        data: &'a [u8],
    }

    fn tcp(segment: &Segment<'_>) -> Vec<u8> {
        let mut step = PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4(segment.ips.0, segment.ips.1, 64)
            .tcp(segment.ports.0, segment.ports.1, segment.seq, 1000);
        if segment.syn {
            step = step.syn();
        }
        if let Some(ack) = segment.ack {
            step = step.ack(ack);
        }
        let mut out = Vec::new();
        step.write(&mut out, segment.data).expect("a frame");
        out
    }

    #[test]
    fn tcp_numbers_are_relative_to_each_sides_first() {
        let mut flows = Flows::default();
        let out = (CLIENT, SERVER);
        let back = (SERVER, CLIENT);
        let syn = Segment {
            ips: out,
            ports: (40000, 12345),
            seq: 1_000_000,
            ack: None,
            syn: true,
            data: b"",
        };
        let syn = packet(&tcp(&syn), 0, 1, &mut flows).expect("a packet");
        assert_eq!(syn.protocol, Protocol::Tcp);
        assert_eq!(syn.flags_text(), "[SYN]");
        assert_eq!(syn.tcp.as_ref().unwrap().seq, 0);
        let reverse = Segment {
            ips: back,
            ports: (12345, 40000),
            seq: 7,
            ack: Some(1_000_001),
            syn: true,
            data: b"",
        };
        let syn_ack = packet(&tcp(&reverse), 1, 2, &mut flows).unwrap();
        assert_eq!(syn_ack.flags_text(), "[SYN, ACK]");
        assert_eq!(syn_ack.tcp.as_ref().unwrap().ack, 1);
        let data = Segment {
            ips: out,
            ports: (40000, 12345),
            seq: 1_000_001,
            ack: Some(8),
            syn: false,
            data: b"hello",
        };
        let data = packet(&tcp(&data), 2, 3, &mut flows).unwrap();
        let segment = data.tcp.clone().unwrap();
        assert_eq!((segment.seq, segment.ack), (1, 1));
        assert_eq!(data.payload_len, 5);
        assert_eq!(data.payload.0, b"hello");
        assert_eq!(data.length, 20 + 20 + 5);
        assert_eq!(
            data.summary(),
            "TCP 127.0.0.1:40000 → 127.64.0.1:12345 [ACK] seq 1 ack 1 win 1000 len 5"
        );
    }

    #[test]
    fn a_port_unreachable_is_tied_to_the_datagram_it_answers() {
        let mut flows = Flows::default();
        let mut datagram = Vec::new();
        PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([127, 0, 0, 1], [127, 64, 0, 1], 64)
            .udp(50000, 9)
            .write(&mut datagram, b"ping")
            .unwrap();
        let sent = packet(&datagram, 0, 1, &mut flows).unwrap();
        assert_eq!((sent.protocol, sent.payload_len), (Protocol::Udp, 4));
        // ICMP type 3 code 3, quoting the datagram's IP packet.
        let mut answer = Vec::new();
        PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([127, 64, 0, 1], [127, 0, 0, 1], 64)
            .icmpv4_raw(3, 3, [0; 4])
            .write(&mut answer, &datagram[14..])
            .unwrap();
        let answer = packet(&answer, 1, 2, &mut flows).unwrap();
        let message = answer.icmp.expect("an ICMP message");
        assert!(message.is_port_unreachable(Protocol::Icmp));
        assert_eq!(message.text, "Destination unreachable (Port unreachable)");
        assert_eq!(message.answers, Some(0));
        assert_eq!(message.quoted.unwrap().dst, sent.dst);
        // Not IP at all: no packet.
        assert!(packet(&[0; 20], 2, 3, &mut flows).is_none());
    }
}
