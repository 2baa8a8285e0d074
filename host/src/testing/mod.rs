//! Drive a connector through the entry points the host calls, in-process: a small host for
//! tests and tools. Plugin authors depend on the `weir-testing` crate, which re-exports this
//! module without the `weir` binary's dependencies; `weir plugins test FILE` runs the
//! [`conformance`] suite on a plugin file.
//!
//! - [`Harness`]: one connector on a thread of its own, every call with a deadline, built
//!   from a TOML or JSON config: its lifecycle, pulls, deliveries and replies, acks, fails,
//!   circuit notices, and what it logged. A panic comes back as [`CallError::Panicked`]; a
//!   call that blocks as [`HarnessError::Timeout`].
//! - [`conformance`]: the checks every connector must pass.

pub mod conformance;
mod harness;

pub use crate::{
    CallError, Circuit, EventId, Feedback, FeedbackKind, LoadError, Notice, Plugin, PluginInfo,
    PullStatus, Sides, SinkReply,
};
pub use harness::{
    Builder, DEFAULT_CALL_LIMIT, DEFAULT_CONNECT_WITHIN, DEFAULT_MAX_EVENTS, Delivered, Harness,
    HarnessError, LogLine, MAX_LOG_LINES, Pulled, SourceEvent, TestEvent,
};
pub use weir_sdk::Level;
