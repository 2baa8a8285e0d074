//! The admin socket of a running `weir`: status, and plugins loaded, unloaded and reloaded
//! while the pipeline runs.
//!
//! A Unix domain socket (default [`default_socket_path`]), mode 0600 in a directory only
//! its user can write to, that answers only peers of the same user (checked on every
//! connection with `SO_PEERCRED`). The [`protocol`] is line-delimited JSON with typed
//! errors; a malformed or oversized request gets an error answer, never a crash.

mod client;
mod handler;
pub mod protocol;
mod server;
mod watch;

pub use client::{ClientError, call};
pub use handler::Admin;
pub use server::{AdminError, AdminServer, default_socket_path};
pub use watch::{QUIET, Watch, watch};
