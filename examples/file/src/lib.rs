//! `file`: reads a file as a source, or writes one as a sink.
//!
//! As a source (`mode = "read"`, the default) it reads the file in chunks as one stream,
//! ends the stream at the end of the file and finishes; add a `lines` preprocessor to get
//! one event per line. As a sink (`mode = "write"` or `"append"`) it writes each event's
//! bytes as they are (add a `lines` postprocessor to separate them) and flushes on pause,
//! drain and stop.
//!
//! ```toml
//! [connector.config]
//! path = "in.txt"
//! mode = "read"          # read (default), write (truncate) or append
//! chunk_size = 65536     # bytes per event when reading (default 64 KiB)
//! ```

#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read as _, Write as _};
use std::path::PathBuf;

use weir_sdk::{
    Connector, ConnectorContext, Error, Event, PullStatus, Result, SinkContext, SinkReply,
    SourceBatch, connector_plugin,
};

/// What the connector does with its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Read it as a source.
    Read,
    /// Truncate it and write events to it.
    Write,
    /// Append events to it.
    Append,
}

/// Settings of the file connector.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file.
    pub path: PathBuf,
    /// Read, write or append.
    #[serde(default = "default_mode")]
    pub mode: Mode,
    /// Bytes per event when reading.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: usize,
}

fn default_mode() -> Mode {
    Mode::Read
}

fn default_chunk_size() -> usize {
    64 * 1024
}

enum Handle {
    Closed,
    Reader(File),
    Writer(BufWriter<File>),
    Done,
}

/// The file connector's state.
pub struct FileConnector {
    config: Config,
    handle: Handle,
    buffer: Vec<u8>,
}

impl std::fmt::Debug for FileConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileConnector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[connector_plugin(name = "file")]
impl Connector for FileConnector {
    type Config = Config;

    fn new(config: Config, _ctx: &ConnectorContext) -> Result<Self> {
        if config.chunk_size == 0 {
            return Err(Error::new("`chunk_size` must be at least 1"));
        }
        Ok(Self {
            config,
            handle: Handle::Closed,
            buffer: Vec::new(),
        })
    }

    fn connect(&mut self, _ctx: &ConnectorContext, _attempt: u32) -> Result<bool> {
        let path = &self.config.path;
        let describe =
            |e: std::io::Error| Error::new(format!("cannot open {}: {e}", path.display()));
        self.handle = match self.config.mode {
            Mode::Read => Handle::Reader(File::open(path).map_err(describe)?),
            Mode::Write => Handle::Writer(BufWriter::new(File::create(path).map_err(describe)?)),
            Mode::Append => Handle::Writer(BufWriter::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(describe)?,
            )),
        };
        Ok(true)
    }

    fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        let Handle::Reader(file) = &mut self.handle else {
            return match self.handle {
                Handle::Done => Ok(PullStatus::Finished),
                _ => Err(Error::new(format!(
                    "{} is not opened for reading (mode is not \"read\")",
                    self.config.path.display()
                ))),
            };
        };
        self.buffer.resize(self.config.chunk_size, 0);
        while !batch.is_full() {
            let n = file.read(&mut self.buffer)?;
            if n == 0 {
                batch.end_stream(0);
                self.handle = Handle::Done;
                return Ok(PullStatus::Finished);
            }
            batch.push(&self.buffer[..n]);
        }
        Ok(PullStatus::Ready)
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        let Handle::Writer(writer) = &mut self.handle else {
            return Err(Error::new(format!(
                "{} is not opened for writing (mode is \"read\")",
                self.config.path.display()
            )));
        };
        writer.write_all(event.bytes)?;
        Ok(SinkReply::Ack)
    }

    fn on_pause(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        self.flush()
    }

    fn on_drain(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        self.flush()
    }

    fn on_stop(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        self.flush()
    }
}

impl FileConnector {
    fn flush(&mut self) -> Result<()> {
        if let Handle::Writer(writer) = &mut self.handle {
            writer.flush()?;
        }
        Ok(())
    }
}
