//! What a connector's methods mean for each host request, written once for both ways a
//! host calls a connector: through the C ABI (the trampolines in `__private`) and through
//! the Rust trait ([`native`](super::native), for [`builtin`](crate::builtin)).

use crate::abi::{Feedback, FeedbackKind, Notice, RawEventView, ReplyCode};
use crate::connector::{
    Circuit, Connector, ConnectorContext, Event, PullStatus, SinkContext, SinkReply, SourceBatch,
};

/// A lifecycle or circuit-breaker notice, as the connector method it calls.
pub(crate) fn notify<T: Connector>(
    state: &mut T,
    ctx: &ConnectorContext,
    notice: Notice,
) -> crate::Result<()> {
    match notice {
        Notice::START => state.on_start(ctx),
        Notice::PAUSE => state.on_pause(ctx),
        Notice::RESUME => state.on_resume(ctx),
        Notice::DRAIN => state.on_drain(ctx),
        Notice::STOP => state.on_stop(ctx),
        Notice::CIRCUIT_CLOSED => state.on_circuit(ctx, Circuit::Closed),
        Notice::CIRCUIT_OPENED => state.on_circuit(ctx, Circuit::Open),
        Notice(other) => Err(crate::Error::new(format!("unknown notice {other}"))),
    }
}

/// One pull into `batch`.
pub(crate) fn pull<T: Connector>(
    state: &mut T,
    ctx: &ConnectorContext,
    batch: &mut SourceBatch<'_>,
) -> crate::Result<PullStatus> {
    state.pull(ctx, batch)
}

/// Acks and fails, in order; the first error ends the call.
pub(crate) fn feedback<T: Connector>(
    state: &mut T,
    ctx: &ConnectorContext,
    items: &[Feedback],
) -> crate::Result<()> {
    for item in items {
        match item.kind {
            FeedbackKind::ACK => state.on_ack(ctx, item.id)?,
            FeedbackKind::FAIL => state.on_fail(ctx, item.id)?,
            FeedbackKind(other) => {
                return Err(crate::Error::new(format!("unknown feedback kind {other}")));
            }
        }
    }
    Ok(())
}

/// What a sink batch changed besides the replies.
#[derive(Debug, Default)]
pub(crate) struct Delivered {
    /// How many events went through `on_event` (the rest were not offered).
    pub(crate) processed: usize,
    /// The circuit-breaker change the sink asked for, if any.
    pub(crate) circuit: Option<Circuit>,
}

/// Delivers a batch (or, when it is empty, a tick) and writes one reply per event.
/// A transient error of one event fails that event and is handed to `report`; a permanent
/// one ends the call (the host fails the batch and stops the sink). A transient error of
/// `on_batch_end` fails every event, since none is delivered as promised.
///
/// # Safety
/// The slices of every view in `events` must be valid for reads for the whole call.
pub(crate) unsafe fn sink_batch<T: Connector>(
    state: &mut T,
    ctx: &ConnectorContext,
    events: &[RawEventView],
    replies: &mut [ReplyCode],
    delivered: &mut Delivered,
    mut report: impl FnMut(&str),
) -> crate::Result<()> {
    let circuit = &mut delivered.circuit;
    if events.is_empty() {
        return state.on_tick(&mut SinkContext::new(ctx, circuit));
    }
    for (view, reply) in events.iter().zip(replies.iter_mut()) {
        // SAFETY: the caller keeps the event bytes alive for the duration of the call.
        let (bytes, meta) = unsafe { (view.bytes.as_bytes(), view.meta.as_bytes()) };
        let event = Event {
            bytes,
            id: view.id,
            ingest_ns: view.ingest_ns,
            meta,
        };
        let mut sink_ctx = SinkContext::new(ctx, circuit);
        *reply = match state.on_event(&mut sink_ctx, event) {
            Ok(SinkReply::Auto) => ReplyCode::AUTO,
            Ok(SinkReply::Ack) => ReplyCode::ACK,
            Ok(SinkReply::Fail) => ReplyCode::FAIL,
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => {
                report(e.message());
                ReplyCode::FAIL
            }
        };
        delivered.processed += 1;
    }
    match state.on_batch_end(&mut SinkContext::new(ctx, circuit)) {
        Ok(()) => Ok(()),
        Err(e) if e.is_permanent() => Err(e),
        Err(e) => {
            report(e.message());
            replies.fill(ReplyCode::FAIL);
            Ok(())
        }
    }
}
