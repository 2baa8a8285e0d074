use weir_sdk::{connector_plugin, Connector, ConnectorContext, Event, NoConfig, Result, SinkContext, SinkReply};

struct Sink<T>(T);

#[connector_plugin]
impl<T: Send + 'static> Connector for Sink<T> {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        unimplemented!()
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, _event: Event<'_>) -> Result<SinkReply> {
        Ok(SinkReply::Ack)
    }
}

fn main() {}
