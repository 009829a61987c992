//! [`LabSocket`]: one real kernel socket, with Python's blocking behaviour.
//!
//! Every socket is non-blocking in the kernel and registered with tokio's reactor. A call that
//! would block in Python is performed the way CPython itself performs a call on a socket with
//! a timeout: try the system call, and while the kernel answers `EAGAIN`, wait until the
//! socket is ready and try again. The kernel's answer is the one reported; only the waiting is
//! done by the reactor instead of a sleeping thread, so that a thousand waiting calls cost no
//! thread each and a session can be cancelled at any point.
//!
//! The program's own choice of blocking (`setblocking`, `settimeout`) is kept here, as CPython
//! keeps it in the socket object: a non-blocking socket reports the kernel's `EAGAIN` as it
//! is, and a socket with a timeout stops waiting when it runs out, as Python's does.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::socket::{MsgFlags, SockaddrStorage, UnixAddr, recvmsg};
use shared::{Family, SockAddr, SockOption, SockType, SocketView};
use socket2::{Domain, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio::time::Instant;

use super::addr;
use super::kernel::{self, AddressPair};

/// How often a call asks the kernel again when the reactor cannot tell it when to.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The errno of a non-blocking `connect` that has started its handshake.
const EINPROGRESS: i32 = nix::errno::Errno::EINPROGRESS as i32;

/// How calls on a socket wait, as `setblocking` and `settimeout` set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Blocking {
    /// Wait for as long as it takes (Python's default, `settimeout(None)`).
    Wait,
    /// Never wait: report `EAGAIN` (`setblocking(False)`, `settimeout(0)`).
    Never,
    /// Wait at most this long, then raise `TimeoutError` (`settimeout(seconds)`).
    Timeout(Duration),
}

/// Why a call that waited stopped waiting without an answer from the kernel.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Interrupted {
    /// The socket's timeout ran out.
    #[error("timed out")]
    TimedOut,
    /// Another call closed the socket.
    #[error("the socket was closed while this call waited")]
    Closed,
}

/// What `recv` and `recvfrom` took from the kernel.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) data: Vec<u8>,
    pub(crate) from: Option<SockAddr>,
    /// The datagram's whole length, when it was longer than the buffer.
    pub(crate) truncated_from: Option<usize>,
}

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
    blocking: Mutex<Blocking>,
    /// Set when the program closes the socket while other calls wait on it.
    closing: watch::Sender<bool>,
    /// The TCP connection's address pair, once it had one, to find the connection in the
    /// kernel's table after the socket lets go of it.
    last_pair: Mutex<Option<AddressPair>>,
    /// Set once the program has shut down the socket's receiving side (`SHUT_RD`,
    /// `SHUT_RDWR`): the kernel's sign that a Unix stream's peer is done then says nothing
    /// of the peer.
    shut_reading: AtomicBool,
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
    /// An IP socket is opened in `network` (a Unix socket always on the machine: its names
    /// are files).
    pub(crate) fn open(
        family: Family,
        sock_type: SockType,
        network: &crate::network::RunNetwork,
    ) -> io::Result<Self> {
        let domain = match family {
            Family::Inet => Domain::IPV4,
            Family::Inet6 => Domain::IPV6,
            Family::Unix => Domain::UNIX,
        };
        let ty = match sock_type {
            SockType::Stream => Type::STREAM,
            SockType::Dgram => Type::DGRAM,
        };
        let socket = match family {
            Family::Unix => Socket::new(domain, ty, None)?,
            Family::Inet | Family::Inet6 => {
                Socket::from(network.ip_socket(domain.into(), ty.into())?)
            }
        };
        Self::wrap(socket, family, sock_type)
    }

    fn wrap(socket: Socket, family: Family, sock_type: SockType) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(LabSocket {
            readiness: Mutex::new(None),
            blocking: Mutex::new(Blocking::Wait),
            closing: watch::Sender::new(false),
            last_pair: Mutex::new(None),
            shut_reading: AtomicBool::new(false),
            socket,
            family,
            sock_type,
        })
    }

    /// The socket's registration with the reactor, made on first use.
    fn readiness(&self) -> io::Result<Arc<AsyncFd<Descriptor>>> {
        let mut slot = super::lock(&self.readiness);
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

    /// The socket's address family.
    pub(crate) fn family(&self) -> Family {
        self.family
    }

    /// The kernel's view of the socket now.
    pub(crate) fn view(&self, endpoint: &str) -> SocketView {
        let mut view = kernel::view(endpoint, &self.socket, self.family, self.sock_type);
        // The kernel shuts the receiving side for the program's own SHUT_RD as it does when
        // the peer closes; after the program's own, the page's shutdown() call tells it.
        if self.shut_reading.load(Ordering::Relaxed) {
            view.peer_closed = false;
        }
        view
    }

    /// Stream or datagram: with an IP family, whether the socket speaks TCP or UDP.
    pub(crate) fn sock_type(&self) -> SockType {
        self.sock_type
    }

    /// Whether this is a TCP socket.
    pub(crate) fn is_tcp(&self) -> bool {
        self.family != Family::Unix && self.sock_type == SockType::Stream
    }

    /// Notes the connection's address pair, if it is a TCP connection with both ends known.
    pub(crate) fn remember_pair(&self) {
        self.note_pair(
            self.socket.local_addr().ok().as_ref(),
            self.socket.peer_addr().ok().as_ref(),
        );
    }

    fn note_pair(&self, local: Option<&socket2::SockAddr>, peer: Option<&socket2::SockAddr>) {
        if self.is_tcp()
            && let (Some(local), Some(peer)) = (
                local.and_then(socket2::SockAddr::as_socket),
                peer.and_then(socket2::SockAddr::as_socket),
            )
        {
            *super::lock(&self.last_pair) = Some(AddressPair { local, peer });
        }
    }

    /// `getsockname()` and `getpeername()`, once each, noting the connection's address pair
    /// on the way (as [`remember_pair`](Self::remember_pair) does): what a call's result
    /// reports.
    pub(crate) fn names(&self) -> (Option<SockAddr>, Option<SockAddr>) {
        let (local, peer) = (self.socket.local_addr().ok(), self.socket.peer_addr().ok());
        self.note_pair(local.as_ref(), peer.as_ref());
        (
            local.as_ref().and_then(addr::from_socket2),
            peer.as_ref().and_then(addr::from_socket2),
        )
    }

    /// The connection's address pair, as last noted.
    pub(crate) fn last_pair(&self) -> Option<AddressPair> {
        *super::lock(&self.last_pair)
    }

    /// Forgets the address pair, once the kernel has forgotten the connection.
    pub(crate) fn forget_pair(&self) {
        *super::lock(&self.last_pair) = None;
    }

    /// `getsockname()`; `None` where the kernel reports no name.
    pub(crate) fn local_addr(&self) -> Option<SockAddr> {
        addr::from_socket2(&self.socket.local_addr().ok()?)
    }

    /// `getpeername()`; `None` while the socket is not connected.
    pub(crate) fn peer_addr(&self) -> Option<SockAddr> {
        addr::from_socket2(&self.socket.peer_addr().ok()?)
    }

    /// `getsockname()` or `getpeername()` with the kernel's error, such as `ENOTCONN`.
    pub(crate) fn name(&self, peer: bool) -> io::Result<SockAddr> {
        let name = if peer {
            self.socket.peer_addr()?
        } else {
            self.socket.local_addr()?
        };
        addr::from_socket2(&name)
            .ok_or_else(|| io::Error::from_raw_os_error(nix::errno::Errno::EAFNOSUPPORT as i32))
    }

    /// `bind(address)`.
    pub(crate) fn bind(&self, address: &socket2::SockAddr) -> io::Result<()> {
        self.socket.bind(address)
    }

    /// `listen(backlog)`.
    pub(crate) fn listen(&self, backlog: i32) -> io::Result<()> {
        self.socket.listen(backlog)
    }

    /// `setblocking` and `settimeout`.
    pub(crate) fn set_blocking(&self, blocking: Blocking) {
        *super::lock(&self.blocking) = blocking;
    }

    /// `setsockopt(level, option, value)`.
    pub(crate) fn set_option(&self, option: SockOption) -> io::Result<()> {
        let size = |bytes: u32| usize::try_from(bytes).unwrap_or(usize::MAX);
        match option {
            SockOption::ReuseAddr(on) => self.socket.set_reuse_address(on),
            SockOption::Linger(seconds) => self
                .socket
                .set_linger(seconds.map(|s| Duration::from_secs(u64::from(s)))),
            SockOption::NoDelay(on) => self.socket.set_tcp_nodelay(on),
            SockOption::RecvBuffer(bytes) => self.socket.set_recv_buffer_size(size(bytes)),
            SockOption::SendBuffer(bytes) => self.socket.set_send_buffer_size(size(bytes)),
        }
    }

    /// `shutdown(how)`.
    pub(crate) fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        self.socket.shutdown(how)?;
        if how != std::net::Shutdown::Write {
            self.shut_reading.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// `accept()`: waits for a connection in the accept queue. The new socket waits in its
    /// calls whatever the listener does, as Python's accepted sockets do.
    pub(crate) async fn accept(&self) -> io::Result<(LabSocket, Option<SockAddr>)> {
        let (socket, peer) = self.when_ready(Interest::READABLE, Socket::accept).await?;
        let conn = LabSocket::wrap(socket, self.family, self.sock_type)?;
        Ok((conn, addr::from_socket2(&peer)))
    }

    /// `connect(address)`: starts the handshake and waits for its end. The kernel reports a
    /// failed handshake (such as `ECONNREFUSED`) through `SO_ERROR`, which is what is returned.
    /// A non-blocking socket returns the kernel's `EINPROGRESS`, as Python raises it.
    pub(crate) async fn connect(&self, address: &socket2::SockAddr) -> io::Result<()> {
        match self.socket.connect(address) {
            Ok(()) => return Ok(()),
            Err(error)
                if error.raw_os_error() == Some(EINPROGRESS)
                    && self.blocking() != Blocking::Never => {}
            Err(error) => return Err(error),
        }
        self.when_ready(Interest::WRITABLE, |socket| {
            if let Some(error) = socket.take_error()? {
                return Err(error);
            }
            match socket.peer_addr() {
                Ok(_) => Ok(()),
                // Neither an error nor a peer: the handshake is still going on.
                Err(_) => Err(io::ErrorKind::WouldBlock.into()),
            }
        })
        .await
    }

    /// `send(data)`: waits until the send queue has room, then returns how much the kernel
    /// took. (A broken pipe is `EPIPE`, not a signal: Rust programs ignore SIGPIPE, as Python
    /// does.)
    pub(crate) async fn send(&self, data: &[u8]) -> io::Result<usize> {
        self.when_ready(Interest::WRITABLE, |socket| socket.send(data))
            .await
    }

    /// `sendall(data)`: sends until the kernel has taken every byte. (The timeout, if any,
    /// applies to each wait for room.)
    pub(crate) async fn send_all(&self, data: &[u8]) -> io::Result<()> {
        let mut sent = 0;
        while sent < data.len() {
            let rest = &data[sent..];
            sent += self
                .when_ready(Interest::WRITABLE, |socket| socket.send(rest))
                .await?;
        }
        Ok(())
    }

    /// `sendto(data, address)`.
    pub(crate) async fn send_to(
        &self,
        data: &[u8],
        address: &socket2::SockAddr,
    ) -> io::Result<usize> {
        self.when_ready(Interest::WRITABLE, |socket| socket.send_to(data, address))
            .await
    }

    /// `recv(bufsize)` and `recvfrom(bufsize)`: waits until bytes arrive or the peer closes,
    /// then takes at most `bufsize` bytes (empty means end of stream). From a datagram socket
    /// it takes one datagram, and asks the kernel (`MSG_TRUNC`) for its whole length, so that
    /// a datagram cut short by a small buffer is shown as such.
    pub(crate) async fn recv_from(&self, bufsize: usize) -> io::Result<Received> {
        let flags = match self.sock_type {
            SockType::Dgram => MsgFlags::MSG_TRUNC,
            // On a stream, MSG_TRUNC would throw the bytes away instead.
            SockType::Stream => MsgFlags::empty(),
        };
        let mut buffer = vec![0; bufsize];
        let fd = self.fd();
        let family = self.family;
        let (length, from) = self
            .when_ready(Interest::READABLE, |_| {
                let mut slices = [IoSliceMut::new(&mut buffer)];
                // nix's generic storage cannot learn a Unix address's length from `recvmsg`
                // (its `set_length` sees the length still unset and gives up), so Unix
                // sockets read into nix's own Unix address type.
                if family == Family::Unix {
                    let message = recvmsg::<UnixAddr>(fd, &mut slices, None, flags)?;
                    Ok((
                        message.bytes,
                        message.address.as_ref().and_then(addr::from_nix_unix),
                    ))
                } else {
                    let message = recvmsg::<SockaddrStorage>(fd, &mut slices, None, flags)?;
                    Ok((
                        message.bytes,
                        message.address.as_ref().and_then(addr::from_nix),
                    ))
                }
            })
            .await?;
        let truncated_from = (length > bufsize).then_some(length);
        buffer.truncate(length.min(bufsize));
        Ok(Received {
            data: buffer,
            from,
            truncated_from,
        })
    }

    /// Whether other calls hold this socket now (a call waiting on it).
    pub(crate) fn wake_waiting_calls(&self) {
        // Shutting both directions down makes the kernel wake every call waiting on the
        // socket, with its own answer (end of stream for `recv`, EINVAL for `accept`); the
        // flag stops any wait that the kernel's wake-up does not end.
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        self.closing.send_replace(true);
    }

    /// `close()`, reporting what the kernel's `close` returned.
    pub(crate) fn close(self) -> io::Result<()> {
        let LabSocket {
            readiness, socket, ..
        } = self;
        drop(readiness);
        nix::unistd::close(socket).map_err(io::Error::from)
    }

    fn blocking(&self) -> Blocking {
        *super::lock(&self.blocking)
    }

    /// Runs a non-blocking operation until the kernel has an answer other than `EAGAIN`, as
    /// the socket's blocking mode allows.
    async fn when_ready<R>(
        &self,
        interest: Interest,
        mut operation: impl FnMut(&Socket) -> io::Result<R>,
    ) -> io::Result<R> {
        // First ask at once: most calls are answered without waiting, and a socket that never
        // waits is never registered with the reactor.
        let first = operation(&self.socket);
        let deadline = match (&first, self.blocking()) {
            (Err(error), Blocking::Wait) if error.kind() == io::ErrorKind::WouldBlock => None,
            (Err(error), Blocking::Timeout(timeout))
                if error.kind() == io::ErrorKind::WouldBlock =>
            {
                Some(Instant::now() + timeout)
            }
            _ => return first,
        };
        let readiness = self.readiness()?;
        let mut closing = self.closing.subscribe();
        // Whether the reactor has stopped telling anything: see below.
        let mut polling = false;
        loop {
            let ready = async {
                let wait = async {
                    if polling {
                        tokio::time::sleep(POLL_INTERVAL).await;
                        None
                    } else {
                        Some(readiness.ready(interest).await)
                    }
                };
                match deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline, wait)
                        .await
                        .map_err(|_| io::Error::other(Interrupted::TimedOut)),
                    None => Ok(wait.await),
                }
            };
            let ready = tokio::select! {
                ready = ready => ready?,
                _ = closing.wait_for(|closing| *closing) => {
                    // The kernel has been told (shutdown) before the flag was set, so it
                    // has its answer now, unless the socket is of a kind it does not wake.
                    return match operation(&self.socket) {
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                            Err(io::Error::other(Interrupted::Closed))
                        }
                        answer => answer,
                    };
                }
            };
            let Some(guard) = ready else {
                match operation(&self.socket) {
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                    answer => return answer,
                }
            };
            let mut guard = guard?;
            // The reactor never forgets that a socket was hung up (EPOLLHUP); a socket that
            // reports it and still answers EAGAIN (a Unix listener that was shut down, a
            // socket that listened again after its connection ended) would make this loop
            // spin. Such a call asks the kernel again at intervals instead.
            let hung_up = guard.ready().is_read_closed() || guard.ready().is_write_closed();
            if let Ok(result) = guard.try_io(|_| operation(&self.socket)) {
                return result;
            }
            polling = hung_up;
        }
    }
}
