//! Add a product: search the catalog, "Sell yours", the offer form with its "Share your
//! available inventory" section, and "Create a new product".

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use onestock_core::error::{DomainError, ErrorCode, Match};
use onestock_core::model::DetailPage;
use onestock_core::region::Store;
use onestock_core::rules::{
    self, Command, Ctx, ListingInput, ListingView, NewProduct, Outcome, PriceInput, Source,
};
use onestock_core::storage::{StoreResult, Tx};
use onestock_core::types::{Asin, Condition, Fulfillment, SellerId, ShareMode, Sku, StoreCode};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::Pages;
use super::dryrun::{self, Verdict};
use super::error::PageError;
use super::forms::{self, PageForm, PageQuery, enc};
use super::inventory::{done, ok_flash, store_name};
use super::layout::{self, Chrome, Section, StoreChoice};
use super::session::Session;
use super::words;

/// Search results shown at most.
const SEARCH_RESULTS_MAX: usize = 20;
/// Longest search text, in characters (as the API's search).
const SEARCH_CHARS_MAX: usize = 500;
/// Identifier types the form offers (R4).
const IDENTIFIER_TYPES: [&str; 4] = ["UPC", "EAN", "GTIN", "ISBN"];

fn chrome<'a>(pages: &'a Pages, session: &'a Session, store: &Store) -> Chrome<'a> {
    Chrome {
        pages,
        session,
        section: Section::AddProduct,
        store: StoreChoice::One(store.code.clone()),
        path: "/add-product",
        all_stores: false,
        flash: pages.sessions.take_flash(session),
    }
}

fn the_store<'r>(
    pages: &'r Pages,
    session: &Session,
    asked: Option<&str>,
) -> Result<&'r Store, PageError> {
    let region = pages.app.service.region();
    layout::choose_store(pages, session, asked)
        .one(region)
        .ok_or_else(|| PageError::bad_request("This region has no store."))
}

fn identifiers_text(p: &DetailPage) -> String {
    p.identifiers
        .iter()
        .map(|i| format!("{} {}", i.kind, i.value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A "Sell yours" button: opens the offer form for the ASIN in the store.
fn sell_yours(asin: &str, store: &str) -> Markup {
    html! {
        form.inline method="get" action="/add-product/offer" {
            input type="hidden" name="asin" value=(asin);
            input type="hidden" name="store" value=(store);
            button.primary type="submit" { "Sell yours" }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    store: Option<String>,
    q: Option<String>,
}

/// `GET /add-product?store=&q=`
pub async fn search(
    State(pages): State<Pages>,
    session: Session,
    PageQuery(q): PageQuery<SearchQuery>,
) -> Result<Response, PageError> {
    let store = the_store(&pages, &session, q.store.as_deref())?;
    let text: String =
        q.q.as_deref()
            .unwrap_or("")
            .trim()
            .chars()
            .take(SEARCH_CHARS_MAX)
            .collect();
    let results = if text.is_empty() {
        Vec::new()
    } else {
        let (t, code) = (text.clone(), store.code.clone());
        pages
            .app
            .service
            .read(move |tx, _| {
                let mut found: Vec<DetailPage> = Vec::new();
                // The search box takes keywords, an ASIN or a product identifier.
                if let Ok(asin) = Asin::parse(&t)
                    && let Some(p) = tx.page(&asin, &code)?
                {
                    found.push(p);
                }
                let compact: String = t
                    .chars()
                    .filter(|c| !c.is_whitespace() && *c != '-')
                    .collect();
                if compact.len() >= 8
                    && compact
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == 'X' || c == 'x')
                {
                    for p in tx.pages_by_identifier(&compact.to_ascii_uppercase())? {
                        if p.store == code && !found.iter().any(|f| f.asin == p.asin) {
                            found.push(p);
                        }
                    }
                }
                for p in tx.search_pages(&code, &t, SEARCH_RESULTS_MAX)? {
                    if !found.iter().any(|f| f.asin == p.asin) {
                        found.push(p);
                    }
                }
                found.truncate(SEARCH_RESULTS_MAX);
                Ok(found)
            })
            .await?
    };
    let body = html! {
        h1 { "Add a product" }
        div.card {
            form method="get" action="/add-product" {
                input type="hidden" name="store" value=(store.code.as_str());
                div.field {
                    label for="q" { "Search the catalog" }
                    input #q type="search" name="q" value=(text) placeholder="Keywords, ASIN, UPC, EAN, GTIN or ISBN";
                }
                button.primary type="submit" { "Search" }
            }
            p { "Not in the catalog? " a href={ "/add-product/new?store=" (store.code.as_str()) } { "Create a new product" } }
        }
        @if !text.is_empty() {
            h2 { "Results in " (store.name) }
            @if results.is_empty() {
                div.card { p { "No product in " (store.name) " matches " strong { (text) } "." } }
            } @else {
                div.card.results {
                    @for p in &results {
                        div.result {
                            div {
                                h3 { (p.title) }
                                dl.facts {
                                    dt { "Brand" } dd { (p.brand) }
                                    dt { "ASIN" } dd { (p.asin.as_str()) }
                                    dt { "Identifiers" } dd { @if p.identifiers.is_empty() { "None" } @else { (identifiers_text(p)) } }
                                }
                            }
                            div { (sell_yours(p.asin.as_str(), store.code.as_str())) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Add a product", chrome(&pages, &session, store), body).into_response())
}

/// What the "Share your available inventory" section shows for a SKU in a store.
struct ShareState {
    /// The SKU's listings on this ASIN in other stores.
    elsewhere: Vec<ListingView>,
    /// Whether the SKU is already listed in this store.
    listed_here: bool,
    /// The shared pool's listing (its condition and quantity), when there is one.
    pool: Option<ListingView>,
    /// Why "Existing offer" is not possible, in the rules' own words.
    refused: Option<DomainError>,
}

impl ShareState {
    fn applies(&self) -> bool {
        !self.elsewhere.is_empty() && !self.listed_here
    }
}

/// Reads the SKU and asks the rules whether it may join the shared pool in this store
/// (a dry run of the same `PutListing` the form would send with "Existing offer").
#[allow(clippy::too_many_arguments)]
fn share_state(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    seller: &SellerId,
    sku: &Sku,
    asin: &Asin,
    store: &Store,
    fulfillment: Fulfillment,
) -> StoreResult<ShareState> {
    let state = tx.load_sku(seller, sku)?;
    let views = rules::sku_views(ctx.region, &state, ctx.now);
    let listed_here = views.iter().any(|v| v.store == store.code);
    let elsewhere: Vec<ListingView> = views
        .iter()
        .filter(|v| v.store != store.code && &v.asin == asin)
        .cloned()
        .collect();
    let pool = views
        .iter()
        .find(|v| v.share == ShareMode::Existing)
        .cloned();
    let refused = if elsewhere.is_empty() || listed_here {
        None
    } else {
        let probe = Command::PutListing {
            seller: seller.clone(),
            sku: sku.clone(),
            store: store.code.clone(),
            input: ListingInput {
                asin: Some(asin.clone()),
                // Any valid price in the store's currency: the question is the sharing.
                price: Some(PriceInput {
                    amount: Decimal::ONE,
                    currency: store.currency.clone(),
                }),
                share: Some(ShareMode::Existing),
                fulfillment: Some(fulfillment),
                ..ListingInput::default()
            },
            source: Source::Api,
            if_match: None,
        };
        match dryrun::judge(tx, ctx, &probe)? {
            Verdict::Taken => None,
            Verdict::Refused(e) => Some(e),
        }
    };
    Ok(ShareState {
        elsewhere,
        listed_here,
        pool,
        refused,
    })
}

/// The section, or nothing when the SKU is not listed on this ASIN elsewhere.
fn share_section(
    region: &onestock_core::region::Region,
    s: &ShareState,
    chosen: Option<ShareMode>,
) -> Markup {
    if !s.applies() {
        return html! {};
    }
    let existing_possible = s.refused.is_none() && s.pool.is_some();
    let chosen = match chosen {
        Some(ShareMode::Existing) if existing_possible => ShareMode::Existing,
        Some(ShareMode::Unique) => ShareMode::Unique,
        _ if existing_possible => ShareMode::Existing,
        _ => ShareMode::Unique,
    };
    let names: Vec<String> = s
        .elsewhere
        .iter()
        .map(|v| store_name(region, &v.store))
        .collect();
    let pool_condition = s
        .pool
        .as_ref()
        .map(|p| p.condition.as_str())
        .unwrap_or("new");
    let pool_quantity = s.pool.as_ref().map(|p| p.quantity).unwrap_or(0);
    html! {
        section.share #share-section role="radiogroup" aria-labelledby="share-heading"
            data-pool-condition=(pool_condition) data-pool-quantity=(pool_quantity) {
            h3 #share-heading { "Share your available inventory" }
            p { "This SKU is already listed on this product in " (names.join(", ")) "." }
            label.choice {
                input type="radio" name="share" value="unique" checked[chosen == ShareMode::Unique];
                " " strong { "Unique offer" } " — a quantity and condition of its own in this store."
            }
            @if existing_possible {
                @if let Some(p) = &s.pool {
                    label.choice {
                        input type="radio" name="share" value="existing" checked[chosen == ShareMode::Existing];
                        " " strong { "Existing offer" } " — share the quantity and condition of "
                        (words::codes(&p.pool_stores)) ": " (words::condition(p.condition)) ", quantity " (p.quantity)
                        ". They cannot be edited here; only the price and dates are this store's."
                    }
                }
            } @else if let Some(e) = &s.refused {
                p.notice.info #share-reason {
                    "Existing offer is not possible here: " strong.code { (e.code.as_str()) } " " (e.message)
                }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct OfferQuery {
    #[serde(default)]
    asin: String,
    store: Option<String>,
    #[serde(default)]
    sku: String,
    #[serde(default)]
    fulfillment: String,
    #[serde(default)]
    created: String,
}

/// What the offer form shows again after a refusal.
#[derive(Default, Clone)]
struct OfferValues {
    sku: String,
    condition: String,
    price: String,
    quantity: String,
    fulfillment: String,
    start: String,
    share: Option<ShareMode>,
}

/// A refusal, put next to the field at fault.
struct FieldError {
    field: &'static str,
    error: DomainError,
}

fn field_of(e: &DomainError) -> &'static str {
    match e.field.as_deref().unwrap_or("") {
        "sku" => "sku",
        "price" | "price.currency" | "price.amount" => "price",
        "quantity" => "quantity",
        "condition" => "condition",
        "share" => "share",
        "fulfillment" => "fulfillment",
        "start_selling_at" => "start",
        "title" => "title",
        "brand" => "brand",
        "description" => "description",
        "language" => "language",
        "product_type" => "product_type",
        f if f.starts_with("identifier") => "identifier",
        _ => "",
    }
}

fn error_at(err: Option<&FieldError>, field: &str) -> Markup {
    html! {
        @if let Some(fe) = err.filter(|fe| fe.field == field) {
            p.field-error role="alert" { strong.code { (fe.error.code.as_str()) } " " (fe.error.message) }
        }
    }
}

fn invalid(err: Option<&FieldError>, field: &str) -> Option<&'static str> {
    err.filter(|fe| fe.field == field).map(|_| "true")
}

struct OfferPage<'a> {
    store: &'a Store,
    asin: &'a Asin,
    title: String,
    brand: String,
    values: OfferValues,
    share: Option<ShareState>,
    error: Option<FieldError>,
    info: Option<String>,
}

fn offer_page(pages: &Pages, session: &Session, p: OfferPage<'_>) -> Markup {
    let region = pages.app.service.region();
    let err = p.error.as_ref();
    let v = &p.values;
    let locked = p.share.as_ref().is_some_and(|s| {
        s.applies()
            && s.refused.is_none()
            && s.pool.is_some()
            && !matches!(v.share, Some(ShareMode::Unique))
    });
    let pool = p
        .share
        .as_ref()
        .and_then(|s| s.pool.clone())
        .filter(|_| locked);
    let condition_value = pool
        .as_ref()
        .map(|p| p.condition.as_str().to_owned())
        .unwrap_or_else(|| {
            if v.condition.is_empty() {
                "new".into()
            } else {
                v.condition.clone()
            }
        });
    let quantity_value = pool
        .as_ref()
        .map(|p| p.quantity.to_string())
        .unwrap_or_else(|| v.quantity.clone());
    let marketplace = v.fulfillment == "marketplace";
    let body = html! {
        h1 { "Add a product" }
        div.card {
            h2 { (p.title) }
            p.muted { (p.brand) " · ASIN " (p.asin.as_str()) " · " (p.store.name) " (" (p.store.code) ")" }
            @if let Some(info) = &p.info { div.notice.info role="status" { (info) } }
            @if let Some(fe) = err.filter(|fe| fe.field.is_empty()) {
                div.notice.error role="alert" { strong.code { (fe.error.code.as_str()) } " " (fe.error.message) }
            }
            form #offer-form method="post" action="/add-product/offer" {
                (layout::csrf(session))
                input type="hidden" name="asin" value=(p.asin.as_str());
                input type="hidden" name="store" value=(p.store.code.as_str());
                input type="hidden" name="locked" value=(if locked { "1" } else { "" });
                div.field {
                    label for="sku" { "SKU" }
                    input #sku type="text" name="sku" value=(v.sku) maxlength="40" required aria-invalid=[invalid(err, "sku")];
                    p.hint { "Your own code for this item, 1 to 40 characters." }
                    (error_at(err, "sku"))
                }
                div #share-slot {
                    @if let Some(s) = &p.share { (share_section(region, s, v.share)) }
                    (error_at(err, "share"))
                }
                div.field {
                    label for="condition" { "Condition" }
                    select #condition name="condition" disabled[locked] aria-invalid=[invalid(err, "condition")] {
                        @for c in Condition::ALL {
                            option value=(c.as_str()) selected[condition_value == c.as_str()] { (words::condition(c)) }
                        }
                    }
                    p.pool-note data-pool-note hidden[!locked] { "The shared pool's condition: change it on the SKU's page." }
                    (error_at(err, "condition"))
                }
                div.field {
                    label for="price" { "Price" }
                    span.with-unit {
                        input #price type="text" inputmode="decimal" name="price" value=(v.price) placeholder="19.99" aria-invalid=[invalid(err, "price")];
                        span.unit { (p.store.currency) }
                    }
                    p.hint { "In " (p.store.currency) ", the currency of " (p.store.name) "." }
                    (error_at(err, "price"))
                }
                div.field {
                    label for="quantity" { "Quantity" }
                    input #quantity type="number" min="0" step="1" name="quantity" value=(quantity_value) disabled[locked] aria-invalid=[invalid(err, "quantity")];
                    p.pool-note data-pool-note hidden[!locked] { "The shared pool's quantity: a sale in any of its stores lowers it everywhere." }
                    (error_at(err, "quantity"))
                }
                div.field {
                    label for="fulfillment" { "Fulfillment" }
                    select #fulfillment name="fulfillment" aria-invalid=[invalid(err, "fulfillment")] {
                        option value="merchant" selected[!marketplace] { "Fulfilled by merchant" }
                        option value="marketplace" selected[marketplace] { "Fulfilled by marketplace" }
                    }
                    (error_at(err, "fulfillment"))
                }
                div.field {
                    label for="start" { "Start selling date" }
                    input #start type="date" name="start_selling_at" value=(v.start) aria-invalid=[invalid(err, "start")];
                    p.hint { "Optional: not for sale in this store before this date." }
                    (error_at(err, "start"))
                }
                button.primary type="submit" { "Save and continue" }
            }
        }
    };
    layout::page("Add a product", chrome(pages, session, p.store), body)
}

/// Reads the product's title and brand (this store's page, else any) and the share
/// section's state when the SKU is known.
async fn offer_context(
    pages: &Pages,
    session: &Session,
    asin: &Asin,
    store: &Store,
    sku: Option<Sku>,
    fulfillment: Fulfillment,
) -> Result<(String, String, Option<ShareState>, Vec<StoreCode>), PageError> {
    let (a, st, seller) = (asin.clone(), store.clone(), session.seller.clone());
    let found = pages
        .app
        .service
        .read(move |tx, ctx| {
            let all = tx.pages_of_asin(&a)?;
            let page = all
                .iter()
                .find(|p| p.store == st.code)
                .or(all.first())
                .cloned();
            let others: Vec<StoreCode> = all
                .iter()
                .filter(|p| p.store != st.code)
                .map(|p| p.store.clone())
                .collect();
            let share = match &sku {
                Some(s) => Some(share_state(tx, ctx, &seller, s, &a, &st, fulfillment)?),
                None => None,
            };
            Ok((page, share, others))
        })
        .await?;
    let (page, share, others) = found;
    let page = page.ok_or_else(|| {
        PageError::from(DomainError::not_found(format!(
            "There is no product with ASIN {asin}."
        )))
    })?;
    Ok((page.title, page.brand, share, others))
}

fn parse_fulfillment(raw: &str) -> Fulfillment {
    Fulfillment::parse(raw).unwrap_or(Fulfillment::Merchant)
}

/// `GET /add-product/offer?asin=&store=&sku=`: the offer form ("Sell yours", "List in
/// another store").
pub async fn offer_form(
    State(pages): State<Pages>,
    session: Session,
    PageQuery(q): PageQuery<OfferQuery>,
) -> Result<Response, PageError> {
    let asin = Asin::parse(&q.asin)?;
    let store = the_store(&pages, &session, q.store.as_deref())?;
    let sku = Sku::parse(q.sku.trim()).ok();
    let fulfillment = parse_fulfillment(&q.fulfillment);
    let (title, brand, share, others) =
        offer_context(&pages, &session, &asin, store, sku, fulfillment).await?;
    let region = pages.app.service.region();
    let info = match q.created.as_str() {
        "matched" if !others.is_empty() => {
            let names: Vec<String> = others.iter().map(|s| store_name(region, s)).collect();
            Some(format!(
                "This product's page was added to {} from its page in {}: the same product, the same ASIN {asin}. Now make your offer.",
                store.name,
                names.join(", ")
            ))
        }
        "new" => Some(format!(
            "Product created: ASIN {asin} in {}. Now make your offer.",
            store.name
        )),
        _ => None,
    };
    let values = OfferValues {
        sku: q.sku.trim().to_owned(),
        fulfillment: fulfillment.as_str().to_owned(),
        ..OfferValues::default()
    };
    let page = OfferPage {
        store,
        asin: &asin,
        title,
        brand,
        values,
        share,
        error: None,
        info,
    };
    Ok(offer_page(&pages, &session, page).into_response())
}

/// `GET /add-product/share?asin=&store=&sku=&fulfillment=`: the section alone, for the
/// script that fetches it on leaving the SKU field.
pub async fn share_fragment(
    State(pages): State<Pages>,
    session: Session,
    PageQuery(q): PageQuery<OfferQuery>,
) -> Result<Response, PageError> {
    let asin = Asin::parse(&q.asin)?;
    let region = pages.app.service.region();
    let store = region
        .store(q.store.as_deref().unwrap_or(""))
        .map_err(PageError::from)?
        .clone();
    let Ok(sku) = Sku::parse(q.sku.trim()) else {
        return Ok(html! {}.into_response());
    };
    let fulfillment = parse_fulfillment(&q.fulfillment);
    let seller = session.seller.clone();
    let st = store.clone();
    let state = pages
        .app
        .service
        .read(move |tx, ctx| share_state(tx, ctx, &seller, &sku, &asin, &st, fulfillment))
        .await?;
    Ok(share_section(region, &state, None).into_response())
}

#[derive(Deserialize)]
pub struct OfferForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    asin: String,
    #[serde(default)]
    store: String,
    #[serde(default)]
    sku: String,
    #[serde(default)]
    condition: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    fulfillment: String,
    #[serde(default)]
    start_selling_at: String,
    share: Option<String>,
    #[serde(default)]
    locked: String,
}

/// `POST /add-product/offer`: "Save and continue" (the API's `PUT` of the listing).
pub async fn offer_save(
    State(pages): State<Pages>,
    session: Session,
    PageForm(f): PageForm<OfferForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&f.csrf)?;
    let region = pages.app.service.region();
    let asin = Asin::parse(&f.asin)?;
    let store = region.store(&f.store).map_err(PageError::from)?.clone();
    let fulfillment = parse_fulfillment(&f.fulfillment);
    let share = f.share.as_deref().and_then(ShareMode::parse);
    let values = OfferValues {
        sku: f.sku.trim().to_owned(),
        condition: f.condition.clone(),
        price: f.price.clone(),
        quantity: f.quantity.clone(),
        fulfillment: fulfillment.as_str().to_owned(),
        start: f.start_selling_at.clone(),
        share,
    };
    let again = |share_state: Option<ShareState>,
                 title: String,
                 brand: String,
                 error: Option<DomainError>,
                 info: Option<String>| {
        let status = match &error {
            Some(e) => crate::http::status_of(e.code),
            None => StatusCode::OK,
        };
        let page = OfferPage {
            store: &store,
            asin: &asin,
            title,
            brand,
            values: values.clone(),
            share: share_state,
            error: error.map(|e| FieldError {
                field: field_of(&e),
                error: e,
            }),
            info,
        };
        (status, offer_page(&pages, &session, page)).into_response()
    };
    let sku = match forms::sku(values.sku.as_str()) {
        Ok(s) => s,
        Err(e) => {
            let (title, brand, _, _) =
                offer_context(&pages, &session, &asin, &store, None, fulfillment).await?;
            return Ok(again(None, title, brand, Some(e), None));
        }
    };
    let (title, brand, share_st, _) = offer_context(
        &pages,
        &session,
        &asin,
        &store,
        Some(sku.clone()),
        fulfillment,
    )
    .await?;
    let applies = share_st.as_ref().is_some_and(ShareState::applies);
    if applies && share.is_none() {
        return Ok(again(
            share_st,
            title,
            brand,
            None,
            Some("This SKU is already listed on this product in another store: choose how to share its inventory below, then Save and continue.".into()),
        ));
    }
    if applies && share == Some(ShareMode::Unique) && f.locked == "1" {
        return Ok(again(
            share_st,
            title,
            brand,
            None,
            Some("Unique offer: enter the condition and quantity of this store's own offer, then Save and continue.".into()),
        ));
    }
    let joining = applies && share == Some(ShareMode::Existing);
    let price = match forms::price(&f.price, &store.currency) {
        Ok(p) => p,
        Err(e) => return Ok(again(share_st, title, brand, Some(e), None)),
    };
    let (condition, quantity) = if joining {
        // The pool's figures: shown, not editable, not sent.
        (None, None)
    } else {
        let condition = Condition::parse(&f.condition);
        match forms::quantity(&f.quantity) {
            Ok(q) => (condition, q),
            Err(e) => return Ok(again(share_st, title, brand, Some(e), None)),
        }
    };
    let start = match forms::start_date(&f.start_selling_at) {
        Ok(d) => d.map(Some),
        Err(e) => return Ok(again(share_st, title, brand, Some(e), None)),
    };
    let cmd = Command::PutListing {
        seller: session.seller.clone(),
        sku: sku.clone(),
        store: store.code.clone(),
        input: ListingInput {
            asin: Some(asin.clone()),
            price,
            share: if applies { share } else { None },
            condition,
            quantity,
            fulfillment: Some(fulfillment),
            start_selling_at: start,
        },
        source: Source::Api,
        if_match: None,
    };
    match pages.app.service.execute(cmd).await {
        Ok(Outcome::Listing {
            state, store: code, ..
        }) => {
            let service = &pages.app.service;
            let text = match rules::listing_view(region, &state, &code, service.now()) {
                Some(v) => format!(
                    "Listed {sku} in {}: {} {}, quantity {}, {}.",
                    store_name(region, &code),
                    onestock_core::types::format_price(&v.price),
                    v.currency,
                    v.quantity,
                    words::sharing(&v)
                ),
                None => format!("Listed {sku} in {}.", store_name(region, &code)),
            };
            let to = format!("/sku?sku={}", enc(sku.as_str()));
            Ok(done(&pages, &session, ok_flash(text, None), &to))
        }
        Ok(_) => Ok(Redirect::to(&format!("/sku?sku={}", enc(sku.as_str()))).into_response()),
        Err(crate::service::AppError::Domain(e)) => {
            Ok(again(share_st, title, brand, Some(e), None))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default, Clone)]
pub struct NewProductForm {
    #[serde(default)]
    csrf: String,
    store: Option<String>,
    #[serde(default)]
    product_type: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    brand: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    identifier_type: String,
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    force_new: String,
}

fn new_product_page(
    pages: &Pages,
    session: &Session,
    store: &Store,
    v: &NewProductForm,
    error: Option<&DomainError>,
    create_anyway: bool,
) -> Markup {
    let fe = error.map(|e| FieldError {
        field: field_of(e),
        error: e.clone(),
    });
    let err = fe.as_ref();
    let matches: &[Match] = error.map(|e| e.matches.as_slice()).unwrap_or(&[]);
    let body = html! {
        h1 { "Create a new product" }
        div.card {
            p.muted { "A new detail page in " (store.name) " (" (store.code) "), written in a language of that store." }
            @if let Some(fe) = err.filter(|fe| fe.field.is_empty()) {
                div.notice.error role="alert" { strong.code { (fe.error.code.as_str()) } " " (fe.error.message) }
            }
            @if !matches.is_empty() {
                div.card.results #matches {
                    h3 { "Matching products" }
                    @for m in matches {
                        div.result {
                            div { strong { (m.title) } div.muted { "ASIN " (m.asin) " · " (m.store) } }
                            div { (sell_yours(&m.asin, &m.store)) }
                        }
                    }
                    @if create_anyway {
                        form method="post" action="/add-product/new" {
                            (layout::csrf(session))
                            input type="hidden" name="store" value=(store.code.as_str());
                            input type="hidden" name="product_type" value=(v.product_type);
                            input type="hidden" name="title" value=(v.title);
                            input type="hidden" name="brand" value=(v.brand);
                            input type="hidden" name="description" value=(v.description);
                            input type="hidden" name="language" value=(v.language);
                            input type="hidden" name="identifier_type" value=(v.identifier_type);
                            input type="hidden" name="identifier" value=(v.identifier);
                            input type="hidden" name="force_new" value="1";
                            p.muted { "Not the same product? Create yours as a new product." }
                            button.secondary type="submit" { "Create anyway" }
                        }
                    }
                }
            }
            form method="post" action="/add-product/new" {
                (layout::csrf(session))
                input type="hidden" name="store" value=(store.code.as_str());
                div.field {
                    label for="product_type" { "Product type" }
                    input #product_type type="text" name="product_type" value=(v.product_type) placeholder="KITCHEN" required aria-invalid=[invalid(err, "product_type")];
                    (error_at(err, "product_type"))
                }
                div.field {
                    label for="title" { "Title" }
                    input #title type="text" name="title" value=(v.title) required aria-invalid=[invalid(err, "title")];
                    (error_at(err, "title"))
                }
                div.field {
                    label for="brand" { "Brand" }
                    input #brand type="text" name="brand" value=(v.brand) required aria-invalid=[invalid(err, "brand")];
                    (error_at(err, "brand"))
                }
                div.field {
                    label for="description" { "Description" }
                    textarea #description name="description" rows="4" aria-invalid=[invalid(err, "description")] { (v.description) }
                    (error_at(err, "description"))
                }
                div.field {
                    label for="language" { "Language" }
                    select #language name="language" aria-invalid=[invalid(err, "language")] {
                        @for l in &store.languages {
                            option value=(l) selected[v.language == *l] { (words::language(l)) }
                        }
                    }
                    (error_at(err, "language"))
                }
                div.grid2 {
                    div.field {
                        label for="identifier_type" { "Identifier type" }
                        select #identifier_type name="identifier_type" {
                            @for t in IDENTIFIER_TYPES {
                                option value=(t) selected[v.identifier_type == t] { (t) }
                            }
                        }
                    }
                    div.field {
                        label for="identifier" { "Identifier" }
                        input #identifier type="text" name="identifier" value=(v.identifier) inputmode="numeric" aria-invalid=[invalid(err, "identifier")];
                        p.hint { "Optional: the UPC, EAN, GTIN or ISBN printed on the product." }
                        (error_at(err, "identifier"))
                    }
                }
                button.primary type="submit" { "Save and continue" }
            }
        }
    };
    let chrome = Chrome {
        pages,
        session,
        section: Section::AddProduct,
        store: StoreChoice::One(store.code.clone()),
        path: "/add-product/new",
        all_stores: false,
        flash: pages.sessions.take_flash(session),
    };
    layout::page("Create a new product", chrome, body)
}

/// `GET /add-product/new?store=`
pub async fn new_form(
    State(pages): State<Pages>,
    session: Session,
    PageQuery(q): PageQuery<NewProductForm>,
) -> Result<Response, PageError> {
    let store = the_store(&pages, &session, q.store.as_deref())?;
    Ok(new_product_page(
        &pages,
        &session,
        store,
        &NewProductForm::default(),
        None,
        false,
    )
    .into_response())
}

/// `POST /add-product/new`: the API's `POST /v1/catalog/items`, then the offer form.
pub async fn new_save(
    State(pages): State<Pages>,
    session: Session,
    PageForm(f): PageForm<NewProductForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&f.csrf)?;
    let region = pages.app.service.region();
    let store = region
        .store(f.store.as_deref().unwrap_or(""))
        .map_err(PageError::from)?
        .clone();
    let identifiers = if f.identifier.trim().is_empty() {
        Vec::new()
    } else {
        vec![(
            f.identifier_type.trim().to_owned(),
            f.identifier.trim().to_owned(),
        )]
    };
    let product = NewProduct {
        store: store.code.to_string(),
        product_type: f.product_type.clone(),
        title: f.title.clone(),
        brand: f.brand.clone(),
        description: f.description.clone(),
        language: f.language.clone(),
        identifiers,
        force_new: f.force_new == "1",
    };
    match pages
        .app
        .service
        .execute(Command::CreateProduct(product.clone()))
        .await
    {
        Ok(Outcome::Product {
            asin,
            store: code,
            matched,
        }) => {
            let created = if matched { "matched" } else { "new" };
            Ok(Redirect::to(&format!(
                "/add-product/offer?asin={}&store={}&created={created}",
                asin.as_str(),
                code.as_str()
            ))
            .into_response())
        }
        Ok(_) => Err(PageError::bad_request("The product could not be created.")),
        Err(crate::service::AppError::Domain(e)) => {
            // "Create anyway" only where the rules would take the same product with
            // force_new (a near-identical title, no identifier in common).
            let create_anyway = if e.code == ErrorCode::PossibleMatch && !product.force_new {
                let probe = Command::CreateProduct(NewProduct {
                    force_new: true,
                    ..product
                });
                matches!(
                    pages
                        .app
                        .service
                        .read(move |tx, ctx| dryrun::judge(tx, ctx, &probe))
                        .await?,
                    Verdict::Taken
                )
            } else {
                false
            };
            let status = crate::http::status_of(e.code);
            let e = in_page_words(e, &store, create_anyway);
            Ok((
                status,
                new_product_page(&pages, &session, &store, &f, Some(&e), create_anyway),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The core's near-title `POSSIBLE_MATCH` tells an API client to send `force_new`; on this
/// page the way on is a button: "Sell yours" on a match, or "Create anyway" where it is
/// offered.
fn in_page_words(mut e: DomainError, store: &Store, create_anyway: bool) -> DomainError {
    if e.code == ErrorCode::PossibleMatch && e.message.contains("force_new") {
        let anyway = if create_anyway {
            ", or \"Create anyway\" to create a new product"
        } else {
            ""
        };
        e.message = format!(
            "Store {} has a product of the same brand with nearly the same title; choose \"Sell yours\" on it below{anyway}.",
            store.code
        );
    }
    e
}
