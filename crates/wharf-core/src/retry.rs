//! One retry policy for every network adapter: exponential backoff with jitter, a server's
//! `Retry-After` honoured, only safe calls repeated, and a bound on the total time.
//!
//! Why one helper: hand-written loops drift apart (one had jitter, one honoured nothing, one
//! retried creations after a timeout). Why jitter: many clients that failed together and
//! back off by the same doubling retry together too, and knock the recovering server over
//! again; a random pause spreads them out.
//!
//! # What is retried
//!
//! The caller classifies each failure with [`Failure`]:
//!
//! - [`Failure::NotSent`]: the request cannot have had an effect (the connection was
//!   refused, the server turned it away with 429 or 503). Retried for every call.
//! - [`Failure::MaybeSent`]: the server may have acted on it (a timeout, a 500, a dropped
//!   connection after the request left). Retried only for a call marked
//!   [`Call::Idempotent`]: repeating a creation could create a second object.
//! - [`Failure::Fatal`]: repeating cannot help (4xx, a decode error). Never retried.
//!
//! Both retryable kinds may carry the server's `Retry-After` (parsed by the caller, which
//! knows its protocol); that pause is used instead of the computed one, and a pause that
//! would overrun the total budget ends the retries.
//!
//! # Blocking and async use
//!
//! [`retry`] runs a blocking call with [`std::thread::sleep`] between attempts. Async code
//! (a NATS or Redis client on tokio) keeps its own timer and uses the delay sequence:
//!
//! ```
//! use std::time::Duration;
//! use wharf_core::retry::{Failure, RetryPolicy};
//!
//! # fn connect() -> Result<(), &'static str> { Ok(()) }
//! let policy = RetryPolicy::default().max_retries(5).max_elapsed(Duration::from_secs(30));
//! let mut delays = policy.delays();
//! loop {
//!     match connect() {
//!         Ok(()) => break,
//!         // A connect error cannot have created anything: retry whatever the call.
//!         Err(_) => match delays.next_delay(Failure::NotSent { retry_after: None }) {
//!             Some(pause) => std::thread::sleep(pause), // `tokio::time::sleep(pause).await` in async code
//!             None => break,                           // retries or time budget spent
//!         },
//!     }
//! }
//! ```
//!
//! [`Delays`] is also a plain `Iterator<Item = Duration>` of the pauses (no server hint).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the random part of each pause is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// No randomness: `initial × 2ⁿ`, capped. Only for tests and single clients.
    None,
    /// A uniform pause in `[0, min(max_delay, initial × 2ⁿ)]` ("full jitter"): the best
    /// spread when many clients fail together.
    #[default]
    Full,
    /// A uniform pause in `[initial, min(max_delay, 3 × previous pause)]` ("decorrelated
    /// jitter"): grows like exponential backoff but never collapses to zero.
    Decorrelated,
}

/// Whether repeating a call is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Call {
    /// Reads, updates to a given value, deletes, appends the server deduplicates.
    Idempotent,
    /// Creations and other calls a repeat could apply twice.
    NotIdempotent,
}

/// What a failed attempt means for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Nothing reached the server, or the server refused it before acting (connection
    /// refused, 429, 503): safe to repeat for every call.
    NotSent {
        /// The server's `Retry-After`, when it gave one.
        retry_after: Option<Duration>,
    },
    /// The server may have acted (timeout, 5xx, connection lost mid-request): repeated only
    /// for [`Call::Idempotent`] calls.
    MaybeSent {
        /// The server's `Retry-After`, when it gave one.
        retry_after: Option<Duration>,
    },
    /// Repeating cannot help (4xx, undecodable answer).
    Fatal,
}

impl Failure {
    /// Whether a call of kind `call` that failed this way may be tried again.
    pub fn retryable(self, call: Call) -> bool {
        match self {
            Failure::NotSent { .. } => true,
            Failure::MaybeSent { .. } => call == Call::Idempotent,
            Failure::Fatal => false,
        }
    }

    fn retry_after(self) -> Option<Duration> {
        match self {
            Failure::NotSent { retry_after } | Failure::MaybeSent { retry_after } => retry_after,
            Failure::Fatal => None,
        }
    }
}

/// Parses an HTTP `Retry-After` value given in seconds (the form API servers use). The
/// HTTP-date form is not parsed: it returns `None` and the computed pause applies.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Time as the retry loop sees it: injectable so tests need not sleep for real.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;
    /// Waits `pause`.
    fn sleep(&self, pause: Duration);
}

/// The real clock: [`Instant::now`] and [`std::thread::sleep`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, pause: Duration) {
        std::thread::sleep(pause);
    }
}

/// Bounded retries with exponential backoff and jitter.
///
/// The defaults (3 retries, 100 ms doubling to at most 5 s, full jitter, 30 s in all) suit a
/// request a user or a job is waiting on; adapters set their own from their configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial: Duration,
    max_delay: Duration,
    max_elapsed: Duration,
    jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(30),
            jitter: Jitter::Full,
        }
    }
}

impl RetryPolicy {
    /// A single attempt: no retries at all.
    pub fn never() -> Self {
        RetryPolicy::default().max_retries(0)
    }
    /// Retries after the first attempt (0: one attempt only).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }
    /// The base of the first pause; later ones double it.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial = delay;
        self
    }
    /// The longest computed pause (a server's `Retry-After` may ask for more).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }
    /// The longest time from the first attempt to the start of the last one: no pause is
    /// taken that would end after it.
    pub fn max_elapsed(mut self, total: Duration) -> Self {
        self.max_elapsed = total;
        self
    }
    /// How pauses are randomised.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }
    /// Retries after the first attempt.
    pub fn retries(&self) -> u32 {
        self.max_retries
    }

    /// The pauses of one call, measured on the real clock from now.
    pub fn delays(&self) -> Delays {
        self.delays_with(Arc::new(SystemClock))
    }

    /// The pauses of one call, measured on `clock` from now.
    pub fn delays_with(&self, clock: Arc<dyn Clock>) -> Delays {
        let start = clock.now();
        Delays { policy: *self, clock, start, attempt: 0, previous: self.initial, rng: Rng::seeded() }
    }

    /// The largest pause the `n`-th retry (0-based) may take before jitter.
    fn ceiling(&self, n: u32) -> Duration {
        self.initial.saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX)).min(self.max_delay)
    }
}

/// The pauses between the attempts of one call. Ends (`None`) once the retries are used up
/// or the next pause would overrun the policy's total time.
#[derive(Clone)]
pub struct Delays {
    policy: RetryPolicy,
    clock: Arc<dyn Clock>,
    start: Instant,
    attempt: u32,
    previous: Duration,
    rng: Rng,
}

impl std::fmt::Debug for Delays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delays").field("policy", &self.policy).field("attempt", &self.attempt).finish_non_exhaustive()
    }
}

impl Delays {
    /// Retries handed out so far.
    pub fn retries_taken(&self) -> u32 {
        self.attempt
    }

    /// The pause before retrying after `failure`, or `None` when the call must give up: the
    /// failure is fatal, the retries are used up, or the pause would end past the total
    /// budget. Does not check idempotency: use [`next_for`](Self::next_for) for that.
    pub fn next_delay(&mut self, failure: Failure) -> Option<Duration> {
        if failure == Failure::Fatal || self.attempt >= self.policy.max_retries {
            return None;
        }
        let computed = match self.policy.jitter {
            Jitter::None => self.policy.ceiling(self.attempt),
            Jitter::Full => self.rng.between(Duration::ZERO, self.policy.ceiling(self.attempt)),
            Jitter::Decorrelated => {
                let low = self.policy.initial.min(self.policy.max_delay);
                let high = self.previous.saturating_mul(3).min(self.policy.max_delay).max(low);
                self.rng.between(low, high)
            }
        };
        let pause = failure.retry_after().unwrap_or(computed);
        let elapsed = self.clock.now().saturating_duration_since(self.start);
        if elapsed.saturating_add(pause) > self.policy.max_elapsed {
            return None;
        }
        self.previous = computed;
        self.attempt += 1;
        Some(pause)
    }

    /// Like [`next_delay`](Self::next_delay), but `None` as well when `failure` may have
    /// reached the server and `call` is not idempotent.
    pub fn next_for(&mut self, call: Call, failure: Failure) -> Option<Duration> {
        if !failure.retryable(call) {
            return None;
        }
        self.next_delay(failure)
    }
}

impl Iterator for Delays {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        self.next_delay(Failure::NotSent { retry_after: None })
    }
}

/// Runs `op` until it succeeds, fails in a way `classify` says must not be retried for
/// `call`, or `policy` runs out; returns the last result. `op` gets the attempt number
/// (0 for the first).
pub fn retry<T, E>(
    policy: &RetryPolicy,
    call: Call,
    classify: impl Fn(&E) -> Failure,
    op: impl FnMut(u32) -> Result<T, E>,
) -> Result<T, E> {
    retry_with(policy, call, Arc::new(SystemClock), classify, op)
}

/// [`retry`] on `clock` (tests inject one that does not really sleep).
pub fn retry_with<T, E>(
    policy: &RetryPolicy,
    call: Call,
    clock: Arc<dyn Clock>,
    classify: impl Fn(&E) -> Failure,
    mut op: impl FnMut(u32) -> Result<T, E>,
) -> Result<T, E> {
    let mut delays = policy.delays_with(Arc::clone(&clock));
    let mut attempt = 0;
    loop {
        let err = match op(attempt) {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        match delays.next_for(call, classify(&err)) {
            Some(pause) => {
                tracing::debug!(attempt, ?pause, "retrying after a transient failure");
                clock.sleep(pause);
                attempt += 1;
            }
            None => return Err(err),
        }
    }
}

/// A small xorshift generator: jitter needs spread, not cryptographic quality, and the core
/// takes no dependency for it. Seeded from the standard library's per-process random keys.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = RandomState::new().hash_one(Instant::now());
        Rng(seed | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `[low, high]` at nanosecond resolution.
    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        if high <= low {
            return low;
        }
        let span = (high - low).as_nanos().min(u128::from(u64::MAX - 1)) as u64;
        low + Duration::from_nanos(self.next_u64() % (span + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A clock that advances only when slept on, recording every pause.
    struct FakeClock {
        now: Mutex<Instant>,
        slept: Mutex<Vec<Duration>>,
    }

    impl FakeClock {
        fn new() -> Arc<FakeClock> {
            Arc::new(FakeClock { now: Mutex::new(Instant::now()), slept: Mutex::new(Vec::new()) })
        }
        fn advance(&self, d: Duration) {
            *self.now.lock().unwrap() += d;
        }
        fn slept(&self) -> Vec<Duration> {
            self.slept.lock().unwrap().clone()
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            *self.now.lock().unwrap()
        }
        fn sleep(&self, pause: Duration) {
            self.slept.lock().unwrap().push(pause);
            self.advance(pause);
        }
    }

    const MS: Duration = Duration::from_millis(1);

    fn policy(jitter: Jitter) -> RetryPolicy {
        RetryPolicy::default()
            .max_retries(8)
            .initial_delay(100 * MS)
            .max_delay(2_000 * MS)
            .max_elapsed(Duration::from_secs(3600))
            .jitter(jitter)
    }

    #[test]
    fn without_jitter_pauses_double_up_to_the_cap() {
        let pauses: Vec<Duration> = policy(Jitter::None).delays_with(FakeClock::new()).collect();
        let ms: Vec<u128> = pauses.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_exponential_ceiling() {
        let p = policy(Jitter::Full);
        let mut spread = std::collections::BTreeSet::new();
        for _ in 0..200 {
            for (n, pause) in p.delays_with(FakeClock::new()).enumerate() {
                assert!(pause <= p.ceiling(n as u32), "retry {n}: {pause:?} over {:?}", p.ceiling(n as u32));
                spread.insert(pause);
            }
        }
        assert!(spread.len() > 100, "pauses are random, not fixed: {} distinct", spread.len());
    }

    #[test]
    fn decorrelated_jitter_stays_between_initial_and_three_times_the_previous() {
        let p = policy(Jitter::Decorrelated);
        for _ in 0..200 {
            let mut previous = 100 * MS;
            for pause in p.delays_with(FakeClock::new()) {
                assert!(pause >= 100 * MS, "{pause:?} under the initial delay");
                assert!(pause <= (previous * 3).min(2_000 * MS), "{pause:?} over 3 × {previous:?}");
                previous = pause;
            }
        }
    }

    #[test]
    fn retry_after_replaces_the_computed_pause() {
        let clock = FakeClock::new();
        let mut delays = policy(Jitter::Full).delays_with(clock);
        let hinted = Failure::NotSent { retry_after: Some(Duration::from_secs(7)) };
        assert_eq!(delays.next_delay(hinted), Some(Duration::from_secs(7)), "above max_delay, still honoured");
        let maybe = Failure::MaybeSent { retry_after: Some(Duration::from_secs(1)) };
        assert_eq!(delays.next_for(Call::Idempotent, maybe), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn the_total_time_is_bounded_by_call_time_and_pauses_together() {
        let clock = FakeClock::new();
        let p = policy(Jitter::None).max_retries(100).max_elapsed(Duration::from_secs(5));
        let mut calls = 0;
        let result: Result<(), &str> = retry_with(
            &p,
            Call::Idempotent,
            clock.clone(),
            |_| Failure::NotSent { retry_after: None },
            |_| {
                calls += 1;
                clock.advance(300 * MS); // each attempt itself takes time
                Err("down")
            },
        );
        assert_eq!(result, Err("down"));
        let total: Duration = clock.slept().iter().sum::<Duration>() + 300 * MS * calls;
        assert!(total <= Duration::from_secs(5) + 300 * MS, "{total:?} past the budget (plus the last attempt)");
        assert!(calls < 100, "the time budget, not the retry count, stopped it ({calls} calls)");
        // A server asking for longer than the budget left ends the retries at once.
        let mut delays = p.delays_with(FakeClock::new());
        assert_eq!(delays.next_delay(Failure::NotSent { retry_after: Some(Duration::from_secs(60)) }), None);
    }

    #[test]
    fn a_call_that_may_have_created_something_is_not_retried_unless_idempotent() {
        let p = policy(Jitter::None).max_retries(3);
        for (call, failure, expected_calls) in [
            (Call::NotIdempotent, Failure::MaybeSent { retry_after: None }, 1),
            (Call::NotIdempotent, Failure::NotSent { retry_after: None }, 4),
            (Call::Idempotent, Failure::MaybeSent { retry_after: None }, 4),
            (Call::Idempotent, Failure::Fatal, 1),
        ] {
            let clock = FakeClock::new();
            let mut calls = 0;
            let _ = retry_with(
                &p,
                call,
                clock.clone(),
                |_: &()| failure,
                |_| -> Result<(), ()> {
                    calls += 1;
                    Err(())
                },
            );
            assert_eq!(calls, expected_calls, "{call:?} after {failure:?}");
            assert_eq!(clock.slept().len(), expected_calls - 1);
        }
    }

    #[test]
    fn success_stops_the_loop_and_attempts_are_numbered() {
        let clock = FakeClock::new();
        let mut seen = Vec::new();
        let out = retry_with(
            &policy(Jitter::None),
            Call::NotIdempotent,
            clock.clone(),
            |_: &&str| Failure::NotSent { retry_after: None },
            |attempt| {
                seen.push(attempt);
                if attempt < 2 {
                    Err("refused")
                } else {
                    Ok(42)
                }
            },
        );
        assert_eq!(out, Ok(42));
        assert_eq!(seen, [0, 1, 2]);
        assert_eq!(clock.slept(), [100 * MS, 200 * MS]);
        assert_eq!(RetryPolicy::never().delays_with(FakeClock::new()).count(), 0);
    }
}
