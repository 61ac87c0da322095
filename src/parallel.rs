//! Independent work spread over the machine's cores: rendering the units of
//! a big instance, compiling many instances. Scoped threads, no pool: the
//! work comes in one batch per command, so a pool would outlive its use.
//! Work split again inside a share (an instance's services, when instances
//! are spread over the cores already) stays on the share's thread: more
//! threads than cores would only take turns, each with memory of its own.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;

/// `f` of every item, in the items' order, on up to one thread per core;
/// each thread gets at least `min_per_thread` items, since below some
/// amount of work starting a thread costs more than it saves.
pub fn map<T, R, F>(items: &[T], min_per_thread: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let parts = chunks(items, min_per_thread, |part| {
        part.iter().map(&f).collect::<Vec<R>>()
    });
    let mut results = Vec::with_capacity(items.len());
    for part in parts {
        results.extend(part);
    }
    results
}

/// `f` of every item on up to one thread per core, each item taken by the
/// next free thread, handed to `consume` on this thread in the items' order
/// as soon as it and those before it are done: the results of many big
/// items (the units of ten instances) are written out while the later ones
/// are being made, and need not all be held at once. An item is dropped on
/// the thread that made its result, not left for this one to drop at the end.
/// Stops at the first error of `consume`.
pub fn map_in_order<T, R, E, F, C>(items: Vec<T>, f: F, mut consume: C) -> Result<(), E>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
    C: FnMut(R) -> Result<(), E>,
{
    let workers = cores().min(items.len());
    if workers <= 1 {
        return items.into_iter().try_for_each(|item| consume(f(item)));
    }
    let count = items.len();
    let queue = Mutex::new(items.into_iter().enumerate());
    let stop = AtomicBool::new(false);
    let (done, results) = mpsc::channel();
    thread::scope(|scope| {
        for _ in 0..workers {
            let done = done.clone();
            let (queue, stop, f) = (&queue, &stop, &f);
            scope.spawn(move || {
                IN_SHARE.set(true);
                while !stop.load(Ordering::Relaxed) {
                    // The lock is held only to take the next item.
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((index, item)) = next else { break };
                    if done.send((index, f(item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        // Results that came before their turn: at most about one per thread.
        let mut early = BTreeMap::new();
        let mut due = 0;
        // A thread that panicked sends nothing more: the scope then
        // panics on its own, and the results after its item stay unused.
        for (index, result) in results {
            early.insert(index, result);
            while let Some(result) = early.remove(&due) {
                due += 1;
                if let Err(e) = consume(result) {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
            if due == count {
                break;
            }
        }
        Ok(())
    })
}

/// `f` of consecutive shares of the items, one share per thread (as
/// [`map`] splits them), in the items' order: for work that needs state of
/// its own per thread (a template engine, the problems found).
pub fn chunks<T, R, F>(items: &[T], min_per_thread: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&[T]) -> R + Sync,
{
    let threads = cores().min(items.len() / min_per_thread.max(1)).max(1);
    if threads == 1 {
        return vec![f(items)];
    }
    let chunk = items.len().div_ceil(threads);
    let shares: Vec<Share<&[T]>> = items.chunks(chunk).map(Share::new).collect();
    thread::scope(|scope| {
        let (f, shares) = (&f, &shares);
        let rest: Vec<_> = (shares.iter().skip(1))
            .map(|share| {
                scope.spawn(move || {
                    IN_SHARE.set(true);
                    share.take().map(f)
                })
            })
            .collect();
        // This thread takes the first share rather than wait idle, then
        // any share whose thread has not started yet (see `Share`).
        IN_SHARE.set(true);
        let mut results = Vec::with_capacity(threads);
        results.push(f(shares[0]
            .take()
            .expect("the first share is this thread's")));
        let done_here: Vec<Option<R>> = (shares.iter().skip(1))
            .map(|share| share.take().map(f))
            .collect();
        IN_SHARE.set(false);
        for (handle, done_here) in rest.into_iter().zip(done_here) {
            match handle.join() {
                Ok(done_there) => {
                    results.push(done_there.or(done_here).expect("every share is done"))
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

/// `a()` on this thread and `b()` on another, at once where the cores
/// allow; or both here, one after the other, if `b`'s thread has not
/// started by the time `a` is done (see `Share`).
pub fn join<A, B>(a: impl FnOnce() -> A, b: impl FnOnce() -> B + Send) -> (A, B)
where
    B: Send,
{
    if cores() == 1 {
        return (a(), b());
    }
    let b = Share::new(b);
    thread::scope(|scope| {
        let b = &b;
        let there = scope.spawn(move || {
            IN_SHARE.set(true);
            b.take().map(|b| b())
        });
        IN_SHARE.set(true);
        let a = a();
        let here = b.take().map(|b| b());
        IN_SHARE.set(false);
        match there.join() {
            Ok(there) => (a, there.or(here).expect("b is done on one thread")),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Work meant for a thread of its own, done by whichever thread takes it
/// first: its own, or the thread that spawned it, once done with its own
/// work. A thread can start late: on the 2-core machine of the benchmarks,
/// with the other core busy, one start in ten to a hundred took 1 to 5 ms
/// (50 us at the median), a tenth of a render, and waiting for it would
/// cost more than doing the work here.
struct Share<W>(Mutex<Option<W>>);

impl<W> Share<W> {
    fn new(work: W) -> Self {
        Share(Mutex::new(Some(work)))
    }

    fn take(&self) -> Option<W> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

thread_local! {
    /// Whether this thread does one share of work spread over the cores.
    static IN_SHARE: Cell<bool> = const { Cell::new(false) };
}

/// The threads work may be spread over from this one.
pub fn cores() -> usize {
    if IN_SHARE.get() {
        return 1;
    }
    thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::{map, map_in_order};

    #[test]
    fn keeps_the_order_of_the_items_whatever_the_split() {
        let items: Vec<usize> = (0..1_001).collect();
        for min in [1, 7, 64, 2_000] {
            let doubled = map(&items, min, |i| i * 2);
            assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
        assert!(map(&[] as &[u8], 1, |b| *b).is_empty());
        for min in [1, 7, 64, 2_000] {
            let parts = super::chunks(&items, min, |part| part.to_vec());
            assert_eq!(parts.concat(), items);
        }
    }

    #[test]
    fn work_split_inside_a_share_stays_on_its_thread() {
        let inner: Vec<usize> = (0..100).collect();
        let on_own_thread = |_: &u8| {
            let me = std::thread::current().id();
            (super::chunks(&inner, 1, |_| std::thread::current().id()).iter()).all(|id| *id == me)
        };
        assert_eq!(map(&[0, 1], 1, on_own_thread), [true, true]);
        let mut seen = Vec::new();
        map_in_order(
            vec![0, 1, 2],
            |i| on_own_thread(&i),
            |same| {
                seen.push(same);
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        assert_eq!(seen, [true, true, true]);
        // This thread's own share is over: it may split work again.
        assert!(!super::IN_SHARE.get());
    }

    #[test]
    fn work_meant_for_a_late_thread_is_done_by_the_one_that_spawned_it() {
        if super::cores() == 1 {
            return; // nothing is spread over the cores
        }
        let me = std::thread::current().id();
        let mut here = 0;
        for _ in 0..200 {
            let (a, b) = super::join(|| 1, || std::thread::current().id());
            assert_eq!(a, 1);
            here += usize::from(b == me);
        }
        // `a` is done at once: most often before `b`'s thread has started.
        assert!(here > 0, "b always waited for its own thread");
        // `a` waits until `b` has started on its own thread.
        let started = std::sync::Barrier::new(2);
        let (_, b) = super::join(
            || started.wait(),
            || {
                started.wait();
                std::thread::current().id()
            },
        );
        assert_ne!(b, me);
        // Shares of small work, often done here in their threads' place:
        // each once, in order.
        let items: Vec<usize> = (0..64).collect();
        for _ in 0..200 {
            assert_eq!(
                super::chunks(&items, 1, |part| part.to_vec()).concat(),
                items
            );
        }
        assert!(!super::IN_SHARE.get());
    }

    #[test]
    fn hands_results_over_in_order_and_stops_at_the_first_error() {
        // Early items take longest, so later ones are done before their turn.
        let slow_first = |i: u64| {
            std::thread::sleep(std::time::Duration::from_millis(12 - i));
            i * 2
        };
        let mut seen = Vec::new();
        let all = map_in_order((0..12).collect(), slow_first, |r| {
            seen.push(r);
            Ok::<_, ()>(())
        });
        assert_eq!(all, Ok(()));
        assert_eq!(seen, (0..12).map(|i| i * 2).collect::<Vec<_>>());

        let mut seen = Vec::new();
        let stopped = map_in_order((0..12).collect(), slow_first, |r| {
            seen.push(r);
            if r == 6 { Err(r) } else { Ok(()) }
        });
        assert_eq!(stopped, Err(6));
        assert_eq!(seen, [0, 2, 4, 6]);
    }
}
