//! External ids. The state machine numbers everything per shard; outside,
//! an id also names its region group so that a gateway can route a request
//! by the id alone: `evt-2-41` is event 41 of group 2.

use super::http::ApiError;

/// One kind of id, by its prefix.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kind {
    prefix: &'static str,
    not_found: &'static str,
}

pub(crate) const VENUE: Kind = Kind { prefix: "ven", not_found: "venue_not_found" };
pub(crate) const EVENT: Kind = Kind { prefix: "evt", not_found: "event_not_found" };
pub(crate) const HOLD: Kind = Kind { prefix: "hld", not_found: "hold_not_found" };
pub(crate) const BOOKING: Kind = Kind { prefix: "bkg", not_found: "booking_not_found" };
pub(crate) const TICKET: Kind = Kind { prefix: "tkt", not_found: "ticket_not_found" };
pub(crate) const WAITLIST: Kind = Kind { prefix: "wl", not_found: "waitlist_not_found" };

impl Kind {
    pub(crate) fn format(self, group: u64, n: u64) -> String {
        format!("{}-{group}-{n}", self.prefix)
    }

    /// `(group, number)` of an id of this kind, or `None`.
    pub(crate) fn parse(self, id: &str) -> Option<(u64, u64)> {
        let rest = id.strip_prefix(self.prefix)?.strip_prefix('-')?;
        let (group, n) = rest.split_once('-')?;
        let all_digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(group) || !all_digits(n) {
            return None;
        }
        Some((group.parse().ok()?, n.parse().ok()?))
    }

    /// Like [`Kind::parse`], with the kind's 404 for an id that cannot exist.
    pub(crate) fn parse_or_404(self, id: &str) -> Result<(u64, u64), ApiError> {
        self.parse(id).ok_or_else(|| ApiError::not_found(self.not_found, format!("no such id {id:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_other_kinds() {
        let id = EVENT.format(2, 41);
        assert_eq!(id, "evt-2-41");
        assert_eq!(EVENT.parse(&id), Some((2, 41)));
        assert_eq!(HOLD.parse(&id), None);
        for bad in ["evt-2", "evt--1", "evt-a-1", "evt-1-1-1", "evt-1-+1", "evt-99999999999999999999999-1", ""] {
            assert_eq!(EVENT.parse(bad), None, "{bad}");
        }
        assert_eq!(EVENT.parse_or_404("nope").unwrap_err().code, "event_not_found");
    }
}
