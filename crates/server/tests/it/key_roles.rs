//! Who may do what to an API key: every key operation, on every surface that offers it, by
//! every kind of caller, on both stores. [`ROLE_TABLE`] is the rule as a table; each cell
//! is checked on a fresh key of the caller's own (RAM users see only their own keys, see
//! `visibility_matrix.rs`), and a refused cell must leave everything as it was: the key,
//! its secret, and the number of keys.
//!
//! The callers: the account; an admin, a key-manager and a member who are members of the
//! workspace `team-a` that holds the keys; a key-manager who is a member of `team-b` only
//! (its keys in `team-a` are those a key-manager keeps when it is removed from there); and
//! a key-manager of `team-a` who was disabled. Plan keys (Token Plan) always live in the default workspace,
//! of which every RAM user is a member.
//!
//! The surfaces: the Model Studio API signed with an AccessKey (`/modelstudio/...`), the
//! Token Plan API signed the same way (`/tokenplan/...`), keygate's own API with a session
//! token (`/keygate/v1/keys/import`, its only key operation) and the console (`/console`).

use keygate_core::access::{KeyVisibility, Role, UserStatus};
use keygate_core::ip_allowlist::IpAllowlist;
use keygate_core::keys::{expose, generate_key, KeyDigest, KeyFormat};
use keygate_core::permissions::{AppScope, CustomPermissions, KeyAuth, ModelScope};
use keygate_core::region::LimitScope;
use keygate_core::verification::{AuthenticationFailure, KeyEndpoint};
use keygate_store::{ApiKeyRecord, KeyOrder, ListKeysQuery, NewApiKey, QuotaRule};
use serde_json::json;

use crate::console::{shown_key, sign_in, Session};
use crate::gateway_calls::{create_workspace, Call, Shape};
use crate::helpers::{Answer, Client, TestApp};

const REGION: &str = "ap-southeast-1";
/// The whitelist of a key whose Edit is tried: an address range no test call comes from.
const FENCED_RANGE: &str = "192.0.2.0/24";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Account,
    /// An admin who is a member of `team-a`.
    Admin,
    /// A key-manager who is a member of `team-a`.
    KeyManager,
    /// A RAM user with the member role, a member of `team-a`.
    Member,
    /// A key-manager of `team-b` only.
    Outsider,
    /// A key-manager of `team-a`, disabled.
    Disabled,
}

use Caller::{Account, Admin, Disabled, KeyManager, Member, Outsider};

/// The columns of [`ROLE_TABLE`], in order.
const CALLERS: [Caller; 6] = [Account, Admin, KeyManager, Member, Outsider, Disabled];

impl Caller {
    /// The RAM user's name (`None`: the account).
    fn user(self) -> Option<&'static str> {
        match self {
            Account => None,
            Admin => Some("ada"),
            KeyManager => Some("kim"),
            Member => Some("mo"),
            Outsider => Some("kip"),
            Disabled => Some("dee"),
        }
    }

    /// `createdBy` of its keys.
    fn name(self) -> &'static str {
        self.user().unwrap_or("root")
    }

    fn describe(self) -> &'static str {
        match self {
            Account => "the account",
            Admin => "an admin of the workspace",
            KeyManager => "a key-manager of the workspace",
            Member => "a member of the workspace",
            Outsider => "a key-manager of another workspace",
            Disabled => "a disabled key-manager",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    List,
    View,
    Create,
    /// Widens the key's IP whitelist to All.
    Edit,
    Disable,
    Enable,
    Reset,
    /// A new secret for a plan key.
    Rotate,
    Delete,
}

use Operation::{Create, Delete, Disable, Edit, Enable, List, Reset, Rotate, View};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    /// `/modelstudio/apikeys...`, signed with the caller's AccessKey.
    ModelStudio,
    /// `/tokenplan/...`, signed with the caller's AccessKey.
    TokenPlan,
    /// `POST /keygate/v1/keys/import` with the caller's session token.
    KeygateImport,
    /// `/console/keys...` with the caller's console session.
    Console,
}

use Surface::{Console, KeygateImport, ModelStudio, TokenPlan};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The operation takes effect.
    Acts,
    /// Refused (403, or the console's sign-in page for a disabled user), and nothing changes.
    Refused,
}

const YES: Outcome = Outcome::Acts;
const NO: Outcome = Outcome::Refused;

/// Who may do what, on its own key in `team-a` (plan keys: in the default workspace).
/// Listing, viewing, disabling and deleting only take power away: every active caller may.
/// Creating, editing, enabling, resetting and rotating can widen a key or hand out a working
/// secret: only the account, or an admin or key-manager who is still a member of the key's
/// workspace (for Create: of the workspace it creates in). A disabled user may do nothing.
#[rustfmt::skip]
const ROLE_TABLE: [(Operation, Surface, [Outcome; 6]); 18] = [
    //        surface        account  admin  key-mgr  member  outsider  disabled
    (List,    ModelStudio,   [YES,     YES,   YES,     YES,    YES,      NO]),
    (List,    Console,       [YES,     YES,   YES,     YES,    YES,      NO]),
    (View,    ModelStudio,   [YES,     YES,   YES,     YES,    YES,      NO]),
    (Create,  ModelStudio,   [YES,     YES,   YES,     NO,     NO,       NO]),
    (Create,  KeygateImport, [YES,     YES,   YES,     NO,     NO,       NO]),
    (Create,  Console,       [YES,     YES,   YES,     NO,     NO,       NO]),
    // A plan key is created in the default workspace, of which the outsider is a member.
    (Create,  TokenPlan,     [YES,     YES,   YES,     NO,     YES,      NO]),
    (Edit,    ModelStudio,   [YES,     YES,   YES,     NO,     NO,       NO]),
    (Edit,    Console,       [YES,     YES,   YES,     NO,     NO,       NO]),
    (Disable, ModelStudio,   [YES,     YES,   YES,     YES,    YES,      NO]),
    (Disable, Console,       [YES,     YES,   YES,     YES,    YES,      NO]),
    (Enable,  ModelStudio,   [YES,     YES,   YES,     NO,     NO,       NO]),
    (Enable,  Console,       [YES,     YES,   YES,     NO,     NO,       NO]),
    (Reset,   ModelStudio,   [YES,     YES,   YES,     NO,     NO,       NO]),
    (Reset,   Console,       [YES,     YES,   YES,     NO,     NO,       NO]),
    // The plan key is in the default workspace, of which the outsider is a member.
    (Rotate,  TokenPlan,     [YES,     YES,   YES,     NO,     YES,      NO]),
    (Delete,  ModelStudio,   [YES,     YES,   YES,     YES,    YES,      NO]),
    (Delete,  Console,       [YES,     YES,   YES,     YES,    YES,      NO]),
];

const MEMBER_MAY_NOT_CREATE: &str = "RAM users with the member role may not create API keys; ask an admin for the key-manager role";
const MEMBER_MAY_ONLY_TAKE_AWAY: &str =
    "RAM users with the member role may only list, view, disable and delete their API keys; ask an admin for the key-manager role";
const NOT_A_MEMBER: &str = "you are not a member of this workspace";
const NO_LONGER_A_MEMBER: &str = "you are no longer a member of this key's workspace";
const USER_DISABLED: &str = "This RAM user is disabled.";

/// The message of a refused cell.
fn refusal_message(caller: Caller, operation: Operation) -> &'static str {
    match (caller, operation) {
        (Disabled, _) => USER_DISABLED,
        (Member, Create) => MEMBER_MAY_NOT_CREATE,
        (Member, _) => MEMBER_MAY_ONLY_TAKE_AWAY,
        (Outsider, Create) => NOT_A_MEMBER,
        (Outsider, _) => NO_LONGER_A_MEMBER,
        (caller, operation) => panic!("{operation:?} by {caller:?} is never refused"),
    }
}

/// The three credentials of one caller.
struct Credentials {
    user_id: Option<i64>,
    signed: Client,
    session: Client,
    console: Session,
}

/// The account, its users, the two workspaces, and every caller's credentials.
struct World {
    team_a: String,
    default_workspace: String,
    callers: Vec<(Caller, Credentials)>,
}

impl World {
    async fn build(app: &TestApp) -> World {
        let root = app.access_key_client_at(app.address, None).await;
        let team_a = create_workspace(&root, "team-a").await;
        let team_b = create_workspace(&root, "team-b").await;
        let store = app.state.store();
        for (caller, role, workspace) in [
            (Admin, Role::Admin, &team_a),
            (KeyManager, Role::KeyManager, &team_a),
            (Member, Role::Member, &team_a),
            (Outsider, Role::KeyManager, &team_b),
            (Disabled, Role::KeyManager, &team_a),
        ] {
            let name = caller.user().unwrap();
            app.create_user(name, role).await;
            store.add_workspace_member(&app.root_audit(), workspace, name).await.unwrap();
        }
        let mut callers = Vec::new();
        for caller in CALLERS {
            let user_id = match caller.user() {
                None => None,
                Some(name) => Some(store.find_user(1, name).await.unwrap().user_id),
            };
            let credentials = Credentials {
                user_id,
                signed: app.access_key_client_at(app.address, caller.user()).await,
                session: app.login(caller.user()).await,
                console: sign_in(app, caller.user()).await.0,
            };
            callers.push((caller, credentials));
        }
        // Disabled after signing in: its AccessKey, token and cookie are all still there.
        store.set_user_status(&app.root_audit(), Disabled.name(), UserStatus::Disabled).await.unwrap();
        let default_workspace = store.default_workspace(1, REGION).await.unwrap().workspace_id;
        World { team_a, default_workspace, callers }
    }

    fn of(&self, caller: Caller) -> &Credentials {
        &self.callers.iter().find(|(each, _)| *each == caller).unwrap().1
    }
}

/// A key put straight into the store for a cell, and its secret.
struct Planted {
    key_id: i64,
    plaintext: String,
}

/// A key owned by `caller`: a plan key in the default workspace for Rotate, else a key in
/// `team-a` (fenced to [`FENCED_RANGE`] for Edit, disabled for Enable).
async fn plant(app: &TestApp, world: &World, caller: Caller, operation: Operation) -> Planted {
    let (format, workspace_id) =
        if operation == Rotate { (KeyFormat::Plan, world.default_workspace.clone()) } else { (KeyFormat::Secure, world.team_a.clone()) };
    let auth = if operation == Edit {
        KeyAuth::Custom(Box::new(CustomPermissions {
            access_ips: IpAllowlist::parse(&[FENCED_RANGE.to_string()]).unwrap(),
            model_scope: ModelScope { allow_all_models: true, accessible_models: Vec::new() },
            app_scope: AppScope { allow_all_apps: true, accessible_apps: Vec::new() },
        }))
    } else {
        KeyAuth::All
    };
    let generated = generate_key(format);
    let new_key = NewApiKey {
        region: REGION.into(),
        workspace_id,
        creator_user_id: world.of(caller).user_id,
        created_by: caller.name().into(),
        description: format!("{operation:?} by {caller:?}"),
        format,
        digest: generated.digest,
        masked_key: generated.masked.clone(),
        auth,
        legacy_ciphertext: None,
        expires_at: None,
        limits: None,
    };
    let store = app.state.store();
    let quota = QuotaRule { limit: 1000, scope: LimitScope::Account };
    let record = store.create_api_key(&app.root_audit(), new_key, quota).await.expect("key planted");
    if operation == Enable {
        store.set_api_key_disabled(&app.root_audit(), record.api_key_id, KeyVisibility::WholeAccount, true).await.unwrap();
    }
    Planted { key_id: record.api_key_id, plaintext: expose(&generated.plaintext).to_string() }
}

/// What the registry says of a secret, on the endpoint its format belongs to.
fn registry(app: &TestApp, plaintext: &str) -> Result<i64, AuthenticationFailure> {
    let endpoint = if plaintext.starts_with("sk-sp-") { KeyEndpoint::Plan } else { KeyEndpoint::PayAsYouGo };
    app.state.store().registry().authenticate_on(plaintext, REGION, endpoint, app.state.shared.clock.now_seconds()).map(|key| key.key_id)
}

/// Everything a refused operation must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    /// Every key of the account in the region, as stored.
    keys: Vec<ApiKeyRecord>,
    /// What the registry says of the planted key's secret, and the digest it holds for it.
    secret: Option<(Result<i64, AuthenticationFailure>, Option<KeyDigest>)>,
}

async fn all_keys(app: &TestApp) -> Vec<ApiKeyRecord> {
    let query = ListKeysQuery {
        search: None,
        account_id: 1,
        region: REGION.into(),
        visibility: KeyVisibility::WholeAccount,
        api_key_id: None,
        description: None,
        workspace_id: None,
        order_by: KeyOrder::ApiKeyId,
        descending: false,
        offset: 0,
        limit: 100,
    };
    app.state.store().list_api_keys(&query).await.unwrap().0
}

async fn snapshot(app: &TestApp, planted: Option<&Planted>) -> Snapshot {
    let secret = planted.map(|planted| (registry(app, &planted.plaintext), app.state.store().registry().digest_of(planted.key_id)));
    Snapshot { keys: all_keys(app).await, secret }
}

/// An answer of one surface: JSON from the APIs, a page (or a redirect) from the console.
#[derive(Debug)]
enum Reply {
    Api(Answer),
    Page { status: u16, location: Option<String>, html: String },
}

impl Reply {
    fn describe(&self) -> String {
        match self {
            Reply::Api(answer) => format!("{} {}", answer.status, answer.body),
            Reply::Page { status, location, html } => {
                let shown: String = html.chars().take(300).collect();
                format!("{status} location={location:?} {shown}...")
            }
        }
    }
}

async fn page(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let location = response.headers().get("location").and_then(|value| value.to_str().ok()).map(str::to_string);
    Reply::Page { status, location, html: response.text().await.unwrap() }
}

fn console_path(path: &str) -> String {
    format!("{path}?region={REGION}")
}

/// `operation` by `caller` on `surface`, on `key` (for everything but Create).
async fn perform(world: &World, caller: Caller, operation: Operation, surface: Surface, key: Option<&Planted>) -> Reply {
    let credentials = world.of(caller);
    let key_id = key.map(|key| key.key_id).unwrap_or_default();
    let api_path = format!("/modelstudio/apikeys/{key_id}");
    let console_key_path = |verb: &str| console_path(&format!("/console/keys/{key_id}/{verb}"));
    let signed = &credentials.signed;
    let console = &credentials.console;
    match (operation, surface) {
        (List, ModelStudio) => Reply::Api(signed.get(&format!("/modelstudio/apikeys?apiKeyId={key_id}")).await),
        (List, Console) => page(console.get(&console_path("/console/keys")).await).await,
        (View, ModelStudio) => Reply::Api(signed.get(&api_path).await),
        (Create, ModelStudio) => {
            Reply::Api(signed.create_key(&format!("workspaceId={}&description=made+by+the+table", world.team_a), "").await)
        }
        (Create, KeygateImport) => {
            let old_key = expose(&generate_key(KeyFormat::Classic).plaintext).to_string();
            let body = json!({"workspaceId": world.team_a, "keys": [{"key": old_key, "description": "imported by the table"}]});
            Reply::Api(credentials.session.send_json("POST", "/keygate/v1/keys/import", &body).await)
        }
        (Create, Console) => {
            let fields = [("workspace", world.team_a.as_str()), ("permission", "All"), ("description", "made by the table")];
            page(console.submit(&console_path("/console/keys"), &fields).await).await
        }
        (Create, TokenPlan) => Reply::Api(signed.send("POST", &format!("/tokenplan/api-keys?AccountId={}", caller.name()), "").await),
        (Edit, ModelStudio) => Reply::Api(signed.send("PUT", &format!("{api_path}?description=widened"), "auth.type=All").await),
        (Edit, Console) => {
            page(console.submit(&console_key_path("edit"), &[("permission", "All"), ("description", "widened")]).await).await
        }
        (Disable, ModelStudio) => Reply::Api(signed.send("PUT", &format!("{api_path}/disable"), "").await),
        (Enable, ModelStudio) => Reply::Api(signed.send("PUT", &format!("{api_path}/enable"), "").await),
        (Reset, ModelStudio) => Reply::Api(signed.send("PUT", &format!("{api_path}/reset"), "").await),
        (Delete, ModelStudio) => Reply::Api(signed.send("DELETE", &api_path, "").await),
        (Disable | Enable | Reset | Delete, Console) => {
            let verb = format!("{operation:?}").to_ascii_lowercase();
            page(console.submit(&console_key_path(&verb), &[]).await).await
        }
        (Rotate, TokenPlan) => Reply::Api(signed.send("POST", &format!("/tokenplan/api-key-rotations?ApiKeyId={key_id}"), "").await),
        (operation, surface) => panic!("{operation:?} is not offered on {surface:?}"),
    }
}

fn expect(condition: bool, problem: impl FnOnce() -> String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(problem())
    }
}

/// The answer says the operation was done.
fn expect_success(reply: &Reply, operation: Operation, surface: Surface) -> Result<(), String> {
    let problem = || format!("expected success, got {}", reply.describe());
    match reply {
        Reply::Api(answer) if surface == TokenPlan => expect(answer.status == 200 && answer.body["Success"] == json!(true), problem),
        Reply::Api(answer) => expect(answer.status == 200 && answer.body["success"] == json!(true), problem),
        Reply::Page { status, location, .. } => {
            let done = match operation {
                Edit => Some("edited"),
                Disable => Some("disabled"),
                Enable => Some("enabled"),
                Delete => Some("deleted"),
                // List shows the page; Create and Reset show the page with the new key.
                _ => None,
            };
            match done {
                None => expect(*status == 200, problem),
                Some(done) => {
                    expect(*status == 303 && location.as_deref() == Some(&format!("/console/keys?region={REGION}&done={done}")), problem)
                }
            }
        }
    }
}

/// The new secret in a Reset or Rotate answer.
fn issued_secret(reply: &Reply, surface: Surface) -> Option<String> {
    match reply {
        Reply::Api(answer) if surface == TokenPlan => answer.body["Data"]["PlainApiKey"].as_str().map(str::to_string),
        Reply::Api(answer) => answer.body["apiKey"]["apiKeyValue"].as_str().map(str::to_string),
        Reply::Page { html, .. } => html.contains("id=\"show-once-key\"").then(|| shown_key(html)),
    }
}

/// The operation was done, and did what it says.
async fn expect_effect(
    app: &TestApp,
    world: &World,
    caller: Caller,
    (operation, surface): (Operation, Surface),
    key: Option<&Planted>,
    before: &Snapshot,
    reply: &Reply,
) -> Result<(), String> {
    expect_success(reply, operation, surface)?;
    let after = snapshot(app, key).await;
    let stored = |key: &Planted| after.keys.iter().find(|record| record.api_key_id == key.key_id).cloned();
    match operation {
        List => match reply {
            Reply::Api(answer) => {
                let key_id = key.unwrap().key_id;
                expect(answer.body["totalCount"] == json!(1) && answer.body["apiKeys"][0]["apiKeyId"] == json!(key_id), || {
                    format!("does not list key {key_id}: {}", answer.body)
                })
            }
            Reply::Page { html, .. } => {
                let row = format!("data-key-id=\"{}\"", key.unwrap().key_id);
                expect(html.contains(&row), || format!("the page has no row {row}"))
            }
        },
        View => {
            let Reply::Api(answer) = reply else { unreachable!() };
            let key_id = key.unwrap().key_id;
            expect(answer.body["apiKey"]["apiKeyId"] == json!(key_id), || format!("shows {}", answer.body))
        }
        Create => {
            let new: Vec<&ApiKeyRecord> =
                after.keys.iter().filter(|record| !before.keys.iter().any(|old| old.api_key_id == record.api_key_id)).collect();
            let (format, workspace) = match surface {
                TokenPlan => (KeyFormat::Plan, &world.default_workspace),
                KeygateImport => (KeyFormat::Legacy, &world.team_a),
                _ => (KeyFormat::Secure, &world.team_a),
            };
            expect(
                new.len() == 1
                    && new[0].creator_user_id == world.of(caller).user_id
                    && new[0].created_by == caller.name()
                    && new[0].format == format
                    && &new[0].workspace_id == workspace,
                || format!("expected one new {format:?} key of {} in {workspace}, got {new:?}", caller.name()),
            )
        }
        Edit => {
            let record = stored(key.unwrap()).ok_or("the key is gone")?;
            expect(record.auth == KeyAuth::All && record.description == "widened", || format!("after the edit: {record:?}"))
        }
        Disable => {
            let record = stored(key.unwrap()).ok_or("the key is gone")?;
            let secret = registry(app, &key.unwrap().plaintext);
            expect(record.disabled && secret.is_err(), || format!("disabled={} registry={secret:?}", record.disabled))
        }
        Enable => {
            let record = stored(key.unwrap()).ok_or("the key is gone")?;
            let secret = registry(app, &key.unwrap().plaintext);
            expect(!record.disabled && secret == Ok(key.unwrap().key_id), || format!("disabled={} registry={secret:?}", record.disabled))
        }
        Reset | Rotate => {
            let key = key.unwrap();
            let new_secret = issued_secret(reply, surface).ok_or_else(|| format!("no new secret in {}", reply.describe()))?;
            let (old, new) = (registry(app, &key.plaintext), registry(app, &new_secret));
            expect(old == Err(AuthenticationFailure::Unknown) && new == Ok(key.key_id), || {
                format!("old secret {old:?}, new secret {new:?}")
            })
        }
        Delete => {
            let secret = registry(app, &key.unwrap().plaintext);
            expect(stored(key.unwrap()).is_none() && secret == Err(AuthenticationFailure::Unknown), || {
                format!("after delete: registry {secret:?}")
            })
        }
    }
}

/// The operation was refused in the surface's words, and nothing changed.
async fn expect_refusal(
    app: &TestApp,
    caller: Caller,
    (operation, surface): (Operation, Surface),
    key: Option<&Planted>,
    before: &Snapshot,
    reply: &Reply,
) -> Result<(), String> {
    let message = refusal_message(caller, operation);
    let problem = || format!("expected 403 \"{message}\", got {}", reply.describe());
    match reply {
        Reply::Api(answer) if surface == TokenPlan => {
            expect(answer.status == 403 && answer.body["Code"] == json!("Forbidden") && answer.body["Message"] == json!(message), problem)?
        }
        Reply::Api(answer) => {
            expect(answer.status == 403 && answer.body["code"] == json!("Forbidden") && answer.body["message"] == json!(message), problem)?
        }
        // The console signs a disabled user out.
        Reply::Page { status, location, .. } if caller == Disabled => {
            expect(*status == 303 && location.as_deref() == Some("/console/login"), problem)?
        }
        Reply::Page { status, html, .. } => expect(*status == 403 && html.contains(message), problem)?,
    }
    expect(issued_secret(reply, surface).is_none(), || format!("a refusal handed out a secret: {}", reply.describe()))?;
    let after = snapshot(app, key).await;
    expect(&after == before, || format!("the refusal changed something: before {before:?}, after {after:?}"))
}

/// One cell: a fresh key, the operation, the expected outcome, and the keys removed again.
async fn check(
    app: &TestApp,
    world: &World,
    caller: Caller,
    operation: Operation,
    surface: Surface,
    outcome: Outcome,
) -> Result<(), String> {
    let key = if operation == Create { None } else { Some(plant(app, world, caller, operation).await) };
    let before = snapshot(app, key.as_ref()).await;
    let reply = perform(world, caller, operation, surface, key.as_ref()).await;
    let result = match outcome {
        Outcome::Acts => expect_effect(app, world, caller, (operation, surface), key.as_ref(), &before, &reply).await,
        Outcome::Refused => expect_refusal(app, caller, (operation, surface), key.as_ref(), &before, &reply).await,
    };
    // Every cell starts from no keys: far from the region's limit, and one plan key each.
    for record in all_keys(app).await {
        app.state.store().delete_api_key(&app.root_audit(), record.api_key_id, KeyVisibility::WholeAccount).await.unwrap();
    }
    result
}

on_both_stores! {
    async fn every_key_operation_on_every_surface_by_every_caller(app: TestApp) {
        let world = World::build(&app).await;
        let mut failures = Vec::new();
        let mut cells = 0;
        for (operation, surface, outcomes) in ROLE_TABLE {
            for (caller, outcome) in CALLERS.into_iter().zip(outcomes) {
                cells += 1;
                if let Err(problem) = check(&app, &world, caller, operation, surface, outcome).await {
                    failures.push(format!("{operation:?} on {surface:?} by {} (expected {outcome:?}): {problem}", caller.describe()));
                }
            }
        }
        assert!(failures.is_empty(), "{} of {cells} cells failed:\n{}", failures.len(), failures.join("\n"));
    }
}

/// The status of a demo call with `key` (a plan key on the plan listener).
async fn call_status(app: &TestApp, key: &str) -> u16 {
    let listener = if key.starts_with("sk-sp-") { app.plan_address } else { app.address };
    Call::echo(listener, key).send(&app.http, Shape::Anthropic).await.status
}

/// CreateApiKey in `workspace` with a form body; returns (id, plaintext).
async fn create_in(client: &Client, workspace: &str, form_body: &str) -> (i64, String) {
    let answer = client.create_key(&format!("workspaceId={workspace}"), form_body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    (answer.body["apiKey"]["apiKeyId"].as_i64().unwrap(), answer.body["apiKey"]["apiKeyValue"].as_str().unwrap().to_string())
}

/// The keys one key-manager made while it could, and how calls with them fared then.
struct KeysOfAKeyManager {
    /// Custom, allowed only from [`FENCED_RANGE`]: calls from here are refused.
    fenced: (i64, String),
    /// Disabled by its owner.
    paused: (i64, String),
    live: (i64, String),
    /// Its plan key, in the default workspace.
    plan: (i64, String),
    statuses: [u16; 4],
}

impl KeysOfAKeyManager {
    async fn make(app: &TestApp, client: &Client, name: &str, workspace: &str) -> KeysOfAKeyManager {
        let fenced = create_in(client, workspace, &format!("auth.type=Custom&auth.accessIps.1={}", FENCED_RANGE.replace('/', "%2F"))).await;
        let paused = create_in(client, workspace, "").await;
        assert_eq!(client.send("PUT", &format!("/modelstudio/apikeys/{}/disable", paused.0), "").await.status, 200);
        let live = create_in(client, workspace, "").await;
        let plan = client.send("POST", &format!("/tokenplan/api-keys?AccountId={name}"), "").await;
        assert_eq!(plan.status, 200, "{}", plan.body);
        let plan = (
            plan.body["Data"]["ApiKeyId"].as_str().unwrap().parse().unwrap(),
            plan.body["Data"]["PlainApiKey"].as_str().unwrap().to_string(),
        );
        let mut keys = KeysOfAKeyManager { fenced, paused, live, plan, statuses: [0; 4] };
        keys.statuses = keys.call_statuses(app).await;
        assert_eq!(keys.statuses[2..], [200, 200], "the live key and the plan key work");
        assert!(keys.statuses[..2].iter().all(|status| *status >= 400), "the fenced and the paused key do not: {:?}", keys.statuses);
        keys
    }

    async fn call_statuses(&self, app: &TestApp) -> [u16; 4] {
        let mut statuses = [0; 4];
        for (status, (_, plaintext)) in statuses.iter_mut().zip([&self.fenced, &self.paused, &self.live, &self.plan]) {
            *status = call_status(app, plaintext).await;
        }
        statuses
    }

    fn ids(&self) -> [i64; 4] {
        [self.fenced.0, self.paused.0, self.live.0, self.plan.0]
    }

    /// The stored keys and the digests the registry holds for them. Without the usage
    /// counters: the calls this test makes move them, whenever the gateway flushes them.
    async fn state(&self, app: &TestApp) -> Vec<(ApiKeyRecord, Option<KeyDigest>)> {
        let store = app.state.store();
        let mut state = Vec::new();
        for key_id in self.ids() {
            let record = store.get_api_key(1, REGION, key_id, KeyVisibility::WholeAccount).await.unwrap();
            let record = ApiKeyRecord { last_used_at: None, request_count: 0, ..record };
            state.push((record, store.registry().digest_of(key_id)));
        }
        state
    }
}

#[track_caller]
fn assert_forbidden(answer: &Answer, message: &str) {
    crate::expectations::assert_error(answer, 403, "Forbidden", message);
    assert!(answer.body.get("apiKey").is_none(), "a refusal answered a key: {}", answer.body);
}

on_both_stores! {
    async fn a_demoted_or_removed_key_manager_cannot_widen_revive_or_reissue_its_keys_and_nothing_changes(app: TestApp) {
        let root = app.access_key_client_at(app.address, None).await;
        let team_a = create_workspace(&root, "team-a").await;
        crate::gateway_calls::set_model_permissions(&root, &team_a, &[("demo-echo", true)]).await;
        for name in ["kim", "kip"] {
            app.create_user(name, Role::KeyManager).await;
            app.state.store().add_workspace_member(&app.root_audit(), &team_a, name).await.unwrap();
        }
        let kim = app.access_key_client_at(app.address, Some("kim")).await;
        let kip = app.access_key_client_at(app.address, Some("kip")).await;
        let kim_keys = KeysOfAKeyManager::make(&app, &kim, "kim", &team_a).await;
        let kip_keys = KeysOfAKeyManager::make(&app, &kip, "kip", &team_a).await;
        let (kim_before, kip_before) = (kim_keys.state(&app).await, kip_keys.state(&app).await);

        // kim is demoted to member; kip is removed from team-a (and keeps its role).
        let demoted = root.send("PUT", "/keygate/v1/users/kim/role", &json!({"role": "member"}).to_string()).await;
        assert_eq!(demoted.status, 200, "{}", demoted.body);
        let removed = root.send("DELETE", &format!("/keygate/v1/workspaces/{team_a}/members/kip"), "").await;
        assert_eq!(removed.status, 200, "{}", removed.body);
        let marker = app.state.store().list_audit(1, 1, None).await.unwrap()[0].audit_id;

        for (client, keys, message) in [(&kim, &kim_keys, MEMBER_MAY_ONLY_TAKE_AWAY), (&kip, &kip_keys, NO_LONGER_A_MEMBER)] {
            let widen = client.send("PUT", &format!("/modelstudio/apikeys/{}?description=wide+open", keys.fenced.0), "auth.type=All").await;
            assert_forbidden(&widen, message);
            assert_forbidden(&client.send("PUT", &format!("/modelstudio/apikeys/{}/enable", keys.paused.0), "").await, message);
            assert_forbidden(&client.send("PUT", &format!("/modelstudio/apikeys/{}/reset", keys.live.0), "").await, message);
        }
        // A new secret for the plan key, by either operation: refused to the demoted member.
        // (The removed key-manager is still a key-manager of the default workspace, where
        // plan keys live: the role table has that cell.)
        assert_forbidden(&kim.send("PUT", &format!("/modelstudio/apikeys/{}/reset", kim_keys.plan.0), "").await, MEMBER_MAY_ONLY_TAKE_AWAY);
        let rotate = kim.send("POST", &format!("/tokenplan/api-key-rotations?ApiKeyId={}", kim_keys.plan.0), "").await;
        let refusal = (rotate.status, &rotate.body["Code"], &rotate.body["Message"]);
        assert_eq!(refusal, (403, &json!("Forbidden"), &json!(MEMBER_MAY_ONLY_TAKE_AWAY)), "{}", rotate.body);
        assert!(rotate.body["Data"].is_null(), "a refused rotation answered data: {}", rotate.body);

        // Nothing changed: the keys are as they were, no new secret was issued, nothing
        // was audited, and every secret does what it did.
        assert_eq!(kim_keys.state(&app).await, kim_before);
        assert_eq!(kip_keys.state(&app).await, kip_before);
        let changes = app.state.store().list_audit(1, 500, None).await.unwrap();
        let changes: Vec<_> = changes.iter().filter(|record| record.audit_id > marker).collect();
        assert!(changes.is_empty(), "refusals were audited as changes: {changes:?}");
        assert_eq!(kim_keys.call_statuses(&app).await, kim_keys.statuses);
        // kip's keys in team-a rest while it is not a member; back in, its old secrets work.
        app.state.store().add_workspace_member(&app.root_audit(), &team_a, "kip").await.unwrap();
        assert_eq!(kip_keys.call_statuses(&app).await, kip_keys.statuses);
        app.state.store().remove_workspace_member(&app.root_audit(), &team_a, "kip").await.unwrap();

        // Taking power away is still theirs to do.
        for (client, keys) in [(&kim, &kim_keys), (&kip, &kip_keys)] {
            assert_eq!(client.send("PUT", &format!("/modelstudio/apikeys/{}/disable", keys.live.0), "").await.status, 200);
            assert_eq!(client.send("DELETE", &format!("/modelstudio/apikeys/{}", keys.fenced.0), "").await.status, 200);
        }
        assert_ne!(call_status(&app, &kim_keys.live.1).await, 200);
    }

    async fn the_console_offers_each_caller_only_the_key_actions_it_may_take(app: TestApp) {
        let world = World::build(&app).await;
        for caller in [Account, Admin, KeyManager, Member, Outsider] {
            let enabled = plant(&app, &world, caller, Disable).await;
            let disabled = plant(&app, &world, caller, Enable).await;
            let html = world.of(caller).console.get(&console_path("/console/keys")).await.text().await.unwrap();
            let offers = |verb: &str, key: &Planted| html.contains(&format!("data-open-dialog=\"{verb}-{}\"", key.key_id));
            let may_widen = !matches!(caller, Member | Outsider);
            let offered = [
                ("edit", offers("edit", &enabled)),
                ("reset", offers("reset", &enabled)),
                ("enable", offers("enable", &disabled)),
                ("disable", offers("disable", &enabled)),
                ("delete", offers("delete", &disabled)),
            ];
            let expected = [("edit", may_widen), ("reset", may_widen), ("enable", may_widen), ("disable", true), ("delete", true)];
            assert_eq!(offered, expected, "the console's buttons for {}", caller.describe());
            for record in all_keys(&app).await {
                app.state.store().delete_api_key(&app.root_audit(), record.api_key_id, KeyVisibility::WholeAccount).await.unwrap();
            }
        }
    }
}
