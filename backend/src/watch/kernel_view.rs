//! The kernel's view of a watched program's sockets: the same TCP state, queues and accept
//! queue the lab reads of its own sockets, read of the program's.
//!
//! The tracer takes a copy of the program's descriptor with `pidfd_getfd(2)` (Linux 5.6; a
//! tracer may take its tracee's descriptors), asks the kernel about it as the lab asks about
//! its own (`lab::kernel::view`), and closes the copy. The copy is the same open socket, so
//! what it reports is the program's socket, and closing the copy closes nothing of the
//! program's.

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};

use shared::{Family, SockAddr, SockType, SocketView};
use socket2::{Domain, Socket, Type};

/// The `pidfd`s of the watched processes, opened once each.
#[derive(Debug, Default)]
pub(crate) struct KernelViews {
    pidfds: HashMap<i32, OwnedFd>,
}

impl KernelViews {
    /// The kernel's view of socket `fd` of process `pid`, named `fd{N}`; `None` when the
    /// kernel does not let the tracer take a copy, or the descriptor is not an IP or Unix
    /// socket Socket Lab reads.
    pub(crate) fn view(&mut self, pid: i32, fd: i32) -> Option<SocketView> {
        let socket = self.copy(pid, fd)?;
        let family = match socket.domain().ok()? {
            Domain::IPV4 => Family::Inet,
            Domain::IPV6 => Family::Inet6,
            Domain::UNIX => Family::Unix,
            _ => return None,
        };
        let sock_type = match socket.r#type().ok()? {
            Type::STREAM => SockType::Stream,
            Type::DGRAM => SockType::Dgram,
            _ => return None,
        };
        Some(crate::lab::kernel::view(
            &format!("fd{fd}"),
            &socket,
            family,
            sock_type,
        ))
    }

    /// The local and peer addresses of socket `fd` of process `pid`, as `getsockname` and
    /// `getpeername` give them; `None` for what the kernel does not tell.
    pub(crate) fn addresses(&mut self, pid: i32, fd: i32) -> (Option<SockAddr>, Option<SockAddr>) {
        let Some(socket) = self.copy(pid, fd) else {
            return (None, None);
        };
        let address = |got: std::io::Result<socket2::SockAddr>| {
            got.ok()
                .and_then(|address| crate::lab::addr::from_socket2(&address))
        };
        (address(socket.local_addr()), address(socket.peer_addr()))
    }

    /// A copy of socket `fd` of process `pid`, through the process's pidfd.
    fn copy(&mut self, pid: i32, fd: i32) -> Option<Socket> {
        let pidfd = match self.pidfds.get(&pid) {
            Some(pidfd) => pidfd,
            None => {
                let opened = pidfd_open(pid)?;
                self.pidfds.entry(pid).or_insert(opened)
            }
        };
        Some(Socket::from(pidfd_getfd(pidfd, fd)?))
    }

    /// The process ended: its pidfd is closed.
    pub(crate) fn forget(&mut self, pid: i32) {
        self.pidfds.remove(&pid);
    }
}

/// `pidfd_open(pid, 0)`, which nix does not wrap.
#[allow(unsafe_code)] // A raw system call, and a descriptor the kernel just made.
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the kernel just returned this descriptor to us, and nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_getfd(pidfd, fd, 0)`: a copy of descriptor `fd` of the pidfd's process.
#[allow(unsafe_code)] // As for `pidfd_open`.
fn pidfd_getfd(pidfd: &OwnedFd, fd: i32) -> Option<OwnedFd> {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_getfd takes three integers (a descriptor of ours, the target's descriptor
    // number, flags) and returns a new descriptor or -1.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    let copy = i32::try_from(copy).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the kernel just returned this descriptor to us, and nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(copy) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_process_may_read_its_own_sockets_through_a_pidfd() {
        // The lab's property test counts this process's descriptors.
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let pid = std::process::id() as i32;
        let mut views = KernelViews::default();
        let view = views.view(pid, listener.as_raw_fd()).unwrap();
        assert_eq!(view.state, shared::SocketState::Listen);
        assert_eq!(view.endpoint, format!("fd{}", listener.as_raw_fd()));
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(views.view(pid, file.as_raw_fd()), None);
        // The copy was closed: the listener still listens, and nothing else was opened.
        assert!(std::net::TcpStream::connect(listener.local_addr().unwrap()).is_ok());
    }
}
