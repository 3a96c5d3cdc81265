//! Venue layouts: validation of an operator's spec and the derived lookup
//! tables. A seat is a `u32` index into the venue's seats in layout order;
//! its label is `{section}-{row}-{number}`. Only the spec is stored in
//! snapshots; everything else is rebuilt from it, deterministically.

use std::collections::BTreeMap;

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
    /// `"{section}-{row}"` to row index.
    row_index: BTreeMap<String, u32>,
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
                let key = format!("{}-{}", section.name, row.label);
                let row_idx = layout.rows.len() as u32;
                if layout.row_index.insert(key, row_idx).is_some() {
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
        layout.blocked = layout.seat_list("blocked_seats", &spec.blocked_seats)?;
        layout.accessible = layout.seat_list("accessible_seats", &spec.accessible_seats)?;
        Ok(layout)
    }

    fn seat_list(&self, what: &str, labels: &[String]) -> Result<Vec<u32>, Rejection> {
        let mut seats = Vec::with_capacity(labels.len());
        for label in labels {
            let seat = self.parse(label).ok_or_else(|| bad(format!("{what}: unknown seat {label:?}")))?;
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

    /// The seat a label names, if any.
    pub(crate) fn parse(&self, label: &str) -> Option<u32> {
        let (prefix, number) = label.rsplit_once('-')?;
        // Reject "+1", "01" and similar: a label has exactly one spelling.
        if number.is_empty() || number.starts_with('0') || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number: u32 = number.parse().ok()?;
        let row = &self.rows[*self.row_index.get(prefix)? as usize];
        if number == 0 || number > row.seats {
            return None;
        }
        Some(row.first_seat + number - 1)
    }

    /// The row index of a seat.
    pub(crate) fn row_of(&self, seat: u32) -> usize {
        assert!(seat < self.capacity, "seat {seat} out of range");
        self.rows.partition_point(|r| r.first_seat <= seat) - 1
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
    pub(crate) fn label(&self, spec: &VenueSpec, seat: u32) -> String {
        let row = &self.rows[self.row_of(seat)];
        let section = &spec.sections[row.section as usize];
        let row_spec_label = self.row_label(spec, seat);
        format!("{}-{}-{}", section.name, row_spec_label, seat - row.first_seat + 1)
    }

    /// (section name, row label, seat number) of a seat.
    pub(crate) fn parts<'a>(&self, spec: &'a VenueSpec, seat: u32) -> (&'a str, &'a str, u32) {
        let row = &self.rows[self.row_of(seat)];
        (&spec.sections[row.section as usize].name, self.row_label(spec, seat), seat - row.first_seat + 1)
    }

    fn row_label<'a>(&self, spec: &'a VenueSpec, seat: u32) -> &'a str {
        let row_idx = self.row_of(seat);
        let section = self.rows[row_idx].section as usize;
        // Rows of a section are contiguous in layout order.
        let first_row_of_section = self.rows.partition_point(|r| (r.section as usize) < section);
        &spec.sections[section].rows[row_idx - first_row_of_section].label
    }
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
            assert_eq!(v.derived.parse(&label), Some(seat), "{label}");
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
    fn bad_labels_do_not_parse() {
        let v = Venue::build(VenueId(1), spec(), &Limits::default()).unwrap();
        for label in
            ["Floor-A-0", "Floor-A-21", "Floor-A-01", "Floor-A-+1", "Floor-C-1", "Floor-A", "", "A-1", "Floor-A-"]
        {
            assert_eq!(v.derived.parse(label), None, "{label}");
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
