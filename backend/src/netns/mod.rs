//! Socket Lab's own networks: Linux network namespaces, each with a loopback of its own,
//! where a session's IP sockets live so that their packets can be captured (see
//! `capture`), unprivileged.
//!
//! An ordinary user may make a user namespace and, inside it, network namespaces, and open
//! an `AF_PACKET` socket there; but a threaded process may not enter a new user namespace,
//! and the backend is threaded. So a **broker**, a child forked at the first need that keeps
//! to one thread, enters a user namespace of its own once and then, on request, makes a
//! network namespace (bringing its `lo` up) or opens a socket in one, and hands each back
//! over a `SOCK_SEQPACKET` pair with `SCM_RIGHTS`. A socket stays in the namespace it was
//! opened in wherever its descriptor goes, so the backend binds, connects and reads it as
//! any other; an accepted connection is in its listener's namespace. The broker keeps no
//! state: a namespace lives while the backend holds its descriptor or a socket in it, and
//! the broker ends when the backend closes the channel (or exits).
//!
//! Where the system forbids unprivileged user namespaces (Ubuntu 24.04 by default, a
//! container without them), [`network`] says why, and sessions use the machine's network as
//! before, with packets off.

// The broker is a forked child of a threaded process: it may only make raw system calls on
// stack buffers, which is what unsafe code there is for.
#[allow(unsafe_code)]
mod broker;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};

/// The fixed-size messages of the channel between the backend and the broker.
mod wire {
    /// The operations.
    pub(super) mod op {
        /// The broker's first message: whether it entered its user namespace.
        pub(crate) const HELLO: u32 = 0;
        /// Make a network namespace; the reply carries it and its packet socket.
        pub(crate) const NEW_NETWORK: u32 = 1;
        /// Open a socket in the namespace sent with the request.
        pub(crate) const SOCKET: u32 = 2;
    }

    /// A request: the operation and, for sockets, `socket(2)`'s arguments and how many.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub(super) struct Request {
        pub(super) op: u32,
        pub(super) domain: i32,
        pub(super) kind: i32,
        pub(super) protocol: i32,
        pub(super) count: u32,
    }

    /// The most sockets one reply carries.
    pub(super) const MAX_BATCH: u32 = 8;

    /// A reply: 0 or the errno of the step that failed, and for a new network whose packet
    /// socket could not be opened, that socket's errno.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub(super) struct Reply {
        pub(super) errno: i32,
        pub(super) op: u32,
        pub(super) capture_errno: i32,
    }

    impl Reply {
        pub(super) const fn ok() -> Self {
            Reply {
                errno: 0,
                op: 0,
                capture_errno: 0,
            }
        }

        pub(super) const fn failed(errno: i32, op: u32) -> Self {
            Reply {
                errno,
                op,
                capture_errno: 0,
            }
        }

        pub(super) const fn failed_capture(errno: i32) -> Self {
            Reply {
                errno: 0,
                op: 0,
                capture_errno: errno,
            }
        }
    }
}

use wire::{Reply, Request, op};

/// The broker process and the channel to it.
#[derive(Debug)]
struct Broker {
    /// Requests are answered in order, one at a time.
    channel: Mutex<OwnedFd>,
}

/// The process's broker, started at the first call; `Err` says why there is none.
static BROKER: OnceLock<Result<Broker, String>> = OnceLock::new();

fn broker() -> Result<&'static Broker, &'static str> {
    BROKER
        .get_or_init(Broker::start)
        .as_ref()
        .map_err(String::as_str)
}

impl Broker {
    #[allow(unsafe_code)] // nix's fork is unsafe: a child of a threaded process is limited.
    fn start() -> Result<Broker, String> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|error| format!("no channel to a network broker: {error}"))?;
        // SAFETY: the child runs only `broker::serve`, which keeps to what is safe after a
        // fork of a threaded process (raw system calls on stack buffers), and never returns.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => unsafe { broker::serve(theirs.as_raw_fd()) },
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                drop(theirs);
                let broker = Broker {
                    channel: Mutex::new(ours),
                };
                let (hello, _) = broker.receive()?;
                if hello.errno != 0 {
                    // The broker has exited; reap it.
                    let _ = nix::sys::wait::waitpid(child, None);
                    return Err(format!(
                        "this system does not let an ordinary user make a user namespace ({}); \
                         see the README's \"Packets\" for how to allow it",
                        io::Error::from_raw_os_error(hello.errno)
                    ));
                }
                // The broker lives as long as this process; it ends at the channel's close,
                // when this process exits, and its parent then is init, which reaps it.
                tracing::debug!(pid = child.as_raw(), "network broker started");
                Ok(broker)
            }
            Err(error) => Err(format!("could not start a network broker: {error}")),
        }
    }

    /// Sends a request, with a descriptor if given, and waits for its reply and the
    /// descriptors that come with it.
    #[allow(unsafe_code)] // The request, plain old data, is sent as its bytes.
    fn ask(&self, request: Request, fd: Option<RawFd>) -> Result<(Reply, Vec<OwnedFd>), String> {
        let channel = crate::lab::lock(&self.channel);
        let bytes = unsafe {
            std::slice::from_raw_parts(
                std::ptr::from_ref(&request).cast::<u8>(),
                size_of::<Request>(),
            )
        };
        let iov = [io::IoSlice::new(bytes)];
        let fds: Vec<RawFd> = fd.into_iter().collect();
        let rights = [ControlMessage::ScmRights(&fds)];
        let control: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
        sendmsg::<()>(
            channel.as_raw_fd(),
            &iov,
            control,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|error| format!("the network broker is gone: {error}"))?;
        receive_on(channel.as_raw_fd())
    }

    fn receive(&self) -> Result<(Reply, Vec<OwnedFd>), String> {
        let channel = crate::lab::lock(&self.channel);
        receive_on(channel.as_raw_fd())
    }
}

#[allow(unsafe_code)] // The reply is read into as bytes; received descriptors are taken as owned.
fn receive_on(channel: RawFd) -> Result<(Reply, Vec<OwnedFd>), String> {
    let mut reply = Reply::default();
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(
            std::ptr::from_mut(&mut reply).cast::<u8>(),
            size_of::<Reply>(),
        )
    };
    let mut iov = [io::IoSliceMut::new(bytes)];
    let mut space = nix::cmsg_space!([RawFd; wire::MAX_BATCH as usize]);
    let message = loop {
        match recvmsg::<()>(
            channel,
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    }
    .map_err(|error| format!("the network broker is gone: {error}"))?;
    if message.bytes != size_of::<Reply>() {
        return Err("the network broker ended".to_owned());
    }
    let mut fds = Vec::new();
    for control in message.cmsgs().map_err(|error| error.to_string())? {
        if let ControlMessageOwned::ScmRights(received) = control {
            // SAFETY: descriptors received with SCM_RIGHTS are new and ours alone.
            fds.extend(
                received
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    Ok((reply, fds))
}

/// Brings `lo` up in this process's network namespace (a new one starts with it down).
pub(crate) fn loopback_up() -> io::Result<()> {
    #[allow(unsafe_code)] // The broker's own function: two ioctls on a socket of its own.
    // SAFETY: it makes raw system calls on stack buffers only, which any process may.
    unsafe { broker::loopback_up() }.map_err(io::Error::from_raw_os_error)
}

/// One of Socket Lab's own networks: a network namespace with its loopback up, and, where
/// the system allows it, a packet socket that sees every packet on that loopback.
#[derive(Debug)]
pub(crate) struct Network {
    namespace: OwnedFd,
    /// Sockets opened ahead, by `(domain, kind, protocol)`: a request to the broker wakes
    /// another process (8 to 60 µs a round trip, measured here, against 1.4 µs for a
    /// `socket()` of our own), so sockets come [`wire::MAX_BATCH`] a request, and a run's
    /// `socket()` takes one already made (a fresh socket, as the kernel makes every one:
    /// nothing is done to it until it is taken).
    spare: Mutex<Vec<(SocketKind, Vec<OwnedFd>)>>,
}

/// `socket(2)`'s domain, type and protocol.
pub(crate) type SocketKind = (libc::c_int, libc::c_int, libc::c_int);

/// A new network, and its packet socket or why it has none.
pub(crate) struct NewNetwork {
    /// The network.
    pub(crate) network: Network,
    /// Its packet socket (`AF_PACKET`, `SOCK_RAW`, every protocol), not yet bound.
    pub(crate) capture: Result<OwnedFd, String>,
}

/// The environment variable that, set to `off`, has Socket Lab make no networks of its own,
/// as where the system forbids them: runs use the machine's network (and capture there with
/// `CAP_NET_RAW`). For an administrator who wants that, and for the tests of that path.
pub(crate) const NETNS_ENV: &str = "SOCKET_LAB_NETNS";

/// Makes a network of Socket Lab's own, or says why it cannot.
pub(crate) fn network() -> Result<NewNetwork, String> {
    if std::env::var_os(NETNS_ENV).is_some_and(|value| value == "off") {
        return Err(format!("{NETNS_ENV}=off asks for the machine's network"));
    }
    let broker = broker().map_err(str::to_owned)?;
    let (reply, mut fds) = broker.ask(
        Request {
            op: op::NEW_NETWORK,
            ..Request::default()
        },
        None,
    )?;
    if reply.errno != 0 {
        return Err(format!(
            "could not make a network namespace: {}",
            io::Error::from_raw_os_error(reply.errno)
        ));
    }
    if fds.is_empty() {
        return Err("the network broker sent no namespace".to_owned());
    }
    let namespace = fds.remove(0);
    let capture = match (reply.capture_errno, fds.pop()) {
        (0, Some(socket)) => Ok(socket),
        (0, None) => Err("the network broker sent no packet socket".to_owned()),
        (errno, _) => Err(format!(
            "could not open a packet socket: {}",
            io::Error::from_raw_os_error(errno)
        )),
    };
    Ok(NewNetwork {
        network: Network {
            namespace,
            spare: Mutex::new(Vec::new()),
        },
        capture,
    })
}

impl Network {
    /// `socket(domain, kind, protocol)` in this network.
    pub(crate) fn socket(
        &self,
        domain: libc::c_int,
        kind: libc::c_int,
        protocol: libc::c_int,
    ) -> io::Result<OwnedFd> {
        let key = (domain, kind, protocol);
        let mut spare = crate::lab::lock(&self.spare);
        if let Some((_, sockets)) = spare.iter_mut().find(|(kind, _)| *kind == key)
            && let Some(socket) = sockets.pop()
        {
            return Ok(socket);
        }
        let mut fds = self.ask_for_sockets(key)?;
        let socket = fds
            .pop()
            .ok_or_else(|| io::Error::other("the network broker sent no socket"))?;
        match spare.iter_mut().find(|(kind, _)| *kind == key) {
            Some((_, sockets)) => sockets.extend(fds),
            None => spare.push((key, fds)),
        }
        Ok(socket)
    }

    /// Has sockets of each of `kinds` opened ahead, so that a run's first `socket()` of
    /// each takes one at once instead of asking the broker: for a network made ahead of its
    /// run, off the run's path.
    pub(crate) fn open_ahead(&self, kinds: &[SocketKind]) -> io::Result<()> {
        for &key in kinds {
            let fds = self.ask_for_sockets(key)?;
            let mut spare = crate::lab::lock(&self.spare);
            match spare.iter_mut().find(|(kind, _)| *kind == key) {
                Some((_, sockets)) => sockets.extend(fds),
                None => spare.push((key, fds)),
            }
        }
        Ok(())
    }

    /// A batch of new sockets of `key`'s kind in this network, from the broker.
    fn ask_for_sockets(&self, key: SocketKind) -> io::Result<Vec<OwnedFd>> {
        let (domain, kind, protocol) = key;
        let broker = broker().map_err(io::Error::other)?;
        let (reply, fds) = broker
            .ask(
                Request {
                    op: op::SOCKET,
                    domain,
                    kind,
                    protocol,
                    count: wire::MAX_BATCH,
                },
                Some(self.namespace.as_raw_fd()),
            )
            .map_err(io::Error::other)?;
        if reply.errno != 0 {
            return Err(io::Error::from_raw_os_error(reply.errno));
        }
        Ok(fds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs only where the system allows unprivileged user namespaces (this project's
    /// machines do); elsewhere it says so and checks that the reason is given.
    #[test]
    fn a_network_has_its_own_loopback_and_sockets_in_it() {
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let new = match network() {
            Ok(new) => new,
            Err(why) => {
                assert!(!why.is_empty());
                eprintln!("no networks here: {why}");
                return;
            }
        };
        assert!(new.capture.is_ok(), "{:?}", new.capture.err());
        let network = new.network;
        // A port bound in the network is free on the machine's loopback, and the other way.
        let inside = network
            .socket(libc::AF_INET, libc::SOCK_STREAM, 0)
            .expect("a socket in the network");
        let inside = socket2::Socket::from(inside);
        inside
            .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind inside");
        inside.listen(1).expect("listen inside");
        let port = inside
            .local_addr()
            .unwrap()
            .as_socket()
            .expect("an IP address")
            .port();
        let outside = std::net::TcpListener::bind(("127.0.0.1", port))
            .expect("the same port is free on the machine's loopback");
        drop(outside);
        let client =
            socket2::Socket::from(network.socket(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap());
        client
            .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
            .expect("a socket of the network reaches another of it");
        // A second network does not see the first's listener.
        let other = network_or_skip();
        let stranger =
            socket2::Socket::from(other.socket(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap());
        let refused = stranger.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into());
        assert_eq!(
            refused.err().and_then(|error| error.raw_os_error()),
            Some(libc::ECONNREFUSED)
        );
        // A bad request gets the kernel's error, and the broker goes on.
        let error = network.socket(12345, libc::SOCK_STREAM, 0).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EAFNOSUPPORT));
        assert!(network.socket(libc::AF_INET6, libc::SOCK_DGRAM, 0).is_ok());
    }

    /// Sockets opened ahead are the network's own, and a run's `socket()` takes them before
    /// it asks the broker for more.
    #[test]
    fn sockets_opened_ahead_are_taken_first() {
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let Ok(new) = network() else {
            return;
        };
        let network = new.network;
        let tcp = (libc::AF_INET, libc::SOCK_STREAM, 0);
        let spare = |network: &Network| {
            crate::lab::lock(&network.spare)
                .iter()
                .find(|(kind, _)| *kind == tcp)
                .map_or(0, |(_, sockets)| sockets.len())
        };
        assert_eq!(spare(&network), 0);
        network.open_ahead(&[tcp]).unwrap();
        assert_eq!(spare(&network), wire::MAX_BATCH as usize);
        let taken = socket2::Socket::from(network.socket(tcp.0, tcp.1, tcp.2).unwrap());
        assert_eq!(spare(&network), wire::MAX_BATCH as usize - 1);
        // It is a socket of the network: its loopback is the network's, with nothing on it.
        let refused = taken.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], 9)).into());
        assert_eq!(
            refused.err().and_then(|error| error.raw_os_error()),
            Some(libc::ECONNREFUSED)
        );
        // A kind the kernel does not know is its error, opened ahead or not.
        let error = network
            .open_ahead(&[(12345, libc::SOCK_STREAM, 0)])
            .unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EAFNOSUPPORT));
    }

    fn network_or_skip() -> Network {
        network().expect("a second network").network
    }
}
