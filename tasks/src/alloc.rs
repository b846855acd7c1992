//! A global allocator for processes that hold large columns.
//!
//! Small allocations go to the system allocator unchanged. A block of 4 MiB
//! or more (a float64 column of half a million rows and up) is mapped here,
//! in whole 2 MiB units with a hint to back it with transparent huge pages,
//! and when it is freed it is kept for a few seconds, to be handed out again
//! to the next allocation of the same size.
//!
//! Why: rtl makes and drops columns of the same sizes over and over (every
//! chunk of a table has the same rows, every run of a job the same
//! columns). The system allocator gives blocks this large back to the
//! kernel as soon as they are freed, so the next column of the same size
//! starts on fresh pages that the kernel must zero and map one by one. On
//! the virtual machines rtl runs on that costs more than the arithmetic: a
//! task node running the example pipeline on 1M rows spent half its time
//! in the kernel's `clear_page` (docs/PERFORMANCE.md). A kept block is
//! already mapped and is simply written over.
//!
//! What is kept is bounded: at most an eighth of physical memory (and at
//! most 1 GiB), and a block nobody took for [`KEEP_FOR`] goes back to the
//! kernel at the next large allocation or free, or when the process calls
//! [`release_idle`] (task nodes and the relay do, once a second). The
//! relay's own process keeps nothing ([`keep_none`]).
//!
//! Binaries opt in with `#[global_allocator] static A: ColumnAlloc = ColumnAlloc;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Allocations at least this large are mapped and kept here.
const LARGE: usize = 4 << 20;
/// Mapped blocks are whole multiples of this (the huge page size).
const UNIT: usize = 2 << 20;
/// How long a freed block waits for a taker before it is unmapped.
pub const KEEP_FOR: Duration = Duration::from_secs(5);
/// At most this many freed blocks are kept.
const SLOTS: usize = 64;
/// At most this many bytes are kept, whatever the machine.
const MOST_KEPT: usize = 1 << 30;

/// The allocator described above; see the module doc.
pub struct ColumnAlloc;

/// Whether a block of this layout is one of ours. Mapped blocks are page
/// aligned, so any alignment up to a page can be served.
fn is_large(layout: &Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= 4096
}

/// The mapped length of a block of `size` bytes.
fn mapped(size: usize) -> usize {
    size.next_multiple_of(UNIT)
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Bytes that may be kept; 0 until first asked.
static LIMIT: AtomicUsize = AtomicUsize::new(0);
/// What `LIMIT` holds when nothing may be kept.
const NONE: usize = usize::MAX;

/// From now on, freed blocks go straight back to the kernel: for a process
/// that passes tables on instead of computing on them (the relay), whose
/// memory should follow what it holds.
pub fn keep_none() {
    LIMIT.store(NONE, Ordering::Relaxed);
    pool().release_older(u64::MAX, Duration::ZERO);
}

/// This machine's memory, in bytes.
pub fn physical_memory() -> usize {
    // SAFETY: sysconf only reads system parameters.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages.max(0) as usize).saturating_mul(page.max(0) as usize)
}

/// Bytes that may be kept: an eighth of physical memory, at most 1 GiB.
fn keep_limit() -> usize {
    match LIMIT.load(Ordering::Relaxed) {
        0 => {}
        NONE => return 0,
        known => return known,
    }
    let limit = (physical_memory() / 8).clamp(UNIT, MOST_KEPT);
    // keep_none may have run meanwhile; it wins.
    let _ = LIMIT.compare_exchange(0, limit, Ordering::Relaxed, Ordering::Relaxed);
    keep_limit()
}

/// Maps `len` bytes (a multiple of UNIT) at a UNIT-aligned address, so that
/// the whole block can be backed by huge pages. Null when out of memory.
fn map(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping touches no existing memory; the
    // trimmed head and tail lie inside the mapping just made.
    unsafe {
        let raw = libc::mmap(
            std::ptr::null_mut(),
            len + UNIT,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if raw == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        let raw = raw as usize;
        let start = raw.next_multiple_of(UNIT);
        if start > raw {
            libc::munmap(raw as *mut libc::c_void, start - raw);
        }
        let tail = raw + len + UNIT - (start + len);
        if tail > 0 {
            libc::munmap((start + len) as *mut libc::c_void, tail);
        }
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        start as *mut u8
    }
}

fn unmap(addr: usize, len: usize) {
    // SAFETY: (addr, len) is a whole block this module mapped and that
    // nobody uses any more.
    unsafe {
        libc::munmap(addr as *mut libc::c_void, len);
    }
}

#[derive(Clone, Copy)]
struct Kept {
    addr: usize,
    len: usize,
    since: u64,
}

/// Freed blocks waiting for a taker, oldest first.
struct Pool {
    kept: [Kept; SLOTS],
    count: usize,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    kept: [Kept {
        addr: 0,
        len: 0,
        since: 0,
    }; SLOTS],
    count: 0,
    bytes: 0,
});

impl Pool {
    /// The most recently freed block of exactly `len` bytes.
    fn take(&mut self, len: usize) -> Option<usize> {
        let at = (0..self.count).rev().find(|&i| self.kept[i].len == len)?;
        let block = self.kept[at];
        self.remove(at);
        Some(block.addr)
    }

    fn remove(&mut self, at: usize) {
        self.bytes -= self.kept[at].len;
        self.kept.copy_within(at + 1..self.count, at);
        self.count -= 1;
    }

    /// Keeps a freed block, making room by unmapping the oldest ones.
    fn keep(&mut self, addr: usize, len: usize, now: u64) {
        let limit = keep_limit();
        if len > limit {
            return unmap(addr, len);
        }
        while self.count == SLOTS || self.bytes + len > limit {
            let oldest = self.kept[0];
            self.remove(0);
            unmap(oldest.addr, oldest.len);
        }
        self.kept[self.count] = Kept {
            addr,
            len,
            since: now,
        };
        self.count += 1;
        self.bytes += len;
    }

    /// Unmaps the blocks kept longer than `keep_for`.
    fn release_older(&mut self, now: u64, keep_for: Duration) {
        let keep_ns = keep_for.as_nanos() as u64;
        while self.count > 0 && now.saturating_sub(self.kept[0].since) >= keep_ns {
            let oldest = self.kept[0];
            self.remove(0);
            unmap(oldest.addr, oldest.len);
        }
    }
}

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // The pool's state is consistent between statements, so a panic while
    // it was held (which would take the allocator down anyway) leaves
    // nothing to repair.
    POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Gives back to the kernel the freed blocks nobody took for [`KEEP_FOR`].
/// Long-lived processes call this now and then, so that memory kept after
/// a burst of work does not stay with an idle process.
pub fn release_idle() {
    pool().release_older(now_ns(), KEEP_FOR);
}

/// Bytes of freed blocks kept for reuse now.
pub fn kept_bytes() -> usize {
    pool().bytes
}

impl ColumnAlloc {
    fn alloc_large(len: usize, zeroed: bool) -> *mut u8 {
        let reused = {
            let mut pool = pool();
            pool.release_older(now_ns(), KEEP_FOR);
            pool.take(len)
        };
        match reused {
            Some(addr) => {
                if zeroed {
                    // SAFETY: the block is `len` bytes, mapped and ours.
                    unsafe { std::ptr::write_bytes(addr as *mut u8, 0, len) };
                }
                addr as *mut u8
            }
            // Fresh anonymous pages read as zeros.
            None => map(len),
        }
    }

    fn free_large(addr: usize, len: usize) {
        let now = now_ns();
        let mut pool = pool();
        pool.release_older(now, KEEP_FOR);
        pool.keep(addr, len, now);
    }
}

// SAFETY: small blocks are the system allocator's, untouched. Large blocks
// are whole anonymous mappings of `mapped(size)` bytes, page aligned (which
// covers every alignment `is_large` accepts); a block is either handed out
// or kept in the pool, never both, and `dealloc` finds its length again from
// the layout it was allocated with, as GlobalAlloc guarantees.
unsafe impl GlobalAlloc for ColumnAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            Self::alloc_large(mapped(layout.size()), false)
        } else {
            // SAFETY: the caller's layout, passed on as GlobalAlloc requires.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            Self::alloc_large(mapped(layout.size()), true)
        } else {
            // SAFETY: the caller's layout, passed on as GlobalAlloc requires.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(&layout) {
            Self::free_large(ptr as usize, mapped(layout.size()))
        } else {
            // SAFETY: a small block is the system allocator's, freed with the
            // layout it was allocated with.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc::realloc promises `new_size` with the old
        // alignment makes a valid layout.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (is_large(&layout), is_large(&new)) {
            // SAFETY: small before and after: the system allocator's block.
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            (true, true) if mapped(new_size) == mapped(layout.size()) => ptr,
            (true, true) => {
                // Growing or shrinking a mapping moves no bytes.
                let (old_len, new_len) = (mapped(layout.size()), mapped(new_size));
                // SAFETY: (ptr, old_len) is a whole mapping of ours.
                let moved = unsafe {
                    libc::mremap(
                        ptr as *mut libc::c_void,
                        old_len,
                        new_len,
                        libc::MREMAP_MAYMOVE,
                    )
                };
                if moved == libc::MAP_FAILED {
                    std::ptr::null_mut()
                } else {
                    moved as *mut u8
                }
            }
            _ => {
                // SAFETY: `new` is a valid layout (above).
                let fresh = unsafe { self.alloc(new) };
                if !fresh.is_null() {
                    // SAFETY: both blocks hold at least the bytes copied and
                    // are distinct allocations.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                fresh
            }
        }
    }
}

#[cfg(test)]
// Each test drives the allocator through raw pointers it owns for the test.
#[allow(clippy::undocumented_unsafe_blocks)]
mod tests {
    use super::*;

    // Each test uses sizes of its own, so tests running at once never take
    // each other's kept blocks; the one that empties the pool runs alone.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn a_freed_block_is_handed_to_the_next_allocation_of_its_size() {
        let _alone = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let layout = Layout::from_size_align(11 * UNIT + 17, 8).unwrap();
        unsafe {
            let a = ColumnAlloc.alloc(layout);
            assert!(!a.is_null());
            assert_eq!(a as usize % UNIT, 0, "blocks start on a huge page");
            std::ptr::write_bytes(a, 7, layout.size());
            ColumnAlloc.dealloc(a, layout);
            let b = ColumnAlloc.alloc(layout);
            assert_eq!(a, b);
            let zeroed = {
                ColumnAlloc.dealloc(b, layout);
                ColumnAlloc.alloc_zeroed(layout)
            };
            assert_eq!(zeroed, a);
            let bytes = std::slice::from_raw_parts(zeroed, layout.size());
            assert!(
                bytes.iter().all(|&b| b == 0),
                "alloc_zeroed clears a kept block"
            );
            ColumnAlloc.dealloc(zeroed, layout);
        }
    }

    #[test]
    fn a_block_of_another_size_is_not_reused() {
        let _alone = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let small = Layout::from_size_align(13 * UNIT, 8).unwrap();
        let big = Layout::from_size_align(14 * UNIT, 8).unwrap();
        unsafe {
            let a = ColumnAlloc.alloc(small);
            ColumnAlloc.dealloc(a, small);
            let b = ColumnAlloc.alloc(big);
            assert_ne!(a, b);
            std::ptr::write_bytes(b, 1, big.size());
            ColumnAlloc.dealloc(b, big);
        }
    }

    #[test]
    fn realloc_keeps_the_contents_across_sizes() {
        let _alone = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let layout = Layout::from_size_align(1000, 8).unwrap();
        unsafe {
            let mut ptr = ColumnAlloc.alloc(layout);
            let mut size = layout.size();
            for i in 0..size {
                *ptr.add(i) = (i % 251) as u8;
            }
            // small -> large -> same unit -> larger -> small again
            for new_size in [5 * UNIT, 5 * UNIT + 100, 17 * UNIT + 3, 900] {
                ptr = ColumnAlloc.realloc(ptr, Layout::from_size_align(size, 8).unwrap(), new_size);
                assert!(!ptr.is_null());
                for i in 0..size.min(new_size).min(1000) {
                    assert_eq!(*ptr.add(i), (i % 251) as u8, "byte {i} at {new_size}");
                }
                size = new_size;
            }
            ColumnAlloc.dealloc(ptr, Layout::from_size_align(size, 8).unwrap());
        }
    }

    #[test]
    fn kept_blocks_go_back_when_idle() {
        let _alone = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let layout = Layout::from_size_align(19 * UNIT, 8).unwrap();
        unsafe {
            let a = ColumnAlloc.alloc(layout);
            ColumnAlloc.dealloc(a, layout);
        }
        let mut pool = pool();
        let kept = |pool: &Pool| (0..pool.count).any(|i| pool.kept[i].len == 19 * UNIT);
        assert!(kept(&pool));
        pool.release_older(now_ns() + KEEP_FOR.as_nanos() as u64, KEEP_FOR);
        assert!(!kept(&pool));
        assert_eq!((pool.count, pool.bytes), (0, 0));
    }
}
