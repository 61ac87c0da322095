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
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = cores.min(items.len() / min_per_thread.max(1)).max(1);
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    thread::scope(|scope| {
        let f = &f;
        let rest: Vec<_> = (items.chunks(chunk).skip(1))
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        // This thread takes the first share rather than wait idle.
        let mut results: Vec<R> = Vec::with_capacity(items.len());
        results.extend(items[..chunk].iter().map(f));
        for handle in rest {
            match handle.join() {
                Ok(part) => results.extend(part),
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
    }
}
