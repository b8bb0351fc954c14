//! Preparing a reissue: a key pair and CSR, kept in the pending-key Secret before anything goes to DigiCert.
//! The prepared reissue is written to status only with its send (`Submitting`).

use super::*;

impl Run {
    /// Makes and stores a key pair and CSR, then submits (the status write before the
    /// POST records both).
    /// `duplicate`: the names of a duplicate to request instead of a reissue, and the
    /// order's certificate it copies.
    pub(super) async fn prepare(
        &mut self,
        reason: ReissueReason,
        target: Option<&Secret>,
        duplicate: Option<(Vec<String>, u64)>,
    ) -> Result<Action> {
        // No key, no point in making a CSR.
        if self.client().await?.is_none() {
            return Ok(Action::requeue(schedule::NO_ACCOUNT_RETRY));
        }
        let spec = self.spec().clone();
        let kind = spec.private_key.kind();
        let reuse = target.and_then(secret::stored_key).filter(|k| {
            decide::keeps_key(
                spec.private_key.rotation_policy,
                Some(keys::kind_of(k)),
                kind,
            )
        });
        let reused = reuse.is_some();
        let names = match &duplicate {
            Some((n, _)) => n.clone(),
            None => decide::wanted_names(&spec),
        };
        let (key_pem, csr_pem) = key_and_csr(kind, reuse, names).await?;
        // A kept key is in the certificate Secret already: only the CSR is new, and
        // status (written before the send) keeps it. A new key gets its own Secret.
        let (key_secret_name, pending) = match target.filter(|_| reused) {
            Some(certificate) => (
                self.spec().secret_name.clone(),
                secret::kept_key(certificate, &csr_pem).map_err(Error::Config)?,
            ),
            None => {
                let (name, stored) = proceed!(self.store_pending_key(&key_pem, &csr_pem).await?);
                (
                    name,
                    secret::read_pending_key(&stored).map_err(Error::Config)?,
                )
            }
        };
        self.status.reissue = Some(ReissueStatus {
            state: ReissueState::Prepared,
            reason: reason.as_str().into(),
            csr_fingerprint: keys::csr_fingerprint(&csr_pem)?,
            spec_fingerprint: decide::spec_fingerprint(&spec),
            key_secret_name,
            request_id: None,
            certificate_id: None,
            submitted_at: None,
            duplicate: duplicate.is_some(),
            duplicate_of: duplicate.as_ref().map(|(_, of)| *of),
            names: duplicate.map(|(n, _)| n).unwrap_or_default(),
            csr: reused.then_some(csr_pem),
        });
        self.record_prepared(&reason, reused);
        self.submit(pending).await
    }

    /// Keeps the new key and CSR in the pending-key Secret, never over a Secret of
    /// that name that is not this order's pending key. Returns the Secret's name and
    /// the Secret as written.
    async fn store_pending_key(&mut self, key_pem: &str, csr_pem: &str) -> Flow<(String, Secret)> {
        let key_secret = secret::pending_key_secret(
            &self.name,
            &self.namespace,
            key_pem,
            csr_pem,
            secret::owner_reference(&self.order),
        );
        let key_secret_name = secret::pending_key_name(&self.name);
        if let Some(other) = self.secrets().get_opt(&key_secret_name).await?
            && !secret::is_pending_key_of(&other, &self.name)
        {
            self.condition(
                READY,
                false,
                "SecretConflict",
                format!("Secret {key_secret_name} exists and is not this DigicertOrder's pending key; the operator does not overwrite it: delete or rename it"),
            );
            return Ok(Break(Action::requeue(
                self.ctx.config.resync.min(schedule::CONFLICT_RETRY),
            )));
        }
        let stored = self
            .secrets()
            .patch(
                &key_secret_name,
                &PatchParams::apply(secret::MANAGER).force(),
                &Patch::Apply(&key_secret),
            )
            .await?;
        Ok(Continue((key_secret_name, stored)))
    }

    /// What the conditions say of a prepared reissue: nothing is written yet. The
    /// status write that records the send (`Submitting`) carries it, so a reissue
    /// costs no write of its own before that one.
    fn record_prepared(&mut self, reason: &ReissueReason, reused: bool) {
        let message = format!(
            "{}: {}; {} key pair",
            if self.is_duplicate() {
                "duplicate"
            } else {
                "reissue"
            },
            reason.describe(),
            if reused {
                "kept the current"
            } else {
                "generated a new"
            }
        );
        self.condition(ISSUING, true, "Prepared", message);
        // Renewal of a good certificate: the Secret stays Ready meanwhile.
        if !reason.keeps_ready() {
            self.condition(READY, false, reason.as_str(), reason.describe());
        }
    }

    /// The key pair of the reissue in flight: the certificate Secret's own (kept key,
    /// CSR in status; `target` is that Secret as the reconcile read it) or the
    /// pending-key Secret's.
    pub(super) async fn pending_key(&self, target: Option<&Secret>) -> Result<Option<PendingKey>> {
        if let Some(csr) = self.status.reissue.as_ref().and_then(|r| r.csr.as_deref()) {
            return Ok(target.and_then(|c| secret::kept_key(c, csr).ok()));
        }
        let name = secret::pending_key_name(&self.name);
        let Some(s) = self.secrets().get_opt(&name).await? else {
            return Ok(None);
        };
        if !secret::is_pending_key_of(&s, &self.name) {
            return Ok(None);
        }
        Ok(secret::read_pending_key(&s).ok())
    }

    /// Deletes this DigicertOrder's pending-key Secret: only one labelled as such, and
    /// only the very object that was read (uid precondition).
    pub(super) async fn delete_pending_key(&self) -> Result<()> {
        if self
            .status
            .reissue
            .as_ref()
            .is_some_and(|r| r.csr.is_some())
        {
            return Ok(()); // a kept key has no Secret of its own
        }
        let name = secret::pending_key_name(&self.name);
        let Some(found) = self.secrets().get_opt(&name).await? else {
            return Ok(());
        };
        if !secret::is_pending_key_of(&found, &self.name) {
            return Ok(());
        }
        let params = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: found.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.secrets().delete(&name, &params).await {
            Ok(_) => Ok(()),
            // Gone, or replaced meanwhile by another object of that name.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Drops the reissue (and its key) so the next reconcile starts afresh.
    pub(super) async fn abandon(&mut self) -> Result<()> {
        self.status.reissue = None;
        self.save().await?;
        self.delete_pending_key().await
    }
}

/// A key pair (the kept one, or a new one of `kind`) and a CSR for `names` (the
/// common name first), PEM. Key generation (RSA 4096 takes a while) stays off the
/// async threads.
async fn key_and_csr(
    kind: keys::KeyKind,
    reuse: Option<rcgen::KeyPair>,
    names: Vec<String>,
) -> Result<(String, String)> {
    let (key, csr_pem) = tokio::task::spawn_blocking(move || -> Result<_> {
        let key = match reuse {
            Some(k) => k,
            None => keys::generate(kind)?,
        };
        let common_name = names[0].clone();
        let csr = keys::csr_pem(&key, &common_name, &names[1..])?;
        Ok((key, csr))
    })
    .await
    .map_err(|e| Error::Config(format!("key generation task: {e}")))??;
    Ok((
        keys::encode_private_key(&key, keys::Encoding::Pkcs8)?,
        csr_pem,
    ))
}
