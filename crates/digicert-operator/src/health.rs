//! What `/readyz` reports: the replica's role and the state of its watches. Shared by
//! the controllers (which report) and the process (which serves it).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// What `/readyz` reports.
#[derive(Debug, Default)]
pub struct Health {
    /// 0: not known yet, 1: leader (or no election), 2: standby.
    role: AtomicU8,
    /// Controllers started, and of those, whose watches have synced.
    started: AtomicUsize,
    synced: AtomicUsize,
    /// Namespaces that could not be watched (missing CRD or permission).
    blocked: AtomicUsize,
    stopping: AtomicBool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Unknown,
    Leader,
    Standby,
}

impl Health {
    pub fn set_role(&self, role: Role) {
        let v = match role {
            Role::Unknown => 0,
            Role::Leader => 1,
            Role::Standby => 2,
        };
        self.role.store(v, Ordering::SeqCst);
    }

    pub fn role(&self) -> Role {
        match self.role.load(Ordering::SeqCst) {
            1 => Role::Leader,
            2 => Role::Standby,
            _ => Role::Unknown,
        }
    }

    pub fn controller_started(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
    }

    pub fn controller_synced(&self) {
        self.synced.fetch_add(1, Ordering::SeqCst);
    }

    /// A namespace cannot be watched (yet).
    pub fn block(&self) {
        self.blocked.fetch_add(1, Ordering::SeqCst);
    }

    pub fn unblock(&self) {
        self.blocked.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Ready: shutting down no, role known, and as leader every started watch synced
    /// (a standby is ready to take over; it watches nothing).
    pub fn readiness(&self) -> Result<String, String> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err("shutting down".into());
        }
        match self.role() {
            Role::Unknown => Err("leader election has not decided yet".into()),
            Role::Standby => Ok("standby: another replica leads".into()),
            Role::Leader => {
                let started = self.started.load(Ordering::SeqCst);
                let synced = self.synced.load(Ordering::SeqCst);
                let blocked = self.blocked.load(Ordering::SeqCst);
                if started == 0 {
                    Err(format!(
                        "no namespace can be watched yet ({blocked} blocked: see the log)"
                    ))
                } else if synced < started {
                    Err(format!("{synced} of {started} watches synced"))
                } else if blocked > 0 {
                    Ok(format!(
                        "leader; {synced} watches synced, {blocked} namespaces not accessible (see the log)"
                    ))
                } else {
                    Ok(format!("leader; {synced} watches synced"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_role_and_watches() {
        let h = Health::default();
        assert!(h.readiness().is_err(), "role unknown");
        h.set_role(Role::Standby);
        assert!(h.readiness().is_ok());
        h.set_role(Role::Leader);
        assert!(h.readiness().is_err(), "nothing started");
        h.controller_started();
        h.controller_started();
        h.controller_synced();
        assert!(h.readiness().is_err(), "one of two synced");
        h.controller_synced();
        assert!(h.readiness().is_ok());
        h.block();
        assert!(h.readiness().unwrap().contains("not accessible"));
        h.set_stopping();
        assert!(h.readiness().is_err());
    }
}
