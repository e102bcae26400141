//! Regions as data: each region's key limit, what the limit is counted per, whether it
//! supports custom permissions and disable/reset, and the format of its new keys.
//!
//! No code asks `if region == "us-east-1"`: it asks the region's policy.

use crate::keys::KeyFormat;

/// A region id such as `ap-southeast-1`: lowercase letters, digits and dashes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionId(String);

impl RegionId {
    pub fn parse(text: &str) -> Result<RegionId, RegionError> {
        let well_formed = (2..=32).contains(&text.len())
            && text.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
            && !text.starts_with('-')
            && !text.ends_with('-');
        if well_formed {
            Ok(RegionId(text.to_string()))
        } else {
            Err(RegionError::Malformed(text.chars().take(40).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RegionId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    #[error("'{0}' is not a region id")]
    Malformed(String),
    #[error("region '{0}' is not served here")]
    Unknown(String),
}

/// Whose keys a region's limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// All keys of the account, whoever created them.
    Account,
    /// Each owner separately: the account's own keys, and each RAM user's keys.
    Creator,
}

/// Everything that differs between regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionPolicy {
    pub id: RegionId,
    pub name: String,
    /// Keys that are not deleted (disabled ones count) per [`LimitScope`].
    pub key_limit: u32,
    pub limit_scope: LimitScope,
    pub custom_permissions: bool,
    pub disable_and_reset: bool,
    pub new_key_format: KeyFormat,
    /// Workspaces per account in this region, the default one included.
    pub workspace_limit: u32,
}

/// The regions a deployment knows, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionTable {
    regions: Vec<RegionPolicy>,
}

fn region(id: &str, name: &str, key_limit: u32, upgraded: bool) -> RegionPolicy {
    RegionPolicy {
        id: RegionId(id.to_string()),
        name: name.to_string(),
        key_limit,
        limit_scope: if upgraded { LimitScope::Account } else { LimitScope::Creator },
        custom_permissions: upgraded,
        disable_and_reset: upgraded,
        new_key_format: if upgraded { KeyFormat::Secure } else { KeyFormat::Classic },
        workspace_limit: 20,
    }
}

impl RegionTable {
    /// The table of docs/CONTRACT.md#regions.
    pub fn model_studio_default() -> RegionTable {
        RegionTable {
            regions: vec![
                region("cn-beijing", "China (Beijing)", 50, true),
                region("ap-southeast-1", "Singapore", 50, true),
                region("ap-northeast-1", "Japan (Tokyo)", 50, true),
                region("cn-hongkong", "China (Hong Kong)", 50, true),
                region("eu-central-1", "Germany (Frankfurt)", 50, true),
                region("us-east-1", "US (Virginia)", 20, false),
            ],
        }
    }

    pub fn from_policies(regions: Vec<RegionPolicy>) -> RegionTable {
        RegionTable { regions }
    }

    pub fn get(&self, id: &str) -> Option<&RegionPolicy> {
        self.regions.iter().find(|policy| policy.id.as_str() == id)
    }

    pub fn require(&self, id: &str) -> Result<&RegionPolicy, RegionError> {
        self.get(id).ok_or_else(|| RegionError::Unknown(id.chars().take(40).collect()))
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut RegionPolicy> {
        self.regions.iter_mut().find(|policy| policy.id.as_str() == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &RegionPolicy> {
        self.regions.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_matches_the_contract() {
        let table = RegionTable::model_studio_default();
        let singapore = table.get("ap-southeast-1").unwrap();
        assert_eq!((singapore.key_limit, singapore.limit_scope), (50, LimitScope::Account));
        assert!(singapore.custom_permissions && singapore.disable_and_reset);
        let virginia = table.get("us-east-1").unwrap();
        assert_eq!((virginia.key_limit, virginia.limit_scope), (20, LimitScope::Creator));
        assert!(!virginia.custom_permissions && !virginia.disable_and_reset);
        assert_eq!(virginia.new_key_format, KeyFormat::Classic);
        assert_eq!(table.iter().count(), 6);
    }

    #[test]
    fn region_ids_are_checked() {
        assert!(RegionId::parse("eu-central-1").is_ok());
        assert!(RegionId::parse("EU").is_err());
        assert!(RegionId::parse("a b").is_err());
    }
}
