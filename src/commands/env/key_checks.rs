//! What can be told about a `DASHSCOPE_API_KEY` value without a server: copy-and-paste
//! damage (stray quotes, spaces, a line break, a `Bearer ` prefix) and the key's format,
//! including a secure key's checksum and a temporary key's expiry as written in the token.

use keygate_core::keys::{mask_key, parse_permanent_key, KeyFormat, KeyParseError, PLAN_PREFIX, SECURE_PREFIX, TEMPORARY_PREFIX};
use keygate_core::temporary_keys::unverified_expiry;

/// Damage a value picked up on its way into the variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueDamage {
    /// `'sk-...'` or `"sk-..."`: the quotes became part of the value.
    Quotes,
    /// Spaces or tabs before or after the key.
    Whitespace,
    /// A line break (often from `$(cat file)` of a file saved with CRLF, or a paste).
    LineBreak,
    /// `Bearer sk-...`: the header's scheme was copied too.
    BearerPrefix,
    /// `DASHSCOPE_API_KEY=sk-...`: the whole assignment became the value.
    VariableName,
}

impl ValueDamage {
    /// A stable name for `--json`.
    pub fn cause(self) -> &'static str {
        match self {
            ValueDamage::Quotes => "value_has_quotes",
            ValueDamage::Whitespace => "value_has_whitespace",
            ValueDamage::LineBreak => "value_has_line_break",
            ValueDamage::BearerPrefix => "value_has_bearer_prefix",
            ValueDamage::VariableName => "value_has_variable_name",
        }
    }

    pub fn explanation(self) -> &'static str {
        match self {
            ValueDamage::Quotes => "the value is wrapped in quote characters, which became part of it (quoted twice, or quoted in a file that does not strip quotes such as a systemd EnvironmentFile with nested quotes)",
            ValueDamage::Whitespace => "the value has spaces or tabs before or after the key",
            ValueDamage::LineBreak => "the value contains a line break (a file saved with Windows line endings, or a paste that took the newline)",
            ValueDamage::BearerPrefix => "the value starts with \"Bearer \": the SDK adds that itself",
            ValueDamage::VariableName => "the value starts with \"DASHSCOPE_API_KEY=\": the whole assignment was pasted as the value",
        }
    }
}

/// The damage found in `raw`, and the value without it.
pub fn value_damage(raw: &str) -> (Vec<ValueDamage>, String) {
    let mut damage = Vec::new();
    if raw.contains(['\n', '\r']) {
        damage.push(ValueDamage::LineBreak);
    }
    let mut value = raw.trim_matches(['\n', '\r']);
    if value.trim() != value {
        damage.push(ValueDamage::Whitespace);
        value = value.trim();
    }
    for _ in 0..2 {
        let quoted =
            value.len() >= 2 && ((value.starts_with('\'') && value.ends_with('\'')) || (value.starts_with('"') && value.ends_with('"')));
        if !quoted {
            break;
        }
        if !damage.contains(&ValueDamage::Quotes) {
            damage.push(ValueDamage::Quotes);
        }
        value = value[1..value.len() - 1].trim();
    }
    if let Some(rest) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
        damage.push(ValueDamage::BearerPrefix);
        value = rest.trim();
    }
    if let Some(rest) = value.strip_prefix("DASHSCOPE_API_KEY=") {
        damage.push(ValueDamage::VariableName);
        value = rest.trim().trim_matches(['\'', '"']);
    }
    (damage, value.to_string())
}

/// The format of a (clean) value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyShape {
    /// A permanent key that parses: secure, plan, classic or legacy `sk-`.
    Permanent(KeyFormat),
    /// `sk-ws-`/`sk-sp-` with the right length and alphabet but a checksum that fails:
    /// a character was changed, usually while copying.
    BadChecksum,
    /// An `st-` temporary key, with the expiry its payload states (not verified).
    Temporary { expires_at: Option<i64> },
    /// Nothing keygate issues.
    Unknown,
}

pub fn key_shape(value: &str) -> KeyShape {
    if value.starts_with(TEMPORARY_PREFIX) {
        return match unverified_expiry(value) {
            Some(expires_at) => KeyShape::Temporary { expires_at: Some(expires_at) },
            None => KeyShape::Unknown,
        };
    }
    match parse_permanent_key(value) {
        Ok(parsed) => KeyShape::Permanent(parsed.format),
        Err(KeyParseError::BadChecksum) => KeyShape::BadChecksum,
        Err(_) => KeyShape::Unknown,
    }
}

impl KeyShape {
    /// "secure key", "classic key", ...: for messages.
    pub fn description(self) -> &'static str {
        match self {
            KeyShape::Permanent(KeyFormat::Secure) => "secure key (sk-ws-, checksum holds)",
            KeyShape::Permanent(KeyFormat::Plan) => "plan key (sk-sp-, checksum holds)",
            KeyShape::Permanent(KeyFormat::Classic) => "classic key (sk- + 32 hex)",
            KeyShape::Permanent(KeyFormat::Legacy) => "legacy sk- key",
            KeyShape::Permanent(KeyFormat::Temporary) | KeyShape::Temporary { .. } => "temporary key (st-)",
            KeyShape::BadChecksum => "secure-looking key whose checksum fails",
            KeyShape::Unknown => "value of no known key format",
        }
    }

    /// The stable format name for `--json`.
    pub fn format_name(self) -> &'static str {
        match self {
            KeyShape::Permanent(format) => format.as_str(),
            KeyShape::Temporary { .. } => "temporary",
            KeyShape::BadChecksum => "bad_checksum",
            KeyShape::Unknown => "unknown",
        }
    }
}

/// The masked form of any value, for messages: a key's usual mask; for values too short to
/// mask usefully, only their length.
pub fn masked_value(value: &str) -> String {
    if value.len() < 12 {
        return format!("<{} characters>", value.chars().count());
    }
    mask_key(value)
}

/// True for the prefixes of keys that carry a checksum.
pub fn has_checksum_prefix(value: &str) -> bool {
    value.starts_with(SECURE_PREFIX) || value.starts_with(PLAN_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keygate_core::keys::{expose, generate_key};

    fn secure() -> String {
        expose(&generate_key(KeyFormat::Secure).plaintext).to_string()
    }

    #[test]
    fn damage_is_named_and_removed() {
        let key = secure();
        let cases: Vec<(String, Vec<ValueDamage>)> = vec![
            (key.clone(), vec![]),
            (format!("'{key}'"), vec![ValueDamage::Quotes]),
            (format!("\"'{key}'\""), vec![ValueDamage::Quotes]),
            (format!(" {key}\t"), vec![ValueDamage::Whitespace]),
            (format!("{key}\r\n"), vec![ValueDamage::LineBreak]),
            (format!("Bearer {key}"), vec![ValueDamage::BearerPrefix]),
            (format!("DASHSCOPE_API_KEY='{key}'"), vec![ValueDamage::VariableName]),
        ];
        for (raw, expected) in cases {
            let (damage, clean) = value_damage(&raw);
            assert_eq!((damage, clean.as_str()), (expected, key.as_str()), "{raw:?}");
        }
    }

    #[test]
    fn shapes_follow_the_key_formats() {
        let key = secure();
        assert_eq!(key_shape(&key), KeyShape::Permanent(KeyFormat::Secure));
        let mut changed = key.clone();
        let last = changed.pop().unwrap();
        changed.push(if last == 'a' { 'b' } else { 'a' });
        assert_eq!(key_shape(&changed), KeyShape::BadChecksum);
        assert_eq!(key_shape("sk-0123456789abcdef0123456789abcdef"), KeyShape::Permanent(KeyFormat::Classic));
        assert_eq!(key_shape("hello"), KeyShape::Unknown);
        assert_eq!(key_shape("st-nonsense"), KeyShape::Unknown);
        assert_eq!(masked_value("short"), "<5 characters>");
        assert!(has_checksum_prefix(&key) && !has_checksum_prefix("sk-abc"));
    }
}
