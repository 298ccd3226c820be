//! Staff of a store and what they may do: roles, permissions, who may grant what, and the
//! principals ([`Actor`]) the merchant API and web app act for. Pure rules; storage and HTTP
//! live elsewhere.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Invalid;

/// One thing a staff member or API token may be allowed to do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Products, categories, prices and stock.
    Catalog,
    /// See orders, fulfil, cancel, mark paid.
    Orders,
    /// Give money back (whole or partial refunds).
    Refunds,
    /// Shipping, tax and discount codes.
    Settings,
    /// Invite staff and set their permissions (never beyond the granter's own).
    Staff,
}

impl Permission {
    pub const ALL: [Permission; 5] = [
        Permission::Catalog,
        Permission::Orders,
        Permission::Refunds,
        Permission::Settings,
        Permission::Staff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Catalog => "catalog",
            Permission::Orders => "orders",
            Permission::Refunds => "refunds",
            Permission::Settings => "settings",
            Permission::Staff => "staff",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// What the permission lets someone do, for the staff page.
    pub fn describe(self) -> &'static str {
        match self {
            Permission::Catalog => "Edit products, prices and stock",
            Permission::Orders => "See, fulfil and cancel orders",
            Permission::Refunds => "Refund orders",
            Permission::Settings => "Change shipping, tax and discount codes",
            Permission::Staff => "Invite staff and set their permissions",
        }
    }
}

/// A set of permissions (ordered, so it prints and stores the same way every time).
pub type Permissions = BTreeSet<Permission>;

/// Reads stored permission names; unknown names (from a newer version) are skipped.
pub fn permissions_from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Permissions {
    names.into_iter().filter_map(Permission::parse).collect()
}

pub fn permission_names(set: &Permissions) -> Vec<String> {
    set.iter().map(|p| p.as_str().to_owned()).collect()
}

/// Owners hold every permission and alone read the audit log and manage API tokens; staff
/// hold the permissions the owner (or a staff member with `staff`) gave them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Staff => "staff",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "staff" => Some(Role::Staff),
            _ => None,
        }
    }
}

/// What an operation requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Permission(Permission),
    /// Owner-only: the audit log, API tokens.
    Owner,
}

/// Who is acting: a signed-in staff member, a scoped API token, or the store's admin key from
/// its tenant config (the platform's key, with owner rights).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Staff {
        id: Uuid,
        email: String,
        role: Role,
        permissions: Permissions,
    },
    Token {
        id: Uuid,
        name: String,
        permissions: Permissions,
    },
    AdminKey,
}

impl Actor {
    pub fn is_owner(&self) -> bool {
        matches!(
            self,
            Actor::AdminKey
                | Actor::Staff {
                    role: Role::Owner,
                    ..
                }
        )
    }

    pub fn holds(&self, p: Permission) -> bool {
        match self {
            _ if self.is_owner() => true,
            Actor::Staff { permissions, .. } | Actor::Token { permissions, .. } => {
                permissions.contains(&p)
            }
            Actor::AdminKey => true,
        }
    }

    pub fn may(&self, access: Access) -> bool {
        match access {
            Access::Owner => self.is_owner(),
            Access::Permission(p) => self.holds(p),
        }
    }

    /// Every permission the actor holds.
    pub fn permissions(&self) -> Permissions {
        Permission::ALL
            .into_iter()
            .filter(|p| self.holds(*p))
            .collect()
    }

    /// `staff`, `token` or `admin_key`, as the audit log records it.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Staff { .. } => "staff",
            Actor::Token { .. } => "token",
            Actor::AdminKey => "admin_key",
        }
    }

    pub fn id(&self) -> Option<Uuid> {
        match self {
            Actor::Staff { id, .. } | Actor::Token { id, .. } => Some(*id),
            Actor::AdminKey => None,
        }
    }

    /// A name a person recognises: the email, the token's name, or "the store's admin key".
    pub fn label(&self) -> String {
        match self {
            Actor::Staff { email, .. } => email.clone(),
            Actor::Token { name, .. } => format!("token {name}"),
            Actor::AdminKey => "the store's admin key".to_owned(),
        }
    }
}

/// A member of the store's staff, as the staff list shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StaffMember {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// What they may do (owners: everything).
    #[schema(value_type = Vec<Permission>)]
    pub permissions: Permissions,
    /// False while the invitation is pending.
    pub accepted: bool,
    /// When a pending invitation stops working.
    pub invitation_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl StaffMember {
    /// The actor a session of this member acts as.
    pub fn actor(&self) -> Actor {
        Actor::Staff {
            id: self.id,
            email: self.email.clone(),
            role: self.role,
            permissions: self.permissions.clone(),
        }
    }
}

/// A scoped API token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = Vec<Permission>)]
    pub permissions: Permissions,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub rotated_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One line of the audit log: who did what, when, to what, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: chrono::DateTime<chrono::Utc>,
    /// `staff`, `token` or `admin_key`.
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    /// The staff member's email, the token's name, or the admin key.
    pub actor_label: String,
    /// What was done: `PUT /admin/inventory/{sku}` for API calls, `product.update` and the
    /// like for the web app, `staff.sign_in`, ...
    pub action: String,
    /// What it was done to (a path, an order id, an email).
    pub target: String,
    /// The HTTP status it ended with (403: refused for lack of permission).
    pub outcome: u16,
    pub client_ip: String,
}

/// Why a change to a staff member is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantRefused {
    #[error("you cannot grant `{0}`, which you do not hold yourself")]
    NotHeld(&'static str),
    #[error("an owner's permissions cannot be changed; owners hold every permission")]
    Owner,
    #[error("you cannot change your own permissions; ask the owner")]
    Yourself,
}

/// Checks that `granter` may give `target` exactly `wanted`: never an owner, never oneself,
/// never a permission the granter lacks (so `staff` cannot escalate to `refunds`).
pub fn check_grant(
    granter: &Actor,
    target: Option<(Uuid, Role)>,
    wanted: &Permissions,
) -> Result<(), GrantRefused> {
    if let Some((id, role)) = target {
        if role == Role::Owner {
            return Err(GrantRefused::Owner);
        }
        if granter.id() == Some(id) {
            return Err(GrantRefused::Yourself);
        }
    }
    match wanted.iter().find(|p| !granter.holds(**p)) {
        Some(p) => Err(GrantRefused::NotHeld(p.as_str())),
        None => Ok(()),
    }
}

/// Parses permission names from a request, naming the field on an unknown one.
pub fn parse_permissions(field: &str, names: &[String]) -> Result<Permissions, Invalid> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            Permission::parse(n).ok_or_else(|| {
                Invalid::new(
                    format!("{field}[{i}]"),
                    format!(
                        "`{n}` is not a permission; use catalog, orders, refunds, settings or staff"
                    ),
                )
            })
        })
        .collect()
}

/// An API token's name: 1 to 60 printable characters.
pub fn check_token_name(name: &str) -> Result<(), Invalid> {
    super::check_len("name", name.trim(), 1, 60)?;
    if name.chars().any(char::is_control) {
        return Err(Invalid::new("name", "must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(perms: &[Permission]) -> Actor {
        Actor::Staff {
            id: Uuid::now_v7(),
            email: "sam@example.com".into(),
            role: Role::Staff,
            permissions: perms.iter().copied().collect(),
        }
    }

    #[test]
    fn owners_and_the_admin_key_hold_everything_staff_what_they_were_given() {
        let owner = Actor::Staff {
            id: Uuid::now_v7(),
            email: "o@example.com".into(),
            role: Role::Owner,
            permissions: Permissions::new(),
        };
        for p in Permission::ALL {
            assert!(owner.holds(p) && Actor::AdminKey.holds(p));
        }
        assert!(owner.may(Access::Owner) && Actor::AdminKey.may(Access::Owner));
        let clerk = staff(&[Permission::Orders]);
        assert!(clerk.may(Access::Permission(Permission::Orders)));
        assert!(!clerk.may(Access::Permission(Permission::Refunds)));
        assert!(!clerk.may(Access::Owner));
        let token = Actor::Token {
            id: Uuid::now_v7(),
            name: "erp".into(),
            permissions: [Permission::Catalog].into(),
        };
        assert!(token.holds(Permission::Catalog) && !token.holds(Permission::Orders));
        assert!(!token.may(Access::Owner), "tokens never have owner rights");
    }

    #[test]
    fn granting_never_escalates() {
        let manager = staff(&[Permission::Staff, Permission::Orders]);
        let target = Some((Uuid::now_v7(), Role::Staff));
        assert!(check_grant(&manager, target, &[Permission::Orders].into()).is_ok());
        assert_eq!(
            check_grant(&manager, target, &[Permission::Refunds].into()),
            Err(GrantRefused::NotHeld("refunds"))
        );
        assert_eq!(
            check_grant(
                &manager,
                Some((Uuid::now_v7(), Role::Owner)),
                &Permissions::new()
            ),
            Err(GrantRefused::Owner)
        );
        let own = Some((manager.id().unwrap(), Role::Staff));
        assert_eq!(
            check_grant(&manager, own, &[Permission::Orders].into()),
            Err(GrantRefused::Yourself)
        );
        assert!(check_grant(&Actor::AdminKey, target, &Permission::ALL.into()).is_ok());
    }

    #[test]
    fn permission_names_round_trip_and_unknown_names_are_named() {
        let all: Permissions = Permission::ALL.into();
        let names = permission_names(&all);
        assert_eq!(
            permissions_from_names(names.iter().map(String::as_str)),
            all
        );
        let err = parse_permissions("permissions", &["orders".into(), "root".into()]).unwrap_err();
        assert_eq!(err.field, "permissions[1]");
    }
}
