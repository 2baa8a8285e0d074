//! ABI versions and the layout fingerprint, checked at load time.

use weir_host::{LoadError, Plugin};
use weir_sdk::abi::{AbiVersion, CONNECTOR_ABI, LAYOUT_FINGERPRINT};
use weir_tests::fixture_plugin;

#[test]
fn a_different_abi_major_is_refused() {
    let path = fixture_plugin("versionmismatch");
    let error = Plugin::load(&path).unwrap_err();
    let LoadError::AbiMajorMismatch { host, plugin, .. } = error else {
        panic!("expected AbiMajorMismatch, got {error:?}")
    };
    assert_eq!(host, CONNECTOR_ABI);
    assert_eq!(
        plugin,
        AbiVersion {
            major: CONNECTOR_ABI.major + 1,
            minor: 0
        }
    );
    let message = Plugin::load(&path).unwrap_err().to_string();
    assert!(message.contains("ABI major version mismatch"), "{message}");
    assert!(message.contains("plugin was built for 2.0"), "{message}");
}

#[test]
fn a_newer_minor_than_the_host_is_refused() {
    let error = Plugin::load(fixture_plugin("minortoonew")).unwrap_err();
    let LoadError::AbiMinorTooNew { host, plugin, .. } = error else {
        panic!("expected AbiMinorTooNew, got {error:?}")
    };
    assert_eq!(host, CONNECTOR_ABI);
    assert_eq!(plugin.minor, CONNECTOR_ABI.minor + 1);
}

#[test]
fn a_layout_change_without_a_version_bump_is_refused() {
    let error = Plugin::load(fixture_plugin("layoutmismatch")).unwrap_err();
    let LoadError::LayoutMismatch {
        abi, host, plugin, ..
    } = &error
    else {
        panic!("expected LayoutMismatch, got {error:?}")
    };
    assert_eq!(*abi, CONNECTOR_ABI, "same version number");
    assert_eq!(*host, LAYOUT_FINGERPRINT);
    assert_ne!(plugin, host);
    assert!(
        error.to_string().contains("without a version bump"),
        "{error}"
    );
}

#[test]
fn compatibility_rule_is_same_major_and_plugin_minor_not_newer() {
    let host = AbiVersion { major: 1, minor: 3 };
    for (plugin, accepted) in [
        (AbiVersion { major: 1, minor: 0 }, true),
        (AbiVersion { major: 1, minor: 2 }, true),
        (AbiVersion { major: 1, minor: 3 }, true),
        (AbiVersion { major: 1, minor: 4 }, false),
        (AbiVersion { major: 0, minor: 3 }, false),
        (AbiVersion { major: 2, minor: 0 }, false),
    ] {
        assert_eq!(
            host.accepts(plugin),
            accepted,
            "host {host} loading plugin {plugin}"
        );
    }
}

#[test]
fn current_plugins_report_the_sdk_abi_not_their_crate_version() {
    let plugin = Plugin::load(fixture_plugin("bench")).unwrap();
    assert_eq!(plugin.info().abi, CONNECTOR_ABI);
    assert_eq!(plugin.info().sdk_version, env!("CARGO_PKG_VERSION"));
}

/// Runs the simulated next-minor host (`abinext-host`) on a plugin file; returns its exit
/// code and what it printed.
fn on_the_next_minor_host(plugin: &std::path::Path, config: &str) -> (Option<i32>, String) {
    let output = std::process::Command::new(weir_tests::abinext_host())
        .arg(plugin)
        .arg(config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), stdout)
}

#[test]
fn a_plugin_built_for_this_minor_loads_and_runs_on_the_next_minors_host() {
    // Built against the real sdk (this minor), loaded by a host whose sdk appended a field
    // to `HostApi` and moved to the next minor: this minor's fingerprint is kept, the
    // services are copied by size, and the connector runs.
    let (code, stdout) = on_the_next_minor_host(
        &weir_tests::example_plugin("metronome"),
        r#"{"interval_ms":1}"#,
    );
    assert_eq!(code, Some(0), "{stdout}");
    let next = AbiVersion {
        major: CONNECTOR_ABI.major,
        minor: CONNECTOR_ABI.minor + 1,
    };
    assert!(stdout.contains(&format!("host ABI {next}")), "{stdout}");
    assert!(
        stdout.contains(&format!("loaded metronome ABI {CONNECTOR_ABI}")),
        "{stdout}"
    );
    assert!(stdout.contains("pulled 1 events"), "{stdout}");
}

#[test]
fn the_next_minors_host_still_refuses_layouts_that_do_not_match_their_version() {
    // Claims the next minor with this minor's layout: not what the next minor is.
    let next = AbiVersion {
        major: CONNECTOR_ABI.major,
        minor: CONNECTOR_ABI.minor + 1,
    };
    let (code, stdout) = on_the_next_minor_host(&fixture_plugin("minortoonew"), "{}");
    assert_eq!(code, Some(2), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "layout fingerprint mismatch under the same version {next}"
        )),
        "{stdout}"
    );
    // Claims 1.0 with a drifted layout.
    let (code, stdout) = on_the_next_minor_host(&fixture_plugin("layoutmismatch"), "{}");
    assert_eq!(code, Some(2), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "layout fingerprint mismatch under the same version {CONNECTOR_ABI}"
        )),
        "{stdout}"
    );
}
