//! Socket Lab's page.
//!
//! # Layout
//! - [`model`]: server messages in, endpoints and messages out. Plain Rust.
//! - [`diagram`]: the sequence diagram's geometry. Plain Rust.
//! - [`manual`]: the manual mode's form, checked and turned into a call. Plain Rust.
//! - [`inbox`]: the messages that came since the page last drew, and when to draw them.
//!   Plain Rust.
//! - `app` (browser only): the Leptos components and the WebSocket link; they read the model
//!   and never change it except through [`model::Model::apply`].
//!
//! Architecture invariant: the page shows only what events say. It derives, it never invents:
//! an address, an fd, an error on the page is one the backend's kernel reported.

pub mod diagram;
pub mod inbox;
pub mod manual;
pub mod model;

#[cfg(target_arch = "wasm32")]
pub mod app;

#[cfg(test)]
mod tests;
