//! Kept downloads: they survive a reopen and go as the chain passes their blocks.

mod common;

#[test]
fn downloads_survive_a_reopen_and_go_as_the_chain_passes_them() {
    let dir = tempfile::tempdir().unwrap();
    let g = common::genesis(&common::producer(1));
    {
        let chain = common::open(&dir, &g).downloads();
        assert!(chain.above(0, usize::MAX).unwrap().is_empty(), "none in a new store");
        let entries = vec![((8, u64::MAX), vec![1; 10]), ((8, 0), vec![2; 10]), ((16, 3), vec![3; 10])];
        chain.put(&entries).unwrap();
        chain.put(&[((8, 0), vec![4; 5])]).unwrap();
    }
    let chain = common::open(&dir, &g).downloads();
    let all = chain.above(0, usize::MAX).unwrap();
    assert_eq!(chain.summary().unwrap(), (3, 25));
    assert_eq!(all, vec![((8, 0), vec![4; 5]), ((8, u64::MAX), vec![1; 10]), ((16, 3), vec![3; 10])]);
    assert_eq!(chain.above(8, usize::MAX).unwrap(), vec![((16, 3), vec![3; 10])]);
    assert_eq!(chain.above(0, 15).unwrap().len(), 2, "at most max_bytes");
    chain.clear_through(8).unwrap();
    assert_eq!(chain.above(0, usize::MAX).unwrap(), vec![((16, 3), vec![3; 10])]);
    chain.clear().unwrap();
    assert!(chain.above(0, usize::MAX).unwrap().is_empty());
    chain.clear().unwrap();
}
