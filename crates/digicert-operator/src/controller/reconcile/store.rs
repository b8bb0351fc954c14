//! Storing certificates: download, check against the key and the spec, write the Secret.

use super::*;

impl Run {
    /// Downloads an issued certificate, checks it against the key and the spec, and
    /// writes the Secret in one update.
    pub(super) async fn write_certificate(
        &mut self,
        certificate_id: u64,
        pending: &PendingKey,
        client: &certcentral::Client,
    ) -> Result<Action> {
        let (chain, leaf) = match self.download(certificate_id, &pending.key, client).await? {
            Downloaded::Failed(action) => return Ok(action),
            Downloaded::Matching(chain, leaf) => (chain, leaf),
            Downloaded::Mismatch(leaf) => {
                // Never write a certificate that does not belong to the key or the spec.
                let message = format!(
                    "certificate {certificate_id} does not match the pending key and names ({}); starting over",
                    leaf.dns_names.join(", ")
                );
                self.event(
                    EventType::Warning,
                    "CertificateMismatch",
                    "Download",
                    message.clone(),
                )
                .await;
                self.condition(ISSUING, true, "CertificateMismatch", message);
                let delay = self.back_off_permanently();
                self.abandon().await?;
                return Ok(Action::requeue(delay));
            }
        };
        let key_pem = keys::encode_private_key(&pending.key, idle::key_encoding(self.spec()))?;
        let renewal = self
            .store_certificate(certificate_id, &chain, &leaf, &key_pem)
            .await?;
        if !self.is_duplicate() {
            // The order's current certificate is this one now: the feed reporting the
            // reissue later is no news.
            self.tell_feed(OrderStatus::Issued, Some(certificate_id), None);
        }
        let reason = self.status.reissue.take().map(|r| r.reason);
        self.clear_failures();
        let message = format!(
            "certificate {certificate_id} (serial {}) valid until {}{}",
            leaf.serial_number,
            status::rfc3339(leaf.not_after),
            reason.map(|r| format!("; reason: {r}")).unwrap_or_default()
        );
        self.condition(READY, true, "Issued", message.clone());
        self.condition(ISSUING, false, "Issued", message.clone());
        self.plan_end_condition().await;
        self.save().await?;
        self.delete_pending_key().await?;
        self.ctx.metrics.reissue("issued");
        self.event(
            EventType::Normal,
            "CertificateIssued",
            "WriteSecret",
            message,
        )
        .await;
        Ok(self.next_look(&[renewal], leaf.not_after))
    }

    /// Downloads a certificate's chain (unless the reissue's answer brought it) and
    /// checks the leaf against `key` and the spec's names.
    pub(super) async fn download(
        &mut self,
        certificate_id: u64,
        key: &rcgen::KeyPair,
        client: &certcentral::Client,
    ) -> Result<Downloaded> {
        let answered = self
            .answered
            .take()
            .filter(|(id, _)| *id == certificate_id)
            .map(|(_, pem)| pem);
        let pem = match answered {
            Some(pem) => pem,
            None => match client
                .download_certificate(certificate_id, DownloadFormat::PemAll)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    let action = self.fail(&e, "downloading the certificate").await;
                    return Ok(Downloaded::Failed(action));
                }
            },
        };
        let chain = Chain::parse(&pem)?;
        let leaf = keys::inspect_certificate(&chain.leaf)?;
        // What is written must read back as the order's own certificate, or the next
        // reconcile would take it for a hand-made one and reissue again.
        let chain_signed = chain.leaf_signed_by_intermediate() != Some(false);
        if leaf.public_key_bits == keys::public_key_bits(key)
            && self.names_asked_for(&leaf)
            && chain_signed
            && !leaf.self_signed
        {
            Ok(Downloaded::Matching(chain, leaf))
        } else {
            Ok(Downloaded::Mismatch(leaf))
        }
    }

    /// Writes certificate and key into the Secret in one update and records the
    /// certificate in status; returns its renewal time (none when the order ends with it).
    pub(super) async fn store_certificate(
        &mut self,
        certificate_id: u64,
        chain: &Chain,
        leaf: &keys::CertificateInfo,
        key_pem: &str,
    ) -> Result<Option<OffsetDateTime>> {
        let tls = secret::TlsSecret {
            meta: self.secret_meta(certificate_id, leaf),
            chain,
            key_pem,
        }
        .build();
        self.write_secret(&tls).await?;
        let renewal = decide::planned_renewal(self.spec(), leaf, self.order_ends());
        self.status.certificate = Some(certificate_status(certificate_id, leaf));
        self.status.revoked = None;
        self.status.revocation_guard = None;
        self.status.duplicate_of = self.status.reissue.as_ref().and_then(|r| r.duplicate_of);
        self.status.observed_order_id = Some(self.spec().order_id);
        self.status.renewal_time = renewal.map(status::time);
        self.status.revision = self.status.revision.saturating_add(1);
        // From here on the Secret serves the spec, whatever fails next.
        self.readiness = Some(decide::Readiness::Ready {
            not_after: leaf.not_after,
        });
        Ok(renewal)
    }

    /// The certificate Secret's metadata for a certificate.
    pub(super) fn secret_meta<'a>(
        &'a self,
        certificate_id: u64,
        leaf: &'a keys::CertificateInfo,
    ) -> secret::SecretMeta<'a> {
        secret::SecretMeta {
            order_name: &self.name,
            namespace: &self.namespace,
            spec: self.spec(),
            certificate_id,
            serial_number: &leaf.serial_number,
            requested_names: self.requested_names(leaf),
            owner: self
                .ctx
                .config
                .secret_owner_references
                .then(|| secret::owner_reference(&self.order)),
        }
    }

    /// The names a certificate was requested for: the spec's, or for a duplicate those
    /// of the order's certificate it copies (the duplicate request's, or the leaf's).
    pub(super) fn requested_names(&self, leaf: &keys::CertificateInfo) -> Vec<String> {
        if self.spec().issuance != Issuance::Duplicate {
            return decide::wanted_names(self.spec());
        }
        if let Some(r) = self.status.reissue.as_ref().filter(|r| !r.names.is_empty()) {
            return r.names.clone();
        }
        let cn = leaf
            .common_name
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut names = vec![cn.clone()];
        names.extend(
            leaf.dns_names
                .iter()
                .map(|n| n.to_ascii_lowercase())
                .filter(|n| *n != cn),
        );
        names
    }

    /// Whether a downloaded leaf carries the names asked for: the spec's, or for a
    /// duplicate the names of its request.
    pub(super) fn names_asked_for(&self, leaf: &keys::CertificateInfo) -> bool {
        match self.status.reissue.as_ref().filter(|r| r.duplicate) {
            Some(r) => {
                let mut have = leaf.dns_names.clone();
                have.extend(leaf.common_name.clone());
                decide::names_fingerprint(&have) == decide::names_fingerprint(&r.names)
                    && leaf.common_name.as_deref().is_some_and(|cn| {
                        r.names.first().is_some_and(|n| n.eq_ignore_ascii_case(cn))
                    })
            }
            None => decide::names_match(self.spec(), leaf),
        }
    }

    pub(super) async fn write_secret(&self, secret: &Secret) -> Result<()> {
        self.secrets()
            .patch(
                &self.spec().secret_name,
                &PatchParams::apply(secret::MANAGER).force(),
                &Patch::Apply(secret),
            )
            .await?;
        Ok(())
    }
}

/// What a download brought.
pub(super) enum Downloaded {
    /// The call failed; the back-off to return.
    Failed(Action),
    /// For the key and the spec's names.
    Matching(Chain, keys::CertificateInfo),
    /// For another key or other names.
    Mismatch(keys::CertificateInfo),
}

pub(super) fn certificate_status(id: u64, leaf: &keys::CertificateInfo) -> CertificateStatus {
    CertificateStatus {
        id,
        serial_number: leaf.serial_number.clone(),
        thumbprint: leaf.thumbprint.clone(),
        not_before: status::time(leaf.not_before),
        not_after: status::time(leaf.not_after),
        dns_names: leaf.dns_names.clone(),
    }
}
