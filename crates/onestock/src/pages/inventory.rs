//! Manage Inventory: the seller's listings in the chosen store (or all stores), with
//! filters, search, pages of 50, in-place quantity and price changes and the row
//! actions (close, relist, edit details, delete product and listing).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use onestock_core::error::{DomainError, ErrorCode};
use onestock_core::region::Region;
use onestock_core::rules::{self, Command, ListingPatch, ListingView, Outcome, Source};
use onestock_core::types::{SellerId, Sku, StoreCode, format_price};
use serde::Deserialize;

use super::Pages;
use super::error::PageError;
use super::forms::{self, PageForm, PageQuery, enc};
use super::layout::{self, Chrome, Section, StoreChoice};
use super::session::{self, Flash, Session};
use super::words;

/// Rows on one page of Manage Inventory (SPEC 7: pages of 50).
pub const PAGE_ROWS: usize = 50;
/// SKUs read per storage call while filling a page.
const SKUS_PER_READ: usize = 200;
/// SKUs one page request looks at, at most, while filtering or searching: bounds the
/// cost of a search that matches little in a large inventory. When reached, the page
/// shows what it found and "Next" goes on from there.
const SCAN_SKUS_MAX: usize = 2_000;
/// Pages remembered for "Previous"; deeper than that, "Previous" starts again at the
/// first page (keeps the address short).
const TRAIL_PAGES_MAX: usize = 100;
/// Longest search text, in characters.
const SEARCH_CHARS_MAX: usize = 200;

/// "United States (US)".
pub fn store_name(region: &Region, code: &StoreCode) -> String {
    match region.store(code.as_str()) {
        Ok(s) => format!("{} ({})", s.name, s.code),
        Err(_) => code.to_string(),
    }
}

/// The key of a row, for messages that belong to it.
pub fn row_key(sku: &Sku, store: &StoreCode) -> String {
    format!("{}\u{1f}{}", sku.as_str(), store.as_str())
}

/// Leaves a message for the next page and goes there.
pub fn done(pages: &Pages, session: &Session, flash: Flash, to: &str) -> Response {
    pages.sessions.set_flash(session, flash);
    Redirect::to(&forms::local_path(to)).into_response()
}

pub fn ok_flash(text: impl Into<String>, target: Option<String>) -> Flash {
    Flash {
        ok: true,
        code: None,
        text: text.into(),
        target,
    }
}

pub fn error_flash(e: &DomainError, target: Option<String>) -> Flash {
    Flash {
        ok: false,
        code: Some(e.code.as_str().to_owned()),
        text: e.message.clone(),
        target,
    }
}

/// A command's refusal as a flash; a failure of the server as an error page.
fn refusal(e: crate::service::AppError, target: Option<String>) -> Result<Flash, PageError> {
    match e {
        crate::service::AppError::Domain(d) => Ok(error_flash(&d, target)),
        other => Err(other.into()),
    }
}

#[derive(Deserialize, Default)]
pub struct InventoryQuery {
    store: Option<String>,
    status: Option<String>,
    q: Option<String>,
    after: Option<String>,
    trail: Option<String>,
}

/// One row of the table: a SKU with its listings in the stores shown.
struct Row {
    sku: Sku,
    title: String,
    asin: String,
    views: Vec<ListingView>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StatusFilter {
    All,
    Active,
    Inactive,
}

impl StatusFilter {
    fn parse(raw: Option<&str>) -> StatusFilter {
        match raw {
            Some("active") => StatusFilter::Active,
            Some("inactive") => StatusFilter::Inactive,
            _ => StatusFilter::All,
        }
    }
    fn value(self) -> &'static str {
        match self {
            StatusFilter::All => "all",
            StatusFilter::Active => "active",
            StatusFilter::Inactive => "inactive",
        }
    }
}

fn decode_sku(raw: &str) -> Option<Sku> {
    let bytes = hex::decode(raw.trim()).ok()?;
    Sku::parse(&String::from_utf8(bytes).ok()?).ok()
}

/// One page of rows after `after` (exclusive), and where the next page starts.
fn read_rows(
    tx: &mut dyn onestock_core::storage::Tx,
    ctx: onestock_core::rules::Ctx<'_>,
    seller: &SellerId,
    store: Option<&StoreCode>,
    status: StatusFilter,
    search: &str,
    after: Option<Sku>,
) -> onestock_core::storage::StoreResult<(Vec<Row>, Option<Sku>)> {
    let needle = search.to_lowercase();
    let mut rows: Vec<Row> = Vec::new();
    let mut from = after.clone();
    let mut scanned = 0usize;
    let mut last_seen: Option<Sku> = None;
    loop {
        let chunk = tx.skus_from(seller, from.as_ref(), SKUS_PER_READ)?;
        let chunk_len = chunk.len();
        for state in chunk {
            if after.as_ref().is_some_and(|a| &state.sku <= a)
                || last_seen.as_ref().is_some_and(|l| &state.sku <= l)
            {
                continue;
            }
            scanned += 1;
            last_seen = Some(state.sku.clone());
            let mut views = rules::sku_views(ctx.region, &state, ctx.now);
            if let Some(s) = store {
                views.retain(|v| &v.store == s);
            }
            let keep = match status {
                StatusFilter::All => !views.is_empty(),
                StatusFilter::Active => views.iter().any(|v| v.active),
                StatusFilter::Inactive => views.iter().any(|v| !v.active),
            };
            if !keep {
                if scanned >= SCAN_SKUS_MAX {
                    return Ok((rows, last_seen));
                }
                continue;
            }
            let Some(first) = views.first() else { continue };
            let title = tx
                .page(&first.asin, &first.store)?
                .map(|p| p.title)
                .unwrap_or_default();
            if !needle.is_empty()
                && !state.sku.as_str().to_lowercase().contains(&needle)
                && !title.to_lowercase().contains(&needle)
            {
                if scanned >= SCAN_SKUS_MAX {
                    return Ok((rows, last_seen));
                }
                continue;
            }
            if rows.len() == PAGE_ROWS {
                let next = rows.last().map(|r| r.sku.clone());
                return Ok((rows, next));
            }
            rows.push(Row {
                sku: state.sku.clone(),
                title,
                asin: first.asin.to_string(),
                views,
            });
            if scanned >= SCAN_SKUS_MAX {
                return Ok((rows, last_seen));
            }
        }
        if chunk_len < SKUS_PER_READ {
            return Ok((rows, None));
        }
        from = last_seen.clone();
    }
}

fn inventory_href(store: &StoreChoice, status: StatusFilter, q: &str) -> String {
    let mut h = format!("/?store={}&status={}", enc(store.value()), status.value());
    if !q.is_empty() {
        h.push_str(&format!("&q={}", enc(q)));
    }
    h
}

/// `GET /`: the sign-in form without a session, Manage Inventory with one.
pub async fn page(
    State(pages): State<Pages>,
    headers: HeaderMap,
    PageQuery(q): PageQuery<InventoryQuery>,
) -> Result<Response, PageError> {
    let Some(session) = session::current(&pages, &headers) else {
        return Ok(session::sign_in_page(StatusCode::OK, None));
    };
    let choice = layout::choose_store(&pages, &session, q.store.as_deref());
    let status = StatusFilter::parse(q.status.as_deref());
    let search: String =
        q.q.as_deref()
            .unwrap_or("")
            .trim()
            .chars()
            .take(SEARCH_CHARS_MAX)
            .collect();
    let after_raw = q.after.clone().unwrap_or_default();
    let after = decode_sku(&after_raw);
    let trail: Vec<String> = q
        .trail
        .as_deref()
        .unwrap_or("")
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let seller = session.seller.clone();
    let store_filter = match &choice {
        StoreChoice::All => None,
        StoreChoice::One(c) => Some(c.clone()),
    };
    let text = search.clone();
    let (rows, next) = pages
        .app
        .service
        .read(move |tx, ctx| {
            read_rows(
                tx,
                ctx,
                &seller,
                store_filter.as_ref(),
                status,
                &text,
                after,
            )
        })
        .await?;
    let region = pages.app.service.region();
    let mut flash = pages.sessions.take_flash(&session);
    // A message about a row that is not on this page goes to the top.
    if let Some(f) = flash.as_mut()
        && let Some(t) = &f.target
        && (matches!(choice, StoreChoice::All)
            || !rows
                .iter()
                .flat_map(|r| r.views.iter())
                .any(|v| &row_key(&v.sku, &v.store) == t))
    {
        f.target = None;
    }
    let here = {
        let mut h = inventory_href(&choice, status, &search);
        if !after_raw.is_empty() {
            h.push_str(&format!(
                "&after={}&trail={}",
                enc(&after_raw),
                trail.join(".")
            ));
        }
        h
    };
    let base = inventory_href(&choice, status, &search);
    let next_href = next.as_ref().map(|n| {
        let mut t = trail.clone();
        if t.len() >= TRAIL_PAGES_MAX {
            t.clear();
        }
        t.push(if after_raw.is_empty() {
            "-".to_owned()
        } else {
            after_raw.clone()
        });
        format!(
            "{base}&after={}&trail={}",
            hex::encode(n.as_str()),
            t.join(".")
        )
    });
    let prev_href = if after_raw.is_empty() {
        None
    } else {
        let mut t = trail.clone();
        let prev = t.pop().unwrap_or_else(|| "-".to_owned());
        Some(if prev == "-" {
            base.clone()
        } else {
            format!("{base}&after={}&trail={}", enc(&prev), t.join("."))
        })
    };
    let body = html! {
        h1 { "Manage Inventory" }
        div.toolbar {
            div.filters {
                @for (f, label) in [(StatusFilter::All, "All"), (StatusFilter::Active, "Active"), (StatusFilter::Inactive, "Inactive")] {
                    a href=(inventory_href(&choice, f, &search)) class=[(f == status).then_some("current")] { (label) }
                }
            }
            form.inline method="get" action="/" {
                input type="hidden" name="store" value=(choice.value());
                input type="hidden" name="status" value=(status.value());
                label.sr for="inventory-search" { "Search SKU or title" }
                " "
                input #inventory-search type="search" name="q" value=(search) placeholder="SKU or product title";
                " "
                button.secondary type="submit" { "Search" }
            }
            a.button href="/add-product" { "Add a product" }
        }
        @if rows.is_empty() {
            div.card {
                p { "No listings to show here." }
                p { a href="/add-product" { "Add a product" } " or " a href="/upload-products" { "upload a file" } "." }
            }
        } @else {
            @match &choice {
                StoreChoice::One(code) => { (one_store_table(&session, region, code, &rows, &here, flash.as_ref())) }
                StoreChoice::All => { (all_stores_table(region, &rows)) }
            }
        }
        div.pager {
            @if let Some(p) = &prev_href { a.button href=(p) { "Previous" } }
            @if let Some(n) = &next_href { a.button href=(n) { "Next" } }
        }
    };
    let chrome = Chrome {
        pages: &pages,
        session: &session,
        section: Section::Inventory,
        store: choice.clone(),
        path: "/",
        all_stores: true,
        flash,
    };
    Ok(layout::page("Manage Inventory", chrome, body).into_response())
}

/// The message of a row (after its "Save" or an action); `form` names the row's edit
/// form, so the script can put its answer there too.
pub fn row_message(flash: Option<&Flash>, key: &str, form: &str) -> Markup {
    html! {
        @if let Some(f) = flash.filter(|f| f.target.as_deref() == Some(key)) {
            div class={ "row-message " (if f.ok { "ok" } else { "error" }) } role=(if f.ok { "status" } else { "alert" }) data-row-message=(form) {
                @if let Some(c) = &f.code { strong.code { (c) } " " }
                (f.text)
            }
        } @else {
            div.row-message role="status" data-row-message=(form) {}
        }
    }
}

/// The row actions of a listing, on Manage Inventory and on the SKU's page.
pub fn row_actions(session: &Session, v: &ListingView, return_to: &str) -> Markup {
    let store = v.store.as_str();
    html! {
        div.actions {
            @if v.closed {
                form.inline method="post" action="/inventory/relist" {
                    (layout::csrf(session))
                    input type="hidden" name="sku" value=(v.sku.as_str());
                    input type="hidden" name="store" value=(store);
                    input type="hidden" name="return_to" value=(return_to);
                    button.small type="submit" { "Relist" }
                }
            } @else {
                form.inline method="post" action="/inventory/close" {
                    (layout::csrf(session))
                    input type="hidden" name="sku" value=(v.sku.as_str());
                    input type="hidden" name="store" value=(store);
                    input type="hidden" name="return_to" value=(return_to);
                    button.small type="submit" { "Close listing" }
                }
            }
            a.button.small href={ "/inventory/details?sku=" (enc(v.sku.as_str())) "&store=" (store) } { "Edit details" }
            a.button.small href={ "/inventory/delete?sku=" (enc(v.sku.as_str())) } { "Delete product and listing" }
        }
    }
}

/// The in-place quantity and price fields of a listing and the form they belong to.
pub struct EditCells {
    pub quantity: Markup,
    pub price: Markup,
    pub form: Markup,
}

pub fn edit_cells(session: &Session, v: &ListingView, id: &str, return_to: &str) -> EditCells {
    let store = v.store.as_str();
    let price = format_price(&v.price);
    EditCells {
        quantity: html! {
            input type="number" min="0" step="1" name="quantity" form=(id) value=(v.quantity)
                data-qty-input=(store) aria-label={ "Quantity of " (v.sku.as_str()) " in " (store) };
        },
        price: html! {
            span.with-unit {
                input type="text" inputmode="decimal" name="price" form=(id) value=(price)
                    aria-label={ "Price of " (v.sku.as_str()) " in " (store) };
                span.unit { (v.currency) }
            }
        },
        form: html! {
            form.inline #(id) method="post" action="/inventory/save" {
                (layout::csrf(session))
                input type="hidden" name="sku" value=(v.sku.as_str());
                input type="hidden" name="store" value=(store);
                input type="hidden" name="version" value=(v.pool_version) data-version-store=(store);
                input type="hidden" name="shown_quantity" value=(v.quantity);
                input type="hidden" name="shown_price" value=(price);
                input type="hidden" name="return_to" value=(return_to);
                button.small.primary type="submit" { "Save" }
            }
        },
    }
}

fn one_store_table(
    session: &Session,
    region: &Region,
    code: &StoreCode,
    rows: &[Row],
    here: &str,
    flash: Option<&Flash>,
) -> Markup {
    let currency = region
        .store(code.as_str())
        .map(|s| s.currency.clone())
        .unwrap_or_default();
    html! {
        table.inventory {
            thead { tr {
                th { "SKU" } th { "Product title" } th { "ASIN" } th { "Status" } th { "Condition" }
                th { "Quantity" } th { "Price (" (currency) ")" } th { "Sharing" } th { "Actions" }
            } }
            tbody {
                @for (i, row) in rows.iter().enumerate() {
                    @for v in &row.views {
                        @let key = row_key(&v.sku, &v.store);
                        @let form_id = format!("edit-{i}");
                        @let cells = edit_cells(session, v, &form_id, here);
                        tr data-sku=(v.sku.as_str()) {
                            td { a href={ "/sku?sku=" (enc(v.sku.as_str())) } { (v.sku.as_str()) } }
                            td { (row.title) }
                            td { (row.asin) }
                            td class=(if v.active { "status-active" } else { "status-inactive" }) { (words::status(v)) }
                            td { (words::condition(v.condition)) }
                            td { (cells.quantity) }
                            td { (cells.price) }
                            td { (words::sharing(v)) }
                            td {
                                div.edit-cell { (cells.form) }
                                (row_actions(session, v, here))
                                (row_message(flash, &key, &form_id))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn all_stores_table(region: &Region, rows: &[Row]) -> Markup {
    html! {
        table.inventory {
            thead { tr {
                th { "SKU" } th { "Product title" } th { "ASIN" }
                @for s in &region.stores { th { (s.name) " (" (s.code) ")" } }
                th { "Actions" }
            } }
            tbody {
                @for row in rows {
                    tr data-sku=(row.sku.as_str()) {
                        td { a href={ "/sku?sku=" (enc(row.sku.as_str())) } { (row.sku.as_str()) } }
                        td { (row.title) }
                        td { (row.asin) }
                        @for s in &region.stores {
                            td {
                                @if let Some(v) = row.views.iter().find(|v| v.store == s.code) {
                                    div class=(if v.active { "status-active" } else { "status-inactive" }) { (words::status(v)) }
                                    div { "Quantity " (v.quantity) " · " (format_price(&v.price)) " " (v.currency) }
                                    div.muted { (words::sharing(v)) }
                                } @else {
                                    span.muted { "Not listed" }
                                }
                            }
                        }
                        td {
                            div.actions {
                                a.button.small href={ "/sku?sku=" (enc(row.sku.as_str())) } { "Open" }
                                a.button.small href={ "/inventory/delete?sku=" (enc(row.sku.as_str())) } { "Delete product and listing" }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct SaveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    sku: String,
    #[serde(default)]
    store: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    shown_quantity: String,
    #[serde(default)]
    shown_price: String,
    #[serde(default)]
    return_to: String,
}

/// The view of the listing a command changed, and the stores it reached.
fn changed(pages: &Pages, outcome: Outcome) -> Option<(ListingView, Vec<StoreCode>)> {
    match outcome {
        Outcome::Listing {
            state,
            store,
            affected_stores,
            ..
        } => {
            let service = &pages.app.service;
            rules::listing_view(service.region(), &state, &store, service.now())
                .map(|v| (v, affected_stores))
        }
        _ => None,
    }
}

/// `POST /inventory/save`: the in-place change of quantity and price (a PATCH).
pub async fn save(
    State(pages): State<Pages>,
    session: Session,
    headers: HeaderMap,
    PageForm(f): PageForm<SaveForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&f.csrf)?;
    let script = headers
        .get(SCRIPT_HEADER)
        .is_some_and(|v| v.as_bytes() == SCRIPT_HEADER_VALUE.as_bytes());
    let region = pages.app.service.region();
    let back = if f.return_to.is_empty() {
        "/".to_owned()
    } else {
        f.return_to.clone()
    };
    let sku = forms::sku(&f.sku)?;
    let store = forms::store(region, &f.store)?;
    let key = Some(row_key(&sku, &store));
    let to = Answer {
        pages: &pages,
        session: &session,
        back: &back,
        script: script.then_some((&sku, &store)),
    };
    let currency = region
        .store(store.as_str())
        .map(|s| s.currency.clone())
        .unwrap_or_default();
    let quantity = match forms::quantity(&f.quantity) {
        Ok(q) => q.filter(|q| f.shown_quantity.trim() != q.to_string()),
        Err(e) => return to.send(error_flash(&e, key)).await,
    };
    let price = match forms::price(&f.price, &currency) {
        Ok(p) => p.filter(|p| f.shown_price.trim() != format_price(&p.amount)),
        Err(e) => return to.send(error_flash(&e, key)).await,
    };
    if quantity.is_none() && price.is_none() {
        return to
            .send(ok_flash(
                "Nothing to save: the quantity and price are as they were.",
                key,
            ))
            .await;
    }
    // The figures the seller saw (R21): a quantity change based on an older pool
    // version is refused by the rules.
    let if_match = if quantity.is_some() {
        f.version.trim().parse::<i64>().ok()
    } else {
        None
    };
    let price_text = price.as_ref().map(|p| {
        format!(
            "Price {} {} in {}",
            format_price(&p.amount),
            currency,
            store
        )
    });
    let cmd = Command::PatchListing {
        seller: session.seller.clone(),
        sku: sku.clone(),
        store: store.clone(),
        patch: ListingPatch {
            quantity,
            price,
            ..ListingPatch::default()
        },
        if_match,
    };
    let flash = match pages.app.service.execute(cmd).await {
        Ok(outcome) => {
            let mut parts = Vec::new();
            if let Some((view, affected)) = changed(&pages, outcome)
                && quantity.is_some()
            {
                parts.push(format!(
                    "Quantity {} in {}",
                    view.quantity,
                    words::codes(&affected)
                ));
            }
            if let Some(p) = price_text {
                parts.push(p);
            }
            ok_flash(parts.join(". "), key)
        }
        Err(crate::service::AppError::Domain(e)) if e.code == ErrorCode::VersionMismatch => {
            let (seller, s) = (session.seller.clone(), sku.clone());
            let st = store.clone();
            let now = pages
                .app
                .service
                .read(move |tx, ctx| {
                    let state = tx.load_sku(&seller, &s)?;
                    Ok(rules::listing_view(ctx.region, &state, &st, ctx.now))
                })
                .await?;
            let mut flash = error_flash(&e, key);
            if let Some(v) = now {
                flash.text = format!(
                    "Your change was not saved: the figures changed meanwhile (the pool is at version {}; this page showed version {}). Now: quantity {} in {}; price {} {}. Enter your change again if it still holds.",
                    v.pool_version,
                    f.version.trim(),
                    v.quantity,
                    words::codes(&v.pool_stores),
                    format_price(&v.price),
                    v.currency
                );
            }
            flash
        }
        Err(e) => refusal(e, key)?,
    };
    to.send(flash).await
}

/// The header the page's script sends with an in-place "Save": it gets the answer as
/// JSON (message and current figures) instead of a redirect.
const SCRIPT_HEADER: &str = "x-requested-with";
const SCRIPT_HEADER_VALUE: &str = "onestock-pages";

/// Where the answer to an in-place "Save" goes.
struct Answer<'a> {
    pages: &'a Pages,
    session: &'a Session,
    back: &'a str,
    /// The listing, when the page's script asked (JSON answer).
    script: Option<(&'a Sku, &'a StoreCode)>,
}

impl Answer<'_> {
    async fn send(&self, flash: Flash) -> Result<Response, PageError> {
        let Some((sku, store)) = self.script else {
            return Ok(done(self.pages, self.session, flash, self.back));
        };
        let (seller, s, st) = (self.session.seller.clone(), sku.clone(), store.clone());
        let view = self
            .pages
            .app
            .service
            .read(move |tx, ctx| {
                let state = tx.load_sku(&seller, &s)?;
                Ok(rules::listing_view(ctx.region, &state, &st, ctx.now))
            })
            .await?;
        let mut body = serde_json::json!({
            "ok": flash.ok,
            "code": flash.code,
            "text": flash.text,
        });
        if let (Some(v), Some(m)) = (view, body.as_object_mut()) {
            m.insert("quantity".into(), v.quantity.into());
            m.insert("price".into(), format_price(&v.price).into());
            m.insert("version".into(), v.pool_version.into());
            m.insert("status".into(), words::status(&v).into());
            m.insert("active".into(), v.active.into());
        }
        Ok(axum::Json(body).into_response())
    }
}

#[derive(Deserialize)]
pub struct ListingForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    sku: String,
    #[serde(default)]
    store: String,
    #[serde(default)]
    return_to: String,
}

async fn set_closed(
    pages: Pages,
    session: Session,
    f: ListingForm,
    closed: bool,
) -> Result<Response, PageError> {
    session.check_csrf(&f.csrf)?;
    let region = pages.app.service.region();
    let back = if f.return_to.is_empty() {
        "/".to_owned()
    } else {
        f.return_to.clone()
    };
    let sku = forms::sku(&f.sku)?;
    let store = forms::store(region, &f.store)?;
    let key = Some(row_key(&sku, &store));
    let name = store_name(region, &store);
    let cmd = Command::SetClosed {
        seller: session.seller.clone(),
        sku: sku.clone(),
        store,
        closed,
    };
    let flash = match pages.app.service.execute(cmd).await {
        Ok(_) if closed => ok_flash(format!("Listing of {sku} closed in {name}."), key),
        Ok(_) => ok_flash(format!("Listing of {sku} open again in {name}."), key),
        Err(e) => refusal(e, key)?,
    };
    Ok(done(&pages, &session, flash, &back))
}

/// `POST /inventory/close`
pub async fn close(
    State(pages): State<Pages>,
    session: Session,
    PageForm(f): PageForm<ListingForm>,
) -> Result<Response, PageError> {
    set_closed(pages, session, f, true).await
}

/// `POST /inventory/relist`
pub async fn relist(
    State(pages): State<Pages>,
    session: Session,
    PageForm(f): PageForm<ListingForm>,
) -> Result<Response, PageError> {
    set_closed(pages, session, f, false).await
}

#[derive(Deserialize)]
pub struct ListingQuery {
    #[serde(default)]
    sku: String,
    #[serde(default)]
    store: String,
}

async fn load_views(
    pages: &Pages,
    session: &Session,
    sku: &Sku,
) -> Result<Vec<ListingView>, PageError> {
    let (seller, s) = (session.seller.clone(), sku.clone());
    let views = pages
        .app
        .service
        .read(move |tx, ctx| {
            let state = tx.load_sku(&seller, &s)?;
            Ok(rules::sku_views(ctx.region, &state, ctx.now))
        })
        .await?;
    if views.is_empty() {
        return Err(DomainError::not_found(format!("You have no listing of SKU {sku}.")).into());
    }
    Ok(views)
}

fn details_page(
    pages: &Pages,
    session: &Session,
    v: &ListingView,
    value: &str,
    error: Option<&DomainError>,
) -> Markup {
    let region = pages.app.service.region();
    let body = html! {
        h1 { "Edit details" }
        div.card {
            p { "SKU " strong { (v.sku.as_str()) } " in " (store_name(region, &v.store)) }
            form method="post" action="/inventory/details" {
                (layout::csrf(session))
                input type="hidden" name="sku" value=(v.sku.as_str());
                input type="hidden" name="store" value=(v.store.as_str());
                div.field {
                    label for="start" { "Start selling date" }
                    input #start type="date" name="start_selling_at" value=(value) aria-invalid=[error.map(|_| "true")];
                    p.hint { "The listing is not for sale in this store before this date (midnight UTC). Leave it empty to sell at once." }
                    @if let Some(e) = error { p.field-error role="alert" { strong.code { (e.code.as_str()) } " " (e.message) } }
                }
                button.primary type="submit" { "Save" }
                " "
                a href={ "/sku?sku=" (enc(v.sku.as_str())) } { "Cancel" }
            }
        }
    };
    let chrome = Chrome {
        pages,
        session,
        section: Section::Inventory,
        store: StoreChoice::One(v.store.clone()),
        path: "/",
        all_stores: true,
        flash: None,
    };
    layout::page("Edit details", chrome, body)
}

/// `GET /inventory/details?sku=&store=`: the start-selling date of one listing.
pub async fn details_form(
    State(pages): State<Pages>,
    session: Session,
    PageQuery(q): PageQuery<ListingQuery>,
) -> Result<Response, PageError> {
    let sku = forms::sku(&q.sku)?;
    let store = forms::store(pages.app.service.region(), &q.store)?;
    let views = load_views(&pages, &session, &sku).await?;
    let v = views.iter().find(|v| v.store == store).ok_or_else(|| {
        PageError::from(DomainError::not_found(format!(
            "SKU {sku} is not listed in store {store}."
        )))
    })?;
    let value = v.start_selling_at.map(words::date).unwrap_or_default();
    Ok(details_page(&pages, &session, v, &value, None).into_response())
}

#[derive(Deserialize)]
pub struct DetailsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    sku: String,
    #[serde(default)]
    store: String,
    #[serde(default)]
    start_selling_at: String,
}

/// `POST /inventory/details`: sets or removes the start-selling date (a PATCH).
pub async fn details_save(
    State(pages): State<Pages>,
    session: Session,
    PageForm(f): PageForm<DetailsForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&f.csrf)?;
    let region = pages.app.service.region();
    let sku = forms::sku(&f.sku)?;
    let store = forms::store(region, &f.store)?;
    let shown = |e: &DomainError, pages: &Pages, session: &Session, views: &[ListingView]| {
        views.iter().find(|v| v.store == store).map(|v| {
            (
                StatusCode::BAD_REQUEST,
                details_page(pages, session, v, &f.start_selling_at, Some(e)),
            )
                .into_response()
        })
    };
    let date = match forms::start_date(&f.start_selling_at) {
        Ok(d) => d,
        Err(e) => {
            let views = load_views(&pages, &session, &sku).await?;
            return shown(&e, &pages, &session, &views).ok_or_else(|| e.into());
        }
    };
    let cmd = Command::PatchListing {
        seller: session.seller.clone(),
        sku: sku.clone(),
        store: store.clone(),
        patch: ListingPatch {
            start_selling_at: Some(date),
            ..ListingPatch::default()
        },
        if_match: None,
    };
    match pages.app.service.execute(cmd).await {
        Ok(_) => {
            let text = match date {
                Some(d) => format!(
                    "Start selling date of {sku} in {}: {}.",
                    store_name(region, &store),
                    words::date(d)
                ),
                None => format!(
                    "{sku} has no start selling date in {} any more.",
                    store_name(region, &store)
                ),
            };
            let to = format!("/sku?sku={}", enc(sku.as_str()));
            Ok(done(
                &pages,
                &session,
                ok_flash(text, Some(row_key(&sku, &store))),
                &to,
            ))
        }
        Err(crate::service::AppError::Domain(e)) => {
            let views = load_views(&pages, &session, &sku).await?;
            shown(&e, &pages, &session, &views).ok_or_else(|| e.into())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct SkuQuery {
    #[serde(default)]
    sku: String,
}

/// `GET /inventory/delete?sku=`: the confirmation, naming every store the SKU leaves.
pub async fn delete_confirm(
    State(pages): State<Pages>,
    session: Session,
    PageQuery(q): PageQuery<SkuQuery>,
) -> Result<Response, PageError> {
    let sku = forms::sku(&q.sku)?;
    let views = load_views(&pages, &session, &sku).await?;
    let region = pages.app.service.region();
    let body = html! {
        h1 { "Delete product and listing" }
        div.card {
            p { "SKU " strong { (sku.as_str()) } " will be deleted with its listings and quantities in every store. It will leave:" }
            ul.stores {
                @for v in &views { li { (store_name(region, &v.store)) } }
            }
            p.muted { "The history of its quantities stays readable. You can list the SKU again later, afresh." }
            form method="post" action="/inventory/delete" {
                (layout::csrf(&session))
                input type="hidden" name="sku" value=(sku.as_str());
                button.danger type="submit" { "Delete product and listing" }
                " "
                a href={ "/sku?sku=" (enc(sku.as_str())) } { "Cancel" }
            }
        }
    };
    let chrome = Chrome {
        pages: &pages,
        session: &session,
        section: Section::Inventory,
        store: layout::choose_store(&pages, &session, None),
        path: "/",
        all_stores: true,
        flash: None,
    };
    Ok(layout::page("Delete product and listing", chrome, body).into_response())
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    sku: String,
}

/// `POST /inventory/delete`: delete product and listing in every store (R16).
pub async fn delete(
    State(pages): State<Pages>,
    session: Session,
    PageForm(f): PageForm<DeleteForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&f.csrf)?;
    let sku = forms::sku(&f.sku)?;
    let region = pages.app.service.region();
    let cmd = Command::DeleteSku {
        seller: session.seller.clone(),
        sku: sku.clone(),
        source: Source::Api,
    };
    let flash = match pages.app.service.execute(cmd).await {
        Ok(Outcome::Deleted { deleted_stores, .. }) => {
            let names: Vec<String> = deleted_stores
                .iter()
                .map(|s| store_name(region, s))
                .collect();
            ok_flash(
                format!("Deleted {sku} and its listings in {}.", names.join(", ")),
                None,
            )
        }
        Ok(_) => ok_flash(format!("Deleted {sku}."), None),
        Err(e) => refusal(e, None)?,
    };
    Ok(done(&pages, &session, flash, "/"))
}
