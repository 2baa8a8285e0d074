//! `blaster`: a source that replays the lines of a file, as fast as it is pulled or at a
//! fixed pace, a number of times or forever. Each event is one line, newline included, so a
//! `lines` preprocessor sees whole lines. When done it ends its stream and finishes.
//!
//! ```toml
//! [connector.config]
//! source = "examples/data/bench-events.json"   # the file to replay (read at connect)
//! iters = 10          # replays of the whole file; forever when absent
//! interval_ns = 1000  # at most one event per interval; as fast as possible when absent
//! ```

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use weir_sdk::{
    Connector, ConnectorContext, Error, PullStatus, Result, SourceBatch, connector_plugin,
};

/// Settings of the blaster.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file whose lines are replayed.
    pub source: PathBuf,
    /// How many times the whole file is replayed; forever when absent.
    #[serde(default)]
    pub iters: Option<u64>,
    /// Minimum time between two events, in nanoseconds.
    #[serde(default)]
    pub interval_ns: Option<u64>,
}

/// The blaster's state.
#[derive(Debug)]
pub struct Blaster {
    config: Config,
    lines: Vec<Vec<u8>>,
    iteration: u64,
    position: usize,
    interval: Option<Duration>,
    next_due: Option<Instant>,
}

#[connector_plugin]
impl Connector for Blaster {
    type Config = Config;

    fn new(config: Config, _ctx: &ConnectorContext) -> Result<Self> {
        if config.iters == Some(0) {
            return Err(Error::new(
                "`iters` must be at least 1 (leave it out to replay forever)",
            ));
        }
        let interval = config.interval_ns.map(Duration::from_nanos);
        Ok(Self {
            config,
            lines: Vec::new(),
            iteration: 0,
            position: 0,
            interval,
            next_due: None,
        })
    }

    fn connect(&mut self, _ctx: &ConnectorContext, _attempt: u32) -> Result<bool> {
        let data = std::fs::read(&self.config.source).map_err(|e| {
            Error::new(format!("cannot read {}: {e}", self.config.source.display()))
        })?;
        self.lines = data
            .split_inclusive(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        if self.lines.is_empty() {
            return Err(Error::new(format!(
                "{} is empty: nothing to replay",
                self.config.source.display()
            )));
        }
        Ok(true)
    }

    fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        if self.done() {
            return Ok(PullStatus::Finished);
        }
        let now = self.interval.map(|_| Instant::now());
        while !batch.is_full() && !self.done() {
            if let (Some(interval), Some(now)) = (self.interval, now) {
                let due = *self.next_due.get_or_insert(now);
                if now < due {
                    return Ok(PullStatus::Empty);
                }
                self.next_due = Some(due + interval);
            }
            batch.push(&self.lines[self.position]);
            self.position += 1;
            if self.position == self.lines.len() {
                self.position = 0;
                self.iteration += 1;
            }
        }
        if self.done() {
            batch.end_stream(0);
            return Ok(PullStatus::Finished);
        }
        Ok(PullStatus::Ready)
    }
}

impl Blaster {
    fn done(&self) -> bool {
        self.config
            .iters
            .is_some_and(|iters| self.iteration >= iters)
    }
}
