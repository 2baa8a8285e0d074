//! `stdout`: a sink that writes each event's bytes to the host's standard output, one event
//! per line.
//!
//! **What an ack means**: the batch's bytes were written to standard output (handed to the
//! operating system, one `write` per batch, at the end of the batch). If standard output is
//! closed or full (a closed pipe, `/dev/full`), nothing of that batch is acked and the
//! connector stops for good: standard output does not come back.
//!
//! ```toml
//! [connector.config]
//! prefix = "out: "   # default: none
//! meta = true        # default: false; writes the event's metadata and a tab before it
//! ```
//!
//! With `meta = true` a line is `<prefix><metadata><TAB><event>`: the metadata its source
//! attached (a JSON object), or `{}` for none.

#![forbid(unsafe_code)]

use std::io::Write as _;

use weir_sdk::{
    Connector, ConnectorContext, Error, Event, Result, SinkContext, SinkReply, connector_plugin,
};

/// Settings of the stdout sink.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Written before every event.
    #[serde(default)]
    pub prefix: String,
    /// Writes each event's metadata (`{}` when it has none) and a tab before it.
    #[serde(default)]
    pub meta: bool,
}

/// The sink's state.
#[derive(Debug)]
pub struct StdoutSink {
    prefix: String,
    meta: bool,
    /// The batch so far, written at its end.
    buffer: Vec<u8>,
}

#[connector_plugin]
impl Connector for StdoutSink {
    type Config = Config;

    fn new(config: Config, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Self {
            prefix: config.prefix,
            meta: config.meta,
            buffer: Vec::new(),
        })
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        // Acked only if the whole batch is written: see `on_batch_end`.
        self.buffer.extend_from_slice(self.prefix.as_bytes());
        if self.meta {
            let meta: &[u8] = if event.meta.is_empty() {
                b"{}"
            } else {
                event.meta
            };
            self.buffer.extend_from_slice(meta);
            self.buffer.push(b'\t');
        }
        self.buffer.extend_from_slice(event.bytes);
        self.buffer.push(b'\n');
        Ok(SinkReply::Ack)
    }

    fn on_batch_end(&mut self, _ctx: &mut SinkContext<'_>) -> Result<()> {
        self.write_buffer()
    }

    fn on_stop(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        self.write_buffer()
    }
}

impl StdoutSink {
    /// Writes the buffered batch; on failure it is dropped (its events are failed) and the
    /// error is permanent.
    fn write_buffer(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        let written = out.write_all(&self.buffer).and_then(|()| out.flush());
        self.buffer.clear();
        written.map_err(|e| Error::permanent(format!("cannot write to standard output: {e}")))
    }
}
