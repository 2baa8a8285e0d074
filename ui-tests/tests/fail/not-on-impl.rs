use weir_sdk::connector_plugin;

#[connector_plugin]
struct NotAnImpl;

fn main() {}
