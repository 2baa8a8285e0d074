//! Built-ins: connector types linked into a host binary and called through their Rust
//! trait, without the C ABI.
//!
//! A connector crate that is also built as an `rlib` (`crate-type = ["cdylib", "rlib"]`)
//! can be a dependency of a host binary; [`Builtin::of`] describes its connector type to
//! the host, which then creates instances with [`Builtin::create`] and calls them through
//! [`NativeConnector`]: direct Rust calls into the connector's methods, with the panic trap
//! and the same meaning for every request as through the C ABI (the trampolines and this
//! module share that code). The host's context and batches are the same as a plugin's.
//!
//! This is what a host needs; a plugin author writes nothing for it beyond
//! `#[connector_plugin]`. Several connector crates link into one binary side by side: each
//! exports its metadata function under a name of its own (see
//! [`METADATA_SYMBOL`](crate::abi::METADATA_SYMBOL)).

use std::fmt;

use crate::__private::error_kind;
use crate::abi::{Capabilities, EventWriter, Feedback, HostApi, Notice, RawEventView, ReplyCode};
use crate::connector::{Circuit, Connector, ConnectorContext, PullStatus};

/// The version of this sdk (what a plugin built with it reports as its sdk version).
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What `#[connector_plugin]` knows about a connector type at compile time. Implemented by
/// the macro (its constants are what the plugin's metadata says); implementing it by hand
/// makes a type a built-in without the C ABI export, which is not supported.
///
/// `Send` is required here rather than on [`Connector`], so that a state that is not
/// `Send` gets one error, on its impl, instead of one per trait the macro implements.
pub trait ConnectorPlugin: Connector + Send {
    /// The plugin's name.
    const NAME: &'static str;
    /// The plugin's own version.
    const VERSION: &'static str;
    /// Source, sink, or both, as inferred from the methods the impl defines.
    const CAPABILITIES: Capabilities;
}

/// The metadata function `#[connector_plugin]` exported for a type, so that a host can
/// also validate and call a connector linked into its own binary through the C ABI
/// (`weir_host::Plugin::linked`), as it would the same connector in a plugin file.
///
/// # Safety
/// `METADATA` must be the function the sdk's export macro generated for `Self`. The macro
/// implements this trait; do not implement it by hand.
pub unsafe trait Exported {
    /// The exported metadata function.
    const METADATA: crate::abi::MetadataFn;
}

/// A connector type a host runs as a built-in: its name, version and capabilities, and how
/// to create an instance.
#[derive(Clone, Copy)]
pub struct Builtin {
    name: &'static str,
    version: &'static str,
    capabilities: Capabilities,
    create: CreateFn,
}

/// Creates an instance of one connector type from its config and context.
type CreateFn = fn(&[u8], ConnectorContext) -> Result<Box<dyn NativeConnector>, Fault>;

impl Builtin {
    /// The built-in for connector type `T` (a type with `#[connector_plugin]` on its impl).
    pub fn of<T: ConnectorPlugin>() -> Self {
        Self {
            name: T::NAME,
            version: T::VERSION,
            capabilities: T::CAPABILITIES,
            create: crate::__private::native::create::<T>,
        }
    }

    /// The plugin name pipelines refer to.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The connector crate's own version.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// Source, sink or both.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Creates an instance from its config (JSON), with the connector's id, the host's
    /// services and how the pipeline binds it, as `create` does through the C ABI.
    ///
    /// # Errors
    /// [`Fault::Config`] when the config does not fit the connector's config type,
    /// [`Fault::Failed`] when its constructor returns an error, [`Fault::Panicked`] when it
    /// panics.
    ///
    /// # Safety
    /// Every function in `host` must be callable with `host.ctx` from any thread for as
    /// long as the instance lives (what a host promises a plugin, see [`HostApi::ctx`]).
    pub unsafe fn create(
        &self,
        config: &[u8],
        connector_id: &str,
        host: HostApi,
        bound_as: Capabilities,
    ) -> Result<Box<dyn NativeConnector>, Fault> {
        let ctx = ConnectorContext::new(connector_id.to_owned(), host, bound_as);
        (self.create)(config, ctx)
    }
}

impl fmt::Debug for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builtin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

pub(crate) mod sealed {
    /// Keeps [`NativeConnector`](super::NativeConnector) implemented by the sdk only.
    pub trait Sealed {}
}

/// Why a call into a built-in did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The config does not fit the connector's config type.
    Config {
        /// What is wrong.
        message: String,
        /// Where: a JSON array of keys and indices, empty for the document itself (as in
        /// [`ErrorReport::field_path`](crate::abi::ErrorReport::field_path)).
        field_path: String,
    },
    /// The connector returned an error.
    Failed {
        /// Its message.
        message: String,
        /// It said that retrying cannot help ([`Error::permanent`](crate::Error::permanent)).
        permanent: bool,
    },
    /// The connector panicked; the instance refuses every later call.
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column`, empty when unknown.
        location: String,
    },
    /// An earlier call panicked: not called.
    Poisoned,
    /// The instance was closed: not called.
    Closed,
    /// The connector is not a source (for `pull` and `feedback`) or not a sink (for
    /// `sink_batch`).
    Unsupported,
}

impl Fault {
    pub(crate) fn failed(error: &crate::Error) -> Self {
        Self::Failed {
            message: error.message().to_owned(),
            permanent: error_kind(error) == crate::abi::ErrorKind::PERMANENT,
        }
    }
}

/// What a sink batch changed besides the replies.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkOutcome {
    /// How many events went through `on_event`, from the first (the others were not offered).
    pub processed: usize,
    /// The circuit-breaker change the sink asked for, if any.
    pub circuit: Option<Circuit>,
    /// The errors of single events, which failed them (in order).
    pub errors: Vec<String>,
}

/// One instance of a built-in, as the host calls it. Each method is the connector
/// method(s) of the same request through the C ABI, called directly, with panics caught.
/// Sealed: the sdk implements it for every [`ConnectorPlugin`] type ([`Builtin::create`]).
pub trait NativeConnector: sealed::Sealed + Send {
    /// Connects; `Ok(false)` means "retry later".
    ///
    /// # Errors
    /// See [`Fault`].
    fn connect(&mut self, attempt: u32) -> Result<bool, Fault>;

    /// A lifecycle or circuit-breaker notice.
    ///
    /// # Errors
    /// See [`Fault`].
    fn notify(&mut self, notice: Notice) -> Result<(), Fault>;

    /// One pull of up to `max_events` (a wish, as through the ABI) into `writer`.
    ///
    /// # Errors
    /// See [`Fault`].
    ///
    /// # Safety
    /// `writer`'s functions must be callable with its `ctx` for the whole call.
    unsafe fn pull(&mut self, writer: &EventWriter, max_events: u32) -> Result<PullStatus, Fault>;

    /// Acks and fails for events this source produced.
    ///
    /// # Errors
    /// See [`Fault`].
    fn feedback(&mut self, items: &[Feedback]) -> Result<(), Fault>;

    /// Delivers a batch (or, when `events` is empty, a tick), writing one reply per event
    /// into `replies` (as long as `events`); `outcome` says what else happened, also when
    /// the call fails.
    ///
    /// # Errors
    /// See [`Fault`].
    ///
    /// # Safety
    /// The slices of every view in `events` must be valid for reads for the whole call.
    unsafe fn sink_batch(
        &mut self,
        events: &[RawEventView],
        replies: &mut [ReplyCode],
        outcome: &mut SinkOutcome,
    ) -> Result<(), Fault>;

    /// Drops the connector's state under the panic trap; later calls get [`Fault::Closed`].
    ///
    /// # Errors
    /// [`Fault::Panicked`] if its `Drop` panicked.
    fn close(&mut self) -> Result<(), Fault>;
}
