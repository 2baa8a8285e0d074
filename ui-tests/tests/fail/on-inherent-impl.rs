use weir_sdk::connector_plugin;

struct Sink;

#[connector_plugin]
impl Sink {
    fn on_event(&mut self) {}
}

fn main() {}
