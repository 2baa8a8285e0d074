//! Scanning a plugin path: a tree four levels deep holding 1,000 `.so` files that are not
//! plugins (500 hard links of one real ELF library without the Weir metadata function, 500
//! text files) and 20 plugins (copies of the example plugins, each its own file, so each is
//! loaded).
//!
//! - `walk`: finding the files only ([`PluginPath::files`]).
//! - `scan`: the whole [`PluginRepository::scan`]: screening every file's symbol table,
//!   loading and validating the plugins.
//!
//! Run with `cargo bench -p weir-host --bench discovery`.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use weir_host::discovery::{PluginPath, PluginRepository};
use weir_tests::{EXAMPLES, example_plugin, fixture_plugin, temp_dir};

const NON_PLUGINS: usize = 1000;
const PLUGINS: usize = 20;

/// `root/dN/sub/deeper/` directories, files spread over every level.
fn place(root: &Path, i: usize, name: &str) -> PathBuf {
    let dir = match i % 4 {
        0 => root.join(format!("d{}", i % 10)),
        1 => root.join(format!("d{}/sub", i % 10)),
        2 => root.join(format!("d{}/sub/deeper", i % 10)),
        _ => root.join(format!("d{}/sub/deeper/deepest", i % 10)),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn tree() -> PathBuf {
    let root = temp_dir("bench-discovery");
    let library = fixture_plugin("missing");
    for i in 0..NON_PLUGINS {
        let file = place(&root, i, &format!("libdep{i}.so"));
        if i % 2 == 0 {
            std::fs::hard_link(&library, &file).unwrap();
        } else {
            std::fs::write(&file, format!("not a library {i}").repeat(8)).unwrap();
        }
    }
    for i in 0..PLUGINS {
        let plugin = example_plugin(EXAMPLES[i % EXAMPLES.len()]);
        std::fs::copy(&plugin, place(&root, i, &format!("libplugin{i}.so"))).unwrap();
    }
    root
}

fn discovery(c: &mut Criterion) {
    let root = tree();
    let path = PluginPath::from_dirs([root.clone()]);
    assert_eq!(path.files().len(), NON_PLUGINS + PLUGINS);
    let mut group = c.benchmark_group("discovery");
    group.sample_size(20);
    group.bench_function("walk/1000-non-plugins-20-plugins", |b| {
        b.iter(|| black_box(path.files().len()));
    });
    group.bench_function("scan/1000-non-plugins-20-plugins", |b| {
        b.iter(|| {
            let repository = PluginRepository::scan(&path);
            black_box(repository.files().len())
        });
    });
    group.finish();
    let _ = std::fs::remove_dir_all(root);
}

criterion_group!(benches, discovery);
criterion_main!(benches);
