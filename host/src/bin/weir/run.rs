//! `weir run`: a pipeline until it finishes, with signals and exit status.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use weir_host::admin::{Admin, AdminError, AdminServer, default_socket_path};
use weir_host::config::PipelineSpec;
use weir_host::discovery::PluginRepository;
use weir_host::pipeline::Pipeline;
use weir_host::runtime::{RuntimeOptions, StopReason, control_channel};

/// Which admin socket a run opens.
pub(crate) enum AdminSocket {
    /// The default path; if another weir has it, this run goes without (with a warning).
    Default,
    /// This path, or the run does not start.
    At(PathBuf),
    /// None.
    Off,
}

/// A directory of this process's own for private copies of plugin files, removed at exit.
struct Images(PathBuf);

impl Images {
    fn create() -> std::io::Result<Self> {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let dir = base.join(format!("weir-images-{}-{attempt}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Self(dir)),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(error),
            }
        }
        Err(std::io::Error::other(
            "no free name for the images directory",
        ))
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens the admin socket as asked; `Err` only for an explicit path that cannot be used.
fn open_admin(socket: &AdminSocket) -> Result<Option<AdminServer>, AdminError> {
    match socket {
        AdminSocket::Off => Ok(None),
        AdminSocket::At(path) => AdminServer::bind(path).map(Some),
        AdminSocket::Default => match AdminServer::bind(&default_socket_path()) {
            Ok(server) => Ok(Some(server)),
            Err(error) => {
                tracing::warn!(%error, "running without an admin socket");
                Ok(None)
            }
        },
    }
}

/// Runs the pipeline in `file` (plugins found as `finder` says); the exit status says how
/// it went.
pub(crate) fn run(
    file: &Path,
    finder: &crate::Finder,
    options: RuntimeOptions,
    socket: &AdminSocket,
    watch: bool,
) -> ExitCode {
    let images = match Images::create() {
        Ok(images) => images,
        Err(error) => {
            eprintln!("error: cannot create a private directory for plugin images: {error}");
            return ExitCode::FAILURE;
        }
    };
    let loaded = PipelineSpec::read(file).and_then(|spec| {
        let path = finder.path(&spec.plugin_path);
        // Plugins run from private copies: a build overwriting a file in place never
        // changes running code, and a reload of the same path is a new image.
        let repository = PluginRepository::scan_copies(&path, &images.0);
        repository.warn_refused();
        let pipeline = Pipeline::resolve(spec, &repository)?;
        Ok((pipeline, repository, path))
    });
    let (pipeline, repository, plugin_path) = match loaded {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let server = {
        // The socket belongs to the runtime's reactor.
        let _entered = runtime.enter();
        match open_admin(socket) {
            Ok(server) => server,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
    };
    let stop_timeout = options.stop_timeout;
    let report = runtime.block_on(async {
        let mut signals = match Signals::install() {
            Ok(signals) => signals,
            Err(error) => {
                eprintln!("error: cannot listen for Ctrl-C and SIGTERM: {error}");
                return None;
            }
        };
        let interrupt = async move {
            let first = signals.next().await;
            tracing::info!(
                signal = first,
                "received: draining; send it again to exit at once"
            );
            // The world keeps running the shutdown on this thread; a second signal ends
            // the process whatever state it is in.
            tokio::spawn(async move {
                let second = signals.next().await;
                eprintln!(
                    "error: second {second}: exiting now, without waiting for connectors to stop"
                );
                std::process::exit(130);
            });
        };
        let (controller, commands) = control_channel();
        let admin = Arc::new(Admin::new(
            controller,
            &pipeline.spec,
            repository,
            plugin_path.clone(),
            images.0.clone(),
        ));
        if let Some(server) = server {
            tracing::info!(path = %server.path().display(), "admin socket listening (weir status, weir plugins reload)");
            tokio::spawn(server.serve(admin.clone()));
        }
        // Kept for the whole run: dropping it stops watching.
        let _watch = if watch {
            match weir_host::admin::watch(&plugin_path, admin.clone()) {
                Ok(watch) => Some(watch),
                Err(error) => {
                    eprintln!("error: cannot watch the plugin path: {error}");
                    return None;
                }
            }
        } else {
            None
        };
        tracing::info!(file = %file.display(), "pipeline running (Ctrl-C or SIGTERM to stop)");
        Some(weir_host::runtime::run_controlled(pipeline, options, interrupt, commands).await)
    });
    let Some(report) = report else {
        return ExitCode::FAILURE;
    };
    let reason = match &report.reason {
        StopReason::Finished => "all sources finished".to_owned(),
        StopReason::Signal => "interrupted".to_owned(),
        StopReason::Requested { connector } => format!("connector `{connector}` asked to stop"),
    };
    tracing::info!(%reason, "pipeline stopped");
    for (connector, error) in &report.failed {
        eprintln!("error: connector `{connector}` failed for good: {error}");
    }
    for (connector, error) in &report.stop_failed {
        eprintln!("error: connector `{connector}` failed to stop cleanly: {error}");
    }
    for (connector, method) in &report.abandoned {
        eprintln!(
            "error: connector `{connector}` did not stop within {:?} (blocked in `{method}`): abandoned",
            stop_timeout
        );
    }
    if report.drain_timed_out {
        eprintln!(
            "error: draining timed out: events still in flight were failed back to their sources, not delivered"
        );
    }
    if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, listened for from the start of the run, so that neither
/// kills the process before the drain had its chance.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next of either signal; returns its name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
