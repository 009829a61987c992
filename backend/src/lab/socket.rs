//! [`LabSocket`]: one real kernel socket, with Python's blocking behaviour.
//!
//! Every socket is non-blocking in the kernel and registered with tokio's reactor. A call that
//! would block in Python is performed the way CPython itself performs a call on a socket with
//! a timeout: try the system call, and while the kernel answers `EAGAIN`, wait until the
//! socket is ready and try again. The kernel's answer is the one reported; only the waiting is
//! done by the reactor instead of a sleeping thread, so that a thousand waiting calls cost no
//! thread each and a session can be cancelled at any point.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};

use shared::{Family, SockAddr, SockType};
use socket2::{Domain, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::addr;

/// The errno of a non-blocking `connect` that has started its handshake.
const EINPROGRESS: i32 = nix::errno::Errno::EINPROGRESS as i32;

/// A kernel socket, owned by one endpoint of a [`Lab`](super::Lab).
///
/// The socket is registered with the reactor only when a call first has to wait, not when it
/// is created. A new, unconnected TCP socket reports EPOLLHUP when it is registered, tokio
/// keeps "closed" readiness for good, and a socket that later listens would then spin in
/// `accept` on `EAGAIN`. By the time a call waits, the socket is listening, connecting or
/// connected, and what epoll reports is true of it.
#[derive(Debug)]
pub(crate) struct LabSocket {
    // Declared before `socket`, so it is dropped (deregistered) before the socket closes.
    readiness: Mutex<Option<Arc<AsyncFd<Descriptor>>>>,
    socket: Socket,
    family: Family,
    sock_type: SockType,
}

/// A borrowed descriptor for the reactor; the [`LabSocket`] owns the socket itself.
#[derive(Debug)]
struct Descriptor(RawFd);

impl AsRawFd for Descriptor {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl LabSocket {
    /// `socket(family, type)`.
    pub(crate) fn open(family: Family, sock_type: SockType) -> io::Result<Self> {
        let domain = match family {
            Family::Inet => Domain::IPV4,
            Family::Inet6 => Domain::IPV6,
            Family::Unix => Domain::UNIX,
        };
        let ty = match sock_type {
            SockType::Stream => Type::STREAM,
            SockType::Dgram => Type::DGRAM,
        };
        Self::wrap(Socket::new(domain, ty, None)?, family, sock_type)
    }

    fn wrap(socket: Socket, family: Family, sock_type: SockType) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(LabSocket {
            readiness: Mutex::new(None),
            socket,
            family,
            sock_type,
        })
    }

    /// The socket's registration with the reactor, made on first use.
    fn readiness(&self) -> io::Result<Arc<AsyncFd<Descriptor>>> {
        let mut slot = self
            .readiness
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(registered) = slot.as_ref() {
            return Ok(Arc::clone(registered));
        }
        // SAFETY: `register` needs the descriptor to stay open and the same for as long as
        // the `AsyncFd` lives. The descriptor belongs to `self.socket`; the `AsyncFd` lives in
        // `self.readiness` (dropped before `self.socket`, by field order) and in the `Arc`
        // clones that calls on `self` hold while they borrow `self`; `close` takes the
        // registration out and drops it before it closes the socket.
        #[allow(unsafe_code)] // tokio 1.54 deprecated the safe `AsyncFd::new` for this.
        let registered =
            Arc::new(unsafe { AsyncFd::register(Descriptor(self.socket.as_raw_fd()))? });
        *slot = Some(Arc::clone(&registered));
        Ok(registered)
    }

    /// The socket's file descriptor, as the kernel numbered it.
    pub(crate) fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// `getsockname()`; `None` where the kernel reports no name.
    pub(crate) fn local_addr(&self) -> Option<SockAddr> {
        addr::from_socket2(&self.socket.local_addr().ok()?)
    }

    /// `getpeername()`; `None` while the socket is not connected.
    pub(crate) fn peer_addr(&self) -> Option<SockAddr> {
        addr::from_socket2(&self.socket.peer_addr().ok()?)
    }

    /// `bind(address)`.
    pub(crate) fn bind(&self, address: &SockAddr) -> io::Result<()> {
        self.socket.bind(&addr::to_socket2(address)?)
    }

    /// `listen(backlog)`.
    pub(crate) fn listen(&self, backlog: i32) -> io::Result<()> {
        self.socket.listen(backlog)
    }

    /// `accept()`: waits for a connection in the accept queue.
    pub(crate) async fn accept(&self) -> io::Result<(LabSocket, Option<SockAddr>)> {
        let (socket, peer) = self.when_readable(|socket| socket.accept()).await?;
        let conn = LabSocket::wrap(socket, self.family, self.sock_type)?;
        Ok((conn, addr::from_socket2(&peer)))
    }

    /// `connect(address)`: starts the handshake and waits for its end. The kernel reports a
    /// failed handshake (such as `ECONNREFUSED`) through `SO_ERROR`, which is what is returned.
    pub(crate) async fn connect(&self, address: &SockAddr) -> io::Result<()> {
        match self.socket.connect(&addr::to_socket2(address)?) {
            Ok(()) => return Ok(()),
            Err(error) if error.raw_os_error() == Some(EINPROGRESS) => {}
            Err(error) => return Err(error),
        }
        let readiness = self.readiness()?;
        let mut guard = readiness.writable().await?;
        guard.clear_ready();
        match self.socket.take_error()? {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// `send(data)`: waits until the send queue has room, then returns how much the kernel
    /// took. (A broken pipe is `EPIPE`, not a signal: Rust programs ignore SIGPIPE, as Python
    /// does.)
    pub(crate) async fn send(&self, data: &[u8]) -> io::Result<usize> {
        let readiness = self.readiness()?;
        loop {
            let mut guard = readiness.writable().await?;
            if let Ok(result) = guard.try_io(|_| self.socket.send(data)) {
                return result;
            }
        }
    }

    /// `recv(bufsize)`: waits until bytes arrive or the peer closes, then takes at most
    /// `bufsize` bytes. Empty means end of stream.
    pub(crate) async fn recv(&self, bufsize: usize) -> io::Result<Vec<u8>> {
        let mut buffer = vec![0; bufsize];
        let count = self
            .when_readable(|mut socket| socket.read(&mut buffer))
            .await?;
        buffer.truncate(count);
        Ok(buffer)
    }

    /// `close()`, reporting what the kernel's `close` returned.
    pub(crate) fn close(self) -> io::Result<()> {
        let LabSocket {
            readiness, socket, ..
        } = self;
        drop(readiness);
        nix::unistd::close(socket).map_err(io::Error::from)
    }

    /// Runs a non-blocking operation until the kernel has an answer other than `EAGAIN`.
    async fn when_readable<R>(
        &self,
        mut operation: impl FnMut(&Socket) -> io::Result<R>,
    ) -> io::Result<R> {
        let readiness = self.readiness()?;
        loop {
            let mut guard = readiness.readable().await?;
            if let Ok(result) = guard.try_io(|_| operation(&self.socket)) {
                return result;
            }
        }
    }
}
