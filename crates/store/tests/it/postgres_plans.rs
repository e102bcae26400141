//! How PostgreSQL plans the statements a node keeps prepared: again at every run, with the
//! run's values and the tables' sizes of the moment. PostgreSQL's default switches a
//! statement to one generic plan after five runs, and a plan made while `api_keys` was
//! small (a fresh deployment) stayed a sequential scan as the keys grew into the
//! hundreds of thousands (docs/PERFORMANCE.md, "Plans made when the tables were small").

use keygate_store::database::Database;

use crate::support::{create_key, Backend, TestDatabase};

/// Runs a key read by id `runs` times on one connection (a transaction keeps it), then
/// says how that connection planned it: (generic plans, custom plans).
async fn plans_of_a_key_read(database: &Database, key_id: i64, runs: usize) -> (i64, i64) {
    // Text of its own, so that no other test's statement is counted with it.
    const READ: &str = "SELECT api_key_id, masked_key FROM api_keys WHERE api_key_id = $1 /* postgres_plans */";
    let mut transaction = database.begin_write().await.expect("transaction");
    for _ in 0..runs {
        let rows = transaction.fetch_all(READ, &[key_id.into()]).await.expect("key read");
        assert_eq!(rows.len(), 1);
    }
    let plans = transaction
        .fetch_one("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%/* postgres_plans */'", &[])
        .await
        .expect("the read is prepared on this connection");
    transaction.rollback().await.expect("rollback");
    (plans.i64("generic_plans").expect("generic"), plans.i64("custom_plans").expect("custom"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_statement_is_planned_again_at_every_run_unless_the_url_says_otherwise() {
    let Some(db) = TestDatabase::create(Backend::Postgres, "postgres_plans").await else { return };
    let (record, _) = create_key(&db, &db.root(), None).await;
    let key_id = record.api_key_id;
    // The node's own connections: every one of twelve runs planned for its values.
    assert_eq!(plans_of_a_key_read(db.raw().await, key_id, 12).await, (0, 12));
    // An operator who asks for PostgreSQL's own choice in the URL gets it: after five
    // custom plans, the generic one.
    let schema = db.postgres_schema().expect("a PostgreSQL test");
    let url = format!("{}&options[plan_cache_mode]=auto", schema.url_for("kg-store-auto"));
    let operator_choice = Database::open_postgres(&url).await.expect("PostgreSQL opens");
    let (generic, custom) = plans_of_a_key_read(&operator_choice, key_id, 12).await;
    assert!(generic > 0 && custom < 12, "with plan_cache_mode=auto the generic plan is used: {generic} generic, {custom} custom");
}
