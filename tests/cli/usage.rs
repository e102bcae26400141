//! `keygate usage` against a real server: demo model calls through the gateway, flushed
//! every 100 ms and priced in the settings, shown as a table, as the API's JSON and as CSV;
//! a bad parameter is the server's 400; `keys get` shows the key's usage.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{chat_status, column, create_key, TestEnv};

/// Settings: usage flushed every 100 ms, demo-echo at 1000 (input) and 2000 (output) USD
/// per million tokens.
const SETTINGS: &str = r#"
usage_flush_interval_milliseconds = 100

[[prices]]
model = "demo-echo"
input_per_million = "1000"
output_per_million = "2000"
currency = "USD"
"#;

/// `keygate usage <arguments> --json` once its total has `requests` calls (the server
/// flushes usage in the background), within 10 s.
fn usage_once_flushed(env: &TestEnv, arguments: &[&str], requests: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut command = vec!["usage"];
    command.extend_from_slice(arguments);
    command.push("--json");
    loop {
        let answer = env.run(&command).success().json();
        if answer["total"]["requests"] == requests {
            return answer;
        }
        assert!(Instant::now() < deadline, "the usage was not flushed within 10 s: {answer}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn keygate_usage_shows_the_calls_as_a_table_json_and_csv() {
    let mut env = TestEnv::new();
    let settings_path = env.config_dir.path().join("keygate.toml");
    std::fs::write(&settings_path, SETTINGS).expect("settings file");
    env.start_server(&[("KEYGATE_CONFIG", settings_path.to_str().expect("utf-8 path"))]);
    env.login_root();
    let (key_id, key) = create_key(&env);
    for _ in 0..3 {
        assert_eq!(chat_status(&env, &key), 200);
    }

    // --json: the API's answer, envelope and all.
    let answer = usage_once_flushed(&env, &["--group-by", "key,model"], 3);
    assert_eq!(answer["success"], true);
    assert_eq!((&answer["granularity"], &answer["groupBy"]), (&Value::from("day"), &serde_json::json!(["key", "model"])));
    let rows = answer["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{answer}");
    let row = &rows[0];
    assert_eq!((row["keyId"].to_string(), &row["model"], &row["requests"]), (key_id.clone(), &Value::from("demo-echo"), &Value::from(3)));
    let (input, output) = (row["inputTokens"].as_i64().unwrap(), row["outputTokens"].as_i64().unwrap());
    assert!(input > 0 && output > 0, "the demo reports tokens: {row}");
    let cost_micros = input * 1000 + output * 2000;
    let cost = format!("{}.{:06} USD", cost_micros / 1_000_000, cost_micros % 1_000_000);
    assert_eq!(format!("{} {}", row["cost"].as_str().unwrap(), row["currency"].as_str().unwrap()), cost);
    let today = row["periodStart"].as_str().expect("a day")[..10].to_string();

    // The table: a heading, then a row per group.
    let listing = env.run(&["usage", "--group-by", "key,model"]).success().stdout;
    let (heading, table) = listing.split_once('\n').expect("a heading line");
    assert!(heading.starts_with("Usage from ") && heading.ends_with("(UTC), per day, by key and model"), "{heading}");
    assert_eq!(column(table, "PERIOD"), [today]);
    assert_eq!(column(table, "KEY"), [key_id.as_str()]);
    assert_eq!(column(table, "MODEL"), ["demo-echo"]);
    assert_eq!(column(table, "REQUESTS"), ["3"]);
    assert_eq!(column(table, "TOKENS"), [(input + output).to_string()]);
    assert_eq!(column(table, "COST"), [cost.as_str()]);

    // --csv: the server's CSV as it sent it.
    let csv = env.run(&["usage", "--group-by", "model", "--granularity", "none", "--csv"]).success().stdout;
    assert_eq!(
        csv,
        format!(
            "period_start,key_id,model,workspace_id,requests,input_tokens,output_tokens,cached_tokens,reasoning_tokens,total_tokens,cost,currency,unpriced\r\n\
             ,,demo-echo,,3,{input},{output},0,0,{},{},USD,false\r\n",
            input + output,
            cost.trim_end_matches(" USD")
        )
    );

    // Filters narrow what is shown; a range without usage says so.
    let other_model = env.run(&["usage", "--exclude-model", "demo-echo"]).success().stdout;
    assert!(other_model.ends_with("no usage in this range\n"), "{other_model}");
    let by_key = env.run(&["usage", "--key", &key_id, "--granularity", "total", "--json"]).success().json();
    assert_eq!(by_key["total"]["requests"], 3);

    // A bad parameter is the server's 400; --csv and --json do not go together.
    let refused = env.run(&["usage", "--from", "yesterday"]).failure();
    assert!(refused.stderr.contains("InvalidParameter: from must be an RFC 3339 time"), "{}", refused.stderr);
    let refused = env.run(&["usage", "--from", "2026-08-01", "--to", "2026-08-05", "--granularity", "minute", "--csv"]).failure();
    assert!(refused.stderr.contains("InvalidParameter: The time range is too long"), "{}", refused.stderr);
    assert_eq!(env.run(&["usage", "--csv", "--json"]).code, Some(2));

    // The key's own view has its usage too.
    let shown = env.run(&["keys", "get", &key_id]).success();
    assert_eq!(shown.labelled("Tokens"), format!("{} ({input} in, {output} out)", input + output));
    assert_eq!(shown.labelled("Cost"), cost);
}
