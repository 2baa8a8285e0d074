use weir_sdk::abi::Capabilities;
use weir_sdk::{connector_plugin, Connector, ConnectorContext, Event, NoConfig, Result, SinkContext, SinkReply};

struct Sink {
    seen: usize,
}

#[connector_plugin]
impl Connector for Sink {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Sink { seen: 0 })
    }

    fn on_event(&mut self, ctx: &mut SinkContext<'_>, _event: Event<'_>) -> Result<SinkReply> {
        self.seen += 1;
        if self.seen > 100 {
            ctx.close_circuit();
        }
        Ok(SinkReply::Auto)
    }
}

fn main() {
    use weir_sdk::__private::Export;
    assert_eq!(<Sink as Export>::CAPABILITIES, Capabilities::SINK);
    assert_eq!(<Sink as Export>::NAME, env!("CARGO_PKG_NAME"), "defaults to the crate name");
}
