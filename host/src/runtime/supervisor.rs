//! The restart policy: bringing a connector instance up, and what happens when it fails.
//!
//! The supervisor owns the connector's instance. It is driven by the connector thread's
//! event loop one step at a time (one create, connect or start attempt per step, never a
//! nested wait), so that the thread keeps answering its inbox while it connects or waits
//! out a backoff, and a stop request is seen at once.
//!
//! - A transient failure (`connect` returning `Ok(false)` or an error) is retried with the
//!   connector's `reconnect` backoff, forever.
//! - A panic or a broken ABI contract poisons the instance: it is dropped and a new one is
//!   created after a backoff, up to `max_restarts` times.
//! - A permanent error (`Error::permanent` in the sdk, an invalid config, a missing side)
//!   and running out of restarts make the connector *dead*: nothing is called any more and
//!   the world is told, so the run ends non-zero.

use std::time::{Duration, Instant};

use super::WorldEvent;
use super::connector::Shared;
use super::metrics::Call;
use crate::error::CallError;
use crate::loader::{ConnectorInstance, Notice};

/// Where the instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Not running: the next create/connect/start attempt is due at this instant.
    Down { next_try: Instant },
    /// Connected and started.
    Running,
    /// Failed for good.
    Dead,
}

/// What [`Supervisor::failed`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A new instance will be brought up after a backoff.
    Restarting,
    /// The connector is dead.
    Dead,
}

/// The instance of one connector and its restart policy.
#[derive(Debug)]
pub(crate) struct Supervisor {
    instance: Option<ConnectorInstance>,
    life: Life,
    /// Counts instances that failed; verdicts of an earlier incarnation are ignored.
    pub(crate) incarnation: u32,
    restarts: u32,
    /// Connect attempts of the current instance.
    attempt: u32,
}

impl Supervisor {
    pub(crate) fn new() -> Self {
        Self {
            instance: None,
            life: Life::Down {
                next_try: Instant::now(),
            },
            incarnation: 0,
            restarts: 0,
            attempt: 0,
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        self.life == Life::Running
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.life == Life::Dead
    }

    /// When the next attempt to bring the instance up is due, while it is down.
    pub(crate) fn next_try(&self) -> Option<Instant> {
        match self.life {
            Life::Down { next_try } => Some(next_try),
            Life::Running | Life::Dead => None,
        }
    }

    /// The instance, only while it runs: a sink is never handed events, and a source never
    /// pulled, before its `connect` succeeded and `on_start` ran.
    pub(crate) fn running(&mut self) -> Option<&mut ConnectorInstance> {
        match self.life {
            Life::Running => self.instance.as_mut(),
            Life::Down { .. } | Life::Dead => None,
        }
    }

    /// One attempt to bring the instance up, if one is due: create it (if there is none),
    /// try to connect once, and start it once connected. `paused` says whether a downstream
    /// breaker is closed, which a freshly started source is told about.
    ///
    /// Returns whether the connector is running afterwards, or the failure that ended the
    /// instance (for the caller to hand to [`failed`](Self::failed)).
    pub(crate) fn step(&mut self, shared: &Shared, paused: bool) -> Result<bool, CallError> {
        let Life::Down { next_try } = self.life else {
            return Ok(self.is_running());
        };
        if Instant::now() < next_try {
            return Ok(false);
        }
        if self.instance.is_none() {
            let options = shared.instance_options()?;
            let instance = shared.metrics.track(Call::New, || {
                shared
                    .plugin
                    .instantiate_with(&shared.spec.id, &shared.spec.config, options)
            })?;
            self.instance = Some(instance);
            self.attempt = 0;
        }
        let instance = self.instance.as_mut().expect("created above");
        let attempt = self.attempt;
        match shared
            .metrics
            .track(Call::Connect, || instance.connect(attempt))
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(connector = %shared.id(), attempt, "not connected yet, retrying");
                self.retry_connect(shared);
                return Ok(false);
            }
            Err(error) if error.is_poisoning() || error.is_permanent() => return Err(error),
            Err(error) => {
                tracing::warn!(connector = %shared.id(), attempt, %error, "connect failed, retrying");
                self.retry_connect(shared);
                return Ok(false);
            }
        }
        super::upgrade::start(instance, shared, paused)?;
        self.life = Life::Running;
        shared.tell_world(WorldEvent::Running(shared.index, true));
        tracing::debug!(connector = %shared.id(), incarnation = self.incarnation, "connector running");
        Ok(true)
    }

    fn retry_connect(&mut self, shared: &Shared) {
        self.attempt = self.attempt.saturating_add(1);
        self.life = Life::Down {
            next_try: Instant::now() + shared.spec.reconnect.delay(self.attempt),
        };
    }

    /// The instance failed in a way that ends it (a panic, a broken contract, a permanent
    /// error, a failed constructor): drop it, then restart with backoff or give up.
    pub(crate) fn failed(&mut self, shared: &Shared, error: &CallError) -> Verdict {
        if let Some(mut instance) = self.instance.take() {
            close(&mut instance, shared);
        }
        self.incarnation += 1;
        self.attempt = 0;
        tracing::error!(connector = %shared.id(), plugin = %shared.plugin.name(), method = error.method(), %error, "connector failed");
        let why = if error.is_permanent() {
            Some("the error is permanent".to_owned())
        } else if self.restarts >= shared.spec.max_restarts {
            Some(format!(
                "no restarts left (max_restarts = {})",
                shared.spec.max_restarts
            ))
        } else {
            None
        };
        if let Some(why) = why {
            tracing::error!(connector = %shared.id(), restarts = self.restarts, "connector stopped for good: {why}");
            self.life = Life::Dead;
            shared.tell_world(WorldEvent::GaveUp(shared.index, error.to_string()));
            return Verdict::Dead;
        }
        self.restarts += 1;
        shared
            .metrics
            .restarts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let delay = shared.spec.reconnect.delay(self.restarts);
        tracing::warn!(connector = %shared.id(), restart = self.restarts, delay_ms = delay.as_millis() as u64, "restarting connector");
        shared.tell_world(WorldEvent::Running(shared.index, false));
        self.life = Life::Down {
            next_try: Instant::now() + delay,
        };
        Verdict::Restarting
    }

    /// Takes the instance out, with whether it had been started, for an upgrade to stop it.
    pub(crate) fn take_instance(&mut self) -> Option<(ConnectorInstance, bool)> {
        let started = self.life == Life::Running;
        self.instance.take().map(|instance| (instance, started))
    }

    /// Puts an instance that an upgrade connected and started in place: it runs now, and a
    /// failure of it is handled (restarted) like any other.
    pub(crate) fn install(&mut self, instance: ConnectorInstance) {
        self.instance = Some(instance);
        self.life = Life::Running;
        self.attempt = 0;
    }

    /// Stops the connector: `on_stop` if it was started, then drops its state.
    ///
    /// # Errors
    /// The first of the errors of `on_stop` and of dropping the state.
    pub(crate) fn stop(&mut self, shared: &Shared) -> Result<(), CallError> {
        let Some(mut instance) = self.instance.take() else {
            return Ok(());
        };
        let stopped = if self.life == Life::Running {
            notify(&mut instance, shared, Notice::Stop)
        } else {
            Ok(())
        };
        self.life = Life::Dead;
        let closed = shared.metrics.track(Call::Drop, || instance.close());
        drop(instance);
        stopped.and(closed)
    }
}

/// Delivers a notice, tracked as the method it calls.
pub(crate) fn notify(
    instance: &mut ConnectorInstance,
    shared: &Shared,
    notice: Notice,
) -> Result<(), CallError> {
    let call = match notice {
        Notice::Start => Call::OnStart,
        Notice::Pause => Call::OnPause,
        Notice::Resume => Call::OnResume,
        Notice::Drain => Call::OnDrain,
        Notice::Stop => Call::OnStop,
        Notice::CircuitClosed | Notice::CircuitOpened => Call::OnCircuit,
    };
    shared.metrics.track(call, || instance.notify(notice))
}

fn close(instance: &mut ConnectorInstance, shared: &Shared) {
    if let Err(error) = shared.metrics.track(Call::Drop, || instance.close()) {
        tracing::warn!(connector = %shared.id(), %error, "dropping the failed instance failed");
    }
}

/// Exponential backoff for a sink that keeps failing every event it is handed: without it,
/// a resending source and such a sink would spin through the same events at full speed.
pub(crate) fn failure_backoff(streak: u32) -> Duration {
    const INITIAL: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);
    INITIAL
        .saturating_mul(1u32 << streak.saturating_sub(1).min(16))
        .min(MAX)
}
