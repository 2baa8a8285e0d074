use weir_sdk::{connector_plugin, Connector, ConnectorContext, Event, NoConfig, Result, SinkContext, SinkReply};

struct Sink(std::rc::Rc<u32>);

#[connector_plugin]
impl Connector for Sink {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Sink(std::rc::Rc::new(0)))
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, _event: Event<'_>) -> Result<SinkReply> {
        Ok(SinkReply::Ack)
    }
}

fn main() {}
