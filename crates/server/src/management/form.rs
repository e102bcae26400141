//! The fields of `application/x-www-form-urlencoded` bodies and query strings as the
//! Alibaba Cloud SDKs send them (keys flattened with dots, lists 1-based), read by
//! [`keygate_wire::form`].

use keygate_wire::form::parse_form;

use super::errors::ManagementError;

/// Decoded fields in wire order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormFields {
    pairs: Vec<(String, String)>,
}

impl FormFields {
    /// Parses a body or query string; `what` names it in errors ("form body", "query").
    pub fn parse(text: &str, what: &str) -> Result<FormFields, ManagementError> {
        let pairs = parse_form(text).map_err(|malformed| {
            ManagementError::invalid_parameter(format!(
                "The {what} is malformed at field {}: expected name=value with valid percent-encoding and UTF-8.",
                malformed.field
            ))
        })?;
        Ok(FormFields { pairs })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(name, _)| name == key).map(|(_, value)| value.as_str())
    }

    /// A non-empty value, trimmed.
    pub fn get_non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).map(str::trim).filter(|value| !value.is_empty())
    }

    /// Every value sent under `key`, in wire order (HTML checkboxes that share a name).
    pub fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs.iter().filter(move |(name, _)| name == key).map(|(_, value)| value.as_str())
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(name, _)| name.as_str())
    }

    /// The values of `prefix.1`, `prefix.2`, ... ordered by index; an index that is not a
    /// positive integer is an error.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, ManagementError> {
        let dotted = format!("{prefix}.");
        let mut indexed: Vec<(u32, String)> = Vec::new();
        for (name, value) in &self.pairs {
            if let Some(index_text) = name.strip_prefix(&dotted) {
                let index: u32 = index_text
                    .parse()
                    .ok()
                    .filter(|index| *index >= 1)
                    .ok_or_else(|| ManagementError::invalid_parameter(format!("'{name}' must end in a list index 1, 2, ...")))?;
                indexed.push((index, value.trim().to_string()));
            }
        }
        indexed.sort_by_key(|(index, _)| *index);
        Ok(indexed.into_iter().map(|(_, value)| value).collect())
    }

    /// An optional integer within `range`.
    pub fn integer(&self, key: &str, range: std::ops::RangeInclusive<i64>) -> Result<Option<i64>, ManagementError> {
        match self.get_non_empty(key) {
            None => Ok(None),
            Some(text) => match text.parse::<i64>() {
                Ok(value) if range.contains(&value) => Ok(Some(value)),
                _ => Err(ManagementError::invalid_parameter(format!(
                    "{key} must be an integer from {} to {}, got '{}'.",
                    range.start(),
                    range.end(),
                    shown(text)
                ))),
            },
        }
    }

    /// An optional boolean: `true`/`false` in any case (the Python SDK sends `True`), or 1/0.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, ManagementError> {
        match self.get_non_empty(key) {
            None => Ok(None),
            Some(text) => parse_boolean(text)
                .map(Some)
                .ok_or_else(|| ManagementError::invalid_parameter(format!("{key} must be true or false, got '{}'.", shown(text)))),
        }
    }
}

pub fn parse_boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// At most 60 characters of user input, for error messages; never an API key (a key
/// pasted into the wrong field must not come back in the answer or a proxy's log).
pub fn shown(text: &str) -> String {
    keygate_core::keys::shown_input(text, 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_sdk_form_and_lists_in_index_order() {
        let fields =
            FormFields::parse("auth.accessIps.2=192.168.1.1&auth.accessIps.1=10.0.0.0%2F8&description=demo+key+%E4%B8%AD", "form body")
                .unwrap();
        assert_eq!(fields.list("auth.accessIps").unwrap(), ["10.0.0.0/8", "192.168.1.1"]);
        assert_eq!(fields.get("description"), Some("demo key 中"));
    }

    #[test]
    fn refuses_malformed_encoding() {
        for bad in ["a=%zz", "a=%E4%B8", "=value", "a=%4"] {
            assert!(FormFields::parse(bad, "form body").is_err(), "{bad}");
        }
    }
}
