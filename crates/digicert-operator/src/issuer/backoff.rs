//! When a request may call DigiCert again after a failure. Kept in the operator's
//! memory, per request: every trigger (its issuer's status, an annotation, a resync)
//! respects the wait, so a failing DigiCert is never called in a loop. A restart
//! forgets it, which costs one call per waiting request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

#[derive(Default)]
pub struct Backoffs {
    until: Mutex<HashMap<String, OffsetDateTime>>,
}

impl Backoffs {
    /// No DigiCert call for the request `key` before `until`.
    pub fn set(&self, key: &str, until: OffsetDateTime) {
        self.until
            .lock()
            .expect("not poisoned")
            .insert(key.to_string(), until);
    }

    /// How long the request still has to wait (`None`: it may call now).
    pub fn wait(&self, key: &str, now: OffsetDateTime) -> Option<Duration> {
        let until = *self.until.lock().expect("not poisoned").get(key)?;
        (until > now).then(|| (until - now).try_into().unwrap_or_default())
    }

    /// The request succeeded, ended or went.
    pub fn clear(&self, key: &str) {
        self.until.lock().expect("not poisoned").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_wait_holds_until_it_is_over_or_cleared() {
        let b = Backoffs::default();
        let now = datetime!(2026-12-05 10:00 UTC);
        assert_eq!(b.wait("ns/a", now), None);
        b.set("ns/a", now + time::Duration::seconds(30));
        assert_eq!(b.wait("ns/a", now), Some(Duration::from_secs(30)));
        assert_eq!(b.wait("ns/b", now), None);
        assert_eq!(b.wait("ns/a", now + time::Duration::seconds(30)), None);
        b.clear("ns/a");
        assert_eq!(b.wait("ns/a", now), None);
    }
}
