//! `weir plugins list | doctor | inspect`: what is on the plugin path, and why a file is
//! refused.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use weir_host::Plugin;
use weir_host::config::PipelineSpec;
use weir_host::discovery::{FileStatus, PluginFile, PluginPath, PluginRepository};

use crate::Finder;

/// `println!` that ends the process quietly when standard output was closed (`| head`),
/// instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

/// Name, version, kind and ABI of a loaded file, `-` for each when it did not load.
fn describe(file: &PluginFile) -> [String; 4] {
    match &file.plugin {
        Some(plugin) => {
            let info = plugin.info();
            [
                info.name.clone(),
                info.version.clone(),
                format!("connector ({})", info.capabilities()),
                info.abi.to_string(),
            ]
        }
        None => ["-", "-", "-", "-"].map(str::to_owned),
    }
}

/// `weir plugins list`.
pub(crate) fn list(finder: &Finder, pipeline: Option<&Path>, json: bool) -> ExitCode {
    let pipeline_dirs = match pipeline.map(PipelineSpec::read).transpose() {
        Ok(spec) => spec.map(|s| s.plugin_path).unwrap_or_default(),
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let path = finder.path(&pipeline_dirs);
    let repository = PluginRepository::scan(&path);
    if json {
        let files: Vec<serde_json::Value> = repository.files().iter().map(file_json).collect();
        let document = serde_json::json!({
            "plugin_path": path.dirs(),
            "depth": path.max_depth(),
            "host_abi": weir_sdk::abi::CONNECTOR_ABI.to_string(),
            "files": files,
        });
        out!("{document}");
        return ExitCode::SUCCESS;
    }
    out!("plugin path (searched {} levels deep):", path.max_depth());
    for dir in path.dirs() {
        out!("  {}", dir.display());
    }
    if repository.files().is_empty() {
        out!("no plugin files found");
        return ExitCode::SUCCESS;
    }
    let rows: Vec<[String; 6]> = repository
        .files()
        .iter()
        .map(|file| {
            let [name, version, kind, abi] = describe(file);
            [
                name,
                version,
                kind,
                abi,
                file.path.display().to_string(),
                file.status.describe(),
            ]
        })
        .collect();
    let header = ["NAME", "VERSION", "KIND", "ABI", "FILE", "STATUS"];
    for line in crate::table::lines(header, &rows) {
        out!("{line}");
    }
    ExitCode::SUCCESS
}

fn file_json(file: &PluginFile) -> serde_json::Value {
    let (status, reason) = match &file.status {
        FileStatus::Ok => ("ok", None),
        FileStatus::Incompatible(error) => ("incompatible", Some(error.reason())),
        FileStatus::NotAPlugin(error) => ("not a plugin", Some(error.reason())),
        FileStatus::Unreadable(error) => ("unreadable", Some(error.reason())),
        FileStatus::Shadowed { by } => ("shadowed", Some(format!("shadowed by {}", by.display()))),
    };
    let mut object = serde_json::json!({
        "file": file.path,
        "status": status,
    });
    if let Some(reason) = reason {
        object["reason"] = reason.into();
    }
    if let FileStatus::Shadowed { by } = &file.status {
        object["shadowed_by"] = serde_json::json!(by);
    }
    if let Some(plugin) = &file.plugin {
        let info = plugin.info();
        object["name"] = info.name.clone().into();
        object["version"] = info.version.clone().into();
        object["kind"] = "connector".into();
        object["capabilities"] = info.capabilities().into();
        object["abi"] = info.abi.to_string().into();
        object["sdk_version"] = info.sdk_version.clone().into();
        object["builtin"] = plugin.is_builtin().into();
    }
    object
}

/// `weir plugins doctor`.
pub(crate) fn doctor(finder: &Finder, paths: &[PathBuf]) -> ExitCode {
    let mut repository = PluginRepository::default();
    // Files named on the command line must be plugins; files found in directories may be
    // anything.
    let mut named = Vec::new();
    if paths.is_empty() {
        repository = PluginRepository::scan(&finder.path(&[]));
    } else {
        for path in paths {
            if path.is_dir() {
                let dir = PluginPath::from_dirs([path.clone()]).depth(finder.depth());
                for file in dir.files() {
                    repository.add_file(file);
                }
            } else {
                named.push(path.clone());
                repository.add_file(path.clone());
            }
        }
    }
    if repository.files().is_empty() {
        out!("no plugin files found");
        return ExitCode::SUCCESS;
    }
    let mut healthy = true;
    for file in repository.files() {
        let [name, version, kind, abi] = describe(file);
        match &file.status {
            FileStatus::Ok => out!(
                "{}: ok: {name} {version}, {kind}, ABI {abi}",
                file.path.display()
            ),
            FileStatus::Shadowed { by } if file.plugin.as_ref().is_some_and(Plugin::is_builtin) => {
                out!(
                    "{}: {name} {version} is also in {}, which is used instead of the built-in",
                    file.path.display(),
                    by.display()
                )
            }
            FileStatus::Shadowed { by } => out!(
                "{}: {name} {version} is also in {}, which comes first on the plugin path: \
                 this copy is not used",
                file.path.display(),
                by.display()
            ),
            FileStatus::Incompatible(error)
            | FileStatus::NotAPlugin(error)
            | FileStatus::Unreadable(error) => {
                let incompatible = matches!(
                    file.status,
                    FileStatus::Incompatible(_) | FileStatus::Unreadable(_)
                );
                if incompatible || named.contains(&file.path) {
                    healthy = false;
                }
                let advice = error.advice();
                out!("{}: {}", file.path.display(), file.status.describe());
                out!("  for you:            {}", advice.user);
                out!("  for its author:     {}", advice.author);
            }
        }
    }
    if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `weir plugins inspect`.
pub(crate) fn inspect(files: &[PathBuf]) -> ExitCode {
    let mut rejected = 0;
    // The built-ins of this weir, for an argument that names one rather than a file.
    let builtins = PluginRepository::scan(&PluginPath::from_dirs([]));
    for file in files {
        let started = Instant::now();
        let builtin = file
            .to_str()
            .filter(|_| !file.exists())
            .and_then(|name| builtins.get(name));
        if let Some(plugin) = builtin {
            let info = plugin.info();
            out!("{} (built in)", info.name);
            out!("  name:       {}", info.name);
            out!("  kind:       connector ({})", info.capabilities());
            out!("  version:    {}", info.version);
            out!(
                "  abi:        connector {} (linked into this weir)",
                info.abi
            );
            out!("  sdk:        weir-sdk {}", info.sdk_version);
            continue;
        }
        match Plugin::load(file) {
            Ok(plugin) => {
                let elapsed = started.elapsed();
                let info = plugin.info();
                out!("{}", file.display());
                out!("  name:       {}", info.name);
                out!("  kind:       connector ({})", info.capabilities());
                out!("  version:    {}", info.version);
                out!(
                    "  abi:        connector {} (host {})",
                    info.abi,
                    weir_sdk::abi::CONNECTOR_ABI
                );
                out!("  sdk:        weir-sdk {}", info.sdk_version);
                out!("  target:     {}", info.target);
                out!("  loaded in:  {} µs", elapsed.as_micros());
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

/// How `weir plugins test --as` binds the connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BoundAs {
    /// Events flow from it.
    Source,
    /// Events flow to it.
    Sink,
    /// Both.
    Both,
}

/// `--call-bound-ms` by default: the suite's own default.
pub(crate) const DEFAULT_CALL_BOUND_MS: u64 =
    weir_host::testing::conformance::DEFAULT_CALL_BOUND.as_millis() as u64;

/// `weir plugins test FILE`: the conformance suite on a plugin file.
pub(crate) fn test(
    file: &Path,
    config: Option<String>,
    config_file: Option<&Path>,
    bound_as: Option<BoundAs>,
    call_bound: std::time::Duration,
    min_events: usize,
) -> ExitCode {
    use weir_host::Sides;
    use weir_host::testing::{Harness, conformance::Suite};

    let (source, text) = match (config, config_file) {
        (Some(config), _) => (Path::new("--config"), config),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(config) => (path, config),
            Err(error) => {
                eprintln!("error: cannot read {}: {error}", path.display());
                return ExitCode::from(2);
            }
        },
        (None, None) => (Path::new("--config"), String::new()),
    };
    let config = match weir_host::config::connector_config(source, &text) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("error: the config is not valid:\n{errors}");
            return ExitCode::from(2);
        }
    };
    let plugin = match Plugin::load(file) {
        Ok(plugin) => plugin,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let info = plugin.info().clone();
    let sides = match bound_as {
        Some(BoundAs::Source) => Sides::SOURCE,
        Some(BoundAs::Sink) => Sides::SINK,
        Some(BoundAs::Both) => Sides::BOTH,
        None => Sides {
            source: info.is_source,
            sink: info.is_sink,
        },
    };
    if (sides.source && !info.is_source) || (sides.sink && !info.is_sink) {
        eprintln!(
            "error: {} cannot be bound that way: plugin `{}` is {}",
            file.display(),
            info.name,
            info.capabilities()
        );
        return ExitCode::from(2);
    }
    let builder = Harness::plugin(plugin).config_json(config).bound_as(sides);
    let suite = Suite::new().call_bound(call_bound).min_events(min_events);
    match suite.run(builder) {
        Ok(report) => {
            out!("{}", report.to_string().trim_end());
            ExitCode::SUCCESS
        }
        Err(failed) => {
            out!("{}", failed.to_string().trim_end());
            ExitCode::FAILURE
        }
    }
}
