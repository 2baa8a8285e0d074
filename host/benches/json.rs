//! The `json` codec on the bundled benchmark events (Tremor's bench data, 100 events of
//! about 630 bytes), against `serde_json::Value`, the codec's previous value type:
//!
//! - `decode`: bytes to a value, as a source's thread does.
//! - `encode`: a value to bytes, as a sink's thread does.
//! - `decode+encode`: both in one thread, the figure the performance issue compares.
//!
//! Throughput is per event. Run with `cargo bench -p weir-host --bench json`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_host::codec::{Codec, Value};

fn events() -> Vec<Bytes> {
    let data = include_bytes!("../../examples/data/bench-events.json");
    data.split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(Bytes::copy_from_slice)
        .collect()
}

fn json(c: &mut Criterion) {
    let events = events();
    let mut group = c.benchmark_group("json");
    group.throughput(Throughput::Elements(events.len() as u64));
    let mut out = Vec::with_capacity(64 << 10);

    group.bench_function("codec/decode", |b| {
        b.iter(|| {
            for event in &events {
                black_box(Codec::Json.decode(event.clone()).unwrap());
            }
        });
    });
    let values: Vec<Value> = events
        .iter()
        .map(|e| Codec::Json.decode(e.clone()).unwrap())
        .collect();
    group.bench_function("codec/encode", |b| {
        b.iter(|| {
            out.clear();
            for value in &values {
                black_box(Codec::Json.encode(value, &mut out).unwrap());
            }
        });
    });
    group.bench_function("codec/decode+encode", |b| {
        b.iter(|| {
            out.clear();
            for event in &events {
                let value = Codec::Json.decode(event.clone()).unwrap();
                black_box(Codec::Json.encode(&value, &mut out).unwrap());
            }
        });
    });

    group.bench_function("serde_json/decode", |b| {
        b.iter(|| {
            for event in &events {
                black_box(serde_json::from_slice::<serde_json::Value>(event).unwrap());
            }
        });
    });
    let values: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_slice(e).unwrap())
        .collect();
    group.bench_function("serde_json/encode", |b| {
        b.iter(|| {
            out.clear();
            for value in &values {
                serde_json::to_writer(&mut out, value).unwrap();
            }
            black_box(&out);
        });
    });
    group.bench_function("serde_json/decode+encode", |b| {
        b.iter(|| {
            out.clear();
            for event in &events {
                let value: serde_json::Value = serde_json::from_slice(event).unwrap();
                serde_json::to_writer(&mut out, &value).unwrap();
            }
            black_box(&out);
        });
    });
    group.finish();
}

criterion_group!(benches, json);
criterion_main!(benches);
