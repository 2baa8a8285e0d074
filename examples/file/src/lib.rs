//! `file`: reads a file as a source, or writes one as a sink.
//!
//! As a source (`mode = "read"`) it reads the file in chunks as one stream, ends the stream
//! at the end of the file and finishes; add a `lines` preprocessor to get one event per
//! line. As a sink (`mode = "write"` or `"append"`) it writes each event's bytes as they are
//! (add a `lines` postprocessor to separate them).
//!
//! Without `mode`, the connector follows its bindings: it reads when the pipeline uses it
//! as a source and appends when it uses it as a sink (append never destroys data; say
//! `mode = "write"` to truncate). A mode that contradicts the bindings is a config error,
//! reported by `weir check`.
//!
//! **What an ack means**: the sink writes each batch of events to the file with one
//! `write` at the end of the batch and acks the batch's events only once the bytes reached
//! the operating system (they are in the page cache, not necessarily on the disk: there is
//! no `fsync`). If the write fails (a full disk, a revoked permission), none of the batch
//! is acked and the connector stops for good, so the run ends non-zero. A missing or
//! unreadable input file is a permanent error too: it is not retried.
//!
//! **Write mode and upgrades**: every writer holds a shared lock (`flock`) on its file for as
//! long as it has it open. `mode = "write"` truncates the file when it opens it only if it
//! can lock it exclusively, that is when no other writer has it open: not while the
//! instance it replaces during an upgrade (`weir plugins reload`, `weir apply`, a watched
//! plugin directory), or another weir, still writes to it. Then it appends instead, so an
//! upgrade loses none of what the old instance wrote, however many upgrades follow.
//!
//! ```toml
//! [connector.config]
//! path = "in.txt"
//! mode = "read"          # read, write (truncate) or append; default: from the bindings
//! chunk_size = 65536     # bytes per event when reading (default 64 KiB, at most 64 MiB)
//! ```

#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
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
    /// Truncate it (unless another writer has it open, see the crate docs) and write
    /// events to it.
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
    /// Read, write or append; by default read when bound as a source, append when bound
    /// as a sink.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Bytes per event when reading.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: usize,
}

/// The largest `chunk_size`: one read buffer of this size per connector.
const MAX_CHUNK_SIZE: usize = 64 << 20;

/// Bytes read in one pull, at most (or one chunk, if larger): a pull of 64 chunks of 64 MiB
/// would hold 4 GiB before the host could look at it.
const PULL_BYTES: usize = 1 << 20;

fn default_chunk_size() -> usize {
    64 * 1024
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Read => "read",
            Mode::Write => "write",
            Mode::Append => "append",
        }
    }

    /// The mode from the config and the bindings, or why they contradict each other.
    fn resolve(configured: Option<Mode>, ctx: &ConnectorContext) -> Result<Mode> {
        let (source, sink) = (ctx.is_bound_as_source(), ctx.is_bound_as_sink());
        match configured {
            Some(Mode::Read) if sink => Err(Error::permanent(
                "`mode` is \"read\", but the pipeline sends events to this connector: \
                 use \"write\" or \"append\"",
            )),
            Some(mode @ (Mode::Write | Mode::Append)) if source => Err(Error::permanent(format!(
                "`mode` is \"{}\", but the pipeline binds this connector as a source: \
                     use \"read\"",
                mode.name()
            ))),
            Some(mode) => Ok(mode),
            None if source && sink => Err(Error::permanent(
                "the pipeline binds this connector both as a source and as a sink: set `mode`",
            )),
            None if sink => Ok(Mode::Append),
            None => Ok(Mode::Read),
        }
    }
}

enum Handle {
    Closed,
    Reader(File),
    /// Writing, holding the file's shared lock (see the crate docs).
    Writer(File),
    Done,
}

/// The file connector's state.
pub struct FileConnector {
    config: Config,
    mode: Mode,
    handle: Handle,
    /// Reading: the chunk being read. Writing: the current batch's bytes, written at its end.
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

    fn new(config: Config, ctx: &ConnectorContext) -> Result<Self> {
        if !(1..=MAX_CHUNK_SIZE).contains(&config.chunk_size) {
            return Err(Error::new(format!(
                "`chunk_size` must be between 1 and {MAX_CHUNK_SIZE} bytes, found {}",
                config.chunk_size
            )));
        }
        let mode = Mode::resolve(config.mode, ctx)?;
        Ok(Self {
            config,
            mode,
            handle: Handle::Closed,
            buffer: Vec::new(),
        })
    }

    fn connect(&mut self, _ctx: &ConnectorContext, _attempt: u32) -> Result<bool> {
        let path = &self.config.path;
        // Retrying cannot make a missing file appear or a permission change.
        let describe =
            |e: std::io::Error| Error::permanent(format!("cannot open {}: {e}", path.display()));
        if self.mode == Mode::Read {
            self.handle = Handle::Reader(File::open(path).map_err(describe)?);
            return Ok(true);
        }
        // Appending, whatever the mode: writes land at the end even while another writer
        // (the instance this one replaces) still writes.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(describe)?;
        let alone = match file.try_lock() {
            Ok(()) => true,
            Err(std::fs::TryLockError::WouldBlock) => false,
            // A file system without locks: the mode's plain meaning.
            Err(std::fs::TryLockError::Error(_)) => true,
        };
        if self.mode == Mode::Write && alone {
            file.set_len(0).map_err(describe)?;
        }
        // Shared from here on, so that the next writer sees this one whatever it does.
        // (An exclusive lock another writer takes to truncate is held only that long.)
        let mut shared = file.try_lock_shared();
        for _ in 0..100 {
            if !matches!(shared, Err(std::fs::TryLockError::WouldBlock)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
            shared = file.try_lock_shared();
        }
        if let Err(std::fs::TryLockError::WouldBlock) = shared {
            return Err(Error::new(format!(
                "cannot lock {}: another program holds it exclusively",
                path.display()
            )));
        }
        self.handle = Handle::Writer(file);
        Ok(true)
    }

    fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        let Handle::Reader(file) = &mut self.handle else {
            return match self.handle {
                Handle::Done => Ok(PullStatus::Finished),
                _ => Err(Error::permanent(format!(
                    "{} is not opened for reading (mode is \"{}\")",
                    self.config.path.display(),
                    self.mode.name()
                ))),
            };
        };
        self.buffer.resize(self.config.chunk_size, 0);
        let mut pulled = 0;
        while !batch.is_full() && pulled < PULL_BYTES {
            let n = file.read(&mut self.buffer).map_err(|e| {
                Error::permanent(format!("cannot read {}: {e}", self.config.path.display()))
            })?;
            if n == 0 {
                batch.end_stream(0);
                self.handle = Handle::Done;
                return Ok(PullStatus::Finished);
            }
            batch.push(&self.buffer[..n]);
            pulled += n;
        }
        Ok(PullStatus::Ready)
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        if !matches!(self.handle, Handle::Writer(_)) {
            return Err(Error::permanent(format!(
                "{} is not opened for writing (mode is \"{}\")",
                self.config.path.display(),
                self.mode.name()
            )));
        }
        // Acked only if the whole batch reaches the OS: see `on_batch_end`.
        self.buffer.extend_from_slice(event.bytes);
        Ok(SinkReply::Ack)
    }

    fn on_batch_end(&mut self, _ctx: &mut SinkContext<'_>) -> Result<()> {
        self.write_buffer()
    }

    fn on_stop(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        self.write_buffer()
    }
}

impl FileConnector {
    /// Writes the buffered bytes to the file (to the OS: no fsync). On failure the buffer is
    /// dropped (its events are failed, not acked) and the error is permanent.
    fn write_buffer(&mut self) -> Result<()> {
        let Handle::Writer(file) = &mut self.handle else {
            return Ok(());
        };
        if self.buffer.is_empty() {
            return Ok(());
        }
        let written = file.write_all(&self.buffer);
        self.buffer.clear();
        written.map_err(|e| {
            Error::permanent(format!(
                "cannot write to {}: {e}",
                self.config.path.display()
            ))
        })
    }
}
