//! Payments, bookings and cancellations.
//!
//! The payment saga, as the state machine sees it: `BeginPayment` records an
//! intent before the provider is called; `ConfirmHold` turns a live hold into
//! a booking once the charge succeeded; `FailPayment` records a decline;
//! `RecordRefund` records that money owed back was returned. A charge that
//! cannot become a booking (the hold ran out meanwhile) leaves its intent in
//! `RefundDue`, so no charge is ever kept without a booking.

use std::collections::btree_map::Entry;

use crate::ids::{BookingId, HoldId, Millis, TicketId};
use crate::outcome::{BookingReceipt, DomainEvent, Outcome, Rejection};
use crate::records::{Booking, BookingStatus, HoldState, Intent, IntentState, SharedId, Ticket, TicketStatus};
use crate::state::{Fx, State, SEAT_AVAILABLE, SEAT_BOOKED};

/// The payment intents by id, as `Primary` keeps them.
type Intents = std::collections::BTreeMap<SharedId, Intent>;

impl State {
    pub(crate) fn begin_payment(
        &mut self,
        hold_id: HoldId,
        user: &str,
        intent_id: &str,
        now: Millis,
        fx: &mut Fx,
    ) -> Result<Outcome, Rejection> {
        self.check_id("user", user)?;
        self.check_id("payment intent", intent_id)?;
        // The intents are moved out while the attempt is checked (nothing it
        // calls reads them), so that one search both refuses an id already
        // used and finds the place to record a new one.
        let mut intents = std::mem::take(&mut self.p.intents);
        let result = self.begin_payment_in(&mut intents, hold_id, user, intent_id, now, fx);
        self.p.intents = intents;
        result
    }

    fn begin_payment_in(
        &mut self,
        intents: &mut Intents,
        hold_id: HoldId,
        user: &str,
        intent_id: &str,
        now: Millis,
        fx: &mut Fx,
    ) -> Result<Outcome, Rejection> {
        let intents_len = intents.len();
        // One allocation for the id, shared by the hold, the table's key and
        // the intent (a refused attempt gives it back).
        let slot = match intents.entry(SharedId::from(intent_id)) {
            Entry::Occupied(existing) => {
                return Err(Rejection::PaymentConflict(format!(
                    "intent already exists for hold {}",
                    existing.get().hold
                )))
            }
            Entry::Vacant(slot) => slot,
        };
        self.own_hold(hold_id, user, now, fx)?;
        let hold = &self.p.holds[&hold_id];
        if hold.state != HoldState::Active {
            return Err(self.not_live(hold));
        }
        let limits = self.p.limits;
        if hold.intents.len() >= limits.hold_payment_attempts_max as usize {
            return Err(Rejection::PaymentAttemptsExceeded { max: limits.hold_payment_attempts_max });
        }
        if intents_len >= limits.payment_intents_max as usize {
            return Err(Rejection::LimitReached(format!("payment_intents_max = {}", limits.payment_intents_max)));
        }
        if self.p.bookings.len() >= limits.bookings_max as usize {
            return Err(Rejection::LimitReached(format!("bookings_max = {}", limits.bookings_max)));
        }
        let booking = match hold.booking {
            Some(b) => b,
            None => {
                let b = BookingId(self.alloc_id());
                self.ix.reserved_bookings.insert(b, hold_id);
                b
            }
        };
        let hold = self.p.holds.get_mut(&hold_id).expect("looked up above");
        hold.booking = Some(booking);
        let id = slot.key().clone();
        hold.intents.push(id.clone());
        let amount = hold.total_price;
        slot.insert(Intent {
            id,
            hold: hold_id,
            booking,
            user: hold.user.clone(),
            amount,
            state: IntentState::Pending,
            booked: false,
            refund_amount: 0,
            created_at_ms: now,
            updated_at_ms: now,
            reason: String::new(),
        });
        let currency = self.p.events[&hold.event].settings.currency.clone();
        Ok(Outcome::PaymentStarted { booking, amount, currency })
    }

    pub(crate) fn confirm(
        &mut self,
        hold_id: HoldId,
        user: &str,
        intent_id: &str,
        now: Millis,
        fx: &mut Fx,
    ) -> Result<Outcome, Rejection> {
        self.check_id("user", user)?;
        // Moved out while the confirm runs (nothing it calls reads the
        // intents), so that the intent is found once for both the checks and
        // the capture.
        let mut intents = std::mem::take(&mut self.p.intents);
        let result = match intents.get_mut(intent_id) {
            Some(intent) => self.confirm_intent(intent, hold_id, user, now, fx),
            None => Err(Rejection::PaymentNotFound),
        };
        self.p.intents = intents;
        result
    }

    fn confirm_intent(
        &mut self,
        intent: &mut Intent,
        hold_id: HoldId,
        user: &str,
        now: Millis,
        fx: &mut Fx,
    ) -> Result<Outcome, Rejection> {
        if intent.hold != hold_id {
            return Err(Rejection::PaymentConflict("intent belongs to another hold".into()));
        }
        if *intent.user != *user {
            return Err(Rejection::NotOwner);
        }
        match intent.state {
            IntentState::Pending => {}
            // Confirming a captured intent again (a reconciler racing the
            // gateway) answers with the booking it made.
            IntentState::Captured => return Ok(Outcome::Booked(self.receipt(intent.booking))),
            // The charge was captured after the intent was recorded as failed
            // (a slow charge, and a reconciler that found nothing charged
            // yet). The intent no longer pays for the hold, whatever its
            // state: the money is owed back, and the log must say so.
            IntentState::Declined => {
                if let Some(hold) = self.p.holds.get(&hold_id) {
                    let event = hold.event;
                    self.touch(event, now, fx);
                }
                let reason = match self.p.holds.get(&hold_id) {
                    None => Rejection::HoldNotFound,
                    Some(hold) if hold.state != HoldState::Active => self.not_live(hold),
                    Some(_) => Rejection::PaymentConflict("the intent was recorded as failed".into()),
                };
                let amount = owe_refund_on(intent, intent.amount, now, fx);
                return Ok(Outcome::NotBooked { reason, refund_due: amount });
            }
            other => return Err(Rejection::PaymentConflict(format!("intent is {other:?}"))),
        }
        if !self.p.holds.contains_key(&hold_id) {
            // The hold finished and was forgotten while the charge's outcome
            // was unknown: the money was taken for nothing, so owe it back.
            let amount = owe_refund_on(intent, intent.amount, now, fx);
            return Ok(Outcome::NotBooked { reason: Rejection::HoldNotFound, refund_due: amount });
        }
        self.own_hold(hold_id, user, now, fx)?;
        let hold = &self.p.holds[&hold_id];
        if hold.state != HoldState::Active {
            // The money was taken but the seats cannot be had: owe it back.
            let reason = self.not_live(hold);
            let amount = owe_refund_on(intent, intent.amount, now, fx);
            return Ok(Outcome::NotBooked { reason, refund_due: amount });
        }
        if self.p.bookings.len() >= self.p.limits.bookings_max as usize {
            let reason = Rejection::LimitReached(format!("bookings_max = {}", self.p.limits.bookings_max));
            let amount = owe_refund_on(intent, intent.amount, now, fx);
            return Ok(Outcome::NotBooked { reason, refund_due: amount });
        }
        let booking_id = hold.booking.expect("a payment attempt reserved the booking id");
        let (event, seats, total_price) = (hold.event, hold.seats.clone(), hold.total_price);
        // The hold's user id (equal to `user`, checked above) is shared by
        // the tickets, the booking and its index; so is the intent's id.
        let holder = hold.user.clone();
        self.finish_hold(hold_id, HoldState::Confirmed, now, fx);
        self.ix.reserved_bookings.remove(&booking_id);
        // The event and the receipt name the same seats: label them once.
        let labels = self.labels(event, &seats);
        let mut tickets = Vec::with_capacity(seats.len());
        for &seat in &seats {
            let id = TicketId(self.alloc_id());
            tickets.push(id);
            self.p.tickets.insert(
                id,
                Ticket {
                    id,
                    booking: booking_id,
                    event,
                    seat,
                    holder: holder.clone(),
                    version: 1,
                    status: TicketStatus::Valid,
                    checked_in_at_ms: None,
                },
            );
        }
        let booking = Booking {
            id: booking_id,
            event,
            hold: hold_id,
            user: holder,
            seats,
            tickets,
            total_price,
            intent: intent.id.clone(),
            created_at_ms: now,
            status: BookingStatus::Confirmed,
            cancelled_at_ms: None,
            refund_percent: 0,
            refund_amount: 0,
        };
        intent.state = IntentState::Captured;
        intent.booked = true;
        intent.updated_at_ms = now;
        fx.push(DomainEvent::SeatsBooked { event, booking: booking_id, user: user.to_string(), seats: labels.clone() });
        // Made from the booking before it is stored: no lookup of what was just made.
        let receipt = self.receipt_labelled(&booking, labels);
        self.p.bookings.insert(booking_id, booking);
        self.ix.user_bookings.insert((crate::dedup::user_key(user), booking_id));
        self.room_user_booked(event, user);
        Ok(Outcome::Booked(receipt))
    }

    /// Marks money owed back on an intent; returns the amount.
    fn owe_refund(&mut self, intent_id: &str, amount: u64, now: Millis, fx: &mut Fx) -> u64 {
        let intent = self.p.intents.get_mut(intent_id).expect("caller looked it up");
        owe_refund_on(intent, amount, now, fx)
    }

    pub(crate) fn receipt(&self, booking_id: BookingId) -> BookingReceipt {
        let b = &self.p.bookings[&booking_id];
        self.receipt_labelled(b, self.labels(b.event, &b.seats))
    }

    /// The receipt of a booking whose seat labels the caller already made.
    fn receipt_labelled(&self, b: &Booking, labels: Vec<String>) -> BookingReceipt {
        BookingReceipt {
            booking: b.id,
            event: b.event,
            hold: b.hold,
            // The tickets take copies and `seats` the labels themselves: one
            // vector fewer than copying both.
            tickets: b.tickets.iter().copied().zip(labels.iter().cloned()).collect(),
            seats: labels,
            total_price: b.total_price,
            currency: self.p.events[&b.event].settings.currency.clone(),
        }
    }

    pub(crate) fn fail_payment(
        &mut self,
        intent_id: &str,
        reason: &str,
        release_hold: bool,
        now: Millis,
        fx: &mut Fx,
    ) -> Result<Outcome, Rejection> {
        if reason.len() > self.p.limits.text_bytes_max as usize {
            return Err(Rejection::InvalidRequest("reason is too long".into()));
        }
        let intent = self.p.intents.get(intent_id).ok_or(Rejection::PaymentNotFound)?;
        match intent.state {
            IntentState::Pending => {}
            IntentState::Declined => return Ok(Outcome::PaymentFailed { hold_released: false }),
            other => return Err(Rejection::PaymentConflict(format!("intent is {other:?}"))),
        }
        let hold_id = intent.hold;
        let intent = self.p.intents.get_mut(intent_id).expect("looked up above");
        intent.state = IntentState::Declined;
        intent.reason = reason.to_string();
        intent.updated_at_ms = now;
        let mut hold_released = false;
        if let Some(hold) = self.p.holds.get(&hold_id) {
            let event = hold.event;
            self.touch(event, now, fx);
            if release_hold && self.p.holds[&hold_id].state == HoldState::Active {
                self.release_after_payment(hold_id, now, fx);
                hold_released = true;
            }
        } else {
            // Settled, and its hold is forgotten: nothing refers to it any
            // more (pruning the hold kept it only while it was unsettled).
            self.p.intents.remove(intent_id);
        }
        Ok(Outcome::PaymentFailed { hold_released })
    }

    pub(crate) fn record_refund(&mut self, intent_id: &str, now: Millis) -> Result<Outcome, Rejection> {
        let intent = self.p.intents.get_mut(intent_id).ok_or(Rejection::PaymentNotFound)?;
        match intent.state {
            IntentState::RefundDue => {}
            IntentState::Refunded => return Ok(Outcome::RefundRecorded { amount: intent.refund_amount }),
            other => return Err(Rejection::PaymentConflict(format!("no refund is due on a {other:?} intent"))),
        }
        intent.state = IntentState::Refunded;
        intent.updated_at_ms = now;
        let amount = intent.refund_amount;
        // An intent that paid for nothing and whose hold is forgotten has no
        // one left to refer to it.
        if intent.is_settled() && !self.p.holds.contains_key(&intent.hold) {
            self.p.intents.remove(intent_id);
        }
        Ok(Outcome::RefundRecorded { amount })
    }

    pub(crate) fn cancel(
        &mut self,
        booking_id: BookingId,
        user: &str,
        now: Millis,
        fx: &mut Fx,
    ) -> Result<Outcome, Rejection> {
        self.check_id("user", user)?;
        let booking = self.p.bookings.get(&booking_id).ok_or(Rejection::BookingNotFound)?;
        if *booking.user != *user {
            return Err(Rejection::NotOwner);
        }
        if booking.status == BookingStatus::Cancelled {
            return Err(Rejection::AlreadyCancelled);
        }
        // A used ticket is the stronger reason, so it is reported whichever
        // ticket of the booking it is.
        let tickets = || booking.tickets.iter().map(|t| &self.p.tickets[t]);
        if tickets().any(|t| t.status == TicketStatus::Used) {
            return Err(Rejection::TicketUsed);
        }
        // Refunding a booking whose ticket was given away would refund a
        // seat someone else now holds.
        if tickets().any(|t| t.holder != booking.user) {
            return Err(Rejection::TicketTransferred);
        }
        let settings = &self.p.events[&booking.event].settings;
        let mut percent =
            refund_percent(&settings.refund_policy, settings.starts_at_ms, now).ok_or(Rejection::CancellationClosed)?;
        if crate::planted::planted(crate::planted::Bug::FullRefundAlways) {
            percent = 100;
        }
        let refund_amount = (u128::from(booking.total_price) * u128::from(percent) / 100) as u64;
        let (event, intent_id) = (booking.event, booking.intent.clone());
        self.touch(event, now, fx);
        let booking = self.p.bookings.get_mut(&booking_id).expect("looked up above");
        booking.status = BookingStatus::Cancelled;
        booking.cancelled_at_ms = Some(now);
        booking.refund_percent = percent;
        booking.refund_amount = refund_amount;
        let seats = booking.seats.clone();
        for ticket in &booking.tickets {
            self.p.tickets.get_mut(ticket).expect("booking's ticket").status = TicketStatus::Cancelled;
        }
        let ev = self.p.events.get_mut(&event).expect("booking's event");
        let layout = &self.p.venues[&ev.settings.venue].derived;
        for &seat in &seats {
            assert_eq!(ev.seats.get(seat), SEAT_BOOKED, "a confirmed booking's seat is not booked");
            State::set_seat(ev, layout, seat, SEAT_AVAILABLE);
        }
        fx.push(DomainEvent::BookingCancelled {
            event,
            booking: booking_id,
            user: user.to_string(),
            seats: self.labels(event, &seats),
            refund_amount,
        });
        if refund_amount > 0 {
            self.owe_refund(&intent_id, refund_amount, now, fx);
        }
        self.offer_waitlist(event, now, fx);
        Ok(Outcome::Cancelled { booking: booking_id, refund_percent: percent, refund_amount })
    }
}

/// Marks money owed back on `intent` (whose id names it in the event);
/// returns the amount.
fn owe_refund_on(intent: &mut Intent, amount: u64, now: Millis, fx: &mut Fx) -> u64 {
    intent.state = IntentState::RefundDue;
    intent.refund_amount = amount;
    intent.updated_at_ms = now;
    fx.push(DomainEvent::RefundDue { intent: intent.id.to_string(), amount });
    amount
}

/// The refund percent the policy gives at `now`, or `None` when it allows
/// no cancellation. Tiers are sorted by `min_hours_before`, largest first.
pub(crate) fn refund_percent(policy: &[crate::command::RefundTier], starts_at_ms: Millis, now: Millis) -> Option<u8> {
    // At its start time the event has started (holds and offers stop then
    // too), so not even a zero-hour tier applies.
    let before_ms = starts_at_ms.checked_sub(now).filter(|&ms| ms > 0)?;
    policy.iter().find(|tier| before_ms >= u64::from(tier.min_hours_before) * 3_600_000).map(|tier| tier.percent)
}
