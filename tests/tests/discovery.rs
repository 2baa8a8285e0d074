//! Finding plugins on the plugin path.

use std::path::PathBuf;

use weir_host::discovery::{PluginPath, PluginRepository};
use weir_tests::{example_plugin, temp_dir};

#[test]
fn scans_flat_skips_non_plugins_and_resolves_name_clashes() {
    let (first, second) = (temp_dir("discovery-first"), temp_dir("discovery-second"));
    let metronome = example_plugin("metronome");
    // The same plugin in two directories (copies, so that each is its own image), a file
    // that only pretends to be a library, and a plugin in a subdirectory (not scanned).
    std::fs::copy(&metronome, first.join("libmetronome.so")).unwrap();
    std::fs::copy(&metronome, second.join("libmetronome-copy.so")).unwrap();
    std::fs::write(
        first.join("libnotes.so"),
        "just text, not an ELF file, long enough to be read".repeat(3),
    )
    .unwrap();
    std::fs::create_dir_all(first.join("nested")).unwrap();
    std::fs::copy(example_plugin("stdout"), first.join("nested/libstdout.so")).unwrap();

    let repository =
        PluginRepository::scan(&PluginPath::from_dirs([first.clone(), second.clone()]));
    assert_eq!(repository.names(), ["metronome"]);
    // Same version: the earlier directory wins.
    assert_eq!(
        repository.get("metronome").unwrap().info().path,
        first.join("libmetronome.so")
    );
    let skipped: Vec<_> = repository
        .skipped()
        .iter()
        .map(|s| s.file.clone())
        .collect();
    assert_eq!(skipped, [first.join("libnotes.so")]);
}

#[test]
fn missing_directories_are_harmless() {
    let repository =
        PluginRepository::scan(&PluginPath::from_dirs([PathBuf::from("/no/such/dir")]));
    assert!(repository.names().is_empty());
}
