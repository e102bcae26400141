//! The Redis limit counter (`limiter/redis_counter.rs`) against the machine's Redis, each
//! test under a key prefix of its own: two counters on one Redis behave as two nodes
//! sharing windows, a client's strings cannot merge subjects, calls in flight are bounded
//! across counters and a crashed counter's calls stop counting, and an unreachable Redis
//! fails open (this node's share) or closed as configured. Each test announces itself
//! skipped without `KEYGATE_TEST_REDIS_URL`.

use std::sync::Arc;
use std::time::Duration;

use keygate_core::limits::{EffectiveLimits, LimitKind, RateLimit};
use keygate_server::clock::Clock;
use keygate_server::limiter::{LimitCounter, LimitSubject, LiveNodes, RedisLimitCounter, RedisOptions};

use crate::helpers::{announce_redis_skip, redis_test_prefix, redis_test_url};

fn options(url: &str, prefix: &str, node: &str, fail_closed: bool) -> RedisOptions {
    RedisOptions {
        url: url.to_string(),
        key_prefix: prefix.to_string(),
        timeout: Duration::from_millis(200),
        fail_closed,
        node_id: node.to_string(),
        heartbeat: Duration::from_secs(1),
    }
}

fn counter(url: &str, prefix: &str, node: &str) -> RedisLimitCounter {
    RedisLimitCounter::new(options(url, prefix, node, false), Arc::new(LiveNodes::default()), Arc::new(Clock::default())).expect("counter")
}

/// Waits (up to 10 s) until `counter` has reached Redis.
async fn connected(counter: &RedisLimitCounter) {
    for _ in 0..500 {
        if counter.health().healthy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the counter never reached Redis: {:?}", counter.health());
}

fn requests(limit: u64) -> EffectiveLimits {
    EffectiveLimits { requests: Some(RateLimit { limit, period_seconds: 3600 }), tokens: None }
}

fn workspace_model<'a>(workspace_id: &'a str, model: &'a str) -> LimitSubject<'a> {
    LimitSubject::Model { workspace_id, model }
}

/// A moment in the middle of an hour, so that a test's calls share a window.
const MID_HOUR: i64 = 1_800_000_000 + 1800;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_counters_on_one_redis_share_a_request_window() {
    let Some(url) = redis_test_url() else { return announce_redis_skip("two_counters_on_one_redis_share_a_request_window") };
    let prefix = redis_test_prefix();
    let (node_a, node_b) = (counter(&url, &prefix, "a"), counter(&url, &prefix, "b"));
    connected(&node_a).await;
    connected(&node_b).await;
    let subject = workspace_model("llm-w", "qwen-plus");
    let mut admitted = 0;
    for call in 0..15 {
        let node = if call % 2 == 0 { &node_a } else { &node_b };
        let admission = node.admit(subject, requests(10), MID_HOUR).await;
        if admission.refused_by.is_none() {
            admitted += 1;
        } else {
            assert_eq!(admission.refused_by, Some(LimitKind::Requests));
            assert_eq!(admission.requests.map(|standing| (standing.limit, standing.remaining)), Some((10, 0)));
            assert_eq!(admission.retry_after_seconds(), 1800);
        }
    }
    assert_eq!(admitted, 10);
    // The next window starts empty, and so does another workspace's.
    assert_eq!(node_a.admit(subject, requests(10), MID_HOUR + 3600).await.refused_by, None);
    assert_eq!(node_b.admit(workspace_model("llm-x", "qwen-plus"), requests(10), MID_HOUR).await.refused_by, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_whose_strings_could_be_joined_alike_count_apart() {
    let Some(url) = redis_test_url() else { return announce_redis_skip("subjects_whose_strings_could_be_joined_alike_count_apart") };
    let prefix = redis_test_prefix();
    let node = counter(&url, &prefix, "a");
    connected(&node).await;
    let first = workspace_model("a:b", "c");
    assert_eq!(node.admit(first, requests(1), MID_HOUR).await.refused_by, None);
    assert_eq!(node.admit(first, requests(1), MID_HOUR).await.refused_by, Some(LimitKind::Requests));
    for other in [workspace_model("a", "b:c"), workspace_model("a%3Ab", "c"), LimitSubject::Key { key_id: 7 }] {
        assert_eq!(node.admit(other, requests(1), MID_HOUR).await.refused_by, None, "{other:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_charged_on_one_counter_refuse_calls_on_the_other_without_using_a_request() {
    let Some(url) = redis_test_url() else { return announce_redis_skip("tokens_charged_on_one_counter_refuse_calls_on_the_other") };
    let prefix = redis_test_prefix();
    let (node_a, node_b) = (counter(&url, &prefix, "a"), counter(&url, &prefix, "b"));
    connected(&node_a).await;
    connected(&node_b).await;
    let subject = workspace_model("llm-w", "qwen-plus");
    let token_limit = RateLimit { limit: 100, period_seconds: 60 };
    let limits = EffectiveLimits { requests: Some(RateLimit { limit: 5, period_seconds: 60 }), tokens: Some(token_limit) };
    let first = node_a.admit(subject, limits, MID_HOUR).await;
    assert_eq!(first.refused_by, None);
    assert_eq!(first.tokens.map(|standing| standing.remaining), Some(100));
    node_a.charge(subject, token_limit, 150, MID_HOUR);
    // The charge is sent in the background: wait until node B sees it.
    let mut refused = None;
    for _ in 0..250 {
        let admission = node_b.admit(subject, limits, MID_HOUR).await;
        if admission.refused_by.is_some() {
            refused = Some(admission);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = refused.expect("the charge reached Redis");
    assert_eq!(refused.refused_by, Some(LimitKind::Tokens));
    assert_eq!(refused.tokens.map(|standing| standing.remaining), Some(0));
    assert_eq!(refused.retry_after_seconds(), 60);
    // Refused for tokens, the calls used no request: in the next window all five pass.
    let admitted = {
        let mut admitted = 0;
        for _ in 0..6 {
            if node_b.admit(subject, limits, MID_HOUR + 60).await.refused_by.is_none() {
                admitted += 1;
            }
        }
        admitted
    };
    assert_eq!(admitted, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_are_bounded_across_counters_and_a_crashed_counters_calls_stop_counting() {
    let Some(url) = redis_test_url() else { return announce_redis_skip("calls_in_flight_are_bounded_across_counters") };
    let prefix = redis_test_prefix();
    let (node_a, node_b) = (counter(&url, &prefix, "a"), counter(&url, &prefix, "b"));
    connected(&node_a).await;
    connected(&node_b).await;
    let key = LimitSubject::Key { key_id: 17 };
    assert_eq!(node_a.enter(key, 3).await, Ok(1));
    assert_eq!(node_b.enter(key, 3).await, Ok(2));
    assert_eq!(node_a.enter(key, 3).await, Ok(3));
    assert_eq!(node_b.enter(key, 3).await, Err(3));
    // A release is sent in the background: B gets the place once it has arrived.
    node_b.leave(key);
    let mut entered = Err(0);
    for _ in 0..250 {
        entered = node_b.enter(key, 3).await;
        if entered.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(entered, Ok(3));
    // Node A dies with two calls in flight: within three of its heartbeats (1 s here) they
    // stop counting, and B may run three.
    drop(node_a);
    let mut entered = Vec::new();
    for _ in 0..500 {
        if node_b.enter(key, 3).await.is_ok() {
            entered.push(());
            if entered.len() == 2 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(entered.len(), 2, "node A's calls still count");
    assert_eq!(node_b.enter(key, 3).await, Err(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_fails_open_to_this_nodes_share_or_closed_when_asked() {
    let Some(_) = redis_test_url() else { return announce_redis_skip("an_unreachable_redis_fails_open_or_closed") };
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("redis://127.0.0.1:{port}");
    let live_nodes = Arc::new(LiveNodes::default());
    live_nodes.set(2);
    let open = RedisLimitCounter::new(options(&url, "kg-unused:", "a", false), live_nodes.clone(), Arc::new(Clock::default())).unwrap();
    let closed = RedisLimitCounter::new(options(&url, "kg-unused:", "b", true), live_nodes, Arc::new(Clock::default())).unwrap();
    let subject = workspace_model("llm-w", "qwen-plus");
    // Fail open: this node's share of 10 among 2 nodes.
    let mut admitted = 0;
    for _ in 0..10 {
        let admission = open.admit(subject, requests(10), MID_HOUR).await;
        assert!(!admission.unavailable);
        if admission.refused_by.is_none() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5);
    let health = open.health();
    assert!(!health.healthy && !health.refusing() && health.fallback_admissions == 10, "{health:?}");
    // Fail closed: refused, and counted as such.
    let admission = closed.admit(subject, requests(10), MID_HOUR).await;
    assert!(admission.unavailable, "{admission:?}");
    // Calls in flight keep to this node's share in either mode.
    assert_eq!(closed.enter(subject, 4).await, Ok(1));
    assert_eq!(closed.enter(subject, 4).await, Ok(2));
    assert_eq!(closed.enter(subject, 4).await, Err(2));
    // Connecting fails in the background; once it has, the health says why.
    for _ in 0..250 {
        if closed.health().last_error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let health = closed.health();
    assert!(health.refusing() && health.refused_unavailable == 1 && health.last_error.is_some(), "{health:?}");
    assert!(health.render_metrics().contains("keygate_limiter_unavailable_refusals_total 1"), "{}", health.render_metrics());
}
