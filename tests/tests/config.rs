//! Every configuration error class is reported before anything starts, with the file, the
//! line and column, and the key path.

use std::path::{Path, PathBuf};

use weir_host::config::{ConfigError, PipelineSpec};
use weir_host::discovery::{PluginPath, PluginRepository};
use weir_host::pipeline::Pipeline;
use weir_tests::example_plugin;

fn repository() -> PluginRepository {
    let dir = example_plugin("metronome").parent().unwrap().to_owned();
    PluginRepository::scan(&PluginPath::from_dirs([dir]))
}

fn check(source: &str) -> Vec<ConfigError> {
    let file = Path::new("pipeline.toml");
    match PipelineSpec::parse(file, source.to_owned()) {
        Err(errors) => errors.0,
        Ok(spec) => match Pipeline::resolve(spec, &repository()) {
            Ok(_) => panic!("expected errors for:\n{source}"),
            Err(errors) => errors.0,
        },
    }
}

#[track_caller]
fn assert_error(errors: &[ConfigError], line: usize, column: usize, key_path: &str, message: &str) {
    let found = errors
        .iter()
        .find(|e| e.key_path == key_path)
        .unwrap_or_else(|| panic!("no error at `{key_path}` in {errors:#?}"));
    assert_eq!((found.line, found.column), (line, column), "{found}");
    assert!(
        found.message.contains(message),
        "{:?} should contain {message:?}",
        found.message
    );
    assert_eq!(found.file, PathBuf::from("pipeline.toml"));
    assert!(
        found
            .to_string()
            .starts_with(&format!("pipeline.toml:{line}:{column}: `{key_path}`: ")),
        "{found}"
    );
}

#[test]
fn unknown_plugin_lists_the_available_ones() {
    let errors = check("[[connector]]\nid = \"in\"\nplugin = \"metronom\"\n");
    assert_error(
        &errors,
        3,
        10,
        "connector[0].plugin",
        "unknown plugin `metronom` (available: ",
    );
    assert!(
        errors[0].message.ends_with("; did you mean `metronome`?"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].message.contains("metronome") && errors[0].message.contains("stdout"),
        "{}",
        errors[0]
    );
}

#[test]
fn unknown_codec_and_processor() {
    let errors = check(
        "[[connector]]\nid = \"in\"\nplugin = \"metronome\"\ncodec = \"yaml\"\npreprocessors = [\"lines\", \"zstd\"]\n",
    );
    assert_error(
        &errors,
        4,
        9,
        "connector[0].codec",
        "unknown codec `yaml`: expected one of json, string, binary",
    );
    assert_error(
        &errors,
        5,
        27,
        "connector[0].preprocessors[1]",
        "unknown processor `zstd`",
    );
}

#[test]
fn bad_plugin_config_names_the_field_where_it_is() {
    let errors = check(
        "[[connector]]\nid = \"in\"\nplugin = \"metronome\"\n\n[connector.config]\ninterval_ms = \"fast\"\ncount = 3\n",
    );
    assert_error(
        &errors,
        6,
        15,
        "connector[0].config.interval_ms",
        "invalid type: string \"fast\", expected u64",
    );

    let errors =
        check("[[connector]]\nid = \"in\"\nplugin = \"metronome\"\nconfig = { every = 5 }\n");
    assert_error(
        &errors,
        4,
        20,
        "connector[0].config.every",
        "unknown field `every`",
    );
}

#[test]
fn binding_to_an_unknown_connector() {
    let errors = check(
        "[[connector]]\nid = \"in\"\nplugin = \"metronome\"\n\n[[binding]]\nfrom = \"in\"\nto = [\"out\"]\n",
    );
    assert_error(
        &errors,
        7,
        7,
        "binding[0].to[0]",
        "binding to unknown connector `out` (connectors: in)",
    );
}

#[test]
fn binding_sides_must_match_capabilities() {
    let errors = check(
        "[[connector]]\nid = \"tick\"\nplugin = \"metronome\"\n[[connector]]\nid = \"print\"\nplugin = \"stdout\"\n\
         [[binding]]\nfrom = \"print\"\nto = [\"tick\"]\n",
    );
    assert_error(
        &errors,
        8,
        8,
        "binding[0].from",
        "connector `print` (plugin `stdout`) is not a source",
    );
    assert_error(
        &errors,
        9,
        7,
        "binding[0].to[0]",
        "connector `tick` (plugin `metronome`) is not a sink",
    );
}

#[test]
fn cycles_are_rejected_but_a_self_binding_is_not_a_cycle() {
    let source = "[[connector]]\nid = \"a\"\nplugin = \"x\"\n[[connector]]\nid = \"b\"\nplugin = \"x\"\n\
                  [[binding]]\nfrom = \"a\"\nto = [\"b\"]\n[[binding]]\nfrom = \"b\"\nto = [\"a\", \"b\"]\n";
    let errors = PipelineSpec::parse(Path::new("pipeline.toml"), source.to_owned())
        .unwrap_err()
        .0;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_error(
        &errors,
        12,
        7,
        "binding[1].to[0]",
        "bindings form a cycle: a -> b -> a",
    );
}

#[test]
fn syntax_errors_are_located() {
    let errors = check("[[connector]\nid = \"a\"\n");
    assert_eq!((errors[0].line, errors[0].column), (1, 13), "{}", errors[0]);
    assert!(errors[0].message.contains("expected `]`"), "{}", errors[0]);
}

#[test]
fn structural_errors_are_all_reported_together() {
    let errors = check(
        "[[connector]]\nid = \"a b\"\nplugin = 7\nmax_restarts = -1\ncolour = \"red\"\n\
         [[connector]]\nplugin = \"stdout\"\n[[binding]]\nfrom = \"a/side\"\n",
    );
    assert_error(
        &errors,
        2,
        6,
        "connector[0].id",
        "invalid connector id \"a b\"",
    );
    assert_error(
        &errors,
        3,
        10,
        "connector[0].plugin",
        "expected a string, found an integer",
    );
    assert_error(
        &errors,
        4,
        16,
        "connector[0].max_restarts",
        "expected an integer from 0 to 4294967295, found -1",
    );
    assert_error(&errors, 5, 1, "connector[0].colour", "unknown key `colour`");
    assert_error(&errors, 6, 1, "connector[1]", "missing key `id`");
    assert_error(
        &errors,
        9,
        8,
        "binding[0].from",
        "unknown port `side` in `a/side`: expected out or err",
    );
    assert_error(&errors, 8, 1, "binding[0]", "missing key `to`");
}

#[test]
fn duplicate_ids() {
    let errors = check(
        "[[connector]]\nid = \"a\"\nplugin = \"stdout\"\n[[connector]]\nid = \"a\"\nplugin = \"stdout\"\n",
    );
    assert_error(
        &errors,
        4,
        1,
        "connector[1].id",
        "duplicate connector id `a` (first defined by connector[0])",
    );
}

#[test]
fn a_valid_pipeline_resolves() {
    let source = "[[connector]]\nid = \"tick\"\nplugin = \"metronome\"\ncodec = \"string\"\nconfig = { interval_ms = 5 }\n\
                  [[connector]]\nid = \"print\"\nplugin = \"stdout\"\npostprocessors = [\"lines\"]\n\
                  [[binding]]\nfrom = \"tick\"\nto = \"print\"\n";
    let spec = PipelineSpec::parse(Path::new("pipeline.toml"), source.to_owned()).unwrap();
    let pipeline = Pipeline::resolve(spec, &repository()).unwrap();
    assert_eq!(pipeline.plugins[0].name(), "metronome");
    assert_eq!(
        pipeline.spec.connectors[0].config,
        serde_json::json!({ "interval_ms": 5 })
    );
    assert_eq!(pipeline.spec.bindings[0].to, [1]);
}

#[test]
fn a_binding_to_a_connector_with_errors_is_not_reported_again() {
    let errors = check(
        "[[connector]]\nid = \"in\"\nplugin = \"metronome\"\ncodec = \"yaml\"\n\
         [[connector]]\nid = \"out\"\nplugin = \"stdout\"\n\
         [[binding]]\nfrom = \"in\"\nto = [\"out\"]\n",
    );
    assert_eq!(
        errors.len(),
        1,
        "only the connector's own error: {errors:#?}"
    );
    assert_error(&errors, 4, 9, "connector[0].codec", "unknown codec `yaml`");
}

#[test]
fn numbers_json_cannot_hold_are_errors_where_they_are() {
    let errors = check(
        "[[connector]]\nid = \"in\"\nplugin = \"metronome\"\n\
         config = { interval_ms = 99999999999999999999, list = [1, nan] }\n",
    );
    assert_error(
        &errors,
        4,
        26,
        "connector[0].config.interval_ms",
        "integer 99999999999999999999 does not fit in 64 bits",
    );
    assert_error(
        &errors,
        4,
        59,
        "connector[0].config.list[1]",
        "nan cannot be handed to a plugin",
    );
    // The largest unsigned integer is a number, not "a string".
    let errors = check(
        "[[connector]]\nid = \"in\"\nplugin = \"metronome\"\n\
         config = { interval_ms = 18446744073709551615, count = \"x\" }\n",
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        !errors[0].message.contains("interval_ms"),
        "18446744073709551615 fits a u64: {errors:#?}"
    );
}

#[test]
fn bytes_that_are_not_utf8_are_located() {
    let dir = std::env::temp_dir().join(format!("weir-config-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pipeline.toml");
    std::fs::write(&file, b"[[connector]]\nid = \"caf\xe9\"\n").unwrap();
    let errors = PipelineSpec::read(&file).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].line, errors[0].column), (2, 10), "{}", errors[0]);
    assert!(
        errors[0]
            .message
            .contains("not UTF-8: byte 0xe9 at offset 23"),
        "{}",
        errors[0]
    );
}

#[test]
fn errors_come_in_file_order() {
    let errors = check(
        "[[connector]]\nid = \"in\"\nplugin = \"metronome\"\nconfig = { interval_ms = \"x\" }\n\
         [[connector]]\nid = \"out\"\nplugin = \"nope\"\ncodec = \"yaml\"\n",
    );
    // Found in three passes (structure, plugins, plugin configs), reported in file order.
    let positions: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted, "{errors:#?}");
}

#[test]
fn mistyped_names_get_a_suggestion() {
    let errors = check(
        "[[connector]]\nid = \"tick\"\nplugin = \"metronome\"\npreprocesors = [\"line\"]\n\
         [[connector]]\nid = \"print\"\nplugin = \"stdout\"\ncodec = \"jsno\"\npostprocessors = [\"line\"]\n\
         [[binding]]\nfrom = \"tick/er\"\nto = [\"prnt\"]\n[[bindings]]\n",
    );
    let expected = [
        (4, 1, "connector[0].preprocesors", "preprocessors"),
        (8, 9, "connector[1].codec", "json"),
        (9, 19, "connector[1].postprocessors[0]", "lines"),
        (11, 8, "binding[0].from", "err"),
        (12, 7, "binding[0].to[0]", "print"),
        (13, 3, "bindings", "binding"),
    ];
    for (line, column, key_path, suggestion) in expected {
        assert_error(
            &errors,
            line,
            column,
            key_path,
            &format!("; did you mean `{suggestion}`?"),
        );
    }
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
}

#[test]
fn a_tcp_client_with_acks_cannot_be_a_source() {
    let errors = check(
        "[[connector]]\nid = \"net\"\nplugin = \"tcp\"\n\
         config = { mode = \"client\", address = \"127.0.0.1:1\", acks = true }\n\
         [[connector]]\nid = \"print\"\nplugin = \"stdout\"\n\
         [[binding]]\nfrom = \"net\"\nto = [\"print\"]\n",
    );
    assert_error(
        &errors,
        4,
        10,
        "connector[0].config",
        "a client with `acks` cannot be a source",
    );
}
