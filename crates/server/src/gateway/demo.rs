//! The built-in `demo` upstream: models `demo-echo` (echoes the last user message) and
//! `demo-embed` (deterministic 8-dimensional vectors), answering in all three protocol
//! shapes, streaming too, so that a fresh install works end to end with no provider.
//! Every answer says it comes from the demo. It reports usage like a provider: input
//! tokens are the words of the request's text, output tokens the words of the reply
//! (docs/CONTRACT.md#usage), so the same request always costs the same tokens.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use keygate_core::usage::TokenUsage;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// What kind of call the demo answers, from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoEndpoint {
    OpenAiChat,
    OpenAiEmbeddings,
    /// `/images/generations`: a small SVG of the prompt as a `data:` URL.
    OpenAiImages,
    /// `/audio/speech`: a short WAV of silence.
    OpenAiSpeech,
    NativeGeneration,
    NativeEmbedding,
    ApplicationCompletion,
    AnthropicMessages,
}

/// How every demo answer begins.
pub const DEMO_PREFIX: &str = "[keygate demo] ";

/// The text of a message content: a string, or the `text` parts of a list.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(|part| part.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" "),
        _ => String::new(),
    }
}

fn last_user_text(messages: Option<&Value>) -> String {
    messages
        .and_then(Value::as_array)
        .and_then(|messages| messages.iter().rev().find(|message| message.get("role").and_then(Value::as_str) == Some("user")))
        .map(|message| content_text(message.get("content").unwrap_or(&Value::Null)))
        .unwrap_or_default()
}

/// The reply text of `demo-echo`.
fn echo_reply(request: &Value, endpoint: DemoEndpoint) -> String {
    let said = match endpoint {
        DemoEndpoint::NativeGeneration | DemoEndpoint::ApplicationCompletion => {
            let input = request.get("input").unwrap_or(&Value::Null);
            input.get("prompt").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| last_user_text(input.get("messages")))
        }
        _ => last_user_text(request.get("messages")),
    };
    format!("{DEMO_PREFIX}echo: {said}")
}

/// Eight deterministic floats in [-1, 1] from the text.
fn embedding_of(text: &str) -> Vec<f64> {
    let digest = Sha256::digest(text.as_bytes());
    digest
        .chunks(4)
        .map(|chunk| f64::from(u32::from_be_bytes(chunk.try_into().expect("4 bytes"))) / f64::from(u32::MAX) * 2.0 - 1.0)
        .collect()
}

fn texts_of(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => {
            items.iter().map(|item| item.as_str().map(str::to_string).unwrap_or_else(|| item.to_string())).collect()
        }
        _ => Vec::new(),
    }
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count().max(1)
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The words of every message's text (and a system prompt), the demo's input tokens.
fn message_words(messages: Option<&Value>) -> usize {
    messages
        .and_then(Value::as_array)
        .map(|messages| messages.iter().map(|message| words(&content_text(message.get("content").unwrap_or(&Value::Null)))).sum())
        .unwrap_or(0)
}

/// The demo's input tokens of a generation request.
fn input_words(request: &Value, endpoint: DemoEndpoint) -> usize {
    match endpoint {
        DemoEndpoint::NativeGeneration | DemoEndpoint::ApplicationCompletion => {
            let input = request.get("input").unwrap_or(&Value::Null);
            input.get("prompt").and_then(Value::as_str).map(words).unwrap_or(0) + message_words(input.get("messages"))
        }
        DemoEndpoint::AnthropicMessages => {
            message_words(request.get("messages")) + words(&content_text(request.get("system").unwrap_or(&Value::Null)))
        }
        _ => message_words(request.get("messages")),
    }
}

/// The input tokens the demo would count for an Anthropic Messages request: its answer to
/// `count_tokens`, the same figure its `usage.input_tokens` reports for the call.
pub fn anthropic_input_tokens(request: &Value) -> usize {
    input_words(request, DemoEndpoint::AnthropicMessages)
}

/// An SVG that shows `prompt`, as a `data:` URL: the demo's image.
pub fn image_data_url(prompt: &str) -> String {
    let escaped: String = prompt
        .chars()
        .take(80)
        .map(|character| match character {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            other => other.to_string(),
        })
        .collect();
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"512\" height=\"128\"><rect width=\"512\" height=\"128\" fill=\"#eef\"/><text x=\"16\" y=\"70\" font-size=\"16\">{DEMO_PREFIX}{escaped}</text></svg>"
    );
    format!("data:image/svg+xml,{}", percent_encoding::utf8_percent_encode(&svg, percent_encoding::NON_ALPHANUMERIC))
}

/// A tenth of a second of 8 kHz, 16-bit mono silence as a WAV file.
fn silent_wav() -> Vec<u8> {
    let samples = 800u32;
    let data_bytes = samples * 2;
    let mut wav = Vec::with_capacity(44 + data_bytes as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_bytes).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&16000u32.to_le_bytes()); // bytes per second
    wav.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_bytes.to_le_bytes());
    wav.resize(44 + data_bytes as usize, 0);
    wav
}

fn tokens_of(input: usize, output: usize) -> TokenUsage {
    TokenUsage { input: input as i64, output: output as i64, cached: 0, reasoning: 0 }
}

fn sse_response(events: Vec<String>) -> Response {
    let chunks = events.into_iter().map(|event| Ok::<Bytes, std::convert::Infallible>(Bytes::from(event)));
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Splits a reply into a few pieces for streaming.
fn pieces(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    words.chunks(3).map(|chunk| chunk.concat()).collect()
}

/// Answers a call to a demo model made at `created` (Unix seconds), with the usage it
/// reports.
pub fn answer(
    endpoint: DemoEndpoint,
    model: &str,
    request: &Value,
    streaming: bool,
    request_id: &str,
    created: i64,
) -> (Response, TokenUsage) {
    match endpoint {
        DemoEndpoint::OpenAiImages => {
            let prompt = request.get("prompt").and_then(Value::as_str).unwrap_or("");
            let count = request.get("n").and_then(Value::as_u64).unwrap_or(1).clamp(1, 4) as usize;
            let image = json!({"url": image_data_url(prompt), "revised_prompt": format!("{DEMO_PREFIX}{prompt}")});
            let response = Json(json!({"created": created, "data": vec![image; count]})).into_response();
            (response, tokens_of(words(prompt), 0))
        }
        DemoEndpoint::OpenAiSpeech => {
            let input = request.get("input").and_then(Value::as_str).unwrap_or("");
            let response = (StatusCode::OK, [(header::CONTENT_TYPE, "audio/wav")], silent_wav()).into_response();
            (response, tokens_of(words(input), 0))
        }
        DemoEndpoint::OpenAiEmbeddings => {
            let texts = texts_of(request.get("input"));
            let data: Vec<Value> = texts
                .iter()
                .enumerate()
                .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": embedding_of(text)}))
                .collect();
            let tokens: usize = texts.iter().map(|text| word_count(text)).sum();
            let response = Json(json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}, "id": request_id})).into_response();
            (response, tokens_of(tokens, 0))
        }
        DemoEndpoint::NativeEmbedding => {
            let texts = texts_of(request.get("input").and_then(|input| input.get("texts")));
            let embeddings: Vec<Value> =
                texts.iter().enumerate().map(|(index, text)| json!({"text_index": index, "embedding": embedding_of(text)})).collect();
            let tokens: usize = texts.iter().map(|text| word_count(text)).sum();
            let response = Json(json!({"output": {"embeddings": embeddings}, "usage": {"total_tokens": tokens}, "request_id": request_id}))
                .into_response();
            (response, tokens_of(tokens, 0))
        }
        DemoEndpoint::OpenAiChat => {
            let reply = echo_reply(request, endpoint);
            let id = format!("chatcmpl-demo-{request_id}");
            let (input, output) = (input_words(request, endpoint), words(&reply));
            let usage = json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output});
            if streaming {
                let mut events: Vec<String> = pieces(&reply)
                    .iter()
                    .map(|piece| {
                        let chunk = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": null}]});
                        format!("data: {chunk}\n\n")
                    })
                    .collect();
                let last = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
                events.push(format!("data: {last}\n\n"));
                // Like a provider: the usage chunk only for a client that asked for it.
                if request.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true) {
                    let usage_chunk = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [], "usage": usage});
                    events.push(format!("data: {usage_chunk}\n\n"));
                }
                events.push("data: [DONE]\n\n".into());
                return (sse_response(events), tokens_of(input, output));
            }
            let response = Json(json!({
                "id": id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                "usage": usage,
            }))
            .into_response();
            (response, tokens_of(input, output))
        }
        DemoEndpoint::NativeGeneration | DemoEndpoint::ApplicationCompletion => {
            let reply = echo_reply(request, endpoint);
            let as_message = request.pointer("/parameters/result_format").and_then(Value::as_str) == Some("message");
            let incremental = request.pointer("/parameters/incremental_output").and_then(Value::as_bool).unwrap_or(false);
            let output_for = |text: &str, finish_reason: &str| {
                if as_message && endpoint == DemoEndpoint::NativeGeneration {
                    json!({"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}]})
                } else {
                    json!({"text": text, "finish_reason": finish_reason, "session_id": ""})
                }
            };
            let input = input_words(request, endpoint);
            let output = words(&reply);
            let usage_after = |output: usize| json!({"input_tokens": input, "output_tokens": output, "total_tokens": input + output});
            if streaming {
                let parts = pieces(&reply);
                let mut so_far = String::new();
                let count = parts.len();
                let events = parts
                    .iter()
                    .enumerate()
                    .map(|(index, piece)| {
                        so_far.push_str(piece);
                        let text = if incremental { piece.clone() } else { so_far.clone() };
                        let finish_reason = if index + 1 == count { "stop" } else { "null" };
                        // Cumulative, like DashScope's: the tokens generated so far.
                        let data = json!({"output": output_for(&text, finish_reason), "usage": usage_after(words(&so_far)), "request_id": request_id});
                        format!("id:{}\nevent:result\n:HTTP_STATUS/200\ndata:{data}\n\n", index + 1)
                    })
                    .collect();
                return (sse_response(events), tokens_of(input, output));
            }
            let response =
                Json(json!({"output": output_for(&reply, "stop"), "usage": usage_after(output), "request_id": request_id})).into_response();
            (response, tokens_of(input, output))
        }
        DemoEndpoint::AnthropicMessages => {
            let reply = echo_reply(request, endpoint);
            let id = format!("msg_demo_{}", request_id.replace('-', ""));
            let (input, output) = (input_words(request, endpoint), words(&reply));
            if streaming {
                let mut events = vec![
                    format!(
                        "event: message_start\ndata: {}\n\n",
                        json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": input, "output_tokens": 0}}})
                    ),
                    format!(
                        "event: content_block_start\ndata: {}\n\n",
                        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
                    ),
                ];
                for piece in pieces(&reply) {
                    events.push(format!(
                        "event: content_block_delta\ndata: {}\n\n",
                        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
                    ));
                }
                events.push(format!("event: content_block_stop\ndata: {}\n\n", json!({"type": "content_block_stop", "index": 0})));
                events.push(format!("event: message_delta\ndata: {}\n\n", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": output}})));
                events.push(format!("event: message_stop\ndata: {}\n\n", json!({"type": "message_stop"})));
                return (sse_response(events), tokens_of(input, output));
            }
            let response = Json(json!({
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": reply}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": input, "output_tokens": output},
            }))
            .into_response();
            (response, tokens_of(input, output))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_takes_the_last_user_message_in_each_shape() {
        let openai = json!({"messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "x"}, {"role": "user", "content": [{"type": "text", "text": "second"}]}]});
        assert_eq!(echo_reply(&openai, DemoEndpoint::OpenAiChat), "[keygate demo] echo: second");
        let native = json!({"input": {"prompt": "hello"}});
        assert_eq!(echo_reply(&native, DemoEndpoint::NativeGeneration), "[keygate demo] echo: hello");
    }

    #[test]
    fn embeddings_are_deterministic_and_bounded() {
        let first = embedding_of("abc");
        assert_eq!(first, embedding_of("abc"));
        assert_ne!(first, embedding_of("abd"));
        assert_eq!(first.len(), 8);
        assert!(first.iter().all(|value| (-1.0..=1.0).contains(value)));
    }
}
