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
//! **What an ack means**: by default, the event's bytes were written to the socket, that is,
//! accepted into the kernel's send buffer. TCP has no application-level acknowledgement: a
//! peer that closes or restarts can lose what was in that buffer or in its own unread input,
//! and the events were acked all the same.
//!
//! **Acknowledged delivery** (`acks = true`, on the client and on the server): the server
//! writes `ack <offset>\n` back on a connection once every byte up to `offset` of what the
//! connection sent went through its pipeline and was delivered by its sinks; the client acks
//! a batch only once the server has acknowledged all of it, within `ack_timeout_ms`, and
//! otherwise fails the batch (its source resends it) and reconnects. A server that crashes
//! or restarts loses nothing the client acked: delivery is at-least-once across the
//! connection (an event may arrive twice). When the server's pipeline fails an event, the
//! server closes that connection, since it cannot resend what it received, and the client
//! resends what was not acknowledged. In this mode what the server sends back is
//! acknowledgements, so a client cannot be a source and a server cannot be a sink. Each
//! batch waits for its acknowledgement: throughput is about one batch per round trip
//! through the server's pipeline.
//!
//! ```toml
//! [connector.config]
//! mode = "server"            # or "client"
//! address = "127.0.0.1:4242"
//! reconnect_initial_ms = 50  # client: first reconnect delay (doubles up to reconnect_max_ms)
//! reconnect_max_ms = 5000
//! write_timeout_ms = 5000    # a write blocked this long fails the event
//! max_connections = 1024     # server: connections open at once
//! acks = false               # acknowledged delivery (both ends)
//! ack_timeout_ms = 5000      # client with acks: longest wait for a batch's acknowledgement
//! ```

#![forbid(unsafe_code)]

mod acks;
mod readiness;
mod warnings;

use std::collections::{BTreeMap, HashMap};
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use weir_sdk::{
    Connector, ConnectorContext, Error, Event, EventId, PullStatus, Result, SinkContext, SinkReply,
    SourceBatch, connector_plugin, tracing,
};

use acks::{Received, Sent};
use readiness::Readiness;
use warnings::Warnings;

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
    /// Acknowledged delivery: the server acknowledges what its pipeline delivered, the
    /// client acks only what was acknowledged. Both ends must set it.
    #[serde(default)]
    pub acks: bool,
    /// Client with `acks`: how long a batch may wait for its acknowledgement, in
    /// milliseconds, before it fails and the client reconnects.
    #[serde(default = "default_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
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
fn default_ack_timeout_ms() -> u64 {
    5000
}

/// The client's stream id for what the server sends back.
const CLIENT_STREAM: u64 = 1;
const READ_CHUNK: usize = 64 * 1024;
/// First and longest pause in accepting after the process ran out of resources.
const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(10);
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);
/// The readiness token of the server's listening socket (connections use their stream id).
const LISTENER: usize = 0;
/// How often a source whose sockets cannot be watched is pulled instead.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

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
    /// Server with `acks`: per connection, what awaits its verdict.
    received: HashMap<u64, Received>,
    /// Server: connections closed outside a pull, whose streams end at the next pull.
    ended: Vec<u64>,
    /// Client with `acks`: what the server acknowledged of the connection.
    sent: Sent,
    /// Client with `acks`: events of the current batch were written, not yet acknowledged.
    unconfirmed: bool,
    /// Bound as a source: wakes the host when a socket has input, so that it is pulled
    /// only then.
    readiness: Option<Readiness>,
    /// A socket could not be watched: pulled every [`POLL_INTERVAL`] instead.
    polled: bool,
}

#[connector_plugin(name = "tcp")]
impl Connector for Tcp {
    type Config = Config;

    fn new(config: Config, ctx: &ConnectorContext) -> Result<Self> {
        if config.reconnect_initial_ms == 0 || config.reconnect_max_ms < config.reconnect_initial_ms
        {
            return Err(Error::new(
                "`reconnect_initial_ms` must be at least 1 and at most `reconnect_max_ms`",
            ));
        }
        if config.max_connections == 0 {
            return Err(Error::new("`max_connections` must be at least 1"));
        }
        if config.acks {
            match config.mode {
                Mode::Client if ctx.is_bound_as_source() => {
                    return Err(Error::permanent(
                        "a client with `acks` cannot be a source: what the server sends back are acknowledgements",
                    ));
                }
                Mode::Server if ctx.is_bound_as_sink() => {
                    return Err(Error::permanent(
                        "a server with `acks` cannot be a sink: what it sends back are acknowledgements",
                    ));
                }
                _ => {}
            }
            if config.ack_timeout_ms == 0 {
                return Err(Error::new("`ack_timeout_ms` must be at least 1"));
            }
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
            received: HashMap::new(),
            ended: Vec::new(),
            sent: Sent::default(),
            unconfirmed: false,
            readiness: None,
            polled: false,
        })
    }

    fn connect(&mut self, ctx: &ConnectorContext, _attempt: u32) -> Result<bool> {
        if ctx.is_bound_as_source() && self.readiness.is_none() && !self.polled {
            match Readiness::start(ctx.waker()) {
                Ok(readiness) => self.readiness = Some(readiness),
                Err(error) => {
                    tracing::warn!(%error, "cannot wait for sockets: polling them instead");
                    self.polled = true;
                }
            }
        }
        let address = &self.config.address;
        match self.config.mode {
            Mode::Server => {
                let listener = TcpListener::bind(address)
                    .map_err(|e| Error::new(format!("cannot listen on {address}: {e}")))?;
                listener.set_nonblocking(true)?;
                tracing::info!(address = %listener.local_addr()?, "listening");
                self.watch(&listener, LISTENER);
                self.listener = Some(listener);
            }
            Mode::Client => {
                let stream = self.dial()?;
                self.watch(&stream, CLIENT_STREAM as usize);
                self.connections.insert(CLIENT_STREAM, stream);
            }
        }
        Ok(true)
    }

    fn pull(&mut self, ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        self.accept();
        let mut closed = std::mem::take(&mut self.ended);
        let mut reader = Reader {
            buffer: &mut self.buffer,
            closed: &mut closed,
            received: self.config.acks.then_some(&mut self.received),
        };
        // Take turns: start after the stream that filled the last batch.
        let from = self.read_from;
        let full = reader
            .read_into(self.connections.range_mut(from..), batch)
            .or_else(|| reader.read_into(self.connections.range_mut(..from), batch));
        if let Some(id) = full {
            self.read_from = id + 1;
        }
        for id in closed {
            self.connections.remove(&id);
            self.received.remove(&id);
            batch.end_stream(id);
        }
        if !batch.is_empty() {
            return Ok(PullStatus::Ready);
        }
        // Nothing to read: the readiness thread wakes the host when there is. Unless it
        // could not watch a socket, or accepting is paused (connections already waiting
        // raise no new readiness): then the host comes back on its own.
        if self.polled {
            ctx.pull_after(POLL_INTERVAL);
        } else if let Some((until, _)) = self.accept_paused {
            ctx.pull_after(until.saturating_duration_since(Instant::now()));
        }
        Ok(PullStatus::Empty)
    }

    fn on_ack(&mut self, _ctx: &ConnectorContext, id: EventId) -> Result<()> {
        let Some(offset) = self
            .received
            .get_mut(&id.stream)
            .and_then(|received| received.acked(id.pull))
        else {
            return Ok(());
        };
        let Some(stream) = self.connections.get_mut(&id.stream) else {
            return Ok(());
        };
        let line = format!("ack {offset}\n");
        let timeout = Duration::from_millis(self.config.write_timeout_ms);
        if let Err(e) = write_all(stream, line.as_bytes(), timeout) {
            tracing::warn!(stream = id.stream, error = %e, "cannot acknowledge: connection closed");
            self.close(id.stream);
        }
        Ok(())
    }

    fn on_fail(&mut self, _ctx: &ConnectorContext, id: EventId) -> Result<()> {
        if self.received.contains_key(&id.stream) {
            // What this connection sent cannot be resent from here: closing it makes the
            // client resend everything not acknowledged.
            tracing::warn!(
                stream = id.stream,
                "an event of the connection was not delivered: closing it, the client resends"
            );
            self.close(id.stream);
        }
        Ok(())
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
            match self.config.mode {
                Mode::Client => self.lose_connection(ctx, &e.to_string()),
                Mode::Server => self.close(stream_id),
            }
            return Err(Error::new(format!("write failed: {e}")));
        }
        if self.config.acks {
            self.sent.wrote(event.bytes.len());
            self.unconfirmed = true;
        }
        Ok(SinkReply::Ack)
    }

    fn on_batch_end(&mut self, ctx: &mut SinkContext<'_>) -> Result<()> {
        if !std::mem::take(&mut self.unconfirmed) {
            return Ok(());
        }
        let Some(stream) = self.connections.get_mut(&CLIENT_STREAM) else {
            return Err(Error::new(
                "connection lost before the server acknowledged the batch",
            ));
        };
        let deadline = Instant::now() + Duration::from_millis(self.config.ack_timeout_ms);
        if let Err(e) = self.sent.wait(stream, deadline) {
            self.lose_connection(ctx, &e);
            return Err(Error::new(format!("batch not acknowledged: {e}")));
        }
        Ok(())
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
                self.sent = Sent::default();
                self.watch(&stream, CLIENT_STREAM as usize);
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
    /// Server: closes a connection; its stream ends at the next pull, which comes soon.
    fn close(&mut self, stream: u64) {
        if self.connections.remove(&stream).is_some() {
            self.ended.push(stream);
            if let Some(readiness) = &self.readiness {
                readiness.wake();
            }
        }
        self.received.remove(&stream);
    }

    /// Has the host woken when `socket` has input (when bound as a source); if it cannot
    /// be watched, the source is polled from then on.
    fn watch(&mut self, socket: &impl std::os::fd::AsRawFd, token: usize) {
        watch(self.readiness.as_ref(), &mut self.polled, socket, token);
    }

    /// Client: the connection broke; pause the sources (close the breaker) and reconnect.
    fn lose_connection(&mut self, ctx: &mut SinkContext<'_>, why: &str) {
        self.connections.remove(&CLIENT_STREAM);
        self.sent = Sent::default();
        let delay = Duration::from_millis(self.config.reconnect_initial_ms);
        self.reconnect_at = Some((Instant::now() + delay, delay));
        ctx.close_circuit();
        tracing::warn!(error = why, "connection lost: reconnecting");
    }

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
                    watch(
                        self.readiness.as_ref(),
                        &mut self.polled,
                        &stream,
                        id as usize,
                    );
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

/// What one pull reads into: the read buffer, the streams that ended, and with `acks`,
/// what each connection sent in which pull.
struct Reader<'a> {
    buffer: &'a mut [u8],
    closed: &'a mut Vec<u64>,
    received: Option<&'a mut HashMap<u64, Received>>,
}

impl Reader<'_> {
    /// Reads what `connections` have into `batch` until it is full; returns the id of the
    /// stream that filled it. Streams that ended or failed go to `closed`.
    fn read_into<'c>(
        &mut self,
        connections: impl Iterator<Item = (&'c u64, &'c mut TcpStream)>,
        batch: &mut SourceBatch<'_>,
    ) -> Option<u64> {
        for (&id, stream) in connections {
            loop {
                match stream.read(self.buffer) {
                    Ok(0) => {
                        self.closed.push(id);
                        break;
                    }
                    Ok(n) => {
                        let event = batch.push_to_stream(id, &self.buffer[..n]);
                        if let Some(received) = self.received.as_deref_mut() {
                            received.entry(id).or_default().read(event.pull, n);
                        }
                        if batch.is_full() {
                            return Some(id);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::warn!(stream = id, error = %e, "connection failed");
                        self.closed.push(id);
                        break;
                    }
                }
            }
        }
        None
    }
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

/// See [`Tcp::watch`] (a function of the fields it uses, for callers that borrow others).
fn watch(
    readiness: Option<&Readiness>,
    polled: &mut bool,
    socket: &impl std::os::fd::AsRawFd,
    token: usize,
) {
    let Some(readiness) = readiness else {
        return;
    };
    if let Err(error) = readiness.watch(socket, token) {
        tracing::warn!(%error, "cannot wait for a socket: polling instead");
        *polled = true;
    }
}
