use weir_sdk::{connector_plugin, Connector, ConnectorContext, Event, NoConfig, Result, SinkContext, SinkReply};

struct Sink;

#[connector_plugin]
unsafe impl Connector for Sink {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Sink)
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, _event: Event<'_>) -> Result<SinkReply> {
        Ok(SinkReply::Ack)
    }
}

fn main() {}
