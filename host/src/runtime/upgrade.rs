//! Upgrading a running connector to another plugin without losing an event.
//!
//! Driven by the connector's thread one step at a time, like the supervisor, so the thread
//! keeps answering its inbox (and delivering, and taking verdicts) throughout:
//!
//! 1. **Connect the new instance**, created from the same config, while the old one keeps
//!    running: `connect` attempts on a thread of their own (a new version whose `connect`
//!    blocks leaves the old one served), with the connector's `reconnect` backoff, until it
//!    connects or the drain timeout passes. On any failure the old instance just goes on
//!    and the error is the answer.
//! 2. **Drain the old instance**: it is no longer pulled; every event it produced gets its
//!    verdict from the sinks (told to the old instance, which produced it). Past the drain
//!    timeout, what is still in flight is failed back to it.
//! 3. **Switch**: the old instance is stopped (`on_stop`, then dropped) and the new one is
//!    started; it is the one the supervisor restarts from now on. Events waiting for the
//!    connector as a sink were never handed to the old instance: the new one gets them.
//!
//! An upgrade changes no binding: bindings name the connector's thread, not its instance
//! (an applied pipeline rewires them separately, see [`super::apply`]).

use std::time::Instant;

use tokio::sync::oneshot;

use super::connector::Shared;
use super::control::Upgraded;
use super::metrics::Call;
use super::sink::Sink;
use super::source::Source;
use super::supervisor::{Supervisor, notify};
use crate::config::ConnectorSpec;
use crate::error::CallError;
use crate::loader::{ConnectorInstance, Notice, Plugin};

/// How often a connect attempt on its own thread is looked at.
const ATTEMPT_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// An upgrade asked of a connector thread.
#[derive(Debug)]
pub(crate) struct UpgradeRequest {
    pub(crate) plugin: Plugin,
    /// New settings for the connector (an applied pipeline changed them); `None` keeps them.
    pub(crate) spec: Option<ConnectorSpec>,
    pub(crate) reply: oneshot::Sender<Result<Upgraded, String>>,
}

/// A connector switched to another plugin: for the world to record, then to answer.
#[derive(Debug)]
pub(crate) struct Switched {
    pub(crate) index: usize,
    pub(crate) plugin: crate::loader::PluginInfo,
    /// The settings it runs with now.
    pub(crate) spec: ConnectorSpec,
    pub(crate) reply: oneshot::Sender<Result<Upgraded, String>>,
    pub(crate) outcome: Result<Upgraded, String>,
}

/// An upgrade under way.
pub(crate) struct Upgrade {
    plugin: Plugin,
    spec: Option<ConnectorSpec>,
    /// A connect attempt under way on its own thread: the instance and its outcome come
    /// back through it.
    attempting: Option<std::sync::mpsc::Receiver<(ConnectorInstance, Result<bool, CallError>)>>,
    reply: Option<oneshot::Sender<Result<Upgraded, String>>>,
    instance: Option<ConnectorInstance>,
    attempt: u32,
    next_try: Instant,
    /// Connecting must succeed by then.
    connect_by: Instant,
    /// Once the new instance is connected: the old one drains until then at the latest.
    drain_until: Option<Instant>,
}

/// Whether an upgrade step finished it.
#[derive(Debug)]
pub(crate) enum Step {
    Pending,
    Done,
    /// Switched, but the new instance failed to start: the caller hands the error to the
    /// supervisor like any failure.
    Crashed(CallError),
}

impl Upgrade {
    pub(crate) fn new(request: UpgradeRequest, shared: &Shared) -> Self {
        let now = Instant::now();
        Self {
            plugin: request.plugin,
            spec: request.spec,
            attempting: None,
            reply: Some(request.reply),
            instance: None,
            attempt: 0,
            next_try: now,
            connect_by: now + shared.options.drain_timeout,
            drain_until: None,
        }
    }

    /// Whether the old instance is draining (no longer pulled).
    pub(crate) fn is_draining(&self) -> bool {
        self.drain_until.is_some()
    }

    /// When the next step is due: the next connect attempt, or the drain deadline (a
    /// verdict arriving earlier wakes the thread, which steps again).
    pub(crate) fn next_step(&self) -> Instant {
        self.drain_until.unwrap_or(self.next_try)
    }

    /// Gives up: the old instance goes on.
    pub(crate) fn abort(mut self, shared: &Shared, why: String) {
        self.give_up(shared, "upgrade abandoned", why);
    }

    /// Drops the new instance (if it is here: one a connect attempt holds is dropped with
    /// the attempt) and answers `why`; the old instance goes on.
    fn give_up(&mut self, shared: &Shared, what: &str, why: String) {
        tracing::warn!(connector = %shared.id(), plugin = %self.plugin.info().path.display(), "{what}: {why}");
        self.attempting = None;
        if let Some(mut instance) = self.instance.take()
            && let Err(error) = shared.metrics.track(Call::Drop, || instance.close())
        {
            tracing::warn!(connector = %shared.id(), %error, "dropping the new instance failed");
        }
        self.answer(Err(why));
    }

    fn answer(&mut self, outcome: Result<Upgraded, String>) {
        if let Some(reply) = self.reply.take() {
            // The asker may have gone away: the upgrade happened (or not) all the same.
            let _ = reply.send(outcome);
        }
    }

    /// One step, if due. On [`Step::Done`] the upgrade is over (answered).
    pub(crate) fn step(
        &mut self,
        shared: &mut Shared,
        supervisor: &mut Supervisor,
        source: &mut Source,
        sink: &mut Sink,
        paused: bool,
    ) -> Step {
        let now = Instant::now();
        match self.drain_until {
            None if now >= self.next_try => match self.connect(shared) {
                Ok(true) => {
                    tracing::info!(connector = %shared.id(), version = %self.plugin.info().version, "new version connected: draining the old instance");
                    self.drain_until = Some(now + shared.options.drain_timeout);
                    self.step(shared, supervisor, source, sink, paused)
                }
                Ok(false) => Step::Pending,
                Err(why) => {
                    self.give_up(shared, "upgrade failed, the running version goes on", why);
                    Step::Done
                }
            },
            None => Step::Pending,
            Some(until) if source.is_idle() || now >= until => {
                let (outcome, step) = match self.switch(shared, supervisor, source, sink, paused) {
                    Ok(upgraded) => (Ok(upgraded), Step::Done),
                    Err(failed) => {
                        let (why, error) = *failed;
                        (Err(why), Step::Crashed(error))
                    }
                };
                // Answered through the world, so that its status shows the new plugin
                // before the answer arrives.
                if let Some(reply) = self.reply.take() {
                    shared.tell_world(super::WorldEvent::Upgraded(Box::new(Switched {
                        index: shared.index,
                        plugin: shared.plugin.info().clone(),
                        spec: shared.spec.clone(),
                        reply,
                        outcome,
                    })));
                }
                step
            }
            Some(_) => Step::Pending,
        }
    }

    /// Creates the new instance if needed and tries once to connect it: `Ok(true)` once
    /// connected, `Ok(false)` to try again later, `Err` to give up.
    fn connect(&mut self, shared: &Shared) -> Result<bool, String> {
        let version = self.plugin.info().version.clone();
        let spec = self.spec.as_ref().unwrap_or(&shared.spec);
        let now = Instant::now();
        // An attempt runs on a thread of its own: a new version whose `connect` blocks
        // must not stop this thread from serving the old one.
        if let Some(attempt) = &self.attempting {
            let (instance, result) = match attempt.try_recv() {
                Ok(done) => done,
                Err(std::sync::mpsc::TryRecvError::Empty) if now < self.connect_by => {
                    self.next_try = now + ATTEMPT_POLL;
                    return Ok(false);
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {
                    self.attempting = None;
                    return Err(format!(
                        "version {version}'s connect did not return within {:?}: \
                         its instance is left behind, blocked",
                        shared.options.drain_timeout
                    ));
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.attempting = None;
                    return Err(format!(
                        "version {version}'s connect ended without an answer"
                    ));
                }
            };
            self.attempting = None;
            self.instance = Some(instance);
            let connected = match result {
                Ok(connected) => connected,
                Err(error) if error.is_poisoning() || error.is_permanent() => {
                    return Err(format!("version {version} cannot connect: {error}"));
                }
                Err(error) => {
                    tracing::warn!(connector = %shared.id(), attempt = self.attempt, %error, "the new version's connect failed, retrying");
                    false
                }
            };
            if connected {
                return Ok(true);
            }
            self.attempt += 1;
            if now >= self.connect_by {
                return Err(format!(
                    "version {version} did not connect within {:?} ({} attempts)",
                    shared.options.drain_timeout, self.attempt
                ));
            }
            // The last attempt comes at the deadline, not before it.
            self.next_try = (now + spec.reconnect.delay(self.attempt)).min(self.connect_by);
            return Ok(false);
        }
        let mut instance = match self.instance.take() {
            Some(instance) => instance,
            None => {
                let options = shared
                    .instance_options_for(spec, &self.plugin)
                    .map_err(|e| e.to_string())?;
                self.plugin
                    .instantiate_with(&spec.id, &spec.config, options)
                    .map_err(|e| format!("version {version} refused the connector's config: {e}"))?
            }
        };
        let (done, attempt) = std::sync::mpsc::channel();
        let number = self.attempt;
        std::thread::Builder::new()
            .name(format!("weir-{}-connect", shared.id()))
            .spawn(move || {
                let result = instance.connect(number);
                let _ = done.send((instance, result));
            })
            .map_err(|e| format!("cannot start a thread to connect version {version}: {e}"))?;
        self.attempting = Some(attempt);
        self.next_try = now + ATTEMPT_POLL;
        Ok(false)
    }

    /// Stops the old instance and starts the new one in its place.
    fn switch(
        &mut self,
        shared: &mut Shared,
        supervisor: &mut Supervisor,
        source: &mut Source,
        sink: &mut Sink,
        paused: bool,
    ) -> Result<Upgraded, Box<(String, CallError)>> {
        let failed_back = source.in_flight_events();
        if failed_back > 0 {
            tracing::warn!(connector = %shared.id(), events = failed_back, "the old instance did not drain in time: its events in flight are failed back to it");
        }
        // Also the pulls whose bytes sit in unfinished frames: the new instance's streams
        // start afresh.
        if (failed_back > 0 || source.holds_pulls())
            && let Err(error) = source.fail_in_flight(shared, supervisor.running())
        {
            tracing::warn!(connector = %shared.id(), %error, "fail handling failed");
        }
        let from = shared.plugin.info().clone();
        if let Some((mut old, started)) = supervisor.take_instance() {
            let stopped = if started {
                notify(&mut old, shared, Notice::Stop)
            } else {
                Ok(())
            };
            let closed = shared.metrics.track(Call::Drop, || old.close());
            if let Err(error) = stopped.and(closed) {
                tracing::warn!(connector = %shared.id(), %error, "stopping the old version failed");
            }
        }
        shared.plugin = self.plugin.clone();
        if let Some(spec) = self.spec.take() {
            shared.spec = spec;
            sink.respec(shared);
        }
        let mut new = self.instance.take().expect("connected before switching");
        let started = start(&mut new, shared, paused);
        supervisor.install(new);
        source.resume_after_upgrade();
        let to = shared.plugin.info().clone();
        match started {
            Ok(()) => {
                tracing::info!(connector = %shared.id(), from = %from.version, to = %to.version, file = %to.path.display(), "connector upgraded");
                Ok(Upgraded {
                    connector: shared.id().to_owned(),
                    from,
                    to,
                    failed_back,
                })
            }
            Err(error) => Err(Box::new((
                format!(
                    "version {} replaced {} but failed to start: {error} (it is restarted like any failed instance)",
                    to.version, from.version
                ),
                error,
            ))),
        }
    }
}

/// Starts an instance that just connected: `on_start`, and the breaker state if a
/// downstream breaker is closed.
///
/// # Errors
/// A panic or a permanent error of either notice (others are logged).
pub(crate) fn start(
    instance: &mut ConnectorInstance,
    shared: &Shared,
    paused: bool,
) -> Result<(), CallError> {
    let mut notices = vec![Notice::Start];
    if paused && shared.routes.is_source() {
        notices.push(Notice::CircuitClosed);
    }
    for notice in notices {
        if let Err(error) = notify(instance, shared, notice) {
            if error.is_poisoning() || error.is_permanent() {
                return Err(error);
            }
            tracing::warn!(connector = %shared.id(), %error, "lifecycle notice failed");
        }
    }
    Ok(())
}
