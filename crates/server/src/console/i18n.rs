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
    ("done.password.changed", "密码已修改。你的其他会话已退出登录，当前会话保持登录。"),
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
