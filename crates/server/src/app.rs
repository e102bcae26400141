//! Building the application: [`router`] for in-process tests, and [`Server`] that binds
//! one listener per region (plain HTTP, or HTTPS with a certificate reloaded on SIGHUP)
//! and runs until shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::ConnectInfo;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::future::Either;
use futures_util::FutureExt;
use keygate_core::verification::KeyEndpoint;
use serde_json::json;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::bootstrap::{bootstrap, Bootstrapped};
use crate::connection_runtimes::{ConnectionPlacement, ConnectionRuntimes};
use crate::connections::{
    raise_open_file_limit, watchdog, AcceptBackoff, ConnectionLimits, ConnectionTable, WatchedBody, WatchedStream, MAX_REQUEST_HEAD_BYTES,
};
use crate::gateway;
use crate::management::authentication::{BodyLimit, MAX_MANAGEMENT_BODY_BYTES};
use crate::management::boundary::answer_errors;
use crate::management::{authentication, keygate_api, model_studio, token_plan};
use crate::request_context::attach_request_context;
use crate::settings::Settings;
use crate::state::AppState;
use crate::tls::{ClientStream, ListenerTls, ServedOverTls, TlsCertificates};

/// The whole HTTP surface of one listener: a plan listener serves only the plan paths.
pub fn router(state: AppState) -> Router {
    if state.key_endpoint == KeyEndpoint::Plan {
        return plan_router(state);
    }
    let authenticated = Router::new()
        .merge(model_studio::routes())
        .merge(token_plan::routes())
        .merge(keygate_api::authenticated_routes())
        .route_layer(from_fn_with_state((state.clone(), BodyLimit(MAX_MANAGEMENT_BODY_BYTES)), authentication::require_authentication))
        .merge(keygate_api::import_routes().route_layer(from_fn_with_state(
            (state.clone(), BodyLimit(keygate_api::key_import::MAX_IMPORT_BODY_BYTES)),
            authentication::require_authentication,
        )));
    // Every management error, the authentication middleware's too, leaves through the
    // boundary (outside that middleware, inside the request context's).
    let management = authenticated.merge(keygate_api::public_routes()).layer(from_fn(answer_errors));
    let mut public = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readiness))
        // The address `keygate serve` prints leads a browser to the console.
        .route("/", get(|| async { axum::response::Redirect::to("/console") }));
    // With a metrics listener of its own, `/metrics` is served there only: an ordinary
    // listener answers it like any unknown path.
    if state.shared.settings.metrics_listen.is_none() {
        public = public.route("/metrics", get(crate::metrics::guarded_metrics_endpoint).layer(from_fn(answer_errors)));
    }
    public
        .merge(crate::console::routes())
        .merge(gateway::routes())
        .merge(management)
        .fallback(crate::planes::not_served)
        .method_not_allowed_fallback(crate::planes::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), attach_request_context))
        // Added after the layer, so outside it: `/auth/verify` makes its own context.
        .merge(gateway::verify_routes())
        .with_state(state)
}

/// A plan listener (docs/CONTRACT.md#token-plan): the OpenAI- and Anthropic-compatible paths of the
/// plan host, which take only plan keys, and the health endpoints. No management API, no
/// console: plan keys are managed on an ordinary listener.
fn plan_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readiness))
        .merge(gateway::plan_routes())
        .fallback(crate::planes::not_served)
        .method_not_allowed_fallback(crate::planes::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), attach_request_context))
        .with_state(state)
}

/// `/readyz`: 200 while this node can confirm its keys, 503 with the reason when not; the
/// `limiter` object says where limits are counted and whether that works (a failing Redis
/// makes the node not ready only when limits fail closed).
async fn readiness(axum::extract::State(state): axum::extract::State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let feed_version = state.shared.feed_health.cursor();
    let health = state.shared.limiter.health();
    let limiter = json!({
        "backend": health.backend.name(),
        "healthy": health.healthy,
        "failMode": if health.fail_closed { "closed" } else { "open" },
        "lastErrorAt": health.last_error.as_ref().map(|(at, _)| keygate_core::civil_time::format_utc_timestamp(*at / 1000)),
        "lastError": health.last_error.as_ref().map(|(_, error)| error.clone()),
        "liveNodes": health.live_nodes,
    });
    let unavailable = |status: &str, reason: String| {
        let body = json!({"status": status, "reason": reason, "feedVersion": feed_version, "limiter": limiter});
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    };
    if let Some(reason) = state.staleness_problem() {
        return unavailable("stale", reason);
    }
    if health.refusing() {
        return unavailable("limiter-unavailable", "the limits' Redis does not answer and limits_fail_closed is set".into());
    }
    Json(json!({"status": "ready", "feedVersion": feed_version, "limiter": limiter})).into_response()
}

/// Every `node_heartbeat_seconds` on PostgreSQL: this node's heartbeat, and the count of
/// the nodes seen within three heartbeats, which divides each limit into node shares
/// (docs/CONTRACT.md#model-limits, "Across nodes"). Leaving, the node removes itself so
/// that the others take its share at their next count.
async fn beat_as_a_node(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let shared = &state.shared;
    let every = Duration::from_secs(shared.settings.node_heartbeat_seconds);
    let live_window = i64::try_from(every.as_millis()).unwrap_or(i64::MAX).saturating_mul(3);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let now = shared.clock.now_milliseconds();
                // A node gone for a day is forgotten.
                let beat = state.store().node_heartbeat(&shared.node_id, shared.started_at, now, now - 86_400_000).await;
                match beat {
                    Ok(()) => match state.store().count_live_nodes(now - live_window).await {
                        Ok(count) => shared.live_nodes.set(count),
                        Err(error) => tracing::warn!(%error, "counting the live nodes failed; keeping the last count"),
                    },
                    Err(error) => tracing::warn!(%error, "writing this node's heartbeat failed; keeping the last count of nodes"),
                }
            }
            _ = stop.changed() => break,
        }
    }
    if let Err(error) = state.store().node_departed(&shared.node_id).await {
        tracing::warn!(%error, "removing this node from the nodes table failed; it stops counting after three heartbeats");
    }
}

/// One bound listener: its socket, its state, and its TLS when it speaks HTTPS.
struct BoundListener {
    listener: TcpListener,
    state: AppState,
    tls: Option<ListenerTls>,
}

/// Bound listeners, ready to run.
pub struct Server {
    listeners: Vec<BoundListener>,
    /// A listener of its own for `/metrics`, when the settings ask for one.
    metrics_listener: Option<(TcpListener, AppState)>,
    limits: ConnectionLimits,
    /// How many connection runtimes `run` starts (0: the connections run on the main
    /// runtime; `crate::connection_runtimes`).
    connection_runtimes: usize,
    /// Set on first start when the root password was generated: print it once.
    pub generated_root_password: Option<secrecy::SecretString>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Server").field("addresses", &self.local_addresses()).finish_non_exhaustive()
    }
}

impl Server {
    /// Opens the store, bootstraps the root account, and binds every listener.
    pub async fn bind(settings: Settings, root_password: Option<secrecy::SecretString>) -> anyhow::Result<Server> {
        settings.validate()?;
        let Bootstrapped { state, generated_root_password } = bootstrap(settings.clone(), root_password).await?;
        let mut listeners = Vec::new();
        for listener in &settings.listeners {
            // The files are read before the port is taken: a start with a bad certificate fails.
            let tls = match listener.tls_files() {
                Some((certificate_file, key_file)) => {
                    Some(ListenerTls::load(certificate_file, key_file).with_context(|| format!("listener {}", listener.addr))?)
                }
                None => None,
            };
            let bound = TcpListener::bind(listener.addr).await.with_context(|| format!("binding {}", listener.addr))?;
            listeners.push(BoundListener { listener: bound, state: state.for_listener(listener), tls });
        }
        let bound: Vec<(SocketAddr, String)> = listeners
            .iter()
            .filter(|bound| bound.state.key_endpoint == KeyEndpoint::PayAsYouGo)
            .filter_map(|bound| bound.listener.local_addr().ok().map(|address| (address, bound.state.listener_region.clone())))
            .collect();
        let _ = state.shared.listener_addresses.set(bound);
        let metrics_listener = match settings.metrics_listen {
            Some(address) => {
                Some((TcpListener::bind(address).await.with_context(|| format!("binding {address} (metrics)"))?, state.clone()))
            }
            None => None,
        };
        let open_file_limit = raise_open_file_limit();
        let limits = ConnectionLimits::from_settings(&settings, open_file_limit);
        tracing::info!(open_file_limit, max_connections = limits.max_connections, "connection limits");
        let connection_runtimes = crate::connection_runtimes::runtime_count(settings.connection_runtimes);
        tracing::info!(connection_runtimes, "connection runtimes");
        Ok(Server { listeners, metrics_listener, limits, connection_runtimes, generated_root_password })
    }

    /// The bound addresses of the pay-as-you-go listeners with their regions (port 0
    /// resolved).
    pub fn local_addresses(&self) -> Vec<(SocketAddr, String)> {
        self.addresses_of(KeyEndpoint::PayAsYouGo)
    }

    /// The bound addresses of the plan listeners with their regions.
    pub fn plan_addresses(&self) -> Vec<(SocketAddr, String)> {
        self.addresses_of(KeyEndpoint::Plan)
    }

    fn addresses_of(&self, kind: KeyEndpoint) -> Vec<(SocketAddr, String)> {
        self.listeners
            .iter()
            .filter(|bound| bound.state.key_endpoint == kind)
            .filter_map(|bound| bound.listener.local_addr().ok().map(|address| (address, bound.state.listener_region.clone())))
            .collect()
    }

    /// The bound addresses of the listeners that speak HTTPS.
    pub fn tls_addresses(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter(|bound| bound.tls.is_some()).filter_map(|bound| bound.listener.local_addr().ok()).collect()
    }

    /// Every HTTPS listener's certificate, to read again: what SIGHUP does while [`Server::run`]
    /// runs (tests call its `reload` directly).
    pub fn tls_certificates(&self) -> TlsCertificates {
        TlsCertificates::new(
            self.listeners.iter().filter_map(|bound| Some((bound.listener.local_addr().ok()?, bound.tls.clone()?))).collect(),
        )
    }

    /// The bound address of the `metrics_listen` listener, when there is one.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// The state shared by every listener (tests use its store).
    pub fn state(&self) -> Option<AppState> {
        self.listeners.first().map(|bound| bound.state.clone())
    }

    /// Serves every listener until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
        let state_for_flush = self.state();
        let self_state_for_feed = self.state();
        let state_for_heartbeat = self.state();
        let certificates = self.tls_certificates();
        let mut tasks = Vec::new();
        let gate = ConnectionTable::new(self.limits.max_connections);
        let connection_runtimes = match self.connection_runtimes {
            0 => None,
            count => Some(Arc::new(ConnectionRuntimes::start(count).context("starting the connection runtimes")?)),
        };
        let placement = match &connection_runtimes {
            None => ConnectionPlacement::MainRuntime,
            Some(runtimes) => ConnectionPlacement::Runtimes(runtimes.clone()),
        };
        for BoundListener { listener, state, tls } in self.listeners {
            // A plan listener serves only its plan paths; `/auth/verify` is not one of them.
            let state_before_router = (state.key_endpoint == KeyEndpoint::PayAsYouGo).then(|| state.clone());
            let region: Arc<str> = state.listener_region.as_str().into();
            let app = router(state);
            let served = Served { app, state_before_router, region, tls };
            tasks.push(tokio::spawn(serve_listener(listener, served, gate.clone(), placement.clone(), self.limits, stop_receiver.clone())));
        }
        drop(placement);
        if let Some((listener, state)) = self.metrics_listener {
            let region: Arc<str> = state.listener_region.as_str().into();
            let served = Served { app: crate::metrics::metrics_listener_router(state), state_before_router: None, region, tls: None };
            // Scrapes are few: they stay on the main runtime.
            let placement = ConnectionPlacement::MainRuntime;
            tasks.push(tokio::spawn(serve_listener(listener, served, gate.clone(), placement, self.limits, stop_receiver.clone())));
        }
        // SIGHUP is taken over only when there is a certificate to reload; otherwise it keeps
        // its default (the process ends, as when its terminal goes away).
        #[cfg(unix)]
        if !certificates.is_empty() {
            tasks.push(tokio::spawn(certificates.reload_on_hangup(stop_receiver.clone())));
        }
        #[cfg(not(unix))]
        drop(certificates);
        let usage_flusher = state_for_flush.map(|state| {
            let mut stop = stop_receiver.clone();
            tokio::spawn(async move {
                let interval = std::time::Duration::from_millis(state.shared.settings.usage_flush_interval_milliseconds);
                // The rollup of aging usage rows runs at start and then hourly (by the clock).
                let mut last_rollup: Option<i64> = None;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => {
                            let shared = &state.shared;
                            shared.key_budgets.flush_usage(&shared.usage, state.store(), shared.clock.now_seconds()).await;
                            let now = state.shared.clock.now_seconds();
                            let due = match last_rollup {
                                None => true,
                                Some(last) => now - last >= 3600,
                            };
                            if due {
                                last_rollup = Some(now);
                                roll_up_usage(&state, now).await;
                            }
                            state.shared.temporary_key_mints.write_summaries(state.store(), state.shared.clock.now_seconds(), false).await;
                        }
                        _ = stop.changed() => break,
                    }
                }
                // Whatever was counted before shutdown is written too.
                let shared = &state.shared;
                shared.key_budgets.flush_usage(&shared.usage, state.store(), shared.clock.now_seconds()).await;
                state.shared.temporary_key_mints.write_summaries(state.store(), state.shared.clock.now_seconds(), true).await;
            })
        });
        let node_heartbeat = state_for_heartbeat
            .filter(|state| state.store().is_postgres())
            .map(|state| tokio::spawn(beat_as_a_node(state, stop_receiver.clone())));
        let feed_follower = self_state_for_feed.map(|state| {
            let stop = stop_receiver.clone();
            tokio::spawn(async move {
                let interval = std::time::Duration::from_millis(state.shared.settings.feed_poll_interval_milliseconds);
                let now = || state.shared.clock.now_milliseconds();
                state.store().follow_changes(state.shared.feed_health.clone(), now, interval, stop).await;
            })
        });
        shutdown.await;
        let _ = stop_sender.send(true);
        if let Some(follower) = feed_follower {
            follower.await.context("change-feed follower panicked")?;
        }
        for task in tasks {
            task.await.context("listener task panicked")?;
        }
        if let Some(heartbeat) = node_heartbeat {
            heartbeat.await.context("node heartbeat panicked")?;
        }
        if let Some(flusher) = usage_flusher {
            flusher.await.context("usage flusher panicked")?;
        }
        // Last: the store's connections opened by a request on a connection runtime are
        // registered there, and the flush above may still have used them.
        if let Some(runtimes) = connection_runtimes.and_then(Arc::into_inner) {
            runtimes.stop().await;
        }
        Ok(())
    }
}

/// Rolls aging usage rows up and prunes the oldest (docs/CONTRACT.md#usage).
pub async fn roll_up_usage(state: &AppState, now_seconds: i64) {
    let settings = &state.shared.settings;
    let days = |days: u32| i64::from(days) * keygate_store::usage::DAY;
    let retention = keygate_store::usage::UsageRetention {
        hourly_after_seconds: days(settings.usage_hourly_after_days),
        daily_after_seconds: days(settings.usage_daily_after_days),
        keep_seconds: days(settings.usage_retention_days),
    };
    match state.store().roll_up_usage(now_seconds, &retention).await {
        Ok(report) => tracing::debug!(?report, "usage rolled up"),
        Err(error) => tracing::warn!(%error, "rolling usage up failed; will retry"),
    }
}

/// What one listener serves: its router, the state of what it serves before the router
/// (`/auth/verify` and the direct model calls; none on a plan or metrics listener), its region (for the log lines written before the router), and its
/// TLS when it speaks HTTPS.
struct Served {
    app: Router,
    state_before_router: Option<AppState>,
    region: Arc<str>,
    tls: Option<ListenerTls>,
}

/// How long a stopping listener waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Longest request target (path and query) served; longer ones get a 414 in the plane's
/// error shape.
pub(crate) const MAX_REQUEST_TARGET_BYTES: usize = 8 * 1024;

/// Serves one listener until `stop`: each connection with hyper's HTTP/1.1 builder (what
/// every SDK and proxy in front of keygate speaks), at most `limits.max_connections` at
/// once across the process (`gate`), each watched for the header-read and idle timeouts
/// (`crate::connections`). On an HTTPS listener the TLS handshake comes first, in the
/// connection's own task, under `limits.tls_handshake_timeout` and the watchdog (so a
/// client that stalls it is dropped, or shed at the cap, like one that sends no head), and
/// every request carries [`ServedOverTls`]. `/auth/verify` is answered here, before the router: it is on
/// the hot path of another gateway, reads only memory, and the router's per-request
/// machinery was a third of its cost (docs/PERFORMANCE.md). So are the two model calls
/// every client makes most (`gateway::DirectModelCall`: OpenAI-compatible chat and
/// Anthropic messages), with the handler and request context the router would give them.
/// Every other request goes to [`router`] with the peer address as `ConnectInfo`.
async fn serve_listener(
    listener: TcpListener,
    served: Served,
    gate: Arc<ConnectionTable>,
    placement: ConnectionPlacement,
    limits: ConnectionLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Served { app, state_before_router, region, tls } = served;
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    // Ends the connections idle in their front (`crate::connection_front`) when the
    // listener stops; each connection's task holds its `watcher` from accept to end, front
    // included, so `connections.shutdown()` waits for those in their front too.
    let stop_for_fronts = stop.clone();
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    tokio::pin!(stopped);
    let mut backoff = AcceptBackoff::default();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff.after_success();
                    accepted
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait, longer each time, instead
                    // of spinning.
                    let wait = backoff.after_failure();
                    tracing::warn!(%error, wait_milliseconds = wait.as_millis() as u64, "accepting a connection failed");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => continue,
                        () = &mut stopped => break,
                    }
                }
            },
            () = &mut stopped => break,
        };
        // At the cap, the connection that has waited longest for its client is shed to make
        // room, or, when every connection is busy, this one waits and the loop accepts no
        // more: the next ones wait in the kernel's backlog instead of taking descriptors
        // the node does not have. (A place taken before `accept` would be held by an idle
        // listener, starving the others that share the cap.)
        let permit = tokio::select! {
            slot = gate.admit() => match slot {
                Some(slot) => slot,
                None => break,
            },
            () = &mut stopped => break,
        };
        let _ = stream.set_nodelay(true);
        let over_tls = tls.is_some();
        let activity = permit.activity.clone();
        let app = app.clone();
        let front = state_before_router.clone().map(|state| (state, stop_for_fronts.clone()));
        let state_before_router = state_before_router.clone();
        let region = region.clone();
        let service_activity = activity.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            service_activity.request_started();
            if let Some(state) = state_before_router.as_ref().filter(|_| gateway::is_verify_request(&request)) {
                let found = gateway::verify_headers::VerifyHeaders::of(request.headers());
                if found.has_body() {
                    // Envoy with `with_request_body`: the model is in the body.
                    let (state, finished) = (state.clone(), service_activity.clone());
                    return Either::Right(Either::Left(Either::Right(
                        async move {
                            let answer = gateway::answer_verify_with_body(&state, peer.ip(), request).await;
                            finished.response_finished();
                            Ok(answer)
                        }
                        .boxed(),
                    )));
                }
                let answer = gateway::answer_verify(state, peer.ip(), gateway::target_of(request.uri()), found);
                // The answer has no body: it is written as soon as it is returned.
                service_activity.response_finished();
                return Either::Left(std::future::ready(Ok::<_, Infallible>(answer)));
            }
            let body_activity = service_activity.clone();
            let watched =
                move |response: axum::response::Response| response.map(|body| axum::body::Body::new(WatchedBody::new(body, body_activity)));
            if request.uri().path_and_query().map_or(0, |target| target.as_str().len()) > MAX_REQUEST_TARGET_BYTES {
                let started = crate::request_context::RequestStart::now();
                let request_id = crate::request_context::new_request_id();
                let refusal = crate::planes::refusal_for_path(
                    request.headers(),
                    request.uri().path(),
                    axum::http::StatusCode::URI_TOO_LONG,
                    "RequestURITooLong",
                    &format!("The request target is longer than {MAX_REQUEST_TARGET_BYTES} bytes."),
                    &request_id,
                );
                // Refused before the router, so its middleware does not log it.
                let path = request.uri().path();
                crate::request_context::log_request(&request_id, &region, request.method(), path, refusal.status(), started);
                return Either::Right(Either::Left(Either::Left(std::future::ready(Ok(watched(refusal))))));
            }
            if let Some((state, call)) = state_before_router
                .as_ref()
                .and_then(|state| gateway::DirectModelCall::of(request.method(), request.uri().path()).map(|call| (state.clone(), call)))
            {
                let request = request.map(axum::body::Body::new);
                return Either::Right(Either::Left(Either::Right(
                    async move { Ok(watched(call.serve(state, peer.ip(), request).await)) }.boxed(),
                )));
            }
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            if over_tls {
                request.extensions_mut().insert(ServedOverTls);
            }
            Either::Right(Either::Right(app.clone().oneshot(request).map(move |result| result.map(watched))))
        });
        // Taken now: a handshake finished after shutdown began is closed gracefully at once.
        let watcher = connections.watcher();
        let tls = tls.clone();
        placement.spawn(stream, move |stream| async move {
            let _permit = permit;
            let stream = match tls {
                None => ClientStream::Plain(stream),
                Some(tls) => {
                    let handshake = tokio::select! {
                        handshake = tokio::time::timeout(limits.tls_handshake_timeout, tls.acceptor().accept(stream)) => handshake,
                        // Shed to make room, or past the header-read deadline.
                        () = watchdog(activity.clone(), limits) => return,
                    };
                    match handshake {
                        Ok(Ok(stream)) => {
                            activity.handshake_finished();
                            ClientStream::Tls(Box::new(stream))
                        }
                        // Plain HTTP sent to an HTTPS port, a scanner, a client that does
                        // not trust the certificate: the client's business, not a warning.
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed; connection closed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake not done within tls_handshake_timeout_seconds; connection closed");
                            return;
                        }
                    }
                }
            };
            // The watchdog runs in a task of its own and aborts the connection: selected
            // beside it, it was polled at every wake of the connection (every read and
            // write), a twentieth of a `/auth/verify` answer's instructions; an abort flag
            // is one atomic load per poll.
            let (abort, abort_registration) = futures_util::future::AbortHandle::new_pair();
            let watched_activity = activity.clone();
            let watchdog_task = tokio::spawn(async move {
                watchdog(watched_activity, limits).await;
                abort.abort();
            });
            let served = async move {
                let stream = WatchedStream::new(stream, activity.clone());
                // `/auth/verify` is answered in front of hyper; the first other request
                // hands the connection, and the bytes read so far, to hyper.
                let stream = match front {
                    Some((state, stop)) => match crate::connection_front::serve_front(stream, &state, peer.ip(), &activity, stop).await {
                        crate::connection_front::FrontEnd::Closed => return,
                        crate::connection_front::FrontEnd::HandOver(stream) => stream,
                    },
                    None => stream,
                };
                let connection = hyper::server::conn::http1::Builder::new()
                    .max_buf_size(MAX_REQUEST_HEAD_BYTES)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let _ = watcher.watch(connection).await;
            };
            // Too slow with its head, or idle too long: the aborted connection is dropped,
            // which closes it. A client that goes away mid-request is the client's business.
            let _ = futures_util::future::Abortable::new(served, abort_registration).await;
            watchdog_task.abort();
        });
    }
    drop(listener);
    tokio::select! {
        _ = connections.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("connections still open after the shutdown grace period"),
    }
}
