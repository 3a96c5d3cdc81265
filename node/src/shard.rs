//! A region shard as the rest of the node sees it: commands go in through
//! [`Shard::propose`], reads go to the shard's applied state.
//!
//! Today the only shard is [`LocalShard`], a `statemachine::State` inside
//! this process with its own log index and clock. The Raft-backed shard
//! implements the same trait, so code written against it (the demo loader,
//! the dev session) runs unchanged on the replicated log.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use statemachine::{Applied, ApplyCtx, Command, Limits, Millis, SnapshotError, State};

/// A region shard: one ordered log of commands and the state they build.
pub trait Shard {
    /// Why a command did not make it into the log (no leader, storage
    /// failure, ...). Business outcomes such as "sold out" are not errors:
    /// they come back inside [`Applied`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// The region this shard owns (`ap-south`, ...).
    fn region(&self) -> &str;

    /// Appends `cmd` to the log, waits until it is applied, and returns what
    /// applying it produced. The shard stamps the entry's index and time.
    fn propose(&mut self, cmd: Command) -> Result<Applied, Self::Error>;

    /// Runs `f` on the applied state. The state reflects at least every
    /// command whose `propose` has returned.
    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T;

    /// The time reads should be made at: never before the shard's own clock,
    /// so a hold the log already expired never reads as live.
    fn now_ms(&self) -> Millis;
}

/// Where a [`LocalShard`] gets the time it stamps on entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The machine's wall clock.
    System,
    /// A fixed time, for reproducible runs and tests.
    Fixed(Millis),
}

impl Clock {
    /// The clock's reading.
    pub fn now_ms(self) -> Millis {
        match self {
            Clock::System => wall_clock_ms(),
            Clock::Fixed(ms) => ms,
        }
    }
}

/// Milliseconds since the Unix epoch by the machine's clock.
pub fn wall_clock_ms() -> Millis {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).expect("the system clock is before 1970");
    u64::try_from(since_epoch.as_millis()).expect("the system clock is past the year 584 million")
}

/// A shard applied in this process, without replication: the log index is
/// the state's last applied index plus one, and entry times come from a
/// [`Clock`].
#[derive(Clone, Debug)]
pub struct LocalShard {
    region: String,
    state: State,
    clock: Clock,
}

impl LocalShard {
    /// An empty shard with the default limits.
    pub fn new(region: impl Into<String>, clock: Clock) -> LocalShard {
        LocalShard { region: region.into(), state: State::new(Limits::default()), clock }
    }

    /// A shard restored from a [`State::snapshot`]; the log continues after
    /// the snapshot's last index.
    pub fn restore(region: impl Into<String>, snapshot: &[u8], clock: Clock) -> Result<LocalShard, SnapshotError> {
        Ok(LocalShard { region: region.into(), state: State::restore(snapshot)?, clock })
    }

    /// The applied state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Changes where entry times come from (tests move a fixed clock forward).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }
}

impl Shard for LocalShard {
    type Error = Infallible;

    fn region(&self) -> &str {
        &self.region
    }

    fn propose(&mut self, cmd: Command) -> Result<Applied, Infallible> {
        let index = self.state.last_index().checked_add(1).expect("log index overflow");
        // A leader never stamps a time before one it stamped already; the
        // state machine would clamp it anyway, but the entry should say what
        // the state machine will use.
        let time_ms = self.clock.now_ms().max(self.state.clock_ms());
        let applied = self.state.apply(&cmd, ApplyCtx { index, time_ms });
        assert_eq!(self.state.last_index(), index, "the state did not record the entry's index");
        Ok(applied)
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state)
    }

    fn now_ms(&self) -> Millis {
        self.clock.now_ms().max(self.state.clock_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statemachine::{Op, Outcome};

    #[test]
    fn entries_get_increasing_indexes_and_monotonic_time() {
        let mut shard = LocalShard::new("eu-west", Clock::Fixed(5_000));
        let op = Op::ExpireHolds { holds_max: 10 };
        shard.propose(Command::new("c", "r1", op.clone())).unwrap();
        assert_eq!(shard.state().last_index(), 1);
        assert_eq!(shard.state().clock_ms(), 5_000);
        // A clock that steps back does not move the shard's time back.
        shard.set_clock(Clock::Fixed(1_000));
        shard.propose(Command::new("c", "r2", op)).unwrap();
        assert_eq!(shard.state().last_index(), 2);
        assert_eq!(shard.state().clock_ms(), 5_000);
        assert_eq!(shard.now_ms(), 5_000);
    }

    #[test]
    fn a_restored_shard_continues_the_log() {
        let mut shard = LocalShard::new("eu-west", Clock::Fixed(5_000));
        let sweep = Op::ExpireHolds { holds_max: 1 };
        shard.propose(Command::new("c", "r1", sweep.clone())).unwrap();
        let mut restored = LocalShard::restore("eu-west", &shard.state().snapshot(), Clock::Fixed(6_000)).unwrap();
        assert_eq!(restored.state(), shard.state());
        let applied = restored.propose(Command::new("c", "r2", sweep)).unwrap();
        assert!(matches!(applied.result, Ok(Outcome::Swept { .. })));
        assert_eq!(restored.state().last_index(), 2);
    }
}
