//! serde's JSON errors told back to a client without any of its input. serde writes the
//! offending value into its message (`invalid type: string "sk-...", expected a
//! sequence`), and a client that sends a key where a list belongs would find its key
//! echoed in the answer, the access log of every proxy on the way, and any log that keeps
//! error bodies. Here every quoted string is replaced by `"…"`, and a quoted name is kept
//! only when it is short and plainly a field name.

/// `error` as a message that names the problem and its place, and nothing the client sent.
pub fn describe_json_error(error: &serde_json::Error) -> String {
    redact_quoted(&error.to_string())
}

/// Longest field name that is repeated back (`unknown field `x``).
const MAX_SHOWN_NAME: usize = 40;

/// Whether a name between backticks may be repeated: short and plainly a field name.
fn looks_like_a_field(name: &str) -> bool {
    name.len() <= MAX_SHOWN_NAME
        && name.chars().all(|inner| inner.is_ascii_alphanumeric() || inner == '_' || inner == '.')
        && !name.starts_with("sk")
        && !name.starts_with("st")
}

/// The messages whose backticks hold a name the client chose.
const CLIENT_NAMED: [&str; 2] = ["unknown field `", "unknown variant `"];
/// What follows such a name: the type's own names, or that it has none.
const AFTER_CLIENT_NAME: [&str; 2] = ["`, expected ", "`, there are no "];

fn redact_quoted(message: &str) -> String {
    // serde writes an unknown field or variant between backticks as the client sent it,
    // backticks included, so the name ends at the last `, expected`/`, there are no`
    // (only the type's own names follow), not at the next backtick.
    for lead in CLIENT_NAMED {
        let Some(rest) = message.strip_prefix(lead) else { continue };
        let Some(end) = AFTER_CLIENT_NAME.iter().filter_map(|after| rest.rfind(after)).max() else { continue };
        let name = &rest[..end];
        return format!("{lead}{}`{}", if looks_like_a_field(name) { name } else { "…" }, redact_literals(&rest[end + 1..]));
    }
    redact_literals(message)
}

fn redact_literals(message: &str) -> String {
    let mut output = String::with_capacity(message.len());
    let mut characters = message.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '"' => {
                // A serde string literal, with backslash escapes inside.
                let mut escaped = false;
                for inner in characters.by_ref() {
                    match inner {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break,
                        _ => escaped = false,
                    }
                }
                output.push_str("\"…\"");
            }
            '`' => {
                let name: String = characters.by_ref().take_while(|inner| *inner != '`').collect();
                output.push('`');
                output.push_str(if looks_like_a_field(&name) { &name } else { "…" });
                output.push('`');
            }
            other => output.push(other),
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Report {
        keys: Vec<String>,
    }

    fn message_for(body: &str) -> String {
        describe_json_error(&serde_json::from_str::<Report>(body).unwrap_err())
    }

    #[test]
    fn a_value_sent_where_it_does_not_belong_is_not_echoed() {
        let secret = "sk-ws-AbCdEfGhIjKlMnOpQrStUvWxYz012345678901";
        let message = message_for(&format!(r#"{{"keys": "{secret}"}}"#));
        assert!(!message.contains("AbCdEf"), "{message}");
        assert!(message.contains("invalid type: string \"…\", expected a sequence"), "{message}");
        let message = message_for(&format!(r#"{{"{secret}": 1}}"#));
        assert!(!message.contains("AbCdEf"), "{message}");
        assert!(message.contains("expected `keys`"), "{message}");
        let message = message_for(r#"{"kees": []}"#);
        assert!(message.starts_with("unknown field `kees`, expected `keys`"), "{message}");
        let message = message_for(r#"{"keys": ["a\"b sk-ws-x"], "keys": 1}"#);
        assert!(!message.contains("sk-ws-x"), "{message}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Role {
        Admin,
        Viewer,
    }

    /// Found by the `json_errors` fuzz target (fuzz/corpus/json_errors/roles): serde
    /// repeats an unknown name between backticks with its own backticks unescaped, and
    /// the text after the first one inside was passed on as if it were serde's.
    #[test]
    fn a_backtick_inside_an_unknown_name_does_not_end_it() {
        let message = describe_json_error(&serde_json::from_str::<Vec<Role>>(r#"["admin", "x`, leaked secret, `y"]"#).unwrap_err());
        assert!(!message.contains("leaked") && !message.contains("secret"), "{message}");
        assert!(message.starts_with("unknown variant `…`, expected `admin` or `viewer`"), "{message}");
        let message = message_for(r#"{"a`sk-ws-leaked`, expected `b": 1}"#);
        assert!(!message.contains("leaked"), "{message}");
        assert!(message.starts_with("unknown field `…`, expected `keys`"), "{message}");
        let message = describe_json_error(&serde_json::from_str::<Vec<Role>>(r#"["admin", "owner"]"#).unwrap_err());
        assert!(message.starts_with("unknown variant `owner`, expected `admin` or `viewer`"), "{message}");
    }
}
