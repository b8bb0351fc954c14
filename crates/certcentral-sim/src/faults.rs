//! Fault injection: rules that make chosen calls misbehave.
//!
//! A rule matches an operation (or every operation) and fires on the N-th matching
//! call after it was added, or on a fraction of calls (drawn from a seeded generator,
//! so a run is repeatable), at most `times` times. It acts before the call is handled
//! (DigiCert never saw it) or after (DigiCert did the work, but the answer is lost or
//! garbled: the case a crash-safe client has to survive).

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use certcentral::Operation;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultAction {
    /// Answer with this HTTP status and a DigiCert error body.
    Status {
        status: u16,
        #[serde(default)]
        code: Option<String>,
    },
    /// 429 `request_limit_exceeded`.
    RateLimit,
    /// Wait this long, then handle the call normally (a slow answer).
    Delay { millis: u64 },
    /// The request is held up on its way for this long, then handled even when its
    /// caller has gone meanwhile (a proxy that delivers late): its effect arrives
    /// after the caller gave up on it.
    Late { millis: u64 },
    /// Break the connection without a complete answer.
    Drop,
    /// 200 with a body that is not valid JSON.
    Malformed,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Before,
    After,
}

/// A rule as given to the admin API.
// Not `deny_unknown_fields`: serde cannot combine it with the flattened action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// The operation to affect; every operation when absent.
    #[serde(default)]
    pub operation: Option<Operation>,
    #[serde(flatten)]
    pub action: FaultAction,
    #[serde(default)]
    pub phase: Phase,
    /// Fire on the N-th matching call (1 = the next one) counted from now.
    #[serde(default)]
    pub nth: Option<u64>,
    /// Fire on this fraction of matching calls (0.0 to 1.0).
    #[serde(default)]
    pub fraction: Option<f64>,
    /// Fire at most this many times; default once with `nth`, without limit otherwise.
    #[serde(default)]
    pub times: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FaultRule {
    pub id: u64,
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// Matching calls seen since the rule was added.
    pub seen: u64,
    pub fired: u64,
}

impl FaultRule {
    fn exhausted(&self) -> bool {
        let limit = self
            .spec
            .times
            .or(self.spec.nth.map(|_| 1))
            .unwrap_or(u64::MAX);
        self.fired >= limit
    }
}

#[derive(Debug)]
pub struct Faults {
    rules: Vec<FaultRule>,
    next_id: u64,
    rng: rand::rngs::StdRng,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Faults {
            rules: Vec::new(),
            next_id: 1,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        }
    }

    pub fn add(&mut self, spec: FaultSpec) -> Result<u64, String> {
        if let Some(f) = spec.fraction
            && !(0.0..=1.0).contains(&f)
        {
            return Err(format!("fraction {f} is not between 0 and 1"));
        }
        if spec.nth == Some(0) {
            return Err("nth counts from 1".into());
        }
        if let FaultAction::Status { status, .. } = spec.action
            && !(400..=599).contains(&status)
        {
            return Err(format!("status {status} is not an error status"));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.rules.push(FaultRule {
            id,
            spec,
            seen: 0,
            fired: 0,
        });
        Ok(id)
    }

    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.id != id);
        self.rules.len() != before
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    /// Counts the call against every rule for `op` and returns the actions that fire,
    /// per phase. Every rule sees the call, whether or not another one fires.
    pub fn on_call(&mut self, op: Operation) -> Vec<(Phase, FaultAction)> {
        let mut fired = Vec::new();
        for rule in &mut self.rules {
            if rule.spec.operation.is_some_and(|o| o != op) || rule.exhausted() {
                continue;
            }
            rule.seen += 1;
            let fires = match (rule.spec.nth, rule.spec.fraction) {
                (Some(n), _) => rule.seen >= n,
                (None, Some(f)) => self.rng.random_bool(f),
                (None, None) => true,
            };
            if fires {
                rule.fired += 1;
                fired.push((rule.spec.phase, rule.spec.action.clone()));
            }
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> FaultSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn nth_fires_once_on_that_call() {
        let mut f = Faults::new(1);
        f.add(spec(
            r#"{"operation":"reissue","kind":"status","status":503,"nth":2}"#,
        ))
        .unwrap();
        assert!(f.on_call(Operation::Reissue).is_empty());
        assert!(f.on_call(Operation::OrderInfo).is_empty());
        assert_eq!(
            f.on_call(Operation::Reissue),
            [(
                Phase::Before,
                FaultAction::Status {
                    status: 503,
                    code: None
                }
            )]
        );
        assert!(f.on_call(Operation::Reissue).is_empty());
    }

    #[test]
    fn times_limits_an_unconditional_rule() {
        let mut f = Faults::new(1);
        f.add(spec(r#"{"kind":"drop","phase":"after","times":3}"#))
            .unwrap();
        let fired: usize = (0..10)
            .map(|_| f.on_call(Operation::ListReissues).len())
            .sum();
        assert_eq!(fired, 3);
    }

    #[test]
    fn fractions_are_repeatable_for_a_seed() {
        let run = |seed| {
            let mut f = Faults::new(seed);
            f.add(spec(r#"{"kind":"rate_limit","fraction":0.3}"#))
                .unwrap();
            (0..1000)
                .map(|_| !f.on_call(Operation::OrderInfo).is_empty())
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        let hits = a.iter().filter(|h| **h).count();
        assert!((200..400).contains(&hits), "{hits}");
    }

    #[test]
    fn bad_specs_are_refused() {
        let mut f = Faults::new(1);
        assert!(
            f.add(spec(r#"{"kind":"malformed","fraction":1.5}"#))
                .is_err()
        );
        assert!(f.add(spec(r#"{"kind":"malformed","nth":0}"#)).is_err());
        assert!(f.add(spec(r#"{"kind":"status","status":200}"#)).is_err());
        assert!(serde_json::from_str::<FaultSpec>(r#"{"kind":"explode"}"#).is_err());
        let id = f.add(spec(r#"{"kind":"delay","millis":10}"#)).unwrap();
        assert!(f.remove(id));
        assert!(!f.remove(id));
    }
}
