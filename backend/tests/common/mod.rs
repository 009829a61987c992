//! Helpers the integration tests share: free ports and the outside peer programs.

// Each test file uses some of these helpers, and an unused one would warn in the others.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("no free port on 127.0.0.1")
}

/// `setpriv` about to run, as the ordinary user `nobody`, a copy of `binary` named `name` in
/// `dir` (which is opened to everyone): the build's folder may be root's alone (a fresh
/// clone in a 0700 temporary folder, as CI makes), and the copy is where that user may run
/// it.
pub(crate) fn as_nobody(binary: &str, name: &str, dir: &std::path::Path) -> Command {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let copy = dir.join(name);
    std::fs::copy(binary, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut setpriv = Command::new("setpriv");
    setpriv
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(copy);
    setpriv
}

/// A child process that a failing test must not leave running: killed and reaped when
/// dropped, unless taken first.
pub(crate) struct Running(Option<std::process::Child>);

impl Running {
    pub(crate) fn new(child: std::process::Child) -> Self {
        Running(Some(child))
    }

    /// The child, still running.
    pub(crate) fn child(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("the child was taken")
    }

    /// The child, which the caller now waits for.
    pub(crate) fn take(mut self) -> std::process::Child {
        self.0.take().expect("the child was taken")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One of the outside peer programs in `backend/tests/peers/`.
pub(crate) fn peer(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

/// Runs a client until it succeeds, for up to 20 s: the server it connects to may not listen
/// yet. A refused attempt leaves nothing behind on the server's side.
pub(crate) fn run_until_it_succeeds(mut program: impl FnMut() -> Command) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let output = program()
            .output()
            .expect("the peer program could not start");
        if output.status.success() || Instant::now() > deadline {
            return output;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The tutorial's Simple Client, as a student runs it, against 127.0.0.1:`port`, retried
/// until the server listens.
pub(crate) fn tutorial_client(port: u16) -> Output {
    run_until_it_succeeds(|| {
        let mut client = Command::new("python3");
        client
            .arg(peer("simple_client.py"))
            .args(["127.0.0.1", &port.to_string()]);
        client
    })
}

/// The tutorial's Simple Server, as a student runs it, on 127.0.0.1:`port`: started, with
/// its output piped, for the test to wait for once the page's client has met it.
pub(crate) fn tutorial_server(port: u16) -> std::process::Child {
    Command::new("python3")
        .arg(peer("simple_server.py"))
        .arg(port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the tutorial's server could not start")
}

/// A sandbox call's message, written as raw JSON as a page sends it: the call's `call` and
/// `args` beside `type` and `endpoint`.
pub(crate) fn call_message(endpoint: &str, call: serde_json::Value) -> serde_json::Value {
    let serde_json::Value::Object(fields) = call else {
        panic!("a call is a JSON object: {call}")
    };
    let mut message = serde_json::json!({"type": "call", "endpoint": endpoint});
    for (key, value) in fields {
        message[key] = value;
    }
    message
}

/// A page's WebSocket, as the tests open it.
pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next message the server sends, waiting at most `within`. The page reads with
/// `shared::decode`, the tests with serde: both must agree on every message the server sends.
pub(crate) async fn next_server_message(
    client: &mut Ws,
    within: Duration,
) -> shared::ServerMessage {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let frame = tokio::time::timeout(within, client.next())
            .await
            .unwrap_or_else(|_| panic!("no message within {within:?}"))
            .expect("the connection ended")
            .unwrap();
        if let Message::Text(text) = frame {
            let message: shared::ServerMessage = serde_json::from_str(text.as_str()).unwrap();
            assert_eq!(
                shared::decode::from_str(text.as_str()).as_ref(),
                Ok(&message)
            );
            return message;
        }
    }
}
