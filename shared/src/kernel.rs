//! The kernel's own view of a socket, read after every event.

use serde::{Deserialize, Serialize};
use shared_derive::{Decode, Encode};

/// One live socket as the kernel reports it at the moment of an event.
///
/// For TCP the state comes from `getsockopt(TCP_INFO)`; for other sockets from
/// `SO_ACCEPTCONN` and `getpeername`, and for a Unix stream socket also from `poll`. The queues come from the `SIOCINQ` and `SIOCOUTQ`
/// ioctls, and a listener's accept queue and backlog from `TCP_INFO` too. A TCP connection
/// that outlives its socket (see [`SocketView::lingering`]) comes from `/proc/net/tcp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct SocketView {
    /// The endpoint, such as `server.con`.
    pub endpoint: String,
    /// The socket's state.
    pub state: SocketState,
    /// Bytes waiting in the receive queue for the program to read. On a datagram socket, the
    /// length of the next datagram (that is what the kernel reports). Absent for a listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv_queue: Option<u32>,
    /// Bytes in the send queue: sent by the program, not yet acknowledged by the peer (for
    /// TCP), or not yet handed on (for other sockets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_queue: Option<u32>,
    /// For a TCP listener: connections the kernel has completed that wait for `accept`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_queue: Option<u32>,
    /// For a TCP listener: the most connections the kernel will queue (`listen`'s backlog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u32>,
    /// The socket has let go of its connection (the program closed it, or the kernel moved the
    /// connection to `TIME_WAIT`) and the kernel still keeps the connection, found by its
    /// address pair in the kernel's connection table as `ss` finds it. The state and queues
    /// are the connection's. Such a view goes away when the kernel forgets the connection.
    #[serde(default, skip_serializing_if = "is_false")]
    pub lingering: bool,
    /// A Unix stream socket whose peer will send nothing more: the peer closed its socket or
    /// shut down its sending side, and the kernel has shut this socket's receiving side
    /// (`poll` reports `POLLRDHUP`). Once the receive queue is read, `recv` returns `b''`.
    /// The kernel keeps such a socket connected, where TCP would say `CLOSE_WAIT`. Not set
    /// after the program shut down its own receiving side, which the kernel marks the same way.
    #[serde(default, skip_serializing_if = "is_false")]
    pub peer_closed: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// A socket's state: the TCP states by their names in `netstat` and `ss`, and for sockets
/// that are not TCP, whether they listen or have a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SocketState {
    /// TCP: the connection is open both ways.
    Established,
    /// TCP: `connect` has sent its SYN and waits for the answer.
    SynSent,
    /// TCP: a SYN came in and was answered; the handshake is not complete.
    SynRecv,
    /// TCP: this side has closed and sent its FIN, not yet acknowledged.
    #[serde(rename = "FIN_WAIT1")]
    FinWait1,
    /// TCP: this side's FIN was acknowledged; waiting for the peer to close.
    #[serde(rename = "FIN_WAIT2")]
    FinWait2,
    /// TCP: both sides have closed; this side waits out stray packets before the address
    /// pair may be used again.
    TimeWait,
    /// TCP: no connection (a new socket, or one whose connection is over).
    Closed,
    /// TCP: the peer has closed its side; this side may still send, then should close.
    CloseWait,
    /// TCP: this side closed after the peer; waiting for the last acknowledgement.
    LastAck,
    /// A listener.
    Listen,
    /// TCP: both sides closed at the same time.
    Closing,
    /// Not TCP: no peer.
    Unconnected,
    /// Not TCP: has a peer.
    Connected,
}

impl SocketState {
    /// Every state, in the order of the enum.
    pub const ALL: [SocketState; 13] = [
        SocketState::Established,
        SocketState::SynSent,
        SocketState::SynRecv,
        SocketState::FinWait1,
        SocketState::FinWait2,
        SocketState::TimeWait,
        SocketState::Closed,
        SocketState::CloseWait,
        SocketState::LastAck,
        SocketState::Listen,
        SocketState::Closing,
        SocketState::Unconnected,
        SocketState::Connected,
    ];

    /// The state's name as `ss` and `netstat` print it.
    pub fn name(self) -> &'static str {
        match self {
            SocketState::Established => "ESTABLISHED",
            SocketState::SynSent => "SYN_SENT",
            SocketState::SynRecv => "SYN_RECV",
            SocketState::FinWait1 => "FIN_WAIT1",
            SocketState::FinWait2 => "FIN_WAIT2",
            SocketState::TimeWait => "TIME_WAIT",
            SocketState::Closed => "CLOSED",
            SocketState::CloseWait => "CLOSE_WAIT",
            SocketState::LastAck => "LAST_ACK",
            SocketState::Listen => "LISTEN",
            SocketState::Closing => "CLOSING",
            SocketState::Unconnected => "UNCONNECTED",
            SocketState::Connected => "CONNECTED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SocketState;

    #[test]
    fn every_state_is_listed_once_and_reads_back_by_its_name() {
        crate::decode::assert_every_value_listed_once(
            &SocketState::ALL,
            |state| match state {
                SocketState::Established => 0,
                SocketState::SynSent => 1,
                SocketState::SynRecv => 2,
                SocketState::FinWait1 => 3,
                SocketState::FinWait2 => 4,
                SocketState::TimeWait => 5,
                SocketState::Closed => 6,
                SocketState::CloseWait => 7,
                SocketState::LastAck => 8,
                SocketState::Listen => 9,
                SocketState::Closing => 10,
                SocketState::Unconnected => 11,
                SocketState::Connected => 12,
            },
            SocketState::name,
        );
    }
}
