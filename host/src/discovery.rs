//! Finding plugins: the plugin path and the repository of plugins found on it.
//!
//! The plugin path is, in order: every `--plugin-dir`, then the directories of
//! `WEIR_PLUGIN_PATH` (`:`-separated, like `PATH`), then the directory of the `weir`
//! executable itself, so that the example plugins built next to it by `cargo build` are
//! found without flags. Each directory is scanned flat for files ending in
//! `std::env::consts::DLL_EXTENSION`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::LoadError;
use crate::loader::Plugin;

/// The name of the environment variable with extra plugin directories.
pub const PLUGIN_PATH_VAR: &str = "WEIR_PLUGIN_PATH";

/// The directories plugins are looked for in, in order of precedence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginPath {
    dirs: Vec<PathBuf>,
}

impl PluginPath {
    /// `plugin_dirs`, then `WEIR_PLUGIN_PATH`, then the executable's own directory.
    pub fn new(plugin_dirs: &[PathBuf]) -> Self {
        let mut path = Self::default();
        for dir in plugin_dirs {
            path.push(dir.clone());
        }
        if let Some(var) = std::env::var_os(PLUGIN_PATH_VAR) {
            for dir in std::env::split_paths(&var).filter(|d| !d.as_os_str().is_empty()) {
                path.push(dir);
            }
        }
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_owned))
        {
            path.push(dir);
        }
        path
    }

    /// Exactly these directories.
    pub fn from_dirs(dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        let mut path = Self::default();
        for dir in dirs {
            path.push(dir);
        }
        path
    }

    fn push(&mut self, dir: PathBuf) {
        if !self.dirs.contains(&dir) {
            self.dirs.push(dir);
        }
    }

    /// The directories, in order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }
}

/// A plugin file that was found but not loaded, and why.
#[derive(Debug)]
pub struct Skipped {
    /// The file.
    pub file: PathBuf,
    /// Why it was not loaded.
    pub error: LoadError,
}

/// The plugins available by name.
#[derive(Debug, Default)]
pub struct PluginRepository {
    plugins: BTreeMap<String, Plugin>,
    skipped: Vec<Skipped>,
}

impl PluginRepository {
    /// Scans every directory of `path` (flat) and loads every plugin file.
    ///
    /// Files that are not Weir plugins are skipped (logged at debug level); plugins that
    /// fail validation are skipped with a warning naming the reason. When two files carry
    /// a plugin of the same name, the higher version wins (the earlier directory on a tie)
    /// and a warning names both files.
    pub fn scan(path: &PluginPath) -> Self {
        let mut repository = Self::default();
        for dir in path.dirs() {
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::debug!(dir = %dir.display(), %error, "plugin directory not readable, skipped");
                    continue;
                }
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|file| {
                    file.extension()
                        .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
                })
                .collect();
            files.sort();
            for file in files {
                repository.add_file(file);
            }
        }
        repository
    }

    fn add_file(&mut self, file: PathBuf) {
        match Plugin::load(&file) {
            Ok(plugin) => self.add(plugin),
            Err(
                error @ (LoadError::MissingMetadataSymbol { .. }
                | LoadError::NotSharedObject { .. }),
            ) => {
                tracing::debug!(file = %file.display(), %error, "not a Weir plugin, skipped");
                self.skipped.push(Skipped { file, error });
            }
            Err(error) => {
                tracing::warn!(%error, "plugin skipped");
                self.skipped.push(Skipped { file, error });
            }
        }
    }

    /// Adds a loaded plugin, resolving a name clash by version.
    pub fn add(&mut self, plugin: Plugin) {
        let name = plugin.name().to_owned();
        match self.plugins.get(&name) {
            None => {
                self.plugins.insert(name, plugin);
            }
            Some(existing) => {
                let (keep, drop) =
                    if compare_versions(&plugin.info().version, &existing.info().version).is_gt() {
                        (plugin, existing.clone())
                    } else {
                        (existing.clone(), plugin)
                    };
                tracing::warn!(
                    plugin = %name,
                    using = %keep.info().path.display(),
                    using_version = %keep.info().version,
                    ignoring = %drop.info().path.display(),
                    ignoring_version = %drop.info().version,
                    "two plugins with the same name: using the higher version"
                );
                self.plugins.insert(name, keep);
            }
        }
    }

    /// The plugin called `name`.
    pub fn get(&self, name: &str) -> Option<&Plugin> {
        self.plugins.get(name)
    }

    /// Every plugin, by name.
    pub fn plugins(&self) -> impl ExactSizeIterator<Item = &Plugin> {
        self.plugins.values()
    }

    /// The names of every plugin, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.plugins.keys().map(String::as_str).collect()
    }

    /// Files found on the path that were not loaded.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }
}

/// Compares plugin versions by semver precedence (`0.10.0` > `0.9.1`, `1.0.0` >
/// `1.0.0-alpha`); a version that is not semver sorts below every one that is, and two such
/// versions compare as text.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp_precedence(&b),
        (Ok(_), Err(_)) => std::cmp::Ordering::Greater,
        (Err(_), Ok(_)) => std::cmp::Ordering::Less,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(compare_versions("0.10.0", "0.9.1").is_gt());
        assert!(compare_versions("1.0.0", "1.0.0").is_eq());
        assert!(compare_versions("1.2.0", "1.2.1").is_lt());
        assert!(compare_versions("1.0.0", "1.0.0-alpha").is_gt());
        assert!(compare_versions("1.0.0-beta", "1.0.0-alpha").is_gt());
        assert!(compare_versions("1.0.0+build.5", "1.0.0").is_eq());
        assert!(compare_versions("not-semver", "0.0.1").is_lt());
    }

    #[test]
    fn explicit_dirs_come_first_and_duplicates_are_dropped() {
        let path = PluginPath::from_dirs([
            PathBuf::from("/a"),
            PathBuf::from("/b"),
            PathBuf::from("/a"),
        ]);
        assert_eq!(path.dirs(), [PathBuf::from("/a"), PathBuf::from("/b")]);
    }
}
