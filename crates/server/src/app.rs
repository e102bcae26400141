//! Building the application: [`router`] for in-process tests, and [`Server`] that binds
//! one listener per region and runs until shutdown.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use crate::bootstrap::{bootstrap, Bootstrapped};
use crate::gateway;
use crate::management::{authentication, keygate_api, model_studio};
use crate::request_context::attach_request_context;
use crate::settings::Settings;
use crate::state::AppState;

/// The whole HTTP surface of one listener.
pub fn router(state: AppState) -> Router {
    let authenticated = Router::new()
        .merge(model_studio::routes())
        .merge(keygate_api::authenticated_routes())
        .route_layer(from_fn_with_state(state.clone(), authentication::require_authentication));
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readiness))
        .route("/metrics", get(crate::metrics::metrics_endpoint))
        .merge(keygate_api::public_routes())
        .merge(crate::console::routes())
        .merge(gateway::routes())
        .merge(authenticated)
        .layer(from_fn_with_state(state.clone(), attach_request_context))
        // Added after the layer, so outside it: `/auth/verify` makes its own context.
        .merge(gateway::verify_routes())
        .with_state(state)
}

/// `/readyz`: 200 while this node can confirm its keys, 503 with the reason when not.
async fn readiness(axum::extract::State(state): axum::extract::State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let feed_version = state.shared.feed_health.cursor();
    match state.staleness_problem() {
        None => Json(json!({"status": "ready", "feedVersion": feed_version})).into_response(),
        Some(reason) => {
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "stale", "reason": reason, "feedVersion": feed_version})))
                .into_response()
        }
    }
}

/// Bound listeners, ready to run.
pub struct Server {
    listeners: Vec<(TcpListener, AppState)>,
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
            let bound = TcpListener::bind(listener.addr).await.with_context(|| format!("binding {}", listener.addr))?;
            listeners.push((bound, state.for_region(&listener.region)));
        }
        Ok(Server { listeners, generated_root_password })
    }

    /// The bound addresses with their regions (port 0 resolved).
    pub fn local_addresses(&self) -> Vec<(SocketAddr, String)> {
        self.listeners
            .iter()
            .filter_map(|(listener, state)| listener.local_addr().ok().map(|address| (address, state.listener_region.clone())))
            .collect()
    }

    /// The state shared by every listener (tests use its store).
    pub fn state(&self) -> Option<AppState> {
        self.listeners.first().map(|(_, state)| state.clone())
    }

    /// Serves every listener until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
        let state_for_flush = self.state();
        let self_state_for_feed = self.state();
        let mut tasks = Vec::new();
        for (listener, state) in self.listeners {
            let mut stop = stop_receiver.clone();
            let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
            tasks.push(tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|stopped| *stopped).await;
                    })
                    .await
            }));
        }
        let usage_flusher = state_for_flush.map(|state| {
            let mut stop = stop_receiver.clone();
            tokio::spawn(async move {
                let interval = std::time::Duration::from_millis(state.shared.settings.usage_flush_interval_milliseconds);
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => state.shared.usage.flush(state.store()).await,
                        _ = stop.changed() => break,
                    }
                }
                // Whatever was counted before shutdown is written too.
                state.shared.usage.flush(state.store()).await;
            })
        });
        let feed_follower = self_state_for_feed.map(|state| {
            let stop = stop_receiver.clone();
            tokio::spawn(async move {
                let interval = std::time::Duration::from_millis(state.shared.settings.feed_poll_interval_milliseconds);
                state.store().follow_changes(state.shared.feed_health.clone(), interval, stop).await;
            })
        });
        shutdown.await;
        let _ = stop_sender.send(true);
        if let Some(follower) = feed_follower {
            follower.await.context("change-feed follower panicked")?;
        }
        for task in tasks {
            task.await.context("listener task panicked")?.context("listener failed")?;
        }
        if let Some(flusher) = usage_flusher {
            flusher.await.context("usage flusher panicked")?;
        }
        Ok(())
    }
}
