use weir_sdk::connector_plugin;

#[derive(Debug)]
struct Sink;

#[connector_plugin]
impl std::fmt::Display for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sink")
    }
}

fn main() {}
