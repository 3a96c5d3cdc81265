//! The browse cache: every event of every group with its availability, at
//! most about a second old, and the search index over it. Browsing and
//! search are not linearizable (the contract asks that of seat maps, holds
//! and bookings); event details are read from the group.

use std::collections::BTreeMap;
use std::sync::RwLock;

use raft::{Answer, Query, EVENTS_PAGE_MAX};
use statemachine::{EventId, EventView};

use super::http::ApiError;
use super::ids::EVENT;
use super::search::{EventDoc, SearchIndex};
use super::Gateway;

/// Events of all groups, by external id.
pub(crate) struct Catalog {
    events: RwLock<BTreeMap<String, (u64, EventView)>>,
    search: SearchIndex,
}

impl Catalog {
    pub(crate) fn new(search: SearchIndex) -> Catalog {
        Catalog { events: RwLock::new(BTreeMap::new()), search }
    }

    pub(crate) fn search(&self) -> &SearchIndex {
        &self.search
    }

    pub(crate) fn get(&self, id: &str) -> Option<(u64, EventView)> {
        self.events.read().expect("catalog lock poisoned").get(id).cloned()
    }

    /// Records `event` (from a refresh, or right after this gateway created it).
    pub(crate) fn put(&self, group: u64, events: Vec<EventView>) {
        let mut docs = Vec::new();
        {
            let mut map = self.events.write().expect("catalog lock poisoned");
            for e in events {
                let id = EVENT.format(group, e.id.0);
                if !map.contains_key(&id) {
                    docs.push(EventDoc {
                        event_id: id.clone(),
                        title: e.title.clone(),
                        venue_name: e.venue_name.clone(),
                        genre: e.genre.clone(),
                        city: e.city.clone(),
                        kind: e.kind.as_str().to_string(),
                        language: e.language.clone(),
                        starts_at_ms: e.starts_at_ms,
                    });
                }
                map.insert(id, (group, e));
            }
        }
        if !docs.is_empty() {
            if let Err(e) = self.search.upsert_many(docs) {
                tracing::warn!("search index update failed: {e}");
            }
        }
    }
}

/// Reloads one group's events.
pub(crate) async fn refresh_group(gw: &Gateway, group: u64) -> Result<(), ApiError> {
    let mut after: Option<EventId> = None;
    loop {
        let answer = gw.read(group, Query::Events { after, limit: EVENTS_PAGE_MAX }).await?;
        let Answer::Events { events, more } = answer else {
            return Err(ApiError::internal("the shard answered a different query"));
        };
        after = events.last().map(|e| e.id);
        gw.catalog().put(group, events);
        if !more || after.is_none() {
            return Ok(());
        }
    }
}
