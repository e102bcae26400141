//! The Workspaces page of the selected region, for the account and admin RAM users:
//! create a sub-workspace, grant it models (inference), manage its members and add
//! applications. The default workspace may call every model and has every user.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use keygate_core::ids::{PrincipalName, WorkspaceName};
use maud::{html, Markup};

use super::item_actions;
use super::layout::{csrf_field, described_by, error_page, field_error, time, with_region, Section};
use super::page_actions::{acting_as_administrator, finish, redirect_done, render, show, FormPage};
use super::session::{Console, ConsoleForm};
use crate::management::errors::ManagementError;
use crate::operations::users::list_users;
use crate::operations::workspaces::{self, application_name, find_workspace, WorkspaceDetail, MAX_APPLICATION_NAME_CHARACTERS};
use crate::operations::{Actor, Operations, UserRecord, WorkspaceRecord};
use crate::planes::Path;
use crate::state::AppState;

#[derive(Default)]
struct PageState {
    /// The Create workspace form sent back: the name and its error.
    create: Option<(String, String)>,
}

/// The Workspaces page and the actions of its forms on one workspace.
pub(super) fn routes() -> Router<AppState> {
    let workspace_actions = [
        ("models", post(update_models)),
        ("models/grant", post(grant_model)),
        ("models/revoke", post(revoke_model)),
        ("members", post(add_member)),
        ("members/{name}/remove", post(remove_member)),
        ("applications", post(create_application)),
    ];
    Router::new()
        .route("/console/workspaces", get(show::<PageState>).post(create_workspace))
        .merge(item_actions("/console/workspaces/{workspace_id}", workspace_actions))
}

/// The sub-workspace `workspace_id` names, for an administrator: the operations, the
/// caller as their actor, and the workspace.
async fn administered<'a>(
    state: &'a AppState,
    console: &Console,
    workspace_id: &str,
) -> Result<(Operations<'a>, Actor, WorkspaceRecord), ManagementError> {
    let (operations, actor) = acting_as_administrator(state, console)?;
    let workspace = find_workspace(operations, &actor, workspace_id).await?;
    Ok((operations, actor, workspace))
}

/// `POST /console/workspaces`
pub(super) async fn create_workspace(State(state): State<AppState>, form: ConsoleForm) -> Response {
    let console = form.console;
    if let Err(denied) = console.auth.caller.may_administer() {
        return error_page(&state, &console, Section::Workspaces, &denied.into());
    }
    let name_text = form.fields.get("name").unwrap_or("").to_string();
    let Ok(name) = WorkspaceName::parse(&name_text) else {
        return render(
            &state,
            &console,
            StatusCode::BAD_REQUEST,
            None,
            PageState { create: Some((name_text, console.language.text("workspaces.name_error").into())) },
        )
        .await;
    };
    let operations = state.operations();
    let outcome = workspaces::create_workspace(operations, &console.auth.actor(&operations), &name).await.map_err(ManagementError::from);
    match outcome {
        Ok(_) => redirect_done(&console, Section::Workspaces, "created"),
        Err(error) if error.status.is_server_error() => error_page(&state, &console, Section::Workspaces, &error),
        Err(error) => render(&state, &console, error.status, None, PageState { create: Some((name_text, error.message)) }).await,
    }
}

/// `POST /console/workspaces/{id}/models`: inference for the checked models, none for
/// the others (deploy and fine-tune grants are kept).
pub(super) async fn update_models(State(state): State<AppState>, Path(workspace_id): Path<String>, form: ConsoleForm) -> Response {
    let console = form.console;
    let outcome = async {
        let (operations, actor, workspace) = administered(&state, &console, &workspace_id).await?;
        let checked: Vec<&str> = form.fields.values("model").collect();
        Ok(workspaces::set_inference_models(operations, &actor, &workspace, &checked).await?)
    }
    .await;
    finish::<PageState, _>(&state, &console, outcome, "models").await
}

/// `POST /console/workspaces/{id}/models/grant`: inference for the model named in `model`.
pub(super) async fn grant_model(State(state): State<AppState>, Path(workspace_id): Path<String>, form: ConsoleForm) -> Response {
    change_grant(state, form, &workspace_id, true).await
}

/// `POST /console/workspaces/{id}/models/revoke`: no inference for the model named in `model`.
pub(super) async fn revoke_model(State(state): State<AppState>, Path(workspace_id): Path<String>, form: ConsoleForm) -> Response {
    change_grant(state, form, &workspace_id, false).await
}

async fn change_grant(state: AppState, form: ConsoleForm, workspace_id: &str, grant: bool) -> Response {
    let console = form.console;
    let outcome = async {
        let (operations, actor, workspace) = administered(&state, &console, workspace_id).await?;
        let model = form.fields.get("model").unwrap_or("");
        if grant {
            workspaces::grant_model(operations, &actor, &workspace, model).await?;
        } else {
            workspaces::revoke_model(operations, &actor, &workspace, model).await?;
        }
        Ok(())
    }
    .await;
    finish::<PageState, _>(&state, &console, outcome, if grant { "model-granted" } else { "model-revoked" }).await
}

/// `POST /console/workspaces/{id}/members`: adds the user named in `user`.
pub(super) async fn add_member(State(state): State<AppState>, Path(workspace_id): Path<String>, form: ConsoleForm) -> Response {
    let name = form.fields.get("user").unwrap_or("").to_string();
    change_membership(state, form.console, &workspace_id, &name, true).await
}

/// `POST /console/workspaces/{id}/members/{name}/remove`
pub(super) async fn remove_member(
    State(state): State<AppState>,
    Path((workspace_id, name)): Path<(String, String)>,
    form: ConsoleForm,
) -> Response {
    change_membership(state, form.console, &workspace_id, &name, false).await
}

/// Adds the user `name` to the workspace (`member`) or removes it.
async fn change_membership(state: AppState, console: Console, workspace_id: &str, name: &str, member: bool) -> Response {
    let outcome = async {
        let (operations, actor, workspace) = administered(&state, &console, workspace_id).await?;
        let name = PrincipalName::parse(name)?;
        Ok(workspaces::change_membership(operations, &actor, &workspace, name.as_str(), member).await?)
    }
    .await;
    finish::<PageState, _>(&state, &console, outcome, if member { "member-added" } else { "member-removed" }).await
}

/// `POST /console/workspaces/{id}/applications`: registers an application by name.
pub(super) async fn create_application(State(state): State<AppState>, Path(workspace_id): Path<String>, form: ConsoleForm) -> Response {
    let console = form.console;
    let outcome = async {
        let (operations, actor, workspace) = administered(&state, &console, &workspace_id).await?;
        let name = application_name(form.fields.get("name").unwrap_or("")).ok_or_else(|| {
            ManagementError::invalid_parameter(format!(
                "An application name has 1 to {MAX_APPLICATION_NAME_CHARACTERS} printable characters."
            ))
        })?;
        workspaces::create_application(operations, &actor, &workspace, &name).await?;
        Ok(())
    }
    .await;
    finish::<PageState, _>(&state, &console, outcome, "application").await
}

impl FormPage for PageState {
    const SECTION: Section = Section::Workspaces;
    type Loaded = (Vec<WorkspaceDetail>, u32, Vec<UserRecord>);

    async fn load(&self, state: &AppState, console: &Console) -> Result<Self::Loaded, ManagementError> {
        let (operations, actor) = acting_as_administrator(state, console)?;
        let (views, limit) = workspaces::workspace_details(operations, &actor).await?;
        Ok((views, limit, list_users(operations, &actor).await?))
    }

    fn markup(&self, state: &AppState, console: &Console, (views, limit, users): Self::Loaded) -> Markup {
        workspaces_markup(state, console, &views, &users, limit, self)
    }
}

fn models_dialog(state: &AppState, console: &Console, view: &WorkspaceDetail) -> Markup {
    let workspace_id = &view.record.workspace_id;
    let dialog_id = format!("models-{workspace_id}");
    html! {
        dialog.form-dialog id=(dialog_id) aria-labelledby={ (dialog_id) "-title" } {
            form method="post" action=(with_region(&format!("/console/workspaces/{workspace_id}/models"), console.region())) {
                (csrf_field(console))
                h2 id={ (dialog_id) "-title" } { (console.language.fill("workspaces.models_of", &[&view.record.name])) }
                fieldset.field {
                    legend { (console.language.text("workspaces.models_legend")) }
                    @for (index, model) in state.shared.catalog.iter().enumerate() {
                        div.choice {
                            input type="checkbox" id={ (dialog_id) "-" (index) } name="model" value=(model.name) checked[view.grants.iter().any(|grant| grant.model == model.name && grant.inference)];
                            label for={ (dialog_id) "-" (index) } { code { (model.name) } @if model.demo { " " span.badge { "demo" } } }
                        }
                    }
                }
                div.actions {
                    button.secondary type="button" data-close-dialog { (console.language.text("keys.cancel")) }
                    button type="submit" { (console.language.text("edit.save")) }
                }
            }
        }
    }
}

/// A sub-workspace's granted models, each with Revoke, and a form that grants another.
fn grants_markup(state: &AppState, console: &Console, view: &WorkspaceDetail) -> Markup {
    let workspace_id = &view.record.workspace_id;
    let is_granted = |name: &str| view.grants.iter().any(|grant| grant.model == name && grant.inference);
    let granted: Vec<&str> = state.shared.catalog.iter().map(|model| model.name.as_str()).filter(|name| is_granted(name)).collect();
    let others: Vec<&str> = state.shared.catalog.iter().map(|model| model.name.as_str()).filter(|name| !is_granted(name)).collect();
    let select_id = format!("grant-model-{workspace_id}");
    let language = console.language;
    html! {
        p.hint { (language.text("workspaces.grants_hint")) }
        @if granted.is_empty() { p.muted.no-grants { (language.text("workspaces.none_yet")) } }
        ul.grants {
            @for model in &granted {
                li data-model=(model) {
                    code { (model) } " "
                    form.inline method="post" action=(with_region(&format!("/console/workspaces/{workspace_id}/models/revoke"), console.region())) {
                        (csrf_field(console))
                        input type="hidden" name="model" value=(model);
                        button.link.danger-text type="submit" aria-label=(language.fill("workspaces.revoke_label", &[model, &view.record.name])) { (language.text("workspaces.revoke")) }
                    }
                }
            }
        }
        @if !others.is_empty() {
            form.inline-form.grant-form method="post" action=(with_region(&format!("/console/workspaces/{workspace_id}/models/grant"), console.region())) {
                (csrf_field(console))
                label for=(select_id) { (language.text("workspaces.grant_model")) }
                select id=(select_id) name="model" { @for model in &others { option value=(model) { (model) } } }
                button.secondary type="submit" { (language.text("workspaces.grant")) }
            }
        }
    }
}

fn members_markup(console: &Console, view: &WorkspaceDetail, users: &[UserRecord]) -> Markup {
    let workspace_id = &view.record.workspace_id;
    let members: Vec<&UserRecord> = users.iter().filter(|user| user.workspace_ids.contains(workspace_id)).collect();
    let others: Vec<&UserRecord> = users.iter().filter(|user| !user.workspace_ids.contains(workspace_id)).collect();
    let select_id = format!("add-member-{workspace_id}");
    let language = console.language;
    html! {
        @if members.is_empty() { p.muted { (language.text("workspaces.no_members")) } }
        ul.members {
            @for member in &members {
                li {
                    (member.name) " "
                    form.inline method="post" action=(with_region(&format!("/console/workspaces/{workspace_id}/members/{}/remove", member.name), console.region())) {
                        (csrf_field(console))
                        button.link.danger-text type="submit" aria-label=(language.fill("workspaces.remove_label", &[&member.name, &view.record.name])) { (language.text("workspaces.remove")) }
                    }
                }
            }
        }
        @if !others.is_empty() {
            form.inline-form method="post" action=(with_region(&format!("/console/workspaces/{workspace_id}/members"), console.region())) {
                (csrf_field(console))
                label for=(select_id) { (language.text("workspaces.add_member")) }
                select id=(select_id) name="user" { @for user in &others { option value=(user.name) { (user.name) " (" (user.role.as_str()) ")" } } }
                button.secondary type="submit" { (language.text("workspaces.add")) }
            }
        }
    }
}

fn workspaces_markup(
    state: &AppState,
    console: &Console,
    views: &[WorkspaceDetail],
    users: &[UserRecord],
    limit: u32,
    page_state: &PageState,
) -> Markup {
    let region = console.region();
    let language = console.language;
    let (create_name, create_error) = match &page_state.create {
        Some((name, error)) => (name.as_str(), Some(error.as_str())),
        None => ("", None),
    };
    html! {
        div.page-head { div { h1 { (language.text("workspaces.heading")) } p.muted { (language.fill("workspaces.in_use", &[&views.len(), &limit])) } } }
        section.panel aria-labelledby="new-workspace-title" {
            h2 #new-workspace-title { (language.text("workspaces.create_heading")) }
            form #create-workspace-form.inline-form method="post" action=(with_region("/console/workspaces", region)) novalidate {
                (csrf_field(console))
                div.field {
                    label for="workspace-name" { (language.text("workspaces.name")) }
                    input #workspace-name type="text" name="name" value=(create_name) required aria-invalid=[create_error.map(|_| "true")] aria-describedby=[described_by("workspace-name", false, create_error.is_some())];
                    (field_error("workspace-name", create_error))
                }
                div.actions { button type="submit" { (language.text("workspaces.create")) } }
            }
        }
        @for view in views {
            @let record = &view.record;
            section.panel.workspace data-workspace-id=(record.workspace_id) aria-labelledby={ "workspace-" (record.workspace_id) } {
                h2 id={ "workspace-" (record.workspace_id) } { (record.name) @if record.is_default { " " span.badge { (language.text("workspaces.default")) } } }
                p.muted { code { (record.workspace_id) } " · " (language.text("workspaces.created")) " " (time(record.created_at)) }
                div.columns {
                    div {
                        h3 { (language.text("workspaces.models")) }
                        @if record.is_default {
                            p { (language.text("workspaces.every_model")) }
                        } @else {
                            (grants_markup(state, console, view))
                            button.secondary type="button" data-open-dialog={ "models-" (record.workspace_id) } { (language.text("workspaces.change_models")) }
                            (models_dialog(state, console, view))
                        }
                    }
                    div {
                        h3 { (language.text("workspaces.members")) }
                        @if record.is_default { p { (language.text("workspaces.every_user")) } } @else { (members_markup(console, view, users)) }
                    }
                    div {
                        h3 { (language.text("workspaces.applications")) }
                        @if view.applications.is_empty() { p.muted { (language.text("workspaces.none_yet")) } }
                        ul.applications { @for (app_id, name) in &view.applications { li { (name) " " code { (app_id) } } } }
                        form.inline-form method="post" action=(with_region(&format!("/console/workspaces/{}/applications", record.workspace_id), region)) {
                            (csrf_field(console))
                            label for={ "app-name-" (record.workspace_id) } { (language.text("workspaces.new_application")) }
                            input id={ "app-name-" (record.workspace_id) } type="text" name="name" required;
                            button.secondary type="submit" { (console.language.text("workspaces.add")) }
                        }
                    }
                }
            }
        }
    }
}
