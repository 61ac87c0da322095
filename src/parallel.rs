//! Independent work spread over the machine's cores: rendering the units of
//! a big instance, compiling many instances. Scoped threads, no pool: the
//! work comes in one batch per command, so a pool would outlive its use.

use std::num::NonZeroUsize;
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

/// `f` of consecutive shares of the items, one share per thread (as
/// [`map`] splits them), in the items' order: for work that needs state of
/// its own per thread (a template engine, the problems found).
pub fn chunks<T, R, F>(items: &[T], min_per_thread: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&[T]) -> R + Sync,
{
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = cores.min(items.len() / min_per_thread.max(1)).max(1);
    if threads == 1 {
        return vec![f(items)];
    }
    let chunk = items.len().div_ceil(threads);
    thread::scope(|scope| {
        let f = &f;
        let rest: Vec<_> = (items.chunks(chunk).skip(1))
            .map(|part| scope.spawn(move || f(part)))
            .collect();
        // This thread takes the first share rather than wait idle.
        let mut results = Vec::with_capacity(threads);
        results.push(f(&items[..chunk]));
        for handle in rest {
            match handle.join() {
                Ok(part) => results.push(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

#[cfg(test)]
mod tests {
    use super::map;

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
}
