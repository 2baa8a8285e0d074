//! # Safety: what the host checks, and what a plugin must not do
//!
//! ## Before trusting a library
//!
//! The host loads a plugin file in a fixed order, each step with its own typed error naming the
//! file (`weir_host::LoadError`):
//!
//! 1. The path is a regular file of sane size, an ELF shared object for the host's machine.
//! 2. Its dynamic symbol table exports exactly one metadata function: [`METADATA_SYMBOL`](crate::abi::METADATA_SYMBOL)
//!    (ABI 1.0 and 1.1) or that name with a suffix of the plugin's own (1.2 on), **as a
//!    function**. This is read from the file before `dlopen`, so a library that is not a Weir
//!    plugin never runs its constructors in the host.
//! 3. `dlopen` (serialized).
//! 4. The metadata function is called (it traps its own panics). The pointer it returns must be
//!    non-null, aligned, and inside the plugin's own mapped image.
//! 5. Magic, header size, plugin kind.
//! 6. ABI major equal, minor compatible (see [`abi_evolution`](super::abi_evolution)).
//! 7. Layout fingerprint equal.
//! 8. Panic strategy `unwind` (a `panic = "abort"` plugin would take the host down with any
//!    panic) and the same target triple.
//! 9. Every string and every function pointer of the declaration and vtable is non-null and
//!    inside the plugin's image.
//! 10. The constructor runs under the trampoline; a config error names the field.
//!
//! ## Panics
//!
//! Every entry point runs the connector's code under `catch_unwind`, inside the plugin. A panic
//! unwinding out of an `extern "C"` function would abort the process, and the host cannot catch
//! it either: each cdylib has its own copy of `std`. The plugin's own panic hook records the
//! message and location, and the host receives them as an error. The instance is then
//! *poisoned*: it refuses every call but `drop`.
//!
//! ## Memory
//!
//! Each side frees what it allocated: the plugin's state is allocated and freed by the plugin
//! (through the vtable's `drop`); bytes cross as borrowed slices valid for one call; errors and
//! events are copied by host callbacks. A library is never unloaded while an instance created
//! from it is alive.
//!
//! ## Unloading: never, once a plugin's code ran
//!
//! `dlclose` is unsound for a library that may have left anything behind: thread-locals with
//! destructors (which glibc runs at thread exit, into unmapped code), threads of its own,
//! callbacks registered with other libraries, pointers handed out. On glibc it is often a
//! silent no-op anyway. So the host's policy is:
//!
//! - a library from which an instance was ever created is **never unloaded**: when a new
//!   version replaces it (a reload), the old image stays mapped until the process exits;
//! - a library only screened and validated (only its metadata function ran, on the loading
//!   thread) is unloaded when its last handle drops, so a plugin path scan maps nothing for
//!   good.
//!
//! A reload loads the new file from a private copy (the dynamic loader would hand back the
//! image already loaded for a path it has seen), so each reload retains one image. Measured
//! (`tests/tests/reload.rs`, 200 reloads in one process, each creating and running an
//! instance): about 510 KiB of resident memory per retained image for a 657 KiB release
//! build, 830 KiB for an 8 MiB debug build.
//!
//! Plugin-global state (a `static`, a `OnceLock`, a thread-local) belongs to one image: a new
//! version starts with its own, fresh. Nothing of it survives a reload.
//!
//! ## What a plugin must not do
//!
//! - Keep a borrowed event, batch or context beyond the call it was given in (the types'
//!   lifetimes enforce this in safe code).
//! - Spawn threads that call into the host after the instance is dropped.
//! - Segfault: memory errors in a plugin still take the host down (an out-of-process mode is
//!   the planned answer).
