//! The HTTP side: the axum app, serving `/ws` and the built frontend, and its shutdown.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::services::ServeDir;

use crate::ws;

/// How the server is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// The directory holding the built frontend (`trunk build --release` writes `dist/`).
    pub static_dir: PathBuf,
}

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    /// Becomes `true` when the server shuts down; sessions then close with code 1001.
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// The app: `/ws` for sessions, everything else from the built frontend.
pub fn app(config: &Config, shutdown: watch::Receiver<bool>) -> Router {
    let state = Arc::new(AppState { shutdown });
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
    let app = app(&config, shutdown_rx);
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
