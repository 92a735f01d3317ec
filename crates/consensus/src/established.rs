//! The pure rule that decides whether the node is "established" (in consensus with the network)
//! or has lost it (protocol-reference §7.1), as a function of counts.

/// Thresholds of the established rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EstablishedConfig {
    /// Live-sync peers needed (default 3). `0` lets a lone node establish (a seed, a devnet of one).
    pub min_peers: usize,
    /// Accepted announced blocks that prove we follow the network (default 5).
    pub min_accepted_announcements: u64,
}

impl Default for EstablishedConfig {
    fn default() -> Self {
        Self { min_peers: 3, min_accepted_announcements: 5 }
    }
}

/// What the rule looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EstablishedInputs {
    /// Peers in live sync.
    pub live_peers: usize,
    /// Announced blocks accepted since start.
    pub accepted_announcements: u64,
    /// The last finished head-request round: (heads we knew, heads we did not know). Failed head
    /// requests are not counted.
    pub head_round: Option<(usize, usize)>,
}

/// Established iff enough live peers and either enough accepted announcements or a head round in
/// which at least two thirds of the answering peers reported a head we already have.
pub fn is_established(inputs: &EstablishedInputs, config: &EstablishedConfig) -> bool {
    if inputs.live_peers < config.min_peers {
        return false;
    }
    if inputs.accepted_announcements >= config.min_accepted_announcements {
        return true;
    }
    match inputs.head_round {
        Some((known, unknown)) => known + unknown > 0 && known >= 2 * unknown,
        None => config.min_peers == 0,
    }
}

/// Lost iff the live peers fell below the minimum.
pub fn is_lost(inputs: &EstablishedInputs, config: &EstablishedConfig) -> bool {
    inputs.live_peers < config.min_peers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn established_rule_table() {
        let c = EstablishedConfig::default();
        let lone = EstablishedConfig { min_peers: 0, ..c };
        // (live peers, accepted announcements, head round, config, established?)
        type Case = (usize, u64, Option<(usize, usize)>, EstablishedConfig, bool);
        let cases: &[Case] = &[
            (0, 0, None, c, false),
            (2, 100, Some((2, 0)), c, false), // too few peers, whatever else
            (3, 0, None, c, false),           // enough peers, no evidence yet
            (3, 5, None, c, true),            // five accepted announcements
            (3, 4, None, c, false),
            (3, 0, Some((2, 1)), c, true),  // 2/3 of heads known
            (3, 0, Some((1, 1)), c, false), // only half
            (4, 0, Some((3, 1)), c, true),
            (3, 0, Some((0, 0)), c, false), // nobody answered
            (0, 0, None, lone, true),       // a lone seed
            (1, 0, Some((0, 1)), lone, false),
        ];
        for &(live_peers, accepted_announcements, head_round, config, expected) in cases {
            let inputs = EstablishedInputs { live_peers, accepted_announcements, head_round };
            assert_eq!(is_established(&inputs, &config), expected, "{inputs:?} {config:?}");
        }
    }

    #[test]
    fn lost_only_below_min_peers() {
        let c = EstablishedConfig::default();
        assert!(is_lost(&EstablishedInputs { live_peers: 2, ..Default::default() }, &c));
        assert!(!is_lost(&EstablishedInputs { live_peers: 3, ..Default::default() }, &c));
    }
}
