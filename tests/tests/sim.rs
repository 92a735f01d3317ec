//! The network simulation, small: 60 nodes of the four types (4 seeds, 12 adversaries) with
//! latency, loss and churn, in virtual time. Every honest node must become established on the
//! reference chain, and none may ban another. The 1,000-node run is `cargo xtask sim`.

#[path = "../sim/mod.rs"]
mod sim;

#[tokio::test(start_paused = true, flavor = "current_thread")]
async fn every_honest_node_of_a_small_network_establishes_on_the_right_chain() {
    let report = sim::run(sim::SimConfig::small()).await;
    println!("{}", report.table());
    assert!(report.failures().is_empty(), "{:#?}\n{}", report.failures(), report.table());
    assert_eq!(report.honest_bans(), 0, "no honest node banned another\n{}", report.table());
    for kind in sim::Kind::ALL {
        assert!(report.honest.iter().any(|r| r.kind == kind), "no {kind:?} node");
    }
    assert!(report.adversaries > 0);
    assert!(report.honest.iter().any(|r| r.churned), "some nodes were churned (and established again)");
}
