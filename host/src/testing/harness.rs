//! The harness: one connector instance on a thread of its own, driven call by call.

use std::borrow::Cow;
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::task::{Wake, Waker};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::ConfigErrors;
use crate::{
    CallError, Circuit, ConnectorInstance, EventBatch, EventId, Feedback, FeedbackKind,
    InstanceOptions, LoadError, LogSink, Notice, Plugin, PluginInfo, PluginLog, PullStatus, Sides,
    SinkEvent, SinkReply,
};
use weir_sdk::Level;
use weir_sdk::builtin::Exported;

/// How long one call may take before the harness gives up on it, unless
/// [`Builder::call_limit`] says otherwise.
pub const DEFAULT_CALL_LIMIT: Duration = Duration::from_secs(10);

/// How long [`Harness::start`] retries connecting, unless [`Builder::connect_within`] says
/// otherwise.
pub const DEFAULT_CONNECT_WITHIN: Duration = Duration::from_secs(10);

/// How many log lines a harness keeps (the most recent ones); older ones are counted in
/// [`Harness::dropped_logs`].
pub const MAX_LOG_LINES: usize = 10_000;

/// Events asked for per pull, unless [`Builder::max_events`] says otherwise (what the
/// host asks for by default).
pub const DEFAULT_MAX_EVENTS: u32 = 64;

/// Everything that can go wrong driving a connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The plugin did not pass the host's checks (for a linked connector, the checks that
    /// apply to the image of the test binary).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The config given as TOML is not valid TOML, or holds what JSON cannot.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// A call into the connector failed, as the host would report it: a returned error, a
    /// config the connector refused, a panic (which poisons the instance), a call the
    /// connector does not support.
    #[error(transparent)]
    Call(#[from] CallError),
    /// A call did not return in time. The connector's thread is left blocked in it; every
    /// later call fails with [`HarnessError::Stuck`].
    #[error(
        "connector `{connector}`: `{method}`{} did not return within {limit:?}",
        in_methods(method)
    )]
    Timeout {
        /// The connector's id.
        connector: String,
        /// The call that did not return.
        method: &'static str,
        /// How long the harness waited.
        limit: Duration,
    },
    /// An earlier call never returned, so no other call can be made.
    #[error("connector `{connector}`: cannot call `{method}`: `{stuck_in}` never returned")]
    Stuck {
        /// The connector's id.
        connector: String,
        /// The call refused.
        method: &'static str,
        /// The call the connector is still in.
        stuck_in: &'static str,
    },
    /// The harness itself failed around a call: its thread could not be started, or ended.
    /// Not the connector's doing (its calls are trapped); the connector was not called.
    #[error("connector `{connector}`: `{method}` could not be called: {message}")]
    Thread {
        /// The connector's id.
        connector: String,
        /// The call.
        method: &'static str,
        /// What went wrong.
        message: String,
    },
    /// [`Harness::start`] could not connect in time.
    #[error(
        "connector `{connector}` did not connect within {within:?} ({attempts} attempts; last: {last})"
    )]
    NotConnected {
        /// The connector's id.
        connector: String,
        /// Connection attempts made.
        attempts: u32,
        /// How long the harness retried.
        within: Duration,
        /// What the last attempt said.
        last: String,
    },
    /// The builder asked for a binding the plugin cannot have (a sink bound as a source).
    #[error(
        "connector `{connector}` cannot be bound as a {side}: plugin `{plugin}` is {capabilities}"
    )]
    Unbindable {
        /// The connector's id.
        connector: String,
        /// Its plugin's name.
        plugin: String,
        /// `source` or `sink`.
        side: &'static str,
        /// What the plugin is (`source`, `sink`, `source+sink`).
        capabilities: &'static str,
    },
    /// [`Harness::pull_events`] got fewer events than it waited for.
    #[error(
        "connector `{connector}`: wanted {wanted} events, got {} {}{}",
        events.len(),
        if *finished { "before the source finished".to_owned() } else { format!("within {within:?}") },
        preview(events)
    )]
    TooFew {
        /// The connector's id.
        connector: String,
        /// Events waited for.
        wanted: usize,
        /// The events it did get.
        events: Vec<SourceEvent>,
        /// Whether the source said it had finished.
        finished: bool,
        /// How long the harness pulled.
        within: Duration,
    },
}

/// `now + duration`, or as far as an `Instant` goes (a `Duration::MAX` means "no limit").
pub(crate) fn after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// At most 64 bytes of `bytes` as text, and how long it was when cut.
fn abridged(bytes: &[u8]) -> String {
    const SHOWN: usize = 64;
    if bytes.len() <= SHOWN {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        format!(
            "{:?}... ({} bytes)",
            String::from_utf8_lossy(&bytes[..SHOWN]),
            bytes.len()
        )
    }
}

/// Which of the author's methods an entry point runs, for a call that names the ABI's
/// (` (on_event, on_batch_end or on_tick)` for `sink_batch`), or nothing when the names agree.
pub(crate) fn in_methods(method: &str) -> &'static str {
    match method {
        "sink_batch" => " (on_event, on_batch_end or on_tick)",
        "source_feedback" => " (on_ack or on_fail)",
        "drop" => " (the connector's Drop)",
        _ => "",
    }
}

/// The first few payloads of `events` (each cut at 64 bytes), for a message.
fn preview(events: &[SourceEvent]) -> String {
    const SHOWN: usize = 3;
    if events.is_empty() {
        return String::new();
    }
    let mut shown: Vec<String> = events
        .iter()
        .take(SHOWN)
        .map(|e| abridged(&e.bytes))
        .collect();
    if events.len() > SHOWN {
        shown.push(format!("... {} more", events.len() - SHOWN));
    }
    format!(": {}", shown.join(", "))
}

/// One line a connector logged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogLine {
    /// Its severity.
    pub level: Level,
    /// Its target (the plugin's module path unless it chose one).
    pub target: String,
    /// The message.
    pub message: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}: {}", self.level, self.target, self.message)
    }
}

/// An event a source produced, copied out of the host's batch. Its `Debug` shows the
/// payload as text, cut at 64 bytes.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceEvent {
    /// The id the host assigned (the stream is the source's).
    pub id: EventId,
    /// The payload.
    pub bytes: Vec<u8>,
    /// Metadata (a JSON object), empty when the source gave none.
    pub meta: Vec<u8>,
}

impl fmt::Debug for SourceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut event = f.debug_struct("SourceEvent");
        event.field("id", &self.id);
        event.field("bytes", &format_args!("{}", abridged(&self.bytes)));
        if !self.meta.is_empty() {
            event.field("meta", &format_args!("{}", abridged(&self.meta)));
        }
        event.finish()
    }
}

impl SourceEvent {
    /// The payload as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    /// The payload parsed as JSON.
    ///
    /// # Errors
    /// When it is not JSON.
    pub fn json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_slice(&self.bytes)
    }
}

/// What one pull returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pulled {
    /// What the source said comes next.
    pub status: PullStatus,
    /// The events, in the order the source pushed them.
    pub events: Vec<SourceEvent>,
    /// Streams the source ended during the pull.
    pub ended_streams: Vec<u64>,
    /// How long the source said it will have nothing (`ConnectorContext::pull_after`).
    pub quiet_for: Option<Duration>,
}

/// What a sink said about a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivered {
    /// The ids the harness gave the events, in order.
    pub ids: Vec<EventId>,
    /// One reply per event, as the host acts on them (an event the sink did not get to
    /// counts as `Fail`).
    pub replies: Vec<SinkReply>,
    /// How many events the sink got to (the rest were failed for it).
    pub processed: usize,
    /// The circuit-breaker change the sink asked for.
    pub circuit: Option<Circuit>,
    /// Errors the sink returned for single events (those events are failed).
    pub errors: Vec<String>,
}

impl Delivered {
    /// How many events count as delivered (`Ack`, or `Auto`, which the host acks).
    pub fn acked(&self) -> usize {
        self.replies
            .iter()
            .filter(|r| !matches!(r, SinkReply::Fail))
            .count()
    }

    /// How many events were not delivered.
    pub fn failed(&self) -> usize {
        self.replies.len() - self.acked()
    }
}

/// One event to hand to a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestEvent<'a> {
    /// The payload.
    pub bytes: &'a [u8],
    /// Metadata (a JSON object), or empty.
    pub meta: &'a [u8],
    /// The stream the event says it belongs to.
    pub stream: u64,
}

impl<'a> TestEvent<'a> {
    /// An event with this payload, no metadata, on stream 0.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            meta: &[],
            stream: 0,
        }
    }

    /// The same event with metadata (a JSON object).
    #[must_use]
    pub fn with_meta(mut self, meta: &'a [u8]) -> Self {
        self.meta = meta;
        self
    }

    /// The same event on another stream.
    #[must_use]
    pub fn on_stream(mut self, stream: u64) -> Self {
        self.stream = stream;
        self
    }
}

/// Counts wakes of the wakers the connector takes, and lets the harness wait for one.
#[derive(Debug, Default)]
struct Wakes {
    count: Mutex<u64>,
    woken: Condvar,
}

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.woken.notify_all();
    }
}

impl Wakes {
    fn count(&self) -> u64 {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the count passes `seen` or `until`, whichever comes first.
    fn wait_past(&self, seen: u64, until: Instant) {
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        while *count <= seen {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            count = self
                .woken
                .wait_timeout(count, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The lines a connector logged, the most recent [`MAX_LOG_LINES`] of them.
#[derive(Debug, Default)]
struct Logs {
    lines: VecDeque<LogLine>,
    dropped: u64,
}

/// Configures a [`Harness`]: which connector, its config, how the host binds it, and how
/// long calls may take.
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    plugin: Result<Plugin, LoadError>,
    config: Result<serde_json::Value, ConfigErrors>,
    id: Option<String>,
    bound_as: Option<Sides>,
    call_limit: Duration,
    connect_within: Duration,
    max_events: u32,
}

impl Builder {
    fn new(plugin: Result<Plugin, LoadError>) -> Self {
        Self {
            plugin,
            config: Ok(serde_json::json!({})),
            id: None,
            bound_as: None,
            call_limit: DEFAULT_CALL_LIMIT,
            connect_within: DEFAULT_CONNECT_WITHIN,
            max_events: DEFAULT_MAX_EVENTS,
        }
    }

    /// The connector's config, written as in a pipeline file's `[connector.config]`
    /// table (`""` for none). The conversion is the host's, errors included.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = crate::config::connector_config(Path::new("<config>"), toml);
        self
    }

    /// The connector's config as JSON, as the host hands it to the plugin.
    pub fn config_json(mut self, config: serde_json::Value) -> Self {
        self.config = Ok(config);
        self
    }

    /// The connector's id (its plugin's name by default).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// How the pipeline binds it (by default, every way the plugin can be bound).
    pub fn bound_as(mut self, sides: Sides) -> Self {
        self.bound_as = Some(sides);
        self
    }

    /// How long a single call may take before it fails with [`HarnessError::Timeout`]
    /// ([`DEFAULT_CALL_LIMIT`] by default; at least 1 ms, so that scheduling alone never
    /// fails a call).
    pub fn call_limit(mut self, limit: Duration) -> Self {
        self.call_limit = limit.max(Duration::from_millis(1));
        self
    }

    /// How long [`Harness::start`] retries connecting ([`DEFAULT_CONNECT_WITHIN`] by
    /// default).
    pub fn connect_within(mut self, within: Duration) -> Self {
        self.connect_within = within;
        self
    }

    /// Events asked for per [`Harness::pull`] ([`DEFAULT_MAX_EVENTS`] by default; at
    /// least 1).
    pub fn max_events(mut self, max: u32) -> Self {
        self.max_events = max.max(1);
        self
    }

    /// The connector's id and its plugin's name, as far as the builder knows them (for a
    /// report on a connector that could not be built).
    pub(crate) fn names(&self) -> (String, String) {
        let plugin = self.plugin.as_ref().map(|p| p.info().name.clone()).ok();
        let id = self
            .id
            .clone()
            .or_else(|| plugin.clone())
            .unwrap_or_default();
        (id, plugin.unwrap_or_default())
    }

    /// Creates the connector (its `new`) on a thread of its own.
    ///
    /// # Errors
    /// [`HarnessError::Load`] or [`HarnessError::Config`] for what the builder was given;
    /// [`HarnessError::Call`] when the connector refuses its config, fails or panics in
    /// `new`; [`HarnessError::Timeout`] when `new` does not return in time.
    pub fn build(self) -> Result<Harness, HarnessError> {
        let plugin = self.plugin?;
        let config = self.config?;
        let info = plugin.info().clone();
        let id = self.id.unwrap_or_else(|| info.name.clone());
        let bound_as = self.bound_as.unwrap_or(Sides {
            source: info.is_source,
            sink: info.is_sink,
        });
        // As a pipeline refuses it: no binding the plugin cannot have.
        for (wanted, can, side) in [
            (bound_as.source, info.is_source, "source"),
            (bound_as.sink, info.is_sink, "sink"),
        ] {
            if wanted && !can {
                return Err(HarnessError::Unbindable {
                    connector: id,
                    plugin: info.name.clone(),
                    side,
                    capabilities: info.capabilities(),
                });
            }
        }
        let logs = Arc::new(Mutex::new(Logs::default()));
        let wakes = Arc::new(Wakes::default());
        let log: LogSink = {
            let logs = Arc::clone(&logs);
            Arc::new(move |record: PluginLog<'_>| {
                let mut logs = logs.lock().unwrap_or_else(PoisonError::into_inner);
                if logs.lines.len() == MAX_LOG_LINES {
                    logs.lines.pop_front();
                    logs.dropped += 1;
                }
                logs.lines.push_back(LogLine {
                    level: record.level,
                    target: record.target.to_owned(),
                    message: record.message.to_owned(),
                });
            })
        };
        let options = InstanceOptions::new()
            .bound_as(bound_as)
            .waker(Waker::from(Arc::clone(&wakes)))
            .log_to(log);
        let (jobs, queue) = mpsc::channel::<Job>();
        let (created_tx, created) = mpsc::sync_channel(1);
        let thread = {
            let id = id.clone();
            thread::Builder::new()
                .name(format!("weir-testing {id}"))
                .spawn(move || {
                    let mut instance = match plugin.instantiate_with(&id, &config, options) {
                        Ok(instance) => {
                            let _ = created_tx.send(Ok(()));
                            Some(instance)
                        }
                        Err(error) => {
                            let _ = created_tx.send(Err(error));
                            return;
                        }
                    };
                    for job in queue {
                        // A job is the harness's own code around a call the sdk already
                        // traps; should it panic, its reply is dropped (the caller says so)
                        // and the thread stays up for the next call.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            job(&mut instance);
                        }));
                    }
                })
        };
        let thread = match thread {
            Ok(thread) => thread,
            Err(error) => {
                return Err(HarnessError::Thread {
                    connector: id,
                    method: "new",
                    message: format!("cannot start the connector's thread: {error}"),
                });
            }
        };
        let started = Instant::now();
        let mut harness = Harness {
            id,
            info,
            bound_as,
            jobs: Some(jobs),
            thread: Some(thread),
            logs,
            wakes,
            stuck: None,
            closed: false,
            call_limit: self.call_limit,
            connect_within: self.connect_within,
            max_events: self.max_events,
            connected: false,
            attempt: 0,
            in_flight: BTreeSet::new(),
            next_sink_id: 0,
            circuit: Circuit::Open,
            slowest: None,
        };
        match created.recv_timeout(self.call_limit) {
            Ok(Ok(())) => {
                harness.note_call("new", started.elapsed());
                Ok(harness)
            }
            Ok(Err(error)) => {
                harness.closed = true;
                Err(error.into())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                harness.stuck = Some("new");
                Err(HarnessError::Timeout {
                    connector: harness.id.clone(),
                    method: "new",
                    limit: self.call_limit,
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                harness.closed = true;
                Err(harness.thread_error("new", "the connector's thread ended"))
            }
        }
    }
}

/// Work for the connector's thread: the instance is `None` once it was closed and dropped.
type Job = Box<dyn FnOnce(&mut Option<ConnectorInstance>) + Send>;

/// A small in-process host for one connector: every call goes through the same
/// entry points the `weir` host calls (the plugin's metadata, checked as at load time, its
/// vtable, the sdk's panic-catching trampolines, batches as the ABI passes them), and
/// comes back as the host would see it: a panic is a [`CallError::Panicked`] naming the
/// method, not a panic of the test.
///
/// The connector runs on a thread of its own, and every call has a deadline
/// ([`Builder::call_limit`]): a connector that blocks fails the test with
/// [`HarnessError::Timeout`] instead of hanging it.
///
/// ```
/// # use weir_sdk::{Connector, ConnectorContext, Event, NoConfig, Result, SinkContext, SinkReply, connector_plugin};
/// # /// A sink that acks every event.
/// # pub struct Acker;
/// # #[connector_plugin(name = "acker")]
/// # impl Connector for Acker {
/// #     type Config = NoConfig;
/// #     fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> { Ok(Acker) }
/// #     fn on_event(&mut self, _ctx: &mut SinkContext<'_>, _event: Event<'_>) -> Result<SinkReply> {
/// #         Ok(SinkReply::Ack)
/// #     }
/// # }
/// use weir_host::testing::Harness;
///
/// # fn main() -> Result<(), weir_host::testing::HarnessError> {
/// // `Acker` is a sink (`#[connector_plugin] impl Connector for Acker`) that acks all.
/// let mut sink = Harness::new::<Acker>("")?;
/// sink.start()?;
/// let delivered = sink.deliver(["one", "two"])?;
/// assert_eq!(delivered.acked(), 2);
/// sink.stop()?;
/// # Ok(())
/// # }
/// ```
pub struct Harness {
    id: String,
    info: PluginInfo,
    bound_as: Sides,
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
    logs: Arc<Mutex<Logs>>,
    wakes: Arc<Wakes>,
    /// The call the connector's thread is still in, if one did not return in time.
    stuck: Option<&'static str>,
    closed: bool,
    call_limit: Duration,
    connect_within: Duration,
    max_events: u32,
    connected: bool,
    attempt: u32,
    /// Events pulled and neither acked nor failed yet.
    in_flight: BTreeSet<EventId>,
    next_sink_id: u64,
    circuit: Circuit,
    slowest: Option<(&'static str, Duration)>,
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("connector", &self.id)
            .field("plugin", &self.info.name)
            .field("stuck", &self.stuck)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// A connector linked into this test binary (the type `#[connector_plugin]` is on),
    /// with its config written as TOML (see [`Builder::config`]).
    ///
    /// # Errors
    /// As [`Builder::build`].
    pub fn new<T: Exported>(config: &str) -> Result<Self, HarnessError> {
        Self::builder::<T>().config(config).build()
    }

    /// A builder for a connector linked into this test binary.
    pub fn builder<T: Exported>() -> Builder {
        Builder::new(Plugin::linked::<T>())
    }

    /// A builder for the connector of a plugin file (a built `.so`), loaded and checked as
    /// the host loads it.
    pub fn load(path: impl AsRef<Path>) -> Builder {
        Builder::new(Plugin::load(path))
    }

    /// A builder for a plugin the caller has already loaded.
    pub fn plugin(plugin: Plugin) -> Builder {
        Builder::new(Ok(plugin))
    }

    /// The connector's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What its plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// How the connector was told the pipeline binds it.
    pub fn bound_as(&self) -> Sides {
        self.bound_as
    }

    /// Runs `f` on the connector's thread, within the call limit; a closed connector
    /// refuses the call.
    fn call<R: Send + 'static>(
        &mut self,
        method: &'static str,
        f: impl FnOnce(&mut ConnectorInstance) -> R + Send + 'static,
    ) -> Result<R, HarnessError> {
        match self.call_on_slot(method, |slot| slot.as_mut().map(f))? {
            Some(value) => Ok(value),
            None => Err(HarnessError::Call(CallError::Closed {
                connector: self.id.clone(),
                plugin: self.info.name.clone(),
                method,
            })),
        }
    }

    fn thread_error(&self, method: &'static str, message: &str) -> HarnessError {
        HarnessError::Thread {
            connector: self.id.clone(),
            method,
            message: message.to_owned(),
        }
    }

    fn note_call(&mut self, method: &'static str, took: Duration) {
        if self.slowest.is_none_or(|(_, slowest)| took > slowest) {
            self.slowest = Some((method, took));
        }
    }

    /// The call the connector is still in, if one did not return within the call limit
    /// (no other call can be made then).
    pub fn stuck_in(&self) -> Option<&'static str> {
        self.stuck
    }

    /// The slowest call so far and how long it took (on the connector's thread).
    pub fn slowest_call(&self) -> Option<(&'static str, Duration)> {
        self.slowest
    }

    /// One connection attempt (the host's `connect(attempt)`): `Ok(true)` once connected,
    /// `Ok(false)` for "retry later".
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn connect(&mut self) -> Result<bool, HarnessError> {
        let attempt = self.attempt;
        self.attempt = self.attempt.saturating_add(1);
        let connected = self.call("connect", move |c| c.connect(attempt))??;
        self.connected |= connected;
        Ok(connected)
    }

    /// Connects (retrying with backoff, as the host does, until
    /// [`Builder::connect_within`]) unless already connected, then sends `Start`.
    ///
    /// # Errors
    /// [`HarnessError::NotConnected`] if it did not connect in time (a panic or a
    /// permanent error ends the attempts at once); see [`HarnessError`].
    pub fn start(&mut self) -> Result<(), HarnessError> {
        let deadline = after(self.connect_within);
        let mut delay = Duration::from_millis(5);
        while !self.connected {
            let last = match self.connect() {
                Ok(true) => break,
                Ok(false) => "not yet".to_owned(),
                Err(HarnessError::Call(error))
                    if !error.is_poisoning() && !error.is_permanent() =>
                {
                    error.to_string()
                }
                Err(error) => return Err(error),
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(HarnessError::NotConnected {
                    connector: self.id.clone(),
                    attempts: self.attempt,
                    within: self.connect_within,
                    last,
                });
            }
            thread::sleep(delay.min(deadline - now));
            delay = (delay * 2).min(Duration::from_millis(200));
        }
        self.notify(Notice::Start)
    }

    /// Sends a lifecycle or circuit-breaker notice.
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn notify(&mut self, notice: Notice) -> Result<(), HarnessError> {
        let method = notice.method();
        Ok(self.call(method, move |c| c.notify(notice))??)
    }

    /// Sends `Pause`.
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn pause(&mut self) -> Result<(), HarnessError> {
        self.notify(Notice::Pause)
    }

    /// Sends `Resume`.
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn resume(&mut self) -> Result<(), HarnessError> {
        self.notify(Notice::Resume)
    }

    /// Sends `Drain`: no new events will come.
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn drain(&mut self) -> Result<(), HarnessError> {
        self.notify(Notice::Drain)
    }

    /// Sends `Stop`, then drops the connector (as the host does).
    ///
    /// # Errors
    /// What `on_stop` or the connector's `Drop` returned; see [`HarnessError`].
    pub fn stop(&mut self) -> Result<(), HarnessError> {
        self.notify(Notice::Stop)?;
        self.close()
    }

    /// Drops the connector (its `Drop` runs under the panic trap); every later call fails
    /// with [`CallError::Closed`].
    ///
    /// # Errors
    /// [`CallError::Panicked`] if its `Drop` panicked; see [`HarnessError`].
    pub fn close(&mut self) -> Result<(), HarnessError> {
        if self.closed {
            return Ok(());
        }
        // `close` runs the connector's `Drop`; dropping the instance then frees it through
        // the vtable's `drop` (a C plugin's own code): both within the call limit.
        let closed = self.call_on_slot("drop", |slot| match slot.take() {
            Some(mut instance) => instance.close(),
            None => Ok(()),
        });
        self.closed = true;
        Ok(closed??)
    }

    /// Runs `f` on the connector's thread with the instance's slot (empty once closed), within
    /// the call limit: a call that does not return leaves the harness stuck.
    fn call_on_slot<R: Send + 'static>(
        &mut self,
        method: &'static str,
        f: impl FnOnce(&mut Option<ConnectorInstance>) -> R + Send + 'static,
    ) -> Result<R, HarnessError> {
        if let Some(stuck_in) = self.stuck {
            return Err(HarnessError::Stuck {
                connector: self.id.clone(),
                method,
                stuck_in,
            });
        }
        let (done, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |slot| {
            let started = Instant::now();
            let value = f(slot);
            let _ = done.send((value, started.elapsed()));
        });
        if !matches!(self.jobs.as_ref().map(|jobs| jobs.send(job)), Some(Ok(()))) {
            return Err(self.thread_error(method, "the connector's thread has ended"));
        }
        match result.recv_timeout(self.call_limit) {
            Ok((value, took)) => {
                self.note_call(method, took);
                Ok(value)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.thread_error(
                method,
                "the harness's code around the call panicked (a bug in weir-testing)",
            )),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.stuck = Some(method);
                Err(HarnessError::Timeout {
                    connector: self.id.clone(),
                    method,
                    limit: self.call_limit,
                })
            }
        }
    }

    /// Pulls once, asking for up to [`Builder::max_events`] events.
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn pull(&mut self) -> Result<Pulled, HarnessError> {
        self.pull_at_most(self.max_events)
    }

    /// Pulls once, asking for up to `max_events` events.
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn pull_at_most(&mut self, max_events: u32) -> Result<Pulled, HarnessError> {
        let pulled = self.call("pull", move |c| {
            let mut batch = EventBatch::new();
            let status = c.pull(&mut batch, max_events)?;
            Ok::<_, CallError>(Pulled {
                status,
                events: batch
                    .iter()
                    .map(|e| SourceEvent {
                        id: e.id,
                        bytes: e.bytes.to_vec(),
                        meta: e.meta.to_vec(),
                    })
                    .collect(),
                ended_streams: batch.ended_streams().to_vec(),
                quiet_for: c.quiet_for(),
            })
        })??;
        self.in_flight.extend(pulled.events.iter().map(|e| e.id));
        Ok(pulled)
    }

    /// Pulls until the source has produced `count` events (they are returned, all of them)
    /// or finishes, for at most `within`. Between pulls it waits as the host does: until
    /// the source's waker wakes, for as long as it said it will be quiet, or a short
    /// backoff.
    ///
    /// # Errors
    /// [`HarnessError::TooFew`], holding the events it got, when the source finished or
    /// the time ran out first; see [`HarnessError`].
    pub fn pull_events(
        &mut self,
        count: usize,
        within: Duration,
    ) -> Result<Vec<SourceEvent>, HarnessError> {
        let deadline = after(within);
        let mut events = Vec::new();
        if count == 0 {
            return Ok(events);
        }
        let mut backoff = Duration::from_micros(100);
        let mut spins = 0u32;
        loop {
            let wakes = self.wakes.count();
            let pulled = self.pull()?;
            let got_some = !pulled.events.is_empty();
            events.extend(pulled.events);
            if events.len() >= count {
                return Ok(events);
            }
            let now = Instant::now();
            if pulled.status == PullStatus::Finished || now >= deadline {
                return Err(HarnessError::TooFew {
                    connector: self.id.clone(),
                    wanted: count,
                    events,
                    finished: pulled.status == PullStatus::Finished,
                    within,
                });
            }
            if got_some {
                backoff = Duration::from_micros(100);
                continue;
            }
            if pulled.status == PullStatus::Ready {
                // `Ready` with nothing: pulled again at once, as the host does, but not in a
                // loop that holds a core for all of `within`.
                spins += 1;
                if spins < 1000 {
                    continue;
                }
            }
            spins = 0;
            let until = match pulled.quiet_for {
                Some(quiet) => now + quiet,
                None => now + backoff,
            }
            .min(deadline);
            if self.wakes_itself() {
                // As the host: pulled when woken, and once in a while anyway.
                self.wakes.wait_past(
                    wakes,
                    until.max(now + Duration::from_millis(50)).min(deadline),
                );
            } else {
                thread::sleep(until - now);
                backoff = (backoff * 2).min(Duration::from_millis(20));
            }
        }
    }

    /// Events pulled and neither acked nor failed yet, by id.
    pub fn in_flight(&self) -> &BTreeSet<EventId> {
        &self.in_flight
    }

    /// Tells the source that event `id` was delivered.
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn ack(&mut self, id: EventId) -> Result<(), HarnessError> {
        self.feedback(&[Feedback {
            id,
            kind: FeedbackKind::ACK,
        }])
    }

    /// Tells the source that event `id` was not delivered.
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn fail(&mut self, id: EventId) -> Result<(), HarnessError> {
        self.feedback(&[Feedback {
            id,
            kind: FeedbackKind::FAIL,
        }])
    }

    /// Acks every event of `events`, in one call (as the host batches feedback).
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn ack_all(&mut self, events: &[SourceEvent]) -> Result<(), HarnessError> {
        let items: Vec<Feedback> = events
            .iter()
            .map(|e| Feedback {
                id: e.id,
                kind: FeedbackKind::ACK,
            })
            .collect();
        self.feedback(&items)
    }

    /// Sends acks and fails, in one call.
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn feedback(&mut self, items: &[Feedback]) -> Result<(), HarnessError> {
        for item in items {
            self.in_flight.remove(&item.id);
        }
        let items = items.to_vec();
        Ok(self.call("source_feedback", move |c| c.feedback(&items))??)
    }

    /// Tells a source that a sink it feeds closed its circuit breaker.
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn close_circuit(&mut self) -> Result<(), HarnessError> {
        self.notify(Notice::CircuitClosed)
    }

    /// Tells a source that every sink it feeds opened its circuit breaker again.
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn open_circuit(&mut self) -> Result<(), HarnessError> {
        self.notify(Notice::CircuitOpened)
    }

    /// Hands a sink one batch of events (payloads, no metadata, stream 0).
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn deliver<B: AsRef<[u8]>>(
        &mut self,
        payloads: impl IntoIterator<Item = B>,
    ) -> Result<Delivered, HarnessError> {
        let payloads: Vec<B> = payloads.into_iter().collect();
        let events: Vec<TestEvent<'_>> = payloads
            .iter()
            .map(|p| TestEvent::new(p.as_ref()))
            .collect();
        self.deliver_events(&events)
    }

    /// Hands a sink one batch of events, with their metadata and streams.
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn deliver_events(&mut self, events: &[TestEvent<'_>]) -> Result<Delivered, HarnessError> {
        // As the host: the wall-clock time the event entered, in nanoseconds since the
        // Unix epoch (a sink can measure latency from it).
        let ingest_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let owned: Vec<(EventId, Vec<u8>, Vec<u8>)> = events
            .iter()
            .map(|e| {
                let id = EventId {
                    stream: e.stream,
                    pull: self.next_sink_id,
                };
                self.next_sink_id += 1;
                (id, e.bytes.to_vec(), e.meta.to_vec())
            })
            .collect();
        let delivered = self.call("sink_batch", move |c| {
            let views: Vec<SinkEvent<'_>> = owned
                .iter()
                .map(|(id, bytes, meta)| SinkEvent::new(bytes, *id, ingest_ns, meta))
                .collect();
            let outcome = c.sink_batch(&views)?;
            Ok::<_, CallError>(Delivered {
                ids: owned.iter().map(|(id, ..)| *id).collect(),
                replies: outcome.replies().collect(),
                processed: outcome.processed(),
                circuit: outcome.circuit,
                errors: outcome.errors,
            })
        })??;
        if let Some(circuit) = delivered.circuit {
            self.circuit = circuit;
        }
        Ok(delivered)
    }

    /// Sends a sink a tick (a batch of no events: its `on_tick`), as the host does
    /// periodically while the sink's circuit breaker is closed.
    ///
    /// # Errors
    /// What the connector returned; see [`HarnessError`].
    pub fn tick(&mut self) -> Result<Option<Circuit>, HarnessError> {
        Ok(self.deliver_events(&[])?.circuit)
    }

    /// The sink's circuit breaker as it last set it (open until it closes it).
    pub fn circuit(&self) -> Circuit {
        self.circuit
    }

    /// Whether the connector took a waker (it wakes the host rather than being polled).
    pub fn wakes_itself(&self) -> bool {
        // Read on the caller's thread: a plain flag of the instance, no call into the
        // plugin. The instance lives on the connector's thread, so ask it there.
        self.wakes.count() > 0 || self.peek(ConnectorInstance::wakes_itself)
    }

    /// How often the connector woke its wakers.
    pub fn wakes(&self) -> u64 {
        self.wakes.count()
    }

    /// Whether the connector asked the host to shut down.
    pub fn shutdown_requested(&self) -> bool {
        self.peek(ConnectorInstance::shutdown_requested)
    }

    /// Whether a panic poisoned the instance.
    pub fn is_poisoned(&self) -> bool {
        self.peek(ConnectorInstance::is_poisoned)
    }

    /// Reads a flag of the instance on its thread (`false` if the thread is stuck or gone).
    fn peek(&self, read: fn(&ConnectorInstance) -> bool) -> bool {
        if self.stuck.is_some() {
            return false;
        }
        let Some(jobs) = &self.jobs else {
            return false;
        };
        let (done, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |slot| {
            let _ = done.send(slot.as_ref().is_some_and(read));
        });
        if jobs.send(job).is_err() {
            return false;
        }
        result.recv_timeout(self.call_limit).unwrap_or(false)
    }

    /// What the connector logged so far (at every level), oldest first.
    pub fn logs(&self) -> Vec<LogLine> {
        let logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        logs.lines.iter().cloned().collect()
    }

    /// Whether a line the connector logged contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        let logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        logs.lines.iter().any(|line| line.message.contains(text))
    }

    /// How many old lines were forgotten to keep [`MAX_LOG_LINES`].
    pub fn dropped_logs(&self) -> u64 {
        self.logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.stuck.is_none() && !self.closed {
            let _ = self.close();
        }
        // Ends the thread's job loop; a thread stuck in a call is left behind (it holds
        // nothing the test needs).
        self.jobs = None;
        if self.stuck.is_none()
            && let Some(thread) = self.thread.take()
        {
            // The instance is gone (or `new` failed): the thread ends at once. Waited for
            // with a deadline all the same: a test never hangs on a connector.
            let deadline = after(self.call_limit);
            while !thread.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(1));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}
