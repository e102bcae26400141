//! The token counts of a provider's `usage` object, read from the bytes of its answer as
//! the gateway relays it (token accounting, docs/CONTRACT.md#usage).
//!
//! serde_json says what a usage object means: [`read_usage_object_with_serde`] is the
//! reference. [`read_usage_object`] answers the same for every input, but reads the usual
//! object (an object of integers, `null`s and objects of those, with plain ASCII names)
//! itself: serde's derived reader checks the UTF-8 of every name and goes through its
//! visitors, which costs more than the rest of accounting a streamed call. Whenever the
//! small reader could disagree with serde_json (an escape or a byte outside printable ASCII
//! in a name, a number that is not a plain integer of at most 18 digits, a string, `true`,
//! an array, a name given twice, a trailing comma, an application's `models`), it says it
//! is unsure and serde_json reads the object. The fuzz target `provider_usage` checks that
//! the two agree.

use serde::Deserialize;

/// Token counts under the names each protocol uses; everything else in the object is
/// skipped without being built.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct UsageFields {
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cache_creation_input_tokens: Option<i64>,
    pub cache_read_input_tokens: Option<i64>,
    pub prompt_tokens_details: Option<Details>,
    pub completion_tokens_details: Option<Details>,
    pub output_tokens_details: Option<Details>,
    /// An application's usage, per model it called (DashScope).
    pub models: Option<Vec<ModelUsage>>,
}

/// The details objects of OpenAI (`prompt_tokens_details`, `completion_tokens_details`) and
/// DashScope (`output_tokens_details`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Details {
    pub cached_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
}

/// One model's usage within an application's call (DashScope).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct ModelUsage {
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
}

/// Reads the usage object that `value` starts with (after JSON whitespace; what follows the
/// object is not read): `None` when it is not a usage object (`null`, most often, which
/// OpenAI-compatible providers send on every chunk of a stream that asked for usage).
pub fn read_usage_object(value: &[u8]) -> Option<UsageFields> {
    match read_plain_usage_object(value) {
        PlainRead::Read(fields) => fields,
        PlainRead::Unsure => read_usage_object_with_serde(value),
    }
}

/// serde_json's reading of the usage object `value` starts with: the reference the small
/// reader agrees with.
pub fn read_usage_object_with_serde(value: &[u8]) -> Option<UsageFields> {
    serde_json::Deserializer::from_slice(value).into_iter::<UsageFields>().next()?.ok()
}

/// What the small reader made of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // Returned once per usage object: boxing it would cost the allocation this reader saves.
pub enum PlainRead {
    /// What serde_json reads too.
    Read(Option<UsageFields>),
    /// The value is not of the usual kind: serde_json decides.
    Unsure,
}

/// The small reader alone (public for the fuzz target and the tests): answers
/// [`PlainRead::Read`] only with what [`read_usage_object_with_serde`] answers.
pub fn read_plain_usage_object(value: &[u8]) -> PlainRead {
    let mut cursor = Cursor { bytes: value, at: 0 };
    cursor.skip_whitespace();
    match cursor.peek() {
        Some(b'{') => {}
        // An array would fill the fields in order (serde's derived readers take a
        // sequence too).
        Some(b'[') => return PlainRead::Unsure,
        // Nothing, or a value that is neither an object nor an array: serde_json cannot
        // read a struct from it, whatever follows.
        _ => return PlainRead::Read(None),
    }
    cursor.at += 1;
    match cursor.read_usage_members() {
        Some(fields) => PlainRead::Read(Some(fields)),
        None => PlainRead::Unsure,
    }
}

/// The bytes of a value, read from `at`. Every method answers `None` for "unsure".
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// A member's value in a usage or details object.
enum Value {
    Null,
    Integer(i64),
    Object,
}

/// The most digits of an integer read here: any 18 digits fit in an `i64`.
const MAX_DIGITS: usize = 18;

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Skips what serde_json skips between tokens (not `\x0c`, which `is_ascii_whitespace`
    /// would).
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// The name of the next member and its colon, the cursor then at its value; or
    /// `Some(None)` at the object's end (only where no comma came before).
    fn member_name(&mut self, first: bool) -> Option<Option<&'a [u8]>> {
        self.skip_whitespace();
        match self.peek()? {
            b'}' if first => {
                self.at += 1;
                return Some(None);
            }
            b'"' => {}
            _ => return None,
        }
        let start = self.at + 1;
        let end = match known_name_length(&self.bytes[start..]) {
            Some(length) => start + length,
            None => {
                // Any other plain name: printable ASCII up to its closing quote, no escape.
                let mut end = start;
                loop {
                    match *self.bytes.get(end)? {
                        b'"' => break,
                        b'\\' | 0..=0x1f | 0x7f..=0xff => return None,
                        _ => end += 1,
                    }
                }
                end
            }
        };
        self.at = end + 1;
        self.skip_whitespace();
        if self.peek()? != b':' {
            return None;
        }
        self.at += 1;
        self.skip_whitespace();
        Some(Some(&self.bytes[start..end]))
    }

    /// After a member's value: `Some(true)` when another member follows, `Some(false)` at
    /// the object's end.
    fn after_member(&mut self) -> Option<bool> {
        self.skip_whitespace();
        let byte = self.peek()?;
        self.at += 1;
        match byte {
            b',' => Some(true),
            b'}' => Some(false),
            _ => None,
        }
    }

    /// A value of the usual kind; an object's opening brace is consumed, not its members.
    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'n' => {
                if self.bytes[self.at..].starts_with(b"null") {
                    self.at += 4;
                    Some(Value::Null)
                } else {
                    None
                }
            }
            b'{' => {
                self.at += 1;
                Some(Value::Object)
            }
            b'0'..=b'9' => {
                let start = self.at;
                let mut number = 0i64;
                while let Some(digit @ b'0'..=b'9') = self.peek() {
                    // serde_json refuses a leading zero; longer numbers are for it to judge
                    // (and a fraction or an exponent: what follows must end the member,
                    // which `after_member` checks).
                    if self.at - start == MAX_DIGITS || (self.at > start && self.bytes[start] == b'0') {
                        return None;
                    }
                    number = number * 10 + i64::from(digit - b'0');
                    self.at += 1;
                }
                Some(Value::Integer(number))
            }
            _ => None,
        }
    }

    /// An integer field's value: `null` or an integer.
    fn optional_integer(&mut self) -> Option<Option<i64>> {
        match self.value()? {
            Value::Null => Some(None),
            Value::Integer(number) => Some(Some(number)),
            Value::Object => None,
        }
    }

    /// The members of a usage object, its opening brace read.
    fn read_usage_members(&mut self) -> Option<UsageFields> {
        let mut fields = UsageFields::default();
        // serde's derived reader refuses a field given twice, even after a `null`.
        let mut seen = 0u16;
        let mut first = true;
        loop {
            let Some(name) = self.member_name(first)? else { return Some(fields) };
            first = false;
            let (bit, target) = match name {
                b"prompt_tokens" => (1, Field::Integer(&mut fields.prompt_tokens)),
                b"completion_tokens" => (1 << 1, Field::Integer(&mut fields.completion_tokens)),
                b"input_tokens" => (1 << 2, Field::Integer(&mut fields.input_tokens)),
                b"output_tokens" => (1 << 3, Field::Integer(&mut fields.output_tokens)),
                b"total_tokens" => (1 << 4, Field::Integer(&mut fields.total_tokens)),
                b"cache_creation_input_tokens" => (1 << 5, Field::Integer(&mut fields.cache_creation_input_tokens)),
                b"cache_read_input_tokens" => (1 << 6, Field::Integer(&mut fields.cache_read_input_tokens)),
                b"prompt_tokens_details" => (1 << 7, Field::Details(&mut fields.prompt_tokens_details)),
                b"completion_tokens_details" => (1 << 8, Field::Details(&mut fields.completion_tokens_details)),
                b"output_tokens_details" => (1 << 9, Field::Details(&mut fields.output_tokens_details)),
                b"models" => return None,
                // Not a field: skipped, as often as it comes.
                _ => (0, Field::Skipped),
            };
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            match target {
                Field::Integer(slot) => *slot = self.optional_integer()?,
                Field::Details(slot) => {
                    *slot = match self.value()? {
                        Value::Null => None,
                        Value::Object => Some(self.read_details_members()?),
                        Value::Integer(_) => return None,
                    }
                }
                Field::Skipped => {
                    self.optional_integer()?;
                }
            }
            if !self.after_member()? {
                return Some(fields);
            }
        }
    }

    /// The members of a details object, its opening brace read.
    fn read_details_members(&mut self) -> Option<Details> {
        let mut details = Details::default();
        let (mut cached_seen, mut reasoning_seen) = (false, false);
        let mut first = true;
        loop {
            let Some(name) = self.member_name(first)? else { return Some(details) };
            first = false;
            let value = self.optional_integer()?;
            match name {
                b"cached_tokens" => {
                    if std::mem::replace(&mut cached_seen, true) {
                        return None;
                    }
                    details.cached_tokens = value;
                }
                b"reasoning_tokens" => {
                    if std::mem::replace(&mut reasoning_seen, true) {
                        return None;
                    }
                    details.reasoning_tokens = value;
                }
                _ => {}
            }
            if !self.after_member()? {
                return Some(details);
            }
        }
    }
}

/// The length of the name `rest` starts with when it is one of the names the readers look
/// for, its closing quote right after: compared whole (a few word compares each), not byte
/// by byte, since these are plain names.
fn known_name_length(rest: &[u8]) -> Option<usize> {
    let candidates: &[&[u8]] = match rest.first()? {
        b'p' => &[b"prompt_tokens\"", b"prompt_tokens_details\""],
        b'c' => &[
            b"completion_tokens\"",
            b"cached_tokens\"",
            b"completion_tokens_details\"",
            b"cache_read_input_tokens\"",
            b"cache_creation_input_tokens\"",
        ],
        b't' => &[b"total_tokens\""],
        b'i' => &[b"input_tokens\""],
        b'o' => &[b"output_tokens\"", b"output_tokens_details\""],
        b'r' => &[b"reasoning_tokens\""],
        _ => return None,
    };
    candidates.iter().find(|name| rest.starts_with(name)).map(|name| name.len() - 1)
}

/// Where a member's value goes.
enum Field<'a> {
    Integer(&'a mut Option<i64>),
    Details(&'a mut Option<Details>),
    Skipped,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `value` with both readers: the small one must be sure, and agree.
    fn plain(value: &str) -> Option<UsageFields> {
        let read = read_plain_usage_object(value.as_bytes());
        let reference = read_usage_object_with_serde(value.as_bytes());
        assert_eq!(read, PlainRead::Read(reference.clone()), "{value}");
        reference
    }

    /// The small reader is unsure of `value`; the combined reader answers serde_json's.
    fn unsure(value: &str) -> Option<UsageFields> {
        assert_eq!(read_plain_usage_object(value.as_bytes()), PlainRead::Unsure, "{value}");
        let reference = read_usage_object_with_serde(value.as_bytes());
        assert_eq!(read_usage_object(value.as_bytes()), reference, "{value}");
        reference
    }

    #[test]
    fn the_usual_objects_are_read_as_serde_json_reads_them() {
        let openai = plain(
            r#"{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":2,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":3,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}]"#,
        )
        .unwrap();
        assert_eq!((openai.prompt_tokens, openai.completion_tokens, openai.total_tokens), (Some(9), Some(5), Some(14)));
        assert_eq!(openai.prompt_tokens_details, Some(Details { cached_tokens: Some(2), reasoning_tokens: None }));
        assert_eq!(openai.completion_tokens_details.unwrap().reasoning_tokens, Some(3));
        let anthropic =
            plain(r#" { "input_tokens" : 9 , "cache_read_input_tokens":3,"cache_creation_input_tokens":0, "output_tokens":1 } "#).unwrap();
        assert_eq!((anthropic.input_tokens, anthropic.cache_read_input_tokens, anthropic.output_tokens), (Some(9), Some(3), Some(1)));
        plain("{}");
        plain("\t\r\n{\n}");
        plain(r#"{"prompt_tokens":null,"prompt_tokens_details":null,"other":null,"more":123}"#);
        plain(r#"{"prompt_tokens":0,"completion_tokens":999999999999999999}"#);
        plain(r#"{"output_tokens_details":{}}"#);
    }

    #[test]
    fn what_is_not_an_object_reports_nothing() {
        for value in ["", "   ", "null", "null}", "nul", "0", "-1", "\"usage\"", "true", "}", ":", "n"] {
            assert_eq!(plain(value), None, "{value}");
        }
    }

    #[test]
    fn anything_unusual_goes_to_serde_json_and_its_answer_stands() {
        // Duplicate names, even after a null: serde refuses the object.
        assert_eq!(unsure(r#"{"prompt_tokens":1,"prompt_tokens":2}"#), None);
        assert_eq!(unsure(r#"{"prompt_tokens":null,"prompt_tokens":2}"#), None);
        assert_eq!(unsure(r#"{"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":1}}"#), None);
        // A duplicate unknown name is skipped by both.
        assert_eq!(plain(r#"{"x":1,"x":2,"prompt_tokens":3}"#).unwrap().prompt_tokens, Some(3));
        // Escapes in names: `"prompt\u005ftokens"` is `prompt_tokens` to serde.
        assert_eq!(unsure(r#"{"prompt\u005ftokens":4}"#).unwrap().prompt_tokens, Some(4));
        assert_eq!(unsure(r#"{"prompt\u005ftokens":4,"prompt_tokens":5}"#), None);
        assert_eq!(unsure(r#"{"\"usage\"":{"prompt_tokens":6}}"#), Some(UsageFields::default()));
        // Numbers: huge, negative, fractional, exponents, leading zeros.
        assert_eq!(unsure(r#"{"prompt_tokens":9223372036854775807}"#).unwrap().prompt_tokens, Some(i64::MAX));
        assert_eq!(unsure(r#"{"prompt_tokens":9223372036854775808}"#), None);
        assert_eq!(unsure(r#"{"prompt_tokens":99999999999999999999999}"#), None);
        assert_eq!(unsure(r#"{"prompt_tokens":1234567890123456789}"#).unwrap().prompt_tokens, Some(1234567890123456789));
        assert_eq!(unsure(r#"{"prompt_tokens":-3}"#).unwrap().prompt_tokens, Some(-3));
        assert_eq!(unsure(r#"{"prompt_tokens":-0}"#), None);
        assert_eq!(unsure(r#"{"prompt_tokens":1.0}"#), None);
        assert_eq!(unsure(r#"{"prompt_tokens":1e3}"#), None);
        assert_eq!(unsure(r#"{"prompt_tokens":01}"#), None);
        assert_eq!(unsure(r#"{"x":1.5,"prompt_tokens":1}"#).unwrap().prompt_tokens, Some(1));
        // Strings, booleans, arrays, nested objects where integers go or in unknown members.
        assert_eq!(unsure(r#"{"prompt_tokens":"7"}"#), None);
        assert_eq!(unsure(r#"{"note":"the \"usage\" of {\"prompt_tokens\":1}","prompt_tokens":8}"#).unwrap().prompt_tokens, Some(8));
        assert_eq!(unsure(r#"{"flag":true,"prompt_tokens":8}"#).unwrap().prompt_tokens, Some(8));
        assert_eq!(unsure(r#"{"nested":{"prompt_tokens":1},"prompt_tokens":2}"#).unwrap().prompt_tokens, Some(2));
        assert_eq!(unsure(r#"{"prompt_tokens":{"prompt_tokens":1}}"#), None);
        assert_eq!(unsure(r#"{"prompt_tokens_details":3}"#), None);
        assert_eq!(unsure(r#"{"prompt_tokens_details":{"cached_tokens":{}}}"#), None);
        assert_eq!(unsure(r#"[1,2,3,4,5,6,7,null,null,null,null]"#).unwrap().input_tokens, Some(3));
        assert_eq!(unsure(r#"{"models":[{"input_tokens":1,"output_tokens":2}]}"#).unwrap().models.unwrap().len(), 1);
        // Names outside printable ASCII: serde checks their UTF-8.
        assert_eq!(unsure("{\"caf\u{e9}\":1,\"prompt_tokens\":1}").unwrap().prompt_tokens, Some(1));
        assert_eq!(read_plain_usage_object(b"{\"\xff\":1}"), PlainRead::Unsure);
        assert_eq!(read_usage_object(b"{\"\xff\":1}"), read_usage_object_with_serde(b"{\"\xff\":1}"));
        assert_eq!(unsure("{\"a\tb\":1}"), None);
        // Broken objects: a trailing comma, a missing colon or value, a cut-off end.
        for broken in [
            r#"{"prompt_tokens":1,}"#,
            r#"{"prompt_tokens" 1}"#,
            r#"{"prompt_tokens":}"#,
            r#"{"prompt_tokens":1"#,
            r#"{"prompt_tokens":1 2}"#,
            r#"{,}"#,
            "{",
            r#"{"prompt_tokens":nul}"#,
            r#"{"prompt_tokens":nullx}"#,
        ] {
            assert_eq!(unsure(broken), None, "{broken}");
        }
        // A form feed is not JSON whitespace.
        assert_eq!(unsure("{\x0c\"prompt_tokens\":1}"), None);
    }

    #[test]
    fn the_small_reader_agrees_with_serde_json_on_every_cut_and_every_changed_byte() {
        let object = br#"{"prompt_tokens":12,"completion_tokens":340,"total_tokens":352,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":null},"completion_tokens_details":{"reasoning_tokens":7}} ,"x":1}"#;
        let replacements = [b'{', b'}', b'"', b'\\', b':', b',', b' ', b'0', b'1', b'-', b'.', b'e', b'n', b'[', 0x0c, 0xc3];
        for cut in 0..=object.len() {
            check_agreement(&object[..cut]);
        }
        for at in 0..object.len() {
            for replacement in replacements {
                let mut changed = object.to_vec();
                changed[at] = replacement;
                check_agreement(&changed);
                changed.insert(at, replacement);
                check_agreement(&changed);
            }
        }
    }

    fn check_agreement(value: &[u8]) {
        let reference = read_usage_object_with_serde(value);
        if let PlainRead::Read(read) = read_plain_usage_object(value) {
            assert_eq!(read, reference, "{:?}", String::from_utf8_lossy(value));
        }
        assert_eq!(read_usage_object(value), reference, "{:?}", String::from_utf8_lossy(value));
    }
}
