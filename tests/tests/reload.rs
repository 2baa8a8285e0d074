//! Loading new builds of a plugin again and again in one process: the cost of the policy
//! that never unloads an image whose code ran (its own test binary, so that nothing else
//! runs in the process while memory is measured).

use weir_host::{EventBatch, Notice, Plugin};
use weir_tests::{fixture_plugin, temp_dir};

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// One reload: a private copy loaded, an instance created, run and dropped.
fn reload(file: &std::path::Path, images: &std::path::Path) {
    let plugin = Plugin::load_copy(file, images).unwrap();
    assert_eq!(plugin.info().path, file, "named after the original");
    let mut counter = plugin
        .instantiate("counter", &serde_json::json!({ "count": 10 }))
        .unwrap();
    counter.connect(0).unwrap();
    counter.notify(Notice::Start).unwrap();
    let mut batch = EventBatch::new();
    counter.pull(&mut batch, 16).unwrap();
    assert_eq!(batch.len(), 10);
    counter.notify(Notice::Stop).unwrap();
    counter.close().unwrap();
}

#[test]
fn reloading_the_same_plugin_200_times_keeps_memory_bounded() {
    let file = fixture_plugin("counter");
    let images = temp_dir("reload-images");
    // Warm up: the first load maps the shared dependencies of every image.
    reload(&file, &images);
    let before = rss();
    for _ in 0..200 {
        reload(&file, &images);
    }
    let after = rss();
    let per_reload = after.saturating_sub(before) / 200;
    eprintln!(
        "200 reloads of a {} KiB plugin: RSS {} MiB -> {} MiB ({} KiB per retained image)",
        std::fs::metadata(&file).unwrap().len() >> 10,
        before >> 20,
        after >> 20,
        per_reload >> 10
    );
    assert!(
        std::fs::read_dir(&images).unwrap().next().is_none(),
        "the private copies are removed once loaded"
    );
    assert!(
        after - before < 256 << 20,
        "200 retained images cost {} MiB",
        (after - before) >> 20
    );
}
