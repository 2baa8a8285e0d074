//! # How the plugin ABI evolves
//!
//! Each plugin kind has its own ABI version, `major.minor`, owned by `weir-sdk` (for
//! connectors: [`CONNECTOR_ABI`](crate::abi::CONNECTOR_ABI)). It is never the plugin crate's
//! own version. A plugin records the version it was built against in its
//! [`PluginHeader`](crate::abi::PluginHeader); the host loads it when
//! [`AbiVersion::accepts`](crate::abi::AbiVersion::accepts) says so:
//!
//! - **same major**, and
//! - **plugin minor ≤ host minor**. An older plugin lacks only appended items, which the host
//!   detects and replaces with defaults. A newer plugin may call host functions this host
//!   does not have, so it is refused.
//!
//! ## What a minor version may do (append-only)
//!
//! 1. **Append fields** at the end of a struct that carries its own size: the plugin's
//!    declaration (`PluginHeader::decl_size`) and the host's services
//!    ([`HostApi::struct_size`](crate::abi::HostApi::struct_size)). The reader treats a field
//!    the writer's size does not cover as absent (`None`, default behaviour). A struct that
//!    grows is never embedded by value in another one, where growing would move the fields
//!    after it: it is passed by pointer ([`CreateArgs::host`](crate::abi::CreateArgs::host)),
//!    and the reader copies what it knows
//!    ([`HostApi::copy_from`](crate::abi::HostApi::copy_from)).
//! 2. **Add methods to a connector** through an *extension table*: a new `#[repr(C)]` struct of
//!    function pointers with a new id, returned by
//!    [`ConnectorFfi::extension`](crate::abi::ConnectorFfi::extension). A plugin built
//!    against an older minor returns null for ids it does not know, and the host falls back
//!    to the default. The vtable itself ([`ConnectorVtable`](crate::abi::ConnectorVtable))
//!    never grows: `thin_trait_object` places `drop` last, so appending a method would move it.
//! 3. **Define new values** of the integer newtypes (`Notice`, `CircuitChange`, ...) only where
//!    the receiver is told by the version that it may see them: a host never sends a notice
//!    newer than the plugin's minor, and every receiver rejects unknown values as errors.
//! 4. Add new plugin kinds, each with its own version.
//!
//! Extension ids defined so far: none.
//!
//! ## History
//!
//! - **1.0**: the first.
//! - **1.1**: [`HostApi`](crate::abi::HostApi) appended `waker_new`, `waker_clone`,
//!   `waker_wake`, `waker_drop` ([`Waker`](crate::Waker)) and `pull_after`
//!   ([`ConnectorContext::pull_after`](crate::ConnectorContext::pull_after)), so that an idle
//!   source is not polled. A 1.0 plugin takes no waker and is polled as before.
//! - **1.2**: the metadata function is exported as `weir_plugin_metadata__<crate>__<version>__<type>__<hash>`
//!   ([`METADATA_SYMBOL_PREFIX`](crate::abi::METADATA_SYMBOL_PREFIX)) instead of the bare
//!   [`METADATA_SYMBOL`](crate::abi::METADATA_SYMBOL), so that connector crates can be linked
//!   into one binary as built-ins ([`builtin`](crate::builtin)) without a clash; no type
//!   changed. Hosts find either name, and refuse a library that exports more than one.
//!
//! ## What needs a major version
//!
//! Anything else: reordering, removing or retyping a field, changing a function signature,
//! changing the meaning of an existing value, changing the metadata symbol's signature.
//! The first four fields of `PluginHeader` (`magic`, `header_size`, `kind`, `abi`) never change
//! at all, so that every host can read the version of every plugin and refuse it clearly.
//!
//! ## The breaking change by mistake
//!
//! [`LAYOUT_FINGERPRINT`](crate::abi::LAYOUT_FINGERPRINT) is computed at compile time from the
//! definition of every frozen type: names, declared field types, sizes, alignments and offsets.
//! Each minor has its own: a field appended in minor `N` is marked `@N` in the layout list
//! and left out of the fingerprints of earlier minors, whose struct sizes are then those of
//! the prefix, so the fingerprint of 1.0 stays what 1.0 plugins carry.
//! [`layout_fingerprint_for`](crate::abi::layout_fingerprint_for) gives the one a plugin of a
//! given version must carry. A change to a frozen type without a version bump changes the
//! fingerprint, and the host refuses a plugin whose fingerprint differs from the one for its
//! version (`LoadError::LayoutMismatch`) instead of misreading its memory. So a version bump is
//! never optional: when a frozen type changes, bump the major (or append as above, mark the
//! new fields `@N` and bump the minor) *and* expect the fingerprint to change.
//!
//! ## Checklist for a minor bump
//!
//! - Append only; update the layout list in `abi.rs` (the compile-time completeness check
//!   fails until you do), marking each appended field with the new minor (`@1 field: T`).
//! - Bump `CONNECTOR_ABI.minor`.
//! - Keep a plugin built against the previous minor as a test fixture, and test that it
//!   still loads and runs on the new host: the test-only sdk feature `__abi-1-0-for-tests`
//!   builds the sdk as 1.0 (the 1.1 fields and the 1.2 symbol name left out), and `tests/fixtures/abi10`, a plugin
//!   built with it, runs on today's host (`host/tests/run.rs`). The other way round, the
//!   test-only feature `__abi-next-for-tests` simulates the next minor (a field appended to
//!   `HostApi`), and `tests/fixtures/abinext-host`, a host built with it, proves that the
//!   plugins of this minor load and run on it (`tests/tests/versioning.rs`).
