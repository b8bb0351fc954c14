//! Domain validation over DNS against a real authoritative server (Knot DNS, see
//! `tests/support/dns.rs`).

mod support;

use support::dns::{APEX_SPF, AuthoritativeDns, encode_base64};

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
