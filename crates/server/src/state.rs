//! The state shared by every handler: the store, settings, master key and catalog, plus the
//! region of the listener a request arrived on.

use std::sync::Arc;

use keygate_core::catalog::ModelCatalog;
use keygate_core::ip_allowlist::IpNetwork;
use keygate_core::region::RegionPolicy;
use keygate_store::feed::FeedHealth;
use keygate_store::Store;

use keygate_core::temporary_keys::TemporaryKeySecret;
use keygate_core::verification::KeyEndpoint;

use crate::clock::Clock;
use crate::key_budgets::KeyBudgets;
use crate::limiter::{counter_for, LimitCounter, LiveNodes};
use crate::metrics_registry::Metrics;
use crate::operations::Operations;
use crate::provider_objects::ProviderObjects;
use crate::secrets::MasterKey;
use crate::settings::{ListenerSettings, Settings};
use crate::throttle::{FailedAuthenticationThrottle, MintCounter, WindowCounter};
use crate::upstreams::UpstreamTable;
use crate::usage::UsageCounters;

/// What every listener shares.
#[derive(Debug)]
pub struct SharedState {
    pub store: Store,
    pub settings: Settings,
    pub master_key: MasterKey,
    pub catalog: ModelCatalog,
    pub trusted_proxies: Vec<IpNetwork>,
    pub served_regions: Vec<String>,
    pub clock: Arc<Clock>,
    pub temporary_key_secret: TemporaryKeySecret,
    pub upstreams: UpstreamTable,
    pub throttle: FailedAuthenticationThrottle,
    /// Failed logins per address (API and console).
    pub login_throttle: FailedAuthenticationThrottle,
    /// Temporary keys minted per API key per minute.
    pub temporary_key_mints: MintCounter,
    pub usage: UsageCounters,
    /// What keys with a budget spent in their current period (docs/CONTRACT.md#per-key-limits).
    pub key_budgets: KeyBudgets,
    /// Counts model calls against the limits of their workspace and model, and of their key.
    pub limiter: Box<dyn LimitCounter>,
    /// Which workspace made each provider object (a Responses API response) a key may name.
    pub provider_objects: ProviderObjects,
    /// This process's name among the nodes (heartbeats, Redis's in-flight counts): random.
    pub node_id: String,
    /// When this node started (Unix ms).
    pub started_at: i64,
    /// The live nodes the heartbeats count (PostgreSQL; 1 on SQLite), which divide each
    /// limit into node shares when there is no Redis.
    pub live_nodes: Arc<LiveNodes>,
    pub metrics: Metrics,
    /// When this node last confirmed its registry against the change feed.
    pub feed_health: Arc<FeedHealth>,
    /// The bound address of each pay-as-you-go listener with its region (port 0 resolved),
    /// set once the listeners are bound; the console shows them as base URLs.
    pub listener_addresses: std::sync::OnceLock<Vec<(std::net::SocketAddr, String)>>,
}

/// Handler state: the shared parts and this listener's region and kind.
#[derive(Debug, Clone)]
pub struct AppState {
    pub shared: Arc<SharedState>,
    pub listener_region: String,
    /// Which keys this listener's model calls take: pay-as-you-go, or (a plan listener)
    /// only plan keys.
    pub key_endpoint: KeyEndpoint,
}

impl AppState {
    pub fn new(store: Store, settings: Settings, master_key: MasterKey, listener_region: String) -> anyhow::Result<AppState> {
        let catalog = settings.catalog();
        let trusted_proxies = settings
            .trusted_proxies
            .iter()
            .map(|entry| IpNetwork::parse(entry).map_err(|error| anyhow::anyhow!("trusted_proxies: {error}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let served_regions = settings.served_regions();
        let temporary_key_secret = TemporaryKeySecret::new(master_key.derive("temporary-keys"));
        let upstreams = UpstreamTable::from_settings(&settings.upstreams, settings.demo_upstream)?;
        let throttle = FailedAuthenticationThrottle::new(settings.failed_authentications_per_minute);
        let login_throttle = FailedAuthenticationThrottle::new(settings.failed_logins_per_minute);
        let temporary_key_mints = MintCounter::new(WindowCounter::new(settings.temporary_keys_per_minute));
        let clock = Arc::new(Clock::default());
        let mut node_random = [0u8; 8];
        keygate_core::random::fill_random(&mut node_random);
        let node_id = hex::encode(node_random);
        let live_nodes = Arc::new(LiveNodes::default());
        let limiter = counter_for(&settings, store.is_postgres(), &node_id, live_nodes.clone(), clock.clone())?;
        // The price table was checked when the settings were loaded.
        let key_budgets = KeyBudgets::new(settings.price_table().unwrap_or_default());
        let shared = SharedState {
            store,
            settings,
            master_key,
            catalog,
            trusted_proxies,
            served_regions,
            temporary_key_secret,
            upstreams,
            throttle,
            login_throttle,
            temporary_key_mints,
            usage: UsageCounters::default(),
            key_budgets,
            limiter,
            provider_objects: ProviderObjects::default(),
            node_id,
            started_at: clock.now_milliseconds(),
            live_nodes,
            metrics: Metrics::default(),
            feed_health: Arc::new(FeedHealth::new(clock.now_milliseconds())),
            listener_addresses: std::sync::OnceLock::new(),
            clock,
        };
        Ok(AppState { shared: Arc::new(shared), listener_region, key_endpoint: KeyEndpoint::PayAsYouGo })
    }

    /// The same shared state for `listener`.
    pub fn for_listener(&self, listener: &ListenerSettings) -> AppState {
        AppState { shared: self.shared.clone(), listener_region: listener.region.clone(), key_endpoint: listener.key_endpoint() }
    }

    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The operations layer over this state's store, master key, settings and clock.
    pub fn operations(&self) -> Operations<'_> {
        let shared = &*self.shared;
        Operations::new(&shared.store, &shared.master_key, &shared.settings, &shared.catalog, &shared.clock)
    }

    /// Why this node cannot confirm its keys right now: its registry has not been confirmed
    /// against the change feed for longer than `max_staleness_seconds` (PostgreSQL only;
    /// an embedded SQLite file is always current).
    pub fn staleness_problem(&self) -> Option<String> {
        if !self.store().is_postgres() {
            return None;
        }
        let stale_for = self.shared.feed_health.staleness_milliseconds(self.shared.clock.now_milliseconds());
        let limit = i64::try_from(self.shared.settings.max_staleness_seconds).unwrap_or(i64::MAX).saturating_mul(1000);
        (stale_for > limit).then(|| {
            let cause = self.shared.feed_health.last_error().unwrap_or_else(|| "no answer from the change feed".into());
            format!(
                "the key registry has not been confirmed for {} ms (limit {} s): {cause}",
                stale_for, self.shared.settings.max_staleness_seconds
            )
        })
    }

    /// The policy of a region this deployment knows.
    pub fn region_policy(&self, region: &str) -> Option<&RegionPolicy> {
        self.shared.settings.regions.get(region)
    }
}
