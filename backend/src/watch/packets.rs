//! The packets of `watch --private-net`: the private network's capture (see
//! `private_net` and `capture`), handed to the terminal (rows among the calls, or JSON
//! lines), to `--pcap`'s pcapng file, and to the page.
//!
//! The capture reads the packet socket on a thread of its own; the terminal is written by
//! the tracer's thread, which takes the packets waiting at each call it shows and at the
//! end. Every packet of the network while the program runs is the run's: with two programs
//! watched in one private network, each `watch` shows both programs' packets, which is what
//! went over their loopback.

use std::sync::{Arc, Mutex};

use shared::{Capture, Packet};

use super::publish::PagePackets;
use crate::capture::{NetworkCapture, PacketSink, RunCapture};
use crate::lab::lock;

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
    /// Packets the terminal has not shown yet.
    pending: Mutex<Vec<Packet>>,
    /// Every packet kept, for the pcapng file (only with `--pcap`).
    kept: Option<Mutex<Vec<Packet>>>,
    status: Mutex<Capture>,
    page: Option<PagePackets>,
}

impl PacketSink for WatchPackets {
    fn packet(&self, packet: Packet) -> bool {
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
        lock(&self.pending).push(packet);
        true
    }

    fn capture(&self, capture: Capture) {
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
        page: Option<PagePackets>,
    ) -> std::io::Result<Self> {
        let network = NetworkCapture::start(socket)?;
        let sink = Arc::new(WatchPackets {
            pending: Mutex::new(Vec::new()),
            kept: keep_for_file.then(|| Mutex::new(Vec::new())),
            status: Mutex::new(Capture::default()),
            page,
        });
        let run = network.attach_to(Arc::clone(&sink) as Arc<dyn PacketSink>, started_unix_ns);
        Ok(WatchCapture {
            sink,
            run: Some(run),
            network,
        })
    }

    /// The packets not shown yet, in the order they were captured.
    pub(crate) fn take_pending(&self) -> Vec<Packet> {
        std::mem::take(&mut *lock(&self.sink.pending))
    }

    /// Reads the last packets and the final counts; returns the capture's state, every
    /// packet kept for the file, and the packets the terminal has not shown yet.
    pub(crate) fn finish(mut self) -> (Capture, Vec<Packet>, Vec<Packet>) {
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
