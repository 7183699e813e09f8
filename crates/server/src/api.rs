//! Handlers of Keten's own API (`/v1`).

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gs1::{Gln, Gtin};
use network::{DeviceId, LaneId, PartyId, TenantId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use store::{
    ApiKeySecret, Applied, DeviceFilter, IdempotencyRecord, LaneFilter, LocationFilter, Mutation, PageRequest,
    PartyFilter, Principal, ProductFilter, PutMode, Scope, StoredResponse, Write, WriteOutcome,
};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::dto::*;
use crate::extract::{Caller, IdempotencyKey, JsonBody};
use crate::problem::Problem;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tenant, list_tenants))
        .routes(routes!(create_tenant_key, list_tenant_keys))
        .routes(routes!(verify_company_prefix, list_company_prefixes))
        .routes(routes!(revoke_tenant_key))
        .routes(routes!(operator_usage))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
        .routes(routes!(tenant_usage))
        .routes(routes!(create_product, list_products))
        .routes(routes!(get_product, put_product, delete_product))
        .routes(routes!(create_party, list_parties))
        .routes(routes!(get_party, put_party, delete_party))
        .routes(routes!(create_location, list_locations))
        .routes(routes!(get_location, put_location, delete_location))
        .routes(routes!(create_lane, list_lanes))
        .routes(routes!(get_lane, put_lane, delete_lane))
        .routes(routes!(create_device, list_devices))
        .routes(routes!(get_device, put_device, delete_device))
        .routes(routes!(create_product_link, list_product_links))
        .routes(routes!(delete_product_link))
        .routes(routes!(crate::scan::scan))
        .merge(crate::fulfilment::router())
        .merge(crate::dispatch::router())
        .merge(crate::readings::router())
        .merge(crate::alarms::router())
        .merge(crate::reports::router())
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Keten API", description = "Keten: an open Retail-as-a-Service supply-chain platform. Errors are RFC 9457 problems (see /problems/{code})."),
    components(schemas(crate::problem::Problem, crate::problem::FieldError)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "operator", description = "The platform operator: tenants, keys, usage"), (name = "gs1", description = "Scans and the GS1 Digital Link links of products"), (name = "master-data", description = "Products, parties, locations, lanes, devices"), (name = "keys", description = "A tenant's own API keys"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

// ---------- shared pieces ----------

/// The operations of the API that take query parameters: by route, their methods (as the OpenAPI
/// document declares them: the router and the document come from the same `routes!`).
#[derive(Debug, Clone, Default)]
pub(crate) struct QueryTakers(std::sync::Arc<std::collections::HashMap<String, Vec<axum::http::Method>>>);

impl QueryTakers {
    pub(crate) fn of(document: &utoipa::openapi::OpenApi) -> QueryTakers {
        use axum::http::Method;
        use utoipa::openapi::path::ParameterIn;
        let mut takers: std::collections::HashMap<String, Vec<Method>> = std::collections::HashMap::new();
        for (path, item) in &document.paths.paths {
            let path_wide =
                item.parameters.iter().flatten().any(|parameter| parameter.parameter_in == ParameterIn::Query);
            let operations = [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
                (Method::HEAD, &item.head),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let takes_query = path_wide
                    || operation
                        .parameters
                        .iter()
                        .flatten()
                        .any(|parameter| parameter.parameter_in == ParameterIn::Query);
                if takes_query {
                    takers.entry(path.clone()).or_default().push(method);
                }
            }
        }
        QueryTakers(std::sync::Arc::new(takers))
    }

    fn takes_query(&self, method: &axum::http::Method, route: &str) -> bool {
        // The router answers HEAD with the GET handler.
        let method = if method == axum::http::Method::HEAD { &axum::http::Method::GET } else { method };
        self.0.get(route).is_some_and(|methods| methods.contains(method))
    }
}

/// Refuses a query string on an operation that takes no query parameters. Without this, a
/// parameter sent where none is read would be silently ignored: an operator's `?tenant=` on an
/// endpoint that always acts for the key's own tenant, or a filter on the wrong endpoint.
/// (Operations that take some parameters refuse unknown ones themselves: `QueryParams` with
/// `deny_unknown_fields`.)
pub(crate) async fn refuse_unexpected_query(
    State(takers): State<QueryTakers>,
    route: axum::extract::MatchedPath,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let query = request.uri().query().unwrap_or("");
    if !query.is_empty() && !takers.takes_query(request.method(), route.as_str()) {
        let name = query.split('&').find(|pair| !pair.is_empty()).and_then(|pair| pair.split('=').next()).unwrap_or("");
        let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        return Problem::field(
            "invalid-parameter",
            format!("?{name}"),
            format!("{} {} takes no query parameters", request.method(), route.as_str()),
        )
        .into_response();
    }
    next.run(request).await
}

/// Query parameters, with a problem (not a plain-text rejection) when they don't parse.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        if has_encoded_control_character(raw) {
            return Err(Problem::new("invalid-parameter", "query parameters must not contain control characters"));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(QueryParams(value)),
            Err(rejection) => Err(Problem::new("invalid-parameter", rejection.body_text())),
        }
    }
}

/// Whether a raw query string holds a control character, literally or percent-encoded.
fn has_encoded_control_character(query: &str) -> bool {
    let bytes = query.as_bytes();
    bytes.iter().enumerate().any(|(index, byte)| {
        if byte.is_ascii_control() {
            return true;
        }
        if *byte != b'%' || index + 2 >= bytes.len() {
            return false;
        }
        let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
        u8::from_str_radix(hex, 16).is_ok_and(|value| value < 0x20 || value == 0x7f)
    })
}

/// Page parameters common to every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1-500 (default 50).
    pub limit: Option<u32>,
}

/// A list's `?limit`: `default` when absent; outside 1..=`max` a problem, never clamped.
pub(crate) fn limit_within(limit: Option<u32>, default: u32, max: u32) -> Result<u32, Problem> {
    match limit {
        None => Ok(default),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        Some(limit) => {
            Err(Problem::field("invalid-parameter", "?limit", format!("must be within 1..={max}, found {limit}")))
        }
    }
}

/// A keyed list's `?cursor` (the key of the last item of the page before) and `?limit`.
pub(crate) fn keyed_page_request(cursor: Option<&str>, limit: Option<u32>) -> Result<(Option<String>, u32), Problem> {
    let after = cursor
        .map(|cursor| {
            store::Cursor::decode(cursor)
                .ok_or_else(|| Problem::field("invalid-parameter", "?cursor", "not a cursor of this list"))
        })
        .transpose()?;
    Ok((after, limit_within(limit, store::PAGE_LIMIT_DEFAULT, store::PAGE_LIMIT_MAX)?))
}

/// Cuts `items`, read with one more than `limit`, to the page, and answers the cursor of the
/// next page (the last kept item's key) when more follow.
pub(crate) fn keyed_page<T>(items: &mut Vec<T>, limit: u32, key: impl Fn(&T) -> &str) -> Option<String> {
    if items.len() <= limit as usize {
        return None;
    }
    items.truncate(limit as usize);
    items.last().map(|item| store::Cursor::encode(key(item)))
}

impl PageParams {
    fn page(&self) -> Result<PageRequest, Problem> {
        limit_within(self.limit, store::PAGE_LIMIT_DEFAULT, store::PAGE_LIMIT_MAX)?;
        let after =
            match &self.cursor {
                Some(cursor) => Some(store::Cursor::decode(cursor).ok_or_else(|| {
                    Problem::field("invalid-parameter", "?cursor", "is not a cursor this server issued")
                })?),
                None => None,
            };
        Ok(PageRequest { after, limit: self.limit })
    }
}

pub(crate) fn json_bytes<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The outcome of a write as seen by a handler.
pub(crate) enum Written {
    Applied(Applied),
    Replayed(StoredResponse),
}

impl Written {
    /// [`Written::into_response`] of a write that creates a resource: with [`created_response`]'s
    /// `Location`.
    pub(crate) fn into_created_response(
        self,
        respond: impl Fn(&Applied) -> StoredResponse,
        collection: &str,
        id_field: &str,
    ) -> Response {
        match self {
            Written::Applied(applied) => created_response(respond(&applied), false, collection, id_field),
            Written::Replayed(stored) => created_response(stored, true, collection, id_field),
        }
    }

    /// The answer: built by `respond` for a fresh write, the stored first answer for a replay.
    pub(crate) fn into_response(self, respond: impl Fn(&Applied) -> StoredResponse) -> Response {
        match self {
            Written::Applied(applied) => {
                let stored = respond(&applied);
                json_response(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK), stored.body)
            }
            Written::Replayed(stored) => replay(stored),
        }
    }
}

pub(crate) fn replay(stored: StoredResponse) -> Response {
    let mut response = json_response(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK), stored.body);
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// A stored answer as sent (fresh, or replayed), with a 201's `Location` (RFC 9110): the created
/// resource at `{collection}/{id}`, the id read from the answer's `id_field`, so that a replay
/// names the resource its first answer created.
pub(crate) fn created_response(stored: StoredResponse, replayed: bool, collection: &str, id_field: &str) -> Response {
    let location = (stored.status == 201)
        .then(|| serde_json::from_slice::<serde_json::Value>(&stored.body).ok())
        .flatten()
        .and_then(|body| body[id_field].as_str().map(|id| format!("{collection}/{id}")))
        .and_then(|location| HeaderValue::from_str(&location).ok());
    let mut response = if replayed {
        replay(stored)
    } else {
        json_response(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK), stored.body)
    };
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Writes through the group-commit writer, honouring the Idempotency-Key: a retry with the same
/// key and request gets the first answer; the same key with another request gets 422.
pub(crate) async fn write(
    app: &AppState,
    caller: &Principal,
    key: IdempotencyKey,
    request_sha256: Option<[u8; 32]>,
    data_tenant: TenantId,
    mutation: Mutation,
    respond: impl Fn(&Applied) -> StoredResponse + Send + Sync + 'static,
) -> Result<Written, Problem> {
    // A retry is answered by the writer, which reads the batch's keys in one statement before it
    // applies anything (and refuses a key used for another request): no read of its own here.
    let idempotency = match (key.0, request_sha256) {
        (Some(key), Some(request_sha256)) => Some(IdempotencyRecord {
            tenant_id: caller.tenant_id.clone(),
            key,
            request_sha256,
            respond: Box::new(respond),
        }),
        _ => None,
    };
    match app.store.write(Write { tenant_id: data_tenant, mutation, idempotency }).await? {
        WriteOutcome::Applied(applied) => Ok(Written::Applied(applied)),
        WriteOutcome::Replayed(stored) => Ok(Written::Replayed(stored)),
    }
}

/// The stored first answer to a request with this Idempotency-Key, if any; 422 when the key was
/// used for another request. Handlers whose work precedes the write (a dispatch wave plans
/// before it stores) ask first.
pub(crate) async fn first_answer(
    app: &AppState,
    caller: &Principal,
    key: &str,
    request_sha256: [u8; 32],
) -> Result<Option<StoredResponse>, Problem> {
    let Some((stored_sha256, stored)) = app.store.tenant(&caller.tenant_id).idempotent_response(key).await? else {
        return Ok(None);
    };
    if stored_sha256 != request_sha256 {
        return Err(Problem::new("idempotency-key-reused", "this Idempotency-Key was used for a different request"));
    }
    Ok(Some(stored))
}

pub(crate) fn created_or_ok(body: Vec<u8>) -> impl Fn(&Applied) -> StoredResponse + Send + Sync + Clone + 'static {
    move |applied: &Applied| StoredResponse { status: if applied.created { 201 } else { 200 }, body: body.clone() }
}

/// Master data is written by tenant writers into their own space, and by the operator into the
/// shared network.
pub(crate) fn require_writer(caller: &Caller) -> Result<&Principal, Problem> {
    if caller.0.is_operator() {
        return Ok(&caller.0);
    }
    if caller.0.tenant_id.is_network() {
        return Err(Problem::new("forbidden", "the shared network is written by operator keys only"));
    }
    caller.require(Scope::TenantWrite)
}

pub(crate) fn require_reader(caller: &Caller) -> Result<&Principal, Problem> {
    if caller.0.is_operator() { Ok(&caller.0) } else { caller.require(Scope::TenantRead) }
}

pub(crate) fn path_value<T, E: std::fmt::Display>(
    name: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<T, Problem> {
    parse(text).map_err(|error| Problem::field("invalid-parameter", format!("{{{name}}}"), error.to_string()))
}

fn no_content(written: Written) -> Response {
    match written {
        Written::Applied(_) => StatusCode::NO_CONTENT.into_response(),
        Written::Replayed(stored) => replay(stored),
    }
}

// ---------- operator: tenants, keys, usage ----------

/// Creates a tenant (a merchant renting the network).
#[utoipa::path(post, path = "/v1/operator/tenants", tag = "operator", request_body = TenantInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = TenantView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_tenant(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: JsonBody<TenantInput>,
) -> Result<Response, Problem> {
    let principal = caller.require_operator()?;
    let (tenant_id, name) = body.value.into_domain()?;
    let view = json_bytes(&TenantView {
        tenant_id: tenant_id.to_string(),
        name: name.clone(),
        created_at: timestamp(store::now_unix_ms()),
    });
    let respond = created_or_ok(view);
    let written = write(
        &app,
        principal,
        key,
        Some(body.request_sha256),
        tenant_id,
        Mutation::PutTenant { name, mode: PutMode::Create },
        respond.clone(),
    )
    .await?;
    Ok(written.into_response(respond))
}

/// Lists every tenant.
#[utoipa::path(get, path = "/v1/operator/tenants", tag = "operator", params(PageParams), responses((status = 200, body = PageView<TenantView>)))]
async fn list_tenants(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<PageParams>,
) -> Result<Json<PageView<TenantView>>, Problem> {
    caller.require_operator()?;
    let page = app.store.tenants(&params.page()?).await?;
    Ok(Json(PageView::from_page(page, TenantView::from)))
}

async fn existing_tenant(app: &AppState, tenant_id: &str) -> Result<TenantId, Problem> {
    let tenant_id = TenantId::parse_any(tenant_id).map_err(|_| Problem::not_found("tenant"))?;
    require_tenant(app, &tenant_id).await?;
    Ok(tenant_id)
}

/// 404 unless the tenant exists: an operator naming a mistyped tenant is told so, not shown an
/// empty one.
pub(crate) async fn require_tenant(app: &AppState, tenant_id: &TenantId) -> Result<(), Problem> {
    app.store.tenant_record(tenant_id).await?.ok_or_else(|| Problem::not_found(format!("tenant {tenant_id}")))?;
    Ok(())
}

async fn create_key_for(
    app: &AppState,
    principal: &Principal,
    key: IdempotencyKey,
    body: JsonBody<KeyInput>,
    tenant_id: TenantId,
) -> Result<Response, Problem> {
    let (name, scopes) = body.value.into_domain(&tenant_id)?;
    if scopes.contains(&Scope::Operator) && !principal.is_operator() {
        return Err(Problem::new("forbidden", "only an operator key may mint an operator key"));
    }
    let secret = ApiKeySecret::generate(&tenant_id);
    let view = KeyView {
        key_id: secret.key_id.clone(),
        tenant_id: tenant_id.to_string(),
        name: name.clone(),
        scopes: scopes.iter().map(|scope| scope.name().to_owned()).collect(),
        created_at: timestamp(store::now_unix_ms()),
        revoked_at: None,
        secret: None,
    };
    // The stored answer (for replays) never holds the secret; only this live answer does.
    let stored = json_bytes(&view);
    let mutation =
        Mutation::CreateKey { key_id: secret.key_id.clone(), name, scopes, secret_sha256: secret.secret_sha256 };
    match write(app, principal, key, Some(body.request_sha256), tenant_id, mutation, move |_| StoredResponse {
        status: 201,
        body: stored.clone(),
    })
    .await?
    {
        Written::Applied(_) => {
            Ok((StatusCode::CREATED, Json(KeyView { secret: Some(secret.reveal().to_owned()), ..view }))
                .into_response())
        }
        Written::Replayed(stored) => Ok(replay(stored)),
    }
}

/// Mints an API key for a tenant. The answer holds the key once; it is stored only as a hash.
#[utoipa::path(post, path = "/v1/operator/tenants/{tenant_id}/keys", tag = "operator", request_body = KeyInput,
    params(("tenant_id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = KeyView), (status = 404, body = Problem)))]
async fn create_tenant_key(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    key: IdempotencyKey,
    body: JsonBody<KeyInput>,
) -> Result<Response, Problem> {
    let principal = caller.require_operator()?.clone();
    let tenant_id = existing_tenant(&app, &tenant_id).await?;
    create_key_for(&app, &principal, key, body, tenant_id).await
}

/// Lists a tenant's keys (never their secrets).
#[utoipa::path(get, path = "/v1/operator/tenants/{tenant_id}/keys", tag = "operator", params(("tenant_id" = String, Path)), responses((status = 200, body = Vec<KeyView>)))]
async fn list_tenant_keys(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> Result<Json<Vec<KeyView>>, Problem> {
    caller.require_operator()?;
    let tenant_id = existing_tenant(&app, &tenant_id).await?;
    Ok(Json(app.store.keys(&tenant_id).await?.into_iter().map(KeyView::from).collect()))
}

/// Records a GS1 company prefix as the tenant's, verified by the operator against its GS1
/// licence: the tenant's GTINs under it (registered already or later) let it see the events
/// other tenants capture about them, and no other tenant may register a GTIN under it. A claim
/// alone (first come) shows a tenant only its own events and the network's about its goods.
#[utoipa::path(post, path = "/v1/operator/tenants/{tenant_id}/company-prefixes", tag = "operator",
    request_body = CompanyPrefixInput,
    params(("tenant_id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = CompanyPrefixView), (status = 200, body = CompanyPrefixView, description = "Verified already"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn verify_company_prefix(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    key: IdempotencyKey,
    body: JsonBody<CompanyPrefixInput>,
) -> Result<Response, Problem> {
    let principal = caller.require_operator()?.clone();
    let tenant_id = existing_tenant(&app, &tenant_id).await?;
    let company_prefix = body.value.company_prefix.clone();
    if !(COMPANY_PREFIX_DIGITS_MIN..=COMPANY_PREFIX_DIGITS_MAX).contains(&company_prefix.len())
        || !company_prefix.bytes().all(|byte| byte.is_ascii_digit())
    {
        return Err(Problem::field(
            "validation-failed",
            "/company_prefix",
            format!("a GS1 company prefix is {COMPANY_PREFIX_DIGITS_MIN} to {COMPANY_PREFIX_DIGITS_MAX} digits"),
        ));
    }
    if tenant_id.is_network() {
        return Err(Problem::field(
            "validation-failed",
            "/company_prefix",
            "the network's own events are visible to the holders of the GTINs they name already",
        ));
    }
    // Verified already (a 200): when it was; else when this write verifies it.
    let verified_before = app
        .store
        .verified_company_prefixes(&tenant_id)
        .await?
        .into_iter()
        .find_map(|(verified, at)| (verified == company_prefix).then_some(at));
    let respond = {
        let (tenant, company_prefix) = (tenant_id.to_string(), company_prefix.clone());
        move |applied: &Applied| {
            let view = CompanyPrefixView {
                tenant_id: tenant.clone(),
                company_prefix: company_prefix.clone(),
                verified_at: timestamp(verified_before.unwrap_or(applied.at_unix_ms)),
            };
            StoredResponse { status: if applied.created { 201 } else { 200 }, body: json_bytes(&view) }
        }
    };
    let mutation = Mutation::VerifyCompanyPrefix { company_prefix };
    let written = write(&app, &principal, key, Some(body.request_sha256), tenant_id, mutation, respond.clone()).await?;
    Ok(written.into_response(respond))
}

/// The shortest and longest GS1 company prefix.
pub const COMPANY_PREFIX_DIGITS_MIN: usize = 6;
pub const COMPANY_PREFIX_DIGITS_MAX: usize = 12;

/// Lists the GS1 company prefixes verified as a tenant's.
#[utoipa::path(get, path = "/v1/operator/tenants/{tenant_id}/company-prefixes", tag = "operator",
    params(("tenant_id" = String, Path)), responses((status = 200, body = Vec<CompanyPrefixView>), (status = 404, body = Problem)))]
async fn list_company_prefixes(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> Result<Json<Vec<CompanyPrefixView>>, Problem> {
    caller.require_operator()?;
    let tenant_id = existing_tenant(&app, &tenant_id).await?;
    let prefixes = app.store.verified_company_prefixes(&tenant_id).await?;
    Ok(Json(
        prefixes
            .into_iter()
            .map(|(company_prefix, verified_unix_ms)| CompanyPrefixView {
                tenant_id: tenant_id.to_string(),
                company_prefix,
                verified_at: timestamp(verified_unix_ms),
            })
            .collect(),
    ))
}

/// Revokes a tenant's key at once.
#[utoipa::path(delete, path = "/v1/operator/tenants/{tenant_id}/keys/{key_id}", tag = "operator",
    params(("tenant_id" = String, Path), ("key_id" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
async fn revoke_tenant_key(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant_id, key_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let principal = caller.require_operator()?.clone();
    let tenant_id = existing_tenant(&app, &tenant_id).await?;
    let written =
        write(&app, &principal, IdempotencyKey(None), None, tenant_id, Mutation::RevokeKey { key_id }, |_| {
            StoredResponse { status: 204, body: Vec::new() }
        })
        .await?;
    Ok(no_content(written))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// First UTC day, YYYY-MM-DD (default: 30 days before `to`); a period covers at most 366 days.
    pub from: Option<String>,
    /// Last UTC day, YYYY-MM-DD (default: today), at most 9999-12-29.
    pub to: Option<String>,
    /// Only this tenant (operator only).
    pub tenant: Option<String>,
}

/// The most UTC days a report covers, `from` and `to` included.
pub const REPORT_DAYS_MAX: i32 = 366;
/// The first and last day a report may name: each day's start and the next day's are instants
/// (times end on 9999-12-30).
pub const REPORT_DAY_FIRST: jiff::civil::Date = jiff::civil::date(1970, 1, 1);
pub const REPORT_DAY_LAST: jiff::civil::Date = jiff::civil::date(9999, 12, 29);

/// The UTC days of a report: `from` (default 30 days before `to`) to `to` (default today), checked: each
/// a date written YYYY-MM-DD from [`REPORT_DAY_FIRST`] to [`REPORT_DAY_LAST`], `from` not after
/// `to`, at most [`REPORT_DAYS_MAX`] days.
pub(crate) fn period_days(params: &UsageParams) -> Result<(jiff::civil::Date, jiff::civil::Date), Problem> {
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let parse = |name: &str, value: &Option<String>, default: jiff::civil::Date| match value {
        None => Ok(default),
        // A day written as such: not a time, whose clock and offset would be dropped.
        Some(text) => text
            .parse::<jiff::civil::Date>()
            .ok()
            .filter(|date| date.to_string() == *text && (REPORT_DAY_FIRST..=REPORT_DAY_LAST).contains(date))
            .ok_or_else(|| {
                Problem::field(
                    "invalid-parameter",
                    format!("?{name}"),
                    format!("must be a date YYYY-MM-DD from {REPORT_DAY_FIRST} to {REPORT_DAY_LAST}, found {text:?}"),
                )
            }),
    };
    let to = parse("to", &params.to, today);
    let end = to.as_ref().map_or(today, |to| *to);
    let from = parse("from", &params.from, end.checked_sub(jiff::Span::new().days(30)).unwrap_or(end))?;
    let to = to?;
    if from > to {
        return Err(Problem::field("invalid-parameter", "?from", "must not be after ?to"));
    }
    let days = from.until((jiff::Unit::Day, to)).map(|span| span.get_days() + 1).unwrap_or(i32::MAX);
    if days > REPORT_DAYS_MAX {
        return Err(Problem::field(
            "invalid-parameter",
            "?from",
            format!("a report covers at most {REPORT_DAYS_MAX} days; {from} to {to} is {days}"),
        ));
    }
    Ok((from, to))
}

async fn usage_report(app: &AppState, tenant: Option<&TenantId>, params: &UsageParams) -> Result<UsageReport, Problem> {
    let (from, to) = period_days(params)?;
    let (from, to) = (from.to_string(), to.to_string());
    let rows = app.store.usage(tenant, &from, &to).await?;
    let mut storage_rows = std::collections::BTreeMap::new();
    let tenants: Vec<TenantId> = match tenant {
        Some(tenant) => vec![tenant.clone()],
        None => {
            let mut tenants = Vec::new();
            let mut after = None;
            loop {
                let page = app
                    .store
                    .tenants(&PageRequest { after: after.clone(), limit: Some(store::PAGE_LIMIT_MAX) })
                    .await?;
                tenants.extend(page.items.into_iter().map(|tenant| tenant.tenant_id));
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            tenants
        }
    };
    for tenant in tenants {
        storage_rows.insert(tenant.to_string(), app.store.storage_rows(&tenant).await?);
    }
    let counters = rows
        .into_iter()
        .map(|row| UsageView { tenant_id: row.tenant_id, day: row.day, unit: row.unit, quantity: row.quantity })
        .collect();
    Ok(UsageReport { from, to, counters, storage_rows })
}

/// Billable units per tenant and UTC day: what the rent is for.
#[utoipa::path(get, path = "/v1/operator/usage", tag = "operator", params(UsageParams), responses((status = 200, body = UsageReport)))]
async fn operator_usage(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<UsageParams>,
) -> Result<Json<UsageReport>, Problem> {
    caller.require_operator()?;
    let tenant = match &params.tenant {
        Some(text) => Some(existing_tenant(&app, text).await?),
        None => None,
    };
    Ok(Json(usage_report(&app, tenant.as_ref(), &params).await?))
}

/// The calling tenant's own usage.
#[utoipa::path(get, path = "/v1/usage", tag = "keys", params(UsageParams), responses((status = 200, body = UsageReport)))]
async fn tenant_usage(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<UsageParams>,
) -> Result<Json<UsageReport>, Problem> {
    let principal = require_reader(&caller)?;
    if params.tenant.is_some() {
        return Err(Problem::field("invalid-parameter", "?tenant", "only the operator may choose a tenant"));
    }
    Ok(Json(usage_report(&app, Some(&principal.tenant_id), &params).await?))
}

// ---------- a tenant's own keys ----------

/// Mints a key for the calling tenant (needs tenant:admin).
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = KeyInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")), responses((status = 201, body = KeyView)))]
async fn create_key(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: JsonBody<KeyInput>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantAdmin)?.clone();
    let tenant_id = principal.tenant_id.clone();
    create_key_for(&app, &principal, key, body, tenant_id).await
}

/// Lists the calling tenant's keys.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = Vec<KeyView>)))]
async fn list_keys(State(app): State<AppState>, caller: Caller) -> Result<Json<Vec<KeyView>>, Problem> {
    let principal = caller.require(Scope::TenantAdmin)?;
    Ok(Json(app.store.keys(&principal.tenant_id).await?.into_iter().map(KeyView::from).collect()))
}

/// Revokes one of the calling tenant's keys.
#[utoipa::path(delete, path = "/v1/keys/{key_id}", tag = "keys", params(("key_id" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
async fn revoke_key(
    State(app): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantAdmin)?.clone();
    let tenant_id = principal.tenant_id.clone();
    let written =
        write(&app, &principal, IdempotencyKey(None), None, tenant_id, Mutation::RevokeKey { key_id }, |_| {
            StoredResponse { status: 204, body: Vec::new() }
        })
        .await?;
    Ok(no_content(written))
}

// ---------- products ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProductListParams {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    /// Only products of this temperature class.
    pub temperature_class: Option<String>,
    pub brand: Option<String>,
}

/// Registers a product (409 if the GTIN exists for this tenant).
#[utoipa::path(post, path = "/v1/products", tag = "master-data", request_body = ProductInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = ProductView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_product(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: JsonBody<ProductInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let product = body.value.into_domain(None)?;
    let respond = created_or_ok(json_bytes(&ProductView::from(product.clone())));
    let tenant = principal.tenant_id.clone();
    let written = write(
        &app,
        principal,
        key,
        Some(body.request_sha256),
        tenant,
        Mutation::PutProduct { product, mode: PutMode::Create },
        respond.clone(),
    )
    .await?;
    Ok(written.into_created_response(respond, "/v1/products", "gtin"))
}

/// Lists the tenant's products.
#[utoipa::path(get, path = "/v1/products", tag = "master-data", params(ProductListParams), responses((status = 200, body = PageView<ProductView>)))]
async fn list_products(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ProductListParams>,
) -> Result<Json<PageView<ProductView>>, Problem> {
    let principal = require_reader(&caller)?;
    let page = PageParams { cursor: params.cursor, limit: params.limit }.page()?;
    let filter = ProductFilter { temperature_class: params.temperature_class, brand: params.brand };
    Ok(Json(PageView::from_page(
        app.store.tenant(&principal.tenant_id).products(&filter, &page).await?,
        ProductView::from,
    )))
}

/// One product by GTIN (any GTIN form; answered as GTIN-14).
#[utoipa::path(get, path = "/v1/products/{gtin}", tag = "master-data", params(("gtin" = String, Path)), responses((status = 200, body = ProductView), (status = 404, body = Problem)))]
async fn get_product(
    State(app): State<AppState>,
    caller: Caller,
    Path(gtin): Path<String>,
) -> Result<Json<ProductView>, Problem> {
    let principal = require_reader(&caller)?;
    let gtin = path_value("gtin", &gtin, Gtin::parse)?;
    let product = app
        .store
        .tenant(&principal.tenant_id)
        .product(&gtin)
        .await?
        .ok_or_else(|| Problem::not_found(format!("product {gtin}")))?;
    Ok(Json(ProductView::from(product)))
}

/// Creates or replaces a product. A new temperature class must be one that every zone holding
/// the product's units keeps (409 `in-use` otherwise: move them first).
#[utoipa::path(put, path = "/v1/products/{gtin}", tag = "master-data", request_body = ProductInput, params(("gtin" = String, Path)),
    responses((status = 200, body = ProductView), (status = 201, body = ProductView), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn put_product(
    State(app): State<AppState>,
    caller: Caller,
    Path(gtin): Path<String>,
    body: JsonBody<ProductInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let product = body.value.into_domain(Some(&gtin))?;
    let respond = created_or_ok(json_bytes(&ProductView::from(product.clone())));
    let tenant = principal.tenant_id.clone();
    let written = write(
        &app,
        principal,
        IdempotencyKey(None),
        None,
        tenant,
        Mutation::PutProduct { product, mode: PutMode::Upsert },
        respond.clone(),
    )
    .await?;
    Ok(written.into_created_response(respond, "/v1/products", "gtin"))
}

/// Deletes a product.
#[utoipa::path(delete, path = "/v1/products/{gtin}", tag = "master-data", params(("gtin" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
async fn delete_product(
    State(app): State<AppState>,
    caller: Caller,
    Path(gtin): Path<String>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let gtin = path_value("gtin", &gtin, Gtin::parse)?;
    let tenant = principal.tenant_id.clone();
    Ok(no_content(
        write(&app, principal, IdempotencyKey(None), None, tenant, Mutation::DeleteProduct { gtin }, |_| {
            StoredResponse { status: 204, body: vec![] }
        })
        .await?,
    ))
}

// ---------- parties ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PartyListParams {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    /// `supplier`, `farm`, `fishery` or `carrier`.
    pub kind: Option<String>,
}

/// Registers a supplier, farm, fishery or carrier.
#[utoipa::path(post, path = "/v1/parties", tag = "master-data", request_body = PartyInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")), responses((status = 201, body = PartyView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_party(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: JsonBody<PartyInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let party = body.value.into_domain(None)?;
    let respond = created_or_ok(json_bytes(&PartyView::from(party.clone())));
    let tenant = principal.tenant_id.clone();
    let written = write(
        &app,
        principal,
        key,
        Some(body.request_sha256),
        tenant,
        Mutation::PutParty { party, mode: PutMode::Create },
        respond.clone(),
    )
    .await?;
    Ok(written.into_created_response(respond, "/v1/parties", "party_id"))
}

#[utoipa::path(get, path = "/v1/parties", tag = "master-data", params(PartyListParams), responses((status = 200, body = PageView<PartyView>)))]
async fn list_parties(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<PartyListParams>,
) -> Result<Json<PageView<PartyView>>, Problem> {
    let principal = require_reader(&caller)?;
    let page = PageParams { cursor: params.cursor, limit: params.limit }.page()?;
    Ok(Json(PageView::from_page(
        app.store.tenant(&principal.tenant_id).parties(&PartyFilter { kind: params.kind }, &page).await?,
        PartyView::from,
    )))
}

#[utoipa::path(get, path = "/v1/parties/{party_id}", tag = "master-data", params(("party_id" = String, Path)), responses((status = 200, body = PartyView), (status = 404, body = Problem)))]
async fn get_party(
    State(app): State<AppState>,
    caller: Caller,
    Path(party_id): Path<String>,
) -> Result<Json<PartyView>, Problem> {
    let principal = require_reader(&caller)?;
    let party_id = path_value("party_id", &party_id, PartyId::parse)?;
    let party = app
        .store
        .tenant(&principal.tenant_id)
        .party(&party_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("party {party_id}")))?;
    Ok(Json(PartyView::from(party)))
}

#[utoipa::path(put, path = "/v1/parties/{party_id}", tag = "master-data", request_body = PartyInput, params(("party_id" = String, Path)), responses((status = 200, body = PartyView), (status = 201, body = PartyView)))]
async fn put_party(
    State(app): State<AppState>,
    caller: Caller,
    Path(party_id): Path<String>,
    body: JsonBody<PartyInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let party = body.value.into_domain(Some(&party_id))?;
    let respond = created_or_ok(json_bytes(&PartyView::from(party.clone())));
    let tenant = principal.tenant_id.clone();
    let written = write(
        &app,
        principal,
        IdempotencyKey(None),
        None,
        tenant,
        Mutation::PutParty { party, mode: PutMode::Upsert },
        respond.clone(),
    )
    .await?;
    Ok(written.into_created_response(respond, "/v1/parties", "party_id"))
}

#[utoipa::path(delete, path = "/v1/parties/{party_id}", tag = "master-data", params(("party_id" = String, Path)), responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_party(
    State(app): State<AppState>,
    caller: Caller,
    Path(party_id): Path<String>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let party_id = path_value("party_id", &party_id, PartyId::parse)?;
    let tenant = principal.tenant_id.clone();
    Ok(no_content(
        write(&app, principal, IdempotencyKey(None), None, tenant, Mutation::DeleteParty { party_id }, |_| {
            StoredResponse { status: 204, body: vec![] }
        })
        .await?,
    ))
}

// ---------- locations ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LocationListParams {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    /// `farm`, `factory`, `warehouse`, `cold_depot`, `pickup_point`, `store` or `pharmacy`.
    pub kind: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

/// Registers a location with its temperature zones and cut-offs (operator keys write the shared network).
#[utoipa::path(post, path = "/v1/locations", tag = "master-data", request_body = LocationInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")), responses((status = 201, body = LocationView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_location(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: JsonBody<LocationInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let location = body.value.into_domain(None)?;
    let tenant = principal.tenant_id.clone();
    let respond =
        created_or_ok(json_bytes(&LocationView::from(store::Owned { owner: tenant.clone(), value: location.clone() })));
    let written = write(
        &app,
        principal,
        key,
        Some(body.request_sha256),
        tenant,
        Mutation::PutLocation { location, mode: PutMode::Create },
        respond.clone(),
    )
    .await?;
    Ok(written.into_created_response(respond, "/v1/locations", "gln"))
}

/// Lists the tenant's locations and the shared network's.
#[utoipa::path(get, path = "/v1/locations", tag = "master-data", params(LocationListParams), responses((status = 200, body = PageView<LocationView>)))]
async fn list_locations(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<LocationListParams>,
) -> Result<Json<PageView<LocationView>>, Problem> {
    let principal = require_reader(&caller)?;
    let page = PageParams { cursor: params.cursor, limit: params.limit }.page()?;
    let filter = LocationFilter { kind: params.kind, country: params.country };
    Ok(Json(PageView::from_page(
        app.store.tenant(&principal.tenant_id).locations(&filter, &page).await?,
        LocationView::from,
    )))
}

#[utoipa::path(get, path = "/v1/locations/{gln}", tag = "master-data", params(("gln" = String, Path)), responses((status = 200, body = LocationView), (status = 404, body = Problem)))]
async fn get_location(
    State(app): State<AppState>,
    caller: Caller,
    Path(gln): Path<String>,
) -> Result<Json<LocationView>, Problem> {
    let principal = require_reader(&caller)?;
    let gln = path_value("gln", &gln, Gln::parse)?;
    let location = app
        .store
        .tenant(&principal.tenant_id)
        .location(&gln)
        .await?
        .ok_or_else(|| Problem::not_found(format!("location {gln}")))?;
    Ok(Json(LocationView::from(location)))
}

#[utoipa::path(put, path = "/v1/locations/{gln}", tag = "master-data", request_body = LocationInput, params(("gln" = String, Path)), responses((status = 200, body = LocationView), (status = 201, body = LocationView)))]
async fn put_location(
    State(app): State<AppState>,
    caller: Caller,
    Path(gln): Path<String>,
    body: JsonBody<LocationInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let location = body.value.into_domain(Some(&gln))?;
    let tenant = principal.tenant_id.clone();
    let respond =
        created_or_ok(json_bytes(&LocationView::from(store::Owned { owner: tenant.clone(), value: location.clone() })));
    let written = write(
        &app,
        principal,
        IdempotencyKey(None),
        None,
        tenant,
        Mutation::PutLocation { location, mode: PutMode::Upsert },
        respond.clone(),
    )
    .await?;
    Ok(written.into_created_response(respond, "/v1/locations", "gln"))
}

#[utoipa::path(delete, path = "/v1/locations/{gln}", tag = "master-data", params(("gln" = String, Path)), responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_location(
    State(app): State<AppState>,
    caller: Caller,
    Path(gln): Path<String>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let gln = path_value("gln", &gln, Gln::parse)?;
    let tenant = principal.tenant_id.clone();
    Ok(no_content(
        write(&app, principal, IdempotencyKey(None), None, tenant, Mutation::DeleteLocation { gln }, |_| {
            StoredResponse { status: 204, body: vec![] }
        })
        .await?,
    ))
}

// ---------- lanes ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LaneListParams {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    /// Origin GLN.
    pub from: Option<String>,
    /// Destination GLN.
    pub to: Option<String>,
}

/// Registers a lane between two known locations.
#[utoipa::path(post, path = "/v1/lanes", tag = "master-data", request_body = LaneInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")), responses((status = 201, body = LaneView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_lane(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: JsonBody<LaneInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let lane = body.value.into_domain(None)?;
    let tenant = principal.tenant_id.clone();
    let respond =
        created_or_ok(json_bytes(&LaneView::from(store::Owned { owner: tenant.clone(), value: lane.clone() })));
    let written = write(
        &app,
        principal,
        key,
        Some(body.request_sha256),
        tenant,
        Mutation::PutLane { lane, mode: PutMode::Create },
        respond.clone(),
    )
    .await?;
    Ok(written.into_created_response(respond, "/v1/lanes", "lane_id"))
}

#[utoipa::path(get, path = "/v1/lanes", tag = "master-data", params(LaneListParams), responses((status = 200, body = PageView<LaneView>)))]
async fn list_lanes(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<LaneListParams>,
) -> Result<Json<PageView<LaneView>>, Problem> {
    let principal = require_reader(&caller)?;
    let page = PageParams { cursor: params.cursor, limit: params.limit }.page()?;
    let filter = LaneFilter { from_gln: params.from, to_gln: params.to };
    Ok(Json(PageView::from_page(app.store.tenant(&principal.tenant_id).lanes(&filter, &page).await?, LaneView::from)))
}

#[utoipa::path(get, path = "/v1/lanes/{lane_id}", tag = "master-data", params(("lane_id" = String, Path)), responses((status = 200, body = LaneView), (status = 404, body = Problem)))]
async fn get_lane(
    State(app): State<AppState>,
    caller: Caller,
    Path(lane_id): Path<String>,
) -> Result<Json<LaneView>, Problem> {
    let principal = require_reader(&caller)?;
    let lane_id = path_value("lane_id", &lane_id, LaneId::parse)?;
    let lane = app
        .store
        .tenant(&principal.tenant_id)
        .lane(&lane_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("lane {lane_id}")))?;
    Ok(Json(LaneView::from(lane)))
}

#[utoipa::path(put, path = "/v1/lanes/{lane_id}", tag = "master-data", request_body = LaneInput, params(("lane_id" = String, Path)), responses((status = 200, body = LaneView), (status = 201, body = LaneView)))]
async fn put_lane(
    State(app): State<AppState>,
    caller: Caller,
    Path(lane_id): Path<String>,
    body: JsonBody<LaneInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let lane = body.value.into_domain(Some(&lane_id))?;
    let tenant = principal.tenant_id.clone();
    let respond =
        created_or_ok(json_bytes(&LaneView::from(store::Owned { owner: tenant.clone(), value: lane.clone() })));
    let written = write(
        &app,
        principal,
        IdempotencyKey(None),
        None,
        tenant,
        Mutation::PutLane { lane, mode: PutMode::Upsert },
        respond.clone(),
    )
    .await?;
    Ok(written.into_created_response(respond, "/v1/lanes", "lane_id"))
}

#[utoipa::path(delete, path = "/v1/lanes/{lane_id}", tag = "master-data", params(("lane_id" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
async fn delete_lane(
    State(app): State<AppState>,
    caller: Caller,
    Path(lane_id): Path<String>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let lane_id = path_value("lane_id", &lane_id, LaneId::parse)?;
    let tenant = principal.tenant_id.clone();
    Ok(no_content(
        write(&app, principal, IdempotencyKey(None), None, tenant, Mutation::DeleteLane { lane_id }, |_| {
            StoredResponse { status: 204, body: vec![] }
        })
        .await?,
    ))
}

// ---------- devices ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeviceListParams {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    /// Only devices at this location (GLN).
    pub location: Option<String>,
}

/// Registers a temperature sensor.
#[utoipa::path(post, path = "/v1/devices", tag = "master-data", request_body = DeviceInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")), responses((status = 201, body = DeviceView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_device(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: JsonBody<DeviceInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let device = body.value.into_domain(None)?;
    let respond = created_or_ok(json_bytes(&DeviceView::from(device.clone())));
    let tenant = principal.tenant_id.clone();
    let written = write(
        &app,
        principal,
        key,
        Some(body.request_sha256),
        tenant,
        Mutation::PutDevice { device, mode: PutMode::Create },
        respond.clone(),
    )
    .await?;
    Ok(written.into_created_response(respond, "/v1/devices", "device_id"))
}

#[utoipa::path(get, path = "/v1/devices", tag = "master-data", params(DeviceListParams), responses((status = 200, body = PageView<DeviceView>)))]
async fn list_devices(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<DeviceListParams>,
) -> Result<Json<PageView<DeviceView>>, Problem> {
    let principal = require_reader(&caller)?;
    let page = PageParams { cursor: params.cursor, limit: params.limit }.page()?;
    Ok(Json(PageView::from_page(
        app.store.tenant(&principal.tenant_id).devices(&DeviceFilter { location_gln: params.location }, &page).await?,
        DeviceView::from,
    )))
}

#[utoipa::path(get, path = "/v1/devices/{device_id}", tag = "master-data", params(("device_id" = String, Path)), responses((status = 200, body = DeviceView), (status = 404, body = Problem)))]
async fn get_device(
    State(app): State<AppState>,
    caller: Caller,
    Path(device_id): Path<String>,
) -> Result<Json<DeviceView>, Problem> {
    let principal = require_reader(&caller)?;
    let device_id = path_value("device_id", &device_id, DeviceId::parse)?;
    let device = app
        .store
        .tenant(&principal.tenant_id)
        .device(&device_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("device {device_id}")))?;
    Ok(Json(DeviceView::from(device)))
}

#[utoipa::path(put, path = "/v1/devices/{device_id}", tag = "master-data", request_body = DeviceInput, params(("device_id" = String, Path)), responses((status = 200, body = DeviceView), (status = 201, body = DeviceView)))]
async fn put_device(
    State(app): State<AppState>,
    caller: Caller,
    Path(device_id): Path<String>,
    body: JsonBody<DeviceInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let device = body.value.into_domain(Some(&device_id))?;
    let respond = created_or_ok(json_bytes(&DeviceView::from(device.clone())));
    let tenant = principal.tenant_id.clone();
    let written = write(
        &app,
        principal,
        IdempotencyKey(None),
        None,
        tenant,
        Mutation::PutDevice { device, mode: PutMode::Upsert },
        respond.clone(),
    )
    .await?;
    Ok(written.into_created_response(respond, "/v1/devices", "device_id"))
}

#[utoipa::path(delete, path = "/v1/devices/{device_id}", tag = "master-data", params(("device_id" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
async fn delete_device(
    State(app): State<AppState>,
    caller: Caller,
    Path(device_id): Path<String>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let device_id = path_value("device_id", &device_id, DeviceId::parse)?;
    let tenant = principal.tenant_id.clone();
    Ok(no_content(
        write(&app, principal, IdempotencyKey(None), None, tenant, Mutation::DeleteDevice { device_id }, |_| {
            StoredResponse { status: 204, body: vec![] }
        })
        .await?,
    ))
}

// ---------- product links (for the GS1 Digital Link resolver) ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductLinkInput {
    /// A GS1 Web Vocabulary link type, e.g. `gs1:recipeInfo`, `gs1:instructions`
    /// (`gs1:traceability`, `gs1:epcis` and `gs1:recallStatus` are Keten's own).
    pub link_type: String,
    /// Absolute http(s) URL.
    pub href: String,
    pub title: String,
    /// Language of the target, e.g. `en`.
    pub language: Option<String>,
    /// Media type of the target, e.g. `application/pdf`.
    pub media_type: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductLinkView {
    pub link_id: String,
    pub link_type: String,
    pub href: String,
    pub title: String,
    pub language: Option<String>,
    pub media_type: Option<String>,
}

impl From<network::ProductLink> for ProductLinkView {
    fn from(link: network::ProductLink) -> Self {
        ProductLinkView {
            link_id: link.link_id,
            link_type: link.link_type,
            href: link.href,
            title: link.title,
            language: link.language,
            media_type: link.media_type,
        }
    }
}

/// Adds a link to a product's Digital Link linkset.
#[utoipa::path(post, path = "/v1/products/{gtin}/links", tag = "gs1", request_body = ProductLinkInput,
    params(("gtin" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = ProductLinkView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_product_link(
    State(app): State<AppState>,
    caller: Caller,
    Path(gtin): Path<String>,
    key: IdempotencyKey,
    body: JsonBody<ProductLinkInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let gtin = path_value("gtin", &gtin, Gtin::parse)?;
    let input = body.value;
    let mut checker = Checker::default();
    let link_type = checker.check("/link_type", network::ProductLink::check_link_type(&input.link_type));
    let href = checker.check("/href", network::ProductLink::check_href(&input.href));
    let title = checker.text("/title", &input.title, TEXT_LENGTH_MAX);
    let language =
        input.language.as_deref().map(|text| checker.check("/language", network::ProductLink::check_language(text)));
    let media_type = checker.optional_text("/media_type", &input.media_type, 100);
    checker.finish()?;
    let (Some(link_type), Some(href), Some(title)) = (link_type, href, title) else {
        return Err(Problem::internal("link fields"));
    };
    let link = network::ProductLink {
        link_id: hex::encode(rand::random::<[u8; 8]>()),
        link_type,
        href,
        title,
        language: language.flatten(),
        media_type,
    };
    let view = json_bytes(&ProductLinkView::from(link.clone()));
    let tenant = principal.tenant_id.clone();
    let respond = move |_: &Applied| StoredResponse { status: 201, body: view.clone() };
    let written = write(
        &app,
        principal,
        key,
        Some(body.request_sha256),
        tenant,
        Mutation::PutProductLink { gtin, link },
        respond.clone(),
    )
    .await?;
    Ok(written.into_response(respond))
}

/// Lists a product's own links.
#[utoipa::path(get, path = "/v1/products/{gtin}/links", tag = "gs1", params(("gtin" = String, Path)), responses((status = 200, body = Vec<ProductLinkView>), (status = 404, body = Problem)))]
async fn list_product_links(
    State(app): State<AppState>,
    caller: Caller,
    Path(gtin): Path<String>,
) -> Result<Json<Vec<ProductLinkView>>, Problem> {
    let principal = require_reader(&caller)?;
    let gtin = path_value("gtin", &gtin, Gtin::parse)?;
    let scoped = app.store.tenant(&principal.tenant_id);
    scoped.product(&gtin).await?.ok_or_else(|| Problem::not_found(format!("product {gtin}")))?;
    Ok(Json(scoped.product_links(&gtin).await?.into_iter().map(ProductLinkView::from).collect()))
}

/// Removes a product's link.
#[utoipa::path(delete, path = "/v1/products/{gtin}/links/{link_id}", tag = "gs1", params(("gtin" = String, Path), ("link_id" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
async fn delete_product_link(
    State(app): State<AppState>,
    caller: Caller,
    Path((gtin, link_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let gtin = path_value("gtin", &gtin, Gtin::parse)?;
    let tenant = principal.tenant_id.clone();
    Ok(no_content(
        write(
            &app,
            principal,
            IdempotencyKey(None),
            None,
            tenant,
            Mutation::DeleteProductLink { gtin, link_id },
            |_| StoredResponse { status: 204, body: vec![] },
        )
        .await?,
    ))
}
