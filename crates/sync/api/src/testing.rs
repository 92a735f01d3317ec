//! Helpers for act → expect tests of machines: made-up blocks and chain views, and a harness that
//! feeds inputs and collects actions. Nothing here touches a network, a runtime or a store.

use petrel_blockchain::HeadInfo;
use petrel_network_api::RequestError;
use petrel_primitives::{Blake2bHash, MacroBlock, MacroHeader, Policy, Validators};
use petrel_protocol::{AnyRequest, AnyResponse};

use crate::light_chain::LightView;
use crate::machine::{Action, Input, Machine, RequestId, Time};

/// A macro block at `number` under [`Policy::TEST`] (election blocks carry an empty validator
/// set); `salt` makes blocks at one height differ. Only its hash and number mean anything: it
/// carries no justification and verifies against nothing.
pub fn macro_block(number: u32, salt: u8) -> MacroBlock {
    MacroBlock {
        header: MacroHeader {
            network: 1,
            version: 1,
            block_number: number,
            round: 0,
            timestamp: 0,
            parent_hash: Blake2bHash([salt; 32]),
            parent_election_hash: Blake2bHash::default(),
            extra_data: vec![],
            state_root: Blake2bHash::default(),
            body_root: Blake2bHash::default(),
            history_root: Blake2bHash::default(),
            validators: Policy::TEST.is_election_block_at(number).then(|| Validators(vec![])),
        },
        justification: None,
        body: None,
    }
}

/// A light-chain view under [`Policy::TEST`] whose election head is `election` and whose head is
/// the macro block `macro_block`.
pub fn light_view(election: &MacroBlock, macro_block: &MacroBlock, optimistic: bool) -> LightView {
    LightView {
        head: HeadInfo {
            block_number: macro_block.block_number(),
            block_hash: macro_block.hash(),
            macro_hash: macro_block.hash(),
            election_hash: election.hash(),
        },
        macro_number: macro_block.block_number(),
        election_number: election.block_number(),
        at_anchor: macro_block.block_number() == 0,
        optimistic,
        policy: Policy::TEST,
        generation: 0,
        at_proven: false,
    }
}

/// Feeds inputs to a machine at a manual time and returns the actions each one caused.
pub struct Harness<M: Machine> {
    /// The machine.
    pub machine: M,
    /// The view handed to it.
    pub view: M::View,
    /// The time handed to it.
    pub now: Time,
}

impl<M: Machine> Harness<M> {
    /// A new machine with `config` seeing `view` at time zero.
    pub fn new(config: M::Config, view: M::View) -> Self {
        Self { machine: M::new(config), view, now: Time::ZERO }
    }

    /// Actions queued so far (e.g. by the constructor).
    pub fn actions(&mut self) -> Vec<Action<M::Work, M::Event>> {
        std::iter::from_fn(|| self.machine.poll_action()).collect()
    }

    /// Feeds one input; returns the actions it caused.
    pub fn input(&mut self, input: Input<M::Outcome, M::Gossip, M::Report>) -> Vec<Action<M::Work, M::Event>> {
        self.machine.handle(input, self.now, &self.view);
        self.actions()
    }

    /// A peer joins advertising `services`.
    pub fn join(
        &mut self,
        peer: petrel_network_api::PeerId,
        services: petrel_network_api::Services,
    ) -> Vec<Action<M::Work, M::Event>> {
        self.input(Input::PeerJoined { peer, services: Some(services) })
    }

    /// The answer to request `id`.
    pub fn respond(
        &mut self,
        id: RequestId,
        response: Result<AnyResponse, RequestError>,
    ) -> Vec<Action<M::Work, M::Event>> {
        self.input(Input::Response { id, response })
    }
}

/// The requests among `actions`: (id, peer, request).
pub fn requests<W, E>(actions: &[Action<W, E>]) -> Vec<(RequestId, petrel_network_api::PeerId, AnyRequest)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Request { id, peer, request } => Some((*id, *peer, request.clone())),
            _ => None,
        })
        .collect()
}

/// The id of the one request among `actions`; panics (failing the test) otherwise.
pub fn only_request<W: std::fmt::Debug, E: std::fmt::Debug>(actions: &[Action<W, E>]) -> RequestId {
    let r = requests(actions);
    assert_eq!(r.len(), 1, "expected one request: {actions:?}");
    r[0].0
}
