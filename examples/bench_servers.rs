//! The two reference servers of `bench/load.sh` (docs/PERFORMANCE.md), on plain hyper with
//! the same multi-threaded tokio runtime as `keygate serve`:
//!
//! - `bench_servers bare [ADDR]`: answers every request 200 with an empty body, the
//!   baseline that `/auth/verify` is compared with (docs/CONTRACT.md#performance-targets);
//! - `bench_servers axum [ADDR]`: the same empty 200 from an axum router served the way
//!   keygate serves one (`axum::serve` with connection info), to tell the framework's share
//!   of the gap from keygate's own work;
//! - `bench_servers upstream [ADDR]`: reads the request body and answers a fixed OpenAI
//!   chat completion, the upstream that the gateway forwards to; a request with
//!   `"stream":true` gets the same answer as an event stream of five chunks, with the
//!   usage-only chunk when the request has `"include_usage":true`, as providers send it.
//!
//! ADDR defaults to `127.0.0.1:0` (a free port); the bound address is printed as
//! `listening on http://ADDR`. Build with `cargo build --release -p keygate --examples`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const CHAT_COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the benchmark upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16}}"#;

/// The streamed answer's content chunks (then the usage chunk when asked, then `[DONE]`).
const STREAM_CHUNKS: [&str; 5] = ["Hello ", "from ", "the ", "benchmark ", "upstream."];
const STREAM_USAGE_CHUNK: &str = r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}}

"#;

/// The event stream, built once per kind (with and without the usage chunk).
fn chat_stream(with_usage: bool) -> Bytes {
    let mut text = String::new();
    for piece in STREAM_CHUNKS {
        text.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{piece}\"}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    if with_usage {
        text.push_str(STREAM_USAGE_CHUNK);
    }
    text.push_str("data: [DONE]\n\n");
    Bytes::from(text)
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[derive(Clone, Copy)]
enum Mode {
    Bare,
    Axum,
    Upstream,
}

async fn answer(mode: Mode, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    match mode {
        Mode::Bare | Mode::Axum => Ok(Response::new(Full::new(Bytes::new()))),
        Mode::Upstream => {
            static STREAMS: std::sync::OnceLock<[Bytes; 2]> = std::sync::OnceLock::new();
            // Read the whole body, as a real provider would, so keep-alive stays clean.
            let body = request.into_body().collect().await.map(|collected| collected.to_bytes()).unwrap_or_default();
            // A byte search, not a JSON parse: the upstream's own cost stays small.
            if find(&body, b"\"stream\":true") {
                let streams = STREAMS.get_or_init(|| [chat_stream(false), chat_stream(true)]);
                let stream = streams[usize::from(find(&body, b"\"include_usage\":true"))].clone();
                let mut response = Response::new(Full::new(stream));
                response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                return Ok(response);
            }
            let mut response = Response::new(Full::new(Bytes::from_static(CHAT_COMPLETION.as_bytes())));
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(response)
        }
    }
}

async fn serve(mode: Mode, address: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(address).await?;
    println!("listening on http://{}", listener.local_addr()?);
    if let Mode::Axum = mode {
        let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::OK });
        return axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
    }
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(mode, request));
            // Connection errors (a client that goes away) are the client's business.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn main() -> std::process::ExitCode {
    let mut arguments = std::env::args().skip(1);
    let mode = match arguments.next().as_deref() {
        Some("bare") => Mode::Bare,
        Some("axum") => Mode::Axum,
        Some("upstream") => Mode::Upstream,
        _ => {
            eprintln!("usage: bench_servers bare|axum|upstream [ADDR]");
            return std::process::ExitCode::from(2);
        }
    };
    let address: SocketAddr = match arguments.next().unwrap_or_else(|| "127.0.0.1:0".into()).parse() {
        Ok(address) => address,
        Err(error) => {
            eprintln!("error: ADDR: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    // The same runtime as `keygate serve` (src/main.rs): multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts");
    match runtime.block_on(serve(mode, address)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
