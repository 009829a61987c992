//! The packets of `watch --private-net`: the private network's capture (see
//! `private_net` and `capture`), handed to the terminal (rows among the calls, or JSON
//! lines), to `--pcap`'s pcapng file, and to the page.
//!
//! The capture reads the packet socket on a thread of its own, and writes each packet's line
//! for the terminal there too; the terminal is written by the tracer's thread, which takes
//! the lines waiting at each call it shows and at the end, so that the program's calls, which
//! the tracer stops, wait for no packet's formatting. The capture's thread wakes once in
//! [`WATCH_BATCH_DELAY`]: the hub holds a watched run's events for 20 ms anyway. Every packet of the network while the program runs is the run's: with two programs
//! watched in one private network, each `watch` shows both programs' packets, which is what
//! went over their loopback.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use shared::{Capture, Packet};

use super::publish::PagePackets;
use crate::capture::{NetworkCapture, PacketSink, RunCapture};
use crate::lab::lock;
use std::time::{Duration, Instant};

/// How long packets gather before the capture's thread reads them (a session's network
/// waits 2 ms: a watched program's every call is waited for by its tracer, and in a
/// ping-pong each wake of the thread is time taken from it).
const WATCH_BATCH_DELAY: Duration = Duration::from_millis(20);

/// How long the network must stay quiet, once the program has exited, before its capture
/// ends: two of the capture thread's wakes, so that a packet that came is surely counted.
const QUIET_AT_THE_END: Duration = Duration::from_millis(2 * 20);

/// The longest the end of a capture waits for the network to fall quiet.
const LAST_PACKETS_WAIT: Duration = Duration::from_millis(500);

/// The capture of a watched program's private network, while it runs.
#[derive(Debug)]
pub(crate) struct WatchCapture {
    sink: Arc<WatchPackets>,
    run: Option<RunCapture>,
    /// Kept alive while the run reads it; dropped last.
    network: NetworkCapture,
}

#[derive(Debug)]
struct WatchPackets {
    /// Lines the terminal has not shown yet.
    pending: Mutex<Vec<String>>,
    /// Whether the terminal's lines are JSON.
    json: bool,
    /// Every packet kept, for the pcapng file (only with `--pcap`).
    kept: Option<Mutex<Vec<Packet>>>,
    status: Mutex<Capture>,
    page: Option<PagePackets>,
    /// Packets handed to it so far, kept or not: how the end of the capture sees that the
    /// network is still talking.
    seen: AtomicUsize,
}

impl PacketSink for WatchPackets {
    fn packet(&self, packet: Packet) -> bool {
        self.seen.fetch_add(1, Ordering::Relaxed);
        // The page's copy first: the page may be full (then the packet is counted as not
        // kept, as a scenario's page counts it), the terminal and the file never are.
        if let Some(page) = &self.page
            && !page.packet(packet.clone())
        {
            return false;
        }
        if let Some(kept) = &self.kept {
            lock(kept).push(packet.clone());
        }
        let line = packet_line(&packet, self.json);
        lock(&self.pending).push(line);
        true
    }

    fn capture(&self, mut capture: Capture) {
        // The page names the network: the user's private one, not a session's.
        if capture.on && capture.scope.is_none() {
            capture.scope = Some(
                "your private network (a loopback of its own, shared by your programs watched \
                 with --private-net)"
                    .to_owned(),
            );
        }
        if let Some(page) = &self.page {
            page.capture(capture.clone());
        }
        *lock(&self.status) = capture;
    }
}

impl WatchCapture {
    /// Starts capturing on `socket` (the private network's packet socket), timing packets
    /// from `started_unix_ns` (the wall-clock time of `watch`'s start, its events' 0).
    pub(crate) fn start(
        socket: std::os::fd::OwnedFd,
        started_unix_ns: i128,
        keep_for_file: bool,
        json: bool,
        page: Option<PagePackets>,
    ) -> std::io::Result<Self> {
        let network = NetworkCapture::start_batched(socket, WATCH_BATCH_DELAY)?;
        let sink = Arc::new(WatchPackets {
            pending: Mutex::new(Vec::new()),
            json,
            kept: keep_for_file.then(|| Mutex::new(Vec::new())),
            status: Mutex::new(Capture::default()),
            page,
            seen: AtomicUsize::new(0),
        });
        let run = network.attach_to(Arc::clone(&sink) as Arc<dyn PacketSink>, started_unix_ns);
        Ok(WatchCapture {
            sink,
            run: Some(run),
            network,
        })
    }

    /// The lines of the packets not shown yet, in the order they were captured.
    pub(crate) fn take_pending(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.sink.pending))
    }

    /// Reads the last packets and the final counts; returns the capture's state, every
    /// packet kept for the file, and the lines the terminal has not shown yet.
    ///
    /// It first waits (at most [`LAST_PACKETS_WAIT`]) for the network to fall quiet: the
    /// program's conversation goes on in the kernel after it has exited. Its `close()`'s FIN
    /// is acknowledged, and the peer's FIN, once the peer closes too, comes after: a server
    /// that exits right after closing would otherwise lose its client's FIN.
    pub(crate) fn finish(mut self) -> (Capture, Vec<Packet>, Vec<String>) {
        let deadline = Instant::now() + LAST_PACKETS_WAIT;
        let mut seen = self.sink.seen.load(Ordering::Relaxed);
        while Instant::now() < deadline {
            std::thread::sleep(QUIET_AT_THE_END);
            let now = self.sink.seen.load(Ordering::Relaxed);
            if now == seen {
                break;
            }
            seen = now;
        }
        if let Some(run) = self.run.take() {
            run.finish();
        }
        let kept = self
            .sink
            .kept
            .as_ref()
            .map(|kept| std::mem::take(&mut *lock(kept)))
            .unwrap_or_default();
        let status = lock(&self.sink.status).clone();
        let pending = self.take_pending();
        drop(self.network);
        (status, kept, pending)
    }
}

/// A packet as a row of the table (its number `p0` where a call's is, and `wire` where its
/// process would be) or as a JSON line with `"kind": "packet"`, as `backend trace` writes them.
fn packet_line(packet: &Packet, json: bool) -> String {
    if json {
        return crate::trace::packet_json_line(packet);
    }
    let row = format!(
        "{:>5}  {:>9.3}  {:>7}  {:>7}  {:<6}  {}",
        format!("p{}", packet.seq),
        packet.t_us as f64 / 1000.0,
        "wire",
        "-",
        "packet",
        packet.summary()
    );
    // As for a call's row: nothing from the wire may drive the terminal.
    super::without_controls(&row)
}
