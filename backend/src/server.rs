//! The HTTP side: the axum app, serving `/ws` and the built frontend, and its shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tower_http::services::ServeDir;

use crate::access::Access;
use crate::hub::{Hub, handin};
use crate::lab::lock;
use crate::limits::Limits;
use crate::policy::Policy;
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
    /// Networks beyond loopback that sessions may bind, connect and send to (`--allow-net`).
    pub allow_net: Vec<ipnet::IpNet>,
    /// The bounds on what sessions may use.
    pub limits: Limits,
    /// Where `socket-lab watch` hands this server its programs' events (see
    /// [`crate::hub`]); `None` takes no watched programs.
    pub hub_socket: Option<PathBuf>,
}

impl Config {
    /// A server for the page in `static_dir`, with the default access rules.
    pub fn new(static_dir: impl Into<PathBuf>) -> Self {
        Config {
            static_dir: static_dir.into(),
            allow_origins: Vec::new(),
            token: None,
            allow_net: Vec::new(),
            limits: Limits::default(),
            hub_socket: None,
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
    /// Where sessions' sockets may go, and the bounds on what they use.
    pub(crate) policy: Arc<Policy>,
    /// The sessions being served.
    pub(crate) sessions: Sessions,
    /// The programs `socket-lab watch` runs, for the pages that show them.
    pub(crate) hub: Arc<Hub>,
    /// Held by every session through this state; once all are gone, [`serve`] knows every
    /// session has ended (upgraded connections are not the HTTP server's to wait for).
    _alive: mpsc::Sender<()>,
}

/// Counts the sessions being served, in total and by client address.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_client: Mutex<HashMap<IpAddr, usize>>,
}

/// A session's place among those served; the place is given back when this is dropped.
#[derive(Debug)]
pub(crate) struct SessionPlace {
    state: Arc<AppState>,
    client: IpAddr,
}

impl Sessions {
    /// Takes a place for a session from `client`, or says which limit is reached.
    pub(crate) fn admit(state: &Arc<AppState>, client: IpAddr) -> Result<SessionPlace, String> {
        let limits = state.policy.limits();
        let mut by_client = lock(&state.sessions.by_client);
        let total: usize = by_client.values().sum();
        if total >= limits.max_sessions {
            return Err(format!(
                "the server is serving {total} sessions, its limit (--max-sessions); try again \
                 in a minute"
            ));
        }
        let from_client = by_client.entry(client).or_insert(0);
        if *from_client >= limits.max_sessions_per_client {
            return Err(format!(
                "{client} has {from_client} sessions open, the server's limit for one address \
                 (--max-sessions-per-client); close some tabs"
            ));
        }
        *from_client += 1;
        Ok(SessionPlace {
            state: Arc::clone(state),
            client,
        })
    }
}

impl Drop for SessionPlace {
    fn drop(&mut self) {
        let mut by_client = lock(&self.state.sessions.by_client);
        if let Some(count) = by_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                by_client.remove(&self.client);
            }
        }
    }
}

/// The app: `/ws` for sessions, everything else from the built frontend. `local` is the
/// address the server listens on, which names its own origin and which sessions may not
/// reach. It must be served with its clients' addresses
/// (`into_make_service_with_connect_info::<SocketAddr>`), as [`serve`] does.
fn app(
    config: &Config,
    local: SocketAddr,
    shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
    hub: Arc<Hub>,
) -> Router {
    let access = Access::new(config, local);
    let policy = Policy::new(config.limits.clone())
        .allow_networks(config.allow_net.clone())
        .serving_at(local);
    let state = Arc::new(AppState {
        shutdown,
        access,
        policy: Arc::new(policy),
        sessions: Sessions::default(),
        hub,
        _alive: alive,
    });
    let router = Router::new()
        .route("/ws", get(ws::handler))
        .route("/access", get(ws::access))
        .with_state(state);
    if config.static_dir.join("index.html").is_file() {
        // A release build of the page has brotli and gzip copies of its files beside them
        // (scripts/post-build.sh): a browser that accepts one gets it, about a third of the
        // bytes, and the server compresses nothing per request.
        let page = Router::new()
            .fallback_service(
                ServeDir::new(&config.static_dir)
                    .precompressed_br()
                    .precompressed_gzip(),
            )
            .layer(middleware::from_fn(cache_control));
        router.fallback_service(page)
    } else {
        tracing::warn!(
            dir = %config.static_dir.display(),
            "no built frontend here; the page will say how to build it"
        );
        router.fallback(frontend_missing)
    }
}

/// Says how long browsers may keep each file of the page. Trunk names the page's code and
/// styles after a hash of their contents (`frontend-3f2a…_bg.wasm`), so a file of that name
/// never changes: a browser keeps it for a year without asking again, and a lab's hundred
/// students reloading the page fetch only `index.html`. That one, which names the files of
/// the current build, is asked for again each time (`no-cache`: the server answers 304 Not
/// Modified when it has not changed).
async fn cache_control(request: Request, next: Next) -> Response {
    let immutable = is_content_hashed(request.uri().path());
    let mut response = next.run(request).await;
    if response.status().is_success() {
        let value = if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}

/// Whether a path names a file trunk named after its contents: a name whose stem ends in `-`
/// and a 64-bit hash in hex, before `_bg` for the wasm (`/frontend-3f2a9c0d1e2b4a5c_bg.wasm`,
/// `/style-915ca887c59ac253.css`). Trunk writes the hash without leading zeros (`{:x}`), so
/// one name in sixteen has 15 digits, one in 256 has 14; fewer than 8 (one in four billion)
/// are taken for a name of another kind.
fn is_content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    let Some((stem, _extension)) = name.rsplit_once('.') else {
        return false;
    };
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(base, hash)| {
        !base.is_empty()
            && (8..=16).contains(&hash.len())
            && hash.bytes().all(|byte| byte.is_ascii_hexdigit())
    })
}

/// How long, after shutdown begins, sessions have to close before the server stops waiting
/// for them. Dropping what is left still closes their sockets and removes their files.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Serves the app on `listener` until `shutdown` completes, then closes every session with
/// code 1001 ("going away") and returns once they have all ended, or after
/// [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut shutting_down = shutdown_rx.clone();
    let (alive, mut all_ended) = mpsc::channel::<()>(1);
    let local = listener.local_addr()?;
    let hub = Arc::new(Hub::default());
    if let Some(path) = &config.hub_socket {
        take_hand_ins(path, &config, local, &hub, shutdown_rx.clone()).await;
    }
    let app = app(&config, local, shutdown_rx, alive, hub);
    // Events are small frames sent one after another; with Nagle's algorithm each would wait
    // for the page's acknowledgement of the one before (up to 40 ms of delayed ACK).
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY on a connection");
        }
    });
    let serving = async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Sessions watch this and close themselves; a send error only means none is
            // left.
            let _ = shutdown_tx.send(true);
        })
        .await?;
        // The HTTP server has stopped; the sessions it upgraded may still be closing. Each
        // holds the app's state, and with it a sender that nobody uses: once the last is
        // dropped, every session has ended and removed its files.
        let _ = all_ended.recv().await;
        Ok(())
    };
    let deadline = async move {
        let _ = shutting_down.wait_for(|down| *down).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = serving => served,
        () = deadline => {
            tracing::warn!(
                "sessions did not close within {} s; stopping anyway",
                SHUTDOWN_GRACE.as_secs()
            );
            Ok(())
        }
    }
}

/// The address of the page that shows watched programs, on a server listening at `local`.
pub(crate) fn watch_page(local: SocketAddr, token: Option<&str>) -> String {
    let mut shown = local;
    if local.ip().is_unspecified() {
        shown.set_ip(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    }
    match token {
        Some(token) => format!("http://{shown}/?watch&token={token}"),
        None => format!("http://{shown}/?watch"),
    }
}

/// Takes `watch`es' hand-ins at `path`, unless another Socket Lab already does (then this
/// server shows no watched programs, and says so).
async fn take_hand_ins(
    path: &std::path::Path,
    config: &Config,
    local: SocketAddr,
    hub: &Arc<Hub>,
    shutdown: watch::Receiver<bool>,
) {
    match handin::listen(path).await {
        Ok(Some(listener)) => {
            let page = watch_page(local, config.token.as_deref());
            tokio::spawn(handin::serve(
                listener,
                path.to_path_buf(),
                Arc::clone(hub),
                page,
                shutdown,
            ));
        }
        Ok(None) => tracing::info!(
            path = %path.display(),
            "another Socket Lab takes watched programs here; this one shows none"
        ),
        Err(error) => tracing::warn!(
            path = %path.display(),
            %error,
            "cannot take watched programs"
        ),
    }
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

/// Lets this process (and any it starts, which inherit the limit) hold as many descriptors
/// as the system allows: a thousand sessions need a thousand sockets, and their runs more.
pub fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::debug!(%error, "could not raise the descriptor limit");
    }
}

#[cfg(test)]
mod tests {
    use super::is_content_hashed;

    #[test]
    fn only_files_named_after_their_contents_are_kept_for_good() {
        // Opens descriptors: the lab's property test counts its own alone.
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        for hashed in [
            "/frontend-3f2a9c0d1e2b4a5c_bg.wasm",
            "/frontend-3f2a9c0d1e2b4a5c.js",
            "/style-915ca887c59ac253.css",
            // A hash with a leading zero, as trunk named a build of 2026-11-30.
            "/frontend-727df29056cba06.js",
            "/frontend-727df29056cba06_bg.wasm",
            "/frontend-f29056cba06_bg.wasm",
        ] {
            assert!(is_content_hashed(hashed), "{hashed}");
        }
        for plain in [
            "/",
            "/index.html",
            "/frontend_bg.wasm",
            "/frontend.js",
            "/-3f2a9c0d1e2b4a5c.js",
            "/frontend-3f2a9c0.js",
            "/frontend-1.js",
            "/frontend-3f2a9c0d1e2b4a5cc.js",
            "/frontend-3f2a9c0d1e2b4a5g.js",
            "/frontend-3f2a9c0d1e2b4a5c",
        ] {
            assert!(!is_content_hashed(plain), "{plain}");
        }
    }
}
