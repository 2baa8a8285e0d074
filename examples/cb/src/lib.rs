//! `cb`: a sink for testing the runtime's guarantees. It acks every event, except that an
//! event that is a JSON object with a `"cb"` field is a command:
//!
//! - `{"cb": "close"}`: ack it, then close the circuit breaker (the host pauses the sources);
//! - `{"cb": "open"}`: ack it and open the breaker;
//! - `{"cb": "fail"}`: reply *fail* (not delivered).
//!
//! With `reopen_after_ms` the breaker reopens by itself that long after closing. With
//! `record`, every acked event is appended to that file as `stream:pull payload`, and
//! breaker changes as `# circuit closed` / `# circuit opened`.
//!
//! ```toml
//! [connector.config]
//! reopen_after_ms = 100
//! record = "delivered.txt"
//! ```

#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use weir_sdk::{
    Connector, ConnectorContext, Error, Event, Result, SinkContext, SinkReply, connector_plugin,
};

/// Settings of the cb sink.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Reopen the breaker this long after closing it; stays closed until an `open` command
    /// otherwise.
    #[serde(default)]
    pub reopen_after_ms: Option<u64>,
    /// Append every acked event and every breaker change to this file.
    #[serde(default)]
    pub record: Option<PathBuf>,
}

/// The cb sink's state.
#[derive(Debug)]
pub struct CircuitBreakerSink {
    reopen_after: Option<Duration>,
    closed_at: Option<Instant>,
    record_path: Option<PathBuf>,
    record: Option<BufWriter<File>>,
}

#[connector_plugin(name = "cb")]
impl Connector for CircuitBreakerSink {
    type Config = Config;

    fn new(config: Config, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Self {
            reopen_after: config.reopen_after_ms.map(Duration::from_millis),
            closed_at: None,
            record_path: config.record,
            record: None,
        })
    }

    fn connect(&mut self, _ctx: &ConnectorContext, _attempt: u32) -> Result<bool> {
        if let Some(path) = &self.record_path {
            let file = File::create(path)
                .map_err(|e| Error::new(format!("cannot create {}: {e}", path.display())))?;
            self.record = Some(BufWriter::new(file));
        }
        Ok(true)
    }

    fn on_event(&mut self, ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        let command = serde_json::from_slice::<serde_json::Value>(event.bytes)
            .ok()
            .and_then(|v| v.get("cb").and_then(|c| c.as_str()).map(str::to_owned));
        match command.as_deref() {
            Some("fail") => return Ok(SinkReply::Fail),
            Some("close") => {
                self.write(format_args!(
                    "{}:{} {}\n",
                    event.id.stream,
                    event.id.pull,
                    String::from_utf8_lossy(event.bytes)
                ))?;
                self.close(ctx)?;
                return Ok(SinkReply::Ack);
            }
            Some("open") => self.open(ctx)?,
            _ => {}
        }
        self.write(format_args!(
            "{}:{} {}\n",
            event.id.stream,
            event.id.pull,
            String::from_utf8_lossy(event.bytes)
        ))?;
        Ok(SinkReply::Ack)
    }

    fn on_tick(&mut self, ctx: &mut SinkContext<'_>) -> Result<()> {
        if let (Some(closed_at), Some(reopen_after)) = (self.closed_at, self.reopen_after)
            && closed_at.elapsed() >= reopen_after
        {
            self.open(ctx)?;
        }
        Ok(())
    }

    fn on_stop(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        if let Some(record) = &mut self.record {
            record.flush()?;
        }
        Ok(())
    }
}

impl CircuitBreakerSink {
    fn write(&mut self, line: std::fmt::Arguments<'_>) -> Result<()> {
        if let Some(record) = &mut self.record {
            record.write_fmt(line)?;
        }
        Ok(())
    }

    fn close(&mut self, ctx: &mut SinkContext<'_>) -> Result<()> {
        if self.closed_at.is_none() {
            self.closed_at = Some(Instant::now());
            ctx.close_circuit();
            self.write(format_args!("# circuit closed\n"))?;
        }
        Ok(())
    }

    fn open(&mut self, ctx: &mut SinkContext<'_>) -> Result<()> {
        if self.closed_at.take().is_some() {
            ctx.open_circuit();
            self.write(format_args!("# circuit opened\n"))?;
        }
        Ok(())
    }
}
