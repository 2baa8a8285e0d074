use weir_sdk::{connector_plugin, Connector, ConnectorContext, NoConfig, PullStatus, Result, SinkContext, SourceBatch};

struct Source;

#[connector_plugin]
impl Connector for Source {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Source)
    }

    fn pull(&mut self, _ctx: &ConnectorContext, _batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        Ok(PullStatus::Empty)
    }

    fn on_tick(&mut self, _ctx: &mut SinkContext<'_>) -> Result<()> {
        Ok(())
    }
}

fn main() {}
