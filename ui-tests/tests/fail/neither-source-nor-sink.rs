use weir_sdk::{connector_plugin, Connector, ConnectorContext, NoConfig, Result};

struct Idle;

#[connector_plugin]
impl Connector for Idle {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Idle)
    }
}

fn main() {}
