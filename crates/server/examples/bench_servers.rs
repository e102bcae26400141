//! The two reference servers of `bench/load.sh` (docs/PERFORMANCE.md), on plain hyper with
//! the same multi-threaded tokio runtime as `keygate serve`:
//!
//! - `bench_servers bare [ADDR]`: answers every request 200 with an empty body, the
//!   baseline that `/auth/verify` is compared with (docs/CONTRACT.md#performance-targets);
//! - `bench_servers axum [ADDR]`: the same empty 200 from an axum router served the way
//!   keygate serves one (`axum::serve` with connection info), to tell the framework's share
//!   of the gap from keygate's own work;
//! - `bench_servers upstream [ADDR]`: reads the request body and answers a fixed OpenAI
//!   chat completion, the upstream that the gateway forwards to.
//!
//! ADDR defaults to `127.0.0.1:0` (a free port); the bound address is printed as
//! `listening on http://ADDR`. Build with `cargo build --release -p keygate-server --examples`.

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
            // Read the whole body, as a real provider would, so keep-alive stays clean.
            let _ = request.into_body().collect().await;
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
