//! The Workspaces page of the selected region, for the account and admin RAM users:
//! create a sub-workspace, grant it models (inference), manage its members and add
//! applications. The default workspace may call every model and has every user.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keygate_core::ids::{PrincipalName, WorkspaceName};
use maud::{html, Markup};

use super::layout::{csrf_field, described_by, error_page, field_error, page, time, with_region, Notice, Section};
use super::session::{Console, ConsoleForm};
use crate::management::errors::ManagementError;
use crate::management::form::FormFields;
use crate::operations::users::list_users;
use crate::operations::workspaces::{self, application_name, find_workspace, WorkspaceDetail, MAX_APPLICATION_NAME_CHARACTERS};
use crate::operations::{Actor, Operations, UserRecord, WorkspaceRecord};
use crate::planes::Path;
use crate::state::AppState;

#[derive(Default)]
struct PageState {
    notice: Option<Notice>,
    /// The Create workspace form sent back: the name and its error.
    create: Option<(String, String)>,
}

fn done_notice(done: &str) -> Option<Notice> {
    let text = match done {
        "created" => "The workspace was created.",
        "models" => "The workspace's models were saved.",
        "member-added" => "The user was added to the workspace.",
        "member-removed" => "The user was removed from the workspace: its keys there stop working.",
        "application" => "The application was added.",
        _ => return None,
    };
    Some(Notice::Success(text.to_string()))
}

/// `GET /console/workspaces?region=...`
pub(super) async fn workspaces_page(State(state): State<AppState>, console: Console, RawQuery(query): RawQuery) -> Response {
    let notice = FormFields::parse(query.as_deref().unwrap_or(""), "query string")
        .ok()
        .and_then(|fields| fields.get_non_empty("done").and_then(done_notice));
    render(&state, &console, StatusCode::OK, PageState { notice, ..PageState::default() }).await
}

fn redirect_done(console: &Console, done: &str) -> Response {
    Redirect::to(&format!("{}&done={done}", with_region("/console/workspaces", console.region()))).into_response()
}

/// The sub-workspace `workspace_id` names, for an administrator: the operations, the
/// caller as their actor, and the workspace.
async fn administered<'a>(
    state: &'a AppState,
    console: &Console,
    workspace_id: &str,
) -> Result<(Operations<'a>, Actor, WorkspaceRecord), ManagementError> {
    console.auth.caller.may_administer()?;
    let operations = state.operations();
    let actor = console.auth.actor(&operations);
    let workspace = find_workspace(operations, &actor, workspace_id).await?;
    Ok((operations, actor, workspace))
}

/// After an action: the page again saying `done`, or saying why it was not.
async fn finish(state: &AppState, console: &Console, outcome: Result<(), ManagementError>, done: &str) -> Response {
    match outcome {
        Ok(()) => redirect_done(console, done),
        Err(error) => refused(state, console, error).await,
    }
}

async fn refused(state: &AppState, console: &Console, error: ManagementError) -> Response {
    if error.status.is_server_error() {
        return error_page(state, console, Section::Workspaces, &error);
    }
    render(state, console, error.status, PageState { notice: Some(Notice::Error(error.message)), ..PageState::default() }).await
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
            PageState { create: Some((name_text, "Enter 1 to 64 printable characters.".into())), ..PageState::default() },
        )
        .await;
    };
    let operations = state.operations();
    let outcome = workspaces::create_workspace(operations, &console.auth.actor(&operations), &name).await.map_err(ManagementError::from);
    match outcome {
        Ok(_) => redirect_done(&console, "created"),
        Err(error) if error.status.is_server_error() => error_page(&state, &console, Section::Workspaces, &error),
        Err(error) => {
            render(&state, &console, error.status, PageState { create: Some((name_text, error.message)), ..PageState::default() }).await
        }
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
    finish(&state, &console, outcome, "models").await
}

/// `POST /console/workspaces/{id}/members`: adds the user named in `user`.
pub(super) async fn add_member(State(state): State<AppState>, Path(workspace_id): Path<String>, form: ConsoleForm) -> Response {
    let console = form.console;
    let outcome = async {
        let (operations, actor, workspace) = administered(&state, &console, &workspace_id).await?;
        let name = PrincipalName::parse(form.fields.get("user").unwrap_or(""))?;
        Ok(workspaces::change_membership(operations, &actor, &workspace, name.as_str(), true).await?)
    }
    .await;
    finish(&state, &console, outcome, "member-added").await
}

/// `POST /console/workspaces/{id}/members/{name}/remove`
pub(super) async fn remove_member(
    State(state): State<AppState>,
    Path((workspace_id, name)): Path<(String, String)>,
    form: ConsoleForm,
) -> Response {
    let console = form.console;
    let outcome = async {
        let (operations, actor, workspace) = administered(&state, &console, &workspace_id).await?;
        let name = PrincipalName::parse(&name)?;
        Ok(workspaces::change_membership(operations, &actor, &workspace, name.as_str(), false).await?)
    }
    .await;
    finish(&state, &console, outcome, "member-removed").await
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
    finish(&state, &console, outcome, "application").await
}

async fn render(state: &AppState, console: &Console, status: StatusCode, page_state: PageState) -> Response {
    if let Err(denied) = console.auth.caller.may_administer() {
        return error_page(state, console, Section::Workspaces, &denied.into());
    }
    let operations = state.operations();
    let actor = console.auth.actor(&operations);
    let loaded = async {
        let (views, limit) = workspaces::workspace_details(operations, &actor).await?;
        let users = list_users(operations, &actor).await?;
        Ok::<_, ManagementError>((views, users, limit))
    }
    .await;
    match loaded {
        Ok((views, users, limit)) => {
            let body = workspaces_markup(state, console, &views, &users, limit, &page_state);
            (status, page(state, console, Section::Workspaces, page_state.notice.as_ref(), body)).into_response()
        }
        Err(error) => error_page(state, console, Section::Workspaces, &error),
    }
}

fn models_dialog(state: &AppState, console: &Console, view: &WorkspaceDetail) -> Markup {
    let workspace_id = &view.record.workspace_id;
    let dialog_id = format!("models-{workspace_id}");
    html! {
        dialog.form-dialog id=(dialog_id) aria-labelledby={ (dialog_id) "-title" } {
            form method="post" action=(with_region(&format!("/console/workspaces/{workspace_id}/models"), console.region())) {
                (csrf_field(console))
                h2 id={ (dialog_id) "-title" } { "Models of " (view.record.name) }
                fieldset.field {
                    legend { "Models this workspace's keys may call" }
                    @for (index, model) in state.shared.catalog.iter().enumerate() {
                        div.choice {
                            input type="checkbox" id={ (dialog_id) "-" (index) } name="model" value=(model.name) checked[view.grants.iter().any(|grant| grant.model == model.name && grant.inference)];
                            label for={ (dialog_id) "-" (index) } { code { (model.name) } @if model.demo { " " span.badge { "demo" } } }
                        }
                    }
                }
                div.actions { button.secondary type="button" data-close-dialog { "Cancel" } button type="submit" { "Save" } }
            }
        }
    }
}

fn members_markup(console: &Console, view: &WorkspaceDetail, users: &[UserRecord]) -> Markup {
    let workspace_id = &view.record.workspace_id;
    let members: Vec<&UserRecord> = users.iter().filter(|user| user.workspace_ids.contains(workspace_id)).collect();
    let others: Vec<&UserRecord> = users.iter().filter(|user| !user.workspace_ids.contains(workspace_id)).collect();
    let select_id = format!("add-member-{workspace_id}");
    html! {
        @if members.is_empty() { p.muted { "No members yet." } }
        ul.members {
            @for member in &members {
                li {
                    (member.name) " "
                    form.inline method="post" action=(with_region(&format!("/console/workspaces/{workspace_id}/members/{}/remove", member.name), console.region())) {
                        (csrf_field(console))
                        button.link.danger-text type="submit" aria-label={ "Remove " (member.name) " from " (view.record.name) } { "Remove" }
                    }
                }
            }
        }
        @if !others.is_empty() {
            form.inline-form method="post" action=(with_region(&format!("/console/workspaces/{workspace_id}/members"), console.region())) {
                (csrf_field(console))
                label for=(select_id) { "Add member" }
                select id=(select_id) name="user" { @for user in &others { option value=(user.name) { (user.name) " (" (user.role.as_str()) ")" } } }
                button.secondary type="submit" { "Add" }
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
    let (create_name, create_error) = match &page_state.create {
        Some((name, error)) => (name.as_str(), Some(error.as_str())),
        None => ("", None),
    };
    html! {
        div.page-head { div { h1 { "Workspaces" } p.muted { (views.len()) " of " (limit) " workspaces of this region are in use. The default workspace may call every model; a sub-workspace only the models granted to it." } } }
        section.panel aria-labelledby="new-workspace-title" {
            h2 #new-workspace-title { "Create a workspace" }
            form #create-workspace-form.inline-form method="post" action=(with_region("/console/workspaces", region)) novalidate {
                (csrf_field(console))
                div.field {
                    label for="workspace-name" { "Name" }
                    input #workspace-name type="text" name="name" value=(create_name) required aria-invalid=[create_error.map(|_| "true")] aria-describedby=[described_by("workspace-name", false, create_error.is_some())];
                    (field_error("workspace-name", create_error))
                }
                div.actions { button type="submit" { "Create workspace" } }
            }
        }
        @for view in views {
            @let record = &view.record;
            section.panel.workspace data-workspace-id=(record.workspace_id) aria-labelledby={ "workspace-" (record.workspace_id) } {
                h2 id={ "workspace-" (record.workspace_id) } { (record.name) @if record.is_default { " " span.badge { "default" } } }
                p.muted { code { (record.workspace_id) } " · created " (time(record.created_at)) }
                div.columns {
                    div {
                        h3 { "Models" }
                        @if record.is_default {
                            p { "Every model of the catalog." }
                        } @else {
                            @let granted: Vec<&str> = view.grants.iter().filter(|grant| grant.inference).map(|grant| grant.model.as_str()).collect();
                            p { @if granted.is_empty() { span.muted { "None yet." } } @else { (granted.join(", ")) } }
                            button.secondary type="button" data-open-dialog={ "models-" (record.workspace_id) } { "Change models" }
                            (models_dialog(state, console, view))
                        }
                    }
                    div {
                        h3 { "Members" }
                        @if record.is_default { p { "Every user of the account." } } @else { (members_markup(console, view, users)) }
                    }
                    div {
                        h3 { "Applications" }
                        @if view.applications.is_empty() { p.muted { "None yet." } }
                        ul.applications { @for (app_id, name) in &view.applications { li { (name) " " code { (app_id) } } } }
                        form.inline-form method="post" action=(with_region(&format!("/console/workspaces/{}/applications", record.workspace_id), region)) {
                            (csrf_field(console))
                            label for={ "app-name-" (record.workspace_id) } { "New application" }
                            input id={ "app-name-" (record.workspace_id) } type="text" name="name" required;
                            button.secondary type="submit" { "Add" }
                        }
                    }
                }
            }
        }
    }
}
