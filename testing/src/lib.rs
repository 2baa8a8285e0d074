//! Test a Weir connector through the entry points the host calls.
//!
//! A connector's own unit tests call its Rust methods. The host never does: it calls the
//! C vtable that `#[connector_plugin]` generates, through the sdk's panic-catching
//! trampolines, with batches laid out as the ABI passes them. This crate drives a
//! connector that way, from an ordinary `cargo test`:
//!
//! - [`Harness`]: a small in-process host for one connector. Build it from a TOML or JSON
//!   config, run its lifecycle (connect with retries, start, pause, resume, drain, stop),
//!   pull batches, deliver events and read the replies, send acks, fails and circuit
//!   notices, and read what it logged. A panic comes back as the host reports it
//!   ([`CallError::Panicked`]), not as a panic of the test; a call that blocks fails with
//!   [`HarnessError::Timeout`] instead of hanging the test.
//! - [`conformance`]: the checks every connector should pass (lifecycle in order, no
//!   call blocking past a bound, feedback accepted, a drain with events in flight, a sink
//!   that acks), run on any connector with one call.
//!
//! A connector linked into the test binary is checked as a plugin file would be (every
//! check after `dlopen`); [`Harness::load`] takes a built plugin file instead.
//!
//! A connector driven by hand, then through the conformance suite, the way its crate's
//! `tests/connector.rs` would test it:
//!
//! ```
//! use weir_sdk::{
//!     Connector, ConnectorContext, Event, NoConfig, Result, SinkContext, SinkReply,
//!     connector_plugin,
//! };
//! use weir_testing::{Harness, conformance};
//!
//! /// Acks events of an even length, fails the others.
//! pub struct Even;
//!
//! #[connector_plugin]
//! impl Connector for Even {
//!     type Config = NoConfig;
//!
//!     fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
//!         Ok(Even)
//!     }
//!
//!     fn on_event(&mut self, _ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
//!         Ok(if event.bytes.len() % 2 == 0 { SinkReply::Ack } else { SinkReply::Fail })
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut sink = Harness::new::<Even>("")?;
//! sink.start()?;
//! let delivered = sink.deliver(["ab", "abc"])?;
//! assert_eq!(delivered.replies, [SinkReply::Ack, SinkReply::Fail]);
//! sink.stop()?;
//!
//! conformance::check(Harness::builder::<Even>())?;
//! # Ok(())
//! # }
//! ```
//!
//! Add it as a dev-dependency of the connector's crate (its `lib` must list `rlib` next to
//! `cdylib`, so that tests can link it):
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib", "rlib"]
//!
//! [dev-dependencies]
//! weir-testing = "0.1"
//! ```

pub use weir_host::testing::*;
