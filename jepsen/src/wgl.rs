//! Wing–Gong–Lowe linearizability search over one event's calls, with the
//! memo of (linearized set, model states) that makes it practical: the
//! calls are a list of call and return entries in time order; the search
//! tries to linearize a call whose call entry comes before every pending
//! return, and backtracks when a return is reached with its call not yet
//! linearized. Calls with an unknown outcome return at infinity and may
//! take effect or not (the model offers both), so they never block.
//!
//! The model is nondeterministic (hold expiry), so the search carries the
//! set of states the model may be in, as Porcupine does.

use std::collections::HashSet;
use std::time::Instant;

use crate::model::{EvOp, EventModel, Kind, Out};

const NIL: usize = usize::MAX;

/// The search's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lin {
    /// A linearization exists.
    Ok,
    /// None exists; `stuck` are the calls (indexes into the model's ops)
    /// the deepest attempt could not linearize next, `depth` how many it
    /// had linearized.
    Illegal { depth: usize, stuck: Vec<usize> },
    /// The deadline passed first.
    Timeout,
}

#[derive(Clone, Copy)]
struct Entry {
    op: usize,
    is_call: bool,
    /// The other entry of the same op.
    other: usize,
    prev: usize,
    next: usize,
}

type States = Vec<Vec<u8>>;

fn normalize(mut s: States) -> States {
    s.sort_unstable();
    s.dedup();
    s
}

/// Searches for a linearization of `model`'s ops.
pub(crate) fn check(model: &EventModel, deadline: Instant) -> Lin {
    let ops: &[EvOp] = &model.ops;
    let n = ops.len();
    if n == 0 {
        return Lin::Ok;
    }
    // Entry 0 is the head sentinel.
    let mut order: Vec<(u64, u8, usize, bool)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        // At equal times calls sort before returns: the two are taken as
        // concurrent, which only ever allows more linearizations.
        order.push((op.inv_ms, 0, i, true));
        order.push((op.ret_ms.unwrap_or(u64::MAX), 1, i, false));
    }
    order.sort_unstable();
    let mut entries = vec![Entry { op: NIL, is_call: false, other: NIL, prev: NIL, next: 1 }];
    let mut call_at = vec![0usize; n];
    let mut ret_at = vec![0usize; n];
    for (k, (_, _, op, is_call)) in order.iter().enumerate() {
        let idx = k + 1;
        entries.push(Entry { op: *op, is_call: *is_call, other: NIL, prev: idx - 1, next: idx + 1 });
        if *is_call {
            call_at[*op] = idx;
        } else {
            ret_at[*op] = idx;
        }
    }
    entries.last_mut().expect("entries").next = NIL;
    for i in 0..n {
        entries[call_at[i]].other = ret_at[i];
        entries[ret_at[i]].other = call_at[i];
    }

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut states: States = vec![model.init()];
    let mut stack: Vec<(usize, States)> = Vec::new();
    let mut memo: HashSet<(Vec<u64>, States)> = HashSet::new();
    let mut entry = entries[0].next;
    let (mut best_depth, mut best_stuck) = (0usize, Vec::new());
    let mut steps: u64 = 0;

    fn lift(entries: &mut [Entry], e: usize) {
        for x in [e, entries[e].other] {
            let (p, nx) = (entries[x].prev, entries[x].next);
            entries[p].next = nx;
            if nx != NIL {
                entries[nx].prev = p;
            }
        }
    }
    fn unlift(entries: &mut [Entry], e: usize) {
        for x in [entries[e].other, e] {
            let (p, nx) = (entries[x].prev, entries[x].next);
            entries[p].next = x;
            if nx != NIL {
                entries[nx].prev = x;
            }
        }
    }

    while entries[0].next != NIL {
        steps += 1;
        if steps % 4096 == 1 && Instant::now() > deadline {
            return Lin::Timeout;
        }
        if entry == NIL {
            // Nothing more to try at this depth: the last linearized call
            // must go elsewhere.
            let Some((e, s)) = stack.pop() else { break };
            states = s;
            let op = entries[e].op;
            linearized[op / 64] &= !(1 << (op % 64));
            unlift(&mut entries, e);
            entry = entries[e].next;
            continue;
        }
        let e = entries[entry];
        if e.is_call {
            let mut next: States = Vec::new();
            for s in &states {
                next.extend(model.step(s, &ops[e.op]));
            }
            if !next.is_empty() {
                let next = normalize(next);
                let mut lin = linearized.clone();
                lin[e.op / 64] |= 1 << (e.op % 64);
                if memo.insert((lin.clone(), next.clone())) {
                    stack.push((entry, std::mem::replace(&mut states, next)));
                    linearized = lin;
                    lift(&mut entries, entry);
                    entry = entries[0].next;
                    continue;
                }
            }
            entry = e.next;
        } else {
            // A return whose call is not linearized: backtrack.
            if stack.len() >= best_depth {
                best_depth = stack.len();
                best_stuck = pending_calls(&entries, entry);
            }
            let Some((top, s)) = stack.pop() else {
                return Lin::Illegal { depth: best_depth, stuck: best_stuck };
            };
            states = s;
            let op = entries[top].op;
            linearized[op / 64] &= !(1 << (op % 64));
            unlift(&mut entries, top);
            entry = entries[top].next;
        }
    }
    if entries[0].next == NIL {
        Lin::Ok
    } else {
        Lin::Illegal { depth: best_depth, stuck: best_stuck }
    }
}

/// The calls whose call entries precede `until` in the list: the ones the
/// search could have linearized next.
fn pending_calls(entries: &[Entry], until: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut e = entries[0].next;
    while e != NIL && e != until {
        if entries[e].is_call {
            out.push(entries[e].op);
        }
        e = entries[e].next;
    }
    out.push(entries[until].op);
    out
}

/// The fast check: replays the calls in the order of the Raft log indexes
/// their replies named (writes before a read made at their index), with
/// each unknown outcome at the earliest point real time allows. If that
/// order respects real time and the model accepts every call in it, it is
/// a linearization and the search is not needed. Otherwise the reason is
/// returned and the search decides (an unknown outcome may belong
/// elsewhere, and a retried request's index is its last attempt's).
pub(crate) fn replay(model: &EventModel) -> Result<(), String> {
    let ops = &model.ops;
    let mut indexed: Vec<(u64, u8, usize)> = Vec::new();
    let mut unknown: Vec<usize> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match (op.out == Out::Info, op.index) {
            (true, _) => unknown.push(i),
            (false, Some(index)) => {
                let read = u8::from(matches!(op.kind, Kind::Read { .. }));
                indexed.push((index, read, i));
            }
            (false, None) => return Err(format!("call {} carries no log index", op.call)),
        }
    }
    indexed.sort_unstable();
    // (slot, unknown first, invocation, op): the indexed call at position k
    // has slot k; an unknown outcome goes just before the first indexed
    // call after the last one that returned before it was invoked.
    let mut order: Vec<(usize, u8, u64, usize)> =
        indexed.iter().enumerate().map(|(k, (_, _, i))| (k, 1, 0, *i)).collect();
    for &u in &unknown {
        let inv = ops[u].inv_ms;
        let after = indexed.iter().rposition(|(_, _, i)| ops[*i].ret_ms.is_some_and(|r| r < inv));
        order.push((after.map_or(0, |k| k + 1), 0, inv, u));
    }
    order.sort_unstable();
    // Real time: no call may come after one that was invoked after it
    // returned.
    let mut inv_max = 0u64;
    let mut inv_max_op = usize::MAX;
    for &(_, _, _, i) in &order {
        if let Some(ret) = ops[i].ret_ms {
            if ret < inv_max {
                return Err(format!(
                    "log order puts call {} after call {}, which was invoked after it returned",
                    ops[i].call, ops[inv_max_op].call
                ));
            }
        }
        if ops[i].inv_ms > inv_max {
            inv_max = ops[i].inv_ms;
            inv_max_op = i;
        }
    }
    let mut states: States = vec![model.init()];
    for &(_, _, _, i) in &order {
        let next: States = states.iter().flat_map(|s| model.step(s, &ops[i])).collect();
        if next.is_empty() {
            return Err(format!("call {} does not fit at its log index", ops[i].call));
        }
        states = normalize(next);
    }
    Ok(())
}
