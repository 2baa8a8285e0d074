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
