//! Model limits per workspace and model (UpdateModelLimits): each change merged into the
//! stored limit by `keygate_core::limits`' rules inside the transaction, every item of a
//! batch or none, audited, and published to the registry with the workspace's grants so
//! that the gateway (of every node, through the change feed) counts calls against it.

use keygate_core::limits::{apply_change, LimitChange, LimitValues};

use crate::audit::{write_audit, AuditContext};
use crate::database::{params, Row, SqlValue, Transaction};
use crate::{Store, StoreError};

fn count(row: &Row, column: &str) -> Result<Option<u64>, StoreError> {
    row.opt_i64(column)?.map(|value| u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative {column}")))).transpose()
}

fn limit_from_row(row: &Row) -> Result<(String, LimitValues), StoreError> {
    Ok((
        row.string("model")?,
        LimitValues {
            request_limit: count(row, "request_limit")?,
            request_limit_period: count(row, "request_limit_period")?,
            usage_limit: count(row, "usage_limit")?,
            usage_limit_period: count(row, "usage_limit_period")?,
        },
    ))
}

/// A workspace's limits, by model name (`$1`: the workspace).
pub(crate) const LIMITS_OF_WORKSPACE: &str =
    "SELECT model, request_limit, request_limit_period, usage_limit, usage_limit_period FROM model_limits WHERE workspace_id = $1 ORDER BY model";

/// The limits in the rows of [`LIMITS_OF_WORKSPACE`].
pub(crate) fn limits_from_rows(rows: &[Row]) -> Result<Vec<(String, LimitValues)>, StoreError> {
    rows.iter().map(limit_from_row).collect()
}

/// The limits of a workspace, by model name, in `transaction`.
pub(crate) async fn limits_of(transaction: &mut Transaction, workspace_id: &str) -> Result<Vec<(String, LimitValues)>, StoreError> {
    limits_from_rows(&transaction.fetch_all(LIMITS_OF_WORKSPACE, &params![workspace_id]).await?)
}

fn sql_count(value: Option<u64>) -> Result<SqlValue, StoreError> {
    let value = value.map(i64::try_from).transpose().map_err(|_| StoreError::InvalidLimit("a limit is too large.".into()))?;
    Ok(SqlValue::from(value))
}

impl Store {
    /// The limits a workspace sets, by model name.
    pub async fn list_model_limits(&self, workspace_id: &str) -> Result<Vec<(String, LimitValues)>, StoreError> {
        let rows = self.database.fetch_all(LIMITS_OF_WORKSPACE, &params![workspace_id]).await?;
        limits_from_rows(&rows)
    }

    /// Applies `changes` (model, change) in order to a workspace's limits: all of them, or
    /// none when one leaves a limit that cannot be stored ([`StoreError::InvalidLimit`],
    /// its message prefixed with the item's position `workspaceLimits[i]`).
    pub async fn update_model_limits(
        &self,
        context: &AuditContext,
        workspace_id: &str,
        changes: &[(String, LimitChange)],
    ) -> Result<(), StoreError> {
        let mut transaction = self.database.begin_change().await?;
        let mut current = limits_of(&mut transaction, workspace_id).await?;
        let mut details = Vec::with_capacity(changes.len());
        for (index, (model, change)) in changes.iter().enumerate() {
            let existing = current.iter().find(|(name, _)| name == model).map(|(_, values)| *values);
            let merged = apply_change(existing, change)
                .map_err(|error| StoreError::InvalidLimit(format!("workspaceLimits[{index}] ({model}): {error}")))?;
            current.retain(|(name, _)| name != model);
            match merged {
                None => {
                    transaction
                        .execute("DELETE FROM model_limits WHERE workspace_id = $1 AND model = $2", &params![workspace_id, model])
                        .await?;
                    details.push(format!("{model}:none"));
                }
                Some(values) => {
                    let row = [
                        SqlValue::from(workspace_id),
                        SqlValue::from(model),
                        sql_count(values.request_limit)?,
                        sql_count(values.request_limit_period)?,
                        sql_count(values.usage_limit)?,
                        sql_count(values.usage_limit_period)?,
                    ];
                    transaction
                        .execute(
                            "INSERT INTO model_limits (workspace_id, model, request_limit, request_limit_period, usage_limit, usage_limit_period) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, model) DO UPDATE SET request_limit = excluded.request_limit, request_limit_period = excluded.request_limit_period, usage_limit = excluded.usage_limit, usage_limit_period = excluded.usage_limit_period",
                            &row,
                        )
                        .await?;
                    let shown = |value: Option<u64>| value.map_or_else(|| "-".to_string(), |value| value.to_string());
                    details.push(format!(
                        "{model}:requests={}/{}s,tokens={}/{}s",
                        shown(values.request_limit),
                        shown(values.request_limit_period),
                        shown(values.usage_limit),
                        shown(values.usage_limit_period)
                    ));
                    current.push((model.clone(), values));
                }
            }
        }
        write_audit(&mut transaction, context, "Workspace.UpdateModelLimits", &format!("workspace:{workspace_id}"), &details.join(","))
            .await?;
        self.commit_workspace_change(transaction, context.at, workspace_id).await?;
        Ok(())
    }
}
