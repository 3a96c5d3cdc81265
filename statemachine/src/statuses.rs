//! Seat statuses packed four to a byte: the one per-seat cost of an event.
//! A seat has four states (available, held, booked, blocked), so two bits
//! hold it; a 50,000-seat event's statuses take 12.5 kB.

/// Seat statuses of one event, two bits per seat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Statuses {
    bits: Vec<u8>,
    len: u32,
}

const _: () = assert!(crate::state::SEAT_BLOCKED <= 3, "a status must fit in two bits");

impl Statuses {
    /// `len` seats, all in status `fill`.
    pub(crate) fn new(len: u32, fill: u8) -> Statuses {
        assert!(fill <= 3);
        let byte = fill | fill << 2 | fill << 4 | fill << 6;
        let mut bits = vec![byte; (len as usize).div_ceil(4)];
        bits.shrink_to_fit();
        Statuses { bits, len }
    }

    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    pub(crate) fn get(&self, seat: u32) -> u8 {
        assert!(seat < self.len, "seat {seat} out of range");
        (self.bits[(seat / 4) as usize] >> ((seat % 4) * 2)) & 0b11
    }

    pub(crate) fn set(&mut self, seat: u32, status: u8) {
        assert!(seat < self.len, "seat {seat} out of range");
        assert!(status <= 3);
        let shift = (seat % 4) * 2;
        let byte = &mut self.bits[(seat / 4) as usize];
        *byte = (*byte & !(0b11 << shift)) | (status << shift);
    }

    /// The first seat whose status differs from `other`'s.
    pub(crate) fn first_difference(&self, other: &Statuses) -> Option<u32> {
        (0..self.len.min(other.len)).find(|&s| self.get(s) != other.get(s)).or_else(|| {
            if self.len == other.len {
                None
            } else {
                Some(self.len.min(other.len))
            }
        })
    }

    /// Heap bytes used.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bits.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_four_statuses_to_a_byte() {
        let mut s = Statuses::new(50_001, 0);
        assert_eq!(s.heap_bytes(), 12_501);
        for seat in [0, 1, 2, 3, 4, 49_999, 50_000] {
            for status in 0..=3 {
                s.set(seat, status);
                assert_eq!(s.get(seat), status);
            }
            s.set(seat, (seat % 4) as u8);
        }
        // Neighbours are untouched by a set.
        let mut t = Statuses::new(8, 3);
        t.set(5, 1);
        assert_eq!((0..8).map(|i| t.get(i)).collect::<Vec<_>>(), vec![3, 3, 3, 3, 3, 1, 3, 3]);
        assert_eq!(t.first_difference(&Statuses::new(8, 3)), Some(5));
        assert_eq!(t.first_difference(&t.clone()), None);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn refuses_seats_past_the_end() {
        Statuses::new(5, 0).get(5);
    }
}
