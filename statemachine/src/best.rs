//! Best-available seat selection. Pure and deterministic: the same layout
//! and seat statuses always give the same seats.
//!
//! Quality order is layout order: sections and rows are listed best first by
//! the operator. Within a row, seats nearer the row's centre are better. A
//! placement that leaves a single free seat stranded between taken seats
//! (an *orphan*) is avoided whenever another placement exists.

use crate::layout::Layout;
use crate::state::SEAT_AVAILABLE;
use crate::statuses::Statuses;

/// What to look for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Want {
    pub(crate) category: u16,
    pub(crate) count: u32,
    pub(crate) together: bool,
    pub(crate) accessible: bool,
}

/// Why no seats were chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shortfall {
    /// Fewer eligible seats than asked for.
    TooFew,
    /// Enough seats, but not adjacent in one row (only when `together`).
    NotTogether,
}

/// A candidate block: `count` seats starting at `start` in a run of free seats.
#[derive(Clone, Copy, Debug)]
struct Placement {
    start: u32,
    orphans: u32,
    centre_distance: u32,
}

/// Chooses seats, sorted by index, or says why it cannot.
pub(crate) fn choose(layout: &Layout, status: &Statuses, want: Want) -> Result<Vec<u32>, Shortfall> {
    assert!(want.count > 0, "best-available needs at least one seat");
    assert_eq!(status.len(), layout.capacity);
    let eligible = |seat: u32| status.get(seat) == SEAT_AVAILABLE && (!want.accessible || layout.is_accessible(seat));
    // Pass 1: the best single-row placement, preferring one without orphans.
    let mut best_with_orphans: Option<Placement> = None;
    let mut total_eligible: u64 = 0;
    for (row_idx, row) in layout.rows.iter().enumerate() {
        if layout.category_of_row(row_idx) != want.category {
            continue;
        }
        let mut best_in_row: Option<Placement> = None;
        let row_end = row.first_seat + row.seats;
        let centre2 = 2 * row.first_seat + row.seats; // twice the row's centre
        let mut seat = row.first_seat;
        while seat < row_end {
            if !eligible(seat) {
                seat += 1;
                continue;
            }
            let run_start = seat;
            while seat < row_end && eligible(seat) {
                seat += 1;
            }
            let run_len = seat - run_start;
            total_eligible += u64::from(run_len);
            if run_len < want.count {
                continue;
            }
            for offset in 0..=run_len - want.count {
                let left = offset;
                let right = run_len - want.count - offset;
                let placement = Placement {
                    start: run_start + offset,
                    orphans: u32::from(left == 1) + u32::from(right == 1),
                    centre_distance: (2 * (run_start + offset) + want.count).abs_diff(centre2),
                };
                if better(&placement, best_in_row.as_ref()) {
                    best_in_row = Some(placement);
                }
            }
        }
        if let Some(p) = best_in_row {
            if p.orphans == 0 {
                return Ok((p.start..p.start + want.count).collect());
            }
            if best_with_orphans.is_none_or(|b| p.orphans < b.orphans) {
                best_with_orphans = Some(p);
            }
        }
    }
    if let Some(p) = best_with_orphans {
        return Ok((p.start..p.start + want.count).collect());
    }
    if total_eligible < u64::from(want.count) {
        return Err(Shortfall::TooFew);
    }
    if want.together {
        return Err(Shortfall::NotTogether);
    }
    Ok(split(layout, want, &eligible))
}

fn better(candidate: &Placement, current: Option<&Placement>) -> bool {
    match current {
        None => true,
        Some(c) => (candidate.orphans, candidate.centre_distance) < (c.orphans, c.centre_distance),
    }
}

/// Pass 2 (not together, no single row fits): the fewest blocks, taking the
/// longest runs first and, among equal runs, the better rows.
fn split(layout: &Layout, want: Want, eligible: &dyn Fn(u32) -> bool) -> Vec<u32> {
    let mut runs: Vec<(u32, u32)> = Vec::new(); // (start, len) in layout order
    for (row_idx, row) in layout.rows.iter().enumerate() {
        if layout.category_of_row(row_idx) != want.category {
            continue;
        }
        let row_end = row.first_seat + row.seats;
        let mut seat = row.first_seat;
        while seat < row_end {
            if !eligible(seat) {
                seat += 1;
                continue;
            }
            let start = seat;
            while seat < row_end && eligible(seat) {
                seat += 1;
            }
            runs.push((start, seat - start));
        }
    }
    // Stable sort keeps layout order among runs of equal length.
    runs.sort_by_key(|run| std::cmp::Reverse(run.1));
    let mut chosen = Vec::with_capacity(want.count as usize);
    for (start, len) in runs {
        let need = want.count - chosen.len() as u32;
        if need == 0 {
            break;
        }
        let take = need.min(len);
        chosen.extend(start..start + take);
    }
    assert_eq!(chosen.len() as u32, want.count, "split was called with enough eligible seats");
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{RowSpec, SectionSpec, VenueSpec};
    use crate::ids::VenueId;
    use crate::layout::Venue;
    use crate::limits::Limits;
    use crate::state::{SEAT_BOOKED, SEAT_HELD};

    fn venue(rows: &[u32]) -> Venue {
        let spec = VenueSpec {
            name: "Hall".into(),
            city: "Pune".into(),
            region: "ap-south".into(),
            sections: vec![SectionSpec {
                name: "S".into(),
                category: "regular".into(),
                rows: rows
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| RowSpec { label: format!("{}", i + 1), seats: n })
                    .collect(),
            }],
            blocked_seats: vec![],
            accessible_seats: if rows.len() > 1 { vec!["S-2-1".into(), "S-2-2".into()] } else { vec![] },
        };
        Venue::build(VenueId(1), spec, &Limits::default()).unwrap()
    }

    fn want(count: u32, together: bool) -> Want {
        Want { category: 0, count, together, accessible: false }
    }

    #[test]
    fn picks_the_centre_of_the_first_row() {
        let v = venue(&[10, 10]);
        let status = Statuses::new(20, SEAT_AVAILABLE);
        assert_eq!(choose(&v.derived, &status, want(4, true)), Ok(vec![3, 4, 5, 6]));
    }

    #[test]
    fn avoids_leaving_an_orphan() {
        let v = venue(&[6, 6]);
        let mut status = Statuses::new(12, SEAT_AVAILABLE);
        // Row 1: seat 1 taken; free run is seats 2..6 (5 seats). Taking 4 seats
        // must not leave a single seat: only 2..5 (leaves 6 alone) or 3..6
        // (leaves 2 alone) exist, so row 1 has no clean placement and row 2
        // wins. In row 2, 1..4 and 3..6 are equally central; the first is kept.
        status.set(0, SEAT_BOOKED);
        assert_eq!(choose(&v.derived, &status, want(4, true)), Ok(vec![6, 7, 8, 9]));
        // Three seats fit row 1 cleanly (2..4 leaves 5,6 together).
        let got = choose(&v.derived, &status, want(3, true)).unwrap();
        assert!(got.iter().all(|&s| s < 6), "{got:?}");
    }

    #[test]
    fn takes_an_orphaning_placement_when_nothing_else_fits() {
        let v = venue(&[5]);
        let mut status = Statuses::new(5, SEAT_AVAILABLE);
        status.set(0, SEAT_HELD);
        // Four free seats, three wanted: every placement strands one seat.
        let got = choose(&v.derived, &status, want(3, true)).unwrap();
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn together_fails_when_no_row_fits_but_split_succeeds() {
        let v = venue(&[4, 4]);
        let mut status = Statuses::new(8, SEAT_AVAILABLE);
        status.set(1, SEAT_BOOKED);
        status.set(6, SEAT_BOOKED);
        assert_eq!(choose(&v.derived, &status, want(3, true)), Err(Shortfall::NotTogether));
        let split = choose(&v.derived, &status, want(3, false)).unwrap();
        assert_eq!(split.len(), 3);
        assert!(split.iter().all(|&s| status.get(s) == SEAT_AVAILABLE));
        assert_eq!(choose(&v.derived, &status, want(7, false)), Err(Shortfall::TooFew));
    }

    #[test]
    fn accessible_only_uses_accessible_seats() {
        let v = venue(&[4, 4]);
        let status = Statuses::new(8, SEAT_AVAILABLE);
        let w = Want { accessible: true, ..want(2, true) };
        assert_eq!(choose(&v.derived, &status, w), Ok(vec![4, 5]));
        let w3 = Want { accessible: true, ..want(3, false) };
        assert_eq!(choose(&v.derived, &status, w3), Err(Shortfall::TooFew));
    }

    #[test]
    fn is_deterministic() {
        let v = venue(&[30, 30, 30]);
        let mut status = Statuses::new(90, SEAT_AVAILABLE);
        (0..90).filter(|i| i % 7 == 0).for_each(|i| status.set(i, SEAT_BOOKED));
        let a = choose(&v.derived, &status, want(5, false));
        for _ in 0..10 {
            assert_eq!(choose(&v.derived, &status, want(5, false)), a);
        }
    }
}
