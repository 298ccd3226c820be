//! PostgreSQL storage of staff members, staff sessions, API tokens, retired admin keys and the
//! audit log (migration 0110). Every statement runs in a transaction scoped to the tenant by
//! row-level security, and names the tenant too.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;

use super::postgres::{Database, tenant_transaction};
use crate::domain::{
    ports::StoreError,
    staff::{
        ApiToken, AuditEntry, Permissions, Role, StaffMember, permission_names,
        permissions_from_names,
    },
};

fn pg_err(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::caused_by("postgres", e)
}

/// The email already belongs to a staff member who accepted their invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadyStaff;

/// An invitation to store: who, with which role and permissions, the token's hash.
pub struct NewInvitation<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub permissions: &'a Permissions,
    pub invitation_hash: &'a str,
    pub expires_at: DateTime<Utc>,
    pub invited_by: &'a str,
}

/// An audit line to append.
pub struct NewAuditEntry<'a> {
    pub actor_kind: &'a str,
    pub actor_id: Option<Uuid>,
    pub actor_label: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub outcome: u16,
    pub client_ip: &'a str,
}

/// Staff storage of one tenant.
#[derive(Clone)]
pub struct PgStaff {
    pub db: Arc<Database>,
    pub tenant: Arc<str>,
}

const MEMBER_COLUMNS: &str = "id, email, name, role, permissions, password_hash IS NOT NULL, invitation_expires_at, created_at, password_hash";

fn member(row: &Row) -> StaffMember {
    let perms: Vec<String> = row.get(4);
    let role: String = row.get(3);
    let accepted: bool = row.get(5);
    StaffMember {
        id: row.get(0),
        email: row.get(1),
        name: row.get(2),
        role: Role::parse(&role).unwrap_or(Role::Staff),
        permissions: permissions_from_names(perms.iter().map(String::as_str)),
        accepted,
        invitation_expires_at: if accepted { None } else { row.get(6) },
        created_at: row.get(7),
    }
}

const TOKEN_COLUMNS: &str =
    "id, name, permissions, created_by, created_at, rotated_at, last_used_at";

fn token(row: &Row) -> ApiToken {
    let perms: Vec<String> = row.get(2);
    ApiToken {
        id: row.get(0),
        name: row.get(1),
        permissions: permissions_from_names(perms.iter().map(String::as_str)),
        created_by: row.get(3),
        created_at: row.get(4),
        rotated_at: row.get(5),
        last_used_at: row.get(6),
    }
}

impl PgStaff {
    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let stmt = tx.prepare_cached(sql).await.map_err(pg_err)?;
        let rows = tx.query(&stmt, params).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(rows)
    }

    async fn one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(sql, params).await?.into_iter().next())
    }

    pub async fn members(&self) -> Result<Vec<StaffMember>, StoreError> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM staff_members WHERE tenant_id = $1 ORDER BY role, email"
        );
        Ok(self
            .rows(&sql, &[&&*self.tenant])
            .await?
            .iter()
            .map(member)
            .collect())
    }

    pub async fn member(&self, id: Uuid) -> Result<Option<StaffMember>, StoreError> {
        let sql =
            format!("SELECT {MEMBER_COLUMNS} FROM staff_members WHERE tenant_id = $1 AND id = $2");
        Ok(self
            .one(&sql, &[&&*self.tenant, &id])
            .await?
            .map(|r| member(&r)))
    }

    /// The member with this email and their password hash (absent until they accepted).
    pub async fn by_email(
        &self,
        email: &str,
    ) -> Result<Option<(StaffMember, Option<String>)>, StoreError> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM staff_members WHERE tenant_id = $1 AND email = $2"
        );
        Ok(self
            .one(&sql, &[&&*self.tenant, &email])
            .await?
            .map(|r| (member(&r), r.get(8))))
    }

    /// Whether the store has an owner who accepted their invitation.
    pub async fn has_active_owner(&self) -> Result<bool, StoreError> {
        let row = self
            .one(
                "SELECT 1 FROM staff_members WHERE tenant_id = $1 AND role = 'owner' AND password_hash IS NOT NULL LIMIT 1",
                &[&&*self.tenant],
            )
            .await?;
        Ok(row.is_some())
    }

    /// Invites someone, or renews the invitation (new token, role and permissions) of someone
    /// who has not accepted yet. Refused when the email belongs to an accepted member.
    pub async fn invite(
        &self,
        inv: NewInvitation<'_>,
    ) -> Result<Result<StaffMember, AlreadyStaff>, StoreError> {
        let sql = format!(
            "INSERT INTO staff_members (tenant_id, id, email, name, role, permissions, invitation_hash, invitation_expires_at, invited_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id, email) DO UPDATE SET
                 name = EXCLUDED.name, role = EXCLUDED.role, permissions = EXCLUDED.permissions,
                 invitation_hash = EXCLUDED.invitation_hash, invitation_expires_at = EXCLUDED.invitation_expires_at,
                 invited_by = EXCLUDED.invited_by, updated_at = now()
             WHERE staff_members.password_hash IS NULL
             RETURNING {MEMBER_COLUMNS}"
        );
        let names = permission_names(inv.permissions);
        let row = self
            .one(
                &sql,
                &[
                    &&*self.tenant,
                    &Uuid::now_v7(),
                    &inv.email,
                    &inv.name,
                    &inv.role.as_str(),
                    &names,
                    &inv.invitation_hash,
                    &inv.expires_at,
                    &inv.invited_by,
                ],
            )
            .await?;
        Ok(row.map(|r| member(&r)).ok_or(AlreadyStaff))
    }

    /// The pending member an unexpired invitation token (by hash) belongs to.
    pub async fn by_invitation(&self, hash: &str) -> Result<Option<StaffMember>, StoreError> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM staff_members
             WHERE tenant_id = $1 AND invitation_hash = $2 AND invitation_expires_at > now() AND password_hash IS NULL"
        );
        Ok(self
            .one(&sql, &[&&*self.tenant, &hash])
            .await?
            .map(|r| member(&r)))
    }

    /// Uses the invitation: sets the password and name and clears the token in one statement,
    /// so a token works once even when two tabs submit it at the same time.
    pub async fn accept(
        &self,
        invitation_hash: &str,
        password_hash: &str,
        name: &str,
    ) -> Result<Option<StaffMember>, StoreError> {
        let sql = format!(
            "UPDATE staff_members SET password_hash = $3, name = $4, invitation_hash = NULL,
                 invitation_expires_at = NULL, accepted_at = now(), updated_at = now()
             WHERE tenant_id = $1 AND invitation_hash = $2 AND invitation_expires_at > now() AND password_hash IS NULL
             RETURNING {MEMBER_COLUMNS}"
        );
        Ok(self
            .one(
                &sql,
                &[&&*self.tenant, &invitation_hash, &password_hash, &name],
            )
            .await?
            .map(|r| member(&r)))
    }

    pub async fn set_permissions(
        &self,
        id: Uuid,
        permissions: &Permissions,
    ) -> Result<Option<StaffMember>, StoreError> {
        let sql = format!(
            "UPDATE staff_members SET permissions = $3, updated_at = now()
             WHERE tenant_id = $1 AND id = $2 AND role = 'staff' RETURNING {MEMBER_COLUMNS}"
        );
        let names = permission_names(permissions);
        Ok(self
            .one(&sql, &[&&*self.tenant, &id, &names])
            .await?
            .map(|r| member(&r)))
    }

    /// Removes a staff member (never an owner); their sessions go with them.
    pub async fn remove(&self, id: Uuid) -> Result<bool, StoreError> {
        let row = self
            .one(
                "DELETE FROM staff_members WHERE tenant_id = $1 AND id = $2 AND role = 'staff' RETURNING id",
                &[&&*self.tenant, &id],
            )
            .await?;
        Ok(row.is_some())
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        staff_id: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // The member's expired sessions go as a new one starts: the table stays bounded
        // without a sweeper.
        self.rows(
            "WITH expired AS (DELETE FROM staff_sessions
                              WHERE tenant_id = $1 AND staff_id = $3 AND expires_at <= now())
             INSERT INTO staff_sessions (tenant_id, token_hash, staff_id, expires_at) VALUES ($1, $2, $3, $4)",
            &[&&*self.tenant, &token_hash, &staff_id, &expires_at],
        )
        .await?;
        Ok(())
    }

    /// The member of an unexpired session, read with their current permissions (a change
    /// takes effect on their next request).
    pub async fn session(&self, token_hash: &str) -> Result<Option<StaffMember>, StoreError> {
        let columns = MEMBER_COLUMNS
            .split(", ")
            .map(|c| format!("m.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns} FROM staff_sessions s JOIN staff_members m
                 ON m.tenant_id = s.tenant_id AND m.id = s.staff_id
             WHERE s.tenant_id = $1 AND s.token_hash = $2 AND s.expires_at > now() AND m.password_hash IS NOT NULL"
        );
        Ok(self
            .one(&sql, &[&&*self.tenant, &token_hash])
            .await?
            .map(|r| member(&r)))
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.rows(
            "DELETE FROM staff_sessions WHERE tenant_id = $1 AND token_hash = $2",
            &[&&*self.tenant, &token_hash],
        )
        .await?;
        Ok(())
    }

    pub async fn create_token(
        &self,
        name: &str,
        token_hash: &str,
        permissions: &Permissions,
        created_by: &str,
    ) -> Result<ApiToken, StoreError> {
        let sql = format!(
            "INSERT INTO api_tokens (tenant_id, id, name, token_hash, permissions, created_by)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
        );
        let names = permission_names(permissions);
        let row = self
            .one(
                &sql,
                &[
                    &&*self.tenant,
                    &Uuid::now_v7(),
                    &name,
                    &token_hash,
                    &names,
                    &created_by,
                ],
            )
            .await?
            .ok_or_else(|| StoreError::new("postgres", "INSERT ... RETURNING gave no row"))?;
        Ok(token(&row))
    }

    pub async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE tenant_id = $1 ORDER BY created_at"
        );
        Ok(self
            .rows(&sql, &[&&*self.tenant])
            .await?
            .iter()
            .map(token)
            .collect())
    }

    /// The token with this hash, noting that it was used (at most once a minute per token).
    pub async fn use_token(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        let sql = format!(
            "WITH found AS (SELECT id FROM api_tokens WHERE tenant_id = $1 AND token_hash = $2),
                  touched AS (UPDATE api_tokens SET last_used_at = now()
                              WHERE tenant_id = $1 AND id IN (SELECT id FROM found)
                                AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute'))
             SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE tenant_id = $1 AND id IN (SELECT id FROM found)"
        );
        Ok(self
            .one(&sql, &[&&*self.tenant, &token_hash])
            .await?
            .map(|r| token(&r)))
    }

    /// Gives the token a new secret; the old one stops working at once.
    pub async fn rotate_token(
        &self,
        id: Uuid,
        token_hash: &str,
    ) -> Result<Option<ApiToken>, StoreError> {
        let sql = format!(
            "UPDATE api_tokens SET token_hash = $3, rotated_at = now()
             WHERE tenant_id = $1 AND id = $2 RETURNING {TOKEN_COLUMNS}"
        );
        Ok(self
            .one(&sql, &[&&*self.tenant, &id, &token_hash])
            .await?
            .map(|r| token(&r)))
    }

    pub async fn delete_token(&self, id: Uuid) -> Result<bool, StoreError> {
        let row = self
            .one(
                "DELETE FROM api_tokens WHERE tenant_id = $1 AND id = $2 RETURNING id",
                &[&&*self.tenant, &id],
            )
            .await?;
        Ok(row.is_some())
    }

    pub async fn retire_admin_key(&self, key_hash: &str, by: &str) -> Result<(), StoreError> {
        self.rows(
            "INSERT INTO retired_admin_keys (tenant_id, key_hash, retired_by) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&&*self.tenant, &key_hash, &by],
        )
        .await?;
        Ok(())
    }

    pub async fn admin_key_retired(&self, key_hash: &str) -> Result<bool, StoreError> {
        let row = self
            .one(
                "SELECT 1 FROM retired_admin_keys WHERE tenant_id = $1 AND key_hash = $2",
                &[&&*self.tenant, &key_hash],
            )
            .await?;
        Ok(row.is_some())
    }

    pub async fn append_audit(&self, e: NewAuditEntry<'_>) -> Result<(), StoreError> {
        let outcome = i16::try_from(e.outcome).unwrap_or(i16::MAX);
        self.rows(
            "INSERT INTO audit_log (tenant_id, id, actor_kind, actor_id, actor_label, action, target, outcome, client_ip)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &&*self.tenant,
                &Uuid::now_v7(),
                &e.actor_kind,
                &e.actor_id,
                &e.actor_label,
                &e.action,
                &e.target,
                &outcome,
                &e.client_ip,
            ],
        )
        .await?;
        Ok(())
    }

    /// Audit lines newest first, before the entry `before` (ids are time-ordered UUIDv7).
    pub async fn audit(
        &self,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self
            .rows(
                "SELECT id, at, actor_kind, actor_id, actor_label, action, target, outcome, client_ip
                 FROM audit_log WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2)
                 ORDER BY id DESC LIMIT $3",
                &[&&*self.tenant, &before, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                id: r.get(0),
                at: r.get(1),
                actor_kind: r.get(2),
                actor_id: r.get(3),
                actor_label: r.get(4),
                action: r.get(5),
                target: r.get(6),
                outcome: u16::try_from(r.get::<_, i16>(7)).unwrap_or(0),
                client_ip: r.get(8),
            })
            .collect())
    }
}
