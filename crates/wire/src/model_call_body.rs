//! What the gateway reads from a model call's JSON body before it decides: the `model`
//! member and whether the client asked for a stream, taken from the top level of the
//! object in one pass, without building a tree of the rest.
//!
//! The body is authorized on the model it names and then forwarded as the client sent
//! it, so the model keygate reads must be the model every provider reads. A body with two
//! top-level `model` members (or `"mod\u0065l"`, which is the same name) is refused: one
//! JSON parser keeps the first, another the last, and a key limited to one model could
//! otherwise call another.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// The facts of a model call's body that the gateway needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelCallBody {
    /// The top-level `model`, when it is a string.
    pub model: Option<String>,
    /// The top-level `stream` is `true`.
    pub stream: bool,
}

/// Why a body is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelCallBodyError {
    #[error("The request body must be a JSON object.")]
    NotAnObject,
    #[error("The request body names \"model\" more than once.")]
    RepeatedModel,
}

/// Reads `body`: a JSON object, with at most one top-level `model`.
pub fn read_model_call_body(body: &[u8]) -> Result<ModelCallBody, ModelCallBodyError> {
    // serde_json checks UTF-8 only in the strings it decodes, not in those it skips. A
    // provider that decodes a skipped one leniently (an overlong `"`, say) would see
    // members keygate did not, so a body is read only when all of it is UTF-8.
    let text = std::str::from_utf8(body).map_err(|_| ModelCallBodyError::NotAnObject)?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let read = deserializer.deserialize_map(BodyVisitor).map_err(|error| {
        if error.to_string().starts_with(REPEATED_MODEL) {
            ModelCallBodyError::RepeatedModel
        } else {
            ModelCallBodyError::NotAnObject
        }
    })?;
    deserializer.end().map_err(|_| ModelCallBodyError::NotAnObject)?;
    Ok(read)
}

/// The custom error text that tells a repeated `model` from any other parse error.
const REPEATED_MODEL: &str = "keygate: repeated model";

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = ModelCallBody;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ModelCallBody, A::Error> {
        let mut read = ModelCallBody::default();
        let mut model_seen = false;
        while let Some(member) = map.next_key_seed(MemberName)? {
            match member {
                Member::Model => {
                    if model_seen {
                        return Err(de::Error::custom(REPEATED_MODEL));
                    }
                    model_seen = true;
                    read.model = map.next_value::<MaybeString>()?.0;
                }
                Member::Stream => read.stream = map.next_value::<MaybeTrue>()?.0,
                Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(read)
    }
}

/// The top-level member names the gateway reads; every other name is skipped without
/// being copied.
enum Member {
    Model,
    Stream,
    Other,
}

struct MemberName;

impl<'de> DeserializeSeed<'de> for MemberName {
    type Value = Member;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Member, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for MemberName {
    type Value = Member;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a member name")
    }

    // serde_json hands over the name with its escapes already decoded, so
    // `"mod\u0065l"` arrives here as `model`.
    fn visit_str<E: de::Error>(self, name: &str) -> Result<Member, E> {
        Ok(match name {
            "model" => Member::Model,
            "stream" => Member::Stream,
            _ => Member::Other,
        })
    }
}

/// A value that counts only when it is a string.
struct MaybeString(Option<String>);

impl<'de> de::Deserialize<'de> for MaybeString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<MaybeString, D::Error> {
        struct StringOrAnything;
        impl<'de> Visitor<'de> for StringOrAnything {
            type Value = MaybeString;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(text.to_string())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeString, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeString, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
        }
        deserializer.deserialize_any(StringOrAnything)
    }
}

/// A value that counts only when it is `true`.
struct MaybeTrue(bool);

impl<'de> de::Deserialize<'de> for MaybeTrue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<MaybeTrue, D::Error> {
        struct TrueOrAnything;
        impl<'de> Visitor<'de> for TrueOrAnything {
            type Value = MaybeTrue;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<MaybeTrue, E> {
                Ok(MaybeTrue(value))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<MaybeTrue, E> {
                Ok(MaybeTrue(false))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<MaybeTrue, E> {
                Ok(MaybeTrue(false))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<MaybeTrue, E> {
                Ok(MaybeTrue(false))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeTrue, E> {
                Ok(MaybeTrue(false))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeTrue, E> {
                Ok(MaybeTrue(false))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeTrue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeTrue(false))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeTrue, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeTrue(false))
            }
        }
        deserializer.deserialize_any(TrueOrAnything)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> Result<ModelCallBody, ModelCallBodyError> {
        read_model_call_body(body.as_bytes())
    }

    #[test]
    fn the_model_and_the_stream_flag_are_read_from_the_top_level() {
        assert_eq!(
            read(r#"{"messages":[{"role":"user","content":"hi","model":"nested"}],"model":"qwen-plus","stream":true}"#),
            Ok(ModelCallBody { model: Some("qwen-plus".into()), stream: true })
        );
        assert_eq!(read(r#"{"model":"demo-echo"}"#), Ok(ModelCallBody { model: Some("demo-echo".into()), stream: false }));
        assert_eq!(read(r#"{"stream":"yes","model":7}"#), Ok(ModelCallBody { model: None, stream: false }));
        assert_eq!(read("{}"), Ok(ModelCallBody::default()));
        assert_eq!(read(" {\"model\" : \"a\\\"b\"} \n"), Ok(ModelCallBody { model: Some("a\"b".into()), stream: false }));
    }

    #[test]
    fn a_repeated_model_is_refused_in_every_spelling() {
        for body in [
            r#"{"model":"qwen-plus","model":"qwen-max"}"#,
            r#"{"model":"qwen-plus","input":{},"mod\u0065l":"qwen-max"}"#,
            r#"{"model":null,"model":"qwen-max"}"#,
        ] {
            assert_eq!(read(body), Err(ModelCallBodyError::RepeatedModel), "{body}");
        }
    }

    /// Found by the `model_call_body` fuzz target (fuzz/corpus/model_call_body/
    /// invalid_utf8_skipped): bytes that are not UTF-8 inside a skipped value were read.
    #[test]
    fn a_body_that_is_not_utf8_anywhere_is_refused() {
        for body in [
            &b"{\"model\":\"qwen-plus\",\"parameters\":{\"\xf2esult\":1}}"[..],
            b"{\"model\":\"qwen-plus\",\"input\":\"\xc0\xa2,\"model\":\"qwen-max\"}",
            b"{\"model\":\"qwen-plus\"}\xff",
        ] {
            assert_eq!(read_model_call_body(body), Err(ModelCallBodyError::NotAnObject), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn anything_but_one_json_object_is_refused() {
        for body in ["", "[]", "\"model\"", "null", "{", r#"{"model":"a"} {}"#, r#"{"model":"a",}"#, "{\"a\":\u{1}}", "\u{feff}{}"] {
            assert_eq!(read(body), Err(ModelCallBodyError::NotAnObject), "{body:?}");
        }
    }
}
