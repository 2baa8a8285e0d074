//! The built-ins' side of [`builtin`](crate::builtin): a connector's state called through
//! its Rust trait, with the panic trap and the request semantics of [`dispatch`] that the C
//! trampolines share.

use super::catch_for;
use super::dispatch::{self, Delivered};
use crate::abi::{Capabilities, EventWriter, Feedback, Notice, RawEventView, ReplyCode};
use crate::builtin::{ConnectorPlugin, Fault, NativeConnector, SinkOutcome};
use crate::connector::{ConnectorContext, PullStatus, SourceBatch};

/// Creates a built-in instance of `T`: parses the config, runs `T::new` under the trap.
pub(crate) fn create<T: ConnectorPlugin>(
    config: &[u8],
    ctx: ConnectorContext,
) -> Result<Box<dyn NativeConnector>, Fault> {
    let span = tracing::error_span!("builtin", connector = ctx.id(), plugin = T::NAME);
    let entered = span.enter();
    let created = catch_for(None, || {
        let config = <T::Config as crate::ConnectorConfig>::__from_host(config).map_err(
            |(_, message, field_path)| Fault::Config {
                message,
                field_path,
            },
        )?;
        T::new(config, &ctx).map_err(|e| Fault::failed(&e))
    });
    let state = match created {
        Ok(Ok(state)) => state,
        Ok(Err(fault)) => return Err(fault),
        Err((message, location)) => return Err(Fault::Panicked { message, location }),
    };
    drop(entered);
    Ok(Box::new(Native::<T> {
        state: Some(state),
        ctx,
        poisoned: false,
        span,
    }))
}

/// A built-in instance: the connector's state and its context.
struct Native<T> {
    state: Option<T>,
    ctx: ConnectorContext,
    poisoned: bool,
    /// Entered around every call: the connector's own `tracing` events go straight to the
    /// host's subscriber (one `tracing` in one binary), and this span tags them with the
    /// connector and plugin, as the log bridge tags a plugin's.
    span: tracing::Span,
}

impl<T: ConnectorPlugin> Native<T> {
    /// Runs `f` on the state under the panic trap; a panic poisons the instance.
    #[inline]
    fn call<R>(
        &mut self,
        f: impl FnOnce(&mut T, &ConnectorContext) -> crate::Result<R>,
    ) -> Result<R, Fault> {
        if self.poisoned {
            return Err(Fault::Poisoned);
        }
        let Some(state) = self.state.as_mut() else {
            return Err(Fault::Closed);
        };
        let ctx = &self.ctx;
        let _entered = self.span.enter();
        match catch_for(None, || f(state, ctx)) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Fault::failed(&error)),
            Err((message, location)) => {
                self.poisoned = true;
                Err(Fault::Panicked { message, location })
            }
        }
    }

    fn require(side: Capabilities) -> Result<(), Fault> {
        if T::CAPABILITIES.contains(side) {
            Ok(())
        } else {
            Err(Fault::Unsupported)
        }
    }
}

impl<T: ConnectorPlugin> crate::builtin::sealed::Sealed for Native<T> {}

impl<T: ConnectorPlugin> NativeConnector for Native<T> {
    fn connect(&mut self, attempt: u32) -> Result<bool, Fault> {
        self.call(|state, ctx| state.connect(ctx, attempt))
    }

    fn notify(&mut self, notice: Notice) -> Result<(), Fault> {
        self.call(|state, ctx| dispatch::notify(state, ctx, notice))
    }

    unsafe fn pull(&mut self, writer: &EventWriter, max_events: u32) -> Result<PullStatus, Fault> {
        Self::require(Capabilities::SOURCE)?;
        self.call(|state, ctx| {
            // The caller keeps `writer` valid for the call (this function's contract).
            dispatch::pull(
                state,
                ctx,
                &mut SourceBatch::new(writer, max_events as usize),
            )
        })
    }

    fn feedback(&mut self, items: &[Feedback]) -> Result<(), Fault> {
        Self::require(Capabilities::SOURCE)?;
        self.call(|state, ctx| dispatch::feedback(state, ctx, items))
    }

    unsafe fn sink_batch(
        &mut self,
        events: &[RawEventView],
        replies: &mut [ReplyCode],
        outcome: &mut SinkOutcome,
    ) -> Result<(), Fault> {
        Self::require(Capabilities::SINK)?;
        let replies = &mut replies[..events.len()];
        let mut delivered = Delivered::default();
        let errors = &mut outcome.errors;
        let result = self.call(|state, ctx| {
            // SAFETY: the caller keeps the event bytes alive for the whole call (this
            // function's contract).
            unsafe {
                dispatch::sink_batch(state, ctx, events, replies, &mut delivered, |message| {
                    errors.push(message.to_owned())
                })
            }
        });
        outcome.processed = delivered.processed;
        outcome.circuit = delivered.circuit;
        result
    }

    fn close(&mut self) -> Result<(), Fault> {
        let Some(state) = self.state.take() else {
            return Ok(());
        };
        catch_for(None, move || drop(state)).map_err(|(message, location)| {
            self.poisoned = true;
            Fault::Panicked { message, location }
        })
    }
}

impl<T> Drop for Native<T> {
    fn drop(&mut self) {
        // The host calls `close` first and gets any panic reported; this is the fallback.
        if let Some(state) = self.state.take() {
            let _ = catch_for(None, move || drop(state));
        }
    }
}
