//! The kernel's own view of a socket: its TCP state and its queues, asked of the kernel.
//!
//! `getsockopt(TCP_INFO)`, the `SIOCINQ` / `SIOCOUTQ` ioctls and `poll` for Linux's
//! `POLLRDHUP` have no safe wrapper in socket2 or nix, so this module calls libc directly.
//! Each call passes a descriptor that the caller keeps open for the call's duration and a
//! buffer of exactly the size it declares.
//!
//! Connections no descriptor reaches any more (`TIME_WAIT`, a closed socket's `FIN_WAIT`) and
//! the sockets of other programs are asked of the kernel over sock_diag netlink, one
//! connection by its addresses or the listeners alone, as `ss` does; `/proc/net/tcp` is only
//! the fallback, since reading it walks the kernel's whole connection table.

use std::collections::HashMap;
use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

use shared::{Family, SockType, SocketState, SocketView};
use socket2::Socket;

/// What the kernel reports about one socket right now.
pub(crate) fn view(
    endpoint: &str,
    socket: &Socket,
    family: Family,
    sock_type: SockType,
) -> SocketView {
    let fd = socket.as_raw_fd();
    let is_tcp = family != Family::Unix && sock_type == SockType::Stream;
    let mut view = SocketView {
        endpoint: endpoint.to_owned(),
        state: SocketState::Unconnected,
        recv_queue: None,
        send_queue: None,
        accept_queue: None,
        backlog: None,
        lingering: false,
        peer_closed: false,
    };
    if is_tcp {
        let Ok(info) = tcp_info(fd) else {
            return view;
        };
        view.state = tcp_state(info.tcpi_state);
        if view.state == SocketState::Listen {
            // For a listener, Linux reports the accept queue's length in `tcpi_unacked` and
            // its limit (the backlog) in `tcpi_sacked` (see `tcp_get_info`).
            view.accept_queue = Some(info.tcpi_unacked);
            view.backlog = Some(info.tcpi_sacked);
            return view;
        }
    } else if socket.is_listener().unwrap_or(false) {
        view.state = SocketState::Listen;
        return view;
    } else if socket.peer_addr().is_ok() {
        view.state = SocketState::Connected;
        // A Unix stream socket stays connected after its peer closes (the kernel keeps the
        // peer), where TCP moves to CLOSE_WAIT; what changes is that the kernel shuts this
        // socket's receiving side, which `poll` reports.
        view.peer_closed = sock_type == SockType::Stream && receiving_shut(fd);
    }
    view.recv_queue = queue_length(fd, libc::FIONREAD).ok();
    view.send_queue = queue_length(fd, libc::TIOCOUTQ).ok();
    view
}

/// Whether the kernel has shut the socket's receiving side (`POLLRDHUP`): the peer closed,
/// or shut down its sending side. `poll` with a timeout of zero only asks; it does not wait.
#[allow(unsafe_code)] // nix's `PollFd` cannot carry POLLRDHUP, a Linux flag it does not name.
fn receiving_shut(fd: RawFd) -> bool {
    let mut polled = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one live `pollfd`, and the count says one. The descriptor is the caller's open
    // socket; poll only reads its state.
    let ready = unsafe { libc::poll(&raw mut polled, 1, 0) };
    ready == 1 && polled.revents & libc::POLLRDHUP != 0
}

/// The TCP states of `include/net/tcp_states.h`.
fn tcp_state(state: u8) -> SocketState {
    match state {
        1 => SocketState::Established,
        2 => SocketState::SynSent,
        3 | 12 => SocketState::SynRecv,
        4 => SocketState::FinWait1,
        5 => SocketState::FinWait2,
        6 => SocketState::TimeWait,
        8 => SocketState::CloseWait,
        9 => SocketState::LastAck,
        10 => SocketState::Listen,
        11 => SocketState::Closing,
        _ => SocketState::Closed,
    }
}

/// `getsockopt(fd, IPPROTO_TCP, TCP_INFO)`.
#[allow(unsafe_code)] // No safe wrapper for TCP_INFO exists in socket2 or nix.
fn tcp_info(fd: RawFd) -> io::Result<libc::tcp_info> {
    // SAFETY: `tcp_info` is a plain C struct of integers, for which all zeroes is a value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(size_of::<libc::tcp_info>())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `info` is a live, writable `tcp_info` and `len` is its exact size; the kernel
    // writes at most `len` bytes and stores the length it wrote in `len`. The descriptor is
    // the caller's open socket.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &raw mut len,
        )
    };
    if result == 0 {
        Ok(info)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The `SIOCINQ` (`FIONREAD`) or `SIOCOUTQ` (`TIOCOUTQ`) ioctl: a queue's length in bytes.
#[allow(unsafe_code)] // No safe wrapper for SIOCOUTQ exists in socket2 or nix.
fn queue_length(fd: RawFd, request: libc::Ioctl) -> io::Result<u32> {
    let mut length: libc::c_int = 0;
    // SAFETY: both requests write one `int` through the pointer, which points at `length`.
    // The descriptor is the caller's open socket.
    let result = unsafe { libc::ioctl(fd, request, &raw mut length) };
    if result == 0 {
        Ok(u32::try_from(length).unwrap_or(0))
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A connection the kernel still holds after its socket let go of it: after `close`, or when
/// the connection moved to `TIME_WAIT`, Linux keeps it in a small socket of its own that no
/// descriptor reaches. `ss` and `netstat` find such connections in the kernel's connection
/// table by their address pair, and so does this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AddressPair {
    pub(crate) local: SocketAddr,
    pub(crate) peer: SocketAddr,
}

/// A row of the kernel's TCP connection table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TableEntry {
    pub(crate) state: SocketState,
    pub(crate) send_queue: u32,
    pub(crate) recv_queue: u32,
}

/// Looks connections up in the kernel's connection table by their address pairs, over one
/// sock_diag netlink socket that a lab keeps: every event of a run asks again while a closed
/// connection lingers (a minute, in `TIME_WAIT`), and opening the socket for each event cost
/// as much as the lookups. It is opened at the first lookup, and again after a failed one.
pub(crate) struct ConnectionTable {
    diag: Option<diag::Diag>,
    /// The network whose connections these are: sock_diag answers for the network its
    /// socket was opened in.
    network: crate::network::RunNetwork,
}

impl std::fmt::Debug for ConnectionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionTable")
            .field("open", &self.diag.is_some())
            .finish()
    }
}

impl ConnectionTable {
    /// A table of `network`'s connections; nothing is opened until the first lookup.
    pub(crate) fn new(network: crate::network::RunNetwork) -> Self {
        ConnectionTable {
            diag: None,
            network,
        }
    }

    /// The kernel's entries for the given address pairs; pairs it holds no connection for are
    /// left out.
    pub(crate) fn entries(&mut self, wanted: &[AddressPair]) -> HashMap<AddressPair, TableEntry> {
        if self.diag.is_none() {
            self.diag = diag::Diag::open_in(&self.network).ok();
        }
        if let Some(diag) = &mut self.diag {
            let asked = wanted.iter().try_fold(HashMap::new(), |mut found, &pair| {
                if let Some(row) = diag.connection(pair)? {
                    found.insert(pair, row.entry);
                }
                Ok::<_, io::Error>(found)
            });
            match asked {
                Ok(found) => return found,
                // A request that failed may have left an answer unread: the next lookup
                // starts on a new socket.
                Err(_) => self.diag = None,
            }
        }
        // Without sock_diag (a kernel built without it), the text tables have the rows too;
        // a network of Socket Lab's own has none but sock_diag's.
        if self.network.is_own() {
            return HashMap::new();
        }
        [true, false]
            .into_iter()
            .filter(|&ipv4| wanted.iter().any(|pair| pair.local.is_ipv4() == ipv4))
            .flat_map(table_rows)
            .filter(|row| wanted.contains(&row.pair))
            .map(|row| (row.pair, row.entry))
            .collect()
    }
}

/// Whether a TCP socket of this machine listens on `port` (at any address).
pub(crate) fn listening_on(port: u16) -> bool {
    [true, false].into_iter().any(|ipv4| {
        listeners(ipv4)
            .iter()
            .any(|row| row.pair.local.port() == port)
    })
}

/// The process that holds the socket at the other end of a connection, found as `ss -p`
/// finds it: the socket's inode in the kernel's connection table, then the process with a
/// descriptor for that inode. `None` when the other end is this process (a socket of Socket
/// Lab's own), or the kernel does not let us see it.
pub(crate) fn process_at_other_end(ours: AddressPair) -> Option<shared::PeerProcess> {
    let theirs = AddressPair {
        local: ours.peer,
        peer: ours.local,
    };
    let inode = match diag::Diag::open().and_then(|mut diag| diag.connection(theirs)) {
        Ok(row) => row?.inode,
        Err(_) => {
            table_rows(theirs.local.is_ipv4())
                .into_iter()
                .find(|row| row.pair == theirs)?
                .inode
        }
    };
    process_holding(inode)
}

/// The process that listens on a TCP port of this machine, found the same way: what a
/// client is about to connect to.
pub(crate) fn process_listening_on(address: SocketAddr) -> Option<shared::PeerProcess> {
    let inode = listeners(address.is_ipv4())
        .into_iter()
        .find(|row| {
            row.pair.local.port() == address.port()
                && (row.pair.local.ip() == address.ip() || row.pair.local.ip().is_unspecified())
        })?
        .inode;
    process_holding(inode)
}

/// One TCP socket of the kernel's table.
#[derive(Clone, Copy, Debug)]
struct Row {
    pair: AddressPair,
    entry: TableEntry,
    inode: u32,
}

/// The listening TCP sockets of one family.
fn listeners(ipv4: bool) -> Vec<Row> {
    diag::Diag::open()
        .and_then(|mut diag| diag.listeners(ipv4))
        .unwrap_or_else(|_| {
            table_rows(ipv4)
                .into_iter()
                .filter(|row| row.entry.state == SocketState::Listen)
                .collect()
        })
}

/// The rows of the IPv4 or IPv6 connection table as `/proc/net/tcp` prints them. Reading it
/// walks the kernel's whole connection hash table, which takes milliseconds on a machine with
/// much memory, so it is only the fallback for a kernel without sock_diag.
fn table_rows(ipv4: bool) -> Vec<Row> {
    let file = if ipv4 {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let Ok(table) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let (pair, entry) = parse_row(row)?;
            let inode = row.split_whitespace().nth(9)?.parse().ok()?;
            Some(Row { pair, entry, inode })
        })
        .collect()
}

/// Asks the kernel over sock_diag netlink (what `ss` uses): for one connection by its exact
/// addresses, which the kernel finds in its hash table at once, or for the listeners alone,
/// which it lists without walking the connections.
mod diag {
    use std::io;
    use std::net::SocketAddr;

    use netlink_packet_core::{
        NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    };
    use netlink_packet_sock_diag::SockDiagMessage;
    use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
    use netlink_packet_sock_diag::inet::{
        ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags,
    };
    use netlink_sys::protocols::NETLINK_SOCK_DIAG;

    use super::{AddressPair, Row, TableEntry, tcp_state};

    /// A netlink socket for sock_diag requests, asked one request after another.
    pub(super) struct Diag {
        socket: netlink_sys::Socket,
        buffer: Vec<u8>,
    }

    impl Diag {
        pub(super) fn open() -> io::Result<Self> {
            Self::ready(netlink_sys::Socket::new(NETLINK_SOCK_DIAG)?)
        }

        /// A sock_diag socket that asks about `network`'s sockets.
        #[allow(unsafe_code)] // netlink-sys takes a descriptor only as a raw one.
        pub(super) fn open_in(network: &crate::network::RunNetwork) -> io::Result<Self> {
            let fd = network.socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_SOCK_DIAG as libc::c_int,
            )?;
            // SAFETY: the descriptor is a netlink socket just opened, and ours alone.
            let socket = unsafe {
                use std::os::fd::{FromRawFd, IntoRawFd};
                netlink_sys::Socket::from_raw_fd(fd.into_raw_fd())
            };
            Self::ready(socket)
        }

        fn ready(mut socket: netlink_sys::Socket) -> io::Result<Self> {
            socket.bind_auto()?;
            socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
            Ok(Diag {
                socket,
                buffer: vec![0; 32 * 1024],
            })
        }

        /// The connection with exactly these addresses, in any state (`TIME_WAIT` included).
        pub(super) fn connection(&mut self, pair: AddressPair) -> io::Result<Option<Row>> {
            let socket_id = SocketId {
                source_port: pair.local.port(),
                destination_port: pair.peer.port(),
                source_address: pair.local.ip(),
                destination_address: pair.peer.ip(),
                interface_id: 0,
                // INET_DIAG_NOCOOKIE: find the socket by its addresses, not a cookie.
                cookie: [0xff; 8],
            };
            let rows = self.ask(family(pair.local), StateFlags::all(), socket_id, false)?;
            // The kernel looks the addresses up as it does for an arriving packet: when it
            // holds no such connection (a reset one, say), it answers with the socket that
            // listens on the local port, which is not this connection.
            Ok(rows.into_iter().find(|row| row.pair == pair))
        }

        /// Every listening socket of one family.
        pub(super) fn listeners(&mut self, ipv4: bool) -> io::Result<Vec<Row>> {
            let (family, socket_id) = if ipv4 {
                (AF_INET, SocketId::new_v4())
            } else {
                (AF_INET6, SocketId::new_v6())
            };
            self.ask(family, StateFlags::LISTEN, socket_id, true)
        }

        fn ask(
            &mut self,
            family: u8,
            states: StateFlags,
            socket_id: SocketId,
            dump: bool,
        ) -> io::Result<Vec<Row>> {
            let mut header = NetlinkHeader::default();
            header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
            let mut request = NetlinkMessage::new(
                header,
                SockDiagMessage::InetRequest(InetRequest {
                    family,
                    protocol: IPPROTO_TCP,
                    extensions: ExtensionFlags::empty(),
                    states,
                    socket_id,
                })
                .into(),
            );
            request.finalize();
            let mut bytes = vec![0; request.buffer_len()];
            request.serialize(&mut bytes);
            self.socket.send(&bytes, 0)?;

            let mut rows = Vec::new();
            let buffer = &mut self.buffer;
            loop {
                let size = self.socket.recv(&mut &mut buffer[..], 0)?;
                if size == 0 {
                    return Ok(rows);
                }
                let mut offset = 0;
                while offset < size {
                    let message =
                        NetlinkMessage::<SockDiagMessage>::deserialize(&buffer[offset..size])
                            .map_err(|error| {
                                io::Error::new(io::ErrorKind::InvalidData, error.to_string())
                            })?;
                    let length = message.header.length as usize;
                    match message.payload {
                        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                            rows.push(row(&response));
                            if !dump {
                                return Ok(rows);
                            }
                        }
                        NetlinkPayload::Done(_) => return Ok(rows),
                        // An exact lookup of a connection the kernel does not hold is ENOENT;
                        // any other error means sock_diag cannot answer.
                        NetlinkPayload::Error(error) => {
                            return match error.code.map(|code| -code.get()) {
                                None | Some(libc::ENOENT) => Ok(rows),
                                Some(code) => Err(io::Error::from_raw_os_error(code)),
                            };
                        }
                        _ => {}
                    }
                    if length == 0 {
                        break;
                    }
                    offset += length;
                }
            }
        }
    }

    fn family(address: SocketAddr) -> u8 {
        if address.is_ipv4() { AF_INET } else { AF_INET6 }
    }

    fn row(response: &InetResponse) -> Row {
        let header = &response.header;
        let id = &header.socket_id;
        Row {
            pair: AddressPair {
                local: SocketAddr::new(id.source_address, id.source_port),
                peer: SocketAddr::new(id.destination_address, id.destination_port),
            },
            entry: TableEntry {
                state: tcp_state(header.state),
                send_queue: header.send_queue,
                recv_queue: header.recv_queue,
            },
            inode: header.inode,
        }
    }
}

/// The process (other than this one) with a descriptor for the socket with this inode. A
/// socket that no program holds any more has inode 0.
fn process_holding(inode: u32) -> Option<shared::PeerProcess> {
    if inode == 0 {
        return None;
    }
    let wanted = format!("socket:[{inode}]");
    let holds = |fd_dir: &std::path::Path| {
        std::fs::read_dir(fd_dir).is_ok_and(|descriptors| {
            descriptors.flatten().any(|descriptor| {
                std::fs::read_link(descriptor.path())
                    .is_ok_and(|target| target.as_os_str() == wanted.as_str())
            })
        })
    };
    // Most often the other end is Socket Lab's own: look there first, it is quick.
    if holds(std::path::Path::new("/proc/self/fd")) {
        return None;
    }
    let own = std::process::id();
    for process in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        if holds(&process.path().join("fd")) {
            let name = std::fs::read_to_string(process.path().join("comm")).ok()?;
            return Some(shared::PeerProcess {
                pid,
                name: name.trim().to_owned(),
            });
        }
    }
    None
}

/// Parses `sl local rem st tx:rx ...`, where addresses are hexadecimal in the kernel's byte
/// order (`0100007F:3039` is 127.0.0.1:12345).
fn parse_row(row: &str) -> Option<(AddressPair, TableEntry)> {
    let mut fields = row.split_whitespace().skip(1);
    let local = parse_address(fields.next()?)?;
    let peer = parse_address(fields.next()?)?;
    let state = tcp_state(u8::from_str_radix(fields.next()?, 16).ok()?);
    let (tx, rx) = fields.next()?.split_once(':')?;
    Some((
        AddressPair { local, peer },
        TableEntry {
            state,
            send_queue: u32::from_str_radix(tx, 16).ok()?,
            recv_queue: u32::from_str_radix(rx, 16).ok()?,
        },
    ))
}

fn parse_address(text: &str) -> Option<SocketAddr> {
    let (host, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    // Each 32-bit word is printed as the number it is in memory, so its bytes are reversed
    // on a little-endian machine, and kept on a big-endian one.
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(|n| n.to_ne_bytes());
    match host.len() {
        8 => Some(SocketAddr::from((Ipv4Addr::from(word(host)?), port))),
        32 => {
            let mut octets = [0; 16];
            for (index, chunk) in octets.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(host.get(index * 8..index * 8 + 8)?)?);
            }
            Some(SocketAddr::from((Ipv6Addr::from(octets), port)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn connection_table_rows_parse_as_the_kernel_prints_them() {
        let row = "   1: C6A7747F:3039 0100007F:DCFA 06 00000000:00000002 03:00000EF0 00000000     0        0 0 3 0";
        let (pair, entry) = parse_row(row).unwrap();
        assert_eq!(pair.local, "127.116.167.198:12345".parse().unwrap());
        assert_eq!(pair.peer, "127.0.0.1:56570".parse().unwrap());
        assert_eq!(entry.state, SocketState::TimeWait);
        assert_eq!(entry.recv_queue, 2);
        let row6 = "   0: 00000000000000000000000001000000:9C40 00000000000000000000000001000000:C5D6 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0";
        let (pair, entry) = parse_row(row6).unwrap();
        assert_eq!(pair.local, "[::1]:40000".parse().unwrap());
        assert_eq!(entry.state, SocketState::Established);
        assert!(parse_row("  sl  local_address rem_address   st").is_none());
    }
}
