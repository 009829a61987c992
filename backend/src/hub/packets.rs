//! A watched run's packets: those its `watch --private-net`s captured in their shared
//! network, taken from one of them at a time.
//!
//! Every `watch --private-net` of a run captures the whole private network, so two programs'
//! `watch`es hand in the same packets. The hub takes them from one member, the
//! **capturer** (the first to hand in a packet); when it leaves, the next member's packets
//! are taken from the first one after the last taken, so no packet is shown twice and none
//! after the handover is missed. The hub numbers the packets itself (an ICMP error's
//! `answers` renumbered with them) and keeps the run's first [`PACKETS_PER_RUN`] for pages
//! that open later; the rest are counted.

use shared::Capture;
use shared::Packet;
use shared::packet::PACKETS_PER_RUN;

/// The packets of one watched run.
#[derive(Debug, Default)]
pub(super) struct RunPackets {
    /// The member whose packets are taken, and what its numbers are in the run's.
    capturer: Option<Capturer>,
    /// The time of the last packet taken, on the run's clock.
    last_t_us: Option<u64>,
    next_seq: u64,
    /// The packets kept for pages that open later.
    pub(super) kept: Vec<Packet>,
    beyond_limit: u64,
    /// Each member's latest word on its capture.
    states: Vec<(u64, Capture)>,
}

#[derive(Debug, Clone, Copy)]
struct Capturer {
    member: u64,
    /// The member's number of its first packet taken, and the run's number for it; `None`
    /// until one is taken.
    numbering: Option<(u64, u64)>,
}

impl RunPackets {
    /// Takes a packet member `member` handed in (timed on the run's clock), renumbered in
    /// the run; `None` when it is not taken (another member's copy is, or it was already).
    pub(super) fn take(&mut self, member: u64, mut packet: Packet) -> Option<Packet> {
        let capturer = self.capturer.get_or_insert(Capturer {
            member,
            numbering: None,
        });
        if capturer.member != member {
            return None;
        }
        // A new capturer's copies of the packets already taken are skipped; its numbering
        // starts at its first packet taken.
        if capturer.numbering.is_none() && self.last_t_us.is_some_and(|last| packet.t_us <= last) {
            return None;
        }
        let (first_member_seq, first_run_seq) = *capturer
            .numbering
            .get_or_insert((packet.seq, self.next_seq));
        let renumber = |seq: u64| {
            seq.checked_sub(first_member_seq)
                .map(|since| first_run_seq + since)
        };
        if let Some(icmp) = packet.icmp.as_mut() {
            icmp.answers = icmp.answers.and_then(renumber);
        }
        packet.seq = renumber(packet.seq).unwrap_or(self.next_seq);
        self.next_seq = packet.seq + 1;
        self.last_t_us = Some(packet.t_us);
        if self.kept.len() < PACKETS_PER_RUN as usize {
            self.kept.push(packet.clone());
        } else {
            self.beyond_limit += 1;
        }
        Some(packet)
    }

    /// Member `member` said how its capture stands; returns the run's capture as pages
    /// should now show it.
    pub(super) fn state(&mut self, member: u64, capture: Capture) -> Capture {
        match self.states.iter_mut().find(|(who, _)| *who == member) {
            Some((_, state)) => *state = capture,
            None => self.states.push((member, capture)),
        }
        self.merged()
    }

    /// A member left: the next member to hand in a packet becomes the capturer.
    pub(super) fn leave(&mut self, member: u64) {
        if self
            .capturer
            .is_some_and(|capturer| capturer.member == member)
        {
            self.capturer = None;
        }
    }

    /// The run's capture: on if any member's is (else the first member's reason it is off),
    /// with the run's own count of packets kept and every member's losses.
    pub(super) fn merged(&self) -> Capture {
        let on = self.states.iter().find(|(_, state)| state.on);
        let mut merged = match on.or(self.states.first()) {
            Some((_, state)) => state.clone(),
            None => return Capture::default(),
        };
        if merged.on {
            merged.kept = self.kept.len() as u64;
            merged.beyond_limit = self.beyond_limit
                + self
                    .states
                    .iter()
                    .map(|(_, state)| state.beyond_limit)
                    .sum::<u64>();
            merged.dropped_by_kernel = self
                .states
                .iter()
                .map(|(_, state)| state.dropped_by_kernel)
                .sum();
        }
        merged
    }

    /// Whether any member has said anything of its capture.
    pub(super) fn told(&self) -> bool {
        !self.states.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u64, t_us: u64) -> Packet {
        let address = |port| shared::SockAddr::Inet {
            host: std::net::Ipv4Addr::LOCALHOST,
            port,
        };
        Packet {
            seq,
            t_us,
            protocol: shared::Protocol::Udp,
            src: address(40000),
            dst: address(12345),
            length: 29,
            tcp: None,
            icmp: None,
            payload_len: 1,
            payload: shared::Bytes::from(&b"x"[..]),
            frame: String::new(),
        }
    }

    #[test]
    fn one_members_copy_is_taken_and_the_next_takes_over_after_the_last() {
        let mut packets = RunPackets::default();
        // Member 1 started first; member 2's capture began later, numbering from 0.
        assert_eq!(packets.take(1, packet(0, 10)).map(|p| p.seq), Some(0));
        assert_eq!(packets.take(2, packet(0, 10)), None);
        assert_eq!(packets.take(1, packet(1, 20)).map(|p| p.seq), Some(1));
        assert_eq!(packets.take(2, packet(1, 20)), None);
        packets.leave(1);
        // Member 2's copies of what was taken are skipped; the first after is the run's 2.
        assert_eq!(packets.take(2, packet(1, 20)), None);
        let next = packets.take(2, packet(2, 30)).unwrap();
        assert_eq!((next.seq, next.t_us), (2, 30));
        assert_eq!(packets.take(2, packet(3, 31)).map(|p| p.seq), Some(3));
        assert_eq!(packets.kept.len(), 4);
    }

    #[test]
    fn an_icmp_errors_answer_is_renumbered_with_it() {
        let mut packets = RunPackets::default();
        packets.take(1, packet(0, 1));
        packets.leave(1);
        let mut datagram = packet(5, 2);
        datagram.icmp = None;
        assert_eq!(packets.take(2, datagram).map(|p| p.seq), Some(1));
        let mut error = packet(6, 3);
        error.icmp = Some(shared::packet::IcmpMessage {
            kind: 3,
            code: 3,
            text: "Destination unreachable (Port unreachable)".into(),
            quoted: None,
            answers: Some(5),
        });
        let taken = packets.take(2, error).unwrap();
        assert_eq!(taken.seq, 2);
        assert_eq!(taken.icmp.and_then(|icmp| icmp.answers), Some(1));
    }

    #[test]
    fn the_runs_capture_is_on_if_any_members_is_and_counts_every_loss() {
        let mut packets = RunPackets::default();
        assert!(!packets.told());
        let off = packets.state(1, Capture::off("packets need --private-net"));
        assert!(!off.on);
        let on = Capture {
            on: true,
            dropped_by_kernel: 2,
            ..Capture::default()
        };
        packets.take(2, packet(0, 1));
        let merged = packets.state(2, on.clone());
        assert!(merged.on);
        assert_eq!((merged.kept, merged.dropped_by_kernel), (1, 2));
        let merged = packets.state(3, on);
        assert_eq!(merged.dropped_by_kernel, 4);
    }
}
