//! Catalog: R2 (detail pages), R3 (create a product, matches, PRODUCT_DATA_CONFLICT), R4 (identifiers), R5 (language), R17 (legal in the store).

use super::*;

/// `POST /v1/catalog/items` (R3): every check, then the page is written.
pub(super) fn create_product(tx: &mut dyn Tx, ctx: Ctx<'_>, p: &NewProduct) -> Decision {
    let planned = check!(plan_product(tx, ctx, p)?);
    tx.insert_page(&planned.page)?;
    Ok(Ok(Outcome::Product {
        asin: planned.page.asin,
        store: planned.page.store,
        matched: planned.matched,
    }))
}

/// The page a new product gets, once every rule of R3, R4, R5 and R17 has passed; nothing
/// is written, so a caller can check more rules before [`Tx::insert_page`] (an upload row
/// that creates a product and lists on it in one step, SPEC 5).
pub(super) struct PlannedProduct {
    pub(super) page: DetailPage,
    /// The page is for an ASIN that has pages in other stores (R3).
    pub(super) matched: bool,
}

/// The checks of [`create_product`], which every door that creates products goes through
/// (the API, the pages, upload rows of category templates).
pub(super) fn plan_product(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    p: &NewProduct,
) -> StoreResult<Result<PlannedProduct, DomainError>> {
    let store = check!(ctx.region.store(&p.store));
    let title = p.title.trim();
    let brand = p.brand.trim();
    let product_type = p.product_type.trim().to_ascii_uppercase();
    check!(check_text("title", title));
    check!(check_text("brand", brand));
    check!(check_text("description", &p.description));
    if title.is_empty() || title.chars().count() > 500 {
        return Ok(Err(DomainError::invalid(
            "title",
            "A product needs a title of 1 to 500 characters.",
        )));
    }
    if brand.is_empty() || brand.chars().count() > 100 {
        return Ok(Err(DomainError::invalid(
            "brand",
            "A product needs a brand of 1 to 100 characters.",
        )));
    }
    if product_type.is_empty()
        || product_type.len() > 64
        || !product_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Ok(Err(DomainError::invalid(
            "product_type",
            "A product type is 1 to 64 letters, digits or underscores, such as KITCHEN.",
        )));
    }
    let language = check!(
        crate::catalog::language_part(&p.language)
            .filter(|l| store.languages.contains(l))
            .ok_or_else(|| DomainError::new(
                ErrorCode::LanguageNotSupported,
                format!(
                    "Store {} takes detail pages in {}; {:?} is not one of them.",
                    store.code,
                    store.languages.join(", "),
                    p.language
                ),
            )
            .field("language"))
    );
    let mut identifiers: Vec<Identifier> = Vec::new();
    for (kind, value) in &p.identifiers {
        let id = check!(crate::catalog::parse_identifier(kind, value));
        if !identifiers.contains(&id) {
            identifiers.push(id);
        }
    }
    if store.restricts(&product_type) {
        return Ok(Err(restricted(store, &product_type)));
    }
    check!(crate::catalog::check_language(
        &language,
        title,
        &p.description
    ));

    // R3: a page with the same identifier in this store is the product itself.
    let mut elsewhere: Vec<DetailPage> = Vec::new();
    let mut same_store: Vec<Match> = Vec::new();
    for id in &identifiers {
        for page in tx.pages_by_identifier(&id.value)? {
            if page.store == store.code {
                if !same_store.iter().any(|m| m.asin == page.asin.as_str()) {
                    same_store.push(page_match(&page));
                }
            } else if !elsewhere
                .iter()
                .any(|e| e.asin == page.asin && e.store == page.store)
            {
                elsewhere.push(page);
            }
        }
    }
    if !same_store.is_empty() {
        return Ok(Err(possible_match(
            format!(
                "Store {} already has this product (same identifier); list your offer against the ASIN given in matches.",
                store.code
            ),
            same_store,
        )));
    }
    let page_for = |asin: Asin| DetailPage {
        asin,
        store: store.code.clone(),
        title: title.to_owned(),
        brand: brand.to_owned(),
        description: p.description.trim().to_owned(),
        language: language.clone(),
        product_type: product_type.clone(),
        identifiers: identifiers.clone(),
    };
    // Same identifier, page only in other stores: the same ASIN gets a page here, when
    // the information describes the same product.
    if let Some(first) = elsewhere.first() {
        check!(same_product_information(&elsewhere, brand, &product_type));
        return Ok(Ok(PlannedProduct {
            page: page_for(first.asin.clone()),
            matched: true,
        }));
    }
    if !p.force_new {
        let wanted = crate::catalog::normalize_title(title);
        let near: Vec<Match> = tx
            .pages_by_brand_and_title(&store.code, brand, &wanted)?
            .iter()
            .map(page_match)
            .collect();
        if !near.is_empty() {
            return Ok(Err(possible_match(
                format!(
                    "Store {} has a product of the same brand with nearly the same title; list against it, or send force_new: true to create a new product anyway.",
                    store.code
                ),
                near,
            )));
        }
    }
    let asin = loop {
        let candidate = Asin::generate();
        if tx.pages_of_asin(&candidate)?.is_empty() {
            break candidate;
        }
    };
    Ok(Ok(PlannedProduct {
        page: page_for(asin),
        matched: false,
    }))
}

/// R3 "the same product information": `pages` (every page in other stores an identifier
/// leads to) must be of one ASIN, and the new page's brand (normalised,
/// [`crate::catalog::normalize_brand`]) and product type (already upper case) must be
/// those of each of them. Otherwise `PRODUCT_DATA_CONFLICT`, naming each field that
/// differs, with every page as a match.
fn same_product_information(
    pages: &[DetailPage],
    brand: &str,
    product_type: &str,
) -> Result<(), DomainError> {
    let mut asins: Vec<&Asin> = Vec::new();
    for p in pages {
        if !asins.contains(&&p.asin) {
            asins.push(&p.asin);
        }
    }
    let wanted_brand = crate::catalog::normalize_brand(brand);
    let mut differs: Vec<(&str, String)> = Vec::new();
    if asins.len() > 1 {
        let listed: Vec<String> = asins.iter().map(|a| a.to_string()).collect();
        differs.push((
            "identifiers",
            format!(
                "identifiers: they lead to {} different ASINs ({})",
                asins.len(),
                listed.join(", ")
            ),
        ));
    }
    let mut brands: Vec<&str> = Vec::new();
    for p in pages {
        if crate::catalog::normalize_brand(&p.brand) != wanted_brand
            && !brands.contains(&p.brand.as_str())
        {
            brands.push(&p.brand);
        }
    }
    if !brands.is_empty() {
        differs.push((
            "brand",
            format!(
                "brand: {brand:?} here, {} on the existing page",
                quoted(&brands)
            ),
        ));
    }
    let mut types: Vec<&str> = Vec::new();
    for p in pages {
        if !p.product_type.eq_ignore_ascii_case(product_type)
            && !types.contains(&p.product_type.as_str())
        {
            types.push(&p.product_type);
        }
    }
    if !types.is_empty() {
        differs.push((
            "product_type",
            format!(
                "product_type: {product_type:?} here, {} on the existing page",
                quoted(&types)
            ),
        ));
    }
    let Some((field, _)) = differs.first() else {
        return Ok(());
    };
    let field = (*field).to_owned();
    let details: Vec<String> = differs.into_iter().map(|(_, d)| d).collect();
    let mut e = DomainError::new(
        ErrorCode::ProductDataConflict,
        format!(
            "This product's identifiers lead to an existing product in other stores, but the information differs ({}); give the same product information as the existing page (see matches), or use the identifiers of this product.",
            details.join("; ")
        ),
    )
    .field(field);
    e.matches = pages.iter().map(page_match).collect();
    Err(e)
}

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

pub(super) fn possible_match(message: String, matches: Vec<Match>) -> DomainError {
    let mut e = DomainError::new(ErrorCode::PossibleMatch, message);
    e.matches = matches;
    e
}

pub(super) fn page_match(page: &DetailPage) -> Match {
    Match {
        asin: page.asin.to_string(),
        store: page.store.to_string(),
        title: page.title.clone(),
    }
}

pub(super) fn restricted(store: &Store, product_type: &str) -> DomainError {
    DomainError::new(
        ErrorCode::RestrictedInStore,
        format!(
            "Product type {product_type} may not be sold in store {}.",
            store.code
        ),
    )
}

/// R2 and R17: the ASIN's page in the store, where the store allows its product type.
pub(super) fn page_in_store(
    tx: &mut dyn Tx,
    store: &Store,
    asin: &Asin,
) -> StoreResult<Result<DetailPage, DomainError>> {
    if let Some(page) = tx.page(asin, &store.code)? {
        if store.restricts(&page.product_type) {
            return Ok(Err(restricted(store, &page.product_type)));
        }
        return Ok(Ok(page));
    }
    let others = tx.pages_of_asin(asin)?;
    if let Some(p) = others.iter().find(|p| store.restricts(&p.product_type)) {
        return Ok(Err(restricted(store, &p.product_type)));
    }
    Ok(Err(DomainError::new(
        ErrorCode::AsinNotInStore,
        format!(
            "ASIN {asin} has no detail page in store {}; create the product there first (POST /v1/catalog/items).",
            store.code
        ),
    )
    .field("asin")))
}
