//! How times and money read in `ticketd`'s output and flags: RFC 3339 in
//! UTC and integer minor units with an ISO 4217 code, as in the API contract.

use statemachine::Millis;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `2026-12-31T20:00:00Z`, to the second.
pub(crate) fn rfc3339(ms: Millis) -> String {
    i64::try_from(ms / 1000)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms after the epoch"))
}

/// Parses an RFC 3339 time (any offset) into milliseconds since the epoch.
pub(crate) fn parse_rfc3339(text: &str) -> Result<Millis, String> {
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))?;
    Millis::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| format!("{text:?} is before 1970"))
}

/// `INR 8000.00`: an amount in minor units, in its currency's major units.
pub(crate) fn money(amount: u64, currency: &str) -> String {
    let digits = match currency {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
        _ => 2,
    };
    if digits == 0 {
        return format!("{currency} {amount}");
    }
    let unit = 10u64.pow(digits);
    format!("{currency} {}.{:0width$}", amount / unit, amount % unit, width = digits as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_in_utc() {
        let ms = parse_rfc3339("2026-12-31T20:00:00Z").unwrap();
        assert_eq!(rfc3339(ms), "2026-12-31T20:00:00Z");
        assert_eq!(parse_rfc3339("2027-01-01T01:30:00+05:30").unwrap(), ms);
        assert_eq!(rfc3339(ms + 999), "2026-12-31T20:00:00Z");
        assert!(parse_rfc3339("tomorrow").is_err());
        assert!(parse_rfc3339("1969-12-31T23:59:59Z").is_err());
    }

    #[test]
    fn money_in_major_units() {
        assert_eq!(money(1_500_000, "INR"), "INR 15000.00");
        assert_eq!(money(2_805, "GBP"), "GBP 28.05");
        assert_eq!(money(7, "EUR"), "EUR 0.07");
        assert_eq!(money(500, "JPY"), "JPY 500");
        assert_eq!(money(1_234, "KWD"), "KWD 1.234");
    }
}
