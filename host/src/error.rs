//! Errors of loading a plugin and of calling into an instance.

use std::path::PathBuf;

use crate::field_path::FieldPath;

use weir_sdk::abi::AbiVersion;

/// Why a plugin file was refused. Every variant names the file; the message is one line.
///
/// The variants follow the order of the load-time checks (see `weir_sdk::docs::safety`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Io {
        /// The plugin file.
        file: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The path is a directory, a device, a socket...
    #[error("{}: not a regular file", file.display())]
    NotAFile {
        /// The plugin file.
        file: PathBuf,
    },
    /// The file is too small to be a shared object, or unreasonably large.
    #[error("{}: implausible size for a shared object: {size} bytes (expected {min} to {max})", file.display())]
    BadSize {
        /// The plugin file.
        file: PathBuf,
        /// Its size.
        size: u64,
        /// The smallest accepted size.
        min: u64,
        /// The largest accepted size.
        max: u64,
    },
    /// Not an ELF shared object for this machine.
    #[error("{}: not a shared object for this platform: {reason}", file.display())]
    NotSharedObject {
        /// The plugin file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file does not export the metadata symbol: it is not a Weir plugin.
    #[error("{}: not a Weir plugin: no exported `{symbol}` (or `{symbol}__*`) function", file.display())]
    MissingMetadataSymbol {
        /// The plugin file.
        file: PathBuf,
        /// The symbol looked for.
        symbol: &'static str,
    },
    /// The file exports more than one metadata function (two connector crates linked into
    /// one library?): which one is the plugin is not for the host to guess.
    #[error("{}: exports {} metadata functions ({}): a plugin library holds one connector", file.display(), symbols.len(), symbols.join(", "))]
    SeveralMetadataSymbols {
        /// The plugin file.
        file: PathBuf,
        /// Their names.
        symbols: Vec<String>,
    },
    /// The metadata symbol exists but is not a function (for example a static).
    #[error("{}: `{symbol}` must be a function, but the symbol table says it is {found}", file.display())]
    MetadataSymbolNotFunction {
        /// The plugin file.
        file: PathBuf,
        /// The symbol.
        symbol: String,
        /// What it is instead.
        found: String,
    },
    /// `dlopen` failed (missing dependency, unresolved symbol...).
    #[error("{}: dlopen failed: {message}", file.display())]
    Dlopen {
        /// The plugin file.
        file: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// The metadata function panicked (the panic was caught inside the plugin).
    #[error("{}: the metadata function panicked at {location}: {message}", file.display())]
    MetadataPanicked {
        /// The plugin file.
        file: PathBuf,
        /// The panic message.
        message: String,
        /// `file:line:column` in the plugin's source.
        location: String,
    },
    /// The metadata function returned null.
    #[error("{}: the metadata function returned a null pointer", file.display())]
    NullMetadata {
        /// The plugin file.
        file: PathBuf,
    },
    /// A pointer the plugin handed out is misaligned.
    #[error("{}: {what} at {address:#x} is not aligned to {align} bytes", file.display())]
    Misaligned {
        /// The plugin file.
        file: PathBuf,
        /// What the pointer was for.
        what: String,
        /// The pointer.
        address: usize,
        /// The required alignment.
        align: usize,
    },
    /// A pointer the plugin handed out is null.
    #[error("{}: {what} is a null pointer", file.display())]
    NullPointer {
        /// The plugin file.
        file: PathBuf,
        /// What the pointer was for.
        what: String,
    },
    /// A pointer the plugin handed out points outside the plugin's own image.
    #[error("{}: {what} at {address:#x} (+{len} bytes) is not inside the plugin's own {segment} image", file.display())]
    PointerOutsideImage {
        /// The plugin file.
        file: PathBuf,
        /// What the pointer was for.
        what: String,
        /// The pointer.
        address: usize,
        /// How many bytes from there had to be inside.
        len: usize,
        /// `readable` or `executable`.
        segment: &'static str,
    },
    /// The header does not start with the Weir magic bytes.
    #[error("{}: bad magic in plugin header: expected {expected:?}, found {found:?}", file.display())]
    BadMagic {
        /// The plugin file.
        file: PathBuf,
        /// `b"WEIRPLUG"`.
        expected: [u8; 8],
        /// What the plugin has.
        found: [u8; 8],
    },
    /// The header or declaration is smaller than this host's ABI version needs.
    #[error("{}: the plugin's {what} is {found} bytes, this host needs at least {expected}", file.display())]
    TooSmall {
        /// The plugin file.
        file: PathBuf,
        /// `header` or `declaration`.
        what: &'static str,
        /// The size the host needs.
        expected: usize,
        /// The size the plugin reports.
        found: usize,
    },
    /// A plugin kind this host does not run.
    #[error("{}: unsupported plugin kind {found} (this host runs connector plugins, kind 1)", file.display())]
    UnsupportedKind {
        /// The plugin file.
        file: PathBuf,
        /// The kind the plugin reports.
        found: u32,
    },
    /// Different ABI major version.
    #[error("{}: ABI major version mismatch: host implements connector ABI {host}, plugin was built for {plugin}", file.display())]
    AbiMajorMismatch {
        /// The plugin file.
        file: PathBuf,
        /// The host's ABI version.
        host: AbiVersion,
        /// The plugin's ABI version.
        plugin: AbiVersion,
    },
    /// Same major, but the plugin needs a newer minor than the host implements.
    #[error("{}: plugin needs connector ABI {plugin}, newer than this host's {host}: upgrade the host", file.display())]
    AbiMinorTooNew {
        /// The plugin file.
        file: PathBuf,
        /// The host's ABI version.
        host: AbiVersion,
        /// The plugin's ABI version.
        plugin: AbiVersion,
    },
    /// Same version number, different type layouts: a breaking change without a version bump.
    #[error("{}: ABI layout fingerprint mismatch under the same version {abi}: the host expects {host:#018x} for ABI {abi}, the plugin has {plugin:#018x} (a frozen ABI type changed without a version bump)", file.display())]
    LayoutMismatch {
        /// The plugin file.
        file: PathBuf,
        /// The version both claim.
        abi: AbiVersion,
        /// The fingerprint the host expects of a plugin of `abi`.
        host: u64,
        /// The plugin's fingerprint.
        plugin: u64,
    },
    /// The plugin was built with `panic = "abort"`.
    #[error("{}: plugin was built with panic = \"abort\": any panic in it would kill the host; build it with panic = \"unwind\" (the default)", file.display())]
    PanicAbort {
        /// The plugin file.
        file: PathBuf,
    },
    /// A panic strategy value this host does not know.
    #[error("{}: unknown panic strategy {found} in plugin header", file.display())]
    UnknownPanicStrategy {
        /// The plugin file.
        file: PathBuf,
        /// The value.
        found: u32,
    },
    /// Built for another target triple.
    #[error("{}: plugin was built for target {plugin}, this host is {host}", file.display())]
    TargetMismatch {
        /// The plugin file.
        file: PathBuf,
        /// The host's target.
        host: String,
        /// The plugin's target.
        plugin: String,
    },
    /// A metadata string is too long or not UTF-8.
    #[error("{}: invalid {field} string in plugin header: {reason}", file.display())]
    InvalidString {
        /// The plugin file.
        file: PathBuf,
        /// Which string.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Capability bits this host does not know, or none at all.
    #[error("{}: invalid capabilities {bits:#x}: a connector must be a source (1), a sink (2) or both", file.display())]
    InvalidCapabilities {
        /// The plugin file.
        file: PathBuf,
        /// The bits.
        bits: u32,
    },
}

impl LoadError {
    /// The plugin file the error is about.
    pub fn file(&self) -> &std::path::Path {
        match self {
            Self::Io { file, .. }
            | Self::NotAFile { file }
            | Self::BadSize { file, .. }
            | Self::NotSharedObject { file, .. }
            | Self::MissingMetadataSymbol { file, .. }
            | Self::SeveralMetadataSymbols { file, .. }
            | Self::MetadataSymbolNotFunction { file, .. }
            | Self::Dlopen { file, .. }
            | Self::MetadataPanicked { file, .. }
            | Self::NullMetadata { file }
            | Self::Misaligned { file, .. }
            | Self::NullPointer { file, .. }
            | Self::PointerOutsideImage { file, .. }
            | Self::BadMagic { file, .. }
            | Self::TooSmall { file, .. }
            | Self::UnsupportedKind { file, .. }
            | Self::AbiMajorMismatch { file, .. }
            | Self::AbiMinorTooNew { file, .. }
            | Self::LayoutMismatch { file, .. }
            | Self::PanicAbort { file }
            | Self::UnknownPanicStrategy { file, .. }
            | Self::TargetMismatch { file, .. }
            | Self::InvalidString { file, .. }
            | Self::InvalidCapabilities { file, .. } => file,
        }
    }

    /// The file, to name another one (the original of a private copy).
    pub(crate) fn file_mut(&mut self) -> &mut PathBuf {
        match self {
            Self::Io { file, .. }
            | Self::NotAFile { file }
            | Self::BadSize { file, .. }
            | Self::NotSharedObject { file, .. }
            | Self::MissingMetadataSymbol { file, .. }
            | Self::SeveralMetadataSymbols { file, .. }
            | Self::MetadataSymbolNotFunction { file, .. }
            | Self::Dlopen { file, .. }
            | Self::MetadataPanicked { file, .. }
            | Self::NullMetadata { file }
            | Self::Misaligned { file, .. }
            | Self::NullPointer { file, .. }
            | Self::PointerOutsideImage { file, .. }
            | Self::BadMagic { file, .. }
            | Self::TooSmall { file, .. }
            | Self::UnsupportedKind { file, .. }
            | Self::AbiMajorMismatch { file, .. }
            | Self::AbiMinorTooNew { file, .. }
            | Self::LayoutMismatch { file, .. }
            | Self::PanicAbort { file }
            | Self::UnknownPanicStrategy { file, .. }
            | Self::TargetMismatch { file, .. }
            | Self::InvalidString { file, .. }
            | Self::InvalidCapabilities { file, .. } => file,
        }
    }

    /// The reason alone, without the file name in front.
    pub fn reason(&self) -> String {
        let text = self.to_string();
        let prefix = format!("{}: ", self.file().display());
        text.strip_prefix(&prefix)
            .map_or_else(|| text.clone(), str::to_owned)
    }

    /// Whether the file is simply not a Weir plugin (not a shared object for this machine,
    /// or one without the metadata function): found out from the file, without loading it.
    pub fn is_not_a_plugin(&self) -> bool {
        matches!(
            self,
            Self::NotAFile { .. }
                | Self::BadSize { .. }
                | Self::NotSharedObject { .. }
                | Self::MissingMetadataSymbol { .. }
        )
    }
}

/// Why a call into a connector instance failed. The instance is named by its connector id
/// and plugin name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The connector returned an error.
    #[error("connector `{connector}` (plugin `{plugin}`): `{method}` failed: {message}")]
    Failed {
        /// Connector id.
        connector: String,
        /// Plugin name.
        plugin: String,
        /// The entry point called.
        method: &'static str,
        /// The connector's message.
        message: String,
    },
    /// The connector said that retrying cannot help (`Error::permanent` in the sdk): it is
    /// stopped for good.
    #[error("connector `{connector}` (plugin `{plugin}`): `{method}` failed for good: {message}")]
    Permanent {
        /// The connector's id.
        connector: String,
        /// The plugin's name.
        plugin: String,
        /// The method that failed.
        method: &'static str,
        /// The connector's message.
        message: String,
    },
    /// The config did not match the connector's config type.
    #[error("connector `{connector}` (plugin `{plugin}`): invalid config{}: {message}", if field_path.is_empty() { String::new() } else { format!(" at `{field_path}`") })]
    Config {
        /// Connector id.
        connector: String,
        /// Plugin name.
        plugin: String,
        /// Path of the offending field, empty for the document itself.
        field_path: FieldPath,
        /// What is wrong.
        message: String,
    },
    /// The connector panicked; the instance is poisoned.
    #[error(
        "connector `{connector}` (plugin `{plugin}`): `{method}` panicked at {location}: {message}"
    )]
    Panicked {
        /// Connector id.
        connector: String,
        /// Plugin name.
        plugin: String,
        /// The entry point called.
        method: &'static str,
        /// The panic message.
        message: String,
        /// `file:line:column` in the plugin's source.
        location: String,
    },
    /// The instance panicked earlier and is not called again.
    #[error(
        "connector `{connector}` (plugin `{plugin}`): `{method}` refused: the instance is poisoned by an earlier panic"
    )]
    Poisoned {
        /// Connector id.
        connector: String,
        /// Plugin name.
        plugin: String,
        /// The entry point called.
        method: &'static str,
    },
    /// The instance was closed (its state dropped) and takes no more calls.
    #[error(
        "connector `{connector}` (plugin `{plugin}`): `{method}` refused: the instance is closed"
    )]
    Closed {
        /// Connector id.
        connector: String,
        /// Plugin name.
        plugin: String,
        /// The entry point called.
        method: &'static str,
    },
    /// The connector is not a source (or not a sink) and the call needs one.
    #[error(
        "connector `{connector}` (plugin `{plugin}`): `{method}` is not supported: the plugin is not a {side}"
    )]
    Unsupported {
        /// Connector id.
        connector: String,
        /// Plugin name.
        plugin: String,
        /// The entry point called.
        method: &'static str,
        /// `source` or `sink`.
        side: &'static str,
    },
    /// The plugin broke the ABI contract (an unknown status, a foreign vtable...).
    #[error(
        "connector `{connector}` (plugin `{plugin}`): `{method}` broke the ABI contract: {message}"
    )]
    Protocol {
        /// Connector id.
        connector: String,
        /// Plugin name.
        plugin: String,
        /// The entry point called.
        method: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The connector runs out of process (`isolation = "process"`) and its process ended
    /// during the call (a signal, an exit), stopped answering within the call deadline, or
    /// sent what the protocol does not allow; the instance is poisoned.
    #[error(
        "connector `{connector}` (plugin `{plugin}`): `{method}`: its process crashed: {reason}"
    )]
    Crashed {
        /// Connector id.
        connector: String,
        /// Plugin name.
        plugin: String,
        /// The entry point called.
        method: &'static str,
        /// How the process ended, with the last lines of its standard error.
        reason: String,
    },
}

impl CallError {
    /// Whether the instance is poisoned after this error (it panicked, now or before, or
    /// its process crashed).
    pub fn is_poisoning(&self) -> bool {
        matches!(
            self,
            Self::Panicked { .. }
                | Self::Poisoned { .. }
                | Self::Protocol { .. }
                | Self::Crashed { .. }
        )
    }

    /// Whether retrying cannot help: the connector said so ([`CallError::Permanent`]), its
    /// config is invalid, or it lacks the side it is used for.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Permanent { .. } | Self::Config { .. } | Self::Unsupported { .. }
        )
    }

    /// The connector method the error comes from (`new` for config errors).
    pub fn method(&self) -> &'static str {
        match self {
            Self::Config { .. } => "new",
            Self::Failed { method, .. }
            | Self::Permanent { method, .. }
            | Self::Panicked { method, .. }
            | Self::Poisoned { method, .. }
            | Self::Closed { method, .. }
            | Self::Unsupported { method, .. }
            | Self::Protocol { method, .. }
            | Self::Crashed { method, .. } => method,
        }
    }
}
