//! Tickets: transfer and check-in.

use crate::ids::{Millis, TicketId};
use crate::outcome::{DomainEvent, Outcome, Rejection};
use crate::records::TicketStatus;
use crate::state::{Fx, State};

impl State {
    pub(crate) fn transfer(
        &mut self,
        ticket_id: TicketId,
        user: &str,
        to_user: &str,
        fx: &mut Fx,
    ) -> Result<Outcome, Rejection> {
        self.check_id("user", user)?;
        self.check_id("to_user", to_user)?;
        if user == to_user {
            return Err(Rejection::InvalidRequest("cannot transfer a ticket to its holder".into()));
        }
        let ticket = self.p.tickets.get_mut(&ticket_id).ok_or(Rejection::TicketNotFound)?;
        if *ticket.holder != *user {
            return Err(Rejection::NotOwner);
        }
        match ticket.status {
            TicketStatus::Valid => {}
            TicketStatus::Used => return Err(Rejection::TicketUsed),
            TicketStatus::Cancelled => return Err(Rejection::TicketCancelled),
        }
        // The version is what the signed code carries: bumping it kills every
        // code printed before this commit.
        ticket.version = ticket
            .version
            .checked_add(1)
            .ok_or_else(|| Rejection::LimitReached("the ticket's versions are used up".into()))?;
        ticket.holder = to_user.into();
        fx.push(DomainEvent::TicketTransferred {
            event: ticket.event,
            ticket: ticket_id,
            from: user.to_string(),
            to: to_user.to_string(),
            version: ticket.version,
        });
        Ok(Outcome::Transferred { ticket: ticket_id, version: ticket.version })
    }

    pub(crate) fn check_in(
        &mut self,
        ticket_id: TicketId,
        version: u32,
        now: Millis,
        fx: &mut Fx,
    ) -> Result<Outcome, Rejection> {
        let ticket = self.p.tickets.get(&ticket_id).ok_or(Rejection::TicketNotFound)?;
        if ticket.status == TicketStatus::Cancelled {
            return Err(Rejection::TicketCancelled);
        }
        if ticket.version != version {
            return Err(Rejection::StaleTicket { current: ticket.version });
        }
        if let Some(at_ms) = ticket.checked_in_at_ms {
            return Err(Rejection::AlreadyCheckedIn { at_ms });
        }
        let (event, seat) = (ticket.event, ticket.seat);
        let label = self.labels(event, &[seat]).pop().expect("one label");
        let ticket = self.p.tickets.get_mut(&ticket_id).expect("looked up above");
        ticket.status = TicketStatus::Used;
        ticket.checked_in_at_ms = Some(now);
        fx.push(DomainEvent::TicketCheckedIn { event, ticket: ticket_id });
        Ok(Outcome::CheckedIn { ticket: ticket_id, event, seat: label })
    }
}
