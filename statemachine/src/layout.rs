//! Venue layouts: validation of an operator's spec and the derived lookup
//! tables. A seat is a `u32` index into the venue's seats in layout order;
//! its label is `{section}-{row}-{number}`. Only the spec is stored in
//! snapshots; everything else is rebuilt from it, deterministically.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::command::VenueSpec;
use crate::ids::VenueId;
use crate::limits::Limits;
use crate::outcome::Rejection;

/// A row in layout order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) section: u16,
    pub(crate) first_seat: u32,
    pub(crate) seats: u32,
}

/// A venue: its spec plus lookup tables derived from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Venue {
    pub(crate) id: VenueId,
    pub(crate) spec: VenueSpec,
    #[serde(skip)]
    pub(crate) derived: Layout,
}

/// Lookup tables of a venue, derived from its spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Category names, sorted; a category is an index into this.
    pub(crate) categories: Vec<String>,
    /// Category of each section.
    pub(crate) section_category: Vec<u16>,
    /// Rows in layout order (best first).
    pub(crate) rows: Vec<Row>,
    /// Index in `rows` of each section's first row, then the number of rows.
    section_first_row: Vec<u32>,
    /// Section indices sorted by name. With `rows_by_label` this finds a
    /// label's row by binary search over the spec's own strings, so the
    /// lookup costs 4 bytes per row instead of a map of copied names.
    sections_by_name: Vec<u16>,
    /// Row indices, each section's rows sorted by label, at the positions
    /// of that section's rows in `rows`.
    rows_by_label: Vec<u32>,
    /// Seats never sold, sorted.
    pub(crate) blocked: Vec<u32>,
    /// Accessible seats, sorted.
    pub(crate) accessible: Vec<u32>,
    pub(crate) capacity: u32,
}

impl Venue {
    /// Validates `spec` and builds the venue. Every rule of the contract's
    /// `invalid_layout` is checked here; nothing is created on error.
    pub(crate) fn build(id: VenueId, spec: VenueSpec, limits: &Limits) -> Result<Venue, Rejection> {
        let derived = Layout::build(&spec, limits)?;
        Ok(Venue { id, spec, derived })
    }

    /// Rebuilds derived tables after a snapshot restore.
    pub(crate) fn rebuild(&mut self, limits: &Limits) -> Result<(), Rejection> {
        self.derived = Layout::build(&self.spec, limits)?;
        Ok(())
    }
}

fn bad(msg: impl Into<String>) -> Rejection {
    Rejection::InvalidLayout(msg.into())
}

pub(crate) fn check_text(what: &str, s: &str, limits: &Limits) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    if s.len() > limits.text_bytes_max as usize {
        return Err(format!("{what} is longer than {} bytes", limits.text_bytes_max));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

impl Layout {
    fn build(spec: &VenueSpec, limits: &Limits) -> Result<Layout, Rejection> {
        check_text("name", &spec.name, limits).map_err(bad)?;
        check_text("city", &spec.city, limits).map_err(bad)?;
        check_text("region", &spec.region, limits).map_err(bad)?;
        if spec.sections.is_empty() {
            return Err(bad("no sections"));
        }
        if spec.sections.len() > limits.venue_sections_max as usize {
            return Err(bad(format!("more than {} sections", limits.venue_sections_max)));
        }
        let mut categories: Vec<String> = spec.sections.iter().map(|s| s.category.clone()).collect();
        categories.sort();
        categories.dedup();
        if categories.len() > limits.venue_categories_max as usize {
            return Err(bad(format!("more than {} categories", limits.venue_categories_max)));
        }
        let mut layout = Layout { categories, ..Layout::default() };
        let mut section_names = BTreeMap::new();
        let mut capacity: u64 = 0;
        for (s_idx, section) in spec.sections.iter().enumerate() {
            check_text("section name", &section.name, limits).map_err(bad)?;
            check_text("category", &section.category, limits).map_err(bad)?;
            if section_names.insert(section.name.as_str(), ()).is_some() {
                return Err(bad(format!("duplicate section {:?}", section.name)));
            }
            if section.rows.is_empty() {
                return Err(bad(format!("section {:?} has no rows", section.name)));
            }
            if section.rows.len() > limits.section_rows_max as usize {
                return Err(bad(format!("section {:?} has too many rows", section.name)));
            }
            let category = layout.categories.binary_search(&section.category).expect("collected above");
            layout.section_category.push(category as u16);
            layout.section_first_row.push(layout.rows.len() as u32);
            let mut row_labels = BTreeSet::new();
            for row in &section.rows {
                check_text("row label", &row.label, limits).map_err(bad)?;
                if row.label.contains('-') {
                    return Err(bad(format!("row label {:?} contains '-'", row.label)));
                }
                if row.seats == 0 || row.seats > limits.row_seats_max {
                    return Err(bad(format!(
                        "row {}-{} must have 1..={} seats",
                        section.name, row.label, limits.row_seats_max
                    )));
                }
                // Row labels hold no '-', so a label is unique in the venue
                // exactly when it is unique in its section.
                if !row_labels.insert(row.label.as_str()) {
                    return Err(bad(format!("duplicate row {}-{}", section.name, row.label)));
                }
                layout.rows.push(Row { section: s_idx as u16, first_seat: capacity as u32, seats: row.seats });
                capacity += u64::from(row.seats);
                if capacity > u64::from(limits.venue_seats_max) {
                    return Err(bad(format!("more than {} seats", limits.venue_seats_max)));
                }
            }
        }
        layout.capacity = capacity as u32;
        layout.section_first_row.push(layout.rows.len() as u32);
        // The tables live as long as the venue: keep no spare capacity.
        layout.rows.shrink_to_fit();
        layout.section_category.shrink_to_fit();
        let mut sections_by_name: Vec<u16> = (0..spec.sections.len() as u16).collect();
        sections_by_name.sort_unstable_by(|&a, &b| spec.sections[a as usize].name.cmp(&spec.sections[b as usize].name));
        layout.sections_by_name = sections_by_name;
        layout.rows_by_label = Vec::with_capacity(layout.rows.len());
        for (s_idx, section) in spec.sections.iter().enumerate() {
            let first = layout.section_first_row[s_idx];
            let mut rows: Vec<u32> = (first..layout.section_first_row[s_idx + 1]).collect();
            rows.sort_unstable_by(|&a, &b| {
                section.rows[(a - first) as usize].label.cmp(&section.rows[(b - first) as usize].label)
            });
            layout.rows_by_label.extend(rows);
        }
        layout.blocked = layout.seat_list(spec, "blocked_seats", &spec.blocked_seats, limits)?;
        layout.accessible = layout.seat_list(spec, "accessible_seats", &spec.accessible_seats, limits)?;
        Ok(layout)
    }

    fn seat_list(
        &self,
        spec: &VenueSpec,
        what: &str,
        labels: &[String],
        limits: &Limits,
    ) -> Result<Vec<u32>, Rejection> {
        let mut seats = Vec::with_capacity(labels.len());
        for label in labels {
            let seat = self.parse(spec, label).ok_or_else(|| {
                bad(format!("{what}: unknown seat {:?}", crate::catalog::shown(label, limits.text_bytes_max as usize)))
            })?;
            seats.push(seat);
        }
        seats.sort_unstable();
        let before = seats.len();
        seats.dedup();
        if seats.len() != before {
            return Err(bad(format!("{what}: duplicate seats")));
        }
        Ok(seats)
    }

    /// The seat a label names in the venue `spec` this layout was built
    /// from, if any.
    pub(crate) fn parse(&self, spec: &VenueSpec, label: &str) -> Option<u32> {
        self.parse_after(spec, label, &mut None)
    }

    /// [`Layout::parse`] that keeps in `last` the row it found and the
    /// `{section}-{row}` prefix naming it: the seats of one hold are usually
    /// in one row, which is then looked up once.
    pub(crate) fn parse_after<'a>(
        &self,
        spec: &VenueSpec,
        label: &'a str,
        last: &mut Option<(&'a str, usize)>,
    ) -> Option<u32> {
        let (prefix, number) = label.rsplit_once('-')?;
        // Reject "+1", "01" and similar: a label has exactly one spelling.
        if number.is_empty() || number.starts_with('0') || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number: u32 = number.parse().ok()?;
        let row_idx = match *last {
            Some((seen, row_idx)) if seen == prefix => row_idx,
            _ => {
                let row_idx = self.find_row(spec, prefix)?;
                *last = Some((prefix, row_idx));
                row_idx
            }
        };
        let row = &self.rows[row_idx];
        if number == 0 || number > row.seats {
            return None;
        }
        Some(row.first_seat + number - 1)
    }

    /// The row named `{section}-{row}`, if any.
    fn find_row(&self, spec: &VenueSpec, prefix: &str) -> Option<usize> {
        // Row labels hold no '-': the last one ends the section name, which may hold '-'.
        let (section_name, row_label) = prefix.rsplit_once('-')?;
        let by_name = self
            .sections_by_name
            .binary_search_by(|&s| bytewise(&spec.sections[s as usize].name, section_name))
            .ok()?;
        let s_idx = self.sections_by_name[by_name] as usize;
        let section = &spec.sections[s_idx];
        let first = self.section_first_row[s_idx];
        let rows = &self.rows_by_label[first as usize..self.section_first_row[s_idx + 1] as usize];
        let at = rows.binary_search_by(|&r| bytewise(&section.rows[(r - first) as usize].label, row_label)).ok()?;
        Some(rows[at] as usize)
    }

    /// The row index of a seat.
    pub(crate) fn row_of(&self, seat: u32) -> usize {
        assert!(seat < self.capacity, "seat {seat} out of range");
        self.rows.partition_point(|r| r.first_seat <= seat) - 1
    }

    /// [`Layout::row_of`] that first tries the row found last (kept in
    /// `last`): the seats of a hold are sorted and usually in one row.
    pub(crate) fn row_of_after(&self, seat: u32, last: &mut Option<usize>) -> usize {
        if let Some(row_idx) = *last {
            let row = &self.rows[row_idx];
            if seat >= row.first_seat && seat - row.first_seat < row.seats {
                return row_idx;
            }
        }
        let row_idx = self.row_of(seat);
        *last = Some(row_idx);
        row_idx
    }

    /// [`Layout::category_of`] with the row hint of [`Layout::row_of_after`].
    pub(crate) fn category_of_after(&self, seat: u32, last: &mut Option<usize>) -> u16 {
        self.category_of_row(self.row_of_after(seat, last))
    }

    /// The labels of seats, in the order given.
    pub(crate) fn labels(&self, spec: &VenueSpec, seats: &[u32]) -> Vec<String> {
        let mut last = None;
        seats.iter().map(|&seat| self.label_in_row(spec, self.row_of_after(seat, &mut last), seat)).collect()
    }

    /// The category index of a seat.
    pub(crate) fn category_of(&self, seat: u32) -> u16 {
        self.section_category[self.rows[self.row_of(seat)].section as usize]
    }

    pub(crate) fn category_of_row(&self, row: usize) -> u16 {
        self.section_category[self.rows[row].section as usize]
    }

    pub(crate) fn category(&self, name: &str) -> Option<u16> {
        self.categories.binary_search_by(|c| c.as_str().cmp(name)).ok().map(|i| i as u16)
    }

    pub(crate) fn is_accessible(&self, seat: u32) -> bool {
        self.accessible.binary_search(&seat).is_ok()
    }

    /// The label of a seat.
    #[cfg(test)]
    pub(crate) fn label(&self, spec: &VenueSpec, seat: u32) -> String {
        self.label_in_row(spec, self.row_of(seat), seat)
    }

    /// The label of a seat of row `row_idx`.
    fn label_in_row(&self, spec: &VenueSpec, row_idx: usize, seat: u32) -> String {
        let (section, row, number) = self.parts_in_row(spec, row_idx, seat);
        // Sized up front: labels are made for every seat a command touches.
        let mut label = String::with_capacity(section.len() + row.len() + 12);
        label.push_str(section);
        label.push('-');
        label.push_str(row);
        label.push('-');
        // Digits by hand: the formatting machinery costs more than the rest.
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut rest = number;
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        label.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
        label
    }

    /// (section name, row label, seat number) of a seat.
    pub(crate) fn parts<'a>(&self, spec: &'a VenueSpec, seat: u32) -> (&'a str, &'a str, u32) {
        self.parts_in_row(spec, self.row_of(seat), seat)
    }

    fn parts_in_row<'a>(&self, spec: &'a VenueSpec, row_idx: usize, seat: u32) -> (&'a str, &'a str, u32) {
        let row = &self.rows[row_idx];
        debug_assert!(seat >= row.first_seat && seat - row.first_seat < row.seats);
        let section = &spec.sections[row.section as usize];
        // Rows of a section are contiguous in layout order.
        let row_in_section = row_idx - self.section_first_row[row.section as usize] as usize;
        (&section.name, &section.rows[row_in_section].label, seat - row.first_seat + 1)
    }
}

/// The order of `str`'s `Ord`, compared inline: names and row labels are a
/// few bytes long, shorter than the cost of calling `memcmp` for them.
fn bytewise(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes().cmp(b.bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{RowSpec, SectionSpec};

    fn spec() -> VenueSpec {
        VenueSpec {
            name: "Arena".into(),
            city: "Mumbai".into(),
            region: "ap-south".into(),
            sections: vec![
                SectionSpec {
                    name: "Floor".into(),
                    category: "premium".into(),
                    rows: vec![RowSpec { label: "A".into(), seats: 20 }, RowSpec { label: "B".into(), seats: 22 }],
                },
                SectionSpec {
                    name: "Upper-Tier".into(),
                    category: "regular".into(),
                    rows: vec![RowSpec { label: "1".into(), seats: 5 }],
                },
            ],
            blocked_seats: vec!["Floor-A-1".into()],
            accessible_seats: vec!["Floor-B-22".into()],
        }
    }

    #[test]
    fn labels_round_trip() {
        let v = Venue::build(VenueId(1), spec(), &Limits::default()).unwrap();
        assert_eq!(v.derived.capacity, 47);
        for seat in 0..v.derived.capacity {
            let label = v.derived.label(&v.spec, seat);
            assert_eq!(v.derived.parse(&v.spec, &label), Some(seat), "{label}");
        }
        assert_eq!(v.derived.label(&v.spec, 0), "Floor-A-1");
        assert_eq!(v.derived.label(&v.spec, 20), "Floor-B-1");
        assert_eq!(v.derived.label(&v.spec, 42), "Upper-Tier-1-1");
        assert_eq!(v.derived.blocked, vec![0]);
        assert_eq!(v.derived.accessible, vec![41]);
        assert_eq!(v.derived.category_of(41), 0);
        assert_eq!(v.derived.category_of(42), 1);
    }

    #[test]
    fn row_hints_give_what_a_fresh_lookup_gives() {
        let v = Venue::build(VenueId(1), spec(), &Limits::default()).unwrap();
        let all: Vec<u32> = (0..v.derived.capacity).collect();
        let orders = [all.clone(), all.iter().rev().copied().collect(), all.iter().map(|s| s * 7 % 47).collect()];
        for seats in orders {
            let labels: Vec<String> = seats.iter().map(|&s| v.derived.label(&v.spec, s)).collect();
            assert_eq!(v.derived.labels(&v.spec, &seats), labels);
            let mut last = None;
            for &seat in &seats {
                assert_eq!(v.derived.category_of_after(seat, &mut last), v.derived.category_of(seat), "seat {seat}");
            }
        }
    }

    #[test]
    fn bad_labels_do_not_parse() {
        let v = Venue::build(VenueId(1), spec(), &Limits::default()).unwrap();
        for label in
            ["Floor-A-0", "Floor-A-21", "Floor-A-01", "Floor-A-+1", "Floor-C-1", "Floor-A", "", "A-1", "Floor-A-"]
        {
            assert_eq!(v.derived.parse(&v.spec, label), None, "{label}");
        }
    }

    #[test]
    fn invalid_layouts_are_rejected() {
        let limits = Limits::default();
        type Case = (&'static str, Box<dyn Fn(&mut VenueSpec)>);
        let cases: Vec<Case> = vec![
            ("no sections", Box::new(|s| s.sections.clear())),
            ("empty rows", Box::new(|s| s.sections[0].rows.clear())),
            ("duplicate row", Box::new(|s| s.sections[0].rows[1].label = "A".into())),
            ("duplicate section", Box::new(|s| s.sections[1].name = "Floor".into())),
            ("zero seats", Box::new(|s| s.sections[0].rows[0].seats = 0)),
            ("dash in row", Box::new(|s| s.sections[0].rows[0].label = "A-1".into())),
            ("unknown blocked", Box::new(|s| s.blocked_seats.push("Floor-Z-1".into()))),
            ("unknown accessible", Box::new(|s| s.accessible_seats.push("Floor-A-99".into()))),
            ("duplicate blocked", Box::new(|s| s.blocked_seats.push("Floor-A-1".into()))),
            ("empty name", Box::new(|s| s.name = " ".into())),
            ("huge row", Box::new(|s| s.sections[0].rows[0].seats = 1_000_000)),
        ];
        for (what, mutate) in cases {
            let mut s = spec();
            mutate(&mut s);
            let err = Venue::build(VenueId(1), s, &limits).unwrap_err();
            assert!(matches!(err, Rejection::InvalidLayout(_)), "{what}: {err:?}");
        }
    }
}
