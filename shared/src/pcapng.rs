//! A run's packets as a pcapng file, the format Wireshark and tshark open.
//!
//! The backend (`backend trace --pcap`, `watch --pcap`) and the page (Save packets) write
//! the file with this one function, from the same [`Packet`]s, so the two files are the
//! same. The format is the IETF's pcapng (draft-ietf-opsawg-pcapng): a Section Header Block,
//! one Interface Description Block (the run's loopback, Ethernet frames, microsecond
//! timestamps) and an Enhanced Packet Block per packet. It is written here rather than with a
//! crate because the page has to write it too, and these three blocks are all it needs; the
//! backend's tests read the files back with the `pcap-file` crate and with tshark.

use crate::packet::{Capture, Packet};

/// The block types and constants of the format.
const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION: u32 = 1;
const ENHANCED_PACKET: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// LINKTYPE_ETHERNET: Linux's loopback hands packet sockets Ethernet frames (zero MACs).
const LINKTYPE_ETHERNET: u16 = 1;
/// The Ethernet header's length, which a packet's IP `length` does not count.
const ETHERNET_HEADER: u32 = 14;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;

/// The pcapng file of a run's packets. `capture` gives the wall-clock time of the run's
/// start; `comment` may give each packet a comment (Wireshark shows it as `pkt_comment`),
/// such as the call that caused it. A packet whose frame is not hexadecimal is written with
/// no bytes rather than not at all, so the file's packets stay the run's.
pub fn write(
    capture: &Capture,
    packets: &[Packet],
    comment: impl Fn(&Packet) -> Option<String>,
) -> Vec<u8> {
    let mut file = Vec::with_capacity(64 + packets.len() * 128);
    block(&mut file, SECTION_HEADER, |body| {
        put_u32(body, BYTE_ORDER_MAGIC);
        put_u16(body, 1);
        put_u16(body, 0);
        // The section's length is not given (-1): it is the whole file.
        body.extend_from_slice(&(-1i64).to_le_bytes());
        option(body, SHB_USERAPPL, b"Socket Lab");
        end_options(body);
    });
    block(&mut file, INTERFACE_DESCRIPTION, |body| {
        put_u16(body, LINKTYPE_ETHERNET);
        put_u16(body, 0);
        put_u32(body, capture.snaplen);
        option(body, IF_NAME, b"lo");
        // Timestamps count microseconds (10^-6 s), the default, said anyway.
        option(body, IF_TSRESOL, &[6]);
        end_options(body);
    });
    for packet in packets {
        let frame = packet.frame_bytes().unwrap_or_default();
        let time = capture.started_unix_us.saturating_add(packet.t_us);
        let original = (packet.length + ETHERNET_HEADER).max(frame.len() as u32);
        block(&mut file, ENHANCED_PACKET, |body| {
            put_u32(body, 0);
            put_u32(body, (time >> 32) as u32);
            put_u32(body, time as u32);
            put_u32(body, frame.len() as u32);
            put_u32(body, original);
            body.extend_from_slice(&frame);
            pad(body);
            if let Some(text) = comment(packet) {
                option(body, OPT_COMMENT, text.as_bytes());
                end_options(body);
            }
        });
    }
    file
}

/// Writes one block: its type, its total length, the body, the total length again.
fn block(file: &mut Vec<u8>, kind: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let start = file.len();
    put_u32(file, kind);
    put_u32(file, 0);
    body(file);
    let total = (file.len() - start + 4) as u32;
    put_u32(file, total);
    file[start + 4..start + 8].copy_from_slice(&total.to_le_bytes());
}

fn option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    put_u16(body, code);
    put_u16(body, value.len() as u16);
    body.extend_from_slice(value);
    pad(body);
}

fn end_options(body: &mut Vec<u8>) {
    put_u16(body, OPT_END);
    put_u16(body, 0);
}

/// Pads to a multiple of four bytes, as every field of the format is.
fn pad(body: &mut Vec<u8>) {
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
}

fn put_u16(body: &mut Vec<u8>, value: u16) {
    body.extend_from_slice(&value.to_le_bytes());
}

fn put_u32(body: &mut Vec<u8>, value: u32) {
    body.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Bytes, SockAddr};
    use crate::packet::Protocol;

    fn packet(t_us: u64, frame: &str) -> Packet {
        let address = |port| SockAddr::Inet {
            host: std::net::Ipv4Addr::LOCALHOST,
            port,
        };
        Packet {
            seq: 0,
            t_us,
            protocol: Protocol::Udp,
            src: address(1),
            dst: address(2),
            length: 29,
            tcp: None,
            icmp: None,
            payload_len: 1,
            payload: Bytes::from(&b"x"[..]),
            frame: frame.to_owned(),
        }
    }

    /// The blocks of a file: (type, body), each checked for its two equal lengths.
    fn blocks(file: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut found = Vec::new();
        let mut at = 0;
        while at < file.len() {
            let word = |offset: usize| {
                u32::from_le_bytes(file[offset..offset + 4].try_into().expect("four bytes"))
            };
            let (kind, length) = (word(at), word(at + 4) as usize);
            assert_eq!(length % 4, 0, "block lengths are multiples of four");
            assert_eq!(word(at + length - 4) as usize, length, "both lengths agree");
            found.push((kind, file[at + 8..at + length - 4].to_vec()));
            at += length;
        }
        found
    }

    #[test]
    fn a_file_has_a_section_an_interface_and_a_block_per_packet() {
        let capture = Capture {
            on: true,
            started_unix_us: 1_700_000_000_000_000,
            snaplen: 256,
            ..Capture::default()
        };
        let file = write(
            &capture,
            &[packet(5, "0001020304"), packet(7, "ff")],
            |packet| (packet.t_us == 7).then(|| "the second".to_owned()),
        );
        let blocks = blocks(&file);
        let kinds: Vec<u32> = blocks.iter().map(|(kind, _)| *kind).collect();
        assert_eq!(kinds, [SECTION_HEADER, INTERFACE_DESCRIPTION, 6, 6]);
        let first = &blocks[2].1;
        let time = (u64::from(u32::from_le_bytes(first[4..8].try_into().unwrap())) << 32)
            | u64::from(u32::from_le_bytes(first[8..12].try_into().unwrap()));
        assert_eq!(time, 1_700_000_000_000_005);
        assert_eq!(u32::from_le_bytes(first[12..16].try_into().unwrap()), 5);
        assert_eq!(u32::from_le_bytes(first[16..20].try_into().unwrap()), 43);
        assert_eq!(&first[20..25], &[0, 1, 2, 3, 4]);
        let second = &blocks[3].1;
        assert!(
            second.windows(10).any(|window| window == b"the second"),
            "the comment is written"
        );
    }
}
