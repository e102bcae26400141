//! The write ceiling of one PostgreSQL: management writes per second from concurrent
//! clients spread over several nodes. Every write that affects verification appends to the
//! change feed under one advisory lock, so writes are serialized across all nodes.
//!
//! `--operation toggle`: each client owns one key and disables and enables it in turn.
//! `--operation create`: each client creates keys (raise the region's `key_limit` first;
//! creates also lock the account row for the quota check).
//!
//!     cargo run --release -p keygate --example management_write_throughput -- \
//!         --nodes http://127.0.0.1:18101,http://127.0.0.1:18102 --password ... --concurrency 16 --seconds 10

mod support;

use std::time::{Duration, Instant};

use anyhow::bail;
use support::{Arguments, ManagementClient, Summary};

const USAGE: &str = "management_write_throughput --nodes URL[,URL...] --password ROOT_PASSWORD [--concurrency 16] [--seconds 10] [--operation toggle|create]";

/// One client's loop until `deadline`; returns the latency of each write.
async fn client_loop(client: ManagementClient, operation: String, deadline: Instant) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    let own_key = if operation == "toggle" { Some(client.create_key().await?.0) } else { None };
    let mut disable_next = true;
    while Instant::now() < deadline {
        let started = Instant::now();
        match own_key {
            Some(id) if disable_next => client.disable_key(id).await?,
            Some(id) => client.enable_key(id).await?,
            None => client.create_key().await.map(drop)?,
        }
        latencies.push(started.elapsed());
        disable_next = !disable_next;
    }
    Ok(latencies)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::from_command_line(USAGE)?;
    let nodes: Vec<String> = arguments.text("nodes", "http://127.0.0.1:18101").split(',').map(str::to_string).collect();
    let password = arguments.text("password", "");
    let concurrency = arguments.number("concurrency", 16)?;
    let seconds = arguments.number("seconds", 10)?;
    let operation = arguments.text("operation", "toggle");
    if operation != "toggle" && operation != "create" {
        bail!("--operation is toggle or create\n{USAGE}");
    }

    let first = ManagementClient::login(&nodes[0], &password).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for index in 0..concurrency {
        let node = &nodes[usize::try_from(index).unwrap_or(0) % nodes.len()];
        tasks.push(tokio::spawn(client_loop(first.on_node(node), operation.clone(), deadline)));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{operation}: {} writes in {elapsed:.1} s from {concurrency} clients over {} node(s): {:.0} writes/s",
        latencies.len(),
        nodes.len(),
        latencies.len() as f64 / elapsed
    );
    println!("latency of one write: {}", Summary::new(latencies).line());
    Ok(())
}
