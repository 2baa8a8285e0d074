//! Waking the host when a socket has something to read, so that an idle server or client
//! is not polled: a thread waits on the connector's sockets (epoll, through `mio`) and wakes
//! the host's [`Waker`] when one of them becomes readable.
//!
//! Readiness is edge-triggered: a socket is reported when new input arrives. That is enough
//! because the host pulls again at once after a pull that read anything, so a pull that
//! returns `Empty` has read every socket until it would block.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use weir_sdk::{Waker, tracing};

/// The token of the poller's own wake-up (to stop it).
const STOP: Token = Token(usize::MAX);

/// A thread that wakes the host when a watched socket becomes readable; stopped and
/// joined when dropped.
pub(crate) struct Readiness {
    registry: Registry,
    waker: Waker,
    stop: Arc<AtomicBool>,
    interrupt: mio::Waker,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness").finish_non_exhaustive()
    }
}

impl Readiness {
    /// Starts the thread, which wakes `waker`.
    pub(crate) fn start(waker: Waker) -> io::Result<Self> {
        let mut poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let interrupt = mio::Waker::new(poll.registry(), STOP)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, waker) = (stop.clone(), waker.clone());
            std::thread::Builder::new()
                .name("tcp-readiness".into())
                .stack_size(256 << 10)
                .spawn(move || {
                    let mut events = Events::with_capacity(64);
                    while !stop.load(Ordering::Acquire) {
                        if let Err(error) = poll.poll(&mut events, None) {
                            if error.kind() == io::ErrorKind::Interrupted {
                                continue;
                            }
                            // Wake anyway, and do not spin on a broken poller.
                            tracing::warn!(%error, "waiting for sockets failed");
                            waker.wake();
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                        if events.iter().any(|event| event.token() != STOP) {
                            waker.wake();
                        }
                    }
                })?
        };
        Ok(Self {
            registry,
            waker,
            stop,
            interrupt,
            thread: Some(thread),
        })
    }

    /// Wakes the host when `socket` has something to read (or is closed by its peer).
    /// A socket is forgotten when it is closed.
    pub(crate) fn watch(&self, socket: &impl AsRawFd, token: usize) -> io::Result<()> {
        let fd = socket.as_raw_fd();
        self.registry
            .register(&mut SourceFd(&fd), Token(token), Interest::READABLE)
    }

    /// Wakes the host now (something changed outside a pull: a connection was closed).
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }
}

impl Drop for Readiness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        match self.interrupt.wake() {
            Ok(()) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot stop the readiness thread: it is left waiting");
            }
        }
    }
}
