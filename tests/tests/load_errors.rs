//! Every classic way a plugin file can be wrong ends in its own typed error naming the file,
//! and the host keeps running.

use std::path::PathBuf;

use weir_host::{LoadError, Plugin};
use weir_tests::fixture_plugin;

fn load_err(path: &std::path::Path) -> LoadError {
    match Plugin::load(path) {
        Ok(plugin) => panic!(
            "{} loaded but should have been refused: {plugin:?}",
            path.display()
        ),
        Err(error) => {
            assert_eq!(error.file(), path, "the error names the file");
            let message = error.to_string();
            assert!(
                message.starts_with(&path.display().to_string()),
                "{message}"
            );
            assert!(!message.contains('\n'), "one line: {message}");
            error
        }
    }
}

fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-load-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn missing_metadata_symbol_is_refused_before_dlopen() {
    let path = fixture_plugin("missing");
    let marker =
        std::env::temp_dir().join(format!("weir-missing-constructor-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let error = load_err(&path);
    assert!(
        matches!(
            error,
            LoadError::MissingMetadataSymbol {
                symbol: "weir_plugin_metadata",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("not a Weir plugin"), "{error}");
    assert!(
        !marker.exists(),
        "the library's constructor ran: it was dlopen'ed"
    );
}

#[test]
fn a_library_with_two_metadata_functions_is_refused_naming_both() {
    let error = load_err(&fixture_plugin("twoconnectors"));
    let LoadError::SeveralMetadataSymbols { symbols, .. } = &error else {
        panic!("expected SeveralMetadataSymbols, got {error:?}")
    };
    assert_eq!(symbols.len(), 2, "{symbols:?}");
    assert!(
        symbols.iter().any(|s| s.contains("__First__"))
            && symbols.iter().any(|s| s.contains("__Second__")),
        "{symbols:?}"
    );
    assert!(error.to_string().contains("holds one connector"), "{error}");
}

#[test]
fn metadata_symbol_of_the_wrong_type_is_refused() {
    let error = load_err(&fixture_plugin("wrongtype"));
    let LoadError::MetadataSymbolNotFunction { found, .. } = &error else {
        panic!("expected MetadataSymbolNotFunction, got {error:?}")
    };
    assert!(found.contains("data object"), "{found}");
    assert!(error.to_string().contains("must be a function"), "{error}");
}

#[test]
fn null_metadata_pointer_is_refused() {
    let error = load_err(&fixture_plugin("wrongaddress-null"));
    assert!(matches!(error, LoadError::NullMetadata { .. }), "{error:?}");
    assert!(error.to_string().contains("null pointer"), "{error}");
}

#[test]
fn foreign_metadata_pointer_is_refused() {
    let error = load_err(&fixture_plugin("wrongaddress-foreign"));
    let LoadError::PointerOutsideImage {
        what, segment, len, ..
    } = &error
    else {
        panic!("expected PointerOutsideImage, got {error:?}")
    };
    assert_eq!(what, "plugin header");
    assert_eq!(*segment, "readable");
    assert_eq!(*len, size_of::<weir_sdk::abi::PluginHeader>());
    assert!(
        error
            .to_string()
            .contains("not inside the plugin's own readable image"),
        "{error}"
    );
}

#[test]
fn null_vtable_entries_are_refused() {
    let error = load_err(&fixture_plugin("wrongaddress-vtable"));
    let LoadError::NullPointer { what, .. } = &error else {
        panic!("expected NullPointer, got {error:?}")
    };
    assert_eq!(what, "connector vtable entry 0 (connect)");
}

#[test]
fn panic_in_metadata_is_reported_with_message_and_location() {
    let error = load_err(&fixture_plugin("panicmeta"));
    let LoadError::MetadataPanicked {
        message, location, ..
    } = &error
    else {
        panic!("expected MetadataPanicked, got {error:?}")
    };
    assert_eq!(message, "metadata exploded");
    assert!(location.starts_with("panicmeta/src/lib.rs:"), "{location}");
}

#[test]
fn panic_abort_plugin_is_refused_with_an_explanation() {
    let error = load_err(&fixture_plugin("panicabort"));
    assert!(matches!(error, LoadError::PanicAbort { .. }), "{error:?}");
    assert!(error.to_string().contains("panic = \"unwind\""), "{error}");
}

#[test]
fn files_that_are_not_shared_objects_are_refused() {
    let text = temp_file(
        "libtext.so",
        "this is not an ELF file, only text pretending to be a plugin library\n"
            .repeat(4)
            .as_bytes(),
    );
    let error = load_err(&text);
    assert!(
        matches!(error, LoadError::NotSharedObject { .. }),
        "{error:?}"
    );

    let tiny = temp_file("libtiny.so", b"\x7fELF");
    let error = load_err(&tiny);
    assert!(
        matches!(error, LoadError::BadSize { size: 4, .. }),
        "{error:?}"
    );

    let dir = std::env::temp_dir();
    let error = load_err(&dir);
    assert!(matches!(error, LoadError::NotAFile { .. }), "{error:?}");

    let absent = dir.join("weir-no-such-plugin.so");
    let error = load_err(&absent);
    assert!(matches!(error, LoadError::Io { .. }), "{error:?}");
}

#[test]
fn an_executable_is_not_a_shared_object_plugin() {
    // The test binary itself: an ELF file for this machine, but not a Weir plugin.
    let me = std::env::current_exe().unwrap();
    let error = load_err(&me);
    assert!(
        matches!(
            error,
            LoadError::NotSharedObject { .. } | LoadError::MissingMetadataSymbol { .. }
        ),
        "{error:?}"
    );
}

#[test]
fn the_host_keeps_working_after_every_refusal() {
    for name in [
        "missing",
        "wrongtype",
        "wrongaddress-null",
        "wrongaddress-foreign",
        "panicmeta",
    ] {
        assert!(Plugin::load(fixture_plugin(name)).is_err());
    }
    let plugin = Plugin::load(fixture_plugin("bench")).expect("a good plugin still loads");
    assert_eq!(plugin.name(), "bench");
}
