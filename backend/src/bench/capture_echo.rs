//! What capturing packets costs the figures a lab lives by: one session's latency from a
//! client's send to the server's `recv` event, the firehose's events a second, and 200 active
//! sessions' latency. Each is measured on the echo scenario with an outside client twice,
//! side by side in one run of the bench: the run in a network made for it alone with every
//! packet captured, and the same run on the machine's network with capture off.
//!
//! Both sides are measured in this process, at the run's stream of items (what a WebSocket
//! session forwards), not at a page: a captured run's network can be reached only from
//! inside it, and the server lets no outside program in (its outside-program runs are on the
//! machine's network, see `run.rs`), so the bench opens its client's socket in the run's
//! network itself. The WebSocket's hop, the same on both sides but for the packets' bytes,
//! is left out, so the figures are lower than the server's own latency figures, and the
//! ratios between the two sides are what to read.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shared::RunOutcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::{
    BenchError, BenchOptions, EchoClient, Figure, Goal, PATIENCE, Phases, echo_rounds, fail,
    free_port, is_accept_returning, is_recv_returning, millis, payload, percentile, pour_into_echo,
};
use crate::lab::{RunItem, RunItems};
use crate::network::RunNetwork;
use crate::policy::Policy;
use crate::run::{Outside, OutsidePeer, Run};

/// The goal of issue 23: every figure with capture on within 10% of capture off.
const WITHIN: f64 = 1.1;

/// The two sides of each comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// A network made for the run alone, every packet captured.
    Captured,
    /// The machine's network, nothing captured.
    Off,
    /// A network made for the run alone whose packets nobody reads: what the namespace
    /// costs, apart from capture.
    Bare,
}

/// An echo run played in this process, whose outside client is this bench.
struct EchoRun {
    items: RunItems,
    tcp: TcpStream,
    run: tokio::task::JoinHandle<RunOutcome>,
    /// Rounds made so far, so that each sends a payload of its own.
    rounds: usize,
    packets: u64,
    dropped_events: u64,
    /// The client's port, which tells its packets from the server's.
    client_port: u16,
    /// Bytes the client sent, and bytes the captured packets from it carried: an
    /// independent check that every packet was captured.
    sent: u64,
    seen: u64,
}

impl EchoRun {
    /// Starts `tcp-echo` with this bench as its client, on `side`, and returns once the
    /// server has accepted it.
    async fn start(side: Side) -> Result<Self, BenchError> {
        let scenario = crate::scenario::find("tcp-echo")
            .ok_or_else(|| BenchError("the tcp-echo scenario is missing".into()))?;
        let (network, port) = match side {
            Side::Captured => {
                let network = RunNetwork::own_for_one_run();
                if !network.is_own() {
                    return Err(BenchError(
                        "this system gives Socket Lab no network of its own".into(),
                    ));
                }
                (network, crate::scenario::PORT)
            }
            Side::Bare => (
                RunNetwork::own_uncaptured_for_one_run().map_err(BenchError)?,
                crate::scenario::PORT,
            ),
            Side::Off => (
                RunNetwork::uncaptured("the bench's capture-off side"),
                free_port()?,
            ),
        };
        let peer = OutsidePeer {
            role: Outside::Client,
            port,
            timeout: Duration::from_secs(300),
        };
        let (run, items) = Run::prepare_with_outside_in(
            scenario,
            peer,
            Arc::new(Policy::default()),
            network.clone(),
        )
        .map_err(|error| fail("preparing an echo run", error))?;
        let run = tokio::spawn(run.play());
        let tcp = connect_in(&network, port).await?;
        let client_port = tcp
            .local_addr()
            .map_err(|error| fail("the client's address", error))?
            .port();
        let mut echo = EchoRun {
            items,
            tcp,
            run,
            rounds: 0,
            packets: 0,
            dropped_events: 0,
            client_port,
            sent: 0,
            seen: 0,
        };
        // Started once the server has accepted, as a session's are (see `EchoSession`).
        loop {
            if let RunItem::Event(event) = echo.next().await?
                && is_accept_returning(&event)
            {
                return Ok(echo);
            }
        }
    }

    /// The run's next item, counted; an error once the run has ended.
    async fn next(&mut self) -> Result<RunItem, BenchError> {
        let item = self
            .items
            .recv()
            .await
            .ok_or_else(|| BenchError("the echo run ended early".into()))?;
        self.count(&item);
        Ok(item)
    }

    fn count(&mut self, item: &RunItem) {
        match item {
            RunItem::Packet(packet) => {
                self.packets += 1;
                if packet.src.port() == Some(self.client_port) {
                    self.seen += u64::from(packet.payload_len);
                }
            }
            RunItem::Dropped(dropped) => self.dropped_events += dropped.count,
            _ => {}
        }
    }

    /// Closes the client's side, reads the run to its end, and returns its packets kept and
    /// the events summarised.
    async fn finish(mut self) -> Result<Finished, BenchError> {
        // Shut the client's side: the echo server's recv returns b'' and the run ends.
        self.tcp
            .shutdown()
            .await
            .map_err(|error| fail("closing the client's side", error))?;
        let mut capture = shared::Capture::default();
        while let Some(item) = self.items.recv().await {
            self.count(&item);
            if let RunItem::Capture(last) = item {
                capture = last;
            }
        }
        completed(self.run.await, "an echo run")?;
        Ok(Finished {
            packets: self.packets,
            dropped_events: self.dropped_events,
            mismatch: self.sent.abs_diff(self.seen),
            packets_lost: capture.beyond_limit + capture.dropped_by_kernel,
        })
    }
}

/// An error unless the run's task ended with the run completed.
fn completed(
    joined: Result<RunOutcome, tokio::task::JoinError>,
    what: &str,
) -> Result<(), BenchError> {
    match joined {
        Ok(RunOutcome::Completed) => Ok(()),
        Ok(other) => Err(BenchError(format!("{what} ended {other:?}"))),
        Err(error) => Err(fail(&format!("{what}'s task"), error)),
    }
}

impl EchoClient for EchoRun {
    fn round(
        &mut self,
        payload: &[u8; 8],
    ) -> impl Future<Output = Result<Duration, BenchError>> + Send {
        let payload = *payload;
        async move {
            let sent = Instant::now();
            self.tcp
                .write_all(&payload)
                .await
                .map_err(|error| fail("sending to the echo server", error))?;
            self.sent += payload.len() as u64;
            loop {
                if let RunItem::Event(event) = self.next().await?
                    && is_recv_returning(&event, &payload)
                {
                    break;
                }
            }
            let arrived = sent.elapsed();
            let mut echo = [0; 8];
            self.tcp
                .read_exact(&mut echo)
                .await
                .map_err(|error| fail("reading the echo", error))?;
            if echo != payload {
                return Err(BenchError("the echo was not what was sent".into()));
            }
            Ok(arrived)
        }
    }

    fn rounds(&mut self) -> &mut usize {
        &mut self.rounds
    }
}

/// What an echo run left when it ended.
struct Finished {
    packets: u64,
    /// Events summarised in dropped ranges, not sent whole.
    dropped_events: u64,
    /// The bytes the client sent against those the packets captured from it carried: 0
    /// when every packet was captured once.
    mismatch: u64,
    /// Packets counted but not kept (beyond the run's limit, its queue full, or dropped by
    /// the kernel).
    packets_lost: u64,
}

/// A client socket opened in `network`, connected to 127.0.0.1:`port` there once the echo
/// server listens.
async fn connect_in(network: &RunNetwork, port: u16) -> Result<TcpStream, BenchError> {
    let deadline = Instant::now() + PATIENCE;
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        let socket = network
            .ip_socket(libc::AF_INET, libc::SOCK_STREAM)
            .map_err(|error| fail("opening the client's socket", error))?;
        let socket = std::net::TcpStream::from(socket);
        socket
            .set_nonblocking(true)
            .map_err(|error| fail("making the client's socket non-blocking", error))?;
        // A socket whose connect failed is not reused: each try opens a fresh one.
        match TcpSocket::from_std_stream(socket).connect(server).await {
            Ok(tcp) => {
                tcp.set_nodelay(true)
                    .map_err(|error| fail("TCP_NODELAY", error))?;
                return Ok(tcp);
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(error) => return Err(fail("connecting to the echo server", error)),
        }
    }
}

/// Every figure of this part; none where the system gives Socket Lab no network of its own.
pub(super) async fn figures(options: &BenchOptions) -> Result<Vec<Figure>, BenchError> {
    if !RunNetwork::own().is_own() {
        return Ok(vec![
            Figure::new(
                "capture_latency_p50_ratio",
                "one echo session's latency with every packet captured / with capture off",
                None,
                "x",
                Some(Goal::AtMost(WITHIN)),
            )
            .note("not measured: this system gives Socket Lab no network of its own"),
        ]);
    }
    let mut figures = latency(options.scaled(1000, 100)).await?;
    figures.extend(firehose(Duration::from_secs(options.scaled(3, 1) as u64)).await?);
    figures.extend(
        sessions(
            options.scaled(200, 20),
            Duration::from_secs(options.scaled(6, 2) as u64),
        )
        .await?,
    );
    Ok(figures)
}

/// Three sessions, their rounds taken in turn: captured, capture off, and in a network of
/// its own with nothing captured (which tells the namespace's cost from capture's).
async fn latency(rounds: usize) -> Result<Vec<Figure>, BenchError> {
    const SIDES: [Side; 3] = [Side::Captured, Side::Off, Side::Bare];
    let mut runs = Vec::with_capacity(SIDES.len());
    for side in SIDES {
        runs.push(EchoRun::start(side).await?);
    }
    for warm_up in 0..50 {
        for (index, run) in runs.iter_mut().enumerate() {
            run.round(&payload(990 + index, warm_up)).await?;
        }
    }
    let mut times = [(); 3].map(|()| Vec::with_capacity(rounds));
    for round in 0..rounds {
        for (index, run) in runs.iter_mut().enumerate() {
            // A pause between rounds, as between a student's sends: the run is quiet when
            // each round starts, and the last round's packets have been read.
            tokio::time::sleep(Duration::from_millis(2)).await;
            times[index].push(run.round(&payload(index, round)).await?);
        }
    }
    let mut finished = Vec::with_capacity(SIDES.len());
    for run in runs {
        finished.push(run.finish().await?);
    }
    for side in &mut times {
        side.sort_unstable();
    }
    let [with, without, bare] = &times;
    let at = |times: &[Duration], quantile| millis(percentile(times, quantile));
    let ratio = |quantile| at(with, quantile) / at(without, quantile);
    let summarised: u64 = finished.iter().map(|run| run.dropped_events).sum();
    let note = |quantile| {
        format!(
            "{rounds} rounds a side, taken in turn, at the run's stream in this process: \
             {:.3} ms captured ({} packets kept), {:.3} ms with capture off, {:.3} ms in a \
             network of its own with nothing captured ({summarised} events summarised)",
            at(with, quantile),
            finished[0].packets,
            at(without, quantile),
            at(bare, quantile),
        )
    };
    let mut figures: Vec<Figure> = [("p50", 0.5), ("p99", 0.99)]
        .into_iter()
        .map(|(name, quantile)| {
            Figure::new(
                &format!("capture_latency_{name}_ratio"),
                &format!(
                    "one echo session, send -> the server's recv event, {name}: captured / \
                     capture off"
                ),
                Some(ratio(quantile)),
                "x",
                Some(Goal::AtMost(WITHIN)),
            )
            .note(note(quantile))
        })
        .collect();
    figures.extend([
        Figure::new(
            "capture_latency_namespace_ratio",
            "one echo session, p50: a network of its own, nothing captured / the machine's",
            Some(at(bare, 0.5) / at(without, 0.5)),
            "x",
            None,
        )
        .note("what the namespace alone costs, apart from capture"),
        Figure::new(
            "capture_latency_bytes_mismatch",
            "one echo session: bytes sent by the client, less those its captured packets carried",
            Some(finished[0].mismatch as f64),
            "bytes",
            Some(Goal::AtMost(0.0)),
        )
        .note(format!(
            "the payloads of the captured packets from the client's port, added up, against \
             what it wrote (the difference either way); {} packets counted and not kept",
            finished[0].packets_lost
        )),
    ]);
    Ok(figures)
}

/// What one firehose run reached.
struct Poured {
    /// Events a second reaching the run's stream, whole or summarised.
    events_per_sec: f64,
    packets: u64,
    /// Packets counted but not kept: beyond the run's limit or its queue full, and apart
    /// those the kernel dropped.
    beyond_limit: u64,
    dropped_by_kernel: u64,
}

/// A client pouring 1 KiB writes into the echo server for `window`, its events counted as
/// they come out of the run.
async fn pour(side: Side, window: Duration) -> Result<Poured, BenchError> {
    let EchoRun {
        mut items,
        tcp,
        run,
        ..
    } = EchoRun::start(side).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let (sending, reading) = pour_into_echo(tcp, Arc::clone(&stop));
    let started = Instant::now();
    let mut events = 0u64;
    let mut packets = 0u64;
    let mut capture = None;
    // The last item inside the window: a run that ends first (the echo server's loop has a
    // bound) is measured over the time it ran.
    let mut last_in_window = started;
    while let Some(item) = items.recv().await {
        let in_window = started.elapsed() < window;
        if in_window {
            last_in_window = Instant::now();
        }
        match item {
            RunItem::Event(_) if in_window => events += 1,
            RunItem::Dropped(dropped) if in_window => events += dropped.count,
            RunItem::Packet(_) => packets += 1,
            RunItem::Capture(last) => capture = Some(last),
            _ => {}
        }
        if !in_window {
            stop.store(true, Ordering::Relaxed);
        }
    }
    let _ = sending.await;
    let _ = reading.await;
    completed(run.await, "a firehose run")?;
    let capture = capture.unwrap_or_default();
    let ran = (last_in_window - started).max(Duration::from_millis(1));
    Ok(Poured {
        events_per_sec: events as f64 / ran.as_secs_f64(),
        packets,
        beyond_limit: capture.beyond_limit,
        dropped_by_kernel: capture.dropped_by_kernel,
    })
}

/// The firehose on each side, twice, in turn; the better of each side's two.
async fn firehose(window: Duration) -> Result<Vec<Figure>, BenchError> {
    let mut best: [Option<Poured>; 2] = [None, None];
    for side in [Side::Off, Side::Captured, Side::Off, Side::Captured] {
        let poured = pour(side, window).await?;
        let slot = &mut best[usize::from(side == Side::Captured)];
        if slot
            .as_ref()
            .is_none_or(|best| poured.events_per_sec > best.events_per_sec)
        {
            *slot = Some(poured);
        }
    }
    let [Some(off), Some(captured)] = best else {
        return Err(BenchError("a firehose side was not measured".into()));
    };
    let seconds = window.as_secs_f64();
    Ok(vec![
        Figure::new(
            "capture_firehose_events_per_sec",
            "firehose with every packet captured: events a second at the run's stream",
            Some(captured.events_per_sec),
            "events/s",
            Some(Goal::AtLeast(100_000.0)),
        )
        .note(format!(
            "the better of two runs of up to {seconds:.0} s a side; {} packets kept, {} counted \
             and not kept (beyond the run's limit of {}, or its queue full), {} dropped by the \
             kernel (PACKET_STATISTICS)",
            captured.packets,
            captured.beyond_limit,
            shared::packet::PACKETS_PER_RUN,
            captured.dropped_by_kernel
        )),
        Figure::new(
            "capture_firehose_kernel_drops",
            "firehose with every packet captured: packets the kernel dropped (counted, lost)",
            Some(captured.dropped_by_kernel as f64),
            "packets",
            Some(Goal::AtMost(0.0)),
        )
        .note("PACKET_STATISTICS of the capture's socket, in the run shown above"),
        Figure::new(
            "capture_firehose_ratio",
            "firehose events a second: capture off / captured",
            Some(off.events_per_sec / captured.events_per_sec),
            "x",
            Some(Goal::AtMost(WITHIN)),
        )
        .note(format!(
            "{:.0} events/s with capture off, at the run's stream in this process",
            off.events_per_sec
        )),
    ])
}

/// `count` sessions echoing 25 times a second for `active_for`, each at its own moment of
/// every 40 ms; first all captured, then all with capture off.
async fn sessions(count: usize, active_for: Duration) -> Result<Vec<Figure>, BenchError> {
    let mut p99 = [Duration::ZERO; 2];
    let mut packets = 0;
    let mut summarised = 0;
    for side in [Side::Captured, Side::Off] {
        let mut starting = Vec::with_capacity(count);
        for _ in 0..count {
            starting.push(tokio::spawn(EchoRun::start(side)));
        }
        let mut runs = Vec::with_capacity(count);
        for run in starting {
            runs.push(
                run.await
                    .map_err(|error| fail("starting a session", error))??,
            );
        }
        let (runs, mut latencies) = echo_rounds(runs, Phases::Spread, active_for).await?;
        for run in runs {
            let finished = run.finish().await?;
            packets += finished.packets;
            summarised += finished.dropped_events;
        }
        latencies.sort_unstable();
        p99[usize::from(side == Side::Off)] = percentile(&latencies, 0.99);
    }
    let [with, without] = p99.map(millis);
    Ok(vec![
        Figure::new(
            "capture_sessions_p99_ratio",
            &format!("{count} active echo sessions, send -> recv event, p99: captured / off"),
            Some(with / without),
            "x",
            Some(Goal::AtMost(WITHIN)),
        )
        .note(format!(
            "{count} runs a side, each in a network of its own ({packets} packets kept in all) \
             or on the machine's, 25 echoes a second each for {} s: p99 {with:.3} ms \
             captured, {without:.3} ms with capture off ({summarised} events summarised in \
             all)",
            active_for.as_secs()
        )),
    ])
}
