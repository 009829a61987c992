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

mod machine;
mod parse;

pub(crate) use machine::{RunTraffic, on_machine_loopback};

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, LinkAddr, MsgFlags, recvmsg, setsockopt, sockopt};
use shared::Capture;
use shared::packet::{PACKETS_PER_RUN, SNAPLEN};

use crate::lab::{EventSink, lock};

/// How long the reading thread lets packets gather after the first wakes it, for a session's
/// network (a run's last packets are read at its end, whatever the delay).
pub(crate) const BATCH_DELAY: std::time::Duration = std::time::Duration::from_millis(2);

/// The longest a capture waits between two reads while a run is attached and no packets
/// come: a page's frame, so that a packet after a quiet spell (a student's next send) is
/// shown within one.
const LONGEST_TICK: std::time::Duration = std::time::Duration::from_millis(16);

/// How long a capture reads on its clock with no packet coming before it sleeps until one
/// does.
const QUIET_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// Empties a non-blocking pipe's read end.
fn drain(pipe: &OwnedFd) {
    let mut bytes = [0u8; 64];
    while matches!(nix::unistd::read(pipe, &mut bytes), Ok(n) if n > 0) {}
}

/// The receive buffer a capture asks for.
const CAPTURE_BUFFER: usize = 4 << 20;

/// `sll_pkttype` of a packet leaving a socket of this host.
const PACKET_OUTGOING: u8 = 4;

/// The capture of one network: a thread that reads its packet socket while the network
/// lives, and the run (if any) its packets go to.
#[derive(Debug)]
pub(crate) struct NetworkCapture {
    shared: Arc<Shared>,
    /// Where it captures, for the run's [`Capture::scope`], when not a network of its own.
    scope: Option<String>,
    /// Closed when the network goes, which wakes the reading thread to end.
    stop: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    socket: OwnedFd,
    /// How long packets gather before the thread reads them.
    batch_delay: std::time::Duration,
    /// Every read of the socket happens under this lock, so a run's last packets, read by
    /// [`RunCapture::finish`], can never be passed by one the thread read before.
    reader: Mutex<Reader>,
    /// Written when a run attaches, which wakes the thread to read on its clock (a pipe's
    /// write end, non-blocking).
    nudge: OwnedFd,
}

#[derive(Debug, Default)]
struct Reader {
    target: Option<Target>,
}

/// Where a capture's packets go: a run's [`EventSink`], or a watched program's outputs (the
/// terminal, its pcapng file, its page).
pub(crate) trait PacketSink: Send + Sync + std::fmt::Debug {
    /// Hands a packet on; `false` when there was no room for it (the capture counts it).
    fn packet(&self, packet: shared::Packet) -> bool;
    /// The capture's state: when it starts, and with its final counts when it ends.
    fn capture(&self, capture: Capture);
}

impl PacketSink for EventSink {
    fn packet(&self, packet: shared::Packet) -> bool {
        EventSink::packet(self, packet)
    }

    fn capture(&self, capture: Capture) {
        EventSink::capture(self, capture);
    }
}

/// The run that a network's packets go to.
#[derive(Debug)]
struct Target {
    sink: Arc<dyn PacketSink>,
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
        Self::start_batched(socket, BATCH_DELAY)
    }

    /// Starts reading `socket`, letting packets gather `batch_delay` after the first wakes
    /// the thread: a longer delay wakes it less often, for a program whose every call is
    /// waited for (a watched one), at the cost of seeing packets that much later.
    pub(crate) fn start_batched(
        socket: OwnedFd,
        batch_delay: std::time::Duration,
    ) -> std::io::Result<Self> {
        // Keep [`SNAPLEN`] bytes of every packet leaving a socket, nothing of the copies
        // arriving (a loopback packet is seen both ways; the kernel need not queue it twice).
        let keep_all = outgoing_only(&[keep()]);
        Self::start_filtered(socket, &keep_all, None, batch_delay)
    }

    /// Starts reading `socket` through the BPF `filter` (which returns how many bytes of a
    /// packet to keep, 0 for none), capturing on `scope` when not a network of its own.
    pub(crate) fn start_filtered(
        socket: OwnedFd,
        filter: &[libc::sock_filter],
        scope: Option<String>,
        batch_delay: std::time::Duration,
    ) -> std::io::Result<Self> {
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true)?;
        // Room for the packets of a burst while the thread lets them gather: each queued
        // packet is charged its whole buffer (a loopback segment's up to 64 KiB), not the
        // bytes kept, so the usual 208 KiB filled up in a firehose's bursts and the kernel
        // dropped some (counted, but lost to the page; measured with `bench --only capture`:
        // 522 of about 7,400 in 3 s, none with 4 MiB). The kernel caps this at
        // `net.core.rmem_max` (4 MiB here, 208 KiB on a stock Debian).
        if let Err(error) = setsockopt(&socket, sockopt::RcvBuf, &CAPTURE_BUFFER) {
            tracing::debug!(%error, "could not enlarge a capture's buffer");
        }
        attach_filter(&socket, filter)?;
        let (nudged, nudge) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        // Start empty: whatever was queued before the filter went on is dropped.
        let shared = Arc::new(Shared {
            socket,
            batch_delay,
            reader: Mutex::new(Reader::default()),
            nudge,
        });
        let (stopped, stop) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let reading = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("capture".to_owned())
            .spawn(move || reading.read_until_stopped(&stopped, &nudged))?;
        Ok(NetworkCapture {
            shared,
            scope,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Sends the network's packets from now on to the run whose events go to `sink`, and
    /// tells the run that its packets are captured.
    pub(crate) fn attach(&self, sink: &Arc<EventSink>) -> RunCapture {
        let started_unix_ns = unix_now_ns() - sink.started().elapsed().as_nanos() as i128;
        self.attach_to(Arc::clone(sink) as Arc<dyn PacketSink>, started_unix_ns)
    }

    /// Sends the network's packets from now on to `sink`, timed from `started_unix_ns` (the
    /// wall-clock time, in nanoseconds since the epoch, of the `t_us` 0 of its events).
    pub(crate) fn attach_to(&self, sink: Arc<dyn PacketSink>, started_unix_ns: i128) -> RunCapture {
        let mut reader = lock(&self.shared.reader);
        // Packets left from the run before (a connection's last ACK after its run ended)
        // are not this run's.
        self.shared.read_available(&mut reader);
        reader.target = None;
        // Reading the statistics resets them: what is read at the end is this run's.
        let _ = kernel_drops(&self.shared.socket);
        let status = Capture {
            on: true,
            off_because: None,
            started_unix_us: (started_unix_ns / 1000) as u64,
            snaplen: SNAPLEN,
            scope: self.scope.clone(),
            ..Capture::default()
        };
        sink.capture(status.clone());
        reader.target = Some(Target {
            sink,
            started_unix_ns,
            flows: parse::Flows::default(),
            status,
            unsent: 0,
        });
        drop(reader);
        // A full pipe already holds a nudge the thread has not taken.
        let _ = nix::unistd::write(&self.shared.nudge, &[1]);
        RunCapture {
            shared: Arc::clone(&self.shared),
            own: None,
        }
    }
}

impl Drop for NetworkCapture {
    /// Ends the reading thread, which lets go of the packet socket before this returns.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A run's share of its network's capture; [`RunCapture::finish`] ends it.
#[derive(Debug)]
pub(crate) struct RunCapture {
    shared: Arc<Shared>,
    /// A capture made for this run alone (on the machine's loopback), ended with it.
    own: Option<NetworkCapture>,
}

impl RunCapture {
    /// This run's share of `capture`, a capture made for the run alone: it ends with the run.
    pub(crate) fn owning(mut self, capture: NetworkCapture) -> Self {
        self.own = Some(capture);
        self
    }

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
        drop(reader);
        drop(self.own);
    }
}

impl Shared {
    /// Reads packets until `stopped` (a pipe's read end) says the network is gone: its write
    /// end has closed.
    ///
    /// While a run is attached and its network busy, the thread reads on its own clock,
    /// every `batch_delay` while packets come and less often (up to [`LONGEST_TICK`]) while
    /// none do, and no packet wakes it. A packet that wakes a sleeping thread pays for the
    /// wake-up on the path of the call that sent it, before that call returns: measured with
    /// `bench --only capture`, an echo's send to its recv event took 1.5 to 2.3 times as long
    /// captured as not, while a network of its own with nothing captured cost nothing. After
    /// [`QUIET_BEFORE_SLEEP`] with no packet (a paused run, a sandbox between a student's
    /// calls), and with no run attached, it sleeps until a packet comes (the wake-up is then
    /// one, seconds apart), a run attaches (`nudged`), or the network goes. A run's end reads
    /// what is left itself.
    fn read_until_stopped(&self, stopped: &OwnedFd, nudged: &OwnedFd) {
        let mut tick = self.batch_delay;
        let mut quiet = std::time::Duration::ZERO;
        let longest = self.batch_delay.max(LONGEST_TICK);
        loop {
            let ticking = quiet < QUIET_BEFORE_SLEEP && lock(&self.reader).target.is_some();
            let mut fds = [
                PollFd::new(stopped.as_fd(), PollFlags::POLLIN),
                PollFd::new(nudged.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.socket.as_fd(), PollFlags::POLLIN),
            ];
            let (watched, timeout) = if ticking {
                (
                    &mut fds[..2],
                    PollTimeout::try_from(tick).unwrap_or(PollTimeout::MAX),
                )
            } else {
                (&mut fds[..], PollTimeout::NONE)
            };
            match poll(watched, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(error) => {
                    tracing::warn!(%error, "a network's capture stopped");
                    return;
                }
            }
            if fds[0].any().unwrap_or(true) {
                return;
            }
            if fds[1].any().unwrap_or(false) {
                drain(nudged);
                // A run has just attached: its first packets come within a tick.
                (tick, quiet) = (self.batch_delay, std::time::Duration::ZERO);
                continue;
            }
            if !ticking {
                // Woken by a packet: let its burst gather, as a run's reads do.
                std::thread::sleep(self.batch_delay);
            }
            if self.read_available(&mut lock(&self.reader)) > 0 {
                (tick, quiet) = (self.batch_delay, std::time::Duration::ZERO);
            } else {
                quiet += tick;
                tick = (tick * 2).min(longest);
            }
        }
    }

    /// Reads every packet queued now and hands each to the run, if any; returns how many.
    fn read_available(&self, reader: &mut Reader) -> usize {
        let mut frame = [0u8; SNAPLEN as usize];
        let mut read = 0;
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
                Err(Errno::EAGAIN) => return read,
                Err(error) => {
                    tracing::warn!(%error, "could not read a packet");
                    return read;
                }
            };
            read += 1;
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

/// The BPF instruction that keeps [`SNAPLEN`] bytes of the packet.
pub(crate) fn keep() -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: SNAPLEN,
    }
}

/// `program` run only on packets leaving a socket of this host (`PACKET_OUTGOING`, read
/// with the kernel's ancillary `SKF_AD_PKTTYPE` load); the others are dropped before the
/// program.
pub(crate) fn outgoing_only(program: &[libc::sock_filter]) -> Vec<libc::sock_filter> {
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    // SKF_AD_OFF + SKF_AD_PKTTYPE (linux/filter.h): the packet's type, as sll_pkttype.
    const PACKET_TYPE: u32 = (-0x1000_i32) as u32 + 4;
    let mut filter = vec![
        op(
            libc::BPF_LD | libc::BPF_B | libc::BPF_ABS,
            0,
            0,
            PACKET_TYPE,
        ),
        // Outgoing: on to the program; else to the last instruction, which drops.
        op(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            u8::try_from(program.len()).unwrap_or(u8::MAX),
            u32::from(PACKET_OUTGOING),
        ),
    ];
    filter.extend_from_slice(program);
    filter.push(op(libc::BPF_RET | libc::BPF_K, 0, 0, 0));
    filter
}

/// Attaches a classic BPF program to `socket`: the kernel runs it on every packet and keeps
/// as many bytes as it returns (0: the packet is not queued at all).
#[allow(unsafe_code)] // SO_ATTACH_FILTER has no safe wrapper in nix or socket2.
fn attach_filter(socket: &OwnedFd, program: &[libc::sock_filter]) -> std::io::Result<()> {
    let mut program = program.to_vec();
    let filter = libc::sock_fprog {
        len: u16::try_from(program.len()).map_err(std::io::Error::other)?,
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

pub(crate) fn unix_now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as i128)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use shared::Protocol;

    use crate::lab::{EventSink, RunItem};
    use crate::network::RunNetwork;

    /// The packets and capture states a run's items have had so far.
    pub(crate) fn packets_and_states(
        items: &mut crate::lab::RunItems,
    ) -> (Vec<shared::Packet>, Vec<shared::Capture>) {
        let mut packets = Vec::new();
        let mut states = Vec::new();
        while let Some(item) = items.try_recv() {
            match item {
                RunItem::Packet(packet) => packets.push(packet),
                RunItem::Capture(state) => states.push(state),
                _ => {}
            }
        }
        (packets, states)
    }

    /// A network of Socket Lab's own with a run's sink attached to its capture; `None`, said
    /// on stderr, where the system gives none.
    fn captured_network() -> Option<(
        RunNetwork,
        Arc<EventSink>,
        crate::lab::RunItems,
        super::RunCapture,
    )> {
        let network = RunNetwork::own();
        if !network.is_own() {
            eprintln!("no network of Socket Lab's own here: nothing to capture");
            return None;
        }
        let (sink, items) = EventSink::new(64);
        let sink = Arc::new(sink);
        let capture = network.attach(&sink, None).expect("a capture");
        Some((network, sink, items, capture))
    }

    /// A UDP socket in `network`.
    fn udp_socket(network: &RunNetwork) -> socket2::Socket {
        socket2::Socket::from(
            network
                .ip_socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC)
                .unwrap(),
        )
    }

    /// A datagram to a port where nothing listens, in a network of Socket Lab's own: the
    /// capture has the datagram and the kernel's ICMP port unreachable, tied to it, and
    /// tshark (where installed) reads the pcapng of the two.
    #[test]
    fn a_datagram_to_a_closed_port_is_answered_with_icmp() {
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let Some((network, sink, mut items, capture)) = captured_network() else {
            return;
        };
        let socket = udp_socket(&network);
        let closed = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
        socket.send_to(b"anyone there?", &closed.into()).unwrap();
        // The kernel's answer makes the socket's next call fail with ECONNREFUSED once
        // connected; here it is enough that it came: wait for the error to be queued.
        let mut buffer = [std::mem::MaybeUninit::new(0u8); 16];
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let _ = socket.recv(&mut buffer);
        capture.finish();
        drop(sink);
        let (packets, states) = packets_and_states(&mut items);
        assert_eq!(packets.len(), 2, "{packets:?}");
        let (datagram, answer) = (&packets[0], &packets[1]);
        assert_eq!(datagram.protocol, Protocol::Udp);
        assert_eq!(datagram.payload.0, b"anyone there?");
        let icmp = answer.icmp.as_ref().expect("an ICMP message");
        assert!(icmp.is_port_unreachable(answer.protocol), "{icmp:?}");
        assert_eq!(icmp.answers, Some(datagram.seq));
        let cause = shared::cause::packet_cause(answer, &[]).unwrap();
        assert!(cause.text.contains("port unreachable"), "{}", cause.text);
        let last = states.last().expect("the final state");
        assert!(last.on && !last.lost_any(), "{last:?}");
        // The pcapng the page's Save packets writes from the same packets.
        let path =
            std::env::temp_dir().join(format!("socket-lab-icmp-{}.pcapng", std::process::id()));
        std::fs::write(&path, shared::pcapng::write(last, &packets, |_| None)).unwrap();
        if let Ok(output) = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args(["-T", "fields", "-e", "icmp.type", "-e", "udp.dstport"])
            .output()
        {
            let text = String::from_utf8_lossy(&output.stdout);
            assert_eq!(text.lines().collect::<Vec<_>>(), ["\t9", "3\t9"], "{text}");
        }
        let _ = std::fs::remove_file(&path);
    }

    /// Packets reach a run while it plays, not only at its end: soon after it attaches (the
    /// thread reads on its clock), and after a quiet spell longer than
    /// [`super::QUIET_BEFORE_SLEEP`] (the thread sleeps until a packet wakes it).
    #[test]
    fn packets_come_while_the_run_plays_busy_or_after_a_quiet_spell() {
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let Some((network, sink, mut items, capture)) = captured_network() else {
            return;
        };
        let socket = udp_socket(&network);
        let receiver = udp_socket(&network);
        let to = std::net::SocketAddr::from(([127, 0, 0, 1], 4000));
        receiver.bind(&to.into()).unwrap();
        // The datagrams seen so far, waiting at most `patience` for `count` of them.
        let mut seen = Vec::new();
        let mut wait_for = |count: usize, patience: std::time::Duration| {
            let until = std::time::Instant::now() + patience;
            while seen.len() < count && std::time::Instant::now() < until {
                seen.extend(packets_and_states(&mut items).0);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            seen.len()
        };
        socket.send_to(b"one", &to.into()).unwrap();
        assert_eq!(wait_for(1, std::time::Duration::from_millis(500)), 1);
        // Quiet for longer than the thread reads on its clock, then one more.
        std::thread::sleep(super::QUIET_BEFORE_SLEEP + std::time::Duration::from_millis(300));
        socket.send_to(b"two", &to.into()).unwrap();
        assert_eq!(wait_for(2, std::time::Duration::from_millis(500)), 2);
        capture.finish();
        drop(sink);
        let payloads: Vec<_> = seen.iter().map(|packet| packet.payload.0.clone()).collect();
        assert_eq!(payloads, [b"one".to_vec(), b"two".to_vec()]);
    }
}
