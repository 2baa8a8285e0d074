//! Glue that `#[connector_plugin]` expands to. Not public API: no semver guarantees.
//!
//! The generated code is thin: it implements [`Export`] for the user's type and invokes
//! [`export_connector!`](crate::__export_connector). Everything that touches raw pointers or
//! catches panics is written once, here.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Once, OnceLock};

use serde::de::DeserializeOwned;

use crate::abi::HostApi;
use crate::abi::{
    AbiSlice, CONNECTOR_ABI, CallStatus, Capabilities, CircuitChange, CloseArgs, ConnectArgs,
    Connected, ConnectorFfi, ConnectorObject, ConnectorPluginDecl, ConnectorVtable, CreateArgs,
    ErrorKind, ErrorReport, ErrorSink, ExtensionArgs, FeedbackArgs, LAYOUT_FINGERPRINT, MAGIC,
    NotifyArgs, PanicStrategy, PluginHeader, PluginKind, PullArgs, PullHint, SinkArgs,
};
use crate::connector::{Circuit, Connector, ConnectorContext, PullStatus, SourceBatch};
use dispatch::Delivered;

pub use crate::__export_connector as export_connector;

pub use crate::builtin::ConnectorPlugin as Export;

/// Why a config was refused: its kind, the message, and the field path as JSON.
pub type ConfigError = (ErrorKind, String, String);

pub(crate) mod dispatch;
pub(crate) mod native;

/// Defines the exported metadata function for a connector type implementing [`Export`],
/// under the symbol name the macro chose ([`METADATA_SYMBOL_PREFIX`](crate::abi::METADATA_SYMBOL_PREFIX)
/// and a suffix unique to the crate, its version and the type).
///
/// Written as a `macro_rules!` in the sdk (not as tokens from the proc macro) so that the
/// `export_name` attribute is not attributed to the plugin crate, which keeps
/// `#![forbid(unsafe_code)]` usable in plugins.
#[cfg(not(feature = "__abi-1-0-for-tests"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_connector {
    ($ty:ty, $symbol:literal) => {
        /// Weir plugin metadata: returns the plugin's `ConnectorPluginDecl`.
        #[unsafe(export_name = $symbol)]
        pub extern "C" fn weir_plugin_metadata(
            error: $crate::abi::ErrorSink,
        ) -> *const $crate::abi::PluginHeader {
            $crate::__metadata_body!($ty, error)
        }

        // SAFETY: `weir_plugin_metadata` above is the function generated for `$ty`.
        unsafe impl $crate::builtin::Exported for $ty {
            const METADATA: $crate::abi::MetadataFn = weir_plugin_metadata;
        }
    };
}

/// As it was at ABI 1.0 (test-only feature `__abi-1-0-for-tests`): the metadata function
/// under the bare [`METADATA_SYMBOL`](crate::abi::METADATA_SYMBOL).
#[cfg(feature = "__abi-1-0-for-tests")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_connector {
    ($ty:ty, $symbol:literal) => {
        /// Weir plugin metadata: returns the plugin's `ConnectorPluginDecl`.
        #[unsafe(no_mangle)]
        pub extern "C" fn weir_plugin_metadata(
            error: $crate::abi::ErrorSink,
        ) -> *const $crate::abi::PluginHeader {
            $crate::__metadata_body!($ty, error)
        }

        // SAFETY: `weir_plugin_metadata` above is the function generated for `$ty`.
        unsafe impl $crate::builtin::Exported for $ty {
            const METADATA: $crate::abi::MetadataFn = weir_plugin_metadata;
        }
    };
}

/// The body of the metadata function: the declaration, built once, with the panic strategy
/// of the plugin crate's own profile.
#[doc(hidden)]
#[macro_export]
macro_rules! __metadata_body {
    ($ty:ty, $error:ident) => {{
        static DECL: ::std::sync::OnceLock<$crate::abi::ConnectorPluginDecl> =
            ::std::sync::OnceLock::new();
        // Evaluated here, in the plugin crate, with the plugin's own profile.
        let panic_strategy = if ::core::cfg!(panic = "unwind") {
            $crate::abi::PanicStrategy::UNWIND
        } else {
            $crate::abi::PanicStrategy::ABORT
        };
        $crate::__private::metadata::<$ty>(&DECL, panic_strategy, $error)
    }};
}

/// Builds (once) and returns the plugin's declaration, trapping any panic.
pub fn metadata<T: Export>(
    decl: &'static OnceLock<ConnectorPluginDecl>,
    panic_strategy: PanicStrategy,
    error: ErrorSink,
) -> *const PluginHeader {
    trap(error, || {
        let decl = decl.get_or_init(|| ConnectorPluginDecl {
            header: PluginHeader {
                magic: MAGIC,
                header_size: size_of::<PluginHeader>() as u32,
                kind: PluginKind::CONNECTOR,
                abi: CONNECTOR_ABI,
                decl_size: size_of::<ConnectorPluginDecl>() as u32,
                layout_fingerprint: LAYOUT_FINGERPRINT,
                panic_strategy,
                target: AbiSlice::from_str(crate::abi::TARGET),
                sdk_version: AbiSlice::from_str(env!("CARGO_PKG_VERSION")),
                name: AbiSlice::from_str(T::NAME),
                version: AbiSlice::from_str(T::VERSION),
            },
            capabilities: T::CAPABILITIES,
            vtable: vtable_of::<T>(),
            create: create::<T>,
        });
        &decl.header as *const PluginHeader
    })
    .unwrap_or(core::ptr::null())
}

/// The address of the vtable `thin_trait_object` generated for `Adapter<T>`.
///
/// `thin_trait_object` only hands the vtable out through an object, so this builds an
/// empty one (no connector state, no user code runs) and reads its vtable pointer.
fn vtable_of<T: Export>() -> *const ConnectorVtable {
    let empty = ConnectorObject::new(Adapter::<T> {
        state: None,
        ctx: ConnectorContext::detached(""),
        poisoned: false,
    });
    empty.vtable() as *const ConnectorVtable
}

/// Creates an instance: parses the config, runs `T::new`, boxes the state behind the
/// vtable. Never unwinds.
extern "C" fn create<T: Export>(args: &mut CreateArgs) -> CallStatus {
    args.instance = core::ptr::null_mut();
    let error = args.error;
    // SAFETY: the host passes slices that are valid for the duration of this call.
    let (config, id) = unsafe { (args.config.as_bytes(), args.connector_id.as_bytes()) };
    // SAFETY: the host passes a pointer to its `HostApi`, valid for this call.
    let host = unsafe { HostApi::copy_from(args.host) };
    crate::log::install(&host);
    let created = trap_for(error, Some(&host), || {
        let config = <T::Config as crate::ConnectorConfig>::__from_host(config)?;
        let ctx = ConnectorContext::new(
            String::from_utf8_lossy(id).into_owned(),
            host,
            args.bound_as,
        );
        let state =
            T::new(config, &ctx).map_err(|e| (error_kind(&e), e.to_string(), String::new()))?;
        let adapter = Adapter::<T> {
            state: Some(state),
            ctx,
            poisoned: false,
        };
        Ok(ConnectorObject::new(adapter).into_raw())
    });
    match created {
        None => CallStatus::PANICKED,
        Some(Err((kind, message, field_path))) => {
            report(error, kind, &message, "", &field_path);
            CallStatus::ERROR
        }
        Some(Ok(instance)) => {
            args.instance = instance.cast();
            CallStatus::OK
        }
    }
}

pub(crate) fn parse_config<C: DeserializeOwned>(json: &[u8]) -> Result<C, ConfigError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(json);
    let value = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = field_path_json(error.path());
        let inner = error.into_inner();
        // serde_json appends "at line L column C" of the host-generated JSON document,
        // which means nothing to the user: the field path says where the problem is.
        let mut message = inner.to_string();
        if inner.line() > 0
            && let Some(cut) = message.rfind(" at line ")
        {
            message.truncate(cut);
        }
        (ErrorKind::CONFIG, message, path)
    })?;
    Ok(value)
}

/// A field path as it crosses to the host: a JSON array of keys (strings) and indices
/// (integers), so that keys holding `.` or `[` stay whole; empty for the document itself.
fn field_path_json(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let segments: Vec<serde_json::Value> = path
        .iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some((*index).into()),
            Segment::Map { key } => Some(key.as_str().into()),
            Segment::Enum { variant } => Some(variant.as_str().into()),
            Segment::Unknown => None,
        })
        .collect();
    if segments.is_empty() {
        String::new()
    } else {
        serde_json::Value::Array(segments).to_string()
    }
}

/// The connector state behind the vtable, with the poison flag the trampolines maintain.
pub struct Adapter<T: Connector> {
    state: Option<T>,
    ctx: ConnectorContext,
    poisoned: bool,
}

impl<T: Connector> Adapter<T> {
    /// Runs `f` on the state under the panic trap. Errors are reported to `error`; a panic
    /// poisons the instance.
    fn call<R>(
        &mut self,
        error: ErrorSink,
        f: impl FnOnce(&mut T, &ConnectorContext) -> crate::Result<R>,
    ) -> Result<R, CallStatus> {
        if self.poisoned {
            return Err(CallStatus::POISONED);
        }
        let Some(state) = self.state.as_mut() else {
            report(
                error,
                ErrorKind::CONNECTOR,
                "the connector was closed",
                "",
                "",
            );
            return Err(CallStatus::POISONED);
        };
        let ctx = &self.ctx;
        match trap_for(error, Some(ctx.host()), || f(state, ctx)) {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => {
                report(error, error_kind(&e), e.message(), "", "");
                Err(CallStatus::ERROR)
            }
            None => {
                self.poisoned = true;
                Err(CallStatus::PANICKED)
            }
        }
    }
}

/// How a connector's error is reported: permanent errors stop the connector for good.
pub(crate) fn error_kind(error: &crate::Error) -> ErrorKind {
    if error.is_permanent() {
        ErrorKind::PERMANENT
    } else {
        ErrorKind::CONNECTOR
    }
}

fn status<R>(result: Result<R, CallStatus>) -> CallStatus {
    match result {
        Ok(_) => CallStatus::OK,
        Err(status) => status,
    }
}

impl<T: Export> ConnectorFfi for Adapter<T> {
    extern "C" fn connect(&mut self, args: &mut ConnectArgs) -> CallStatus {
        let attempt = args.attempt;
        let result = self.call(args.error, |state, ctx| state.connect(ctx, attempt));
        args.connected = if matches!(result, Ok(true)) {
            Connected::YES
        } else {
            Connected::NOT_YET
        };
        status(result)
    }

    extern "C" fn notify(&mut self, args: &mut NotifyArgs) -> CallStatus {
        let notice = args.notice;
        status(self.call(args.error, |state, ctx| {
            dispatch::notify(state, ctx, notice)
        }))
    }

    extern "C" fn pull(&mut self, args: &mut PullArgs) -> CallStatus {
        if !T::CAPABILITIES.contains(Capabilities::SOURCE) {
            return CallStatus::UNSUPPORTED;
        }
        let writer = args.writer;
        let capacity = args.max_events as usize;
        let result = self.call(args.error, |state, ctx| {
            dispatch::pull(state, ctx, &mut SourceBatch::new(&writer, capacity))
        });
        if let Ok(pulled) = result {
            args.hint = match pulled {
                PullStatus::Ready => PullHint::READY,
                PullStatus::Empty => PullHint::EMPTY,
                PullStatus::Finished => PullHint::FINISHED,
            };
        }
        status(result)
    }

    extern "C" fn source_feedback(&mut self, args: &mut FeedbackArgs) -> CallStatus {
        if !T::CAPABILITIES.contains(Capabilities::SOURCE) {
            return CallStatus::UNSUPPORTED;
        }
        // SAFETY: the host passes `len` valid `Feedback` items for the duration of the call.
        let items = unsafe { slice_from_raw(args.items, args.len) };
        status(self.call(args.error, |state, ctx| {
            dispatch::feedback(state, ctx, items)
        }))
    }

    extern "C" fn sink_batch(&mut self, args: &mut SinkArgs) -> CallStatus {
        if !T::CAPABILITIES.contains(Capabilities::SINK) {
            return CallStatus::UNSUPPORTED;
        }
        let error = args.error;
        // SAFETY: the host passes `len` valid event views and `len` writable reply slots,
        // not aliased by anything else, for the duration of the call.
        let (events, replies) = unsafe {
            (
                slice_from_raw(args.events, args.len),
                slice_from_raw_mut(args.replies, args.len),
            )
        };
        let mut delivered = Delivered::default();
        let result = self.call(error, |state, ctx| {
            // SAFETY: the host keeps the event bytes alive for the duration of the call.
            unsafe {
                dispatch::sink_batch(state, ctx, events, replies, &mut delivered, |message| {
                    report(error, ErrorKind::CONNECTOR, message, "", "")
                })
            }
        });
        args.processed = delivered.processed;
        args.circuit = match delivered.circuit {
            None => CircuitChange::NONE,
            Some(Circuit::Closed) => CircuitChange::CLOSE,
            Some(Circuit::Open) => CircuitChange::OPEN,
        };
        status(result)
    }

    extern "C" fn close(&mut self, args: &mut CloseArgs) -> CallStatus {
        let Some(state) = self.state.take() else {
            return CallStatus::OK;
        };
        match trap(args.error, move || drop(state)) {
            Some(()) => CallStatus::OK,
            None => {
                self.poisoned = true;
                CallStatus::PANICKED
            }
        }
    }

    extern "C" fn extension(&mut self, args: &mut ExtensionArgs) -> CallStatus {
        // ABI 1.0 defines no extension tables yet; see `docs::abi_evolution`.
        args.table = core::ptr::null();
        CallStatus::OK
    }
}

impl<T: Connector> Drop for Adapter<T> {
    fn drop(&mut self) {
        // The host calls `close` first and gets any panic reported; this is the fallback for
        // a host that did not, where there is nobody left to report to.
        if let Some(state) = self.state.take() {
            let _ = trap(ErrorSink::DISCARD, move || drop(state));
        }
    }
}

/// # Safety
/// `ptr` must be valid for `len` reads of `T` for `'a` (it may be null when `len` is 0).
unsafe fn slice_from_raw<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if len == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// # Safety
/// `ptr` must be valid for `len` reads and writes of `T` for `'a`, not aliased elsewhere
/// (it may be null when `len` is 0).
unsafe fn slice_from_raw_mut<'a, T>(ptr: *mut T, len: usize) -> &'a mut [T] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts_mut(ptr, len) }
}

/// Sends one error report to the host, if it wants reports.
pub fn report(error: ErrorSink, kind: ErrorKind, message: &str, location: &str, field_path: &str) {
    let Some(report) = error.report else { return };
    let record = ErrorReport {
        kind,
        message: AbiSlice::from_str(message),
        location: AbiSlice::from_str(location),
        field_path: AbiSlice::from_str(field_path),
    };
    // SAFETY: the host passed this function and context for the duration of the current
    // call; `record` borrows strings that outlive the call.
    unsafe { report(error.ctx, &record) };
}

/// What the trampolines keep per thread, in one thread-local (one lookup per call).
struct TrapState {
    /// How many trampolines are active on this thread (they can nest: `create` runs `new`).
    depth: Cell<u32>,
    /// The host services of the instance whose call is running, for the log bridge (null
    /// outside calls). A pointer, not a copy: set and restored on every call, it costs two
    /// words there rather than the whole `HostApi` (measured in `plugin_calls`).
    host: Cell<*const HostApi>,
}

thread_local! {
    static TRAP: TrapState = const {
        TrapState { depth: Cell::new(0), host: Cell::new(core::ptr::null()) }
    };
    /// The last panic caught by the hook on this thread, with its location.
    static LAST_PANIC: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Installs (once per plugin: every cdylib has its own std and so its own hook) a panic hook
/// that records the message and location of panics inside a trampoline instead of printing
/// them, and defers to the previous hook for every other panic.
#[inline]
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    if HOOK.is_completed() {
        return;
    }
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let trapped = TRAP.try_with(|t| t.depth.get()).unwrap_or(0) > 0;
            if !trapped {
                return previous(info);
            }
            let message = payload_message(info.payload());
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let _ = LAST_PANIC.try_with(|last| *last.borrow_mut() = Some((message, location)));
        }));
    });
}

fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Aborts the process if dropped during unwinding: a panic that escapes a trampoline
/// anyway (a panicking panic payload `Drop`) must not unwind into `extern "C"` frames.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!("weir plugin: a panic escaped the trampoline; aborting");
        std::process::abort();
    }
}

/// Runs `f`, catching any panic. A panic is reported to `error` (message and location) and
/// yields `None`. Never unwinds.
pub fn trap<R>(error: ErrorSink, f: impl FnOnce() -> R) -> Option<R> {
    trap_for(error, None, f)
}

/// The host services of the instance whose call is running on this thread, if any.
pub(crate) fn current_host() -> Option<HostApi> {
    let host = TRAP.try_with(|t| t.host.get()).ok()?;
    // SAFETY: a non-null pointer was set by `catch_for` from a reference that outlives the
    // trapped call in progress on this thread, and is reset when that call returns; the
    // host services are only read (a copy is returned).
    unsafe { host.as_ref() }.copied()
}

/// [`trap`], with `host` as the current instance's host services while `f` runs (so the
/// log bridge tags records with the right connector).
fn trap_for<R>(error: ErrorSink, host: Option<&HostApi>, f: impl FnOnce() -> R) -> Option<R> {
    match catch_for(host, f) {
        Ok(value) => Some(value),
        Err((message, location)) => {
            report(error, ErrorKind::PANIC, &message, &location, "");
            None
        }
    }
}

/// Runs `f`, catching any panic, which comes back as its message and location (empty when
/// unknown). `host` is the current instance's host services while `f` runs. Never unwinds.
pub(crate) fn catch_for<R>(
    host: Option<&HostApi>,
    f: impl FnOnce() -> R,
) -> Result<R, (String, String)> {
    install_panic_hook();
    let guard = AbortOnUnwind;
    // One thread-local lookup per call: in a dlopen'ed library each lookup is a call into
    // the dynamic loader's TLS resolver. The trapped call itself runs outside the `with`
    // closure, where it optimizes as well as a direct call (measured in `plugin_calls`).
    let state: *const TrapState = TRAP.with(|t| t as *const TrapState);
    // SAFETY: a thread-local lives until its thread exits, and this function returns on the
    // thread that looked it up, so the pointer is valid for the whole call. Only `Cell`s are
    // accessed through it (shared access, no `&mut`).
    let t = unsafe { &*state };
    t.depth.set(t.depth.get() + 1);
    let outer = host.map(|h| t.host.replace(h));
    // AssertUnwindSafe: after a panic the instance is poisoned and never called again, so
    // no broken invariant of the captured state is observed.
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    if let Some(outer) = outer {
        t.host.set(outer);
    }
    t.depth.set(t.depth.get() - 1);
    let value = result.map_err(|payload| {
        let caught = LAST_PANIC
            .with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| (payload_message(&*payload), String::new()));
        // A payload's own `Drop` may panic too (`panic_any` of such a type): that second
        // panic is caught here and its payload leaked, rather than unwinding out of the
        // trampoline (which aborts the host).
        if let Err(again) = panic::catch_unwind(AssertUnwindSafe(|| drop(payload))) {
            core::mem::forget(again);
        }
        caught
    });
    core::mem::forget(guard);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialized")]
    struct Outer {
        name: String,
        inner: Vec<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[expect(dead_code, reason = "only deserialized")]
    struct Inner {
        port: u16,
    }

    #[test]
    fn config_errors_carry_the_field_path_and_no_json_position() {
        let (kind, message, path) =
            parse_config::<Outer>(br#"{"name":"x","inner":[{"port":1},{"port":"high"}]}"#)
                .unwrap_err();
        assert_eq!(kind, ErrorKind::CONFIG);
        assert_eq!(path, r#"["inner",1,"port"]"#);
        assert_eq!(message, r#"invalid type: string "high", expected u16"#);

        let (_, message, path) = parse_config::<Outer>(br#"{"inner":[]}"#).unwrap_err();
        assert_eq!(
            (message.as_str(), path.as_str()),
            ("missing field `name`", "")
        );

        let (_, message, _) =
            parse_config::<Outer>(br#"{"name":"x","inner":[],"extra":1}"#).unwrap_err();
        assert!(message.starts_with("unknown field `extra`"), "{message}");

        // A map key with the characters of the path notation stays one segment.
        let (_, _, path) =
            parse_config::<std::collections::BTreeMap<String, Inner>>(br#"{"a.b[0]":{"port":-1}}"#)
                .unwrap_err();
        assert_eq!(path, r#"["a.b[0]","port"]"#);
    }

    #[test]
    fn no_config_accepts_only_an_empty_table() {
        assert!(parse_config::<crate::NoConfig>(b"{}").is_ok());
        let (_, message, _) = parse_config::<crate::NoConfig>(br#"{"a":1}"#).unwrap_err();
        assert!(message.starts_with("unknown field `a`"), "{message}");
    }

    #[test]
    fn trap_returns_the_value_or_reports_the_panic() {
        let mut reports: Vec<(ErrorKind, String, String)> = Vec::new();
        unsafe extern "C" fn collect(ctx: *mut core::ffi::c_void, report: &ErrorReport) {
            // SAFETY: `ctx` is the `Vec` below, alive for the test; slices valid for the call.
            let (reports, text) = unsafe {
                (
                    &mut *ctx.cast::<Vec<(ErrorKind, String, String)>>(),
                    |s: AbiSlice| String::from_utf8_lossy(s.as_bytes()).into_owned(),
                )
            };
            reports.push((report.kind, text(report.message), text(report.location)));
        }
        let sink = ErrorSink {
            ctx: (&raw mut reports).cast(),
            report: Some(collect),
        };
        assert_eq!(trap(sink, || 7), Some(7));
        assert!(reports.is_empty());
        assert_eq!(trap(sink, || -> u32 { panic!("boom {}", 42) }), None);
        let (kind, message, location) = &reports[0];
        assert_eq!((*kind, message.as_str()), (ErrorKind::PANIC, "boom 42"));
        assert!(
            location.starts_with("sdk/src/__private/mod.rs:"),
            "{location}"
        );
        // Nested traps: the inner one catches, the outer one sees a value.
        assert_eq!(
            trap(sink, || trap(sink, || -> u8 { panic!("inner") })),
            Some(None)
        );
        assert_eq!(reports[1].1, "inner");
    }
}
