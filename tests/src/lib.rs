//! Builds the real plugin cdylibs that Weir's integration tests and benchmarks load.
//!
//! Each build runs once per test process (a `OnceLock` around a `cargo build`, as
//! libloading's own tests do), so `cargo test --workspace` needs nothing built beforehand:
//!
//! - the example plugins of this workspace (`examples/*`), into the workspace's target dir;
//! - the test plugins of `tests/fixtures`, three workspaces of their own (a plugin with
//!   `panic = "abort"` needs its own profile; one built against a drifted sdk, its own
//!   features), into `target/fixtures`;
//! - `abinext-host`, a host built as the next minor ABI version, a workspace of its own too;
//! - the C example plugin (`examples/c`), compiled by the C compiler (`CC`, or `cc`) against
//!   the sdk's generated header, into `target/c`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A fresh, empty directory `weir-NAME-PID` under the system's temporary directory (what a
/// previous run left there is removed first).
pub fn temp_dir(name: &str) -> PathBuf {
    let prefix = format!("weir-{name}-");
    remove_stale(&prefix);
    let dir = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a temporary directory");
    dir
}

/// Removes the directories earlier test processes made with `prefix` (`weir-NAME-PID`) whose
/// process is gone, so that runs after runs do not fill the disk (some tests write hundreds
/// of megabytes).
fn remove_stale(prefix: &str) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `path` as a TOML basic string (quoted and escaped), for pipeline files written by tests.
///
/// # Panics
/// If `path` is not UTF-8.
pub fn toml_path(path: &Path) -> String {
    let text = path.to_str().expect("a UTF-8 path");
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Polls `condition` every 10 ms until it holds; panics naming `what` after 30 s.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited 30 s for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Example plugins of the workspace, by package name.
pub const EXAMPLES: &[&str] = &[
    "blackhole",
    "blaster",
    "cb",
    "file",
    "metronome",
    "stdout",
    "tcp",
];

/// The workspace root.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

/// The workspace's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// Path of the example plugin `name` (a package of `examples/`), built on first use.
pub fn example_plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut args: Vec<OsString> = vec!["build".into(), "--quiet".into()];
        for example in EXAMPLES {
            args.extend(["-p".into(), (*example).into()]);
        }
        cargo(&args, workspace_root());
    });
    target_dir().join("debug").join(library_file(name))
}

/// Path of the C example plugin, `examples/c/counter.c` built as `libccounter.so`, compiled
/// on first use as its header says to: C11, every warning an error, only the metadata
/// symbol exported.
pub fn c_example_plugin() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let dir = target_dir().join("c");
    let library = dir.join(library_file("ccounter"));
    BUILT.get_or_init(|| {
        std::fs::create_dir_all(&dir).expect("creating target/c");
        let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
        let root = workspace_root();
        let out = Command::new(&cc)
            .args([
                "-std=c11",
                "-O2",
                "-Wall",
                "-Wextra",
                "-Wpedantic",
                "-Werror",
            ])
            .args(["-shared", "-fPIC", "-fvisibility=hidden", "-I"])
            .arg(root.join("sdk/include"))
            .arg(root.join("examples/c/counter.c"))
            .arg("-o")
            .arg(&library)
            .output()
            .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?}: {e}"));
        assert!(
            out.status.success(),
            "{cc:?} could not build examples/c/counter.c:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    library
}

/// Path of the test plugin `name` (a crate of `tests/fixtures`), built on first use.
pub fn fixture_plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let fixtures_target = target_dir().join("fixtures");
    BUILT.get_or_init(|| {
        let fixtures = workspace_root().join("tests/fixtures");
        for manifest in [
            "Cargo.toml",
            "panicabort/Cargo.toml",
            "layoutmismatch/Cargo.toml",
            "abi10/Cargo.toml",
        ] {
            let args: Vec<OsString> = vec![
                "build".into(),
                "--quiet".into(),
                "--manifest-path".into(),
                fixtures.join(manifest).into(),
                "--target-dir".into(),
                fixtures_target.clone().into(),
            ];
            cargo(&args, &fixtures);
        }
    });
    fixtures_target.join("debug").join(library_file(name))
}

/// Path of `abinext-host` (`tests/fixtures/abinext-host`): a host built as the next minor
/// ABI version would be (simulated with a test-only sdk feature), built on first use.
pub fn abinext_host() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let fixtures_target = target_dir().join("fixtures");
    BUILT.get_or_init(|| {
        let fixtures = workspace_root().join("tests/fixtures");
        let args: Vec<OsString> = vec![
            "build".into(),
            "--quiet".into(),
            "--manifest-path".into(),
            fixtures.join("abinext-host/Cargo.toml").into(),
            "--target-dir".into(),
            fixtures_target.clone().into(),
        ];
        cargo(&args, &fixtures);
    });
    fixtures_target
        .join("debug")
        .join(format!("abinext-host{}", std::env::consts::EXE_SUFFIX))
}

/// Path of the test plugin `name` (a crate of the main `tests/fixtures` workspace) built with
/// the release profile, for benchmarks. Built on first use.
pub fn release_fixture_plugin(name: &str) -> PathBuf {
    let fixtures_target = target_dir().join("fixtures");
    let fixtures = workspace_root().join("tests/fixtures");
    let args: Vec<OsString> = vec![
        "build".into(),
        "--quiet".into(),
        "--release".into(),
        "-p".into(),
        name.into(),
        "--manifest-path".into(),
        fixtures.join("Cargo.toml").into(),
        "--target-dir".into(),
        fixtures_target.clone().into(),
    ];
    cargo(&args, &fixtures);
    fixtures_target.join("release").join(library_file(name))
}

/// `libNAME.so` on Linux, with `-` turned into `_` as cargo does for library names.
pub fn library_file(name: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

fn cargo(args: &[OsString], dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cargo:?}: {e}"));
    assert!(
        status.success(),
        "`cargo {args:?}` in {} failed: {status}",
        dir.display()
    );
}
