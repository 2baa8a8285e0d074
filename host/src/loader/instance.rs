//! Connector instances: creating them from a validated plugin and calling into them.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Waker;
use std::time::Duration;

use weir_sdk::abi::{
    AbiSlice, CallStatus, Capabilities, CircuitChange, CloseArgs, ConnectArgs, Connected,
    ConnectorFfi, ConnectorObject, CreateArgs, ErrorKind, EventId, EventWriter, Feedback,
    FeedbackArgs, HostApi, LogLevel, LogRecord, NotifyArgs, PullArgs, PullHint, RawEvent,
    RawEventView, ReplyCode, SinkArgs,
};
use weir_sdk::{Circuit, Level, PullStatus, SinkReply};

use weir_sdk::builtin::{Fault, NativeConnector};

use super::isolated::{self, Child, Isolation, Reply};
use super::{Checker, ErrorCollector, LoadedLibrary, Origin, Plugin, PluginInfo};
use crate::error::CallError;
use crate::field_path::FieldPath;

/// A lifecycle or circuit-breaker notice for a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notice {
    /// Start running (after a successful connect).
    Start,
    /// Pause.
    Pause,
    /// Resume after a pause.
    Resume,
    /// Drain: no new work will arrive.
    Drain,
    /// Stop.
    Stop,
    /// (Sources) a downstream sink closed its circuit breaker.
    CircuitClosed,
    /// (Sources) every downstream sink's circuit breaker is open again.
    CircuitOpened,
}

impl Notice {
    fn to_abi(self) -> weir_sdk::abi::Notice {
        use weir_sdk::abi::Notice as N;
        match self {
            Notice::Start => N::START,
            Notice::Pause => N::PAUSE,
            Notice::Resume => N::RESUME,
            Notice::Drain => N::DRAIN,
            Notice::Stop => N::STOP,
            Notice::CircuitClosed => N::CIRCUIT_CLOSED,
            Notice::CircuitOpened => N::CIRCUIT_OPENED,
        }
    }

    /// The connector method the notice calls (`on_start`, `on_circuit`, ...).
    pub fn method(self) -> &'static str {
        match self {
            Notice::Start => "on_start",
            Notice::Pause => "on_pause",
            Notice::Resume => "on_resume",
            Notice::Drain => "on_drain",
            Notice::Stop => "on_stop",
            Notice::CircuitClosed | Notice::CircuitOpened => "on_circuit",
        }
    }
}

/// How a pipeline binds a connector: as a source (events flow from it), as a sink (events
/// flow to it), both, or neither (when only its config is validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Sides {
    /// Events flow from it.
    pub source: bool,
    /// Events flow to it.
    pub sink: bool,
}

impl Sides {
    /// Bound neither way.
    pub const NONE: Self = Self {
        source: false,
        sink: false,
    };
    /// Bound as a source only.
    pub const SOURCE: Self = Self {
        source: true,
        sink: false,
    };
    /// Bound as a sink only.
    pub const SINK: Self = Self {
        source: false,
        sink: true,
    };
    /// Bound both ways.
    pub const BOTH: Self = Self {
        source: true,
        sink: true,
    };

    fn to_abi(self) -> Capabilities {
        let mut bits = Capabilities::NONE;
        if self.source {
            bits = bits.union(Capabilities::SOURCE);
        }
        if self.sink {
            bits = bits.union(Capabilities::SINK);
        }
        bits
    }
}

/// One event handed to a sink: a borrowed view with the exact layout the ABI passes, so a
/// `&[SinkEvent]` crosses into the plugin as it is, without a copy.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct SinkEvent<'a> {
    view: RawEventView,
    _borrow: PhantomData<&'a [u8]>,
}

// SAFETY: a `SinkEvent` is two shared borrows of immutable bytes plus an id; sending or
// sharing it is as safe as sending or sharing `&[u8]`.
unsafe impl Send for SinkEvent<'_> {}
// SAFETY: see the `Send` impl above.
unsafe impl Sync for SinkEvent<'_> {}

impl<'a> SinkEvent<'a> {
    /// The events as the ABI passes them, without a copy.
    fn as_views<'s>(events: &'s [SinkEvent<'a>]) -> &'s [RawEventView] {
        // SAFETY: `SinkEvent` is `repr(transparent)` over `RawEventView`, so a slice of one
        // is a slice of the other, with the same length and lifetime.
        unsafe { std::slice::from_raw_parts(events.as_ptr().cast::<RawEventView>(), events.len()) }
    }

    /// An event with its payload, its id at its source, its ingest time (nanoseconds since
    /// the Unix epoch) and metadata (a JSON object as bytes, empty when absent).
    pub fn new(bytes: &'a [u8], id: EventId, ingest_ns: u64, meta: &'a [u8]) -> Self {
        Self {
            view: RawEventView {
                bytes: AbiSlice::from_bytes(bytes),
                id,
                ingest_ns,
                meta: AbiSlice::from_bytes(meta),
            },
            _borrow: PhantomData,
        }
    }

    /// The payload.
    pub fn bytes(&self) -> &'a [u8] {
        // SAFETY: built from a `&'a [u8]` in `new`.
        unsafe { self.view.bytes.as_bytes() }
    }

    /// The event's id at its source.
    pub fn id(&self) -> EventId {
        self.view.id
    }

    /// When the event was ingested at its source (nanoseconds since the Unix epoch).
    pub fn ingest_ns(&self) -> u64 {
        self.view.ingest_ns
    }

    /// The metadata, empty when absent.
    pub fn meta(&self) -> &'a [u8] {
        // SAFETY: built from a `&'a [u8]` in `new`.
        unsafe { self.view.meta.as_bytes() }
    }
}

/// What a sink said about a batch.
#[derive(Debug)]
pub struct SinkOutcome<'a> {
    /// Reply codes of the events the sink processed, as the plugin wrote them.
    codes: &'a [ReplyCode],
    /// Number of events in the batch.
    len: usize,
    /// The circuit-breaker change the sink asked for, if any.
    pub circuit: Option<Circuit>,
    /// Errors the sink returned for single events (those events are replied `Fail`).
    pub errors: Vec<String>,
}

impl SinkOutcome<'_> {
    /// The reply to event `index` of the batch. An event the sink did not get to, or a
    /// reply code this host does not know, counts as `Fail` (not delivered).
    ///
    /// # Panics
    /// If `index` is not less than the batch's length.
    pub fn reply(&self, index: usize) -> SinkReply {
        assert!(index < self.len, "reply {index} of a batch of {}", self.len);
        self.codes
            .get(index)
            .map_or(SinkReply::Fail, |code| decode_reply(*code))
    }

    /// The replies, one per event of the batch, in order (see [`reply`](Self::reply)).
    pub fn replies(&self) -> impl Iterator<Item = SinkReply> + '_ {
        let unprocessed = self.len - self.codes.len();
        self.codes
            .iter()
            .map(|code| decode_reply(*code))
            .chain(std::iter::repeat_n(SinkReply::Fail, unprocessed))
    }

    /// Number of events in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of events the sink got to: the first `processed()` replies are its own, the
    /// rest count as `Fail`. A sink built with the sdk always gets to every event.
    pub fn processed(&self) -> usize {
        self.codes.len()
    }

    /// Whether the batch was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A reply code as the host acts on it: unknown codes are failures (at-least-once delivery).
#[inline]
fn decode_reply(code: ReplyCode) -> SinkReply {
    match code {
        ReplyCode::AUTO => SinkReply::Auto,
        ReplyCode::ACK => SinkReply::Ack,
        _ => SinkReply::Fail,
    }
}

/// A host-owned buffer a source fills during [`ConnectorInstance::pull`]. Reuse one batch
/// across pulls: clearing keeps its memory, so steady-state pulls allocate nothing.
#[derive(Debug, Default)]
pub struct EventBatch {
    data: Vec<u8>,
    events: Vec<StoredEvent>,
    ended_streams: Vec<u64>,
}

#[derive(Debug, Clone)]
struct StoredEvent {
    id: EventId,
    bytes: Range<usize>,
    meta: Range<usize>,
}

/// One event pulled from a source, borrowed from its [`EventBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PulledEvent<'a> {
    /// The id the host assigned.
    pub id: EventId,
    /// The payload.
    pub bytes: &'a [u8],
    /// Metadata (JSON object bytes), empty when absent.
    pub meta: &'a [u8],
}

impl EventBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the events, keeping the memory.
    pub fn clear(&mut self) {
        self.data.clear();
        self.events.clear();
        self.ended_streams.clear();
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The event at `index`, in the order the source pushed them.
    pub fn get(&self, index: usize) -> Option<PulledEvent<'_>> {
        self.events.get(index).map(|e| PulledEvent {
            id: e.id,
            bytes: &self.data[e.bytes.clone()],
            meta: &self.data[e.meta.clone()],
        })
    }

    /// The events, in the order the source pushed them.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = PulledEvent<'_>> + '_ {
        self.events.iter().map(|e| PulledEvent {
            id: e.id,
            bytes: &self.data[e.bytes.clone()],
            meta: &self.data[e.meta.clone()],
        })
    }

    /// Streams the source ended during the pull.
    pub fn ended_streams(&self) -> &[u64] {
        &self.ended_streams
    }

    /// Records the end of `stream` on the host's behalf (a finished source ends them all).
    pub fn end_stream(&mut self, stream: u64) {
        self.ended_streams.push(stream);
    }

    /// Forgets the events from index `len` on (what a rejected answer of a child added).
    pub(crate) fn truncate(&mut self, len: usize) {
        if let Some(first) = self.events.get(len) {
            self.data.truncate(first.bytes.start);
            self.events.truncate(len);
        }
    }

    /// Appends a copy of one event (what a source in a child process pulled).
    pub(crate) fn push_copied(&mut self, id: EventId, bytes: &[u8], meta: &[u8]) {
        let bytes = self.append(bytes);
        let meta = if meta.is_empty() {
            bytes.end..bytes.end
        } else {
            self.append(meta)
        };
        self.events.push(StoredEvent { id, bytes, meta });
    }

    fn append(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        start..self.data.len()
    }
}

/// One record a connector logged (`ConnectorContext::log` in the sdk), as a [`LogSink`]
/// receives it.
#[derive(Debug, Clone, Copy)]
pub struct PluginLog<'a> {
    /// The connector's id.
    pub connector: &'a str,
    /// Its severity.
    pub level: Level,
    /// The target the plugin gave (its module path, unless it chose one).
    pub target: &'a str,
    /// The message.
    pub message: &'a str,
}

/// Where an instance's log records go instead of the host's `tracing` log; called from
/// whichever thread the plugin logs on. It should not panic: if it does, the record is
/// dropped (and a warning logged), since the call comes through the C ABI.
pub type LogSink = Arc<dyn Fn(PluginLog<'_>) + Send + Sync>;

/// How [`Plugin::instantiate_with`] creates an instance: how the pipeline binds it, what
/// its wakers wake, where its logs go.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct InstanceOptions {
    /// How the pipeline binds the connector (none by default).
    pub bound_as: Sides,
    /// What the connector's wakers wake (nothing by default).
    pub waker: Option<Waker>,
    /// Where its logs go (the host's `tracing` log, at the level it shows, by default).
    pub log: Option<LogSink>,
    /// Runs the connector in a child process (in this process by default).
    pub isolation: Option<Isolation>,
    /// With `log`: the most verbose level the sink takes (every level by default). A
    /// child process's sink takes what its host's log shows, so that its plugin does not
    /// format records nobody will see.
    pub(crate) log_level: Option<LogLevel>,
}

impl InstanceOptions {
    /// The defaults: bound neither way, wakers that wake nothing, logs to `tracing`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells the connector how the pipeline binds it.
    #[must_use]
    pub fn bound_as(mut self, sides: Sides) -> Self {
        self.bound_as = sides;
        self
    }

    /// What the connector's wakers wake: a source that takes one is pulled when it wakes
    /// `waker` rather than polled.
    #[must_use]
    pub fn waker(mut self, waker: Waker) -> Self {
        self.waker = Some(waker);
        self
    }

    /// Sends every record the connector logs, at every level, to `sink` instead of
    /// `tracing`.
    #[must_use]
    pub fn log_to(mut self, sink: LogSink) -> Self {
        self.log = Some(sink);
        self
    }

    /// Runs the connector in a child process started as `isolation` says, which loads the
    /// plugin file with the same validating loader: a crash of the plugin (a segfault, a
    /// stack overflow, an abort, an `exit`, a call that never returns) is then
    /// [`CallError::Crashed`], not the end of this process. Only for plugin files: a
    /// built-in always runs in this process.
    ///
    /// The child is killed when the thread that created the instance exits (the kernel's
    /// parent-death signal follows the thread that forked): create an isolated instance on
    /// a thread that lives as long as it does, as the runtime's connector threads do.
    #[must_use]
    pub fn isolate(mut self, isolation: Isolation) -> Self {
        self.isolation = Some(isolation);
        self
    }
}

impl std::fmt::Debug for InstanceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceOptions")
            .field("bound_as", &self.bound_as)
            .field("waker", &self.waker)
            .field("log", &self.log.as_ref().map(|_| "custom"))
            .field("isolation", &self.isolation)
            .field("log_level", &self.log_level)
            .finish()
    }
}

/// Per-instance state the plugin reaches through [`HostApi::ctx`] (and the reader of an
/// isolated instance's child, from its own thread).
pub(crate) struct HostContext {
    pub(crate) connector_id: String,
    pub(crate) plugin: String,
    pub(crate) shutdown_requested: AtomicBool,
    /// What the plugin's wakers wake (ABI 1.1), if the host has anything to wake.
    pub(crate) waker: Option<Waker>,
    /// The plugin took a waker: it wakes the host when it has events.
    waker_taken: AtomicBool,
    /// Nanoseconds the source said it will be quiet for, during the last pull
    /// (`u64::MAX`: it said nothing).
    quiet_for: AtomicU64,
    /// Where its logs go instead of `tracing`.
    log: Option<LogSink>,
}

impl HostContext {
    /// A context for a connector `id` that wakes nothing and logs to `tracing`.
    #[cfg(test)]
    pub(crate) fn detached(id: &str) -> Self {
        Self {
            connector_id: id.to_owned(),
            plugin: "test".to_owned(),
            shutdown_requested: AtomicBool::new(false),
            waker: None,
            waker_taken: AtomicBool::new(false),
            quiet_for: AtomicU64::new(u64::MAX),
            log: None,
        }
    }
}

impl std::fmt::Debug for HostContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostContext")
            .field("connector_id", &self.connector_id)
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Live,
    Poisoned,
    Closed,
}

/// A running connector created by a plugin. Calls are synchronous; a panic inside the
/// plugin comes back as [`CallError::Panicked`] and poisons the instance (every later call
/// returns [`CallError::Poisoned`] without entering the plugin; dropping it is safe).
pub struct ConnectorInstance {
    backend: Backend,
    /// Pointed to by the connector's `HostApi`; on the heap so it does not move (shared
    /// with an isolated instance's reader thread), dropped after `backend`.
    host: Arc<HostContext>,
    errors: ErrorCollector,
    state: State,
    next_pull: u64,
    /// Reply slots for `sink_batch`, reused across calls.
    sink_codes: Vec<ReplyCode>,
    /// Keeps the library loaded; dropped last.
    plugin: Plugin,
}

/// How the instance's connector is called.
enum Backend {
    /// Through the C ABI: the thin trait object the plugin's `create` returned.
    Library(ManuallyDrop<ConnectorObject>),
    /// Through the Rust trait: a built-in linked into this binary.
    Builtin(Box<dyn NativeConnector>),
    /// In a child process (`isolation = "process"`), over its socket.
    Process(Box<Child>),
}

// `ConnectorInstance` is `Send` (every field is) but not `Sync`: calls take `&mut self`.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<ConnectorInstance>();
};

impl std::fmt::Debug for ConnectorInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorInstance")
            .field("connector", &self.host.connector_id)
            .field("plugin", &self.host.plugin)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Creates a connector instance from its config (a JSON value; `{}` when it has none).
    ///
    /// # Errors
    /// [`CallError::Config`] naming the offending field when the config does not fit the
    /// connector's config type, [`CallError::Failed`] when its constructor returns an error,
    /// [`CallError::Panicked`] when it panics.
    pub fn instantiate(
        &self,
        connector_id: &str,
        config: &serde_json::Value,
    ) -> Result<ConnectorInstance, CallError> {
        self.instantiate_bound(connector_id, config, Sides::NONE)
    }

    /// Like [`instantiate`](Self::instantiate), telling the connector how the pipeline binds
    /// it (`ConnectorContext::is_bound_as_source` / `is_bound_as_sink` in the sdk), so that
    /// its defaults can follow (a `file` connector without `mode` reads as a source and
    /// appends as a sink).
    ///
    /// # Errors
    /// As [`instantiate`](Self::instantiate).
    pub fn instantiate_bound(
        &self,
        connector_id: &str,
        config: &serde_json::Value,
        bound_as: Sides,
    ) -> Result<ConnectorInstance, CallError> {
        self.instantiate_waking(connector_id, config, bound_as, None)
    }

    /// Like [`instantiate_bound`](Self::instantiate_bound), with what the connector's
    /// wakers wake (`weir_sdk::Waker`, ABI 1.1): a source that takes one is pulled when
    /// it wakes `waker` rather than polled. Without one, its wakers do nothing.
    ///
    /// # Errors
    /// As [`instantiate`](Self::instantiate).
    pub fn instantiate_waking(
        &self,
        connector_id: &str,
        config: &serde_json::Value,
        bound_as: Sides,
        waker: Option<Waker>,
    ) -> Result<ConnectorInstance, CallError> {
        let mut options = InstanceOptions::new().bound_as(bound_as);
        options.waker = waker;
        self.instantiate_with(connector_id, config, options)
    }

    /// Creates a connector instance as `options` say (see [`InstanceOptions`]).
    ///
    /// # Errors
    /// As [`instantiate`](Self::instantiate).
    pub fn instantiate_with(
        &self,
        connector_id: &str,
        config: &serde_json::Value,
        options: InstanceOptions,
    ) -> Result<ConnectorInstance, CallError> {
        let InstanceOptions {
            bound_as,
            waker,
            log,
            isolation,
            log_level,
        } = options;
        let info = self.info();
        let host = Arc::new(HostContext {
            connector_id: connector_id.to_owned(),
            plugin: info.name.clone(),
            shutdown_requested: AtomicBool::new(false),
            waker,
            waker_taken: AtomicBool::new(false),
            quiet_for: AtomicU64::new(u64::MAX),
            log,
        });
        let config = config.to_string();
        let max_level = if host.log.is_some() {
            log_level.unwrap_or(LogLevel::TRACE)
        } else {
            host_max_level()
        };
        if let Some(isolation) = isolation {
            let backend = self.create_in_child(&isolation, &host, &config, bound_as)?;
            return Ok(self.instance(backend, host));
        }
        let mut services = HostApi::new(
            Arc::as_ptr(&host).cast(),
            Some(host_log),
            Some(host_request_shutdown),
            max_level,
        );
        services.waker_new = Some(host_waker_new);
        services.waker_clone = Some(host_waker_clone);
        services.waker_wake = Some(host_waker_wake);
        services.waker_drop = Some(host_waker_drop);
        services.pull_after = Some(host_pull_after);
        let backend = match &*self.inner {
            Origin::Library(library) => {
                self.create_in_library(library, &config, connector_id, &services, bound_as)?
            }
            Origin::Builtin { builtin, .. } => {
                // SAFETY: every function in `services` is one of this module's, callable
                // with `host` (the context they expect) from any thread; `host` is boxed
                // and handed to the instance below, which drops the connector first.
                let created = unsafe {
                    builtin.create(config.as_bytes(), connector_id, services, bound_as.to_abi())
                };
                Backend::Builtin(
                    created.map_err(|fault| fault_error(fault, "new", connector_id, &info.name))?,
                )
            }
        };
        Ok(self.instance(backend, host))
    }

    /// A new instance of this plugin, called through `backend`.
    fn instance(&self, backend: Backend, host: Arc<HostContext>) -> ConnectorInstance {
        ConnectorInstance {
            backend,
            host,
            errors: ErrorCollector::default(),
            state: State::Live,
            next_pull: 0,
            sink_codes: Vec::new(),
            plugin: self.clone(),
        }
    }

    /// Starts a child process for the plugin's file and creates the instance in it.
    fn create_in_child(
        &self,
        isolation: &Isolation,
        host: &Arc<HostContext>,
        config: &str,
        bound_as: Sides,
    ) -> Result<Backend, CallError> {
        let info = self.info();
        if self.is_builtin() {
            return Err(CallError::Permanent {
                connector: host.connector_id.clone(),
                plugin: info.name.clone(),
                method: "new",
                message: "a built-in cannot run out of process: isolation needs a plugin file"
                    .to_owned(),
            });
        }
        let child = Child::spawn(
            isolation,
            &info.path,
            &host.connector_id,
            config,
            bound_as,
            host,
        )
        .map_err(|reply| reply_error(reply, "new", host))?;
        Ok(Backend::Process(Box::new(child)))
    }

    /// Runs the plugin's `create` and checks what it returns.
    fn create_in_library(
        &self,
        library: &LoadedLibrary,
        config: &str,
        connector_id: &str,
        services: &HostApi,
        bound_as: Sides,
    ) -> Result<Backend, CallError> {
        let info = &library.info;
        let mut errors = ErrorCollector::default();
        let mut args = CreateArgs {
            error: errors.sink(),
            config: AbiSlice::from_str(config),
            connector_id: AbiSlice::from_str(connector_id),
            host: services,
            bound_as: bound_as.to_abi(),
            instance: std::ptr::null_mut(),
        };
        // The plugin's connector code runs from here on: its image must stay mapped for good.
        self.retain_image();
        // SAFETY: `decl` was validated at load time (in the image, `create` in an executable
        // segment) and the library is kept loaded by `self`. `args` borrows `config`,
        // `connector_id`, `services` and `errors` for the call; the `HostApi::ctx` pointer
        // in `services` is the boxed `HostContext` the caller hands to the instance, so it
        // stays valid as long as the instance.
        let status = unsafe { ((*library.decl).create)(&mut args) };
        if status != CallStatus::OK {
            return Err(instance_error(
                &mut errors,
                status,
                "new",
                connector_id,
                &info.name,
            ));
        }
        if args.instance.is_null() {
            return Err(CallError::Protocol {
                connector: connector_id.to_owned(),
                plugin: info.name.clone(),
                method: "new",
                message: "`create` returned OK but no instance".to_owned(),
            });
        }
        // The instance's first word must point to a validated vtable. The sdk's objects all
        // point to the declaration's vtable; anything else is checked like it was.
        let checker = Checker {
            file: &info.path,
            image: &library.image,
        };
        // SAFETY: a non-null instance returned with OK is a thin trait object allocated by
        // the plugin: its first word is its vtable pointer. Reading one aligned word from it
        // is sound; the pointer is not trusted until checked below.
        let vtable = unsafe {
            args.instance
                .cast::<*const weir_sdk::abi::ConnectorVtable>()
                .read()
        };
        if vtable != library.vtable
            && let Err(e) = checker.vtable(vtable)
        {
            // Leak rather than call a `drop` we cannot trust.
            return Err(CallError::Protocol {
                connector: connector_id.to_owned(),
                plugin: info.name.clone(),
                method: "new",
                message: format!("the instance's vtable is invalid: {e}"),
            });
        }
        // SAFETY: `args.instance` is a live thin trait object whose vtable was validated; the
        // host now owns it and drops it exactly once, through its vtable, in `Drop`.
        let object = unsafe { ConnectorObject::from_raw(args.instance.cast()) };
        Ok(Backend::Library(ManuallyDrop::new(object)))
    }
}

/// What an isolated instance's child answered, as a [`CallError`].
fn reply_error(reply: Reply, method: &'static str, host: &HostContext) -> CallError {
    match reply {
        Reply::Failed(error) => error,
        Reply::Crashed(crash) => CallError::Crashed {
            connector: host.connector_id.clone(),
            plugin: host.plugin.clone(),
            method,
            reason: crash.0,
        },
    }
}

/// The side a connector needs for `method` to be supported: `sink` for `sink_batch`,
/// `source` for the rest (`pull`, `source_feedback`).
pub(crate) fn side_of(method: &str) -> &'static str {
    if method == "sink_batch" {
        "sink"
    } else {
        "source"
    }
}

/// Turns what a built-in's call reported into a [`CallError`].
fn fault_error(fault: Fault, method: &'static str, connector: &str, plugin: &str) -> CallError {
    let connector = connector.to_owned();
    let plugin = plugin.to_owned();
    match fault {
        Fault::Config {
            message,
            field_path,
        } => CallError::Config {
            connector,
            plugin,
            field_path: FieldPath::from_json(&field_path),
            message,
        },
        Fault::Failed {
            message,
            permanent: true,
        } => CallError::Permanent {
            connector,
            plugin,
            method,
            message,
        },
        Fault::Failed { message, .. } => CallError::Failed {
            connector,
            plugin,
            method,
            message,
        },
        Fault::Panicked { message, location } => CallError::Panicked {
            connector,
            plugin,
            method,
            message,
            location: if location.is_empty() {
                "<unknown>".to_owned()
            } else {
                location
            },
        },
        Fault::Poisoned => CallError::Poisoned {
            connector,
            plugin,
            method,
        },
        Fault::Closed => CallError::Closed {
            connector,
            plugin,
            method,
        },
        Fault::Unsupported => CallError::Unsupported {
            connector,
            plugin,
            method,
            side: side_of(method),
        },
        other => CallError::Protocol {
            connector,
            plugin,
            method,
            message: format!("unknown fault from a built-in: {other:?}"),
        },
    }
}

/// Turns a failed status and the reports of the call into a [`CallError`], through the
/// [`Fault`] a built-in would report for it.
fn instance_error(
    errors: &mut ErrorCollector,
    status: CallStatus,
    method: &'static str,
    connector: &str,
    plugin: &str,
) -> CallError {
    let fault = match status {
        CallStatus::PANICKED => {
            let (message, location) = errors
                .take_panic()
                .map(|p| (p.message, p.location))
                .unwrap_or_else(|| ("<no message>".to_owned(), String::new()));
            Fault::Panicked { message, location }
        }
        CallStatus::POISONED => Fault::Poisoned,
        CallStatus::UNSUPPORTED => Fault::Unsupported,
        CallStatus::ERROR => match errors.reports.iter().find(|r| r.kind == ErrorKind::CONFIG) {
            Some(config) => Fault::Config {
                message: config.message.clone(),
                field_path: config.field_path.clone(),
            },
            None => {
                let message = errors
                    .reports
                    .iter()
                    .map(|r| r.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                Fault::Failed {
                    message: if message.is_empty() {
                        "<no message>".to_owned()
                    } else {
                        message
                    },
                    permanent: errors
                        .reports
                        .iter()
                        .any(|r| r.kind == ErrorKind::PERMANENT),
                }
            }
        },
        CallStatus(other) => {
            errors.reports.clear();
            return CallError::Protocol {
                connector: connector.to_owned(),
                plugin: plugin.to_owned(),
                method,
                message: format!("unknown call status {other}"),
            };
        }
    };
    errors.reports.clear();
    fault_error(fault, method, connector, plugin)
}

impl ConnectorInstance {
    /// The connector id it was created with.
    pub fn id(&self) -> &str {
        &self.host.connector_id
    }

    /// The plugin it comes from.
    pub fn plugin(&self) -> &PluginInfo {
        self.plugin.info()
    }

    /// Whether a panic poisoned the instance.
    pub fn is_poisoned(&self) -> bool {
        self.state == State::Poisoned
    }

    /// Whether the connector asked the host to shut down.
    pub fn shutdown_requested(&self) -> bool {
        self.host.shutdown_requested.load(Ordering::Acquire)
    }

    /// The pull id the next event pulled will get (for an isolated instance's child, which
    /// tells the host where its count is).
    pub(crate) fn next_pull(&self) -> u64 {
        self.next_pull
    }

    /// Refuses the call if the instance cannot take one.
    #[inline]
    fn enter(&mut self, method: &'static str) -> Result<(), CallError> {
        // Almost always empty: clear only when there is something to drop.
        if !self.errors.reports.is_empty() {
            self.errors.reports.clear();
        }
        if self.state == State::Live {
            return Ok(());
        }
        Err(self.refused(method))
    }

    /// Why a call on an instance that is not live is refused (off the hot path).
    #[cold]
    #[inline(never)]
    fn refused(&self, method: &'static str) -> CallError {
        let (connector, plugin) = (self.host.connector_id.clone(), self.host.plugin.clone());
        match self.state {
            State::Closed => CallError::Closed {
                connector,
                plugin,
                method,
            },
            _ => CallError::Poisoned {
                connector,
                plugin,
                method,
            },
        }
    }

    /// Maps a call's status to a result, poisoning on panic or protocol violation.
    #[inline]
    fn finish(&mut self, status: CallStatus, method: &'static str) -> Result<(), CallError> {
        if status == CallStatus::OK {
            return Ok(());
        }
        Err(self.failed(status, method))
    }

    /// The error of a call that did not return `OK` (off the hot path); poisons the
    /// instance on a panic or a protocol violation.
    #[cold]
    #[inline(never)]
    fn failed(&mut self, status: CallStatus, method: &'static str) -> CallError {
        let error = instance_error(
            &mut self.errors,
            status,
            method,
            &self.host.connector_id,
            &self.host.plugin,
        );
        if error.is_poisoning() {
            self.state = State::Poisoned;
        }
        error
    }

    /// Connects; `attempt` counts retries from 0. `Ok(false)` means "retry later".
    ///
    /// # Errors
    /// See [`CallError`].
    pub fn connect(&mut self, attempt: u32) -> Result<bool, CallError> {
        self.enter("connect")?;
        let object = match &mut self.backend {
            Backend::Library(object) => object,
            Backend::Builtin(native) => {
                let result = native.connect(attempt);
                return result.map_err(|fault| self.fault(fault, "connect"));
            }
            Backend::Process(_) => {
                let payload = self.call_child(
                    isolated::tag::CONNECT,
                    &isolated::encode_connect(attempt),
                    "connect",
                )?;
                return isolated::decode_connect(&payload)
                    .map_err(|why| self.garbage(why, "connect"));
            }
        };
        let mut args = ConnectArgs {
            error: self.errors.sink(),
            attempt,
            connected: Connected::NOT_YET,
        };
        // SAFETY: see `call_plugin`.
        let status = unsafe { call_plugin(|| object.connect(&mut args)) };
        self.finish(status, "connect")?;
        match args.connected {
            Connected::YES => Ok(true),
            Connected::NOT_YET => Ok(false),
            Connected(other) => {
                Err(self.protocol("connect", format!("unknown connect result {other}")))
            }
        }
    }

    /// What a built-in's call reported, as a [`CallError`]; a panic poisons the instance.
    #[cold]
    fn fault(&mut self, fault: Fault, method: &'static str) -> CallError {
        let error = fault_error(fault, method, &self.host.connector_id, &self.host.plugin);
        if error.is_poisoning() {
            self.state = State::Poisoned;
        }
        error
    }

    /// Sends `request` to an isolated instance's child and returns its answer's payload.
    fn call_child(
        &mut self,
        request: u8,
        payload: &[u8],
        method: &'static str,
    ) -> Result<Vec<u8>, CallError> {
        let Backend::Process(child) = &mut self.backend else {
            unreachable!("only called for an isolated instance");
        };
        let answer = child.call(request, payload, method, &self.host);
        answer.map_err(|reply| self.reply(reply, method))
    }

    /// [`call_child`](Self::call_child) for a request whose answer carries nothing.
    fn call_child_for_nothing(
        &mut self,
        request: u8,
        payload: &[u8],
        method: &'static str,
    ) -> Result<(), CallError> {
        let answer = self.call_child(request, payload, method)?;
        if answer.is_empty() {
            Ok(())
        } else {
            Err(self.garbage(
                format!(
                    "{} bytes in an answer to `{method}` that has none",
                    answer.len()
                ),
                method,
            ))
        }
    }

    /// What an isolated instance's child answered, as a [`CallError`]: poisoning ones
    /// (a panic, a crash) poison the instance.
    #[cold]
    fn reply(&mut self, reply: Reply, method: &'static str) -> CallError {
        let error = reply_error(reply, method, &self.host);
        if error.is_poisoning() {
            self.state = State::Poisoned;
        }
        error
    }

    /// An isolated instance's child answered something that does not decode: a crash. The
    /// child is killed (it is not trusted to end by itself, nor asked to close).
    #[cold]
    fn garbage(&mut self, why: String, method: &'static str) -> CallError {
        self.state = State::Poisoned;
        let why = format!("it sent garbage answering `{method}`: {why}");
        let reason = match &mut self.backend {
            Backend::Process(child) => child.give_up(why).0,
            Backend::Library(_) | Backend::Builtin(_) => why,
        };
        CallError::Crashed {
            connector: self.host.connector_id.clone(),
            plugin: self.host.plugin.clone(),
            method,
            reason,
        }
    }

    /// Poisons the instance for a broken ABI contract and describes it.
    fn protocol(&mut self, method: &'static str, message: String) -> CallError {
        self.state = State::Poisoned;
        CallError::Protocol {
            connector: self.host.connector_id.clone(),
            plugin: self.host.plugin.clone(),
            method,
            message,
        }
    }

    /// Delivers a lifecycle or circuit-breaker notice.
    ///
    /// # Errors
    /// See [`CallError`].
    pub fn notify(&mut self, notice: Notice) -> Result<(), CallError> {
        self.enter(notice.method())?;
        let object = match &mut self.backend {
            Backend::Library(object) => object,
            Backend::Builtin(native) => {
                let result = native.notify(notice.to_abi());
                return result.map_err(|fault| self.fault(fault, notice.method()));
            }
            Backend::Process(_) => {
                let payload = isolated::encode_notice(notice);
                return self.call_child_for_nothing(
                    isolated::tag::NOTIFY,
                    &payload,
                    notice.method(),
                );
            }
        };
        let mut args = NotifyArgs {
            error: self.errors.sink(),
            notice: notice.to_abi(),
        };
        // SAFETY: see `call_plugin`.
        let status = unsafe { call_plugin(|| object.notify(&mut args)) };
        self.finish(status, notice.method())
    }

    /// Asks a source for up to `max_events` events, appended to `batch` (which is not
    /// cleared first). Event ids are assigned here, counting per instance.
    ///
    /// # Errors
    /// [`CallError::Unsupported`] for a sink-only connector; see [`CallError`].
    pub fn pull(
        &mut self,
        batch: &mut EventBatch,
        max_events: u32,
    ) -> Result<PullStatus, CallError> {
        self.enter("pull")?;
        if let Backend::Process(_) = &self.backend {
            let payload = self.call_child(
                isolated::tag::PULL,
                &isolated::encode_pull(max_events),
                "pull",
            )?;
            // The child's instance counts pull ids from 0 as this one does: the events get
            // the same ids on both sides (the answer says where the child's count is, and a
            // difference is garbage).
            let before = batch.len();
            let mut next_pull = self.next_pull;
            let pulled = isolated::decode_pull(&payload, batch, &mut next_pull, &self.host);
            let pulled = match pulled {
                Ok(pulled) => pulled,
                Err(why) => {
                    batch.truncate(before);
                    return Err(self.garbage(why, "pull"));
                }
            };
            self.next_pull = next_pull;
            let pulled = pulled.map_err(|error| self.reply(Reply::Failed(error), "pull"))?;
            self.host
                .quiet_for
                .store(pulled.quiet_for, Ordering::Relaxed);
            if pulled.wakes_itself {
                self.host.waker_taken.store(true, Ordering::Relaxed);
            }
            return Ok(pulled.status);
        }
        // The pull ids are counted in `target` during the pull (no store through a pointer
        // per event) and written back after it, whatever it returns.
        let mut target = PullTarget {
            batch,
            next_pull: self.next_pull,
        };
        let writer = EventWriter {
            ctx: (&raw mut target).cast(),
            push: push_event,
            end_stream,
        };
        self.host.quiet_for.store(u64::MAX, Ordering::Relaxed);
        let called = match &mut self.backend {
            Backend::Process(_) => unreachable!("handled above"),
            Backend::Builtin(native) => {
                // SAFETY: `writer`'s functions are this module's, and its `ctx` is `target`,
                // which lives (and is not otherwise used) until after the call.
                Err(unsafe { native.pull(&writer, max_events) })
            }
            Backend::Library(object) => {
                let mut args = PullArgs {
                    error: self.errors.sink(),
                    writer,
                    max_events,
                    hint: PullHint::EMPTY,
                };
                // SAFETY: see `call_plugin`.
                let status = unsafe { call_plugin(|| object.pull(&mut args)) };
                Ok((status, args.hint))
            }
        };
        self.next_pull = target.next_pull;
        let (status, hint) = match called {
            Ok(called) => called,
            Err(result) => return result.map_err(|fault| self.fault(fault, "pull")),
        };
        self.finish(status, "pull")?;
        match hint {
            PullHint::READY => Ok(PullStatus::Ready),
            PullHint::EMPTY => Ok(PullStatus::Empty),
            PullHint::FINISHED => Ok(PullStatus::Finished),
            PullHint(other) => Err(self.protocol("pull", format!("unknown pull hint {other}"))),
        }
    }

    /// How long the source said, during its last pull, that it will have nothing
    /// (`ConnectorContext::pull_after` in the sdk).
    pub fn quiet_for(&self) -> Option<Duration> {
        match self.host.quiet_for.load(Ordering::Relaxed) {
            u64::MAX => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// Whether the plugin took a waker: it wakes the host when it has events, so it need
    /// not be polled.
    pub fn wakes_itself(&self) -> bool {
        self.host.waker_taken.load(Ordering::Relaxed)
    }

    /// Tells a source which of its events were delivered (ack) or not (fail).
    ///
    /// # Errors
    /// See [`CallError`].
    pub fn feedback(&mut self, items: &[Feedback]) -> Result<(), CallError> {
        self.enter("source_feedback")?;
        let object = match &mut self.backend {
            Backend::Library(object) => object,
            Backend::Builtin(native) => {
                let result = native.feedback(items);
                return result.map_err(|fault| self.fault(fault, "source_feedback"));
            }
            Backend::Process(_) => {
                let payload = isolated::encode_feedback(items);
                return self.call_child_for_nothing(
                    isolated::tag::FEEDBACK,
                    &payload,
                    "source_feedback",
                );
            }
        };
        let mut args = FeedbackArgs {
            error: self.errors.sink(),
            items: items.as_ptr(),
            len: items.len(),
        };
        // SAFETY: see `call_plugin`.
        let status = unsafe { call_plugin(|| object.source_feedback(&mut args)) };
        self.finish(status, "source_feedback")
    }

    /// Hands a batch of events to a sink and returns its replies.
    ///
    /// # Errors
    /// [`CallError::Unsupported`] for a source-only connector; see [`CallError`].
    pub fn sink_batch(&mut self, events: &[SinkEvent<'_>]) -> Result<SinkOutcome<'_>, CallError> {
        self.enter("sink_batch")?;
        self.sink_codes.clear();
        self.sink_codes.resize(events.len(), ReplyCode::AUTO);
        let object = match &mut self.backend {
            Backend::Library(object) => object,
            Backend::Process(_) => {
                let payload = self.call_child(
                    isolated::tag::SINK_BATCH,
                    &isolated::encode_sink_batch(events),
                    "sink_batch",
                )?;
                let decoded =
                    isolated::decode_sink_batch(&payload, events.len(), &mut self.sink_codes);
                let (circuit, errors) = decoded.map_err(|why| self.garbage(why, "sink_batch"))?;
                return Ok(SinkOutcome {
                    codes: &self.sink_codes,
                    len: events.len(),
                    circuit,
                    errors,
                });
            }
            Backend::Builtin(native) => {
                let mut outcome = weir_sdk::builtin::SinkOutcome::default();
                // SAFETY: `SinkEvent` is `repr(transparent)` over `RawEventView`, and each
                // borrows bytes that outlive this call (its lifetime).
                let result = unsafe {
                    native.sink_batch(
                        SinkEvent::as_views(events),
                        &mut self.sink_codes,
                        &mut outcome,
                    )
                };
                if let Err(mut fault) = result {
                    // As for a plugin: the message holds every error of the batch, in order.
                    if let Fault::Failed { message, .. } = &mut fault
                        && !outcome.errors.is_empty()
                    {
                        outcome.errors.push(std::mem::take(message));
                        *message = outcome.errors.join("; ");
                    }
                    return Err(self.fault(fault, "sink_batch"));
                }
                let processed = outcome.processed.min(events.len());
                return Ok(SinkOutcome {
                    codes: &self.sink_codes[..processed],
                    len: events.len(),
                    circuit: outcome.circuit,
                    errors: outcome.errors,
                });
            }
        };
        let mut args = SinkArgs {
            error: self.errors.sink(),
            // `SinkEvent` is `repr(transparent)` over `RawEventView`: the batch crosses as is.
            events: SinkEvent::as_views(events).as_ptr(),
            len: events.len(),
            replies: self.sink_codes.as_mut_ptr(),
            processed: 0,
            circuit: CircuitChange::NONE,
        };
        // SAFETY: see `call_plugin`.
        let status = unsafe { call_plugin(|| object.sink_batch(&mut args)) };
        self.finish(status, "sink_batch")?;
        let circuit = match args.circuit {
            CircuitChange::NONE => None,
            CircuitChange::CLOSE => Some(Circuit::Closed),
            CircuitChange::OPEN => Some(Circuit::Open),
            CircuitChange(other) => {
                return Err(self.protocol("sink_batch", format!("unknown circuit change {other}")));
            }
        };
        // Almost always empty: do not pay for draining an empty list on the hot path.
        let errors = if self.errors.reports.is_empty() {
            Vec::new()
        } else {
            self.errors.reports.drain(..).map(|r| r.message).collect()
        };
        let processed = args.processed.min(events.len());
        Ok(SinkOutcome {
            codes: &self.sink_codes[..processed],
            len: events.len(),
            circuit,
            errors,
        })
    }

    /// Drops the connector's state (its `Drop` runs under the panic trap). The instance
    /// refuses every call afterwards. Called by `Drop` if not called before.
    ///
    /// # Errors
    /// [`CallError::Panicked`] if the connector's `Drop` panicked.
    pub fn close(&mut self) -> Result<(), CallError> {
        if self.state == State::Closed {
            return Ok(());
        }
        self.errors.reports.clear();
        let result = match &mut self.backend {
            Backend::Library(object) => {
                let mut args = CloseArgs {
                    error: self.errors.sink(),
                };
                // SAFETY: see `call_plugin`.
                let status = unsafe { call_plugin(|| object.close(&mut args)) };
                self.finish(status, "drop")
            }
            Backend::Builtin(native) => {
                let result = native.close();
                result.map_err(|fault| self.fault(fault, "drop"))
            }
            // A child that crashed has nothing left to drop.
            Backend::Process(child) if child.has_crashed() => Ok(()),
            Backend::Process(_) => self.call_child_for_nothing(isolated::tag::CLOSE, &[], "drop"),
        };
        self.state = State::Closed;
        result
    }
}

impl Drop for ConnectorInstance {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::warn!(%error, "connector failed to close cleanly");
        }
        if let Backend::Library(object) = &mut self.backend {
            // SAFETY: `object` is dropped exactly once, here, through the plugin's own `drop`
            // (the plugin frees what it allocated); the library is still loaded
            // (`self.plugin` is dropped after this) and `host`, which the plugin may
            // reference, too.
            unsafe { ManuallyDrop::drop(object) };
        }
    }
}

/// Runs one call through the instance's vtable: the jump into the plugin's code.
///
/// Every call into a connector instance goes through here, so the boundary is visible (and
/// `unsafe`) at each call site instead of hiding behind a safe-looking method of the
/// vtable wrapper.
///
/// # Safety
/// `call` must call one method of a `ConnectorObject` created by [`Plugin::instantiate`]
/// that has not been dropped, with an argument struct whose pointers are valid for the
/// call. That is what makes it sound: the loader checked that every vtable entry is a
/// non-null pointer into an executable segment of the plugin's own image (and an
/// instance's vtable pointer at creation), the library stays mapped while the instance
/// holds its [`Plugin`], and the sdk's trampolines never unwind across the boundary.
#[inline(always)]
unsafe fn call_plugin(call: impl FnOnce() -> CallStatus) -> CallStatus {
    call()
}

/// What `push_event` and `end_stream` write into during one pull.
struct PullTarget<'a> {
    batch: &'a mut EventBatch,
    /// The pull id of the next event.
    next_pull: u64,
}

/// [`EventWriter::push`] of the host: copies one event into the batch, assigns its pull id.
///
/// # Safety
/// `ctx` must be the `PullTarget` of the pull in progress; `event`'s slices valid for the call.
unsafe extern "C" fn push_event(ctx: *mut c_void, event: &RawEvent) -> u64 {
    // SAFETY: `ctx` is the `PullTarget` of the `pull` call in progress (see
    // `ConnectorInstance::pull`), exclusively ours for the duration of the callback.
    let target = unsafe { &mut *ctx.cast::<PullTarget<'_>>() };
    // SAFETY: the plugin passes slices valid for the duration of this callback.
    let (bytes, meta) = unsafe { (event.bytes.as_bytes(), event.meta.as_bytes()) };
    let pull = target.next_pull;
    target.next_pull += 1;
    let batch = &mut *target.batch;
    let bytes = batch.append(bytes);
    // Most events have no metadata: no copy, an empty range.
    let meta = if meta.is_empty() {
        bytes.end..bytes.end
    } else {
        batch.append(meta)
    };
    let id = EventId {
        stream: event.stream,
        pull,
    };
    batch.events.push(StoredEvent { id, bytes, meta });
    pull
}

/// [`EventWriter::end_stream`] of the host.
///
/// # Safety
/// `ctx` must be the `PullTarget` of the pull in progress.
unsafe extern "C" fn end_stream(ctx: *mut c_void, stream: u64) {
    // SAFETY: as in `push_event`.
    let target = unsafe { &mut *ctx.cast::<PullTarget<'_>>() };
    target.batch.ended_streams.push(stream);
}

/// [`HostApi::log`]: re-emits a plugin's log record as a `tracing` event.
///
/// # Safety
/// `ctx` must be the `HostContext` of a live instance; `record`'s slices valid for the call.
unsafe extern "C" fn host_log(ctx: *const c_void, record: &LogRecord) {
    thread_local! {
        /// This thread is in `host_log` already. A connector linked into this process
        /// (`Plugin::linked`, in a test) may have made the sdk's `tracing` bridge the
        /// process's subscriber: the host's own `tracing` events then come back here, and
        /// would loop. Such a record is dropped.
        static LOGGING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if LOGGING.replace(true) {
        return;
    }
    // SAFETY: as this function's own contract (the caller's).
    unsafe { log_record(ctx, record) };
    LOGGING.set(false);
}

/// The body of [`host_log`], which guards it against re-entry.
///
/// # Safety
/// As [`host_log`].
unsafe fn log_record(ctx: *const c_void, record: &LogRecord) {
    // SAFETY: a non-null `ctx` is the instance's boxed `HostContext`, alive as long as the
    // instance (see `Plugin::instantiate`); the plugin may call from any thread, and it is
    // `Sync`. A null `ctx` is a record from outside any call.
    let host = (!ctx.is_null()).then(|| unsafe { &*ctx.cast::<HostContext>() });
    // SAFETY: the plugin passes slices valid for the duration of this callback.
    let (message, target) = unsafe { (record.message.as_bytes(), record.target.as_bytes()) };
    let message = String::from_utf8_lossy(message);
    let target = String::from_utf8_lossy(target);
    emit_log(host, record.level, &target, &message);
}

/// Emits one record a connector logged: to the instance's log sink if it has one, else as
/// a `tracing` event tagged with its connector and plugin (`host` is `None` for records
/// from outside any call).
pub(crate) fn emit_log(host: Option<&HostContext>, level: LogLevel, target: &str, message: &str) {
    let (connector, plugin) = match host {
        Some(host) => (host.connector_id.as_str(), host.plugin.as_str()),
        None => ("-", "-"),
    };
    if let Some(sink) = host.and_then(|host| host.log.as_ref()) {
        let level = match level {
            LogLevel::ERROR => Level::Error,
            LogLevel::WARN => Level::Warn,
            LogLevel::INFO => Level::Info,
            LogLevel::DEBUG => Level::Debug,
            _ => Level::Trace,
        };
        let record = PluginLog {
            connector,
            level,
            target,
            message,
        };
        // This runs inside an `extern "C"` callback: a sink that panics must not unwind out
        // of it (that aborts the process). The record is dropped instead.
        let sunk = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(record)));
        if sunk.is_err() {
            tracing::warn!(
                connector,
                "a log sink panicked: a record of the connector was dropped"
            );
        }
        return;
    }
    match level {
        LogLevel::ERROR => {
            tracing::error!(target: "weir::plugin", connector, plugin, %target, "{message}")
        }
        LogLevel::WARN => {
            tracing::warn!(target: "weir::plugin", connector, plugin, %target, "{message}")
        }
        LogLevel::INFO => {
            tracing::info!(target: "weir::plugin", connector, plugin, %target, "{message}")
        }
        LogLevel::DEBUG => {
            tracing::debug!(target: "weir::plugin", connector, plugin, %target, "{message}")
        }
        _ => tracing::trace!(target: "weir::plugin", connector, plugin, %target, "{message}"),
    }
}

/// The most verbose level the host's log currently shows, for [`HostApi::max_level`].
pub(crate) fn host_max_level() -> LogLevel {
    match tracing::level_filters::LevelFilter::current().into_level() {
        None => LogLevel::OFF,
        Some(tracing::Level::ERROR) => LogLevel::ERROR,
        Some(tracing::Level::WARN) => LogLevel::WARN,
        Some(tracing::Level::INFO) => LogLevel::INFO,
        Some(tracing::Level::DEBUG) => LogLevel::DEBUG,
        Some(tracing::Level::TRACE) => LogLevel::TRACE,
    }
}

/// [`HostApi::waker_new`]: a new owned handle (a boxed [`Waker`]), or null if the host gave
/// the instance nothing to wake.
///
/// # Safety
/// `ctx` must be the `HostContext` of a live instance.
unsafe extern "C" fn host_waker_new(ctx: *const c_void) -> *const c_void {
    if ctx.is_null() {
        return std::ptr::null();
    }
    // SAFETY: a non-null `ctx` is the `HostContext` of a live instance (the caller's
    // promise: the sdk calls this only during a call of the instance).
    let host = unsafe { &*ctx.cast::<HostContext>() };
    match &host.waker {
        Some(waker) => {
            // Only a waker that wakes something makes the source one that is not polled.
            host.waker_taken.store(true, Ordering::Relaxed);
            Box::into_raw(Box::new(waker.clone())).cast_const().cast()
        }
        None => std::ptr::null(),
    }
}

/// [`HostApi::waker_clone`]: another owned handle to the same waker.
///
/// # Safety
/// `handle` must be a live handle from `host_waker_new` or `host_waker_clone`.
unsafe extern "C" fn host_waker_clone(handle: *const c_void) -> *const c_void {
    // SAFETY: a live handle is a `Box<Waker>` not yet released (the caller's promise).
    let waker = unsafe { &*handle.cast::<Waker>() };
    Box::into_raw(Box::new(waker.clone())).cast_const().cast()
}

/// [`HostApi::waker_wake`]: wakes what the handle's waker wakes.
///
/// # Safety
/// As [`host_waker_clone`].
unsafe extern "C" fn host_waker_wake(handle: *const c_void) {
    // SAFETY: as in `host_waker_clone`.
    let waker = unsafe { &*handle.cast::<Waker>() };
    waker.wake_by_ref();
}

/// [`HostApi::waker_drop`]: releases a handle.
///
/// # Safety
/// As [`host_waker_clone`]; the handle is not used again.
unsafe extern "C" fn host_waker_drop(handle: *const c_void) {
    // SAFETY: the handle is a `Box<Waker>` from `Box::into_raw`, released once (the
    // caller's promise).
    drop(unsafe { Box::from_raw(handle.cast::<Waker>().cast_mut()) });
}

/// [`HostApi::pull_after`]: records how long the pulled source will be quiet.
///
/// # Safety
/// `ctx` must be the `HostContext` of a live instance.
unsafe extern "C" fn host_pull_after(ctx: *const c_void, nanos: u64) {
    if ctx.is_null() {
        return;
    }
    // SAFETY: a non-null `ctx` is the `HostContext` of a live instance (the caller's
    // promise: the sdk calls this only during a pull).
    let host = unsafe { &*ctx.cast::<HostContext>() };
    // `u64::MAX` means "said nothing": the longest is one nanosecond less.
    host.quiet_for
        .store(nanos.min(u64::MAX - 1), Ordering::Relaxed);
}

/// [`HostApi::request_shutdown`]: records the request on the instance.
///
/// # Safety
/// `ctx` must be the `HostContext` of a live instance.
unsafe extern "C" fn host_request_shutdown(ctx: *const c_void) {
    // SAFETY: as in `host_log`.
    let host = unsafe { &*ctx.cast::<HostContext>() };
    tracing::info!(connector = %host.connector_id, plugin = %host.plugin, "connector requested shutdown");
    host.shutdown_requested.store(true, Ordering::Release);
}
