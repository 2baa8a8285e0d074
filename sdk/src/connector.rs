//! The `Connector` trait and the context types its methods receive.

use std::fmt;

use serde::de::DeserializeOwned;

use crate::abi::{self, AbiSlice, EventWriter, HostApi, LogLevel, LogRecord};
use crate::error::Result;

pub use crate::abi::EventId;

/// A connector: the state of one running instance of a plugin, and what the host can ask
/// of it.
///
/// Implement it on an ordinary struct and put `#[connector_plugin]` on the impl; the macro
/// generates everything the host needs. A connector is a *source* when the impl defines
/// [`pull`](Connector::pull), a *sink* when it defines [`on_event`](Connector::on_event), or
/// both. Every other method has a default that does nothing.
///
/// The host calls one method at a time per instance, from a thread of its choosing; none of
/// them should block for long (a source with nothing to say returns [`PullStatus::Empty`]
/// and the host backs off). A panic in any method is caught inside the plugin, reported to
/// the host with its message and location, and the instance is not called again.
///
/// The type must be `Send` to be exported (the host may move an instance between threads):
/// `#[connector_plugin]` requires it, with one error on the impl when it is not.
pub trait Connector: Sized + 'static {
    /// The connector's config, deserialized from the `config` table of the host's
    /// pipeline file. Use [`NoConfig`] for a connector without settings.
    type Config: ConnectorConfig;

    /// Creates the connector from its config. Nothing should be opened yet: that is
    /// [`connect`](Connector::connect)'s job, which the host retries.
    fn new(config: Self::Config, ctx: &ConnectorContext) -> Result<Self>;

    /// Connects to whatever the connector talks to. `attempt` is 0 the first time and
    /// grows while connecting fails; return `Ok(false)` (or an error) to be retried
    /// with backoff, `Ok(true)` once connected.
    fn connect(&mut self, ctx: &ConnectorContext, attempt: u32) -> Result<bool> {
        let _ = (ctx, attempt);
        Ok(true)
    }

    /// The connector starts running.
    fn on_start(&mut self, ctx: &ConnectorContext) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// The connector is paused: a source is not pulled until it is resumed.
    fn on_pause(&mut self, ctx: &ConnectorContext) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// The connector resumes after a pause.
    fn on_resume(&mut self, ctx: &ConnectorContext) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// The pipeline drains: no new events will arrive; finish what is in flight.
    fn on_drain(&mut self, ctx: &ConnectorContext) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// The connector stops; flush and release what it holds (the value is dropped next).
    fn on_stop(&mut self, ctx: &ConnectorContext) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Source side: appends zero or more events to `batch` and says what comes next.
    ///
    /// Defining this method makes the connector a source. After
    /// [`PullStatus::Empty`], the host pulls again after a short backoff (polling), unless the
    /// source said when: [`ConnectorContext::pull_after`] (nothing before then), or it took a
    /// [`ConnectorContext::waker`] and wakes it when events may be ready (then it is pulled
    /// when woken, not polled).
    fn pull(&mut self, ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        let _ = (ctx, batch);
        Err(crate::Error::new("this connector is not a source"))
    }

    /// Source side: the event `id` was delivered by every sink it went to.
    fn on_ack(&mut self, ctx: &ConnectorContext, id: EventId) -> Result<()> {
        let _ = (ctx, id);
        Ok(())
    }

    /// Source side: the event `id` was not delivered; a transactional source may resend it.
    fn on_fail(&mut self, ctx: &ConnectorContext, id: EventId) -> Result<()> {
        let _ = (ctx, id);
        Ok(())
    }

    /// Source side: a sink this source feeds closed or opened its circuit breaker. While it
    /// is closed the host does not pull; this is for sources that must tell their peers.
    fn on_circuit(&mut self, ctx: &ConnectorContext, circuit: Circuit) -> Result<()> {
        let _ = (ctx, circuit);
        Ok(())
    }

    /// Sink side: called periodically while this sink's circuit breaker is closed (no events
    /// reach it then), so that it can reopen it with [`SinkContext::open_circuit`], for
    /// example once a peer is reachable again.
    fn on_tick(&mut self, ctx: &mut SinkContext<'_>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Sink side: delivers one event. Reply [`SinkReply::Ack`], [`SinkReply::Fail`] or
    /// [`SinkReply::Auto`]; an error counts as a fail and is reported. Move the circuit
    /// breaker with [`SinkContext::close_circuit`] / [`SinkContext::open_circuit`].
    ///
    /// Defining this method makes the connector a sink.
    fn on_event(&mut self, ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        let _ = (ctx, event);
        Err(crate::Error::new("this connector is not a sink"))
    }

    /// Sink side: called once after every event of a batch went through
    /// [`on_event`](Connector::on_event), before the host reads the replies. A sink that
    /// buffers writes makes them durable here (flushes), so that an ack means what it
    /// promises. Returning an error fails every event of the batch (the host does not count
    /// one of them as delivered); a [permanent](crate::Error::permanent) error also stops
    /// the connector for good.
    fn on_batch_end(&mut self, ctx: &mut SinkContext<'_>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }
}

/// A type the host can deserialize a connector's config into.
///
/// Implemented for every `serde::de::DeserializeOwned + Send + 'static` type; derive
/// `serde::Deserialize` on your config struct.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a connector config",
    label = "this type does not implement `serde::Deserialize`",
    note = "add `#[derive(serde::Deserialize)]` to `{Self}`, or use `weir_sdk::NoConfig`"
)]
pub trait ConnectorConfig: Send + 'static {
    /// Reads the config from the JSON document the host hands over.
    #[doc(hidden)]
    fn __from_host(json: &[u8]) -> std::result::Result<Self, crate::__private::ConfigError>
    where
        Self: Sized;
}

// `do_not_recommend`, and no `DeserializeOwned` supertrait: otherwise rustc looks through
// this impl and reports serde's missing `Deserialize` instead of the message above.
#[diagnostic::do_not_recommend]
impl<T: DeserializeOwned + Send + 'static> ConnectorConfig for T {
    fn __from_host(json: &[u8]) -> std::result::Result<Self, crate::__private::ConfigError> {
        crate::__private::parse_config(json)
    }
}

/// Config of a connector that has no settings: accepts only an empty table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// What a source expects after a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullStatus {
    /// More events may be ready now: pull again right away.
    Ready,
    /// Nothing right now: the host backs off before the next pull.
    Empty,
    /// The source will never produce another event.
    Finished,
}

/// A sink's verdict on one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SinkReply {
    /// No explicit verdict: the host acks the event.
    Auto,
    /// Delivered.
    Ack,
    /// Not delivered; the source may resend it.
    Fail,
}

/// A circuit breaker's state, as a source is told about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Circuit {
    /// A downstream sink asked not to be sent anything: the host stops pulling.
    Closed,
    /// Every downstream sink accepts events again.
    Open,
}

/// The context every connector method receives: the connector's identity and the host's
/// services.
pub struct ConnectorContext {
    id: String,
    host: HostApi,
    bound_as: abi::Capabilities,
}

impl ConnectorContext {
    pub(crate) fn new(id: String, host: HostApi, bound_as: abi::Capabilities) -> Self {
        Self { id, host, bound_as }
    }

    /// A context attached to no host: logs and shutdown requests go nowhere. For unit tests
    /// of a connector, or running one in-process without the ABI.
    pub fn detached(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            host: HostApi::ABSENT,
            bound_as: abi::Capabilities::NONE,
        }
    }

    /// The same context, as if the pipeline bound the connector as a source (events flow
    /// from it) and/or as a sink (events flow to it). For unit tests of connectors whose
    /// defaults depend on it.
    #[must_use]
    pub fn with_bindings(mut self, as_source: bool, as_sink: bool) -> Self {
        let mut bound_as = abi::Capabilities::NONE;
        if as_source {
            bound_as = bound_as.union(abi::Capabilities::SOURCE);
        }
        if as_sink {
            bound_as = bound_as.union(abi::Capabilities::SINK);
        }
        self.bound_as = bound_as;
        self
    }

    /// The connector's id in the host's pipeline configuration.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the pipeline binds this connector as a source: events flow from it. Both
    /// this and [`is_bound_as_sink`](Self::is_bound_as_sink) are `false` when the host only
    /// validates the config, without a pipeline.
    pub fn is_bound_as_source(&self) -> bool {
        self.bound_as.contains(abi::Capabilities::SOURCE)
    }

    /// Whether the pipeline binds this connector as a sink: events flow to it.
    pub fn is_bound_as_sink(&self) -> bool {
        self.bound_as.contains(abi::Capabilities::SINK)
    }

    pub(crate) fn host(&self) -> &HostApi {
        &self.host
    }

    /// Sends a message to the host's log, tagged with this connector's id and plugin name.
    pub fn log(&self, level: Level, message: &str) {
        self.log_with_target(level, module_path!(), message);
    }

    /// Like [`log`](Self::log), naming the log target (usually a module path).
    pub fn log_with_target(&self, level: Level, target: &str, message: &str) {
        if let Some(log) = self.host_fn(|h| h.log) {
            let record = LogRecord {
                level: level.to_abi(),
                target: AbiSlice::from_str(target),
                message: AbiSlice::from_str(message),
            };
            // SAFETY: the host guarantees `log` and `ctx` are valid while the instance lives
            // (see `HostApi::ctx`), and `record` borrows strings that outlive the call.
            unsafe { log(self.host.ctx, &record) };
        }
    }

    /// A [`Waker`](crate::Waker) for this source, to be woken from any thread when events
    /// may be ready, instead of being polled while it has none. Taking one changes how the
    /// host treats an [`Empty`](PullStatus::Empty) pull: the next pull comes when woken
    /// (or after a long safety interval). On a context attached to no host, a waker that
    /// does nothing.
    pub fn waker(&self) -> crate::Waker {
        crate::Waker::new(&self.host)
    }

    /// During [`pull`](Connector::pull): this source will have nothing before `delay` has
    /// passed (a timer's next tick), so the host need not pull it sooner; a
    /// [`Waker`](crate::Waker) still can. Takes effect when the pull returns
    /// [`Empty`](PullStatus::Empty); ignored otherwise.
    pub fn pull_after(&self, delay: std::time::Duration) {
        #[cfg(feature = "__abi-1-0-for-tests")]
        let _ = delay;
        #[cfg(not(feature = "__abi-1-0-for-tests"))]
        if let Some(pull_after) = self.host_fn(|h| h.pull_after) {
            let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
            // SAFETY: as in `log_with_target`: valid for the instance's life.
            unsafe { pull_after(self.host.ctx, nanos) };
        }
    }

    /// Asks the host to shut the whole runtime down cleanly, for example when a benchmark
    /// sink has seen enough. Returns at once; the host stops connectors in order.
    pub fn request_shutdown(&self) {
        if let Some(request_shutdown) = self.host_fn(|h| h.request_shutdown) {
            // SAFETY: as in `log_with_target`: valid for the instance's life.
            unsafe { request_shutdown(self.host.ctx) };
        }
    }

    /// Reads an optional host function, only if the host's `HostApi` is new enough to have
    /// that field (append-only evolution).
    fn host_fn<F: Copy>(&self, field: impl FnOnce(&HostApi) -> Option<F>) -> Option<F> {
        // Every field of this sdk's HostApi is present when struct_size covers the whole
        // struct (a host is never older than its plugins' minor).
        if self.host.struct_size >= size_of::<HostApi>() {
            field(&self.host)
        } else {
            None
        }
    }
}

impl fmt::Debug for ConnectorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorContext")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Severity of a message logged through [`ConnectorContext::log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// An error.
    Error,
    /// A warning.
    Warn,
    /// Information.
    Info,
    /// Debugging detail.
    Debug,
    /// Very verbose detail.
    Trace,
}

impl Level {
    fn to_abi(self) -> LogLevel {
        match self {
            Level::Error => LogLevel::ERROR,
            Level::Warn => LogLevel::WARN,
            Level::Info => LogLevel::INFO,
            Level::Debug => LogLevel::DEBUG,
            Level::Trace => LogLevel::TRACE,
        }
    }
}

/// The host's batch that a source appends events to during [`Connector::pull`].
///
/// Each push copies the bytes into host memory at once, so the source may reuse its buffers.
pub struct SourceBatch<'a> {
    writer: &'a EventWriter,
    capacity: usize,
    pushed: usize,
}

impl<'a> SourceBatch<'a> {
    pub(crate) fn new(writer: &'a EventWriter, capacity: usize) -> Self {
        Self {
            writer,
            capacity,
            pushed: 0,
        }
    }

    /// Appends an event to stream 0 and returns its id.
    pub fn push(&mut self, bytes: &[u8]) -> EventId {
        self.push_to_stream(0, bytes)
    }

    /// Appends an event to `stream` and returns its id.
    pub fn push_to_stream(&mut self, stream: u64, bytes: &[u8]) -> EventId {
        self.push_with_meta(stream, bytes, &[])
    }

    /// Appends an event with metadata (a JSON object, as bytes) and returns its id.
    pub fn push_with_meta(&mut self, stream: u64, bytes: &[u8], meta: &[u8]) -> EventId {
        let event = abi::RawEvent {
            bytes: AbiSlice::from_bytes(bytes),
            stream,
            meta: AbiSlice::from_bytes(meta),
        };
        // SAFETY: the host keeps `writer` valid for the duration of the pull this batch
        // belongs to (the batch borrows it for that long); `event` borrows live slices.
        let pull = unsafe { (self.writer.push)(self.writer.ctx, &event) };
        self.pushed += 1;
        EventId { stream, pull }
    }

    /// Marks the end of `stream`: the host flushes its per-stream state.
    pub fn end_stream(&mut self, stream: u64) {
        // SAFETY: as in `push_with_meta`.
        unsafe { (self.writer.end_stream)(self.writer.ctx, stream) };
    }

    /// How many more events the host asked for in this pull. The host takes more, but a
    /// source that pushes past it defeats the host's flow control (its memory bound), and
    /// the conformance suite (`weir_testing::conformance`) fails it.
    pub fn remaining(&self) -> usize {
        self.capacity.saturating_sub(self.pushed)
    }

    /// Whether the host's wish for this pull is met.
    pub fn is_full(&self) -> bool {
        self.remaining() == 0
    }

    /// How many events were pushed in this pull so far.
    pub fn len(&self) -> usize {
        self.pushed
    }

    /// Whether nothing was pushed in this pull so far.
    pub fn is_empty(&self) -> bool {
        self.pushed == 0
    }
}

impl fmt::Debug for SourceBatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceBatch")
            .field("capacity", &self.capacity)
            .field("pushed", &self.pushed)
            .finish()
    }
}

/// One event delivered to a sink, borrowed for the duration of [`Connector::on_event`].
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The encoded payload.
    pub bytes: &'a [u8],
    /// The event's id at its source.
    pub id: EventId,
    /// When the host ingested the event at its source, in nanoseconds since the Unix epoch
    /// (end-to-end latency is `now - ingest_ns`).
    pub ingest_ns: u64,
    /// Metadata (a JSON object as bytes), empty when absent.
    pub meta: &'a [u8],
}

/// What a sink receives besides the event: the connector context and its circuit breaker.
pub struct SinkContext<'a> {
    connector: &'a ConnectorContext,
    circuit: &'a mut Option<Circuit>,
}

impl<'a> SinkContext<'a> {
    /// A sink context over `connector` that records circuit-breaker requests in `circuit`
    /// (the host does this for you; this is for unit tests and in-process use).
    pub fn new(connector: &'a ConnectorContext, circuit: &'a mut Option<Circuit>) -> Self {
        Self { connector, circuit }
    }

    /// Closes this sink's circuit breaker: the host stops sending to it (and pauses the
    /// sources feeding it) until [`open_circuit`](Self::open_circuit).
    pub fn close_circuit(&mut self) {
        *self.circuit = Some(Circuit::Closed);
    }

    /// Opens this sink's circuit breaker again: the host resumes sending.
    pub fn open_circuit(&mut self) {
        *self.circuit = Some(Circuit::Open);
    }

    /// The circuit-breaker change requested so far in this batch, if any.
    pub fn requested_circuit(&self) -> Option<Circuit> {
        *self.circuit
    }
}

impl std::ops::Deref for SinkContext<'_> {
    type Target = ConnectorContext;

    fn deref(&self) -> &ConnectorContext {
        self.connector
    }
}

impl fmt::Debug for SinkContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkContext")
            .field("connector", self.connector)
            .field("circuit", &self.circuit)
            .finish()
    }
}
