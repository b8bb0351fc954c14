//! Domain validation over DNS against a real authoritative server (Knot DNS, see
//! `tests/support/dns.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::cluster::{TestCluster, repo_root};
use crate::support::dns::{APEX_SPF, AuthoritativeDns, encode_base64};
use crate::support::dns_bridge::DnsBridge;
use digicert_operator::dcv::dnsendpoint::{DNSEndpoint, endpoint_for};
use digicert_operator::dcv::record::DnsRecord;
use digicert_operator::dcv::rfc2136::{DnsError, Rfc2136, Tsig, Visibility};
use kube::api::{Api, DeleteParams, Patch, PatchParams};

#[test]
fn base64_of_the_harness_matches_the_standard_alphabet() {
    assert_eq!(encode_base64(b""), "");
    assert_eq!(encode_base64(b"f"), "Zg==");
    assert_eq!(encode_base64(b"fo"), "Zm8=");
    assert_eq!(encode_base64(b"foo"), "Zm9v");
    assert_eq!(encode_base64(&[0xfb, 0xff]), "+/8=");
}

#[tokio::test]
async fn knot_serves_the_test_zones() {
    let dns = AuthoritativeDns::start_default().await;
    for zone in ["example.com", "example.org"] {
        assert_eq!(dns.txt(zone).await, vec![APEX_SPF.to_string()]);
    }
    assert!(dns.txt("nothing.example.com").await.is_empty());
    assert_eq!(dns.cname("www.example.com").await, None);
    let (name, algorithm, secret) = dns.tsig();
    assert_eq!(
        (name.as_str(), algorithm.as_str()),
        ("dcv-test-key", "hmac-sha256")
    );
    assert_eq!(secret.len(), 44, "32 random bytes in base64");
}

/// The provider for `dns`, signing with its key.
fn provider(dns: &AuthoritativeDns) -> Rfc2136 {
    let (name, algorithm, secret) = dns.tsig();
    let tsig = Tsig::from_base64(&name, &algorithm, &secret).expect("the server's key parses");
    Rfc2136::new(dns.addr())
        .with_tsig(tsig)
        .with_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn txt_and_cname_tokens_are_added_seen_and_removed_leaving_other_records() {
    let dns = AuthoritativeDns::start_default().await;
    let p = provider(&dns);
    let txt = DnsRecord::txt_token("*.example.com", "txt-token-1");
    let cname = DnsRecord::cname_token("shop.example.org", "cname-token-1");
    for record in [&txt, &cname] {
        assert!(matches!(
            p.lookup(record).await.unwrap(),
            Visibility::NotVisible { .. }
        ));
        p.add(record)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", dns.log()));
        assert_eq!(
            p.lookup(record).await.unwrap(),
            Visibility::Visible,
            "{record}"
        );
    }
    assert_eq!(dns.txt("example.com").await, ["txt-token-1", APEX_SPF]);
    assert_eq!(
        dns.cname("_dnsauth.shop.example.org").await.as_deref(),
        Some("cname-token-1.dcv.digicert.com")
    );

    // A second token joins the TXT set; a new CNAME replaces the old one.
    let txt2 = DnsRecord::txt_token("example.com", "txt-token-2");
    p.add(&txt2).await.unwrap();
    assert_eq!(
        dns.txt("example.com").await,
        ["txt-token-1", "txt-token-2", APEX_SPF]
    );
    let cname2 = DnsRecord::cname_token("shop.example.org", "cname-token-2");
    p.add(&cname2).await.unwrap();
    let Visibility::NotVisible { saw } = p.lookup(&cname).await.unwrap() else {
        panic!("the old CNAME is gone");
    };
    assert!(saw.contains("cname-token-2.dcv.digicert.com"), "{saw}");

    for record in [&txt, &txt2, &cname2] {
        p.remove(record).await.unwrap();
        assert!(matches!(
            p.lookup(record).await.unwrap(),
            Visibility::NotVisible { .. }
        ));
    }
    assert_eq!(dns.txt("example.com").await, [APEX_SPF]);
    assert_eq!(dns.cname("_dnsauth.shop.example.org").await, None);
    // Removing what is not there is no error (external state may have moved on).
    p.remove(&txt).await.unwrap();
}

#[tokio::test]
async fn a_wrong_or_missing_tsig_key_is_refused_clearly_and_nothing_changes() {
    let dns = AuthoritativeDns::start_default().await;
    let (name, algorithm, secret) = dns.tsig();
    let record = DnsRecord::txt_token("example.com", "forged");

    let wrong = Tsig::from_base64(&name, &algorithm, &encode_base64(&[7u8; 32])).unwrap();
    let err = Rfc2136::new(dns.addr())
        .with_tsig(wrong)
        .add(&record)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DnsError::Refused { .. }), "{err:?}");
    assert!(
        text.contains("NOTAUTH") || text.contains("REFUSED"),
        "{text}"
    );
    assert!(text.contains(&format!("TSIG key \"{name}\"")), "{text}");
    assert!(!text.contains(&secret) && !format!("{err:?}").contains(&secret));

    let unknown = Tsig::from_base64("other-key", &algorithm, &secret).unwrap();
    let err = Rfc2136::new(dns.addr())
        .with_tsig(unknown)
        .add(&record)
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::Refused { .. }), "{err:?}");

    let err = Rfc2136::new(dns.addr()).add(&record).await.unwrap_err();
    assert!(
        err.to_string().contains("no TSIG key is configured"),
        "{err}"
    );

    assert_eq!(dns.txt("example.com").await, [APEX_SPF]);
}

#[tokio::test]
async fn the_zone_is_found_by_soa_and_foreign_names_are_a_clear_error() {
    let dns = AuthoritativeDns::start_default().await;
    let p = provider(&dns);
    assert_eq!(p.zone_for("a.b.example.com").await.unwrap(), "example.com");
    assert_eq!(p.zone_for("example.org.").await.unwrap(), "example.org");
    assert_eq!(
        p.zone_for("_dnsauth.www.example.org").await.unwrap(),
        "example.org"
    );

    let err = p.zone_for("www.example.net").await.unwrap_err();
    assert!(matches!(err, DnsError::NotAuthoritative { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("www.example.net") && text.contains(&dns.addr().to_string()),
        "{text}"
    );
    let err = p
        .add(&DnsRecord::txt_token("example.net", "t"))
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::NotAuthoritative { .. }), "{err:?}");

    // A configured zone the name is not in; a configured zone the server does not serve.
    let configured = provider(&dns).with_zone("example.org");
    let err = configured
        .add(&DnsRecord::txt_token("example.com", "t"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DnsError::NotInConfiguredZone { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("zone example.org"), "{err}");
    let foreign = provider(&dns).with_zone("example.net");
    let err = foreign
        .add(&DnsRecord::txt_token("example.net", "t"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("example.net"), "{err}");
    assert!(!matches!(err, DnsError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_reported_as_such() {
    // A port nothing listens on: bound and released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let p = Rfc2136::new(port).with_timeout(Duration::from_secs(2));
    let err = p.zone_for("example.com").await.unwrap_err();
    assert!(
        matches!(err, DnsError::Unreachable { .. } | DnsError::Timeout { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

/// Applies external-dns's DNSEndpoint CRD (idempotent) and waits until it is served.
fn install_dnsendpoint_crd(cluster: &TestCluster) {
    let crd = repo_root().join("deploy/externaldns/dnsendpoint-crd.yaml");
    let out = cluster.kubectl_ok(&["apply", "-f", crd.to_str().unwrap()], None);
    assert!(out.contains("dnsendpoints.externaldns.k8s.io"), "{out}");
    crate::support::cluster::wait_established(
        &cluster.kubeconfig,
        &["dnsendpoints.externaldns.k8s.io"],
    );
}

#[tokio::test]
async fn dnsendpoints_are_accepted_and_bridged_to_the_authoritative_server() {
    let cluster = TestCluster::new("dns-bridge").await;
    install_dnsendpoint_crd(&cluster);
    let dns = AuthoritativeDns::start_default().await;
    let api: Api<DNSEndpoint> = cluster.api();
    let ssa = PatchParams::apply("digicert-operator-test").force();
    let labels = BTreeMap::from([("digicert-operator.dev/dcv".to_string(), "true".to_string())]);
    let put = async |name: &str, record: &DnsRecord| {
        let obj = endpoint_for(name, &cluster.namespace, record, labels.clone(), None);
        api.patch(name, &ssa, &Patch::Apply(&obj))
            .await
            .unwrap_or_else(|e| panic!("DNSEndpoint {name}: {e}"))
    };

    let txt = DnsRecord::txt_token("*.example.com", "bridge-token-1");
    let stored = put("dcv-txt", &txt).await;
    assert_eq!(
        stored.spec,
        endpoint_for("x", "y", &txt, BTreeMap::new(), None).spec
    );
    let cname = DnsRecord::cname_token("example.org", "bridge-token-c");
    put("dcv-cname", &cname).await;

    let _bridge = DnsBridge::start(
        cluster.client.clone(),
        Some(&cluster.namespace),
        provider(&dns),
    );
    let wait = Duration::from_secs(30);
    dns.wait_until("the TXT token at knot", wait, async || {
        dns.txt("example.com")
            .await
            .contains(&"bridge-token-1".to_string())
    })
    .await;
    dns.wait_until("the CNAME token at knot", wait, async || {
        dns.cname("_dnsauth.example.org").await.as_deref()
            == Some("bridge-token-c.dcv.digicert.com")
    })
    .await;

    // A new token replaces the old one; deleting the object removes its record.
    put(
        "dcv-txt",
        &DnsRecord::txt_token("example.com", "bridge-token-2"),
    )
    .await;
    dns.wait_until("the TXT token replaced", wait, async || {
        dns.txt("example.com").await == ["bridge-token-2", APEX_SPF]
    })
    .await;
    for name in ["dcv-txt", "dcv-cname"] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    dns.wait_until("the tokens removed", wait, async || {
        dns.txt("example.com").await == [APEX_SPF]
            && dns.cname("_dnsauth.example.org").await.is_none()
    })
    .await;
}
