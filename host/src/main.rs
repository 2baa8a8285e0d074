//! `weir`: the command-line host for Weir connector plugins.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use weir_host::Plugin;
use weir_host::config::PipelineSpec;
use weir_host::discovery::{PluginPath, PluginRepository};
use weir_host::pipeline::Pipeline;

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
        .init();
    let plugin_path = PluginPath::new(&cli.plugin_dirs);
    match cli.command {
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
