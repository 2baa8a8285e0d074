//! The connectors linked into this binary as built-ins (the `builtins` feature).

use weir_host::Builtin;

/// The bundled example connectors, when this binary was built with the `builtins` feature.
#[cfg(feature = "builtins")]
pub(crate) fn bundled() -> Vec<Builtin> {
    vec![
        Builtin::of::<blackhole::Blackhole>(),
        Builtin::of::<blaster::Blaster>(),
        Builtin::of::<cb::CircuitBreakerSink>(),
        Builtin::of::<file::FileConnector>(),
        Builtin::of::<metronome::Metronome>(),
        Builtin::of::<stdout::StdoutSink>(),
        Builtin::of::<tcp::Tcp>(),
    ]
}

/// None: this binary was built without the `builtins` feature.
#[cfg(not(feature = "builtins"))]
pub(crate) fn bundled() -> Vec<Builtin> {
    Vec::new()
}
