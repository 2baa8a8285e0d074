//! The blackhole through the host's entry points (`weir-testing`).

use weir_testing::{Harness, HarnessError, conformance};

#[test]
fn conforms() {
    conformance::check(Harness::builder::<blackhole::Blackhole>()).unwrap();
}

#[test]
fn acks_everything_and_asks_the_host_to_stop_after_stop_after_secs() {
    let mut sink = Harness::new::<blackhole::Blackhole>("stop_after_secs = 0.0").unwrap();
    sink.start().unwrap();
    let delivered = sink.deliver(["a", "b", "c"]).unwrap();
    assert_eq!(delivered.acked(), 3);
    assert!(sink.shutdown_requested());
    sink.stop().unwrap();
}

#[test]
fn refuses_a_precision_it_cannot_have_naming_it() {
    let error = Harness::new::<blackhole::Blackhole>("significant_figures = 9").unwrap_err();
    assert!(matches!(error, HarnessError::Call(_)), "{error}");
    assert!(
        error
            .to_string()
            .ends_with("`new` failed: `significant_figures` must be 1 to 5, found 9"),
        "{error}"
    );
}
