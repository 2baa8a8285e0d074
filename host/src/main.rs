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
    /// delivered or failed back to its source, then sinks flush and report. Exits 0 after a
    /// clean run, 1 on configuration errors or when a connector failed for good.
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
        /// Most events a source is asked for in one pull.
        #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
        batch_size: u32,
        /// Most events of one source awaiting their verdict before it is pulled again
        /// (bounds memory and queueing latency).
        #[arg(long, value_name = "N", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        max_in_flight: u32,
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
            batch_size,
            max_in_flight,
        } => {
            let mut options = RuntimeOptions {
                batch_size,
                max_in_flight: max_in_flight as usize,
                ..RuntimeOptions::default()
            };
            match seconds("--metrics-interval", metrics_interval).and_then(|m| {
                options.metrics_interval = m;
                seconds("--drain-timeout", Some(drain_timeout))
            }) {
                Ok(drain) => options.drain_timeout = drain.unwrap_or(options.drain_timeout),
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(2);
                }
            }
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

fn seconds(flag: &str, value: Option<f64>) -> Result<Option<std::time::Duration>, String> {
    value
        .map(|secs| {
            std::time::Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("{flag} must be a positive number of seconds, found {secs}"))
        })
        .transpose()
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
    let report = runtime.block_on(weir_host::runtime::run(pipeline, options, interrupted()));
    let reason = match &report.reason {
        StopReason::Finished => "all sources finished".to_owned(),
        StopReason::Signal => "interrupted".to_owned(),
        StopReason::Requested { connector } => format!("connector `{connector}` asked to stop"),
    };
    tracing::info!(%reason, "pipeline stopped");
    let mut ok = true;
    for (connector, error) in &report.failed {
        eprintln!("error: connector `{connector}` failed for good: {error}");
        ok = false;
    }
    if report.drain_timed_out {
        eprintln!(
            "error: draining timed out: some events in flight were neither delivered nor failed back"
        );
        ok = false;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn interrupted() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            if let Err(error) = result {
                tracing::warn!(%error, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
        () = terminate => {}
    }
}
