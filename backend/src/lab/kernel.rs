//! The kernel's own view of a socket: its TCP state and its queues, asked of the kernel.
//!
//! `getsockopt(TCP_INFO)` and the `SIOCINQ` / `SIOCOUTQ` ioctls have no safe wrapper in
//! socket2 or nix, so this module calls libc directly. Each call passes a descriptor that the
//! caller keeps open for the call's duration and a buffer of exactly the size it declares.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, RawFd};

use shared::{Family, SockType, SocketState, SocketView};
use socket2::Socket;

/// What the kernel reports about one socket right now.
pub(crate) fn view(endpoint: &str, socket: &Socket, family: Family, sock_type: SockType) -> SocketView {
    let fd = socket.as_raw_fd();
    let is_tcp = family != Family::Unix && sock_type == SockType::Stream;
    let mut view = SocketView {
        endpoint: endpoint.to_owned(),
        state: SocketState::Unconnected,
        recv_queue: None,
        send_queue: None,
        accept_queue: None,
        backlog: None,
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
    }
    view.recv_queue = queue_length(fd, libc::FIONREAD).ok();
    view.send_queue = queue_length(fd, libc::TIOCOUTQ).ok();
    view
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
