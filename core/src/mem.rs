//! Memory that is resident before the hot path touches it.
//!
//! A large zeroed allocation (`vec![0; n]`) is served by `mmap`, and the kernel maps each page
//! only when it is first written: the first update that lands on a fresh page takes a page fault
//! of several microseconds, on the hot path, long after start-up. Measured on the real Binance
//! Spot depth stream, the array book's untouched 2 MiB window made one message in ten take over
//! 3 µs to apply. These helpers write one value per page at start-up so that cost is paid there.
//!
//! The writes go through [`std::hint::black_box`], so the optimiser cannot prove they store
//! what is already there and drop them.

use std::hint::black_box;

/// Bytes per page the helpers step by: the smallest page size of the targets pinion runs on.
const PAGE: usize = 4096;

/// Writes one element per page of `buf` (its current value, back), so every page is mapped.
pub fn prefault<T: Copy>(buf: &mut [T]) {
    let step = (PAGE / size_of::<T>().max(1)).max(1);
    let mut i = 0;
    while i < buf.len() {
        buf[i] = black_box(buf[i]);
        i += step;
    }
    if let Some(last) = buf.last_mut() {
        *last = black_box(*last);
    }
}

/// `len` copies of `value` in a boxed slice whose pages are all mapped.
pub fn resident_slice<T: Copy>(value: T, len: usize) -> Box<[T]> {
    let mut v = vec![value; len].into_boxed_slice();
    prefault(&mut v);
    v
}

/// Maps the pages of `v`'s spare capacity by filling it with `fill` and truncating back, so
/// later pushes up to the capacity do not fault.
pub fn prefault_spare<T: Copy>(v: &mut Vec<T>, fill: T) {
    let len = v.len();
    v.resize(v.capacity(), black_box(fill));
    v.truncate(len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_keep_contents_and_capacity() {
        let s = resident_slice(0u64, 10_000);
        assert!(s.iter().all(|&x| x == 0));
        assert_eq!(s.len(), 10_000);
        let mut v: Vec<u32> = Vec::with_capacity(5000);
        v.push(7);
        let cap = v.capacity();
        prefault_spare(&mut v, 0);
        assert_eq!(v, [7]);
        assert_eq!(v.capacity(), cap);
        let mut one = [5u8];
        prefault(&mut one);
        assert_eq!(one, [5]);
        prefault::<u8>(&mut []);
    }
}
