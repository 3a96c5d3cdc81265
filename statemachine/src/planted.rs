//! Known bugs that tests can plant, to prove that the model-based tests and
//! the invariant checker catch them. In a non-test build `planted` is a
//! constant `false` and every planted branch compiles away.

/// A bug a test may plant.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bug {
    /// Commands no longer release expired holds of the event they touch.
    NoExpiryOnTouch,
    /// Cancellation refunds 100 % whatever the policy says.
    FullRefundAlways,
    /// Releasing a hold forgets to update the category counters.
    CounterDrift,
    /// The exactly-once table is never consulted.
    NoDedup,
    /// Waiting-room admission ignores the cap on active shoppers.
    RoomIgnoresCap,
    /// Holds skip the waiting-room admission check.
    RoomSkipsGate,
}

#[cfg(test)]
thread_local! {
    static PLANTED: std::cell::Cell<Option<Bug>> = const { std::cell::Cell::new(None) };
}

/// Whether `bug` is planted on this thread.
#[cfg(test)]
pub(crate) fn planted(bug: Bug) -> bool {
    PLANTED.with(|p| p.get() == Some(bug))
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn planted(_: Bug) -> bool {
    false
}

/// Plants `bug` on this thread until the guard is dropped.
#[cfg(test)]
pub(crate) fn plant(bug: Bug) -> impl Drop {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            PLANTED.with(|p| p.set(None));
        }
    }
    PLANTED.with(|p| p.set(Some(bug)));
    Guard
}
