//! `cargo xtask sim`: the network simulation at scale (default 1,000 nodes, 20 % adversarial;
//! `-- --nodes N` for another size), in virtual time on the mock network. Prints the table, writes
//! `target/sim.json`, and fails if any honest node never becomes established on the reference
//! chain.

#[path = "../sim/mod.rs"]
mod sim;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut config = sim::SimConfig::full();
    if let Some(i) = args.iter().position(|a| a == "--nodes") {
        match args.get(i + 1).and_then(|n| n.parse().ok()) {
            Some(n) => config.nodes = n,
            None => {
                eprintln!("sim: --nodes needs a number");
                std::process::exit(2);
            }
        }
    }
    if !args.iter().any(|a| a == "--sim") {
        // Not part of `cargo bench --workspace` (`cargo xtask bench`): it runs for minutes.
        println!("sim: run it with `cargo xtask sim [--nodes N]`");
        return;
    }
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime");
    let wall = std::time::Instant::now();
    let report = runtime.block_on(sim::run(config));
    let wall = wall.elapsed();
    println!("{}", report.table());
    println!("wall time {:.1} s", wall.as_secs_f64());
    let mut json = report.json();
    json["wall_secs"] = serde_json::json!(wall.as_secs_f64());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/sim.json");
    if let Err(e) = std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap_or_default()) {
        eprintln!("sim: cannot write {}: {e}", path.display());
    }
    let failures = report.failures();
    if !failures.is_empty() {
        eprintln!("sim: {} honest nodes never became established on the reference chain", failures.len());
        std::process::exit(1);
    }
}
