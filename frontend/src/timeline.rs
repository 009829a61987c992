//! [`Timeline`]: the sequence diagram's rows, one for each event and one for each packet
//! shown, in the order they happened. Plain Rust.
//!
//! A packet has a row of its own, as in the log, so that the three packets of a handshake,
//! which all happen while `connect()` waits, are three arrows one under the other inside the
//! connect's bar rather than three lines drawn over each other in one row.
//!
//! The order is the one [`RunView::packets_shown`] and stepping use: a packet comes after
//! every event at or before its time, and before the events after it. Events and packets are
//! each in time order (the server orders events by their time, and a capture reads packets
//! in the order the kernel passed them), so a row is found by binary search, without a table
//! that would have to follow every event and packet as they come.

use std::ops::Range;

use shared::{Event, Packet};

use crate::model::RunView;

/// The rows of a run's first events and of the packets shown with them.
#[derive(Clone, Copy, Debug)]
pub struct Timeline<'a> {
    events: &'a [Event],
    packets: &'a [Packet],
}

impl<'a> Timeline<'a> {
    /// The rows of the run as it stood after its first `upto` events.
    pub fn of(run: &'a RunView, upto: usize) -> Self {
        let events = &run.events[..upto.min(run.events.len())];
        let packets = if events.is_empty() {
            &[][..]
        } else {
            &run.packets[..run.packets_shown()]
        };
        Timeline { events, packets }
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.events.len() + self.packets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row of the `index`th event; for an index past the last event, the row after
    /// everything.
    pub fn event_row(&self, index: usize) -> usize {
        match self.events.get(index) {
            Some(event) => index + self.packets_before(event.t_us),
            None => self.len(),
        }
    }

    /// The row of the `index`th packet (an index among those shown).
    pub fn packet_row(&self, index: usize) -> usize {
        match self.packets.get(index) {
            Some(packet) => index + self.events_until(packet.t_us),
            None => self.len(),
        }
    }

    /// How many of the events come before a packet of time `t_us`: those at or before it.
    pub fn events_until(&self, t_us: u64) -> usize {
        self.events.partition_point(|event| event.t_us <= t_us)
    }

    /// The events whose rows lie in `rows`.
    pub fn events_in(&self, rows: Range<usize>) -> Range<usize> {
        in_rows(self.events.len(), |index| self.event_row(index), rows)
    }

    /// The packets whose rows lie in `rows`.
    pub fn packets_in(&self, rows: Range<usize>) -> Range<usize> {
        in_rows(self.packets.len(), |index| self.packet_row(index), rows)
    }

    /// How many packets come before an event of time `t_us`: those strictly before it.
    fn packets_before(&self, t_us: u64) -> usize {
        self.packets.partition_point(|packet| packet.t_us < t_us)
    }
}

/// The indices below `len` whose rows (`row_of`, growing with the index) lie in `rows`.
fn in_rows(len: usize, row_of: impl Fn(usize) -> usize, rows: Range<usize>) -> Range<usize> {
    let first = |row: usize| first_index(len, |index| row_of(index) >= row);
    let start = first(rows.start);
    start..first(rows.end).max(start)
}

/// The first index below `len` for which `at_or_after` holds, or `len`, for a test that
/// holds from some index on.
fn first_index(len: usize, at_or_after: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, len);
    while low < high {
        let middle = low + (high - low) / 2;
        if at_or_after(middle) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    low
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, t_us: u64) -> Event {
        Event {
            seq,
            t_us,
            ..Event::enter("client", "client.s", None, shared::Call::Gethostname)
        }
    }

    fn packet(seq: u64, t_us: u64) -> Packet {
        let address = shared::SockAddr::Inet {
            host: std::net::Ipv4Addr::LOCALHOST,
            port: 12345,
        };
        Packet {
            seq,
            t_us,
            protocol: shared::Protocol::Udp,
            src: address.clone(),
            dst: address,
            length: 32,
            tcp: None,
            icmp: None,
            payload_len: 4,
            payload: shared::Bytes::from(&b"ping"[..]),
            frame: String::new(),
        }
    }

    fn timeline<'a>(events: &'a [Event], packets: &'a [Packet]) -> Timeline<'a> {
        Timeline { events, packets }
    }

    #[test]
    fn every_event_and_packet_has_a_row_of_its_own_in_time_order() {
        let events: Vec<Event> = [10, 20, 30, 40]
            .iter()
            .enumerate()
            .map(|(seq, &t)| event(seq as u64, t))
            .collect();
        let packets: Vec<Packet> = [20, 25, 25, 45]
            .iter()
            .enumerate()
            .map(|(seq, &t)| packet(seq as u64, t))
            .collect();
        let rows = timeline(&events, &packets);
        assert_eq!(rows.len(), 8);
        // A packet comes after the event of its own time (20), and after every event when it
        // is later than all of them (45).
        let event_rows: Vec<usize> = (0..4).map(|index| rows.event_row(index)).collect();
        let packet_rows: Vec<usize> = (0..4).map(|index| rows.packet_row(index)).collect();
        // 10, 20, [20], [25], [25], 30, 40, [45].
        assert_eq!(event_rows, [0, 1, 5, 6]);
        assert_eq!(packet_rows, [2, 3, 4, 7]);
        assert_eq!(
            rows.event_row(4),
            8,
            "past the last event: after everything"
        );
        assert_eq!(rows.events_in(0..8), 0..4);
        assert_eq!(rows.events_in(2..5), 2..2, "rows of packets only");
        assert_eq!(rows.events_in(1..6), 1..3);
        assert_eq!(rows.packets_in(1..6), 0..3);
        assert_eq!(rows.packets_in(5..7), 3..3);
        assert_eq!(rows.packets_in(7..100), 3..4);
        // A window whose end is above its start (a box not laid out yet) holds nothing.
        let (start, end) = (6, 2);
        assert_eq!(rows.events_in(start..end), 3..3);
    }

    #[test]
    fn without_packets_an_events_row_is_its_index() {
        let events: Vec<Event> = (0..5).map(|seq| event(seq, seq * 7)).collect();
        let rows = timeline(&events, &[]);
        assert!((0..5).all(|index| rows.event_row(index) == index));
        assert_eq!(rows.events_in(1..3), 1..3);
        assert!(timeline(&[], &[]).is_empty());
    }
}
