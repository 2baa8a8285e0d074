//! Asking a running pipeline: its status, upgrading a connector to another plugin (a new
//! build or version) without losing an event, and applying a changed pipeline file.

use tokio::sync::{mpsc, oneshot};

use super::MetricsSnapshot;
use crate::loader::{Plugin, PluginInfo};
use crate::pipeline::Pipeline;

/// What the runtime can be asked while it runs (see [`super::run_controlled`]); each
/// command carries the channel its answer goes to.
#[derive(Debug)]
pub enum Command {
    /// Every connector's plugin, state and counters.
    Status(oneshot::Sender<Vec<ConnectorStatus>>),
    /// Replace a connector's plugin, without losing an event (see [`Upgraded`]).
    Upgrade {
        /// The connector's id.
        connector: String,
        /// The plugin to run it with from now on.
        plugin: Plugin,
        /// Where the outcome goes.
        reply: oneshot::Sender<Result<Upgraded, String>>,
    },
    /// Make the running pipeline the one given (see [`Controller::apply`]).
    Apply {
        /// The pipeline to run from now on, resolved and validated.
        pipeline: Box<Pipeline>,
        /// Where the outcome goes.
        reply: oneshot::Sender<Result<Applied, String>>,
    },
}

/// Sends [`Command`]s to a running pipeline.
#[derive(Debug, Clone)]
pub struct Controller {
    commands: mpsc::UnboundedSender<Command>,
}

/// The receiving end, handed to [`super::run_controlled`].
#[derive(Debug)]
pub struct Commands(pub(super) mpsc::UnboundedReceiver<Command>);

/// A controller and the commands it sends, for one run.
pub fn channel() -> (Controller, Commands) {
    let (commands, receiver) = mpsc::unbounded_channel();
    (Controller { commands }, Commands(receiver))
}

impl Controller {
    /// The status of every connector, in configuration order; `None` once the run is over.
    pub async fn status(&self) -> Option<Vec<ConnectorStatus>> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Status(reply)).ok()?;
        answer.await.ok()
    }

    /// Upgrades connector `connector` to `plugin`.
    ///
    /// The new instance is created from the connector's config and connected while the old
    /// one keeps running; then the old one stops being pulled, every event it produced gets
    /// its verdict (or, past the drain timeout, is failed back to it), it is stopped, and
    /// the new one starts. Events queued for the connector as a sink wait and go to the new
    /// instance. If the new plugin cannot create, connect or validate its config, the old
    /// instance keeps running and the error is returned.
    ///
    /// # Errors
    /// The reason the upgrade did not happen.
    pub async fn upgrade(&self, connector: &str, plugin: Plugin) -> Result<Upgraded, String> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Upgrade {
                connector: connector.to_owned(),
                plugin,
                reply,
            })
            .map_err(|_| "the pipeline is not running".to_owned())?;
        answer
            .await
            .map_err(|_| "the pipeline stopped before the upgrade finished".to_owned())?
    }

    /// Makes the running pipeline `pipeline`, connector by connector (matched by id):
    ///
    /// - new connectors start, with their bindings;
    /// - removed ones are unbound first (their sources stop sending to them), then drain
    ///   (what they produced gets its verdict, what waits for them is delivered) and stop,
    ///   each within the drain timeout (past it, what is left is failed back);
    /// - changed ones (plugin, version, config, codec, processors, restart settings) are
    ///   replaced as by [`upgrade`](Self::upgrade): the new instance connects while the old
    ///   one runs, then the old one drains; if the new one cannot, the old one goes on and
    ///   the failure is in [`Applied::failed`];
    /// - connectors whose bindings changed are rewired in place, without a restart;
    /// - the others keep running untouched.
    ///
    /// A connector cannot change from source to sink (or gain or lose a side) in place:
    /// that is refused before anything changes (give it a new id instead).
    ///
    /// # Errors
    /// Why nothing was changed: a refused change, another apply under way, the pipeline
    /// shutting down or stopped.
    pub async fn apply(&self, pipeline: Pipeline) -> Result<Applied, String> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Apply {
                pipeline: Box::new(pipeline),
                reply,
            })
            .map_err(|_| "the pipeline is not running".to_owned())?;
        answer
            .await
            .map_err(|_| "the pipeline stopped before the apply finished".to_owned())?
    }
}

/// What applying a pipeline did, connector by connector (ids, in the new file's order
/// where they are in it).
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// New connectors, started.
    pub started: Vec<String>,
    /// Removed connectors, drained and stopped.
    pub stopped: Vec<String>,
    /// Changed connectors, now running their new settings.
    pub replaced: Vec<Upgraded>,
    /// Connectors whose bindings changed, rewired without a restart.
    pub rewired: Vec<String>,
    /// Connectors left as they were.
    pub unchanged: Vec<String>,
    /// Changes that did not happen or did not go well, with the reason: a replacement
    /// that could not connect (the old instance goes on), a removed connector whose
    /// `on_stop` failed or that did not stop in time.
    pub failed: Vec<(String, String)>,
}

/// One connector as the runtime sees it.
#[derive(Debug, Clone)]
pub struct ConnectorStatus {
    /// Its id.
    pub id: String,
    /// The plugin it runs.
    pub plugin: PluginInfo,
    /// `running`, `failed` (for good), `stopped`, or `draining` / `stopping` during shutdown.
    pub state: &'static str,
    /// Its counters.
    pub metrics: MetricsSnapshot,
}

/// A connector that now runs another plugin.
#[derive(Debug, Clone)]
pub struct Upgraded {
    /// The connector's id.
    pub connector: String,
    /// The plugin it ran.
    pub from: PluginInfo,
    /// The plugin it runs now.
    pub to: PluginInfo,
    /// Events of the old instance failed back to it because they had no verdict by the
    /// drain timeout (0 when the old instance drained).
    pub failed_back: usize,
}
