//! Socket Lab's page.
//!
//! # Layout
//! - [`model`]: server messages in, endpoints and messages out. Plain Rust.
//! - [`diagram`]: the sequence diagram's geometry. Plain Rust.
//! - [`timeline`]: the diagram's rows, one an event and one a packet, in time order. Plain
//!   Rust.
//! - [`manual`]: the manual mode's form, checked and turned into a call. Plain Rust.
//! - [`queue_chart`]: a socket's queues over the run, as a card's small chart. Plain Rust.
//! - [`state_machine`]: RFC 9293's TCP state diagram, and the transitions a run's sockets
//!   took, read from the kernel's views. Plain Rust.
//! - [`inbox`]: the messages that came since the page last drew, and when to draw them.
//!   Plain Rust.
//! - `app` (browser only): the page's frame and the WebSocket link.
//! - `view` (browser only): the run panel's components, one a file (the controls, the
//!   programs, the diagram, the sockets, the log...); they read the model and never change it
//!   except through [`model::Model`]'s methods.
//! - `perf`, `files` (browser only): the page's own timing, and the files it offers to save.
//!
//! Architecture invariant: the page shows only what events say. It derives, it never invents:
//! an address, an fd, an error on the page is one the backend's kernel reported.

pub mod diagram;
pub mod inbox;
pub mod manual;
pub mod model;
pub mod queue_chart;
pub mod state_machine;
pub mod timeline;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
mod files;
#[cfg(target_arch = "wasm32")]
mod perf;
#[cfg(target_arch = "wasm32")]
mod view;

#[cfg(test)]
mod tests;
