// The macro leaves out an impl that can never satisfy `Connector: 'static`.
#![allow(unused_imports)]

use weir_sdk::{connector_plugin, Connector, ConnectorContext, Event, NoConfig, Result, SinkContext, SinkReply};

struct Sink<'a>(&'a str);

#[connector_plugin]
impl<'a> Connector for Sink<'a> {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        unimplemented!()
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, _event: Event<'_>) -> Result<SinkReply> {
        Ok(SinkReply::Ack)
    }
}

fn main() {}
