//! `weir plugins inspect` and `--help`, run as a user would run them.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use weir_sdk::abi::CONNECTOR_ABI as ABI;

use weir_tests::{example_plugin, fixture_plugin};

fn weir(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .output()
        .expect("weir runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn inspect_prints_what_each_plugin_says_about_itself() {
    let metronome = example_plugin("metronome");
    let stdout = example_plugin("stdout");
    let out = weir(&[
        "plugins".as_ref(),
        "inspect".as_ref(),
        metronome.as_os_str(),
        stdout.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    for expected in [
        "name:       metronome",
        "kind:       connector (source)",
        "name:       stdout",
        "kind:       connector (sink)",
        &format!("abi:        connector {ABI} (host {ABI})"),
        "version:    0.1.0",
        "sdk:        weir-sdk 0.1.0",
    ] {
        assert!(
            printed.contains(expected),
            "missing {expected:?} in:\n{printed}"
        );
    }
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
}

#[test]
fn inspect_rejects_each_faulty_plugin_with_one_line_and_exit_code_1() {
    let faulty = [
        ("missing", "not a Weir plugin"),
        ("versionmismatch", "ABI major version mismatch"),
        ("minortoonew", "newer than this host's"),
        ("layoutmismatch", "layout fingerprint mismatch"),
        ("wrongtype", "must be a function"),
        ("wrongaddress-null", "null pointer"),
        (
            "wrongaddress-foreign",
            "not inside the plugin's own readable image",
        ),
        ("wrongaddress-vtable", "is a null pointer"),
        ("panicmeta", "the metadata function panicked"),
        ("panicabort", "panic = \"abort\""),
    ];
    let good = example_plugin("metronome");
    let paths: Vec<_> = faulty
        .iter()
        .map(|(name, _)| fixture_plugin(name))
        .collect();
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["plugins".as_ref(), "inspect".as_ref(), good.as_os_str()];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    let out = weir(&args);

    assert_eq!(out.status.signal(), None, "weir died of a signal");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("name:       metronome"),
        "good plugins are still shown"
    );
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        faulty.len(),
        "one line per rejected file:\n{stderr}"
    );
    for ((_, reason), (line, path)) in faulty.iter().zip(lines.iter().zip(&paths)) {
        let prefix = format!("{}: ", path.display());
        assert!(
            line.starts_with(&prefix),
            "{line:?} should start with {prefix:?}"
        );
        assert!(line.contains(reason), "{line:?} should say {reason:?}");
    }
}

#[test]
fn inspect_of_a_file_that_does_not_exist_fails_cleanly() {
    let out = weir(&[
        "plugins".as_ref(),
        "inspect".as_ref(),
        "/no/such/libplugin.so".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "/no/such/libplugin.so: cannot read: No such file or directory (os error 2)"
    );
}

#[test]
fn help_explains_the_commands() {
    let out = weir(&["--help".as_ref()]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(
        help.contains("plugins") && help.contains("RUST_LOG"),
        "{help}"
    );

    let out = weir(&["plugins".as_ref(), "--help".as_ref()]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("inspect"),
        "{}",
        text(&out.stdout)
    );

    let out = weir(&["plugins".as_ref(), "inspect".as_ref(), "--help".as_ref()]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("FILE: reason"),
        "{}",
        text(&out.stdout)
    );

    let out = weir(&["plugins".as_ref(), "inspect".as_ref()]);
    assert_eq!(out.status.code(), Some(2), "missing FILE is a usage error");
}

fn copy_to(plugin: &std::path::Path, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let to = dir.join(name);
    std::fs::copy(plugin, &to).unwrap();
    to
}

#[test]
fn the_plugin_path_is_flags_then_environment_then_pipeline_file_then_executable_dir() {
    let root = weir_tests::temp_dir("cli-path-order");
    let metronome = example_plugin("metronome");
    let (a, b, c) = (root.join("a"), root.join("b"), root.join("pipeline/c"));
    let in_a = copy_to(&metronome, &a, "libmetronome.so");
    let in_b = copy_to(&metronome, &b, "libmetronome.so");
    let in_c = copy_to(&metronome, &c, "libmetronome.so");
    let pipeline = root.join("pipeline/p.toml");
    std::fs::write(
        &pipeline,
        "plugin_path = [\"c\"]\n[[connector]]\nid = \"x\"\nplugin = \"metronome\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["plugins", "list", "--json", "--pipeline"])
        .arg(&pipeline)
        .arg("--plugin-dir")
        .arg(&a)
        .env("WEIR_PLUGIN_PATH", &b)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dirs: Vec<&str> = listing["plugin_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let exe_dir = std::path::Path::new(env!("CARGO_BIN_EXE_weir"))
        .parent()
        .unwrap();
    assert_eq!(
        dirs,
        [
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            c.to_str().unwrap(),
            exe_dir.to_str().unwrap()
        ]
    );
    let status = |file: &std::path::Path| {
        listing["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["file"] == file.to_str().unwrap())
            .unwrap_or_else(|| panic!("{} not listed: {listing}", file.display()))
            .clone()
    };
    assert_eq!(status(&in_a)["status"], "ok");
    for shadowed in [&in_b, &in_c] {
        assert_eq!(status(shadowed)["status"], "shadowed");
        assert_eq!(status(shadowed)["shadowed_by"], in_a.to_str().unwrap());
    }
    assert_eq!(status(&in_a)["name"], "metronome");
    assert_eq!(status(&in_a)["abi"], ABI.to_string());
}

#[test]
fn list_and_doctor_show_every_status_with_advice() {
    let dir = weir_tests::temp_dir("cli-statuses");
    let ok = copy_to(&fixture_plugin("counter"), &dir, "libcounter.so");
    let newer = copy_to(&fixture_plugin("counter-v2"), &dir, "libcounter_v2.so");
    let shadowed = copy_to(
        &fixture_plugin("counter"),
        &dir.join("old"),
        "libcounter.so",
    );
    let incompatible = copy_to(
        &fixture_plugin("versionmismatch"),
        &dir,
        "libversionmismatch.so",
    );
    let not_a_plugin = copy_to(&fixture_plugin("missing"), &dir, "libmissing.so");
    let list = weir(&[
        "plugins".as_ref(),
        "list".as_ref(),
        "--plugin-dir".as_ref(),
        dir.as_os_str(),
    ]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let printed = text(&list.stdout);
    let line = |file: &std::path::Path| {
        printed
            .lines()
            .find(|l| l.contains(&format!("{}  ", file.display())))
            .unwrap_or_else(|| panic!("{} not listed:\n{printed}", file.display()))
            .to_owned()
    };
    assert!(line(&ok).starts_with("counter "), "{printed}");
    assert!(line(&ok).ends_with("  ok"), "{printed}");
    assert!(line(&newer).contains("0.2.0"), "{printed}");
    assert!(
        line(&newer).ends_with("  ok"),
        "both versions are usable: {printed}"
    );
    assert!(
        line(&shadowed).ends_with(&format!("shadowed by {}", ok.display())),
        "{printed}"
    );
    assert!(
        line(&incompatible).contains("incompatible: ABI major version mismatch"),
        "{printed}"
    );
    assert!(
        line(&not_a_plugin).contains("not a plugin: not a Weir plugin"),
        "{printed}"
    );

    let doctor = weir(&["plugins".as_ref(), "doctor".as_ref(), dir.as_os_str()]);
    assert_eq!(
        doctor.status.code(),
        Some(1),
        "an incompatible plugin: {doctor:?}"
    );
    let advice = text(&doctor.stdout);
    for expected in [
        &format!(
            "for you:            the plugin was built for connector ABI 2.0, this host implements {ABI}"
        ),
        "for its author:     rebuild the plugin with weir-sdk 1.x",
        "for you:            this library is not a Weir plugin (it is never loaded)",
        &format!("counter 0.1.0 is also in {}", ok.display()),
        &format!(
            "{}: ok: counter 0.2.0, connector (source), ABI {ABI}",
            newer.display()
        ),
    ] {
        assert!(
            advice.contains(expected),
            "missing {expected:?} in:\n{advice}"
        );
    }
    let healthy = weir(&["plugins".as_ref(), "doctor".as_ref(), ok.as_os_str()]);
    assert!(healthy.status.success(), "{healthy:?}");

    // A file that is not there is not an incompatible plugin: it says so.
    let missing = dir.join("libgone.so");
    let doctor = weir(&["plugins".as_ref(), "doctor".as_ref(), missing.as_os_str()]);
    assert_eq!(doctor.status.code(), Some(1), "{doctor:?}");
    let said = text(&doctor.stdout);
    assert!(
        said.starts_with(&format!("{}: cannot read: No such file", missing.display())),
        "{said}"
    );
    assert!(!said.contains("incompatible"), "{said}");
}

#[test]
fn a_bare_file_name_is_the_file_in_the_current_directory_not_a_library_path_search() {
    let path = example_plugin("blackhole");
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["plugins", "inspect"])
        .arg(path.file_name().unwrap())
        .current_dir(path.parent().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("name:       blackhole"),
        "{}",
        text(&out.stdout)
    );
}
