//! What it costs to reach a connector through the plugin ABI, side by side with the same
//! connector compiled into the host and called through `Box<dyn Trait>`.
//!
//! - `sink/*`: delivering events to `BenchConnector::on_event` (see
//!   `support/bench_connector.rs`). `/1`: one event per call, in-process through
//!   `Box<dyn Trait>` versus the plugin's whole host-side path (views, vtable call, panic
//!   trap, replies). `/64`: the same with batches of 64, in-process through one `dyn` call
//!   per batch (the loop monomorphized behind it) versus one `sink_batch` call per batch.
//! - `source/pull64`: a plugin source filling a host batch with 64 events per call.
//! - `builtin/*` rows: the same connector as a built-in (`Plugin::builtin`): the host's
//!   whole path (`ConnectorInstance`, replies, panic trap, pushes into the host batch) with
//!   direct Rust calls instead of the C ABI, so that the difference to `plugin/*` is the
//!   ABI's cost and the difference to `in_process_dyn*` the host path's.
//! - `load/*`: `Plugin::load` of the release-built plugin: every check of the loader, with
//!   the library already mapped (a second handle) and from scratch (dlopen + dlclose).
//!
//! Run with `cargo bench -p weir-host --bench plugin_calls`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_host::{Builtin, EventBatch, EventId, Plugin, SinkEvent};
use weir_sdk::{Connector, ConnectorContext, Event, SinkContext, SinkReply};

#[expect(
    unreachable_pub,
    reason = "the shared file is also a plugin crate's public API"
)]
mod bench_connector {
    include!("support/bench_connector.rs");
}
use bench_connector::{BenchConnector, PAYLOAD};

/// An object-safe view of a sink: the in-process baseline's `dyn Trait`, one event per call.
trait DynSink {
    fn on_event(
        &mut self,
        ctx: &mut SinkContext<'_>,
        event: Event<'_>,
    ) -> weir_sdk::Result<SinkReply>;
}

impl<T: Connector> DynSink for T {
    fn on_event(
        &mut self,
        ctx: &mut SinkContext<'_>,
        event: Event<'_>,
    ) -> weir_sdk::Result<SinkReply> {
        Connector::on_event(self, ctx, event)
    }
}

/// The in-process baseline with the same batching as the plugin ABI: one virtual call per
/// batch, the per-event loop monomorphized behind it (what the plugin's trampoline does).
trait DynBatchSink {
    fn on_events(
        &mut self,
        ctx: &ConnectorContext,
        events: &[Event<'_>],
        replies: &mut [SinkReply],
    ) -> weir_sdk::Result<()>;
}

impl<T: Connector> DynBatchSink for T {
    fn on_events(
        &mut self,
        ctx: &ConnectorContext,
        events: &[Event<'_>],
        replies: &mut [SinkReply],
    ) -> weir_sdk::Result<()> {
        let mut circuit = None;
        for (event, reply) in events.iter().zip(replies.iter_mut()) {
            let mut sink_ctx = SinkContext::new(ctx, &mut circuit);
            *reply = Connector::on_event(self, &mut sink_ctx, *event)?;
        }
        Ok(())
    }
}

fn sink_calls(c: &mut Criterion) {
    let path = weir_tests::release_fixture_plugin("bench");
    let plugin = Plugin::load(&path).expect("bench plugin loads");
    let mut instance = plugin.instantiate("bench", &serde_json::json!({})).unwrap();
    let mut builtin = Plugin::builtin(Builtin::of::<BenchConnector>())
        .instantiate("bench", &serde_json::json!({}))
        .unwrap();

    let ctx = ConnectorContext::detached("bench");
    let mut boxed: Box<dyn DynSink> =
        Box::new(BenchConnector::new(weir_sdk::NoConfig {}, &ctx).unwrap());

    let sink_events: Vec<SinkEvent<'_>> = (0..64)
        .map(|pull| SinkEvent::new(PAYLOAD, EventId { stream: 0, pull }, 0, b""))
        .collect();
    let events: Vec<Event<'_>> = sink_events
        .iter()
        .map(|e| Event {
            bytes: e.bytes(),
            id: e.id(),
            ingest_ns: e.ingest_ns(),
            meta: e.meta(),
        })
        .collect();

    let mut group = c.benchmark_group("sink");
    group.throughput(Throughput::Elements(1));
    group.bench_function("in_process_dyn/1", |b| {
        b.iter(|| {
            let mut circuit = None;
            let mut sink_ctx = SinkContext::new(&ctx, &mut circuit);
            black_box(boxed.on_event(&mut sink_ctx, black_box(events[0])).unwrap())
        })
    });
    group.bench_function("plugin/1", |b| {
        b.iter(|| {
            black_box(
                instance
                    .sink_batch(black_box(&sink_events[..1]))
                    .unwrap()
                    .reply(0),
            )
        })
    });
    group.bench_function("builtin/1", |b| {
        b.iter(|| {
            black_box(
                builtin
                    .sink_batch(black_box(&sink_events[..1]))
                    .unwrap()
                    .reply(0),
            )
        })
    });
    group.throughput(Throughput::Elements(64));
    let mut batch_sink: Box<dyn DynBatchSink> =
        Box::new(BenchConnector::new(weir_sdk::NoConfig {}, &ctx).unwrap());
    let mut replies = vec![SinkReply::Auto; 64];
    group.bench_function("in_process_dyn_batch/64", |b| {
        b.iter(|| {
            batch_sink
                .on_events(&ctx, black_box(&events), &mut replies)
                .unwrap();
            // Consume the replies as a runtime routing acks would.
            black_box(replies.iter().filter(|r| **r == SinkReply::Ack).count())
        })
    });
    group.bench_function("plugin/64", |b| {
        b.iter(|| {
            let outcome = instance.sink_batch(black_box(&sink_events)).unwrap();
            black_box(outcome.replies().filter(|r| *r == SinkReply::Ack).count())
        })
    });
    group.bench_function("builtin/64", |b| {
        b.iter(|| {
            let outcome = builtin.sink_batch(black_box(&sink_events)).unwrap();
            black_box(outcome.replies().filter(|r| *r == SinkReply::Ack).count())
        })
    });
    group.finish();

    let mut group = c.benchmark_group("source");
    group.throughput(Throughput::Elements(64));
    let mut batch = EventBatch::new();
    group.bench_function("plugin/pull64", |b| {
        b.iter(|| {
            batch.clear();
            black_box(instance.pull(&mut batch, 64).unwrap());
            black_box(batch.len())
        })
    });
    group.bench_function("builtin/pull64", |b| {
        b.iter(|| {
            batch.clear();
            black_box(builtin.pull(&mut batch, 64).unwrap());
            black_box(batch.len())
        })
    });
    group.finish();
}

fn load(c: &mut Criterion) {
    let path = weir_tests::release_fixture_plugin("bench");
    let mut group = c.benchmark_group("load");
    group.sample_size(50);
    group.bench_function("from_scratch", |b| {
        b.iter(|| black_box(Plugin::load(&path).unwrap()))
    });
    let _keep_mapped = Plugin::load(&path).unwrap();
    group.bench_function("already_mapped", |b| {
        b.iter(|| black_box(Plugin::load(&path).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, sink_calls, load);
criterion_main!(benches);
