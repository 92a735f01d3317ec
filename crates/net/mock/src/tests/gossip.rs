//! Gossip: delivery to connected subscribers only, verdicts, size limits, queue overflow, loss and
//! partitions.

use std::time::Duration;

use futures::StreamExt;
use petrel_network_api::{GOSSIP_QUEUE, Network, NetworkError, NetworkExt, PeerId, Services, Topic, Verdict};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::WAIT;
use crate::{HubConfig, MockHub, MockNetwork};

const TOPIC: &str = "test/raw";

/// A typed test topic: one number per message.
#[derive(Debug)]
struct Ticks;

impl Topic for Ticks {
    const NAME: &'static str = "test/ticks";
    const MAX_SIZE: usize = 16;
    type Item = u64;
}

type Inbox = mpsc::Receiver<(Vec<u8>, PeerId, petrel_network_api::GossipId)>;

/// A hub, a publisher, and `subscribers` nodes connected to it and subscribed to [`TOPIC`].
async fn star(config: HubConfig, subscribers: usize) -> (MockHub, MockNetwork, Vec<(MockNetwork, Inbox)>) {
    let hub = MockHub::new(config);
    let publisher = hub.node(Services::FULL_NODE);
    let mut nodes = Vec::new();
    for _ in 0..subscribers {
        let node = hub.node(Services::NONE);
        hub.connect(&publisher, &node).expect("connect");
        let inbox = node.subscribe_raw(TOPIC, 64).await.expect("subscribe");
        nodes.push((node, inbox));
    }
    (hub, publisher, nodes)
}

/// Whether anything arrives within [`WAIT`].
async fn arrives(inbox: &mut Inbox) -> bool {
    tokio::time::timeout(WAIT, inbox.recv()).await.is_ok_and(|m| m.is_some())
}

#[tokio::test(start_paused = true)]
async fn publish_reaches_connected_subscribers_only() {
    let config = HubConfig { latency: Duration::from_millis(50), ..HubConfig::default() };
    let (hub, publisher, mut subscribers) = star(config, 2).await;
    let mut own = publisher.subscribe_raw(TOPIC, 64).await.expect("subscribe");
    let unsubscribed = hub.node(Services::NONE);
    hub.connect(&publisher, &unsubscribed).expect("connect");
    let stranger = hub.node(Services::NONE);
    let mut stranger_inbox = stranger.subscribe_raw(TOPIC, 64).await.expect("subscribe");
    let start = Instant::now();

    publisher.publish_raw(TOPIC, b"hello".to_vec()).await.expect("publish");

    for (node, inbox) in &mut subscribers {
        let (data, source, _) = inbox.recv().await.expect("delivered");
        assert_eq!((data.as_slice(), source), (&b"hello"[..], publisher.peer_id()));
        assert_eq!(start.elapsed(), Duration::from_millis(50));
        assert_eq!(node.stats().gossip_received, 1);
    }
    assert!(!arrives(&mut own).await, "no delivery to self");
    assert!(!arrives(&mut stranger_inbox).await, "no delivery to unconnected nodes");
    assert_eq!(unsubscribed.stats().gossip_received, 0);
    assert_eq!(publisher.stats().gossip_published, 1);
    assert_eq!(publisher.stats().bytes_sent, 10, "5 bytes to each of 2 subscribers");
}

#[tokio::test(start_paused = true)]
async fn no_subscribed_peer_is_no_peers() {
    let (hub, publisher, _) = star(HubConfig::default(), 0).await;
    let node = hub.node(Services::NONE);
    hub.connect(&publisher, &node).expect("connect");

    assert_eq!(publisher.publish_raw(TOPIC, vec![1]).await, Err(NetworkError::NoPeers));
}

#[tokio::test(start_paused = true)]
async fn verdicts_penalize_only_rejected_messages() {
    let (hub, publisher, mut subscribers) = star(HubConfig::default(), 1).await;
    let (node, inbox) = &mut subscribers[0];

    for verdict in [Verdict::Accept, Verdict::Ignore, Verdict::Reject] {
        publisher.publish_raw(TOPIC, vec![1]).await.expect("publish");
        let (_, source, id) = inbox.recv().await.expect("delivered");
        node.validate(id, verdict);
        // A second verdict on the same message has no effect.
        node.validate(id, verdict);
        assert_eq!(source, publisher.peer_id());
    }

    assert_eq!(node.score(&publisher.peer_id()), -hub.config().penalty);
}

#[tokio::test(start_paused = true)]
async fn oversized_gossip_is_dropped_and_penalized() {
    let (hub, publisher, mut subscribers) = star(HubConfig::default(), 1).await;
    let (node, inbox) = &mut subscribers[0];

    publisher.publish_raw(TOPIC, vec![0; 65]).await.expect("publish");

    assert!(!arrives(inbox).await);
    assert_eq!(node.score(&publisher.peer_id()), -hub.config().penalty);
    publisher.publish_raw(TOPIC, vec![0; 64]).await.expect("publish");
    assert!(arrives(inbox).await, "a message at the limit is delivered");
}

#[tokio::test(start_paused = true)]
async fn full_queue_drops_the_overflow() {
    let (_hub, publisher, mut subscribers) = star(HubConfig::default(), 1).await;
    let (node, inbox) = &mut subscribers[0];

    for i in 0..GOSSIP_QUEUE + 10 {
        publisher.publish_raw(TOPIC, i.to_le_bytes().to_vec()).await.expect("publish");
    }
    tokio::time::sleep(Duration::from_millis(1)).await;

    let mut received = 0;
    while inbox.try_recv().is_ok() {
        received += 1;
    }
    assert_eq!(received, GOSSIP_QUEUE);
    assert_eq!(node.stats().gossip_received, GOSSIP_QUEUE as u64);
}

#[tokio::test(start_paused = true)]
async fn typed_topic_rejects_undecodable_items() {
    let hub = MockHub::new(HubConfig::default());
    let publisher = hub.node(Services::FULL_NODE);
    let node = hub.node(Services::NONE);
    hub.connect(&publisher, &node).expect("connect");
    let mut items = node.subscribe::<Ticks>().await.expect("subscribe");

    publisher.publish_raw(Ticks::NAME, vec![0xff; 12]).await.expect("publish");
    tokio::time::sleep(Duration::from_millis(1)).await;
    publisher.publish::<Ticks>(&7).await.expect("publish");

    let message = tokio::time::timeout(WAIT, items.next()).await.expect("in time").expect("an item");
    assert_eq!((message.item, message.source), (7, publisher.peer_id()));
    assert_eq!(node.score(&publisher.peer_id()), -hub.config().penalty, "the garbage was rejected");
}

#[tokio::test(start_paused = true)]
async fn loss_and_partitions_drop_gossip() {
    let (_hub, publisher, mut subscribers) = star(HubConfig { loss: 1.0, ..HubConfig::default() }, 1).await;
    publisher.publish_raw(TOPIC, vec![1]).await.expect("publishing succeeds even if nothing arrives");
    assert!(!arrives(&mut subscribers[0].1).await);

    let config = HubConfig { latency: Duration::from_millis(50), ..HubConfig::default() };
    let (hub, publisher, mut subscribers) = star(config, 2).await;
    let (cut, _) = &subscribers[0];
    hub.partition(&[publisher.peer_id()], &[cut.peer_id()]);
    publisher.publish_raw(TOPIC, vec![1]).await.expect("publish");
    assert!(!arrives(&mut subscribers[0].1).await, "cut off");
    assert!(arrives(&mut subscribers[1].1).await, "not cut off");

    // A partition that starts while a message is in flight drops it too.
    hub.heal();
    publisher.publish_raw(TOPIC, vec![2]).await.expect("publish");
    tokio::time::sleep(Duration::from_millis(10)).await;
    hub.partition(&[publisher.peer_id()], &[subscribers[1].0.peer_id()]);
    assert!(arrives(&mut subscribers[0].1).await, "healed");
    assert!(!arrives(&mut subscribers[1].1).await, "cut while in flight");
}
