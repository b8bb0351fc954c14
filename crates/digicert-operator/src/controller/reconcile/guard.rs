//! The guard before a reissue: one that drops names makes DigiCert revoke the order's
//! earlier certificates and duplicates, so it waits for the user's consent.

use super::*;
use crate::crd::{AtRiskCertificate, RevocationGuardStatus};

const CONSENT_REQUIRED: &str = "RevocationConsentRequired";

impl Run {
    /// `Break`: the reissue is held (what would be revoked is in status). Costs a
    /// DigiCert call only when the names are not known to be kept.
    pub(super) async fn guard_revocation(&mut self) -> Flow {
        let wanted = decide::wanted_names(self.spec());
        // The certificate this resource last wrote is the order's current one unless
        // something else reissued (which the periodic order check notices).
        if let Some(known) = &self.status.certificate
            && self.status.revoked.is_none()
            && decide::dropped_names(&known.dns_names, &wanted).is_empty()
        {
            self.status.revocation_guard = None;
            return Ok(Continue(()));
        }
        let Some(client) = self.client().await? else {
            return Ok(Break(Action::requeue(schedule::NO_ACCOUNT_RETRY)));
        };
        let info = match client.order_info(self.spec().order_id).await {
            Ok(i) => i,
            Err(e) => return Ok(Break(self.fail(&e, "reading the order").await)),
        };
        self.observe_order(&info);
        let issued = info.certificate.serial_number.is_some()
            && matches!(
                info.status,
                OrderStatus::Issued | OrderStatus::ReissuePending
            );
        let mut current = vec![info.certificate.common_name.clone()];
        current.extend(info.certificate.dns_names.iter().cloned());
        let annotation = self
            .order
            .annotations()
            .get(ALLOW_REVOCATION_ANNOTATION)
            .cloned();
        match decide::revocation_consent(
            issued.then_some(&current[..]),
            &wanted,
            self.spec().allow_revocation_of_previous,
            annotation.as_deref(),
        ) {
            decide::Consent::NotNeeded => {
                self.status.revocation_guard = None;
                Ok(Continue(()))
            }
            decide::Consent::Given { dropped } => {
                self.status.revocation_guard = None;
                let message = format!(
                    "the reissue drops {} with consent; DigiCert revokes the order's earlier certificates and duplicates within 72 hours",
                    dropped.join(", ")
                );
                self.event(EventType::Warning, "RevocationAgreed", "Reissue", message)
                    .await;
                Ok(Continue(()))
            }
            decide::Consent::Required {
                dropped,
                fingerprint,
            } => {
                let at_risk = proceed_up!(self.at_risk(&client, info.certificate.id).await?);
                Ok(Break(
                    self.hold_for_consent(dropped, fingerprint, at_risk).await,
                ))
            }
        }
    }

    async fn hold_for_consent(
        &mut self,
        dropped: Vec<String>,
        fingerprint: String,
        at_risk: Vec<decide::AtRisk>,
    ) -> Action {
        let message = decide::consent_message(
            &self.name,
            &dropped,
            &at_risk,
            &fingerprint,
            ALLOW_REVOCATION_ANNOTATION,
        );
        let guard = RevocationGuardStatus {
            dropped_names: dropped,
            fingerprint,
            would_revoke: at_risk
                .into_iter()
                .map(|c| AtRiskCertificate {
                    certificate_id: c.certificate_id,
                    serial_number: c.serial_number,
                    kind: c.kind.into(),
                    secrets: c.secrets,
                })
                .collect(),
        };
        let new = self.status.revocation_guard.as_ref() != Some(&guard);
        self.status.revocation_guard = Some(guard);
        self.clear_failures();
        self.condition(READY, false, CONSENT_REQUIRED, message.clone());
        self.condition(ISSUING, false, CONSENT_REQUIRED, message.clone());
        if new {
            self.event(EventType::Warning, CONSENT_REQUIRED, "Reissue", message)
                .await;
        }
        // The annotation or a spec change wakes the resource; the order may change too.
        Action::requeue(self.check_period())
    }

    /// The order's certificates a names-dropping reissue would revoke: the issued,
    /// unrevoked ones among its reissues and duplicates, with the Secrets of the
    /// DigicertOrders known to hold them.
    async fn at_risk(
        &mut self,
        client: &certcentral::Client,
        current: u64,
    ) -> Flow<Vec<decide::AtRisk>> {
        let mut at_risk = Vec::new();
        for duplicates in [false, true] {
            let list = proceed_up!(self.listed(client, duplicates).await?);
            at_risk.extend(
                list.into_iter()
                    .filter(|c| c.status == DigiCertReissueStatus::Issued)
                    .map(|c| decide::AtRisk {
                        kind: match (duplicates, c.id == current) {
                            (true, _) => "duplicate",
                            (false, true) => "current",
                            (false, false) => "reissue",
                        },
                        certificate_id: c.id,
                        serial_number: c.serial_number,
                        secrets: Vec::new(),
                    }),
            );
        }
        // Serial numbers tell certificates apart across accounts and endpoints;
        // certificate ids only within one.
        let holders = self.holders().await;
        let account = self.status.account.clone();
        for c in &mut at_risk {
            c.secrets = holders
                .iter()
                .filter(|h| match &c.serial_number {
                    Some(s) => s.eq_ignore_ascii_case(&h.serial_number),
                    None => h.certificate_id == c.certificate_id && h.account == account,
                })
                .map(|h| h.secret.clone())
                .collect();
        }
        Ok(Continue(at_risk))
    }

    /// The certificates of the DigicertOrders for this order id the operator can see;
    /// none when it may not list them.
    async fn holders(&self) -> Vec<Holder> {
        let api: Api<DigicertOrder> = Api::all(self.ctx.client.clone());
        let list = match api.list(&Default::default()).await {
            Ok(l) => l.items,
            Err(_) => match self.orders().list(&Default::default()).await {
                Ok(l) => l.items,
                Err(_) => return Vec::new(),
            },
        };
        list.into_iter()
            .filter(|o| o.spec.order_id == self.spec().order_id)
            .filter_map(|o| {
                let status = o.status.as_ref()?;
                let c = status.certificate.as_ref()?;
                Some(Holder {
                    certificate_id: c.id,
                    serial_number: c.serial_number.clone(),
                    account: status.account.clone(),
                    secret: format!(
                        "{}/{}",
                        o.namespace().unwrap_or_default(),
                        o.spec.secret_name
                    ),
                })
            })
            .collect()
    }
}

/// A DigicertOrder's certificate, as the guard matches it.
struct Holder {
    certificate_id: u64,
    serial_number: String,
    account: Option<String>,
    /// `namespace/secret`
    secret: String,
}
