//! The Users page, for the account and admin RAM users: RAM users (create with a role and
//! password, disable, enable, delete) and AccessKeys (create, shown once; delete). The
//! checks are the API's: administrators only, names, roles and passwords parsed by the
//! same functions, and the same operations ([`crate::operations::users`] and
//! [`crate::operations::access_keys`]) do the rest.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use keygate_core::access::UserStatus;
use keygate_core::ids::PrincipalName;
use maud::{html, Markup};
use secrecy::{ExposeSecret, SecretString};

use super::i18n::Language;
use super::item_actions;
use super::layout::{csrf_field, described_by, error_page, field_error, records_table, time, with_region, Section};
use super::page_actions::{acting_as_administrator, finish, redirect_done, refused, render, show, FormPage};
use super::session::{Console, ConsoleForm};
use crate::management::errors::ManagementError;
use crate::operations::access_keys::{self, AccessKeyOwner};
use crate::operations::users::{self, parse_new_password, parse_role, NewUser};
use crate::operations::{AccessKeyRecord, UserRecord};
use crate::planes::Path;
use crate::state::AppState;

/// The Create user form as sent (never the password) and its errors by field.
#[derive(Debug, Default)]
struct UserForm {
    name: String,
    role: String,
    name_error: Option<String>,
    role_error: Option<String>,
    password_error: Option<String>,
    form_error: Option<String>,
}

/// A new AccessKey to show once.
struct NewAccessKey {
    access_key_id: String,
    secret: SecretString,
    owner: String,
}

#[derive(Default)]
struct PageState {
    form: Option<UserForm>,
    new_access_key: Option<NewAccessKey>,
}

/// The Users page, the actions of its forms on one user, and the AccessKeys' forms.
pub(super) fn routes() -> Router<AppState> {
    let user_actions = [("disable", post(disable_user)), ("enable", post(enable_user)), ("delete", post(delete_user))];
    Router::new()
        .route("/console/users", get(show::<PageState>).post(create_user))
        .merge(item_actions("/console/users/{name}", user_actions))
        .route("/console/access-keys", post(create_access_key))
        .merge(item_actions("/console/access-keys/{access_key_id}", [("delete", post(delete_access_key))]))
}

/// `POST /console/users`: create a RAM user with a role and a password.
pub(super) async fn create_user(State(state): State<AppState>, form: ConsoleForm) -> Response {
    let console = form.console;
    if let Err(denied) = console.auth.caller.may_administer() {
        return error_page(&state, &console, Section::Users, &denied.into());
    }
    let mut user_form = UserForm {
        name: form.fields.get("name").unwrap_or("").trim().to_string(),
        role: form.fields.get("role").unwrap_or("").to_string(),
        ..UserForm::default()
    };
    let name = PrincipalName::parse(&user_form.name)
        .map_err(|error| user_form.name_error = Some(format!("{}.", capitalised(&error.to_string()))))
        .ok();
    let role = parse_role(&user_form.role).map_err(|_| user_form.role_error = Some(console.language.text("users.role_error").into())).ok();
    let password = parse_new_password(form.fields.get("password").unwrap_or("").to_string())
        .map_err(|error| user_form.password_error = Some(capitalised(&error.message)))
        .ok();
    let (Some(name), Some(role), Some(password)) = (name, role, password) else {
        return render(&state, &console, StatusCode::BAD_REQUEST, None, PageState { form: Some(user_form), ..PageState::default() }).await;
    };
    let operations = state.operations();
    let outcome = users::create_user(operations, &console.auth.actor(&operations), NewUser { name, role, password: Some(password) })
        .await
        .map_err(ManagementError::from);
    match outcome {
        Ok(_) => redirect_done(&console, Section::Users, "created"),
        Err(error) if error.status.is_server_error() => error_page(&state, &console, Section::Users, &error),
        Err(error) => {
            // A name taken already is the one refusal the store makes here.
            if error.status == StatusCode::CONFLICT {
                user_form.name_error = Some(console.language.fill("users.name_taken", &[&user_form.name]));
            } else {
                user_form.form_error = Some(error.message);
            }
            render(&state, &console, error.status, None, PageState { form: Some(user_form), ..PageState::default() }).await
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

async fn set_status(state: AppState, name: String, form: ConsoleForm, status: UserStatus) -> Response {
    let console = form.console;
    let outcome = async {
        let (operations, actor) = acting_as_administrator(&state, &console)?;
        let name = PrincipalName::parse(&name)?;
        Ok(users::set_status(operations, &actor, &name, status).await?)
    }
    .await;
    finish::<PageState, _>(&state, &console, outcome, if status == UserStatus::Active { "enabled" } else { "disabled" }).await
}

/// `POST /console/users/{name}/disable`
pub(super) async fn disable_user(State(state): State<AppState>, Path(name): Path<String>, form: ConsoleForm) -> Response {
    set_status(state, name, form, UserStatus::Disabled).await
}

/// `POST /console/users/{name}/enable`
pub(super) async fn enable_user(State(state): State<AppState>, Path(name): Path<String>, form: ConsoleForm) -> Response {
    set_status(state, name, form, UserStatus::Active).await
}

/// `POST /console/users/{name}/delete`
pub(super) async fn delete_user(State(state): State<AppState>, Path(name): Path<String>, form: ConsoleForm) -> Response {
    let console = form.console;
    let outcome = async {
        let (operations, actor) = acting_as_administrator(&state, &console)?;
        let name = PrincipalName::parse(&name)?;
        Ok(users::delete_user(operations, &actor, &name).await?)
    }
    .await;
    finish::<PageState, _>(&state, &console, outcome, "deleted").await
}

/// `POST /console/access-keys`: a new AccessKey for the account (`owner` empty) or a RAM
/// user; its secret is in this response only.
pub(super) async fn create_access_key(State(state): State<AppState>, form: ConsoleForm) -> Response {
    let console = form.console;
    let owner_name = form.fields.get_non_empty("owner").map(str::to_string);
    let outcome = async {
        let (operations, actor) = acting_as_administrator(&state, &console)?;
        let owner = owner_name.as_deref().map(PrincipalName::parse).transpose()?;
        let owner = owner.as_ref().map_or(AccessKeyOwner::Account, AccessKeyOwner::User);
        let created = access_keys::create_access_key(operations, &actor, owner).await?;
        Ok::<_, ManagementError>(NewAccessKey {
            access_key_id: created.record.access_key_id,
            secret: created.secret,
            owner: created.owner.unwrap_or_else(|| console.auth.caller.account_name.clone()),
        })
    }
    .await;
    match outcome {
        Ok(new_access_key) => {
            render(&state, &console, StatusCode::OK, None, PageState { new_access_key: Some(new_access_key), ..PageState::default() }).await
        }
        Err(error) => refused::<PageState>(&state, &console, error).await,
    }
}

/// `POST /console/access-keys/{id}/delete`
pub(super) async fn delete_access_key(State(state): State<AppState>, Path(access_key_id): Path<String>, form: ConsoleForm) -> Response {
    let console = form.console;
    let outcome = async {
        let (operations, actor) = acting_as_administrator(&state, &console)?;
        Ok(access_keys::delete_access_key(operations, &actor, &access_key_id).await?)
    }
    .await;
    finish::<PageState, _>(&state, &console, outcome, "access-key-deleted").await
}

impl FormPage for PageState {
    const SECTION: Section = Section::Users;
    type Loaded = (Vec<UserRecord>, Vec<AccessKeyRecord>);

    async fn load(&self, state: &AppState, console: &Console) -> Result<Self::Loaded, ManagementError> {
        let (operations, actor) = acting_as_administrator(state, console)?;
        Ok((users::list_users(operations, &actor).await?, access_keys::list_account_access_keys(operations, &actor).await?))
    }

    fn markup(&self, _state: &AppState, console: &Console, (users, access_keys): Self::Loaded) -> Markup {
        users_markup(console, &users, &access_keys, self)
    }
}

fn user_actions(console: &Console, user: &UserRecord) -> Markup {
    let language = console.language;
    let region = console.region();
    let name = &user.name;
    let action = |verb: &str| with_region(&format!("/console/users/{name}/{verb}"), region);
    let (verb, button, title, text, danger) = match user.status {
        UserStatus::Active => ("disable", "row.disable", "users.disable_title", "users.disable_text", true),
        UserStatus::Disabled => ("enable", "row.enable", "users.enable_title", "users.enable_text", false),
    };
    let dialog_id = format!("{verb}-user-{name}");
    let delete_id = format!("delete-user-{name}");
    html! {
        div.row-actions {
            button.link type="button" data-open-dialog=(dialog_id) { (language.text(button)) }
            button.link.danger-text type="button" data-open-dialog=(delete_id) { (language.text("row.delete")) }
        }
        dialog.confirm id=(dialog_id) aria-labelledby={ (dialog_id) "-title" } {
            form method="post" action=(action(verb)) {
                (csrf_field(console))
                h2 id={ (dialog_id) "-title" } { (language.text(title)) }
                p { (language.fill(text, &[name])) }
                div.actions { button.secondary type="button" data-close-dialog { (language.text("keys.cancel")) } button.danger[danger] type="submit" { (language.text(button)) } }
            }
        }
        dialog.confirm id=(delete_id) aria-labelledby={ (delete_id) "-title" } {
            form method="post" action=(action("delete")) {
                (csrf_field(console))
                h2 id={ (delete_id) "-title" } { (language.text("users.delete_title")) }
                p { (language.fill("users.delete_text", &[name])) }
                div.actions { button.secondary type="button" data-close-dialog { (language.text("keys.cancel")) } button.danger type="submit" { (language.text("row.delete")) } }
            }
        }
    }
}

fn owner_name(language: Language, users: &[UserRecord], user_id: Option<i64>, account_name: &str) -> String {
    match user_id {
        None => language.fill("users.owner_account", &[&account_name]),
        Some(user_id) => users
            .iter()
            .find(|user| user.user_id == user_id)
            .map(|user| user.name.clone())
            .unwrap_or_else(|| language.fill("users.owner_user", &[&user_id])),
    }
}

/// A user's or an AccessKey's status: active or disabled.
fn active_markup(language: Language, active: bool) -> Markup {
    html! {
        @if active { span.status.status-enabled { (language.text("users.active")) } } @else { span.status.status-disabled { (language.text("users.disabled")) } }
    }
}

fn access_key_row(console: &Console, users: &[UserRecord], record: &AccessKeyRecord) -> Markup {
    let language = console.language;
    let dialog_id = format!("delete-access-key-{}", record.access_key_id);
    html! {
        tr {
            td data-label=(language.text("users.access_key_id")) { code { (record.access_key_id) } }
            td data-label=(language.text("users.owner")) { (owner_name(language, users, record.user_id, &console.auth.caller.account_name)) }
            td data-label=(language.text("column.status")) { (active_markup(language, record.active)) }
            td data-label=(language.text("column.created")) { (time(record.created_at)) }
            td data-label=(language.text("column.last_used")) { @match record.last_used_at { Some(at) => { (time(at)) } None => { span.muted { (language.text("row.never")) } } } }
            td data-label=(language.text("column.actions")) {
                button.link.danger-text type="button" data-open-dialog=(dialog_id) { (language.text("row.delete")) }
                dialog.confirm id=(dialog_id) aria-labelledby={ (dialog_id) "-title" } {
                    form method="post" action=(with_region(&format!("/console/access-keys/{}/delete", record.access_key_id), console.region())) {
                        (csrf_field(console))
                        h2 id={ (dialog_id) "-title" } { (language.text("users.delete_access_key_title")) }
                        p { (language.text("users.delete_access_key_before")) code { (record.access_key_id) } (language.text("users.delete_access_key_after")) }
                        div.actions { button.secondary type="button" data-close-dialog { (language.text("keys.cancel")) } button.danger type="submit" { (language.text("row.delete")) } }
                    }
                }
            }
        }
    }
}

fn users_markup(console: &Console, users: &[UserRecord], access_keys: &[AccessKeyRecord], page_state: &PageState) -> Markup {
    let language = console.language;
    let text = |key| language.text(key);
    let region = console.region();
    let empty_form = UserForm { role: "key-manager".into(), ..UserForm::default() };
    let form = page_state.form.as_ref().unwrap_or(&empty_form);
    let user_headers = ["users.name", "users.role", "column.status", "users.sub_workspaces", "column.created", "column.actions"].map(text);
    let access_key_headers =
        ["users.access_key_id", "users.owner", "column.status", "column.created", "column.last_used", "column.actions"].map(text);
    html! {
        div.page-head { div { h1 { (text("section.users")) } p.muted { (language.fill("users.intro", &[&console.auth.caller.account_name])) } } }
        section.panel aria-labelledby="new-user-title" {
            h2 #new-user-title { (text("users.create_heading")) }
            form #create-user-form method="post" action=(with_region("/console/users", region)) novalidate {
                (csrf_field(console))
                div.field-row {
                    div.field {
                        label for="user-name" { (text("users.name")) }
                        input #user-name type="text" name="name" value=(form.name) autocomplete="off" required
                            aria-invalid=[form.name_error.as_ref().map(|_| "true")] aria-describedby=[described_by("user-name", true, form.name_error.is_some())];
                        p.hint #user-name-hint { (text("users.name_hint")) }
                        (field_error("user-name", form.name_error.as_deref()))
                    }
                    div.field {
                        label for="user-role" { (text("users.role")) }
                        select #user-role name="role" aria-invalid=[form.role_error.as_ref().map(|_| "true")] aria-describedby=[described_by("user-role", true, form.role_error.is_some())] {
                            option value="admin" selected[form.role == "admin"] { (text("users.role_admin")) }
                            option value="key-manager" selected[form.role == "key-manager"] { (text("users.role_key_manager")) }
                            option value="member" selected[form.role == "member"] { (text("users.role_member")) }
                        }
                        p.hint #user-role-hint { (text("users.role_hint")) }
                        (field_error("user-role", form.role_error.as_deref()))
                    }
                    div.field {
                        label for="user-password" { (text("users.password")) }
                        input #user-password type="password" name="password" autocomplete="new-password" required
                            aria-invalid=[form.password_error.as_ref().map(|_| "true")] aria-describedby=[described_by("user-password", true, form.password_error.is_some())];
                        p.hint #user-password-hint { (text("users.password_hint")) }
                        (field_error("user-password", form.password_error.as_deref()))
                    }
                }
                @if let Some(message) = &form.form_error { p.form-error role="alert" { (message) } }
                div.actions { button type="submit" { (text("users.create")) } }
            }
        }
        h2 { (text("users.ram_users")) }
        @if users.is_empty() {
            p.empty { (text("users.none")) }
        } @else {
            (records_table("users", text("users.ram_users"), &user_headers, html! {
                @for user in users {
                    tr data-user=(user.name) {
                        td data-label=(user_headers[0]) { (user.name) }
                        td data-label=(user_headers[1]) { (user.role.as_str()) }
                        td data-label=(user_headers[2]) { (active_markup(language, user.status == UserStatus::Active)) }
                        td data-label=(user_headers[3]) { @if user.workspace_ids.is_empty() { span.muted { (text("users.default_only")) } } @else { @for (index, workspace_id) in user.workspace_ids.iter().enumerate() { @if index > 0 { ", " } code { (workspace_id) } } } }
                        td data-label=(user_headers[4]) { (time(user.created_at)) }
                        td data-label=(user_headers[5]) { (user_actions(console, user)) }
                    }
                }
            }))
        }
        section.panel aria-labelledby="access-keys-title" {
            h2 #access-keys-title { (text("users.access_keys")) }
            p.muted { (text("users.access_keys_intro")) }
            form #create-access-key-form.inline-form method="post" action=(with_region("/console/access-keys", region)) {
                (csrf_field(console))
                div.field {
                    label for="access-key-owner" { (text("users.owner")) }
                    select #access-key-owner name="owner" {
                        option value="" { (language.fill("users.the_account", &[&console.auth.caller.account_name])) }
                        @for user in users { option value=(user.name) { (user.name) } }
                    }
                }
                div.actions { button type="submit" { (text("users.create_access_key")) } }
            }
            @if !access_keys.is_empty() {
                (records_table("access-keys", text("users.access_keys"), &access_key_headers, html! { @for record in access_keys { (access_key_row(console, users, record)) } }))
            }
        }
        @if let Some(new_access_key) = &page_state.new_access_key {
            dialog.show-once #show-once open data-show-on-load data-secret aria-labelledby="show-once-title" aria-describedby="show-once-warning" {
                h2 #show-once-title { (language.fill("users.access_key_created", &[&new_access_key.owner])) }
                p.warning #show-once-warning role="alert" { strong { (text("users.copy_secret_now")) } (text("users.secret_once")) }
                div.field {
                    label for="show-once-access-key-id" { (text("users.access_key_id")) }
                    input #show-once-access-key-id type="text" readonly value=(new_access_key.access_key_id);
                }
                div.field {
                    label for="show-once-key" { (text("users.secret")) }
                    input #show-once-key.secret type="text" readonly value=(new_access_key.secret.expose_secret()) data-secret-value autocomplete="off" spellcheck="false";
                }
                div.actions {
                    button type="button" data-copy-target="show-once-key" data-status-target="show-once-status" { (text("users.copy_secret")) }
                    button.secondary type="button" data-close-dialog { (text("once.close")) }
                }
                p.copy-status #show-once-status role="status" {}
            }
        }
    }
}
