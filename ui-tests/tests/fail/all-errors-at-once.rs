use weir_sdk::{connector_plugin, Connector, ConnectorContext, NoConfig, Result};

struct Idle<T>(T);

#[connector_plugin(nmae = "typo", crate = "not a path")]
impl<T: Send + 'static> Connector for Idle<T> {
    type Config = NoConfig;

    async fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        unimplemented!()
    }

    fn poll(&mut self) {}
}

fn main() {}
