//! The HTTP side: the axum app, serving `/ws` and the built frontend, and its shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::services::ServeDir;

use crate::access::Access;
use crate::ws;

/// How the server is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// The directory holding the built frontend (`trunk build --release` writes `dist/`).
    pub static_dir: PathBuf,
    /// Origins allowed to open `/ws` besides the app's own (`--allow-origin`), such as
    /// `http://127.0.0.1:8080`.
    pub allow_origins: Vec<String>,
    /// The access token `/ws` requires (`?token=`). Served beyond loopback, a server without
    /// one given makes one up at start.
    pub token: Option<String>,
}

impl Config {
    /// A server for the page in `static_dir`, with the default access rules.
    pub fn new(static_dir: impl Into<PathBuf>) -> Self {
        Config {
            static_dir: static_dir.into(),
            allow_origins: Vec::new(),
            token: None,
        }
    }
}

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    /// Becomes `true` when the server shuts down; sessions then close with code 1001.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Who may open a session.
    pub(crate) access: Access,
}

/// The app: `/ws` for sessions, everything else from the built frontend. `local` is the
/// address the server listens on, which names its own origin.
pub fn app(config: &Config, local: SocketAddr, shutdown: watch::Receiver<bool>) -> Router {
    let access = Access::new(config, local);
    let state = Arc::new(AppState { shutdown, access });
    let router = Router::new()
        .route("/ws", get(ws::handler))
        .with_state(state);
    if config.static_dir.join("index.html").is_file() {
        router.fallback_service(ServeDir::new(&config.static_dir))
    } else {
        tracing::warn!(
            dir = %config.static_dir.display(),
            "no built frontend here; the page will say how to build it"
        );
        router.fallback(frontend_missing)
    }
}

/// Serves the app on `listener` until `shutdown` completes, then closes every session with
/// code 1001 ("going away") and returns once they have all ended.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let app = app(&config, listener.local_addr()?, shutdown_rx);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Sessions watch this and close themselves; a send error only means none is left.
            let _ = shutdown_tx.send(true);
        })
        .await
}

async fn frontend_missing() -> impl IntoResponse {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(
            "<!doctype html><title>Socket Lab</title><h1>Socket Lab: the page is not built</h1>\
             <p>The backend is running, but it found no built frontend. Build it with \
             <code>trunk build --release</code> at the top of the repository (or run \
             <code>scripts/run.sh</code>, which does everything), or point the backend at it \
             with <code>--static-dir</code>.</p>",
        ),
    )
}
