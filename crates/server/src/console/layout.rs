//! The frame every console page shares (header, sections, region selector, sign-out),
//! small rendering helpers (times, field errors, notices), the plain message page, and the
//! pages of a [`ConsoleRejection`].
//! Markup is written with `maud`, which escapes every value it interpolates.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keygate_core::access::CallerIdentity;
use keygate_core::civil_time::format_utc_timestamp;
use maud::{html, Markup, DOCTYPE};

use super::i18n::Language;
use super::session::{Console, ConsoleRejection, CSRF_FIELD};
use crate::management::boundary::InternalFailure;
use crate::management::errors::ManagementError;
use crate::state::AppState;

/// The console's sections, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Keys,
    Usage,
    Users,
    Workspaces,
    Audit,
    /// The caller's own password, linked beside its name rather than in the sections.
    Password,
}

impl Section {
    pub fn path(self) -> &'static str {
        match self {
            Section::Keys => "/console/keys",
            Section::Usage => "/console/usage",
            Section::Users => "/console/users",
            Section::Workspaces => "/console/workspaces",
            Section::Audit => "/console/audit",
            Section::Password => "/console/password",
        }
    }

    fn title(self, language: Language) -> &'static str {
        language.text(match self {
            Section::Keys => "section.keys",
            Section::Usage => "section.usage",
            Section::Users => "section.users",
            Section::Workspaces => "section.workspaces",
            Section::Audit => "section.audit",
            Section::Password => "section.password",
        })
    }
}

/// A message shown at the top of a page after an action.
#[derive(Debug, Clone)]
pub enum Notice {
    Success(String),
    Error(String),
}

/// `path?region=...`: every console link keeps the region the caller works in.
pub fn with_region(path: &str, region: &str) -> String {
    format!("{path}?region={region}")
}

/// A region's display name, e.g. `Singapore (ap-southeast-1)`.
pub fn region_label(state: &AppState, region: &str) -> String {
    match state.region_policy(region) {
        Some(policy) => format!("{} ({region})", policy.name),
        None => region.to_string(),
    }
}

/// Unix milliseconds as a `<time>` in UTC.
pub fn time(milliseconds: i64) -> Markup {
    let text = format_utc_timestamp(milliseconds.div_euclid(1000));
    html! { time datetime=(text) { (text.replacen('T', " ", 1).trim_end_matches('Z')) " UTC" } }
}

/// The hidden CSRF field of a console form.
pub fn csrf_field(console: &Console) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(console.csrf_token); }
}

/// An error shown under a field, linked to it by `aria-describedby` (id `<field_id>-error`).
pub fn field_error(field_id: &str, message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p.field-error id={ (field_id) "-error" } { (message) }
        }
    }
}

/// The `aria-describedby` value of a field with a hint and maybe an error.
pub fn described_by(field_id: &str, has_hint: bool, has_error: bool) -> Option<String> {
    let mut ids = Vec::new();
    if has_hint {
        ids.push(format!("{field_id}-hint"));
    }
    if has_error {
        ids.push(format!("{field_id}-error"));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// A table of records in its scrolling wrapper: `class` names it for the stylesheet, the
/// caption is for screen readers only, then a column header per entry of `headers` and the
/// `rows`.
pub fn records_table(class: &str, caption: &str, headers: &[&str], rows: Markup) -> Markup {
    html! {
        div.table-wrap {
            table class=(class) {
                caption.visually-hidden { (caption) }
                thead { tr { @for header in headers { th scope="col" { (header) } } } }
                tbody { (rows) }
            }
        }
    }
}

fn who(console: &Console) -> String {
    match &console.auth.caller.identity {
        CallerIdentity::Account => format!("{} ({})", console.auth.caller.account_name, console.language.text("layout.account")),
        CallerIdentity::RamUser { name, role, .. } => format!("{name}@{} ({})", console.auth.caller.account_name, role.as_str()),
    }
}

fn document(language: Language, title: &str, header: Markup, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(language.html_lang()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (language.text("layout.title_suffix")) }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body data-text-copied=(language.text("script.copied")) data-text-copy-failed=(language.text("script.copy_failed"))
                data-text-downloaded=(language.text("script.downloaded")) {
                a.skip-link href="#main" { (language.text("layout.skip")) }
                (header)
                main #main { (main) }
            }
        }
    }
}

/// A whole page for a signed-in caller: header with sections (administration ones only
/// for the account and admins), region selector, the link to change one's password and
/// sign-out, then `body`.
pub fn page(state: &AppState, console: &Console, section: Section, notice: Option<&Notice>, body: Markup) -> Markup {
    let region = console.region();
    let language = console.language;
    let administers = console.auth.caller.may_administer().is_ok();
    let sections: &[Section] = if administers {
        &[Section::Keys, Section::Usage, Section::Users, Section::Workspaces, Section::Audit]
    } else {
        &[Section::Keys, Section::Usage]
    };
    let header = html! {
        header.top {
            a.brand href=(with_region("/console/keys", region)) { "keygate" span.brand-sub { (language.text("layout.brand_sub")) } }
            nav aria-label=(language.text("layout.sections")) {
                ul {
                    @for item in sections {
                        li {
                            a href=(with_region(item.path(), region)) aria-current=[(*item == section).then_some("page")] { (item.title(language)) }
                        }
                    }
                }
            }
            form.region-form method="get" action=(section.path()) {
                label for="region-select" { (language.text("layout.region")) }
                select #region-select name="region" data-autosubmit {
                    @for served in &state.shared.served_regions {
                        option value=(served) selected[served == region] { (region_label(state, served)) }
                    }
                }
                button.secondary type="submit" { (language.text("layout.switch")) }
            }
            div.who {
                span.who-name { (who(console)) }
                a.who-password href=(with_region(Section::Password.path(), region)) aria-current=[(section == Section::Password).then_some("page")] { (language.text("layout.change_password")) }
                form method="post" action="/console/logout" {
                    (csrf_field(console))
                    button.secondary type="submit" { (language.text("layout.log_out")) }
                }
            }
            (language_switch(language, &with_region(section.path(), region)))
        }
    };
    let main = html! {
        @match notice {
            Some(Notice::Success(text)) => { p.notice.notice-success role="status" { (text) } }
            Some(Notice::Error(text)) => { p.notice.notice-error role="alert" { (text) } }
            None => {}
        }
        (body)
    };
    document(language, section.title(language), header, main)
}

/// The language switch: a link to each other language, back to `back` (`/console/language`
/// remembers the choice in a cookie).
fn language_switch(language: Language, back: &str) -> Markup {
    let back = percent_encoding::utf8_percent_encode(back, percent_encoding::NON_ALPHANUMERIC).to_string();
    html! {
        div.language-switch role="group" aria-label=(language.text("layout.language")) {
            @for other in Language::ALL {
                @if other == language {
                    span aria-current="true" lang=(other.html_lang()) { (other.own_name()) }
                } @else {
                    a href={ "/console/language?lang=" (other.code()) "&back=" (back) } lang=(other.html_lang()) hreflang=(other.html_lang()) { (other.own_name()) }
                }
            }
        }
    }
}

/// A page without a session (login) or for a message.
pub fn bare_page(language: Language, title: &str, body: Markup) -> Markup {
    let header = html! {
        header.top {
            a.brand href="/console/keys" { "keygate" span.brand-sub { (language.text("layout.brand_sub")) } }
            (language_switch(language, "/console/login"))
        }
    };
    document(language, title, header, body)
}

/// A plain page in `language` that says what happened, with a way back.
pub fn message_page(language: Language, status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        section.panel.message {
            h1 { (title) }
            p { (message) }
            p { a href="/console/keys" { (language.text("layout.back_to_console")) } }
        }
    };
    (status, bare_page(language, title, body)).into_response()
}

/// A refused action or lookup as a page inside the console frame: what the API would
/// answer, in plain words. An internal failure's detail stays off the page; it rides out in
/// the response's extensions for the boundary to log with the request id.
pub fn error_page(state: &AppState, console: &Console, section: Section, error: &ManagementError) -> Response {
    let language = console.language;
    let title = language.text(match error.status.as_u16() {
        403 => "error.not_allowed",
        404 => "error.not_found",
        500.. => "error.went_wrong",
        _ => "error.not_done",
    });
    let body = html! {
        section.panel.message {
            h1 { (title) }
            p { (error.message) }
            p { a href=(with_region(section.path(), console.region())) { (language.fill("layout.back_to", &[&section.title(language)])) } }
        }
    };
    let mut response = (error.status, page(state, console, section, None, body)).into_response();
    if let Some(detail) = &error.detail {
        response.extensions_mut().insert(InternalFailure(detail.clone()));
    }
    response
}

impl IntoResponse for ConsoleRejection {
    fn into_response(self) -> Response {
        match self {
            ConsoleRejection::NotSignedIn => Redirect::to("/console/login").into_response(),
            ConsoleRejection::CsrfRefused(language) => {
                message_page(language, StatusCode::FORBIDDEN, language.text("error.form_refused"), language.text("error.form_refused_text"))
            }
            ConsoleRejection::BadRequest(language, message) => {
                message_page(language, StatusCode::BAD_REQUEST, language.text("error.bad_request"), &message)
            }
            ConsoleRejection::Refused(response) => *response,
            ConsoleRejection::Internal(language, error) => {
                let mut response = message_page(
                    language,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    language.text("error.went_wrong"),
                    language.text("error.internal"),
                );
                if let Some(detail) = error.detail() {
                    response.extensions_mut().insert(InternalFailure(detail.to_string()));
                }
                response
            }
        }
    }
}
