//! What to do about a plugin file that was refused, for `weir plugins doctor`.

use weir_sdk::abi::CONNECTOR_ABI;

use crate::error::LoadError;

/// Two hints about a refused plugin file: one for whoever runs `weir`, one for the
/// plugin's author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advice {
    /// For the person running the host.
    pub user: String,
    /// For the person who builds the plugin.
    pub author: String,
}

fn advice(user: impl Into<String>, author: impl Into<String>) -> Advice {
    Advice {
        user: user.into(),
        author: author.into(),
    }
}

impl LoadError {
    /// What to do about this refusal.
    pub fn advice(&self) -> Advice {
        let sdk = format!(
            "weir-sdk {}.x (connector ABI {CONNECTOR_ABI})",
            CONNECTOR_ABI.major
        );
        match self {
            Self::Io { .. } => advice(
                "check that the file exists and that this user may read it",
                "nothing to change in the plugin",
            ),
            Self::NotAFile { .. } | Self::BadSize { .. } | Self::NotSharedObject { .. } => advice(
                "this file is not a library for this machine: remove it from the plugin path, \
                 or ignore it (it is never loaded)",
                "build the plugin as a `cdylib` crate for this target and install the `.so` it \
                 produces",
            ),
            Self::MissingMetadataSymbol { .. } => advice(
                "this library is not a Weir plugin (it is never loaded): remove it from the \
                 plugin path if it does not belong there",
                "annotate the connector's impl with `#[weir_sdk::connector_plugin]` and build \
                 the crate as a `cdylib`",
            ),
            Self::SeveralMetadataSymbols { .. } => advice(
                "the library holds several connectors: get a build of one connector per \
                 library from its author",
                "build each connector crate as its own `cdylib`; link connector crates together \
                 only into a host binary, as built-ins",
            ),
            Self::MetadataSymbolNotFunction { .. }
            | Self::NullMetadata { .. }
            | Self::Misaligned { .. }
            | Self::NullPointer { .. }
            | Self::PointerOutsideImage { .. }
            | Self::BadMagic { .. }
            | Self::TooSmall { .. }
            | Self::InvalidString { .. }
            | Self::InvalidCapabilities { .. }
            | Self::UnknownPanicStrategy { .. } => advice(
                "the plugin's metadata is corrupt or hand-written: get a build made with \
                 weir-sdk from its author",
                format!(
                    "export the plugin only through `#[connector_plugin]` from {sdk}; do not \
                     write the metadata by hand"
                ),
            ),
            Self::MetadataPanicked { .. } => advice(
                "the plugin panics as it describes itself: report it to its author",
                "the plugin's metadata function must not panic: check what runs in it (a \
                 `#[connector_plugin]` crate's statics and version strings)",
            ),
            Self::Dlopen { .. } => advice(
                "the system loader refused the library (a missing dependency or symbol): \
                 run `ldd` on it to see which",
                "link every dependency the plugin needs, or build it against this machine's \
                 system libraries",
            ),
            Self::UnsupportedKind { .. } => advice(
                "this host runs connector plugins only: use a host that supports this kind",
                "build a connector plugin (`#[connector_plugin]`) for this host",
            ),
            Self::AbiMajorMismatch { plugin, .. } => advice(
                format!(
                    "the plugin was built for connector ABI {plugin}, this host implements \
                     {CONNECTOR_ABI}: get a build of the plugin for this host, or a host for \
                     ABI {}.x",
                    plugin.major
                ),
                format!("rebuild the plugin with {sdk}"),
            ),
            Self::AbiMinorTooNew { plugin, .. } => advice(
                format!(
                    "the plugin needs connector ABI {plugin}, newer than this host's \
                     {CONNECTOR_ABI}: upgrade weir"
                ),
                format!(
                    "to support older hosts too, build the plugin with the oldest weir-sdk \
                     whose ABI has what it needs ({sdk} for this host)"
                ),
            ),
            Self::LayoutMismatch { .. } => advice(
                "the plugin and the host disagree on the ABI's type layouts under one version \
                 number: get a build of the plugin made with a released weir-sdk",
                format!(
                    "rebuild with a released {sdk}, without patched sdk sources or test-only \
                     features"
                ),
            ),
            Self::PanicAbort { .. } => advice(
                "a panic in this plugin would kill the host, so it is refused: ask its author \
                 for a build with panic = \"unwind\"",
                "remove `panic = \"abort\"` from the plugin's Cargo profile (unwind is the \
                 default), so that the host can contain its panics",
            ),
            Self::TargetMismatch { plugin, host, .. } => advice(
                format!(
                    "the plugin was built for {plugin}, this host is {host}: get a build for \
                     this machine"
                ),
                format!("build the plugin with `--target {host}`"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use weir_sdk::abi::AbiVersion;

    use super::*;

    #[test]
    fn an_abi_mismatch_says_what_to_rebuild_with() {
        let error = LoadError::AbiMajorMismatch {
            file: PathBuf::from("libx.so"),
            host: CONNECTOR_ABI,
            plugin: AbiVersion {
                major: CONNECTOR_ABI.major + 1,
                minor: 0,
            },
        };
        let advice = error.advice();
        assert!(
            advice.user.contains("built for connector ABI 2.0"),
            "{advice:?}"
        );
        assert!(
            advice
                .author
                .contains("rebuild the plugin with weir-sdk 1.x"),
            "{advice:?}"
        );
    }
}
