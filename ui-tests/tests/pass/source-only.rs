use weir_sdk::abi::Capabilities;
use weir_sdk::{connector_plugin, Connector, ConnectorContext, EventId, PullStatus, Result, SourceBatch};

#[derive(serde::Deserialize)]
struct Config {
    count: u64,
}

struct Counter {
    left: u64,
}

#[connector_plugin]
impl Connector for Counter {
    type Config = Config;

    fn new(config: Config, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Counter { left: config.count })
    }

    fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        while self.left > 0 && !batch.is_full() {
            batch.push(b"tick");
            self.left -= 1;
        }
        Ok(if self.left == 0 { PullStatus::Finished } else { PullStatus::Ready })
    }

    fn on_ack(&mut self, _ctx: &ConnectorContext, _id: EventId) -> Result<()> {
        Ok(())
    }
}

fn main() {
    use weir_sdk::__private::Export;
    assert_eq!(<Counter as Export>::CAPABILITIES, Capabilities::SOURCE);
}
