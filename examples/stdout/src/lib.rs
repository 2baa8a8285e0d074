//! `stdout`: a sink that writes each event's bytes to the host's standard output, one event
//! per line, and acks it.
//!
//! ```toml
//! [connector.config]
//! prefix = "out: "   # default: none
//! ```

#![forbid(unsafe_code)]

use std::io::{BufWriter, Stdout, Write as _};

use weir_sdk::{
    Connector, ConnectorContext, Event, Result, SinkContext, SinkReply, connector_plugin,
};

/// Settings of the stdout sink.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Written before every event.
    #[serde(default)]
    pub prefix: String,
}

/// The sink's state.
#[derive(Debug)]
pub struct StdoutSink {
    prefix: String,
    out: BufWriter<Stdout>,
}

#[connector_plugin]
impl Connector for StdoutSink {
    type Config = Config;

    fn new(config: Config, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Self {
            prefix: config.prefix,
            out: BufWriter::new(std::io::stdout()),
        })
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        self.out.write_all(self.prefix.as_bytes())?;
        self.out.write_all(event.bytes)?;
        self.out.write_all(b"\n")?;
        Ok(SinkReply::Ack)
    }

    fn on_pause(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        Ok(self.out.flush()?)
    }

    fn on_drain(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        Ok(self.out.flush()?)
    }

    fn on_stop(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        Ok(self.out.flush()?)
    }
}
