//! The file connector through the host's entry points (`weir-testing`).

use std::path::{Path, PathBuf};

use weir_testing::{CallError, Harness, HarnessError, PullStatus, Sides, conformance};

/// A directory unique to the test.
fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-file-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(path: &Path, rest: &str) -> String {
    format!("path = {:?}\n{rest}", path.display().to_string())
}

#[test]
fn conforms_as_a_source_and_as_a_sink() {
    let dir = dir("conforms");
    let input = dir.join("in.txt");
    std::fs::write(&input, "x".repeat(10_000)).unwrap();
    conformance::check(
        Harness::builder::<file::FileConnector>()
            .config(&config(&input, "chunk_size = 100"))
            .bound_as(Sides::SOURCE),
    )
    .unwrap();
    let output = dir.join("out.txt");
    conformance::check(
        Harness::builder::<file::FileConnector>()
            .config(&config(&output, ""))
            .bound_as(Sides::SINK),
    )
    .unwrap();
    // Every event the sink acked is in the file: 64 + 4 (after the pause) + 8 (after the
    // drain) copies of the suite's sample.
    let written = std::fs::read_to_string(&output).unwrap();
    assert_eq!(written.matches("weir conformance").count(), 76, "{written}");
}

#[test]
fn reads_a_file_in_chunks_as_one_stream_then_finishes() {
    let dir = dir("reads");
    let input = dir.join("in.txt");
    std::fs::write(&input, "abcdefghij").unwrap();
    let mut source = Harness::builder::<file::FileConnector>()
        .config(&config(&input, "chunk_size = 4"))
        .bound_as(Sides::SOURCE)
        .build()
        .unwrap();
    source.start().unwrap();
    let mut chunks = Vec::new();
    let mut pulled = source.pull().unwrap();
    while pulled.status != PullStatus::Finished {
        chunks.extend(pulled.events.iter().map(|e| e.text().into_owned()));
        pulled = source.pull().unwrap();
    }
    chunks.extend(pulled.events.iter().map(|e| e.text().into_owned()));
    assert_eq!(chunks, ["abcd", "efgh", "ij"]);
    assert_eq!(pulled.ended_streams, [0]);
    source.stop().unwrap();
}

#[test]
fn appends_what_it_acks_and_refuses_a_mode_its_bindings_contradict() {
    let dir = dir("appends");
    let output = dir.join("out.txt");
    std::fs::write(&output, "kept\n").unwrap();
    let mut sink = Harness::builder::<file::FileConnector>()
        .config(&config(&output, ""))
        .bound_as(Sides::SINK)
        .build()
        .unwrap();
    sink.start().unwrap();
    assert_eq!(sink.deliver(["one\n", "two\n"]).unwrap().acked(), 2);
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "kept\none\ntwo\n"
    );
    sink.stop().unwrap();

    let error = Harness::builder::<file::FileConnector>()
        .config(&config(&output, "mode = \"append\""))
        .bound_as(Sides::SOURCE)
        .build()
        .unwrap_err();
    assert!(
        matches!(error, HarnessError::Call(CallError::Permanent { .. })),
        "{error}"
    );
}
