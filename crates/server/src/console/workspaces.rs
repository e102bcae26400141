//! The Workspaces page of the selected region, for the account and admin RAM users:
//! create a sub-workspace, grant it models (inference), manage its members and add
//! applications. The default workspace may call every model and has every user.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keygate_core::ids::{AppId, PrincipalName, WorkspaceId, WorkspaceName};
use keygate_store::{ModelGrant, UserRecord, WorkspaceRecord};
use maud::{html, Markup};

use super::layout::{csrf_field, described_by, error_page, field_error, page, time, with_region, Notice, Section};
use super::session::{Console, ConsoleForm};
use crate::management::errors::ManagementError;
use crate::management::form::FormFields;
use crate::operations::keys::region_policy;
use crate::planes::Path;
use crate::state::AppState;

/// Most characters in an application name (as the API's).
const MAX_APPLICATION_NAME_CHARACTERS: usize = 64;

#[derive(Default)]
struct PageState {
    notice: Option<Notice>,
    /// The Create workspace form sent back: the name and its error.
    create: Option<(String, String)>,
}

/// One workspace with what the page shows about it.
struct WorkspaceView {
    record: WorkspaceRecord,
    grants: Vec<ModelGrant>,
    applications: Vec<(String, String)>,
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
    let outcome = async {
        let policy = region_policy(&state, &console.auth)?;
        Ok::<_, ManagementError>(state.store().create_workspace(&console.auth.audit(), name.as_str(), policy.workspace_limit).await?)
    }
    .await;
    match outcome {
        Ok(_) => redirect_done(&console, "created"),
        Err(error) if error.status.is_server_error() => error_page(&state, &console, Section::Workspaces, &error),
        Err(error) => {
            render(&state, &console, error.status, PageState { create: Some((name_text, error.message)), ..PageState::default() }).await
        }
    }
}

/// The sub-workspace `text` names in the caller's account and region.
async fn workspace_of(state: &AppState, console: &Console, text: &str) -> Result<WorkspaceRecord, ManagementError> {
    let workspace_id = WorkspaceId::parse(text).map_err(|_| ManagementError::workspace_not_found())?;
    Ok(state.store().get_workspace(console.auth.caller.account_id, console.region(), workspace_id.as_str()).await?)
}

/// `POST /console/workspaces/{id}/models`: inference for the checked models, none for
/// the others (deploy and fine-tune grants are kept).
pub(super) async fn update_models(State(state): State<AppState>, Path(workspace_id): Path<String>, form: ConsoleForm) -> Response {
    let console = form.console;
    let outcome = async {
        console.auth.caller.may_administer()?;
        let workspace = workspace_of(&state, &console, &workspace_id).await?;
        if workspace.is_default {
            return Err(ManagementError::invalid_parameter(
                "The default workspace may call every model; its permissions cannot be changed.",
            ));
        }
        let checked: Vec<&str> = form.fields.values("model").collect();
        if let Some(unknown) = checked.iter().find(|model| !state.shared.catalog.contains(model)) {
            return Err(ManagementError::invalid_parameter(format!(
                "There is no model named '{}'.",
                crate::management::form::shown(unknown)
            )));
        }
        let existing = state.store().list_model_grants(&workspace.workspace_id).await?;
        let grants: Vec<ModelGrant> = state
            .shared
            .catalog
            .iter()
            .map(|model| {
                let previous = existing.iter().find(|grant| grant.model == model.name);
                ModelGrant {
                    model: model.name.clone(),
                    inference: checked.contains(&model.name.as_str()),
                    deploy: previous.is_some_and(|grant| grant.deploy),
                    fine_tune: previous.is_some_and(|grant| grant.fine_tune),
                }
            })
            .collect();
        state.store().update_model_grants(&console.auth.audit(), &workspace.workspace_id, &grants).await?;
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => redirect_done(&console, "models"),
        Err(error) => refused(&state, &console, error).await,
    }
}

/// `POST /console/workspaces/{id}/members`: adds the user named in `user`.
pub(super) async fn add_member(State(state): State<AppState>, Path(workspace_id): Path<String>, form: ConsoleForm) -> Response {
    let console = form.console;
    let outcome = async {
        console.auth.caller.may_administer()?;
        let workspace = workspace_of(&state, &console, &workspace_id).await?;
        let name = PrincipalName::parse(form.fields.get("user").unwrap_or(""))?;
        state.store().add_workspace_member(&console.auth.audit(), &workspace.workspace_id, name.as_str()).await?;
        Ok::<_, ManagementError>(())
    }
    .await;
    match outcome {
        Ok(()) => redirect_done(&console, "member-added"),
        Err(error) => refused(&state, &console, error).await,
    }
}

/// `POST /console/workspaces/{id}/members/{name}/remove`
pub(super) async fn remove_member(
    State(state): State<AppState>,
    Path((workspace_id, name)): Path<(String, String)>,
    form: ConsoleForm,
) -> Response {
    let console = form.console;
    let outcome = async {
        console.auth.caller.may_administer()?;
        let workspace = workspace_of(&state, &console, &workspace_id).await?;
        let name = PrincipalName::parse(&name)?;
        state.store().remove_workspace_member(&console.auth.audit(), &workspace.workspace_id, name.as_str()).await?;
        Ok::<_, ManagementError>(())
    }
    .await;
    match outcome {
        Ok(()) => redirect_done(&console, "member-removed"),
        Err(error) => refused(&state, &console, error).await,
    }
}

/// `POST /console/workspaces/{id}/applications`: registers an application by name.
pub(super) async fn create_application(State(state): State<AppState>, Path(workspace_id): Path<String>, form: ConsoleForm) -> Response {
    let console = form.console;
    let outcome = async {
        console.auth.caller.may_administer()?;
        let workspace = workspace_of(&state, &console, &workspace_id).await?;
        let name = form.fields.get("name").unwrap_or("").trim().to_string();
        let count = name.chars().count();
        if count == 0 || count > MAX_APPLICATION_NAME_CHARACTERS || name.chars().any(char::is_control) {
            return Err(ManagementError::invalid_parameter(format!(
                "An application name has 1 to {MAX_APPLICATION_NAME_CHARACTERS} printable characters."
            )));
        }
        let app_id = AppId::generate();
        state.store().create_application(&console.auth.audit(), &workspace.workspace_id, app_id.as_str(), &name).await?;
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => redirect_done(&console, "application"),
        Err(error) => refused(&state, &console, error).await,
    }
}

async fn render(state: &AppState, console: &Console, status: StatusCode, page_state: PageState) -> Response {
    if let Err(denied) = console.auth.caller.may_administer() {
        return error_page(state, console, Section::Workspaces, &denied.into());
    }
    let loaded = async {
        let records = state.store().list_workspaces(console.auth.caller.account_id, console.region(), None, None).await?;
        let mut views = Vec::with_capacity(records.len());
        for record in records {
            let grants = state.store().list_model_grants(&record.workspace_id).await?;
            let applications = state.store().list_applications(&record.workspace_id).await?;
            views.push(WorkspaceView { record, grants, applications });
        }
        let users = state.store().list_users(console.auth.caller.account_id).await?;
        let limit = region_policy(state, &console.auth)?.workspace_limit;
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

fn models_dialog(state: &AppState, console: &Console, view: &WorkspaceView) -> Markup {
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

fn members_markup(console: &Console, view: &WorkspaceView, users: &[UserRecord]) -> Markup {
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
    views: &[WorkspaceView],
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
