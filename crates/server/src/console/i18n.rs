//! The console's languages: English and Simplified Chinese. A page's language is the
//! `keygate_lang` cookie's (set by the switch in the header, `/console/language`), else
//! the first of the browser's `Accept-Language` that the console speaks, else English.
//!
//! Every text a page shows is a key of the message tables, [`ENGLISH`] and [`CHINESE`], one
//! per language with the same keys (a test holds them to it, and holds every key the
//! console's code names to be in both). A text with `{}` takes its values in order
//! ([`Language::fill`]). Messages that come from the rules (a refusal's reason) are the
//! API's, in English.

use axum::extract::RawQuery;
use axum::http::header::{ACCEPT_LANGUAGE, SET_COOKIE};
use axum::http::HeaderMap;
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};

use super::page_actions::query_fields;
use super::session::cookie_header;

/// The cookie that remembers the language chosen with the switch.
pub const LANGUAGE_COOKIE: &str = "keygate_lang";
/// A year, in seconds: how long the choice is remembered.
const LANGUAGE_COOKIE_SECONDS: i64 = 365 * 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    English,
    Chinese,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::English, Language::Chinese];

    /// The code the cookie and the switch use, `en` or `zh`.
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Chinese => "zh",
        }
    }

    /// The `lang` attribute of the page.
    pub fn html_lang(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Chinese => "zh-CN",
        }
    }

    /// The language's name in itself, for the switch.
    pub fn own_name(self) -> &'static str {
        match self {
            Language::English => "English",
            Language::Chinese => "中文",
        }
    }

    pub fn parse(code: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|language| language.code() == code)
    }

    /// The first language of an `Accept-Language` value (by its `q` weights, then its
    /// order) that the console speaks: any `zh` tag is Chinese, any `en` tag English.
    pub fn from_accept_language(value: &str) -> Option<Language> {
        let mut ranked: Vec<(f32, usize, Language)> = Vec::new();
        for (index, item) in value.split(',').enumerate() {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight =
                parts.filter_map(|part| part.trim().strip_prefix("q=")).find_map(|number| number.trim().parse::<f32>().ok()).unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let language = match primary {
                "zh" => Language::Chinese,
                "en" => Language::English,
                _ => continue,
            };
            if weight > 0.0 {
                ranked.push((weight, index, language));
            }
        }
        ranked.sort_by(|left, right| right.0.total_cmp(&left.0).then(left.1.cmp(&right.1)));
        ranked.first().map(|(_, _, language)| *language)
    }

    /// The language of a request: the cookie's, else the browser's, else English.
    pub fn of_request(headers: &HeaderMap) -> Language {
        super::session::cookie(headers, LANGUAGE_COOKIE)
            .and_then(Language::parse)
            .or_else(|| headers.get(ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok()).and_then(Language::from_accept_language))
            .unwrap_or_default()
    }

    fn table(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Language::English => ENGLISH,
            Language::Chinese => CHINESE,
        }
    }

    /// The text of `key` in this language (English when this table lacks it, the key
    /// itself when no table has it; the tests keep both from happening).
    pub fn text(self, key: &'static str) -> &'static str {
        let find = |table: &'static [(&'static str, &'static str)]| table.iter().find(|(name, _)| *name == key).map(|(_, text)| *text);
        find(self.table()).or_else(|| find(ENGLISH)).unwrap_or(key)
    }

    /// The text of `key` with each `{}` replaced by the next of `values`, and each `{N}`
    /// by the N-th (a language that orders them otherwise numbers them).
    pub fn fill(self, key: &'static str, values: &[&dyn std::fmt::Display]) -> String {
        let mut numbered = self.text(key).to_string();
        for (index, value) in values.iter().enumerate() {
            numbered = numbered.replace(&format!("{{{index}}}"), &value.to_string());
        }
        let mut pieces = numbered.split("{}");
        let mut text = pieces.next().unwrap_or("").to_string();
        for (index, piece) in pieces.enumerate() {
            if let Some(value) = values.get(index) {
                text.push_str(&value.to_string());
            }
            text.push_str(piece);
        }
        text
    }
}

/// `GET /console/language?lang=zh&back=/console/keys?region=...`: remembers the language
/// in its cookie and goes back to the page (a path under `/console`, else the key list).
pub(super) async fn switch_language(transport: super::session::BrowserTransport, RawQuery(query): RawQuery) -> Response {
    let fields = query_fields(query.as_deref());
    let back = fields
        .get("back")
        .filter(|back| (back.starts_with("/console/") || *back == "/console") && !back.contains("//") && !back.contains('\\'))
        .unwrap_or("/console/keys")
        .to_string();
    match fields.get("lang").and_then(Language::parse) {
        Some(language) => {
            let cookie = cookie_header(transport, LANGUAGE_COOKIE, language.code(), LANGUAGE_COOKIE_SECONDS);
            (AppendHeaders([(SET_COOKIE, cookie)]), Redirect::to(&back)).into_response()
        }
        None => Redirect::to(&back).into_response(),
    }
}

/// English.
pub const ENGLISH: &[(&str, &str)] = &[
    // the frame
    ("layout.title_suffix", "keygate console"),
    ("layout.skip", "Skip to content"),
    ("layout.sections", "Console sections"),
    ("layout.region", "Region"),
    ("layout.switch", "Switch"),
    ("layout.log_out", "Log out"),
    ("layout.account", "account"),
    ("layout.language", "Language"),
    ("layout.back_to_console", "Back to the console"),
    ("layout.back_to", "Back to {}"),
    ("section.keys", "API keys"),
    ("section.usage", "Usage"),
    ("section.users", "Users"),
    ("section.workspaces", "Workspaces"),
    ("section.audit", "Audit log"),
    ("section.password", "Password"),
    ("error.not_allowed", "Not allowed"),
    ("error.not_found", "Not found"),
    ("error.went_wrong", "Something went wrong"),
    ("error.not_done", "Not done"),
    ("error.form_refused", "Form refused"),
    (
        "error.form_refused_text",
        "This form was not sent by your console session (its security token is missing or wrong), so nothing was changed. Go back, reload the page and try again.",
    ),
    ("error.bad_request", "Bad request"),
    ("error.internal", "An internal error occurred; the server log has the details."),
    // sign in
    ("login.title", "Sign in"),
    ("login.heading", "Sign in to keygate"),
    ("login.hint", "Sign in as the account, or as one of its RAM users by also giving the user's name."),
    ("login.account", "Account name"),
    ("login.user", "RAM user name"),
    ("login.user_optional", "(leave empty to sign in as the account)"),
    ("login.password", "Password"),
    ("login.submit", "Sign in"),
    ("login.signed_out", "You are signed out."),
    ("login.expired", "This sign-in form has expired (or cookies are off). Enter your password again."),
    ("login.missing", "Enter the account name and the password."),
    ("login.wrong", "The name or password is wrong."),
    // the key list
    ("keys.heading", "API keys"),
    ("keys.account_sees", "The account sees every API key of the account."),
    ("keys.user_sees", "You see only the API keys you created."),
    ("keys.limit_in_use", "{} of {} API keys of the account in {} are in use."),
    ("keys.limit_account", "An account may hold up to {} API keys in {}."),
    ("keys.limit_creator", "Each owner (the account and each RAM user) may hold up to {} API keys in {}."),
    ("keys.create", "Create API key"),
    ("keys.cannot_create", "You cannot create API keys: {}."),
    ("keys.no_disable", "Keys in {} cannot be disabled or reset; delete a key to revoke it."),
    ("keys.none_yet", "No API keys in {} yet."),
    ("keys.none_on_page", "No API keys on this page."),
    ("keys.none_match", "No API key matches \u{201c}{}\u{201d}."),
    ("keys.table_caption", "API keys in {}"),
    ("keys.search", "Search"),
    ("keys.search_label", "Search the API keys"),
    ("keys.search_hint", "A part of the description, or the start of the key's id."),
    ("keys.per_page", "Per page"),
    ("keys.clear", "Clear"),
    ("keys.pages", "Pages of the key list"),
    ("keys.range", "Keys {}\u{2013}{} of {}"),
    ("keys.range_none", "None of {}"),
    ("keys.previous", "Previous"),
    ("keys.next", "Next"),
    ("keys.ok", "OK"),
    ("keys.cancel", "Cancel"),
    ("keys.attention_one", "1 API key below needs attention: "),
    ("keys.attention_many", "{} API keys below need attention: "),
    (
        "keys.attention_text",
        "a budget at least {}% or wholly used, or an expiry within 7 days or past. Each is marked in its Status; its page says more.",
    ),
    ("column.key", "API key"),
    ("column.workspace", "Workspace"),
    ("column.permission", "Permission"),
    ("column.description", "Description"),
    ("column.creator", "Creator"),
    ("column.created", "Created"),
    ("column.last_used", "Last used"),
    ("column.status", "Status"),
    ("column.actions", "Actions"),
    // rows of the key list
    ("row.copy", "Copy"),
    ("row.copy_masked", "Copy the masked key"),
    ("row.copy_masked_label", "Copy the masked key {}"),
    ("row.legacy", "Legacy"),
    ("row.legacy_title", "Imported from an older deployment: create a new key to replace it."),
    ("row.never", "Never"),
    ("row.request", "{} request"),
    ("row.requests", "{} requests"),
    ("row.usage", "Usage"),
    ("row.usage_label", "Usage and details of {}"),
    ("row.edit", "Edit"),
    ("row.enable", "Enable"),
    ("row.disable", "Disable"),
    ("row.reset", "Reset"),
    ("row.end_grace", "End grace period"),
    ("row.delete", "Delete"),
    ("edit.title", "Edit API key {}"),
    ("edit.workspace", "Workspace: "),
    ("edit.save", "Save"),
    ("confirm.enable_title", "Enable API key?"),
    ("confirm.enable_text", "Calls with {} will be accepted again."),
    ("confirm.disable_title", "Disable API key?"),
    ("confirm.disable_text", "Calls with {} will be refused until you enable it again."),
    ("confirm.reset_title", "Reset API key?"),
    ("confirm.reset_text", "The current secret of {} stops working at once, or after the grace period below. The new key is shown once, in the next dialog."),
    ("confirm.end_grace_title", "End the grace period?"),
    ("confirm.end_grace_text", "The old secret of {} stops working now; the current one keeps working."),
    ("confirm.delete_title", "Delete API key?"),
    ("confirm.delete_text", "The key {} is deleted for good: calls with it are refused at once, and it cannot be restored."),
    ("grace.label", "Grace period in seconds"),
    ("grace.optional", "(optional)"),
    ("grace.hint", "How long the old secret keeps working beside the new one, up to {} (a day). 0: it stops at once."),
    ("status.disabled", "Disabled"),
    ("status.expired", "Expired"),
    ("status.enabled", "Enabled"),
    ("status.expired_at", "Expired "),
    ("status.expires_at", "Expires "),
    ("status.grace", "Old secret works until "),
    ("perm.ips", "IPs: "),
    ("perm.any_address", "any address"),
    ("perm.models", "Models: "),
    ("perm.apps", "Apps: "),
    ("perm.all", "all"),
    ("perm.none", "none"),
    // the key form
    ("form.default", "default"),
    ("form.no_apps", "No applications yet; an admin adds them on the Workspaces page."),
    ("form.workspace", "Workspace"),
    ("form.workspace_hint", "We recommend the default workspace. A key can call what its workspace may call."),
    ("form.permission", "Permission"),
    ("form.all_hint", " \u{2014} every model and application of the workspace, from any address"),
    ("form.custom_hint", " \u{2014} an IP whitelist and the models and applications this key may call"),
    ("form.ips", "IP whitelist"),
    ("form.ips_hint", "One IPv4 or IPv6 address or CIDR block per line (e.g. 10.0.0.0/8), at most 20. Empty: any address."),
    ("form.models", "Models"),
    ("form.models_all", "All models the workspace may call"),
    ("form.models_selected", "Only the models selected below (none selected: no model)"),
    ("form.apps", "Applications"),
    ("form.apps_all", "All applications of the workspace"),
    ("form.apps_selected", "Only the applications selected below (none selected: no application)"),
    ("form.only_all", "Permission: All. Custom permissions (IP whitelist, model and application scope) are not offered in {}."),
    ("form.description", "Description"),
    ("form.description_hint", "What the key is for, at most 200 characters."),
    ("form.expires", "Expires"),
    ("form.expires_hint", "When the key stops working: a date and time with its offset (2027-01-31T00:00:00Z). Empty: never."),
    // the show-once dialog
    ("once.created", "API key created"),
    ("once.reset", "API key reset"),
    ("once.copy_now", "Copy or download the key now. "),
    (
        "once.warning",
        "This is the only time the full key is shown: after you close this dialog it cannot be shown again. If you lose it, reset the key or create a new one. Keep it secret; anyone with it can call models on your behalf.",
    ),
    ("once.key", "API key"),
    ("once.copy", "Copy"),
    ("once.download", "Download"),
    ("once.close", "Close"),
    // how to call
    ("call.heading", "How to call"),
    ("call.hint", "Set the key in the environment first: {} . Each SDK takes the base URL of its protocol:"),
    ("call.native", "DashScope native"),
    ("call.openai", "OpenAI-compatible"),
    ("call.anthropic", "Anthropic-compatible"),
    ("call.copy", "Copy"),
    ("call.copy_label", "Copy {}"),
    ("call.python", "Python"),
    ("call.none_granted", "No model is granted to the workspace {} yet. "),
    ("call.none_granted_text", "Calls with this key are refused (Model access denied) until a model is granted to the workspace"),
    ("call.not_granted", "Not granted to the workspace {}: {}. "),
    ("call.not_granted_text", "Calls with this key for these models are refused (Model access denied) until they are granted to the workspace"),
    ("call.on_the", " on the "),
    ("call.workspaces_page", "Workspaces page"),
    ("call.ask", ": ask the account or an administrator."),
    // workspaces
    ("workspaces.heading", "Workspaces"),
    (
        "workspaces.in_use",
        "{} of {} workspaces of this region are in use. The default workspace may call every model; a sub-workspace only the models granted to it.",
    ),
    ("workspaces.create_heading", "Create a workspace"),
    ("workspaces.name", "Name"),
    ("workspaces.create", "Create workspace"),
    ("workspaces.default", "default"),
    ("workspaces.created", "created"),
    ("workspaces.models", "Models"),
    ("workspaces.every_model", "Every model of the catalog."),
    ("workspaces.grants_hint", "Its keys may call only these models; a call for another is refused (Model access denied) until it is granted here."),
    ("workspaces.none_yet", "None yet."),
    ("workspaces.revoke", "Revoke"),
    ("workspaces.revoke_label", "Revoke {} from {}"),
    ("workspaces.grant_model", "Grant a model"),
    ("workspaces.grant", "Grant"),
    ("workspaces.change_models", "Change models"),
    ("workspaces.members", "Members"),
    ("workspaces.every_user", "Every user of the account."),
    ("workspaces.no_members", "No members yet."),
    ("workspaces.remove", "Remove"),
    ("workspaces.add_member", "Add member"),
    ("workspaces.add", "Add"),
    ("workspaces.applications", "Applications"),
    ("workspaces.new_application", "New application"),
    // what a finished action says
    ("done.keys.edited", "The API key was saved."),
    ("done.keys.disabled", "The API key was disabled: calls with it are refused until you enable it."),
    ("done.keys.enabled", "The API key was enabled."),
    ("done.keys.deleted", "The API key was deleted."),
    ("done.keys.grace_ended", "The grace period was ended: the old secret no longer works."),
    ("done.users.created", "The user was created."),
    ("done.users.disabled", "The user was disabled: it cannot sign in, and its API keys stop working until it is enabled."),
    ("done.users.enabled", "The user was enabled."),
    ("done.users.deleted", "The user was deleted, with its API keys and AccessKeys."),
    ("done.users.access_key_deleted", "The AccessKey was deleted."),
    ("done.workspaces.created", "The workspace was created."),
    ("done.workspaces.models", "The workspace's models were saved."),
    ("done.workspaces.model_granted", "The model was granted: the workspace's keys may call it."),
    ("done.workspaces.model_revoked", "The model was revoked: the workspace's keys' calls for it are refused."),
    ("done.workspaces.member_added", "The user was added to the workspace."),
    ("done.workspaces.member_removed", "The user was removed from the workspace: its keys there stop working."),
    ("done.workspaces.application", "The application was added."),
    ("done.password.changed", "Your password was changed. Your other sessions were signed out; this one stays signed in."),
    // the audit log
    ("audit.heading", "Audit log"),
    ("audit.intro", "Every change to keys, users, workspaces and sessions of the account, newest first."),
    ("audit.filter_label", "Filter the audit log"),
    ("audit.actor", "Actor"),
    ("audit.action", "Action"),
    ("audit.action_hint", "Part of it, e.g. ApiKey. or Delete"),
    ("audit.key", "API key id"),
    ("audit.from", "From (UTC day)"),
    ("audit.to", "To (UTC day, included)"),
    ("audit.filter", "Filter"),
    ("audit.clear", "Clear"),
    ("audit.bad_key", "An API key id is a positive whole number."),
    ("audit.bad_day", "Enter a day as YYYY-MM-DD."),
    ("audit.none_match", "No entry matches these filters."),
    ("audit.nothing", "Nothing recorded yet."),
    ("audit.when", "When"),
    ("audit.who", "Who"),
    ("audit.target", "Target"),
    ("audit.detail", "Detail"),
    ("audit.client", "From"),
    ("audit.credential", "Credential"),
    ("audit.region", "Region"),
    ("audit.older", "Older entries"),
    ("audit.newest", "Newest entries"),
    // the frame, more
    ("layout.brand_sub", " console"),
    ("layout.change_password", "Change password"),
    ("error.method_not_allowed", "Method not allowed"),
    ("error.too_large", "Request too large"),
    ("error.timeout", "Request timed out"),
    ("error.target_too_long", "Request target too long"),
    ("error.request_id", "Request id: "),
    ("error.unknown_region", "This server does not serve that region; pick one from the region selector."),
    ("error.form_type", "Console forms are sent as application/x-www-form-urlencoded."),
    ("error.form_utf8", "The form is not valid UTF-8."),
    // what the script says (the page hands it these texts)
    ("script.copied", "Copied to the clipboard."),
    ("script.copy_failed", "Could not copy: select the text and press Ctrl+C (Cmd+C on a Mac)."),
    ("script.downloaded", "Downloaded {}."),
    // the Usage page and the charts
    ("usage.range_day", "Last 24 hours"),
    ("usage.range_week", "Last 7 days"),
    ("usage.range_month", "Last 30 days"),
    ("usage.time_range", "Time range"),
    ("usage.hour_utc", "Hour (UTC)"),
    ("usage.day_utc", "Day (UTC)"),
    ("usage.input", "Input"),
    ("usage.output", "Output"),
    ("usage.requests", "Requests"),
    ("usage.tokens_over_time", "Tokens over time"),
    ("usage.requests_over_time", "Requests over time"),
    ("usage.unit_tokens", "tokens"),
    ("usage.unit_requests", "requests"),
    ("usage.input_tokens", "Input tokens"),
    ("usage.output_tokens", "Output tokens"),
    ("usage.cost", "Cost"),
    ("usage.unpriced_models", "The cost leaves out the usage of models without a price"),
    ("usage.unpriced_named", "The cost leaves out the usage of {}, which has no price"),
    ("usage.prices_before", " ("),
    ("usage.prices_after", " in the server's settings)."),
    ("usage.deleted_key", "API key {} (deleted)"),
    ("usage.other_keys", "Other API keys"),
    ("usage.other_models", "Other models"),
    ("usage.whose_account", "The usage of every API key of the account, in every region."),
    ("usage.whose_user", "The usage of the API keys you created, in every region."),
    ("usage.delay", " A call shows here a few seconds after it ends."),
    ("usage.none", "No usage in the {}. Calls to models with your API keys show here a few seconds after they end."),
    ("usage.totals", "Totals"),
    ("usage.top_keys", "Top API keys"),
    ("usage.top_models", "Top models"),
    ("usage.model", "Model"),
    ("chart.numbers", "The numbers"),
    ("chart.over_time", "{} from {} to {}. In all: {}. Every value is in the table below."),
    ("chart.nothing", "{}: nothing to show."),
    ("chart.caption", "{}, in {}"),
    ("chart.bars", "{}, in {}: {}."),
    ("chart.none", "none"),
    ("chart.separator", ", "),
    ("chart.bar_separator", "; "),
    // a key's page
    ("key_page.heading", "API key "),
    ("key_page.details", "Details"),
    ("key_page.id", "ID"),
    ("key_page.never_expires", "Never"),
    ("key_page.all_recorded", "All recorded usage"),
    ("key_page.no_usage", "No usage in the {}."),
    ("key_page.limits_saved", "The limits were saved."),
    ("key_page.limits_removed", "The limits were removed: the key has none."),
    // a key's limits and warnings
    ("limits.heading", "Limits"),
    ("limits.requests_per_minute", "Requests per minute"),
    ("limits.requests_per_minute_hint", "Model calls per minute (a fixed window on the minute)."),
    ("limits.tokens_per_minute", "Tokens per minute"),
    ("limits.tokens_per_minute_hint", "Input plus output tokens per minute."),
    ("limits.in_flight", "Calls in flight"),
    ("limits.in_flight_hint", "Model calls running at once."),
    ("limits.field_hint", "{} Empty: no limit."),
    ("limits.optional", "(optional)"),
    ("limits.budget", "Budget"),
    ("limits.none", "None"),
    ("limits.budget_tokens", "{} tokens"),
    ("limits.and", " and "),
    ("limits.per_day", "{} per day (UTC)"),
    ("limits.per_month", "{} per month (UTC)"),
    ("limits.this_day", "This day's budget"),
    ("limits.this_month", "This month's budget"),
    ("limits.tokens_used", "Tokens used"),
    ("limits.tokens_left", "Tokens left"),
    ("limits.cost_used", "Cost used"),
    ("limits.cost_left", "Cost left"),
    ("limits.of", "of {}"),
    ("limits.renews_before", "The budget renews at "),
    ("limits.renews_after", ". Usage counts here once the nodes have written it (within seconds)."),
    ("limits.may_not", "You may not change this key's limits."),
    ("limits.change", "Change the limits"),
    ("limits.nothing_changed", "Nothing was changed: "),
    ("limits.period", "Period"),
    ("limits.no_budget", "No budget"),
    ("limits.option_day", "Per day (UTC)"),
    ("limits.option_month", "Per month (UTC)"),
    ("limits.period_hint", "The budget renews at the start of each UTC day or month."),
    ("limits.tokens", "Tokens"),
    ("limits.tokens_hint", "Input plus output tokens per period."),
    ("limits.cost", "Cost ({})"),
    ("limits.cost_hint", "At the price table's prices, e.g. 12.50; at most 6 decimals."),
    ("limits.budget_hint", "A budget needs a period and tokens, a cost or both; calls are refused once either is used up."),
    ("limits.save", "Save limits"),
    ("limits.remove_all", "Remove all limits"),
    ("warning.used_up_day", "The daily budget is used up: "),
    ("warning.used_up_month", "The monthly budget is used up: "),
    ("warning.used_up_day_text", "calls with this key are refused until the day ends (UTC), at "),
    ("warning.used_up_month_text", "calls with this key are refused until the month ends (UTC), at "),
    ("warning.nearly_day", "The daily budget is at least {}% used: "),
    ("warning.nearly_month", "The monthly budget is at least {}% used: "),
    ("warning.nearly_day_text", "calls with this key will be refused once it is used up, until the day ends at "),
    ("warning.nearly_month_text", "calls with this key will be refused once it is used up, until the month ends at "),
    ("warning.budget_end", "."),
    ("warning.expired", "This key has expired: "),
    ("warning.expired_before", "calls with it have been refused since "),
    ("warning.expired_after", ". Edit it with a later expiry, or none, to use it again."),
    ("warning.expires_soon", "This key expires within 7 days: "),
    ("warning.expires_soon_before", "calls with it will be refused from "),
    ("warning.expires_soon_after", "."),
    ("warning.badge_used_up", "Budget used up"),
    ("warning.badge_nearly", "Budget {}%+ used"),
    ("warning.badge_expires_soon", "Expires soon"),
    // users and AccessKeys
    ("users.intro", "RAM users of the account {}, and the AccessKeys that sign management calls."),
    ("users.create_heading", "Create a RAM user"),
    ("users.name", "Name"),
    ("users.name_hint", "Letters, digits, '.', '_' or '-'."),
    ("users.name_taken", "A user named '{}' already exists."),
    ("users.role", "Role"),
    ("users.role_admin", "admin \u{2014} manages users, workspaces and its own keys"),
    ("users.role_key_manager", "key-manager \u{2014} creates and manages its own keys"),
    ("users.role_member", "member \u{2014} may not create keys"),
    ("users.role_hint", "Every user sees only the API keys it created."),
    ("users.role_error", "Choose admin, key-manager or member."),
    ("users.password", "Password"),
    ("users.password_hint", "8 to 256 characters. It is never shown again, so it is not kept when the form comes back."),
    ("users.create", "Create user"),
    ("users.ram_users", "RAM users"),
    ("users.none", "No RAM users yet."),
    ("users.sub_workspaces", "Sub-workspaces"),
    ("users.default_only", "default only"),
    ("users.active", "Active"),
    ("users.disabled", "Disabled"),
    ("users.disable_title", "Disable user?"),
    ("users.disable_text", "{} can no longer sign in, and its API keys stop working until it is enabled again."),
    ("users.enable_title", "Enable user?"),
    ("users.enable_text", "{} can sign in again, and its API keys work again."),
    ("users.delete_title", "Delete user?"),
    ("users.delete_text", "{} is deleted for good, with its API keys and AccessKeys."),
    ("users.owner_account", "{} (account)"),
    ("users.owner_user", "user {}"),
    ("users.access_keys", "AccessKeys"),
    ("users.access_keys_intro", "An AccessKey signs management API calls (ACS3-HMAC-SHA256). Its secret is shown once, when it is created."),
    ("users.owner", "Owner"),
    ("users.the_account", "{} (the account)"),
    ("users.create_access_key", "Create AccessKey"),
    ("users.access_key_id", "AccessKey ID"),
    ("users.delete_access_key_title", "Delete AccessKey?"),
    ("users.delete_access_key_before", "Management calls signed with "),
    ("users.delete_access_key_after", " are refused from now on."),
    ("users.access_key_created", "AccessKey created for {}"),
    ("users.copy_secret_now", "Copy the secret now. "),
    ("users.secret_once", "It is shown only this once: after you close this dialog it cannot be shown again."),
    ("users.secret", "AccessKey secret"),
    ("users.copy_secret", "Copy secret"),
    // the password page
    ("password.heading", "Change your password"),
    ("password.hint", "Your other sessions (other browsers, and the command line elsewhere) are signed out; this one stays signed in."),
    ("password.current", "Current password"),
    ("password.new", "New password"),
    ("password.new_hint", "8 to 256 characters."),
    ("password.repeat", "New password again"),
    ("password.submit", "Change password"),
    ("password.enter_current", "Enter your current password."),
    ("password.differ", "The two new passwords differ."),
    // workspaces, more
    ("workspaces.name_error", "Enter 1 to 64 printable characters."),
    ("workspaces.models_of", "Models of {}"),
    ("workspaces.models_legend", "Models this workspace's keys may call"),
    ("workspaces.remove_label", "Remove {} from {}"),
];

/// Simplified Chinese.
pub const CHINESE: &[(&str, &str)] = &[
    ("layout.title_suffix", "keygate 控制台"),
    ("layout.skip", "跳到正文"),
    ("layout.sections", "控制台栏目"),
    ("layout.region", "地域"),
    ("layout.switch", "切换"),
    ("layout.log_out", "退出登录"),
    ("layout.account", "主账号"),
    ("layout.language", "语言"),
    ("layout.back_to_console", "返回控制台"),
    ("layout.back_to", "返回{}"),
    ("section.keys", "API Key"),
    ("section.usage", "用量"),
    ("section.users", "用户"),
    ("section.workspaces", "业务空间"),
    ("section.audit", "审计日志"),
    ("section.password", "密码"),
    ("error.not_allowed", "无权操作"),
    ("error.not_found", "未找到"),
    ("error.went_wrong", "出错了"),
    ("error.not_done", "未完成"),
    ("error.form_refused", "表单被拒绝"),
    ("error.form_refused_text", "该表单不是由您的控制台会话提交的（安全令牌缺失或错误），因此没有做任何更改。请返回、刷新页面后重试。"),
    ("error.bad_request", "请求有误"),
    ("error.internal", "发生内部错误；详情见服务器日志。"),
    ("login.title", "登录"),
    ("login.heading", "登录 keygate"),
    ("login.hint", "以主账号登录；或同时填写 RAM 用户名，以该 RAM 用户登录。"),
    ("login.account", "账号名"),
    ("login.user", "RAM 用户名"),
    ("login.user_optional", "（留空则以主账号登录）"),
    ("login.password", "密码"),
    ("login.submit", "登录"),
    ("login.signed_out", "您已退出登录。"),
    ("login.expired", "登录表单已过期（或浏览器禁用了 Cookie）。请重新输入密码。"),
    ("login.missing", "请输入账号名和密码。"),
    ("login.wrong", "账号名或密码错误。"),
    ("keys.heading", "API Key"),
    ("keys.account_sees", "主账号可以看到本账号的全部 API Key。"),
    ("keys.user_sees", "您只能看到自己创建的 API Key。"),
    ("keys.limit_in_use", "本账号在{2}已使用 {0} 个 API Key，上限 {1} 个。"),
    ("keys.limit_account", "每个账号在{1}最多可持有 {0} 个 API Key。"),
    ("keys.limit_creator", "每个持有者（主账号和每个 RAM 用户）在{1}最多可持有 {0} 个 API Key。"),
    ("keys.create", "创建 API Key"),
    ("keys.cannot_create", "您不能创建 API Key：{}。"),
    ("keys.no_disable", "{}的 API Key 不能禁用或重置；如需吊销，请删除该 Key。"),
    ("keys.none_yet", "{}还没有 API Key。"),
    ("keys.none_on_page", "本页没有 API Key。"),
    ("keys.none_match", "没有与“{}”匹配的 API Key。"),
    ("keys.table_caption", "{}的 API Key"),
    ("keys.search", "搜索"),
    ("keys.search_label", "搜索 API Key"),
    ("keys.search_hint", "描述中的部分文字，或 Key ID 的开头。"),
    ("keys.per_page", "每页"),
    ("keys.clear", "清除"),
    ("keys.pages", "API Key 列表分页"),
    ("keys.range", "第 {}\u{2013}{} 个，共 {} 个"),
    ("keys.range_none", "共 {} 个，本页为空"),
    ("keys.previous", "上一页"),
    ("keys.next", "下一页"),
    ("keys.ok", "确定"),
    ("keys.cancel", "取消"),
    ("keys.attention_one", "下方有 1 个 API Key 需要注意："),
    ("keys.attention_many", "下方有 {} 个 API Key 需要注意："),
    ("keys.attention_text", "预算已用 {}% 以上或已用完，或 7 天内到期或已过期。已在其状态中标出；详情见其页面。"),
    ("column.key", "API Key"),
    ("column.workspace", "业务空间"),
    ("column.permission", "权限"),
    ("column.description", "描述"),
    ("column.creator", "创建者"),
    ("column.created", "创建时间"),
    ("column.last_used", "最近使用"),
    ("column.status", "状态"),
    ("column.actions", "操作"),
    ("row.copy", "复制"),
    ("row.copy_masked", "复制脱敏的 Key"),
    ("row.copy_masked_label", "复制脱敏的 Key {}"),
    ("row.legacy", "旧格式"),
    ("row.legacy_title", "从旧部署导入：请创建新的 Key 替换它。"),
    ("row.never", "从未"),
    ("row.request", "{} 次请求"),
    ("row.requests", "{} 次请求"),
    ("row.usage", "用量"),
    ("row.usage_label", "{} 的用量和详情"),
    ("row.edit", "编辑"),
    ("row.enable", "启用"),
    ("row.disable", "禁用"),
    ("row.reset", "重置"),
    ("row.end_grace", "结束宽限期"),
    ("row.delete", "删除"),
    ("edit.title", "编辑 API Key {}"),
    ("edit.workspace", "业务空间："),
    ("edit.save", "保存"),
    ("confirm.enable_title", "启用 API Key？"),
    ("confirm.enable_text", "使用 {} 的调用将重新被接受。"),
    ("confirm.disable_title", "禁用 API Key？"),
    ("confirm.disable_text", "在您重新启用之前，使用 {} 的调用都会被拒绝。"),
    ("confirm.reset_title", "重置 API Key？"),
    ("confirm.reset_text", "{} 当前的密钥将立即失效，或在下方的宽限期结束后失效。新的 Key 只在下一个对话框中显示一次。"),
    ("confirm.end_grace_title", "结束宽限期？"),
    ("confirm.end_grace_text", "{} 的旧密钥立即失效；当前密钥继续有效。"),
    ("confirm.delete_title", "删除 API Key？"),
    ("confirm.delete_text", "Key {} 将被永久删除：使用它的调用会立即被拒绝，且无法恢复。"),
    ("grace.label", "宽限期（秒）"),
    ("grace.optional", "（可选）"),
    ("grace.hint", "旧密钥与新密钥同时有效的时长，最多 {} 秒（一天）。0：立即失效。"),
    ("status.disabled", "已禁用"),
    ("status.expired", "已过期"),
    ("status.enabled", "已启用"),
    ("status.expired_at", "过期于 "),
    ("status.expires_at", "到期于 "),
    ("status.grace", "旧密钥有效至 "),
    ("perm.ips", "IP："),
    ("perm.any_address", "任意地址"),
    ("perm.models", "模型："),
    ("perm.apps", "应用："),
    ("perm.all", "全部"),
    ("perm.none", "无"),
    ("form.default", "默认"),
    ("form.no_apps", "暂无应用；管理员可在业务空间页面添加。"),
    ("form.workspace", "业务空间"),
    ("form.workspace_hint", "建议使用默认业务空间。Key 能调用其业务空间可调用的内容。"),
    ("form.permission", "权限"),
    ("form.all_hint", " \u{2014} 业务空间的全部模型和应用，不限来源地址"),
    ("form.custom_hint", " \u{2014} IP 白名单，以及此 Key 可调用的模型和应用"),
    ("form.ips", "IP 白名单"),
    ("form.ips_hint", "每行一个 IPv4 或 IPv6 地址或 CIDR 网段（如 10.0.0.0/8），最多 20 个。留空：任意地址。"),
    ("form.models", "模型"),
    ("form.models_all", "业务空间可调用的全部模型"),
    ("form.models_selected", "仅下方选中的模型（未选中：不能调用任何模型）"),
    ("form.apps", "应用"),
    ("form.apps_all", "业务空间的全部应用"),
    ("form.apps_selected", "仅下方选中的应用（未选中：不能调用任何应用）"),
    ("form.only_all", "权限：All。{}不提供自定义权限（IP 白名单、模型和应用范围）。"),
    ("form.description", "描述"),
    ("form.description_hint", "Key 的用途，最多 200 个字符。"),
    ("form.expires", "到期时间"),
    ("form.expires_hint", "Key 停止工作的日期和时间，带时区偏移（2027-01-31T00:00:00Z）。留空：永不过期。"),
    ("once.created", "API Key 已创建"),
    ("once.reset", "API Key 已重置"),
    ("once.copy_now", "请立即复制或下载该 Key。"),
    ("once.warning", "完整的 Key 仅显示这一次：关闭此对话框后将无法再次查看。如果遗失，请重置该 Key 或新建一个。请妥善保管；任何持有它的人都能以您的名义调用模型。"),
    ("once.key", "API Key"),
    ("once.copy", "复制"),
    ("once.download", "下载"),
    ("once.close", "关闭"),
    ("call.heading", "调用方式"),
    ("call.hint", "先在环境变量中设置 Key：{} 。各 SDK 使用其协议的 Base URL："),
    ("call.native", "DashScope 原生"),
    ("call.openai", "OpenAI 兼容"),
    ("call.anthropic", "Anthropic 兼容"),
    ("call.copy", "复制"),
    ("call.copy_label", "复制{}"),
    ("call.python", "Python"),
    ("call.none_granted", "业务空间 {} 尚未授权任何模型。"),
    ("call.none_granted_text", "在为该业务空间授权模型之前，使用此 Key 的调用都会被拒绝（Model access denied）"),
    ("call.not_granted", "业务空间 {} 未授权：{}。"),
    ("call.not_granted_text", "在为该业务空间授权这些模型之前，使用此 Key 调用它们会被拒绝（Model access denied）"),
    ("call.on_the", "，请在"),
    ("call.workspaces_page", "业务空间页面"),
    ("call.ask", "：请联系主账号或管理员。"),
    ("workspaces.heading", "业务空间"),
    ("workspaces.in_use", "本地域已使用 {} 个业务空间，上限 {} 个。默认业务空间可调用所有模型；子业务空间只能调用已授权的模型。"),
    ("workspaces.create_heading", "创建业务空间"),
    ("workspaces.name", "名称"),
    ("workspaces.create", "创建业务空间"),
    ("workspaces.default", "默认"),
    ("workspaces.created", "创建于"),
    ("workspaces.models", "模型"),
    ("workspaces.every_model", "目录中的全部模型。"),
    ("workspaces.grants_hint", "其 API Key 只能调用这些模型；调用其他模型会被拒绝（Model access denied），直到在此授权。"),
    ("workspaces.none_yet", "暂无。"),
    ("workspaces.revoke", "撤销授权"),
    ("workspaces.revoke_label", "撤销 {} 在 {} 的授权"),
    ("workspaces.grant_model", "授权模型"),
    ("workspaces.grant", "授权"),
    ("workspaces.change_models", "修改模型"),
    ("workspaces.members", "成员"),
    ("workspaces.every_user", "本账号的全部用户。"),
    ("workspaces.no_members", "暂无成员。"),
    ("workspaces.remove", "移除"),
    ("workspaces.add_member", "添加成员"),
    ("workspaces.add", "添加"),
    ("workspaces.applications", "应用"),
    ("workspaces.new_application", "新应用"),
    ("done.keys.edited", "API Key 已保存。"),
    ("done.keys.disabled", "API Key 已禁用：在重新启用之前，使用它的调用都会被拒绝。"),
    ("done.keys.enabled", "API Key 已启用。"),
    ("done.keys.deleted", "API Key 已删除。"),
    ("done.keys.grace_ended", "宽限期已结束：旧密钥不再有效。"),
    ("done.users.created", "用户已创建。"),
    ("done.users.disabled", "用户已禁用：它不能登录，其 API Key 在重新启用之前都会失效。"),
    ("done.users.enabled", "用户已启用。"),
    ("done.users.deleted", "用户已删除，连同其 API Key 和 AccessKey。"),
    ("done.users.access_key_deleted", "AccessKey 已删除。"),
    ("done.workspaces.created", "业务空间已创建。"),
    ("done.workspaces.models", "业务空间的模型已保存。"),
    ("done.workspaces.model_granted", "模型已授权：该业务空间的 API Key 可以调用它。"),
    ("done.workspaces.model_revoked", "模型授权已撤销：该业务空间的 API Key 调用它会被拒绝。"),
    ("done.workspaces.member_added", "用户已加入业务空间。"),
    ("done.workspaces.member_removed", "用户已移出业务空间：它在此的 API Key 不再有效。"),
    ("done.workspaces.application", "应用已添加。"),
    ("done.password.changed", "密码已修改。您的其他会话已退出登录，当前会话保持登录。"),
    ("audit.heading", "审计日志"),
    ("audit.intro", "本账号对 API Key、用户、业务空间和会话的每一次更改，最新的在前。"),
    ("audit.filter_label", "筛选审计日志"),
    ("audit.actor", "操作者"),
    ("audit.action", "操作"),
    ("audit.action_hint", "部分文字即可，如 ApiKey. 或 Delete"),
    ("audit.key", "API Key ID"),
    ("audit.from", "起始日期（UTC）"),
    ("audit.to", "截止日期（UTC，含当天）"),
    ("audit.filter", "筛选"),
    ("audit.clear", "清除"),
    ("audit.bad_key", "API Key ID 是正整数。"),
    ("audit.bad_day", "请按 YYYY-MM-DD 输入日期。"),
    ("audit.none_match", "没有符合筛选条件的记录。"),
    ("audit.nothing", "暂无记录。"),
    ("audit.when", "时间"),
    ("audit.who", "操作者"),
    ("audit.target", "对象"),
    ("audit.detail", "详情"),
    ("audit.client", "来源"),
    ("audit.credential", "凭证"),
    ("audit.region", "地域"),
    ("audit.older", "更早的记录"),
    ("audit.newest", "最新的记录"),
    ("layout.brand_sub", " 控制台"),
    ("layout.change_password", "修改密码"),
    ("error.method_not_allowed", "不支持该请求方法"),
    ("error.too_large", "请求过大"),
    ("error.timeout", "请求超时"),
    ("error.target_too_long", "请求地址过长"),
    ("error.request_id", "请求 ID："),
    ("error.unknown_region", "此服务器不提供该地域；请在地域选择器中选择一个地域。"),
    ("error.form_type", "控制台表单以 application/x-www-form-urlencoded 格式提交。"),
    ("error.form_utf8", "表单不是有效的 UTF-8。"),
    ("script.copied", "已复制到剪贴板。"),
    ("script.copy_failed", "复制失败：请选中文本后按 Ctrl+C（Mac 上按 Cmd+C）。"),
    ("script.downloaded", "已下载 {}。"),
    ("usage.range_day", "最近 24 小时"),
    ("usage.range_week", "最近 7 天"),
    ("usage.range_month", "最近 30 天"),
    ("usage.time_range", "时间范围"),
    ("usage.hour_utc", "小时（UTC）"),
    ("usage.day_utc", "日期（UTC）"),
    ("usage.input", "输入"),
    ("usage.output", "输出"),
    ("usage.requests", "请求数"),
    ("usage.tokens_over_time", "Token 用量趋势"),
    ("usage.requests_over_time", "请求数趋势"),
    ("usage.unit_tokens", "Token"),
    ("usage.unit_requests", "次"),
    ("usage.input_tokens", "输入 Token"),
    ("usage.output_tokens", "输出 Token"),
    ("usage.cost", "费用"),
    ("usage.unpriced_models", "费用未包含没有价格的模型的用量"),
    ("usage.unpriced_named", "费用未包含 {} 的用量，因其没有价格"),
    ("usage.prices_before", "（见服务器设置中的 "),
    ("usage.prices_after", "）。"),
    ("usage.deleted_key", "API Key {}（已删除）"),
    ("usage.other_keys", "其他 API Key"),
    ("usage.other_models", "其他模型"),
    ("usage.whose_account", "本账号全部 API Key 在所有地域的用量。"),
    ("usage.whose_user", "您创建的 API Key 在所有地域的用量。"),
    ("usage.delay", "调用结束几秒后即显示在这里。"),
    ("usage.none", "{}没有用量。使用您的 API Key 调用模型后，几秒内即显示在这里。"),
    ("usage.totals", "合计"),
    ("usage.top_keys", "用量最多的 API Key"),
    ("usage.top_models", "用量最多的模型"),
    ("usage.model", "模型"),
    ("chart.numbers", "数据明细"),
    ("chart.over_time", "{}，{} 至 {}。合计：{}。每个数值都列在下方表格中。"),
    ("chart.nothing", "{}：暂无数据。"),
    ("chart.caption", "{}（单位：{}）"),
    ("chart.bars", "{}（单位：{}）：{}。"),
    ("chart.none", "无"),
    ("chart.separator", "，"),
    ("chart.bar_separator", "；"),
    ("key_page.heading", "API Key "),
    ("key_page.details", "详情"),
    ("key_page.id", "ID"),
    ("key_page.never_expires", "永不过期"),
    ("key_page.all_recorded", "全部已记录的用量"),
    ("key_page.no_usage", "{}没有用量。"),
    ("key_page.limits_saved", "限制已保存。"),
    ("key_page.limits_removed", "限制已全部移除：该 Key 不再有任何限制。"),
    ("limits.heading", "限制"),
    ("limits.requests_per_minute", "每分钟请求数"),
    ("limits.requests_per_minute_hint", "每分钟的模型调用次数（按自然分钟的固定窗口计算）。"),
    ("limits.tokens_per_minute", "每分钟 Token 数"),
    ("limits.tokens_per_minute_hint", "每分钟输入与输出 Token 之和。"),
    ("limits.in_flight", "并发调用数"),
    ("limits.in_flight_hint", "同时进行中的模型调用数。"),
    ("limits.field_hint", "{}留空：不限制。"),
    ("limits.optional", "（可选）"),
    ("limits.budget", "预算"),
    ("limits.none", "无"),
    ("limits.budget_tokens", "{} Token"),
    ("limits.and", " 和 "),
    ("limits.per_day", "每日（UTC）{}"),
    ("limits.per_month", "每月（UTC）{}"),
    ("limits.this_day", "本日预算"),
    ("limits.this_month", "本月预算"),
    ("limits.tokens_used", "已用 Token"),
    ("limits.tokens_left", "剩余 Token"),
    ("limits.cost_used", "已用费用"),
    ("limits.cost_left", "剩余费用"),
    ("limits.of", "/ {}"),
    ("limits.renews_before", "预算将于 "),
    ("limits.renews_after", " 重置。用量在节点写入后（数秒内）计入此处。"),
    ("limits.may_not", "您无权修改此 Key 的限制。"),
    ("limits.change", "修改限制"),
    ("limits.nothing_changed", "未做任何更改："),
    ("limits.period", "周期"),
    ("limits.no_budget", "不设预算"),
    ("limits.option_day", "每日（UTC）"),
    ("limits.option_month", "每月（UTC）"),
    ("limits.period_hint", "预算在每个 UTC 日或月开始时重置。"),
    ("limits.tokens", "Token 数"),
    ("limits.tokens_hint", "每个周期内输入与输出 Token 之和。"),
    ("limits.cost", "费用（{}）"),
    ("limits.cost_hint", "按价格表计算，如 12.50；最多 6 位小数。"),
    ("limits.budget_hint", "预算需要一个周期，以及 Token 数、费用或两者；任一项用完后，调用即被拒绝。"),
    ("limits.save", "保存限制"),
    ("limits.remove_all", "移除全部限制"),
    ("warning.used_up_day", "每日预算已用完："),
    ("warning.used_up_month", "每月预算已用完："),
    ("warning.used_up_day_text", "在本日（UTC）结束前，使用此 Key 的调用都会被拒绝。本日结束于 "),
    ("warning.used_up_month_text", "在本月（UTC）结束前，使用此 Key 的调用都会被拒绝。本月结束于 "),
    ("warning.nearly_day", "每日预算已用 {}% 以上："),
    ("warning.nearly_month", "每月预算已用 {}% 以上："),
    ("warning.nearly_day_text", "预算用完后，使用此 Key 的调用将被拒绝，直到本日结束。本日结束于 "),
    ("warning.nearly_month_text", "预算用完后，使用此 Key 的调用将被拒绝，直到本月结束。本月结束于 "),
    ("warning.budget_end", "。"),
    ("warning.expired", "此 Key 已过期："),
    ("warning.expired_before", "自 "),
    ("warning.expired_after", " 起，使用它的调用都会被拒绝。如需继续使用，请编辑它，设置更晚的到期时间或不设到期时间。"),
    ("warning.expires_soon", "此 Key 将在 7 天内到期："),
    ("warning.expires_soon_before", "自 "),
    ("warning.expires_soon_after", " 起，使用它的调用将被拒绝。"),
    ("warning.badge_used_up", "预算已用完"),
    ("warning.badge_nearly", "预算已用 {}%+"),
    ("warning.badge_expires_soon", "即将到期"),
    ("users.intro", "主账号 {} 的 RAM 用户，以及为管理 API 调用签名的 AccessKey。"),
    ("users.create_heading", "创建 RAM 用户"),
    ("users.name", "用户名"),
    ("users.name_hint", "字母、数字、“.”、“_”或“-”。"),
    ("users.name_taken", "名为“{}”的用户已存在。"),
    ("users.role", "角色"),
    ("users.role_admin", "admin \u{2014} 管理用户、业务空间和自己的 API Key"),
    ("users.role_key_manager", "key-manager \u{2014} 创建和管理自己的 API Key"),
    ("users.role_member", "member \u{2014} 不能创建 API Key"),
    ("users.role_hint", "每个用户只能看到自己创建的 API Key。"),
    ("users.role_error", "请选择 admin、key-manager 或 member。"),
    ("users.password", "密码"),
    ("users.password_hint", "8 到 256 个字符。密码不会再次显示，因此表单退回时不会保留。"),
    ("users.create", "创建用户"),
    ("users.ram_users", "RAM 用户"),
    ("users.none", "暂无 RAM 用户。"),
    ("users.sub_workspaces", "子业务空间"),
    ("users.default_only", "仅默认业务空间"),
    ("users.active", "正常"),
    ("users.disabled", "已禁用"),
    ("users.disable_title", "禁用用户？"),
    ("users.disable_text", "{} 将无法登录，其 API Key 在重新启用之前都会失效。"),
    ("users.enable_title", "启用用户？"),
    ("users.enable_text", "{} 将可以重新登录，其 API Key 也恢复有效。"),
    ("users.delete_title", "删除用户？"),
    ("users.delete_text", "{} 将被永久删除，连同其 API Key 和 AccessKey。"),
    ("users.owner_account", "{}（主账号）"),
    ("users.owner_user", "用户 {}"),
    ("users.access_keys", "AccessKey"),
    ("users.access_keys_intro", "AccessKey 用于为管理 API 调用签名（ACS3-HMAC-SHA256）。其 Secret 仅在创建时显示一次。"),
    ("users.owner", "所有者"),
    ("users.the_account", "{}（主账号）"),
    ("users.create_access_key", "创建 AccessKey"),
    ("users.access_key_id", "AccessKey ID"),
    ("users.delete_access_key_title", "删除 AccessKey？"),
    ("users.delete_access_key_before", "使用 "),
    ("users.delete_access_key_after", " 签名的管理 API 调用将从现在起被拒绝。"),
    ("users.access_key_created", "已为 {} 创建 AccessKey"),
    ("users.copy_secret_now", "请立即复制 Secret。"),
    ("users.secret_once", "它仅显示这一次：关闭此对话框后将无法再次查看。"),
    ("users.secret", "AccessKey Secret"),
    ("users.copy_secret", "复制 Secret"),
    ("password.heading", "修改密码"),
    ("password.hint", "您的其他会话（其他浏览器，以及其他地方的命令行）将退出登录；当前会话保持登录。"),
    ("password.current", "当前密码"),
    ("password.new", "新密码"),
    ("password.new_hint", "8 到 256 个字符。"),
    ("password.repeat", "再次输入新密码"),
    ("password.submit", "修改密码"),
    ("password.enter_current", "请输入当前密码。"),
    ("password.differ", "两次输入的新密码不一致。"),
    ("workspaces.name_error", "请输入 1 到 64 个可打印字符。"),
    ("workspaces.models_of", "{} 的模型"),
    ("workspaces.models_legend", "该业务空间的 API Key 可调用的模型"),
    ("workspaces.remove_label", "将 {} 移出 {}"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(table: &[(&'static str, &str)]) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = table.iter().map(|(key, _)| *key).collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn every_message_key_has_both_languages() {
        let (english, chinese) = (keys(ENGLISH), keys(CHINESE));
        let mut unique = english.clone();
        unique.dedup();
        assert_eq!(unique, english, "a key appears twice in the English table");
        let only_english: Vec<_> = english.iter().filter(|key| !chinese.contains(key)).collect();
        let only_chinese: Vec<_> = chinese.iter().filter(|key| !english.contains(key)).collect();
        assert!(only_english.is_empty() && only_chinese.is_empty(), "English only: {only_english:?}; Chinese only: {only_chinese:?}");
        for (key, text) in ENGLISH.iter().chain(CHINESE) {
            assert!(!text.trim().is_empty(), "{key} is empty");
        }
        // The same number of values in both languages.
        for (key, english_text) in ENGLISH {
            let chinese_text = Language::Chinese.text(key);
            assert_eq!(english_text.matches("{}").count() + english_text.matches("{0}").count(), placeholders(chinese_text), "{key}");
        }
    }

    fn placeholders(text: &str) -> usize {
        text.matches("{}").count() + (0..4).filter(|index| text.contains(&format!("{{{index}}}"))).count()
    }

    /// Every message key the console's code names is in the tables: every string literal
    /// shaped like a key (`keys.heading`) whose first part is one of the tables' is checked,
    /// so that keys kept in constants (columns, notices) are checked too.
    #[test]
    fn every_key_the_console_names_is_in_the_tables() {
        let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console");
        let english = keys(ENGLISH);
        let prefixes: Vec<&str> = english.iter().filter_map(|key| key.split('.').next()).collect();
        let is_key_shaped =
            |text: &str| text.contains('.') && text.bytes().all(|byte| byte.is_ascii_lowercase() || byte == b'.' || byte == b'_');
        let (mut missing, mut named) = (Vec::new(), 0);
        for entry in std::fs::read_dir(directory).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|extension| extension != "rs") || path.ends_with("i18n.rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for (index, literal) in source.split('"').enumerate() {
                if index % 2 == 1 && is_key_shaped(literal) && prefixes.contains(&literal.split('.').next().unwrap_or("")) {
                    named += 1;
                    if !english.contains(&literal) {
                        missing.push(format!("{}: {literal}", path.display()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "keys missing from the tables: {missing:?}");
        assert!(named > 100, "the scan found only {named} keys");
    }

    #[test]
    fn the_browser_language_is_read_by_weight_and_order() {
        assert_eq!(Language::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"), Some(Language::Chinese));
        assert_eq!(Language::from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8"), Some(Language::English));
        assert_eq!(Language::from_accept_language("fr-FR, zh-TW;q=0.5"), Some(Language::Chinese));
        assert_eq!(Language::from_accept_language("en;q=0.2, zh;q=0.7"), Some(Language::Chinese));
        assert_eq!(Language::from_accept_language("fr, de"), None);
        assert_eq!(Language::from_accept_language("zh;q=0, en"), Some(Language::English));
    }

    #[test]
    fn values_fill_their_places() {
        assert_eq!(Language::English.fill("keys.range", &[&1, &20, &45]), "Keys 1\u{2013}20 of 45");
        assert_eq!(Language::Chinese.fill("keys.range", &[&1, &20, &45]), "第 1\u{2013}20 个，共 45 个");
    }
}
