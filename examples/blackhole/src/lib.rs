//! `blackhole`: a sink that drops every event and measures. It records each event's
//! end-to-end latency (now minus the host's ingest time) in an HDR histogram and counts
//! events and bytes. On stop it prints the percentile table, mean, max and count, and the
//! throughput in events/s and MB/s; with `stop_after_secs` it asks the host to shut down.
//!
//! ```toml
//! [connector.config]
//! warmup_secs = 2          # not recorded at first (default 0)
//! stop_after_secs = 10     # ask the host to shut down after this long (default: never)
//! significant_figures = 2  # histogram precision, 1 to 5 (default 2)
//! ```

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use weir_sdk::{
    Connector, ConnectorContext, Error, Event, Result, SinkContext, SinkReply, connector_plugin,
};

/// Settings of the blackhole.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Seconds after the first event during which nothing is recorded.
    #[serde(default)]
    pub warmup_secs: f64,
    /// Seconds after the first event after which the host is asked to shut down.
    #[serde(default)]
    pub stop_after_secs: Option<f64>,
    /// Precision of the latency histogram (significant decimal digits).
    #[serde(default = "default_significant_figures")]
    pub significant_figures: u8,
}

fn default_significant_figures() -> u8 {
    2
}

/// The blackhole's state.
#[derive(Debug)]
pub struct Blackhole {
    warmup: Duration,
    stop_after: Option<Duration>,
    histogram: Histogram<u64>,
    first_event: Option<Instant>,
    measured_since: Option<Instant>,
    last_event: Option<Instant>,
    events: u64,
    bytes: u64,
    stop_requested: bool,
    reported: bool,
}

fn seconds(name: &str, value: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        Error::new(format!(
            "`{name}` must be a non-negative number of seconds, found {value}"
        ))
    })
}

#[connector_plugin]
impl Connector for Blackhole {
    type Config = Config;

    fn new(config: Config, _ctx: &ConnectorContext) -> Result<Self> {
        if !(1..=5).contains(&config.significant_figures) {
            return Err(Error::new(format!(
                "`significant_figures` must be 1 to 5, found {}",
                config.significant_figures
            )));
        }
        // Latencies from 1 ns to 1 hour.
        let histogram =
            Histogram::new_with_bounds(1, 3_600_000_000_000, config.significant_figures)
                .map_err(|e| Error::new(format!("cannot create the histogram: {e}")))?;
        Ok(Self {
            warmup: seconds("warmup_secs", config.warmup_secs)?,
            stop_after: config
                .stop_after_secs
                .map(|s| seconds("stop_after_secs", s))
                .transpose()?,
            histogram,
            first_event: None,
            measured_since: None,
            last_event: None,
            events: 0,
            bytes: 0,
            stop_requested: false,
            reported: false,
        })
    }

    fn on_event(&mut self, ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        let now = Instant::now();
        let first = *self.first_event.get_or_insert(now);
        let since_first = now - first;
        if since_first >= self.warmup {
            self.measured_since.get_or_insert(now);
            let now_ns = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            self.histogram
                .saturating_record(now_ns.saturating_sub(event.ingest_ns).max(1));
            self.events += 1;
            self.bytes += event.bytes.len() as u64;
            self.last_event = Some(now);
        }
        if let Some(stop_after) = self.stop_after
            && since_first >= stop_after
            && !self.stop_requested
        {
            self.stop_requested = true;
            ctx.request_shutdown();
        }
        Ok(SinkReply::Ack)
    }

    fn on_stop(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        if !self.reported {
            self.reported = true;
            print!("{}", self.report());
        }
        Ok(())
    }
}

impl Blackhole {
    fn report(&self) -> String {
        let mut out = String::new();
        let h = &self.histogram;
        let elapsed = match (self.measured_since, self.last_event) {
            (Some(start), Some(end)) if end > start => (end - start).as_secs_f64(),
            _ => 0.0,
        };
        let _ = writeln!(
            out,
            "blackhole: {} events, {} bytes measured over {elapsed:.3} s (after {} s warmup)",
            self.events,
            self.bytes,
            self.warmup.as_secs_f64()
        );
        if self.events == 0 {
            let _ = writeln!(out, "blackhole: no events measured");
            return out;
        }
        let _ = writeln!(out, "{:>10} {:>14}", "percentile", "latency (µs)");
        for p in [50.0, 90.0, 99.0, 99.9, 99.99, 100.0] {
            let _ = writeln!(
                out,
                "{:>10} {:>14.1}",
                format!("p{p}"),
                h.value_at_quantile(p / 100.0) as f64 / 1000.0
            );
        }
        let _ = writeln!(
            out,
            "mean {:.1} µs, max {:.1} µs, count {}",
            h.mean() / 1000.0,
            h.max() as f64 / 1000.0,
            h.len()
        );
        if elapsed > 0.0 {
            let _ = writeln!(
                out,
                "throughput: {:.0} events/s, {:.1} MB/s",
                self.events as f64 / elapsed,
                self.bytes as f64 / elapsed / 1_000_000.0
            );
        }
        out
    }
}
