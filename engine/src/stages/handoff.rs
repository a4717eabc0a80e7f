//! [`Handoff`]: where a stage leaves its final state when it finishes, for the pipeline to take
//! after the run. Touched twice in a run, off the hot path: once by the stage's `finish`, once by
//! the reader.

use std::sync::{Arc, Mutex, PoisonError};

/// A slot shared by a stage and the pipeline that built it. See the module docs.
#[derive(Debug)]
pub struct Handoff<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Handoff<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Default for Handoff<T> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T> Handoff<T> {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves `values` in the slot, replacing what was there. A poisoned lock only means another
    /// holder panicked; the values are still left.
    pub fn put(&self, values: Vec<T>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = values;
    }

    /// Adds `values` to what the slot holds (for slots several stages fill).
    pub fn extend(&self, values: Vec<T>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(values);
    }

    /// Adds `value` to what the slot holds (for slots several stages fill).
    pub fn push(&self, value: T) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(value);
    }

    /// Takes what the slot holds, leaving it empty.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_one_side_puts_the_other_takes_once() {
        let a = Handoff::new();
        let b = a.clone();
        a.put(vec![1, 2]);
        assert_eq!(b.take(), [1, 2]);
        assert!(b.take().is_empty());
    }
}
