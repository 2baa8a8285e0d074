use weir_sdk::{connector_plugin, Connector, ConnectorContext, Event, Result, SinkContext, SinkReply};

struct Settings {
    _path: String,
}

struct Sink;

#[connector_plugin]
impl Connector for Sink {
    type Config = Settings;

    fn new(_config: Settings, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Sink)
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, _event: Event<'_>) -> Result<SinkReply> {
        Ok(SinkReply::Ack)
    }
}

fn main() {}
