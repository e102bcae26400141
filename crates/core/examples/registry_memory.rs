//! Resident memory and fill time of a `KeyRegistry` holding N keys (docs/CONTRACT.md#performance-targets: one
//! million keys in at most 300 MB). Run with
//! `cargo run --release -p keygate-core --example registry_memory -- 1000000`.
//!
//! Keys are shaped as in benches/verification.rs (every fourth one `Custom` with three
//! networks and two models, each key with its own strings, as the store compiles them, which
//! the registry then shares) and
//! applied in batches of 10,000. Resident memory is `VmRSS` from /proc/self/status (Linux)
//! before and after; the fill time counts only `KeyRegistry::apply`, not making the keys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keygate_core::ip_allowlist::IpAllowlist;
use keygate_core::keys::{generate_key, KeyFormat};
use keygate_core::permissions::{AppScope, CustomPermissions, KeyAuth, ModelScope};
use keygate_core::verification::{CompiledKey, KeyRegistry, KeyStanding, RegistryUpdate};

const BATCH: usize = 10_000;

/// Resident set size in bytes, from /proc/self/status.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

fn compiled(index: usize) -> CompiledKey {
    let auth = if index % 4 == 3 {
        KeyAuth::Custom(Box::new(CustomPermissions {
            access_ips: IpAllowlist::parse(&["192.0.2.0/24", "10.0.0.0/8", "2001:db8::/32"]).expect("valid allowlist"),
            model_scope: ModelScope { allow_all_models: false, accessible_models: vec!["qwen-max".into(), "qwen-plus".into()] },
            app_scope: AppScope::everything(),
        }))
    } else {
        KeyAuth::All
    };
    CompiledKey {
        key_id: index as i64 + 1,
        account_id: 1,
        account_name: "root".into(),
        region: "ap-southeast-1".into(),
        workspace_id: "llm-benchbenchbench0".into(),
        creator_user_id: None,
        format: KeyFormat::Secure,
        standing: KeyStanding::Usable,
        auth,
        expires_at: None,
        grace_secret: None,
        limits: None,
    }
}

fn main() {
    let count: usize = std::env::args().nth(1).map(|text| text.parse().expect("N is a number of keys")).unwrap_or(1_000_000);
    let registry = KeyRegistry::new();
    let before = resident_bytes().unwrap_or(0);
    let mut applying = Duration::ZERO;
    let mut batch = Vec::with_capacity(BATCH);
    for index in 0..count {
        let digest = generate_key(KeyFormat::Secure).digest;
        batch.push(RegistryUpdate::Key { digest, key: Arc::new(compiled(index)) });
        if batch.len() == BATCH || index + 1 == count {
            let started = Instant::now();
            registry.apply(1, std::mem::take(&mut batch));
            applying += started.elapsed();
        }
    }
    let after = resident_bytes().unwrap_or(0);
    assert_eq!(registry.live_key_count(), count);
    let grown = after.saturating_sub(before);
    println!("keys: {count}");
    println!("resident before: {:.1} MiB, after: {:.1} MiB", before as f64 / 1048576.0, after as f64 / 1048576.0);
    println!("registry resident: {:.1} MiB ({} bytes per key)", grown as f64 / 1048576.0, grown / count.max(1) as u64);
    println!("KeyRegistry::apply total: {applying:.2?}");
}
