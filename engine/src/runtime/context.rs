//! What a runtime thread knows about itself, kept in thread-locals so a ring can use it without
//! the stage passing it around: the thread's wait strategy, a small identity token, and the run's
//! abort flag.
//!
//! Read only on slow paths (a full ring, a ring's first pop); the hot path never touches it.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::wait::WaitStrategy;

/// Token 0 means "not known yet"; real tokens start at 1.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static TOKEN: u64 = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    static WAIT: Cell<WaitStrategy> = const { Cell::new(WaitStrategy::SHARED_HOST) };
    static ABORT: std::cell::RefCell<Option<Arc<AtomicBool>>> = const { std::cell::RefCell::new(None) };
}

/// A number unique to the calling thread for the life of the process (never 0).
pub(crate) fn thread_token() -> u64 {
    TOKEN.with(|t| *t)
}

/// The wait strategy of the calling thread ([`WaitStrategy::SHARED_HOST`] outside a runtime
/// thread).
pub(crate) fn wait_strategy() -> WaitStrategy {
    WAIT.with(Cell::get)
}

/// True if the run this thread belongs to is being torn down (a stage panicked elsewhere).
pub(crate) fn aborting() -> bool {
    ABORT.with(|a| {
        a.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    })
}

/// Marks the calling thread as a runtime thread with `wait` and the run's `abort` flag.
pub(crate) fn enter(wait: WaitStrategy, abort: Arc<AtomicBool>) {
    WAIT.with(|w| w.set(wait));
    ABORT.with(|a| *a.borrow_mut() = Some(abort));
}
