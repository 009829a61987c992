//! End-to-end tests: the built page in headless Chromium, driven through chromedriver.
//!
//! They need `dist/` (from `trunk build --release`) and `chromedriver` with Chromium, which
//! `scripts/test.sh` provides; so they are `#[ignore]`d for a bare `cargo test`, and the test
//! script runs them with `--include-ignored`. Screenshots go to `e2e-artifacts/`.

mod common;
// The page laid out for one screen, checked by its boxes at a projector's size and a laptop's.
#[path = "browser/layout.rs"]
mod layout;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Serves the app on `addr` until the returned sender is used.
async fn start_backend(addr: SocketAddr) -> (SocketAddr, oneshot::Sender<()>) {
    let dist = repo_root().join("dist");
    assert!(
        dist.join("index.html").is_file(),
        "{} has no built frontend: run `trunk build --release` (scripts/test.sh does)",
        dist.display()
    );
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let config = backend::Config::new(dist);
    tokio::spawn(backend::serve(listener, config, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// A chromedriver process and the browser profile it uses, both gone when dropped.
struct Driver {
    process: Child,
    port: u16,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

async fn start_browser() -> (Driver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child =
        Command::new(std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: run scripts/setup.sh --test");
    let driver = Driver {
        process: child,
        port,
        profile: fresh_profile_dir(port),
    };
    let profile = &driver.profile;
    let capabilities: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
        "goog:chromeOptions": {
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1400,1300", format!("--user-data-dir={}", profile.display())]
        }
    }))
    .unwrap();
    // More arguments for Chromium, for a look inside it: PERFORMANCE.md's traces were made
    // with CHROMIUM_EXTRA="--trace-startup=devtools.timeline,blink.user_timing
    // --trace-startup-file=/tmp/trace.json --trace-startup-format=json".
    let mut capabilities = capabilities;
    if let Ok(extra) = std::env::var("CHROMIUM_EXTRA") {
        let args = capabilities["goog:chromeOptions"]["args"]
            .as_array_mut()
            .unwrap();
        args.extend(
            extra
                .split_whitespace()
                .map(|a| serde_json::Value::String(a.into())),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
        {
            Ok(client) => return (driver, client),
            Err(error) if Instant::now() > deadline => {
                panic!("chromedriver did not start: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// A fresh, empty directory: Chromium must not reuse a profile (it would serve a stale wasm).
/// The driver's port is free only to this test at this moment, so it makes the name unique.
fn fresh_profile_dir(port: u16) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("socket-lab-chromium-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Opens a trace file in the page, as a user does with "Open trace…".
async fn open_trace_file(client: &Client, path: &std::path::Path) -> Result<(), String> {
    client
        .find(Locator::Css("[data-testid='open-trace']"))
        .await
        .map_err(|e| e.to_string())?
        .send_keys(&path.to_string_lossy())
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Waits until the element's text contains `want`; returns the text.
async fn wait_for_text(client: &Client, testid: &str, want: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let selector = format!("[data-testid='{testid}']");
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(element) = client.find(Locator::Css(&selector)).await {
            last = element.text().await.unwrap_or_default();
            if last.contains(want) {
                return Ok(last);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "{testid} never showed {want:?}; it showed {last:?}"
    ))
}

/// Opens `url` in the browser.
async fn goto(client: &Client, url: &str) -> Result<(), String> {
    client.goto(url).await.map_err(|e| format!("{url}: {e}"))
}

/// Runs `js` in the page (WebDriver's execute) and returns what it returns.
async fn script(client: &Client, js: &str) -> Result<serde_json::Value, String> {
    client.execute(js, vec![]).await.map_err(|e| e.to_string())
}

/// Serves the app, opens a browser, runs `test` on the two, and closes the browser before
/// the test fails, so that no browser is left behind.
async fn in_browser(test: impl AsyncFnOnce(&Client, SocketAddr) -> Result<(), String>) {
    let (addr, _stop) = start_backend("127.0.0.1:0".parse().unwrap()).await;
    let (_driver, client) = start_browser().await;
    let result = test(&client, addr).await;
    let _ = client.close().await;
    result.unwrap();
}

/// Opens a browser for a test that serves the app itself (with settings of its own, or
/// stopping and restarting it), and closes the browser before the test fails.
async fn in_browser_alone(test: impl AsyncFnOnce(&Client) -> Result<(), String>) {
    let (_driver, client) = start_browser().await;
    let result = test(&client).await;
    let _ = client.close().await;
    result.unwrap();
}

async fn save_screenshot(client: &Client, name: &str) {
    let dir = repo_root().join("e2e-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

async fn deep_link_plays_the_simple_scenario(
    client: &Client,
    base: SocketAddr,
) -> Result<(), String> {
    goto(
        client,
        &format!("http://{base}/?scenario=simple-server-client&play=1"),
    )
    .await?;
    // The client side shows the bytes the server sent.
    wait_for_text(client, "endpoint-client.s", "Connection is successful").await?;
    wait_for_text(client, "run-status", "finished").await?;
    // Both endpoints and the accepted connection, with the real port, are on the page.
    wait_for_text(client, "endpoint-server.s", "12345").await?;
    wait_for_text(client, "endpoint-server.con", "12345").await?;
    // The diagram draws the message, and the log, scrolled to (the page draws it only while
    // it is on screen), has all 24 events.
    wait_for_text(client, "diagram", "b'Connection is successful'").await?;
    save_screenshot(client, "simple-server-client.png").await;
    let rows = log_rows_in_view(client, 24).await?;
    if rows != 24 {
        return Err(format!("the log has {rows} rows, not 24"));
    }

    // Opened again, the page's code comes from the browser's cache, without a request: its
    // files are named after their contents and kept for good.
    goto(
        client,
        &format!("http://{base}/?scenario=simple-server-client"),
    )
    .await?;
    wait_for_text(client, "connection-status", "connected").await?;
    let code = script(
        client,
        "return performance.getEntriesByType('resource')
                 .filter(e => e.name.endsWith('.wasm') || e.name.endsWith('.js'))
                 .map(e => [e.name, e.transferSize, e.decodedBodySize]);",
    )
    .await?;
    let code: Vec<(String, u64, u64)> = serde_json::from_value(code).map_err(|e| e.to_string())?;
    if code.len() != 2 || code.iter().any(|(_, sent, size)| *sent != 0 || *size == 0) {
        return Err(format!(
            "opened again, the page's code came as (name, bytes over the wire, size): {code:?}"
        ));
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn the_deep_link_plays_and_shows_the_message() {
    in_browser(deep_link_plays_the_simple_scenario).await;
}

async fn page_reconnects(client: &Client) -> Result<(), String> {
    let (addr, stop) = start_backend("127.0.0.1:0".parse().unwrap()).await;
    goto(client, &format!("http://{addr}/")).await?;
    wait_for_text(client, "connection-status", "connected").await?;
    stop.send(())
        .map_err(|()| "the server had already stopped".to_owned())?;
    wait_for_text(client, "connection-status", "reconnecting").await?;
    save_screenshot(client, "backend-lost.png").await;
    // The backend comes back on the same address; the page finds it by itself and plays.
    let (_addr, _stop) = start_backend(addr).await;
    wait_for_text(client, "connection-status", "connected").await?;
    client
        .find(Locator::Css("[data-testid='play']"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    wait_for_text(client, "endpoint-client.s", "Connection is successful").await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn the_page_says_when_the_backend_restarts_and_reconnects() {
    in_browser_alone(page_reconnects).await;
}

/// For each scenario, something its page must show once it has played: (scenario, the
/// element's test id, the text).
const WHAT_EACH_SCENARIO_SHOWS: &[(&str, &str, &str)] = &[
    (
        "simple-server-client",
        "endpoint-client.s",
        "Connection is successful",
    ),
    ("tcp-echo", "endpoint-client.s", "Echo this back"),
    ("udp-echo", "endpoint-client.s", "Hello, UDP"),
    ("unix-stream", "endpoint-server.s", "server.sock"),
    ("unix-dgram", "endpoint-client.s", "Hello, datagram"),
    ("ipv6-echo", "endpoint-server.s", "::1"),
    ("multiple-clients", "endpoint-client3.s", "You are client 3"),
    ("byte-stream", "endpoint-server.con", "Hello, world!"),
    ("datagram-boundaries", "endpoint-server.s", "three th"),
    ("half-close", "endpoint-client.s", "TIME_WAIT"),
    ("connection-refused", "event-log", "ECONNREFUSED"),
    ("address-in-use", "event-log", "EADDRINUSE"),
    ("reset", "event-log", "ECONNRESET"),
    ("nonblocking", "event-log", "TimeoutError"),
    ("port-unreachable", "event-log", "port unreachable"),
];

async fn every_scenario_plays(client: &Client, base: SocketAddr) -> Result<(), String> {
    let scenarios = backend::scenario_list();
    let listed: Vec<&str> = scenarios.iter().map(|(id, _)| *id).collect();
    let checked: Vec<&str> = WHAT_EACH_SCENARIO_SHOWS
        .iter()
        .map(|(id, ..)| *id)
        .collect();
    if listed != checked {
        return Err(format!("scenarios {listed:?} but checks for {checked:?}"));
    }
    for (id, testid, text) in WHAT_EACH_SCENARIO_SHOWS {
        goto(client, &format!("http://{base}/?scenario={id}&play=1")).await?;
        let status = wait_for_text(client, "run-status", "finished")
            .await
            .map_err(|error| format!("{id}: {error}"))?;
        if status.contains("failed") || status.contains("stopped") {
            return Err(format!("{id}: {status}"));
        }
        // The page draws the log and the diagram only while they are near the window, so
        // the element is brought into view before its text is read: a log that was drawn
        // while the run was still going, then scrolled out of reach, keeps its old rows
        // (this flaked for `reset`, whose last events came after the log was last drawn).
        script(
            client,
            &format!("document.querySelector(\"[data-testid='{testid}']\").scrollIntoView();"),
        )
        .await?;
        wait_for_text(client, testid, text)
            .await
            .map_err(|error| format!("{id}: {error}"))?;
        let rows = log_rows_in_view(client, 4).await?;
        if rows < 4 {
            return Err(format!("{id}: the log has only {rows} rows"));
        }
        // The scenario picker names the scenario that is playing.
        let chosen = client
            .find(Locator::Css("[data-testid='scenario-select']"))
            .await
            .map_err(|e| e.to_string())?
            .prop("value")
            .await
            .map_err(|e| e.to_string())?;
        if chosen.as_deref() != Some(*id) {
            return Err(format!("{id}: the scenario picker shows {chosen:?}"));
        }
        // The screenshot shows the page as it opens, from its top.
        script(client, "window.scrollTo(0, 0);").await?;
        save_screenshot(client, &format!("scenario-{id}.png")).await;
    }
    // Stepped to the server's first recvfrom, the UDP card names the kernel's figure for what
    // it is: the size of the next datagram waiting (7 bytes of 'two two'), not of both.
    goto(
        client,
        &format!("http://{base}/?scenario=datagram-boundaries&play=1&step=15"),
    )
    .await?;
    wait_for_text(client, "step-label", "event 16 of").await?;
    let card = wait_for_text(client, "endpoint-server.s", "next datagram").await?;
    if !card.contains("next datagram\n7 B") && !card.contains("next datagram 7 B") {
        return Err(format!("the UDP card reads {card:?}"));
    }
    // The Unix server closes first. One step before the end (the client's close() called),
    // the client's socket is still connected, and its card says that the peer will send
    // nothing more, where a TCP card would read CLOSE_WAIT.
    goto(
        client,
        &format!("http://{base}/?scenario=unix-stream&play=1"),
    )
    .await?;
    wait_for_text(client, "run-status", "finished").await?;
    click(client, "step-back").await?;
    wait_for_text(client, "explanation", "close()").await?;
    wait_for_text(client, "endpoint-client.s", "CONNECTED · peer closed").await?;
    save_screenshot(client, "unix-peer-closed.png").await;
    // In a phone's or a split screen's narrow window, a program's long lines scroll inside
    // its box, and the page is no wider than the window.
    client
        .set_window_size(400, 900)
        .await
        .map_err(|e| e.to_string())?;
    goto(
        client,
        &format!("http://{base}/?scenario=tcp-echo&play=1&step=12"),
    )
    .await?;
    wait_for_text(client, "step-label", "event 13 of").await?;
    let widths = script(
        client,
        "const page = document.documentElement, code = document.querySelector(\"[data-testid='code-server']\");
         return [page.scrollWidth, page.clientWidth, code.scrollWidth, code.clientWidth];",
    )
    .await?;
    save_screenshot(client, "narrow-window.png").await;
    client
        .set_window_size(1400, 1300)
        .await
        .map_err(|e| e.to_string())?;
    let width = |index: usize| widths[index].as_i64().unwrap_or(i64::MAX);
    if width(0) > width(1) {
        return Err(format!("a narrow window scrolls sideways: {widths}"));
    }
    if width(2) <= width(3) {
        return Err(format!(
            "the server's program should be wider than its box, to scroll in it: {widths}"
        ));
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn the_page_plays_every_scenario() {
    in_browser(every_scenario_plays).await;
}

async fn click(client: &Client, testid: &str) -> Result<(), String> {
    client
        .find(Locator::Css(&format!("[data-testid='{testid}']")))
        .await
        .map_err(|e| format!("{testid}: {e}"))?
        .click()
        .await
        .map_err(|e| format!("{testid}: {e}"))
}

/// The text of the highlighted line of a role's program.
async fn current_line(client: &Client, role: &str) -> Result<String, String> {
    client
        .find(Locator::Css(&format!(
            "[data-testid='code-{role}'] [data-testid='current-line']"
        )))
        .await
        .map_err(|e| format!("no current line in {role}'s code: {e}"))?
        .text()
        .await
        .map_err(|e| e.to_string())
}

async fn stepping_moves_the_code_and_the_diagram(
    client: &Client,
    base: SocketAddr,
) -> Result<(), String> {
    goto(
        client,
        &format!("http://{base}/?scenario=simple-server-client&play=1"),
    )
    .await?;
    wait_for_text(client, "run-status", "finished").await?;
    click(client, "step-first").await?;
    wait_for_text(client, "step-label", "event 1 of 24").await?;
    let line = current_line(client, "server").await?;
    if !line.contains("s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)") {
        return Err(format!("at the first event the server's line is {line:?}"));
    }
    // Events 1 to 5: socket enters and returns, gethostname enters and returns, bind enters.
    for _ in 0..4 {
        click(client, "step-forward").await?;
    }
    wait_for_text(client, "step-label", "event 5 of 24").await?;
    let line = current_line(client, "server").await?;
    if !line.contains("s.bind((host, port))") {
        return Err(format!("at bind the server's line is {line:?}"));
    }
    wait_for_text(client, "explanation", "bind(").await?;
    // At that point the client has not started, and the diagram shows no client yet.
    let diagram = wait_for_text(client, "diagram", "server.s").await?;
    if diagram.contains("client.s") {
        return Err("the diagram shows the client before it started".to_owned());
    }
    click(client, "step-back").await?;
    wait_for_text(client, "step-label", "event 4 of 24").await?;
    let line = current_line(client, "server").await?;
    if !line.contains("socket.gethostname()") {
        return Err(format!("one step back the server's line is {line:?}"));
    }
    // The keyboard steps too.
    client
        .find(Locator::Css("body"))
        .await
        .map_err(|e| e.to_string())?
        .send_keys("\u{E014}") // WebDriver's ArrowRight
        .await
        .map_err(|e| e.to_string())?;
    wait_for_text(client, "step-label", "event 5 of 24").await?;
    // The diagram's own styles stay inside the diagram (an inline SVG's <style> applies to
    // the whole page; a clash once faded the title).
    let opacity = script(
        client,
        "return getComputedStyle(document.querySelector('section.summary')).opacity;",
    )
    .await?;
    if opacity.as_str() != Some("1") {
        return Err(format!("the summary's opacity is {opacity}"));
    }
    save_screenshot(client, "stepping.png").await;
    // Once the server's program has ended (after con.close(), it breaks out of its loop),
    // its listener is closed though no close() was called: the kernel no longer has it.
    goto(
        client,
        &format!("http://{base}/?scenario=simple-server-client&play=1&step=21"),
    )
    .await?;
    wait_for_text(client, "step-label", "event 22 of 24").await?;
    let state = client
        .find(Locator::Css(
            "[data-testid='endpoint-server.s'] [data-testid='state']",
        ))
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    if state != "closed" {
        return Err(format!("server.s after its program ended reads {state:?}"));
    }
    // At the accept's return the new connection's card has the kernel's view already.
    goto(
        client,
        &format!("http://{base}/?scenario=simple-server-client&play=1&step=16"),
    )
    .await?;
    wait_for_text(client, "step-label", "event 17 of 24").await?;
    wait_for_text(client, "explanation", "accept() returned a new socket").await?;
    let card = wait_for_text(client, "endpoint-server.con", "ESTABLISHED").await?;
    if !card.contains("recv queue") {
        return Err(format!("at its accept, server.con's card reads {card:?}"));
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn stepping_back_and_forth_highlights_the_code_line() {
    in_browser(stepping_moves_the_code_and_the_diagram).await;
}

async fn a_saved_trace_replays_without_the_backend(client: &Client) -> Result<(), String> {
    let (addr, stop) = start_backend("127.0.0.1:0".parse().unwrap()).await;
    goto(
        client,
        &format!("http://{addr}/?scenario=half-close&play=1"),
    )
    .await?;
    wait_for_text(client, "run-status", "finished").await?;
    let events = usize::try_from(step_label(client).await?.1).map_err(|e| e.to_string())?;
    click(client, "save-trace").await?;
    let saved = read_download(client, ".json").await?;
    let file = shared::TraceFile::parse(&saved).map_err(|e| format!("the saved trace: {e}"))?;
    if file.events.len() != events || file.scenario.id != "half-close" {
        return Err(format!(
            "saved {} events of {}, the page showed {events}",
            file.events.len(),
            file.scenario.id
        ));
    }
    // The diagram exports as a standalone SVG, with its styles inside.
    click(client, "export-svg").await?;
    let svg = read_download(client, ".svg").await?;
    if !(svg.starts_with("<?xml")
        && svg.contains("<svg")
        && svg.contains("<style>")
        && svg.contains("shutdown(SHUT_WR)"))
    {
        return Err(format!(
            "the exported SVG starts {:?}",
            &svg[..svg.len().min(200)]
        ));
    }
    let path = std::env::temp_dir().join(format!("socket-lab-e2e-{}.json", std::process::id()));
    std::fs::write(&path, &saved).map_err(|e| e.to_string())?;
    // No backend any more.
    stop.send(())
        .map_err(|()| "the server had already stopped".to_owned())?;
    wait_for_text(client, "connection-status", "reconnecting").await?;
    open_trace_file(client, &path).await?;
    let status = wait_for_text(client, "run-status", "from socket-lab-").await?;
    wait_for_text(client, "step-label", &format!("event 1 of {events}")).await?;
    // Replaying it steps through the file at the chosen speed.
    client
        .find(Locator::Css("[data-testid='speed']"))
        .await
        .map_err(|e| e.to_string())?
        .select_by_value("20")
        .await
        .map_err(|e| e.to_string())?;
    click(client, "replay").await?;
    wait_for_text(client, "step-label", &format!("event {events} of {events}")).await?;
    wait_for_text(client, "endpoint-client.s", "TIME_WAIT").await?;
    save_screenshot(client, "replayed-trace.png").await;
    // The dark theme, on demand.
    click(client, "theme").await?;
    click(client, "theme").await?;
    wait_for_text(client, "theme", "dark").await?;
    save_screenshot(client, "dark-theme.png").await;
    let _ = std::fs::remove_file(&path);
    if !status.contains(".json") {
        return Err(format!("the status says {status:?}"));
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn a_saved_trace_opens_and_replays_with_the_backend_stopped() {
    in_browser_alone(a_saved_trace_replays_without_the_backend).await;
}

/// A trace of a client that sends `sends` times: two events a send, and a connect first.
fn long_trace(sends: usize) -> shared::TraceFile {
    use shared::{Bytes, Call, CallResult, Event, Phase, ReturnValue, SockAddr};
    let server = SockAddr::Inet {
        host: std::net::Ipv4Addr::new(127, 64, 0, 1),
        port: 12345,
    };
    let mut events = Vec::new();
    let mut push = |call: Call, value: Option<ReturnValue>| {
        let seq = events.len() as u64;
        events.push(Event {
            seq,
            t_us: seq * 3,
            role: "client".into(),
            endpoint: "client.s".into(),
            line: Some(5),
            call,
            phase: if value.is_some() {
                Phase::Return
            } else {
                Phase::Enter
            },
            result: value.map(|value| CallResult {
                value,
                fd: Some(3),
                local: None,
                peer: Some(server.clone()),
                peer_process: None,
            }),
            error: None,
            kernel: Vec::new(),
            watched: None,
        });
    };
    let connect = Call::Connect {
        address: server.clone(),
    };
    push(connect.clone(), None);
    push(connect, Some(ReturnValue::None));
    for n in 0..sends {
        let send = Call::Send {
            data: Bytes(format!("message {n}").into_bytes()),
        };
        push(send.clone(), None);
        push(send, Some(ReturnValue::Sent { count: 9 }));
    }
    shared::TraceFile {
        format: shared::TRACE_FORMAT.into(),
        protocol: shared::PROTOCOL_VERSION,
        scenario: shared::ScenarioInfo {
            id: "firehose".into(),
            title: "A client that sends and sends".into(),
            summary: "Ten thousand events.".into(),
            outside_roles: vec![],
        },
        programs: vec![shared::RoleProgram {
            role: "client".into(),
            code: "import socket\n\ns = socket.socket()\ns.connect(('127.64.0.1', 12345))\nwhile True:\n    s.send(b'message')\n".into(),
            outside: false,
            file: None,
        }],
        events,
        outcome: Some(shared::RunOutcome::Completed),
        capture: None,
        packets: Vec::new(),
    }
}

async fn ten_thousand_events_stay_usable(client: &Client, base: SocketAddr) -> Result<(), String> {
    let path =
        std::env::temp_dir().join(format!("socket-lab-e2e-long-{}.json", std::process::id()));
    std::fs::write(&path, long_trace(5_000).to_json()).map_err(|e| e.to_string())?;
    goto(client, &format!("http://{base}/")).await?;
    wait_for_text(client, "connection-status", "connected").await?;
    open_trace_file(client, &path).await?;
    wait_for_text(client, "step-label", "event 1 of 10002").await?;
    click(client, "follow").await?;
    wait_for_text(client, "step-label", "event 10002 of 10002").await?;
    click(client, "step-back").await?;
    wait_for_text(client, "step-label", "event 10001 of 10002").await?;
    // Only what is on screen is drawn: a few dozen log rows and diagram bars, not 10,000.
    let count = |selector: &'static str| async move {
        client
            .find_all(Locator::Css(selector))
            .await
            .map(|found| found.len())
            .map_err(|e| e.to_string())
    };
    // At first the 10,000 sends are folded into one row that counts them.
    wait_for_text(client, "diagram", "client.s send × 4999").await?;
    if count("[data-testid='diagram'] rect.bar").await? > 3 {
        return Err("the folded diagram still draws every send".to_owned());
    }
    // Zoomed in, it draws each call, but only those on screen.
    click(client, "zoom-in").await?;
    wait_for_text(client, "diagram", "send(b'message 4999')").await?;
    let rows = count("[data-testid='event-log'] tbody tr:not(.spacer)").await?;
    let bars = count("[data-testid='diagram'] rect.bar").await?;
    if !(1..200).contains(&rows) || !(1..200).contains(&bars) {
        return Err(format!("{rows} log rows and {bars} bars are drawn"));
    }
    // The newest rows are the ones in view.
    wait_for_text(client, "event-log", "message 4999").await?;
    save_screenshot(client, "ten-thousand-events.png").await;
    // Scrolled, and scrolled again, the diagram draws the calls where it is scrolled to:
    // row 2 + 2n holds send n.
    for send in [1500, 3000] {
        let drawn = client
            .execute(
                &format!(
                    "const box = document.querySelector('.diagram');
                     box.scrollTop = 48 + (2 + 2 * {send}) * 26 - 100;
                     await new Promise(done => setTimeout(done, 300));
                     return box.textContent.includes(\"send(b'message {send}')\");"
                ),
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?;
        if drawn != serde_json::Value::Bool(true) {
            return Err(format!(
                "the diagram scrolled to send {send} does not draw it"
            ));
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn a_session_with_ten_thousand_events_stays_usable() {
    in_browser(ten_thousand_events_stay_usable).await;
}

/// Fills in one of the manual mode's text fields.
async fn fill(client: &Client, testid: &str, value: &str) -> Result<(), String> {
    let field = client
        .find(Locator::Css(&format!("[data-testid='{testid}']")))
        .await
        .map_err(|e| format!("{testid}: {e}"))?;
    field.clear().await.map_err(|e| e.to_string())?;
    field.send_keys(value).await.map_err(|e| e.to_string())
}

async fn choose(client: &Client, testid: &str, value: &str) -> Result<(), String> {
    client
        .find(Locator::Css(&format!("[data-testid='{testid}']")))
        .await
        .map_err(|e| format!("{testid}: {e}"))?
        .select_by_value(value)
        .await
        .map_err(|e| format!("{testid}: {e}"))
}

/// Opens the page and its manual form, once the page is connected.
async fn open_the_manual_form(client: &Client, base: SocketAddr) -> Result<(), String> {
    goto(client, &format!("http://{base}/")).await?;
    wait_for_text(client, "connection-status", "connected").await?;
    client
        .find(Locator::Css("[data-testid='manual'] summary"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())
}

async fn manual_mode_shows_errors(client: &Client, base: SocketAddr) -> Result<(), String> {
    open_the_manual_form(client, base).await?;
    // A socket of the user's own.
    fill(client, "manual-endpoint", "s").await?;
    choose(client, "manual-call", "socket").await?;
    click(client, "manual-submit").await?;
    wait_for_text(client, "run-status", "running").await?;
    wait_for_text(client, "endpoint-s", "CLOSED").await?;
    // A field the form refuses, before anything is sent.
    choose(client, "manual-call", "connect").await?;
    fill(client, "manual-address", "127.0.0.1:99999").await?;
    click(client, "manual-submit").await?;
    wait_for_text(client, "manual-error", "0 to 65535").await?;
    // A call the kernel refuses: nothing listens on that port of this loopback address.
    fill(client, "manual-address", "127.31.41.59:9").await?;
    click(client, "manual-submit").await?;
    wait_for_text(client, "endpoint-s", "ECONNREFUSED").await?;
    wait_for_text(client, "event-log", "ConnectionRefusedError").await?;
    let problem = client
        .find(Locator::Css("[data-testid='manual-error']"))
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    if !problem.is_empty() {
        return Err(format!("the form still shows {problem:?}"));
    }
    // The sandbox is in the session's own network: the refused connect's SYN and the
    // kernel's RST are captured and listed.
    wait_for_text(
        client,
        "capture-status",
        "captured on the run's own network",
    )
    .await?;
    wait_for_text(client, "event-log", "RST").await?;
    save_screenshot(client, "manual-mode.png").await;
    // On the machine's network instead, where the student's own programs can reach it: the
    // sandbox starts afresh and says why it shows no packets.
    choose(client, "sandbox-network", "machine").await?;
    wait_for_text(
        client,
        "capture-status",
        "the sandbox is on the machine's network",
    )
    .await?;
    fill(client, "manual-endpoint", "t").await?;
    choose(client, "manual-call", "socket").await?;
    click(client, "manual-submit").await?;
    wait_for_text(client, "endpoint-t", "CLOSED").await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn manual_mode_shows_the_forms_and_the_kernels_errors() {
    in_browser(manual_mode_shows_errors).await;
}

async fn pausing_before_each_call(client: &Client, base: SocketAddr) -> Result<(), String> {
    goto(
        client,
        &format!("http://{base}/?scenario=simple-server-client&play=1&pause=1"),
    )
    .await?;
    // The first call is named before it is made, with its line marked in the code.
    wait_for_text(
        client,
        "explanation",
        "Next, server.s calls socket(AF_INET, SOCK_STREAM)",
    )
    .await?;
    let next_line = client
        .find(Locator::Css(
            "[data-testid='code-server'] [data-testid='next-line']",
        ))
        .await
        .map_err(|e| format!("no next line: {e}"))?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    if !next_line.contains("s = socket.socket") {
        return Err(format!("the next line is {next_line:?}"));
    }
    let before = wait_for_text(client, "run-status", "running").await?;
    click(client, "next-call").await?;
    wait_for_text(client, "step-label", "event 2 of 2").await?;
    wait_for_text(client, "explanation", "Next, server.s calls gethostname()").await?;
    // The keyboard's n makes the next call too.
    client
        .find(Locator::Css("body"))
        .await
        .map_err(|e| e.to_string())?
        .send_keys("n")
        .await
        .map_err(|e| e.to_string())?;
    wait_for_text(client, "step-label", "event 4 of 4").await?;
    wait_for_text(client, "explanation", "Next, server.s calls bind(").await?;
    save_screenshot(client, "pause-before-each-call.png").await;
    if !before.contains("running") {
        return Err(before);
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn pausing_before_each_call_shows_the_next_call_first() {
    in_browser(pausing_before_each_call).await;
}

/// axe-core's script, which `scripts/setup.sh --test` installs (`AXE_CORE_JS` names another).
fn axe_core_script() -> Result<String, String> {
    let path = std::env::var_os("AXE_CORE_JS").map_or_else(
        || {
            let tools = std::env::var_os("SOCKET_LAB_TOOLS").map_or_else(
                || {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/socket-lab-tools")
                },
                PathBuf::from,
            );
            tools.join("axe.min.js")
        },
        PathBuf::from,
    );
    std::fs::read_to_string(&path).map_err(|error| {
        format!(
            "axe-core is not at {} ({error}): run scripts/setup.sh --test",
            path.display()
        )
    })
}

/// What axe-core finds wrong in the page as it is now: each rule broken, with where.
async fn accessibility_violations(client: &Client, axe: &str) -> Result<Vec<String>, String> {
    script(client, &format!("{axe}\nreturn typeof axe;")).await?;
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
                .then(result => done(result.violations.map(rule =>
                    `${rule.id} (${rule.impact}): ${rule.help}, at ` +
                    rule.nodes.map(node => node.target.join(' ')).join('; '))))
                .catch(error => done([`axe failed: ${error}`]));",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_value(found).map_err(|e| e.to_string())
}

/// The page passes axe-core's audit (WCAG 2.1 A and AA, and axe's best practices) as it
/// opens with the manual form shown, paused with a call waiting, and after a run in the dark
/// theme: text readable on a lab's projector, every control named, every part of the page in
/// a landmark, and the scrolling boxes reachable from the keyboard.
async fn the_page_passes_an_accessibility_audit(
    client: &Client,
    base: SocketAddr,
) -> Result<(), String> {
    let axe = axe_core_script()?;
    let mut problems = Vec::new();
    open_the_manual_form(client, base).await?;
    for found in accessibility_violations(client, &axe).await? {
        problems.push(format!("as it opens: {found}"));
    }
    // Paused before each call, until the server waits in accept(): the next line marked, and
    // a card saying that its call has no answer yet.
    goto(
        client,
        &format!("http://{base}/?scenario=simple-server-client&play=1&pause=1"),
    )
    .await?;
    wait_for_text(client, "explanation", "Next, server.s calls").await?;
    for _ in 0..10 {
        let card = script(
            client,
            "const card = document.querySelector(\"[data-testid='endpoint-server.s']\");
             return card ? card.textContent : '';",
        )
        .await?;
        if card
            .as_str()
            .is_some_and(|text| text.contains("no answer yet"))
        {
            break;
        }
        click(client, "next-call").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_for_text(client, "endpoint-server.s", "no answer yet").await?;
    for found in accessibility_violations(client, &axe).await? {
        problems.push(format!("paused: {found}"));
    }
    // A whole run, in the dark theme (the button goes auto, light, dark).
    goto(client, &format!("http://{base}/?scenario=tcp-echo&play=1")).await?;
    wait_for_text(client, "run-status", "finished").await?;
    click(client, "theme").await?;
    click(client, "theme").await?;
    wait_for_text(client, "theme", "dark").await?;
    for found in accessibility_violations(client, &axe).await? {
        problems.push(format!("after a run, dark: {found}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[tokio::test]
#[ignore = "needs dist/, chromedriver and axe-core: run scripts/test.sh"]
async fn the_page_is_accessible() {
    in_browser(the_page_passes_an_accessibility_audit).await;
}

/// In a short window the diagram is far below it while a student's client sends, so the page
/// does not draw it; exported then, it is drawn first, and the file has the last message.
async fn a_diagram_off_screen_exports_as_it_is_now(
    client: &Client,
    base: SocketAddr,
) -> Result<(), String> {
    client
        .set_window_size(1400, 500)
        .await
        .map_err(|e| e.to_string())?;
    let port = open_echo_for_outside_client(client, base, "").await?;
    let mut stream = echo_client(port).await?;
    echo_rounds(&mut stream, 3).await?;
    wait_for_text(client, "endpoint-server.con", "received b'00000002'").await?;
    let below = script(
        client,
        "return document.querySelector('.diagram').getBoundingClientRect().top - innerHeight;",
    )
    .await?
    .as_f64()
    .unwrap_or_default();
    if below < 400.0 {
        return Err(format!(
            "the diagram is {below} px below the window: near enough to be drawn"
        ));
    }
    click(client, "export-svg").await?;
    let svg = read_download(client, ".svg").await?;
    if !(svg.contains("<svg") && svg.contains("b'00000002'")) {
        return Err(format!("the exported SVG has no last message: {svg}"));
    }
    // Exported, the diagram is again not drawn while it is scrolled away.
    echo_rounds(&mut stream, 5).await?;
    wait_for_text(client, "endpoint-server.con", "received b'00000004'").await?;
    let drawn = script(
        client,
        "return document.querySelector(\"[data-testid='diagram']\").textContent;",
    )
    .await?;
    if drawn.as_str().is_some_and(|text| text.contains("00000004")) {
        return Err("after the export, the diagram is drawn while scrolled away".into());
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn a_diagram_scrolled_away_exports_the_whole_run() {
    in_browser(a_diagram_off_screen_exports_as_it_is_now).await;
}

/// What the page last offered to download, a file whose name ends with `extension` (waited
/// for up to 5 s), read back through its download link.
async fn read_download(client: &Client, extension: &str) -> Result<String, String> {
    let contents = client
        .execute_async(
            "const [extension, done] = arguments;
             const link = document.querySelector(\"[data-testid='download-link']\");
             const read = tries => link.download.endsWith(extension) || tries == 0
                 ? fetch(link.href).then(r => r.text()).then(done, e => done('failed: ' + e))
                 : setTimeout(() => read(tries - 1), 50);
             read(100);",
            vec![serde_json::Value::String(extension.into())],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(contents.as_str().unwrap_or_default().to_owned())
}

async fn a_students_client_meets_the_pages_server(
    client: &Client,
    base: SocketAddr,
) -> Result<(), String> {
    let port = common::free_port();
    goto(
        client,
        &format!("http://{base}/?scenario=simple-server-client"),
    )
    .await?;
    wait_for_text(client, "connection-status", "connected").await?;
    choose(client, "outside-role", "client").await?;
    fill(client, "outside-port", &port.to_string()).await?;
    click(client, "play").await?;
    wait_for_text(client, "outside-instructions", "Waiting for your client").await?;
    wait_for_text(client, "code-client", &format!("port = {port}")).await?;
    // Meanwhile the server waits in accept(), and its card says so.
    wait_for_text(
        client,
        "endpoint-server.s",
        "called, no answer yet: accept()",
    )
    .await?;
    save_screenshot(client, "outside-client-waiting.png").await;
    // The student runs the tutorial's client.
    let output = tokio::task::spawn_blocking(move || common::tutorial_client(port))
        .await
        .map_err(|e| e.to_string())?;
    the_students_program_ran(client, &output, "Connection is successful").await?;
    // The connection to the student's client is an endpoint with the client's address.
    wait_for_text(client, "endpoint-server.con", "127.0.0.1").await?;
    save_screenshot(client, "outside-client.png").await;
    Ok(())
}

/// After the student's program has ended: it printed `printed`, the page's run finished,
/// and the student's program has a lifeline of its own, named as `ps` names it.
async fn the_students_program_ran(
    client: &Client,
    output: &std::process::Output,
    printed: &str,
) -> Result<(), String> {
    if !String::from_utf8_lossy(&output.stdout).contains(printed) {
        return Err(format!("the student's program printed {:?}", output.stdout));
    }
    wait_for_text(client, "run-status", "finished").await?;
    wait_for_text(client, "diagram", "python3[").await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn a_students_own_client_plays_against_the_page() {
    in_browser(a_students_client_meets_the_pages_server).await;
}

async fn a_students_server_meets_the_pages_client(
    client: &Client,
    base: SocketAddr,
) -> Result<(), String> {
    let port = common::free_port();
    goto(
        client,
        &format!("http://{base}/?scenario=simple-server-client&play=1&outside=server&port={port}"),
    )
    .await?;
    wait_for_text(client, "outside-instructions", "Waiting for your server").await?;
    wait_for_text(client, "code-server", &format!("port = {port}")).await?;
    // Before the student's server runs there is no call to explain, and the line says so.
    wait_for_text(client, "explanation", "No calls yet").await?;
    // Nor anything to save or export yet.
    for button in ["save-trace", "export-svg"] {
        let enabled = client
            .find(Locator::Css(&format!("[data-testid='{button}']")))
            .await
            .map_err(|e| e.to_string())?
            .is_enabled()
            .await
            .map_err(|e| e.to_string())?;
        if enabled {
            return Err(format!(
                "{button} can be pressed before the run's first call"
            ));
        }
    }
    save_screenshot(client, "outside-server-waiting.png").await;
    // The student runs the tutorial's server; the page's client connects to it.
    let student = common::tutorial_server(port);
    let output = tokio::task::spawn_blocking(move || student.wait_with_output())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    the_students_program_ran(client, &output, "Connecting with").await?;
    wait_for_text(client, "endpoint-client.s", "Connection is successful").await?;
    save_screenshot(client, "outside-server.png").await;
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn a_students_own_server_plays_against_the_page() {
    in_browser(a_students_server_meets_the_pages_client).await;
}

async fn the_page_passes_the_servers_token(client: &Client) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut config = backend::Config::new(repo_root().join("dist"));
    config.token = Some("lab-token-1234".into());
    tokio::spawn(backend::serve(listener, config, std::future::pending()));
    // Without the token the page cannot open a session, and says why: not a lost backend,
    // but the URL without its token.
    goto(client, &format!("http://{addr}/")).await?;
    wait_for_text(
        client,
        "connection-status",
        "open the URL the server printed",
    )
    .await?;
    save_screenshot(client, "token-missing.png").await;
    // With the URL the server printed, it can.
    goto(
        client,
        &format!("http://{addr}/?token=lab-token-1234&scenario=simple-server-client&play=1"),
    )
    .await?;
    wait_for_text(client, "connection-status", "connected").await?;
    wait_for_text(client, "run-status", "finished").await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn a_server_with_a_token_serves_only_pages_that_give_it() {
    in_browser_alone(the_page_passes_the_servers_token).await;
}

async fn the_page_says_which_limit_closed_its_session(client: &Client) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut config = backend::Config::new(repo_root().join("dist"));
    config.limits.idle_timeout = 2;
    tokio::spawn(backend::serve(listener, config, std::future::pending()));
    goto(client, &format!("http://{addr}/")).await?;
    wait_for_text(client, "connection-status", "connected").await?;
    // Nothing is sent for two seconds: the server closes the session and says why, and the
    // page shows it instead of reconnecting behind the student's back.
    let status = wait_for_text(client, "connection-status", "--idle-timeout").await?;
    if !status.contains("Reload the page") {
        return Err(format!("the status does not say what to do: {status:?}"));
    }
    save_screenshot(client, "idle-closed.png").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    wait_for_text(client, "connection-status", "--idle-timeout").await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn a_session_closed_for_a_limit_says_which() {
    in_browser_alone(the_page_says_which_limit_closed_its_session).await;
}

/// Connects to the echo server an outside-client run is waiting with on 127.0.0.1:`port`,
/// retrying while it does not listen yet.
/// Opens a live `tcp-echo` run by a link that leaves its client to the student's program
/// (which the test then plays), with `extra` added to the link; returns the port the
/// server waits on once the page says it waits.
async fn open_echo_for_outside_client(
    client: &Client,
    base: SocketAddr,
    extra: &str,
) -> Result<u16, String> {
    let port = common::free_port();
    goto(
        client,
        &format!("http://{base}/?scenario=tcp-echo&play=1&outside=client&port={port}{extra}"),
    )
    .await?;
    wait_for_text(client, "outside-instructions", "Waiting for your client").await?;
    Ok(port)
}

async fn echo_client(port: u16) -> Result<tokio::net::TcpStream, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => {
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                return Ok(stream);
            }
            Err(error) if Instant::now() > deadline => return Err(error.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Sends `rounds` 8-byte messages one after another, reading each echo: 4 events each
/// (the server's recv and sendall, entering and returning). Every 25 rounds it pauses for
/// 10 ms, so that at most 10,000 events a second come: a busy run's messages carry a bounded
/// number of bytes, and a faster client would see events counted as dropped.
async fn echo_rounds(stream: &mut tokio::net::TcpStream, rounds: usize) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut echo = [0; 8];
    for round in 0..rounds {
        if round % 25 == 24 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let message = format!("{:08}", round % 100_000_000);
        stream
            .write_all(message.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        stream
            .read_exact(&mut echo)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A real run of at least `events` events, recorded over a session as the page would save it.
async fn record_big_trace(addr: SocketAddr, events: usize) -> Result<String, String> {
    use futures_util::{SinkExt, StreamExt};
    use shared::{ServerMessage, TRACE_FORMAT, TraceFile};
    use tokio_tungstenite::tungstenite::Message;

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .map_err(|e| e.to_string())?;
    let port = common::free_port();
    let play = serde_json::json!({"type": "play", "scenario": "tcp-echo",
        "outside": {"role": "client", "port": port}});
    ws.send(Message::Text(play.to_string().into()))
        .await
        .map_err(|e| e.to_string())?;
    let client = tokio::spawn(async move {
        let mut stream = echo_client(port).await?;
        echo_rounds(&mut stream, events.div_ceil(4)).await
    });
    let mut trace = None;
    while let Some(frame) = ws.next().await {
        let Ok(Message::Text(text)) = frame else {
            continue;
        };
        match serde_json::from_str::<ServerMessage>(text.as_str()).map_err(|e| e.to_string())? {
            ServerMessage::RunStarted {
                scenario, programs, ..
            } => {
                trace = Some(TraceFile {
                    format: TRACE_FORMAT.to_owned(),
                    protocol: shared::PROTOCOL_VERSION,
                    scenario,
                    programs,
                    events: Vec::new(),
                    outcome: None,
                    capture: None,
                    packets: Vec::new(),
                });
            }
            ServerMessage::Events {
                events, dropped, ..
            } => {
                if !dropped.is_empty() {
                    return Err(format!("the recording dropped events: {dropped:?}"));
                }
                trace
                    .as_mut()
                    .ok_or("events before RunStarted")?
                    .events
                    .extend(events);
            }
            ServerMessage::RunFinished { outcome, .. } => {
                let mut trace = trace.ok_or("no RunStarted")?;
                trace.outcome = Some(outcome);
                client.await.map_err(|e| e.to_string())??;
                return Ok(trace.to_json());
            }
            _ => {}
        }
    }
    Err("the session ended before the run".to_owned())
}

/// The page's own measures (see `perf` in frontend/src/app.rs): name and duration in ms.
async fn page_measures(client: &Client) -> Result<Vec<(String, f64)>, String> {
    let entries = script(
        client,
        "return performance.getEntriesByType('measure').map(m => [m.name, m.duration]);",
    )
    .await?;
    serde_json::from_value(entries).map_err(|e| e.to_string())
}

/// Opens a trace file in the page (opened with `perf=1`) and waits for the page's own
/// measure of its first render, in milliseconds.
async fn open_and_time(client: &Client, path: &std::path::Path) -> Result<f64, String> {
    open_trace_file(client, path).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((_, ms)) = page_measures(client)
            .await?
            .into_iter()
            .find(|(name, _)| name == "open-trace")
        {
            return Ok(ms);
        }
        if Instant::now() > deadline {
            return Err("the page never measured opening the trace".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page with many events, timed by the page itself with the Performance API: opening a
/// trace of 10,000 events (the first render), and appending events as a live run makes them.
/// It prints the figures and writes them to `e2e-artifacts/page-performance.json`; what it
/// asserts is that they were measured on a page that shows every event, not how fast
/// (PERFORMANCE.md holds the goals and a run's figures).
async fn page_performance(client: &Client, base: SocketAddr) -> Result<(), String> {
    const EVENTS: usize = 10_000;
    const APPEND_BURSTS: usize = 20;
    let trace = record_big_trace(base, EVENTS).await?;
    let path = std::env::temp_dir().join(format!("socket-lab-{}-10k.json", std::process::id()));
    std::fs::write(&path, &trace).map_err(|e| e.to_string())?;
    let in_trace = shared::TraceFile::parse(&trace)?.events.len();

    goto(client, &format!("http://{base}/?perf=1")).await?;
    wait_for_text(client, "connection-status", "connected").await?;
    let (page_transferred, page_size) = page_download(client).await?;
    // The server sent the compressed copies that the build wrote (scripts/post-build.sh).
    if page_transferred * 2 > page_size {
        return Err(format!(
            "the page's code came as {page_transferred} bytes for {page_size}: not compressed"
        ));
    }
    let first_render = open_and_time(client, &path).await?;
    let _ = std::fs::remove_file(&path);
    let opening = page_measures(client).await?;
    let opening_ms = |part: &str| {
        opening
            .iter()
            .find(|(name, _)| name == part)
            .map_or(0.0, |(_, ms)| *ms)
    };
    let (text_ms, decode_ms) = (
        opening_ms("open-trace-text"),
        opening_ms("open-trace-decode"),
    );
    let model_ms = opening_ms("open-trace-model");
    println!("page parts while opening the trace (ms): {opening:?}");
    save_screenshot(client, "page-performance-10k.png").await;
    scroll_and_click_the_log(client, 5000).await?;
    // Scrolled again, the log draws the rows it shows then too.
    scroll_and_click_the_log(client, 2000).await?;
    // Stepping forwards from there, as the → key and a replay do: each step, the page shows
    // the run as it stood at the new event.
    let at = usize::try_from(step_label(client).await?.0).map_err(|e| e.to_string())?;
    let step_ms = steps(client, "ArrowRight").await?;
    wait_for_text(client, "step-label", &format!("event {} of", at + 100)).await?;
    // And back, as the ← key does.
    let step_back_ms = steps(client, "ArrowLeft").await?;
    wait_for_text(client, "step-label", &format!("event {at} of")).await?;

    // A live run: the same 10,000 events arrive as the run makes them, then bursts of 25
    // echoes (100 events) a quarter of a second apart, each appended to what is there.
    let port = open_echo_for_outside_client(client, base, "&perf=1").await?;
    let mut stream = echo_client(port).await?;
    echo_rounds(&mut stream, EVENTS / 4).await?;
    // The line that asked for the student's client now says it came.
    wait_for_text(client, "outside-instructions", "Your client has connected").await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    append_bursts(client, &mut stream, APPEND_BURSTS).await?;
    let appends = appended_events(client).await?;
    let waits = arrival_to_shown(client).await?;
    let applied_ms: f64 = page_measures(client)
        .await?
        .into_iter()
        .filter(|(name, _)| name.starts_with("applied:"))
        .map(|(_, ms)| ms)
        .sum();
    let mut parts = std::collections::BTreeMap::<String, (usize, f64)>::new();
    for (name, ms) in page_measures(client).await? {
        if !name.contains(':') && !name.starts_with("open-trace") {
            let part = parts.entry(name).or_default();
            part.0 += 1;
            part.1 += ms;
        }
    }
    println!("page parts while appending (count, ms in all): {parts:?}");
    // One echo at a time, as a student types: each is shown without waiting for more.
    script(client, "performance.clearMeasures();").await?;
    for _ in 0..5 {
        echo_rounds(&mut stream, 1).await?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let lone_waits = arrival_to_shown(client).await?;

    // The same with the log's panel in view: the log is drawn too, and the diagram still is.
    scroll_into_view(client, "event-log").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    append_bursts(client, &mut stream, APPEND_BURSTS / 2).await?;
    let appends_log_in_view = appended_events(client).await?;
    save_screenshot(client, "page-performance-log-in-view.png").await;
    // The log, followed while the events poured in, ends at the newest of them.
    let newest = step_label(client).await?.1;
    log_shows_last(client, newest - 1)
        .await
        .map_err(|e| format!("after the bursts with the log in view, {e}"))?;
    // With the log's panel closed, as a user closes it, the log is off screen again when the
    // run ends.
    script(
        client,
        "document.querySelector(\"[data-testid='log-panel']\").open = false;",
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // With the log's panel closed, as it starts on a laptop's screen, the log is not drawn.
    append_bursts(client, &mut stream, APPEND_BURSTS / 2).await?;
    let appends_log_closed = appended_events(client).await?;
    drop(stream);
    wait_for_text(client, "run-status", "finished").await?;
    save_screenshot(client, "page-performance-live.png").await;
    // The log, closed, was not drawn while the events came; printed, the page
    // shows it as it is now.
    let events = step_label(client).await?.1;
    script(client, "window.dispatchEvent(new Event('beforeprint'));").await?;
    log_shows_last(client, events - 1)
        .await
        .map_err(|e| format!("printed, {e}"))?;
    // Zoomed out, the echo's sends and receives are one folded row that counts them (kept
    // as the events came, not made again each frame).
    let folded = wait_for_text(client, "diagram", "zoom in to see each call").await?;
    if !(folded.contains("server.con recv × ") && folded.contains("server.con sendall × ")) {
        return Err(format!(
            "the folded row does not count the echo's calls: {folded}"
        ));
    }
    scroll_into_view(client, "diagram").await?;
    save_screenshot(client, "page-performance-folded.png").await;
    // Following the run with every call drawn, the diagram draws its last rows, where the
    // server closes its sockets, out of 12,000.
    click(client, "zoom-in").await?;
    wait_for_text(client, "diagram", "close()").await?;

    let appended: usize = appends.iter().map(|(events, _)| events).sum();
    let total_ms: f64 = appends.iter().map(|(_, ms)| ms).sum();
    let slowest_ms = appends.iter().map(|(_, ms)| *ms).fold(0.0, f64::max);
    let per_100_ms = total_ms / appended.max(1) as f64 * 100.0;
    let appended_log_in_view: usize = appends_log_in_view.iter().map(|(events, _)| events).sum();
    let per_100_log_in_view_ms = appends_log_in_view.iter().map(|(_, ms)| ms).sum::<f64>()
        / appended_log_in_view.max(1) as f64
        * 100.0;
    let appended_log_closed: usize = appends_log_closed.iter().map(|(events, _)| events).sum();
    let per_100_log_closed_ms = appends_log_closed.iter().map(|(_, ms)| ms).sum::<f64>()
        / appended_log_closed.max(1) as f64
        * 100.0;
    let firehose = firehose_into_the_page(client, base).await?;
    println!("page under a firehose: {firehose}");
    let mut figures = serde_json::json!({
        "page_transferred_bytes": page_transferred,
        "page_bytes": page_size,
        "trace_events": in_trace,
        "first_render_ms": first_render,
        "first_render_text_ms": text_ms,
        "first_render_decode_ms": decode_ms,
        "first_render_model_ms": model_ms,
        "appended_events": appended,
        "append_messages": appends.len(),
        "append_ms_per_100_events": per_100_ms,
        "append_frames_per_100_events": appends.len() as f64 / appended.max(1) as f64 * 100.0,
        "append_ms_per_100_events_log_in_view": per_100_log_in_view_ms,
        "append_ms_per_100_events_log_closed": per_100_log_closed_ms,
        "append_model_ms_per_100_events": applied_ms / appended.max(1) as f64 * 100.0,
        "slowest_append_message_ms": slowest_ms,
        "append_arrival_to_shown_ms_median": waits.get(waits.len() / 2),
        "append_arrival_to_shown_ms_max": waits.last(),
        "lone_echo_arrival_to_shown_ms_max": lone_waits.last(),
        "step_forward_ms": step_ms,
        "step_back_ms": step_back_ms,
    });
    if let (Some(figures), serde_json::Value::Object(firehose)) =
        (figures.as_object_mut(), firehose)
    {
        figures.extend(firehose);
    }
    println!("page performance: {figures}");
    let dir = repo_root().join("e2e-artifacts");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("page-performance.json"), figures.to_string())
        .map_err(|e| e.to_string())?;

    if in_trace < EVENTS {
        return Err(format!("the trace has {in_trace} events, not {EVENTS}"));
    }
    // Every appended event was measured: 25 echoes of 4 events in each burst.
    if appended != APPEND_BURSTS * 100
        || appended_log_in_view != APPEND_BURSTS / 2 * 100
        || appended_log_closed != APPEND_BURSTS / 2 * 100
    {
        return Err(format!(
            "the page measured {appended}, {appended_log_in_view} and {appended_log_closed} \
             appended events, not {}, {} and {}",
            APPEND_BURSTS * 100,
            APPEND_BURSTS / 2 * 100,
            APPEND_BURSTS / 2 * 100
        ));
    }
    Ok(())
}

/// Presses `key` (ArrowRight or ArrowLeft) 100 times, each in a task of its own after the
/// step's reactive updates; the page's script time a step, in ms.
async fn steps(client: &Client, key: &str) -> Result<f64, String> {
    client
        .execute(
            "const started = performance.now();
             for (let step = 0; step < 100; step++) {
                 window.dispatchEvent(new KeyboardEvent('keydown', {key: arguments[0]}));
                 // A task of its own, after the step's reactive updates (a timer would be
                 // held back 4 ms once nested).
                 await new Promise(done => {
                     const channel = new MessageChannel();
                     channel.port1.onmessage = done;
                     channel.port2.postMessage(0);
                 });
             }
             return (performance.now() - started) / 100;",
            vec![serde_json::Value::String(key.into())],
        )
        .await
        .map_err(|e| e.to_string())?
        .as_f64()
        .ok_or_else(|| format!("the page's script measured no step with {key}"))
}

/// What the step label says: the event shown and how many the page has ("event 5 of 12").
async fn step_label(client: &Client) -> Result<(u64, u64), String> {
    let label = wait_for_text(client, "step-label", "event ").await?;
    let number = |index| {
        label
            .split_whitespace()
            .nth(index)
            .and_then(|number| number.parse().ok())
            .ok_or_else(|| format!("the step label reads {label:?}"))
    };
    Ok((number(1)?, number(3)?))
}

/// The events the page appended since its measures were last cleared, and how long each
/// frame's took to show: (events, ms) a frame.
/// Clears the page's measures, then sends `bursts` bursts of 25 echoes (100 events), a
/// quarter of a second apart, and waits for the last to be shown.
async fn append_bursts(
    client: &Client,
    stream: &mut tokio::net::TcpStream,
    bursts: usize,
) -> Result<(), String> {
    script(client, "performance.clearMeasures();").await?;
    for _ in 0..bursts {
        echo_rounds(stream, 25).await?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}

async fn appended_events(client: &Client) -> Result<Vec<(usize, f64)>, String> {
    Ok(page_measures(client)
        .await?
        .into_iter()
        .filter_map(|(name, ms)| Some((name.strip_prefix("events:")?.parse().ok()?, ms)))
        .collect())
}

/// How long the events of each draw since the measures were last cleared waited, from the
/// first one's arrival to the page showing them: ms, shortest first.
async fn arrival_to_shown(client: &Client) -> Result<Vec<f64>, String> {
    let mut waits: Vec<f64> = page_measures(client)
        .await?
        .into_iter()
        .filter(|(name, _)| name.starts_with("arrival-to-shown:"))
        .map(|(_, ms)| ms)
        .collect();
    waits.sort_by(f64::total_cmp);
    Ok(waits)
}

/// The event log's rows once it is scrolled into view (the page draws it only while it is on
/// screen), waiting up to 5 s for at least `want` of them.
async fn log_rows_in_view(client: &Client, want: usize) -> Result<usize, String> {
    scroll_into_view(client, "event-log").await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = client
            .find_all(Locator::Css(
                "[data-testid='event-log'] tbody tr:not(.spacer):not(.packet)",
            ))
            .await
            .map_err(|e| e.to_string())?
            .len();
        if rows >= want || Instant::now() > deadline {
            return Ok(rows);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of every row of the event log: the page draws only the rows near the log box's
/// view, so the box is scrolled from its top to its end and each view read.
async fn whole_log_text(client: &Client) -> Result<String, String> {
    scroll_into_view(client, "event-log").await?;
    let mut text = String::new();
    for step in 0..40 {
        let at_end = script(
            client,
            &format!(
                "const box = document.querySelector('.log-box');
                 box.scrollTop = {step} * box.clientHeight / 2;
                 return box.scrollTop + box.clientHeight >= box.scrollHeight - 1;"
            ),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let shown = client
            .find(Locator::Css("[data-testid='event-log']"))
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        text.push_str(&shown);
        text.push('\n');
        if at_end == serde_json::Value::Bool(true) {
            break;
        }
    }
    Ok(text)
}

/// Scrolls the window to the element with the test id.
async fn scroll_into_view(client: &Client, testid: &str) -> Result<(), String> {
    // As a user brings a part into view: a closed panel around it (the log's) is opened, and
    // a part inside a box that scrolls of its own (the log's table, the diagram) is brought
    // in with its box, which keeps where it is scrolled to.
    client
        .execute(
            "const element = document.querySelector(`[data-testid='${arguments[0]}']`);
             const panel = element.closest('details');
             if (panel && !panel.open) panel.open = true;
             (element.closest('.log-box, .diagram') || element).scrollIntoView({block: 'nearest'});",
            vec![serde_json::Value::String(testid.into())],
        )
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Waits up to 5 s for the event log's last row to be event `want` and in view in the log's
/// box (scrolled to its end); says what it showed instead if not.
async fn log_shows_last(client: &Client, want: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let last_row = script(client, "const rows = document.querySelectorAll(\"[data-testid='event-log'] tbody tr:not(.spacer)\");
                 if (!rows.length) return null;
                 const row = rows[rows.length - 1].getBoundingClientRect();
                 const box = document.querySelector('.log-box').getBoundingClientRect();
                 return [rows[rows.length - 1].cells[0].textContent, row.bottom <= box.bottom + 1 && row.top >= box.top];").await?;
        let (last_seq, in_view): (String, bool) = serde_json::from_value(last_row.clone())
            .map_err(|_| format!("the log's last row: {last_row}"))?;
        let last_seq: u64 = last_seq
            .trim()
            .parse()
            .map_err(|_| format!("the log's last row has seq {last_seq:?}"))?;
        if last_seq == want && in_view {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the log's last row is event {last_seq} (in its box's view: {in_view}), not {want}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A student's client that sends as fast as it can (a firehose) into a live run: the page
/// goes on drawing frames while the events pour in, says how many were not sent to it whole,
/// and accounts for every event of the run. Returns its figures: the frames' gaps while the
/// run lasted, the browser's long tasks, and what the page received.
async fn firehose_into_the_page(
    client: &Client,
    base: SocketAddr,
) -> Result<serde_json::Value, String> {
    let port = open_echo_for_outside_client(client, base, "").await?;
    // Every animation frame's distance from the one before, and every task the browser found
    // too long (over 50 ms), from now until the run has ended.
    script(client, "window.frameGaps = [];
             window.longTasks = [];
             let last = performance.now();
             const tick = now => {
                 frameGaps.push(now - last);
                 last = now;
                 if (!window.stopFrames) requestAnimationFrame(tick);
             };
             requestAnimationFrame(tick);
             new PerformanceObserver(list => list.getEntries().forEach(task => longTasks.push(task.duration)))
                 .observe({type: 'longtask'});").await?;
    // First, that these would see a freeze: a task that keeps the page busy for 200 ms. (A
    // frame's time is when the browser began it, which can be before the task ended, so
    // the gap may read a little less.)
    let seen = script(client, "setTimeout(() => { const until = performance.now() + 200; while (performance.now() < until) {} }, 0);
             await new Promise(done => setTimeout(done, 400));
             const seen = [Math.max(...frameGaps), longTasks.length];
             frameGaps.length = 0;
             longTasks.length = 0;
             return seen;").await?;
    let (busy_gap, busy_tasks): (f64, usize) =
        serde_json::from_value(seen.clone()).map_err(|e| e.to_string())?;
    if busy_gap < 150.0 || busy_tasks == 0 {
        return Err(format!(
            "the page's frame and long-task records missed a 200 ms freeze: {seen}"
        ));
    }
    let began = Instant::now();
    // Until the echo loop's bound of 100,000 rounds ends the run (about 4 s beside the
    // browser), or at most 20 s.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (sending, reading) = backend::bench::pour_into_echo(echo_client(port).await?, stop.clone());
    let _ = tokio::time::timeout(Duration::from_secs(20), reading).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sending.await;
    let firehose_secs = began.elapsed().as_secs_f64();
    wait_for_text(client, "run-status", "finished").await?;
    let frames = script(
        client,
        "window.stopFrames = true;
             await new Promise(done => setTimeout(done, 100));
             return [frameGaps, longTasks];",
    )
    .await?;
    let (mut gaps, long_tasks): (Vec<f64>, Vec<f64>) =
        serde_json::from_value(frames).map_err(|e| e.to_string())?;
    save_screenshot(client, "page-firehose.png").await;
    // A kilobyte received at once (or a megabyte) is shown by its first bytes: the cards
    // stay a card wide, and the page no wider than the window.
    let widths = script(client, "const page = document.documentElement;
             const received = document.querySelector(\"[data-testid='endpoint-server.con'] .received\");
             return [page.scrollWidth, page.clientWidth, received ? received.textContent : ''];").await?;
    let (page_width, window_width, received): (u64, u64, String) =
        serde_json::from_value(widths).map_err(|e| e.to_string())?;
    if page_width > window_width || !received.ends_with("… (1024 bytes)") {
        return Err(format!(
            "after the firehose the page is {page_width} px wide in a {window_width} px window; \
             server.con's card says {received:?}"
        ));
    }

    // The page accounts for every event: those it shows, and those it says were not sent
    // to it whole, are the run's events numbered from 0 to the last.
    let shown = step_label(client).await?.1;
    let dropped_text =
        wait_for_text(client, "events-dropped", "events of this run were not sent").await?;
    let dropped: u64 = dropped_text
        .split_whitespace()
        .next()
        .and_then(|number| number.parse().ok())
        .ok_or_else(|| format!("the page says {dropped_text:?}"))?;
    // The log's panel is closed here, so the page has not drawn it while the events came;
    // opened, it shows the newest of them, at its end.
    scroll_into_view(client, "event-log").await?;
    let accounted = log_shows_last(client, shown + dropped - 1).await;
    save_screenshot(client, "page-firehose-log.png").await;
    accounted.map_err(|e| {
        format!("the page shows {shown} events and says {dropped} were not sent whole, but {e}")
    })?;
    // A firehose it was: more events than a page is sent whole.
    if dropped == 0 {
        return Err(format!(
            "the firehose's {shown} events all came whole: it was not a firehose"
        ));
    }
    if !dropped_text.contains("server.con recv") {
        return Err(format!(
            "the page does not say what the dropped calls did: {dropped_text}"
        ));
    }
    gaps.sort_by(f64::total_cmp);
    let longest_gap = gaps.last().copied().unwrap_or(0.0);
    let p95_gap = gaps
        .get((gaps.len() * 95 / 100).min(gaps.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    // Frozen would be no frame for a second or more; the figures say how smooth it was.
    if gaps.is_empty() || longest_gap >= 1000.0 {
        return Err(format!(
            "the page drew {} frames during the firehose, the longest gap {longest_gap:.0} ms",
            gaps.len()
        ));
    }
    Ok(serde_json::json!({
        "firehose_secs": firehose_secs,
        "firehose_events_shown": shown,
        "firehose_events_dropped": dropped,
        "firehose_frames": gaps.len(),
        "firehose_longest_frame_gap_ms": longest_gap,
        "firehose_p95_frame_gap_ms": p95_gap,
        "firehose_long_tasks": long_tasks.len(),
        "firehose_long_tasks_ms": long_tasks.iter().fold(0.0, |sum, task| sum + task),
    }))
}

/// The bytes of the page's wasm and JS as they came over the wire, and as they are, by the
/// Resource Timing API.
async fn page_download(client: &Client) -> Result<(u64, u64), String> {
    let sizes = script(client, "return performance.getEntriesByType('resource')
                 .filter(e => e.name.endsWith('.wasm') || e.name.endsWith('.js'))
                 .reduce((sum, e) => [sum[0] + e.encodedBodySize, sum[1] + e.decodedBodySize], [0, 0]);").await?;
    let (transferred, size): (u64, u64) =
        serde_json::from_value(sizes).map_err(|e| e.to_string())?;
    if size == 0 {
        return Err("the browser timed no wasm or JS".into());
    }
    Ok((transferred, size))
}

/// Scrolls the event log of a long run to `row`: the rows there are drawn (only the rows on
/// screen are), and clicking one steps to its event.
async fn scroll_and_click_the_log(client: &Client, row: usize) -> Result<(), String> {
    let shown = client
        .execute(
            &format!(
                "const box = document.querySelector('.log-box');
                 box.scrollIntoView();
                 box.scrollTop = {row} * 28;
                 await new Promise(done => setTimeout(done, 300));
                 const r = box.getBoundingClientRect();
                 const at = document.elementFromPoint(r.left + 20, r.top + r.height / 2);
                 const tr = at && at.closest('tr');
                 if (!tr || tr.classList.contains('spacer')) return null;
                 tr.setAttribute('data-testid', 'log-row-at-centre');
                 return tr.cells[0].textContent;"
            ),
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    let Some(seq) = shown.as_str().and_then(|seq| seq.parse::<usize>().ok()) else {
        return Err(format!(
            "no row is drawn where the log is scrolled to: {shown}"
        ));
    };
    if !(row..row + 30).contains(&seq) {
        return Err(format!("the log scrolled to row {row} shows event {seq}"));
    }
    click(client, "log-row-at-centre").await?;
    wait_for_text(client, "step-label", &format!("event {} of", seq + 1)).await?;
    save_screenshot(client, "page-log-scrolled.png").await;
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn the_page_times_what_it_shows() {
    in_browser(page_performance).await;
}

/// A process of the development pair (`trunk serve`, `cargo run -p backend`) in a process
/// group of its own, so that dropping it ends it with every process it started (trunk runs
/// cargo, wasm-bindgen and wasm-opt).
struct DevProcess {
    name: &'static str,
    child: Child,
}

impl DevProcess {
    fn start(name: &'static str, mut command: Command) -> Self {
        use std::os::unix::process::CommandExt;
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("{name} could not start: {error}"));
        DevProcess { name, child }
    }

    /// Fails when the process has already ended: the other side of the pair would wait for
    /// it in vain.
    fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} ended early: {status}", self.name)),
            Err(error) => Err(format!("{}: {error}", self.name)),
        }
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Fails with a clear message when a port the development pair needs is taken.
fn port_is_free(port: u16, who: &str) -> Result<(), String> {
    std::net::TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .map_err(|error| {
            format!("port {port} ({who}) is taken ({error}): stop whatever serves it first")
        })
}

/// The development pair as the README gives it: `trunk serve` (its port 8080 and its proxy of
/// `/ws` to 127.0.0.1:3000 come from `Trunk.toml`) and the backend's development build on its
/// default port. trunk builds with `--release`, so that it reuses the page `trunk build
/// --release` already compiled, and into a directory of its own, so that the `dist/` the
/// other tests serve is left as it is.
async fn the_dev_pair_plays_through_trunks_proxy(client: &Client) -> Result<(), String> {
    port_is_free(8080, "trunk serve")?;
    port_is_free(3000, "the backend")?;
    let dist = std::env::temp_dir().join(format!("socket-lab-trunk-dist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dist);
    let mut backend_command = Command::new(env!("CARGO_BIN_EXE_backend"));
    backend_command.current_dir(repo_root());
    let mut backend = DevProcess::start("cargo run -p backend", backend_command);
    let mut trunk_command = Command::new(std::env::var("TRUNK").unwrap_or_else(|_| "trunk".into()));
    trunk_command
        .args(["serve", "--release", "--dist"])
        .arg(&dist)
        .current_dir(repo_root());
    let mut trunk = DevProcess::start("trunk serve", trunk_command);
    // trunk serves once its build is done: the wasm is already compiled, but wasm-bindgen,
    // wasm-opt and the post-build hook run again.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        trunk.check_running()?;
        backend.check_running()?;
        let served = std::net::TcpStream::connect(("127.0.0.1", 8080)).is_ok_and(|mut stream| {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1:8080\r\n\r\n");
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
        });
        if served {
            break;
        }
        if Instant::now() > deadline {
            return Err("trunk serve did not serve the page within 300 s".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for origin in ["http://127.0.0.1:8080", "http://localhost:8080"] {
        goto(
            client,
            &format!("{origin}/?scenario=simple-server-client&play=1"),
        )
        .await?;
        wait_for_text(client, "connection-status", "connected")
            .await
            .map_err(|error| format!("{origin}: {error}"))?;
        // The client's recv() shows the bytes the server sent: the run went through trunk's
        // proxy to the backend and back.
        wait_for_text(client, "endpoint-client.s", "Connection is successful")
            .await
            .map_err(|error| format!("{origin}: {error}"))?;
        wait_for_text(client, "run-status", "finished").await?;
    }
    save_screenshot(client, "trunk-serve.png").await;
    let _ = std::fs::remove_dir_all(&dist);
    Ok(())
}

#[tokio::test]
#[ignore = "needs trunk, a built page and chromedriver, and ports 8080 and 3000: run scripts/test.sh"]
async fn trunk_serve_and_the_backend_play_a_scenario_together() {
    in_browser_alone(the_dev_pair_plays_through_trunks_proxy).await;
}

/// The student's own server and client, each under `socket-lab watch`, shown live on a page
/// opened first at the address `watch` prints, then stepped through with each program's
/// source highlighted at the call's line.
async fn a_watched_pair_shows_live_and_steps_through_its_source(
    client: &Client,
) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("socket-lab-browser-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let hub = dir.join("hub").join("watch.sock");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = backend::Config::new(repo_root().join("dist"));
    config.hub_socket = Some(hub.clone());
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(backend::serve(listener, config, async {
        let _ = stopped.await;
    }));
    goto(client, &format!("http://{addr}/?watch")).await?;
    wait_for_text(client, "connection-status", "connected").await?;
    // Before any program runs, the page says what it waits for.
    wait_for_text(client, "intro", "Waiting for a program").await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port().to_string())
        .map_err(|error| error.to_string())?;
    let peers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    let watch = |script: &str, args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_backend"));
        command
            .env("SOCKET_LAB_HUB", &hub)
            .args(["watch", "-o", "/dev/null", "--", "/usr/bin/python3"])
            .arg(peers.join(script))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    let mut server = watch("simple_server.py", &[&port])
        .spawn()
        .map_err(|error| error.to_string())?;
    // The server says when it listens; the page shows it live before any client runs. The
    // read blocks, so it is not done on the thread that serves the page.
    let stdout = server.stdout.take().ok_or("no stdout")?;
    let (listening, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = listening.send(line);
        // The rest of its output is read too, so that its prints never find a closed pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    tokio::task::spawn_blocking(move || said.recv_timeout(Duration::from_secs(20)))
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| format!("the watched server never said it listens: {error}"))?;
    let live = wait_for_text(client, "event-log", "listen(").await;
    save_screenshot(client, "watch-live.png").await;
    live?;
    wait_for_text(client, "run-status", "running").await?;
    let mut client_command = watch("simple_client.py", &["127.0.0.1", &port]);
    let client_run = tokio::task::spawn_blocking(move || client_command.output())
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?;
    if !client_run.status.success() {
        return Err(format!("the watched client failed: {client_run:?}"));
    }
    let server_run = tokio::task::spawn_blocking(move || server.wait_with_output())
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?;
    if !server_run.status.success() {
        return Err(format!("the watched server failed: {server_run:?}"));
    }
    wait_for_text(client, "run-status", "finished").await?;
    // The kernel's names for the calls, and the Python call that made each.
    let log = whole_log_text(client).await?;
    if !log.contains("send() → sendto(b'Connection is successful')")
        || !log.contains("accept() → accept4()")
        || !log.contains("recv() → recvfrom(1024)")
    {
        return Err(format!(
            "the log does not name the calls as the kernel saw them: {log}"
        ));
    }
    // Both processes are lifelines, and the server's bytes reach the client's.
    let diagram = wait_for_text(client, "diagram", "simple_client.py[").await?;
    if !diagram.contains("simple_server.py[") || !diagram.contains("Connection is successful") {
        return Err(format!(
            "the diagram lacks a process or the message: {diagram}"
        ));
    }
    click(client, "step-first").await?;
    wait_for_text(client, "step-label", "event 1 of").await?;
    let line = current_line(client, "simple_server.py").await?;
    if !line.contains("s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)") {
        return Err(format!("at the first event the server's line is {line:?}"));
    }
    // The client's close returning, picked in the log (its last rows are the processes'
    // ends, which have no line).
    script(
        client,
        "const box = document.querySelector('.log-box'); box.scrollTop = box.scrollHeight;",
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let picked = script(
        client,
        "const rows = [...document.querySelectorAll(\"[data-testid='event-log'] tbody tr\")]
             .filter(row => row.cells.length > 4
                 && row.cells[2].textContent.includes('simple_client.py')
                 && row.cells[3].textContent === 'return'
                 && row.cells[4].textContent === 'close()');
         if (!rows.length) return false;
         rows[rows.length - 1].click();
         return true;",
    )
    .await?;
    if picked != serde_json::Value::Bool(true) {
        return Err("no row of the client's close() returning in the log".into());
    }
    if !log.contains("+++ exited with status 0 +++") {
        return Err(format!("the log does not show the processes' ends: {log}"));
    }
    let line = current_line(client, "simple_client.py").await?;
    if !line.contains("s.close()") {
        return Err(format!("at the last event the client's line is {line:?}"));
    }
    save_screenshot(client, "watch-stepped.png").await;
    // Saved as a trace, the watched run keeps its processes, its programs' files and the
    // kernel's names for its calls; the SVG has both processes.
    click(client, "save-trace").await?;
    let saved = read_download(client, ".json").await?;
    let trace = shared::TraceFile::parse(&saved).map_err(|error| format!("the trace: {error}"))?;
    let files: Vec<&str> = trace
        .programs
        .iter()
        .filter_map(|p| p.file.as_deref())
        .collect();
    if files.len() != 2 || !files.iter().all(|file| file.ends_with(".py")) {
        return Err(format!("the trace's programs: {files:?}"));
    }
    if !trace.events.iter().any(|e| {
        e.watched
            .as_ref()
            .is_some_and(|w| w.syscall == "sendto" && w.python.as_deref() == Some("send"))
    }) {
        return Err("the trace lost the kernel's names of the calls".into());
    }
    click(client, "export-svg").await?;
    let svg = read_download(client, ".svg").await?;
    if !svg.contains("simple_server.py[") || !svg.contains("simple_client.py[") {
        return Err("the exported SVG lacks a process".into());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
#[ignore = "needs a built page and chromedriver: run scripts/test.sh"]
async fn a_watched_program_is_shown_live_and_stepped_with_its_source() {
    in_browser_alone(a_watched_pair_shows_live_and_steps_through_its_source).await;
}

async fn stepping_reaches_the_syn_ack_between_the_two_sockets(
    client: &Client,
    base: SocketAddr,
) -> Result<(), String> {
    goto(
        client,
        &format!("http://{base}/?scenario=simple-server-client&play=1"),
    )
    .await?;
    wait_for_text(client, "run-status", "finished").await?;
    wait_for_text(
        client,
        "capture-status",
        "captured on the run's own network",
    )
    .await?;
    click(client, "step-first").await?;
    // Step by step, through the calls, to the second packet: the listener's SYN-ACK.
    let mut label = String::new();
    for _ in 0..40 {
        click(client, "step-forward").await?;
        label = wait_for_text(client, "step-label", "of").await?;
        if label.starts_with("packet 2 of") {
            break;
        }
    }
    if !label.starts_with("packet 2 of") {
        return Err(format!(
            "stepping never reached the second packet: {label:?}"
        ));
    }
    let explanation = wait_for_text(client, "explanation", "SYN-ACK").await?;
    if !explanation.contains("[SYN, ACK]") || !explanation.contains("backlog has room") {
        return Err(format!("at the SYN-ACK the page says {explanation:?}"));
    }
    // The state diagram names the transition the SYN-ACK made, between the kernel's reports
    // at the connect's call and its return, and lights it.
    let change = wait_for_text(client, "state-change", "at this packet").await?;
    if !change.contains("client.s: SYN-SENT → ESTABLISHED at this packet: SYN-ACK came in") {
        return Err(format!("at the SYN-ACK the state diagram says {change:?}"));
    }
    let lit = script(
        client,
        "return document.querySelectorAll(\"[data-testid='state-machine'] .edge.lit\").length;",
    )
    .await?;
    if lit != serde_json::json!(1) {
        return Err(format!("at the SYN-ACK {lit} transitions are lit, not one"));
    }
    // The selected packet is drawn from the server's listener (the connection it answers for
    // is still in its accept queue: accept() has not returned it yet) to the client's socket.
    let drawn = script(
        client,
        "const packet = document.querySelector(\"[data-testid='packet'][data-selected='true']\");
         if (!packet) return null;
         const line = packet.querySelector('line');
         const lane = name => [...document.querySelectorAll('text.lane-title')]
             .find(text => text.textContent === name)?.getAttribute('x');
         return [packet.dataset.kind, line.getAttribute('x1'), line.getAttribute('x2'),
                 lane('server.s'), lane('client.s')];",
    )
    .await?;
    let drawn: Option<Vec<Option<String>>> =
        serde_json::from_value(drawn.clone()).map_err(|e| format!("{e}: {drawn}"))?;
    let Some(drawn) = drawn else {
        return Err("no packet is drawn as selected".to_owned());
    };
    if drawn[0].as_deref() != Some("SYN,ACK") || drawn[1] != drawn[3] || drawn[2] != drawn[4] {
        return Err(format!(
            "the selected packet is (kind, from x, to x, server.s x, client.s x) {drawn:?}"
        ));
    }
    scroll_into_view(client, "diagram").await?;
    save_screenshot(client, "packets-syn-ack.png").await;
    // The log lists the packet among the calls, selected.
    scroll_into_view(client, "event-log").await?;
    let row = wait_for_text(client, "event-log", "[SYN, ACK]").await?;
    if !row.contains("the kernel answers the SYN by itself") {
        return Err(format!("the log reads {row:?}"));
    }
    // A click on a row's cell steps there: the first event's, then the last packet's.
    for (row, label) in [("0", "event 1 of"), ("p7", "packet 8 of")] {
        script(
            client,
            &format!(
                "document.querySelector(\"[data-testid='event-log'] tr[data-step='{row}'] td:nth-child(3)\").click();"
            ),
        )
        .await?;
        let shown = wait_for_text(client, "step-label", label).await?;
        if !shown.starts_with(label) {
            return Err(format!("a click on row {row} shows {shown:?}"));
        }
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn stepping_shows_the_syn_ack_drawn_between_the_two_sockets() {
    in_browser(stepping_reaches_the_syn_ack_between_the_two_sockets).await;
}

/// A saved trace of 10,000 events and 10,000 packets (the packets made from a real capture's
/// shape, one beside each event, between the run's own two sockets), opened in the page: the
/// first render, timed by the page itself. It prints the figure and writes it to
/// `e2e-artifacts/page-performance-packets.json` (PERFORMANCE.md holds the goal).
async fn page_opens_events_and_packets(client: &Client, base: SocketAddr) -> Result<(), String> {
    const EVENTS: usize = 10_000;
    let json = record_big_trace(base, EVENTS).await?;
    let mut trace = shared::TraceFile::parse(&json)?;
    // The run's connection, by the addresses its accept reported.
    let (server, client_address) = trace
        .events
        .iter()
        .find_map(|event| {
            match event
                .result
                .as_ref()
                .map(|result| (&result.value, &result.local))
            {
                Some((shared::ReturnValue::Accepted { address, .. }, Some(local))) => {
                    Some((local.clone(), address.clone()))
                }
                _ => None,
            }
        })
        .ok_or("the recorded run has no accept")?;
    // A 70-byte TCP frame with 4 bytes of data, as a small echo's segments are.
    let frame = "00".repeat(70);
    trace.packets = trace
        .events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let outwards = index % 2 == 0;
            let (src, dst) = if outwards {
                (client_address.clone(), server.clone())
            } else {
                (server.clone(), client_address.clone())
            };
            shared::Packet {
                seq: index as u64,
                t_us: event.t_us,
                protocol: shared::Protocol::Tcp,
                src,
                dst,
                length: 56,
                tcp: Some(shared::TcpSegment {
                    flags: vec![shared::TcpFlag::Psh, shared::TcpFlag::Ack],
                    seq: 1 + 4 * (index as u32 / 2),
                    ack: 1 + 4 * (index as u32 / 2),
                    window: 65536,
                }),
                icmp: None,
                payload_len: 4,
                payload: shared::Bytes::from(&b"ping"[..]),
                frame: frame.clone(),
            }
        })
        .collect();
    trace.capture = Some(shared::Capture {
        on: true,
        snaplen: 256,
        kept: EVENTS as u64,
        ..shared::Capture::default()
    });
    let path = std::env::temp_dir().join(format!(
        "socket-lab-{}-10k-packets.json",
        std::process::id()
    ));
    std::fs::write(&path, trace.to_json()).map_err(|e| e.to_string())?;
    goto(client, &format!("http://{base}/?perf=1")).await?;
    wait_for_text(client, "connection-status", "connected").await?;
    let first_render = open_and_time(client, &path).await?;
    let _ = std::fs::remove_file(&path);
    let parts = page_measures(client).await?;
    println!(
        "opening 10,000 events and 10,000 packets: first render {first_render:.1} ms; parts {parts:?}"
    );
    wait_for_text(
        client,
        "capture-status",
        "captured on the run's own network",
    )
    .await?;
    scroll_into_view(client, "event-log").await?;
    wait_for_text(client, "event-log", "[PSH, ACK]").await?;
    save_screenshot(client, "page-performance-10k-packets.png").await;
    let dir = repo_root().join("e2e-artifacts");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("page-performance-packets.json"),
        serde_json::json!({ "open_10k_events_10k_packets_ms": first_render, "parts": parts })
            .to_string(),
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn a_trace_of_ten_thousand_events_and_packets_opens() {
    in_browser(page_opens_events_and_packets).await;
}
