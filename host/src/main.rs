//! `weir`: the command-line host for Weir connector plugins.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use weir_host::Plugin;

/// Weir: an event processor whose connectors are plugins.
///
/// Logs go to standard error; set RUST_LOG (for example RUST_LOG=debug or
/// RUST_LOG=weir_host=trace) to see more.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect and validate plugin files.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
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
    match cli.command {
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
