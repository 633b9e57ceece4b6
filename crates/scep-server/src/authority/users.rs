//! Users through the authority: what needs the server's keys (NT hashes for NTLM).

use scep_ntlm::{Challenge, server::Authenticate};

use super::Authority;
use crate::accounts;
use crate::store::UserRow;

/// Why an NTLM AUTHENTICATE did not log a user in.
#[derive(Debug)]
pub enum NtlmRefusal {
    /// No such user, a user not enabled for NTLM, or a response that does not verify.
    Wrong(String),
    /// The store failed.
    Unavailable(String),
}

impl Authority {
    /// Add a user; with `ntlm`, its NT hash is kept too (sealed), for NTLM and Negotiate.
    pub async fn add_user(
        &self,
        name: &str,
        password: &str,
        permissions: &[String],
        ntlm: bool,
    ) -> anyhow::Result<bool> {
        let key = ntlm.then_some(&self.ntlm_key);
        accounts::add_user(self.store.as_ref(), name, password, permissions, key, super::unix(self.now())).await
    }

    /// Change a user's password; with `ntlm`, its NT hash follows.
    pub async fn set_password(&self, name: &str, password: &str, ntlm: bool) -> anyhow::Result<bool> {
        accounts::set_password(self.store.as_ref(), name, password, ntlm.then_some(&self.ntlm_key)).await
    }

    /// A user by name.
    pub async fn user(&self, name: &str) -> Result<Option<UserRow>, crate::store::StoreError> {
        self.store.user(name).await
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<UserRow>, crate::store::StoreError> {
        self.store.list_users().await
    }

    /// Remove a user; `false` when there is none of that name.
    pub async fn remove_user(&self, name: &str) -> Result<bool, crate::store::StoreError> {
        self.store.remove_user(name).await
    }

    /// End every console session of `name` (logout).
    pub async fn end_sessions(&self, name: &str) -> Result<bool, crate::store::StoreError> {
        self.store.end_sessions(name).await
    }

    /// The user an AUTHENTICATE names, when its NTLMv2 response verifies against the
    /// user's NT hash. The name rule: the domain the client sent is dropped, whether in
    /// the message's domain field or in the user name (`CORP\svc`, `svc@corp.example`,
    /// as curl sends them); what is left must equal a scepd user's name, or, failing
    /// that, exactly one user's ignoring case (Windows names are case-blind).
    pub async fn ntlm_user(
        &self,
        auth: &Authenticate,
        negotiate: &[u8],
        challenge: &Challenge,
    ) -> Result<UserRow, NtlmRefusal> {
        let unavailable = |e: crate::store::StoreError| NtlmRefusal::Unavailable(e.to_string());
        let name = local_name(auth.user());
        let user = match self.store.user(name).await.map_err(unavailable)? {
            Some(u) => Some(u),
            None => {
                let all = self.store.list_users().await.map_err(unavailable)?;
                let mut same = all.into_iter().filter(|u| u.name.eq_ignore_ascii_case(name));
                match (same.next(), same.next()) {
                    (Some(u), None) => Some(u),
                    _ => None,
                }
            }
        };
        let Some(user) = user else { return Err(NtlmRefusal::Wrong(format!("no user {name:?}"))) };
        let Some(blob) = &user.nt_secret else {
            return Err(NtlmRefusal::Wrong(format!("user {:?} is not enabled for NTLM", user.name)));
        };
        let hash = accounts::open_nt_hash(&self.ntlm_key, &user.name, blob).map_err(unavailable)?;
        match auth.verify(&hash, negotiate, challenge) {
            Ok(()) => Ok(user),
            Err(e) => Err(NtlmRefusal::Wrong(format!("user {:?}: {e}", user.name))),
        }
    }
}

/// A Windows user name without its domain: `CORP\svc` and `svc@corp.example` are `svc`.
fn local_name(user: &str) -> &str {
    let user = user.rsplit_once('\\').map_or(user, |(_, u)| u);
    user.split_once('@').map_or(user, |(u, _)| u)
}

#[cfg(test)]
mod tests {
    #[test]
    fn domains_are_dropped_from_user_names() {
        for n in ["svc", "CORP\\svc", "svc@corp.example", "CORP\\svc@corp.example"] {
            assert_eq!(super::local_name(n), "svc", "{n}");
        }
    }
}
