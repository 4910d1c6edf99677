//! The closed set of IAM and STS actions this API serves (`Action=` of the Query
//! protocol), grouped as their handlers are: STS, Coffer's operator-only tenant and
//! root-key actions, users and access keys (`lib.rs`), policy simulation (`simulate.rs`),
//! and managed policies, groups, roles and inline policies (`entities.rs`). Each handler
//! matches its group exhaustively; the enum also answers CloudTrail's `readOnly`.

/// An IAM or STS action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Sts(Sts),
    Account(Account),
    Users(Users),
    Simulate(Simulate),
    Entities(Entities),
    /// An action this API does not serve.
    Unknown,
}

use coffer_api::operation_group as group;

group!(
    /// STS, signed for service `sts`.
    Sts { AssumeRole, GetCallerIdentity }
);
group!(
    /// Coffer's own actions, for the instance operator alone (`coffer account`,
    /// `coffer root-key`, `coffer clock`).
    Account {
        CreateAccount, ListAccounts, DeleteAccount, RotateRootKey, DestroyRetiredRootKeys,
        GetClock, AdvanceClock,
    }
);
group!(
    /// Users and their access keys.
    Users {
        CreateUser, GetUser, ListUsers, DeleteUser, CreateAccessKey, ListAccessKeys,
        UpdateAccessKey, DeleteAccessKey,
    }
);
group!(
    /// Policy simulation.
    Simulate { SimulatePrincipalPolicy, SimulateCustomPolicy }
);
group!(
    /// Inline and managed policies, groups and roles.
    Entities {
        PutUserPolicy, PutGroupPolicy, PutRolePolicy, GetUserPolicy, GetGroupPolicy,
        GetRolePolicy, ListUserPolicies, ListGroupPolicies, ListRolePolicies,
        DeleteUserPolicy, DeleteGroupPolicy, DeleteRolePolicy, CreatePolicy, GetPolicy,
        GetPolicyVersion, ListPolicyVersions, CreatePolicyVersion, ListPolicies,
        DeletePolicy, AttachUserPolicy, DetachUserPolicy, AttachGroupPolicy,
        DetachGroupPolicy, AttachRolePolicy, DetachRolePolicy, ListAttachedUserPolicies,
        ListAttachedGroupPolicies, ListAttachedRolePolicies, CreateGroup, GetGroup,
        ListGroups, ListGroupsForUser, DeleteGroup, AddUserToGroup, RemoveUserFromGroup,
        CreateRole, GetRole, ListRoles, DeleteRole, UpdateAssumeRolePolicy,
    }
);

impl Operation {
    /// The action called `name`.
    pub fn from_action(name: &str) -> Operation {
        Sts::find(name)
            .map(Operation::Sts)
            .or_else(|| Account::find(name).map(Operation::Account))
            .or_else(|| Users::find(name).map(Operation::Users))
            .or_else(|| Simulate::find(name).map(Operation::Simulate))
            .or_else(|| Entities::find(name).map(Operation::Entities))
            .unwrap_or(Operation::Unknown)
    }

    /// AWS's name (Coffer's, for the operator actions), for the audit record.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Sts(o) => o.name(),
            Operation::Account(o) => o.name(),
            Operation::Users(o) => o.name(),
            Operation::Simulate(o) => o.name(),
            Operation::Entities(o) => o.name(),
            Operation::Unknown => "Unknown",
        }
    }

    /// CloudTrail's `readOnly`: the Get, List and Simulate actions (and STS's
    /// GetCallerIdentity).
    pub fn read_only(self) -> bool {
        match self {
            Operation::Sts(o) => match o {
                Sts::GetCallerIdentity => true,
                Sts::AssumeRole => false,
            },
            Operation::Account(o) => match o {
                Account::ListAccounts | Account::GetClock => true,
                Account::CreateAccount
                | Account::DeleteAccount
                | Account::RotateRootKey
                | Account::DestroyRetiredRootKeys
                | Account::AdvanceClock => false,
            },
            Operation::Users(o) => match o {
                Users::GetUser | Users::ListUsers | Users::ListAccessKeys => true,
                Users::CreateUser
                | Users::DeleteUser
                | Users::CreateAccessKey
                | Users::UpdateAccessKey
                | Users::DeleteAccessKey => false,
            },
            Operation::Simulate(_) => true,
            Operation::Entities(o) => {
                let n = o.name();
                n.starts_with("Get") || n.starts_with("List")
            }
            Operation::Unknown => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_found_by_its_name_and_reads_are_read_only() {
        let all: Vec<Operation> = Sts::ALL
            .iter()
            .map(|o| Operation::Sts(*o))
            .chain(Account::ALL.iter().map(|o| Operation::Account(*o)))
            .chain(Users::ALL.iter().map(|o| Operation::Users(*o)))
            .chain(Simulate::ALL.iter().map(|o| Operation::Simulate(*o)))
            .chain(Entities::ALL.iter().map(|o| Operation::Entities(*o)))
            .collect();
        assert_eq!(all.len(), 59);
        for op in all {
            assert_eq!(Operation::from_action(op.name()), op);
            // The rule the audit trail applied by name before actions were typed.
            let n = op.name();
            let by_name = ["Get", "List", "Simulate"].iter().any(|p| n.starts_with(p));
            assert_eq!(op.read_only(), by_name, "{n}");
        }
        assert_eq!(Operation::from_action("Frobnicate"), Operation::Unknown);
    }
}
