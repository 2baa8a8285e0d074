//! Walking the plugin path: plugin-named regular files, to a bounded depth, each directory
//! once.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// A walk over directories, remembering the directories it has seen (by device and inode,
/// so that a symbolic link back up the tree is not followed again).
pub(super) struct Walk {
    seen: HashSet<(u64, u64)>,
    files: Vec<PathBuf>,
}

impl Walk {
    pub(super) fn new() -> Self {
        Self {
            seen: HashSet::new(),
            files: Vec::new(),
        }
    }

    /// Adds the plugin files of `dir` and of its subdirectories down to `depth` levels.
    pub(super) fn dir(&mut self, dir: &Path, depth: usize) {
        self.visit(dir, depth);
    }

    pub(super) fn into_files(self) -> Vec<PathBuf> {
        self.files
    }

    fn visit(&mut self, dir: &Path, depth: usize) {
        // Following symbolic links: a linked directory is searched like a real one.
        let metadata = match std::fs::metadata(dir) {
            Ok(metadata) if metadata.is_dir() => metadata,
            Ok(_) => return,
            Err(error) => {
                tracing::debug!(dir = %dir.display(), %error, "plugin directory not readable, skipped");
                return;
            }
        };
        if !self.seen.insert((metadata.dev(), metadata.ino())) {
            tracing::debug!(dir = %dir.display(), "directory already searched (a link to it), skipped");
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "plugin directory not readable, skipped");
                return;
            }
        };
        let mut files = Vec::new();
        let mut subdirs = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            // The target's type, through symbolic links; a link to nothing is skipped.
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            if metadata.is_dir() {
                subdirs.push(path);
            } else if metadata.is_file()
                && path
                    .extension()
                    .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
            {
                files.push(path);
            }
        }
        files.sort();
        self.files.extend(files);
        if depth > 0 {
            subdirs.sort();
            for subdir in subdirs {
                self.visit(&subdir, depth - 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("weir-walk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        for file in [
            "top.so",
            "a/one.so",
            "a/b/two.so",
            "a/b/c/three.so",
            "a/readme.txt",
        ] {
            std::fs::write(root.join(file), b"x").unwrap();
        }
        root
    }

    fn names(files: &[PathBuf], root: &Path) -> Vec<String> {
        files
            .iter()
            .map(|f| f.strip_prefix(root).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn depth_bounds_the_search_and_files_come_before_subdirectories() {
        let root = tree("depth");
        for (depth, expected) in [
            (0, vec!["top.so"]),
            (1, vec!["top.so", "a/one.so"]),
            (
                3,
                vec!["top.so", "a/one.so", "a/b/two.so", "a/b/c/three.so"],
            ),
        ] {
            let mut walk = Walk::new();
            walk.dir(&root, depth);
            assert_eq!(names(&walk.into_files(), &root), expected, "depth {depth}");
        }
    }

    #[test]
    fn link_loops_fifos_and_dangling_links_are_harmless() {
        let root = tree("loops");
        std::os::unix::fs::symlink(&root, root.join("a/b/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("nowhere.so"), root.join("dangling.so")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(root.join("pipe.so"))
            .status()
            .unwrap();
        assert!(made.success());
        let mut walk = Walk::new();
        walk.dir(&root, 16);
        walk.dir(&root.join("a"), 16);
        assert_eq!(
            names(&walk.into_files(), &root),
            ["top.so", "a/one.so", "a/b/two.so", "a/b/c/three.so"],
            "each directory once, never the FIFO or the dangling link"
        );
    }
}
