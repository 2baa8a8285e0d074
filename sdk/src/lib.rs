//! The Weir plugin development kit: write a connector plugin for the Weir event processor
//! in ordinary, safe Rust.
//!
//! A plugin is a `cdylib` crate with one struct and one impl:
//!
//! ```no_run
//! use weir_sdk::{connector_plugin, Connector, ConnectorContext, PullStatus, Result, SourceBatch};
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     count: u64,
//! }
//!
//! struct Counter {
//!     next: u64,
//!     end: u64,
//! }
//!
//! #[connector_plugin]
//! impl Connector for Counter {
//!     type Config = Config;
//!
//!     fn new(config: Config, _ctx: &ConnectorContext) -> Result<Self> {
//!         Ok(Counter { next: 0, end: config.count })
//!     }
//!
//!     fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
//!         while self.next < self.end && !batch.is_full() {
//!             batch.push(self.next.to_string().as_bytes());
//!             self.next += 1;
//!         }
//!         Ok(if self.next == self.end { PullStatus::Finished } else { PullStatus::Ready })
//!     }
//! }
//! ```
//!
//! `#[connector_plugin]` generates the C ABI glue: a `#[repr(C)]` vtable (via
//! `thin_trait_object`), panic-catching trampolines around every entry point, and the
//! exported metadata the host validates before it trusts anything in the library. No
//! `unsafe`, `extern` or raw pointer appears in plugin code; plugins may (and the bundled
//! examples do) use `#![forbid(unsafe_code)]`.
//!
//! # Guides
//! - [`docs::guide`]: the plugin author's guide: the lifecycle, sources, sinks, config,
//!   logging, testing, performance, troubleshooting.
//! - [`docs::abi_evolution`]: what the ABI version means and how the ABI may change.
//! - [`docs::safety`]: what the host checks at load time and what a plugin must not do.
//! - [`abi`]: the frozen C types themselves.
//! - [`builtin`]: linking connector crates into a host binary, called through the Rust trait.

mod connector;
mod error;
mod log;
mod waker;

pub mod abi;
pub mod builtin;
pub mod docs;

#[doc(hidden)]
pub mod __private;

pub use connector::{
    Circuit, Connector, ConnectorConfig, ConnectorContext, Event, EventId, Level, NoConfig,
    PullStatus, SinkContext, SinkReply, SourceBatch,
};
pub use error::{Error, Result};
pub use waker::Waker;

/// The `tracing` crate, for logging from a plugin: events logged with its macros appear in
/// the host's log (filtered by the host's `RUST_LOG`), tagged with the connector's id and
/// plugin name. Depending on `tracing` 0.1 directly works the same.
pub use tracing;

/// Turns `impl Connector for T` into a loadable Weir connector plugin.
///
/// Put it on the one `impl Connector for YourType` block of a `cdylib` crate. The connector
/// is a source if the impl defines `pull`, a sink if it defines `on_event`, or both; an impl
/// that defines neither is rejected at compile time, as are generic impls, `async fn`s and
/// methods that are not part of [`Connector`].
///
/// | option | default | meaning |
/// |---|---|---|
/// | `name = "..."` | the crate's name | the plugin name pipelines refer to |
/// | `version = "..."` | the crate's version | the plugin's own version (not the ABI's) |
/// | `crate = "..."` | `::weir_sdk` | path of the sdk crate, if renamed |
///
/// ```no_run
/// use weir_sdk::{connector_plugin, Connector, ConnectorContext, NoConfig, PullStatus, Result, SourceBatch};
///
/// struct Ticker;
///
/// #[connector_plugin(name = "ticker", version = "1.2.0")]
/// impl Connector for Ticker {
///     type Config = NoConfig;
///
///     fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
///         Ok(Ticker)
///     }
///
///     fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
///         batch.push(b"tick");
///         Ok(PullStatus::Empty)
///     }
/// }
/// ```
pub use weir_sdk_macros::connector_plugin;
