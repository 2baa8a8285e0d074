//! The stdout sink through the host's entry points (`weir-testing`).

use weir_testing::Harness;
use weir_testing::conformance::Suite;

#[test]
fn conforms() {
    // A short sample: what it acks goes to the test's standard output.
    Suite::new()
        .sample(["stdout conformance 1", "stdout conformance 2"])
        .run(Harness::builder::<stdout::StdoutSink>().config(r#"prefix = "stdout test: ""#))
        .unwrap();
}
