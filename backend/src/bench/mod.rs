//! `backend bench`: the performance goals of a whole teaching lab, measured on this machine.
//!
//! The benchmark starts the real server as a child process (this same binary, `serve` on a
//! port the kernel chooses) and talks to it as pages and students' programs would: WebSocket
//! sessions that play the echo scenario with an outside client, which this process plays on
//! plain loopback TCP. Nothing is measured inside the server, so every figure includes what a
//! user would wait for: serialisation, the WebSocket, the kernel's loopback, and the wake-ups
//! in between. Both processes share the machine's cores, as a lab's server and the load its
//! students put on it would not; the figures are therefore upper bounds.
//!
//! What each figure means is written beside it in [`Figure::what`]; `PERFORMANCE.md` records
//! a run of it with the goals of issue 7.

mod capture_cost;
mod capture_echo;
mod watch_cost;
mod watch_page;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use shared::{Call, Dropped, Phase, ReturnValue, RunOutcome, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The tutorial's Simple Server and Simple Client as a student writes them, run by Python to
/// compare the cost of watching with `strace -f`.
const PYTHON_SERVER: &str = include_str!("../../tests/peers/simple_server.py");
const PYTHON_CLIENT: &str = include_str!("../../tests/peers/simple_client.py");

/// How long a benchmark waits for any one thing before it gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// What to run, and how long.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The built page the server serves (its start is measured to the page's first byte).
    pub static_dir: PathBuf,
    /// Fewer rounds and shorter windows: enough to see that every part works, in seconds.
    pub quick: bool,
    /// Only these parts (all when empty).
    pub only: Vec<Part>,
}

/// A part of the benchmark, to run alone with `--only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Backend start to serving the page, and the page's size as browsers download it.
    Start,
    /// Event latency with one session.
    Latency,
    /// A firehose into one session.
    Firehose,
    /// 1,000 idle and 200 active sessions, and memory per session.
    Sessions,
    /// The cost of watching.
    Watching,
    /// What `watch` costs a student's own program, against strace.
    Watch,
    /// What capturing a run's packets costs.
    Capture,
}

impl BenchOptions {
    fn runs(&self, part: Part) -> bool {
        self.only.is_empty() || self.only.contains(&part)
    }

    fn scaled(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }
}

/// A benchmark that could not be run to its end.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(String);

fn fail(context: &str, error: impl std::fmt::Display) -> BenchError {
    BenchError(format!("{context}: {error}"))
}

/// The figures of one run of the benchmark, and where and when it ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// The day of the run (UTC), as `YYYY-MM-DD`.
    pub date: String,
    /// The machine it ran on.
    pub machine: Machine,
    /// Whether it was the short run (`--quick`).
    pub quick: bool,
    /// The figures, in the order they were measured.
    pub figures: Vec<Figure>,
}

/// The machine a report was measured on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs this process may use.
    pub cpus: usize,
    /// The CPU's model name, as `/proc/cpuinfo` gives it.
    pub cpu_model: String,
    /// Memory, in MiB.
    pub memory_mib: u64,
    /// The kernel's release.
    pub kernel: String,
}

/// One measured figure and the goal it is held to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Figure {
    /// A stable name, such as `latency_1_session_p99`.
    pub id: String,
    /// What was measured, in words.
    pub what: String,
    /// The figure; `None` when it could not be measured (the note says why).
    pub value: Option<f64>,
    /// Its unit.
    pub unit: String,
    /// The goal, if the figure has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
    /// Whether the goal is met (`None` without a goal or a value).
    pub met: Option<bool>,
    /// Anything the figure needs said beside it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// A bound a figure should keep.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// The figure should be this or less.
    AtMost(f64),
    /// The figure should be this or more.
    AtLeast(f64),
}

impl Figure {
    fn new(id: &str, what: &str, value: Option<f64>, unit: &str, goal: Option<Goal>) -> Self {
        let met = match (goal, value) {
            (Some(Goal::AtMost(bound)), Some(value)) => Some(value <= bound),
            (Some(Goal::AtLeast(bound)), Some(value)) => Some(value >= bound),
            _ => None,
        };
        Figure {
            id: id.to_owned(),
            what: what.to_owned(),
            value,
            unit: unit.to_owned(),
            goal,
            met,
            note: String::new(),
        }
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// Runs every part of the benchmark and returns its figures. Progress goes to stderr.
pub async fn run(options: BenchOptions) -> Result<Report, BenchError> {
    crate::server::raise_descriptor_limit();
    let mut figures = Vec::new();

    if options.runs(Part::Start) {
        eprintln!("bench: backend start to serving the page");
        figures.extend(start_time(&options).await?);
    }

    let server = tokio::task::spawn_blocking({
        let dir = options.static_dir.clone();
        move || ServerProcess::start(&dir)
    })
    .await
    .map_err(|error| fail("starting the server", error))??;

    if options.runs(Part::Start) {
        eprintln!("bench: the page's size as browsers download it");
        figures.extend(page_size(&server)?);
    }
    if options.runs(Part::Latency) {
        eprintln!("bench: latency with one session");
        figures.extend(single_session_latency(&server, &options).await?);
    }
    if options.runs(Part::Firehose) {
        eprintln!("bench: firehose into one session");
        figures.extend(firehose(&server, &options).await?);
    }
    if options.runs(Part::Sessions) {
        eprintln!("bench: 1,000 idle and 200 active sessions");
        // On a server of its own: memory the firehose made the allocator keep would hide
        // what sessions take.
        let fresh = tokio::task::spawn_blocking({
            let dir = options.static_dir.clone();
            move || ServerProcess::start(&dir)
        })
        .await
        .map_err(|error| fail("starting the server", error))??;
        figures.extend(many_sessions(&fresh, &options).await?);
        drop(fresh);
    }
    if options.runs(Part::Watching) {
        eprintln!("bench: the cost of watching");
        figures.extend(cost_of_watching(&server, &options).await?);
    }
    if options.runs(Part::Capture) {
        eprintln!("bench: what capturing packets costs");
        figures.extend(capture_cost::figures(options.scaled(200, 20)).await?);
        eprintln!("bench: what capturing packets costs an echo's latency and firehose");
        figures.extend(capture_echo::figures(&options).await?);
    }
    if options.runs(Part::Watch) {
        eprintln!("bench: what watch costs a program, against strace");
        let options = options.clone();
        figures.extend(
            tokio::task::spawn_blocking(move || watch_cost::figures(&options))
                .await
                .map_err(|error| fail("measuring watch", error))??,
        );
    }

    Ok(Report {
        date: today(),
        machine: machine(),
        quick: options.quick,
        figures,
    })
}

/// The report as a table for a terminal.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Socket Lab bench, {}{}: {} CPUs ({}), {} MiB, Linux {}",
        report.date,
        if report.quick { " (quick)" } else { "" },
        report.machine.cpus,
        report.machine.cpu_model,
        report.machine.memory_mib,
        report.machine.kernel
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<64} {:>14} {:>12}  met", "figure", "value", "goal");
    for figure in &report.figures {
        let value = figure.value.map_or_else(
            || "-".to_owned(),
            |value| format!("{} {}", number(value), figure.unit),
        );
        let goal = match figure.goal {
            Some(Goal::AtMost(bound)) => format!("<= {}", number(bound)),
            Some(Goal::AtLeast(bound)) => format!(">= {}", number(bound)),
            None => String::new(),
        };
        let met = match figure.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        let _ = writeln!(out, "{:<64} {value:>14} {goal:>12}  {met}", figure.what);
        if !figure.note.is_empty() {
            let _ = writeln!(out, "    {}", figure.note);
        }
    }
    out
}

fn number(value: f64) -> String {
    if value >= 100.0 || value == value.trunc() {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

// ----- The server under test -----

/// The server, running as a child process of the benchmark.
#[derive(Debug)]
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    /// From spawning the process to the page's response.
    until_page: Duration,
    /// Whether there was a built page to serve (without one, the server's own page that says
    /// how to build it is what came back).
    page_built: bool,
}

impl ServerProcess {
    fn start(static_dir: &Path) -> Result<Self, BenchError> {
        let exe = std::env::current_exe().map_err(|error| fail("finding this program", error))?;
        let spawned = Instant::now();
        let mut child = Command::new(exe)
            .args(["serve", "--addr", "127.0.0.1:0", "--static-dir"])
            .arg(static_dir)
            // A lab's worth of sessions all come from this one address, and the cost of
            // watching plays exchange after exchange in one session: the limits meant for
            // students are raised so that they measure the app, not the limits.
            .args([
                "--max-sessions",
                "3000",
                "--max-sessions-per-client",
                "3000",
            ])
            .args(["--max-messages-per-sec", "100000"])
            .env("RUST_LOG", "backend=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| fail("starting the server", error))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        // The server's stderr is read to its end, so that it never blocks writing a log line.
        std::thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("Socket Lab is serving http://")
                    && let Some(tx) = addr_tx.take()
                {
                    let addr = rest.split('/').next().unwrap_or_default().to_owned();
                    let _ = tx.send(addr);
                } else {
                    // The server logs warnings and errors only: each is worth seeing.
                    eprintln!("server: {line}");
                }
            }
        });
        let addr = match addr_rx.recv_timeout(PATIENCE) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                return Err(BenchError("the server did not say where it serves".into()));
            }
        };
        let addr: SocketAddr = addr
            .parse()
            .map_err(|error| fail(&format!("the server's address {addr:?}"), error))?;
        let response = http_get(addr, "/")?;
        let until_page = spawned.elapsed();
        let page_built = static_dir.join("index.html").is_file();
        // Without a built page the server answers 503 with a page that says how to build it;
        // that is still a start measured to a whole response.
        if page_built && !response.starts_with("HTTP/1.1 200") {
            let _ = child.kill();
            return Err(BenchError(format!(
                "the server answered GET / with {:?}",
                response.lines().next().unwrap_or_default()
            )));
        }
        Ok(ServerProcess {
            child,
            addr,
            until_page,
            page_built,
        })
    }

    /// The server's resident memory, in KiB.
    fn resident_kib(&self) -> Result<u64, BenchError> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|error| fail("reading the server's memory", error))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| BenchError("no VmRSS in the server's status".into()))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A whole HTTP/1.1 response to `GET path`, as text.
fn http_get(addr: SocketAddr, path: &str) -> Result<String, BenchError> {
    let response = http_get_bytes(addr, path, "identity")?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// A whole HTTP/1.1 response to `GET path` with `Accept-Encoding: accept`, as bytes.
fn http_get_bytes(addr: SocketAddr, path: &str, accept: &str) -> Result<Vec<u8>, BenchError> {
    let mut stream =
        std::net::TcpStream::connect(addr).map_err(|error| fail("connecting for GET", error))?;
    stream
        .set_read_timeout(Some(PATIENCE))
        .map_err(|error| fail("GET", error))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: {accept}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|error| fail("sending GET", error))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|error| fail("reading the response to GET", error))?;
    Ok(response)
}

/// The page's code as a browser that accepts `encoding` downloads it: the wasm and the JS
/// that `index.html` loads, each fetched from the server, in bytes of body. `None` if the
/// server sent any of them in another encoding (a build without compressed copies).
fn page_download(addr: SocketAddr, encoding: &str) -> Result<Option<u64>, BenchError> {
    let index = http_get(addr, "/")?;
    let mut files: Vec<&str> = index
        .split(['\'', '"'])
        .filter(|token| {
            token.starts_with('/') && (token.ends_with(".js") || token.ends_with(".wasm"))
        })
        .collect();
    files.sort_unstable();
    files.dedup();
    if !files.iter().any(|file| file.ends_with(".wasm")) {
        return Err(BenchError(format!(
            "the page's index.html names no wasm: {files:?}"
        )));
    }
    let mut total = 0;
    for file in files {
        let response = http_get_bytes(addr, file, encoding)?;
        let Some(split) = response.windows(4).position(|window| window == b"\r\n\r\n") else {
            return Err(BenchError(format!(
                "the response to GET {file} has no body"
            )));
        };
        let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 200") {
            return Err(BenchError(format!(
                "GET {file}: {}",
                head.lines().next().unwrap_or_default()
            )));
        }
        if !head.contains(&format!("\r\ncontent-encoding: {encoding}")) {
            return Ok(None);
        }
        total += (response.len() - split - 4) as u64;
    }
    Ok(Some(total))
}

/// The page's size as browsers download it, against the goal for gzip (which every browser
/// accepts; brotli, which browsers ask for over HTTPS, beside it).
fn page_size(server: &ServerProcess) -> Result<Vec<Figure>, BenchError> {
    let size = |encoding| -> Result<Option<f64>, BenchError> {
        if !server.page_built {
            return Ok(None);
        }
        Ok(page_download(server.addr, encoding)?.map(|bytes| bytes as f64 / 1000.0))
    };
    let (gzip, brotli) = (size("gzip")?, size("br")?);
    let (gzip_note, brotli_note) = match (server.page_built, gzip, brotli) {
        (false, _, _) => (
            "no built page: run `trunk build --release` first",
            "no built page",
        ),
        (true, None, _) => (
            "the server sent the page uncompressed: a release build (`trunk build \
             --release`) writes its compressed copies",
            "no compressed copies",
        ),
        (true, Some(_), None) => (
            "fetched from the server as a browser does, with Accept-Encoding: gzip",
            "no brotli copies: the build had no `brotli` tool",
        ),
        (true, Some(_), Some(_)) => (
            "fetched from the server as a browser does, with Accept-Encoding: gzip",
            "what browsers ask for over HTTPS and from localhost",
        ),
    };
    Ok(vec![
        Figure::new(
            "page_gzip_kb",
            "the page's wasm and JS, as downloaded with gzip",
            gzip,
            "KB",
            // Issue 24's ceiling (issue 7's 150 KB goal is retired).
            Some(Goal::AtMost(240.0)),
        )
        .note(gzip_note),
        Figure::new(
            "page_brotli_kb",
            "the same, downloaded with brotli",
            brotli,
            "KB",
            None,
        )
        .note(brotli_note),
    ])
}

async fn start_time(options: &BenchOptions) -> Result<Vec<Figure>, BenchError> {
    let tries = options.scaled(9, 3);
    let mut times = Vec::with_capacity(tries);
    let mut page_built = true;
    for _ in 0..tries {
        let dir = options.static_dir.clone();
        let server = tokio::task::spawn_blocking(move || ServerProcess::start(&dir))
            .await
            .map_err(|error| fail("starting the server", error))??;
        times.push(server.until_page);
        page_built = server.page_built;
    }
    let mut figure = Figure::new(
        "start_to_page_ms",
        "backend start to the page served (median of starts)",
        Some(millis(median(&mut times))),
        "ms",
        Some(Goal::AtMost(100.0)),
    )
    .note(format!(
        "from spawning the process to the whole response to GET /, median of {tries}"
    ));
    if !page_built {
        figure.note = format!(
            "{}; NO BUILT PAGE in {}: what was served is the page that says how to build it",
            figure.note,
            options.static_dir.display()
        );
    }
    Ok(vec![figure])
}

// ----- Sessions -----

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a session as a page does and reads its `Hello`.
async fn open_session(addr: SocketAddr) -> Result<Ws, BenchError> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/ws"), None, true)
            .await
            .map_err(|error| fail("opening a session", error))?;
    match next_message(&mut ws).await?.1 {
        ServerMessage::Hello { .. } => Ok(ws),
        other => Err(BenchError(format!("a session began with {other:?}"))),
    }
}

/// The next text message and the moment it arrived (before it was parsed).
async fn next_text(ws: &mut Ws) -> Result<(Instant, String), BenchError> {
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .map_err(|_| BenchError("no message from the server in 30 s".into()))?
            .ok_or_else(|| BenchError("the server closed the session".into()))?
            .map_err(|error| fail("reading a session", error))?;
        let arrived = Instant::now();
        match frame {
            Message::Text(text) => return Ok((arrived, text.as_str().to_owned())),
            Message::Close(close) => {
                return Err(BenchError(format!(
                    "the server closed the session: {close:?}"
                )));
            }
            _ => {}
        }
    }
}

async fn next_message(ws: &mut Ws) -> Result<(Instant, ServerMessage), BenchError> {
    let (arrived, text) = next_text(ws).await?;
    // Read as the page reads it, with the page's decoder.
    let message =
        shared::decode::from_str(&text).map_err(|error| fail("a server message", error))?;
    Ok((arrived, message))
}

/// A port on 127.0.0.1 that was free a moment ago, for an outside client's run.
fn free_port() -> Result<u16, BenchError> {
    Ok(free_ports(1)?[0])
}

/// `count` different ports on 127.0.0.1 that were free a moment ago. Each is held until all
/// are found, since the kernel may hand a port it just got back to the next asker.
fn free_ports(count: usize) -> Result<Vec<u16>, BenchError> {
    let held = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| fail("finding free ports", error))?;
    held.iter()
        .map(|listener| listener.local_addr().map(|addr| addr.port()))
        .collect::<Result<_, _>>()
        .map_err(|error| fail("finding free ports", error))
}

/// A session playing `tcp-echo` whose client is this benchmark, on plain TCP.
#[derive(Debug)]
struct EchoSession {
    ws: Ws,
    tcp: TcpStream,
    run: u64,
    dropped: u64,
    /// Rounds made so far, so that each sends a payload of its own.
    rounds: usize,
    /// The seqs of the events read while starting, up to the accept.
    read_while_starting: Vec<u64>,
}

impl EchoSession {
    async fn start(addr: SocketAddr, port: u16) -> Result<Self, BenchError> {
        let mut ws = open_session(addr).await?;
        let play = serde_json::json!({
            "type": "play",
            "scenario": "tcp-echo",
            "outside": {"role": "client", "port": port, "timeout_secs": 300},
        });
        ws.send(Message::Text(play.to_string().into()))
            .await
            .map_err(|error| fail("sending Play", error))?;
        let run = loop {
            match next_message(&mut ws).await?.1 {
                ServerMessage::RunStarted { run, .. } => break run,
                ServerMessage::Error { message, .. } => {
                    return Err(BenchError(format!("Play was refused: {message}")));
                }
                _ => {}
            }
        };
        let deadline = Instant::now() + PATIENCE;
        let tcp = loop {
            match TcpStream::connect(("127.0.0.1", port)).await {
                Ok(tcp) => break tcp,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(error) => return Err(fail("connecting to the echo server", error)),
            }
        };
        tcp.set_nodelay(true)
            .map_err(|error| fail("TCP_NODELAY", error))?;
        // Started once the server has accepted this client, as its page shows: the rounds
        // measure a running echo, not the accept (which looks up the program at the other end
        // of the connection, and waits behind every other session's when all start at once).
        let mut read_while_starting = Vec::new();
        loop {
            match next_message(&mut ws).await?.1 {
                ServerMessage::Events { events, .. } => {
                    read_while_starting.extend(events.iter().map(|event| event.seq));
                    if events.iter().any(is_accept_returning) {
                        break;
                    }
                }
                ServerMessage::RunFinished { outcome, .. } => {
                    return Err(BenchError(format!(
                        "an echo run ended before it accepted its client: {outcome:?}"
                    )));
                }
                _ => {}
            }
        }
        Ok(EchoSession {
            ws,
            tcp,
            run,
            dropped: 0,
            rounds: 0,
            read_while_starting,
        })
    }

    /// Sends `payload` to the echo server and returns how long it took the event of the
    /// server's `recv` returning it to reach the session; then reads the echo.
    async fn round(&mut self, payload: &[u8; 8]) -> Result<Duration, BenchError> {
        let sent = Instant::now();
        self.tcp
            .write_all(payload)
            .await
            .map_err(|error| fail("sending to the echo server", error))?;
        let arrived = loop {
            let (arrived, message) = next_message(&mut self.ws).await?;
            if let ServerMessage::Events {
                events, dropped, ..
            } = message
            {
                self.dropped += dropped.iter().map(|range| range.count).sum::<u64>();
                if events.iter().any(|event| is_recv_returning(event, payload)) {
                    break arrived;
                }
            } else if let ServerMessage::RunFinished { outcome, .. } = message {
                return Err(BenchError(format!("the echo run ended: {outcome:?}")));
            }
        };
        let mut echo = [0; 8];
        self.tcp
            .read_exact(&mut echo)
            .await
            .map_err(|error| fail("reading the echo", error))?;
        if &echo != payload {
            return Err(BenchError("the echo was not what was sent".into()));
        }
        Ok(arrived - sent)
    }

    /// Closes the client's side and waits for the run to finish as it should.
    async fn finish(mut self) -> Result<u64, BenchError> {
        drop(self.tcp);
        loop {
            match next_message(&mut self.ws).await?.1 {
                ServerMessage::Events { dropped, .. } => {
                    self.dropped += dropped.iter().map(|range| range.count).sum::<u64>();
                }
                ServerMessage::RunFinished { run, outcome } if run == self.run => {
                    return match outcome {
                        RunOutcome::Completed => Ok(self.dropped),
                        other => Err(BenchError(format!("an echo run ended {other:?}"))),
                    };
                }
                _ => {}
            }
        }
    }
}

impl EchoClient for EchoSession {
    fn round(
        &mut self,
        payload: &[u8; 8],
    ) -> impl std::future::Future<Output = Result<Duration, BenchError>> + Send {
        EchoSession::round(self, payload)
    }

    fn rounds(&mut self) -> &mut usize {
        &mut self.rounds
    }
}

/// The client of an echo run whose rounds [`echo_rounds`] times: a session's over the
/// WebSocket, or a run's in this process (`capture_echo.rs`).
trait EchoClient: Send + 'static {
    /// Sends `payload`, returns how long it took the server's `recv` of it to be seen, and
    /// reads the echo.
    fn round(
        &mut self,
        payload: &[u8; 8],
    ) -> impl std::future::Future<Output = Result<Duration, BenchError>> + Send;

    /// The rounds made so far, so that each sends a payload of its own.
    fn rounds(&mut self) -> &mut usize;
}

/// Whether `event` is an `accept` returning: the echo server has its client.
fn is_accept_returning(event: &shared::Event) -> bool {
    event.phase == Phase::Return && event.call == Call::Accept
}

/// Whether `event` is a `recv` returning exactly `payload`.
fn is_recv_returning(event: &shared::Event, payload: &[u8]) -> bool {
    event.phase == Phase::Return
        && matches!(event.call, Call::Recv { .. })
        && matches!(
            event.result.as_ref().map(|result| &result.value),
            Some(ReturnValue::Received { data, .. }) if data.0 == payload
        )
}

/// A payload no other round sends.
fn payload(session: usize, round: usize) -> [u8; 8] {
    let mut text = [0u8; 8];
    let digits = format!("{:03}{:05}", session % 1000, round % 100_000);
    text.copy_from_slice(digits.as_bytes());
    text
}

async fn single_session_latency(
    server: &ServerProcess,
    options: &BenchOptions,
) -> Result<Vec<Figure>, BenchError> {
    let rounds = options.scaled(2000, 200);
    let mut session = EchoSession::start(server.addr, free_port()?).await?;
    for warm_up in 0..50 {
        session.round(&payload(999, warm_up)).await?;
    }
    // The warm-up's rounds, back to back, made the run busy: its events went out paced, one
    // message a frame, until its rate over a whole window was low again. The rounds measured
    // are a quiet run's.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::with_capacity(rounds);
    for round in 0..rounds {
        latencies.push(session.round(&payload(0, round)).await?);
        // A pause between rounds, as between a student's sends, so that each event goes out
        // alone rather than in a busy run's batch.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let dropped = session.finish().await?;
    let what = "one session: send -> the server's recv event at the client";
    let note = format!(
        "{rounds} rounds; each from this client's send to the arrival of the WebSocket message \
         with the server's recv returning it, so it includes loopback delivery to the server \
         ({dropped} events dropped)"
    );
    Ok(latency_figures(
        "latency_1_session",
        what,
        &mut latencies,
        Some(0.2),
        1.0,
        &note,
    ))
}

/// p50, p99 and p99.9 of `latencies`, in milliseconds, with their goals.
fn latency_figures(
    id: &str,
    what: &str,
    latencies: &mut [Duration],
    p50_goal_ms: Option<f64>,
    p99_goal_ms: f64,
    note: &str,
) -> Vec<Figure> {
    latencies.sort_unstable();
    let at = |quantile: f64| Some(millis(percentile(latencies, quantile)));
    vec![
        Figure::new(
            &format!("{id}_p50"),
            &format!("{what}, p50"),
            at(0.5),
            "ms",
            p50_goal_ms.map(Goal::AtMost),
        )
        .note(note),
        Figure::new(
            &format!("{id}_p99"),
            &format!("{what}, p99"),
            at(0.99),
            "ms",
            Some(Goal::AtMost(p99_goal_ms)),
        ),
        Figure::new(
            &format!("{id}_p999"),
            &format!("{what}, p99.9"),
            at(0.999),
            "ms",
            None,
        ),
    ]
}

/// An `Events` message with only what the firehose counts: parsing whole events at the rate
/// they come would make this process, not the server, the bottleneck.
#[derive(Deserialize)]
struct EventsOnly {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<SeqOnly>,
    #[serde(default)]
    dropped: Vec<Dropped>,
    #[serde(default)]
    outcome: Option<String>,
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

async fn firehose(
    server: &ServerProcess,
    options: &BenchOptions,
) -> Result<Vec<Figure>, BenchError> {
    let window = Duration::from_secs(options.scaled(5, 2) as u64);
    let EchoSession {
        mut ws,
        tcp,
        run,
        read_while_starting,
        ..
    } = EchoSession::start(server.addr, free_port()?).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let (sending, reading) = pour_into_echo(tcp, Arc::clone(&stop));

    let mut seqs: Vec<u64> = read_while_starting;
    let mut dropped: Vec<Dropped> = Vec::new();
    let mut window_events = 0u64;
    let mut window_dropped = 0u64;
    let mut window_bytes = 0u64;
    let mut window_frames = 0u64;
    let mut largest_second_frames = 0u64;
    let mut started: Option<Instant> = None;
    // The last message inside the window: a run that ends first (its loop has a bound)
    // is measured over the time it ran.
    let mut last_in_window: Option<Instant> = None;
    let mut second_start = Instant::now();
    let mut second_frames = 0u64;
    let outcome = loop {
        let (arrived, text) = next_text(&mut ws).await?;
        let message: EventsOnly =
            serde_json::from_str(&text).map_err(|error| fail("a server message", error))?;
        match message.kind.as_str() {
            "events" => {
                seqs.extend(message.events.iter().map(|event| event.seq));
                dropped.extend(message.dropped.iter().cloned());
                let start = *started.get_or_insert(arrived);
                if arrived - start < window {
                    let dropped_now: u64 = message.dropped.iter().map(|range| range.count).sum();
                    window_events += message.events.len() as u64 + dropped_now;
                    window_dropped += dropped_now;
                    window_frames += 1;
                    window_bytes += text.len() as u64;
                    last_in_window = Some(arrived);
                    if arrived - second_start >= Duration::from_secs(1) {
                        largest_second_frames = largest_second_frames.max(second_frames);
                        second_start = arrived;
                        second_frames = 0;
                    }
                    second_frames += 1;
                } else {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            "run_finished" => break message.outcome.unwrap_or_default(),
            _ => {}
        }
    };
    let _ = sending.await;
    let _ = reading.await;
    if outcome != "completed" {
        return Err(BenchError(format!(
            "the firehose run {run} ended {outcome:?}"
        )));
    }

    let received = seqs.len() as u64;
    let dropped_count: u64 = dropped.iter().map(|range| range.count).sum();
    let accounted = every_seq_once(&mut seqs, &dropped);
    let measured = match (started, last_in_window) {
        (Some(start), Some(last)) if last - start < window => {
            (last - start).max(Duration::from_millis(1))
        }
        _ => window,
    };
    let seconds = measured.as_secs_f64();
    let events_per_sec = window_events as f64 / seconds;
    let frames_per_sec = window_frames as f64 / seconds;
    let reached_per_sec = (window_events - window_dropped) as f64 / seconds;
    Ok(vec![
        Figure::new(
            "firehose_events_per_sec",
            "firehose: events a second reaching the session, whole or summarised",
            Some(events_per_sec),
            "events/s",
            Some(Goal::AtLeast(100_000.0)),
        )
        .note(format!(
            "over {seconds:.2} s of a client sending 1024-byte writes as fast as it can; each \
             recv and sendall of the echo server is 2 events"
        )),
        Figure::new(
            "firehose_events_whole_per_sec",
            "firehose: of them, events a second that reached it whole",
            Some(reached_per_sec),
            "events/s",
            None,
        )
        .note(
            "each event whole is about 3.5 KB of JSON here (1 KiB of data as text and hex, \
             and the kernel's view of each socket); the rest come summarised",
        ),
        Figure::new(
            "firehose_json_mib_per_sec",
            "firehose: JSON a second into the session",
            Some(window_bytes as f64 / seconds / (1024.0 * 1024.0)),
            "MiB/s",
            None,
        )
        .note(
            "a message carries at most about 256 KiB of events, so that a page can read what \
             comes; the events beyond it are counted in its dropped ranges",
        ),
        Figure::new(
            "firehose_frames_per_sec",
            "firehose: WebSocket messages a second",
            Some(frames_per_sec),
            "frames/s",
            Some(Goal::AtMost(60.0)),
        )
        .note(format!("the busiest second had {largest_second_frames}")),
        Figure::new(
            "firehose_summarised",
            "firehose: events summarised in dropped ranges, in the whole run",
            Some(dropped_count as f64),
            "events",
            None,
        )
        .note(format!(
            "{received} received whole; the summaries tallied the calls that returned: {}",
            tallies_text(&dropped)
        )),
        Figure::new(
            "firehose_unaccounted",
            "firehose: events neither received nor counted as dropped",
            Some(if accounted { 0.0 } else { 1.0 }),
            "runs",
            Some(Goal::AtMost(0.0)),
        )
        .note("every seq from 0 to the last must arrive once or lie in one dropped range"),
    ])
}

/// A firehose into an echo server: sends 1 KiB at a time, as fast as the kernel takes it,
/// until `stop` is set or the connection fails (the server ended the run), then shuts its
/// side; reads the echoes back as fast as they come, so the server's `recv` and `sendall`
/// never wait for it. Returns the sending and the reading task. The browser tests pour the
/// same into a page.
pub fn pour_into_echo(
    tcp: TcpStream,
    stop: Arc<AtomicBool>,
) -> (tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>) {
    let (mut reader, mut writer) = tcp.into_split();
    let sending = tokio::spawn(async move {
        let chunk = [b'x'; 1024];
        while !stop.load(Ordering::Relaxed) {
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let reading = tokio::spawn(async move {
        let mut buffer = vec![0; 64 * 1024];
        while matches!(reader.read(&mut buffer).await, Ok(n) if n > 0) {}
    });
    (sending, reading)
}

/// The calls tallied in `dropped`, added up by endpoint and call, in words.
fn tallies_text(dropped: &[Dropped]) -> String {
    let totals = shared::message::total_calls(dropped);
    if totals.is_empty() {
        return "none".to_owned();
    }
    totals
        .iter()
        .map(|total| {
            format!(
                "{} {} x{} ({} bytes)",
                total.endpoint, total.call, total.count, total.bytes
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether every seq from 0 to the largest is in `seqs` or in `dropped`, and none twice.
fn every_seq_once(seqs: &mut [u64], dropped: &[Dropped]) -> bool {
    let mut ranges: Vec<(u64, u64)> = seqs.iter().map(|&seq| (seq, seq)).collect();
    ranges.extend(
        dropped
            .iter()
            .map(|range| (range.first_seq, range.last_seq)),
    );
    ranges.sort_unstable();
    let mut next = 0;
    for (first, last) in ranges {
        if first != next || last < first {
            return false;
        }
        next = last + 1;
    }
    true
}

async fn many_sessions(
    server: &ServerProcess,
    options: &BenchOptions,
) -> Result<Vec<Figure>, BenchError> {
    let idle_count = options.scaled(1000, 100);
    let active_count = options.scaled(200, 20);
    let active_for = Duration::from_secs(options.scaled(10, 3) as u64);

    // One session opened and closed first, so that what every session shares (buffers,
    // the runtime's threads warming up) is in the baseline.
    let mut warm_up = open_session(server.addr).await?;
    let _ = warm_up.close(None).await;
    drop(warm_up);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = server.resident_kib()?;
    let mut idle = Vec::with_capacity(idle_count);
    for index in 0..idle_count {
        idle.push(
            open_session(server.addr)
                .await
                .map_err(|error| fail(&format!("idle session {index}"), error))?,
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let with_idle = server.resident_kib()?;

    let mut starting = Vec::with_capacity(active_count);
    for port in free_ports(active_count)? {
        starting.push(tokio::spawn(EchoSession::start(server.addr, port)));
    }
    let mut sessions = Vec::with_capacity(active_count);
    for session in starting {
        sessions.push(
            session
                .await
                .map_err(|error| fail("starting a session", error))?
                .map_err(|error| fail("starting an active session", error))?,
        );
    }
    // Each active session echoes 25 messages a second: 4 events each (recv and sendall,
    // entering and returning), so 100 events a second, as a student's loop might make. The
    // students are independent, so their sends are spread over each 40 ms; then, as the
    // worst case, all 200 send in the same instant, 25 times a second.
    let spread = tokio::spawn(echo_rounds(sessions, Phases::Spread, active_for));
    tokio::time::sleep(active_for / 2).await;
    let with_active = server.resident_kib()?;
    let (sessions, mut latencies) = spread
        .await
        .map_err(|error| fail("the active sessions", error))??;
    let in_step_for = active_for / 2;
    let (sessions, mut in_step) = echo_rounds(sessions, Phases::InStep, in_step_for).await?;
    let mut dropped = 0;
    for (index, session) in sessions.into_iter().enumerate() {
        dropped += session
            .finish()
            .await
            .map_err(|error| fail(&format!("session {index} finishing"), error))?;
    }
    // Each session is still open here: its idle ones are checked alive before they close.
    for mut session in idle {
        session
            .send(Message::Ping(Vec::new().into()))
            .await
            .map_err(|error| fail("an idle session", error))?;
        let _ = session.close(None).await;
    }

    let events_per_sec = latencies.len() as f64 * 4.0 / active_for.as_secs_f64();
    let idle_kib = with_idle.saturating_sub(before) as f64 / idle_count as f64;
    let active_kib = with_active.saturating_sub(with_idle) as f64 / active_count as f64;
    let what = format!("{active_count} active + {idle_count} idle: send -> recv event");
    let note = format!(
        "{} rounds over {} s, {events_per_sec:.0} events/s in all, each session sending at its \
         own moment of every 40 ms ({dropped} events dropped in both parts)",
        latencies.len(),
        active_for.as_secs()
    );
    let mut figures = vec![
        Figure::new(
            "idle_session_kib",
            "memory per idle session (server RSS growth / sessions)",
            Some(idle_kib),
            "KiB",
            Some(Goal::AtMost(64.0)),
        )
        .note(format!(
            "{idle_count} sessions: RSS {before} KiB -> {with_idle} KiB"
        )),
        Figure::new(
            "active_session_kib",
            "memory per active session (its run, sockets and queue)",
            Some(active_kib),
            "KiB",
            Some(Goal::AtMost(256.0)),
        )
        .note(format!(
            "{active_count} sessions at 100 events/s: RSS {with_idle} KiB -> {with_active} KiB"
        )),
    ];
    figures.extend(latency_figures(
        "latency_200_sessions",
        &what,
        &mut latencies,
        None,
        10.0,
        &note,
    ));
    let in_step_note = format!(
        "{} rounds over {} s: every session sends in the same instant, 25 times a second, \
         so each waits behind the others' events",
        in_step.len(),
        in_step_for.as_secs_f64()
    );
    figures.extend(latency_figures(
        "latency_200_sessions_in_step",
        &format!("{active_count} active in step + {idle_count} idle: send -> recv event"),
        &mut in_step,
        None,
        10.0,
        &in_step_note,
    ));
    Ok(figures)
}

/// When the active sessions send in each 40 ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phases {
    /// Each at its own moment, spread evenly over the 40 ms, as independent students would.
    Spread,
    /// All at the start of each 40 ms.
    InStep,
}

/// Has each session echo 25 messages a second for `duration`; gives the sessions back, with
/// every round's latency.
async fn echo_rounds<Client: EchoClient>(
    sessions: Vec<Client>,
    phases: Phases,
    duration: Duration,
) -> Result<(Vec<Client>, Vec<Duration>), BenchError> {
    let period = Duration::from_millis(40);
    let count = sessions.len();
    let start = tokio::time::Instant::now();
    let until = Instant::now() + duration;
    let mut tasks = Vec::with_capacity(count);
    for (index, mut session) in sessions.into_iter().enumerate() {
        let offset = match phases {
            Phases::Spread => period.mul_f64(index as f64 / count as f64),
            Phases::InStep => Duration::ZERO,
        };
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(start + offset, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut latencies = Vec::new();
            let mut round = *session.rounds();
            while Instant::now() < until {
                ticks.tick().await;
                latencies.push(
                    session
                        .round(&payload(index, round))
                        .await
                        .map_err(|error| fail(&format!("session {index} round {round}"), error))?,
                );
                round += 1;
            }
            *session.rounds() = round;
            Ok::<_, BenchError>((session, latencies))
        }));
    }
    let mut sessions = Vec::with_capacity(count);
    let mut latencies = Vec::new();
    for task in tasks {
        let (session, mut session_latencies) = task
            .await
            .map_err(|error| fail("an active session", error))??;
        sessions.push(session);
        latencies.append(&mut session_latencies);
    }
    Ok((sessions, latencies))
}

// ----- The cost of watching -----

async fn cost_of_watching(
    server: &ServerProcess,
    options: &BenchOptions,
) -> Result<Vec<Figure>, BenchError> {
    let exchanges = options.scaled(200, 20);

    // Each watched exchange is followed by the same exchange asked for on the same session
    // with no events sent (`quiet`): the WebSocket's round trips, which a page pays anyway.
    let mut watched = Vec::with_capacity(exchanges);
    let mut quiet = Vec::with_capacity(exchanges);
    let mut ws = open_session(server.addr).await?;
    for _ in 0..exchanges {
        watched.push(one_exchange(&mut ws, false).await?);
        quiet.push(one_exchange(&mut ws, true).await?);
    }
    let _ = ws.close(None).await;

    let mut unwatched = Vec::with_capacity(exchanges);
    for _ in 0..exchanges {
        let began = Instant::now();
        let outcome = crate::run::play_unwatched("simple-server-client")
            .await
            .map_err(|error| fail("an unwatched exchange", error))?;
        if outcome != RunOutcome::Completed {
            return Err(BenchError(format!(
                "an unwatched exchange ended {outcome:?}"
            )));
        }
        unwatched.push(began.elapsed());
    }

    // The same exchange with its events made and collected, but not sent anywhere: what the
    // events cost, apart from the WebSocket's round trips.
    let mut recorded = Vec::with_capacity(exchanges);
    for _ in 0..exchanges {
        let began = Instant::now();
        let (events, outcome) = crate::run::record("simple-server-client")
            .await
            .map_err(|error| fail("a recorded exchange", error))?;
        if outcome != RunOutcome::Completed || events.is_empty() {
            return Err(BenchError(format!("a recorded exchange ended {outcome:?}")));
        }
        recorded.push(began.elapsed());
    }

    let python_runs = options.scaled(10, 2);
    let python = tokio::task::spawn_blocking(move || python_exchanges(python_runs, false))
        .await
        .map_err(|error| fail("running Python", error))?;
    let straced = tokio::task::spawn_blocking(move || python_exchanges(python_runs, true))
        .await
        .map_err(|error| fail("running strace", error))?;

    let watched_ms = millis(median(&mut watched));
    let quiet_ms = millis(median(&mut quiet));
    let unwatched_ms = millis(median(&mut unwatched));
    let mut figures = vec![
        Figure::new(
            "exchange_watched_ms",
            "Simple Server/Client exchange, played and streamed to a page",
            Some(watched_ms),
            "ms",
            None,
        )
        .note(format!(
            "median of {exchanges}: from Play sent to RunFinished received"
        )),
        Figure::new(
            "exchange_unwatched_ms",
            "the same exchange with no events",
            Some(unwatched_ms),
            "ms",
            None,
        )
        .note("the same calls by the same lab code, in this process, with nobody watching"),
        Figure::new(
            "exchange_recorded_ms",
            "the same exchange with its events made, not sent",
            Some(millis(median(&mut recorded))),
            "ms",
            None,
        )
        .note(
            "in this process: every event and its kernel views, collected; the watched \
             exchange adds the WebSocket's round trips (Play, RunStarted, events, RunFinished)",
        ),
        Figure::new(
            "watching_cost_ratio",
            "watched / unwatched",
            Some(watched_ms / unwatched_ms),
            "x",
            Some(Goal::AtMost(2.0)),
        ),
        Figure::new(
            "exchange_quiet_ms",
            "the same exchange asked for over the WebSocket, no events sent",
            Some(quiet_ms),
            "ms",
            None,
        )
        .note(format!(
            "median of {exchanges}, each right after a watched one on the same session: Play \
             with quiet, RunStarted, RunFinished"
        )),
        Figure::new(
            "watching_over_quiet",
            "watched / asked for over the WebSocket with no events",
            Some(watched_ms / quiet_ms),
            "x",
            Some(Goal::AtMost(1.5)),
        )
        .note("what the events and the kernel's views cost, the page's round trips apart"),
    ];
    match (python, straced) {
        (Ok(mut python), Ok(mut straced)) => {
            let python_ms = millis(median(&mut python));
            let straced_ms = millis(median(&mut straced));
            figures.push(
                Figure::new(
                    "exchange_python_ms",
                    "the tutorial's Python server and client, run plainly",
                    Some(python_ms),
                    "ms",
                    None,
                )
                .note(format!(
                    "median of {python_runs}: both interpreters started, one exchange, both ended"
                )),
            );
            figures.push(Figure::new(
                "exchange_strace_ms",
                "the same Python programs under strace -f",
                Some(straced_ms),
                "ms",
                None,
            ));
            figures.push(Figure::new(
                "strace_over_watched",
                "strace -f / watched in Socket Lab",
                Some(straced_ms / watched_ms),
                "x",
                Some(Goal::AtLeast(10.0)),
            ));
        }
        (python, straced) => {
            let problem = python.err().or(straced.err()).unwrap_or_default();
            figures.push(
                Figure::new(
                    "strace_over_watched",
                    "strace -f / watched in Socket Lab",
                    None,
                    "x",
                    Some(Goal::AtLeast(10.0)),
                )
                .note(format!("not measured: {problem}")),
            );
        }
    }
    Ok(figures)
}

/// One Simple Server/Client exchange asked for on `ws`, from Play sent to RunFinished
/// received; `quiet` asks for it with no events sent.
async fn one_exchange(ws: &mut Ws, quiet: bool) -> Result<Duration, BenchError> {
    let began = Instant::now();
    let play = if quiet {
        r#"{"type":"play","scenario":"simple-server-client","quiet":true}"#
    } else {
        r#"{"type":"play","scenario":"simple-server-client"}"#
    };
    ws.send(Message::Text(play.into()))
        .await
        .map_err(|error| fail("sending Play", error))?;
    let mut events = 0;
    loop {
        match next_message(ws).await?.1 {
            ServerMessage::Events { events: batch, .. } => events += batch.len(),
            ServerMessage::Error { message, .. } => {
                return Err(BenchError(format!("an exchange was refused: {message}")));
            }
            ServerMessage::RunFinished { outcome, .. } => {
                if outcome != RunOutcome::Completed || (events == 0) != quiet {
                    return Err(BenchError(format!(
                        "an exchange (quiet: {quiet}) ended {outcome:?} with {events} events"
                    )));
                }
                return Ok(began.elapsed());
            }
            _ => {}
        }
    }
}

/// Times `runs` exchanges of the tutorial's Python programs, each from starting the server to
/// both having ended; under `strace -f` (writing its trace nowhere) when `straced`.
fn python_exchanges(runs: usize, straced: bool) -> Result<Vec<Duration>, String> {
    let dir = std::env::temp_dir().join(format!("socket-lab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
    let server_py = dir.join("server.py");
    let client_py = dir.join("client.py");
    std::fs::write(&server_py, PYTHON_SERVER).map_err(|error| error.to_string())?;
    std::fs::write(&client_py, PYTHON_CLIENT).map_err(|error| error.to_string())?;
    let python = Path::new("/usr/bin/python3");
    if !python.is_file() {
        return Err("no /usr/bin/python3 (scripts/setup.sh --test installs it)".into());
    }
    let command = |script: &Path, args: &[String]| {
        let mut command = if straced {
            let mut command = Command::new("strace");
            command.args(["-f", "-o", "/dev/null"]).arg(python);
            command
        } else {
            Command::new(python)
        };
        command.arg(script).args(args);
        command
    };
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let port = free_port().map_err(|error| error.to_string())?.to_string();
        let began = Instant::now();
        let mut server = command(&server_py, std::slice::from_ref(&port))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| {
                format!(
                    "could not run {}: {error}",
                    if straced { "strace" } else { "python3" }
                )
            })?;
        let mut server_out = BufReader::new(server.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        // The server says `listening` once it listens; the client starts then, as a student
        // starts it in a second terminal.
        if server_out
            .read_line(&mut line)
            .map_err(|error| error.to_string())?
            == 0
        {
            let _ = server.kill();
            return Err("the Python server ended before it listened".into());
        }
        let client = command(&client_py, &["127.0.0.1".to_owned(), port])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|error| error.to_string())?;
        let mut rest = String::new();
        let _ = server_out.read_to_string(&mut rest);
        let server_status = server.wait().map_err(|error| error.to_string())?;
        if !client.success() || !server_status.success() {
            return Err(format!(
                "the Python exchange failed (client {client}, server {server_status})"
            ));
        }
        times.push(began.elapsed());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(times)
}

// ----- Small helpers -----

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    percentile(times, 0.5)
}

/// The nearest-rank percentile of sorted `times`.
fn percentile(sorted: &[Duration], quantile: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    // The rank is between 1 and the length, which is far below 2^52.
    let rank = (quantile * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Today's date in UTC, from the system clock.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() / 86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |text: &str, name: &str| -> Option<String> {
        text.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_once(':'))
            .map(|(_, value)| value.trim().to_owned())
    };
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        cpu_model: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
        memory_mib: field(&meminfo, "MemTotal")
            .and_then(|value| value.trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |release| release.trim().to_owned()),
    }
}

/// What a parsed report says of each figure, by id; for tests and scripts that read `--json`.
pub fn by_id(report: &Report) -> HashMap<&str, &Figure> {
    report
        .figures
        .iter()
        .map(|figure| (figure.id.as_str(), figure))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_786), (2026, 11, 29));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let times: Vec<Duration> = (1..=1000).map(Duration::from_micros).collect();
        assert_eq!(percentile(&times, 0.5), Duration::from_micros(500));
        assert_eq!(percentile(&times, 0.99), Duration::from_micros(990));
        assert_eq!(percentile(&times, 0.999), Duration::from_micros(999));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn accounting_finds_gaps_and_doubles() {
        let range = |first_seq, last_seq| Dropped {
            count: last_seq - first_seq + 1,
            first_seq,
            last_seq,
            calls: Vec::new(),
        };
        assert!(every_seq_once(&mut [0, 1, 5], &[range(2, 4)]));
        assert!(
            !every_seq_once(&mut [0, 1, 5], &[range(2, 3)]),
            "4 is missing"
        );
        assert!(!every_seq_once(&mut [0, 1, 3], &[range(2, 3)]), "3 twice");
        assert!(!every_seq_once(&mut [1, 2], &[]), "0 is missing");
    }

    #[test]
    fn goals_decide_met() {
        let at_most = Figure::new("a", "a", Some(2.0), "ms", Some(Goal::AtMost(1.0)));
        assert_eq!(at_most.met, Some(false));
        let at_least = Figure::new("b", "b", Some(2.0), "x", Some(Goal::AtLeast(1.0)));
        assert_eq!(at_least.met, Some(true));
        let unmeasured = Figure::new("c", "c", None, "x", Some(Goal::AtLeast(1.0)));
        assert_eq!(unmeasured.met, None);
    }
}
