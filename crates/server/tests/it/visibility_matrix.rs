//! docs/CONTRACT.md#who-sees-a-key as a matrix: every key operation × every kind of caller × whose key
//! it is. A RAM user, whatever its role, sees and touches only keys it created: another's key
//! answers 404 `ApiKey.NotFound` (List simply does not show it) and is left as it was. The
//! account acts on every key of the account.

use keygate_core::access::Role;
use keygate_core::verification::AuthenticationFailure;
use serde_json::{json, Value};

use crate::expectations::{assert_error, authenticate, error_mismatch, get_key, key_count, KEY_NOT_FOUND_MESSAGE};
use crate::helpers::{Answer, Client, TestApp};

const SINGAPORE: &str = "ap-southeast-1";
const NEW_DESCRIPTION: &str = "changed by the matrix";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Principal {
    Account,
    Admin,
    KeyManager,
    Member,
}

use Principal::{Account, Admin, KeyManager, Member};

impl Principal {
    fn describe(self) -> &'static str {
        match self {
            Account => "the account",
            Admin => "an admin",
            KeyManager => "a key-manager",
            Member => "a member",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Get,
    UpdateDescription,
    Disable,
    Enable,
    Reset,
    Delete,
    ListFilteredById,
}

const OPERATIONS: [Operation; 7] = [
    Operation::Get,
    Operation::UpdateDescription,
    Operation::Disable,
    Operation::Enable,
    Operation::Reset,
    Operation::Delete,
    Operation::ListFilteredById,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The operation takes effect.
    Acts,
    /// 404 `ApiKey.NotFound` (List: not listed), and the key is unchanged.
    Hidden,
}

/// (caller, creator of the key, outcome) for every operation. Members may not create keys,
/// so there is no member's own key.
const TABLE: [(Principal, Principal, Outcome); 12] = [
    (Account, Account, Outcome::Acts),
    (Account, Admin, Outcome::Acts),
    (Account, KeyManager, Outcome::Acts),
    (Admin, Admin, Outcome::Acts),
    (Admin, Account, Outcome::Hidden),
    (Admin, KeyManager, Outcome::Hidden),
    (KeyManager, KeyManager, Outcome::Acts),
    (KeyManager, Account, Outcome::Hidden),
    (KeyManager, Admin, Outcome::Hidden),
    (Member, Account, Outcome::Hidden),
    (Member, Admin, Outcome::Hidden),
    (Member, KeyManager, Outcome::Hidden),
];

/// One logged-in client per principal.
struct Clients {
    account: Client,
    admin: Client,
    key_manager: Client,
    member: Client,
}

impl Clients {
    async fn log_in(app: &TestApp) -> Clients {
        for (name, role) in [("ada", Role::Admin), ("kim", Role::KeyManager), ("mo", Role::Member)] {
            app.create_user(name, role).await;
        }
        Clients {
            account: app.login(None).await,
            admin: app.login(Some("ada")).await,
            key_manager: app.login(Some("kim")).await,
            member: app.login(Some("mo")).await,
        }
    }

    fn of(&self, principal: Principal) -> &Client {
        match principal {
            Account => &self.account,
            Admin => &self.admin,
            KeyManager => &self.key_manager,
            Member => &self.member,
        }
    }
}

async fn perform(client: &Client, operation: Operation, key_id: i64) -> Answer {
    let key_path = format!("/modelstudio/apikeys/{key_id}");
    match operation {
        Operation::Get => client.get(&key_path).await,
        Operation::UpdateDescription => {
            client.send("PUT", &format!("{key_path}?description={}", NEW_DESCRIPTION.replace(' ', "+")), "").await
        }
        Operation::Disable => client.send("PUT", &format!("{key_path}/disable"), "").await,
        Operation::Enable => client.send("PUT", &format!("{key_path}/enable"), "").await,
        Operation::Reset => client.send("PUT", &format!("{key_path}/reset"), "").await,
        Operation::Delete => client.send("DELETE", &key_path, "").await,
        Operation::ListFilteredById => client.get(&format!("/modelstudio/apikeys?apiKeyId={key_id}")).await,
    }
}

/// The key as the account sees it now.
async fn account_view(account: &Client, key_id: i64) -> Result<Value, String> {
    let answer = get_key(account, key_id).await;
    if answer.status == 200 {
        Ok(answer.body["apiKey"].clone())
    } else {
        Err(format!("the account's GetApiKey answered {} {}", answer.status, answer.body))
    }
}

fn expect(condition: bool, problem: impl FnOnce() -> String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(problem())
    }
}

/// The operation succeeded and did what it says.
async fn expect_effect(
    app: &TestApp,
    account: &Client,
    operation: Operation,
    key_id: i64,
    plaintext: &str,
    before: &Value,
    answer: &Answer,
) -> Result<(), String> {
    expect(answer.status == 200 && answer.body["success"] == json!(true), || {
        format!("expected success, got {} {}", answer.status, answer.body)
    })?;
    let registry = authenticate(app, plaintext, SINGAPORE);
    match operation {
        Operation::Get => expect(&answer.body["apiKey"] == before, || format!("shows {} instead of {before}", answer.body["apiKey"])),
        Operation::ListFilteredById => {
            expect(answer.body["totalCount"] == json!(1) && answer.body["apiKeys"] == json!([before]), || format!("lists {}", answer.body))
        }
        Operation::UpdateDescription => {
            let after = account_view(account, key_id).await?;
            expect(after["description"] == json!(NEW_DESCRIPTION), || format!("description is still {}", after["description"]))
        }
        Operation::Disable => {
            let after = account_view(account, key_id).await?;
            expect(after["disabled"] == json!(1) && registry == Err(AuthenticationFailure::Disabled), || {
                format!("disabled={} registry={registry:?}", after["disabled"])
            })
        }
        Operation::Enable => {
            let after = account_view(account, key_id).await?;
            expect(after["disabled"] == json!(0) && registry == Ok(key_id), || {
                format!("disabled={} registry={registry:?}", after["disabled"])
            })
        }
        Operation::Reset => {
            let new_plaintext = answer.body["apiKey"]["apiKeyValue"].as_str().unwrap_or_default();
            let new_registry = authenticate(app, new_plaintext, SINGAPORE);
            expect(
                answer.body["apiKey"]["apiKeyId"] == json!(key_id)
                    && registry == Err(AuthenticationFailure::Unknown)
                    && new_registry == Ok(key_id),
                || format!("reset answered {}; old secret {registry:?}, new secret {new_registry:?}", answer.body),
            )
        }
        Operation::Delete => {
            let after = get_key(account, key_id).await;
            let problem = error_mismatch(&after, 404, "ApiKey.NotFound", KEY_NOT_FOUND_MESSAGE);
            expect(problem.is_none() && registry == Err(AuthenticationFailure::Unknown), || {
                format!("after delete: {problem:?}, registry {registry:?}")
            })
        }
    }
}

/// The operation answered as if the key did not exist, and the key is as it was.
async fn expect_untouched(
    app: &TestApp,
    account: &Client,
    operation: Operation,
    key_id: i64,
    plaintext: &str,
    before: (&Value, Result<i64, AuthenticationFailure>),
    answer: &Answer,
) -> Result<(), String> {
    if operation == Operation::ListFilteredById {
        expect(answer.status == 200 && answer.body["totalCount"] == json!(0) && answer.body["apiKeys"] == json!([]), || {
            format!("lists {}", answer.body)
        })?;
    } else if let Some(problem) = error_mismatch(answer, 404, "ApiKey.NotFound", KEY_NOT_FOUND_MESSAGE) {
        return Err(problem);
    }
    let after = account_view(account, key_id).await?;
    expect(&after == before.0, || format!("the key changed from {} to {after}", before.0))?;
    let registry = authenticate(app, plaintext, SINGAPORE);
    expect(registry == before.1, || format!("the registry went from {:?} to {registry:?}", before.1))
}

/// One cell: a fresh key made by `owner`, `operation` by `caller`, then cleaned up.
async fn check(
    app: &TestApp,
    clients: &Clients,
    operation: Operation,
    caller: Principal,
    owner: Principal,
    outcome: Outcome,
) -> Result<(), String> {
    let account = clients.of(Account);
    let (key_id, plaintext) = clients.of(owner).create_all_key().await;
    if operation == Operation::Enable {
        let disabled = perform(account, Operation::Disable, key_id).await;
        expect(disabled.status == 200, || format!("setup: disable answered {}", disabled.body))?;
    }
    let before = account_view(account, key_id).await?;
    let registry_before = authenticate(app, &plaintext, SINGAPORE);
    let answer = perform(clients.of(caller), operation, key_id).await;
    let result = match outcome {
        Outcome::Acts => expect_effect(app, account, operation, key_id, &plaintext, &before, &answer).await,
        Outcome::Hidden => expect_untouched(app, account, operation, key_id, &plaintext, (&before, registry_before), &answer).await,
    };
    // Keep the account far from its key limit: every cell starts from no keys.
    perform(account, Operation::Delete, key_id).await;
    result
}

on_both_stores! {
    async fn every_key_operation_by_every_caller_on_its_own_and_on_others_keys(app: TestApp) {
        let clients = Clients::log_in(&app).await;
        let mut failures = Vec::new();
        for (caller, owner, outcome) in TABLE {
            for operation in OPERATIONS {
                if let Err(problem) = check(&app, &clients, operation, caller, owner, outcome).await {
                    let whose = if caller == owner { "its own key".to_string() } else { format!("{}'s key", owner.describe()) };
                    failures.push(format!("{operation:?} by {} on {whose} (expected {outcome:?}): {problem}", caller.describe()));
                }
            }
        }
        assert!(failures.is_empty(), "{} of {} cells failed:\n{}", failures.len(), TABLE.len() * OPERATIONS.len(), failures.join("\n"));
        assert_eq!(key_count(clients.of(Account)).await, 0);
    }

    async fn a_member_cannot_create_a_key_so_it_has_none_of_its_own(app: TestApp) {
        let clients = Clients::log_in(&app).await;
        assert_error(
            &clients.of(Member).create_key("", "").await,
            403,
            "Forbidden",
            "RAM users with the member role may not create API keys; ask an admin for the key-manager role",
        );
        assert_eq!(key_count(clients.of(Account)).await, 0);
    }
}
