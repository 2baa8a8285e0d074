// The connector measured by `plugin_calls.rs`: compiled into the benchmark binary for the
// in-process baseline, and into the `bench` fixture plugin (tests/fixtures/bench), which
// includes this file. Its work per event is deliberately tiny, so that the benchmark
// measures the cost of reaching it.

use weir_sdk::{
    Connector, ConnectorContext, Event, NoConfig, PullStatus, Result, SinkContext, SinkReply,
    SourceBatch, connector_plugin,
};

/// A payload of the size of a small JSON event.
pub const PAYLOAD: &[u8] = br#"{"id":1,"ingest_ns":1764131072000000000,"msg":"hello"}"#;

/// Counts what it receives; emits `PAYLOAD` as fast as it is pulled.
#[derive(Debug, Default)]
pub struct BenchConnector {
    /// Events received.
    pub events: u64,
    /// Bytes received.
    pub bytes: u64,
}

#[connector_plugin(name = "bench")]
impl Connector for BenchConnector {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Self::default())
    }

    fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        while !batch.is_full() {
            batch.push(PAYLOAD);
        }
        Ok(PullStatus::Ready)
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        self.events += 1;
        self.bytes += event.bytes.len() as u64;
        Ok(SinkReply::Ack)
    }
}
