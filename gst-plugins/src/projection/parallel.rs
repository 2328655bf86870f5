//! Sharing work among a few threads: contiguous bands of rows, one thread each.

use std::ops::Range;

/// Runs `f` on every item, each on a thread of its own (the calling thread takes
/// the first), and returns the results in item order. A panic in `f` is passed on.
pub(crate) fn run_each<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let mut items = items.into_iter();
    let Some(first) = items.next() else {
        return Vec::new();
    };
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items.map(|item| scope.spawn(move || f(item))).collect();
        let mut out = Vec::with_capacity(handles.len() + 1);
        out.push(f(first));
        for h in handles {
            match h.join() {
                Ok(v) => out.push(v),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// `0..rows` split into at most `threads` (at least 1) contiguous, near-equal bands.
pub(crate) fn band_ranges(rows: usize, threads: usize) -> Vec<Range<usize>> {
    let n = threads.clamp(1, rows.max(1));
    (0..n).map(|k| rows * k / n..rows * (k + 1) / n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_the_rows_in_order() {
        assert_eq!(band_ranges(10, 3), vec![0..3, 3..6, 6..10]);
        assert_eq!(band_ranges(2, 8), vec![0..1, 1..2]);
        assert_eq!(band_ranges(5, 0), vec![0..5]);
    }

    #[test]
    fn results_come_back_in_order() {
        assert_eq!(run_each(vec![1, 2, 3, 4], |x| x * 10), vec![10, 20, 30, 40]);
        assert!(run_each(Vec::<u8>::new(), |x| x).is_empty());
    }
}
