//! `weir run`: a pipeline until it finishes, with signals and exit status.

use std::path::Path;
use std::process::ExitCode;

use weir_host::runtime::{RuntimeOptions, StopReason};

use crate::load_pipeline;

/// Runs the pipeline in `file` (plugins found as `finder` says); the exit status says how
/// it went.
pub(crate) fn run(file: &Path, finder: &crate::Finder, options: RuntimeOptions) -> ExitCode {
    let pipeline = match load_pipeline(file, finder) {
        Ok(pipeline) => pipeline,
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
        tracing::info!(file = %file.display(), "pipeline running (Ctrl-C or SIGTERM to stop)");
        Some(weir_host::runtime::run(pipeline, options, interrupt).await)
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
