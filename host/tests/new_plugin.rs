//! `weir new plugin`: what it creates builds, passes its own tests, loads, and runs its
//! pipeline file, without edits; and bad names or occupied directories are refused.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use weir_tests::{example_plugin, target_dir, temp_dir, workspace_root};

/// Runs `command` to its end, killing it (and failing) if it takes longer than `secs`.
fn run(mut command: Command, secs: u64) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the command");
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("waiting").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("reaping");
            panic!(
                "{command:?} took longer than {secs} s:\n{}",
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("reading its output")
}

fn weir(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("WEIR_PLUGIN_PATH");
    run(command, 60)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `cargo ARGS` in the generated crate, offline (CI fetched every crate the sdk needs),
/// with a target directory shared by the crates of this test. It must not warn.
fn cargo(crate_dir: &Path, args: &[&str]) {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command
        .args(args)
        .arg("--offline")
        .current_dir(crate_dir)
        .env("CARGO_TARGET_DIR", target_dir().join("weir-new-plugin"));
    let out = run(command, 900);
    let log = text(&out.stderr);
    assert!(
        out.status.success(),
        "cargo {args:?} in {}:\n{log}",
        crate_dir.display()
    );
    assert!(!log.contains("warning:"), "cargo {args:?} warned:\n{log}");
}

#[test]
fn a_new_plugin_of_each_kind_builds_passes_its_tests_loads_and_runs() {
    let dir = temp_dir("new-plugin");
    // The bundled connectors the pipeline files use, as plugin files.
    let bundled = example_plugin("stdout").parent().unwrap().to_owned();
    example_plugin("metronome");
    let built = target_dir().join("weir-new-plugin/release");
    for (flag, name, kind) in [
        ("--source", "my-source", "connector (source)"),
        // Names of types the template uses: the connector type is never one of them.
        ("--sink", "option", "connector (sink)"),
        ("--both", "config", "connector (source+sink)"),
    ] {
        let out = weir(&dir, &["new", "plugin", name, flag]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let crate_dir = dir.join(name);
        assert!(text(&out.stdout).contains("cargo build --release"));
        for file in [
            "Cargo.toml",
            "src/lib.rs",
            "tests/connector.rs",
            "README.md",
            "pipeline.toml",
        ] {
            assert!(crate_dir.join(file).is_file(), "{name}: no {file}");
        }
        // The workspace's versions of the sdk's dependencies (all fetched), not whatever
        // else the offline cache holds.
        std::fs::copy(
            workspace_root().join("Cargo.lock"),
            crate_dir.join("Cargo.lock"),
        )
        .unwrap();
        // Laid out as rustfmt lays it out.
        let mut fmt = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
        fmt.args(["fmt", "--check"]).current_dir(&crate_dir);
        let out = run(fmt, 60);
        assert!(out.status.success(), "{name}: {}", text(&out.stdout));
        // Its unit tests, and tests/connector.rs through weir-testing's harness (the
        // conformance suite among them).
        cargo(&crate_dir, &["test", "--release", "--quiet"]);
        cargo(&crate_dir, &["build", "--release", "--quiet"]);
        let library = built.join(format!("lib{}.so", name.replace('-', "_")));
        let out = weir(&dir, &["plugins", "inspect", library.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let said = text(&out.stdout);
        assert!(said.contains(&format!("name:       {name}")), "{said}");
        assert!(said.contains(kind), "{said}");
        // Its pipeline runs to its end with the bundled connectors.
        let out = weir(
            &crate_dir,
            &[
                "--plugin-dir",
                built.to_str().unwrap(),
                "--plugin-dir",
                bundled.to_str().unwrap(),
                "run",
                "pipeline.toml",
                "--no-admin-socket",
            ],
        );
        let log = text(&out.stderr);
        assert!(out.status.success(), "{name}: {log}");
        assert!(log.contains("acks=10"), "{name}: {log}");
    }
}

#[test]
fn bad_names_and_occupied_directories_are_refused() {
    let dir = temp_dir("new-plugin-refused");
    for (bad, why) in [
        ("My-Plugin", "use lowercase letters"),
        ("2fast", "use lowercase letters"),
        ("a/b", "use lowercase letters"),
        ("fn", "a Rust keyword"),
        ("alloc", "a standard crate's name"),
        ("stdout", "a connector bundled with weir"),
        ("weir-host", "the crate depends on a crate of that name"),
        ("", "a plugin needs a name"),
    ] {
        let out = weir(&dir, &["new", "plugin", bad]);
        let said = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {said}");
        assert!(said.contains(why), "{bad}: {said}");
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing was created"
    );
    std::fs::create_dir_all(dir.join("taken")).unwrap();
    std::fs::write(dir.join("taken/keep.txt"), "mine").unwrap();
    let out = weir(&dir, &["new", "plugin", "fresh", "--path", "taken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("exists and is not empty"));
    assert_eq!(
        std::fs::read_to_string(dir.join("taken/keep.txt")).unwrap(),
        "mine"
    );
    // An empty directory is fine.
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let out = weir(
        &dir,
        &["new", "plugin", "fresh", "--sink", "--path", "empty"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.join("empty/src/lib.rs").is_file());
}
