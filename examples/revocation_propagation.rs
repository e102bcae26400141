//! Revocation across two nodes on PostgreSQL (docs/CONTRACT.md#performance-targets: p99 under 100 ms).
//!
//! Logs in on node A, creates one key, then, `--iterations` times: enables it through A
//! (not the first time), waits until node B accepts it, disables it through A, and measures
//! the time from the moment A's answer has been read until node B first refuses the key.
//! B is asked on one keep-alive connection (`GET /auth/verify` with `Authorization: Bearer`),
//! back to back, as fast as that connection allows, or with `--pause-milliseconds` between
//! two questions. A pause makes each figure late by at most the pause (B is asked less
//! often), and leaves the cores to whatever else runs: `bench/group_commit.sh` measures
//! revocation while it loads the nodes with creates, and asking back to back there took
//! a core from the load it measures beside. Prints min/p50/p90/p99/max of that
//! propagation, of the enable's propagation, and of A's disable call itself.
//!
//! `bench/revocation.sh` builds, starts the two nodes on a fresh schema and runs this:
//!     cargo run --release -p keygate --example revocation_propagation -- \
//!         --node-a http://127.0.0.1:18101 --node-b http://127.0.0.1:18102 --password ... --iterations 250

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use support::{Arguments, ManagementClient, Summary};

const USAGE: &str =
    "revocation_propagation --node-a URL --node-b URL --password ROOT_PASSWORD [--iterations 250] [--give-up-after-milliseconds 5000] [--pause-milliseconds 0]";

/// Asks node B about one key on one connection.
struct Verifier {
    http: reqwest::Client,
    url: String,
    authorization: String,
    /// Between two questions (zero: back to back).
    pause: Duration,
}

impl Verifier {
    fn new(node_b: &str, key: &str, pause: Duration) -> anyhow::Result<Verifier> {
        // One idle connection kept: every question reuses it.
        let http = reqwest::Client::builder().pool_max_idle_per_host(1).tcp_nodelay(true).build()?;
        Ok(Verifier { http, url: format!("{node_b}/auth/verify"), authorization: format!("Bearer {key}"), pause })
    }

    async fn status(&self) -> anyhow::Result<u16> {
        let response = self.http.get(&self.url).header("authorization", &self.authorization).send().await.context("asking node B")?;
        let status = response.status().as_u16();
        // Read the body so that the connection can be reused.
        response.bytes().await?;
        Ok(status)
    }

    /// Asks until `wanted(status)`; returns the time from `since` and the status, or fails
    /// after `limit`.
    async fn until(&self, since: Instant, limit: Duration, wanted: impl Fn(u16) -> bool) -> anyhow::Result<(Duration, u16, u64)> {
        let mut questions = 0;
        loop {
            let status = self.status().await?;
            questions += 1;
            if wanted(status) {
                return Ok((since.elapsed(), status, questions));
            }
            if since.elapsed() > limit {
                bail!("node B still answers {status} after {limit:?}");
            }
            if !self.pause.is_zero() {
                tokio::time::sleep(self.pause).await;
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::from_command_line(USAGE)?;
    let node_a = arguments.text("node-a", "http://127.0.0.1:18101");
    let node_b = arguments.text("node-b", "http://127.0.0.1:18102");
    let password = arguments.text("password", "");
    let iterations = arguments.number("iterations", 250)?;
    let limit = Duration::from_millis(arguments.number("give-up-after-milliseconds", 5000)?);
    let pause = Duration::from_millis(arguments.number("pause-milliseconds", 0)?);

    let management = ManagementClient::login(&node_a, &password).await?;
    let (key_id, plaintext) = management.create_key().await?;
    let verifier = Verifier::new(&node_b, &plaintext, pause)?;

    let mut revocations = Vec::new();
    let mut enables = Vec::new();
    let mut disable_calls = Vec::new();
    let mut refusal_statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut questions_after_disable = 0;
    for iteration in 0..iterations {
        if iteration > 0 {
            management.enable_key(key_id).await?;
            let (took, _, _) = verifier.until(Instant::now(), limit, |status| status == 200).await.context("waiting for B to accept")?;
            enables.push(took);
        } else {
            verifier.until(Instant::now(), limit, |status| status == 200).await.context("waiting for B to accept the new key")?;
        }
        let called = Instant::now();
        management.disable_key(key_id).await?;
        let answered = Instant::now();
        disable_calls.push(answered - called);
        let (took, status, questions) = verifier.until(answered, limit, |status| status != 200).await.context("waiting for B to refuse")?;
        revocations.push(took);
        *refusal_statuses.entry(status).or_default() += 1;
        questions_after_disable += questions;
    }

    println!("revocation across nodes: disable through A, until B refuses: {}", Summary::new(revocations).line());
    println!("enable through A, until B accepts:                    {}", Summary::new(enables).line());
    println!("the disable call on A (request to answer):           {}", Summary::new(disable_calls).line());
    println!("B's refusals by status: {refusal_statuses:?}; questions to B after a disable: {questions_after_disable}");
    if refusal_statuses.keys().any(|status| *status != 401) {
        println!("WARNING: B refused with something other than 401 (a stale node answers 503): these samples are not propagation.");
    }
    Ok(())
}
