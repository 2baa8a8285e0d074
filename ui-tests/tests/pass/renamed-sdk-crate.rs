//! The sdk under another name, through the `crate` option.

use weir_sdk as pdk;

struct Sink;

#[pdk::connector_plugin(crate = "pdk")]
impl pdk::Connector for Sink {
    type Config = pdk::NoConfig;

    fn new(_config: pdk::NoConfig, _ctx: &pdk::ConnectorContext) -> pdk::Result<Self> {
        Ok(Sink)
    }

    fn on_event(&mut self, _ctx: &mut pdk::SinkContext<'_>, _event: pdk::Event<'_>) -> pdk::Result<pdk::SinkReply> {
        Ok(pdk::SinkReply::Ack)
    }
}

fn main() {}
