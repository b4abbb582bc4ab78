//! Reading pieces of a layer ahead on several threads while handing them out in order, for
//! outputs that must be written sequentially (standard output, pipes).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use vmsnap::core::{Error, Layer, Result};

/// Pieces read ahead at most, whatever the thread count (each is one buffer in memory).
const MAX_AHEAD: usize = 16;

struct State {
    ready: BTreeMap<usize, Vec<u8>>,
    consumed: usize,
    failed: Option<Error>,
    stop: bool,
    free: Vec<Vec<u8>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(g).unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads each `(offset, len)` of `reads` from `layer` with `threads` workers and calls
/// `write` with the bytes of each, in the order given. Stops at the first read error or
/// when `write` fails or returns `false`.
pub fn read_in_order<F>(
    layer: &dyn Layer,
    reads: &[(u64, usize)],
    threads: usize,
    mut write: F,
) -> Result<()>
where
    F: FnMut(&[u8]) -> Result<bool>,
{
    let ahead = threads.clamp(1, MAX_AHEAD / 2) * 2;
    let shared = Shared {
        state: Mutex::new(State {
            ready: BTreeMap::new(),
            consumed: 0,
            failed: None,
            stop: false,
            free: Vec::new(),
        }),
        changed: Condvar::new(),
    };
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, ahead) {
            s.spawn(|| worker(layer, reads, ahead, &next, &shared));
        }
        let r = writer(reads.len(), &shared, &mut write);
        let mut g = shared.lock();
        g.stop = true;
        drop(g);
        shared.changed.notify_all();
        r
    })
}

fn writer<F>(count: usize, shared: &Shared, write: &mut F) -> Result<()>
where
    F: FnMut(&[u8]) -> Result<bool>,
{
    for i in 0..count {
        let mut g = shared.lock();
        let buf = loop {
            if let Some(e) = g.failed.take() {
                return Err(e);
            }
            if let Some(b) = g.ready.remove(&i) {
                break b;
            }
            g = shared.wait(g);
        };
        drop(g);
        let more = write(&buf)?;
        let mut g = shared.lock();
        g.consumed = i + 1;
        g.free.push(buf);
        drop(g);
        shared.changed.notify_all();
        if !more {
            break;
        }
    }
    Ok(())
}

fn worker(
    layer: &dyn Layer,
    reads: &[(u64, usize)],
    ahead: usize,
    next: &AtomicUsize,
    shared: &Shared,
) {
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(&(offset, len)) = reads.get(i) else {
            return;
        };
        let mut g = shared.lock();
        while i >= g.consumed + ahead && !g.stop {
            g = shared.wait(g);
        }
        if g.stop {
            return;
        }
        let mut buf = g.free.pop().unwrap_or_default();
        drop(g);
        buf.resize(len, 0);
        let r = layer.read_at(offset, &mut buf);
        let mut g = shared.lock();
        match r {
            Ok(()) => {
                g.ready.insert(i, buf);
            }
            Err(e) => {
                g.failed.get_or_insert(e);
                g.stop = true;
            }
        }
        drop(g);
        shared.changed.notify_all();
    }
}
