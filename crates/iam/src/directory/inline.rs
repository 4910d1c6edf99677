//! Inline policies of users, groups and roles: one set of operations over the three
//! kinds of entity (the caller validates documents; their total size is held to IAM's
//! quota per kind of entity here).

use std::collections::BTreeMap;

use super::{Directory, Error, Result, check_name};
use crate::directory::managed::Entity;

fn kind(of: Entity<'_>) -> &'static str {
    match of {
        Entity::User(_) => "user",
        Entity::Group(_) => "group",
        Entity::Role(_) => "role",
    }
}

/// The most an entity's inline policies may add up to, in characters other than white space
/// (IAM's quotas, counted as IAM counts them).
fn size_quota(of: Entity<'_>) -> (usize, &str) {
    match of {
        Entity::User(u) => (2_048, u),
        Entity::Group(g) => (5_120, g),
        Entity::Role(r) => (10_240, r),
    }
}

fn counted_size(doc: &str) -> usize {
    doc.chars().filter(|c| !c.is_whitespace()).count()
}

fn no_such_policy(of: Entity<'_>, policy: &str) -> Error {
    Error::NoSuchEntity(format!(
        "The {} policy with name {policy} cannot be found.",
        kind(of)
    ))
}

impl Directory {
    fn inline_of(&self, account: &str, of: Entity<'_>) -> Result<BTreeMap<String, String>> {
        Ok(match of {
            Entity::User(u) => self.user_doc(account, u)?.policies,
            Entity::Group(g) => self.group_doc(account, g)?.policies,
            Entity::Role(r) => self.role_doc(account, r)?.policies,
        })
    }

    /// Applies `change` to an entity's inline policies and stores the entity. Call under
    /// `writing`.
    async fn change_inline(
        &self,
        account: &str,
        of: Entity<'_>,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<()>,
    ) -> Result<()> {
        match of {
            Entity::User(u) => {
                let mut d = self.user_doc(account, u)?;
                change(&mut d.policies)?;
                self.save_user(account, u, d).await
            }
            Entity::Group(g) => {
                let mut d = self.group_doc(account, g)?;
                change(&mut d.policies)?;
                self.save_group(account, g, d).await
            }
            Entity::Role(r) => {
                let mut d = self.role_doc(account, r)?;
                change(&mut d.policies)?;
                self.save_role(account, r, d).await
            }
        }
    }

    pub async fn put_inline_policy(
        &self,
        account: &str,
        of: Entity<'_>,
        policy: &str,
        doc: &str,
    ) -> Result<()> {
        check_name("policyName", policy)?;
        let _w = self.writing.lock().await;
        self.change_inline(account, of, |p| {
            p.insert(policy.to_owned(), doc.to_owned());
            let (quota, name) = size_quota(of);
            if p.values().map(|d| counted_size(d)).sum::<usize>() > quota {
                return Err(Error::LimitExceeded(format!(
                    "Maximum policy size of {quota} bytes exceeded for {} {name}",
                    kind(of)
                )));
            }
            Ok(())
        })
        .await
    }

    pub fn get_inline_policy(&self, account: &str, of: Entity<'_>, policy: &str) -> Result<String> {
        self.inline_of(account, of)?
            .remove(policy)
            .ok_or_else(|| no_such_policy(of, policy))
    }

    pub fn list_inline_policies(&self, account: &str, of: Entity<'_>) -> Result<Vec<String>> {
        Ok(self.inline_of(account, of)?.into_keys().collect())
    }

    pub async fn delete_inline_policy(
        &self,
        account: &str,
        of: Entity<'_>,
        policy: &str,
    ) -> Result<()> {
        let _w = self.writing.lock().await;
        self.change_inline(account, of, |p| {
            p.remove(policy)
                .map(|_| ())
                .ok_or_else(|| no_such_policy(of, policy))
        })
        .await
    }
}
