//! `webserver`: placeholder until the WebSocket fan-out lands.
fn main() {
    println!(
        "webserver {} (not implemented yet)",
        env!("CARGO_PKG_VERSION")
    );
}
