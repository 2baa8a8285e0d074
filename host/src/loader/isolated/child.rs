//! The child's side: `weir`'s plugin-host mode, which serves one connector instance to
//! the host that started it.

use std::io::BufReader;
use std::os::fd::{FromRawFd as _, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use weir_sdk::abi::{Feedback, FeedbackKind, LogLevel, ReplyCode};
use weir_sdk::{Circuit, PullStatus};

use super::wire::{Garbage, In, Out, notice_of, put_error, read_frame, tag, write_frame};
use super::{CALLS_FD, CHILD_ARG, CHILD_ENV, MAX_FRAME, NOTICES_FD};
use crate::error::CallError;
use crate::loader::{EventBatch, InstanceOptions, Plugin, Sides, SinkEvent};

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
            .is_some_and(crate::loader::ConnectorInstance::shutdown_requested)
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
    instance: Option<crate::loader::ConnectorInstance>,
    batch: EventBatch,
}

impl Server {
    fn instance(&mut self) -> Result<&mut crate::loader::ConnectorInstance, Handled> {
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
                    .log_to(Arc::new(move |record: crate::loader::PluginLog<'_>| {
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
