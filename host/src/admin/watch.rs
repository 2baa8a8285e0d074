//! `weir run --watch`: plugin files that appear or change on the plugin path are loaded,
//! and a new build or version of a plugin that connectors run upgrades them.
//!
//! File events (inotify, through the `notify` crate) are debounced: a file is looked at once
//! nothing happened to it for [`QUIET`] and its size and modification time held still for
//! another [`QUIET`], so a slow copy is looked at when it is done. A file that is not a
//! valid plugin yet (a copy still being written, truncated) is not loaded: the next event
//! on it looks again. Write-then-rename installs are seen at the rename.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::handler::Admin;
use crate::discovery::PluginPath;

/// How long a file must be left alone before it is looked at.
pub const QUIET: Duration = Duration::from_millis(300);

/// A running watch; dropping it stops watching.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

/// Watches every directory of `path` (recursively when it is searched deeper than its top
/// level) and hands what changes to `admin`, on the current tokio runtime.
///
/// # Errors
/// The system refused to watch (for example the inotify watch limit).
pub fn watch(path: &PluginPath, admin: Arc<Admin>) -> notify::Result<Watch> {
    let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
    let relevant = path.clone();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) => {
                for file in event.paths {
                    if relevant.contains(&file) {
                        let _ = tx.send(file);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "plugin watch: error"),
        })?;
    for (dir, depth) in path.searched() {
        if dir.is_dir() {
            let mode = if depth > 0 {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            watcher.watch(dir, mode)?;
            tracing::info!(dir = %dir.display(), depth, "watching for plugins");
        }
    }
    tokio::spawn(changes(rx, admin));
    Ok(Watch { _watcher: watcher })
}

/// Size and modification time, to tell whether a file is still being written.
fn stamp(file: &Path) -> Option<(u64, SystemTime)> {
    let metadata = std::fs::metadata(file).ok()?;
    Some((metadata.len(), metadata.modified().ok()?))
}

async fn changes(mut rx: mpsc::UnboundedReceiver<PathBuf>, admin: Arc<Admin>) {
    while let Some(first) = rx.recv().await {
        let mut changed = BTreeSet::from([first]);
        // Until the files are left alone for a while.
        while let Ok(Some(next)) = tokio::time::timeout(QUIET, rx.recv()).await {
            changed.insert(next);
        }
        // Then one more quiet while for all of them together: those whose size or time moved
        // are still being written, and their next change brings them back here.
        let before: Vec<_> = changed
            .into_iter()
            .filter_map(|file| Some((stamp(&file)?, file))) // Gone: renamed away, deleted.
            .collect();
        tokio::time::sleep(QUIET).await;
        for (stamp_before, file) in before {
            if stamp(&file) != Some(stamp_before) {
                tracing::debug!(file = %file.display(), "still being written: looked at again at its next change");
                continue;
            }
            admin.file_changed(&file).await;
        }
    }
}
