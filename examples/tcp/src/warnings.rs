//! Warnings said once a second at most.

use std::time::{Duration, Instant};

/// A warning said at most once a second, with how many times it happened meanwhile.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    last: Option<Instant>,
    count: u64,
}

impl Warnings {
    /// Counts one occurrence; returns the count to report if a warning is due now.
    pub(crate) fn note(&mut self) -> Option<u64> {
        self.count += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}
