//! The packets of a network of Socket Lab's own (see `netns`), read from its `AF_PACKET`
//! socket and handed to the run that is playing there, in order with its events.
//!
//! A session's network carries only that session's sockets, so everything on its loopback
//! is the session's: no other session's traffic, the host's or the page's own WebSocket can
//! be in it. Each packet is taken once, as it leaves a socket (`PACKET_OUTGOING`): a loopback
//! packet is seen again as it arrives, and the copy leaving is the one the sending call
//! queues before it returns, so a run's last packets are in the socket's queue by the time
//! its last call has returned, and [`RunCapture::finish`] reads them all.
//!
//! The kernel keeps at most [`SNAPLEN`] bytes of each packet (a one-instruction BPF filter
//! cuts the rest before it is queued), a run keeps at most [`PACKETS_PER_RUN`], and the
//! socket's `PACKET_STATISTICS` say how many the kernel dropped: all three are in the run's
//! [`Capture`], so a lost packet is counted, never silent.

mod parse;

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, LinkAddr, MsgFlags, recvmsg, setsockopt, sockopt};
use shared::Capture;
use shared::packet::{PACKETS_PER_RUN, SNAPLEN};

use crate::lab::{EventSink, lock};

/// `sll_pkttype` of a packet leaving a socket of this host.
const PACKET_OUTGOING: u8 = 4;

/// How often the reading thread looks whether its network is gone.
const STOP_CHECK: Duration = Duration::from_millis(250);

/// The capture of one network: a thread that reads its packet socket while the network
/// lives, and the run (if any) its packets go to.
#[derive(Debug)]
pub(crate) struct NetworkCapture {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    socket: OwnedFd,
    /// Every read of the socket happens under this lock, so a run's last packets, read by
    /// [`RunCapture::finish`], can never be passed by one the thread read before.
    reader: Mutex<Reader>,
    stop: AtomicBool,
}

#[derive(Debug, Default)]
struct Reader {
    target: Option<Target>,
}

/// The run that a network's packets go to.
#[derive(Debug)]
struct Target {
    sink: Arc<EventSink>,
    /// The wall-clock time of the run's `t_us` 0, in nanoseconds since the epoch.
    started_unix_ns: i128,
    flows: parse::Flows,
    status: Capture,
    /// Packets the page's queue had no room for.
    unsent: u64,
}

impl NetworkCapture {
    /// Starts reading `socket` (the network's packet socket, just opened).
    pub(crate) fn start(socket: OwnedFd) -> std::io::Result<Self> {
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true)?;
        cut_to_snaplen(&socket)?;
        // Start empty: whatever was queued before the filter went on is dropped.
        let shared = Arc::new(Shared {
            socket,
            reader: Mutex::new(Reader::default()),
            stop: AtomicBool::new(false),
        });
        let thread = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("capture".to_owned())
            .spawn(move || thread.read_until_stopped())?;
        Ok(NetworkCapture { shared })
    }

    /// Sends the network's packets from now on to the run whose events go to `sink`, and
    /// tells the run that its packets are captured.
    pub(crate) fn attach(&self, sink: &Arc<EventSink>) -> RunCapture {
        let mut reader = lock(&self.shared.reader);
        // Packets left from the run before (a connection's last ACK after its run ended)
        // are not this run's.
        self.shared.read_available(&mut reader);
        reader.target = None;
        // Reading the statistics resets them: what is read at the end is this run's.
        let _ = kernel_drops(&self.shared.socket);
        let started_unix_ns = unix_now_ns() - sink.started().elapsed().as_nanos() as i128;
        let status = Capture {
            on: true,
            off_because: None,
            started_unix_us: (started_unix_ns / 1000) as u64,
            snaplen: SNAPLEN,
            ..Capture::default()
        };
        sink.capture(status.clone());
        reader.target = Some(Target {
            sink: Arc::clone(sink),
            started_unix_ns,
            flows: parse::Flows::default(),
            status,
            unsent: 0,
        });
        RunCapture {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for NetworkCapture {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// A run's share of its network's capture; [`RunCapture::finish`] ends it.
#[derive(Debug)]
pub(crate) struct RunCapture {
    shared: Arc<Shared>,
}

impl RunCapture {
    /// Reads the run's last packets, sends the final counts, and stops sending packets to
    /// the run. Call once the run's last call has returned.
    pub(crate) fn finish(self) {
        let mut reader = lock(&self.shared.reader);
        self.shared.read_available(&mut reader);
        if let Some(mut target) = reader.target.take() {
            target.status.dropped_by_kernel = kernel_drops(&self.shared.socket).unwrap_or(0);
            target.status.beyond_limit += target.unsent;
            target.sink.capture(target.status.clone());
        }
    }
}

impl Shared {
    fn read_until_stopped(&self) {
        while !self.stop.load(Ordering::Relaxed) {
            let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
            let timeout = PollTimeout::try_from(STOP_CHECK).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, timeout) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "a network's capture stopped");
                    return;
                }
            }
            let mut reader = lock(&self.reader);
            self.read_available(&mut reader);
        }
    }

    /// Reads every packet queued now and hands each to the run, if any.
    fn read_available(&self, reader: &mut Reader) {
        let mut frame = [0u8; SNAPLEN as usize];
        loop {
            let mut iov = [IoSliceMut::new(&mut frame)];
            let mut space = nix::cmsg_space!(nix::sys::time::TimeSpec);
            let received = match recvmsg::<LinkAddr>(
                self.socket.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(received) => received,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(error) => {
                    tracing::warn!(%error, "could not read a packet");
                    return;
                }
            };
            let outgoing = received
                .address
                .is_some_and(|link| link.pkttype() == PACKET_OUTGOING);
            let when = received.cmsgs().ok().and_then(|mut controls| {
                controls.find_map(|control| match control {
                    ControlMessageOwned::ScmTimestampns(time) => {
                        Some(i128::from(time.tv_sec()) * 1_000_000_000 + i128::from(time.tv_nsec()))
                    }
                    _ => None,
                })
            });
            let length = received.bytes.min(frame.len());
            if !outgoing {
                continue;
            }
            if let Some(target) = reader.target.as_mut() {
                target.take(&frame[..length], when.unwrap_or_else(unix_now_ns));
            }
        }
    }
}

impl Target {
    fn take(&mut self, frame: &[u8], when_unix_ns: i128) {
        if self.status.kept >= PACKETS_PER_RUN {
            self.status.beyond_limit += 1;
            return;
        }
        let t_us = u64::try_from((when_unix_ns - self.started_unix_ns) / 1000).unwrap_or(0);
        let Some(packet) = parse::packet(frame, self.status.kept, t_us, &mut self.flows) else {
            return;
        };
        if self.sink.packet(packet) {
            self.status.kept += 1;
        } else {
            self.unsent += 1;
        }
    }
}

/// Has the kernel keep at most [`SNAPLEN`] bytes of each packet: a BPF filter whose one
/// instruction accepts that many.
#[allow(unsafe_code)] // SO_ATTACH_FILTER has no safe wrapper in nix or socket2.
fn cut_to_snaplen(socket: &OwnedFd) -> std::io::Result<()> {
    let mut program = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: SNAPLEN,
    }];
    let filter = libc::sock_fprog {
        len: 1,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: the filter program outlives the call, which copies it.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            std::ptr::from_ref(&filter).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The packets the kernel dropped since the last time it was asked (the counters reset).
#[allow(unsafe_code)] // PACKET_STATISTICS has no safe wrapper in nix or socket2.
fn kernel_drops(socket: &OwnedFd) -> std::io::Result<u64> {
    let mut stats = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut length = size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `length` bytes into `stats`.
    let result = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            std::ptr::from_mut(&mut stats).cast(),
            &mut length,
        )
    };
    if result == 0 {
        Ok(u64::from(stats.tp_drops))
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn unix_now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as i128)
}
