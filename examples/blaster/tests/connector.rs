//! The blaster through the host's entry points (`weir-testing`).

use std::path::PathBuf;
use std::time::Duration;

use weir_testing::{Harness, PullStatus, conformance};

/// A file of `lines` lines, unique to the test.
fn lines_file(name: &str, lines: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-blaster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let text: String = (0..lines).map(|n| format!("line {n}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn config(path: &std::path::Path, rest: &str) -> String {
    format!("source = {:?}\n{rest}", path.display().to_string())
}

#[test]
fn conforms() {
    let path = lines_file("conforms.txt", 100);
    conformance::check(Harness::builder::<blaster::Blaster>().config(&config(&path, "iters = 1")))
        .unwrap();
}

#[test]
fn replays_the_file_iters_times_then_ends_its_stream_and_finishes() {
    let path = lines_file("replays.txt", 3);
    let mut source = Harness::new::<blaster::Blaster>(&config(&path, "iters = 2")).unwrap();
    source.start().unwrap();
    let pulled = source.pull().unwrap();
    let lines: Vec<_> = pulled
        .events
        .iter()
        .map(|e| e.text().into_owned())
        .collect();
    assert_eq!(
        lines,
        [
            "line 0\n", "line 1\n", "line 2\n", "line 0\n", "line 1\n", "line 2\n"
        ]
    );
    assert_eq!(pulled.status, PullStatus::Finished);
    assert_eq!(pulled.ended_streams, [0]);
    source.stop().unwrap();
}

#[test]
fn a_missing_file_fails_connect_naming_it() {
    let path = std::env::temp_dir().join("weir-blaster-no-such-file.txt");
    let error = Harness::builder::<blaster::Blaster>()
        .config(&config(&path, ""))
        .connect_within(Duration::from_millis(50))
        .build()
        .unwrap()
        .start()
        .unwrap_err();
    assert!(
        error.to_string().contains("weir-blaster-no-such-file.txt"),
        "{error}"
    );
}
