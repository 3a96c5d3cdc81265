//! Faults, scheduled from a seed. The schedule is pure (a seed, a mix and
//! a time limit give the same faults at the same times); targets that
//! depend on the cluster (the leader) are resolved when a fault starts,
//! with an RNG drawn from the same seed.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::cluster::ELECTION_TIMEOUT_MS;

/// Which nodes a process or clock fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// One node at random.
    One,
    /// The leader of the region group.
    Leader,
    /// A minority at random.
    Minority,
    /// A majority at random.
    Majority,
    /// Every node.
    All,
}

/// The shape of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionKind {
    /// One node cut off from the rest.
    One,
    /// The leader cut off from the rest.
    Leader,
    /// A minority and a majority.
    Halves,
    /// Every node sees a majority, no two the same majority.
    MajoritiesRing,
    /// Two halves that only one node (the bridge) sees both of.
    Bridge,
}

/// One fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fault")]
pub enum Fault {
    /// Network partition.
    Partition {
        /// Its shape.
        kind: PartitionKind,
    },
    /// kill -9, restarted when the period ends.
    Kill {
        /// Who.
        target: Target,
    },
    /// SIGSTOP for longer than the election timeout, then SIGCONT.
    Pause {
        /// Who.
        target: Target,
    },
    /// The clock jumps by `delta_ms` and back when the period ends.
    ClockBump {
        /// Who.
        target: Target,
        /// Jump (negative: backward).
        delta_ms: i64,
    },
    /// A node (never the leader) is removed from the group's voters and
    /// added back when the period ends (the admin API's cluster
    /// operations; it keeps running meanwhile).
    Membership,
    /// The clock flips between normal and `delta_ms` every `period_ms`.
    ClockStrobe {
        /// Who.
        target: Target,
        /// Skew while on.
        delta_ms: i64,
        /// Flip period.
        period_ms: u64,
    },
}

impl Fault {
    /// A short name for reports.
    pub fn name(&self) -> String {
        match self {
            Fault::Partition { kind } => format!("partition-{kind:?}").to_lowercase(),
            Fault::Kill { target } => format!("kill-{target:?}").to_lowercase(),
            Fault::Pause { target } => format!("pause-{target:?}").to_lowercase(),
            Fault::Membership => "membership-remove-add".into(),
            Fault::ClockBump { target, delta_ms } => format!("clock-bump-{target:?}{delta_ms:+}ms").to_lowercase(),
            Fault::ClockStrobe { target, delta_ms, .. } => {
                format!("clock-strobe-{target:?}{delta_ms:+}ms").to_lowercase()
            }
        }
    }

    fn needs_network(&self) -> bool {
        matches!(self, Fault::Partition { .. })
    }
}

/// A set of faults to draw from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mix {
    /// No faults.
    None,
    /// Every partition shape.
    Partition,
    /// kill -9 and pauses of one, a minority, a majority, all, the leader;
    /// a node removed from the group and added back.
    Process,
    /// Clock bumps and strobes within the workload's tolerance.
    Clock,
    /// All of the above.
    All,
    /// Membership changes only.
    Membership,
    /// Self-test mix: every node is killed at once, now and then.
    KillAll,
    /// Self-test mix: the leader isolated, now and then.
    Isolate,
    /// Self-test mix: large clock bumps on every node, each its own.
    ClockBig,
}

impl Mix {
    /// Parses a mix name (`partition`, `process`, ...).
    pub fn parse(name: &str) -> Option<Mix> {
        serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
    }

    fn menu(self) -> Vec<Fault> {
        use Fault::*;
        use Target::*;
        let partitions = [
            PartitionKind::One,
            PartitionKind::Leader,
            PartitionKind::Halves,
            PartitionKind::MajoritiesRing,
            PartitionKind::Bridge,
        ]
        .map(|kind| Partition { kind })
        .to_vec();
        let process = vec![
            Kill { target: One },
            Kill { target: Leader },
            Kill { target: Minority },
            Kill { target: Majority },
            Kill { target: All },
            Pause { target: One },
            Pause { target: Leader },
            Pause { target: Minority },
            Membership,
        ];
        let clock = vec![
            ClockBump { target: One, delta_ms: CLOCK_SKEW_MS_MAX },
            ClockBump { target: Leader, delta_ms: -CLOCK_SKEW_MS_MAX },
            ClockBump { target: Minority, delta_ms: CLOCK_SKEW_MS_MAX / 2 },
            ClockStrobe { target: One, delta_ms: CLOCK_SKEW_MS_MAX, period_ms: 400 },
            ClockStrobe { target: Leader, delta_ms: -CLOCK_SKEW_MS_MAX / 2, period_ms: 250 },
        ];
        match self {
            Mix::None => Vec::new(),
            Mix::Partition => partitions,
            Mix::Process => process,
            Mix::Clock => clock,
            Mix::All => [partitions, process, clock].concat(),
            Mix::Membership => vec![Membership],
            Mix::KillAll => vec![Kill { target: All }],
            // The leader: a deposed leader believes it still leads, so its
            // gateway keeps reading from it.
            Mix::Isolate => vec![Partition { kind: PartitionKind::Leader }],
            Mix::ClockBig => vec![ClockBump { target: All, delta_ms: 10_000 }],
        }
    }

    /// Whether this mix exists to expose a planted bug.
    pub fn self_test(self) -> bool {
        matches!(self, Mix::KillAll | Mix::Isolate | Mix::ClockBig)
    }

    /// The largest forward and backward skew this mix injects, ms.
    pub fn clock_skew_ms(self) -> (u64, u64) {
        let mut fwd = 0u64;
        let mut back = 0u64;
        for f in self.menu() {
            if let Fault::ClockBump { delta_ms, target } | Fault::ClockStrobe { delta_ms, target, .. } = f {
                // "All" bumps give each node its own multiple of the delta.
                let scale = if target == Target::All { 5 } else { 1 };
                let d = delta_ms.unsigned_abs() * scale;
                if delta_ms > 0 {
                    fwd = fwd.max(d);
                } else {
                    back = back.max(d);
                }
            }
        }
        (fwd, back)
    }
}

/// The largest clock skew of the ordinary clock mix: well under the
/// workload's hold TTL, so hold expiry stays checkable.
pub const CLOCK_SKEW_MS_MAX: i64 = 1_500;

/// A fault and when it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Start, ms after the workload began.
    pub at_ms: u64,
    /// How long it lasts.
    pub for_ms: u64,
    /// The fault.
    #[serde(flatten)]
    pub fault: Fault,
}

/// The faults of a run: periods of a fault separated by quiet periods,
/// about a quarter of fault periods left quiet too. Partitions are left
/// out when the cluster cannot partition.
pub fn schedule(seed: u64, mix: Mix, time_limit_ms: u64, can_partition: bool) -> Vec<Step> {
    let menu: Vec<Fault> = mix.menu().into_iter().filter(|f| can_partition || !f.needs_network()).collect();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7300);
    let mut out = Vec::new();
    if menu.is_empty() {
        return out;
    }
    // Start once the workload is under way; end with time to spare.
    let mut t = 3_000u64;
    while t + 4_000 < time_limit_ms {
        let pause_ms = ELECTION_TIMEOUT_MS * 3;
        let for_ms = rng.gen_range(5_000..=9_000).max(pause_ms).min(time_limit_ms - t - 1_000);
        // The first period always has its fault, and self-test mixes have
        // no quiet periods: a run must not pass for want of faults.
        let quiet = rng.gen_bool(0.25) && !out.is_empty() && !mix.self_test();
        let fault = menu[rng.gen_range(0..menu.len())].clone();
        if !quiet {
            out.push(Step { at_ms: t, for_ms, fault });
        }
        t += for_ms + rng.gen_range(3_000..=6_000);
    }
    out
}

/// Picks the nodes a target means, given the leader if known.
pub fn targets(rng: &mut StdRng, target: Target, nodes: &[u64], leader: Option<u64>) -> Vec<u64> {
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    let n = nodes.len();
    match target {
        Target::One => shuffled[..1].to_vec(),
        Target::Leader => vec![leader.unwrap_or(shuffled[0])],
        Target::Minority => shuffled[..(n - 1) / 2].to_vec(),
        Target::Majority => shuffled[..n / 2 + 1].to_vec(),
        Target::All => shuffled,
    }
}

/// Which nodes each node drops packets of, for a partition shape.
pub fn grudges(rng: &mut StdRng, kind: PartitionKind, nodes: &[u64], leader: Option<u64>) -> BTreeMap<u64, Vec<u64>> {
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    let n = nodes.len();
    let split = |a: &[u64], b: &[u64]| {
        let mut g: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for x in a {
            g.insert(*x, b.to_vec());
        }
        for y in b {
            g.insert(*y, a.to_vec());
        }
        g
    };
    match kind {
        PartitionKind::One => split(&shuffled[..1], &shuffled[1..]),
        PartitionKind::Leader => {
            let l = leader.unwrap_or(shuffled[0]);
            let rest: Vec<u64> = nodes.iter().copied().filter(|x| *x != l).collect();
            split(&[l], &rest)
        }
        PartitionKind::Halves => split(&shuffled[..n / 2], &shuffled[n / 2..]),
        PartitionKind::MajoritiesRing => {
            // Each node sees its neighbours up to `reach` away on a ring (a
            // majority with itself) and drops the rest.
            let reach = (n / 2).div_ceil(2);
            let mut g = BTreeMap::new();
            for (i, x) in shuffled.iter().enumerate() {
                let near: BTreeSet<u64> =
                    (0..=reach).flat_map(|d| [shuffled[(i + d) % n], shuffled[(i + n - d) % n]]).collect();
                g.insert(*x, shuffled.iter().copied().filter(|y| !near.contains(y)).collect());
            }
            g
        }
        PartitionKind::Bridge => {
            let (a, rest) = shuffled.split_at(n / 2);
            let (bridge, b) = rest.split_at(1);
            let mut g = split(a, b);
            g.insert(bridge[0], Vec::new());
            g
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_a_function_of_the_seed() {
        let a = schedule(7, Mix::All, 60_000, true);
        assert_eq!(a, schedule(7, Mix::All, 60_000, true));
        assert_ne!(a, schedule(8, Mix::All, 60_000, true));
        assert!(a.len() >= 3, "{a:?}");
        assert!(a.iter().all(|s| s.at_ms + s.for_ms < 60_000));
        assert!(schedule(7, Mix::Partition, 60_000, false).is_empty(), "no partitions without namespaces");
        assert!(schedule(7, Mix::None, 60_000, true).is_empty());
        for seed in 0..50 {
            let s = schedule(seed, Mix::KillAll, 30_000, true);
            assert!(s.len() >= 2 && s[0].at_ms == 3_000, "seed {seed}: {s:?}");
            assert!(!schedule(seed, Mix::Clock, 20_000, true).is_empty());
        }
    }

    #[test]
    fn partition_shapes() {
        let nodes = [1, 2, 3, 4, 5];
        let mut rng = StdRng::seed_from_u64(1);
        let g = grudges(&mut rng, PartitionKind::Leader, &nodes, Some(3));
        assert_eq!(g[&3], vec![1, 2, 4, 5]);
        assert_eq!(g[&1], vec![3]);
        let ring = grudges(&mut rng, PartitionKind::MajoritiesRing, &nodes, None);
        for (x, drops) in &ring {
            assert_eq!(drops.len(), 2, "node {x} sees a majority of 3: {ring:?}");
            for y in drops {
                assert!(ring[y].contains(x), "drops are symmetric: {ring:?}");
            }
        }
        let bridge = grudges(&mut rng, PartitionKind::Bridge, &nodes, None);
        assert_eq!(bridge.values().filter(|d| d.is_empty()).count(), 1, "{bridge:?}");
        let t = targets(&mut rng, Target::Majority, &nodes, None);
        assert_eq!(t.len(), 3);
        assert_eq!(targets(&mut rng, Target::Minority, &nodes, None).len(), 2);
    }
}
