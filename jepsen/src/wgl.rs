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

use crate::model::{EvOp, EventModel};

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
