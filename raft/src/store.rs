//! Durable storage of a node: one RocksDB for every group the node hosts.
//!
//! Column families: `raft_log` (`group ‖ index` → entry), `raft_meta`
//! (`group ‖ tag` → vote, last purged id, committed id) and `snap`
//! (`group` → the latest snapshot). Keys start with the group id in
//! big-endian, so each group's keys are one contiguous range.
//!
//! Durability: a vote, a truncation, a purge and an installed snapshot are
//! synced before the call returns. Appended entries are written unsynced
//! (readable at once) and handed to the node's single *flusher* thread,
//! which syncs the write-ahead log once for everything queued and then
//! acknowledges every queued append: one sync serves many appends of many
//! groups (group commit). All groups share one write-ahead log, so a vote is
//! never reordered with the appends before it.

use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use rocksdb::{ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::types::{Entry, GroupId, LogId, TypeConfig, Vote};

pub(crate) const CF_LOG: &str = "raft_log";
pub(crate) const CF_META: &str = "raft_meta";
pub(crate) const CF_SNAP: &str = "snap";

const META_VOTE: &[u8] = b"vote";
const META_PURGED: &[u8] = b"purged";
const META_COMMITTED: &[u8] = b"committed";

/// Appends waiting for the flusher; a full queue makes `append` wait.
const FLUSH_QUEUE_APPENDS_MAX: usize = 16_384;
/// Appends acknowledged by one sync at most (bounds one round's latency).
const FLUSH_BATCH_APPENDS_MAX: usize = 4_096;

/// Counters of the group commit, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct FlushStats {
    /// Write-ahead-log syncs done by the flusher.
    pub syncs: AtomicU64,
    /// Appends acknowledged by those syncs.
    pub appends: AtomicU64,
    /// Log entries acknowledged by those syncs.
    pub entries: AtomicU64,
}

struct Flush {
    callback: IOFlushed<TypeConfig>,
    entries: u64,
}

/// The node's RocksDB and its flusher. Cheap to clone.
#[derive(Clone)]
pub struct NodeStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<DB>,
    /// `None` only while dropping.
    flush_tx: Option<SyncSender<Flush>>,
    flusher: Option<std::thread::JoinHandle<()>>,
    stats: Arc<FlushStats>,
}

impl Drop for Inner {
    /// Stops the flusher and waits for it, so the database is closed when
    /// the last handle goes, on this thread, and never behind the back of
    /// whoever drops it (RocksDB aborts if it is still closing at exit).
    fn drop(&mut self) {
        self.flush_tx = None;
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

pub(crate) fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(io_err)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// The key prefix of node-wide records (never a group id).
const NODE_RECORD_GROUP: GroupId = GroupId::MAX;

pub(crate) fn group_key(group: GroupId, suffix: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + suffix.len());
    key.extend_from_slice(&group.to_be_bytes());
    key.extend_from_slice(suffix);
    key
}

fn log_key(group: GroupId, index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

impl NodeStore {
    /// Handles on this database alive now (this one included).
    pub(crate) fn handles(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    /// Opens (or creates) the node's database under `path` and starts its flusher.
    pub fn open(path: &Path) -> io::Result<NodeStore> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_max_background_jobs(2);
        let cfs = [CF_LOG, CF_META, CF_SNAP].map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = Arc::new(DB::open_cf_descriptors(&options, path, cfs).map_err(io_err)?);
        let (flush_tx, flush_rx) = std::sync::mpsc::sync_channel(FLUSH_QUEUE_APPENDS_MAX);
        let stats = Arc::new(FlushStats::default());
        let (flusher_db, flusher_stats) = (Arc::clone(&db), Arc::clone(&stats));
        let flusher = std::thread::Builder::new()
            .name("raft-flusher".into())
            .spawn(move || flusher(flusher_db, flush_rx, flusher_stats))
            .map_err(io_err)?;
        Ok(NodeStore { inner: Arc::new(Inner { db, flush_tx: Some(flush_tx), flusher: Some(flusher), stats }) })
    }

    /// The log store of one group.
    pub fn log_store(&self, group: GroupId) -> LogStore {
        LogStore { store: self.clone(), group }
    }

    /// Group-commit counters.
    pub fn flush_stats(&self) -> Arc<FlushStats> {
        Arc::clone(&self.inner.stats)
    }

    pub(crate) fn db(&self) -> &Arc<DB> {
        &self.inner.db
    }

    pub(crate) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.inner.db.cf_handle(name).expect("column families are created on open")
    }

    pub(crate) fn get_meta<T: DeserializeOwned>(&self, group: GroupId, tag: &[u8]) -> io::Result<Option<T>> {
        match self.inner.db.get_cf(self.cf(CF_META), group_key(group, tag)).map_err(io_err)? {
            None => Ok(None),
            Some(bytes) => decode(&bytes).map(Some),
        }
    }

    /// Groups with anything stored (a vote, log or snapshot metadata): the
    /// groups this node hosted before, including those added at run time.
    pub fn stored_groups(&self) -> io::Result<Vec<GroupId>> {
        let mut groups = Vec::new();
        let mut from = 0u64;
        loop {
            let mut iter = self.inner.db.raw_iterator_cf(self.cf(CF_META));
            iter.seek(from.to_be_bytes());
            let Some(key) = iter.key() else {
                iter.status().map_err(io_err)?;
                return Ok(groups);
            };
            let group = GroupId::from_be_bytes(key[..8].try_into().map_err(io_err)?);
            if group == NODE_RECORD_GROUP {
                return Ok(groups);
            }
            groups.push(group);
            from = group + 1;
        }
    }

    /// Binds the data directory to node `id` on first use; refuses to open
    /// it as another node, so a node's data never serves under a second id.
    pub fn claim_node_id(&self, id: u64) -> io::Result<()> {
        let key = group_key(NODE_RECORD_GROUP, b"node-id");
        match self.inner.db.get_cf(self.cf(CF_META), &key).map_err(io_err)? {
            Some(bytes) => {
                let owner: u64 = decode(&bytes)?;
                if owner != id {
                    return Err(io::Error::other(format!(
                        "this data directory belongs to node {owner}, not node {id}"
                    )));
                }
                Ok(())
            }
            None => self.inner.db.put_cf_opt(self.cf(CF_META), key, encode(&id)?, &synced()).map_err(io_err),
        }
    }

    /// Writes a batch and syncs it before returning, off the async runtime.
    pub(crate) async fn write_synced(&self, batch: WriteBatch) -> io::Result<()> {
        let db = Arc::clone(&self.inner.db);
        tokio::task::spawn_blocking(move || db.write_opt(batch, &synced()).map_err(io_err)).await.map_err(io_err)?
    }
}

/// The flusher: waits for appends, syncs the WAL once for all of them, then
/// acknowledges them. An append's write happened before it was queued, so
/// the sync covers it.
fn flusher(db: Arc<DB>, rx: Receiver<Flush>, stats: Arc<FlushStats>) {
    let mut batch = Vec::with_capacity(FLUSH_BATCH_APPENDS_MAX);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < FLUSH_BATCH_APPENDS_MAX {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let result = db.flush_wal(true).map_err(io_err);
        stats.syncs.fetch_add(1, Ordering::Relaxed);
        stats.appends.fetch_add(batch.len() as u64, Ordering::Relaxed);
        for flush in batch.drain(..) {
            stats.entries.fetch_add(flush.entries, Ordering::Relaxed);
            let outcome = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            flush.callback.io_completed(outcome);
        }
    }
}

/// The Raft log of one group in the node's database.
#[derive(Clone)]
pub struct LogStore {
    store: NodeStore,
    group: GroupId,
}

impl LogStore {
    fn last_entry_id(&self) -> io::Result<Option<LogId>> {
        let db = self.store.db();
        let mut iter = db
            .iterator_cf(self.store.cf(CF_LOG), IteratorMode::From(&log_key(self.group, u64::MAX), Direction::Reverse));
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (key, value) = item.map_err(io_err)?;
                if key[..8] != self.group.to_be_bytes() {
                    return Ok(None);
                }
                let entry: Entry = decode(&value)?;
                Ok(Some(entry.log_id))
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => Some(i),
            Bound::Excluded(&0) => return Ok(Vec::new()),
            Bound::Excluded(&i) => Some(i - 1),
            Bound::Unbounded => None,
        };
        let db = self.store.db();
        let iter =
            db.iterator_cf(self.store.cf(CF_LOG), IteratorMode::From(&log_key(self.group, start), Direction::Forward));
        let mut entries = Vec::new();
        for item in iter {
            let (key, value) = item.map_err(io_err)?;
            if key[..8] != self.group.to_be_bytes() {
                break;
            }
            let index = u64::from_be_bytes(key[8..16].try_into().expect("16-byte log key"));
            if end.is_some_and(|end| index > end) {
                break;
            }
            let entry: Entry = decode(&value)?;
            assert_eq!(entry.log_id.index, index, "log entry stored under another index");
            if let Some(previous) = entries.last() {
                let previous: &Entry = previous;
                assert_eq!(previous.log_id.index + 1, index, "hole in the log of group {}", self.group);
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.store.get_meta(self.group, META_VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id: Option<LogId> = self.store.get_meta(self.group, META_PURGED)?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.store.cf(CF_META), group_key(self.group, META_VOTE), encode(vote)?);
        self.store.write_synced(batch).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Unsynced by contract: losing it only means replaying less on restart;
        // the next sync (of any group) makes it durable.
        let key = group_key(self.group, META_COMMITTED);
        let db = self.store.db();
        match committed {
            Some(id) => db.put_cf(self.store.cf(CF_META), key, encode(&id)?),
            None => db.delete_cf(self.store.cf(CF_META), key),
        }
        .map_err(io_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        self.store.get_meta(self.group, META_COMMITTED)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let mut count = 0u64;
        for entry in entries {
            batch.put_cf(self.store.cf(CF_LOG), log_key(self.group, entry.log_id.index), encode(&entry)?);
            count += 1;
        }
        if crate::debug::planted(crate::debug::Plant::AckBeforeSync) {
            // The planted bug: no write-ahead log, acknowledged at once.
            let mut memory_only = WriteOptions::default();
            memory_only.disable_wal(true);
            self.store.db().write_opt(batch, &memory_only).map_err(io_err)?;
            callback.io_completed(Ok(()));
            return Ok(());
        }
        // Readable on return; durable when the flusher's sync acknowledges it.
        self.store.db().write(batch).map_err(io_err)?;
        let mut flush = Flush { callback, entries: count };
        loop {
            let tx = self.store.inner.flush_tx.as_ref().expect("the flusher runs while the store is open");
            match tx.try_send(flush) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back)) => {
                    flush = back;
                    tokio::task::yield_now().await;
                }
                Err(TrySendError::Disconnected(_)) => return Err(io_err("the flusher thread is gone")),
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |id| id.index + 1);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.store.cf(CF_LOG), log_key(self.group, from), log_key(self.group, u64::MAX));
        self.store.write_synced(batch).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.store.cf(CF_META), group_key(self.group, META_PURGED), encode(&log_id)?);
        batch.delete_range_cf(self.store.cf(CF_LOG), log_key(self.group, 0), log_key(self.group, log_id.index + 1));
        self.store.write_synced(batch).await
    }
}
