//! Socket Lab's backend: performs socket calls on the kernel's real sockets and streams every
//! call, as it enters and as it returns, to the page over a WebSocket at `/ws`.
//!
//! # Layout
//! - [`lab`]: a run's sandbox of real sockets. It performs one [`shared::Call`] at a time on
//!   a named endpoint and emits its enter and return [`shared::Event`]s.
//! - [`scenario`]: the tutorial's programs as steps, and [`scenario::play`], which runs a
//!   scenario's roles concurrently on a lab.
//! - [`loopback`]: gives each run its own loopback address, so runs never share a port.
//! - [`run`]: one run from start to end, shared by the WebSocket and the terminal.
//! - [`ws`]: one browser's WebSocket session.
//! - [`access`]: who may open a session (origin check, access token).
//! - [`policy`]: where a session's sockets may go (loopback, `--allow-net`), and
//!   [`limits`]: how much a session may use.
//! - [`server`]: the axum app (`/ws` and the built frontend) and its graceful shutdown.
//! - [`trace`]: the terminal's table and JSON-lines renderings of events.
//! - [`watch`]: `watch -- PROGRAM`: a student's own program, its socket calls traced from the
//!   kernel (ptrace and a seccomp filter).
//!
//! - [`cli`]: the command line; `src/main.rs` (`backend`) and `src/bin/socket-lab.rs`
//!   (`socket-lab`, the name `cargo install --path backend` installs) only call it.

pub mod access;
pub mod bench;
mod capture;
pub mod cli;
mod hostname;
mod hub;
mod lab;
pub mod limits;
mod loopback;
mod netns;
mod network;
mod network_pool;
pub mod policy;
mod private_net;
pub mod run;
mod scenario;
pub mod server;
pub mod trace;
pub mod watch;
mod ws;

pub use run::{UnknownScenario, record};
pub use server::{Config, serve};

/// The scenarios as `(id, title)`, in the order the page lists them.
pub fn scenario_list() -> Vec<(&'static str, &'static str)> {
    scenario::CATALOG
        .iter()
        .map(|scenario| (scenario.id, scenario.title))
        .collect()
}
