//! The payment provider interface and the built-in sandbox provider that
//! implements the contract's test tokens. The gateway charges with the
//! payment intent id as the provider's idempotency key, so a retried charge
//! never takes money twice.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// A charge to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The provider's idempotency key (the payment intent id).
    pub idempotency_key: String,
    /// Amount in minor units.
    pub amount: u64,
    /// ISO 4217 currency.
    pub currency: String,
    /// The card token.
    pub token: String,
}

/// What a charge call answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money was taken.
    Captured {
        /// Provider reference.
        charge_id: String,
    },
    /// The card was declined; nothing was taken.
    Declined {
        /// `card_declined`, `insufficient_funds`, `invalid_token`.
        reason: String,
    },
    /// No answer in time: the charge may or may not have happened.
    Unknown,
}

/// What the provider knows of a charge, asked later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupOutcome {
    /// Taken (and not refunded).
    Captured {
        /// Provider reference.
        charge_id: String,
        /// Amount taken.
        amount: u64,
    },
    /// No money was taken under this key.
    NotCharged,
    /// Taken and given back.
    Refunded {
        /// Amount refunded.
        amount: u64,
    },
    /// Still being decided.
    Pending,
}

/// Why a refund failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PaymentError {
    /// No captured charge under the key.
    #[error("no captured charge under {0}")]
    NotCharged(String),
    /// More than was captured.
    #[error("refund of {asked} exceeds the {captured} captured")]
    TooMuch {
        /// Asked for.
        asked: u64,
        /// Captured.
        captured: u64,
    },
    /// A different refund was issued on this charge already.
    #[error("already refunded {refunded}, asked to refund {asked}")]
    AlreadyRefunded {
        /// Refunded before.
        refunded: u64,
        /// Asked now.
        asked: u64,
    },
    /// The provider could not be reached.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}

/// A payment provider.
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Charges, idempotently by `req.idempotency_key`.
    async fn charge(&self, req: &ChargeRequest) -> ChargeOutcome;
    /// What happened to the charge under `idempotency_key`.
    async fn lookup(&self, idempotency_key: &str) -> LookupOutcome;
    /// Refunds `amount` of the charge under `idempotency_key`; refunding
    /// again is a no-op.
    async fn refund(&self, idempotency_key: &str, amount: u64) -> Result<(), PaymentError>;
}

/// Charges the sandbox remembers at most; beyond this it declines.
pub const SANDBOX_CHARGES_MAX: usize = 1_000_000;
/// How long the sandbox takes to capture `tok_slow_visa`.
pub const SLOW_CHARGE: Duration = Duration::from_millis(1_500);

#[derive(Clone, Debug)]
struct Charge {
    id: String,
    outcome: ChargeOutcome,
    captured: u64,
    refunded: u64,
}

/// The built-in provider of the contract's test tokens: `tok_visa` succeeds;
/// `tok_declined` and `tok_insufficient_funds` are declined; `tok_timeout`
/// answers nothing in time but (by default) did take the money, which a
/// later lookup reveals. Anything else is declined as `invalid_token`.
///
/// The sandbox lives in the gateway's memory: charges made through another
/// gateway, or before a restart, look up as `Pending`, never as
/// `NotCharged`, so reconciliation never fails a payment it cannot see.
pub struct SandboxProvider {
    timeout: Duration,
    timeout_captures: bool,
    charges: Mutex<BTreeMap<String, Charge>>,
}

impl SandboxProvider {
    /// A sandbox whose `tok_timeout` charges take `timeout` to give up.
    pub fn new(timeout: Duration) -> SandboxProvider {
        SandboxProvider { timeout, timeout_captures: true, charges: Mutex::new(BTreeMap::new()) }
    }

    /// Whether a `tok_timeout` charge took the money (default) or not.
    pub fn with_timeout_captures(mut self, captures: bool) -> SandboxProvider {
        self.timeout_captures = captures;
        self
    }

    /// Total captured and refunded under a key (tests check that money is
    /// never taken twice, and never kept without a booking).
    pub fn totals(&self, key: &str) -> (u64, u64) {
        let charges = self.charges.lock().expect("sandbox lock poisoned");
        charges.get(key).map_or((0, 0), |c| (c.captured, c.refunded))
    }
}

#[async_trait::async_trait]
impl PaymentProvider for SandboxProvider {
    async fn charge(&self, req: &ChargeRequest) -> ChargeOutcome {
        let timed_out = req.token == "tok_timeout";
        // A card that succeeds, slowly: a short hold can lapse while it is
        // charged, which is how the refund of a charge without a booking is
        // exercised end to end. The charge is not visible to lookups until
        // it completes, as at a provider still processing it, so the
        // reconciler leaves it to the request.
        if req.token == "tok_slow_visa" {
            tokio::time::sleep(SLOW_CHARGE).await;
        }
        let answer = {
            let mut charges = self.charges.lock().expect("sandbox lock poisoned");
            if let Some(existing) = charges.get(&req.idempotency_key) {
                // A repeat answers like the first call, except that a charge
                // which timed out is now known.
                match &existing.outcome {
                    ChargeOutcome::Unknown if existing.captured > 0 => {
                        ChargeOutcome::Captured { charge_id: existing.id.clone() }
                    }
                    ChargeOutcome::Unknown => ChargeOutcome::Declined { reason: "processing_error".into() },
                    other => other.clone(),
                }
            } else if charges.len() >= SANDBOX_CHARGES_MAX {
                return ChargeOutcome::Declined { reason: "sandbox_full".into() };
            } else {
                let id = format!("ch_{}", charges.len() + 1);
                let (outcome, captured) = match req.token.as_str() {
                    "tok_visa" | "tok_slow_visa" => (ChargeOutcome::Captured { charge_id: id.clone() }, req.amount),
                    "tok_declined" => (ChargeOutcome::Declined { reason: "card_declined".into() }, 0),
                    "tok_insufficient_funds" => (ChargeOutcome::Declined { reason: "insufficient_funds".into() }, 0),
                    "tok_timeout" => (ChargeOutcome::Unknown, if self.timeout_captures { req.amount } else { 0 }),
                    _ => (ChargeOutcome::Declined { reason: "invalid_token".into() }, 0),
                };
                charges.insert(
                    req.idempotency_key.clone(),
                    Charge { id, outcome: outcome.clone(), captured, refunded: 0 },
                );
                outcome
            }
        };
        if timed_out && answer == ChargeOutcome::Unknown {
            tokio::time::sleep(self.timeout).await;
        }
        answer
    }

    async fn lookup(&self, idempotency_key: &str) -> LookupOutcome {
        let charges = self.charges.lock().expect("sandbox lock poisoned");
        match charges.get(idempotency_key) {
            // Each gateway process has its own sandbox, unlike a real
            // provider that every gateway shares: a key this sandbox never
            // saw may be another gateway's charge, so it is not known to be
            // uncharged. The gateway that made it reconciles it.
            None => LookupOutcome::Pending,
            Some(c) if c.refunded > 0 => LookupOutcome::Refunded { amount: c.refunded },
            Some(c) if c.captured > 0 => LookupOutcome::Captured { charge_id: c.id.clone(), amount: c.captured },
            Some(_) => LookupOutcome::NotCharged,
        }
    }

    async fn refund(&self, idempotency_key: &str, amount: u64) -> Result<(), PaymentError> {
        let mut charges = self.charges.lock().expect("sandbox lock poisoned");
        let c = charges.get_mut(idempotency_key).ok_or_else(|| PaymentError::NotCharged(idempotency_key.into()))?;
        if c.captured == 0 {
            return Err(PaymentError::NotCharged(idempotency_key.into()));
        }
        if amount > c.captured {
            return Err(PaymentError::TooMuch { asked: amount, captured: c.captured });
        }
        // One refund per charge: a repeat of the same refund is a no-op, a
        // different amount is refused rather than silently ignored.
        if c.refunded == 0 {
            c.refunded = amount;
        } else if c.refunded != amount {
            return Err(PaymentError::AlreadyRefunded { refunded: c.refunded, asked: amount });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, token: &str) -> ChargeRequest {
        ChargeRequest { idempotency_key: key.into(), amount: 500, currency: "INR".into(), token: token.into() }
    }

    #[tokio::test]
    async fn test_tokens_behave_as_the_contract_says() {
        let p = SandboxProvider::new(Duration::from_millis(10));
        assert!(matches!(p.charge(&req("a", "tok_visa")).await, ChargeOutcome::Captured { .. }));
        assert_eq!(
            p.charge(&req("b", "tok_declined")).await,
            ChargeOutcome::Declined { reason: "card_declined".into() }
        );
        assert_eq!(
            p.charge(&req("c", "tok_insufficient_funds")).await,
            ChargeOutcome::Declined { reason: "insufficient_funds".into() }
        );
        assert_eq!(p.charge(&req("d", "tok_bogus")).await, ChargeOutcome::Declined { reason: "invalid_token".into() });
        assert_eq!(p.charge(&req("e", "tok_timeout")).await, ChargeOutcome::Unknown);
        assert!(matches!(p.lookup("e").await, LookupOutcome::Captured { amount: 500, .. }));
        assert_eq!(p.lookup("b").await, LookupOutcome::NotCharged);
        assert_eq!(p.lookup("zzz").await, LookupOutcome::Pending, "maybe another gateway's charge");
    }

    #[tokio::test]
    async fn charges_are_idempotent_and_refunds_once() {
        let p = SandboxProvider::new(Duration::from_millis(10));
        let first = p.charge(&req("k", "tok_visa")).await;
        assert_eq!(p.charge(&req("k", "tok_visa")).await, first);
        assert_eq!(p.totals("k"), (500, 0), "charged once");
        p.refund("k", 500).await.unwrap();
        p.refund("k", 500).await.unwrap();
        assert_eq!(p.totals("k"), (500, 500), "refunded once");
        assert!(matches!(p.refund("k", 100).await, Err(PaymentError::AlreadyRefunded { .. })));
        assert_eq!(p.lookup("k").await, LookupOutcome::Refunded { amount: 500 });
        assert!(matches!(p.refund("nope", 1).await, Err(PaymentError::NotCharged(_))));
        p.charge(&req("t", "tok_timeout")).await;
        assert!(matches!(p.charge(&req("t", "tok_timeout")).await, ChargeOutcome::Captured { .. }));
        assert_eq!(p.totals("t"), (500, 0));
        assert!(matches!(p.refund("t", 501).await, Err(PaymentError::TooMuch { .. })));
    }

    #[tokio::test]
    async fn a_timeout_that_took_nothing_looks_up_as_not_charged() {
        let p = SandboxProvider::new(Duration::from_millis(10)).with_timeout_captures(false);
        assert_eq!(p.charge(&req("t", "tok_timeout")).await, ChargeOutcome::Unknown);
        assert_eq!(p.lookup("t").await, LookupOutcome::NotCharged);
        assert!(matches!(p.refund("t", 500).await, Err(PaymentError::NotCharged(_))));
    }
}
