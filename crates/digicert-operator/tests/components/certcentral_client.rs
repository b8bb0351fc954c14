//! The CertCentral client against the simulator over real HTTPS, trusting only the
//! simulator's CA: every endpoint, every error path, retries and rate limiting.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use certcentral_sim::faults::FaultSpec;
use certcentral_sim::{OrderPatch, RunningSimulator};
use digicert_operator::certcentral::{
    ApiKey, BaseUrl, Client, ClientConfig, DownloadFormat, Error, OrderStatus, RateLimiter,
    ReissueStatus, RequestStatus, RetryPolicy, TransportKind, TrustRoots, Window,
};
use digicert_operator::keys::{self, KeyKind};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

fn fault(json: serde_json::Value) -> FaultSpec {
    serde_json::from_value(json).unwrap()
}

/// Checks that `pem` is leaf, intermediate(s) and (with `with_root`) root, each signed
/// by the next, ending at `root_pem`; returns the leaf's SubjectPublicKeyInfo and SANs.
fn verify_chain(pem: &str, root_pem: &str, with_root: bool) -> (Vec<u8>, Vec<String>) {
    let ders = keys::certificates_from_pem(pem).unwrap();
    let root_der = keys::certificates_from_pem(root_pem).unwrap().remove(0);
    assert_eq!(ders.len(), if with_root { 3 } else { 2 });
    if with_root {
        assert_eq!(ders[2].as_ref(), root_der.as_ref(), "last is the root");
    }
    let certs: Vec<X509Certificate> = ders
        .iter()
        .map(|d| X509Certificate::from_der(d).unwrap().1)
        .collect();
    let (_, root) = X509Certificate::from_der(&root_der).unwrap();
    certs[0]
        .verify_signature(Some(certs[1].public_key()))
        .expect("leaf signed by the intermediate");
    certs[1]
        .verify_signature(Some(root.public_key()))
        .expect("intermediate signed by the root");
    let sans = certs[0]
        .subject_alternative_name()
        .unwrap()
        .map(|s| {
            s.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    (certs[0].public_key().raw.to_vec(), sans)
}

#[tokio::test]
async fn order_info_shows_an_issued_order() {
    let sim = simulator(vec![order(1001)]).await;
    let c = client(&sim, KEY);
    let info = c.order_info(1001).await.unwrap();
    assert_eq!(info.id, 1001);
    assert_eq!(info.status, OrderStatus::Issued);
    assert_eq!(info.auto_reissue, 0);
    assert_eq!(info.certificate.common_name, "example.com");
    assert!(info.certificate.serial_number.is_some());
    assert!(info.order_valid_till.is_some());
    // Its certificate downloads by order and by id, and chains to the simulator root.
    let by_order = c
        .download_order_certificate(1001, DownloadFormat::PemAll)
        .await
        .unwrap();
    let by_id = c
        .download_certificate(info.certificate.id, DownloadFormat::PemAll)
        .await
        .unwrap();
    assert_eq!(by_order, by_id);
    verify_chain(&by_id, sim.ca_pem(), true);
}

#[tokio::test]
async fn reissue_is_issued_listed_and_downloadable() {
    let sim = simulator(vec![order(1001)]).await;
    let c = client(&sim, KEY);
    let (key, req) = example_reissue();
    let answer = c.reissue(1001, &req).await.unwrap();
    assert_eq!(answer.id, 1001);
    let request_id = answer.request_id().expect("a request id");
    assert_eq!(answer.certificate_id, None);

    let list = c.list_reissues(1001).await.unwrap();
    assert_eq!(list.len(), 1);
    let entry = &list[0];
    assert_eq!(entry.status, ReissueStatus::Issued);
    assert_eq!(
        entry.csr.as_deref().map(str::trim),
        Some(req.certificate.csr.trim())
    );
    assert!(entry.serial_number.is_some() && entry.thumbprint.is_some());
    assert!(entry.valid_till.is_some());

    let info = c.order_info(1001).await.unwrap();
    assert_eq!(info.status, OrderStatus::Issued);
    assert_eq!(
        info.certificate.id, entry.id,
        "order points at the new certificate"
    );
    assert_eq!(info.certificate.serial_number, entry.serial_number);
    let request = c.request_info(request_id).await.unwrap();
    assert_eq!(request.status, RequestStatus::Approved);
    assert_eq!(request.order.map(|o| o.id), Some(1001));

    let all = c
        .download_certificate(entry.id, DownloadFormat::PemAll)
        .await
        .unwrap();
    let (spki, sans) = verify_chain(&all, sim.ca_pem(), true);
    assert_eq!(spki, rcgen::PublicKeyData::subject_public_key_info(&key));
    assert_eq!(sans, ["example.com", "www.example.com"]);
    let noroot = c
        .download_certificate(entry.id, DownloadFormat::PemNoroot)
        .await
        .unwrap();
    verify_chain(&noroot, sim.ca_pem(), false);
}

#[tokio::test]
async fn rsa_and_every_signature_hash_are_accepted() {
    let sim = simulator(vec![order(1001)]).await;
    let c = client(&sim, KEY);
    for (kind, hash) in [
        (KeyKind::Rsa(2048), "sha256"),
        (KeyKind::Rsa(3072), "sha384"),
        (KeyKind::Ecdsa(384), "sha512"),
    ] {
        let (_, pem) = csr(kind, "example.com", &["example.com"]);
        let mut req = reissue_request("example.com", &[], &pem);
        req.certificate.signature_hash = hash.into();
        c.reissue(1001, &req).await.unwrap();
        let newest = c.list_reissues(1001).await.unwrap().remove(0);
        assert_eq!(newest.status, ReissueStatus::Issued, "{kind} {hash}");
        assert_eq!(newest.key_size, Some(kind.bits()));
    }
}

#[tokio::test]
async fn skip_approval_with_immediate_issuance_answers_the_certificate_id() {
    let mut seed = order(1001);
    seed.approval_required = true;
    let sim = simulator(vec![seed]).await;
    let c = client(&sim, KEY);
    let (_, mut req) = example_reissue();
    req.skip_approval = Some(true);
    let answer = c.reissue(1001, &req).await.unwrap();
    let cert_id = answer.certificate_id.expect("certificate_id");
    assert!(answer.requests.is_empty());
    assert_eq!(c.order_info(1001).await.unwrap().certificate.id, cert_id);
}

#[tokio::test]
async fn approval_flow() {
    let mut seed = order(1001);
    seed.approval_required = true;
    let sim = simulator(vec![seed]).await;
    let c = client(&sim, KEY);
    let (_, req) = example_reissue();
    let request_id = c.reissue(1001, &req).await.unwrap().request_id().unwrap();
    assert_eq!(
        c.request_info(request_id).await.unwrap().status,
        RequestStatus::Pending
    );
    assert_eq!(
        c.order_info(1001).await.unwrap().status,
        OrderStatus::ReissuePending
    );
    assert_eq!(
        c.list_reissues(1001).await.unwrap()[0].status,
        ReissueStatus::Pending
    );

    // A key without approver rights is refused.
    let viewer = client(&sim, VIEWER_KEY);
    let err = viewer.approve_request(request_id, "ok").await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.code(), Some("access_denied|invalid_approver"));
    assert!(!err.is_retryable());

    c.approve_request(request_id, "approved by test")
        .await
        .unwrap();
    let request = c.request_info(request_id).await.unwrap();
    assert_eq!(request.status, RequestStatus::Approved);
    assert_eq!(
        request.processor_comment.as_deref(),
        Some("approved by test")
    );
    assert_eq!(
        c.list_reissues(1001).await.unwrap()[0].status,
        ReissueStatus::Issued
    );
    assert_eq!(
        c.order_info(1001).await.unwrap().status,
        OrderStatus::Issued
    );

    // Approving twice: the request is no longer pending.
    let err = c.approve_request(request_id, "again").await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    let err = c.request_info(999_999).await.unwrap_err();
    assert_eq!(err.code(), Some("not_found|request"));
}

#[tokio::test]
async fn delayed_issuance_follows_the_simulator_clock() {
    let mut seed = order(1001);
    seed.issuance_delay_seconds = 3600;
    let sim = simulator(vec![seed]).await;
    let c = client(&sim, KEY);
    let (_, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();
    assert_eq!(
        c.list_reissues(1001).await.unwrap()[0].status,
        ReissueStatus::Pending
    );
    sim.simulator().advance_clock(time::Duration::seconds(3599));
    assert_eq!(
        c.list_reissues(1001).await.unwrap()[0].status,
        ReissueStatus::Pending
    );
    sim.simulator().advance_clock(time::Duration::seconds(2));
    assert_eq!(
        c.list_reissues(1001).await.unwrap()[0].status,
        ReissueStatus::Issued
    );
}

#[tokio::test]
async fn lapsed_validation_holds_a_reissue_until_redone() {
    let mut seed = order(1001);
    seed.validation_current = false;
    let sim = simulator(vec![seed]).await;
    let c = client(&sim, KEY);
    let (_, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();
    sim.simulator().advance_clock(time::Duration::days(2));
    assert_eq!(
        c.list_reissues(1001).await.unwrap()[0].status,
        ReissueStatus::Pending
    );
    sim.simulator()
        .patch_order(
            1001,
            OrderPatch {
                validation_current: Some(true),
                ..OrderPatch::default()
            },
        )
        .unwrap();
    assert_eq!(
        c.list_reissues(1001).await.unwrap()[0].status,
        ReissueStatus::Issued
    );
}

#[tokio::test]
async fn a_new_reissue_replaces_a_pending_one() {
    let mut seed = order(1001);
    seed.issuance_delay_seconds = 600;
    let sim = simulator(vec![seed]).await;
    let c = client(&sim, KEY);
    let (_, first) = example_reissue();
    let (_, second) = example_reissue();
    let r1 = c.reissue(1001, &first).await.unwrap().request_id().unwrap();
    let r2 = c
        .reissue(1001, &second)
        .await
        .unwrap()
        .request_id()
        .unwrap();
    let list = c.list_reissues(1001).await.unwrap();
    assert_eq!(list.len(), 2);
    // Newest first.
    assert_eq!(list[0].status, ReissueStatus::Pending);
    assert_eq!(list[1].status, ReissueStatus::Rejected);
    assert_eq!(
        c.request_info(r1).await.unwrap().status,
        RequestStatus::Rejected
    );
    assert_eq!(
        c.request_info(r2).await.unwrap().status,
        RequestStatus::Approved
    );
}

#[tokio::test]
async fn cancel_works_only_from_the_documented_states() {
    let mut delayed = order(1001);
    delayed.issuance_delay_seconds = 600;
    let mut pending_order = order(1002);
    pending_order.status = OrderStatus::Pending;
    let mut waiting = order(1003);
    waiting.status = OrderStatus::WaitingPickup;
    let sim = simulator(vec![delayed, pending_order, waiting, order(1004)]).await;
    let c = client(&sim, KEY);

    // A pending reissue: canceled, the order is issued again.
    let (_, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();
    assert_eq!(
        c.order_info(1001).await.unwrap().status,
        OrderStatus::ReissuePending
    );
    c.cancel(1001, "superseded").await.unwrap();
    assert_eq!(
        c.order_info(1001).await.unwrap().status,
        OrderStatus::Issued
    );
    assert_eq!(
        c.list_reissues(1001).await.unwrap()[0].status,
        ReissueStatus::Rejected
    );

    // Pending and waiting_pickup orders: canceled.
    for id in [1002, 1003] {
        c.cancel(id, "not needed").await.unwrap();
        assert_eq!(
            c.order_info(id).await.unwrap().status,
            OrderStatus::Canceled
        );
    }

    // An issued order with nothing pending, or a canceled one: refused.
    for id in [1004, 1002] {
        let err = c.cancel(id, "no").await.unwrap_err();
        assert_eq!(err.status(), Some(400), "{err}");
        assert_eq!(err.code(), Some("invalid_order_status"));
        assert!(!err.is_retryable());
    }
    let err = c.cancel(4242, "no").await.unwrap_err();
    assert_eq!(err.code(), Some("not_found|order"));
}

#[tokio::test]
async fn auto_reissue_setting_round_trips_and_needs_a_multi_year_plan() {
    let mut single = order(1002);
    single.multi_year_plan = false;
    let sim = simulator(vec![order(1001), single]).await;
    let c = client(&sim, KEY);
    c.set_auto_reissue(1001, true).await.unwrap();
    assert_eq!(c.order_info(1001).await.unwrap().auto_reissue, 1);
    c.set_auto_reissue(1001, false).await.unwrap();
    assert_eq!(c.order_info(1001).await.unwrap().auto_reissue, 0);
    let err = c.set_auto_reissue(1002, true).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.code(), Some("auto_reissue_not_supported"));
    assert_eq!(c.order_info(1002).await.unwrap().auto_reissue, 0);
}

#[tokio::test]
async fn auto_reissue_reuses_the_previous_csr_inside_the_window() {
    let mut seed = order(1001);
    seed.certificate_validity_seconds = Some(10 * 86_400);
    seed.auto_reissue_window_seconds = Some(3 * 86_400);
    let sim = simulator(vec![seed]).await;
    let c = client(&sim, KEY);
    let (key, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();
    c.set_auto_reissue(1001, true).await.unwrap();
    let ours = c.list_reissues(1001).await.unwrap()[0].clone();

    // Outside the window: nothing happens.
    sim.simulator().advance_clock(time::Duration::days(6));
    assert_eq!(c.list_reissues(1001).await.unwrap().len(), 1);

    // Inside it: DigiCert reissues once, with the same CSR (so the same key).
    sim.simulator().advance_clock(time::Duration::days(2));
    let list = c.list_reissues(1001).await.unwrap();
    assert_eq!(list.len(), 2);
    let auto = &list[0];
    assert_ne!(auto.id, ours.id);
    assert_eq!(auto.status, ReissueStatus::Issued);
    assert_eq!(auto.csr, ours.csr);
    assert_eq!(c.order_info(1001).await.unwrap().certificate.id, auto.id);
    let pem = c
        .download_certificate(auto.id, DownloadFormat::PemAll)
        .await
        .unwrap();
    let (spki, _) = verify_chain(&pem, sim.ca_pem(), true);
    assert_eq!(spki, rcgen::PublicKeyData::subject_public_key_info(&key));

    // Once per certificate: an hour later there is still one auto-reissue.
    sim.simulator().advance_clock(time::Duration::hours(1));
    assert_eq!(c.list_reissues(1001).await.unwrap().len(), 2);
}

#[tokio::test]
async fn issued_validity_never_passes_the_order_end() {
    let mut seed = order(1001);
    let end = (time::OffsetDateTime::now_utc() + time::Duration::days(20)).date();
    seed.order_valid_till = Some(end);
    let sim = simulator(vec![seed]).await;
    let c = client(&sim, KEY);
    let (_, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();
    let entry = c.list_reissues(1001).await.unwrap().remove(0);
    let want = format!(
        "{:04}-{:02}-{:02}",
        end.year(),
        u8::from(end.month()),
        end.day()
    );
    assert_eq!(entry.valid_till.as_deref(), Some(want.as_str()));

    // After the plan's end the order is expired and cannot be reissued.
    sim.simulator().advance_clock(time::Duration::days(21));
    let (_, req) = example_reissue();
    let err = c.reissue(1001, &req).await.unwrap_err();
    assert_eq!(err.code(), Some("cert_validity_exceeds_order_validity"));
    assert_eq!(
        c.order_info(1001).await.unwrap().status,
        OrderStatus::Expired
    );
}

#[tokio::test]
async fn reissue_errors_are_typed_and_permanent() {
    let mut pending = order(1002);
    pending.status = OrderStatus::Pending;
    let sim = simulator(vec![order(1001), pending]).await;
    let c = client(&sim, KEY);
    let (_, good) = csr(KeyKind::Ecdsa(256), "example.com", &["example.com"]);
    let (_, ed) = csr(KeyKind::Ed25519, "example.com", &["example.com"]);
    let (_, other_names) = csr(KeyKind::Ecdsa(256), "example.com", &["shop.example.com"]);
    let (_, foreign) = csr(KeyKind::Ecdsa(256), "example.org", &["example.org"]);
    let weak = include_str!("../fixtures/rsa1024.csr");
    // Flip a bit in the signature (the last bytes of the DER): still parses, no longer verifies.
    let bad_signature = {
        let mut der = ::pem::parse(&good).unwrap().into_contents();
        let last = der.len() - 3;
        der[last] ^= 0x01;
        ::pem::encode(&::pem::Pem::new("CERTIFICATE REQUEST", der))
    };

    // (order, common name, dns names, csr, hash, status, code)
    type Case<'a> = (u64, &'a str, Vec<&'a str>, String, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            4242,
            "example.com",
            vec![],
            good.clone(),
            "sha256",
            404,
            "not_found|order",
        ),
        (
            1001,
            "example.com",
            vec![],
            "not a csr".into(),
            "sha256",
            400,
            "csr_invalid_cannot_parse",
        ),
        (
            1001,
            "example.com",
            vec![],
            bad_signature,
            "sha256",
            400,
            "csr_invalid_signature",
        ),
        (
            1001,
            "example.com",
            vec![],
            weak.into(),
            "sha256",
            400,
            "csr_invalid_key_size",
        ),
        (
            1001,
            "example.com",
            vec![],
            ed,
            "sha256",
            400,
            "csr_invalid_key_type",
        ),
        (
            1001,
            "example.com",
            vec![],
            other_names,
            "sha256",
            400,
            "csr_names_mismatch",
        ),
        (
            1001,
            "example.com",
            vec!["www.example.com"],
            good.clone(),
            "sha256",
            400,
            "csr_names_mismatch",
        ),
        (
            1001,
            "example.org",
            vec![],
            foreign,
            "sha256",
            400,
            "invalid_dns_name",
        ),
        (
            1001,
            "example.com",
            vec![],
            good.clone(),
            "md5",
            400,
            "invalid_signature_hash",
        ),
        (
            1002,
            "example.com",
            vec![],
            good.clone(),
            "sha256",
            400,
            "invalid_order_status",
        ),
    ];
    for (order_id, cn, names, csr, hash, status, code) in cases {
        let mut req = reissue_request(cn, &names, &csr);
        req.certificate.signature_hash = hash.into();
        let err = c.reissue(order_id, &req).await.unwrap_err();
        assert_eq!(err.status(), Some(status), "{code}: {err}");
        assert_eq!(err.code(), Some(code), "{err}");
        assert!(!err.is_retryable(), "{err}");
        assert!(matches!(err, Error::Api { .. }));
    }
    // None of them changed anything.
    assert!(c.list_reissues(1001).await.unwrap().is_empty());
    assert_eq!(
        sim.simulator()
            .calls()
            .total(digicert_operator::certcentral::Operation::Reissue),
        10
    );
}

#[tokio::test]
async fn unknown_and_bad_keys_are_refused() {
    let sim = simulator(vec![order(1001)]).await;
    let err = client(&sim, "not-a-key")
        .order_info(1001)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.code(), Some("access_denied|invalid_api_key"));
    assert!(!err.is_retryable());
    let err = client(&sim, KEY).order_info(77).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.code(), Some("not_found|order"));
    let err = client(&sim, KEY)
        .download_certificate(1, DownloadFormat::PemAll)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn untrusted_servers_are_refused() {
    let sim = simulator(vec![order(1001)]).await;
    // The system roots do not include the simulator's CA.
    let config = ClientConfig {
        base_url: sim.base_url().parse::<BaseUrl>().unwrap(),
        trust: TrustRoots::System,
        retry: RetryPolicy::none(),
        ..ClientConfig::default()
    };
    let c = Client::new(config, ApiKey::new(KEY).unwrap()).unwrap();
    let err = c.order_info(1001).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(sim.simulator().calls().sum(), 0, "no request got through");
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff() {
    use digicert_operator::certcentral::Operation::*;
    let sim = simulator(vec![order(1001)]).await;
    let s = sim.simulator();
    let c = client(&sim, KEY);

    // (operation, fault, calls the simulator sees)
    let cases = [
        (
            OrderInfo,
            serde_json::json!({"kind": "status", "status": 503, "times": 2}),
            3,
        ),
        (
            OrderInfo,
            serde_json::json!({"kind": "status", "status": 500, "nth": 1}),
            2,
        ),
        (
            OrderInfo,
            serde_json::json!({"kind": "rate_limit", "times": 3}),
            4,
        ),
        (
            ListReissues,
            serde_json::json!({"kind": "drop", "nth": 1}),
            2,
        ),
        (
            ListReissues,
            serde_json::json!({"kind": "malformed", "nth": 1}),
            2,
        ),
        (
            UpdateAutoReissue,
            serde_json::json!({"kind": "status", "status": 502, "nth": 1}),
            2,
        ),
        (
            UpdateAutoReissue,
            serde_json::json!({"kind": "drop", "phase": "after", "nth": 1}),
            2,
        ),
        // A 2xx with a garbled body instead of 204 is not taken for success: the
        // change may not have been made.
        (
            UpdateAutoReissue,
            serde_json::json!({"kind": "malformed", "nth": 1}),
            2,
        ),
    ];
    for (op, spec, want_calls) in cases {
        s.clear_faults();
        s.reset_calls();
        let mut spec = spec;
        spec["operation"] = serde_json::json!(op);
        s.add_fault(fault(spec.clone())).unwrap();
        let result = match op {
            OrderInfo => c.order_info(1001).await.map(drop),
            ListReissues => c.list_reissues(1001).await.map(drop),
            UpdateAutoReissue => c.set_auto_reissue(1001, true).await,
            _ => unreachable!(),
        };
        result.unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(s.calls().total(op), want_calls, "{spec}");
    }
}

#[tokio::test]
async fn retries_give_up_after_the_policy_allows() {
    use digicert_operator::certcentral::Operation::*;
    let sim = simulator(vec![order(1001)]).await;
    let s = sim.simulator();
    s.add_fault(fault(
        serde_json::json!({"operation": "order_info", "kind": "status", "status": 503}),
    ))
    .unwrap();
    let c = client(&sim, KEY);
    let err = c.order_info(1001).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.is_retryable());
    assert_eq!(s.calls().total(OrderInfo), 4, "max_attempts");
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let sim = simulator(vec![order(1001)]).await;
    let s = sim.simulator();
    s.add_fault(fault(
        serde_json::json!({"operation": "order_info", "kind": "delay", "millis": 3000, "nth": 1}),
    ))
    .unwrap();
    let no_retry = client_with(&sim, KEY, RetryPolicy::none(), Duration::from_millis(500));
    let err = no_retry.order_info(1001).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_retryable());

    s.add_fault(fault(
        serde_json::json!({"operation": "order_info", "kind": "delay", "millis": 3000, "nth": 1}),
    ))
    .unwrap();
    let retrying = client_with(&sim, KEY, fast_retry(), Duration::from_millis(500));
    retrying.order_info(1001).await.unwrap();
}

/// A client without retries whose limiter has these windows.
fn limited_client(sim: &RunningSimulator, windows: [Window; 1], slack: Duration) -> Client {
    let config = ClientConfig {
        base_url: sim.base_url().parse::<BaseUrl>().unwrap(),
        trust: TrustRoots::Only(sim.ca_pem().as_bytes().to_vec()),
        retry: RetryPolicy::none(),
        ..ClientConfig::default()
    };
    Client::with_limiter(
        config,
        ApiKey::new(KEY).unwrap(),
        Arc::new(move || RateLimiter::new(windows, slack)),
    )
    .unwrap()
}

#[tokio::test]
async fn a_rate_limit_slot_is_held_until_the_answer_is_in() {
    // One call per second. The first call is answered after 1.5 s: DigiCert may have
    // counted it that late, so the second may go only 1 s after that answer (≥ 2.5 s
    // in all), not 1 s after the first was sent.
    let sim = simulator(vec![order(1001)]).await;
    sim.simulator()
        .add_fault(fault(
            serde_json::json!({"operation": "order_info", "kind": "delay", "millis": 1500, "nth": 1}),
        ))
        .unwrap();
    let c = limited_client(
        &sim,
        [Window::new(1, Duration::from_secs(1))],
        Duration::ZERO,
    );
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..2)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.order_info(1001).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(2500), "{elapsed:?}");
}

#[tokio::test]
async fn a_reissue_is_never_repeated_when_it_may_have_been_accepted() {
    use digicert_operator::certcentral::Operation::Reissue;
    let sim = simulator(vec![order(1001)]).await;
    let s = sim.simulator();
    let c = client(&sim, KEY);

    // 503 before the work: could have been accepted as far as the client knows.
    s.add_fault(fault(
        serde_json::json!({"operation": "reissue", "kind": "status", "status": 503, "nth": 1}),
    ))
    .unwrap();
    let (_, req) = example_reissue();
    let err = c.reissue(1001, &req).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(s.calls().total(Reissue), 1, "not retried");

    // 429: certainly not processed, so retried; exactly one reissue results.
    s.add_fault(fault(
        serde_json::json!({"operation": "reissue", "kind": "rate_limit", "nth": 1}),
    ))
    .unwrap();
    let (_, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();
    assert_eq!(s.calls().total(Reissue), 3);
    assert_eq!(c.list_reissues(1001).await.unwrap().len(), 1);

    // The answer is lost after DigiCert did the work: the client reports a broken
    // connection and does not repeat it; the reissue is there, findable by its CSR.
    s.add_fault(fault(
        serde_json::json!({"operation": "reissue", "kind": "drop", "phase": "after", "nth": 1}),
    ))
    .unwrap();
    let (_, req) = example_reissue();
    let err = c.reissue(1001, &req).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Reset,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(s.calls().total(Reissue), 4);
    let list = c.list_reissues(1001).await.unwrap();
    assert_eq!(list.len(), 2);
    let fingerprint = keys::csr_fingerprint(&req.certificate.csr).unwrap();
    assert_eq!(
        keys::csr_fingerprint(list[0].csr.as_deref().unwrap()).unwrap(),
        fingerprint
    );
}

#[tokio::test]
async fn the_rate_limiter_keeps_300_concurrent_calls_under_the_limits() {
    use digicert_operator::certcentral::ratelimit::CERTCENTRAL_LIMITS;
    // The simulator enforces CertCentral's limits; the client runs with its default
    // limiter and no retries, so a single 429 would fail the test.
    let sim = simulator_with(vec![order(1001)], CERTCENTRAL_LIMITS.to_vec()).await;
    let config = ClientConfig {
        base_url: sim.base_url().parse::<BaseUrl>().unwrap(),
        trust: TrustRoots::Only(sim.ca_pem().as_bytes().to_vec()),
        retry: RetryPolicy::none(),
        ..ClientConfig::default()
    };
    let c = Client::new(config, ApiKey::new(KEY).unwrap()).unwrap();
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..300)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.order_info(1001).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("no call is refused");
    }
    let elapsed = started.elapsed();
    let counts = sim.simulator().calls();
    assert_eq!(
        counts.outcome(digicert_operator::certcentral::Operation::OrderInfo, "200"),
        300
    );
    assert_eq!(counts.all_with_outcome("429"), 0);
    // 300 calls at 100 per 5 s need two full windows after the first burst.
    assert!(elapsed >= Duration::from_secs(10), "{elapsed:?}");

    // Clients of the same key made with with_api_key share the limiter; another key
    // has its own.
    let same = c.with_api_key(ApiKey::new(KEY).unwrap());
    let waited_other = {
        let other = c.with_api_key(ApiKey::new(VIEWER_KEY).unwrap());
        let t = std::time::Instant::now();
        other.order_info(1001).await.unwrap();
        t.elapsed()
    };
    assert!(waited_other < Duration::from_secs(2), "{waited_other:?}");
    drop(same);
}

#[tokio::test]
async fn limiter_windows_are_configurable_per_client() {
    let sim = simulator_with(
        vec![order(1001)],
        vec![Window::new(5, Duration::from_secs(1))],
    )
    .await;
    let c = limited_client(
        &sim,
        [Window::new(5, Duration::from_secs(1))],
        Duration::from_millis(100),
    );
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.order_info(1001).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("no call is refused");
    }
    assert_eq!(sim.simulator().calls().all_with_outcome("429"), 0);
}
