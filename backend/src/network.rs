//! [`RunNetwork`]: the network a lab's IP sockets are opened in. A session's own network
//! (a network namespace of Socket Lab's, see `netns`, whose packets `capture` reads), or the
//! machine's, with the reason its packets are not shown.
//!
//! Each scenario's run, from a WebSocket session or `backend trace`, has a network made for it
//! alone ([`RunNetwork::own_for_one_run`]), so it captures only its own packets, and its
//! programs can use the tutorial's own addresses (127.0.0.1, the machine's name, port 12345)
//! with no other run's sockets, or a last run's TIME_WAIT, in the way. Making one costs about
//! 0.5 to 1 ms, several times a whole seed exchange, so the process keeps two made ahead
//! for the runs to come (`network_pool.rs`). A session's sandbox keeps one network of the
//! session's for all its sockets. Unix sockets stay on the machine (their path names are
//! files; packets are an IP matter).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use shared::Capture;

use crate::capture::{NetworkCapture, RunCapture, RunTraffic};
use crate::lab::EventSink;
use crate::netns;

/// The sockets a scenario's run opens in its network (`lab/socket.rs`, and the sock_diag
/// socket of `lab/kernel.rs`), opened ahead in a network made for one run: each kind asked of
/// the broker when the run first opens one cost a round trip to another process (8 to 60 µs)
/// on the run's path, which made a run in a fresh network twice as slow as one on the
/// machine's (measured with `bench --only capture`).
const RUN_SOCKETS: [netns::SocketKind; 4] = [
    (libc::AF_INET, libc::SOCK_STREAM, 0),
    (libc::AF_INET, libc::SOCK_DGRAM, 0),
    (libc::AF_INET6, libc::SOCK_STREAM, 0),
    (
        libc::AF_NETLINK,
        libc::SOCK_RAW | libc::SOCK_CLOEXEC,
        libc::NETLINK_SOCK_DIAG,
    ),
];

/// Where a lab's IP sockets are opened.
#[derive(Clone, Debug)]
pub(crate) enum RunNetwork {
    /// A network of Socket Lab's own.
    Own(Arc<OwnNetwork>),
    /// The machine's network: its loopback is captured, filtered to each run's own
    /// packets, where this program has `CAP_NET_RAW` and `on_loopback` allows it.
    Machine {
        /// Why the run has no network of its own, in plain words.
        why: Arc<str>,
        /// Whether to capture on the machine's loopback (not for the benchmark's side with
        /// capture off, nor for a run nobody watches).
        on_loopback: bool,
    },
}

/// A network of Socket Lab's own and its capture.
#[derive(Debug)]
pub(crate) struct OwnNetwork {
    network: netns::Network,
    capture: Result<NetworkCapture, String>,
    /// Whether it was made for one run alone, which then has its loopback to itself.
    for_one_run: bool,
}

impl OwnNetwork {
    /// Opens the sockets a run will ask for ([`RUN_SOCKETS`]).
    fn open_run_sockets_ahead(&self) {
        if let Err(error) = self.network.open_ahead(&RUN_SOCKETS) {
            // Not fatal: the run asks for its sockets as it opens them.
            tracing::debug!(%error, "could not open a run's sockets ahead");
        }
    }
}

impl RunNetwork {
    /// A new network of Socket Lab's own, or the machine's with the reason there is none.
    pub(crate) fn own() -> Self {
        Self::make_own(false)
    }

    /// A new network of Socket Lab's own for one run alone (or the machine's, with the
    /// reason there is none): the run's programs may bind the tutorial's addresses there.
    pub(crate) fn own_for_one_run() -> Self {
        let network = Self::make_own(true);
        if let RunNetwork::Own(own) = &network {
            own.open_run_sockets_ahead();
        }
        network
    }

    /// A network of Socket Lab's own for one run whose packets nobody reads, or why there
    /// is none: `backend bench` tells what the namespace costs a run from what capture does.
    pub(crate) fn own_uncaptured_for_one_run() -> Result<Self, String> {
        let new = netns::network()?;
        // Closed at once: a packet socket left open queues every packet of the network.
        drop(new.capture);
        let own = OwnNetwork {
            network: new.network,
            capture: Err("nothing reads this network's packets".to_owned()),
            for_one_run: true,
        };
        own.open_run_sockets_ahead();
        Ok(RunNetwork::Own(Arc::new(own)))
    }

    fn make_own(for_one_run: bool) -> Self {
        match netns::network() {
            Ok(new) => {
                let capture = new.capture.and_then(|socket| {
                    NetworkCapture::start(socket)
                        .map_err(|error| format!("could not read the network's packets: {error}"))
                });
                if let Err(why) = &capture {
                    tracing::warn!(%why, "packets are off");
                }
                RunNetwork::Own(Arc::new(OwnNetwork {
                    network: new.network,
                    capture,
                    for_one_run,
                }))
            }
            Err(why) => {
                tracing::warn!(
                    %why,
                    "Socket Lab's own network is off: runs use the machine's network, and \
                     their packets are captured there only with CAP_NET_RAW"
                );
                RunNetwork::machine(format!("Socket Lab has no network of its own here: {why}"))
            }
        }
    }

    /// The machine's network, with the reason the run has no network of its own (the page
    /// reads "packets are off: " and this, then why they cannot be captured on the machine's
    /// loopback either, when they cannot).
    pub(crate) fn machine(why: impl Into<String>) -> Self {
        RunNetwork::Machine {
            why: Arc::from(why.into()),
            on_loopback: true,
        }
    }

    /// The machine's network with nothing captured at all, for this reason.
    pub(crate) fn uncaptured(why: impl Into<String>) -> Self {
        RunNetwork::Machine {
            why: Arc::from(why.into()),
            on_loopback: false,
        }
    }

    /// Whether this is a network of Socket Lab's own.
    pub(crate) fn is_own(&self) -> bool {
        matches!(self, RunNetwork::Own(_))
    }

    /// Whether this is a network of Socket Lab's own made for one run alone.
    pub(crate) fn is_for_one_run(&self) -> bool {
        matches!(self, RunNetwork::Own(own) if own.for_one_run)
    }

    /// `socket(domain, kind)` for an IP socket of a lab, in this network.
    pub(crate) fn ip_socket(&self, domain: libc::c_int, kind: libc::c_int) -> io::Result<OwnedFd> {
        self.socket(domain, kind, 0)
    }

    /// `socket(domain, kind, protocol)` in this network: a lab's socket, or one for asking
    /// the kernel about this network's sockets (sock_diag netlink answers for the network
    /// its socket was opened in).
    pub(crate) fn socket(
        &self,
        domain: libc::c_int,
        kind: libc::c_int,
        protocol: libc::c_int,
    ) -> io::Result<OwnedFd> {
        match self {
            RunNetwork::Own(own) => own.network.socket(domain, kind, protocol),
            RunNetwork::Machine { .. } => {
                let protocol = (protocol != 0).then(|| protocol.into());
                socket2::Socket::new(domain.into(), kind.into(), protocol).map(OwnedFd::from)
            }
        }
    }

    /// Starts sending the network's packets to the run of `sink`, whose own traffic, on the
    /// machine's network, is `traffic`; for a network without capture, tells the run why
    /// its packets are off.
    pub(crate) fn attach(
        &self,
        sink: &Arc<EventSink>,
        traffic: Option<RunTraffic>,
    ) -> Option<RunCapture> {
        match self {
            RunNetwork::Own(own) => match &own.capture {
                Ok(capture) => Some(capture.attach(sink)),
                Err(why) => {
                    sink.capture(Capture::off(format!("packets are off: {why}")));
                    None
                }
            },
            // The machine's loopback, filtered to the run's own packets, where this program
            // may capture there (CAP_NET_RAW).
            RunNetwork::Machine {
                why,
                on_loopback: false,
            } => {
                sink.capture(Capture::off(format!("packets are off: {why}")));
                None
            }
            RunNetwork::Machine { why, .. } => {
                let captured = traffic
                    .ok_or_else(|| "its sockets may have any address".to_owned())
                    .and_then(crate::capture::on_machine_loopback);
                match captured {
                    Ok(capture) => Some(capture.attach(sink).owning(capture)),
                    Err(problem) => {
                        sink.capture(Capture::off(format!("packets are off: {why}; {problem}")));
                        None
                    }
                }
            }
        }
    }
}
