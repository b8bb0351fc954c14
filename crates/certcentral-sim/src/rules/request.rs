//! What reissues and duplicates have in common: a certificate request checked as
//! DigiCert checks it (a common name, a signature hash DigiCert offers, the names,
//! a CSR for exactly those names with an acceptable key) and signed by the test CA.

use crate::wire::{internal, sha1_hex_upper};
use pki::keys::KeyKind;
use time::OffsetDateTime;

use crate::ca::TestCa;
use crate::store::{ApiError, ApiKeyConfig, ApiResult, Certificate, Issued, Order, Origin, User};
use certcentral::types::ReissueStatus;
use pki::keys;

/// Case-insensitive, order-free comparison of DNS name sets.
pub(crate) fn same_names(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
        v.sort();
        v.dedup();
        v
    };
    norm(a) == norm(b)
}

/// The names of a request: the common name first, then each further name once
/// (case-insensitive).
pub(crate) fn requested_names(common_name: &str, dns_names: &[String]) -> Vec<String> {
    let mut names = vec![common_name.to_string()];
    for n in dns_names {
        if !names.iter().any(|m| m.eq_ignore_ascii_case(n)) {
            names.push(n.clone());
        }
    }
    names
}

/// DigiCert's `signature_hash` values.
pub(crate) fn check_signature_hash(hash: &str) -> ApiResult<()> {
    if ["sha256", "sha384", "sha512"].contains(&hash) {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "invalid_signature_hash",
        format!("Signature hash {hash:?} is not one of sha256, sha384, sha512."),
    ))
}

/// Signs the certificate of `cert` for the order, valid from now for the order's
/// validity, never past the plan's end.
pub(crate) fn sign(
    ca: &TestCa,
    order: &Order,
    cert: &Certificate,
    now: OffsetDateTime,
) -> ApiResult<Issued> {
    sign_until(ca, cert, now, (now + order.validity()).min(order.ends_at()))
}

/// Signs the certificate of `cert`, valid from now to `not_after`.
pub(crate) fn sign_until(
    ca: &TestCa,
    cert: &Certificate,
    now: OffsetDateTime,
    not_after: OffsetDateTime,
) -> ApiResult<Issued> {
    let info = keys::inspect_csr(&cert.csr).map_err(internal)?;
    let leaf = ca
        .issue(
            &info.public_key_info,
            &cert.common_name,
            &cert.dns_names,
            &cert.signature_hash,
            now,
            not_after,
        )
        .map_err(internal)?;
    Ok(Issued {
        date_issued: now,
        not_before: leaf.not_before,
        not_after: leaf.not_after,
        serial_number: leaf.serial_hex,
        thumbprint: sha1_hex_upper(&leaf.der),
        pem: keys::certificate_pem(&leaf.der),
    })
}

/// What DigiCert checks in a CSR: it parses, its signature verifies, its key is one
/// DigiCert accepts, and its names are exactly the names of the request.
pub(crate) fn check_csr(pem: &str, names: &[String]) -> ApiResult<keys::CsrInfo> {
    let info = keys::inspect_csr(pem).map_err(|e| {
        ApiError::bad_request(
            "csr_invalid_cannot_parse",
            format!("The CSR cannot be parsed: {e}"),
        )
    })?;
    match info.key {
        KeyKind::Rsa(bits) if bits >= 2048 => {}
        KeyKind::Rsa(bits) => {
            return Err(ApiError::bad_request(
                "csr_invalid_key_size",
                format!("RSA keys must have at least 2048 bits; the CSR's has {bits}."),
            ));
        }
        KeyKind::Ecdsa(256 | 384) => {}
        other => {
            return Err(ApiError::bad_request(
                "csr_invalid_key_type",
                format!(
                    "{other} keys are not supported; use RSA (2048 bits or more) or ECDSA P-256/P-384."
                ),
            ));
        }
    }
    if !info.signature_valid {
        return Err(ApiError::bad_request(
            "csr_invalid_signature",
            "The CSR's signature does not verify.",
        ));
    }
    let mut csr_names: Vec<String> = info.common_name.iter().cloned().collect();
    csr_names.extend(info.dns_names.iter().cloned());
    if !info
        .common_name
        .as_deref()
        .is_some_and(|cn| cn.eq_ignore_ascii_case(&names[0]))
        || !same_names(&csr_names, names)
    {
        return Err(ApiError::bad_request(
            "csr_names_mismatch",
            format!(
                "The CSR names ({}) differ from common_name and dns_names ({}).",
                csr_names.join(", "),
                names.join(", ")
            ),
        ));
    }
    Ok(info)
}

/// A certificate request's parts, as the reissue and the duplicate endpoints take them.
pub(crate) struct Asked<'a> {
    pub common_name: &'a str,
    pub dns_names: &'a [String],
    pub csr: &'a str,
    pub signature_hash: &'a str,
    pub server_platform: Option<i64>,
}

/// A request that passed the checks: its names (common name first) and its CSR.
pub(crate) struct Checked {
    pub common_name: String,
    pub names: Vec<String>,
    pub csr: keys::CsrInfo,
}

/// Checks a request as DigiCert does, in DigiCert's order: a common name, a
/// signature hash it offers, the names by the endpoint's own rule (`names_allowed`:
/// the order's domains for a reissue, the copied certificate's names for a
/// duplicate), then a CSR for exactly those names with an acceptable key.
pub(crate) fn check_request(
    asked: &Asked,
    names_allowed: impl FnOnce(&[String]) -> ApiResult<()>,
) -> ApiResult<Checked> {
    let common_name = asked.common_name.trim();
    if common_name.is_empty() {
        return Err(ApiError::bad_request(
            "bad_request_format",
            "certificate.common_name is required.",
        ));
    }
    check_signature_hash(asked.signature_hash)?;
    let names = requested_names(common_name, asked.dns_names);
    names_allowed(&names)?;
    let csr = check_csr(asked.csr, &names)?;
    Ok(Checked {
        common_name: common_name.to_string(),
        names,
        csr,
    })
}

/// The certificate a checked request asks for, pending, before the endpoint's own
/// fields (status, request, issuance time, intermediate).
pub(crate) fn requested_certificate(
    order_id: u64,
    origin: Origin,
    asked: &Asked,
    checked: Checked,
    caller: &ApiKeyConfig,
    now: OffsetDateTime,
) -> Certificate {
    Certificate {
        id: 0,
        order_id,
        origin,
        status: ReissueStatus::Pending,
        common_name: checked.common_name,
        dns_names: checked.names,
        csr: asked.csr.trim().to_string() + "\n",
        key: checked.csr.key,
        signature_hash: asked.signature_hash.to_string(),
        server_platform_id: asked.server_platform.unwrap_or(-1),
        date_created: now,
        request_id: None,
        issue_after: None,
        user: Some(User::from(caller)),
        issued: None,
        ca_cert_id: None,
        revoke_at: None,
        revoked_at: None,
    }
}
