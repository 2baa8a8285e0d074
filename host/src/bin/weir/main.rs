//! `weir`: the command-line host for Weir connector plugins.

mod admin;
mod builtins;
mod new;
mod plugins;
mod run;
mod table;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use weir_host::config::{ConfigErrors, PipelineSpec};
use weir_host::discovery::{PluginPath, PluginRepository};
use weir_host::pipeline::Pipeline;
use weir_host::runtime::RuntimeOptions;

/// Events are decoded on a source's thread and dropped on a sink's: mimalloc handles such
/// cross-thread frees far better than glibc's allocator (measured: see the issue notes).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Weir: an event processor whose connectors are plugins.
///
/// Logs go to standard error; set RUST_LOG (for example RUST_LOG=debug or
/// RUST_LOG=weir_host=trace) to see more.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, long_about)]
struct Cli {
    /// A directory to look for plugins in (repeatable; searched first, then
    /// WEIR_PLUGIN_PATH, then the pipeline file's `plugin_path`, then the directory of the
    /// weir executable).
    #[arg(long = "plugin-dir", value_name = "DIR", global = true)]
    plugin_dirs: Vec<PathBuf>,

    /// How many levels of subdirectories of each plugin directory are searched (0: only
    /// the directory itself).
    #[arg(long, value_name = "N", global = true, default_value_t = PluginPath::DEFAULT_DEPTH as u8,
          value_parser = clap::value_parser!(u8).range(0..=PluginPath::MAX_DEPTH as i64))]
    plugin_depth: u8,

    /// The admin socket of a running weir (`weir run` listens on it; `weir status`,
    /// `weir apply` and `weir plugins load|unload|reload` talk to it). Default:
    /// $XDG_RUNTIME_DIR/weir/admin.sock, or weir-UID/admin.sock in the temporary directory.
    #[arg(long, value_name = "PATH", global = true)]
    admin_socket: Option<PathBuf>,

    /// Use plugin files only: ignore the connectors compiled into this weir (a build with
    /// the `builtins` feature links the bundled ones in; see `weir plugins list`).
    #[arg(long, global = true)]
    no_builtins: bool,

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
        #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        max_in_flight: u32,
        /// Most bytes one source holds before more is routed or pulled: events awaiting their
        /// verdict plus unfinished frames in preprocessors (bounds memory whatever a pull
        /// expands to and however many streams a source has).
        #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, value_parser = clap::value_parser!(u64).range(1..))]
        max_in_flight_bytes: u64,
        /// Open no admin socket.
        #[arg(long, conflicts_with = "admin_socket")]
        no_admin_socket: bool,
        /// Watch the plugin path: a plugin file that appears is loaded, and a new build or
        /// version of a plugin that connectors run upgrades them without losing an event
        /// (as `weir plugins reload`). Files are looked at once they stop changing.
        #[arg(long)]
        watch: bool,
        /// Where connectors run unless their `isolation` key says: `none`, in this process;
        /// `process`, each plugin connector in a child process of its own, where a crash
        /// (segfault, abort, stack overflow, exit, a call that hangs past its
        /// `call_timeout_ms`) restarts it instead of ending the run.
        #[arg(long, value_enum, default_value_t = Isolation::None)]
        isolation: Isolation,
    },
    /// Change a running weir's pipeline to the one in FILE, without a restart.
    ///
    /// Connectors are matched by id. New ones start; removed ones are unbound, drain (what
    /// they produced gets its verdict, what waits for them is delivered) and stop; changed
    /// ones (plugin, version, config, codec, processors, restart settings) are replaced as
    /// by `weir plugins reload`: the new instance connects while the old one runs, then
    /// the old one drains, so no event is lost; connectors whose bindings changed are
    /// rewired in place; the others keep running. The file is checked whole first: on any
    /// error nothing changes. A connector cannot turn from source to sink in place (give
    /// it a new id). `plugin_path` is read at start only.
    ///
    /// Exit status: 0 when every change was made, 1 otherwise (the message says which).
    Apply {
        /// The pipeline file (TOML).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The answer as JSON, for tools.
        #[arg(long)]
        json: bool,
    },
    /// Show the connectors of a running weir: plugin, version, file, state and counters.
    Status {
        /// The answer as JSON, for tools.
        #[arg(long)]
        json: bool,
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
    /// Start something new from a template.
    #[command(subcommand)]
    New(NewCommand),
}

#[derive(Debug, Subcommand)]
enum NewCommand {
    /// Create a connector plugin crate that builds, loads and passes its tests as it is:
    /// Cargo.toml, the connector with a typed config (src/lib.rs) and its unit tests, a
    /// README, and a pipeline file that runs it with a bundled connector.
    ///
    /// When this weir was built from a checkout that is still there, the crate depends on
    /// that checkout's weir-sdk by path (pinned to this weir's sdk version); otherwise on
    /// the weir-sdk version of this weir.
    Plugin {
        /// The plugin's (and the crate's) name: lowercase letters, digits, `-` and `_`.
        #[arg(value_name = "NAME")]
        name: String,
        /// A source: produces events (the default).
        #[arg(long, conflicts_with_all = ["sink", "both"])]
        source: bool,
        /// A sink: consumes events.
        #[arg(long, conflicts_with = "both")]
        sink: bool,
        /// Both a source and a sink.
        #[arg(long)]
        both: bool,
        /// Where to create it (a new or empty directory). Default: ./NAME.
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// List every file found on the plugin path: name, version, kind, ABI and status
    /// (`ok`, `incompatible: <reason>`, `not a plugin: <reason>`, `cannot read: <reason>`,
    /// `shadowed by <file>`).
    List {
        /// One JSON object per file, on one line each, for tools.
        #[arg(long)]
        json: bool,
        /// Also search a pipeline file's `plugin_path`.
        #[arg(long, value_name = "FILE")]
        pipeline: Option<PathBuf>,
    },
    /// Explain why plugin files are refused, with a hint for you and one for the plugin's
    /// author. Without arguments, every file on the plugin path.
    ///
    /// Exits 0 when every plugin file given (or found) is usable, 1 otherwise.
    Doctor {
        /// Plugin files, or directories to search (as deep as --plugin-depth).
        #[arg(value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
    /// Load a plugin file into a running weir, from a private copy (it can then be
    /// reloaded to, or pinned by a pipeline).
    Load {
        /// The plugin file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Forget a plugin version in a running weir (refused while a connector runs it).
    Unload {
        /// NAME@VERSION.
        #[arg(value_name = "NAME@VERSION")]
        plugin: String,
    },
    /// Upgrade every connector of a running weir that runs plugin NAME to the build its
    /// `plugin = "..."` now resolves to on the plugin path, without losing an event: the new
    /// instance connects first, the old one drains and stops; if the new one cannot start,
    /// the old one keeps running and the error is printed.
    Reload {
        /// The plugin's name.
        #[arg(value_name = "NAME")]
        plugin: String,
    },
    /// Load and validate plugin files, and print what each says about itself (or, for the
    /// name of a connector built into this weir, what it is).
    ///
    /// Each file goes through every load-time check (ELF symbol table, metadata, ABI version,
    /// layout fingerprint, panic strategy, pointers). Exits 0 when every file loads; otherwise
    /// prints one line `FILE: reason` per rejected file on standard error and exits 1.
    Inspect {
        /// Plugin files (shared libraries, e.g. target/debug/libmetronome.so), or names of
        /// built-ins.
        #[arg(required = true, value_name = "FILE|BUILTIN")]
        files: Vec<PathBuf>,
    },
    /// Run the conformance suite on a plugin file, in this process, through the entry points
    /// a pipeline calls: lifecycle in order, no call blocking past a bound, no more events
    /// than asked for, acks and fails taken, a drain with events in flight, a sink that acks.
    /// Exits 0 if it passes, 1 if a check fails, 2 if the plugin cannot be loaded or the
    /// config is not valid TOML.
    Test {
        /// The plugin file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The connector's config, as in a pipeline file's `[connector.config]` table
        /// (e.g. 'count = 5'). Empty by default.
        #[arg(long, value_name = "TOML", conflicts_with = "config_file")]
        config: Option<String>,
        /// Read the config from a file instead (the same TOML).
        #[arg(long, value_name = "FILE")]
        config_file: Option<PathBuf>,
        /// How a pipeline binds it (default: every way it can be bound).
        #[arg(long = "as", value_name = "SIDES")]
        bound_as: Option<plugins::BoundAs>,
        /// How long any one call may take, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = plugins::DEFAULT_CALL_BOUND_MS)]
        call_bound_ms: u64,
        /// How many events a source must produce (0 for one that may be silent).
        #[arg(long, value_name = "N", default_value_t = 1)]
        min_events: usize,
    },
}

/// No transparent huge pages for this process. mimalloc asks for them on its arenas, and
/// with a thread per connector each thread's heap then fills a 2 MiB huge page of its own:
/// 2,000 idle connectors took 1.5 GB of RSS, 243 MB without (and the benchmark pipelines
/// ran no slower, measured side by side). The flag is inherited by child processes.
fn no_transparent_huge_pages() {
    let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
    // SAFETY: `PR_SET_THP_DISABLE` only sets a flag on this process; no memory is touched.
    // The kernel reads the arguments as `unsigned long`, which they are.
    let set = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused) };
    if set != 0 {
        // Not fatal: memory per connector is larger, nothing else changes.
        eprintln!(
            "warning: cannot turn transparent huge pages off: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Where connectors run (`weir run --isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Isolation {
    /// In this process.
    None,
    /// Each in a child process of its own.
    Process,
}

fn main() -> ExitCode {
    no_transparent_huge_pages();
    // The plugin-host mode: this process was started by a weir to run one connector out of
    // process (`isolation = "process"`). Not a command for users, so not in `--help`.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == weir_host::CHILD_ARG)
    {
        init_logging();
        return ExitCode::from(u8::try_from(weir_host::serve_child()).unwrap_or(2));
    }
    let cli = Cli::parse();
    init_logging();
    let bundled = builtins::bundled();
    if !cli.no_builtins
        && !bundled.is_empty()
        && let Err(error) = weir_host::discovery::register_builtins(bundled)
    {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    let finder = Finder {
        plugin_dirs: cli.plugin_dirs,
        depth: usize::from(cli.plugin_depth),
    };
    match cli.command {
        Command::Run {
            file,
            metrics_interval,
            drain_timeout,
            stop_timeout,
            batch_size,
            max_in_flight,
            max_in_flight_bytes,
            no_admin_socket,
            watch,
            isolation,
        } => {
            let options = (|| {
                Ok::<_, String>(RuntimeOptions {
                    batch_size,
                    child_program: std::env::current_exe().ok(),
                    isolate_by_default: isolation == Isolation::Process,
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
            let socket = match (&cli.admin_socket, no_admin_socket) {
                (_, true) => run::AdminSocket::Off,
                (Some(path), false) => run::AdminSocket::At(path.clone()),
                (None, false) => run::AdminSocket::Default,
            };
            run::run(&file, &finder, options, &socket, watch)
        }
        Command::Check { file } => check(&file, &finder),
        Command::New(NewCommand::Plugin {
            name,
            source: _,
            sink,
            both,
            path,
        }) => {
            let sides = match (sink, both) {
                (_, true) => new::Sides::Both,
                (true, false) => new::Sides::Sink,
                (false, false) => new::Sides::Source,
            };
            new::plugin(&name, sides, path.as_deref())
        }
        Command::Plugins(PluginsCommand::List { json, pipeline }) => {
            plugins::list(&finder, pipeline.as_deref(), json)
        }
        Command::Plugins(PluginsCommand::Doctor { paths }) => plugins::doctor(&finder, &paths),
        Command::Plugins(PluginsCommand::Inspect { files }) => plugins::inspect(&files),
        Command::Plugins(PluginsCommand::Test {
            file,
            config,
            config_file,
            bound_as,
            call_bound_ms,
            min_events,
        }) => plugins::test(
            &file,
            config,
            config_file.as_deref(),
            bound_as,
            std::time::Duration::from_millis(call_bound_ms),
            min_events,
        ),
        Command::Status { json } => admin::status(&admin_socket(&cli.admin_socket), json),
        Command::Apply { file, json } => {
            if !finder.plugin_dirs.is_empty() {
                eprintln!(
                    "warning: --plugin-dir has no effect on `weir apply`: the running weir \
                     resolves plugins on its own plugin path"
                );
            }
            let file = std::path::absolute(&file).unwrap_or(file);
            admin::apply(&admin_socket(&cli.admin_socket), &file, json)
        }
        Command::Plugins(PluginsCommand::Load { file }) => {
            let file = std::path::absolute(&file).unwrap_or(file);
            admin::plugins(
                &admin_socket(&cli.admin_socket),
                weir_host::admin::protocol::Request::Load {
                    file: file.display().to_string(),
                },
            )
        }
        Command::Plugins(PluginsCommand::Unload { plugin }) => admin::plugins(
            &admin_socket(&cli.admin_socket),
            weir_host::admin::protocol::Request::Unload { plugin },
        ),
        Command::Plugins(PluginsCommand::Reload { plugin }) => admin::plugins(
            &admin_socket(&cli.admin_socket),
            weir_host::admin::protocol::Request::Reload { plugin },
        ),
    }
}

/// The admin socket path: the one given, or the default.
fn admin_socket(given: &Option<PathBuf>) -> PathBuf {
    given
        .clone()
        .unwrap_or_else(weir_host::admin::default_socket_path)
}

/// Where plugins are looked for, as the command line says.
pub(crate) struct Finder {
    plugin_dirs: Vec<PathBuf>,
    depth: usize,
}

impl Finder {
    /// How many levels of subdirectories are searched.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// The plugin path, with a pipeline file's own `plugin_path` directories.
    pub(crate) fn path(&self, pipeline_dirs: &[PathBuf]) -> PluginPath {
        PluginPath::with_pipeline_dirs(&self.plugin_dirs, pipeline_dirs).depth(self.depth)
    }
}

/// Reads `file`, finds the plugins on its plugin path and resolves the pipeline.
pub(crate) fn load_pipeline(file: &Path, finder: &Finder) -> Result<Pipeline, ConfigErrors> {
    let spec = PipelineSpec::read(file)?;
    let repository = PluginRepository::scan(&finder.path(&spec.plugin_path));
    repository.warn_refused();
    Pipeline::resolve(spec, &repository)
}

fn check(file: &Path, finder: &Finder) -> ExitCode {
    match load_pipeline(file, finder) {
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

fn positive_seconds(flag: &str, secs: f64) -> Result<std::time::Duration, String> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{flag} must be a positive number of seconds, found {secs}"))
}

/// The process's `tracing` log: to standard error, at the level `RUST_LOG` says (warnings
/// by default).
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
