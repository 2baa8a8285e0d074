//! `metronome`: a source that emits one event every `interval_ms` milliseconds.
//!
//! Each event is a JSON object `{"id": N, "ingest_ns": T}` where `N` counts from 0 and `T` is
//! the wall-clock time of emission in nanoseconds since the Unix epoch (so a sink can measure
//! end-to-end latency). With `count` set, the source finishes after that many events.
//!
//! ```toml
//! [connector.config]
//! interval_ms = 100   # default 1000
//! count = 10          # default: forever
//! ```

#![forbid(unsafe_code)]

use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weir_sdk::{
    Connector, ConnectorContext, Error, PullStatus, Result, SourceBatch, connector_plugin,
};

/// Settings of the metronome.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Milliseconds between two events; at least 1.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Finish after this many events; forever when absent.
    #[serde(default)]
    pub count: Option<u64>,
}

fn default_interval_ms() -> u64 {
    1000
}

/// The metronome's state.
#[derive(Debug)]
pub struct Metronome {
    interval: Duration,
    count: Option<u64>,
    next_id: u64,
    next_tick: Option<Instant>,
    buffer: Vec<u8>,
}

#[connector_plugin]
impl Connector for Metronome {
    type Config = Config;

    fn new(config: Config, _ctx: &ConnectorContext) -> Result<Self> {
        if config.interval_ms == 0 {
            return Err(Error::new("`interval_ms` must be at least 1"));
        }
        Ok(Self {
            interval: Duration::from_millis(config.interval_ms),
            count: config.count,
            next_id: 0,
            next_tick: None,
            buffer: Vec::with_capacity(64),
        })
    }

    fn on_start(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        self.next_tick = Some(Instant::now());
        // Plain `tracing` macros: the sdk forwards them to the host's log.
        weir_sdk::tracing::info!(interval_ms = self.interval.as_millis() as u64, count = ?self.count, "metronome started");
        Ok(())
    }

    fn pull(&mut self, ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        if self.count.is_some_and(|count| self.next_id >= count) {
            return Ok(PullStatus::Finished);
        }
        let now = Instant::now();
        let next_tick = *self.next_tick.get_or_insert(now);
        if now < next_tick {
            // Nothing before the next tick: the host need not pull before then.
            ctx.pull_after(next_tick - now);
            return Ok(PullStatus::Empty);
        }
        let ingest_ns = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        self.buffer.clear();
        write!(
            self.buffer,
            r#"{{"id":{},"ingest_ns":{}}}"#,
            self.next_id, ingest_ns
        )?;
        batch.push(&self.buffer);
        self.next_id += 1;
        // Keep the cadence even if a pull came late, without bursting to catch up.
        let next_tick = (next_tick + self.interval).max(now);
        self.next_tick = Some(next_tick);
        if self.count.is_some_and(|count| self.next_id >= count) {
            return Ok(PullStatus::Finished);
        }
        ctx.pull_after(next_tick.saturating_duration_since(Instant::now()));
        Ok(PullStatus::Empty)
    }
}
