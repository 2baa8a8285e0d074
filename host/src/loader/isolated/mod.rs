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
use std::io::{BufRead as _, BufReader, Read};
use std::os::fd::{AsRawFd as _, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_sdk::abi::{EventId, Feedback, LogLevel, ReplyCode};
use weir_sdk::{Circuit, PullStatus};

mod child;
mod wire;

pub use child::serve_child;
pub(crate) use wire::tag;
use wire::{Garbage, In, Out, get_error, notice_code, read_frame, write_frame};

use super::instance::{HostContext, emit_log, host_max_level};
use super::{EventBatch, Notice, Sides, SinkEvent};
use crate::error::CallError;

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

/// How an isolated instance is run (see [`InstanceOptions::isolate`](crate::InstanceOptions::isolate)).
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
        // A child that stops reading (stopped, or stuck with a full socket) is as hung as one
        // that does not answer: every write has the call deadline.
        calls
            .set_write_timeout(Some(isolation.call_timeout))
            .map_err(|e| crashed(format!("socket: {e}")))?;
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
        // The socket's write timeout is the call deadline (set at the start).
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

#[cfg(test)]
mod tests {
    use super::wire::put_error;
    use super::*;

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
