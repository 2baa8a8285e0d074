//! [`Waker`]: how a source tells the host it has events, so that it is not polled.

use core::ffi::c_void;

use crate::abi::HostApi;

/// The host's functions behind a waker handle (they live as long as the host process).
#[derive(Clone, Copy)]
struct Fns {
    clone: unsafe extern "C" fn(*const c_void) -> *const c_void,
    wake: unsafe extern "C" fn(*const c_void),
    drop: unsafe extern "C" fn(*const c_void),
}

/// Wakes a source: asks the host to pull it soon. Get one from
/// [`ConnectorContext::waker`](crate::ConnectorContext::waker); it may be cloned, moved to
/// another thread (an I/O thread waiting for input, a timer) and used at any time, even after
/// the connector is gone (then waking does nothing). Waking is cheap and coalesced: many
/// wakes before the next pull make one pull.
///
/// A source that took a waker is pulled when woken (and, as a safety net, at long
/// intervals) instead of being polled while it has nothing: it must wake the host whenever
/// an event may have become ready after a pull that returned
/// [`PullStatus::Empty`](crate::PullStatus::Empty).
pub struct Waker {
    /// An owned handle and its functions; `None` for a waker that does nothing (a context
    /// attached to no host).
    raw: Option<(*const c_void, Fns)>,
}

// SAFETY: the host's waker functions may be called from any thread on a live handle
// (`HostApi::waker_clone` and the fields after it), and the handle is owned by this value.
unsafe impl Send for Waker {}
// SAFETY: see `Send`: `wake` and `clone`, the calls made through a shared reference, may
// be made on one handle from several threads at once (the host's waker is itself `Sync`:
// `HostApi::waker_wake` and `waker_clone` are callable from any thread, any time).
unsafe impl Sync for Waker {}

impl Waker {
    /// A waker that does nothing.
    pub const fn noop() -> Self {
        Self { raw: None }
    }

    /// A new waker for the instance whose services are `host` (a no-op one when the host
    /// offers none).
    #[cfg(feature = "__abi-1-0-for-tests")]
    pub(crate) fn new(_host: &HostApi) -> Self {
        Self::noop()
    }

    /// A new waker for the instance whose services are `host` (a no-op one when the host
    /// offers none).
    #[cfg(not(feature = "__abi-1-0-for-tests"))]
    pub(crate) fn new(host: &HostApi) -> Self {
        let (Some(new), Some(clone), Some(wake), Some(drop)) = (
            host.waker_new,
            host.waker_clone,
            host.waker_wake,
            host.waker_drop,
        ) else {
            return Self::noop();
        };
        // SAFETY: called during a call of the instance (a `ConnectorContext` is only lent
        // for those), when `ctx` is valid (see `HostApi::ctx`).
        let handle = unsafe { new(host.ctx) };
        if handle.is_null() {
            return Self::noop();
        }
        Self {
            raw: Some((handle, Fns { clone, wake, drop })),
        }
    }

    /// Asks the host to pull the source soon.
    pub fn wake(&self) {
        if let Some((handle, fns)) = self.raw {
            // SAFETY: `handle` is live (owned by `self`) and `wake` may be called on it
            // from any thread.
            unsafe { (fns.wake)(handle) };
        }
    }

    /// Whether waking reaches a host (`false` for [`Waker::noop`]).
    pub fn is_connected(&self) -> bool {
        self.raw.is_some()
    }
}

impl Clone for Waker {
    fn clone(&self) -> Self {
        let Some((handle, fns)) = self.raw else {
            return Self::noop();
        };
        // SAFETY: `handle` is live; `clone` returns a new owned handle (or null).
        let copy = unsafe { (fns.clone)(handle) };
        if copy.is_null() {
            return Self::noop();
        }
        Self {
            raw: Some((copy, fns)),
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        if let Some((handle, fns)) = self.raw.take() {
            // SAFETY: `handle` is owned by `self` and released exactly once, here.
            unsafe { (fns.drop)(handle) };
        }
    }
}

impl core::fmt::Debug for Waker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Waker")
            .field("connected", &self.is_connected())
            .finish()
    }
}
