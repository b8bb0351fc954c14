//! The synchronous part of the DCV endpoints: what the state answers, and the targets
//! of real checks (run by [`super::va`] without the state lock, then applied here).

use time::OffsetDateTime;

use crate::rules::dcv;
use crate::store::{ApiError, ApiResult, CheckTarget, Domain, RandomValue, State};
use crate::wire::date_time;
use certcentral::dcv::*;

/// The query of `GET /domain` (and the flags of `GET /domain/{id}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainQuery {
    /// Exact name; with a leading `%`, names containing the rest.
    pub search: Option<String>,
    pub status: Option<String>,
    pub include_dcv: bool,
    pub limit: Option<u64>,
    pub offset: u64,
}

impl DomainQuery {
    /// `include_dcv_expiration_time` also adds the approval and token to list entries,
    /// in Domain info's shape (inferred; DigiCert's list nests them differently).
    pub fn parse(query: &str) -> Self {
        let mut q = DomainQuery::default();
        let Ok(url) = reqwest::Url::parse(&format!("http://q/?{query}")) else {
            return q;
        };
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "filters[search]" => q.search = Some(v.into_owned()),
                "filters[status]" => q.status = Some(v.into_owned()),
                "include_dcv" | "include_dcv_expiration_time" => q.include_dcv |= v == "true",
                "limit" => q.limit = v.parse().ok(),
                "offset" => q.offset = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        q
    }

    fn matches(&self, d: &Domain) -> bool {
        let search = self.search.as_deref().map(str::to_ascii_lowercase);
        let name_ok = match search.as_deref() {
            None | Some("") => true,
            Some(s) => match s.strip_prefix('%') {
                Some(part) => d.name.contains(part),
                // Without the `%25` prefix the documented search is not a "contains";
                // an exact match is inferred.
                None => d.name == s.trim_end_matches('.'),
            },
        };
        let status_ok = match self.status.as_deref() {
            Some("active") => d.is_active,
            Some("inactive") => !d.is_active,
            _ => true,
        };
        name_ok && status_ok
    }
}

fn invalid_method(method: &DcvMethod) -> ApiError {
    ApiError::bad_request(
        "invalid_dcv_method",
        format!(
            "{method} is not a DCV method this call accepts (email, dns-txt-token, dns-cname-token, http-token)."
        ),
    )
}

/// The method the domain of `names` is checked with under the order's method (a
/// wildcard among them rules out the file methods).
fn group_method(order_method: &DcvMethod, names: &[String]) -> DcvMethod {
    match names.iter().find(|n| n.starts_with("*.")) {
        Some(wildcard) => dcv::method_for_name(order_method, wildcard),
        None => order_method.clone(),
    }
}

fn settable(method: &DcvMethod) -> bool {
    matches!(method, DcvMethod::Email) || method.is_token()
}

impl State {
    // ---- order level ----

    pub fn order_validation(&mut self, id: u64, now: OffsetDateTime) -> ApiResult<OrderValidation> {
        let groups = self.order_domains(id, now)?;
        let order = self.order(id)?;
        let mut out = OrderValidation {
            order_status: Some(order.status.as_str().to_string()),
            order_name_scope: Some("base_domain".into()),
            order_dcv_method: Some(order.method()),
            dns_name_validations: Vec::new(),
        };
        for (domain_id, names) in groups {
            let d = self.domain(domain_id)?;
            let current = self.domain_current(d, now);
            out.dns_name_validations.push(DnsNameValidation {
                domain_id,
                name_scope: d.name.clone(),
                approval_scope: Some("subdomains".into()),
                status: if current { "approved" } else { "pending" }.into(),
                method: Some(d.dcv_method.clone()),
                dns_names: names,
                approval_expiration_date: self.approval_expiry(d, now).map(date_time),
            });
        }
        Ok(out)
    }

    /// `PUT .../dcv-method`: the order and its domains still to validate switch method,
    /// and DigiCert's checks start over.
    pub fn set_order_dcv_method(
        &mut self,
        id: u64,
        method: DcvMethod,
        now: OffsetDateTime,
    ) -> ApiResult<Option<OrderRandomValue>> {
        if !settable(&method) {
            return Err(invalid_method(&method));
        }
        let order = self.order(id)?;
        let names = self.dcv_names(order);
        if method == DcvMethod::HttpToken && names.iter().all(|n| n.starts_with("*.")) {
            return Err(ApiError::bad_request(
                "invalid_wildcard_dcv_method",
                format!(
                    "Order {id} names only wildcards ({}); http-token cannot validate them.",
                    names.join(", ")
                ),
            ));
        }
        self.order_mut(id)?.dcv_method = Some(method.clone());
        let speedup = self.dcv.poll_speedup;
        for (domain_id, names) in self.order_domains(id, now)? {
            let method = group_method(&method, &names);
            let current = self
                .domains
                .get(&domain_id)
                .is_some_and(|d| self.domain_current(d, now));
            if let Some(d) = self.domains.get_mut(&domain_id)
                && (!current || d.pending_validation)
            {
                d.dcv_method = method.clone();
                d.start_polling(now, speedup);
            }
        }
        if method == DcvMethod::Email {
            return Ok(None);
        }
        self.order_random_value(id, now).map(Some)
    }

    /// `PUT .../dcv-random-value`: the order value, made anew once expired.
    pub fn order_random_value(
        &mut self,
        id: u64,
        now: OffsetDateTime,
    ) -> ApiResult<OrderRandomValue> {
        let order = self.order_mut(id)?;
        if !order
            .dcv_random_value
            .as_ref()
            .is_some_and(|v| v.valid_at(now))
        {
            order.dcv_random_value = Some(RandomValue::new(now));
        }
        let v = order
            .dcv_random_value
            .as_ref()
            .ok_or_else(|| ApiError::new(500, "internal_error", "no random value"))?;
        Ok(OrderRandomValue {
            dcv_random_value: v.value.clone(),
            expiration_date: Some(date_time(v.expires)),
        })
    }

    /// The domains `check-dcv` looks at: those of the order not current or with a
    /// validation under way, checked with the order's method.
    pub fn order_check_targets(
        &mut self,
        id: u64,
        now: OffsetDateTime,
    ) -> ApiResult<(DcvMethod, Vec<CheckTarget>)> {
        let method = self.order(id)?.method();
        if !method.is_token() {
            return Err(ApiError::bad_request(
                "invalid_dcv_method",
                format!(
                    "Order {id} uses {method}; check-dcv works for dns-txt-token, dns-cname-token and http-token."
                ),
            ));
        }
        let mut targets = Vec::new();
        for (domain_id, names) in self.order_domains(id, now)? {
            let d = self.domain(domain_id)?;
            if self.domain_current(d, now) && !d.pending_validation {
                continue;
            }
            let mut t = self.check_target(domain_id, names, now)?;
            t.method = group_method(&method, &t.dns_names);
            targets.push(t);
        }
        Ok((method, targets))
    }

    /// The 200 answer of `check-dcv`, after the state settled.
    pub fn check_answer(
        &self,
        id: u64,
        method: &DcvMethod,
        now: OffsetDateTime,
    ) -> ApiResult<CheckDcv> {
        let order = self.order(id)?;
        let cert = self
            .pending_reissue(order)
            .map_or(order.current_certificate, |c| c.id);
        let names = self.dcv_names(order);
        let dns = matches!(method, DcvMethod::DnsTxtToken | DcvMethod::DnsCnameToken);
        let dns_name_validations = if dns {
            names
                .iter()
                .map(|n| CheckedName {
                    dns_name: n.clone(),
                    status: if self.names_current(std::slice::from_ref(n), now) {
                        "approved"
                    } else {
                        "pending"
                    }
                    .into(),
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(CheckDcv {
            order_status: Some(order.status.as_str().to_string()),
            certificate_id: Some(cert),
            dcv_status: Some("valid".into()),
            dns_name_validations,
        })
    }

    // ---- domain level ----

    fn dcv_token(&self, d: &Domain, now: OffsetDateTime) -> Option<DcvToken> {
        let t = d.token.as_ref()?;
        let active = self.domain_current(d, now) && !d.pending_validation;
        Some(DcvToken {
            token: t.value.clone(),
            status: Some(if active { "active" } else { "pending" }.into()),
            expiration_date: Some(date_time(t.expires)),
            // Documented as the legacy CNAME target; the current rule is `_dnsauth`.
            verification_value: (d.dcv_method == DcvMethod::DnsCnameToken)
                .then(|| "dcv.digicert.com".into()),
            http_token_url: (d.dcv_method == DcvMethod::HttpToken)
                .then(|| dcv::http_token_url(&d.name)),
        })
    }

    pub fn domain_view(&self, d: &Domain, include_dcv: bool, now: OffsetDateTime) -> DomainInfo {
        DomainInfo {
            id: d.id,
            name: d.name.clone(),
            is_active: Some(d.is_active),
            is_pending_validation: Some(d.pending_validation),
            dcv_method: Some(d.dcv_method.clone()),
            dcv_approval_datetime: include_dcv.then(|| d.dcv_approval.map(date_time)).flatten(),
            dcv_expiration_datetime: include_dcv
                .then(|| self.approval_expiry(d, now).map(date_time))
                .flatten(),
            dcv_token: include_dcv.then(|| self.dcv_token(d, now)).flatten(),
        }
    }

    pub fn list_domains(&self, q: &DomainQuery, now: OffsetDateTime) -> DomainList {
        let all: Vec<&Domain> = self.domains.values().filter(|d| q.matches(d)).collect();
        let limit = q.limit.unwrap_or(1000).max(1);
        let domains = all
            .iter()
            .skip(q.offset as usize)
            .take(limit as usize)
            .map(|d| self.domain_view(d, q.include_dcv, now))
            .collect();
        DomainList {
            domains,
            page: Some(Page {
                total: all.len() as u64,
                limit,
                offset: q.offset,
            }),
        }
    }

    /// `POST /domain/{id}/validation`: a new validation starts; the old approval counts
    /// until it lapses. Without a method: 204 (inferred), the domain's method stays.
    pub fn submit_validation(
        &mut self,
        id: u64,
        body: &SubmitValidation,
        now: OffsetDateTime,
    ) -> ApiResult<Option<DomainTokenAnswer>> {
        if body.validations.is_empty()
            || body
                .validations
                .iter()
                .any(|v| !matches!(v.kind.as_str(), "ov" | "ev"))
        {
            return Err(ApiError::bad_request(
                "invalid_validation_type",
                "validations must list types ov or ev.",
            ));
        }
        if let Some(m) = &body.dcv_method
            && !settable(m)
        {
            return Err(invalid_method(m));
        }
        let speedup = self.dcv.poll_speedup;
        let d = self.domain_mut(id)?;
        if let Some(m) = &body.dcv_method {
            d.dcv_method = m.clone();
        }
        d.token = Some(RandomValue::new(now));
        d.start_polling(now, speedup);
        if body.dcv_method.is_none() || d.dcv_method == DcvMethod::Email {
            return Ok(None);
        }
        let d = self.domain(id)?;
        Ok(Some(DomainTokenAnswer {
            id: Some(id),
            dcv_token: self.dcv_token(d, now),
        }))
    }

    /// `PUT /domain/{id}/dcv/method`: `{}` when unchanged; else the token (none for
    /// email), and the checks start over.
    pub fn set_domain_method(
        &mut self,
        id: u64,
        method: DcvMethod,
        now: OffsetDateTime,
    ) -> ApiResult<DomainTokenAnswer> {
        if !settable(&method) {
            return Err(invalid_method(&method));
        }
        let speedup = self.dcv.poll_speedup;
        let d = self.domain_mut(id)?;
        if d.dcv_method == method {
            return Ok(DomainTokenAnswer::default());
        }
        d.dcv_method = method.clone();
        if d.pending_validation {
            d.start_polling(now, speedup);
        }
        if method == DcvMethod::Email {
            return Ok(DomainTokenAnswer::default());
        }
        d.ensure_token(now);
        let d = self.domain(id)?;
        Ok(DomainTokenAnswer {
            id: None,
            dcv_token: self.dcv_token(d, now),
        })
    }

    /// `POST /domain/{id}/dcv/token`: a new domain value; the old one stops working.
    pub fn new_domain_token(&mut self, id: u64, now: OffsetDateTime) -> ApiResult<DcvToken> {
        let d = self.domain_mut(id)?;
        if !d.dcv_method.is_token() {
            return Err(invalid_method(&d.dcv_method.clone()));
        }
        d.token = Some(RandomValue::new(now));
        let d = self.domain(id)?;
        self.dcv_token(d, now)
            .ok_or_else(|| ApiError::new(500, "internal_error", "no token"))
    }

    pub fn domain_check(&self, id: u64, now: OffsetDateTime) -> ApiResult<CheckTarget> {
        let d = self.domain(id)?;
        if !d.dcv_method.is_token() {
            return Err(invalid_method(&d.dcv_method));
        }
        let names = vec![d.name.clone()];
        self.check_target(id, names, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_query_parsing() {
        let q =
            DomainQuery::parse("filters[search]=%25ample&include_dcv_expiration_time=true&limit=5");
        assert_eq!(q.search.as_deref(), Some("%ample"));
        assert!(q.include_dcv);
        assert_eq!(q.limit, Some(5));
        let q = DomainQuery::parse("filters%5Bsearch%5D=example.com&filters%5Bstatus%5D=active");
        assert_eq!(q.search.as_deref(), Some("example.com"));
        assert_eq!(q.status.as_deref(), Some("active"));
    }
}
