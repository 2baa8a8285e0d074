// A connector that misbehaves on demand, compiled into `tests/builtins.rs` as a built-in
// and into the `faulty` fixture plugin (tests/fixtures/faulty), which includes this file, so
// that the two can be compared call by call.

use weir_sdk::{
    Connector, ConnectorContext, Error, Event, Result, SinkContext, SinkReply, connector_plugin,
};

/// What `Faulty` does wrong, and on which event.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultyConfig {
    #[serde(default)]
    panic_on: Option<String>,
    #[serde(default)]
    stop_on: Option<String>,
    #[serde(default)]
    fail_on: Option<String>,
    #[serde(default)]
    panic_in_new: bool,
}

/// A sink that panics on the event `panic_on`, fails for good on `stop_on`, fails
/// (transiently) every event `fail_on`, and panics in `new` if asked to.
pub struct Faulty {
    config: FaultyConfig,
}

#[connector_plugin(name = "faulty", version = "0.3.0")]
impl Connector for Faulty {
    type Config = FaultyConfig;

    fn new(config: FaultyConfig, _ctx: &ConnectorContext) -> Result<Self> {
        assert!(!config.panic_in_new, "asked to panic in new");
        Ok(Self { config })
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        let is = |what: &Option<String>| what.as_deref().map(str::as_bytes) == Some(event.bytes);
        if is(&self.config.panic_on) {
            panic!(
                "faulty: asked to panic on {:?}",
                String::from_utf8_lossy(event.bytes)
            );
        }
        if is(&self.config.stop_on) {
            return Err(Error::permanent("faulty: asked to stop"));
        }
        if is(&self.config.fail_on) {
            return Err(Error::new("faulty: asked to fail this one"));
        }
        Ok(SinkReply::Ack)
    }
}

