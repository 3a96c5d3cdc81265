//! Holds: granting, releasing, extending and expiring seat leases.

use std::ops::Bound;

use crate::best::{self, Shortfall, Want};
use crate::command::Selection;
use crate::ids::{EventId, HoldId, Millis};
use crate::limits::{HOLD_LIFETIME_TTLS_MAX, REJECTION_LABELS_MAX};
use crate::outcome::{DomainEvent, HoldOrigin, HoldReceipt, Outcome, Rejection, ReleaseReason};
use crate::records::{Hold, HoldState, SharedId};
use crate::state::{Fx, State, SEAT_AVAILABLE, SEAT_BOOKED, SEAT_HELD};

impl State {
    pub(crate) fn hold_seats(
        &mut self,
        event_id: EventId,
        user: &str,
        selection: &Selection,
        now: Millis,
        fx: &mut Fx,
    ) -> Result<Outcome, Rejection> {
        self.check_id("user", user)?;
        let event = self.p.events.get(&event_id).ok_or(Rejection::EventNotFound)?;
        let venue = &self.p.venues[&event.settings.venue];
        let layout = &venue.derived;
        let max = event.settings.max_seats_per_hold;
        // Shape of the request first: bad input is rejected before anything,
        // including expiry, happens.
        let wanted = match selection {
            Selection::Seats(labels) => {
                if labels.is_empty() {
                    return Err(Rejection::InvalidSeats { unknown: vec![], duplicate: vec![] });
                }
                if labels.len() > max as usize {
                    return Err(Rejection::TooManySeats { max });
                }
                // A label longer than any seat's is refused up front as the
                // unknown seat it is (the contract's `invalid_seats`), naming
                // only its first bytes: the rejection is remembered.
                let label_max = seat_label_bytes_max(&self.p.limits);
                if let Some(label) = labels.iter().find(|label| label.len() > label_max) {
                    let unknown = vec![crate::catalog::shown(label, label_max)];
                    return Err(Rejection::InvalidSeats { unknown, duplicate: vec![] });
                }
                let mut seats = Vec::with_capacity(labels.len());
                let mut unknown = Vec::new();
                // Unknown labels beyond the ones named still refuse the hold.
                let mut unknown_more = false;
                let mut last_row = None;
                for label in labels {
                    match layout.parse_after(&venue.spec, label, &mut last_row) {
                        Some(seat) => seats.push((seat, label)),
                        None if unknown.len() < REJECTION_LABELS_MAX => unknown.push(label.clone()),
                        None => unknown_more = true,
                    }
                }
                seats.sort_unstable();
                let mut duplicate: Vec<String> =
                    seats.windows(2).filter(|w| w[0].0 == w[1].0).map(|w| w[1].1.clone()).collect();
                duplicate.dedup();
                duplicate.truncate(REJECTION_LABELS_MAX);
                if !unknown.is_empty() || unknown_more || !duplicate.is_empty() {
                    return Err(Rejection::InvalidSeats { unknown, duplicate });
                }
                Ok(seats.into_iter().map(|(s, _)| s).collect::<Vec<u32>>())
            }
            Selection::Best { count, category, together, accessible } => {
                if *count == 0 {
                    return Err(Rejection::InvalidSeats { unknown: vec![], duplicate: vec![] });
                }
                if *count > max {
                    return Err(Rejection::TooManySeats { max });
                }
                let category = self.category_of(layout, category)?;
                Err(Want { category, count: *count, together: *together, accessible: *accessible })
            }
        };
        if !event.settings.on_sale(now) {
            return Err(Rejection::NotOnSale);
        }
        self.check_admitted(event_id, user, now)?;
        self.touch(event_id, now, fx);
        // From here on a rejection must leave no trace but the expiry above,
        // which is no change at all in what anyone can observe.
        let fx_len = fx.len();
        let result = self.hold_checked(event_id, user, wanted, now, fx);
        if result.is_err() {
            assert_eq!(fx.len(), fx_len);
        }
        result
    }

    fn hold_checked(
        &mut self,
        event_id: EventId,
        user: &str,
        wanted: Result<Vec<u32>, Want>,
        now: Millis,
        fx: &mut Fx,
    ) -> Result<Outcome, Rejection> {
        self.may_hold(user, event_id, now)?;
        let event = &self.p.events[&event_id];
        let layout = &self.p.venues[&event.settings.venue].derived;
        let seats = match wanted {
            Ok(seats) => {
                let taken: Vec<u32> = seats.iter().copied().filter(|&s| event.seats.get(s) != SEAT_AVAILABLE).collect();
                if !taken.is_empty() {
                    return Err(Rejection::SeatsUnavailable { seats: self.labels(event_id, &taken) });
                }
                seats
            }
            Err(want) => match best::choose(layout, &event.seats, want) {
                Ok(seats) => seats,
                Err(Shortfall::TooFew) => return Err(Rejection::SoldOut),
                Err(Shortfall::NotTogether) => return Err(Rejection::NotTogether { count: want.count }),
            },
        };
        let receipt = self.create_hold(event_id, user, seats, HoldOrigin::User, now, fx)?;
        Ok(Outcome::Held(receipt))
    }

    /// The index of a category of `layout`. An unknown name is echoed in
    /// the rejection only if it is within the text bound (no category is
    /// longer).
    pub(crate) fn category_of(&self, layout: &crate::layout::Layout, category: &str) -> Result<u16, Rejection> {
        let text_max = self.p.limits.text_bytes_max;
        if category.len() > text_max as usize {
            return Err(Rejection::InvalidRequest(format!("category is longer than {text_max} bytes")));
        }
        layout.category(category).ok_or_else(|| Rejection::UnknownCategory(category.to_string()))
    }

    /// Whether `user` may take a new hold on `event` at `now`: one live hold
    /// per user per event (waitlist offers included), and the per-user and
    /// shard-wide bounds on live holds. A hold whose lease ran out by `now`
    /// does not count against the bounds, even before a command released it.
    pub(crate) fn may_hold(&self, user: &str, event: EventId, now: Millis) -> Result<(), Rejection> {
        // One scan of the user's holds answers both per-user checks.
        let (on_event, user_live) = self.user_holds_at(user, event, now);
        if let Some(hold) = on_event {
            return Err(Rejection::HoldLimit { hold });
        }
        self.check_capacity(user_live, now)
    }

    /// The user's hold on `event` in the live-hold index, if any, and how
    /// many of the user's holds are live at `now`.
    fn user_holds_at(&self, user: &str, event: EventId, now: Millis) -> (Option<HoldId>, usize) {
        let (mut on_event, mut live) = (None, 0);
        // One search from the user's first possible key, rather than a
        // range that looks up both ends.
        let key = crate::dedup::user_key(user);
        let entries = self.ix.user_holds.range((Bound::Included((key, EventId(0), HoldId(0))), Bound::Unbounded));
        for &(_, held_on, hold_id) in entries.take_while(|(k, _, _)| *k == key) {
            let hold = &self.p.holds[&hold_id];
            if *hold.user != *user {
                continue;
            }
            if held_on == event {
                on_event = Some(hold_id);
            }
            if hold.expires_at_ms > now {
                live += 1;
            }
        }
        (on_event, live)
    }

    /// The bounds of [`State::may_hold`] for a user with `user_live` live holds.
    fn check_capacity(&self, user_live: usize, now: Millis) -> Result<(), Rejection> {
        let limits = &self.p.limits;
        let (held, max) = (self.ix.expiry.len(), limits.holds_live_max as usize);
        if held >= max {
            // Counting more due holds than `held - max + 1` cannot change the answer.
            let due = self.ix.expiry.range(..=(now, HoldId(u64::MAX))).take(held - max + 1).count();
            if held - due >= max {
                return Err(Rejection::LimitReached(format!("holds_live_max = {}", limits.holds_live_max)));
            }
        }
        if user_live >= limits.user_holds_live_max as usize {
            return Err(Rejection::UserHoldLimit { max: limits.user_holds_live_max });
        }
        Ok(())
    }

    /// Creates a live hold on seats the caller checked to be available.
    ///
    /// Refuses, changing nothing, a hold whose total price or expiry does not
    /// fit 64 bits: prices are bounded when an event is created, but events
    /// of a log or snapshot written before that bound may still carry any
    /// price, and the entry's time is whatever the log says.
    pub(crate) fn create_hold(
        &mut self,
        event_id: EventId,
        user: &str,
        seats: Vec<u32>,
        origin: HoldOrigin,
        now: Millis,
        fx: &mut Fx,
    ) -> Result<HoldReceipt, Rejection> {
        assert!(!seats.is_empty());
        assert!(seats.windows(2).all(|w| w[0] < w[1]), "hold seats must be sorted and distinct");
        let event = &self.p.events[&event_id];
        let layout = &self.p.venues[&event.settings.venue].derived;
        let mut total_price: u64 = 0;
        let mut row = None;
        for &seat in &seats {
            let price = event.settings.prices[layout.category_of_after(seat, &mut row) as usize];
            total_price = total_price
                .checked_add(price)
                .ok_or_else(|| Rejection::InvalidEvent("the seats' total price does not fit 64 bits".into()))?;
        }
        let expires_at_ms = now
            .checked_add(u64::from(event.settings.hold_ttl_secs) * 1000)
            .ok_or_else(|| Rejection::InvalidRequest("the entry's time is out of range".into()))?;
        let id = HoldId(self.alloc_id());
        let event = self.p.events.get_mut(&event_id).expect("caller checked the event");
        let venue = &self.p.venues[&event.settings.venue];
        let mut row = None;
        for &seat in &seats {
            assert_eq!(event.seats.get(seat), SEAT_AVAILABLE, "holding a seat that is not available");
            // Looked up once more for the counters: the price loop above
            // must finish before anything changes.
            let category = venue.derived.category_of_after(seat, &mut row);
            State::set_seat_of(event, category, seat, SEAT_HELD);
        }
        event.live_holds.insert((expires_at_ms, id));
        let currency = event.settings.currency.clone();
        let labels = venue.derived.labels(&venue.spec, &seats);
        let user_id = SharedId::from(user);
        assert!(self.ix.user_holds.insert((crate::dedup::user_key(user), event_id, id)), "hold id {id} reused");
        self.ix.expiry.insert((expires_at_ms, id));
        self.p.holds.insert(
            id,
            Hold {
                id,
                event: event_id,
                user: user_id,
                seats,
                origin,
                created_at_ms: now,
                expires_at_ms,
                extensions: 0,
                total_price,
                state: HoldState::Active,
                finished_at_ms: 0,
                booking: None,
                intents: Vec::new(),
            },
        );
        fx.push(DomainEvent::SeatsHeld {
            event: event_id,
            hold: id,
            user: user.to_string(),
            seats: labels.clone(),
            origin,
        });
        Ok(HoldReceipt {
            hold: id,
            event: event_id,
            user: user.to_string(),
            seats: labels,
            expires_at_ms,
            total_price,
            currency,
            origin,
        })
    }

    /// Ends a live hold: its seats become available (released, expired) or
    /// booked (confirmed). The caller offers freed seats to the waitlist.
    pub(crate) fn finish_hold(&mut self, hold_id: HoldId, to: HoldState, now: Millis, fx: &mut Fx) {
        self.finish_hold_because(hold_id, to, ReleaseReason::Released, now, fx);
    }

    fn finish_hold_because(&mut self, hold_id: HoldId, to: HoldState, reason: ReleaseReason, now: Millis, fx: &mut Fx) {
        assert_ne!(to, HoldState::Active);
        let hold = self.p.holds.get_mut(&hold_id).expect("finishing an unknown hold");
        assert_eq!(hold.state, HoldState::Active, "finishing a hold that is not live");
        hold.state = to;
        hold.finished_at_ms = now;
        let event = self.p.events.get_mut(&hold.event).expect("hold of an unknown event");
        let venue = &self.p.venues[&event.settings.venue];
        let seat_to = if to == HoldState::Confirmed { SEAT_BOOKED } else { SEAT_AVAILABLE };
        let mut row = None;
        for &seat in &hold.seats {
            assert_eq!(event.seats.get(seat), SEAT_HELD, "a live hold's seat is not held");
            State::set_seat_of(event, venue.derived.category_of_after(seat, &mut row), seat, seat_to);
        }
        assert!(event.live_holds.remove(&(hold.expires_at_ms, hold_id)));
        assert!(self.ix.expiry.remove(&(hold.expires_at_ms, hold_id)));
        assert!(self.ix.user_holds.remove(&(crate::dedup::user_key(&hold.user), hold.event, hold_id)));
        self.ix.finished.insert((now, hold_id));
        let labels = || venue.derived.labels(&venue.spec, &hold.seats);
        match to {
            HoldState::Expired => fx.push(DomainEvent::SeatsExpired {
                event: hold.event,
                hold: hold_id,
                user: hold.user.to_string(),
                seats: labels(),
            }),
            HoldState::Released => fx.push(DomainEvent::SeatsReleased {
                event: hold.event,
                hold: hold_id,
                user: hold.user.to_string(),
                seats: labels(),
                reason,
            }),
            HoldState::Confirmed | HoldState::Active => {}
        }
    }

    /// Why a hold that is not live cannot be used.
    pub(crate) fn not_live(&self, hold: &Hold) -> Rejection {
        match hold.state {
            HoldState::Active => panic!("not_live called on a live hold"),
            HoldState::Confirmed => Rejection::HoldConfirmed,
            HoldState::Released => Rejection::HoldReleased,
            HoldState::Expired => {
                let seats = &self.p.events[&hold.event].seats;
                let taken: Vec<u32> = hold.seats.iter().copied().filter(|&s| seats.get(s) != SEAT_AVAILABLE).collect();
                if taken.is_empty() {
                    Rejection::HoldExpired
                } else {
                    Rejection::SeatsLost { seats: self.labels(hold.event, &taken) }
                }
            }
        }
    }

    /// Looks up a hold owned by `user` and brings its event up to `now`.
    pub(crate) fn own_hold(&mut self, hold_id: HoldId, user: &str, now: Millis, fx: &mut Fx) -> Result<(), Rejection> {
        let hold = self.p.holds.get(&hold_id).ok_or(Rejection::HoldNotFound)?;
        if *hold.user != *user {
            return Err(Rejection::NotOwner);
        }
        let event = hold.event;
        self.touch(event, now, fx);
        Ok(())
    }

    pub(crate) fn release(
        &mut self,
        hold_id: HoldId,
        user: &str,
        now: Millis,
        fx: &mut Fx,
    ) -> Result<Outcome, Rejection> {
        self.check_id("user", user)?;
        self.own_hold(hold_id, user, now, fx)?;
        let hold = &self.p.holds[&hold_id];
        match hold.state {
            HoldState::Active => {
                let event = hold.event;
                self.finish_hold(hold_id, HoldState::Released, now, fx);
                self.offer_waitlist(event, now, fx);
                Ok(Outcome::Released { hold: hold_id })
            }
            HoldState::Confirmed => Err(Rejection::HoldConfirmed),
            // Releasing a hold that is already gone is a no-op: DELETE is idempotent.
            HoldState::Released | HoldState::Expired => Ok(Outcome::Released { hold: hold_id }),
        }
    }

    /// Releases a live hold because its payment failed for good.
    pub(crate) fn release_after_payment(&mut self, hold_id: HoldId, now: Millis, fx: &mut Fx) {
        let event = self.p.holds[&hold_id].event;
        self.finish_hold_because(hold_id, HoldState::Released, ReleaseReason::PaymentFailed, now, fx);
        self.offer_waitlist(event, now, fx);
    }

    pub(crate) fn extend(
        &mut self,
        hold_id: HoldId,
        user: &str,
        secs: u32,
        now: Millis,
        fx: &mut Fx,
    ) -> Result<Outcome, Rejection> {
        self.check_id("user", user)?;
        let ttl_secs = {
            let hold = self.p.holds.get(&hold_id).ok_or(Rejection::HoldNotFound)?;
            self.p.events[&hold.event].settings.hold_ttl_secs
        };
        if secs == 0 || secs > ttl_secs {
            return Err(Rejection::InvalidRequest(format!("extension must be 1..={ttl_secs} seconds")));
        }
        self.own_hold(hold_id, user, now, fx)?;
        let hold = &self.p.holds[&hold_id];
        if hold.state != HoldState::Active {
            return Err(self.not_live(hold));
        }
        let max = self.p.limits.hold_extensions_max;
        if hold.extensions >= max {
            return Err(Rejection::ExtensionLimit { max });
        }
        // Saturating: both are caps, and a cap past the end of time is the
        // end of time (`secs` and the TTL are at most an hour).
        let lifetime_end = hold.created_at_ms.saturating_add(HOLD_LIFETIME_TTLS_MAX * u64::from(ttl_secs) * 1000);
        let wanted = hold.expires_at_ms.max(now.saturating_add(u64::from(secs) * 1000));
        let new_expiry = wanted.min(lifetime_end);
        if new_expiry <= hold.expires_at_ms {
            return Err(Rejection::ExtensionLimit { max });
        }
        let (old_expiry, event) = (hold.expires_at_ms, hold.event);
        let hold = self.p.holds.get_mut(&hold_id).expect("looked up above");
        hold.expires_at_ms = new_expiry;
        hold.extensions += 1;
        let ev = self.p.events.get_mut(&event).expect("hold's event");
        assert!(ev.live_holds.remove(&(old_expiry, hold_id)));
        ev.live_holds.insert((new_expiry, hold_id));
        assert!(self.ix.expiry.remove(&(old_expiry, hold_id)));
        self.ix.expiry.insert((new_expiry, hold_id));
        Ok(Outcome::Extended { hold: hold_id, expires_at_ms: new_expiry })
    }

    /// Expires up to `holds_max` due holds across the shard, oldest lease first.
    pub(crate) fn sweep(&mut self, holds_max: u32, now: Millis, fx: &mut Fx) -> Outcome {
        let cap = holds_max.min(self.p.limits.sweep_holds_max) as usize;
        let mut expired = Vec::new();
        let mut events = std::collections::BTreeSet::new();
        while expired.len() < cap {
            let Some(&(expires_at, hold)) = self.ix.expiry.first() else { break };
            if expires_at > now {
                break;
            }
            events.insert(self.p.holds[&hold].event);
            self.finish_hold(hold, HoldState::Expired, now, fx);
            expired.push(hold);
        }
        for event in events {
            self.offer_waitlist(event, now, fx);
        }
        let more = self.ix.expiry.first().is_some_and(|&(at, _)| at <= now);
        Outcome::Swept { holds: expired, more }
    }
}

/// The longest label a seat can have: `{section}-{row}-{number}`, both
/// names within the text bound and a number of at most ten digits.
fn seat_label_bytes_max(limits: &crate::limits::Limits) -> usize {
    2 * limits.text_bytes_max as usize + 12
}
