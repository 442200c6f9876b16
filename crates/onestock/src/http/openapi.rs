//! The OpenAPI 3.1 document of the JSON API, derived from the handlers' `#[utoipa::path]`
//! annotations and the types of `schema.rs`. Served at `/v1/openapi.json` (and
//! `/openapi.json`), shown as a reference page by the vendored Swagger UI at `/v1/docs`,
//! and kept in the repository as `docs/openapi.json` (a test holds the file equal to
//! this document).
//!
//! The refusals every call can meet (400, 401, 403, 429) are added here once, by role,
//! rather than repeated on every handler.

use std::sync::OnceLock;

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder,
};
use utoipa::{Modify, OpenApi, PartialSchema};

use super::schema;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "onestock API",
        version = "1",
        description = "One quantity for the same item in several country stores. JSON in and out under /v1. Every call but /healthz and the OpenAPI document carries `Authorization: Bearer TOKEN`: the operator's token (sellers, offers, orders, /metrics) or a seller's (catalog, listings, uploads, events). Every refusal is `{\"error\": {\"code\", \"message\", \"field\"?}}` with a stable code. What this document cannot say (the rules R1 to R23, the upload files, the events) is in docs/rules.md, docs/uploads.md and docs/api.md of the repository.",
        license(name = "MIT", identifier = "MIT"),
    ),
    servers((url = "/", description = "This server")),
    paths(
        super::healthz,
        super::openapi_json,
        super::openapi_json_root,
        super::metrics,
        super::operator::create_seller,
        super::operator::list_sellers,
        super::catalog::stores,
        super::catalog::create,
        super::catalog::item,
        super::catalog::search,
        super::listings::page,
        super::listings::get,
        super::listings::delete,
        super::listings::ledger,
        super::listings::put,
        super::listings::patch,
        super::listings::close,
        super::listings::relist,
        super::operator::offers,
        super::operator::place_order,
        super::operator::cancel_order,
        super::uploads::create,
        super::uploads::list,
        super::uploads::get,
        super::uploads::report,
        super::events::list,
    ),
    components(schemas(schema::ErrorBody)),
    modifiers(&Refusals),
    security(("bearer" = [])),
    tags(
        (name = "anyone", description = "Calls any token may make, the operator's or a seller's; /healthz and the OpenAPI document need none."),
        (name = "seller", description = "A seller's calls: catalog, listings, uploads, events."),
        (name = "operator", description = "The marketplace operator's calls: sellers, offers, orders."),
    ),
)]
pub struct ApiDoc;

/// The document as JSON text, built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        // Serializing a document of strings and maps cannot fail.
        let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
        text.push('\n');
        text
    })
}

/// Adds the bearer scheme and the refusals of every authenticated call.
struct Refusals;

/// The shared refusals: status, component name, what it means.
const REFUSALS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "INVALID_REQUEST or another 400 code of the error table: the field at fault is named.",
    ),
    (
        "401",
        "Unauthenticated",
        "UNAUTHENTICATED: no token, or one that is not known.",
    ),
    (
        "403",
        "Forbidden",
        "FORBIDDEN: a known token of the wrong role.",
    ),
    (
        "429",
        "RateLimited",
        "RATE_LIMITED (seller tokens, or a seller's full upload queue): try again after Retry-After seconds.",
    ),
];

impl Modify for Refusals {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        for (status, name, description) in REFUSALS {
            let mut response = ResponseBuilder::new().description(*description).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            );
            if *status == "429" {
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(Some(i64::schema()))
                        .description(Some("Seconds to wait before trying again."))
                        .build(),
                );
            }
            components
                .responses
                .insert((*name).to_owned(), RefOr::T(response.build()));
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_refusals(path, operation);
            }
        }
    }
}

/// The calls that need no token at all.
const OPEN_PATHS: &[&str] = &["/healthz", "/openapi.json", "/v1/openapi.json"];

fn add_refusals(path: &str, operation: &mut Operation) {
    if OPEN_PATHS.contains(&path) {
        // An empty list overrides the document's bearer requirement.
        operation.security = Some(Vec::new());
        return;
    }
    for (status, name, _) in REFUSALS {
        operation
            .responses
            .responses
            .entry((*status).to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{catalog, listings, operator};

    /// The committed copy, for readers of the repository and for client generators.
    const COMMITTED: &str = include_str!("../../../../docs/openapi.json");

    #[test]
    fn docs_openapi_json_is_this_document() {
        let generated = document_json();
        if std::env::var_os("ONESTOCK_WRITE_OPENAPI").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
            std::fs::write(path, generated).expect("write docs/openapi.json");
            return;
        }
        assert!(
            COMMITTED == generated,
            "docs/openapi.json is not the document the code derives; write it again with \
             `ONESTOCK_WRITE_OPENAPI=1 cargo test -p onestock --lib openapi`"
        );
    }

    #[test]
    fn every_handler_accepts_the_fields_its_request_type_documents() {
        let same = |fields: &[&str], documented: Vec<String>| {
            assert_eq!(fields.to_vec(), documented, "field list and schema differ");
        };
        same(
            catalog::PRODUCT_FIELDS,
            schema::fields_of::<schema::NewProduct>(),
        );
        same(
            listings::LISTING_FIELDS,
            schema::fields_of::<schema::ListingBody>(),
        );
        same(
            listings::PATCH_FIELDS,
            schema::fields_of::<schema::ListingChange>(),
        );
        same(
            operator::SELLER_FIELDS,
            schema::fields_of::<schema::NewSeller>(),
        );
        same(operator::ORDER_FIELDS, schema::fields_of::<schema::Order>());
        same(
            operator::ORDER_LINE_FIELDS,
            schema::fields_of::<schema::OrderLine>(),
        );
        same(
            &["type", "value"],
            schema::fields_of::<schema::NewIdentifier>(),
        );
        same(
            &["amount", "currency"],
            schema::fields_of::<schema::PriceInput>(),
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_shared_refusals() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).expect("JSON");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1"))
        );
        let put = &doc["paths"]["/v1/listings/{sku}/stores/{store}"]["put"];
        for status in [
            "200", "201", "400", "401", "403", "404", "409", "412", "413", "429",
        ] {
            assert!(put["responses"][status].is_object(), "put lacks {status}");
        }
        assert_eq!(
            doc["paths"]["/healthz"]["get"]["security"],
            serde_json::json!([])
        );
    }
}
