//! Retry delays for a source that is missing or failed.

/// 1 s doubling to 30 s: how every stream is subscribed again, and how the
/// module binds again after a failed bind at instance start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    next: f64,
}

impl Backoff {
    pub const FIRST: f64 = 1.0;
    pub const MAX: f64 = 30.0;

    pub fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The delay to wait now; the one after it is twice as long.
    pub fn next_delay(&mut self) -> f64 {
        let delay = self.next;
        self.next = (self.next * 2.0).min(Self::MAX);
        delay
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut b = Backoff::new();
        let delays: Vec<f64> = (0..7).map(|_| b.next_delay()).collect();
        assert_eq!(delays, [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]);
        b.reset();
        assert_eq!(b.next_delay(), 1.0);
    }
}
