//! The plugins found on the path: every file with what became of it, and every usable
//! plugin by name and version.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::PluginPath;
use crate::error::LoadError;
use crate::loader::Plugin;

/// What became of one file found on the plugin path.
#[derive(Debug)]
pub enum FileStatus {
    /// Loaded: its plugin is available.
    Ok,
    /// A Weir plugin this host cannot use (another ABI, a bad header, `panic = "abort"`, ...).
    Incompatible(LoadError),
    /// Not a Weir plugin at all: recognised from the file alone, never loaded.
    NotAPlugin(LoadError),
    /// The file could not be read (gone, or not readable by this user): nothing is known
    /// of a plugin in it.
    Unreadable(LoadError),
    /// The same plugin name and version as an earlier file on the path, which is the one
    /// used.
    Shadowed {
        /// The file used instead.
        by: PathBuf,
    },
}

impl FileStatus {
    /// What a file that did not load is: not a plugin, unreadable, or incompatible.
    pub fn refused(error: LoadError) -> Self {
        if error.is_not_a_plugin() {
            Self::NotAPlugin(error)
        } else if matches!(error, LoadError::Io { .. }) {
            Self::Unreadable(error)
        } else {
            Self::Incompatible(error)
        }
    }

    /// `ok`, `incompatible: <reason>`, `not a plugin: <reason>`, `cannot read: <reason>` or
    /// `shadowed by <file>`.
    pub fn describe(&self) -> String {
        match self {
            Self::Ok => "ok".to_owned(),
            Self::Incompatible(error) => format!("incompatible: {}", error.reason()),
            // `reason()` says "cannot read: ...".
            Self::Unreadable(error) => error.reason(),
            Self::NotAPlugin(error) => format!("not a plugin: {}", error.reason()),
            Self::Shadowed { by } => format!("shadowed by {}", by.display()),
        }
    }
}

/// One file found on the plugin path.
#[derive(Debug)]
pub struct PluginFile {
    /// The file.
    pub path: PathBuf,
    /// What became of it.
    pub status: FileStatus,
    /// Its plugin, when it loaded (a shadowed file loaded too: that is how its name and
    /// version are known).
    pub plugin: Option<Plugin>,
}

/// Why a connector's `plugin = "..."` names no usable plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No plugin of that name was found.
    #[error("unknown plugin `{name}`")]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// The part after `@` is not a version requirement.
    #[error(
        "`{reference}`: `{requirement}` is not a version requirement ({reason}); write for example `{name}@0.2` or `{name}@=0.2.1`"
    )]
    BadRequirement {
        /// The whole reference.
        reference: String,
        /// The plugin name.
        name: String,
        /// The requirement as written.
        requirement: String,
        /// What the semver parser said.
        reason: String,
    },
    /// Versions exist, none matches.
    #[error("no version of plugin `{name}` matches `{requirement}` (found: {})", available.join(", "))]
    NoMatch {
        /// The plugin name.
        name: String,
        /// The requirement.
        requirement: String,
        /// The versions found.
        available: Vec<String>,
    },
}

/// The plugins available, by name and version, and every file the scan found.
#[derive(Debug, Default)]
pub struct PluginRepository {
    files: Vec<PluginFile>,
    /// Usable plugins by name, highest version first.
    by_name: BTreeMap<String, Vec<Plugin>>,
    /// Where private copies are loaded from, if plugins are loaded from copies.
    images: Option<PathBuf>,
}

/// The built-ins of this process, listed by every scan after the files on the path.
static BUILTINS: Mutex<Vec<Plugin>> = Mutex::new(Vec::new());

/// Built-ins are refused by a host built with `panic = "abort"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "this host was built with panic = \"abort\": a panic in a built-in connector would end the \
     process; build it with panic = \"unwind\" (the default) to run built-ins"
)]
pub struct AbortingHost;

/// Makes connector types linked into this binary available to pipelines, as built-ins
/// ([`Plugin::builtin`]): every later scan ([`PluginRepository::scan`],
/// [`scan_copies`](PluginRepository::scan_copies), and the rescans of a running host)
/// lists them after the files found on the plugin path. A file with the same name and
/// version is the one used, also when it appears later (the built-in is then listed as
/// shadowed by it); a higher version in a file is chosen over the built-in as any higher
/// version is.
///
/// # Errors
/// [`AbortingHost`] (and nothing registered) in a host built with `panic = "abort"`, where
/// the panic trap around a built-in could not catch anything.
pub fn register_builtins(
    builtins: impl IntoIterator<Item = weir_sdk::builtin::Builtin>,
) -> Result<(), AbortingHost> {
    if cfg!(panic = "abort") {
        return Err(AbortingHost);
    }
    let mut registered = BUILTINS.lock().unwrap_or_else(|p| p.into_inner());
    for builtin in builtins {
        tracing::debug!(
            plugin = builtin.name(),
            version = builtin.version(),
            "built-in registered"
        );
        registered.push(Plugin::builtin(builtin));
    }
    Ok(())
}

impl PluginRepository {
    /// Adds the registered built-ins ([`register_builtins`]), after the files.
    fn with_builtins(mut self) -> Self {
        let builtins = BUILTINS.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for plugin in builtins {
            self.add(plugin);
        }
        self
    }

    /// Finds every plugin file on `path` and loads the plugins.
    ///
    /// Files that are not Weir plugins are listed as such and never loaded; plugins that
    /// fail validation are listed with the reason (see [`warn_refused`](Self::warn_refused)).
    /// Several versions of one plugin are all kept; the same name and version in two
    /// files: the first on the path is used, the other is listed as shadowed.
    pub fn scan(path: &PluginPath) -> Self {
        let mut repository = Self::default();
        for file in path.files() {
            repository.add_file(file);
        }
        repository.with_builtins()
    }

    /// Like [`scan`](Self::scan), loading every plugin from a private copy in `images`
    /// ([`Plugin::load_copy`]): what a long-running host does, so that a plugin file
    /// overwritten in place (a new build) never changes code that is running, and a new
    /// build at a path already loaded is a new image.
    pub fn scan_copies(path: &PluginPath, images: &Path) -> Self {
        let mut repository = Self {
            images: Some(images.to_owned()),
            ..Self::default()
        };
        for file in path.files() {
            repository.add_file(file);
        }
        repository.with_builtins()
    }

    /// Loads one more file; returns what became of it.
    pub fn add_file(&mut self, path: PathBuf) -> &PluginFile {
        let loaded = match &self.images {
            Some(images) => Plugin::load_copy(&path, images),
            None => Plugin::load(&path),
        };
        let (status, plugin) = match loaded {
            Ok(plugin) => (self.insert(plugin.clone()), Some(plugin)),
            Err(error) => {
                tracing::debug!(%error, "plugin file refused");
                (FileStatus::refused(error), None)
            }
        };
        self.files.push(PluginFile {
            path,
            status,
            plugin,
        });
        self.files.last().expect("just pushed")
    }

    /// Adds a plugin loaded elsewhere; returns `Ok` or whom it is shadowed by.
    pub fn add(&mut self, plugin: Plugin) -> FileStatus {
        let path = plugin.info().path.clone();
        let status = self.insert(plugin.clone());
        self.files.push(PluginFile {
            path,
            status: match &status {
                FileStatus::Shadowed { by } => FileStatus::Shadowed { by: by.clone() },
                _ => FileStatus::Ok,
            },
            plugin: Some(plugin),
        });
        status
    }

    fn insert(&mut self, plugin: Plugin) -> FileStatus {
        let versions = self.by_name.entry(plugin.name().to_owned()).or_default();
        let version = &plugin.info().version;
        if let Some(at) = versions
            .iter()
            .position(|p| compare_versions(&p.info().version, version).is_eq())
            .filter(|at| versions[*at].is_builtin() && !plugin.is_builtin())
        {
            // A file wins over the built-in of the same version, whenever it comes.
            let by = plugin.info().path.clone();
            tracing::debug!(plugin = %plugin.name(), %version, file = %by.display(), "a plugin file replaces the built-in");
            let builtin = std::mem::replace(&mut versions[at], plugin);
            for file in &mut self.files {
                if file.plugin.as_ref().is_some_and(|p| p.same(&builtin)) {
                    file.status = FileStatus::Shadowed { by: by.clone() };
                }
            }
            return FileStatus::Ok;
        }
        if let Some(same) = versions
            .iter()
            .find(|p| compare_versions(&p.info().version, version).is_eq())
        {
            let by = same.info().path.clone();
            tracing::debug!(
                plugin = %plugin.name(),
                %version,
                using = %by.display(),
                ignoring = %plugin.info().path.display(),
                "the same plugin and version in two files: using the first on the plugin path"
            );
            return FileStatus::Shadowed { by };
        }
        // Highest version first.
        let at = versions
            .iter()
            .position(|p| compare_versions(version, &p.info().version).is_gt())
            .unwrap_or(versions.len());
        versions.insert(at, plugin);
        FileStatus::Ok
    }

    /// Logs a warning for every plugin file that was refused (what `weir run` and
    /// `weir check` say about the plugin path; `weir plugins list` shows it all).
    pub fn warn_refused(&self) {
        for file in &self.files {
            if let FileStatus::Incompatible(error) | FileStatus::Unreadable(error) = &file.status {
                tracing::warn!(%error, "plugin refused");
            }
        }
    }

    /// Forgets version `version` of plugin `name`; returns it, if it was there.
    pub fn remove(&mut self, name: &str, version: &str) -> Option<Plugin> {
        let versions = self.by_name.get_mut(name)?;
        let at = versions
            .iter()
            .position(|p| compare_versions(&p.info().version, version).is_eq())?;
        let removed = versions.remove(at);
        if versions.is_empty() {
            self.by_name.remove(name);
        }
        let path = &removed.info().path;
        // Built-ins share a path: only the entry of this plugin goes.
        self.files.retain(|f| {
            f.path != *path
                || f.plugin.as_ref().is_some_and(|p| {
                    p.name() != name || compare_versions(&p.info().version, version).is_ne()
                })
        });
        Some(removed)
    }

    /// Every file found, in the order of the plugin path.
    pub fn files(&self) -> &[PluginFile] {
        &self.files
    }

    /// The highest version of the plugin called `name`.
    pub fn get(&self, name: &str) -> Option<&Plugin> {
        self.versions(name).first()
    }

    /// Every usable version of the plugin called `name`, highest first.
    pub fn versions(&self, name: &str) -> &[Plugin] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// Every usable plugin, by name, highest version first.
    pub fn plugins(&self) -> impl Iterator<Item = &Plugin> {
        self.by_name.values().flatten()
    }

    /// The names of every usable plugin, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }

    /// The plugin a connector's `plugin = "..."` names: `NAME` for its highest version (a
    /// warning names the other files when there are several), or `NAME@REQUIREMENT` for
    /// the highest version matching a semver requirement (`blaster@0.2`, `blaster@=0.2.1`,
    /// `blaster@>=0.2, <0.4`).
    ///
    /// # Errors
    /// No such plugin, a requirement that does not parse, or no version matching it.
    pub fn resolve(&self, reference: &str) -> Result<&Plugin, ResolveError> {
        let (name, requirement) = match reference.split_once('@') {
            Some((name, requirement)) => (name.trim(), Some(requirement.trim())),
            None => (reference.trim(), None),
        };
        let versions = self.versions(name);
        if versions.is_empty() {
            return Err(ResolveError::Unknown {
                name: name.to_owned(),
            });
        }
        let Some(requirement) = requirement else {
            let chosen = &versions[0];
            if versions.len() > 1 {
                let others: Vec<String> = versions[1..]
                    .iter()
                    .map(|p| format!("{} ({})", p.info().version, p.info().path.display()))
                    .collect();
                tracing::warn!(
                    plugin = %name,
                    using = %chosen.info().path.display(),
                    version = %chosen.info().version,
                    also_found = %others.join(", "),
                    "several versions of the plugin: using the highest (pin one with `plugin = \"{name}@VERSION\"`)"
                );
            }
            return Ok(chosen);
        };
        let parsed =
            semver::VersionReq::parse(requirement).map_err(|e| ResolveError::BadRequirement {
                reference: reference.to_owned(),
                name: name.to_owned(),
                requirement: requirement.to_owned(),
                reason: e.to_string(),
            })?;
        versions
            .iter()
            .find(|p| semver::Version::parse(&p.info().version).is_ok_and(|v| parsed.matches(&v)))
            .ok_or_else(|| ResolveError::NoMatch {
                name: name.to_owned(),
                requirement: requirement.to_owned(),
                available: versions.iter().map(|p| p.info().version.clone()).collect(),
            })
    }

    /// The file of `path`, if the scan found it.
    pub fn file(&self, path: &Path) -> Option<&PluginFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// Compares plugin versions by semver precedence (`0.10.0` > `0.9.1`, `1.0.0` >
/// `1.0.0-alpha`); a version that is not semver sorts below every one that is, and two such
/// versions compare as text.
fn compare_versions(a: &str, b: &str) -> Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp_precedence(&b),
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Ok(_)) => Ordering::Less,
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
}
