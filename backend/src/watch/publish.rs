//! `watch`'s page: hands the program's events to the Socket Lab serving on this machine, or
//! serves the page itself when none does (see [`crate::hub`]).
//!
//! The tracer never waits for the page: it turns each event into the page's (`page.rs`) and
//! puts it in a bounded queue; a thread of its own writes the queue to the hub. When the
//! queue is full (the hub reads more slowly than the program calls), events are counted
//! and the count is handed in instead, as a scenario's page is told of the events it missed.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shared::Dropped;

use super::event::WatchEvent;
use super::page::PageFeed;
use crate::hub::Item;
use crate::hub::handin::{self, HandIn, Welcome};

/// The most items waiting for the writer: beyond it, events are counted, not kept.
const QUEUE: usize = 8192;

/// How long `watch` waits for a server it started, or one it found, to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The port `watch` serves the page on when it serves it itself, as `socket-lab` does; any
/// free port when that one is taken.
const PAGE_PORT: u16 = 3000;

/// A watched program's page.
#[derive(Debug)]
pub(crate) struct Page {
    feed: PageFeed,
    queue: Option<SyncSender<Line>>,
    /// Events not queued since the last that was.
    dropped: u64,
    writer: Option<JoinHandle<()>>,
    /// The address to open.
    pub(crate) url: String,
    /// Whether this `watch` serves the page (and so takes it away when it exits).
    pub(crate) serves: bool,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // As for `Item`, which it nearly always is.
enum Line {
    Item(Item),
    Ended(String, bool),
}

impl Page {
    /// Joins the Socket Lab serving on this machine, or serves the page from `static_dir`.
    pub(crate) fn open(command: &str, static_dir: &Path, started: Instant) -> Result<Page, String> {
        let path = handin::default_path();
        let (stream, serves) = match UnixStream::connect(&path) {
            Ok(stream) => (stream, false),
            Err(_) => (serve(&path, static_dir)?, true),
        };
        let (url, stream) = greet(stream, command)
            .map_err(|error| format!("the page's server did not answer ({error})"))?;
        let (queue, lines) = mpsc::sync_channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("watch-page".to_owned())
            .spawn(move || write_lines(&stream, &lines))
            .map_err(|error| format!("cannot start the page's writer: {error}"))?;
        Ok(Page {
            feed: PageFeed::new(started.elapsed()),
            queue: Some(queue),
            dropped: 0,
            writer: Some(writer),
            url,
            serves,
        })
    }

    /// The page's share of the packets, while the page is there.
    pub(crate) fn packets(&self) -> Option<PagePackets> {
        Some(PagePackets {
            queue: self.queue.clone()?,
            clock_base_us: self.feed.clock_base_us(),
        })
    }

    /// Tells the page why it shows no packets (the program is not in a private network).
    pub(crate) fn packets_off(&mut self, why: &str) {
        if let Some(queue) = &self.queue {
            let _ = queue.send(Line::Item(Item::Capture(shared::Capture::off(why))));
        }
    }

    /// Hands one of the program's events to the page.
    pub(crate) fn push(&mut self, event: &WatchEvent) {
        if self.queue.is_none() {
            return;
        }
        for item in self.feed.feed(event) {
            if !self.send(item) {
                // The server went away; the terminal still shows every call.
                self.queue = None;
                return;
            }
        }
    }

    /// Queues an item, or counts it; `false` once the writer is gone.
    fn send(&mut self, item: Item) -> bool {
        let Some(queue) = &self.queue else {
            return false;
        };
        if self.dropped > 0 {
            let count = Dropped {
                count: self.dropped,
                ..Default::default()
            };
            match queue.try_send(Line::Item(Item::Dropped(count))) {
                Ok(()) => self.dropped = 0,
                Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
        match item {
            // A program notice is never dropped: the events after it name it. It may wait.
            Item::Program(program) => queue.send(Line::Item(Item::Program(program))).is_ok(),
            // No event passes a count of the ones before it.
            item if self.dropped > 0 => {
                self.count(&item);
                true
            }
            item => match queue.try_send(Line::Item(item)) {
                Ok(()) => true,
                Err(TrySendError::Full(Line::Item(item))) => {
                    self.count(&item);
                    true
                }
                Err(TrySendError::Full(_)) => true,
                Err(TrySendError::Disconnected(_)) => false,
            },
        }
    }

    fn count(&mut self, item: &Item) {
        if matches!(item, Item::Event(_)) {
            self.dropped += 1;
        }
    }

    /// The program has ended: tells the page how, and waits (a little) for the rest to go.
    pub(crate) fn finish(mut self) {
        if let Some(queue) = self.queue.take() {
            if self.dropped > 0 {
                let count = Dropped {
                    count: self.dropped,
                    ..Default::default()
                };
                let _ = queue.send(Line::Item(Item::Dropped(count)));
            }
            let (text, ok) = self
                .feed
                .ending()
                .unwrap_or_else(|| ("the program ended".to_owned(), true));
            let _ = queue.send(Line::Ended(text, ok));
        }
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        if self.serves {
            // The pages get the run's end before this process, and the server, go.
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// The page's share of a private network's packets (see `packets.rs`): they go in the
/// writer's queue with the events, timed on the monotonic clock as the events are.
#[derive(Debug)]
pub(crate) struct PagePackets {
    queue: SyncSender<Line>,
    clock_base_us: u64,
}

impl PagePackets {
    /// Queues a packet timed from `watch`'s start; `false` when the queue is full (the
    /// capture counts it) or the page's writer is gone.
    pub(crate) fn packet(&self, mut packet: shared::Packet) -> bool {
        packet.t_us = packet.t_us.saturating_add(self.clock_base_us);
        self.queue
            .try_send(Line::Item(Item::Packet(packet)))
            .is_ok()
    }

    /// Queues the capture's state; like a program notice, it waits for room rather than
    /// being dropped.
    pub(crate) fn capture(&self, capture: shared::Capture) {
        let _ = self.queue.send(Line::Item(Item::Capture(capture)));
    }
}

/// Says hello to the hub; returns the page's address.
fn greet(stream: UnixStream, command: &str) -> std::io::Result<(String, UnixStream)> {
    stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
    let hello = HandIn::Hello {
        protocol: shared::PROTOCOL_VERSION,
        command: command.to_owned(),
    };
    let mut writer = &stream;
    writer.write_all(format!("{}\n", serde_json::to_string(&hello)?).as_bytes())?;
    let mut line = String::new();
    if BufReader::new(&stream).read_line(&mut line)? == 0 {
        return Err(std::io::Error::other(
            "it closed the connection: it may be another version of Socket Lab (restart it, or \
             give this watch a hub of its own with SOCKET_LAB_HUB=PATH)",
        ));
    }
    let welcome: Welcome = serde_json::from_str(&line).map_err(|error| {
        std::io::Error::other(format!("it said something else than welcome: {error}"))
    })?;
    stream.set_read_timeout(None)?;
    Ok((welcome.page, stream))
}

/// Writes the queue's lines to the hub until the program has ended or the hub is gone.
fn write_lines(stream: &UnixStream, lines: &Receiver<Line>) {
    let mut out = std::io::BufWriter::new(stream);
    while let Ok(first) = lines.recv() {
        let mut next = Some(first);
        while let Some(line) = next.take() {
            let (hand_in, last) = match line {
                Line::Item(Item::Event(event)) => (HandIn::Event(event), false),
                Line::Item(Item::Program(program)) => (HandIn::Program(program), false),
                Line::Item(Item::Dropped(dropped)) => (HandIn::Dropped(dropped), false),
                Line::Item(Item::Packet(packet)) => (HandIn::Packet(packet), false),
                Line::Item(Item::Capture(capture)) => (HandIn::Capture(capture), false),
                Line::Ended(text, ok) => (HandIn::Ended { text, ok }, true),
            };
            let written = serde_json::to_writer(&mut out, &hand_in)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            if written.is_err() {
                return;
            }
            if last {
                let _ = out.flush();
                return;
            }
            next = lines.try_recv().ok();
        }
        // What was ready went in one write; the page sees each quiet call at once.
        if out.flush().is_err() {
            return;
        }
    }
}

/// Serves the page from a thread of this process, taking hand-ins at `path`; returns a
/// connection to its hub.
fn serve(path: &Path, static_dir: &Path) -> Result<UnixStream, String> {
    let mut config = crate::Config::new(static_dir);
    config.hub_socket = Some(path.to_path_buf());
    let (ready, started) = mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("watch-server".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready.send(Err(format!("cannot start the page's server: {error}")));
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::bind(("127.0.0.1", PAGE_PORT)).await {
                    Ok(listener) => listener,
                    Err(_) => match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
                        Ok(listener) => listener,
                        Err(error) => {
                            let _ = ready.send(Err(format!("cannot serve the page: {error}")));
                            return;
                        }
                    },
                };
                let _ = ready.send(Ok(()));
                // Served until `watch` exits.
                let _ = crate::serve(listener, config, std::future::pending()).await;
            });
        })
        .map_err(|error| format!("cannot start the page's server: {error}"))?;
    started
        .recv_timeout(CONNECT_TIMEOUT)
        .map_err(|_| "the page's server did not start".to_owned())??;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        match UnixStream::connect(path) {
            Ok(stream) => return Ok(stream),
            Err(error) if Instant::now() > deadline => {
                return Err(format!(
                    "cannot reach the page's server at {}: {error}",
                    PathBuf::from(path).display()
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
