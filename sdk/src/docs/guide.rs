//! # The plugin author's guide
//!
//! Every code block here is compiled by `cargo test` (the sdk's doctests), so what it shows
//! is what the sdk does.
//!
//! ## Quick start
//!
//! ```sh
//! weir new plugin my-source          # or --sink, --both; --path DIR
//! cd my-source
//! cargo test && cargo build --release
//! weir plugins inspect target/release/libmy_source.so
//! weir --plugin-dir target/release run pipeline.toml
//! ```
//!
//! `weir new plugin` writes a `cdylib` crate with a typed config, the connector, its unit
//! tests, `tests/connector.rs` (the connector through the host's entry points, and the
//! conformance suite; see [Testing](#testing)) and a pipeline file. `weir plugins inspect` runs every check the host makes before
//! it trusts a plugin file ([`safety`](super::safety)), and `weir plugins doctor` explains a
//! refusal, with a hint for you and one for the plugin's author.
//!
//! ## The lifecycle
//!
//! ```text
//!  new(config) ─► connect(attempt) ─ Ok(true) ─► on_start ─► running ─► on_drain ─► on_stop ─► drop
//!                  │  Ok(false) or Err:                        │  ▲
//!                  └─ retried with backoff (attempt + 1)       │  └ on_resume
//!                                                              └─► on_pause (a sink's breaker, the host)
//!  running: pull (sources), on_ack / on_fail (sources), on_event + on_batch_end (sinks),
//!           on_circuit (sources), on_tick (sinks whose breaker is closed)
//! ```
//!
//! - **`new`** gets the config and must not open anything: `weir check` runs it to validate
//!   a pipeline file. **`connect`** opens what the connector talks to; return `Ok(false)`
//!   or a transient error to be retried with backoff.
//! - The host calls **one method at a time** per instance, from the instance's own thread.
//!   No method should block for long: a source with nothing to say returns
//!   [`PullStatus::Empty`](crate::PullStatus::Empty). At shutdown a method that blocks is
//!   named and abandoned after the drain and stop deadlines.
//! - **Errors** are transient unless made with [`Error::permanent`](crate::Error::permanent),
//!   which stops the connector for good and makes the run exit 1 (a missing file, a wrong
//!   password: retrying cannot help).
//! - **A panic** in any method is caught in the plugin, reported with its message and
//!   location, and the instance is not called again; the host restarts it
//!   (`max_restarts`, default 3) and fails back what it had not delivered.
//!
//! ## Sources
//!
//! A source fills the host's batch in [`pull`](crate::Connector::pull) and says what comes
//! next: `Ready` (pull again now), `Empty` (nothing now) or `Finished` (never again). Each
//! [`push`](crate::SourceBatch::push) copies the bytes into the host's memory at once and
//! returns the event's id; push to other streams ([`push_to_stream`](crate::SourceBatch::push_to_stream),
//! one per connection or file) and end a stream with
//! [`end_stream`](crate::SourceBatch::end_stream) so that the host flushes its
//! preprocessors (a last line without a newline).
//!
//! [`push_with_meta`](crate::SourceBatch::push_with_meta) attaches metadata to an event (a
//! JSON object, as bytes: a file name, an offset). The host does not parse it: every event
//! decoded from the pulled one (a preprocessor may split it into many) carries it to its
//! sinks as [`Event::meta`](crate::Event::meta), as is (the `stdout` sink's `meta = true`
//! prints it). Error events on the `err` port and what a stream's end flushes carry none.
//!
//! Once every sink an event went to delivered it, the host calls
//! [`on_ack`](crate::Connector::on_ack); if one did not, [`on_fail`](crate::Connector::on_fail).
//! A source that must not lose events sends a failed one again:
//!
//! ```
//! use std::collections::{BTreeMap, VecDeque};
//!
//! use weir_sdk::{
//!     Connector, ConnectorContext, EventId, NoConfig, PullStatus, Result, SourceBatch,
//!     connector_plugin,
//! };
//!
//! /// Sends the numbers 0..100, each until a sink has it.
//! pub struct Resending {
//!     /// Not sent yet (or failed: sent again).
//!     to_send: VecDeque<u64>,
//!     /// Sent, awaiting their verdict, by event id.
//!     in_flight: BTreeMap<EventId, u64>,
//! }
//!
//! #[connector_plugin]
//! impl Connector for Resending {
//!     type Config = NoConfig;
//!
//!     fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
//!         Ok(Self { to_send: (0..100).collect(), in_flight: BTreeMap::new() })
//!     }
//!
//!     fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
//!         while !batch.is_full() {
//!             let Some(n) = self.to_send.pop_front() else { break };
//!             let id = batch.push(n.to_string().as_bytes());
//!             self.in_flight.insert(id, n);
//!         }
//!         Ok(if self.to_send.is_empty() && self.in_flight.is_empty() {
//!             PullStatus::Finished
//!         } else if self.to_send.is_empty() {
//!             PullStatus::Empty // waiting for verdicts
//!         } else {
//!             PullStatus::Ready
//!         })
//!     }
//!
//!     fn on_ack(&mut self, _ctx: &ConnectorContext, id: EventId) -> Result<()> {
//!         self.in_flight.remove(&id); // a real source commits here (an offset, an XACK)
//!         Ok(())
//!     }
//!
//!     fn on_fail(&mut self, _ctx: &ConnectorContext, id: EventId) -> Result<()> {
//!         if let Some(n) = self.in_flight.remove(&id) {
//!             self.to_send.push_back(n);
//!         }
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! **Idle sources.** After `Empty` the host polls with a backoff, unless the source says
//! more: [`ConnectorContext::pull_after`](crate::ConnectorContext::pull_after) during the pull
//! (a timer's next tick: not pulled before then), or a [`Waker`](crate::Waker) taken with
//! [`ConnectorContext::waker`](crate::ConnectorContext::waker) that any thread (the
//! connector's own I/O thread) wakes when events may be ready; a source that took one is
//! pulled when woken, not polled. A thousand idle sources then cost under 1% of a core.
//!
//! ## Sinks
//!
//! [`on_event`](crate::Connector::on_event) replies per event: `Ack` (delivered), `Fail`
//! (not delivered: the source may send it again) or `Auto` (acked). A transient error fails
//! that event and is logged; a permanent one fails the batch and stops the sink.
//! [`on_batch_end`](crate::Connector::on_batch_end) runs after each batch, before the host
//! reads the replies: a sink that buffers writes makes them durable there, so that its acks
//! mean what they promise (an error there fails the whole batch).
//!
//! A sink that cannot deliver for a while closes its **circuit breaker**: the host stops
//! sending to it, pauses the sources that feed it, and calls
//! [`on_tick`](crate::Connector::on_tick) periodically until the sink opens it again:
//!
//! ```
//! use weir_sdk::{
//!     Connector, ConnectorContext, Event, NoConfig, Result, SinkContext, SinkReply,
//!     connector_plugin,
//! };
//!
//! /// Buffers events and writes them per batch to a peer that may go away.
//! pub struct Buffered {
//!     buffer: Vec<u8>,
//!     peer_up: bool,
//! }
//!
//! #[connector_plugin]
//! impl Connector for Buffered {
//!     type Config = NoConfig;
//!
//!     fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
//!         Ok(Self { buffer: Vec::new(), peer_up: true })
//!     }
//!
//!     fn on_event(&mut self, ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
//!         if !self.peer_up {
//!             ctx.close_circuit(); // no more events until it is open again
//!             return Ok(SinkReply::Fail);
//!         }
//!         self.buffer.extend_from_slice(event.bytes);
//!         Ok(SinkReply::Ack) // only true once `on_batch_end` succeeds
//!     }
//!
//!     fn on_batch_end(&mut self, _ctx: &mut SinkContext<'_>) -> Result<()> {
//!         // Write `self.buffer` to the peer here; an error fails every event of the batch.
//!         self.buffer.clear();
//!         Ok(())
//!     }
//!
//!     fn on_tick(&mut self, ctx: &mut SinkContext<'_>) -> Result<()> {
//!         self.peer_up = true; // a real sink would try to reach the peer
//!         ctx.open_circuit();
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! ## Config
//!
//! The `config` table of a connector's `[[connector]]` is deserialized into its `Config`
//! type with serde. Derive `Deserialize`, add `#[serde(deny_unknown_fields)]` so that a typo
//! is an error, and give defaults with `#[serde(default)]`. An error names the offending
//! field with the pipeline file's line and column (`weir check` reports them all without
//! running anything); return `Err` from `new` for what serde cannot check.
//!
//! ## Logging
//!
//! Use the `tracing` macros ([`weir_sdk::tracing`](crate::tracing) re-exports the crate) or
//! [`ConnectorContext::log`](crate::ConnectorContext::log): records appear in the host's
//! log, filtered by its `RUST_LOG`, tagged with the connector's id and the plugin's name.
//!
//! ## Metrics
//!
//! The host counts, per connector, the events in and out, the events sent to `err`, acks,
//! fails, the circuit breaker's state and restarts (`weir status` on a running weir, and
//! the final metrics `weir run` prints): a connector writes no code for them. What only the
//! connector knows (bytes written, reconnects, a peer's lag) it logs, at a level the host's
//! `RUST_LOG` can filter; the sdk has no metrics API of its own yet.
//!
//! ## Testing
//!
//! A connector is an ordinary Rust type: unit-test its methods with a context attached to no
//! host, [`ConnectorContext::detached`](crate::ConnectorContext::detached):
//!
//! ```
//! use weir_sdk::{
//!     Connector, ConnectorContext, Event, EventId, NoConfig, Result, SinkContext, SinkReply,
//!     connector_plugin,
//! };
//!
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
//! # fn main() {
//! let ctx = ConnectorContext::detached("test");
//! let mut sink = Even::new(NoConfig {}, &ctx).unwrap();
//! let mut circuit = None;
//! let mut reply = |bytes: &[u8]| {
//!     let event = Event { bytes, id: EventId { stream: 0, pull: 0 }, ingest_ns: 0, meta: b"" };
//!     sink.on_event(&mut SinkContext::new(&ctx, &mut circuit), event).unwrap()
//! };
//! assert_eq!(reply(b"ab"), SinkReply::Ack);
//! assert_eq!(reply(b"abc"), SinkReply::Fail);
//! # }
//! ```
//!
//! Then through the entry points the host calls, without building a `.so`: the
//! `weir-testing` crate (a dev-dependency; `weir new plugin` sets it up) is a small
//! in-process host. It validates the connector linked into the test as the host validates
//! a plugin file and calls it through the C vtable and the trampolines: configs as TOML,
//! the lifecycle (connect with retries, start, pause, resume, drain, stop), pulls and
//! batches, acks, fails and circuit notices, and what the connector logged. A panic comes
//! back as the host reports it, and a call that blocks fails the test instead of hanging
//! it. Its conformance suite checks what every connector must do: its lifecycle in order,
//! no call blocking past a bound, no more events than asked for, acks and fails taken, a
//! drain with events in flight, a sink that acks.
//!
//! `weir_testing`'s crate documentation (`cargo doc -p weir-testing --open`) has the
//! example, compiled by its doctests: the `Even` sink above, driven and checked.
//!
//! And with real runs: `weir check pipeline.toml`, then `weir run` (`RUST_LOG=debug` shows
//! more of what the host does with it).
//!
//! ## Performance
//!
//! - Push many events per pull (the host asks for up to `--batch-size`, 64 by default) and
//!   reuse buffers: a push copies the bytes, so the source may overwrite them at once.
//! - The boundary is crossed once per batch, not per event: a plugin runs at the speed of the
//!   same connector linked in as a built-in (see `BENCHMARKS.md`).
//! - Never block in a method: do blocking I/O on a thread of your own and wake the host with
//!   a [`Waker`](crate::Waker).
//!
//! ## Crashes no trap catches
//!
//! A panic in any method is caught: the host restarts the connector (`max_restarts`) and
//! nothing else notices. A segfault (a bad pointer in `unsafe` code or in a C library you
//! link), a stack overflow, `std::process::abort`, a dependency built with
//! `panic = "abort"`, `std::process::exit` or a method that never returns are not panics:
//! in the host's process they end the whole run. When a connector can do any of these (it
//! wraps a C driver, it parses untrusted input with deep recursion), tell its users to run
//! it with `isolation = "process"`: the same file, unchanged, runs in a child process
//! where each of these is a restart (see the README's "When a plugin crashes its process",
//! with what it costs). Nothing changes for the plugin: every method, log record, waker and
//! shutdown request works the same.
//!
//! ## Built-ins
//!
//! Build the crate as `crate-type = ["cdylib", "rlib"]` and a host binary can link it and
//! call the connector through its Rust trait ([`builtin`](crate::builtin)); each plugin
//! exports its metadata under a name of its own, so several link side by side.
//!
//! ## The ABI, versions, and what the host checks
//!
//! The macro generates everything that crosses the boundary: a declaration with the ABI
//! version, a fingerprint of every frozen type's layout, the panic strategy and the target,
//! and a C vtable whose entry points catch panics. A host loads plugins of its ABI major
//! version and any minor up to its own; what may change in a minor version, and how a
//! plugin built for an older one keeps working, is in [`abi_evolution`](super::abi_evolution).
//! What the host checks in a plugin file, in order, before it runs any of its code, is in
//! [`safety`](super::safety). The plugin's own version (`version = "..."`, its crate's by
//! default) is independent of both: several versions of one plugin run side by side.
//!
//! ## Plugins in C
//!
//! The ABI is C: `sdk/include/weir_connector.h` describes it, generated from
//! [`abi`](crate::abi) (a test regenerates it and fails on any difference) and asserting every
//! struct's size, alignment and field offsets. It writes down the rules the macro keeps for a
//! Rust author: never unwind, each side frees what it allocated, slices live for the call.
//! `examples/c/counter.c` is a complete plugin; the harness and the conformance suite take
//! its `.so` as they take a Rust plugin's (`weir_testing::Harness::load`).
//!
//! ## Troubleshooting
//!
//! | `weir plugins inspect` / `doctor` says | what to do |
//! |---|---|
//! | not a Weir plugin: no exported `weir_plugin_metadata` function | annotate the impl with `#[connector_plugin]` and build a `cdylib` |
//! | plugin was built with panic = "abort" | remove `panic = "abort"` from the plugin's profile |
//! | ABI major version mismatch / minor too new | rebuild against the host's weir-sdk |
//! | layout fingerprint mismatch | the sdk was changed without an ABI bump: rebuild both from one sdk |
//! | exports 2 metadata functions | one connector per library; link several only into a host |
