//! Duplicates and revocation in the simulator, driven over HTTPS through the real
//! CertCentral client: duplicates for the current names with their own keys, the
//! refusals, what a name-removing reissue revokes after the delay (and what a rekey or
//! added names do not), the revoke endpoints with and without approval, and faults on
//! the new operations.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sim::{Sim, seed, start};
use crate::support::{KEY, VIEWER_KEY, client, csr, reissue_request};
use certcentral_sim::admin::AdminClient;
use certcentral_sim::faults::FaultSpec;
use certcentral_sim::{self, OrderPatch};
use digicert_operator::certcentral::{
    Client, DownloadFormat, DuplicateCertificate, DuplicateCertificateRequest, DuplicateRequest,
    Error, Operation, OrderStatus, ReissueStatus, RequestStatus, RevocationReason,
    RevokeOrderRequest, RevokeOutcome, RevokeRequest, ServerPlatformId,
};
use digicert_operator::keys::{self, KeyKind};
use serde_json::{Value, json};
use time::OffsetDateTime;

const ORDER: u64 = 1001;
const THREE: &[&str] = &["example.com", "www.example.com", "api.example.com"];
const TWO: &[&str] = &["example.com", "www.example.com"];
/// Names under a domain of their own, so their validation lapses alone.
const NET: &[&str] = &["example.net", "www.example.net"];

impl Sim {
    /// Asks for a duplicate with a new key; answers the key's public key bits.
    async fn duplicate(
        &self,
        order: u64,
        common_name: &str,
        names: &[&str],
    ) -> Result<(Vec<u8>, digicert_operator::certcentral::DuplicateResponse), Error> {
        let (key, pem) = csr(KeyKind::Ecdsa(256), common_name, names);
        let answer = self
            .c
            .duplicate(order, &duplicate_request(common_name, names, &pem))
            .await?;
        Ok((keys::public_key_bits(&key), answer))
    }

    /// A reissue for `names` with a new key, issued at once.
    async fn reissue(&self, order: u64, names: &[&str]) -> u64 {
        let (_, pem) = csr(KeyKind::Ecdsa(256), names[0], names);
        self.c
            .reissue(order, &reissue_request(names[0], &names[1..], &pem))
            .await
            .unwrap();
        let info = self.c.order_info(order).await.unwrap();
        assert_eq!(info.status, OrderStatus::Issued, "the reissue is issued");
        info.certificate.id
    }

    async fn duplicates(&self, order: u64) -> Vec<DuplicateCertificate> {
        self.c.list_duplicates(order).await.unwrap()
    }

    /// Status of certificate `id` in the reissue list.
    async fn reissue_status(&self, order: u64, id: u64) -> ReissueStatus {
        let list = self.c.list_reissues(order).await.unwrap();
        list.into_iter()
            .find(|c| c.id == id)
            .map(|c| c.status)
            .expect("listed")
    }

    async fn duplicate_status(&self, order: u64, id: u64) -> ReissueStatus {
        let list = self.duplicates(order).await;
        list.into_iter()
            .find(|c| c.id == id)
            .map(|c| c.status)
            .expect("listed")
    }

    /// The admin record of certificate `id`.
    async fn record(&self, order: u64, id: u64) -> Value {
        let record = self.admin.order(order).await.unwrap();
        record["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .expect("in the record")
    }

    async fn advance(&self, seconds: i64) {
        self.admin.advance_clock(seconds).await.unwrap();
    }

    fn calls(&self) -> certcentral_sim::CallCounts {
        self.running.simulator().calls()
    }
}

fn duplicate_request(common_name: &str, names: &[&str], csr: &str) -> DuplicateRequest {
    DuplicateRequest {
        certificate: DuplicateCertificateRequest {
            common_name: common_name.into(),
            dns_names: names.iter().map(|s| s.to_string()).collect(),
            csr: csr.into(),
            server_platform: Some(ServerPlatformId { id: 45 }),
            signature_hash: "sha256".into(),
            ca_cert_id: None,
        },
        skip_approval: Some(true),
        comments: Some("for the second load balancer".into()),
    }
}

fn leaf(pem: &str) -> keys::CertificateInfo {
    let der = keys::certificates_from_pem(pem).unwrap().remove(0);
    keys::inspect_certificate(&der).unwrap()
}

fn time(v: &Value) -> Option<OffsetDateTime> {
    v.as_str()
        .map(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap())
}

/// The error code of a refused call.
fn code(result: Result<impl std::fmt::Debug, Error>) -> (Option<u16>, String) {
    let err = result.expect_err("refused");
    (err.status(), err.code().unwrap_or_default().to_string())
}

fn fault(spec: Value) -> FaultSpec {
    serde_json::from_value(spec).unwrap()
}

/// `PUT /request/{id}/status` with `rejected` (the client only approves).
async fn reject_request(sim: &Sim, id: u64) {
    digicert_operator::tls::install_crypto_provider();
    let http = reqwest::Client::builder()
        .tls_certs_only(
            reqwest::Certificate::from_pem_bundle(sim.running.ca_pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let status = http
        .put(format!("{}/request/{id}/status", sim.running.base_url()))
        .header("X-DC-DEVKEY", KEY)
        .json(&json!({"status": "rejected", "processor_comment": "no"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
}

fn revoke(skip: bool) -> RevokeRequest {
    RevokeRequest {
        comments: Some("key lost".into()),
        skip_approval: skip.then_some(true),
    }
}

fn requested(outcome: RevokeOutcome) -> digicert_operator::certcentral::RevokeRequestInfo {
    match outcome {
        RevokeOutcome::Requested(r) => r,
        RevokeOutcome::Revoked => panic!("revoked at once, not requested"),
    }
}

#[tokio::test]
async fn a_duplicate_is_issued_at_once_for_the_current_names_with_its_own_key() {
    let sim = start(vec![seed(ORDER, THREE, json!({}))], |_| {}).await;
    let before = sim.c.order_info(ORDER).await.unwrap();
    let current = sim
        .c
        .download_certificate(before.certificate.id, DownloadFormat::PemAll)
        .await
        .unwrap();

    // A SAN may become the common name; the names are the current ones in any order.
    let names = ["www.example.com", "api.example.com", "example.com"];
    let (public_key, answer) = sim.duplicate(ORDER, names[0], &names).await.unwrap();
    assert_eq!(answer.id, ORDER);
    assert_eq!(answer.requests.len(), 1);
    assert_eq!(answer.requests[0].status, Some(RequestStatus::Approved));
    let chain = &answer.certificate_chain;
    assert_eq!(chain.len(), 2, "leaf and intermediate");
    assert_eq!(
        chain[0].subject_common_name.as_deref(),
        Some("www.example.com")
    );
    assert!(
        chain[1]
            .subject_common_name
            .as_deref()
            .is_some_and(|n| n.contains("Issuing CA"))
    );
    assert!(chain[1].pem.contains("BEGIN CERTIFICATE"));

    let issued = leaf(answer.leaf_pem().unwrap());
    let original = leaf(&current);
    assert_eq!(
        issued.public_key_bits, public_key,
        "the duplicate's own key"
    );
    assert_ne!(issued.public_key_bits, original.public_key_bits);
    assert_eq!(
        issued.not_after, original.not_after,
        "the rest of the validity"
    );
    assert_eq!(issued.common_name.as_deref(), Some("www.example.com"));
    let mut sans = issued.dns_names.clone();
    sans.sort();
    assert_eq!(sans, ["api.example.com", "example.com", "www.example.com"]);

    // Listed with its own certificate id, downloadable by it.
    let list = sim.duplicates(ORDER).await;
    assert_eq!(list.len(), 1);
    let d = &list[0];
    assert_eq!(d.status, ReissueStatus::Issued);
    assert_ne!(d.id, before.certificate.id);
    assert_eq!(
        d.serial_number.as_deref(),
        Some(issued.serial_number.as_str())
    );
    assert_eq!(d.thumbprint.as_deref(), Some(issued.thumbprint.as_str()));
    assert_eq!(d.valid_till, before.certificate.valid_till);
    assert_eq!(d.archived.as_deref(), Some("0"));
    assert_eq!(d.signature_hash.as_deref(), Some("sha256"));
    assert_eq!(d.key_size, Some(256));
    assert_eq!(d.server_platform.as_ref().map(|p| p.id), Some(45));
    assert!(d.ca_cert_id.as_deref().is_some_and(|id| !id.is_empty()));
    assert!(
        d.date_created
            .as_deref()
            .is_some_and(|t| t.ends_with("+00:00"))
    );
    assert_eq!(
        d.valid_from.as_deref().map(str::len),
        Some(10),
        "yyyy-MM-dd"
    );
    let pem = sim
        .c
        .download_certificate(d.id, DownloadFormat::PemNoroot)
        .await
        .unwrap();
    assert!(pem.starts_with(answer.leaf_pem().unwrap().trim_end()));

    // It is not the order's certificate, not a reissue, and the order is unchanged.
    let after = sim.c.order_info(ORDER).await.unwrap();
    assert_eq!(after.status, OrderStatus::Issued);
    assert_eq!(after.certificate, before.certificate);
    assert!(sim.c.list_reissues(ORDER).await.unwrap().is_empty());
    let by_order = sim
        .c
        .download_order_certificate(ORDER, DownloadFormat::PemAll)
        .await
        .unwrap();
    assert_eq!(by_order, current);

    // A second one is listed newest first.
    let (_, second) = sim.duplicate(ORDER, "example.com", THREE).await.unwrap();
    let list = sim.duplicates(ORDER).await;
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[0].serial_number.as_deref(),
        Some(leaf(second.leaf_pem().unwrap()).serial_number.as_str())
    );
}

#[tokio::test]
async fn a_duplicate_while_a_reissue_is_pending_copies_the_issued_certificate() {
    let sim = start(
        vec![seed(ORDER, TWO, json!({"issuance_delay_seconds": 3600}))],
        |_| {},
    )
    .await;
    let current = sim
        .c
        .download_order_certificate(ORDER, DownloadFormat::PemAll)
        .await
        .unwrap();
    let (_, pem) = csr(KeyKind::Ecdsa(256), "example.com", TWO);
    sim.c
        .reissue(ORDER, &reissue_request("example.com", &TWO[1..], &pem))
        .await
        .unwrap();
    let before = sim.c.order_info(ORDER).await.unwrap();
    assert_eq!(before.status, OrderStatus::ReissuePending);

    let (_, answer) = sim.duplicate(ORDER, "example.com", TWO).await.unwrap();
    let issued = leaf(answer.leaf_pem().unwrap());
    assert_eq!(issued.not_after, leaf(&current).not_after);
    let after = sim.c.order_info(ORDER).await.unwrap();
    assert_eq!(
        after.status,
        OrderStatus::ReissuePending,
        "status unchanged"
    );
    assert_eq!(after.certificate.id, before.certificate.id);

    // The reissue (a rekey) is issued later and leaves the duplicate as it is.
    sim.advance(3601).await;
    let info = sim.c.order_info(ORDER).await.unwrap();
    assert_eq!(info.status, OrderStatus::Issued);
    assert_ne!(info.certificate.id, before.certificate.id);
    let d = &sim.duplicates(ORDER).await[0];
    assert_eq!(d.status, ReissueStatus::Issued);
}

#[tokio::test]
async fn duplicates_are_refused_for_other_names_dv_a_disabled_feature_and_lapsed_validation() {
    let sim = start(
        vec![
            seed(ORDER, TWO, json!({})),
            seed(1002, TWO, json!({"product_name_id": "ssl_dv_geotrust"})),
            seed(1003, TWO, json!({"duplicates_enabled": false})),
            seed(1004, TWO, json!({"status": "pending"})),
        ],
        |_| {},
    )
    .await;
    // Fewer, more or other names than the current certificate's.
    for names in [
        &["example.com"][..],
        &["example.com", "www.example.com", "api.example.com"],
        &["example.com", "shop.example.com"],
    ] {
        assert_eq!(
            code(sim.duplicate(ORDER, names[0], names).await),
            (Some(400), "duplicate_names_mismatch".into()),
            "{names:?}"
        );
    }
    // The CSR must name what the request names.
    let (_, other) = csr(KeyKind::Ecdsa(256), "example.com", &["example.com"]);
    assert_eq!(
        code(
            sim.c
                .duplicate(ORDER, &duplicate_request("example.com", TWO, &other))
                .await
        ),
        (Some(400), "csr_names_mismatch".into())
    );
    let garbage = "-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----\n";
    assert_eq!(
        code(
            sim.c
                .duplicate(ORDER, &duplicate_request("example.com", TWO, garbage))
                .await
        ),
        (Some(400), "csr_invalid_cannot_parse".into())
    );
    assert_eq!(
        code(sim.duplicate(1002, "example.com", TWO).await),
        (Some(400), "duplicate_not_allowed_for_product".into())
    );
    assert_eq!(
        code(sim.duplicate(1003, "example.com", TWO).await),
        (Some(403), "access_denied|duplicates_disabled".into())
    );
    assert_eq!(
        code(sim.duplicate(1004, "example.com", TWO).await),
        (Some(400), "invalid_order_status".into())
    );
    assert_eq!(
        code(sim.duplicate(4040, "example.com", TWO).await),
        (Some(404), "not_found|order".into())
    );
    assert!(sim.duplicates(ORDER).await.is_empty(), "nothing was made");

    // The feature is switched per order through the admin API.
    let switch = |on: bool| OrderPatch {
        duplicates_enabled: Some(on),
        ..OrderPatch::default()
    };
    sim.admin.patch_order(1003, &switch(true)).await.unwrap();
    sim.duplicate(1003, "example.com", TWO).await.unwrap();
    sim.admin.patch_order(ORDER, &switch(false)).await.unwrap();
    assert_eq!(
        code(sim.duplicate(ORDER, "example.com", TWO).await).1,
        "access_denied|duplicates_disabled"
    );
    sim.admin.patch_order(ORDER, &switch(true)).await.unwrap();

    // Lapsed validation: duplicates have no validation workflow.
    let lapse = OrderPatch {
        validation_current: Some(false),
        ..OrderPatch::default()
    };
    sim.admin.patch_order(ORDER, &lapse).await.unwrap();
    assert_eq!(
        code(sim.duplicate(ORDER, "example.com", TWO).await),
        (Some(400), "dcv_expired".into())
    );
    let renew = OrderPatch {
        validation_current: Some(true),
        ..OrderPatch::default()
    };
    sim.admin.patch_order(ORDER, &renew).await.unwrap();
    sim.duplicate(ORDER, "example.com", TWO).await.unwrap();
}

#[tokio::test]
async fn the_account_wide_duplicate_settings_are_configurable() {
    let sim = start(
        vec![
            seed(ORDER, NET, json!({"validation_current": false})),
            seed(1002, TWO, json!({})),
            seed(1003, TWO, json!({"duplicates_enabled": true})),
        ],
        |config| {
            config.duplicates_enabled = false;
            config.duplicate_dcv_error_code = "validation_lapsed".into();
        },
    )
    .await;
    assert_eq!(
        code(sim.duplicate(1002, "example.com", TWO).await).1,
        "access_denied|duplicates_disabled"
    );
    sim.duplicate(1003, "example.com", TWO).await.unwrap();
    let on = OrderPatch {
        duplicates_enabled: Some(true),
        ..OrderPatch::default()
    };
    sim.admin.patch_order(ORDER, &on).await.unwrap();
    assert_eq!(
        code(sim.duplicate(ORDER, "example.net", NET).await),
        (Some(400), "validation_lapsed".into())
    );
}

#[tokio::test]
async fn a_reissue_that_drops_a_name_revokes_the_older_certificates_after_the_delay() {
    const DELAY: i64 = 6 * 3600;
    let sim = start(
        vec![
            seed(ORDER, THREE, json!({})),
            seed(1002, THREE, json!({"revocation_delay_seconds": 600})),
        ],
        |config| config.revocation_delay_seconds = DELAY as u64,
    )
    .await;
    let original = sim.c.order_info(ORDER).await.unwrap().certificate.id;
    let rekey = sim.reissue(ORDER, THREE).await;
    let (_, d) = sim.duplicate(ORDER, "example.com", THREE).await.unwrap();
    let duplicate = sim.duplicates(ORDER).await[0].id;
    assert_eq!(
        sim.duplicates(ORDER).await[0].serial_number.as_deref(),
        Some(leaf(d.leaf_pem().unwrap()).serial_number.as_str())
    );
    for id in [original, rekey, duplicate] {
        assert_eq!(
            sim.record(ORDER, id).await["revoke_at"],
            Value::Null,
            "{id}"
        );
    }

    // The common name moves and api.example.com goes: a new version of the certificate.
    let dropped = sim
        .reissue(ORDER, &["www.example.com", "example.com"])
        .await;
    let issued_at = time(&sim.record(ORDER, dropped).await["issued"]["date_issued"]).unwrap();
    for id in [original, rekey, duplicate] {
        let r = sim.record(ORDER, id).await;
        assert_eq!(
            time(&r["revoke_at"]),
            Some(issued_at + time::Duration::seconds(DELAY)),
            "{id}: {r}"
        );
        assert_eq!(r["revoked_at"], Value::Null);
    }
    assert_eq!(sim.record(ORDER, dropped).await["revoke_at"], Value::Null);

    // Nothing in the API shows the pending revocation.
    sim.advance(DELAY - 120).await;
    assert_eq!(
        sim.reissue_status(ORDER, rekey).await,
        ReissueStatus::Issued
    );
    assert_eq!(
        sim.duplicate_status(ORDER, duplicate).await,
        ReissueStatus::Issued
    );

    sim.advance(240).await;
    assert_eq!(
        sim.reissue_status(ORDER, rekey).await,
        ReissueStatus::Revoked
    );
    assert_eq!(
        sim.duplicate_status(ORDER, duplicate).await,
        ReissueStatus::Revoked
    );
    assert_eq!(
        sim.reissue_status(ORDER, dropped).await,
        ReissueStatus::Issued
    );
    let r = sim.record(ORDER, original).await;
    assert_eq!(r["status"], "revoked");
    assert_eq!(time(&r["revoked_at"]), time(&r["revoke_at"]));
    for id in [original, rekey, duplicate] {
        sim.c
            .download_certificate(id, DownloadFormat::PemAll)
            .await
            .unwrap_or_else(|e| panic!("{id} still downloads: {e}"));
    }
    let info = sim.c.order_info(ORDER).await.unwrap();
    assert_eq!(info.status, OrderStatus::Issued);
    assert_eq!(info.certificate.id, dropped);
    // Duplicates of the new names are made and stay.
    sim.duplicate(ORDER, "example.com", &["www.example.com"])
        .await
        .unwrap();

    // An order's own delay wins over the simulator's.
    let original = sim.c.order_info(1002).await.unwrap().certificate.id;
    let first = sim.reissue(1002, TWO).await;
    let first_at = time(&sim.record(1002, first).await["issued"]["date_issued"]).unwrap();
    let original_at = first_at + time::Duration::seconds(600);
    assert_eq!(
        time(&sim.record(1002, original).await["revoke_at"]),
        Some(original_at)
    );
    // Changed through the admin API; a certificate queued twice keeps the earlier time.
    let patch = OrderPatch {
        revocation_delay_seconds: Some(7200),
        ..OrderPatch::default()
    };
    sim.admin.patch_order(1002, &patch).await.unwrap();
    sim.duplicate(1002, "example.com", TWO).await.unwrap();
    let duplicate = sim.duplicates(1002).await[0].id;
    let second = sim.reissue(1002, &["example.com"]).await;
    let second_at = time(&sim.record(1002, second).await["issued"]["date_issued"]).unwrap();
    let queued_at = second_at + time::Duration::seconds(7200);
    for (id, want) in [
        (duplicate, queued_at),
        (first, queued_at),
        (original, original_at),
    ] {
        assert_eq!(
            time(&sim.record(1002, id).await["revoke_at"]),
            Some(want),
            "{id}"
        );
    }
}

#[tokio::test]
async fn added_names_and_rekeys_revoke_nothing() {
    let sim = start(vec![seed(ORDER, TWO, json!({}))], |config| {
        config.revocation_delay_seconds = 60;
    })
    .await;
    let original = sim.c.order_info(ORDER).await.unwrap().certificate.id;
    sim.duplicate(ORDER, "www.example.com", TWO).await.unwrap();
    let duplicate = sim.duplicates(ORDER).await[0].id;
    let added = sim.reissue(ORDER, THREE).await;
    let rekey = sim.reissue(ORDER, THREE).await;
    // The same names with another common name are no change either.
    let moved = sim
        .reissue(
            ORDER,
            &["api.example.com", "www.example.com", "example.com"],
        )
        .await;

    sim.advance(30 * 86_400).await;
    for id in [added, rekey, moved] {
        assert_eq!(sim.reissue_status(ORDER, id).await, ReissueStatus::Issued);
    }
    assert_eq!(
        sim.duplicate_status(ORDER, duplicate).await,
        ReissueStatus::Issued
    );
    for id in [original, duplicate, added, rekey, moved] {
        let r = sim.record(ORDER, id).await;
        assert_eq!(r["status"], "issued", "{id}");
        assert_eq!(r["revoke_at"], Value::Null, "{id}");
    }
}

#[tokio::test]
async fn a_certificate_is_revoked_at_once_or_once_its_request_is_approved() {
    let sim = start(vec![seed(ORDER, TWO, json!({}))], |_| {}).await;
    let original = sim.c.order_info(ORDER).await.unwrap();
    sim.duplicate(ORDER, "example.com", TWO).await.unwrap();
    sim.duplicate(ORDER, "example.com", TWO).await.unwrap();
    let list = sim.duplicates(ORDER).await;
    let (first, second) = (list[1].clone(), list[0].clone());

    // At once, by certificate id.
    let outcome = sim.c.revoke_certificate(first.id, &revoke(true)).await;
    assert_eq!(outcome.unwrap(), RevokeOutcome::Revoked);
    assert_eq!(
        sim.duplicate_status(ORDER, first.id).await,
        ReissueStatus::Revoked
    );
    assert_eq!(
        sim.duplicate_status(ORDER, second.id).await,
        ReissueStatus::Issued
    );
    assert_eq!(
        code(sim.c.revoke_certificate(first.id, &revoke(true)).await),
        (Some(400), "certificate_already_revoked".into())
    );
    sim.c
        .download_certificate(first.id, DownloadFormat::PemAll)
        .await
        .unwrap();

    // Through a request, by serial number (any case).
    let serial = second.serial_number.clone().unwrap().to_ascii_lowercase();
    let request = requested(
        sim.c
            .revoke_certificate(&serial, &revoke(false))
            .await
            .unwrap(),
    );
    assert_eq!(request.kind.as_deref(), Some("revoke"));
    assert_eq!(request.status, RequestStatus::Pending);
    assert_eq!(request.comments.as_deref(), Some("key lost"));
    let requester = request.requester.clone().unwrap();
    assert_eq!(requester.email, "admin@example.com");
    assert!(request.date.is_some());
    assert_eq!(
        sim.duplicate_status(ORDER, second.id).await,
        ReissueStatus::Issued,
        "not before approval"
    );
    let info = sim.c.request_info(request.id).await.unwrap();
    assert_eq!(
        (info.kind.as_deref(), info.status),
        (Some("revoke"), RequestStatus::Pending)
    );
    sim.c.approve_request(request.id, "ok").await.unwrap();
    assert_eq!(
        sim.duplicate_status(ORDER, second.id).await,
        ReissueStatus::Revoked
    );
    assert_eq!(
        sim.c.request_info(request.id).await.unwrap().status,
        RequestStatus::Approved
    );

    // Skipping approval needs an administrator; asking does not.
    let viewer = client(&sim.running, VIEWER_KEY);
    let id = original.certificate.id;
    assert_eq!(
        code(viewer.revoke_certificate(id, &revoke(true)).await),
        (Some(403), "access_denied|missing_permission".into())
    );
    let asked = requested(viewer.revoke_certificate(id, &revoke(false)).await.unwrap());
    // A rejected revoke request leaves the certificate alone.
    let declined = requested(viewer.revoke_certificate(id, &revoke(false)).await.unwrap());
    reject_request(&sim, declined.id).await;
    assert_eq!(
        sim.c.request_info(declined.id).await.unwrap().status,
        RequestStatus::Rejected
    );
    assert_eq!(sim.record(ORDER, id).await["status"], "issued");
    assert_eq!(
        code(sim.c.revoke_certificate(404_404, &revoke(true)).await),
        (Some(404), "not_found|certificate".into())
    );

    // Not while a reissue is pending, neither asked nor approved.
    let slow = OrderPatch {
        issuance_delay_seconds: Some(3600),
        ..OrderPatch::default()
    };
    sim.admin.patch_order(ORDER, &slow).await.unwrap();
    let (_, pem) = csr(KeyKind::Ecdsa(256), "example.com", TWO);
    sim.c
        .reissue(ORDER, &reissue_request("example.com", &TWO[1..], &pem))
        .await
        .unwrap();
    assert_eq!(
        code(sim.c.revoke_certificate(id, &revoke(true)).await),
        (Some(400), "reissue_pending".into())
    );
    assert_eq!(
        code(sim.c.approve_request(asked.id, "ok").await),
        (Some(400), "reissue_pending".into())
    );
    assert_eq!(
        sim.c.request_info(asked.id).await.unwrap().status,
        RequestStatus::Pending
    );
    sim.advance(3601).await;
    sim.c.approve_request(asked.id, "ok").await.unwrap();
    let r = sim.record(ORDER, id).await;
    assert_eq!(r["status"], "revoked");
    // Revoking one certificate leaves the order as it is.
    assert_eq!(
        sim.c.order_info(ORDER).await.unwrap().status,
        OrderStatus::Issued
    );
}

#[tokio::test]
async fn revoking_an_order_revokes_every_certificate_and_the_order() {
    let sim = start(
        vec![seed(ORDER, TWO, json!({})), seed(1002, TWO, json!({}))],
        |_| {},
    )
    .await;
    let original = sim.c.order_info(ORDER).await.unwrap().certificate.id;
    let reissue = sim.reissue(ORDER, TWO).await;
    sim.duplicate(ORDER, "example.com", TWO).await.unwrap();
    let duplicate = sim.duplicates(ORDER).await[0].id;

    let odd = RevokeOrderRequest {
        revocation_reason: Some(RevocationReason::Other("stolen".into())),
        ..RevokeOrderRequest::default()
    };
    assert_eq!(
        code(sim.c.revoke_order(ORDER, &odd).await),
        (Some(400), "invalid_revocation_reason".into())
    );

    let ask = RevokeOrderRequest {
        revocation_reason: Some(RevocationReason::CessationOfOperation),
        comments: Some("site closed".into()),
        skip_approval: None,
    };
    let request = requested(sim.c.revoke_order(ORDER, &ask).await.unwrap());
    assert_eq!(request.kind.as_deref(), Some("revoke"));
    assert_eq!(
        sim.c.order_info(ORDER).await.unwrap().status,
        OrderStatus::Issued,
        "not before approval"
    );
    sim.c.approve_request(request.id, "ok").await.unwrap();

    let info = sim.c.order_info(ORDER).await.unwrap();
    assert_eq!(info.status, OrderStatus::Revoked);
    assert_eq!(
        sim.reissue_status(ORDER, reissue).await,
        ReissueStatus::Revoked
    );
    assert_eq!(
        sim.duplicate_status(ORDER, duplicate).await,
        ReissueStatus::Revoked
    );
    assert_eq!(sim.record(ORDER, original).await["status"], "revoked");
    sim.c
        .download_certificate(duplicate, DownloadFormat::PemAll)
        .await
        .unwrap();

    // A revoked order takes no more reissues, duplicates or revocations.
    let (_, pem) = csr(KeyKind::Ecdsa(256), "example.com", TWO);
    let again = reissue_request("example.com", &TWO[1..], &pem);
    assert_eq!(
        code(sim.c.reissue(ORDER, &again).await).1,
        "invalid_order_status"
    );
    assert_eq!(
        code(sim.duplicate(ORDER, "example.com", TWO).await).1,
        "invalid_order_status"
    );
    assert_eq!(
        code(sim.c.revoke_order(ORDER, &ask).await).1,
        "invalid_order_status"
    );

    // At once, with a documented reason.
    let now = RevokeOrderRequest {
        revocation_reason: Some(RevocationReason::KeyCompromise),
        comments: None,
        skip_approval: Some(true),
    };
    assert_eq!(
        sim.c.revoke_order(1002, &now).await.unwrap(),
        RevokeOutcome::Revoked
    );
    let info = sim.c.order_info(1002).await.unwrap();
    assert_eq!(info.status, OrderStatus::Revoked);
    assert_eq!(
        sim.record(1002, info.certificate.id).await["status"],
        "revoked"
    );
    let calls = sim.calls();
    assert_eq!(calls.outcome(Operation::RevokeOrder, "204"), 1);
    assert_eq!(calls.outcome(Operation::RevokeOrder, "201"), 1);
}

#[tokio::test]
async fn faults_are_injected_into_the_new_operations() {
    let sim = start(
        vec![seed(ORDER, TWO, json!({})), seed(1002, TWO, json!({}))],
        |_| {},
    )
    .await;
    let s = sim.running.simulator();

    // A duplicate is never repeated after a server error: it may have been made.
    s.add_fault(fault(
        json!({"operation": "duplicate", "kind": "status", "status": 500, "nth": 1}),
    ))
    .unwrap();
    assert_eq!(
        code(sim.duplicate(ORDER, "example.com", TWO).await).0,
        Some(500)
    );
    assert_eq!(sim.calls().total(Operation::Duplicate), 1);
    assert!(
        sim.duplicates(ORDER).await.is_empty(),
        "refused before the work"
    );
    // Lost after the work: the client sees a failure, the duplicate exists.
    s.add_fault(fault(
        json!({"operation": "duplicate", "kind": "drop", "phase": "after", "nth": 1}),
    ))
    .unwrap();
    let err = sim.duplicate(ORDER, "example.com", TWO).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert_eq!(sim.calls().total(Operation::Duplicate), 2);
    assert_eq!(sim.duplicates(ORDER).await.len(), 1);

    // Reading the list is repeated.
    s.reset_calls();
    s.add_fault(fault(
        json!({"operation": "list_duplicates", "kind": "status", "status": 503, "nth": 1}),
    ))
    .unwrap();
    assert_eq!(sim.duplicates(ORDER).await.len(), 1);
    let calls = sim.calls();
    assert_eq!(calls.outcome(Operation::ListDuplicates, "503"), 1);
    assert_eq!(calls.outcome(Operation::ListDuplicates, "200"), 1);

    // A 429 is repeated (nothing was done); a 502 is not.
    let duplicate = sim.duplicates(ORDER).await[0].id;
    s.add_fault(fault(
        json!({"operation": "revoke_certificate", "kind": "rate_limit", "nth": 1}),
    ))
    .unwrap();
    assert_eq!(
        sim.c
            .revoke_certificate(duplicate, &revoke(true))
            .await
            .unwrap(),
        RevokeOutcome::Revoked
    );
    assert_eq!(sim.calls().total(Operation::RevokeCertificate), 2);
    s.add_fault(fault(
        json!({"operation": "revoke_order", "kind": "status", "status": 502, "nth": 1}),
    ))
    .unwrap();
    let all = RevokeOrderRequest {
        skip_approval: Some(true),
        ..RevokeOrderRequest::default()
    };
    assert_eq!(code(sim.c.revoke_order(1002, &all).await).0, Some(502));
    assert_eq!(sim.calls().total(Operation::RevokeOrder), 1);
    assert_eq!(
        sim.c.order_info(1002).await.unwrap().status,
        OrderStatus::Issued
    );
    // A garbled answer is no proof of revocation.
    s.add_fault(fault(
        json!({"operation": "revoke_order", "kind": "malformed", "phase": "after", "nth": 1}),
    ))
    .unwrap();
    let err = sim.c.revoke_order(1002, &all).await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    assert_eq!(
        sim.c.order_info(1002).await.unwrap().status,
        OrderStatus::Revoked
    );
}

/// The simulator binary with `args`, its orders from `orders` (YAML).
struct Binary {
    child: Child,
    base_url: String,
    admin_url: String,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(orders: &str, args: &[&str]) -> Binary {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let orders_file = dir.path().join("orders.yaml");
    std::fs::write(&orders_file, orders).unwrap();
    let ca = dir.path().join("ca.pem");
    let child = Command::new(crate::support::process::simulator_binary())
        .args(["--listen", "127.0.0.1:0", "--no-rate-limit"])
        .arg("--orders")
        .arg(&orders_file)
        .arg("--ca-bundle-out")
        .arg(&ca)
        .arg("--ready-file")
        .arg(&ready)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "simulator did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let info: Value = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
    Binary {
        child,
        base_url: info["base_url"].as_str().unwrap().into(),
        admin_url: info["admin_url"].as_str().unwrap().into(),
        ca_pem: std::fs::read_to_string(&ca).unwrap(),
        _dir: dir,
    }
}

#[tokio::test]
async fn the_binary_takes_the_revocation_delay_and_the_duplicate_settings() {
    let orders = format!(
        "api_keys: [{{key: {KEY}}}]\norders:\n  - {{id: 1001, common_name: example.com, dns_names: [www.example.com]}}\n  - {{id: 1002, common_name: example.com, dns_names: [www.example.com], duplicates_enabled: true}}\n"
    );
    let p = spawn(
        &orders,
        &[
            "--revocation-delay",
            "120",
            "--no-duplicates",
            "--duplicate-dcv-error-code",
            "validation_lapsed",
        ],
    );
    let config = digicert_operator::certcentral::ClientConfig {
        base_url: p.base_url.parse().unwrap(),
        trust: digicert_operator::certcentral::TrustRoots::Only(p.ca_pem.as_bytes().to_vec()),
        retry: crate::support::fast_retry(),
        ..Default::default()
    };
    let c = Client::with_limiter(
        config,
        digicert_operator::certcentral::ApiKey::new(KEY).unwrap(),
        std::sync::Arc::new(digicert_operator::certcentral::RateLimiter::unlimited),
    )
    .unwrap();
    let admin = AdminClient::new(&p.admin_url, &p.ca_pem, None).unwrap();

    let original = c.order_info(1001).await.unwrap().certificate.id;
    let (_, pem) = csr(KeyKind::Ecdsa(256), "example.com", &["example.com"]);
    c.reissue(1001, &reissue_request("example.com", &[], &pem))
        .await
        .unwrap();
    let record = admin.order(1001).await.unwrap();
    let certs = record["certificates"].as_array().unwrap();
    let find = |id: u64| certs.iter().find(|c| c["id"] == id).unwrap();
    let current = c.order_info(1001).await.unwrap().certificate.id;
    let issued_at = time(&find(current)["issued"]["date_issued"]).unwrap();
    assert_eq!(
        time(&find(original)["revoke_at"]),
        Some(issued_at + time::Duration::seconds(120))
    );

    // Duplicates are off for the account and on for order 1002 by its seed.
    let (_, pem) = csr(KeyKind::Ecdsa(256), "example.com", TWO);
    let request = duplicate_request("example.com", TWO, &pem);
    assert_eq!(
        code(c.duplicate(1001, &request).await),
        (Some(403), "access_denied|duplicates_disabled".into())
    );
    c.duplicate(1002, &request).await.unwrap();
    // Lapsed validation answers the configured code.
    let lapse = OrderPatch {
        validation_current: Some(false),
        ..OrderPatch::default()
    };
    admin.patch_order(1002, &lapse).await.unwrap();
    assert_eq!(
        code(c.duplicate(1002, &request).await).1,
        "validation_lapsed"
    );
}
