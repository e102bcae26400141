//! The route table the OpenAPI document is generated from: for every route of the
//! management API, one line: its method, path (OpenAPI's `{camelCase}` parameters),
//! operation id, tag and summary, then whether it needs no credentials, its shared query
//! parameters (names in the frame's `components.parameters`), what it takes (a JSON body,
//! or query or form fields, as a `keygate_wire` type), what it answers (a `keygate_wire`
//! type in the camelCase envelope, or the PascalCase envelope of the Token Plan
//! operations), the refusals it may answer (names in the frame's `components.responses`)
//! and its description. A test checks it against the routes the server registers, both
//! ways.

use keygate_wire::envelope::{Empty, PlanSuccess};
use keygate_wire::keygate_api::*;
use keygate_wire::model_studio::*;
use keygate_wire::token_plan::*;
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// Makes the schema of a body type (a `$ref` into `components.schemas`).
pub type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

pub fn schema_of<Body: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<Body>()
}

/// What a route takes besides its path.
#[derive(Clone, Copy)]
pub enum RequestBody {
    None,
    /// A JSON body of this type (keygate's API).
    Json(SchemaOf),
    /// Query fields, each a property of this type (the Model Studio API, the Token Plan
    /// operations).
    Query(SchemaOf),
    /// Form fields, each a property of this type.
    Form(SchemaOf),
}

/// What a route answers on success.
#[derive(Clone, Copy)]
pub enum ResponseBody {
    /// The OpenAPI document itself, not in an envelope.
    Document,
    /// The camelCase success envelope with the fields of this type.
    Typed(SchemaOf),
    /// This type: a Token Plan success, its fields under `Data` of the PascalCase envelope.
    Plan(SchemaOf),
}

/// One operation of the document.
pub struct RouteDoc {
    /// Lower case, as OpenAPI names it.
    pub method: &'static str,
    pub path: &'static str,
    pub operation_id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Left out of the document when empty.
    pub description: &'static str,
    /// Needs no credentials (`security: []`).
    pub public: bool,
    pub query: &'static [&'static str],
    pub request: RequestBody,
    pub response: ResponseBody,
    pub refusals: &'static [u16],
    /// Also answers `text/csv` (the CSV form of its typed answer) when asked.
    pub csv: bool,
}

/// A route that needs credentials, takes nothing but its path, answers the document and
/// refuses nothing, until the calls after it say otherwise.
const fn route(method: &'static str, path: &'static str, operation_id: &'static str, tag: &'static str, summary: &'static str) -> RouteDoc {
    RouteDoc {
        method,
        path,
        operation_id,
        tag,
        summary,
        description: "",
        public: false,
        query: &[],
        request: RequestBody::None,
        response: ResponseBody::Document,
        refusals: &[],
        csv: false,
    }
}

impl RouteDoc {
    const fn public(self) -> RouteDoc {
        RouteDoc { public: true, ..self }
    }

    const fn query(self, query: &'static [&'static str]) -> RouteDoc {
        RouteDoc { query, ..self }
    }

    const fn takes_json(self, request: SchemaOf) -> RouteDoc {
        RouteDoc { request: RequestBody::Json(request), ..self }
    }

    const fn takes_query(self, request: SchemaOf) -> RouteDoc {
        RouteDoc { request: RequestBody::Query(request), ..self }
    }

    const fn takes_form(self, request: SchemaOf) -> RouteDoc {
        RouteDoc { request: RequestBody::Form(request), ..self }
    }

    const fn answers(self, response: SchemaOf) -> RouteDoc {
        RouteDoc { response: ResponseBody::Typed(response), ..self }
    }

    const fn answers_plan(self, response: SchemaOf) -> RouteDoc {
        RouteDoc { response: ResponseBody::Plan(response), ..self }
    }

    const fn refuses(self, refusals: &'static [u16]) -> RouteDoc {
        RouteDoc { refusals, ..self }
    }

    const fn or_csv(self) -> RouteDoc {
        RouteDoc { csv: true, ..self }
    }

    const fn about(self, description: &'static str) -> RouteDoc {
        RouteDoc { description, ..self }
    }
}

/// Every route of the management API, one a line (a table: rustfmt would spread each over
/// a dozen lines).
#[rustfmt::skip]
pub const ROUTES: &[RouteDoc] = &[
    route("post", "/keygate/v1/sessions", "Login", "Sessions", "Log in").public().takes_json(schema_of::<LoginRequest>).answers(schema_of::<LoginResponse>).refuses(&[400, 401, 429, 500]).about("Exchanges a name and password for a session token, sent afterwards as `x-acs-bearer-token`. Omit `user` to log in as the account itself. A wrong name and a wrong password get the same answer (401 `InvalidCredentials`) after the same work."),
    route("get", "/keygate/v1/openapi.json", "GetOpenApiDocument", "Meta", "This document").public().about("The OpenAPI 3 description of keygate's own API. Needs no authentication."),
    route("get", "/keygate/v1/sessions/current", "WhoAmI", "Sessions", "Who am I").answers(schema_of::<WhoAmIResponse>).refuses(&[401, 403, 500]).about("The caller behind the credentials of this request, and the request's region."),
    route("delete", "/keygate/v1/sessions/current", "Logout", "Sessions", "Log out").answers(schema_of::<LogoutResponse>).refuses(&[401, 403, 500]).about("Ends the session whose token is in `x-acs-bearer-token` (no effect for a signed request). Audited as `Session.Logout`."),
    route("put", "/keygate/v1/password", "ChangePassword", "Sessions", "Change your own password").takes_json(schema_of::<ChangePasswordRequest>).answers(schema_of::<ChangePasswordResponse>).refuses(&[400, 401, 403, 429, 500]).about("The caller (the account or a RAM user, with any credential) changes its own password; the current one is required. A wrong current password is 403 `IncorrectPassword` and counts as a failed login from the client's address (past `failed_logins_per_minute`, 429 `Throttling` before any check). The new password follows the rules of CreateUser (8 to 256 characters; 400 `InvalidParameter`). Every session of the caller ends (API session tokens and console cookies) except the one that sends the change; `sessionsEnded` says how many. Audited as `Account.ChangePassword` or `User.ChangePassword`, without the password."),
    route("get", "/keygate/v1/users", "ListUsers", "Users", "List RAM users").answers(schema_of::<ListUsersResponse>).refuses(&[401, 403, 500]).about("Every RAM user of the account that is not deleted. Only the account or an active admin RAM user may call it; others get 403 `Forbidden`."),
    route("post", "/keygate/v1/users", "CreateUser", "Users", "Create a RAM user").takes_json(schema_of::<CreateUserRequest>).answers(schema_of::<UserResponse>).refuses(&[400, 401, 403, 500, 409]).about("Creates an active RAM user. The password, when given, is stored as an argon2id hash; without one the user cannot log in until a password is set. Audited as `User.Create`. Only the account or an active admin RAM user may call it; others get 403 `Forbidden`."),
    route("get", "/keygate/v1/users/{name}", "GetUser", "Users", "Get a RAM user").answers(schema_of::<UserResponse>).refuses(&[400, 401, 403, 500, 404]).about("One RAM user. The account and admins may read any user; a RAM user may read itself (403 otherwise)."),
    route("delete", "/keygate/v1/users/{name}", "DeleteUser", "Users", "Delete a RAM user").answers(schema_of::<Deleted>).refuses(&[400, 401, 403, 500, 404]).about("Deletes the user for good: its API keys (which stop authenticating at once), AccessKeys, sessions and workspace memberships go too. Audited as `User.Delete`. Only the account or an active admin RAM user may call it; others get 403 `Forbidden`."),
    route("put", "/keygate/v1/users/{name}/role", "SetUserRole", "Users", "Change a RAM user's role").takes_json(schema_of::<SetRoleRequest>).answers(schema_of::<UserResponse>).refuses(&[400, 401, 403, 500, 404]).about("Audited as `User.SetRole`. Only the account or an active admin RAM user may call it; others get 403 `Forbidden`."),
    route("post", "/keygate/v1/users/{name}/disable", "DisableUser", "Users", "Disable a RAM user").answers(schema_of::<UserResponse>).refuses(&[400, 401, 403, 500, 404]).about("The user can no longer log in or call the management plane, and its API keys stop working until it is enabled again. Audited as `User.Disable`. Only the account or an active admin RAM user may call it; others get 403 `Forbidden`."),
    route("post", "/keygate/v1/users/{name}/enable", "EnableUser", "Users", "Enable a RAM user").answers(schema_of::<UserResponse>).refuses(&[400, 401, 403, 500, 404]).about("Audited as `User.Enable`. Only the account or an active admin RAM user may call it; others get 403 `Forbidden`."),
    route("put", "/keygate/v1/users/{name}/password", "SetUserPassword", "Users", "Set a RAM user's password").takes_json(schema_of::<SetPasswordRequest>).answers(schema_of::<UserResponse>).refuses(&[400, 401, 403, 500, 404]).about("The account and admins set another user's password; every session of that user ends. Nobody sets its own this way (403 `Forbidden`): a caller changes its own with ChangePassword, which asks for the current one. Audited as `User.SetPassword`, without the password."),
    route("get", "/keygate/v1/workspaces/{workspaceId}/members", "ListWorkspaceMembers", "Workspaces", "List workspace members").answers(schema_of::<ListMembersResponse>).refuses(&[401, 403, 500, 404]).about("RAM users who are members of the workspace: every user for the default workspace. Only the account or an active admin RAM user may call it; others get 403 `Forbidden`."),
    route("post", "/keygate/v1/workspaces/{workspaceId}/members", "AddWorkspaceMember", "Workspaces", "Add a workspace member").takes_json(schema_of::<AddMemberRequest>).answers(schema_of::<MemberAdded>).refuses(&[400, 401, 403, 500, 404]).about("Adds a RAM user to a sub-workspace (adding a member twice is not an error). The default workspace's membership cannot change (400 `OperationDenied`). Audited as `Workspace.AddMember`. Only the account or an active admin RAM user may call it; others get 403 `Forbidden`."),
    route("delete", "/keygate/v1/workspaces/{workspaceId}/members/{name}", "RemoveWorkspaceMember", "Workspaces", "Remove a workspace member").answers(schema_of::<MemberRemoved>).refuses(&[400, 401, 403, 500, 404]).about("Removes a RAM user from a sub-workspace; its API keys in that workspace stop working. The default workspace's membership cannot change (400 `OperationDenied`). Audited as `Workspace.RemoveMember`. Only the account or an active admin RAM user may call it; others get 403 `Forbidden`."),
    route("get", "/keygate/v1/workspaces/{workspaceId}/applications", "ListApplications", "Workspaces", "List applications").answers(schema_of::<ListApplicationsResponse>).refuses(&[401, 403, 500, 404]).about("Applications of the workspace, callable through `/api/v1/apps/{appId}/completion`. The account, admins and members of the workspace may list them (403 otherwise)."),
    route("post", "/keygate/v1/workspaces/{workspaceId}/applications", "CreateApplication", "Workspaces", "Create an application").takes_json(schema_of::<CreateApplicationRequest>).answers(schema_of::<ApplicationResponse>).refuses(&[400, 401, 403, 500, 404, 409]).about("Registers an application with a new app id in the workspace. Audited as `Application.Create`. Only the account or an active admin RAM user may call it; others get 403 `Forbidden`."),
    route("get", "/keygate/v1/access-keys", "ListAccessKeys", "AccessKeys", "List AccessKeys").query(&["AccessKeyUser"]).answers(schema_of::<ListAccessKeysResponse>).refuses(&[400, 401, 403, 500, 404]).about("The AccessKeys the caller may manage: the account sees all of the account's; an admin those of every RAM user; any other RAM user only its own. `user` narrows the list to one RAM user. The secret is never shown."),
    route("post", "/keygate/v1/access-keys", "CreateAccessKey", "AccessKeys", "Create an AccessKey").takes_json(schema_of::<CreateAccessKeyRequest>).answers(schema_of::<CreatedAccessKey>).refuses(&[400, 401, 403, 500, 404]).about("Creates an active AccessKey for the caller itself or, with `user`, for a RAM user (the account and admins only). The secret is in this response only; it is stored encrypted and cannot be shown again. Audited as `AccessKey.Create`, without the secret."),
    route("delete", "/keygate/v1/access-keys/{accessKeyId}", "DeleteAccessKey", "AccessKeys", "Delete an AccessKey").answers(schema_of::<Deleted>).refuses(&[401, 403, 500, 404]).about("Deletes it for good; requests signed with it fail at once. Audited as `AccessKey.Delete`."),
    route("post", "/keygate/v1/access-keys/{accessKeyId}/disable", "DisableAccessKey", "AccessKeys", "Disable an AccessKey").answers(schema_of::<AccessKeyResponse>).refuses(&[401, 403, 500, 404]).about("Requests signed with it are refused (`InvalidAccessKeyId.Inactive`) until it is enabled. Audited as `AccessKey.Disable`."),
    route("post", "/keygate/v1/access-keys/{accessKeyId}/enable", "EnableAccessKey", "AccessKeys", "Enable an AccessKey").answers(schema_of::<AccessKeyResponse>).refuses(&[401, 403, 500, 404]).about("Audited as `AccessKey.Enable`."),
    route("get", "/keygate/v1/models", "ListModels", "Catalog", "List models").answers(schema_of::<ListModelsResponse>).refuses(&[401, 403, 500]).about("The model catalog: the names API keys may be scoped to and workspaces granted."),
    route("get", "/keygate/v1/regions", "ListRegions", "Catalog", "List regions").answers(schema_of::<ListRegionsResponse>).refuses(&[401, 403, 500]).about("Every region this deployment knows, with its policy, and whether one of its listeners serves it."),
    route("get", "/keygate/v1/audit", "ListAuditEntries", "Audit", "Read the audit log").query(&["AuditLimit", "AuditBefore"]).answers(schema_of::<ListAuditResponse>).refuses(&[400, 401, 403, 500]).about("The account's audit entries, newest first. Pass `nextBefore` of one page as `before` to get the next. Entries never hold a key, secret or password. Only the account or an active admin RAM user may call it; others get 403 `Forbidden`."),
    route("get", "/keygate/v1/usage", "GetUsage", "Usage", "Read usage: calls, tokens and cost").takes_query(schema_of::<UsageRequest>).answers(schema_of::<UsageResponse>).or_csv().refuses(&[400, 401, 403, 500]).about("The caller's usage in `[from, to)`, filtered by keys, models and workspaces (`IN` and `NOT`), grouped by `groupBy` and a period (`granularity`), with the cost of each group at the `[[prices]]` of its models: the account sees the usage of all its keys, a RAM user only that of the keys it created. `format=csv` (or, without `format`, an `Accept` header that prefers `text/csv`) answers the rows as CSV, RFC 4180, with a header line; a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a `'` in front so that a spreadsheet shows it as text. The longest range is 2 days per minute, 31 days per hour, 800 days otherwise. Usage reaches the store one flush interval (`usage_flush_interval_milliseconds`) after the calls. `keygate usage` calls it."),
    route("post", "/keygate/v1/keys/{apiKeyId}/end-grace", "EndApiKeyGrace", "Keys", "End the grace period of a reset key's old secret").answers(schema_of::<EndGraceResponse>).refuses(&[400, 401, 403, 404, 500]).about("After ResetApiKey with `keygateGraceSeconds`, the old secret works beside the new one until the grace period ends; this ends it now, on every node, audited as `ApiKey.EndGrace`. Whoever may reset the key may call it; a key the caller may not see is 404 `ApiKey.NotFound`, and a key without an old secret in a grace period is 400 `InvalidParameter`. `keygate keys end-grace` calls it."),
    route("post", "/keygate/v1/leaks", "ReportLeakedKeys", "Leaks", "Report leaked API keys and disable them").takes_json(schema_of::<LeakReport>).answers(schema_of::<LeakReportResponse>).refuses(&[400, 401, 403, 500]).about("Takes API keys found exposed (in a repository, a log, a chat) and disables at once every one that belongs to the caller's account and is live, in whatever region it lives, whichever RAM user created it. The answer has one result per reported key, in order, with the masked key only. A key of another account is `not_found`, like one that does not exist. At most 1000 keys per call. `keygate scan --revoke` calls it. Only the account or an active admin RAM user may call it; others get 403 `Forbidden`."),
    route("post", "/keygate/v1/keys/import", "ImportApiKeys", "Import", "Import existing sk- keys from another deployment").takes_json(schema_of::<KeyImportRequest>).answers(schema_of::<KeyImportResponse>).refuses(&[400, 401, 403, 500]).about("Brings existing `sk-` keys (classic `sk-` + 32 hex, or any `sk-` + 8-200 characters `A-Z a-z 0-9 - _`; not `sk-ws-`/`sk-sp-`) into one workspace as legacy keys with permission `All`, created by the caller, who must be allowed to create keys there (the account, or an admin or key-manager RAM user who is a member of the workspace; others get 403 `Forbidden`). Every entry is checked first; any bad entry (malformed key, bad description, a key repeated in the request or already in keygate) refuses the whole import with 400 `InvalidParameter`, naming every bad line in `badLines` (the message names the first 20). With `skipBad` the good entries are imported and the bad ones reported. The keys count against the region's key limit: an import that would pass it imports nothing (400 `QuotaExceeded.ApiKey`). Each key is audited as `ApiKey.Import`; its plaintext is stored only encrypted with the master key, so that GetApiKey can show it to whoever may see the key, and Get/List mark it with `replaceAdvised: true`. At most 10000 keys and 16 MiB per request. `keygate keys import` calls it."),
    route("post", "/modelstudio/apikeys", "CreateApiKey", "ModelStudio", "Create an API key").takes_query(schema_of::<CreateApiKeyRequest>).answers(schema_of::<ApiKeyResponse>).refuses(&[400, 401, 403, 500]).about("Query `description`, `workspaceId`, keygate's `keygateExpiresAt` (an RFC 3339 time or Unix seconds in the future; absent: the key never expires; a past or malformed time is 400 `InvalidParameter`), keygate's `keygateLimits` (the key's limits as a JSON object, see `KeyLimits`; absent: none); form `auth.*` (permissions). The answer holds the plaintext key, the one time it is shown."),
    route("get", "/modelstudio/apikeys", "ListApiKeys", "ModelStudio", "List API keys").takes_query(schema_of::<ListApiKeysRequest>).answers(schema_of::<ListApiKeysResponse>).refuses(&[400, 401, 403, 500]).about("The keys the caller may see, masked; query `workspaceId`, `description`, `maxResults`, `nextToken`."),
    route("get", "/modelstudio/apikeys/{apiKeyId}", "GetApiKey", "ModelStudio", "Get an API key").answers(schema_of::<ApiKeyResponse>).refuses(&[400, 401, 403, 404, 500]).about("One key, masked (an imported key's plaintext for those who may see it)."),
    route("put", "/modelstudio/apikeys/{apiKeyId}", "UpdateApiKey", "ModelStudio", "Change an API key").takes_query(schema_of::<UpdateApiKeyRequest>).answers(schema_of::<Empty>).refuses(&[400, 401, 403, 404, 500]).about("Query `description`, keygate's `keygateExpiresAt` (a new expiry in the future, or `never` to remove it; unchanged when absent), keygate's `keygateLimits` (a JSON object that replaces the key's limits, `{}` removes them; unchanged when absent); form `auth.*` replaces the permissions."),
    route("delete", "/modelstudio/apikeys/{apiKeyId}", "DeleteApiKey", "ModelStudio", "Delete an API key").answers(schema_of::<Empty>).refuses(&[400, 401, 403, 404, 500]),
    route("put", "/modelstudio/apikeys/{apiKeyId}/disable", "DisableApiKey", "ModelStudio", "Disable an API key").answers(schema_of::<Empty>).refuses(&[400, 401, 403, 404, 500]),
    route("put", "/modelstudio/apikeys/{apiKeyId}/enable", "EnableApiKey", "ModelStudio", "Enable an API key").answers(schema_of::<Empty>).refuses(&[400, 401, 403, 404, 500]),
    route("put", "/modelstudio/apikeys/{apiKeyId}/reset", "ResetApiKey", "ModelStudio", "Reset an API key's secret").takes_query(schema_of::<ResetApiKeyRequest>).answers(schema_of::<ApiKeyResponse>).refuses(&[400, 401, 403, 404, 500]).about("Same id and permissions; the old secret stops working at once, or, with keygate's `keygateGraceSeconds` (0 to 86400), keeps working beside the new one for that long (GetApiKey shows the end as `keygateGraceEndsAt`; `POST /keygate/v1/keys/{apiKeyId}/end-grace` ends it sooner). The answer holds the new plaintext."),
    route("get", "/modelstudio/workspaces", "ListWorkspaces", "ModelStudio", "List workspaces").takes_query(schema_of::<ListWorkspacesRequest>).answers(schema_of::<ListWorkspacesResponse>).refuses(&[400, 401, 403, 500]).about("Query `workspaceId`, `workspaceName`, `maxResults`, `nextToken`."),
    route("post", "/modelstudio/workspaces", "CreateWorkspace", "ModelStudio", "Create a workspace").takes_query(schema_of::<CreateWorkspaceRequest>).answers(schema_of::<WorkspaceResponse>).refuses(&[400, 401, 403, 500]).about("Query `workspaceName`."),
    route("delete", "/modelstudio/workspaces/{workspaceId}", "DeleteWorkspace", "ModelStudio", "Delete a workspace").answers(schema_of::<DeleteWorkspaceResponse>).refuses(&[400, 401, 403, 404, 500]).about("Refused (`isDeleted: false` with `failReasons`) while it has keys or applications."),
    route("get", "/modelstudio/models/permissions", "ListModelPermissions", "ModelStudio", "List a workspace's model permissions").takes_query(schema_of::<ListModelPermissionsRequest>).answers(schema_of::<ListModelPermissionsResponse>).refuses(&[400, 401, 403, 404, 500]).about("Query `workspaceId`, `maxResults`, `nextToken`."),
    route("post", "/modelstudio/models/permissions", "UpdateModelPermissions", "ModelStudio", "Change a workspace's model permissions").takes_form(schema_of::<UpdateModelPermissionsRequest>).answers(schema_of::<UpdateModelPermissionsResponse>).refuses(&[400, 401, 403, 404, 500]).about("Form `workspaceId` and `models.N.model`, `models.N.inference`, ..."),
    route("get", "/modelstudio/models", "ListModelStudioModels", "ModelStudio", "List the model catalog").takes_query(schema_of::<ListCatalogModelsRequest>).answers(schema_of::<ListCatalogModelsResponse>).refuses(&[400, 401, 403, 500]).about("Model Studio's ListModels: the configured models with their `[[prices]]`; query `model`, `name`, `providers`, `capabilities`, `features` (JSON arrays of strings), `maxResults`, `nextToken`."),
    route("get", "/modelstudio/models/limits", "ListModelLimits", "ModelStudio", "List a workspace's model limits").takes_query(schema_of::<ListModelLimitsRequest>).answers(schema_of::<ListModelLimitsResponse>).refuses(&[400, 401, 403, 404, 500]).about("Query `workspaceId` (the default workspace when absent), `model`, `name`, `maxResults` (0 to 200, default 20), `nextToken`. Each model the workspace may call: `modelLimit` (the platform default of `[[model_limits]]`) and `workspaceLimit` (the workspace's own), periods in seconds."),
    route("post", "/modelstudio/models/limits", "UpdateModelLimits", "ModelStudio", "Set, overlay or delete a workspace's model limits").takes_form(schema_of::<UpdateModelLimitsRequest>).answers(schema_of::<UpdateModelLimitsResponse>).refuses(&[400, 401, 403, 404, 500]).about("Form `workspaceId` and `workspaceLimits` (one JSON array of 1 to 200 items `{model, operationType, requestLimit, requestLimitPeriod, usageLimit, usageLimitPeriod}`; `OVERLAY` merges, `DELETE` removes), applied all or none; the account and admins only."),
    route("get", "/modelstudio/billing/overview", "GetBillingOverview", "ModelStudio", "What a month's usage cost").takes_query(schema_of::<GetBillingOverviewRequest>).answers(schema_of::<GetBillingOverviewResponse>).refuses(&[400, 401, 403, 500]).about("Query `billMonth`, `groupBy` and `filter` (JSON), `topNum`, `zeroFilter`. Only the usage of the keys the caller may see."),
    route("get", "/modelstudio/billing/trend", "GetBillingTrend", "ModelStudio", "What usage cost per day or month").takes_query(schema_of::<GetBillingTrendRequest>).answers(schema_of::<GetBillingTrendResponse>).refuses(&[400, 401, 403, 500]).about("Query `granularity` (DAY, MONTH), `timePeriod`, `groupBy` and `filter` (JSON), `topNum`, `zeroFilter`. Groups beyond the top N are merged into `DIMENSION_GROUP_OTHERS_VALUE`."),
    route("post", "/tokenplan/api-keys", "CreateTokenPlanKey", "TokenPlan", "Create a Token Plan key").takes_query(schema_of::<CreateTokenPlanKeyRequest>).answers_plan(schema_of::<PlanSuccess<CreatedTokenPlanKey>>).about("A plan key (`sk-sp-`), PascalCase fields; refusals in the Token Plan envelope."),
    route("post", "/tokenplan/api-key-rotations", "RotateTokenPlanKey", "TokenPlan", "Rotate a Token Plan key").takes_query(schema_of::<RotateTokenPlanKeyRequest>).answers_plan(schema_of::<PlanSuccess<RotatedTokenPlanKey>>).about("A new secret for a plan key, PascalCase fields; refusals in the Token Plan envelope."),
];
