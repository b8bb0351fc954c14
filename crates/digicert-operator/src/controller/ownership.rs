//! One order, one owner: which DigicertOrder drives a CertCentral order. Pure
//! decisions over plain data, table-tested; `claims` carries them out with a
//! `coordination.k8s.io/v1` Lease per (endpoint, order id) in the operator's
//! namespace.
//!
//! First claim wins: the resource that creates the Lease holds it for as long as it
//! exists (the same uid), across operator restarts. Only when the holder is gone
//! (deleted, or recreated under another uid) may another resource take the Lease
//! over, and it does so against the Lease's resourceVersion, so of two contenders
//! exactly one succeeds. The oldest resource is not preferred: moving a claim from a
//! holder that still exists could interrupt its reissue in flight.

/// The label on claim Leases (value: the order id), so they can be listed.
pub const CLAIM_LABEL: &str = "digicert-operator.dev/order-id";
/// The annotation on claim Leases naming the endpoint.
pub const ENDPOINT_ANNOTATION: &str = "digicert-operator.dev/certcentral";

/// The name of the Lease for `order_id` at `endpoint` (the endpoint's full URL):
/// `order-<id>-<first 8 hex digits of SHA-256(endpoint)>`.
pub fn lease_name(endpoint: &str, order_id: u64) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, endpoint.as_bytes());
    format!("order-{order_id}-{}", crate::hex(&digest.as_ref()[..4]))
}

/// What kind of resource holds a claim: a DigicertOrder, or (through the external
/// issuer) a cert-manager Certificate, or a CertificateRequest made without one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HolderKind {
    #[default]
    Order,
    Certificate,
    Request,
}

impl HolderKind {
    /// The prefix of its holderIdentity (none for a DigicertOrder, as ever).
    fn prefix(self) -> &'static str {
        match self {
            HolderKind::Order => "",
            HolderKind::Certificate => "Certificate:",
            HolderKind::Request => "CertificateRequest:",
        }
    }

    /// The kind's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            HolderKind::Order => "DigicertOrder",
            HolderKind::Certificate => "Certificate",
            HolderKind::Request => "CertificateRequest",
        }
    }
}

/// A resource as a claim holder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holder {
    pub kind: HolderKind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Holder {
    /// `[Kind:]namespace/name/uid`: the Lease's holderIdentity.
    pub fn identity(&self) -> String {
        format!(
            "{}{}/{}/{}",
            self.kind.prefix(),
            self.namespace,
            self.name,
            self.uid
        )
    }

    /// The holder a holderIdentity names; `None` for anything else.
    pub fn parse(identity: &str) -> Option<Holder> {
        let (kind, rest) = [HolderKind::Certificate, HolderKind::Request]
            .into_iter()
            .find_map(|k| identity.strip_prefix(k.prefix()).map(|r| (k, r)))
            .unwrap_or((HolderKind::Order, identity));
        let mut parts = rest.split('/');
        let (ns, name, uid) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some()
            || ns.is_empty()
            || ns.contains(':')
            || name.is_empty()
            || uid.is_empty()
        {
            return None;
        }
        Some(Holder {
            kind,
            namespace: ns.into(),
            name: name.into(),
            uid: uid.into(),
        })
    }

    /// `namespace/name`, for messages.
    pub fn display(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// `Kind namespace/name`, for messages.
    pub fn describe(&self) -> String {
        format!("the {} {}", self.kind.name(), self.display())
    }
}

/// What the Lease says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lease {
    /// No Lease.
    Absent,
    /// A Lease at `version` whose holderIdentity is `holder` (`None`: empty or not one
    /// of ours).
    Held {
        holder: Option<Holder>,
        version: String,
    },
}

/// What became of the Lease's holder, as far as it was looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Not looked up (yet).
    Unknown,
    /// The resource exists with the holder's uid.
    Alive,
    /// No resource of that name, or one with another uid.
    Gone,
}

/// What to do about the claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Create the Lease (409: someone was quicker; read again).
    Create,
    /// It is ours: go on.
    Held,
    /// Look up whether the holder still exists, then decide again.
    CheckHolder(Holder),
    /// The holder is gone: replace the Lease at `version`.
    TakeOver { version: String },
    /// Another resource drives the order: no DigiCert call.
    Yield(Holder),
}

/// The claim decision for `me`.
pub fn decide(me: &Holder, lease: &Lease, liveness: Liveness) -> Claim {
    match lease {
        Lease::Absent => Claim::Create,
        Lease::Held {
            holder: Some(h), ..
        } if h == me => Claim::Held,
        Lease::Held {
            holder: Some(h),
            version,
        } => match liveness {
            Liveness::Unknown => Claim::CheckHolder(h.clone()),
            Liveness::Alive => Claim::Yield(h.clone()),
            Liveness::Gone => Claim::TakeOver {
                version: version.clone(),
            },
        },
        // A Lease nobody holds (emptied by hand): take it.
        Lease::Held {
            holder: None,
            version,
        } => Claim::TakeOver {
            version: version.clone(),
        },
    }
}

/// Whether a resource found by the holder's name is the holder.
pub fn liveness(holder: &Holder, found_uid: Option<&str>) -> Liveness {
    match found_uid {
        Some(uid) if uid == holder.uid => Liveness::Alive,
        _ => Liveness::Gone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(ns: &str, name: &str, uid: &str) -> Holder {
        Holder {
            kind: HolderKind::Order,
            namespace: ns.into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    #[test]
    fn lease_names_are_per_endpoint_and_order_and_valid_names() {
        let us = lease_name("https://www.digicert.com/services/v2/", 1001);
        let eu = lease_name("https://certcentral.digicert.eu/services/v2/", 1001);
        assert_ne!(us, eu);
        assert_eq!(
            us,
            lease_name("https://www.digicert.com/services/v2/", 1001)
        );
        assert!(us.starts_with("order-1001-"), "{us}");
        assert_eq!(us.len(), "order-1001-".len() + 8);
        let long = lease_name("x", u64::MAX);
        assert!(
            long.len() <= 63
                && long
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
    }

    #[test]
    fn holder_identities_round_trip_and_nothing_else_parses() {
        let h = holder("team-a", "web", "0f1e-22");
        assert_eq!(h.identity(), "team-a/web/0f1e-22");
        assert_eq!(Holder::parse(&h.identity()), Some(h.clone()));
        assert_eq!(h.display(), "team-a/web");
        assert_eq!(h.describe(), "the DigicertOrder team-a/web");
        for kind in [HolderKind::Certificate, HolderKind::Request] {
            let other = Holder { kind, ..h.clone() };
            assert_eq!(Holder::parse(&other.identity()), Some(other.clone()));
            assert_ne!(other.identity(), h.identity());
        }
        assert_eq!(
            Holder::parse("Certificate:team-a/web/u1").map(|h| h.kind),
            Some(HolderKind::Certificate)
        );
        for bad in [
            "Certificate:",
            "Certificate:a/b",
            "Unknown:a/b/c/d",
            "",
            "a/b",
            "a/b/c/d",
            "/b/c",
            "a//c",
            "a/b/",
            "some-replica-1234",
        ] {
            assert_eq!(Holder::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn first_claim_wins_until_its_holder_is_gone() {
        let me = holder("b", "web", "u2");
        let other = holder("a", "web", "u1");
        let held = |h: Option<Holder>| Lease::Held {
            holder: h,
            version: "42".into(),
        };
        let take = Claim::TakeOver {
            version: "42".into(),
        };
        let cases = [
            (Lease::Absent, Liveness::Unknown, Claim::Create),
            (held(Some(me.clone())), Liveness::Unknown, Claim::Held),
            (held(Some(me.clone())), Liveness::Gone, Claim::Held),
            (
                held(Some(other.clone())),
                Liveness::Unknown,
                Claim::CheckHolder(other.clone()),
            ),
            (
                held(Some(other.clone())),
                Liveness::Alive,
                Claim::Yield(other.clone()),
            ),
            (held(Some(other.clone())), Liveness::Gone, take.clone()),
            (held(None), Liveness::Unknown, take.clone()),
            // My own name with another uid: an earlier incarnation, gone.
            (held(Some(holder("b", "web", "u0"))), Liveness::Gone, take),
        ];
        for (lease, live, want) in cases {
            assert_eq!(decide(&me, &lease, live), want, "{lease:?} {live:?}");
        }
    }

    #[test]
    fn a_holder_lives_only_under_its_own_uid() {
        let h = holder("a", "web", "u1");
        assert_eq!(liveness(&h, Some("u1")), Liveness::Alive);
        assert_eq!(liveness(&h, Some("u9")), Liveness::Gone);
        assert_eq!(liveness(&h, None), Liveness::Gone);
    }
}
