//! Connectors out of process (`isolation = "process"`): the connector runs in a child
//! process, `weir` itself in its hidden plugin-host mode, which loads the plugin file with
//! the same validating loader and runs the instance there. The host's
//! [`ConnectorInstance`](super::ConnectorInstance) talks to the child over sockets
//! instead of calling the vtable, with the same semantics, so that the runtime (its
//! supervisor, its deadlines) treats an isolated connector like any other.
//!
//! A crash of the child (a signal such as SIGSEGV or SIGABRT, an `exit`, no answer within
//! the call deadline) fails the call in progress with [`CallError::Crashed`], which poisons
//! the instance: the supervisor restarts it (a new child) as it restarts one that panicked,
//! up to `max_restarts`.
//!
//! The wire: frames `[u32 length][u8 tag][payload]`, little-endian, over two socket pairs.
//! On the calls socket the connector's thread sends one request and reads its answer
//! itself, within the call deadline (no hand-off to another thread on the way). On the
//! notices socket the child sends, at any time, a log record, a wake or a shutdown request,
//! which a reader thread of the host handles at once, so a source in a child wakes its host
//! like one in process. Nothing the child sends is trusted: a frame that does not decode,
//! is longer than [`MAX_FRAME`], or answers what was not asked ends the child as a crash.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Read, Write};
use std::os::fd::{AsRawFd as _, FromRawFd as _, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_sdk::abi::{EventId, Feedback, FeedbackKind, LogLevel, ReplyCode};
use weir_sdk::{Circuit, PullStatus};

use super::instance::{HostContext, emit_log, host_max_level, side_of};
use super::{EventBatch, InstanceOptions, Notice, Plugin, Sides, SinkEvent};
use crate::error::CallError;
use crate::field_path::FieldPath;

/// The argument that puts `weir` into its plugin-host mode (see [`serve_child`]).
pub const CHILD_ARG: &str = "__plugin-host";

/// The child's end of the calls socket (requests in, answers out), as the child sees it.
const CALLS_FD: RawFd = 3;

/// The child's end of the notices socket (log records, wakes, shutdown requests out).
const NOTICES_FD: RawFd = 4;

/// The longest frame either side accepts: a batch larger than this is a broken child.
pub(crate) const MAX_FRAME: usize = 256 << 20;

/// The longest notice (a log record) the host takes from a child.
const MAX_NOTICE: usize = 64 << 10;

/// The longest line of a child's standard error the host keeps; a longer one is cut.
const MAX_STDERR_LINE: usize = 1024;

/// Set in a child's environment by the host that starts it: the `weir` version, which the
/// child checks against its own (one binary replaced on disk under a running one).
const CHILD_ENV: &str = "WEIR_PLUGIN_HOST";

/// Lines of the child's standard error kept for the crash report.
const STDERR_LINES: usize = 8;

/// How long a child that was asked to end (its socket closed) or killed gets to exit
/// before it is killed (again) and given up on.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// How an isolated instance is run (see [`InstanceOptions::isolate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    /// The executable to start: a `weir` that serves [`CHILD_ARG`] (the running one, as a
    /// rule: `std::env::current_exe()`).
    pub program: PathBuf,
    /// The longest a call may go unanswered before the child is killed as hung.
    pub call_timeout: Duration,
    /// The most address space the child may map (`RLIMIT_AS`), in bytes: past it, its
    /// allocations fail (a Rust plugin then aborts: a crash, restarted). None by default.
    pub memory_limit: Option<u64>,
}

impl Isolation {
    /// Children started from `program`, each call answered within `call_timeout`, with no
    /// memory limit.
    pub fn new(program: impl Into<PathBuf>, call_timeout: Duration) -> Self {
        Self {
            program: program.into(),
            call_timeout,
            memory_limit: None,
        }
    }

    /// Limits each child's address space to `bytes` (see
    /// [`memory_limit`](Self::memory_limit)).
    #[must_use]
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }
}

/// Frame tags.
pub(crate) mod tag {
    pub(crate) const CREATE: u8 = 1;
    pub(crate) const CONNECT: u8 = 2;
    pub(crate) const NOTIFY: u8 = 3;
    pub(crate) const PULL: u8 = 4;
    pub(crate) const FEEDBACK: u8 = 5;
    pub(crate) const SINK_BATCH: u8 = 6;
    pub(crate) const CLOSE: u8 = 7;
    /// The request succeeded; its results follow.
    pub(crate) const OK: u8 = 0x80;
    /// The request failed; a [`CallError`](crate::CallError) follows.
    pub(crate) const ERR: u8 = 0x81;
    /// Added to `OK` or `ERR`: the connector asked for the run to shut down during the call.
    pub(crate) const SHUTDOWN_REQUESTED: u8 = 0x02;
    /// A log record (any time).
    pub(crate) const LOG: u8 = 0x90;
    /// The source's waker was woken (any time).
    pub(crate) const WAKE: u8 = 0x91;
    /// The connector asked for the run to shut down (any time).
    pub(crate) const SHUTDOWN: u8 = 0x92;
}

/// Builds one frame's payload.
#[derive(Default)]
struct Out(Vec<u8>);

impl Out {
    fn u8(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }

    fn u32(&mut self, value: u32) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    fn u64(&mut self, value: u64) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    fn len(&mut self, len: usize) -> &mut Self {
        // Frames are at most `MAX_FRAME` long, so every length fits.
        self.u32(u32::try_from(len).unwrap_or(u32::MAX))
    }

    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.len(bytes.len());
        self.0.extend_from_slice(bytes);
        self
    }

    fn str(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }
}

/// What is wrong with a frame the other side sent.
#[derive(Debug)]
struct Garbage(String);

/// Reads one frame's payload, checking every length against what is left.
struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Garbage> {
        if self.0.len() < n {
            return Err(Garbage(format!(
                "a frame ends {} bytes short",
                n - self.0.len()
            )));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Garbage> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, Garbage> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, Garbage> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    /// A count of items each at least `min_size` bytes long: one the frame cannot hold is
    /// garbage (so no allocation is sized by a lie).
    fn count(&mut self, min_size: usize) -> Result<usize, Garbage> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.0.len() {
            return Err(Garbage(format!(
                "a frame claims {n} items but holds {} bytes",
                self.0.len()
            )));
        }
        Ok(n)
    }

    fn event_id(&mut self) -> Result<EventId, Garbage> {
        Ok(EventId {
            stream: self.u64()?,
            pull: self.u64()?,
        })
    }

    fn bytes(&mut self) -> Result<&'a [u8], Garbage> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn str(&mut self) -> Result<&'a str, Garbage> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Garbage("a string is not UTF-8".into()))
    }

    fn end(&self) -> Result<(), Garbage> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Garbage(format!(
                "{} bytes past the end of a frame",
                self.0.len()
            )))
        }
    }
}

/// Writes one frame with one `write_all` (so frames from several threads, each under the
/// writer's lock, never interleave).
fn write_frame(stream: &mut impl Write, tag: u8, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len() + 1)
        .ok()
        .filter(|len| *len as usize <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("a frame over the size limit"))?;
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.push(tag);
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

/// Reads one frame: `None` at a clean end of the stream (between frames).
fn read_frame(stream: &mut impl Read, max: usize) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 4];
    match stream.read_exact(&mut header) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let len = u32::from_le_bytes(header) as usize;
    if len == 0 || len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes (the limit is {max})"),
        ));
    }
    let mut frame = vec![0u8; len];
    stream.read_exact(&mut frame)?;
    let tag = frame.remove(0);
    Ok(Some((tag, frame)))
}

fn notice_code(notice: Notice) -> u8 {
    match notice {
        Notice::Start => 0,
        Notice::Pause => 1,
        Notice::Resume => 2,
        Notice::Drain => 3,
        Notice::Stop => 4,
        Notice::CircuitClosed => 5,
        Notice::CircuitOpened => 6,
    }
}

fn notice_of(code: u8) -> Result<Notice, Garbage> {
    Ok(match code {
        0 => Notice::Start,
        1 => Notice::Pause,
        2 => Notice::Resume,
        3 => Notice::Drain,
        4 => Notice::Stop,
        5 => Notice::CircuitClosed,
        6 => Notice::CircuitOpened,
        other => return Err(Garbage(format!("unknown notice {other}"))),
    })
}

/// A [`CallError`] as it crosses: its kind and text; the connector, plugin and method are
/// the host's own.
fn put_error(out: &mut Out, error: &CallError) {
    match error {
        CallError::Failed { message, .. } => out.u8(0).str(message),
        CallError::Permanent { message, .. } => out.u8(1).str(message),
        CallError::Config {
            field_path,
            message,
            ..
        } => out.u8(2).str(message).str(&field_path.to_json()),
        CallError::Panicked {
            message, location, ..
        } => out.u8(3).str(message).str(location),
        CallError::Poisoned { .. } => out.u8(4),
        CallError::Closed { .. } => out.u8(5),
        CallError::Unsupported { side, .. } => out.u8(6).str(side),
        CallError::Protocol { message, .. } => out.u8(7).str(message),
        // A child runs its plugin in process: its own calls do not crash this way.
        CallError::Crashed { reason, .. } => out.u8(7).str(reason),
    };
}

fn get_error(
    input: &mut In<'_>,
    connector: &str,
    plugin: &str,
    method: &'static str,
) -> Result<CallError, Garbage> {
    let (connector, plugin) = (connector.to_owned(), plugin.to_owned());
    Ok(match input.u8()? {
        0 => CallError::Failed {
            connector,
            plugin,
            method,
            message: input.str()?.to_owned(),
        },
        1 => CallError::Permanent {
            connector,
            plugin,
            method,
            message: input.str()?.to_owned(),
        },
        2 => CallError::Config {
            connector,
            plugin,
            message: input.str()?.to_owned(),
            field_path: FieldPath::from_json(input.str()?),
        },
        3 => CallError::Panicked {
            connector,
            plugin,
            method,
            message: input.str()?.to_owned(),
            location: input.str()?.to_owned(),
        },
        4 => CallError::Poisoned {
            connector,
            plugin,
            method,
        },
        5 => CallError::Closed {
            connector,
            plugin,
            method,
        },
        6 => {
            // The side the method needs, as in process; what the child says is not used.
            let _ = input.str()?;
            CallError::Unsupported {
                connector,
                plugin,
                method,
                side: side_of(method),
            }
        }
        7 => CallError::Protocol {
            connector,
            plugin,
            method,
            message: input.str()?.to_owned(),
        },
        other => return Err(Garbage(format!("unknown error kind {other}"))),
    })
}

/// The last lines a child wrote to its standard error.
#[derive(Debug, Default)]
struct Tail {
    lines: VecDeque<String>,
    /// The pipe ended: every line the child wrote is in.
    ended: bool,
}

impl Tail {
    fn push(&mut self, line: String) {
        if self.lines.len() == STDERR_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

/// How long a crash report waits for the last lines of a child that ended (its standard
/// error ends with it, unless something it started still holds the pipe).
const STDERR_GRACE: Duration = Duration::from_millis(200);

/// The host's side of one child: the process, its calls socket (read by the calling
/// thread itself: an answer costs no hand-off between threads), and what the threads
/// reading its notices and its standard error collect.
pub(crate) struct Child {
    process: std::process::Child,
    calls: UnixStream,
    /// Why the notices reader gave up on the child, if it sent garbage there.
    notices_garbage: Arc<Mutex<Option<String>>>,
    stderr: Arc<Mutex<Tail>>,
    call_timeout: Duration,
    /// Set once the child crashed: why (every later call fails with it).
    crashed: Option<String>,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.process.id())
            .field("crashed", &self.crashed)
            .finish_non_exhaustive()
    }
}

/// A crash of the child, as the call that found it reports it.
pub(crate) struct Crash(pub(crate) String);

impl Child {
    /// Starts a child for `plugin` (a library file) and creates the instance in it: the
    /// child's answer to `CREATE` is the instance's `new`.
    pub(crate) fn spawn(
        isolation: &Isolation,
        plugin: &Path,
        connector_id: &str,
        config: &str,
        bound_as: Sides,
        host: &Arc<HostContext>,
    ) -> Result<Child, Reply> {
        let crashed = |why: String| Reply::Crashed(Crash(why));
        let pair = || UnixStream::pair().map_err(|e| crashed(format!("socketpair: {e}")));
        let (calls, child_calls) = pair()?;
        let (notices, child_notices) = pair()?;
        let mut command = Command::new(&isolation.program);
        command
            .arg(CHILD_ARG)
            .env(CHILD_ENV, env!("CARGO_PKG_VERSION"))
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        let fds = [
            (child_calls.as_raw_fd(), CALLS_FD),
            (child_notices.as_raw_fd(), NOTICES_FD),
        ];
        let memory_limit = isolation.memory_limit;
        // SAFETY: the closure runs in the child between fork and exec and calls only
        // async-signal-safe functions (`fcntl`, `dup2`, `close`, `prctl`, `setrlimit`) on
        // descriptors and limits it owns: it puts the child's ends of the socket pairs at
        // `CALLS_FD` and `NOTICES_FD`, without close-on-exec, has the child killed if this
        // process dies, keeps it (and whatever it executes) from gaining privileges, and
        // sets its memory limit.
        unsafe {
            command.pre_exec(move || {
                let os = std::io::Error::last_os_error;
                // Copies above both targets first, so that one `dup2` cannot overwrite the
                // other's source.
                let mut high = [0; 2];
                for (copy, (fd, _)) in high.iter_mut().zip(fds) {
                    *copy = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
                    if *copy == -1 {
                        return Err(os());
                    }
                }
                for (copy, (_, target)) in high.into_iter().zip(fds) {
                    // `dup2` clears close-on-exec on the new descriptor.
                    if libc::dup2(copy, target) == -1 || libc::close(copy) == -1 {
                        return Err(os());
                    }
                }
                // `prctl` is variadic and the kernel reads its arguments as `unsigned long`.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) == -1 {
                    return Err(os());
                }
                // No setuid or file-capability gains through `exec` for the plugin: it runs
                // with at most this process's privileges.
                let (one, zero): (libc::c_ulong, libc::c_ulong) = (1, 0);
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, one, zero, zero, zero) == -1 {
                    return Err(os());
                }
                if let Some(bytes) = memory_limit {
                    let limit = libc::rlimit {
                        rlim_cur: bytes,
                        rlim_max: bytes,
                    };
                    if libc::setrlimit(libc::RLIMIT_AS, &limit) == -1 {
                        return Err(os());
                    }
                }
                Ok(())
            })
        };
        let mut process = command.spawn().map_err(|e| {
            crashed(format!(
                "cannot start {} {CHILD_ARG}: {e}",
                isolation.program.display()
            ))
        })?;
        drop((child_calls, child_notices));
        let stderr = Arc::new(Mutex::new(Tail::default()));
        if let Some(pipe) = process.stderr.take() {
            let tail = Arc::clone(&stderr);
            let connector = host.connector_id.clone();
            let pid = process.id();
            spawn_thread("weir-child-err", move || {
                let mut pipe = BufReader::new(pipe);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    // At most `MAX_STDERR_LINE` bytes at a time: a child that writes without
                    // newlines costs the host that much, not what it wrote.
                    match (&mut pipe)
                        .take(MAX_STDERR_LINE as u64)
                        .read_until(b'\n', &mut line)
                    {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                    tracing::warn!(connector = %connector, pid, "child: {text}");
                    tail.lock().unwrap_or_else(|p| p.into_inner()).push(text);
                }
                tail.lock().unwrap_or_else(|p| p.into_inner()).ended = true;
            });
        }
        let notices_garbage = Arc::new(Mutex::new(None));
        let ending = calls
            .try_clone()
            .map_err(|e| crashed(format!("socket: {e}")))?;
        let (context, garbage) = (Arc::clone(host), Arc::clone(&notices_garbage));
        spawn_thread("weir-child", move || {
            read_notices(notices, &context, &ending, &garbage);
        });
        let mut child = Child {
            process,
            calls,
            notices_garbage,
            stderr,
            call_timeout: isolation.call_timeout,
            crashed: None,
        };
        let mut request = Out::default();
        request
            .str(&plugin.to_string_lossy())
            .str(connector_id)
            .str(config)
            .u8(u8::from(bound_as.source) | u8::from(bound_as.sink) << 1)
            .u8(u8::from(host.waker.is_some()))
            .str(env!("CARGO_PKG_VERSION"))
            .u8(u8::try_from(host_max_level().0).unwrap_or(0));
        child.call(tag::CREATE, &request.0, "new", host)?;
        Ok(child)
    }

    /// Sends one request and waits for its answer (at most the call deadline): `Ok` with
    /// the answer's payload, or the error the child reported, or its crash.
    pub(crate) fn call(
        &mut self,
        request: u8,
        payload: &[u8],
        method: &'static str,
        host: &HostContext,
    ) -> Result<Vec<u8>, Reply> {
        if let Some(why) = &self.crashed {
            return Err(Reply::Crashed(Crash(why.clone())));
        }
        // A child that stops reading (stopped, or stuck with a full socket) is as hung as
        // one that does not answer.
        let _ = self.calls.set_write_timeout(Some(self.call_timeout));
        if let Err(error) = write_frame(&mut self.calls, request, payload) {
            let why = if matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                format!(
                    "did not take `{method}` within {:?}: killed",
                    self.call_timeout
                )
            } else {
                format!("cannot send `{method}`: {error}")
            };
            return Err(Reply::Crashed(self.give_up(why)));
        }
        let mut answer = Deadline {
            stream: &self.calls,
            deadline: Instant::now() + self.call_timeout,
        };
        let read = read_frame(&mut answer, MAX_FRAME);
        if let Ok(Some((answer, _))) = &read
            && matches!(answer & !tag::SHUTDOWN_REQUESTED, tag::OK | tag::ERR)
            && answer & tag::SHUTDOWN_REQUESTED != 0
        {
            tracing::info!(connector = %host.connector_id, plugin = %host.plugin, "connector requested shutdown");
            host.shutdown_requested.store(true, Ordering::Release);
        }
        let answer_tag = |answer: u8| {
            let plain = answer & !tag::SHUTDOWN_REQUESTED;
            if matches!(plain, tag::OK | tag::ERR) {
                plain
            } else {
                answer
            }
        };
        let why = match read
            .map(|frame| frame.map(|(answer, payload)| (answer_tag(answer), payload)))
        {
            Ok(Some((tag::OK, payload))) => return Ok(payload),
            Ok(Some((tag::ERR, payload))) => {
                let mut input = In(&payload);
                match get_error(&mut input, &host.connector_id, &host.plugin, method)
                    .and_then(|error| input.end().map(|()| error))
                {
                    Ok(error) => return Err(Reply::Failed(error)),
                    Err(Garbage(why)) => Err(format!("sent garbage answering `{method}`: {why}")),
                }
            }
            Ok(Some((other, _))) => Err(format!(
                "answered `{method}` with a frame of the unknown tag {other}"
            )),
            // Shut down by the notices reader for garbage, or the child ended.
            Ok(None) => self
                .notices_garbage
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .map_or_else(|| Ok("its socket closed".to_owned()), Err),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(format!(
                    "did not answer `{method}` within {:?}: killed",
                    self.call_timeout
                ))
            }
            Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
                Err(format!("sent garbage answering `{method}`: {error}"))
            }
            Err(error) => Ok(format!("its socket failed: {error}")),
        };
        // `Err`: the child is alive but not to be trusted to end by itself.
        let why = why.unwrap_or_else(|why| {
            let _ = self.process.kill();
            why
        });
        Err(Reply::Crashed(self.crash(why)))
    }

    /// Records the crash: waits for the child to end (killing it if it has not), and says
    /// how it ended, with the last lines of its standard error.
    fn crash(&mut self, why: String) -> Crash {
        let status = self.reap();
        let mut reason = match status {
            Some(status) => format!("{why}; the child {}", describe(status)),
            None => format!("{why}; the child did not end even when killed"),
        };
        // Its last lines may still be on their way through the pipe.
        let deadline = Instant::now() + STDERR_GRACE;
        while status.is_some()
            && !self.stderr.lock().unwrap_or_else(|p| p.into_inner()).ended
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        if !tail.lines.is_empty() {
            let lines: Vec<&str> = tail.lines.iter().map(String::as_str).collect();
            reason.push_str(&format!("; its last words: {}", lines.join(" | ")));
        }
        self.crashed = Some(reason.clone());
        Crash(reason)
    }

    /// Gives up on a child that is alive but not trusted any more (it sent garbage, or
    /// stopped reading): kills it and records the crash.
    pub(crate) fn give_up(&mut self, why: String) -> Crash {
        let _ = self.process.kill();
        self.crash(why)
    }

    /// Whether the child crashed (every call fails with the crash).
    pub(crate) fn has_crashed(&self) -> bool {
        self.crashed.is_some()
    }

    /// Waits for the child to exit (at most [`EXIT_GRACE`], then kills it and waits as long
    /// again).
    fn reap(&mut self) -> Option<ExitStatus> {
        for kill in [false, true] {
            if kill {
                let _ = self.process.kill();
            }
            let deadline = Instant::now() + EXIT_GRACE;
            loop {
                match self.process.try_wait() {
                    Ok(Some(status)) => return Some(status),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        None
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Closing the socket tells the child to end; `reap` kills it if it does not.
        let _ = self.calls.shutdown(std::net::Shutdown::Both);
        if self.crashed.is_none() {
            self.reap();
        }
    }
}

/// How a request ended, when not with `OK`.
pub(crate) enum Reply {
    /// The child answered with an error of the connector (or of its contract).
    Failed(CallError),
    /// The child crashed.
    Crashed(Crash),
}

/// How a child's process ended, in words.
fn describe(status: ExitStatus) -> String {
    if let Some(signal) = status.signal() {
        let name = match signal {
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGABRT => " (SIGABRT)",
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGBUS => " (SIGBUS)",
            libc::SIGILL => " (SIGILL)",
            libc::SIGFPE => " (SIGFPE)",
            libc::SIGTERM => " (SIGTERM)",
            _ => "",
        };
        format!("was killed by signal {signal}{name}")
    } else {
        format!("exited with status {}", status.code().unwrap_or(-1))
    }
}

fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(error) = std::thread::Builder::new().name(name.into()).spawn(f) {
        tracing::error!(%error, "cannot start a thread for a child process");
    }
}

/// Reads from a stream with a deadline for the whole of what is read (not each `read`):
/// a child that dribbles its answer a byte at a time is as late as one that sends none.
struct Deadline<'a> {
    stream: &'a UnixStream,
    deadline: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut stream = self.stream;
        stream.read(buf)
    }
}

/// The host's reader of one child's notices (log records, wakes, shutdown requests), which
/// come at any time. Garbage there ends the child: `calls` is shut down, so the call in
/// progress or the next one finds it, with the reason in `garbage`.
fn read_notices(
    mut notices: UnixStream,
    host: &HostContext,
    calls: &UnixStream,
    garbage: &Mutex<Option<String>>,
) {
    let why = loop {
        let (tag, payload) = match read_frame(&mut notices, MAX_NOTICE) {
            Ok(Some(frame)) => frame,
            // The child ended: its calls socket says so to the caller.
            Ok(None) => return,
            Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
                break format!("sent garbage as a notice: {error}");
            }
            Err(_) => return,
        };
        match tag {
            tag::LOG => {
                let mut input = In(&payload);
                let record = (|| {
                    let level = match input.u8()? {
                        level @ 1..=5 => LogLevel(u32::from(level)),
                        other => return Err(Garbage(format!("unknown log level {other}"))),
                    };
                    let target = input.str()?;
                    let message = input.str()?;
                    input.end()?;
                    Ok::<_, Garbage>((level, target, message))
                })();
                match record {
                    Ok((level, target, message)) => emit_log(Some(host), level, target, message),
                    Err(Garbage(why)) => break format!("sent a garbled log record: {why}"),
                }
            }
            tag::WAKE => {
                if let Some(waker) = &host.waker {
                    waker.wake_by_ref();
                }
            }
            tag::SHUTDOWN => {
                tracing::info!(connector = %host.connector_id, plugin = %host.plugin, "connector requested shutdown");
                host.shutdown_requested.store(true, Ordering::Release);
            }
            other => break format!("sent a notice with the unknown tag {other}"),
        }
    };
    *garbage.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    let _ = calls.shutdown(std::net::Shutdown::Both);
}

/// A request's answer, decoded.
pub(crate) fn decode_connect(payload: &[u8]) -> Result<bool, String> {
    let mut input = In(payload);
    let connected = input.u8().map_err(|g| g.0)? != 0;
    input.end().map_err(|g| g.0)?;
    Ok(connected)
}

/// The encoded `CONNECT` request.
pub(crate) fn encode_connect(attempt: u32) -> Vec<u8> {
    let mut out = Out::default();
    out.u32(attempt);
    out.0
}

/// The encoded `NOTIFY` request.
pub(crate) fn encode_notice(notice: Notice) -> Vec<u8> {
    vec![notice_code(notice)]
}

/// The encoded `PULL` request.
pub(crate) fn encode_pull(max_events: u32) -> Vec<u8> {
    let mut out = Out::default();
    out.u32(max_events);
    out.0
}

/// What a pull in the child produced, copied into `batch` with the pull ids from
/// `next_pull` on (the child's instance counts them alike).
pub(crate) struct Pulled {
    pub(crate) status: PullStatus,
    pub(crate) quiet_for: u64,
    pub(crate) wakes_itself: bool,
}

pub(crate) fn decode_pull(
    payload: &[u8],
    batch: &mut EventBatch,
    next_pull: &mut u64,
    host: &HostContext,
) -> Result<Result<Pulled, CallError>, String> {
    let mut input = In(payload);
    let decoded = (|| {
        let status = input.u8()?;
        // Where the child's count of pull ids was when the pull began: the host's.
        let first = input.u64()?;
        if first != *next_pull {
            return Err(Garbage(format!(
                "its pull ids are at {first}, the host's at {next_pull}"
            )));
        }
        let status = match status {
            0 => PullStatus::Ready,
            1 => PullStatus::Empty,
            2 => PullStatus::Finished,
            // The pull failed, after the child's instance counted `after - first` ids for
            // events it dropped: the host skips them too, as it does in process.
            3 => {
                let after = input.u64()?;
                if after < first {
                    return Err(Garbage(format!(
                        "its pull ids went back from {first} to {after}"
                    )));
                }
                let error = get_error(&mut input, &host.connector_id, &host.plugin, "pull")?;
                input.end()?;
                *next_pull = after;
                return Ok(Err(error));
            }
            other => return Err(Garbage(format!("unknown pull status {other}"))),
        };
        let quiet_for = input.u64()?;
        let wakes_itself = input.u8()? != 0;
        // stream (8) + two lengths (8)
        let events = input.count(16)?;
        for _ in 0..events {
            let stream = input.u64()?;
            let bytes = input.bytes()?;
            let meta = input.bytes()?;
            batch.push_copied(
                EventId {
                    stream,
                    pull: *next_pull,
                },
                bytes,
                meta,
            );
            *next_pull += 1;
        }
        let ended = input.count(8)?;
        for _ in 0..ended {
            batch.end_stream(input.u64()?);
        }
        input.end()?;
        Ok(Ok(Pulled {
            status,
            quiet_for,
            wakes_itself,
        }))
    })();
    decoded.map_err(|g| g.0)
}

/// The encoded `FEEDBACK` request.
pub(crate) fn encode_feedback(items: &[Feedback]) -> Vec<u8> {
    let mut out = Out::default();
    out.len(items.len());
    for item in items {
        out.u64(item.id.stream).u64(item.id.pull).u32(item.kind.0);
    }
    out.0
}

/// The encoded `SINK_BATCH` request.
pub(crate) fn encode_sink_batch(events: &[SinkEvent<'_>]) -> Vec<u8> {
    let size: usize = events
        .iter()
        .map(|e| 32 + e.bytes().len() + e.meta().len())
        .sum();
    let mut out = Out(Vec::with_capacity(4 + size));
    out.len(events.len());
    for event in events {
        let id = event.id();
        out.u64(id.stream)
            .u64(id.pull)
            .u64(event.ingest_ns())
            .bytes(event.bytes())
            .bytes(event.meta());
    }
    out.0
}

/// A sink batch's answer: the reply codes (into `codes`, at most `len`), the circuit
/// change and the errors.
pub(crate) fn decode_sink_batch(
    payload: &[u8],
    len: usize,
    codes: &mut Vec<ReplyCode>,
) -> Result<(Option<Circuit>, Vec<String>), String> {
    let mut input = In(payload);
    let decoded = (|| {
        let processed = input.count(4)?;
        if processed > len {
            return Err(Garbage(format!(
                "{processed} replies to a batch of {len} events"
            )));
        }
        codes.clear();
        for _ in 0..processed {
            codes.push(ReplyCode(input.u32()?));
        }
        let circuit = match input.u8()? {
            0 => None,
            1 => Some(Circuit::Closed),
            2 => Some(Circuit::Open),
            other => return Err(Garbage(format!("unknown circuit change {other}"))),
        };
        let n = input.count(4)?;
        let mut errors = Vec::with_capacity(n);
        for _ in 0..n {
            errors.push(input.str()?.to_owned());
        }
        input.end()?;
        Ok((circuit, errors))
    })();
    decoded.map_err(|g| g.0)
}

/// The plugin-host mode: serves the one connector instance the parent asks for over the
/// sockets at descriptors 3 (calls) and 4 (notices), until the parent closes them. `weir`
/// runs this when started with [`CHILD_ARG`]; it returns the process's exit status.
pub fn serve_child() -> i32 {
    if std::env::var_os(CHILD_ENV).is_none() {
        eprintln!(
            "weir {CHILD_ARG}: this mode is for weir itself, which starts it to run a connector out of process"
        );
        return 2;
    }
    for fd in [CALLS_FD, NOTICES_FD] {
        if let Err(why) = own_socket(fd) {
            eprintln!("weir {CHILD_ARG}: descriptor {fd}: {why}");
            return 2;
        }
    }
    // SAFETY: `own_socket` checked that each descriptor is open and a socket, which the
    // parent put there for this process (see `Child::spawn`, and `CHILD_ENV`, which only
    // it sets); nothing else in the process owns them, and each is taken once, here.
    let (calls, notices) = unsafe {
        (
            UnixStream::from_raw_fd(CALLS_FD),
            UnixStream::from_raw_fd(NOTICES_FD),
        )
    };
    // SAFETY: setting a signal's disposition to "ignore" has no handler to be unsound.
    // The child ends when its host closes the sockets or dies (`PR_SET_PDEATHSIG`), not
    // on the terminal's Ctrl-C or a service manager's SIGTERM to the whole group, which
    // are for the host: it drains through the child before ending it.
    unsafe {
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::signal(signal, libc::SIG_IGN);
        }
    }
    let mut answers = match calls.try_clone() {
        Ok(answers) => answers,
        Err(error) => {
            eprintln!("weir {CHILD_ARG}: {error}");
            return 2;
        }
    };
    let mut reader = BufReader::new(calls);
    let mut server = Server {
        writer: Arc::new(Mutex::new(notices)),
        instance: None,
        batch: EventBatch::new(),
    };
    loop {
        let (tag, payload) = match read_frame(&mut reader, MAX_FRAME) {
            Ok(Some(frame)) => frame,
            // The parent closed the socket: the instance is dropped on the way out.
            Ok(None) => return 0,
            Err(error) => {
                eprintln!("weir {CHILD_ARG}: {error}");
                return 2;
            }
        };
        let answer = server.handle(tag, &payload);
        let (mut tag, payload) = match answer {
            Ok(payload) => (tag::OK, payload),
            Err(Handled::Failed(error)) => {
                let mut out = Out::default();
                put_error(&mut out, &error);
                (tag::ERR, out.0)
            }
            Err(Handled::Garbage(why)) => {
                eprintln!("weir {CHILD_ARG}: the host sent garbage: {why}");
                return 2;
            }
        };
        // The connector asked for the run to end during the call: the answer says so, so
        // the host knows when the call returns.
        if server
            .instance
            .as_ref()
            .is_some_and(super::ConnectorInstance::shutdown_requested)
        {
            tag |= tag::SHUTDOWN_REQUESTED;
        }
        if write_frame(&mut answers, tag, &payload).is_err() {
            return 0;
        }
    }
}

/// Checks that `fd` is an open socket, and makes it close-on-exec (so that nothing the
/// plugin starts holds this child's sockets open, or writes to its host).
fn own_socket(fd: RawFd) -> Result<(), String> {
    // SAFETY: `fcntl` and `fstat` on a descriptor number only read the process's table
    // (an unused number is EBADF); `stat` is a plain struct the kernel fills.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags == -1 {
            return Err(format!("not open: {}", std::io::Error::last_os_error()));
        }
        let mut stat: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut stat) == -1 || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
            return Err("not a socket".to_owned());
        }
        if libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) == -1 {
            return Err(format!(
                "cannot make it close-on-exec: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// How a request failed in the child.
enum Handled {
    Failed(CallError),
    Garbage(String),
}

impl From<Garbage> for Handled {
    fn from(garbage: Garbage) -> Self {
        Handled::Garbage(garbage.0)
    }
}

impl From<CallError> for Handled {
    fn from(error: CallError) -> Self {
        Handled::Failed(error)
    }
}

/// The child's state: its instance, and the notices socket, shared with the
/// instance's log sink and waker.
struct Server {
    writer: Arc<Mutex<UnixStream>>,
    instance: Option<super::ConnectorInstance>,
    batch: EventBatch,
}

impl Server {
    fn instance(&mut self) -> Result<&mut super::ConnectorInstance, Handled> {
        self.instance
            .as_mut()
            .ok_or_else(|| Handled::Garbage("a call before `create`".into()))
    }

    fn handle(&mut self, request: u8, payload: &[u8]) -> Result<Vec<u8>, Handled> {
        let mut input = In(payload);
        let mut out = Out::default();
        match request {
            tag::CREATE => {
                let path = PathBuf::from(input.str()?);
                let id = input.str()?.to_owned();
                let config = input.str()?;
                let sides = input.u8()?;
                let wakes = input.u8()? != 0;
                let version = input.str()?;
                let log_level = match input.u8()? {
                    level @ 0..=5 => LogLevel(u32::from(level)),
                    other => return Err(Garbage(format!("unknown log level {other}")).into()),
                };
                input.end()?;
                if version != env!("CARGO_PKG_VERSION") {
                    return Err(CallError::Permanent {
                        connector: id,
                        plugin: path.display().to_string(),
                        method: "new",
                        message: format!(
                            "the weir that runs the connector out of process is version {}, its host {version}: was the weir binary replaced while it ran?",
                            env!("CARGO_PKG_VERSION")
                        ),
                    }
                    .into());
                }
                let config: serde_json::Value = serde_json::from_str(config)
                    .map_err(|e| Handled::Garbage(format!("the config is not JSON: {e}")))?;
                let plugin = Plugin::load(&path).map_err(|error| CallError::Permanent {
                    connector: id.clone(),
                    plugin: path.display().to_string(),
                    method: "new",
                    message: format!("the child cannot load the plugin: {error}"),
                })?;
                let writer = Arc::clone(&self.writer);
                let mut options = InstanceOptions::new()
                    .bound_as(Sides {
                        source: sides & 1 != 0,
                        sink: sides & 2 != 0,
                    })
                    .log_to(Arc::new(move |record: super::PluginLog<'_>| {
                        let mut out = Out::default();
                        let level = match record.level {
                            weir_sdk::Level::Error => LogLevel::ERROR,
                            weir_sdk::Level::Warn => LogLevel::WARN,
                            weir_sdk::Level::Info => LogLevel::INFO,
                            weir_sdk::Level::Debug => LogLevel::DEBUG,
                            weir_sdk::Level::Trace => LogLevel::TRACE,
                        };
                        out.u8(u8::try_from(level.0).unwrap_or(u8::MAX))
                            .str(record.target)
                            .str(record.message);
                        let _ = send(&writer, tag::LOG, &out.0);
                    }));
                options.log_level = Some(log_level);
                if wakes {
                    options = options.waker(std::task::Waker::from(Arc::new(ChildWaker(
                        Arc::clone(&self.writer),
                    ))));
                }
                let instance = plugin.instantiate_with(&id, &config, options)?;
                self.instance = Some(instance);
            }
            tag::CONNECT => {
                let attempt = input.u32()?;
                input.end()?;
                let connected = self.instance()?.connect(attempt)?;
                out.u8(u8::from(connected));
            }
            tag::NOTIFY => {
                let notice = notice_of(input.u8()?)?;
                input.end()?;
                self.instance()?.notify(notice)?;
            }
            tag::PULL => {
                let max = input.u32()?;
                input.end()?;
                let mut batch = std::mem::take(&mut self.batch);
                batch.clear();
                let instance = self.instance()?;
                let first = instance.next_pull();
                let pulled = instance.pull(&mut batch, max);
                let (quiet_for, wakes) = (instance.quiet_for(), instance.wakes_itself());
                let status = match pulled {
                    Ok(status) => status,
                    Err(error) => {
                        // The error rides in the answer, with where the ids are now.
                        out.u8(3).u64(first).u64(instance.next_pull());
                        put_error(&mut out, &error);
                        self.batch = batch;
                        return Ok(out.0);
                    }
                };
                out.u8(match status {
                    PullStatus::Ready => 0,
                    PullStatus::Empty => 1,
                    PullStatus::Finished => 2,
                })
                .u64(first)
                .u64(quiet_for.map_or(u64::MAX, |q| {
                    u64::try_from(q.as_nanos()).unwrap_or(u64::MAX - 1)
                }))
                .u8(u8::from(wakes))
                .len(batch.len());
                for event in batch.iter() {
                    out.u64(event.id.stream)
                        .bytes(event.bytes)
                        .bytes(event.meta);
                }
                out.len(batch.ended_streams().len());
                for stream in batch.ended_streams() {
                    out.u64(*stream);
                }
                self.batch = batch;
            }
            tag::FEEDBACK => {
                let n = input.count(20)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    let id = input.event_id()?;
                    items.push(Feedback {
                        id,
                        kind: FeedbackKind(input.u32()?),
                    });
                }
                input.end()?;
                self.instance()?.feedback(&items)?;
            }
            tag::SINK_BATCH => {
                let n = input.count(32)?;
                let mut events = Vec::with_capacity(n);
                for _ in 0..n {
                    let id = input.event_id()?;
                    let ingest_ns = input.u64()?;
                    let bytes = input.bytes()?;
                    let meta = input.bytes()?;
                    events.push(SinkEvent::new(bytes, id, ingest_ns, meta));
                }
                input.end()?;
                let outcome = self.instance()?.sink_batch(&events)?;
                out.len(outcome.processed());
                for index in 0..outcome.processed() {
                    out.u32(match outcome.reply(index) {
                        weir_sdk::SinkReply::Auto => ReplyCode::AUTO.0,
                        weir_sdk::SinkReply::Ack => ReplyCode::ACK.0,
                        weir_sdk::SinkReply::Fail => ReplyCode::FAIL.0,
                    });
                }
                out.u8(match outcome.circuit {
                    None => 0,
                    Some(Circuit::Closed) => 1,
                    Some(Circuit::Open) => 2,
                });
                out.len(outcome.errors.len());
                for error in &outcome.errors {
                    out.str(error);
                }
            }
            tag::CLOSE => {
                input.end()?;
                self.instance()?.close()?;
            }
            other => return Err(Handled::Garbage(format!("unknown request {other}"))),
        }
        Ok(out.0)
    }
}

fn send(writer: &Mutex<UnixStream>, tag: u8, payload: &[u8]) -> std::io::Result<()> {
    let mut socket = writer.lock().unwrap_or_else(|p| p.into_inner());
    write_frame(&mut *socket, tag, payload)
}

/// What a connector's wakers wake in a child: a `WAKE` notice to the host.
struct ChildWaker(Arc<Mutex<UnixStream>>);

impl std::task::Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let _ = send(&self.0, tag::WAKE, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_lies_about_lengths_are_garbage() {
        let mut out = Out::default();
        out.u8(7).u32(1).u64(2).str("three").bytes(b"four");
        let mut wire = Vec::new();
        write_frame(&mut wire, tag::PULL, &out.0).unwrap();
        let (tag, payload) = read_frame(&mut wire.as_slice(), MAX_FRAME)
            .unwrap()
            .unwrap();
        assert_eq!(tag, tag::PULL);
        let mut input = In(&payload);
        assert_eq!(input.u8().unwrap(), 7);
        assert_eq!(input.u32().unwrap(), 1);
        assert_eq!(input.u64().unwrap(), 2);
        assert_eq!(input.str().unwrap(), "three");
        assert_eq!(input.bytes().unwrap(), b"four");
        input.end().unwrap();

        // A length past the end, a count the frame cannot hold, trailing bytes.
        let mut lie = Out::default();
        lie.u32(1000).u8(1);
        assert!(In(&lie.0).bytes().is_err());
        assert!(In(&lie.0).count(16).is_err());
        assert!(In(&[1, 2]).end().is_err());
        // A frame longer than the limit is refused before anything is allocated for it.
        let huge = (u32::MAX).to_le_bytes();
        assert!(read_frame(&mut huge.as_slice(), MAX_FRAME).is_err());
        // A clean end between frames is the end, not an error.
        assert!(read_frame(&mut [].as_slice(), MAX_FRAME).unwrap().is_none());
    }

    #[test]
    fn a_pull_answer_that_lies_is_refused() {
        let host = HostContext::detached("numbers");
        let mut batch = EventBatch::new();
        let mut next = 0;
        let mut out = Out::default();
        out.u8(0)
            .u64(0)
            .u64(u64::MAX)
            .u8(0)
            .u32(3)
            .u64(0)
            .str("one");
        let error = decode_pull(&out.0, &mut batch, &mut next, &host)
            .err()
            .unwrap();
        assert!(error.contains("claims 3 items"), "{error}");
        let mut out = Out::default();
        out.u8(9).u64(0).u64(u64::MAX).u8(0).u32(0).u32(0);
        let error = decode_pull(&out.0, &mut batch, &mut next, &host)
            .err()
            .unwrap();
        assert!(error.contains("unknown pull status 9"), "{error}");
        // The child's pull ids must be where the host's are.
        let mut out = Out::default();
        out.u8(0).u64(7).u64(u64::MAX).u8(0).u32(0).u32(0);
        let error = decode_pull(&out.0, &mut batch, &mut next, &host)
            .err()
            .unwrap();
        assert!(error.contains("at 7, the host's at 0"), "{error}");
        // A failed pull that used ids: the host skips them too.
        let mut out = Out::default();
        out.u8(3).u64(0).u64(4);
        put_error(
            &mut out,
            &CallError::Failed {
                connector: String::new(),
                plugin: String::new(),
                method: "pull",
                message: "no route to host".into(),
            },
        );
        let pulled = decode_pull(&out.0, &mut batch, &mut next, &host).unwrap();
        let error = pulled.err().unwrap().to_string();
        assert!(
            error.contains("`numbers`") && error.contains("no route to host"),
            "{error}"
        );
        assert_eq!(next, 4);
    }

    #[test]
    fn a_sink_answer_with_more_replies_than_events_is_refused() {
        let mut codes = Vec::new();
        let mut out = Out::default();
        out.u32(2).u32(1).u32(1).u8(0).u32(0);
        let error = decode_sink_batch(&out.0, 1, &mut codes).err().unwrap();
        assert!(error.contains("2 replies to a batch of 1"), "{error}");
        assert!(decode_sink_batch(&out.0, 2, &mut codes).is_ok());
        assert_eq!(codes, [ReplyCode::ACK, ReplyCode::ACK]);
    }
}
