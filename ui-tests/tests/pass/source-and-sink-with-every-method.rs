use weir_sdk::abi::Capabilities;
use weir_sdk::{
    connector_plugin, Circuit, Connector, ConnectorContext, Event, EventId, Level, PullStatus,
    Result, SinkContext, SinkReply, SourceBatch,
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    echo: bool,
}

struct Echo {
    pending: Vec<Vec<u8>>,
    echo: bool,
}

#[connector_plugin(name = "echo", version = "2.1.0")]
impl Connector for Echo {
    type Config = Config;

    fn new(config: Config, ctx: &ConnectorContext) -> Result<Self> {
        ctx.log(Level::Info, "created");
        Ok(Echo { pending: Vec::new(), echo: config.echo })
    }

    fn connect(&mut self, _ctx: &ConnectorContext, attempt: u32) -> Result<bool> {
        Ok(attempt > 0)
    }

    fn on_start(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        Ok(())
    }

    fn on_pause(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        Ok(())
    }

    fn on_resume(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        Ok(())
    }

    fn on_drain(&mut self, _ctx: &ConnectorContext) -> Result<()> {
        Ok(())
    }

    fn on_stop(&mut self, ctx: &ConnectorContext) -> Result<()> {
        ctx.request_shutdown();
        Ok(())
    }

    fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        for event in self.pending.drain(..) {
            batch.push_to_stream(1, &event);
        }
        batch.end_stream(1);
        Ok(PullStatus::Empty)
    }

    fn on_ack(&mut self, _ctx: &ConnectorContext, _id: EventId) -> Result<()> {
        Ok(())
    }

    fn on_fail(&mut self, _ctx: &ConnectorContext, _id: EventId) -> Result<()> {
        Ok(())
    }

    fn on_circuit(&mut self, _ctx: &ConnectorContext, _circuit: Circuit) -> Result<()> {
        Ok(())
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        if self.echo {
            self.pending.push(event.bytes.to_vec());
        }
        Ok(SinkReply::Ack)
    }

    fn on_tick(&mut self, ctx: &mut SinkContext<'_>) -> Result<()> {
        ctx.open_circuit();
        Ok(())
    }

    fn on_batch_end(&mut self, _ctx: &mut SinkContext<'_>) -> Result<()> {
        if self.pending.len() > 1024 {
            return Err(weir_sdk::Error::permanent("too much pending"));
        }
        Ok(())
    }
}

fn main() {
    use weir_sdk::__private::Export;
    assert_eq!(<Echo as Export>::CAPABILITIES, Capabilities::ALL);
    assert_eq!(<Echo as Export>::NAME, "echo");
    assert_eq!(<Echo as Export>::VERSION, "2.1.0");
}
