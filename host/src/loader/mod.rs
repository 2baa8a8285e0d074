//! Loading and validating plugin files, and the safe handles to what they contain.
//!
//! This module is the only place in the host with `unsafe` code. A file goes through the
//! checks of `weir_sdk::docs::safety` in order; nothing from the library is trusted (no
//! pointer dereferenced, no function called except the metadata function) before the
//! checks it depends on have passed.

mod elf;
mod image;
mod instance;
mod isolated;

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use weir_sdk::abi::{
    AbiSlice, CONNECTOR_ABI, CONNECTOR_VTABLE_LEN, Capabilities, ConnectorPluginDecl,
    ConnectorVtable, ErrorKind, ErrorReport, ErrorSink, MAGIC, MetadataFn, PanicStrategy,
    PluginHeader, PluginKind, TARGET, layout_fingerprint_for,
};

use crate::error::LoadError;
use image::{Access, Image};

pub use instance::{
    ConnectorInstance, EventBatch, InstanceOptions, LogSink, Notice, PluginLog, PulledEvent, Sides,
    SinkEvent, SinkOutcome,
};
pub use isolated::{CHILD_ARG, Isolation, serve_child};
pub use weir_sdk::abi::{AbiVersion, EventId};
pub use weir_sdk::{PullStatus, SinkReply};

/// What a plugin says about itself, copied out of its validated metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// The plugin's name (what pipelines refer to).
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// The connector ABI version it was built against.
    pub abi: AbiVersion,
    /// The `weir-sdk` version it was built with.
    pub sdk_version: String,
    /// The target triple it was built for.
    pub target: String,
    /// Whether it produces events.
    pub is_source: bool,
    /// Whether it consumes events.
    pub is_sink: bool,
}

impl PluginInfo {
    /// `source`, `sink` or `source+sink`.
    pub fn capabilities(&self) -> &'static str {
        match (self.is_source, self.is_sink) {
            (true, true) => "source+sink",
            (true, false) => "source",
            (false, true) => "sink",
            (false, false) => "none",
        }
    }
}

/// A loaded and validated connector plugin. Cheap to clone; the library stays loaded while
/// any clone or any instance created from it is alive.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Origin>,
}

/// Where a plugin's connector code lives.
enum Origin {
    /// A validated library file.
    Library(LoadedLibrary),
    /// A connector type linked into this binary, called through its Rust trait.
    Builtin {
        info: PluginInfo,
        builtin: weir_sdk::builtin::Builtin,
    },
}

impl Origin {
    fn info(&self) -> &PluginInfo {
        match self {
            Self::Library(library) => &library.info,
            Self::Builtin { info, .. } => info,
        }
    }

    fn info_mut(&mut self) -> &mut PluginInfo {
        match self {
            Self::Library(library) => &mut library.info,
            Self::Builtin { info, .. } => info,
        }
    }
}

/// What [`PluginInfo::path`] says of a built-in, which has no file.
pub const BUILTIN_PATH: &str = "built-in";

/// The library and the validated pointers into it.
///
/// **Unloading policy.** An image whose connector code ran (an instance was created from
/// it) is never unloaded: `dlclose` of a library that may have left thread-locals with
/// destructors, threads, or callbacks registered elsewhere is unsound, and glibc often
/// ignores it anyway. Such images stay mapped until the process exits (measured by
/// `reloading_the_same_plugin_200_times_keeps_memory_bounded`). An image only screened and
/// validated (only its metadata function ran, on the loading thread) is unloaded when its
/// last handle drops, so scanning a plugin path maps nothing for good.
struct LoadedLibrary {
    info: PluginInfo,
    decl: *const ConnectorPluginDecl,
    vtable: *const ConnectorVtable,
    image: Image,
    /// Set before the first instance is created: from then on the image is never unloaded.
    ran: AtomicBool,
    /// The `dlopen` handle; `None` for a connector linked into this binary
    /// ([`Plugin::linked`]), whose image is the binary's own.
    library: ManuallyDrop<Option<libloading::os::unix::Library>>,
}

impl Drop for LoadedLibrary {
    fn drop(&mut self) {
        if *self.ran.get_mut() {
            // Retained: see the unloading policy above. The handle is leaked on purpose.
            return;
        }
        // SAFETY: no instance was ever created from this image (`ran` is false), so none
        // of its code runs or is referenced anywhere: only its metadata function ran,
        // and returned. Dropping the handle (dlclose) is the last use of `library`.
        unsafe { ManuallyDrop::drop(&mut self.library) };
    }
}

// SAFETY: the raw pointers point to immutable `'static` data inside the library, which this
// struct keeps loaded; reading them from any thread is fine. `Image` is plain data.
unsafe impl Send for LoadedLibrary {}
// SAFETY: see the `Send` impl above; nothing in `LoadedLibrary` is mutated after loading.
unsafe impl Sync for LoadedLibrary {}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("info", self.inner.info())
            .finish_non_exhaustive()
    }
}

/// `dlopen` and `dlerror` are serialized: `dlerror` is not thread-safe on every platform.
static DLOPEN_LOCK: Mutex<()> = Mutex::new(());

/// The longest metadata string accepted.
const MAX_STRING_LEN: usize = 4096;

impl Plugin {
    /// Loads and validates a connector plugin.
    ///
    /// # Errors
    /// Each check of `weir_sdk::docs::safety` has its own [`LoadError`] variant naming the
    /// file and what was expected versus found. A library that is not a Weir plugin (no
    /// exported metadata function) is refused before it is `dlopen`ed, so its
    /// constructors never run.
    ///
    /// # Platform-specific behaviour
    /// Linux (ELF, glibc) only. The library is opened with `RTLD_NOW | RTLD_LOCAL`; opening
    /// the same path twice yields the same image (the dynamic loader reference-counts it),
    /// so loading a new version of a plugin needs a new path.
    pub fn load(path: impl AsRef<Path>) -> Result<Plugin, LoadError> {
        let file = path.as_ref();
        let started = Instant::now();
        let symbol = elf::screen(file)?;
        let library = {
            let _guard = DLOPEN_LOCK
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // SAFETY: loading a library runs its initializers. The file was screened: it is a
            // shared object for this machine that exports the Weir metadata function, i.e.
            // it claims to be a Weir plugin; trusting its initializers is the premise of
            // in-process plugins (design principle 5 notes the out-of-process mode for the
            // rest).
            unsafe {
                libloading::os::unix::Library::open(
                    Some(dlopen_path(file).as_ref()),
                    libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
                )
            }
            .map_err(|e| LoadError::Dlopen {
                file: file.to_owned(),
                message: e.to_string(),
            })?
        };
        // SAFETY: the ELF symbol table says the symbol is a function, and the sdk defines it
        // with the `MetadataFn` signature (frozen across all ABI versions, whatever its name).
        let metadata: MetadataFn = unsafe { library.get::<MetadataFn>(symbol.name.as_bytes()) }
            .map(|symbol| *symbol)
            .map_err(|e| LoadError::Dlopen {
                file: file.to_owned(),
                message: e.to_string(),
            })?;
        let inner = validate(file, Some(library), metadata, Some(&symbol))?;
        tracing::debug!(
            file = %file.display(),
            plugin = %inner.info.name,
            elapsed_us = started.elapsed().as_micros() as u64,
            "plugin loaded"
        );
        Ok(Plugin {
            inner: Arc::new(Origin::Library(inner)),
        })
    }

    /// Connector type `T`, linked into this binary, as a plugin: its exported metadata
    /// function is called and everything it returns is validated exactly as for a plugin
    /// file (header, ABI version, layout fingerprint, panic strategy, every pointer inside
    /// this binary's own image), and its instances are called through the C vtable and the
    /// sdk's trampolines. For tests of a connector through the entry points the host calls,
    /// without building and loading a `.so`; [`PluginInfo::path`] is this executable.
    ///
    /// # Errors
    /// As [`load`](Self::load), for the checks after `dlopen`.
    pub fn linked<T: weir_sdk::builtin::Exported>() -> Result<Plugin, LoadError> {
        let file = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("(this program)"));
        let inner = validate(&file, None, T::METADATA, None)?;
        Ok(Plugin {
            inner: Arc::new(Origin::Library(inner)),
        })
    }

    /// A built-in: connector type `builtin` linked into this binary, called through its
    /// Rust trait instead of the C ABI (`weir_sdk::builtin`). It behaves as a plugin of the
    /// same name and version in every other way; [`PluginInfo::path`] is
    /// [`BUILTIN_PATH`].
    pub fn builtin(builtin: weir_sdk::builtin::Builtin) -> Plugin {
        let capabilities = builtin.capabilities();
        let info = PluginInfo {
            path: PathBuf::from(BUILTIN_PATH),
            name: builtin.name().to_owned(),
            version: builtin.version().to_owned(),
            abi: CONNECTOR_ABI,
            sdk_version: weir_sdk::builtin::SDK_VERSION.to_owned(),
            target: TARGET.to_owned(),
            is_source: capabilities.contains(Capabilities::SOURCE),
            is_sink: capabilities.contains(Capabilities::SINK),
        };
        Plugin {
            inner: Arc::new(Origin::Builtin { info, builtin }),
        }
    }

    /// Whether `other` is a handle to the same loaded plugin (or built-in).
    pub fn same(&self, other: &Plugin) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Whether this is a built-in ([`builtin`](Self::builtin)) rather than a library file.
    pub fn is_builtin(&self) -> bool {
        matches!(*self.inner, Origin::Builtin { .. })
    }

    /// Loads a plugin from a private copy of `path` in `images` (a directory only this
    /// user can write to), so that a new build dropped at the same path is a new image: the
    /// dynamic loader returns the image already loaded for a path it has seen. The copy is
    /// removed once loaded (the mapping stays); [`info`](Self::info) names `path`.
    ///
    /// # Errors
    /// As [`load`](Self::load), naming `path`; or the copy could not be made.
    pub fn load_copy(path: impl AsRef<Path>, images: &Path) -> Result<Plugin, LoadError> {
        static COPIES: AtomicU64 = AtomicU64::new(0);
        let path = path.as_ref();
        let name = path.file_name().unwrap_or(path.as_os_str());
        let copy = images.join(format!(
            "{}-{}-{}",
            std::process::id(),
            COPIES.fetch_add(1, Ordering::Relaxed),
            name.to_string_lossy()
        ));
        std::fs::copy(path, &copy).map_err(|source| LoadError::Io {
            file: path.to_owned(),
            source,
        })?;
        let loaded = Self::load(&copy);
        let _ = std::fs::remove_file(&copy);
        let mut plugin = loaded.map_err(|mut error| {
            *error.file_mut() = path.to_owned();
            error
        })?;
        Arc::get_mut(&mut plugin.inner)
            .expect("just loaded: the only handle")
            .info_mut()
            .path = path.to_owned();
        Ok(plugin)
    }

    /// Marks the image as having run connector code: it will never be unloaded.
    pub(crate) fn retain_image(&self) {
        if let Origin::Library(library) = &*self.inner {
            library.ran.store(true, Ordering::Relaxed);
        }
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        self.inner.info()
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.inner.info().name
    }
}

/// `file` as `dlopen` must see it: a bare file name (`libx.so`) would be searched for on the
/// library path instead of taken from the current directory, so it gets a `./`.
fn dlopen_path(file: &Path) -> std::borrow::Cow<'_, Path> {
    if file.parent().is_some_and(|p| p.as_os_str().is_empty()) {
        std::borrow::Cow::Owned(Path::new(".").join(file))
    } else {
        std::borrow::Cow::Borrowed(file)
    }
}

/// Steps 4 to 9: call the metadata function and check everything it points to. `library`
/// and `symbol` are the `dlopen` handle and what the symbol table said of the function,
/// `None` for a connector linked into this binary.
fn validate(
    file: &Path,
    library: Option<libloading::os::unix::Library>,
    metadata: MetadataFn,
    symbol: Option<&elf::MetadataSymbol>,
) -> Result<LoadedLibrary, LoadError> {
    let path = || file.to_owned();
    let metadata_address = metadata as usize;
    let image = Image::containing(metadata_address)
        .filter(|image| {
            symbol.is_none_or(|s| image.bias as u64 + s.address == metadata_address as u64)
        })
        .ok_or_else(|| LoadError::PointerOutsideImage {
            file: path(),
            what: format!(
                "`{}`",
                symbol.map_or("the metadata function", |s| s.name.as_str())
            ),
            address: metadata_address,
            len: 1,
            segment: Access::Execute.name(),
        })?;
    let checker = Checker {
        file,
        image: &image,
    };

    let mut errors = ErrorCollector::default();
    // SAFETY: `metadata` is the plugin's metadata function: the symbol of this very file
    // (checked above), or for a linked connector the one `#[connector_plugin]` generated
    // for its type (the contract of the unsafe trait `Exported`); in an executable segment
    // of its image. The sdk traps panics in it.
    let header = unsafe { metadata(errors.sink()) };
    if let Some(panic) = errors.take_panic() {
        return Err(LoadError::MetadataPanicked {
            file: path(),
            message: panic.message,
            location: panic.location,
        });
    }
    if header.is_null() {
        return Err(LoadError::NullMetadata { file: path() });
    }
    checker.aligned(
        header as usize,
        align_of::<ConnectorPluginDecl>(),
        "plugin header",
    )?;
    checker.inside(
        header as usize,
        size_of::<PluginHeader>(),
        Access::Read,
        "plugin header",
    )?;
    // SAFETY: `header` is non-null, aligned, and the whole `PluginHeader` lies in a readable
    // segment of the plugin's image. Every bit pattern is valid for its fields (integers,
    // byte arrays and raw pointers), so forming a reference is sound.
    let header_ref: &PluginHeader = unsafe { &*header };

    // Step 5: magic, sizes, kind.
    if header_ref.magic != MAGIC {
        return Err(LoadError::BadMagic {
            file: path(),
            expected: MAGIC,
            found: header_ref.magic,
        });
    }
    if (header_ref.header_size as usize) < size_of::<PluginHeader>() {
        return Err(LoadError::TooSmall {
            file: path(),
            what: "header",
            expected: size_of::<PluginHeader>(),
            found: header_ref.header_size as usize,
        });
    }
    if header_ref.kind != PluginKind::CONNECTOR {
        return Err(LoadError::UnsupportedKind {
            file: path(),
            found: header_ref.kind.0,
        });
    }
    // Step 6: ABI version.
    let plugin_abi = header_ref.abi;
    if plugin_abi.major != CONNECTOR_ABI.major {
        return Err(LoadError::AbiMajorMismatch {
            file: path(),
            host: CONNECTOR_ABI,
            plugin: plugin_abi,
        });
    }
    // Step 7: layout fingerprint, as the frozen types were in the plugin's minor.
    let Some(expected) = layout_fingerprint_for(plugin_abi) else {
        return Err(LoadError::AbiMinorTooNew {
            file: path(),
            host: CONNECTOR_ABI,
            plugin: plugin_abi,
        });
    };
    if header_ref.layout_fingerprint != expected {
        return Err(LoadError::LayoutMismatch {
            file: path(),
            abi: plugin_abi,
            host: expected,
            plugin: header_ref.layout_fingerprint,
        });
    }
    // Step 8: panic strategy and target.
    match header_ref.panic_strategy {
        PanicStrategy::UNWIND => {}
        PanicStrategy::ABORT => return Err(LoadError::PanicAbort { file: path() }),
        PanicStrategy(other) => {
            return Err(LoadError::UnknownPanicStrategy {
                file: path(),
                found: other,
            });
        }
    }
    let target = checker.string(header_ref.target, "target")?;
    if target != TARGET {
        return Err(LoadError::TargetMismatch {
            file: path(),
            host: TARGET.to_owned(),
            plugin: target,
        });
    }
    let info = PluginInfo {
        path: path(),
        name: checker.string(header_ref.name, "name")?,
        version: checker.string(header_ref.version, "version")?,
        abi: plugin_abi,
        sdk_version: checker.string(header_ref.sdk_version, "sdk version")?,
        target,
        is_source: false,
        is_sink: false,
    };
    if info.name.is_empty() {
        return Err(LoadError::InvalidString {
            file: path(),
            field: "name",
            reason: "empty".to_owned(),
        });
    }

    // Step 9: the declaration and the vtable.
    if (header_ref.decl_size as usize) < size_of::<ConnectorPluginDecl>() {
        return Err(LoadError::TooSmall {
            file: path(),
            what: "declaration",
            expected: size_of::<ConnectorPluginDecl>(),
            found: header_ref.decl_size as usize,
        });
    }
    let decl = header.cast::<ConnectorPluginDecl>();
    checker.inside(
        decl as usize,
        size_of::<ConnectorPluginDecl>(),
        Access::Read,
        "connector declaration",
    )?;
    // SAFETY: the declaration lies in a readable segment of the image and is aligned (checked
    // above for the header, which is its first field). We read the `create` field as a plain
    // word because a null function pointer would be an invalid value of the fn-pointer type.
    let create_word = unsafe { (&raw const (*decl).create).cast::<usize>().read() };
    checker.inside(create_word, 1, Access::Execute, "`create` function")?;
    // SAFETY: as above; `capabilities` is a `u32` newtype and `vtable` a raw pointer, for
    // which every bit pattern is valid.
    let (capabilities, vtable) = unsafe { ((*decl).capabilities, (*decl).vtable) };
    if capabilities.0 == 0 || !Capabilities::ALL.contains(capabilities) {
        return Err(LoadError::InvalidCapabilities {
            file: path(),
            bits: capabilities.0,
        });
    }
    checker.vtable(vtable)?;
    Ok(LoadedLibrary {
        info: PluginInfo {
            is_source: capabilities.contains(Capabilities::SOURCE),
            is_sink: capabilities.contains(Capabilities::SINK),
            ..info
        },
        decl,
        vtable,
        image,
        ran: AtomicBool::new(false),
        library: ManuallyDrop::new(library),
    })
}

/// Pointer checks against one plugin's image, producing errors that name the file.
struct Checker<'a> {
    file: &'a Path,
    image: &'a Image,
}

impl Checker<'_> {
    fn aligned(&self, address: usize, align: usize, what: &str) -> Result<(), LoadError> {
        if address.is_multiple_of(align) {
            Ok(())
        } else {
            Err(LoadError::Misaligned {
                file: self.file.to_owned(),
                what: what.to_owned(),
                address,
                align,
            })
        }
    }

    fn inside(
        &self,
        address: usize,
        len: usize,
        access: Access,
        what: &str,
    ) -> Result<(), LoadError> {
        if address == 0 {
            Err(LoadError::NullPointer {
                file: self.file.to_owned(),
                what: what.to_owned(),
            })
        } else if self.image.contains(address, len, access) {
            Ok(())
        } else {
            Err(LoadError::PointerOutsideImage {
                file: self.file.to_owned(),
                what: what.to_owned(),
                address,
                len,
                segment: access.name(),
            })
        }
    }

    /// Copies a metadata string after checking it lies in the image and is UTF-8.
    fn string(&self, slice: AbiSlice, field: &'static str) -> Result<String, LoadError> {
        let invalid = |reason: String| LoadError::InvalidString {
            file: self.file.to_owned(),
            field,
            reason,
        };
        if slice.len > MAX_STRING_LEN {
            return Err(invalid(format!(
                "{} bytes long, at most {MAX_STRING_LEN} allowed",
                slice.len
            )));
        }
        if slice.len == 0 {
            return Ok(String::new());
        }
        self.inside(
            slice.ptr as usize,
            slice.len,
            Access::Read,
            &format!("{field} string"),
        )?;
        // SAFETY: the bytes lie in a readable segment of the plugin image, which stays mapped
        // for this call; metadata strings are immutable `'static` data of the plugin.
        let bytes = unsafe { slice.as_bytes() };
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| invalid(format!("not UTF-8: {e}")))
    }

    /// Checks that `vtable` is aligned, readable, and that each of its function pointers
    /// is non-null and inside an executable segment of the image.
    fn vtable(&self, vtable: *const ConnectorVtable) -> Result<(), LoadError> {
        self.aligned(
            vtable as usize,
            align_of::<ConnectorVtable>(),
            "connector vtable",
        )?;
        self.inside(
            vtable as usize,
            size_of::<ConnectorVtable>(),
            Access::Read,
            "connector vtable",
        )?;
        // SAFETY: the vtable lies, aligned, in a readable segment of the image; it is read as
        // plain words (the `const` assertion in the sdk pins it to CONNECTOR_VTABLE_LEN
        // pointer-sized fields), so null entries are not yet invalid values.
        let words = unsafe { vtable.cast::<[usize; CONNECTOR_VTABLE_LEN]>().read() };
        for (index, word) in words.into_iter().enumerate() {
            let what = format!("connector vtable entry {index} ({})", VTABLE_FIELDS[index]);
            self.inside(word, 1, Access::Execute, &what)?;
        }
        Ok(())
    }
}

/// Names of the [`ConnectorVtable`] fields, in order, for error messages.
const VTABLE_FIELDS: [&str; CONNECTOR_VTABLE_LEN] = [
    "connect",
    "notify",
    "pull",
    "source_feedback",
    "sink_batch",
    "close",
    "extension",
    "drop",
];

/// One error report copied out of the plugin.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
    pub(crate) location: String,
    pub(crate) field_path: String,
}

/// Host side of an [`ErrorSink`]: copies the reports of one call.
#[derive(Debug, Default)]
pub(crate) struct ErrorCollector {
    pub(crate) reports: Vec<Report>,
}

impl ErrorCollector {
    /// A sink writing into `self`; valid while `self` is neither moved nor dropped.
    pub(crate) fn sink(&mut self) -> ErrorSink {
        ErrorSink {
            ctx: (self as *mut Self).cast(),
            report: Some(collect_report),
        }
    }

    /// Removes and returns the first panic report, if any.
    pub(crate) fn take_panic(&mut self) -> Option<Report> {
        let index = self
            .reports
            .iter()
            .position(|r| r.kind == ErrorKind::PANIC)?;
        Some(self.reports.remove(index))
    }
}

/// The `report` function of the host's [`ErrorSink`]: copies one report.
///
/// # Safety
/// `ctx` must come from [`ErrorCollector::sink`] and the collector must be alive and not
/// otherwise borrowed; `report`'s slices must be valid for the call.
unsafe extern "C" fn collect_report(ctx: *mut c_void, report: &ErrorReport) {
    // SAFETY: `ctx` is the `ErrorCollector` that built this sink, alive and not otherwise
    // borrowed for the duration of the call it was passed to (see `ErrorCollector::sink`).
    let collector = unsafe { &mut *ctx.cast::<ErrorCollector>() };
    // SAFETY: the plugin passes slices valid for the duration of this callback.
    let text = |slice: AbiSlice| String::from_utf8_lossy(unsafe { slice.as_bytes() }).into_owned();
    collector.reports.push(Report {
        kind: report.kind,
        message: text(report.message),
        location: text(report.location),
        field_path: text(report.field_path),
    });
}
