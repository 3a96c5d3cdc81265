//! The demo catalog: venues, events and users for three regions, and the
//! loader that proposes them to a region's [`Shard`].
//!
//! [`catalog`] describes what each region holds; [`load`] turns one region's
//! description into commands, in order: the venues, then the events (which
//! need the venue ids the venue commands returned), then the bookings that
//! sell one small event out so its waitlist can be tried.
//!
//! Loading is deterministic and idempotent. The catalog depends only on the
//! `now_ms` it is built for. Every command carries the client id
//! [`LOADER_CLIENT`] and the request id `demo:<region>:<n>`, `n` counting the
//! region's commands from 1, so a load that stopped halfway can simply be run
//! again: the shard's exactly-once table answers the commands it applied
//! already, with the ids it gave out then. A shard that holds the whole
//! catalog is recognised by reading it, and nothing is proposed at all.

use std::ops::RangeInclusive;

use statemachine::{
    Applied, Command, EventId, EventKind, EventSpec, Millis, Op, Outcome, RefundTier, Rejection, RowSpec, SectionSpec,
    Selection, State, VenueId, VenueSpec, WaitingRoomSpec,
};

use crate::shard::Shard;

/// The regions of the demo, one shard each.
pub const REGIONS: [&str; 3] = ["ap-south", "eu-west", "us-east"];

/// Demo users who book, hold and wait.
pub const USERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

/// The demo's administrator (catalog and cluster routes).
pub const ADMIN: &str = "admin";

/// Client id of every command the loader proposes.
pub const LOADER_CLIENT: &str = "demo-loader";

/// Seats of the demo's stadium.
pub const STADIUM_SEATS: u32 = 50_000;

/// Users whose bookings sell the sold-out event out. `dave` is left out so
/// that he has a reason to join its waitlist.
const SELLOUT_BUYERS: [&str; 4] = ["alice", "bob", "carol", "erin"];

/// Seats per booking when selling out: couples going together.
const SELLOUT_PARTY_SEATS: usize = 2;

/// Placeholder in a [`DemoEvent`]'s spec until its venue exists. Ids start
/// at 1, so 0 never names a venue.
const VENUE_NOT_CREATED: VenueId = VenueId(0);

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;

/// One region's demo catalog, in the order the loader proposes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionCatalog {
    /// The region (names its shard).
    pub region: &'static str,
    /// Venues, each with the events it hosts.
    pub venues: Vec<DemoVenue>,
}

/// A venue of the demo and its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoVenue {
    /// The layout as created.
    pub spec: VenueSpec,
    /// Events at this venue.
    pub events: Vec<DemoEvent>,
}

/// An event of the demo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoEvent {
    /// The event as created; `spec.venue` is filled in by the loader with
    /// the id its venue got.
    pub spec: EventSpec,
    /// The loader books every sellable seat for demo users.
    pub sell_out: bool,
}

impl RegionCatalog {
    /// Every event of the region with its venue, in load order.
    pub fn events(&self) -> impl Iterator<Item = (&DemoVenue, &DemoEvent)> + '_ {
        self.venues.iter().flat_map(|v| v.events.iter().map(move |e| (v, e)))
    }
}

/// What [`load`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadReport {
    /// The region.
    pub region: &'static str,
    /// The shard held the whole catalog already; nothing was proposed.
    pub already_present: bool,
    /// Commands proposed.
    pub proposed: u32,
    /// Of those, commands the exactly-once table answered (applied before).
    pub replayed: u32,
    /// Every demo event's title and id, in load order.
    pub events: Vec<(String, EventId)>,
}

/// Why the catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError<E> {
    /// The catalog of one region was given to another region's shard.
    #[error("the {catalog} demo catalog does not belong in the {shard} shard")]
    WrongShard {
        /// The catalog's region.
        catalog: &'static str,
        /// The shard's region.
        shard: String,
    },
    /// A command did not reach the log.
    #[error("{request} ({what}) did not reach the {region} shard")]
    Shard {
        /// The region.
        region: &'static str,
        /// The command's request id.
        request: String,
        /// What the command does.
        what: String,
        /// The shard's reason.
        #[source]
        source: E,
    },
    /// The shard refused a command.
    #[error("{request} ({what}) was rejected by the {region} shard: {rejection}{hint}", hint = reused_hint(.rejection))]
    Rejected {
        /// The region.
        region: &'static str,
        /// The command's request id.
        request: String,
        /// What the command does.
        what: String,
        /// The shard's answer.
        rejection: Rejection,
    },
    /// The shard answered with an outcome of another kind.
    #[error("{request} ({what}) got an unexpected answer from the {region} shard: {outcome:?}")]
    Unexpected {
        /// The region.
        region: &'static str,
        /// The command's request id.
        request: String,
        /// What the command does.
        what: String,
        /// The answer.
        outcome: Box<Outcome>,
    },
}

fn reused_hint(rejection: &Rejection) -> &'static str {
    match rejection {
        Rejection::IdempotencyKeyReused => {
            " (the shard holds part of a demo catalog built for another time; start from empty data)"
        }
        _ => "",
    }
}

/// The demo catalog of every region, with event times relative to `now_ms`
/// (start times days to weeks ahead, sales open since a week or opening in
/// the future). The same `now_ms` always gives the same catalog.
pub fn catalog(now_ms: Millis) -> Vec<RegionCatalog> {
    vec![ap_south(now_ms), eu_west(now_ms), us_east(now_ms)]
}

/// Loads one region's catalog into its shard, or does nothing when the
/// shard holds it already.
pub fn load<S: Shard>(shard: &mut S, catalog: &RegionCatalog) -> Result<LoadReport, LoadError<S::Error>> {
    if shard.region() != catalog.region {
        return Err(LoadError::WrongShard { catalog: catalog.region, shard: shard.region().to_string() });
    }
    let now = shard.now_ms();
    if let Some(events) = shard.read(|state| find_loaded(state, catalog, now)) {
        return Ok(LoadReport { region: catalog.region, already_present: true, proposed: 0, replayed: 0, events });
    }
    propose_all(shard, catalog)
}

/// Proposes every command of the catalog, whether or not the shard has
/// applied it before.
fn propose_all<S: Shard>(shard: &mut S, catalog: &RegionCatalog) -> Result<LoadReport, LoadError<S::Error>> {
    let mut p = Proposer { shard, region: catalog.region, proposed: 0, replayed: 0 };
    let mut venue_ids = Vec::with_capacity(catalog.venues.len());
    for venue in &catalog.venues {
        let what = format!("create venue {}", venue.spec.name);
        match p.run(&what, Op::CreateVenue(venue.spec.clone()))? {
            Outcome::VenueCreated { venue, .. } => venue_ids.push(venue),
            other => return Err(p.unexpected(&what, other)),
        }
    }
    let mut events = Vec::new();
    let mut sold_out = None;
    for (venue, &venue_id) in catalog.venues.iter().zip(&venue_ids) {
        for event in &venue.events {
            let what = format!("create event {}", event.spec.title);
            let spec = EventSpec { venue: venue_id, ..event.spec.clone() };
            let id = match p.run(&what, Op::CreateEvent(spec))? {
                Outcome::EventCreated { event } => event,
                other => return Err(p.unexpected(&what, other)),
            };
            events.push((event.spec.title.clone(), id));
            if event.sell_out {
                assert!(sold_out.is_none(), "a region has one sold-out event at most");
                sold_out = Some((id, &venue.spec));
            }
        }
    }
    if let Some((event, venue)) = sold_out {
        for (party, (user, seats)) in sellout_parties(venue).into_iter().enumerate() {
            let what = format!("{user} books {}", seats.join(", "));
            let hold = match p.run(&what, Op::Hold { event, user: user.into(), selection: Selection::Seats(seats) })? {
                Outcome::Held(receipt) => receipt.hold,
                other => return Err(p.unexpected(&what, other)),
            };
            let intent = format!("demo:{}:sellout:{}", catalog.region, party + 1);
            match p.run(&what, Op::BeginPayment { hold, user: user.into(), intent: intent.clone() })? {
                Outcome::PaymentStarted { .. } => {}
                other => return Err(p.unexpected(&what, other)),
            }
            match p.run(&what, Op::ConfirmHold { hold, user: user.into(), intent })? {
                Outcome::Booked(_) => {}
                other => return Err(p.unexpected(&what, other)),
            }
        }
    }
    Ok(LoadReport {
        region: catalog.region,
        already_present: false,
        proposed: p.proposed,
        replayed: p.replayed,
        events,
    })
}

/// Numbers the loader's commands and turns refusals into errors.
struct Proposer<'a, S> {
    shard: &'a mut S,
    region: &'static str,
    proposed: u32,
    replayed: u32,
}

impl<S: Shard> Proposer<'_, S> {
    fn request(&self) -> String {
        format!("demo:{}:{}", self.region, self.proposed)
    }

    fn run(&mut self, what: &str, op: Op) -> Result<Outcome, LoadError<S::Error>> {
        self.proposed += 1;
        let request = self.request();
        let applied: Applied =
            self.shard.propose(Command::new(LOADER_CLIENT, request.clone(), op)).map_err(|source| {
                LoadError::Shard { region: self.region, request: request.clone(), what: what.into(), source }
            })?;
        if applied.replayed {
            self.replayed += 1;
        }
        applied.result.map_err(|rejection| LoadError::Rejected {
            region: self.region,
            request,
            what: what.into(),
            rejection,
        })
    }

    fn unexpected(&self, what: &str, outcome: Outcome) -> LoadError<S::Error> {
        LoadError::Unexpected {
            region: self.region,
            request: self.request(),
            what: what.into(),
            outcome: Box::new(outcome),
        }
    }
}

/// The demo events' titles and ids when the shard holds the whole catalog:
/// every venue with the same layout, every event by title at its venue, and
/// the bookings that sold the sold-out event out. Event times are not
/// compared: a catalog loaded yesterday is still the demo catalog today.
fn find_loaded(state: &State, catalog: &RegionCatalog, now: Millis) -> Option<Vec<(String, EventId)>> {
    let venues: Vec<_> = state.venue_ids().filter_map(|id| state.venue(id)).collect();
    let events: Vec<_> = state.event_ids().filter_map(|id| state.event(id, now)).collect();
    let mut found = Vec::new();
    for demo_venue in &catalog.venues {
        let venue = venues.iter().find(|v| v.spec == demo_venue.spec)?;
        for demo_event in &demo_venue.events {
            let spec = &demo_event.spec;
            let event = events.iter().find(|e| e.venue == venue.id && e.title == spec.title && e.kind == spec.kind)?;
            found.push((spec.title.clone(), event.id));
            if demo_event.sell_out {
                for buyer in SELLOUT_BUYERS {
                    let planned = sellout_parties(&demo_venue.spec).iter().filter(|(u, _)| *u == buyer).count();
                    // Cancelled bookings count too: the loader made them.
                    let made = state.user_bookings(buyer, now).iter().filter(|b| b.event == event.id).count();
                    if made < planned {
                        return None;
                    }
                }
            }
        }
    }
    Some(found)
}

/// Every sellable seat of a venue, in parties of [`SELLOUT_PARTY_SEATS`]
/// seats of one row, each with the buyer it goes to (round robin).
fn sellout_parties(venue: &VenueSpec) -> Vec<(&'static str, Vec<String>)> {
    let mut parties = Vec::new();
    for section in &venue.sections {
        for row in &section.rows {
            let sellable: Vec<String> = (1..=row.seats)
                .map(|n| format!("{}-{}-{n}", section.name, row.label))
                .filter(|label| !venue.blocked_seats.contains(label))
                .collect();
            for party in sellable.chunks(SELLOUT_PARTY_SEATS) {
                let buyer = SELLOUT_BUYERS[parties.len() % SELLOUT_BUYERS.len()];
                parties.push((buyer, party.to_vec()));
            }
        }
    }
    parties
}

// ---------------------------------------------------------------------------
// The catalog. Times are UTC: `at(now, days, h, m)` is h:m UTC on the day
// `days` after today, so an evening show reads as the local evening.

fn ap_south(now: Millis) -> RegionCatalog {
    let region = "ap-south";
    let stadium = DemoVenue {
        spec: marine_lines_stadium(),
        events: vec![DemoEvent {
            spec: EventSpec {
                title: "T20 Final: Mumbai Monsoons vs Bengaluru Blasters".into(),
                kind: EventKind::Sports,
                genre: "cricket".into(),
                language: "en".into(),
                prices: prices(&[("premium", 800_000), ("regular", 250_000), ("upper", 90_000)]),
                // 19:30 IST.
                starts_at_ms: at(now, 10, 14, 0),
                max_seats_per_hold: Some(6),
                refund_policy: Some(vec![
                    RefundTier { min_hours_before: 72, percent: 100 },
                    RefundTier { min_hours_before: 24, percent: 50 },
                ]),
                // A final sells out in minutes: buyers queue before they shop.
                waiting_room: Some(WaitingRoomSpec {
                    enabled: true,
                    admit_per_minute: 2_000,
                    active_max: 5_000,
                    activate_above_per_sec: Some(500),
                }),
                ..on_sale(now, "INR")
            },
            sell_out: false,
        }],
    };
    let opera = DemoVenue {
        spec: VenueSpec {
            name: "Kala Ghoda Opera House".into(),
            city: "Mumbai".into(),
            region: region.into(),
            sections: vec![
                section("Stalls", "premium", letters('A', 'L'), 24),
                section("Dress-Circle", "regular", letters('A', 'F'), 22),
                section("Balcony", "balcony", letters('A', 'E'), 20),
            ],
            // The sound desk sits in the last row of the stalls.
            blocked_seats: seats("Stalls", "L", 11..=14),
            accessible_seats: [seats("Stalls", "L", 1..=2), seats("Stalls", "L", 23..=24)].concat(),
        },
        events: vec![DemoEvent {
            spec: EventSpec {
                title: "Sheher: A Bombay Musical".into(),
                kind: EventKind::Theater,
                genre: "musical".into(),
                language: "hi".into(),
                prices: prices(&[("premium", 350_000), ("regular", 180_000), ("balcony", 90_000)]),
                starts_at_ms: at(now, 6, 14, 0),
                ..on_sale(now, "INR")
            },
            sell_out: false,
        }],
    };
    let cinema = DemoVenue {
        spec: VenueSpec {
            name: "Orion Cinemas Screen 1".into(),
            city: "Bengaluru".into(),
            region: region.into(),
            sections: vec![
                section("Recliner", "premium", letters('K', 'L'), 12),
                section("Classic", "regular", letters('A', 'J'), 20),
            ],
            // House seats kept back by the cinema.
            blocked_seats: seats("Classic", "F", 10..=11),
            // Wheelchair spaces in the front row.
            accessible_seats: seats("Classic", "A", 1..=2),
        },
        events: vec![
            DemoEvent {
                spec: EventSpec {
                    title: "Kaveri Express".into(),
                    kind: EventKind::Movie,
                    genre: "thriller".into(),
                    language: "kn".into(),
                    prices: prices(&[("premium", 65_000), ("regular", 28_000)]),
                    starts_at_ms: at(now, 2, 13, 30),
                    ..on_sale(now, "INR")
                },
                sell_out: false,
            },
            DemoEvent {
                spec: EventSpec {
                    title: "Starfall".into(),
                    kind: EventKind::Movie,
                    genre: "sci-fi".into(),
                    language: "en".into(),
                    prices: prices(&[("premium", 72_000), ("regular", 32_000)]),
                    starts_at_ms: at(now, 3, 15, 30),
                    ..on_sale(now, "INR")
                },
                sell_out: false,
            },
        ],
    };
    let club = DemoVenue {
        spec: VenueSpec {
            name: "The Humming Room".into(),
            city: "Bengaluru".into(),
            region: region.into(),
            sections: vec![
                section("Front", "premium", letters('A', 'B'), 10),
                section("Back", "regular", letters('C', 'E'), 10),
            ],
            blocked_seats: seats("Back", "E", 9..=10),
            accessible_seats: seats("Back", "E", 1..=2),
        },
        events: vec![DemoEvent {
            spec: EventSpec {
                title: "Kabini Blues Band: Unplugged".into(),
                kind: EventKind::Concert,
                genre: "blues".into(),
                language: "en".into(),
                prices: prices(&[("premium", 250_000), ("regular", 150_000)]),
                starts_at_ms: at(now, 5, 14, 30),
                ..on_sale(now, "INR")
            },
            sell_out: true,
        }],
    };
    RegionCatalog { region, venues: vec![stadium, opera, cinema, club] }
}

fn eu_west(now: Millis) -> RegionCatalog {
    let region = "eu-west";
    let playhouse = DemoVenue {
        spec: VenueSpec {
            name: "Southbank Playhouse".into(),
            city: "London".into(),
            region: region.into(),
            sections: vec![
                section("Stalls", "premium", letters('A', 'P'), 28),
                section("Dress-Circle", "regular", letters('A', 'H'), 26),
                section("Balcony", "balcony", letters('A', 'F'), 24),
            ],
            blocked_seats: seats("Stalls", "P", 13..=16),
            accessible_seats: [
                seats("Stalls", "A", 1..=1),
                seats("Stalls", "A", 28..=28),
                seats("Dress-Circle", "A", 1..=2),
            ]
            .concat(),
        },
        events: vec![DemoEvent {
            spec: EventSpec {
                title: "The Winter's Tale".into(),
                kind: EventKind::Theater,
                genre: "drama".into(),
                language: "en".into(),
                prices: prices(&[("premium", 8_500), ("regular", 5_500), ("balcony", 2_800)]),
                starts_at_ms: at(now, 4, 19, 30),
                ..on_sale(now, "GBP")
            },
            sell_out: false,
        }],
    };
    let ground = DemoVenue {
        spec: VenueSpec {
            name: "Thames Riverside Ground".into(),
            city: "London".into(),
            region: region.into(),
            sections: vec![
                section("West-Stand", "premium", numbers(20), 100),
                section("East-Stand", "regular", numbers(40), 100),
                section("North-Stand", "regular", numbers(30), 100),
                section("South-Stand", "regular", numbers(30), 100),
            ],
            // Press box.
            blocked_seats: seats("West-Stand", "20", 41..=60),
            accessible_seats: [seats("West-Stand", "1", 1..=6), seats("East-Stand", "1", 1..=6)].concat(),
        },
        events: vec![DemoEvent {
            spec: EventSpec {
                title: "Thames Rovers vs Kent Athletic".into(),
                kind: EventKind::Sports,
                genre: "football".into(),
                language: "en".into(),
                prices: prices(&[("premium", 9_500), ("regular", 4_500)]),
                starts_at_ms: at(now, 12, 15, 0),
                ..on_sale(now, "GBP")
            },
            sell_out: false,
        }],
    };
    let hall = DemoVenue {
        spec: VenueSpec {
            name: "Spreehalle".into(),
            city: "Berlin".into(),
            region: region.into(),
            sections: vec![
                section("Parkett", "premium", numbers(30), 40),
                section("Rang", "regular", numbers(20), 50),
                section("Oberrang", "balcony", numbers(15), 60),
            ],
            // Front-of-house mixing desk.
            blocked_seats: seats("Parkett", "30", 19..=22),
            accessible_seats: seats("Rang", "1", 1..=6),
        },
        events: vec![DemoEvent {
            spec: EventSpec {
                title: "Berliner Elektronik Nacht".into(),
                kind: EventKind::Concert,
                genre: "electronic".into(),
                language: "de".into(),
                prices: prices(&[("premium", 12_900), ("regular", 8_900), ("balcony", 4_900)]),
                // 20:00 CET.
                starts_at_ms: at(now, 20, 19, 0),
                // The sale has not opened yet: 09:00 CET the day after tomorrow.
                sale_opens_at_ms: at(now, 2, 8, 0),
                waiting_room: Some(WaitingRoomSpec {
                    enabled: true,
                    admit_per_minute: 300,
                    active_max: 1_000,
                    activate_above_per_sec: None,
                }),
                ..on_sale(now, "EUR")
            },
            sell_out: false,
        }],
    };
    let kino = DemoVenue {
        spec: VenueSpec {
            name: "Kino am Kanal".into(),
            city: "Berlin".into(),
            region: region.into(),
            sections: vec![
                section("Loge", "premium", letters('A', 'B'), 14),
                section("Parkett", "regular", letters('C', 'M'), 18),
            ],
            blocked_seats: vec![],
            accessible_seats: seats("Parkett", "C", 1..=2),
        },
        events: vec![DemoEvent {
            spec: EventSpec {
                title: "Der letzte Sommer".into(),
                kind: EventKind::Movie,
                genre: "drama".into(),
                language: "de".into(),
                prices: prices(&[("premium", 1_450), ("regular", 1_050)]),
                starts_at_ms: at(now, 1, 19, 0),
                ..on_sale(now, "EUR")
            },
            sell_out: false,
        }],
    };
    RegionCatalog { region, venues: vec![playhouse, ground, hall, kino] }
}

fn us_east(now: Millis) -> RegionCatalog {
    let region = "us-east";
    let theatre = DemoVenue {
        spec: VenueSpec {
            name: "Hudson Hall".into(),
            city: "New York".into(),
            region: region.into(),
            sections: vec![
                section("Orchestra", "premium", letters('A', 'T'), 30),
                section("Mezzanine", "regular", letters('A', 'J'), 28),
                section("Balcony", "balcony", letters('A', 'H'), 26),
            ],
            // Sound and lighting booth.
            blocked_seats: seats("Orchestra", "T", 13..=18),
            accessible_seats: [seats("Orchestra", "T", 1..=4), seats("Mezzanine", "A", 1..=2)].concat(),
        },
        events: vec![DemoEvent {
            spec: EventSpec {
                title: "The Last Lighthouse".into(),
                kind: EventKind::Theater,
                genre: "musical".into(),
                language: "en".into(),
                prices: prices(&[("premium", 18_900), ("regular", 11_900), ("balcony", 6_900)]),
                // 19:00 EST.
                starts_at_ms: at(now, 30, 0, 0),
                // Opens 10:00 EST in three days.
                sale_opens_at_ms: at(now, 3, 15, 0),
                ..on_sale(now, "USD")
            },
            sell_out: false,
        }],
    };
    let cinema = DemoVenue {
        spec: VenueSpec {
            name: "Empire Screens".into(),
            city: "New York".into(),
            region: region.into(),
            sections: vec![
                section("Dine-In", "premium", letters('A', 'C'), 12),
                section("Stadium", "regular", letters('D', 'M'), 20),
            ],
            blocked_seats: vec![],
            accessible_seats: seats("Stadium", "D", 1..=4),
        },
        events: vec![
            DemoEvent {
                spec: EventSpec {
                    title: "Orbit Nine".into(),
                    kind: EventKind::Movie,
                    genre: "sci-fi".into(),
                    language: "en".into(),
                    prices: prices(&[("premium", 2_400), ("regular", 1_800)]),
                    starts_at_ms: at(now, 1, 23, 30),
                    ..on_sale(now, "USD")
                },
                sell_out: false,
            },
            DemoEvent {
                spec: EventSpec {
                    title: "La Casa del Río".into(),
                    kind: EventKind::Movie,
                    genre: "drama".into(),
                    language: "es".into(),
                    prices: prices(&[("premium", 2_200), ("regular", 1_600)]),
                    starts_at_ms: at(now, 2, 0, 30),
                    ..on_sale(now, "USD")
                },
                sell_out: false,
            },
        ],
    };
    let arena = DemoVenue {
        spec: VenueSpec {
            name: "Back Bay Arena".into(),
            city: "Boston".into(),
            region: region.into(),
            sections: vec![
                section("Courtside", "premium", letters('A', 'C'), 40),
                section("Lower-Bowl", "regular", numbers(30), 120),
                section("Upper-Bowl", "balcony", numbers(25), 160),
            ],
            // The scorer's table.
            blocked_seats: seats("Lower-Bowl", "1", 58..=63),
            accessible_seats: seats("Lower-Bowl", "30", 1..=12),
        },
        events: vec![DemoEvent {
            spec: EventSpec {
                title: "Boston Harbors vs Brooklyn Bridges".into(),
                kind: EventKind::Sports,
                genre: "basketball".into(),
                language: "en".into(),
                prices: prices(&[("premium", 45_000), ("regular", 12_500), ("balcony", 5_500)]),
                starts_at_ms: at(now, 9, 0, 30),
                refund_policy: Some(vec![
                    RefundTier { min_hours_before: 48, percent: 100 },
                    RefundTier { min_hours_before: 24, percent: 50 },
                ]),
                ..on_sale(now, "USD")
            },
            sell_out: false,
        }],
    };
    let amphitheatre = DemoVenue {
        spec: VenueSpec {
            name: "Congress Avenue Arena".into(),
            city: "Austin".into(),
            region: region.into(),
            sections: vec![
                section("Floor", "premium", numbers(20), 50),
                section("Lower-Level", "regular", numbers(20), 80),
                section("Upper-Level", "balcony", numbers(15), 100),
            ],
            blocked_seats: seats("Floor", "20", 24..=27),
            accessible_seats: seats("Lower-Level", "20", 1..=8),
        },
        events: vec![DemoEvent {
            spec: EventSpec {
                title: "Willow Creek: Lone Star Sessions".into(),
                kind: EventKind::Concert,
                genre: "country".into(),
                language: "en".into(),
                prices: prices(&[("premium", 14_900), ("regular", 8_900), ("balcony", 5_900)]),
                // 20:00 CDT.
                starts_at_ms: at(now, 15, 1, 0),
                max_seats_per_hold: Some(8),
                hold_ttl_secs: Some(480),
                ..on_sale(now, "USD")
            },
            sell_out: false,
        }],
    };
    RegionCatalog { region, venues: vec![theatre, cinema, arena, amphitheatre] }
}

/// A 50,000-seat cricket stadium: two premium stands behind the wicket, a
/// lower and an upper tier all round. The sightscreens behind the bowler's
/// arm at both ends take seats out of sale.
fn marine_lines_stadium() -> VenueSpec {
    let mut sections =
        vec![section("Pavilion", "premium", numbers(20), 150), section("Club", "premium", numbers(20), 100)];
    for stand in ["North", "East", "South", "West"] {
        sections.push(section(&format!("{stand}-Lower"), "regular", numbers(25), 200));
    }
    for stand in ["North", "East", "South", "West"] {
        sections.push(section(&format!("{stand}-Upper"), "upper", numbers(50), 125));
    }
    let mut blocked = Vec::new();
    for stand in ["North-Lower", "South-Lower"] {
        for row in ["1", "2"] {
            blocked.extend(seats(stand, row, 96..=105));
        }
    }
    VenueSpec {
        name: "Marine Lines Stadium".into(),
        city: "Mumbai".into(),
        region: "ap-south".into(),
        sections,
        blocked_seats: blocked,
        accessible_seats: [
            seats("East-Lower", "25", 1..=10),
            seats("West-Lower", "25", 1..=10),
            seats("Club", "20", 1..=4),
        ]
        .concat(),
    }
}

/// An event on sale since a week before `now`, with the contract's defaults;
/// callers set what differs.
fn on_sale(now: Millis, currency: &str) -> EventSpec {
    EventSpec {
        venue: VENUE_NOT_CREATED,
        title: String::new(),
        kind: EventKind::Concert,
        starts_at_ms: at(now, 7, 0, 0),
        genre: String::new(),
        language: String::new(),
        currency: currency.into(),
        prices: Vec::new(),
        sale_opens_at_ms: day_start(now).saturating_sub(7 * DAY),
        sale_closes_at_ms: None,
        max_seats_per_hold: None,
        hold_ttl_secs: None,
        refund_policy: None,
        waiting_room: None,
    }
}

fn day_start(now: Millis) -> Millis {
    now - now % DAY
}

/// `hour:minute` UTC, `days` days after today.
fn at(now: Millis, days: u64, hour: u64, minute: u64) -> Millis {
    assert!(days >= 1, "demo events start after today so that they are ahead of `now`");
    assert!(hour < 24 && minute < 60);
    day_start(now) + days * DAY + hour * HOUR + minute * MINUTE
}

fn prices(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|&(category, price)| (category.to_string(), price)).collect()
}

fn section(name: &str, category: &str, rows: Vec<String>, seats: u32) -> SectionSpec {
    SectionSpec {
        name: name.into(),
        category: category.into(),
        rows: rows.into_iter().map(|label| RowSpec { label, seats }).collect(),
    }
}

/// Row labels `first..=last` (`A`, `B`, ...).
fn letters(first: char, last: char) -> Vec<String> {
    (first..=last).map(String::from).collect()
}

/// Row labels `1..=n`.
fn numbers(n: u32) -> Vec<String> {
    (1..=n).map(|r| r.to_string()).collect()
}

/// Seat labels of one row.
fn seats(section: &str, row: &str, numbers: RangeInclusive<u32>) -> Vec<String> {
    numbers.map(|n| format!("{section}-{row}-{n}")).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use statemachine::{Counts, EventView, Op};
    use time::macros::datetime;

    use super::*;
    use crate::shard::{Clock, LocalShard};

    fn t0() -> Millis {
        (datetime!(2026-11-22 10:00 UTC).unix_timestamp() * 1000) as Millis
    }

    fn loaded_shards(now: Millis) -> Vec<LocalShard> {
        catalog(now)
            .iter()
            .map(|c| {
                let mut shard = LocalShard::new(c.region, Clock::Fixed(now));
                let report = load(&mut shard, c).expect("the demo loads");
                assert!(!report.already_present);
                assert_eq!(report.replayed, 0);
                shard
            })
            .collect()
    }

    fn all_events(shard: &LocalShard) -> Vec<EventView> {
        let s = shard.state();
        s.event_ids().map(|id| s.event(id, shard.now_ms()).unwrap()).collect()
    }

    /// What a reader can see of a shard: venues, events with availability,
    /// every seat's status, and every demo user's bookings.
    fn visible(shard: &LocalShard) -> String {
        let s = shard.state();
        let now = shard.now_ms();
        let mut out = String::new();
        for id in s.venue_ids() {
            out += &format!("{:?}\n", s.venue(id));
        }
        for id in s.event_ids() {
            out += &format!("{:?}\n{:?}\n", s.event(id, now), s.seat_map(id, now).map(|m| m.seats));
        }
        for user in USERS {
            out += &format!("{:?}\n{:?}\n", s.user_bookings(user, now), s.user_holds(user, now));
        }
        out
    }

    #[test]
    fn three_regions_each_in_its_own_shard() {
        let regions: Vec<_> = catalog(t0()).iter().map(|c| c.region).collect();
        assert_eq!(regions, REGIONS);
        for shard in loaded_shards(t0()) {
            let s = shard.state();
            assert!(s.venue_ids().count() >= 3, "{}", shard.region());
            for id in s.venue_ids() {
                assert_eq!(s.venue(id).unwrap().spec.region, shard.region());
            }
        }
    }

    #[test]
    fn exactly_one_venue_is_a_50000_seat_stadium() {
        let shards = loaded_shards(t0());
        let stadiums: Vec<_> = shards
            .iter()
            .flat_map(|sh| sh.state().venue_ids().map(move |id| sh.state().venue(id).unwrap()))
            .filter(|v| v.capacity >= 10_000 && v.spec.name.contains("Stadium"))
            .collect();
        assert_eq!(stadiums.len(), 1);
        assert_eq!(stadiums[0].capacity, STADIUM_SEATS);
        let capacities: Vec<u32> = shards
            .iter()
            .flat_map(|sh| sh.state().venue_ids().map(move |id| sh.state().venue(id).unwrap().capacity))
            .collect();
        assert_eq!(capacities.iter().filter(|&&c| c == STADIUM_SEATS).count(), 1);
    }

    #[test]
    fn every_kind_of_event_with_the_regions_currency() {
        let mut kinds = BTreeSet::new();
        for shard in loaded_shards(t0()) {
            for event in all_events(&shard) {
                kinds.insert(event.kind);
                let currency = match event.city.as_str() {
                    "Mumbai" | "Bengaluru" => "INR",
                    "London" => "GBP",
                    "Berlin" => "EUR",
                    "New York" | "Boston" | "Austin" => "USD",
                    city => panic!("unexpected city {city}"),
                };
                assert_eq!(event.currency, currency, "{}", event.title);
                assert!(event.starts_at_ms >= t0() + DAY, "{} starts less than a day ahead", event.title);
                assert!(event.prices.iter().all(|(_, p)| *p > 0));
            }
        }
        let all = [EventKind::Movie, EventKind::Concert, EventKind::Sports, EventKind::Theater];
        assert_eq!(kinds, all.into_iter().collect());
    }

    #[test]
    fn some_sales_are_open_and_at_least_one_opens_later() {
        let mut open = 0;
        let mut later = Vec::new();
        for shard in loaded_shards(t0()) {
            for event in all_events(&shard) {
                if event.sale_opens_at_ms <= t0() {
                    open += 1;
                } else {
                    later.push((shard.clone(), event));
                }
            }
        }
        assert!(open >= 5);
        assert!(!later.is_empty());
        for (mut shard, event) in later {
            let hold = Op::Hold {
                event: event.id,
                user: "alice".into(),
                selection: Selection::Best { count: 1, category: "premium".into(), together: false, accessible: false },
            };
            let applied = shard.propose(Command::new("alice", "early", hold)).unwrap();
            assert_eq!(applied.result, Err(Rejection::NotOnSale), "{}", event.title);
        }
    }

    #[test]
    fn exactly_one_event_is_sold_out_and_it_takes_a_waitlist() {
        let mut sold_out = Vec::new();
        for shard in loaded_shards(t0()) {
            for event in all_events(&shard) {
                if event.availability.iter().all(|(_, c)| c.available == 0) {
                    sold_out.push((shard.clone(), event));
                } else {
                    assert_eq!(
                        event.availability.iter().map(|(_, c)| c.held + c.booked).sum::<u32>(),
                        0,
                        "{} has seats taken",
                        event.title
                    );
                }
            }
        }
        assert_eq!(sold_out.len(), 1);
        let (mut shard, event) = sold_out.pop().unwrap();
        let sellable = catalog(t0())
            .iter()
            .flat_map(|c| c.events().filter(|(_, e)| e.sell_out).map(|(v, _)| v.spec.clone()).collect::<Vec<_>>())
            .next()
            .unwrap();
        assert!(sellable.blocked_seats.len() < 10, "the sold-out venue is small");
        for (_, counts) in &event.availability {
            assert_eq!(*counts, Counts { available: 0, held: 0, booked: counts.booked, blocked: counts.blocked });
            assert!(counts.booked > 0);
        }
        let capacity: u32 = event.availability.iter().map(|(_, c)| c.total()).sum();
        assert!(capacity <= 100, "the sold-out venue is small");
        let join = Op::JoinWaitlist { event: event.id, user: "dave".into(), count: 2, category: "premium".into() };
        let applied = shard.propose(Command::new("dave", "wait", join)).unwrap();
        assert!(matches!(applied.result, Ok(Outcome::WaitlistJoined { position: 1, .. })), "{applied:?}");
    }

    #[test]
    fn every_shard_keeps_its_invariants() {
        for shard in loaded_shards(t0()) {
            shard.state().check_invariants().unwrap_or_else(|v| panic!("{}: {v}", shard.region()));
            let restored = State::restore(&shard.state().snapshot()).expect("the snapshot restores");
            assert_eq!(&restored, shard.state());
        }
    }

    #[test]
    fn the_same_now_gives_the_same_bytes() {
        let a: Vec<_> = loaded_shards(t0()).iter().map(|s| s.state().snapshot()).collect();
        let b: Vec<_> = loaded_shards(t0()).iter().map(|s| s.state().snapshot()).collect();
        assert_eq!(a, b);
        assert_eq!(catalog(t0()), catalog(t0()));
        assert_ne!(catalog(t0()), catalog(t0() + 2 * DAY));
    }

    #[test]
    fn loading_twice_changes_nothing() {
        let catalogs = catalog(t0());
        for (mut shard, c) in loaded_shards(t0()).into_iter().zip(&catalogs) {
            let before = shard.state().snapshot();
            let first_events = shard.read(|s| s.event_ids().collect::<Vec<_>>());
            let report = load(&mut shard, c).unwrap();
            assert!(report.already_present);
            assert_eq!(report.proposed, 0);
            assert_eq!(report.events.iter().map(|(_, id)| *id).collect::<Vec<_>>(), first_events);
            assert_eq!(shard.state().snapshot(), before, "{}", c.region);
        }
    }

    #[test]
    fn a_catalog_from_another_day_is_recognised() {
        // A restart the next day builds the catalog for a later `now`; the
        // shard still holds the demo and nothing is proposed.
        for (mut shard, c) in loaded_shards(t0()).into_iter().zip(catalog(t0() + DAY)) {
            let before = shard.state().snapshot();
            assert!(load(&mut shard, &c).unwrap().already_present);
            assert_eq!(shard.state().snapshot(), before);
        }
    }

    #[test]
    fn proposing_again_is_answered_by_the_exactly_once_table() {
        let catalogs = catalog(t0());
        for (mut shard, c) in loaded_shards(t0()).into_iter().zip(&catalogs) {
            let before = visible(&shard);
            let report = propose_all(&mut shard, c).unwrap();
            assert!(report.proposed > 0);
            assert_eq!(report.replayed, report.proposed, "{}", c.region);
            assert_eq!(visible(&shard), before, "{}", c.region);
            shard.state().check_invariants().unwrap();
        }
    }

    /// A shard whose log stops accepting commands after a number of them,
    /// like a leader that crashes partway through a load.
    struct Crashing {
        inner: LocalShard,
        accept: u32,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("leader lost")]
    struct LeaderLost;

    impl Shard for Crashing {
        type Error = LeaderLost;

        fn region(&self) -> &str {
            self.inner.region()
        }

        fn propose(&mut self, cmd: Command) -> Result<Applied, LeaderLost> {
            if self.accept == 0 {
                return Err(LeaderLost);
            }
            self.accept -= 1;
            Ok(self.inner.propose(cmd).expect("in-process shards accept every command"))
        }

        fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
            self.inner.read(f)
        }

        fn now_ms(&self) -> Millis {
            self.inner.now_ms()
        }
    }

    #[test]
    fn an_interrupted_load_resumes_without_duplicates() {
        let catalogs = catalog(t0());
        let complete = loaded_shards(t0());
        for (c, complete) in catalogs.iter().zip(&complete) {
            let total = complete.state().last_index() as u32;
            for cut in [1, total / 2, total - 1] {
                let mut shard = Crashing { inner: LocalShard::new(c.region, Clock::Fixed(t0())), accept: cut };
                let err = load(&mut shard, c).unwrap_err();
                assert!(matches!(err, LoadError::Shard { .. }), "{err}");
                shard.accept = u32::MAX;
                let report = load(&mut shard, c).unwrap();
                assert_eq!((report.proposed, report.replayed), (total, cut), "{} cut at {cut}", c.region);
                assert_eq!(visible(&shard.inner), visible(complete), "{} cut at {cut}", c.region);
                shard.inner.state().check_invariants().unwrap();
            }
        }
    }

    #[test]
    fn a_catalog_for_another_region_is_refused() {
        let catalogs = catalog(t0());
        let mut shard = LocalShard::new("eu-west", Clock::Fixed(t0()));
        let err = load(&mut shard, &catalogs[0]).unwrap_err();
        assert!(matches!(err, LoadError::WrongShard { catalog: "ap-south", .. }), "{err}");
        assert_eq!(shard.state().last_index(), 0);
    }

    #[test]
    fn layouts_have_blocked_and_accessible_seats_and_categories() {
        let catalogs = catalog(t0());
        let venues: Vec<_> = catalogs.iter().flat_map(|c| &c.venues).collect();
        assert!(venues.len() >= 10);
        let cities: BTreeSet<_> = venues.iter().map(|v| v.spec.city.as_str()).collect();
        for city in ["Mumbai", "Bengaluru", "London", "Berlin", "New York", "Austin"] {
            assert!(cities.contains(city), "{city}");
        }
        assert!(venues.iter().filter(|v| !v.spec.blocked_seats.is_empty()).count() >= 5);
        assert!(venues.iter().all(|v| !v.spec.accessible_seats.is_empty()));
        let categories: BTreeSet<_> =
            venues.iter().flat_map(|v| v.spec.sections.iter().map(|s| s.category.as_str())).collect();
        for category in ["premium", "regular", "balcony"] {
            assert!(categories.contains(category), "{category}");
        }
    }
}
