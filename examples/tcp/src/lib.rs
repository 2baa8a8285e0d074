//! `tcp`: a TCP server or client.
//!
//! **Server** (`mode = "server"`): listens on `address`. Each accepted connection is a
//! stream (ids from 1); what a client sends arrives as events of its stream (add a `lines`
//! preprocessor for one event per line), and the end of a connection ends its stream.
//! Events delivered to the server's sink side are written back to the connection of their
//! stream: bind the connector to itself to reply on the same connection (an echo server),
//! or to a client that went away, and the event fails.
//!
//! At most `max_connections` connections are open at once: one more is accepted and closed
//! at once (a warning says so, once a second at most). When accepting fails for want of
//! resources (the process's file descriptor limit), the server stops accepting for a while,
//! doubling up to a second, instead of retrying in a loop. What a connection holds in the
//! host (an unfinished line in a `lines` preprocessor) counts against the host's
//! `--max-in-flight-bytes`: past it, the connections holding most drop their unfinished frame.
//! Connections are read in turn, so one that sends without pause cannot starve the others.
//!
//! **Client** (`mode = "client"`): connects to `address`; events delivered to it are
//! written to the connection, and what the server sends back arrives as events of stream 1.
//! When the connection breaks, the event fails, the circuit breaker closes (the sources
//! feeding it pause) and the client reconnects with exponential backoff; the breaker opens
//! again once it is connected.
//!
//! **What an ack means**: the event's bytes were written to the socket, that is, accepted
//! into the kernel's send buffer. TCP has no application-level acknowledgement: a peer that
//! closes or restarts can lose what was in that buffer or in its own unread input, and the
//! events were acked all the same. Use a connector with its own acknowledgements (a broker)
//! where that matters.
//!
//! ```toml
//! [connector.config]
//! mode = "server"            # or "client"
//! address = "127.0.0.1:4242"
//! reconnect_initial_ms = 50  # client: first reconnect delay (doubles up to reconnect_max_ms)
//! reconnect_max_ms = 5000
//! write_timeout_ms = 5000    # a write blocked this long fails the event
//! max_connections = 1024     # server: connections open at once
//! ```

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use weir_sdk::{
    Connector, ConnectorContext, Error, Event, PullStatus, Result, SinkContext, SinkReply,
    SourceBatch, connector_plugin, tracing,
};

/// Server or client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Listen and accept connections.
    Server,
    /// Connect to a server.
    Client,
}

/// Settings of the tcp connector.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Server or client.
    pub mode: Mode,
    /// `host:port` to listen on or connect to.
    pub address: String,
    /// Client: first delay before reconnecting, in milliseconds.
    #[serde(default = "default_reconnect_initial_ms")]
    pub reconnect_initial_ms: u64,
    /// Client: longest delay between reconnection attempts, in milliseconds.
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// How long a blocked write may take before the event fails, in milliseconds.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
    /// Server: how many connections may be open at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_reconnect_initial_ms() -> u64 {
    50
}
fn default_reconnect_max_ms() -> u64 {
    5000
}
fn default_write_timeout_ms() -> u64 {
    5000
}
fn default_max_connections() -> usize {
    1024
}

/// The client's stream id for what the server sends back.
const CLIENT_STREAM: u64 = 1;
const READ_CHUNK: usize = 64 * 1024;
/// First and longest pause in accepting after the process ran out of resources.
const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(10);
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);

/// The tcp connector's state.
#[derive(Debug)]
pub struct Tcp {
    config: Config,
    listener: Option<TcpListener>,
    connections: BTreeMap<u64, TcpStream>,
    next_stream: u64,
    buffer: Vec<u8>,
    /// Client: when to try reconnecting next, and the current delay.
    reconnect_at: Option<(Instant, Duration)>,
    /// Server: accepting is paused until then, after running out of resources, and the
    /// current pause.
    accept_paused: Option<(Instant, Duration)>,
    /// Server: the stream read first by the next pull (connections take turns).
    read_from: u64,
    refused: Warnings,
    accept_failures: Warnings,
}

/// A warning said at most once a second, with how many times it happened meanwhile.
#[derive(Debug, Default)]
struct Warnings {
    last: Option<Instant>,
    count: u64,
}

impl Warnings {
    /// Counts one occurrence; returns the count to report if a warning is due now.
    fn note(&mut self) -> Option<u64> {
        self.count += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

#[connector_plugin(name = "tcp")]
impl Connector for Tcp {
    type Config = Config;

    fn new(config: Config, _ctx: &ConnectorContext) -> Result<Self> {
        if config.reconnect_initial_ms == 0 || config.reconnect_max_ms < config.reconnect_initial_ms
        {
            return Err(Error::new(
                "`reconnect_initial_ms` must be at least 1 and at most `reconnect_max_ms`",
            ));
        }
        if config.max_connections == 0 {
            return Err(Error::new("`max_connections` must be at least 1"));
        }
        Ok(Self {
            config,
            listener: None,
            connections: BTreeMap::new(),
            next_stream: 1,
            buffer: vec![0; READ_CHUNK],
            reconnect_at: None,
            accept_paused: None,
            read_from: 0,
            refused: Warnings::default(),
            accept_failures: Warnings::default(),
        })
    }

    fn connect(&mut self, _ctx: &ConnectorContext, _attempt: u32) -> Result<bool> {
        let address = &self.config.address;
        match self.config.mode {
            Mode::Server => {
                let listener = TcpListener::bind(address)
                    .map_err(|e| Error::new(format!("cannot listen on {address}: {e}")))?;
                listener.set_nonblocking(true)?;
                tracing::info!(address = %listener.local_addr()?, "listening");
                self.listener = Some(listener);
            }
            Mode::Client => {
                let stream = self.dial()?;
                self.connections.insert(CLIENT_STREAM, stream);
            }
        }
        Ok(true)
    }

    fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        self.accept();
        let mut closed = Vec::new();
        // Take turns: start after the stream that filled the last batch.
        let from = self.read_from;
        let full = read_into(
            self.connections.range_mut(from..),
            batch,
            &mut self.buffer,
            &mut closed,
        )
        .or_else(|| {
            read_into(
                self.connections.range_mut(..from),
                batch,
                &mut self.buffer,
                &mut closed,
            )
        });
        if let Some(id) = full {
            self.read_from = id + 1;
        }
        for id in closed {
            self.connections.remove(&id);
            batch.end_stream(id);
        }
        Ok(if batch.is_empty() {
            PullStatus::Empty
        } else {
            PullStatus::Ready
        })
    }

    fn on_event(&mut self, ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        let stream_id = match self.config.mode {
            Mode::Server => event.id.stream,
            Mode::Client => CLIENT_STREAM,
        };
        let Some(stream) = self.connections.get_mut(&stream_id) else {
            return Err(match self.config.mode {
                Mode::Server => Error::new(format!("no open connection for stream {stream_id}")),
                Mode::Client => Error::new("not connected"),
            });
        };
        let timeout = Duration::from_millis(self.config.write_timeout_ms);
        if let Err(e) = write_all(stream, event.bytes, timeout) {
            self.connections.remove(&stream_id);
            if self.config.mode == Mode::Client {
                let delay = Duration::from_millis(self.config.reconnect_initial_ms);
                self.reconnect_at = Some((Instant::now() + delay, delay));
                ctx.close_circuit();
                tracing::warn!(error = %e, "connection lost: reconnecting");
            }
            return Err(Error::new(format!("write failed: {e}")));
        }
        Ok(SinkReply::Ack)
    }

    fn on_tick(&mut self, ctx: &mut SinkContext<'_>) -> Result<()> {
        let Some((at, delay)) = self.reconnect_at else {
            return Ok(());
        };
        if Instant::now() < at {
            return Ok(());
        }
        match self.dial() {
            Ok(stream) => {
                tracing::info!(address = %self.config.address, "reconnected");
                self.connections.insert(CLIENT_STREAM, stream);
                self.reconnect_at = None;
                ctx.open_circuit();
            }
            Err(e) => {
                let next = (delay * 2).min(Duration::from_millis(self.config.reconnect_max_ms));
                tracing::debug!(error = %e, retry_in_ms = next.as_millis() as u64, "reconnect failed");
                self.reconnect_at = Some((Instant::now() + next, next));
            }
        }
        Ok(())
    }
}

impl Tcp {
    /// Server: accepts what waits, within `max_connections`, unless accepting is paused.
    fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        if let Some((until, _)) = self.accept_paused
            && Instant::now() < until
        {
            return;
        }
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    self.accept_paused = None;
                    if self.connections.len() >= self.config.max_connections {
                        drop(stream);
                        if let Some(count) = self.refused.note() {
                            tracing::warn!(
                                %peer,
                                count,
                                max_connections = self.config.max_connections,
                                "connection closed at once: max_connections reached \
                                 (count: connections closed since the last warning)"
                            );
                        }
                        continue;
                    }
                    if let Err(e) = stream.set_nonblocking(true) {
                        tracing::warn!(%peer, error = %e, "connection dropped");
                        continue;
                    }
                    let id = self.next_stream;
                    self.next_stream += 1;
                    tracing::debug!(%peer, stream = id, "connection accepted");
                    self.connections.insert(id, stream);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // Out of descriptors or memory: retrying at once would fail the same
                    // way, as fast as the host pulls.
                    let pause = self.accept_paused.map_or(ACCEPT_PAUSE_MIN, |(_, pause)| {
                        (pause * 2).min(ACCEPT_PAUSE_MAX)
                    });
                    self.accept_paused = Some((Instant::now() + pause, pause));
                    if let Some(count) = self.accept_failures.note() {
                        tracing::warn!(
                            error = %e,
                            count,
                            open = self.connections.len(),
                            pause_ms = pause.as_millis() as u64,
                            "accept failed: accepting paused (count: failures since the last warning)"
                        );
                    }
                    break;
                }
            }
        }
    }

    fn dial(&self) -> Result<TcpStream> {
        let address = &self.config.address;
        let stream = TcpStream::connect(address)
            .map_err(|e| Error::new(format!("cannot connect to {address}: {e}")))?;
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// Reads what `connections` have into `batch` until it is full; returns the id of the
/// stream that filled it. Streams that ended or failed go to `closed`.
fn read_into<'a>(
    connections: impl Iterator<Item = (&'a u64, &'a mut TcpStream)>,
    batch: &mut SourceBatch<'_>,
    buffer: &mut [u8],
    closed: &mut Vec<u64>,
) -> Option<u64> {
    for (&id, stream) in connections {
        loop {
            match stream.read(buffer) {
                Ok(0) => {
                    closed.push(id);
                    break;
                }
                Ok(n) => {
                    batch.push_to_stream(id, &buffer[..n]);
                    if batch.is_full() {
                        return Some(id);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(stream = id, error = %e, "connection failed");
                    closed.push(id);
                    break;
                }
            }
        }
    }
    None
}

/// Writes everything to a non-blocking socket, waiting while it is full, up to `timeout`.
fn write_all(stream: &mut TcpStream, mut bytes: &[u8], timeout: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + timeout;
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(ErrorKind::TimedOut.into());
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
