//! Forwards a plugin's `tracing` events to the host's log.
//!
//! Every cdylib has its own copy of the `tracing` globals, so without this bridge a
//! plugin's `tracing::info!` would go nowhere. The sdk installs (once per plugin, when the
//! first instance is created) a global subscriber in the plugin's copy that formats each
//! event and hands it to the host through [`HostApi::log`]: tagged with the connector of the
//! call running on the thread, or untagged for the plugin's own threads. Spans are not
//! forwarded.

use std::fmt::Write as _;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber, span};

use crate::__private::current_host;
use crate::abi::{AbiSlice, HostApi, LogLevel, LogRecord};

/// What records outside any call use: the host's log function (valid for the host
/// process's life) with no instance context, and the host's maximum level.
static FALLBACK: OnceLock<HostApi> = OnceLock::new();

/// Installs the forwarding subscriber, once per plugin. Does nothing if the plugin set its
/// own global subscriber first, or if the host offers no log function.
pub(crate) fn install(host: &HostApi) {
    if host.struct_size < size_of::<HostApi>() || host.log.is_none() {
        return;
    }
    let mut installed = false;
    FALLBACK.get_or_init(|| {
        installed = true;
        HostApi {
            ctx: core::ptr::null(),
            ..*host
        }
    });
    if installed {
        let _ = tracing::subscriber::set_global_default(HostSubscriber {
            max_level: host.max_level,
        });
    }
}

fn level_number(level: &Level) -> u32 {
    match *level {
        Level::ERROR => LogLevel::ERROR.0,
        Level::WARN => LogLevel::WARN.0,
        Level::INFO => LogLevel::INFO.0,
        Level::DEBUG => LogLevel::DEBUG.0,
        Level::TRACE => LogLevel::TRACE.0,
    }
}

struct HostSubscriber {
    max_level: LogLevel,
}

impl HostSubscriber {
    fn wants(&self, metadata: &Metadata<'_>) -> bool {
        level_number(metadata.level()) <= self.max_level.0
    }
}

impl Subscriber for HostSubscriber {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.wants(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.wants(metadata)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match self.max_level {
            LogLevel::ERROR => LevelFilter::ERROR,
            LogLevel::WARN => LevelFilter::WARN,
            LogLevel::INFO => LevelFilter::INFO,
            LogLevel::DEBUG => LevelFilter::DEBUG,
            LogLevel::TRACE => LevelFilter::TRACE,
            _ => LevelFilter::OFF,
        })
    }

    fn new_span(&self, _span: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _span: &span::Id, _values: &span::Record<'_>) {}

    fn record_follows_from(&self, _span: &span::Id, _follows: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let Some(host) = current_host().or_else(|| FALLBACK.get().copied()) else {
            return;
        };
        let Some(log) = host.log else { return };
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let message = visitor.text + &visitor.fields;
        let metadata = event.metadata();
        let record = LogRecord {
            level: LogLevel(level_number(metadata.level())),
            target: AbiSlice::from_str(metadata.target()),
            message: AbiSlice::from_str(&message),
        };
        // SAFETY: `host.log` is valid for the host process's life; `host.ctx` is either null
        // (allowed by the ABI for records outside calls) or the context of the instance
        // whose call is running on this thread, valid for that call. `record` borrows
        // strings that outlive the call.
        unsafe { log(host.ctx, &record) };
    }

    fn enter(&self, _span: &span::Id) {}

    fn exit(&self, _span: &span::Id) {}
}

/// Formats an event as `message key=value ...`.
#[derive(Default)]
struct MessageVisitor {
    text: String,
    fields: String,
}

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}
