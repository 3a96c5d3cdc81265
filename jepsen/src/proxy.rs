//! The fault proxy: partitions without root. Every directed link between
//! two nodes (node `a` dialling node `b`'s gRPC) gets its own loopback
//! listener that forwards to `b`, and `a` is told to dial it instead of `b`
//! (the node's debug dial map). Cutting a link stalls every byte on its
//! connections in both directions, new connections included, the way
//! dropped packets stall TCP: nothing is delivered while the link is cut,
//! the peers' own timeouts fire, and what TCP would retransmit is delivered
//! after healing. Connections from the suite's clients to the gateways do
//! not pass the proxy, as they pass no firewall rule in namespace mode.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Bytes read from a connection before they are forwarded.
const CHUNK_BYTES_MAX: usize = 64 * 1024;
/// Connections open at once per link (gRPC keeps one or two).
const LINK_CONNECTIONS_MAX: usize = 64;

/// The proxies of a cluster's links. Dropping it stops them all.
pub(crate) struct FaultProxy {
    runtime: Option<tokio::runtime::Runtime>,
    /// Whether each unordered pair of nodes can talk (`true`: open).
    pairs: BTreeMap<(u64, u64), watch::Sender<bool>>,
    /// Per node: the peer address it would dial -> the proxy to dial.
    dial: BTreeMap<u64, BTreeMap<String, String>>,
}

fn pair(a: u64, b: u64) -> (u64, u64) {
    (a.min(b), a.max(b))
}

impl FaultProxy {
    /// Listens for every directed link among `nodes` (id -> gRPC address).
    pub(crate) fn start(nodes: &BTreeMap<u64, String>) -> std::io::Result<FaultProxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fault-proxy")
            .enable_all()
            .build()?;
        let mut pairs = BTreeMap::new();
        for &a in nodes.keys() {
            for &b in nodes.keys().filter(|b| **b > a) {
                pairs.insert((a, b), watch::channel(true).0);
            }
        }
        let mut dial: BTreeMap<u64, BTreeMap<String, String>> = BTreeMap::new();
        for (&a, _) in nodes.iter() {
            for (&b, target) in nodes.iter().filter(|(b, _)| **b != a) {
                let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
                let local = listener.local_addr()?.to_string();
                dial.entry(a).or_default().insert(target.clone(), local);
                let open = pairs[&pair(a, b)].subscribe();
                runtime.spawn(serve(listener, target.clone(), open));
            }
        }
        Ok(FaultProxy { runtime: Some(runtime), pairs, dial })
    }

    /// What node `id` must dial instead of each peer, as the node's
    /// `DEBUG_TICKETD_DIAL_MAP` value.
    pub(crate) fn dial_map(&self, id: u64) -> String {
        let map = self.dial.get(&id).map(|m| m.iter().map(|(f, t)| format!("{f}={t}")).collect::<Vec<_>>());
        map.unwrap_or_default().join(",")
    }

    /// Cuts every link between `a` and a node of `drops[a]` (both ways);
    /// opens every other link.
    pub(crate) fn partition(&self, drops: &BTreeMap<u64, Vec<u64>>) {
        let cut: BTreeSet<(u64, u64)> =
            drops.iter().flat_map(|(&a, bs)| bs.iter().filter(move |&&b| b != a).map(move |&b| pair(a, b))).collect();
        for (p, open) in &self.pairs {
            open.send_replace(!cut.contains(p));
        }
    }

    /// Opens every link.
    pub(crate) fn heal(&self) {
        self.partition(&BTreeMap::new());
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn serve(listener: TcpListener, target: String, open: watch::Receiver<bool>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(LINK_CONNECTIONS_MAX));
    loop {
        let Ok((inbound, _)) = listener.accept().await else { continue };
        // Over the limit, the newest connection is refused: a peer that
        // leaks connections must not exhaust the suite's file descriptors.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else { continue };
        let target = target.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Ok(outbound) = TcpStream::connect(&target).await else { return };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (in_r, in_w) = inbound.into_split();
            let (out_r, out_w) = outbound.into_split();
            // Either side closing ends both directions.
            tokio::select! {
                _ = pipe(in_r, out_w, open.clone()) => {}
                _ = pipe(out_r, in_w, open) => {}
            }
        });
    }
}

/// Copies `from` to `to` while the link is open; while it is cut, neither
/// reads nor writes (the sender's buffers fill, as with dropped packets).
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut open: watch::Receiver<bool>) {
    let mut buf = vec![0u8; CHUNK_BYTES_MAX];
    loop {
        if open.wait_for(|o| *o).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // A chunk read just before the cut waits for the heal.
        if open.wait_for(|o| *o).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::Duration;

    /// An echo server on loopback, its address.
    fn echo() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                std::thread::spawn(move || {
                    let mut b = [0u8; 1024];
                    while let Ok(n) = s.read(&mut b) {
                        if n == 0 || s.write_all(&b[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn round_trip(s: &mut std::net::TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(msg)?;
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got)?;
        Ok(got)
    }

    #[test]
    fn a_cut_link_delivers_nothing_until_healed_and_other_links_keep_working() {
        let nodes: BTreeMap<u64, String> = (1..=3).map(|i| (i, echo())).collect();
        let proxy = FaultProxy::start(&nodes).unwrap();
        let via = |from: u64, to: u64| -> String {
            let map = proxy.dial_map(from);
            let want = format!("{}=", nodes[&to]);
            let pair = map.split(',').find(|p| p.starts_with(&want)).expect("a link for every peer");
            pair[want.len()..].to_string()
        };
        let mut one_two = std::net::TcpStream::connect(via(1, 2)).unwrap();
        let mut one_three = std::net::TcpStream::connect(via(1, 3)).unwrap();
        one_two.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        one_three.set_read_timeout(Some(Duration::from_millis(2_000))).unwrap();
        assert_eq!(round_trip(&mut one_two, b"before").unwrap(), b"before");

        // Node 2 drops node 1: the 1-2 link is cut both ways, 1-3 is not.
        proxy.partition(&BTreeMap::from([(2, vec![1])]));
        assert!(round_trip(&mut one_two, b"during").is_err(), "nothing crosses a cut link");
        let mut late = std::net::TcpStream::connect(via(2, 1)).unwrap();
        late.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        assert!(round_trip(&mut late, b"new").is_err(), "a connection made during the cut stalls too");
        assert_eq!(round_trip(&mut one_three, b"other").unwrap(), b"other");

        // After healing, what was sent during the cut arrives, in order.
        proxy.heal();
        one_two.set_read_timeout(Some(Duration::from_millis(2_000))).unwrap();
        let mut got = vec![0u8; b"during".len()];
        one_two.read_exact(&mut got).unwrap();
        assert_eq!(got, b"during");
        assert_eq!(round_trip(&mut one_two, b"after").unwrap(), b"after");
    }
}
