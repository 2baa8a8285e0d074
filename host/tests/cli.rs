//! `weir plugins inspect` and `--help`, run as a user would run them.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

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
        "abi:        connector 1.0 (host 1.0)",
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
