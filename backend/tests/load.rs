//! A whole lab at once: 200 pages playing scenarios for 30 seconds, each about a run a
//! second, after which the server holds no more descriptors, files or memory than before.
//!
//! It is a file of its own because it counts the process's descriptors, which tests running
//! beside it would disturb. `SOCKET_LAB_LOAD_SECS` shortens or lengthens the load.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use shared::{RunOutcome, ServerMessage};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const SESSIONS: usize = 200;

/// How long a page waits after a run before it plays the next.
const PAUSE_BETWEEN_RUNS: Duration = Duration::from_secs(1);

/// Every scenario of the catalog.
const SCENARIOS: &[&str] = &[
    "simple-server-client",
    "tcp-echo",
    "ipv6-echo",
    "multiple-clients",
    "byte-stream",
    "half-close",
    "connection-refused",
    "address-in-use",
    "reset",
    "nonblocking",
    "udp-echo",
    "datagram-boundaries",
    "unix-stream",
    "unix-dgram",
];

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The kernel's UDP counters (`/proc/net/snmp`), by name: whether a datagram that never came
/// was refused (`NoPorts`), dropped for want of room (`RcvbufErrors`, `MemErrors`) or lost
/// before UDP saw it (then none moves).
fn udp_counters() -> Vec<(String, u64)> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp: "));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return Vec::new();
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
        .filter_map(|(name, value)| Some((name.to_owned(), value.parse().ok()?)))
        .collect()
}

/// The process's resident memory, in KiB, after the allocator has given back to the
/// system what it holds free (glibc keeps freed memory for later unless asked).
fn resident_kib() -> u64 {
    // SAFETY: malloc_trim only returns free memory of the C allocator to the system; it
    // takes no pointers and is safe to call at any time from any thread.
    #[allow(unsafe_code)] // Rust's standard library has no way to ask glibc for this.
    unsafe {
        libc::malloc_trim(0);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// This process's run directories in the temporary directory.
fn run_dirs() -> Vec<String> {
    let prefix = format!("socket-lab-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

/// What one page saw.
#[derive(Debug, Default)]
struct Tally {
    runs: usize,
    events: usize,
    problems: Vec<String>,
}

/// A page playing scenario after scenario until `until`.
async fn page(addr: SocketAddr, first: usize, until: Instant) -> Tally {
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let mut tally = Tally::default();
    let mut next = first;
    let mut playing = false;
    // The scenario playing and its latest events, so that a run that goes wrong is named
    // and shows where it stopped.
    let mut current = "";
    let mut latest: Vec<String> = Vec::new();
    let mut last_views = String::new();
    loop {
        if !playing {
            if Instant::now() >= until {
                break;
            }
            // A busy student presses Play about once a second; back to back, 200 pages would
            // play a thousand runs a second, which is not what a lab does.
            if next != first {
                tokio::time::sleep(PAUSE_BETWEEN_RUNS).await;
            }
            let scenario = SCENARIOS[next % SCENARIOS.len()];
            current = scenario;
            next += 1;
            let play = json!({"type": "play", "scenario": scenario}).to_string();
            socket.send(Message::Text(play.into())).await.unwrap();
            playing = true;
        }
        let frame = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await
            .expect("no message within 60 s")
            .expect("the session ended")
            .unwrap();
        let Message::Text(text) = frame else { continue };
        match serde_json::from_str::<ServerMessage>(text.as_str()).unwrap() {
            ServerMessage::Events {
                events, dropped, ..
            } => {
                tally.events += events.len();
                // Enough to tell where a run that hangs stopped: each call, where its socket
                // was bound after it, and the kernel's view of every socket at the last one.
                latest.extend(events.iter().map(|event| {
                    let local = event
                        .result
                        .as_ref()
                        .and_then(|result| result.local.as_ref())
                        .map(|local| format!(" (local {local})"))
                        .unwrap_or_default();
                    let error = event
                        .error
                        .as_ref()
                        .map(|error| format!(" {}: {}", error.errno, error.message))
                        .unwrap_or_default();
                    format!(
                        "{} {} {:?}{local}{error}",
                        event.endpoint,
                        shared::describe::call_text(&event.call),
                        event.phase
                    )
                }));
                if let Some(last) = events.last() {
                    last_views = last
                        .kernel
                        .iter()
                        .map(|view| {
                            format!(
                                "{} {} recv_queue {:?}",
                                view.endpoint,
                                view.state.name(),
                                view.recv_queue
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                }
                let keep = latest.len().saturating_sub(8);
                latest.drain(..keep);
                for range in dropped {
                    tally
                        .problems
                        .push(format!("{current}: {} events dropped", range.count));
                }
            }
            ServerMessage::RunFinished { outcome, .. } => {
                if let RunOutcome::Cancelled { reason } | RunOutcome::Failed { message: reason } =
                    outcome
                {
                    tally.problems.push(format!(
                        "{current}: {reason} (its last events: {}; the kernel then: {last_views})",
                        latest.join("; ")
                    ));
                }
                latest.clear();
                last_views.clear();
                tally.runs += 1;
                playing = false;
            }
            ServerMessage::Error { message, .. } => {
                tally.problems.push(format!("{current}: {message}"));
            }
            _ => {}
        }
    }
    let _ = socket.close(None).await;
    tally
}

/// How much more resident memory the server may hold after the load than before it: the
/// allocator's bookkeeping, not sessions.
const MEMORY_SLACK_KIB: u64 = 4 * 1024;

/// Waits up to 20 s for `settled` to hold, as sessions finish closing.
async fn settle(mut settled: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if settled() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    settled()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 30-second load test; CI runs it with --include-ignored"]
async fn two_hundred_pages_playing_for_30_s_leave_nothing_behind() {
    let seconds: u64 = std::env::var("SOCKET_LAB_LOAD_SECS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(30);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = backend::Config::new(std::env::temp_dir().join("socket-lab-no-frontend"));
    tokio::spawn(backend::serve(listener, config, std::future::pending()));

    // A first, short round brings the runtime, the allocator and the kernel's tables to
    // their working size; the baseline is taken after it.
    let warm_up = Instant::now() + Duration::from_secs(1);
    let pages: Vec<_> = (0..SESSIONS)
        .map(|index| tokio::spawn(page(addr, index, warm_up)))
        .collect();
    for page in pages {
        page.await.unwrap();
    }
    assert!(settle(|| run_dirs().is_empty()).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let descriptors_before = open_descriptors();
    let memory_before = resident_kib();

    let udp_before = udp_counters();
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let pages: Vec<_> = (0..SESSIONS)
        .map(|index| tokio::spawn(page(addr, index, until)))
        .collect();
    let mut descriptors_peak = 0;
    let mut memory_peak = 0;
    while Instant::now() < until {
        descriptors_peak = descriptors_peak.max(open_descriptors());
        memory_peak = memory_peak.max(resident_kib());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut runs = 0;
    let mut events = 0;
    let mut problems: HashMap<String, usize> = HashMap::new();
    for page in pages {
        let tally = page.await.unwrap();
        runs += tally.runs;
        events += tally.events;
        for problem in tally.problems {
            *problems.entry(problem).or_default() += 1;
        }
    }
    let elapsed = started.elapsed();

    let descriptors_back = settle(|| open_descriptors() <= descriptors_before).await;
    let descriptors_after = open_descriptors();
    let dirs_left = run_dirs();
    // The last sessions' buffers go with their tasks, which a busy machine runs a little
    // after their descriptors are closed.
    let memory_back = settle(|| resident_kib() <= memory_before + MEMORY_SLACK_KIB).await;
    let memory_after = resident_kib();
    println!(
        "{SESSIONS} pages for {:.1} s: {runs} runs, {events} events; descriptors {descriptors_before} \
         before, {descriptors_peak} at most, {descriptors_after} after; resident memory \
         {memory_before} KiB before, {memory_peak} KiB at most, {memory_after} KiB after",
        elapsed.as_secs_f64()
    );
    let udp_moved: Vec<String> = udp_counters()
        .into_iter()
        .zip(&udp_before)
        .map(|((name, after), (_, before))| format!("{name} +{}", after.saturating_sub(*before)))
        .collect();
    assert!(
        problems.is_empty(),
        "runs that did not complete: {problems:?}; the kernel's UDP counters meanwhile: {}",
        udp_moved.join(", ")
    );
    assert!(runs >= SESSIONS, "only {runs} runs in {seconds} s");
    assert!(
        descriptors_back,
        "{descriptors_after} descriptors open after the load, {descriptors_before} before"
    );
    assert!(dirs_left.is_empty(), "run directories left: {dirs_left:?}");
    // With the allocator's free memory given back, what is left is what the server holds:
    // the same as before, give or take the allocator's bookkeeping.
    assert!(
        memory_back,
        "resident memory grew from {memory_before} KiB to {memory_after} KiB"
    );
}
