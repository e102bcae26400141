//! Token usage in the store (docs/CONTRACT.md#usage): a flush adds its rows in one statement
//! however many there are, and adds to what is there (two nodes add up); queries filter
//! (IN and NOT), group by key, model, workspace and period, and total; the rollup keeps
//! the sums while turning minutes into hours and days, and prunes past the retention.

use keygate_core::usage::{TokenUsage, UsageTotals};
use keygate_store::usage::{KeyCalls, Selection, UsageDelta, UsageDimension, UsagePeriod, UsageQuery, UsageRetention, DAY, HOUR};

use keygate_core::access::KeyVisibility::WholeAccount;

use crate::support::{create_key, SINGAPORE};

/// 2026-08-01T00:00:00Z
const AUGUST: i64 = 1_785_542_400;

fn delta(key_id: i64, model: &str, minute_start: i64, requests: i64, input: i64, output: i64) -> UsageDelta {
    UsageDelta {
        key_id,
        model: model.into(),
        minute_start,
        account_id: 1,
        workspace_id: format!("ws-{}", key_id % 2),
        totals: UsageTotals { requests, tokens: TokenUsage { input, output, cached: input / 10, reasoning: output / 10 } },
    }
}

fn everything() -> UsageQuery {
    UsageQuery { from: 0, until: i64::MAX, ..UsageQuery::default() }
}

on_both_databases! {
    async fn ten_thousand_rows_are_one_statement(db: TestDatabase) {
        let rows: Vec<UsageDelta> = (0..10_000).map(|index| delta(index / 100, &format!("model-{}", index % 10), AUGUST + (index / 10 % 10) * 60, 1, 10, 20)).collect();
        let before = db.store.statements_run();
        db.store.add_token_usage(&rows).await.unwrap();
        assert_eq!(db.store.statements_run() - before, 1, "one statement for 10,000 rows");
        let report = db.store.query_usage(&everything()).await.unwrap();
        assert_eq!(report.totals.requests, 10_000);
        assert_eq!(report.totals.tokens, TokenUsage { input: 100_000, output: 200_000, cached: 10_000, reasoning: 20_000 });

        // A whole flush (the keys' counters and the rows) is two statements, whatever its size.
        let (key, _) = create_key(&db, &db.root(), None).await;
        let keys: Vec<KeyCalls> = vec![KeyCalls { key_id: key.api_key_id, calls: 10_000, last_used_at: 5 }];
        let before = db.store.statements_run();
        db.store.flush_usage(&keys, &rows).await.unwrap();
        assert_eq!(db.store.statements_run() - before, 2);
        let report = db.store.query_usage(&everything()).await.unwrap();
        assert_eq!(report.totals.requests, 20_000, "a second flush of the same rows adds to them");
        let stored = db.store.get_api_key(db.account_id, SINGAPORE, key.api_key_id, WholeAccount).await.unwrap();
        assert_eq!(stored.request_count, 10_000);
    }

    async fn queries_filter_group_and_total(db: TestDatabase) {
        db.store
            .add_token_usage(&[
                delta(1, "qwen-plus", AUGUST, 2, 100, 10),
                delta(1, "qwen-max", AUGUST + 60, 1, 50, 5),
                delta(2, "qwen-plus", AUGUST + DAY, 4, 400, 40),
                delta(3, "qwen-plus", AUGUST + 31 * DAY, 8, 800, 80),
            ])
            .await
            .unwrap();
        let by_model = db.store.query_usage(&UsageQuery { group_by: vec![UsageDimension::Model], ..everything() }).await.unwrap();
        let models: Vec<(Option<String>, i64)> = by_model.groups.iter().map(|group| (group.model.clone(), group.totals.requests)).collect();
        assert_eq!(models, [(Some("qwen-max".into()), 1), (Some("qwen-plus".into()), 14)]);
        assert_eq!(by_model.totals.requests, 15);

        let by_day = db
            .store
            .query_usage(&UsageQuery { period: Some(UsagePeriod::Day), keys: Selection::only(vec![1, 2]), ..everything() })
            .await
            .unwrap();
        let days: Vec<(Option<i64>, i64)> = by_day.groups.iter().map(|group| (group.period_start, group.totals.requests)).collect();
        assert_eq!(days, [(Some(AUGUST), 3), (Some(AUGUST + DAY), 4)]);

        let by_month = db
            .store
            .query_usage(&UsageQuery { period: Some(UsagePeriod::Month), group_by: vec![UsageDimension::Workspace], ..everything() })
            .await
            .unwrap();
        let months: Vec<(Option<i64>, Option<String>, i64)> =
            by_month.groups.iter().map(|group| (group.period_start, group.workspace_id.clone(), group.totals.requests)).collect();
        assert_eq!(months, [(Some(AUGUST), Some("ws-0".into()), 4), (Some(AUGUST), Some("ws-1".into()), 3), (Some(AUGUST + 31 * DAY), Some("ws-1".into()), 8)]);

        let excluded = db
            .store
            .query_usage(&UsageQuery {
                models: Selection { include: None, exclude: vec!["qwen-max".into()] },
                from: AUGUST,
                until: AUGUST + 2 * DAY,
                group_by: vec![UsageDimension::Key],
                ..everything()
            })
            .await
            .unwrap();
        let keys: Vec<(Option<i64>, i64)> = excluded.groups.iter().map(|group| (group.key_id, group.totals.tokens.input)).collect();
        assert_eq!(keys, [(Some(1), 100), (Some(2), 400)]);
        let nothing = db.store.query_usage(&UsageQuery { keys: Selection::only(vec![]), ..everything() }).await.unwrap();
        assert_eq!(nothing.totals, UsageTotals::default());
        let other_account = db.store.query_usage(&UsageQuery { account_id: Some(2), ..everything() }).await.unwrap();
        assert_eq!(other_account.totals.requests, 0);
    }

    async fn text_is_in_byte_order_and_a_nul_value_matches_nothing(db: TestDatabase) {
        let models = ["demo_a", "demo-echo", "Demo-b"];
        let rows: Vec<UsageDelta> =
            models.iter().enumerate().map(|(index, model)| delta(index as i64 + 1, model, AUGUST, 1, 10, 1)).collect();
        db.store.add_token_usage(&rows).await.unwrap();
        // Byte order whatever the database's collation (en_US would give demo_a, Demo-b, demo-echo).
        let by_model = db.store.query_usage(&UsageQuery { group_by: vec![UsageDimension::Model], ..everything() }).await.unwrap();
        let order: Vec<String> = by_model.groups.into_iter().filter_map(|group| group.model).collect();
        assert_eq!(order, ["Demo-b", "demo-echo", "demo_a"]);
        // No row holds text with a NUL character (PostgreSQL cannot even compare one).
        let with_nul = vec!["demo_a\0".to_string(), "\0".to_string()];
        let only = db.store.query_usage(&UsageQuery { models: Selection::only(with_nul.clone()), ..everything() }).await.unwrap();
        assert_eq!(only.totals.requests, 0);
        let not = |values: Vec<String>| Selection { include: None, exclude: values };
        let query = UsageQuery { models: not(with_nul.clone()), workspaces: not(with_nul), ..everything() };
        let all_but = db.store.query_usage(&query).await.unwrap();
        assert_eq!(all_but.totals.requests, 3);
    }

    async fn the_rollup_keeps_sums_and_prunes_the_oldest(db: TestDatabase) {
        let now = AUGUST + 400 * DAY;
        let retention = UsageRetention { hourly_after_seconds: 7 * DAY, daily_after_seconds: 90 * DAY, keep_seconds: 400 * DAY };
        let recent = now - HOUR;
        let a_week_ago = now - 8 * DAY;
        let a_season_ago = now - 100 * DAY;
        let too_old = now - 401 * DAY;
        let mut rows = Vec::new();
        for minute in 0..3 {
            rows.push(delta(1, "m", recent.div_euclid(60) * 60 + minute * 60, 1, 10, 1));
            rows.push(delta(1, "m", a_week_ago.div_euclid(HOUR) * HOUR + minute * 60, 1, 10, 1));
            rows.push(delta(1, "m", a_season_ago.div_euclid(DAY) * DAY + minute * HOUR, 1, 10, 1));
        }
        rows.push(delta(1, "m", too_old.div_euclid(60) * 60, 1, 10, 1));
        db.store.add_token_usage(&rows).await.unwrap();
        let before = db.store.query_usage(&UsageQuery { from: now - 400 * DAY, until: now, ..everything() }).await.unwrap();
        let report = db.store.roll_up_usage(now, &retention).await.unwrap();
        // The week-old, season-old and too old minutes became hours; the season-old and too
        // old hours became days; the too old day was pruned.
        assert_eq!(report.minute_rows_rolled, 7);
        assert_eq!(report.hour_rows_rolled, 4);
        assert_eq!(report.rows_pruned, 1);
        let after = db.store.query_usage(&everything()).await.unwrap();
        assert_eq!(after.totals, before.totals, "the sums are kept");
        assert_eq!(after.totals.requests, 9);
        let by_minute =
            db.store.query_usage(&UsageQuery { period: Some(UsagePeriod::Minute), ..everything() }).await.unwrap();
        assert_eq!(by_minute.groups.len(), 3 + 1 + 1, "recent minutes, one hour, one day");
        // A second rollup (another node's) finds nothing more to do.
        let again = db.store.roll_up_usage(now, &retention).await.unwrap();
        assert_eq!((again.minute_rows_rolled, again.hour_rows_rolled, again.rows_pruned), (0, 0, 0));
        assert_eq!(db.store.query_usage(&everything()).await.unwrap().totals, before.totals);
    }
}
