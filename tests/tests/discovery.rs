//! Finding plugins on the plugin path: recursion, links, non-plugins, versions.

use std::path::{Path, PathBuf};

use weir_host::discovery::{FileStatus, PluginPath, PluginRepository, ResolveError};
use weir_tests::{example_plugin, fixture_plugin, temp_dir};

fn copy(plugin: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(plugin, to).unwrap();
}

fn status_of<'r>(repository: &'r PluginRepository, file: &Path) -> &'r FileStatus {
    &repository
        .file(file)
        .unwrap_or_else(|| panic!("{} not found", file.display()))
        .status
}

#[test]
fn the_same_plugin_and_version_twice_is_used_from_the_first_directory() {
    let (first, second) = (temp_dir("discovery-first"), temp_dir("discovery-second"));
    let metronome = example_plugin("metronome");
    // Copies, so that each is its own image.
    copy(&metronome, &first.join("libmetronome.so"));
    copy(&metronome, &second.join("libmetronome-copy.so"));
    std::fs::write(
        first.join("libnotes.so"),
        "just text, not an ELF file, long enough to be read".repeat(3),
    )
    .unwrap();
    let repository =
        PluginRepository::scan(&PluginPath::from_dirs([first.clone(), second.clone()]));
    assert_eq!(repository.names(), ["metronome"]);
    assert_eq!(
        repository.get("metronome").unwrap().info().path,
        first.join("libmetronome.so")
    );
    assert!(matches!(
        status_of(&repository, &second.join("libmetronome-copy.so")),
        FileStatus::Shadowed { by } if *by == first.join("libmetronome.so")
    ));
    assert!(matches!(
        status_of(&repository, &first.join("libnotes.so")),
        FileStatus::NotAPlugin(_)
    ));
}

#[test]
fn subdirectories_are_searched_to_the_depth_limit_and_link_loops_are_harmless() {
    let root = temp_dir("discovery-depth");
    let shallow = root.join("a/b/libmetronome.so");
    let deep = root.join("1/2/3/4/5/libstdout.so");
    copy(&example_plugin("metronome"), &shallow);
    copy(&example_plugin("stdout"), &deep);
    // A loop back to the top, and one to itself.
    std::os::unix::fs::symlink(&root, root.join("a/b/up")).unwrap();
    std::os::unix::fs::symlink(root.join("1/2"), root.join("1/2/again")).unwrap();

    let default = PluginRepository::scan(&PluginPath::from_dirs([root.clone()]));
    assert_eq!(default.names(), ["metronome"], "depth 4 by default");
    let deeper = PluginRepository::scan(&PluginPath::from_dirs([root.clone()]).depth(5));
    assert_eq!(deeper.names(), ["metronome", "stdout"]);
    assert_eq!(deeper.files().len(), 2, "each file once despite the loops");
    let flat = PluginRepository::scan(&PluginPath::from_dirs([root.clone()]).depth(0));
    assert!(flat.names().is_empty());
}

#[test]
fn files_that_are_not_plugins_are_never_loaded() {
    let dir = temp_dir("discovery-constructor");
    let library = dir.join("libconstructor.so");
    copy(&fixture_plugin("constructor"), &library);
    let marker = |pid: u32| std::env::temp_dir().join(format!("weir-constructor-loaded-{pid}"));
    // The marker works: loading the library with the system loader leaves it.
    let python = std::process::Command::new("python3")
        .arg("-c")
        .arg("import ctypes, os, sys; ctypes.CDLL(sys.argv[1]); print(os.getpid())")
        .arg(&library)
        .output()
        .expect("python3 runs");
    assert!(python.status.success(), "{python:?}");
    let pid: u32 = String::from_utf8_lossy(&python.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(marker(pid).exists(), "loading it leaves the marker");
    std::fs::remove_file(marker(pid)).unwrap();

    let repository = PluginRepository::scan(&PluginPath::from_dirs([dir.clone()]));
    assert!(matches!(
        status_of(&repository, &library),
        FileStatus::NotAPlugin(_)
    ));
    assert!(
        !marker(std::process::id()).exists(),
        "the scan ran the library's initializer"
    );
}

#[test]
fn several_versions_load_side_by_side_and_can_be_pinned() {
    let dir = temp_dir("discovery-versions");
    copy(&fixture_plugin("counter"), &dir.join("libcounter.so"));
    copy(
        &fixture_plugin("counter-v2"),
        &dir.join("v2/libcounter_v2.so"),
    );
    let repository = PluginRepository::scan(&PluginPath::from_dirs([dir.clone()]));
    let versions: Vec<&str> = repository
        .versions("counter")
        .iter()
        .map(|p| p.info().version.as_str())
        .collect();
    assert_eq!(versions, ["0.2.0", "0.1.0"], "both, highest first");
    let version = |reference: &str| {
        repository
            .resolve(reference)
            .map(|p| p.info().version.clone())
    };
    assert_eq!(version("counter").unwrap(), "0.2.0");
    assert_eq!(version("counter@0.1").unwrap(), "0.1.0");
    assert_eq!(version("counter@=0.2.0").unwrap(), "0.2.0");
    assert_eq!(version("counter@>=0.1, <0.2").unwrap(), "0.1.0");
    assert_eq!(
        version("counter@3"),
        Err(ResolveError::NoMatch {
            name: "counter".into(),
            requirement: "3".into(),
            available: vec!["0.2.0".into(), "0.1.0".into()],
        })
    );
    assert!(matches!(
        version("counter@not a version"),
        Err(ResolveError::BadRequirement { .. })
    ));
    assert_eq!(
        version("nothing"),
        Err(ResolveError::Unknown {
            name: "nothing".into()
        })
    );
}

#[test]
fn missing_directories_are_harmless() {
    let repository =
        PluginRepository::scan(&PluginPath::from_dirs([PathBuf::from("/no/such/dir")]));
    assert!(repository.names().is_empty());
    assert!(repository.files().is_empty());
}

#[test]
fn a_connector_pins_a_version_and_a_bad_pin_is_a_located_error() {
    let dir = temp_dir("discovery-pins");
    copy(&fixture_plugin("counter"), &dir.join("libcounter.so"));
    copy(&fixture_plugin("counter-v2"), &dir.join("libcounter_v2.so"));
    copy(&example_plugin("blackhole"), &dir.join("libblackhole.so"));
    let repository = PluginRepository::scan(&PluginPath::from_dirs([dir]));
    let pipeline = |plugin: &str| {
        let source = format!(
            "[[connector]]\nid = \"in\"\nplugin = \"{plugin}\"\nconfig = {{ count = 1 }}\n\
             [[connector]]\nid = \"out\"\nplugin = \"blackhole\"\n\
             [[binding]]\nfrom = \"in\"\nto = [\"out\"]\n"
        );
        let spec = weir_host::config::PipelineSpec::parse(Path::new("p.toml"), source).unwrap();
        weir_host::pipeline::Pipeline::resolve(spec, &repository)
    };
    let pinned = pipeline("counter@0.1").unwrap();
    assert_eq!(pinned.plugins[0].info().version, "0.1.0");
    let latest = pipeline("counter").unwrap();
    assert_eq!(latest.plugins[0].info().version, "0.2.0");
    let errors = pipeline("counter@9").unwrap_err();
    assert_eq!(
        errors.to_string(),
        "p.toml:3:10: `connector[0].plugin`: no version of plugin `counter` matches `9` \
         (found: 0.2.0, 0.1.0)"
    );
}
