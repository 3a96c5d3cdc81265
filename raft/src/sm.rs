//! State-machine storage around `statemachine::State`.
//!
//! The state lives in memory. What makes it durable is the synced log, the
//! persisted committed id and the latest snapshot: on restart openraft
//! installs the snapshot and re-applies the log from it up to the committed
//! id, so a restarted replica never serves state older than what it had
//! acknowledged. A snapshot is stored with its metadata in one synced write,
//! so an install is crash-atomic: after a crash either the old or the new
//! snapshot is there, whole.
//!
//! Besides the state, a group remembers the node ids its membership has
//! dropped (`retired`): a membership entry that leaves an id out retires it
//! for good, so a replica that was removed (whose log and vote may be stale
//! or lost) never comes back under the same id. The set is rebuilt like the
//! state: from the snapshot (see `snapshot`) and the membership entries
//! replayed after it.

use std::collections::BTreeSet;
use std::io;
use std::sync::{Arc, RwLock};

use futures::TryStreamExt;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, RaftSnapshotBuilder, Snapshot};

type ShardSnapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, Vec<u8>>;
use rocksdb::WriteBatch;
use statemachine::{ApplyCtx, State};

use crate::batch::{log_index_of, state_index};
use crate::store::{decode, encode, group_key, NodeStore, CF_SNAP};
use crate::types::{CmdResp, GroupId, LogId, SnapshotMeta, StoredMembership, TypeConfig};

/// What applying has produced so far: the state and the position in the log.
pub(crate) struct Applied {
    pub(crate) state: State,
    pub(crate) last_applied: Option<LogId>,
    pub(crate) membership: StoredMembership,
    /// Ids the group's membership has dropped; never members again.
    pub(crate) retired: BTreeSet<u64>,
}

/// A group's state machine. Readers share the state through [`ShardState`].
pub struct ShardSm {
    store: NodeStore,
    group: GroupId,
    shared: ShardState,
}

/// A read handle on a group's applied state.
#[derive(Clone)]
pub struct ShardState {
    inner: Arc<RwLock<Applied>>,
    feed: Arc<crate::feed::Feed>,
    events: Arc<crate::events::EventFeed>,
}

impl ShardState {
    /// Runs `f` on the applied state. Hold it briefly: apply waits meanwhile.
    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.inner.read().expect("state lock poisoned").state)
    }

    /// The group's seat-change feed.
    pub(crate) fn feed(&self) -> &crate::feed::Feed {
        &self.feed
    }

    /// The group's notification feed.
    pub(crate) fn events(&self) -> &crate::events::EventFeed {
        &self.events
    }

    /// Whether the group's membership has dropped node `id` (it may never
    /// join the group again).
    pub fn is_retired(&self, id: u64) -> bool {
        self.inner.read().expect("state lock poisoned").retired.contains(&id)
    }

    /// The ids the group has retired, ascending.
    pub fn retired(&self) -> Vec<u64> {
        self.inner.read().expect("state lock poisoned").retired.iter().copied().collect()
    }

    /// Index of the last applied entry (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.inner.read().expect("state lock poisoned").last_applied.as_ref().map_or(0, |id| id.index)
    }
}

/// The snapshot as stored: metadata and the state machine's snapshot bytes.
type StoredSnapshot = (SnapshotMeta, Vec<u8>);

impl ShardSm {
    /// The state machine of `group`, empty until openraft restores it.
    pub fn new(store: NodeStore, group: GroupId, limits: statemachine::Limits) -> ShardSm {
        let applied = Applied {
            state: State::new(limits),
            last_applied: None,
            membership: StoredMembership::default(),
            retired: BTreeSet::new(),
        };
        let feed = Arc::new(crate::feed::Feed::new(0));
        let events = Arc::new(crate::events::EventFeed::new(0));
        ShardSm { store, group, shared: ShardState { inner: Arc::new(RwLock::new(applied)), feed, events } }
    }

    /// A read handle.
    pub fn state(&self) -> ShardState {
        self.shared.clone()
    }

    fn stored_snapshot(&self) -> io::Result<Option<StoredSnapshot>> {
        let key = group_key(self.group, b"");
        match self.store.db().get_cf(self.store.cf(CF_SNAP), key).map_err(io::Error::other)? {
            None => Ok(None),
            Some(bytes) => decode(&bytes).map(Some),
        }
    }
}

/// Decodes a snapshot and checks it against its metadata: the check every
/// snapshot passes before it is installed, whether a peer sent it (the
/// transport refuses it before the Raft core sees it) or it is read back at
/// start-up. Gives the state and the retired ids.
pub(crate) fn check_snapshot(meta: &SnapshotMeta, bytes: &[u8]) -> Result<(State, BTreeSet<u64>), String> {
    let (retired, state) = crate::snapshot::decode(bytes).map_err(|e| e.to_string())?;
    let state = State::restore(state).map_err(|e| e.to_string())?;
    let covered = meta.last_log_id.map_or(0, |id| id.index);
    if log_index_of(state.last_index()) > covered {
        return Err(format!(
            "snapshot state is at log index {} but claims to cover only {covered}",
            log_index_of(state.last_index())
        ));
    }
    Ok((state, retired))
}

/// Builds a snapshot from a view captured when the builder was made, so it
/// can run while apply goes on.
pub struct SnapshotBuilder {
    store: NodeStore,
    group: GroupId,
    meta: SnapshotMeta,
    bytes: Vec<u8>,
}

async fn persist_snapshot(store: &NodeStore, group: GroupId, meta: &SnapshotMeta, bytes: &[u8]) -> io::Result<()> {
    let mut batch = WriteBatch::default();
    batch.put_cf(store.cf(CF_SNAP), group_key(group, b""), encode(&(meta, bytes))?);
    store.write_synced(batch).await
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<ShardSnapshot, io::Error> {
        persist_snapshot(&self.store, self.group, &self.meta, &self.bytes).await?;
        Ok(Snapshot { meta: self.meta.clone(), snapshot: self.bytes.clone() })
    }
}

impl RaftStateMachine<TypeConfig> for ShardSm {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let applied = self.shared.inner.read().expect("state lock poisoned");
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<S>(&mut self, mut entries: S) -> Result<(), io::Error>
    where
        S: futures::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + openraft::OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let mut changes = Vec::new();
            let response = {
                let mut applied = self.shared.inner.write().expect("state lock poisoned");
                let response = match entry.payload {
                    EntryPayload::Blank => CmdResp::Noop,
                    EntryPayload::Membership(membership) => {
                        let dropped: Vec<u64> = applied
                            .membership
                            .membership()
                            .nodes()
                            .map(|(id, _)| *id)
                            .filter(|id| !membership.nodes().any(|(kept, _)| kept == id))
                            .collect();
                        if let Some(back) =
                            membership.nodes().map(|(id, _)| *id).find(|id| applied.retired.contains(id))
                        {
                            // The leader refuses to add a retired id; one in a
                            // committed membership means that check failed.
                            tracing::error!(group = self.group, node = back, "a retired node id is a member again");
                        }
                        applied.retired.extend(dropped);
                        applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                        CmdResp::Noop
                    }
                    EntryPayload::Normal(ref log_cmd) => {
                        let time_ms = if crate::debug::planted(crate::debug::Plant::WallClockExpiry) {
                            crate::debug::wall_ms()
                        } else {
                            log_cmd.time_ms
                        };
                        let mut results = Vec::with_capacity(log_cmd.cmds.len());
                        for (position, cmd) in log_cmd.cmds.iter().enumerate() {
                            let ctx = ApplyCtx { index: state_index(entry.log_id.index, position), time_ms };
                            let result = applied.state.apply(cmd, ctx);
                            for event in &result.events {
                                crate::feed::changes(ctx.index, event, &mut changes);
                                count_event(event);
                            }
                            self.shared.events.push(ctx.index, &result.events);
                            results.push(result);
                        }
                        CmdResp::Applied(results)
                    }
                };
                applied.last_applied = Some(entry.log_id);
                response
            };
            self.shared.feed.push(changes);
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Encoding runs on the state machine's task: apply waits for it, so
        // its time shows up in commit latency and is worth watching.
        let started = std::time::Instant::now();
        let applied = self.shared.inner.read().expect("state lock poisoned");
        let bytes = crate::snapshot::encode(&applied.retired, &applied.state.snapshot());
        let took = started.elapsed();
        metrics::histogram!("raft_snapshot_encode_seconds", "group" => self.group.to_string())
            .record(took.as_secs_f64());
        tracing::info!(group = self.group, bytes = bytes.len(), ms = took.as_millis() as u64, "snapshot encoded");
        SnapshotBuilder {
            store: self.store.clone(),
            group: self.group,
            meta: SnapshotMeta { last_log_id: applied.last_applied, last_membership: applied.membership.clone() },
            bytes,
        }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Vec<u8>) -> Result<(), io::Error> {
        // Check the bytes before anything is replaced: a bad snapshot is
        // refused and the replica keeps serving what it has.
        let (state, retired) =
            check_snapshot(meta, &snapshot).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        persist_snapshot(&self.store, self.group, meta, &snapshot).await?;
        let mut applied = self.shared.inner.write().expect("state lock poisoned");
        let index = state.last_index();
        applied.state = state;
        applied.retired = retired;
        applied.last_applied = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        // The changes a snapshot skips are not known: readers behind it
        // start over from a full seat map.
        self.shared.feed.reset(index);
        self.shared.events.reset(index);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<ShardSnapshot>, io::Error> {
        Ok(self.stored_snapshot()?.map(|(meta, snapshot)| Snapshot { meta, snapshot }))
    }
}

/// Counts what applying did, for `/metrics` (every replica counts the same
/// entries; the leader's figures are the cluster's).
fn count_event(event: &statemachine::DomainEvent) {
    use statemachine::DomainEvent as E;
    let name = match event {
        E::SeatsHeld { .. } => "held",
        E::SeatsReleased { .. } => "released",
        E::SeatsExpired { .. } => "expired",
        E::SeatsBooked { .. } => "booked",
        E::BookingCancelled { .. } => "cancelled",
        E::TicketTransferred { .. } => "transferred",
        E::TicketCheckedIn { .. } => "checked_in",
        E::WaitlistOffered { .. } => "waitlist_offered",
        E::RefundDue { .. } => "refund_due",
        E::VenueCreated { .. } | E::EventCreated { .. } => "catalog",
    };
    metrics::counter!("shard_domain_events_total", "kind" => name).increment(1);
}
