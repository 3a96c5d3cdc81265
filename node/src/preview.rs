//! `ticketd preview`, the in-process preview: three region shards in this
//! process, the demo catalog, a summary of what the shards hold, and a
//! scripted booking session that goes through the real rules.
//!
//! With a data directory, each shard is kept there as a snapshot
//! (`<region>.snapshot`) and restored on the next start; the catalog is then
//! recognised and not loaded again, and the session books on top of what the
//! earlier runs left. Replication and the HTTP gateway are not part of it yet.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use statemachine::{
    Applied, Command, Counts, DomainEvent, EventId, EventKind, EventView, HoldOrigin, HoldReceipt, Millis, Op, Outcome,
    Rejection, ReleaseReason, SeatMap, SeatStatus, Selection, State, VenueSpec,
};

use crate::demo::{self, LoadReport, RegionCatalog, ADMIN, STADIUM_SEATS, USERS};
use crate::shard::{wall_clock_ms, Clock, LocalShard, Shard};
use crate::text::{money, rfc3339};

/// Options of `ticketd preview`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreviewOptions {
    /// Keep the shards here between runs.
    pub data_dir: Option<PathBuf>,
    /// Run as if the clock read this (for reproducible output); else the wall clock.
    pub now_ms: Option<Millis>,
}

/// Parses a `--now` value (RFC 3339).
pub fn parse_time(text: &str) -> Result<Millis, String> {
    crate::text::parse_rfc3339(text)
}

/// Runs `ticketd preview`, writing what happens to `out`.
pub fn run(opts: &PreviewOptions, out: &mut dyn Write) -> anyhow::Result<()> {
    let now = opts.now_ms.unwrap_or_else(wall_clock_ms);
    let clock = match opts.now_ms {
        Some(ms) => Clock::Fixed(ms),
        None => Clock::System,
    };
    writeln!(out, "ticketd preview: in-process preview at {}", rfc3339(now))?;
    writeln!(
        out,
        "The three region shards run inside this process without replication and nothing listens on the \
         network; `ticketd dev` runs the replicated cluster and the HTTP gateway."
    )?;

    let mut shards = open_shards(opts.data_dir.as_deref(), clock, out)?;
    let catalogs = demo::catalog(now);
    let mut reports = Vec::with_capacity(catalogs.len());
    for (shard, catalog) in shards.iter_mut().zip(&catalogs) {
        let report =
            demo::load(shard, catalog).with_context(|| format!("loading the demo catalog of {}", catalog.region))?;
        let what = if report.already_present {
            "already present, nothing proposed".to_string()
        } else if report.replayed > 0 {
            format!("resumed ({} commands, {} answered by the exactly-once table)", report.proposed, report.replayed)
        } else {
            format!("loaded ({} commands)", report.proposed)
        };
        writeln!(out, "catalog {}: {what}", catalog.region)?;
        reports.push(report);
    }
    writeln!(out, "demo users: {}; admin: {ADMIN}", USERS.join(", "))?;

    for shard in &shards {
        summary(shard, out)?;
    }
    session(&mut shards, &catalogs, &reports, out)?;

    if let Some(dir) = &opts.data_dir {
        save(dir, &shards)?;
        writeln!(out, "\ndata: saved the snapshots of {} to {}", demo::REGIONS.join(", "), dir.display())?;
    }
    writeln!(out, "\nIn-process preview done. For the replicated cluster and the HTTP API, run `ticketd dev`.")?;
    Ok(())
}

fn snapshot_path(dir: &Path, region: &str) -> PathBuf {
    dir.join(format!("{region}.snapshot"))
}

/// One shard per region: restored from the data directory when it holds
/// one, new otherwise. Says which it did.
fn open_shards(dir: Option<&Path>, clock: Clock, out: &mut dyn Write) -> anyhow::Result<Vec<LocalShard>> {
    let Some(dir) = dir else {
        writeln!(out, "data: in memory only, created new data (pass --data-dir DIR to keep it between runs)")?;
        return Ok(demo::REGIONS.iter().map(|r| LocalShard::new(*r, clock)).collect());
    };
    fs::create_dir_all(dir).with_context(|| format!("creating the data directory {}", dir.display()))?;
    let mut shards = Vec::new();
    let mut restored = Vec::new();
    for region in demo::REGIONS {
        let path = snapshot_path(dir, region);
        if path.exists() {
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            // A snapshot that does not restore is reported, never replaced:
            // it may be the only copy of someone's data.
            let shard = LocalShard::restore(region, &bytes, clock)
                .with_context(|| format!("restoring {} (move it away to start over)", path.display()))?;
            restored.push(format!("{region} at log index {}", shard.state().last_index()));
            shards.push(shard);
        } else {
            restored.push(format!("{region} new"));
            shards.push(LocalShard::new(region, clock));
        }
    }
    if restored.iter().all(|r| r.ends_with(" new")) {
        writeln!(out, "data: created new data in {}", dir.display())?;
    } else {
        writeln!(out, "data: loaded existing data from {} ({})", dir.display(), restored.join(", "))?;
    }
    Ok(shards)
}

/// Writes every shard's snapshot; a crash mid-write leaves the previous
/// snapshot in place.
fn save(dir: &Path, shards: &[LocalShard]) -> anyhow::Result<()> {
    for shard in shards {
        let path = snapshot_path(dir, shard.region());
        let tmp = path.with_extension("snapshot.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(&shard.state().snapshot())?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Summary

fn summary<S: Shard>(shard: &S, out: &mut dyn Write) -> anyhow::Result<()> {
    let now = shard.now_ms();
    let (venues, mut events, index) = shard.read(|s| {
        let venues: Vec<_> = s.venue_ids().filter_map(|id| s.venue(id)).collect();
        let events: Vec<_> = s.event_ids().filter_map(|id| s.event(id, now)).collect();
        (venues, events, s.last_index())
    });
    events.sort_by_key(|e| (e.starts_at_ms, e.id));
    writeln!(out, "\n== {}: {} venues, {} events, log index {index}", shard.region(), venues.len(), events.len())?;
    writeln!(out, "venues")?;
    for venue in &venues {
        let mut categories: Vec<(String, u32)> = Vec::new();
        for section in &venue.spec.sections {
            let seats: u32 = section.rows.iter().map(|r| r.seats).sum();
            match categories.iter_mut().find(|(c, _)| *c == section.category) {
                Some((_, n)) => *n += seats,
                None => categories.push((section.category.clone(), seats)),
            }
        }
        let categories: Vec<String> = categories.iter().map(|(c, n)| format!("{c} {n}")).collect();
        writeln!(
            out,
            "  {}, {}: {} seats ({}); {} blocked, {} accessible",
            venue.spec.name,
            venue.spec.city,
            venue.capacity,
            categories.join(", "),
            venue.spec.blocked_seats.len(),
            venue.spec.accessible_seats.len()
        )?;
    }
    writeln!(out, "events")?;
    for event in &events {
        writeln!(
            out,
            "  {:<8} {}  {} (event {})",
            event.kind.as_str(),
            rfc3339(event.starts_at_ms),
            event.title,
            event.id
        )?;
        writeln!(
            out,
            "           {}, {} · {} · {} · {}",
            event.venue_name,
            event.city,
            event.genre,
            event.language,
            sale_status(event, now)
        )?;
        let spec = venues.iter().find(|v| v.id == event.venue).map(|v| &v.spec);
        let categories: Vec<String> = in_layout_order(&event.availability, spec)
            .into_iter()
            .map(|(category, counts)| {
                let price = event.prices.iter().find(|(c, _)| c == category).map_or(0, |(_, p)| *p);
                format!(
                    "{category} {}/{} at {}",
                    counts.available,
                    counts.total() - counts.blocked,
                    money(price, &event.currency)
                )
            })
            .collect();
        writeln!(out, "           {}", categories.join(" · "))?;
    }
    Ok(())
}

/// Categories as the venue lists them, best first (the state machine keeps
/// them sorted by name).
fn in_layout_order<'a>(availability: &'a [(String, Counts)], venue: Option<&VenueSpec>) -> Vec<&'a (String, Counts)> {
    let rank = |category: &str| {
        venue.and_then(|v| v.sections.iter().position(|s| s.category == category)).unwrap_or(usize::MAX)
    };
    let mut ordered: Vec<_> = availability.iter().collect();
    ordered.sort_by_key(|(category, _)| rank(category));
    ordered
}

fn sale_status(event: &EventView, now: Millis) -> String {
    if now >= event.starts_at_ms {
        "started".into()
    } else if now < event.sale_opens_at_ms {
        format!("sale opens {}", rfc3339(event.sale_opens_at_ms))
    } else if now >= event.sale_closes_at_ms {
        "sale closed".into()
    } else if event.available() == 0 {
        format!("sold out, {} on the waitlist", event.waitlist_len)
    } else {
        "on sale".into()
    }
}

// ---------------------------------------------------------------------------
// The scripted session

/// The session's commands: client id is the user, as for requests from the
/// API, and request ids name the run so a later run on kept data never
/// collides with an earlier one.
struct Session<'a> {
    out: &'a mut dyn Write,
    run: u64,
    sent: u32,
}

impl Session<'_> {
    fn send<S: Shard>(&mut self, shard: &mut S, user: &str, op: Op) -> anyhow::Result<Applied> {
        self.sent += 1;
        let request = format!("dev:{}:{}", self.run, self.sent);
        shard.propose(Command::new(user, request, op)).with_context(|| format!("proposing to {}", shard.region()))
    }

    /// Prints a command's domain events, amounts in `currency`.
    fn events(&mut self, applied: &Applied, currency: &str) -> anyhow::Result<()> {
        for event in &applied.events {
            writeln!(self.out, "     event {}", describe(event, currency))?;
        }
        Ok(())
    }

    fn rejected(&mut self, who: &str, rejection: &Rejection) -> anyhow::Result<()> {
        writeln!(self.out, "   {who} was refused: {}", describe_rejection(rejection))?;
        Ok(())
    }
}

/// An event the session uses: its shard and what it is.
struct Target {
    shard: usize,
    event: EventView,
}

fn session<S: Shard>(
    shards: &mut [S],
    catalogs: &[RegionCatalog],
    reports: &[LoadReport],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let now = shards.iter().map(|s| s.now_ms()).max().unwrap_or(0);
    let run = shards.iter().map(|s| s.read(|st| st.last_index())).sum();
    writeln!(out, "\n== scripted session at {}", rfc3339(now))?;
    let mut session = Session { out, run, sent: 0 };

    match find_play(shards) {
        Some(play) => explicit_seats(&mut session, shards, &play)?,
        None => writeln!(session.out, "1. no play is on sale with two premium seats together; skipped")?,
    }
    match find_stadium(shards) {
        Some(stadium) => best_available(&mut session, shards, &stadium)?,
        None => writeln!(session.out, "4. no stadium event is on sale; skipped")?,
    }
    match find_sold_out(shards, catalogs, reports) {
        Some(sold_out) => waitlist(&mut session, shards, &sold_out)?,
        None => writeln!(session.out, "5. the demo has no sold-out event; skipped")?,
    }
    let plural = if session.sent == 1 { "" } else { "s" };
    writeln!(session.out, "session: {} command{plural} proposed", session.sent)?;
    Ok(())
}

/// alice holds two seats she picked, carol asks for one of them, alice pays.
fn explicit_seats<S: Shard>(session: &mut Session<'_>, shards: &mut [S], play: &Target) -> anyhow::Result<()> {
    let shard = &mut shards[play.shard];
    let event = &play.event;
    let map = seat_map(shard, event.id)?;
    let Some(pair) = pick_pair(&map, "premium") else {
        writeln!(session.out, "1. {} has no two premium seats together left; skipped", event.title)?;
        return Ok(());
    };
    writeln!(
        session.out,
        "1. alice holds {} for {} ({}, {})",
        pair.join(", "),
        event.title,
        event.city,
        shard.region()
    )?;
    let applied = session.send(shard, "alice", seats_op(event.id, "alice", pair.to_vec()))?;
    let hold = match &applied.result {
        Ok(Outcome::Held(receipt)) => receipt.clone(),
        Ok(other) => bail!("a hold answered {other:?}"),
        Err(rejection) => return session.rejected("alice", rejection),
    };
    print_hold(session, &hold)?;
    session.events(&applied, &event.currency)?;

    // carol wants alice's second seat and the one next to it: all or nothing.
    let mut wanted = vec![hold.seats[1].clone()];
    let map = seat_map(shard, event.id)?;
    if let Some(i) = map.seats.iter().position(|s| s.seat_id == hold.seats[1]) {
        if let Some(next) = map.seats.get(i + 1) {
            if next.row == map.seats[i].row && next.status == SeatStatus::Available {
                wanted.push(next.seat_id.clone());
            }
        }
    }
    writeln!(session.out, "2. carol asks for {}", wanted.join(", "))?;
    let applied = session.send(shard, "carol", seats_op(event.id, "carol", wanted))?;
    match &applied.result {
        Err(rejection) => session.rejected("carol", rejection)?,
        Ok(outcome) => bail!("carol got seats alice holds: {outcome:?}"),
    }

    writeln!(session.out, "3. alice pays for hold {}", hold.hold)?;
    pay(session, shard, "alice", &hold, &event.currency)
}

/// bob asks for the best four seats together at the stadium, and pays.
fn best_available<S: Shard>(session: &mut Session<'_>, shards: &mut [S], stadium: &Target) -> anyhow::Result<()> {
    let shard = &mut shards[stadium.shard];
    let event = &stadium.event;
    writeln!(
        session.out,
        "4. bob asks for the best 4 regular seats together at {} ({}, {} seats)",
        event.venue_name,
        event.title,
        event.availability.iter().map(|(_, c)| c.total()).sum::<u32>()
    )?;
    let op = Op::Hold {
        event: event.id,
        user: "bob".into(),
        selection: Selection::Best { count: 4, category: "regular".into(), together: true, accessible: false },
    };
    let applied = session.send(shard, "bob", op)?;
    let hold = match &applied.result {
        Ok(Outcome::Held(receipt)) => receipt.clone(),
        Ok(other) => bail!("a hold answered {other:?}"),
        Err(rejection) => return session.rejected("bob", rejection),
    };
    print_hold(session, &hold)?;
    session.events(&applied, &event.currency)?;
    writeln!(session.out, "   bob pays for hold {}", hold.hold)?;
    pay(session, shard, "bob", &hold, &event.currency)
}

/// dave waits for the sold-out event; alice cancels a booking there and the
/// seats go to dave in the same command; dave pays for the offer.
fn waitlist<S: Shard>(session: &mut Session<'_>, shards: &mut [S], sold_out: &Target) -> anyhow::Result<()> {
    let shard = &mut shards[sold_out.shard];
    let now = shard.now_ms();
    let event = shard.read(|s| s.event(sold_out.event.id, now)).ok_or_else(|| anyhow!("the event vanished"))?;
    let venue = shard.read(|s| s.venue(event.venue)).map(|v| v.spec);
    let counts: Vec<String> = in_layout_order(&event.availability, venue.as_ref())
        .into_iter()
        .map(|(c, n)| format!("{c} {}/{}", n.available, n.total() - n.blocked))
        .collect();
    writeln!(
        session.out,
        "5. {} at {} ({}): {}; {} available",
        event.title,
        event.venue_name,
        shard.region(),
        sale_status(&event, now),
        counts.join(", ")
    )?;
    let booking = shard.read(|s| {
        s.user_bookings("alice", now)
            .into_iter()
            .find(|b| b.event == event.id && b.status == statemachine::BookingViewStatus::Confirmed)
    });
    let Some(booking) = booking else {
        writeln!(session.out, "   alice has no booking left there to cancel; skipped")?;
        return Ok(());
    };
    let map = seat_map(shard, event.id)?;
    let category = map
        .seats
        .iter()
        .find(|s| s.seat_id == booking.seats[0])
        .map(|s| s.category.clone())
        .ok_or_else(|| anyhow!("booking {} names an unknown seat", booking.id))?;
    let count = booking.seats.len() as u32;
    writeln!(session.out, "   dave joins the waitlist for {count} {category} seats")?;
    let join = Op::JoinWaitlist { event: event.id, user: "dave".into(), count, category };
    let applied = session.send(shard, "dave", join)?;
    match &applied.result {
        Ok(Outcome::WaitlistJoined { waitlist, position }) => {
            writeln!(session.out, "   waitlist entry {waitlist}, position {position}")?;
        }
        Ok(other) => bail!("joining a waitlist answered {other:?}"),
        Err(rejection) => return session.rejected("dave", rejection),
    }
    session.events(&applied, &event.currency)?;

    writeln!(session.out, "6. alice cancels booking {} ({})", booking.id, booking.seats.join(", "))?;
    let cancel = Op::CancelBooking { booking: booking.id, user: "alice".into() };
    let applied = session.send(shard, "alice", cancel)?;
    match &applied.result {
        Ok(Outcome::Cancelled { refund_percent, refund_amount, .. }) => writeln!(
            session.out,
            "   cancelled: refund {refund_percent}% = {}",
            money(*refund_amount, &event.currency)
        )?,
        Ok(other) => bail!("a cancellation answered {other:?}"),
        Err(rejection) => return session.rejected("alice", rejection),
    }
    session.events(&applied, &event.currency)?;
    let offer = applied.events.iter().find_map(|e| match e {
        DomainEvent::WaitlistOffered { user, hold, .. } if user == "dave" => Some(*hold),
        _ => None,
    });
    let Some(offer) = offer else {
        writeln!(session.out, "   the freed seats went to someone ahead of dave in the queue")?;
        return Ok(());
    };
    let hold = shard.read(|s| s.hold(offer, now)).ok_or_else(|| anyhow!("offered hold {offer} is missing"))?;
    writeln!(
        session.out,
        "   in the same command dave was offered {} as hold {offer}, until {}",
        hold.seats.join(", "),
        rfc3339(hold.expires_at_ms)
    )?;
    writeln!(session.out, "7. dave pays for the offer")?;
    let receipt = HoldReceipt {
        hold: hold.id,
        event: hold.event,
        user: hold.user,
        seats: hold.seats,
        expires_at_ms: hold.expires_at_ms,
        total_price: hold.total_price,
        currency: hold.currency,
        origin: hold.origin,
    };
    pay(session, shard, "dave", &receipt, &event.currency)
}

/// Records a payment intent for a hold and confirms it as paid (the dev
/// mode has no payment provider: every charge succeeds).
fn pay<S: Shard>(
    session: &mut Session<'_>,
    shard: &mut S,
    user: &str,
    hold: &HoldReceipt,
    currency: &str,
) -> anyhow::Result<()> {
    let intent = format!("pi_dev_{}_{}", session.run, hold.hold);
    let begin = Op::BeginPayment { hold: hold.hold, user: user.into(), intent: intent.clone() };
    let applied = session.send(shard, user, begin)?;
    match &applied.result {
        Ok(Outcome::PaymentStarted { booking, amount, currency }) => writeln!(
            session.out,
            "   payment intent {intent}: charging {} for booking {booking}",
            money(*amount, currency)
        )?,
        Ok(other) => bail!("a payment answered {other:?}"),
        Err(rejection) => return session.rejected(user, rejection),
    }
    let confirm = Op::ConfirmHold { hold: hold.hold, user: user.into(), intent };
    let applied = session.send(shard, user, confirm)?;
    match &applied.result {
        Ok(Outcome::Booked(receipt)) => {
            let tickets: Vec<String> = receipt.tickets.iter().map(|(t, seat)| format!("{t} ({seat})")).collect();
            writeln!(
                session.out,
                "   booking {} confirmed, {}: tickets {}",
                receipt.booking,
                money(receipt.total_price, &receipt.currency),
                tickets.join(", ")
            )?;
        }
        Ok(Outcome::NotBooked { reason, refund_due }) => writeln!(
            session.out,
            "   not booked ({}); {} is owed back",
            describe_rejection(reason),
            money(*refund_due, currency)
        )?,
        Ok(other) => bail!("a confirmation answered {other:?}"),
        Err(rejection) => return session.rejected(user, rejection),
    }
    session.events(&applied, currency)
}

fn print_hold(session: &mut Session<'_>, hold: &HoldReceipt) -> anyhow::Result<()> {
    writeln!(
        session.out,
        "   hold {}: {}, {}, until {}",
        hold.hold,
        hold.seats.join(", "),
        money(hold.total_price, &hold.currency),
        rfc3339(hold.expires_at_ms)
    )?;
    Ok(())
}

fn seats_op(event: EventId, user: &str, seats: Vec<String>) -> Op {
    Op::Hold { event, user: user.into(), selection: Selection::Seats(seats) }
}

fn seat_map<S: Shard>(shard: &S, event: EventId) -> anyhow::Result<SeatMap> {
    let now = shard.now_ms();
    shard.read(|s| s.seat_map(event, now)).ok_or_else(|| anyhow!("event {event} is missing from {}", shard.region()))
}

/// Two available seats next to each other in the first row of `category`
/// that has them, as near the row's centre as possible. Accessible seats are
/// left for those who ask for them.
fn pick_pair(map: &SeatMap, category: &str) -> Option<[String; 2]> {
    for row in map.seats.chunk_by(|a, b| a.section == b.section && a.row == b.row) {
        if row[0].category != category {
            continue;
        }
        let centre2 = row.len() as u32 + 1;
        let free = |i: usize| row[i].status == SeatStatus::Available && !row[i].accessible;
        let best = (0..row.len().saturating_sub(1))
            .filter(|&i| free(i) && free(i + 1))
            .min_by_key(|&i| (row[i].number + row[i + 1].number).abs_diff(centre2));
        if let Some(i) = best {
            return Some([row[i].seat_id.clone(), row[i + 1].seat_id.clone()]);
        }
    }
    None
}

fn events_of<S: Shard>(shards: &[S]) -> Vec<Target> {
    let mut all = Vec::new();
    for (i, shard) in shards.iter().enumerate() {
        let now = shard.now_ms();
        let events: Vec<EventView> = shard.read(|s| s.event_ids().filter_map(|id| s.event(id, now)).collect());
        all.extend(events.into_iter().map(|event| Target { shard: i, event }));
    }
    all
}

/// The first play on sale, looking at London's region first (its prices
/// are in another currency than the stadium's).
fn find_play<S: Shard>(shards: &[S]) -> Option<Target> {
    let mut plays: Vec<Target> =
        events_of(shards).into_iter().filter(|t| t.event.kind == EventKind::Theater && t.event.on_sale).collect();
    plays.sort_by_key(|t| (shards[t.shard].region() != "eu-west", t.shard, t.event.id));
    plays.into_iter().next()
}

/// The first event on sale at a venue of [`STADIUM_SEATS`] seats.
fn find_stadium<S: Shard>(shards: &[S]) -> Option<Target> {
    events_of(shards).into_iter().find(|t| {
        let shard = &shards[t.shard];
        let capacity = shard.read(|s: &State| s.venue(t.event.venue).map(|v| v.capacity));
        capacity == Some(STADIUM_SEATS) && t.event.on_sale
    })
}

/// The event the demo sold out.
fn find_sold_out<S: Shard>(shards: &[S], catalogs: &[RegionCatalog], reports: &[LoadReport]) -> Option<Target> {
    for (catalog, report) in catalogs.iter().zip(reports) {
        let Some((_, demo_event)) = catalog.events().find(|(_, e)| e.sell_out) else { continue };
        let id = report.events.iter().find(|(title, _)| *title == demo_event.spec.title)?.1;
        let shard = shards.iter().position(|s| s.region() == catalog.region)?;
        let now = shards[shard].now_ms();
        let event = shards[shard].read(|s| s.event(id, now))?;
        return Some(Target { shard, event });
    }
    None
}

fn describe_rejection(rejection: &Rejection) -> String {
    match rejection {
        Rejection::SeatsUnavailable { seats } => format!("seats_unavailable: {} (not available)", seats.join(", ")),
        other => format!("{}: {other}", other.code()),
    }
}

/// A domain event in one line; `currency` is that of the event it concerns.
fn describe(event: &DomainEvent, currency: &str) -> String {
    match event {
        DomainEvent::VenueCreated { venue } => format!("VenueCreated: venue {venue}"),
        DomainEvent::EventCreated { event } => format!("EventCreated: event {event}"),
        DomainEvent::SeatsHeld { event, hold, user, seats, origin } => {
            let origin = match origin {
                HoldOrigin::User => "asked for",
                HoldOrigin::Waitlist => "waitlist offer",
            };
            format!("SeatsHeld: event {event}, hold {hold} of {user} ({origin}): {}", seats.join(", "))
        }
        DomainEvent::SeatsReleased { event, hold, user, seats, reason } => {
            let reason = match reason {
                ReleaseReason::Released => "released",
                ReleaseReason::PaymentFailed => "payment failed",
            };
            format!("SeatsReleased: event {event}, hold {hold} of {user} ({reason}): {}", seats.join(", "))
        }
        DomainEvent::SeatsExpired { event, hold, user, seats } => {
            format!("SeatsExpired: event {event}, hold {hold} of {user}: {}", seats.join(", "))
        }
        DomainEvent::SeatsBooked { event, booking, user, seats } => {
            format!("SeatsBooked: event {event}, booking {booking} of {user}: {}", seats.join(", "))
        }
        DomainEvent::BookingCancelled { event, booking, user, seats, refund_amount } => format!(
            "BookingCancelled: event {event}, booking {booking} of {user}: {}; refund {}",
            seats.join(", "),
            money(*refund_amount, currency)
        ),
        DomainEvent::TicketTransferred { event, ticket, from, to, version } => {
            format!("TicketTransferred: event {event}, ticket {ticket} from {from} to {to}, version {version}")
        }
        DomainEvent::TicketCheckedIn { event, ticket } => format!("TicketCheckedIn: event {event}, ticket {ticket}"),
        DomainEvent::WaitlistOffered { event, waitlist, user, hold } => {
            format!("WaitlistOffered: event {event}, waitlist entry {waitlist} of {user} became hold {hold}")
        }
        DomainEvent::RefundDue { intent, amount } => {
            format!("RefundDue: intent {intent}, {}", money(*amount, currency))
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const MINUTE: Millis = 60_000;

    fn t0() -> Millis {
        (datetime!(2026-11-22 10:00 UTC).unix_timestamp() * 1000) as Millis
    }

    fn run_to_string(opts: &PreviewOptions) -> String {
        let mut out = Vec::new();
        run(opts, &mut out).expect("ticketd preview runs");
        String::from_utf8(out).unwrap()
    }

    fn assert_has(output: &str, needle: &str) {
        assert!(output.contains(needle), "missing {needle:?} in:\n{output}");
    }

    #[test]
    fn the_session_goes_through_the_rules() {
        let out = run_to_string(&PreviewOptions { data_dir: None, now_ms: Some(t0()) });
        assert_has(&out, "in-process preview");
        assert_has(&out, "run `ticketd dev`");
        assert_has(&out, "data: in memory only");
        for region in demo::REGIONS {
            assert_has(&out, &format!("catalog {region}: loaded ("));
            assert_has(&out, &format!("\n== {region}: "));
        }
        assert_has(&out, "Marine Lines Stadium, Mumbai: 50000 seats");
        assert_has(&out, "sold out, 0 on the waitlist");
        assert_has(&out, "sale opens ");
        // alice holds a pair of London seats and carol's request names one of them.
        assert_has(&out, "1. alice holds Stalls-A-14, Stalls-A-15 for The Winter's Tale");
        assert_has(&out, "2. carol asks for Stalls-A-15, Stalls-A-16");
        assert_has(&out, "carol was refused: seats_unavailable: Stalls-A-15 (not available)");
        assert_has(&out, "event SeatsBooked: ");
        assert_has(&out, "4. bob asks for the best 4 regular seats together at Marine Lines Stadium");
        assert_has(&out, "dave joins the waitlist for 2 premium seats");
        assert_has(&out, "waitlist entry ");
        assert_has(&out, "cancelled: refund 100% = INR 5000.00");
        assert_has(&out, "in the same command dave was offered Front-A-1, Front-A-2 as hold ");
        assert_has(&out, "event WaitlistOffered: ");
        assert_has(&out, "event SeatsHeld: ");
        assert_has(&out, "(waitlist offer): Front-A-1, Front-A-2");
        assert_has(&out, "event RefundDue: ");
        assert!(!out.contains("refused: hold"), "{out}");
        assert_eq!(out.matches(" confirmed, ").count(), 3, "{out}");
    }

    #[test]
    fn the_same_now_gives_the_same_output() {
        let opts = PreviewOptions { data_dir: None, now_ms: Some(t0()) };
        assert_eq!(run_to_string(&opts), run_to_string(&opts));
    }

    #[test]
    fn kept_data_is_restored_and_the_session_runs_again() {
        let dir = tempfile::tempdir().unwrap();
        let opts = |now| PreviewOptions { data_dir: Some(dir.path().to_path_buf()), now_ms: Some(now) };
        let first = run_to_string(&opts(t0()));
        assert_has(&first, "data: created new data in ");
        assert_has(&first, "data: saved the snapshots of ap-south, eu-west, us-east");
        let mut bookings = first.matches(" confirmed, ").count();
        for (i, later) in [MINUTE, 2 * MINUTE, 3 * MINUTE].into_iter().enumerate() {
            let out = run_to_string(&opts(t0() + later));
            assert_has(&out, "data: loaded existing data from ");
            for region in demo::REGIONS {
                assert_has(&out, &format!("catalog {region}: already present, nothing proposed"));
            }
            // Only carol, who asks for a seat alice holds, is refused.
            assert_eq!(out.matches(" was refused: ").count(), 1, "run {}:\n{out}", i + 2);
            assert_has(&out, "carol was refused: seats_unavailable: ");
            assert_has(&out, "in the same command dave was offered ");
            bookings += out.matches(" confirmed, ").count();
        }
        assert_eq!(bookings, 12);
        for region in demo::REGIONS {
            let bytes = fs::read(snapshot_path(dir.path(), region)).unwrap();
            let state = State::restore(&bytes).unwrap();
            state.check_invariants().unwrap();
            assert_eq!(state.user_bookings("bob", t0()).iter().filter(|b| b.seats.len() == 4).count(), {
                if region == "ap-south" {
                    4
                } else {
                    0
                }
            });
        }
    }

    #[test]
    fn a_broken_snapshot_is_reported_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = snapshot_path(dir.path(), "eu-west");
        fs::write(&path, b"not a snapshot").unwrap();
        let opts = PreviewOptions { data_dir: Some(dir.path().to_path_buf()), now_ms: Some(t0()) };
        let err = run(&opts, &mut Vec::new()).unwrap_err();
        assert!(format!("{err:#}").contains("eu-west.snapshot"), "{err:#}");
        assert_eq!(fs::read(&path).unwrap(), b"not a snapshot");
    }
}
