//! The Weir host: finds connector plugins, validates them before trusting any of their code,
//! and calls into them through a safe API.
//!
//! ```no_run
//! use weir_host::{Plugin, EventBatch, Notice};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plugin = Plugin::load("target/debug/libmetronome.so")?;
//! println!("{} {} ({})", plugin.name(), plugin.info().version, plugin.info().capabilities());
//! let mut metronome = plugin.instantiate("tick", &serde_json::json!({ "interval_ms": 10 }))?;
//! metronome.connect(0)?;
//! metronome.notify(Notice::Start)?;
//! let mut batch = EventBatch::new();
//! metronome.pull(&mut batch, 64)?;
//! for event in batch.iter() {
//!     println!("{:?}: {}", event.id, String::from_utf8_lossy(event.bytes));
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Every way a plugin file can be wrong ends in a [`LoadError`] naming the file and the
//! reason; every way a call can go wrong, panics included, in a [`CallError`]. Neither takes
//! the host down. See `weir_sdk::docs::safety` for the checks, in order.

#![deny(unsafe_code)]

pub mod admin;
mod advice;
pub mod codec;
pub mod config;
pub mod discovery;
mod error;
mod field_path;
#[expect(
    unsafe_code,
    reason = "the loader is the one place where the host touches raw plugin memory"
)]
mod loader;
pub mod pipeline;
pub mod processor;
pub mod runtime;
mod suggest;
pub mod testing;

pub use advice::Advice;
pub use error::{CallError, LoadError};
pub use field_path::{FieldPath, FieldSegment};
pub use loader::{
    AbiVersion, BUILTIN_PATH, CHILD_ARG, ConnectorInstance, EventBatch, EventId, InstanceOptions,
    Isolation, LogSink, Notice, Plugin, PluginInfo, PluginLog, PullStatus, PulledEvent, Sides,
    SinkEvent, SinkOutcome, SinkReply, serve_child,
};
pub use weir_sdk::Circuit;
pub use weir_sdk::abi::{Feedback, FeedbackKind};
pub use weir_sdk::builtin::Builtin;
