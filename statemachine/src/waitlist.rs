//! Waitlists for sold-out events. Seats freed by a release, an expiry or a
//! cancellation are offered, in the same command, to waiting users in FIFO
//! order as holds they own (first fit: an entry that wants more seats than
//! are free does not block the entries behind it).

use crate::best::{self, Want};
use crate::ids::{EventId, Millis, WaitlistId};
use crate::outcome::{DomainEvent, HoldOrigin, Outcome, Rejection};
use crate::records::WaitEntry;
use crate::state::{Fx, State};

impl State {
    pub(crate) fn join_waitlist(
        &mut self,
        event_id: EventId,
        user: &str,
        count: u32,
        category: &str,
        now: Millis,
        fx: &mut Fx,
    ) -> Result<Outcome, Rejection> {
        self.check_id("user", user)?;
        let event = self.p.events.get(&event_id).ok_or(Rejection::EventNotFound)?;
        let layout = &self.p.venues[&event.settings.venue].derived;
        if count == 0 {
            return Err(Rejection::InvalidSeats { unknown: vec![], duplicate: vec![] });
        }
        let max = event.settings.max_seats_per_hold;
        if count > max {
            return Err(Rejection::TooManySeats { max });
        }
        let category = self.category_of(layout, category)?;
        if event.settings.sale_over(now) {
            return Err(Rejection::NotOnSale);
        }
        // An entry becomes a hold without asking the room again, so joining
        // is gated exactly like holding: otherwise the waitlist would be a
        // way around the queue.
        self.check_admitted(event_id, user, now)?;
        self.touch(event_id, now, fx);
        let fx_len = fx.len();
        if let Some(&waitlist) = self.ix.user_waitlist.get(&(user.to_string(), event_id)) {
            return Err(Rejection::AlreadyWaitlisted { waitlist });
        }
        let event = &self.p.events[&event_id];
        if event.counts[category as usize].available >= count {
            return Err(Rejection::NotSoldOut);
        }
        let max_entries = self.p.limits.event_waitlist_entries_max;
        if event.waitlist.len() >= max_entries as usize {
            return Err(Rejection::LimitReached(format!("event_waitlist_entries_max = {max_entries}")));
        }
        let id = WaitlistId(self.alloc_id());
        let event = self.p.events.get_mut(&event_id).expect("looked up above");
        event.waitlist.insert(id);
        let position = event.waitlist.len() as u32;
        self.ix.user_waitlist.insert((user.to_string(), event_id), id);
        self.p
            .waitlist
            .insert(id, WaitEntry { id, event: event_id, user: user.to_string(), count, category, joined_at_ms: now });
        assert_eq!(fx.len(), fx_len, "joining a waitlist emits no events");
        Ok(Outcome::WaitlistJoined { waitlist: id, position })
    }

    pub(crate) fn leave_waitlist(&mut self, waitlist: WaitlistId, user: &str) -> Result<Outcome, Rejection> {
        self.check_id("user", user)?;
        let entry = self.p.waitlist.get(&waitlist).ok_or(Rejection::WaitlistNotFound)?;
        if entry.user != user {
            return Err(Rejection::NotOwner);
        }
        self.remove_wait_entry(waitlist);
        Ok(Outcome::WaitlistLeft { waitlist })
    }

    fn remove_wait_entry(&mut self, waitlist: WaitlistId) -> WaitEntry {
        let entry = self.p.waitlist.remove(&waitlist).expect("caller checked the entry");
        assert!(self.p.events.get_mut(&entry.event).expect("entry's event").waitlist.remove(&waitlist));
        assert_eq!(self.ix.user_waitlist.remove(&(entry.user.clone(), entry.event)), Some(waitlist));
        entry
    }

    /// Offers an event's available seats to its waitlist, FIFO, first fit.
    pub(crate) fn offer_waitlist(&mut self, event_id: EventId, now: Millis, fx: &mut Fx) {
        let event = &self.p.events[&event_id];
        if event.waitlist.is_empty() || event.settings.sale_over(now) {
            return;
        }
        let scan = self.p.limits.waitlist_scan_entries_max as usize;
        let candidates: Vec<WaitlistId> = event.waitlist.iter().take(scan).copied().collect();
        for waitlist in candidates {
            let event = &self.p.events[&event_id];
            if event.counts.iter().all(|c| c.available == 0) {
                break;
            }
            let entry = &self.p.waitlist[&waitlist];
            if event.counts[entry.category as usize].available < entry.count {
                continue;
            }
            // A waiting user who may not take a hold now (one already held
            // on this event, or a bound reached) keeps their place for later.
            if self.may_hold(&entry.user, event_id, now).is_err() {
                continue;
            }
            let layout = &self.p.venues[&event.settings.venue].derived;
            let want = Want { category: entry.category, count: entry.count, together: false, accessible: false };
            let Ok(seats) = best::choose(layout, &event.seats, want) else { continue };
            // A hold that cannot be made (its price or expiry does not fit)
            // leaves the entry waiting, as a bound reached does.
            let user = entry.user.clone();
            let Ok(receipt) = self.create_hold(event_id, &user, seats, HoldOrigin::Waitlist, now, fx) else { continue };
            let entry = self.remove_wait_entry(waitlist);
            fx.push(DomainEvent::WaitlistOffered { event: event_id, waitlist, user: entry.user, hold: receipt.hold });
        }
    }
}
