//! Criterion benchmark of in-process key verification (docs/CONTRACT.md#performance-targets: at most 300 ns for a
//! cached key: parse, checksum, digest, lookup, policy). Run with
//! `cargo bench -p keygate-core --bench verification`; results are in docs/PERFORMANCE.md.
//!
//! The registry is filled the way the store fills it (one `Arc<CompiledKey>` with its own
//! strings per key). Each measured call presents the next key of a sample of 4,096 live
//! keys spread over the whole registry, so that lookups are not all served from one hot
//! cache line.
//!
//! `KEYGATE_BENCH_CLOCK=cpu` measures the benchmarking thread's on-CPU time instead of
//! wall-clock time (group `verification_cpu`), for a machine shared with other work.

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use keygate_core::ip_allowlist::IpAllowlist;
use keygate_core::keys::{expose, generate_key, parse_permanent_key, KeyDigest, KeyFormat};
use keygate_core::permissions::{AppScope, CustomPermissions, KeyAuth, ModelScope};
use keygate_core::temporary_keys::{mint_temporary_key, TemporaryKeySecret};
use keygate_core::verification::{
    authorize_call, CallFacts, CallTarget, CompiledKey, KeyEndpoint, KeyRegistry, KeyStanding, RegistryUpdate, WorkspaceGrants,
};

const REGION: &str = "ap-southeast-1";
const WORKSPACE: &str = "llm-benchbenchbench0";
/// Keys presented in turn by the measured loops (a power of two, for a cheap wrap-around).
const SAMPLE: usize = 4096;
/// Keys applied per registry update while filling, as the store does in batches.
const FILL_BATCH: usize = 10_000;

fn custom_auth() -> KeyAuth {
    KeyAuth::Custom(Box::new(CustomPermissions {
        access_ips: IpAllowlist::parse(&["192.0.2.0/24", "10.0.0.0/8", "2001:db8::/32"]).expect("valid allowlist"),
        model_scope: ModelScope { allow_all_models: false, accessible_models: vec!["qwen-max".into(), "qwen-plus".into()] },
        app_scope: AppScope::everything(),
    }))
}

/// A registry of `count` live keys, every fourth one `Custom` and the rest `All`, with the
/// plaintexts of an evenly spread sample of `SAMPLE` keys of each kind.
struct Fixture {
    registry: KeyRegistry,
    all_keys: Vec<String>,
    custom_keys: Vec<String>,
}

fn fixture(count: usize) -> Fixture {
    let registry = KeyRegistry::new();
    let stride = count / SAMPLE;
    let (mut all_keys, mut custom_keys) = (Vec::with_capacity(SAMPLE), Vec::with_capacity(SAMPLE));
    let mut batch = Vec::with_capacity(FILL_BATCH);
    for index in 0..count {
        let generated = generate_key(KeyFormat::Secure);
        let custom = index % 4 == 3;
        let key = CompiledKey {
            key_id: index as i64 + 1,
            account_id: 1,
            account_name: "root".into(),
            region: REGION.into(),
            workspace_id: WORKSPACE.into(),
            creator_user_id: None,
            format: KeyFormat::Secure,
            standing: KeyStanding::Usable,
            auth: if custom { custom_auth() } else { KeyAuth::All },
            expires_at: None,
            grace_secret: None,
            limits: None,
        };
        if index % stride == 0 && all_keys.len() < SAMPLE {
            all_keys.push(expose(&generated.plaintext).to_string());
        }
        if index % stride == 3 && custom_keys.len() < SAMPLE {
            custom_keys.push(expose(&generated.plaintext).to_string());
        }
        batch.push(RegistryUpdate::Key { digest: generated.digest, key: Arc::new(key) });
        if batch.len() == FILL_BATCH {
            registry.apply(1, std::mem::take(&mut batch));
        }
    }
    let grants = Arc::new(WorkspaceGrants {
        workspace_id: WORKSPACE.into(),
        is_default: false,
        inference_models: vec!["qwen-max".into(), "qwen-plus".into(), "qwen-turbo".into()],
        applications: Vec::new(),
        model_limits: Vec::new(),
    });
    batch.push(RegistryUpdate::Workspace(grants));
    registry.apply(1, batch);
    assert_eq!(registry.live_key_count(), count);
    Fixture { registry, all_keys, custom_keys }
}

/// Presents `keys` in turn to `call`.
fn rotate<'a>(keys: &'a [String]) -> impl FnMut() -> &'a str {
    assert!(keys.len().is_power_of_two());
    let mut next = 0usize;
    move || {
        next = (next + 1) & (keys.len() - 1);
        &keys[next]
    }
}

/// A secure key whose last checksum character is changed.
fn with_bad_checksum(key: &str) -> String {
    let mut text = key.to_string();
    let last = text.pop().expect("non-empty");
    text.push(if last == 'a' { 'b' } else { 'a' });
    text
}

/// On-CPU time of the benchmarking thread, from `/proc/thread-self/schedstat` (Linux):
/// time spent waiting for a CPU taken by other processes is not counted. The kernel
/// advances it at scheduler ticks (every few milliseconds), so it is exact only over long
/// samples: this clock uses flat sampling, 100 samples of about 50 ms each.
struct ThreadCpuTime;

static WALL_TIME: WallTime = WallTime;

fn thread_cpu_nanoseconds() -> u64 {
    let text =
        std::fs::read_to_string("/proc/thread-self/schedstat").expect("KEYGATE_BENCH_CLOCK=cpu needs Linux's /proc/thread-self/schedstat");
    text.split_whitespace().next().and_then(|field| field.parse().ok()).expect("schedstat starts with the on-CPU nanoseconds")
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = Duration;

    fn start(&self) -> u64 {
        thread_cpu_nanoseconds()
    }

    fn end(&self, started: u64) -> Duration {
        Duration::from_nanos(thread_cpu_nanoseconds().saturating_sub(started))
    }

    fn add(&self, first: &Duration, second: &Duration) -> Duration {
        *first + *second
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Nanoseconds, shown as durations like wall-clock time.
        WALL_TIME.formatter()
    }
}

fn bench_registry<M: Measurement>(criterion: &mut Criterion<M>, clock: Clock, count: usize, full: bool) {
    let started = std::time::Instant::now();
    let Fixture { registry, all_keys, custom_keys } = fixture(count);
    eprintln!("registry of {count} keys filled in {:.2?}", started.elapsed());
    let label = if count >= 1_000_000 { format!("{}M", count / 1_000_000) } else { format!("{}k", count / 1000) };

    let mut group = criterion.benchmark_group(clock.group_name());
    group.throughput(Throughput::Elements(1));
    if clock == Clock::ThreadCpu {
        group.sampling_mode(SamplingMode::Flat);
    }

    // Parse + CRC32 + SHA-256 + lookup + region and standing: the 300 ns target's path.
    let mut next = rotate(&all_keys);
    group.bench_function(BenchmarkId::new("authenticate_valid_secure", &label), |bencher| {
        bencher.iter(|| registry.authenticate(black_box(next()), REGION, 1_700_000_000).expect("valid"))
    });

    if full {
        // The same key every time: everything stays in the CPU caches (the best case).
        let hot = all_keys[0].clone();
        group.bench_function(BenchmarkId::new("authenticate_valid_secure_hot", &label), |bencher| {
            bencher.iter(|| registry.authenticate(black_box(&hot), REGION, 1_700_000_000).expect("valid"))
        });

        // Everything the gateway does per call for a Custom key: authenticate, the
        // workspace's grants, then the address, workspace header and model checks.
        let client: IpAddr = "10.1.2.3".parse().expect("address");
        let mut next = rotate(&custom_keys);
        group.bench_function(BenchmarkId::new("authenticate_authorize_custom", &label), |bencher| {
            bencher.iter(|| {
                let key = registry.authenticate(black_box(next()), REGION, 1_700_000_000).expect("valid");
                let grants = registry.workspace(&key.workspace_id);
                let facts =
                    CallFacts { client_address: Some(client), workspace_header: Some(WORKSPACE), target: CallTarget::Model("qwen-plus") };
                authorize_call(&key, grants.as_deref(), &facts, |model| model.starts_with("qwen")).expect("allowed");
            })
        });

        // Refused by the CRC32 before any digest or lookup.
        let bad: Vec<String> = all_keys.iter().map(|key| with_bad_checksum(key)).collect();
        let mut next = rotate(&bad);
        group.bench_function(BenchmarkId::new("reject_bad_checksum", &label), |bencher| {
            bencher.iter(|| registry.authenticate(black_box(next()), REGION, 1_700_000_000).expect_err("bad checksum"))
        });

        // Well-formed, checksum holds, digest not in the registry.
        let unknown: Vec<String> = (0..SAMPLE).map(|_| expose(&generate_key(KeyFormat::Secure).plaintext).to_string()).collect();
        let mut next = rotate(&unknown);
        group.bench_function(BenchmarkId::new("reject_unknown", &label), |bencher| {
            bencher.iter(|| registry.authenticate(black_box(next()), REGION, 1_700_000_000).expect_err("unknown"))
        });

        // A temporary `st-` key: base62 decode + HMAC-SHA256 + parent lookup (no target).
        let secret = TemporaryKeySecret::new([7; 32]);
        let temporary: Vec<String> = all_keys
            .iter()
            .map(|key| {
                let parent = registry.authenticate(key, REGION, 1_700_000_000).expect("valid");
                let digest = registry.digest_of(parent.key_id).expect("live");
                mint_temporary_key(&secret, parent.key_id, &digest, 4_000_000_000)
            })
            .collect();
        let mut next = rotate(&temporary);
        group.bench_function(BenchmarkId::new("authenticate_temporary", &label), |bencher| {
            bencher.iter(|| {
                registry.authenticate_any(black_box(next()), REGION, KeyEndpoint::PayAsYouGo, &secret, 1_700_000_000).expect("valid")
            })
        });

        // The parts, to see where the time goes.
        let mut next = rotate(&all_keys);
        group.bench_function("part_parse_checksum_and_digest", |bencher| {
            bencher.iter(|| parse_permanent_key(black_box(next())).expect("valid"))
        });
        let mut next = rotate(&all_keys);
        group.bench_function("part_sha256_only", |bencher| bencher.iter(|| KeyDigest::of(black_box(next()))));
        let digests: Vec<KeyDigest> = all_keys.iter().map(|key| KeyDigest::of(key)).collect();
        let mut index = 0usize;
        group.bench_function(BenchmarkId::new("part_lookup_only", &label), |bencher| {
            bencher.iter(|| {
                index = (index + 1) & (SAMPLE - 1);
                registry.lookup(black_box(&digests[index])).expect("live")
            })
        });
    }
    group.finish();
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Clock {
    Wall,
    ThreadCpu,
}

impl Clock {
    fn group_name(self) -> &'static str {
        match self {
            Clock::Wall => "verification",
            Clock::ThreadCpu => "verification_cpu",
        }
    }
}

fn verification<M: Measurement>(criterion: &mut Criterion<M>, clock: Clock) {
    bench_registry(criterion, clock, 100_000, true);
    // One million keys: the same valid-key path, to show how the lookup holds up.
    bench_registry(criterion, clock, 1_000_000, false);
}

/// What `criterion_group!`/`criterion_main!` would generate, with the clock chosen at run
/// time.
fn main() {
    let configured = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    if std::env::var("KEYGATE_BENCH_CLOCK").as_deref() == Ok("cpu") {
        let mut criterion = configured.with_measurement(ThreadCpuTime).configure_from_args();
        verification(&mut criterion, Clock::ThreadCpu);
        criterion.final_summary();
    } else {
        let mut criterion = configured.configure_from_args();
        verification(&mut criterion, Clock::Wall);
        criterion.final_summary();
    }
}
