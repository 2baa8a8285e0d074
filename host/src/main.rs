//! `weir`: the command-line host for Weir connector plugins.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

/// Events are decoded on a source's thread and dropped on a sink's: mimalloc handles such
/// cross-thread frees far better than glibc's allocator (measured: see the issue notes).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use weir_host::Plugin;
use weir_host::config::PipelineSpec;
use weir_host::discovery::{PluginPath, PluginRepository};
use weir_host::pipeline::Pipeline;
use weir_host::runtime::{RuntimeOptions, StopReason};

/// Weir: an event processor whose connectors are plugins.
///
/// Logs go to standard error; set RUST_LOG (for example RUST_LOG=debug or
/// RUST_LOG=weir_host=trace) to see more.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, long_about)]
struct Cli {
    /// A directory to look for plugins in (repeatable; searched before WEIR_PLUGIN_PATH and
    /// the directory of the weir executable).
    #[arg(long = "plugin-dir", value_name = "DIR", global = true)]
    plugin_dirs: Vec<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline file until its sources finish, a connector asks to stop, or Ctrl-C.
    ///
    /// On Ctrl-C or SIGTERM the pipeline drains: sources stop, every event in flight is
    /// delivered or failed back to its source (up to --drain-timeout), then every connector
    /// stops (up to --stop-timeout each; a connector stuck in a plugin call is abandoned and
    /// named). A second Ctrl-C or SIGTERM exits at once.
    ///
    /// Exit status: 0 after a clean run; 1 on configuration errors, when a connector failed
    /// for good, failed to stop (for example a final flush), had to be abandoned, or when
    /// draining timed out; 130 when a second signal forced the exit.
    Run {
        /// The pipeline file (TOML).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print every connector's metrics every SECS seconds (always printed at shutdown).
        #[arg(long, value_name = "SECS")]
        metrics_interval: Option<f64>,
        /// Longest time draining may take at shutdown before connectors are stopped anyway.
        #[arg(long, value_name = "SECS", default_value_t = 10.0)]
        drain_timeout: f64,
        /// Longest time each connector may take to stop (on_stop, dropping its state) before
        /// its thread is abandoned and the run exits anyway.
        #[arg(long, value_name = "SECS", default_value_t = 5.0)]
        stop_timeout: f64,
        /// Most events a source is asked for in one pull.
        #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
        batch_size: u32,
        /// Most events of one source awaiting their verdict before it is pulled again
        /// (bounds memory and queueing latency).
        #[arg(long, value_name = "N", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        max_in_flight: u32,
        /// Most bytes one source holds before more is routed or pulled: events awaiting their
        /// verdict plus unfinished frames in preprocessors (bounds memory whatever a pull
        /// expands to and however many streams a source has).
        #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, value_parser = clap::value_parser!(u64).range(1..))]
        max_in_flight_bytes: u64,
    },
    /// Validate a pipeline file without running it.
    ///
    /// Parses the file, resolves every plugin on the plugin path, checks the bindings, and
    /// has each plugin validate its connector's config. Every problem is printed with the
    /// file, line and column, and key path. Exits 0 when the pipeline is valid, 1 otherwise.
    Check {
        /// The pipeline file (TOML).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Inspect and validate plugin files.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// List the plugins found on the plugin path (--plugin-dir, WEIR_PLUGIN_PATH, and the
    /// directory of the weir executable), and the plugin files that were refused.
    List,
    /// Load and validate plugin files, and print what each says about itself.
    ///
    /// Each file goes through every load-time check (ELF symbol table, metadata, ABI version,
    /// layout fingerprint, panic strategy, pointers). Exits 0 when every file loads; otherwise
    /// prints one line `FILE: reason` per rejected file on standard error and exits 1.
    Inspect {
        /// Plugin files (shared libraries, e.g. target/debug/libmetronome.so).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let plugin_path = PluginPath::new(&cli.plugin_dirs);
    match cli.command {
        Command::Run {
            file,
            metrics_interval,
            drain_timeout,
            stop_timeout,
            batch_size,
            max_in_flight,
            max_in_flight_bytes,
        } => {
            let options = (|| {
                Ok::<_, String>(RuntimeOptions {
                    batch_size,
                    max_in_flight: max_in_flight as usize,
                    max_in_flight_bytes: usize::try_from(max_in_flight_bytes).unwrap_or(usize::MAX),
                    metrics_interval: metrics_interval
                        .map(|secs| positive_seconds("--metrics-interval", secs))
                        .transpose()?,
                    drain_timeout: positive_seconds("--drain-timeout", drain_timeout)?,
                    stop_timeout: positive_seconds("--stop-timeout", stop_timeout)?,
                    ..RuntimeOptions::default()
                })
            })();
            let options = match options {
                Ok(options) => options,
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(2);
                }
            };
            run(&file, &plugin_path, options)
        }
        Command::Check { file } => check(&file, &plugin_path),
        Command::Plugins(PluginsCommand::List) => list(&plugin_path),
        Command::Plugins(PluginsCommand::Inspect { files }) => inspect(&files),
    }
}

fn inspect(files: &[PathBuf]) -> ExitCode {
    let mut rejected = 0;
    for file in files {
        let started = Instant::now();
        match Plugin::load(file) {
            Ok(plugin) => {
                let elapsed = started.elapsed();
                let info = plugin.info();
                println!("{}", file.display());
                println!("  name:       {}", info.name);
                println!("  kind:       connector ({})", info.capabilities());
                println!("  version:    {}", info.version);
                println!(
                    "  abi:        connector {} (host {})",
                    info.abi,
                    weir_sdk::abi::CONNECTOR_ABI
                );
                println!("  sdk:        weir-sdk {}", info.sdk_version);
                println!("  target:     {}", info.target);
                println!("  loaded in:  {} µs", elapsed.as_micros());
            }
            Err(error) => {
                rejected += 1;
                eprintln!("{error}");
            }
        }
    }
    if rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn check(file: &std::path::Path, plugin_path: &PluginPath) -> ExitCode {
    let result = PipelineSpec::read(file)
        .and_then(|spec| Pipeline::resolve(spec, &PluginRepository::scan(plugin_path)));
    match result {
        Ok(pipeline) => {
            println!(
                "{}: ok ({} connector(s), {} binding(s))",
                file.display(),
                pipeline.spec.connectors.len(),
                pipeline.spec.bindings.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

fn list(plugin_path: &PluginPath) -> ExitCode {
    let repository = PluginRepository::scan(plugin_path);
    println!("plugin path:");
    for dir in plugin_path.dirs() {
        println!("  {}", dir.display());
    }
    println!("plugins:");
    for plugin in repository.plugins() {
        let info = plugin.info();
        println!(
            "  {:<12} {:<8} {:<12} {}",
            info.name,
            info.version,
            info.capabilities(),
            info.path.display()
        );
    }
    let refused: Vec<_> = repository
        .skipped()
        .iter()
        .filter(|s| {
            !matches!(
                s.error,
                weir_host::LoadError::MissingMetadataSymbol { .. }
                    | weir_host::LoadError::NotSharedObject { .. }
            )
        })
        .collect();
    if !refused.is_empty() {
        println!("refused:");
        for skipped in refused {
            println!("  {}", skipped.error);
        }
    }
    ExitCode::SUCCESS
}

fn positive_seconds(flag: &str, secs: f64) -> Result<std::time::Duration, String> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{flag} must be a positive number of seconds, found {secs}"))
}

fn run(file: &std::path::Path, plugin_path: &PluginPath, options: RuntimeOptions) -> ExitCode {
    let pipeline = match PipelineSpec::read(file)
        .and_then(|spec| Pipeline::resolve(spec, &PluginRepository::scan(plugin_path)))
    {
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
