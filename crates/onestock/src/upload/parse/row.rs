//! Typed rows (SPEC 5, R23): [`parse_row`] turns a row's fields into the core's upload row, with one parser per field.

use super::*;

/// Rows are typed straight into the core's upload row, so the upload door and the
/// rules share one definition of a row (R23).
pub use onestock_core::rules::{
    ProductInfo, ProductRef as ProductId, UploadAction as Action, UploadRow as RowOp,
};

/// Types a row. The first column at fault (in the order of [`KNOWN_COLUMNS`], `add-delete`
/// first after `sku`) gives the error. Rows with `d` or `x` read only the SKU: their other
/// columns are ignored.
pub fn parse_row(fields: &RowFields) -> Result<RowOp, DomainError> {
    let sku = match fields.sku.as_deref() {
        Some(s) => Sku::parse(s)?,
        None => {
            return Err(DomainError::invalid(
                "sku",
                "Every row needs a sku: fill the sku column with your code for the item.",
            ));
        }
    };
    let action = parse_action(fields.add_delete.as_deref())?;
    let mut op = RowOp {
        sku,
        action,
        product: None,
        price: None,
        condition: None,
        quantity: None,
        share: None,
        fulfillment: None,
        start_selling_at: None,
        product_info: None,
    };
    if matches!(action, Action::DeleteInStore | Action::DeleteEverywhere) {
        return Ok(op);
    }
    op.product = parse_product_id(
        fields.product_id.as_deref(),
        fields.product_id_type.as_deref(),
    )?;
    op.price = fields.price.as_deref().map(parse_price).transpose()?;
    op.condition = fields
        .item_condition
        .as_deref()
        .map(parse_condition)
        .transpose()?;
    op.quantity = fields.quantity.as_deref().map(parse_quantity).transpose()?;
    op.share = fields
        .inventory_sharing
        .as_deref()
        .map(|raw| {
            ShareMode::parse(raw).ok_or_else(|| {
                DomainError::invalid(
                    "inventory-sharing",
                    format!(
                        "inventory-sharing is existing (join the SKU's shared quantity), unique (a quantity of its own) or empty; got {raw:?}."
                    ),
                )
            })
        })
        .transpose()?;
    op.fulfillment = fields
        .fulfillment_channel
        .as_deref()
        .or(fields.fulfillment_center_id.as_deref())
        .map(parse_fulfillment)
        .transpose()?;
    op.start_selling_at = fields
        .start_selling_date
        .as_deref()
        .map(parse_start)
        .transpose()?;
    op.product_info = parse_product_info(fields)?;
    Ok(op)
}

/// The category templates' product information (SPEC 5), when the row fills any of
/// `feed_product_type`, `brand_name` or `item_name`; the rules check it as
/// `POST /v1/catalog/items` would.
fn parse_product_info(fields: &RowFields) -> Result<Option<ProductInfo>, DomainError> {
    if fields.feed_product_type.is_none()
        && fields.brand_name.is_none()
        && fields.item_name.is_none()
    {
        return Ok(None);
    }
    let language = fields
        .language_value
        .as_deref()
        .map(parse_language)
        .transpose()?;
    Ok(Some(ProductInfo {
        product_type: fields.feed_product_type.clone().unwrap_or_default(),
        title: fields.item_name.clone().unwrap_or_default(),
        brand: fields.brand_name.clone().unwrap_or_default(),
        description: fields.product_description.clone().unwrap_or_default(),
        language,
    }))
}

/// `language_value`: a code or tag (`en`, `es_MX`), or a language's name as the
/// templates' drop-down lists give it (`English`, `Spanish`, `Español`, ...).
fn parse_language(raw: &str) -> Result<String, DomainError> {
    let t = raw.trim();
    let named = match t.to_lowercase().as_str() {
        "english" | "inglés" | "ingles" | "anglais" => Some("en"),
        "spanish" | "español" | "espanol" | "espagnol" => Some("es"),
        "french" | "français" | "francais" | "francés" | "frances" => Some("fr"),
        "portuguese" | "português" | "portugues" => Some("pt"),
        "german" | "deutsch" => Some("de"),
        "italian" | "italiano" => Some("it"),
        "japanese" | "日本語" => Some("ja"),
        _ => None,
    };
    if let Some(code) = named {
        return Ok(code.to_owned());
    }
    onestock_core::catalog::language_part(t)
        .map(|_| t.to_owned())
        .ok_or_else(|| {
            DomainError::new(
                ErrorCode::LanguageNotSupported,
                format!(
                    "language_value is a language code such as en or es_MX, or a name such as English; got {raw:?}."
                ),
            )
            .field("language_value")
        })
}

pub(super) fn parse_action(raw: Option<&str>) -> Result<Action, DomainError> {
    let squashed = raw.map(|s| {
        s.trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '_' | '-'))
            .collect::<String>()
            .to_ascii_lowercase()
    });
    match squashed.as_deref() {
        // `Update`, `PartialUpdate` and `Delete`: the category templates' update_delete.
        None | Some("") | Some("a") | Some("update") => Ok(Action::AddOrUpdate),
        Some("partialupdate") => Ok(Action::PartialUpdate),
        Some("d") | Some("delete") => Ok(Action::DeleteInStore),
        Some("x") => Ok(Action::DeleteEverywhere),
        Some(_) => Err(DomainError::invalid(
            "add-delete",
            format!(
                "add-delete is a (add or update, the default when empty), d (delete the listing in this store) or x (delete the product and listing in every store); update_delete is Update, PartialUpdate or Delete; got {:?}.",
                raw.unwrap_or_default()
            ),
        )),
    }
}

pub(super) fn parse_product_id(
    id: Option<&str>,
    kind: Option<&str>,
) -> Result<Option<ProductId>, DomainError> {
    let Some(id) = id.map(str::trim).filter(|s| !s.is_empty()) else {
        if let Some(k) = kind.filter(|k| !k.trim().is_empty()) {
            return Err(DomainError::invalid(
                "product-id",
                format!(
                    "product-id-type is {k:?} but product-id is empty: give the ASIN or identifier in product-id, or clear product-id-type."
                ),
            ));
        }
        return Ok(None);
    };
    let kind = match kind.map(|k| k.trim().to_ascii_uppercase()).as_deref() {
        None | Some("") => None,
        Some("1") | Some("ASIN") => Some("ASIN"),
        Some("2") | Some("ISBN") => Some("ISBN"),
        Some("3") | Some("UPC") => Some("UPC"),
        Some("4") | Some("EAN") => Some("EAN"),
        Some("GTIN") => Some("GTIN"),
        Some(_) => {
            return Err(DomainError::invalid(
                "product-id-type",
                format!(
                    "product-id-type is 1 (ASIN), 2 (ISBN), 3 (UPC), 4 (EAN) or one of the words ASIN, ISBN, UPC, EAN, GTIN; got {:?}.",
                    kind.unwrap_or_default()
                ),
            ));
        }
    };
    let kind = match kind {
        Some(k) => k,
        None => infer_kind(id).ok_or_else(|| {
            DomainError::new(
                ErrorCode::InvalidIdentifier,
                format!(
                    "product-id {id:?} is neither an ASIN (10 letters and digits, starting with a letter) nor a UPC (12 digits), EAN (13), GTIN (14) or ISBN (10); fill product-id-type to say what it is."
                ),
            )
            .field("product-id")
        })?,
    };
    if kind == "ASIN" {
        let asin = Asin::parse(id).map_err(|mut e| {
            e.field = Some("product-id".into());
            e
        })?;
        return Ok(Some(ProductId::Asin(asin.as_str().to_owned())));
    }
    Ok(Some(ProductId::Identifier {
        kind: kind.to_owned(),
        value: id.to_owned(),
    }))
}

pub(super) fn infer_kind(id: &str) -> Option<&'static str> {
    let b = id.as_bytes();
    if b.len() == 10 && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric) {
        return Some("ASIN");
    }
    let digits = b.iter().all(u8::is_ascii_digit);
    match b.len() {
        10 if digits => Some("ISBN"),
        10 if b[..9].iter().all(u8::is_ascii_digit) && (b[9] == b'X' || b[9] == b'x') => {
            Some("ISBN")
        }
        12 if digits => Some("UPC"),
        13 if digits => Some("EAN"),
        14 if digits => Some("GTIN"),
        _ => None,
    }
}

pub(super) fn parse_price(raw: &str) -> Result<Decimal, DomainError> {
    let t = raw.trim();
    let dotted: Cow<str> = if t.matches(',').count() == 1 && !t.contains('.') {
        Cow::Owned(t.replace(',', "."))
    } else {
        Cow::Borrowed(t)
    };
    parse_price_amount(&dotted).map_err(|_| {
        DomainError::new(
            ErrorCode::InvalidPrice,
            format!(
                "price is a number greater than zero with at most two digits after the point, in the store's currency, with no symbol or thousands separator: 19.99 (19,99 is accepted too); got {raw:?}."
            ),
        )
        .field("price")
    })
}

pub(super) fn parse_condition(raw: &str) -> Result<Condition, DomainError> {
    let t = raw.trim();
    let by_code = if !t.is_empty() && t.len() <= 4 && t.bytes().all(|b| b.is_ascii_digit()) {
        match t.parse::<u32>().unwrap_or(0) {
            11 => Some(Condition::New),
            10 | 9 => Some(Condition::Refurbished),
            1 => Some(Condition::UsedLikeNew),
            2 => Some(Condition::UsedVeryGood),
            3 => Some(Condition::UsedGood),
            4 => Some(Condition::UsedAcceptable),
            5 => Some(Condition::CollectibleLikeNew),
            6 => Some(Condition::CollectibleVeryGood),
            7 => Some(Condition::CollectibleGood),
            8 => Some(Condition::CollectibleAcceptable),
            _ => None,
        }
    } else {
        let squash = |s: &str| -> String {
            s.chars()
                .filter(|c| !matches!(c, '_' | '-' | ' '))
                .flat_map(char::to_lowercase)
                .collect()
        };
        let want = squash(t);
        Condition::ALL
            .into_iter()
            .find(|c| squash(c.as_str()) == want)
    };
    by_code.ok_or_else(|| {
        DomainError::invalid(
            "item-condition",
            format!(
                "item-condition is 11 (new), 10 or 9 (refurbished), 1 to 4 (used: like new, very good, good, acceptable), 5 to 8 (collectible: likewise) or a name such as new or used_like_new; got {raw:?}."
            ),
        )
    })
}

pub(super) fn parse_quantity(raw: &str) -> Result<i64, DomainError> {
    let t = raw.trim();
    // "12.00", as spreadsheets write whole numbers, is 12.
    let whole = match t.split_once('.') {
        Some((w, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => w,
        _ => t,
    };
    let q = whole
        .parse::<i64>()
        .ok()
        .filter(|_| !whole.starts_with('+'))
        .ok_or_else(|| {
            DomainError::new(
                ErrorCode::InvalidQuantity,
                format!(
                    "quantity is a whole number from 0 to {}, with no sign, separators or decimals; got {raw:?}.",
                    onestock_core::types::QUANTITY_MAX
                ),
            )
            .field("quantity")
        })?;
    check_quantity(q, "quantity")
}

pub(super) fn parse_fulfillment(raw: &str) -> Result<Fulfillment, DomainError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "merchant" | "default" => Ok(Fulfillment::Merchant),
        "marketplace" | "amazon_na" => Ok(Fulfillment::Marketplace),
        _ => Err(DomainError::invalid(
            "fulfillment-channel",
            format!(
                "fulfillment-channel is merchant or DEFAULT (you ship), or marketplace or AMAZON_NA (the marketplace ships); got {raw:?}."
            ),
        )),
    }
}

pub(super) fn parse_start(raw: &str) -> Result<OffsetDateTime, DomainError> {
    use time::format_description::well_known::Rfc3339;
    let t = raw.trim();
    if let Ok(at) = OffsetDateTime::parse(t, &Rfc3339) {
        return Ok(at);
    }
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(t, &day) {
        return Ok(d.midnight().assume_utc());
    }
    Err(DomainError::invalid(
        "start-selling-date",
        format!(
            "start-selling-date is a date like 2026-12-15 (midnight UTC) or a time like 2026-12-15T09:00:00-05:00 (RFC 3339); got {raw:?}."
        ),
    ))
}
