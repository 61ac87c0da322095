//! Independent work spread over the machine's cores: reading a big
//! template's services, compiling and rendering them, compiling many
//! instances. Scoped threads, no pool: the
//! work comes in one batch per command, so a pool would outlive its use.
//! Work split again inside a share (an instance's services, when instances
//! are spread over the cores already) stays on the share's thread: more
//! threads than cores would only take turns, each with memory of its own.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// `f` of consecutive pieces of the items, in the items' order, on up to
/// one thread per core (each with at least `min_per_thread` items): for
/// work that needs state of its own per piece (a template engine, the
/// problems found).
///
/// Each thread takes the next piece when done with its last, rather than
/// a fixed share: the cores of a shared machine do not run at one speed
/// (on the 2-core machine of the benchmarks, one of two threads rendering
/// halves of a big instance took a third longer than the other in most
/// runs, and a fixed half made the other wait), and a thread that starts
/// late finds the work done, rather than holding the rest up.
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
    // Pieces small enough for a slow thread to leave a fair part of the
    // work to the others, big enough that each costs little on its own.
    let piece = (items.len() / (threads * PIECES_PER_THREAD))
        .max(min_per_thread / PIECES_PER_THREAD)
        .max(1);
    let pieces: Vec<&[T]> = items.chunks(piece).collect();
    let next = AtomicUsize::new(0);
    let take_pieces = || {
        IN_SHARE.set(true);
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(&piece) = pieces.get(index) else {
                break;
            };
            done.push((index, f(piece)));
        }
        IN_SHARE.set(false);
        done
    };
    let mut done = thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(take_pieces)).collect();
        let mut done = take_pieces();
        for other in others {
            match other.join() {
                Ok(theirs) => done.extend(theirs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

/// `f` of every item, moved into it, in the items' order, each item taken
/// by the next free thread (this one too, as [`chunks`] does).
pub fn map_owned<T, R, F>(items: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    let cells: Vec<Mutex<Option<T>>> = (items.into_iter())
        .map(|item| Mutex::new(Some(item)))
        .collect();
    let take = |cell: &Mutex<Option<T>>| {
        let item = cell.lock().unwrap_or_else(|e| e.into_inner()).take();
        f(item.expect("each item is taken once"))
    };
    map(&cells, 1, take)
}

/// How many pieces [`chunks`] cuts each thread's part of the work into.
const PIECES_PER_THREAD: usize = 8;

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
        let owned: Vec<String> = items.iter().map(|i| i.to_string()).collect();
        let lengths = super::map_owned(owned.clone(), |s: String| s.len());
        assert_eq!(lengths, owned.iter().map(String::len).collect::<Vec<_>>());
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
    fn small_work_is_done_once_in_order_whichever_thread_takes_it() {
        // Pieces of small work, often all done here before the other
        // threads have started: each once, in order.
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
    fn a_slow_thread_leaves_the_pieces_it_has_not_taken_to_the_others() {
        if super::cores() == 1 {
            return; // nothing is spread over the cores
        }
        use std::sync::atomic::{AtomicUsize, Ordering};
        let items: Vec<usize> = (0..64).collect();
        let done_elsewhere = AtomicUsize::new(0);
        let pieces = super::chunks(&items, 1, |piece| {
            // The thread that takes the first piece, whichever it is (on a
            // busy machine the calling thread may take none), is slow: it
            // is still at that piece when the others have done every other
            // one (or a minute passed).
            if piece[0] == 0 {
                let started = std::time::Instant::now();
                while done_elsewhere.load(Ordering::SeqCst) + 1 < 64 / piece.len()
                    && started.elapsed() < std::time::Duration::from_secs(60)
                {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            } else {
                done_elsewhere.fetch_add(1, Ordering::SeqCst);
            }
            (std::thread::current().id(), piece.to_vec())
        });
        let slow = pieces[0].0;
        let here = pieces.iter().filter(|(thread, _)| *thread == slow).count();
        assert_eq!(
            here,
            1,
            "the slow thread took one piece of {}",
            pieces.len()
        );
        assert!(pieces.len() > super::cores(), "{} pieces", pieces.len());
        let in_order: Vec<usize> = pieces.into_iter().flat_map(|(_, piece)| piece).collect();
        assert_eq!(in_order, items);
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
