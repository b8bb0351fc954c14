//! What a demanding user runs into, end to end on the real API server with the
//! simulator: the end of a plan, a cancel with nothing to cancel, names dropped from
//! the spec, hand-edited Secrets, Secrets the operator does not own, the Secret
//! following the spec without a reissue, teardown with DigiCert down, and a reissue
//! whose answer is lost while its request may still arrive.

use std::time::{Duration, Instant};

use crate::support::env::{OperatorEnv, condition};
use certcentral_sim::{OrderPatch, OrderSeed};
use digicert_operator::certcentral::Operation;
use digicert_operator::crd::DigicertOrder;
use digicert_operator::keys::{self, KeyKind};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const NAMES: &[&str] = &["example.com", "www.example.com"];

fn seed(id: u64, change: impl FnOnce(&mut OrderSeed)) -> OrderSeed {
    let mut s = crate::support::order(id);
    change(&mut s);
    s
}

fn status_of(o: &DigicertOrder) -> digicert_operator::crd::DigicertOrderStatus {
    o.status.clone().unwrap_or_default()
}

fn has(o: &DigicertOrder, type_: &str, status: &str, reason: &str) -> bool {
    condition(o, type_).is_some_and(|c| c.status == status && c.reason == reason)
}

fn reissue_calls(env: &OperatorEnv) -> u64 {
    env.sim.simulator().calls().total(Operation::Reissue)
}

async fn patch_order(env: &OperatorEnv, name: &str, patch: Value) {
    env.orders()
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

async fn annotate(env: &OperatorEnv, name: &str, key: &str, value: &str) {
    patch_order(
        env,
        name,
        json!({"metadata": {"annotations": {key: value}}}),
    )
    .await;
}

/// A sample of the operator's metrics page (`name{labels}` → value).
async fn metric(env: &OperatorEnv, sample: &str) -> Option<f64> {
    let page = reqwest::get(format!("{}/metrics", env.http_base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.lines()
        .find(|l| l.starts_with(sample) && l[sample.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Waits until a metrics sample shows `want` (metrics follow the status write).
async fn wait_metric(env: &OperatorEnv, sample: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = metric(env, sample).await;
        if got == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{sample} is {got:?}, not {want}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn rfc3339(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> time::OffsetDateTime {
    digicert_operator::controller::status::offset(t)
}

// ---- 4. The end of a plan ----

/// The order ends today: a certificate that runs to its end cannot be extended. No
/// reconcile loop once its renewal time has passed, a warning ahead of the end, the
/// order's end as a metric, and `OrderExpired` once the certificate has expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_that_ends_with_its_certificate_does_not_spin_and_says_it_ends() {
    let today = time::OffsetDateTime::now_utc().date();
    let ending = seed(1001, |s| {
        s.certificate_validity_seconds = Some(30);
        s.order_valid_till = Some(today);
    });
    let mut env = OperatorEnv::new("plan-end", vec![ending]).await;
    // Frequent looks at the order: the window below must see some, and no more.
    env.operator_args = vec!["--resync".into(), "3s".into()];
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    let o = env.wait_ready("web").await;
    let cert = status_of(&o).certificate.unwrap();
    let not_after = rfc3339(&cert.not_after);
    assert!(
        status_of(&o).renewal_time.is_none(),
        "no renewal is planned for a certificate the order ends with: {:?}",
        status_of(&o)
    );
    // Warned ahead of the end (the default warning is 30 days), with an Event.
    let o = env
        .wait_condition(
            "web",
            "OrderExpiring",
            "True",
            Some("OrderEnding"),
            Duration::from_secs(10),
        )
        .await;
    let message = &condition(&o, "OrderExpiring").unwrap().message;
    assert!(message.contains(&today.to_string()), "{message}");
    env.wait_event("web", "OrderEnding", Duration::from_secs(10))
        .await;
    let ns = &env.cluster.namespace;
    let end = today.with_hms(23, 59, 59).unwrap().assume_utc();
    wait_metric(
        &env,
        &format!(
            "digicert_operator_order_end_timestamp_seconds{{namespace=\"{ns}\",name=\"web\"}}"
        ),
        end.unix_timestamp() as f64,
    )
    .await;

    // Past the renewal time (two thirds of 30 s): reconciles stay rare.
    let renewal_passed =
        rfc3339(&cert.not_before) + time::Duration::seconds(21) - time::OffsetDateTime::now_utc();
    if renewal_passed.is_positive() {
        tokio::time::sleep(renewal_passed.try_into().unwrap()).await;
    }
    let reconciles = || metric(&env, "digicert_operator_reconciles_total");
    let before = reconciles().await.unwrap();
    let looks = env
        .order_checks_during(
            "web",
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(4),
        )
        .await;
    let after = reconciles().await.unwrap();
    assert!(
        after - before <= 3.0,
        "{} reconciles in 4 s after the renewal time of a certificate that cannot be renewed",
        after - before
    );
    // The operator did look (every 3 s): the count above is not low for want of it.
    assert!(
        after - before >= 1.0 && !looks.is_empty(),
        "{} reconciles and looks at the order {looks:?} in 4 s",
        after - before
    );
    assert_eq!(reissue_calls(&env), 1, "no renewal attempt");

    // Expired with the order: not Ready, and said so within moments of expiry.
    let left = not_after - time::OffsetDateTime::now_utc();
    let timeout = Duration::try_from(left).unwrap_or_default() + Duration::from_secs(10);
    env.wait_condition("web", "Ready", "False", Some("OrderExpired"), timeout)
        .await;
    assert_eq!(reissue_calls(&env), 1);
}

// ---- 5. Cancel ----

/// A cancel with nothing in flight changes nothing: the next renewal comes as
/// planned. A cancel of a reissue in flight holds renewals, visibly, and the
/// certificate never expires with Ready true.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_ends_only_what_is_in_flight_and_a_held_renewal_is_never_silent() {
    let short = seed(1001, |s| s.certificate_validity_seconds = Some(30));
    let mut env = OperatorEnv::new("cancel-hold", vec![short]).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    env.wait_ready("web").await;
    annotate(&env, "web", "digicert-operator.dev/cancel", "c1").await;
    env.wait_event("web", "NothingToCancel", Duration::from_secs(10))
        .await;
    // The renewal at two thirds of 30 s still happens.
    let o = env
        .wait_for("web", "revision 2", Duration::from_secs(40), |o| {
            status_of(o).revision >= 2
        })
        .await;
    assert_eq!(status_of(&o).hold_generation, None);

    // Now a renewal that DigiCert keeps pending, canceled in flight.
    env.sim
        .simulator()
        .patch_order(
            1001,
            OrderPatch {
                issuance_delay_seconds: Some(3600),
                ..OrderPatch::default()
            },
        )
        .unwrap();
    annotate(&env, "web", "digicert-operator.dev/renew", "r1").await;
    env.wait_condition(
        "web",
        "Issuing",
        "True",
        Some("ValidationPending"),
        Duration::from_secs(20),
    )
    .await;
    annotate(&env, "web", "digicert-operator.dev/cancel", "c2").await;
    env.wait_condition(
        "web",
        "Issuing",
        "False",
        Some("Canceled"),
        Duration::from_secs(20),
    )
    .await;
    // From the renewal time on, Ready says the renewal is held...
    let o = env
        .wait_condition(
            "web",
            "Ready",
            "True",
            Some("RenewalHeld"),
            Duration::from_secs(40),
        )
        .await;
    let message = &condition(&o, "Ready").unwrap().message;
    assert!(message.contains("digicert-operator.dev/renew"), "{message}");
    assert!(message.contains("held by a cancel request"), "{message}");
    env.wait_event("web", "RenewalHeld", Duration::from_secs(10))
        .await;
    // ...and at expiry Ready turns false at once, not at the next resync.
    let not_after = rfc3339(&status_of(&o).certificate.unwrap().not_after);
    let left = Duration::try_from(not_after - time::OffsetDateTime::now_utc()).unwrap_or_default();
    env.wait_condition(
        "web",
        "Ready",
        "False",
        Some("Expired"),
        left + Duration::from_secs(5),
    )
    .await;
    // The first issuance, the renewal after the empty cancel, the canceled renewal;
    // the held renewal was not sent.
    assert_eq!(reissue_calls(&env), 3);
}

// ---- 6. Names ----

/// Dropping the `www.` twin of the common name from dnsNames leads to one reissue for
/// the remaining name; nothing more after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropping_the_www_twin_from_the_names_reissues_once() {
    let mut env = OperatorEnv::new("names-twin", vec![crate::support::order(1001)]).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    env.wait_ready("web").await;
    env.verify_secret("web-tls", NAMES).await;
    // Dropping a name revokes the order's earlier certificates: agreed to here.
    patch_order(
        &env,
        "web",
        json!({"spec": {"dnsNames": [], "allowRevocationOfPrevious": true}}),
    )
    .await;
    env.wait_for("web", "revision 2", Duration::from_secs(30), |o| {
        status_of(o).revision >= 2 && has(o, "Ready", "True", "Issued")
    })
    .await;
    env.verify_secret("web-tls", &["example.com"]).await;
    env.holds_for("web", "no further reissue", Duration::from_secs(3), |o| {
        status_of(o).revision == 2
    })
    .await;
    assert_eq!(reissue_calls(&env), 2);
    // And back: the twin added again is one more reissue.
    patch_order(
        &env,
        "web",
        json!({"spec": {"dnsNames": ["www.example.com"]}}),
    )
    .await;
    env.wait_for("web", "revision 3", Duration::from_secs(30), |o| {
        status_of(o).revision >= 3 && has(o, "Ready", "True", "Issued")
    })
    .await;
    env.verify_secret("web-tls", NAMES).await;
    assert_eq!(reissue_calls(&env), 3);
}

// ---- 7. Hand edits ----

/// A self-signed certificate for the right names and key put into the Secret by
/// hand is told from the operator's and replaced; a certificate of the order put
/// back from a backup is accepted, and status and metrics describe it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hand_edited_secret_is_replaced_and_status_describes_what_is_in_the_secret() {
    let mut env = OperatorEnv::new("hand-edit", vec![crate::support::order(1001)]).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    env.wait_ready("web").await;
    let first = env.secrets().get("web-tls").await.unwrap();
    let first_leaf = env.verify_secret("web-tls", NAMES).await.leaf;

    // The same key, a self-signed certificate with the right names.
    let key_pem = String::from_utf8(first.data.as_ref().unwrap()["tls.key"].0.clone()).unwrap();
    let key = keys::parse_private_key(&key_pem).unwrap();
    let mut params =
        rcgen::CertificateParams::new(NAMES.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "example.com");
    let forged = params.self_signed(&key).unwrap().pem();
    let mut edited = first.clone();
    edited.metadata.managed_fields = None;
    edited
        .data
        .as_mut()
        .unwrap()
        .insert("tls.crt".into(), ByteString(forged.into_bytes()));
    env.secrets()
        .replace("web-tls", &PostParams::default(), &edited)
        .await
        .unwrap();
    let o = env
        .wait_for(
            "web",
            "the forged certificate replaced",
            Duration::from_secs(30),
            |o| status_of(o).revision >= 2 && has(o, "Ready", "True", "Issued"),
        )
        .await;
    let second_leaf = env.verify_secret("web-tls", NAMES).await.leaf;
    assert_ne!(second_leaf.serial_number, first_leaf.serial_number);
    assert_eq!(
        status_of(&o).certificate.unwrap().serial_number,
        second_leaf.serial_number
    );
    assert!(
        env.event_reasons("web")
            .await
            .iter()
            .any(|r| r == "CertificateIssued")
    );

    // The first certificate (still valid, still the order's) put back from a backup:
    // accepted as it is, and status and metrics describe it, not the one before.
    let mut restored = env.secrets().get("web-tls").await.unwrap();
    restored.metadata.managed_fields = None;
    restored.data = first.data.clone();
    restored.metadata.annotations = first.metadata.annotations.clone();
    env.secrets()
        .replace("web-tls", &PostParams::default(), &restored)
        .await
        .unwrap();
    let o = env
        .wait_for(
            "web",
            "status describes the restored certificate",
            Duration::from_secs(20),
            |o| {
                status_of(o)
                    .certificate
                    .is_some_and(|c| c.serial_number == first_leaf.serial_number)
            },
        )
        .await;
    assert!(has(&o, "Ready", "True", "Issued"), "{:?}", o.status);
    let ns = &env.cluster.namespace;
    wait_metric(
        &env,
        &format!(
            "digicert_operator_certificate_expiration_timestamp_seconds{{namespace=\"{ns}\",name=\"web\"}}"
        ),
        first_leaf.not_after.unix_timestamp() as f64,
    )
    .await;
    assert_eq!(reissue_calls(&env), 2, "the restored certificate is kept");
}

// ---- 8. The Secret follows the spec ----

/// Waits until the certificate Secret satisfies `check`.
async fn secret_follows(
    env: &OperatorEnv,
    what: &str,
    check: impl Fn(&crate::support::env::VerifiedSecret) -> bool,
) -> crate::support::env::VerifiedSecret {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = env.verify_secret("web-tls", NAMES).await;
        if check(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the Secret did not follow: {what}\nlabels {:?}\nannotations {:?}\n--- operator log ---\n{}",
            s.labels,
            s.annotations,
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A changed secretTemplate, a removed operator label, the key's encoding and the
/// owner-reference flag reach the Secret without a reissue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_secret_follows_the_spec_and_flags_without_a_reissue() {
    let mut env = OperatorEnv::new("secret-follows", vec![crate::support::order(1001)]).await;
    env.operator_args = vec!["--resync=3s".into()];
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml(
        "web",
        1001,
        "  secretTemplate:\n    labels: {team: blue}\n    annotations: {note: one}\n",
    ));
    env.wait_ready("web").await;
    let first = env.verify_secret("web-tls", NAMES).await;
    assert_eq!(first.labels["team"], "blue");
    assert!(first.key_pem.starts_with("-----BEGIN RSA PRIVATE KEY"));
    let public = keys::public_key_bits(&keys::parse_private_key(&first.key_pem).unwrap());

    // The template: a label changed, one added, an annotation dropped.
    patch_order(
        &env,
        "web",
        json!({"spec": {"secretTemplate": {"labels": {"team": "green", "tier": "front"}, "annotations": null}}}),
    )
    .await;
    secret_follows(&env, "template", |s| {
        s.labels.get("team").map(String::as_str) == Some("green")
            && s.labels.contains_key("tier")
            && !s.annotations.contains_key("note")
    })
    .await;

    // The operator's label removed by hand: back at the next look.
    env.cluster.kubectl_ok(
        &[
            "label",
            "secret",
            "web-tls",
            "digicert-operator.dev/order-name-",
        ],
        None,
    );
    secret_follows(&env, "operator label", |s| {
        s.labels
            .get("digicert-operator.dev/order-name")
            .map(String::as_str)
            == Some("web")
    })
    .await;

    // PKCS1 → PKCS8: the same key, re-encoded.
    patch_order(
        &env,
        "web",
        json!({"spec": {"privateKey": {"encoding": "PKCS8"}}}),
    )
    .await;
    let s = secret_follows(&env, "PKCS8", |s| {
        s.key_pem.starts_with("-----BEGIN PRIVATE KEY")
    })
    .await;
    assert_eq!(
        keys::public_key_bits(&keys::parse_private_key(&s.key_pem).unwrap()),
        public,
        "the same key"
    );
    assert_eq!(s.tls_crt, first.tls_crt, "the same certificate");

    // Owner references on, then off again.
    let uid = env.orders().get("web").await.unwrap().metadata.uid.unwrap();
    env.operator_args = vec!["--resync=3s".into(), "--secret-owner-references".into()];
    env.start_operator();
    let owners = |s: &Secret| {
        s.metadata
            .owner_references
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|o| o.uid)
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while owners(&env.secrets().get("web-tls").await.unwrap()) != [uid.clone()] {
        assert!(
            Instant::now() < deadline,
            "no owner reference\n{}",
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.operator_args = vec!["--resync=3s".into()];
    env.start_operator();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !owners(&env.secrets().get("web-tls").await.unwrap()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the owner reference stays\n{}",
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let o = env.orders().get("web").await.unwrap();
    assert_eq!(status_of(&o).revision, 1, "no reissue");
    assert_eq!(reissue_calls(&env), 1);
}

// ---- 3. Secrets the operator does not own ----

/// Existing Secrets: one the operator did not write is never overwritten (until its
/// owner hands it over), a user's Secret under the pending-key name is never
/// touched, and a Secret of a deleted DigicertOrder of the same order is handed on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_the_operator_does_not_own_stay_untouched_and_orphans_are_handed_on() {
    let mut env = OperatorEnv::new(
        "secret-owners",
        vec![
            crate::support::order(1001),
            crate::support::order(1002),
            crate::support::order(1003),
            crate::support::order(1004),
        ],
    )
    .await;
    // A Secret the operator does not own is not watched: it looks again each resync.
    env.operator_args = vec!["--resync=5s".into()];
    env.start_operator();
    let (key, csr) = crate::support::csr(KeyKind::Ecdsa(256), "example.com", &["example.com"]);
    let user_secret = |name: &str, type_: &str| Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        type_: Some(type_.into()),
        string_data: Some(
            [
                ("tls.crt".to_string(), "user data".to_string()),
                (
                    "tls.key".to_string(),
                    keys::encode_private_key(&key, keys::Encoding::Pkcs8).unwrap(),
                ),
                ("csr.pem".to_string(), csr.clone()),
            ]
            .into(),
        ),
        ..Secret::default()
    };

    // A user's TLS Secret of the same name: refused, untouched, no DigiCert call.
    env.secrets()
        .create(
            &PostParams::default(),
            &user_secret("mine-tls", "kubernetes.io/tls"),
        )
        .await
        .unwrap();
    env.apply(&OperatorEnv::order_yaml("mine", 1001, ""));
    let o = env
        .wait_condition(
            "mine",
            "Ready",
            "False",
            Some("SecretConflict"),
            Duration::from_secs(20),
        )
        .await;
    let message = &condition(&o, "Ready").unwrap().message;
    assert!(message.contains("digicert-operator.dev/adopt"), "{message}");
    env.holds_for("mine", "the conflict", Duration::from_secs(2), |o| {
        has(o, "Ready", "False", "SecretConflict")
    })
    .await;
    let untouched = env.secrets().get("mine-tls").await.unwrap();
    assert_eq!(untouched.data.as_ref().unwrap()["tls.crt"].0, b"user data");
    assert_eq!(reissue_calls(&env), 0);
    // Handed over by its owner: taken.
    env.cluster.kubectl_ok(
        &[
            "annotate",
            "secret",
            "mine-tls",
            "digicert-operator.dev/adopt=true",
        ],
        None,
    );
    env.wait_ready("mine").await;
    env.verify_secret("mine-tls", NAMES).await;

    // A user's Secret under the pending-key name: refused, untouched.
    env.secrets()
        .create(
            &PostParams::default(),
            &user_secret("pk-pending-key", "Opaque"),
        )
        .await
        .unwrap();
    env.apply(&OperatorEnv::order_yaml("pk", 1002, ""));
    env.wait_condition(
        "pk",
        "Ready",
        "False",
        Some("SecretConflict"),
        Duration::from_secs(20),
    )
    .await;
    let untouched = env.secrets().get("pk-pending-key").await.unwrap();
    assert_eq!(
        untouched.data.as_ref().unwrap()["csr.pem"].0,
        csr.as_bytes()
    );
    assert_eq!(untouched.metadata.labels, None);
    assert_eq!(reissue_calls(&env), 1, "only mine's");
    env.secrets()
        .delete("pk-pending-key", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_ready("pk").await;

    // A DigicertOrder deleted (Retain): its Secret goes to a new one of the same order,
    // as it is (no reissue), and never to one of another order.
    env.apply(&OperatorEnv::order_yaml("old", 1003, ""));
    env.wait_ready("old").await;
    let calls = reissue_calls(&env);
    env.orders()
        .delete("old", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.orders().get_opt("old").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "old is not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let other_order = OperatorEnv::order_yaml("thief", 1004, "").replace("thief-tls", "old-tls");
    env.apply(&other_order);
    env.wait_condition(
        "thief",
        "Ready",
        "False",
        Some("SecretConflict"),
        Duration::from_secs(20),
    )
    .await;
    let successor = OperatorEnv::order_yaml("new", 1003, "").replace("new-tls", "old-tls");
    env.apply(&successor);
    env.wait_ready("new").await;
    env.wait_event("new", "SecretHandedOn", Duration::from_secs(10))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = env.verify_secret("old-tls", NAMES).await;
        if s.labels
            .get("digicert-operator.dev/order-name")
            .map(String::as_str)
            == Some("new")
        {
            break;
        }
        assert!(Instant::now() < deadline, "not relabelled: {:?}", s.labels);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(reissue_calls(&env), calls, "handed on as it is");
    // Now it is new's: the other order's DigicertOrder still may not take it.
    env.wait_for(
        "thief",
        "a conflict naming the new owner",
        Duration::from_secs(20),
        |o| {
            has(o, "Ready", "False", "SecretConflict")
                && condition(o, "Ready")
                    .unwrap()
                    .message
                    .contains("belongs to DigicertOrder new")
        },
    )
    .await;
    assert_eq!(reissue_calls(&env), calls);
}

// ---- 9. Teardown ----

/// Retain needs no finalizer: deletion never waits for the operator. CancelPending
/// with DigiCert down says why it waits and gives up after the deletion timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn teardown_never_hangs() {
    let pending = seed(1002, |s| s.issuance_delay_seconds = 3600);
    let mut env = OperatorEnv::new("teardown", vec![crate::support::order(1001), pending]).await;
    env.operator_args = vec!["--deletion-timeout=12s".into()];
    env.start_operator();

    env.apply(&OperatorEnv::order_yaml("kept", 1001, ""));
    let o = env.wait_ready("kept").await;
    assert!(o.metadata.finalizers.unwrap_or_default().is_empty());
    // Deleted while no operator runs: gone at once.
    env.stop_operator();
    env.orders()
        .delete("kept", &DeleteParams::default())
        .await
        .unwrap();
    assert!(env.orders().get_opt("kept").await.unwrap().is_none());

    env.start_operator();
    env.apply(&OperatorEnv::order_yaml(
        "cancel",
        1002,
        "  deletionPolicy: CancelPending\n",
    ));
    env.wait_condition(
        "cancel",
        "Issuing",
        "True",
        Some("ValidationPending"),
        Duration::from_secs(30),
    )
    .await;
    let o = env.orders().get("cancel").await.unwrap();
    assert_eq!(
        o.metadata.finalizers.unwrap_or_default(),
        ["digicert-operator.dev/cleanup"]
    );
    // DigiCert unreachable.
    env.sim
        .simulator()
        .add_fault(serde_json::from_value(json!({"kind": "drop"})).unwrap())
        .unwrap();
    let started = Instant::now();
    env.orders()
        .delete("cancel", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_condition(
        "cancel",
        "Ready",
        "False",
        Some("Deleting"),
        Duration::from_secs(30),
    )
    .await;
    env.wait_event("cancel", "CleanupFailed", Duration::from_secs(10))
        .await;
    let deadline = Instant::now() + Duration::from_secs(40);
    while env.orders().get_opt("cancel").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the deletion hangs\n{}",
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_secs(10),
        "it waited for DigiCert first: {:?}",
        started.elapsed()
    );
    env.wait_event("cancel", "CleanupAbandoned", Duration::from_secs(10))
        .await;

    // CancelPending turned into Retain: the finalizer goes.
    env.sim.simulator().clear_faults();
    env.apply(&OperatorEnv::order_yaml(
        "switch",
        1001,
        "  deletionPolicy: CancelPending\n",
    ));
    env.wait_for("switch", "the finalizer", Duration::from_secs(20), |o| {
        !o.metadata.finalizers.clone().unwrap_or_default().is_empty()
    })
    .await;
    patch_order(
        &env,
        "switch",
        json!({"spec": {"deletionPolicy": "Retain"}}),
    )
    .await;
    env.wait_ready("switch").await;
    env.wait_for("switch", "no finalizer", Duration::from_secs(20), |o| {
        o.metadata.finalizers.clone().unwrap_or_default().is_empty()
    })
    .await;
    // Deleted without a finalizer: its metrics go all the same.
    let ns = env.cluster.namespace.clone();
    let ready = format!(
        "digicert_operator_order_ready_status{{namespace=\"{ns}\",name=\"switch\",condition=\"True\"}}"
    );
    wait_metric(&env, &ready, 1.0).await;
    env.orders()
        .delete("switch", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&env, &ready).await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the deleted order's metrics stay\n{}",
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---- 10. The resubmission window ----

/// A reissue POST whose answer is lost (the operator dies) while DigiCert still takes
/// its time: with a call timeout of 60 s the request may still arrive 55 s after it
/// was sent, so the operator must not send another before then.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reissue_still_in_flight_within_the_call_timeout_is_not_sent_twice() {
    let mut env = OperatorEnv::new("resubmit-window", vec![crate::support::order(1001)]).await;
    env.operator_args = vec!["--certcentral-timeout=60s".into()];
    env.sim
        .simulator()
        .add_fault(
            serde_json::from_value(
                json!({"operation": "reissue", "kind": "late", "millis": 55_000, "nth": 1}),
            )
            .unwrap(),
        )
        .unwrap();
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    let deadline = Instant::now() + Duration::from_secs(30);
    while reissue_calls(&env) == 0 {
        assert!(
            Instant::now() < deadline,
            "no reissue call\n{}",
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.kill_operator();
    env.start_operator();
    env.wait_for("web", "Ready", Duration::from_secs(120), |o| {
        has(o, "Ready", "True", "Issued")
    })
    .await;
    let record = env.sim.simulator().order_record(1001).unwrap();
    let reissues: Vec<&Value> = record["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["origin"] != "initial")
        .collect();
    assert_eq!(
        reissues.len(),
        1,
        "the request still in flight became a second reissue: {reissues:#?}"
    );
    assert_eq!(reissue_calls(&env), 1, "nothing sent again");
}
