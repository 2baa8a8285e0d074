//! What the admin socket's commands do, against the running pipeline and its plugins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::protocol::{ErrorKind, Request, Response};
use crate::config::PipelineSpec;
use crate::discovery::{FileStatus, PluginPath, PluginRepository};
use crate::loader::{Plugin, PluginInfo};
use crate::pipeline::Pipeline;
use crate::runtime::{Applied, ConnectorStatus, Controller, Upgraded};

/// The admin side of one run: the pipeline's controller and the plugins it can draw on.
#[derive(Debug)]
pub struct Admin {
    controller: Controller,
    state: tokio::sync::Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Size and modification time of each plugin file when it was last loaded, so that a
    /// watch event on a file that did not change (a touch, a second event of one write)
    /// does not reload anything.
    stamps: BTreeMap<PathBuf, (u64, std::time::SystemTime)>,
    repository: PluginRepository,
    path: PluginPath,
    images: PathBuf,
    /// Each connector's `plugin = "..."`, as written (a reload resolves it again).
    references: BTreeMap<String, String>,
    /// The running pipeline's `plugin_path` (read at start only).
    pipeline_path: Vec<PathBuf>,
    /// Plugins loaded with `weir plugins load` (not necessarily from the plugin path): every
    /// rescan adds them again, as they were loaded, so that a reload or an apply still
    /// finds them (even if their file changed or went since).
    loaded: Vec<Plugin>,
}

impl State {
    /// What a rescan finds: the plugin path, then the plugins loaded by command from files
    /// not on it. Blocking: run it off the runtime's thread.
    fn rescanner(&self) -> impl FnOnce() -> PluginRepository + Send + 'static {
        let (path, images, loaded) = (self.path.clone(), self.images.clone(), self.loaded.clone());
        move || {
            let mut repository = PluginRepository::scan_copies(&path, &images);
            for plugin in loaded {
                // A file on the path was loaded again by the scan itself.
                if repository.file(&plugin.info().path).is_none() {
                    repository.add(plugin);
                }
            }
            repository
        }
    }
}

/// `file`, opened, if it is a regular file of pipeline size; without blocking on it (a
/// FIFO would wait for a writer): opened non-blocking, then looked at through the
/// descriptor (non-blocking changes nothing for reading a regular file).
fn regular_file(file: &std::path::Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(file)
        .map_err(|e| format!("cannot read: {e}"))?;
    let metadata = opened.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if !metadata.is_file() {
        return Err("not a regular file (a pipeline file is read whole)".to_owned());
    }
    if metadata.len() > PipelineSpec::MAX_FILE_SIZE {
        return Err(format!(
            "{} bytes: larger than {} MiB, not a pipeline file",
            metadata.len(),
            PipelineSpec::MAX_FILE_SIZE >> 20
        ));
    }
    Ok(opened)
}

/// Size and modification time of a file.
fn stamp(file: &std::path::Path) -> Option<(u64, std::time::SystemTime)> {
    let metadata = std::fs::metadata(file).ok()?;
    Some((metadata.len(), metadata.modified().ok()?))
}

fn stamps(repository: &PluginRepository) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    repository
        .files()
        .iter()
        .filter(|f| !f.plugin.as_ref().is_some_and(Plugin::is_builtin))
        .filter_map(|f| Some((f.path.clone(), stamp(&f.path)?)))
        .collect()
}

fn plugin_json(info: &PluginInfo) -> serde_json::Value {
    json!({
        "plugin": info.name,
        "version": info.version,
        "file": info.path,
        "abi": info.abi.to_string(),
    })
}

fn upgraded_json(done: &Upgraded) -> serde_json::Value {
    json!({
        "connector": done.connector,
        "from": plugin_json(&done.from),
        "to": plugin_json(&done.to),
        "failed_back": done.failed_back,
    })
}

fn applied_json(applied: &Applied) -> serde_json::Value {
    json!({
        "started": applied.started,
        "stopped": applied.stopped,
        "replaced": applied.replaced.iter().map(upgraded_json).collect::<Vec<_>>(),
        "rewired": applied.rewired,
        "unchanged": applied.unchanged,
        "failed": applied.failed.iter().map(|(id, why)| json!({ "connector": id, "error": why })).collect::<Vec<_>>(),
    })
}

fn status_json(status: &ConnectorStatus) -> serde_json::Value {
    let m = &status.metrics;
    json!({
        "id": status.id,
        "plugin": status.plugin.name,
        "version": status.plugin.version,
        "file": status.plugin.path,
        "state": status.state,
        "metrics": {
            "in": m.events_in,
            "in_failed": m.events_failed,
            "out": m.events_out,
            "err": m.events_err,
            "acks": m.acks,
            "fails": m.fails,
            "restarts": m.restarts,
            "circuit": if m.circuit_closed { "closed" } else { "open" },
        },
    })
}

impl Admin {
    /// The admin of a run of `pipeline`, whose plugins were found on `path` (loaded from
    /// private copies in `images`, where reloads put theirs too).
    pub fn new(
        controller: Controller,
        pipeline: &PipelineSpec,
        repository: PluginRepository,
        path: PluginPath,
        images: PathBuf,
    ) -> Self {
        let references = pipeline
            .connectors
            .iter()
            .map(|c| (c.id.clone(), c.plugin.clone()))
            .collect();
        Self {
            controller,
            state: tokio::sync::Mutex::new(State {
                stamps: stamps(&repository),
                repository,
                path,
                images,
                references,
                pipeline_path: pipeline.plugin_path.clone(),
                loaded: Vec::new(),
            }),
        }
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request) -> Response {
        match request {
            Request::Status {} => match self.controller.status().await {
                Some(statuses) => Response::ok(json!({
                    "connectors": statuses.iter().map(status_json).collect::<Vec<_>>(),
                })),
                None => Response::error(ErrorKind::NotRunning, "the pipeline has stopped"),
            },
            Request::Load { file } => self.load(file).await,
            Request::Unload { plugin } => self.unload(&plugin).await,
            Request::Reload { plugin } => self.reload(&plugin).await,
            Request::Apply { file } => self.apply(PathBuf::from(file)).await,
        }
    }

    /// A plugin file appeared or changed on the plugin path (`--watch`): if it is a build
    /// of a plugin that connectors run, other than the one they run, they are upgraded
    /// (as by `reload`); otherwise it is made available.
    pub async fn file_changed(&self, file: &std::path::Path) {
        let images = {
            let mut state = self.state.lock().await;
            let now = stamp(file);
            if now.is_none() || state.stamps.get(file) == now.as_ref() {
                return; // Gone, or as it was when last loaded.
            }
            state.stamps.insert(file.to_owned(), now.expect("checked"));
            state.images.clone()
        };
        let loaded = {
            let file = file.to_owned();
            tokio::task::spawn_blocking(move || crate::loader::Plugin::load_copy(file, &images))
                .await
        };
        let Ok(loaded) = loaded else {
            tracing::warn!(file = %file.display(), "plugin watch: loading failed");
            return;
        };
        let plugin = match loaded {
            Ok(plugin) => plugin,
            Err(error) if error.is_not_a_plugin() => {
                tracing::debug!(%error, "plugin watch: not a plugin (or not written whole yet)");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "plugin watch: refused");
                return;
            }
        };
        let Some(statuses) = self.controller.status().await else {
            return;
        };
        let info = plugin.info();
        // A connector runs another version, an older build of this file, or the built-in
        // (which a file of the same name and version replaces).
        let differs = statuses.iter().any(|s| {
            s.plugin.name == info.name
                && (s.plugin.version != info.version
                    || s.plugin.path == info.path
                    || s.plugin.path == Path::new(crate::BUILTIN_PATH))
        });
        if differs {
            tracing::info!(file = %file.display(), plugin = %info.name, version = %info.version, "plugin watch: new build of a plugin in use: reloading");
            let response = self.reload(&info.name).await;
            match (&response.error, &response.result) {
                (Some(error), _) => {
                    tracing::warn!(plugin = %info.name, "plugin watch: reload failed: {}", error.message);
                }
                (None, Some(result)) => {
                    tracing::info!(plugin = %info.name, %result, "plugin watch: reloaded");
                }
                (None, None) => {}
            }
        } else {
            tracing::info!(file = %file.display(), plugin = %info.name, version = %info.version, "plugin watch: plugin available");
            self.state.lock().await.repository.add(plugin);
        }
    }

    async fn load(&self, file: String) -> Response {
        let mut state = self.state.lock().await;
        // Off the runtime's thread: loading runs plugin code (library constructors), which
        // must not stall the pipeline's shutdown or the other requests.
        let (path, images) = (PathBuf::from(&file), state.images.clone());
        let loaded = tokio::task::spawn_blocking(move || Plugin::load_copy(&path, &images)).await;
        let plugin = match loaded {
            Ok(Ok(plugin)) => plugin,
            Ok(Err(error)) => {
                let status = FileStatus::refused(error);
                return Response::error(
                    ErrorKind::LoadFailed,
                    format!("{file}: {}", status.describe()),
                );
            }
            Err(error) => {
                return Response::error(
                    ErrorKind::LoadFailed,
                    format!("{file}: loading failed: {error}"),
                );
            }
        };
        match state.repository.add(plugin.clone()) {
            FileStatus::Shadowed { by } => Response::ok(json!({
                "plugin": plugin.name(),
                "version": plugin.info().version,
                "file": file,
                "shadowed_by": by,
            })),
            _ => {
                // Kept for rescans (a shadowed copy is not usable, and is not kept).
                state.loaded.retain(|p| {
                    p.info().path != plugin.info().path || p.info().version != plugin.info().version
                });
                state.loaded.push(plugin.clone());
                Response::ok(plugin_json(plugin.info()))
            }
        }
    }

    async fn unload(&self, reference: &str) -> Response {
        let Some((name, version)) = reference.split_once('@') else {
            return Response::error(
                ErrorKind::BadRequest,
                format!("`{reference}`: name the version to unload, as NAME@VERSION"),
            );
        };
        // Locked before looking at what runs: an apply cannot start a user in between.
        let mut state = self.state.lock().await;
        let Some(statuses) = self.controller.status().await else {
            return Response::error(ErrorKind::NotRunning, "the pipeline has stopped");
        };
        let users: Vec<&str> = statuses
            .iter()
            .filter(|s| s.plugin.name == name && s.plugin.version == version)
            .map(|s| s.id.as_str())
            .collect();
        if !users.is_empty() {
            return Response::error(
                ErrorKind::InUse,
                format!(
                    "{name} {version} runs connector(s) {}: reload them to another version first",
                    users.join(", ")
                ),
            );
        }
        match state.repository.remove(name, version) {
            Some(plugin) => {
                // Unloaded for good: a rescan does not bring back what was loaded by command.
                let info = plugin.info();
                state
                    .loaded
                    .retain(|p| p.name() != info.name || p.info().version != info.version);
                Response::ok(plugin_json(info))
            }
            None => Response::error(
                ErrorKind::UnknownPlugin,
                format!("no plugin {name} {version} is loaded"),
            ),
        }
    }

    /// `weir apply`: the file is read and resolved (every error found before anything
    /// changes), against the plugins loaded, or against a fresh scan of the plugin path if
    /// it names a plugin not loaded yet; then the runtime applies it.
    async fn apply(&self, file: PathBuf) -> Response {
        let opened = match regular_file(&file) {
            Ok(opened) => opened,
            Err(why) => {
                return Response::error(
                    ErrorKind::InvalidPipeline,
                    format!("nothing was changed: {}: {why}", file.display()),
                );
            }
        };
        // Reading and resolving (plugin constructors run to validate configs) happen off
        // the runtime's thread, which also runs the pipeline's shutdown. What is read is
        // the file that was checked (not whatever the path names by then).
        let read = {
            let file = file.clone();
            tokio::task::spawn_blocking(move || PipelineSpec::read_from(&file, opened)).await
        };
        let spec = match read {
            Ok(Ok(spec)) => spec,
            Ok(Err(errors)) => {
                return Response::error(
                    ErrorKind::InvalidPipeline,
                    format!("nothing was changed:\n{errors}"),
                );
            }
            Err(error) => {
                return Response::error(
                    ErrorKind::InvalidPipeline,
                    format!(
                        "nothing was changed: reading {} failed: {error}",
                        file.display()
                    ),
                );
            }
        };
        let mut state = self.state.lock().await;
        let mut warnings = Vec::new();
        if spec.plugin_path != state.pipeline_path {
            warnings.push(
                "`plugin_path` changed: it is read at start only (restart to use it)".to_owned(),
            );
        }
        let unknown = spec
            .connectors
            .iter()
            .any(|c| state.repository.resolve(&c.plugin).is_err());
        let references: BTreeMap<String, String> = spec
            .connectors
            .iter()
            .map(|c| (c.id.clone(), c.plugin.clone()))
            .collect();
        // The repository goes to the blocking thread and comes back (the state stays
        // locked meanwhile, so nobody misses it).
        let rescan = state.rescanner();
        let loaded = std::mem::take(&mut state.repository);
        let resolved = tokio::task::spawn_blocking(move || {
            let fresh = unknown.then(rescan);
            let resolved = Pipeline::resolve(spec, fresh.as_ref().unwrap_or(&loaded));
            (loaded, fresh, resolved)
        })
        .await;
        let (loaded, fresh, resolved) = match resolved {
            Ok(done) => done,
            Err(error) => {
                // The repository was lost with the task: scan again.
                state.repository = state.rescanner()();
                return Response::error(
                    ErrorKind::InvalidPipeline,
                    format!(
                        "nothing was changed: checking {} failed: {error}",
                        file.display()
                    ),
                );
            }
        };
        state.repository = loaded;
        let pipeline = match resolved {
            Ok(pipeline) => pipeline,
            Err(errors) => {
                return Response::error(
                    ErrorKind::InvalidPipeline,
                    format!("nothing was changed:\n{errors}"),
                );
            }
        };
        if let Some(fresh) = fresh {
            state.stamps = stamps(&fresh);
            state.repository = fresh;
        }
        let applied = match self.controller.apply(pipeline).await {
            Ok(applied) => applied,
            Err(why) => {
                return Response::error(
                    ErrorKind::ApplyRefused,
                    format!("nothing was changed: {why}"),
                );
            }
        };
        state.references = references;
        let mut result = applied_json(&applied);
        result["warnings"] = json!(warnings);
        if applied.failed.is_empty() {
            Response::ok(result)
        } else {
            let message = applied
                .failed
                .iter()
                .map(|(id, why)| format!("{id}: {why}"))
                .collect::<Vec<_>>()
                .join("; ");
            let mut response = Response::error(
                ErrorKind::ApplyIncomplete,
                format!("applied, except: {message}"),
            );
            response.result = Some(result);
            response
        }
    }

    async fn reload(&self, name: &str) -> Response {
        let Some(statuses) = self.controller.status().await else {
            return Response::error(ErrorKind::NotRunning, "the pipeline has stopped");
        };
        let mut state = self.state.lock().await;
        // Off the runtime's thread: loading runs plugin code (library constructors).
        let fresh = match tokio::task::spawn_blocking(state.rescanner()).await {
            Ok(fresh) => fresh,
            Err(error) => {
                return Response::error(
                    ErrorKind::LoadFailed,
                    format!("scanning the plugin path failed: {error}"),
                );
            }
        };
        if fresh.versions(name).is_empty() {
            return Response::error(
                ErrorKind::UnknownPlugin,
                format!(
                    "no plugin `{name}` on the plugin path (or loaded with `weir plugins load`)"
                ),
            );
        }
        let mut upgraded = Vec::new();
        let mut failed = Vec::new();
        for status in statuses.iter().filter(|s| s.plugin.name == name) {
            let reference = state
                .references
                .get(&status.id)
                .cloned()
                .unwrap_or_else(|| name.to_owned());
            let target = match fresh.resolve(&reference) {
                Ok(plugin) => plugin.clone(),
                Err(error) => {
                    failed.push(json!({ "connector": status.id, "error": error.to_string() }));
                    continue;
                }
            };
            match self.controller.upgrade(&status.id, target).await {
                Ok(done) => upgraded.push(upgraded_json(&done)),
                Err(error) => failed.push(json!({ "connector": status.id, "error": error })),
            }
        }
        state.stamps = stamps(&fresh);
        state.repository = fresh;
        if failed.is_empty() {
            Response::ok(json!({ "upgraded": upgraded }))
        } else {
            let message = failed
                .iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f["connector"].as_str().unwrap_or("?"),
                        f["error"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let mut response = Response::error(
                ErrorKind::UpgradeFailed,
                format!("not upgraded (the running version goes on): {message}"),
            );
            response.result = Some(json!({ "upgraded": upgraded, "failed": failed }));
            response
        }
    }
}
