//! Finding plugins: the plugin path, the files on it, and the repository of plugins found.
//!
//! The plugin path is, in order of precedence:
//!
//! 1. every `--plugin-dir`, in the order given;
//! 2. the directories of `WEIR_PLUGIN_PATH` (`:`-separated, like `PATH`);
//! 3. the pipeline file's `plugin_path = [...]` (relative to the pipeline file);
//! 4. the directory of the `weir` executable itself, so that the example plugins built next
//!    to it by `cargo build` are found without flags. It alone is searched flat: it is where
//!    cargo puts them, next to its `deps/` and `build/` directories full of copies.
//!
//! Each directory is searched for files ending in `.` + `std::env::consts::DLL_EXTENSION`,
//! recursively up to a depth (`--plugin-depth`, default [`PluginPath::DEFAULT_DEPTH`], at
//! most [`PluginPath::MAX_DEPTH`]; 0 searches each directory flat). Symbolic links are
//! followed, each directory at most once (a link loop is harmless); what is not a regular
//! file (a FIFO, a device) is never opened; unreadable directories and files that vanish
//! during the scan are skipped. Files that are not Weir plugins are recognised from their
//! symbol table and never loaded (no initializer of theirs runs).

mod repository;
mod walk;

use std::path::{Path, PathBuf};

pub use repository::{
    AbortingHost, FileStatus, PluginFile, PluginRepository, ResolveError, register_builtins,
};

/// The name of the environment variable with extra plugin directories.
pub const PLUGIN_PATH_VAR: &str = "WEIR_PLUGIN_PATH";

/// The directories plugins are looked for in, in order of precedence, and how deep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginPath {
    dirs: Vec<PathBuf>,
    depth: usize,
    /// The executable's directory, searched flat, last.
    exe_dir: Option<PathBuf>,
}

impl Default for PluginPath {
    fn default() -> Self {
        Self {
            dirs: Vec::new(),
            depth: Self::DEFAULT_DEPTH,
            exe_dir: None,
        }
    }
}

impl PluginPath {
    /// How many levels of subdirectories are searched by default.
    pub const DEFAULT_DEPTH: usize = 4;
    /// The deepest search allowed.
    pub const MAX_DEPTH: usize = 16;

    /// `plugin_dirs`, then `WEIR_PLUGIN_PATH`, then the executable's own directory.
    pub fn new(plugin_dirs: &[PathBuf]) -> Self {
        Self::with_pipeline_dirs(plugin_dirs, &[])
    }

    /// `plugin_dirs`, then `WEIR_PLUGIN_PATH`, then `pipeline_dirs` (a pipeline file's
    /// `plugin_path`), then the executable's own directory.
    pub fn with_pipeline_dirs(plugin_dirs: &[PathBuf], pipeline_dirs: &[PathBuf]) -> Self {
        let mut path = Self::default();
        for dir in plugin_dirs {
            path.push(dir.clone());
        }
        if let Some(var) = std::env::var_os(PLUGIN_PATH_VAR) {
            for dir in std::env::split_paths(&var).filter(|d| !d.as_os_str().is_empty()) {
                path.push(dir);
            }
        }
        for dir in pipeline_dirs {
            path.push(dir.clone());
        }
        path.exe_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_owned))
            .filter(|dir| !path.dirs.contains(dir));
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

    /// The same directories, searched `depth` levels of subdirectories deep (0: flat),
    /// at most [`MAX_DEPTH`](Self::MAX_DEPTH).
    pub fn depth(mut self, depth: usize) -> Self {
        self.depth = depth.min(Self::MAX_DEPTH);
        self
    }

    fn push(&mut self, dir: PathBuf) {
        if !self.dirs.contains(&dir) {
            self.dirs.push(dir);
        }
    }

    /// The directories, in order (the executable's directory last).
    pub fn dirs(&self) -> Vec<&Path> {
        self.dirs
            .iter()
            .chain(&self.exe_dir)
            .map(PathBuf::as_path)
            .collect()
    }

    /// How many levels of subdirectories are searched (the executable's directory is
    /// always searched flat).
    pub fn max_depth(&self) -> usize {
        self.depth
    }

    /// Each directory, in order, with how many levels of its subdirectories are searched.
    pub fn searched(&self) -> Vec<(&Path, usize)> {
        self.dirs
            .iter()
            .map(|dir| (dir.as_path(), self.depth))
            .chain(self.exe_dir.iter().map(|dir| (dir.as_path(), 0)))
            .collect()
    }

    /// Whether a scan of the path would look at `file`: a plugin-named file in one of its
    /// directories, no deeper than that directory is searched. (Only the path is looked at:
    /// links and the file itself are not.)
    pub fn contains(&self, file: &Path) -> bool {
        if file
            .extension()
            .is_none_or(|e| e != std::env::consts::DLL_EXTENSION)
        {
            return false;
        }
        self.searched().into_iter().any(|(dir, depth)| {
            file.parent()
                .and_then(|parent| parent.strip_prefix(dir).ok())
                .is_some_and(|below| below.components().count() <= depth)
        })
    }

    /// Every plugin-named file on the path, in order of precedence: directory by
    /// directory, each one's files sorted, then its subdirectories' (depth first, sorted).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut walk = walk::Walk::new();
        for dir in &self.dirs {
            walk.dir(dir, self.depth);
        }
        if let Some(dir) = &self.exe_dir {
            walk.dir(dir, 0);
        }
        walk.into_files()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_looks_no_deeper_than_each_directory_is_searched() {
        let ext = std::env::consts::DLL_EXTENSION;
        let mut path = PluginPath::from_dirs([PathBuf::from("/a")]).depth(1);
        path.exe_dir = Some(PathBuf::from("/exe"));
        assert!(path.contains(Path::new(&format!("/a/p.{ext}"))));
        assert!(path.contains(Path::new(&format!("/a/sub/p.{ext}"))));
        assert!(!path.contains(Path::new(&format!("/a/sub/deeper/p.{ext}"))));
        assert!(!path.contains(Path::new("/a/p.txt")));
        assert!(path.contains(Path::new(&format!("/exe/p.{ext}"))));
        assert!(!path.contains(Path::new(&format!("/exe/deps/p.{ext}"))));
        assert!(!path.contains(Path::new(&format!("/elsewhere/p.{ext}"))));
    }

    #[test]
    fn explicit_dirs_come_first_and_duplicates_are_dropped() {
        let path = PluginPath::from_dirs([
            PathBuf::from("/a"),
            PathBuf::from("/b"),
            PathBuf::from("/a"),
        ]);
        assert_eq!(path.dirs(), [Path::new("/a"), Path::new("/b")]);
        assert_eq!(path.max_depth(), PluginPath::DEFAULT_DEPTH);
        assert_eq!(path.depth(99).max_depth(), PluginPath::MAX_DEPTH);
    }
}
