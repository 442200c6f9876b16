//! Uploads: R23 (each row is applied by the same rules as the API, and fails alone).

use super::*;

pub(super) fn apply_upload_rows(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    upload_id: &str,
    warnings: &[ReportLine],
    records: &[UploadRecord],
    done: bool,
) -> Decision {
    let Some(mut upload) = tx.upload(upload_id)? else {
        return Ok(Err(DomainError::not_found(format!(
            "There is no upload {upload_id}."
        ))));
    };
    if matches!(upload.status, UploadStatus::Done | UploadStatus::Fatal) {
        return Ok(Ok(Outcome::Upload(upload)));
    }
    let source = Source::Upload {
        upload_id: upload_id.to_owned(),
    };
    // Whole-file warnings belong to the first chunk applied; a chunk that another
    // worker already applied before this one must not repeat them.
    let mut report: Vec<ReportLine> = if upload.records_processed == 0 {
        warnings.to_vec()
    } else {
        Vec::new()
    };
    let keys: Vec<(SellerId, Sku)> = records
        .iter()
        .filter(|r| r.record > upload.checkpoint)
        .filter_map(|r| r.row.as_ref().ok())
        .map(|row| (upload.seller_id.clone(), row.sku.clone()))
        .collect();
    tx.prefetch_skus(&keys)?;
    let mut identifiers: Vec<String> = records
        .iter()
        .filter(|r| r.record > upload.checkpoint)
        .filter_map(|r| match r.row.as_ref().ok()?.product.as_ref()? {
            ProductRef::Identifier { kind, value } => {
                crate::catalog::parse_identifier(kind, value).ok()
            }
            ProductRef::Asin(_) => None,
        })
        .map(|id| id.value)
        .collect();
    identifiers.sort_unstable();
    identifiers.dedup();
    tx.prefetch_pages_by_identifier(&identifiers)?;
    for rec in records {
        // A resumed upload may be handed rows it already applied: skip them.
        if rec.record <= upload.checkpoint {
            continue;
        }
        let result = match &rec.row {
            Ok(row) => apply_upload_row(tx, ctx, &upload, row, &source)?,
            Err(e) => Err(e.clone()),
        };
        upload.records_processed += 1;
        match result {
            Ok(()) => upload.records_successful += 1,
            Err(e) => {
                upload.records_failed += 1;
                report.push(ReportLine {
                    record: rec.record,
                    sku: rec.sku.clone(),
                    code: e.code.as_str().to_owned(),
                    kind: ReportKind::Error,
                    message: e.message,
                });
            }
        }
        upload.checkpoint = rec.record;
    }
    if !report.is_empty() {
        tx.append_report(upload_id, &report)?;
    }
    upload.status = if done {
        UploadStatus::Done
    } else {
        UploadStatus::InProgress
    };
    tx.update_upload(&upload)?;
    Ok(Ok(Outcome::Upload(upload)))
}

pub(super) fn apply_upload_row(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    upload: &Upload,
    row: &UploadRow,
    source: &Source,
) -> StoreResult<Result<(), DomainError>> {
    let seller = &upload.seller_id;
    let outcome = match row.action {
        UploadAction::DeleteEverywhere => delete_sku(tx, ctx, seller, &row.sku, source)?,
        UploadAction::DeleteInStore => {
            delete_in_store(tx, ctx, seller, &row.sku, &upload.store, source)?
        }
        UploadAction::AddOrUpdate | UploadAction::PartialUpdate => {
            let store = match ctx.region.store(upload.store.as_str()) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            // Whether the row may create the product (SPEC 5, category templates): it
            // gives product information, is not a PartialUpdate, and the SKU has no
            // listing in this store yet (a listing that exists keeps its product).
            let listed_here = load(tx, ctx, seller, &row.sku)?
                .listing(&store.code)
                .is_some();
            if row.action == UploadAction::PartialUpdate && !listed_here {
                return Ok(Err(DomainError::not_found(format!(
                    "PartialUpdate changes a listing that exists, and SKU {} has no listing in store {}; use Update to create it.",
                    row.sku, store.code
                ))
                .field("update_delete")));
            }
            let creates = row
                .product_info
                .as_ref()
                .filter(|_| row.action == UploadAction::AddOrUpdate && !listed_here);
            let mut new_page: Option<DetailPage> = None;
            let asin = match &row.product {
                // A row that names no product lists against none (SPEC 5:
                // INVALID_REQUEST, field product-id): a product is created only from an
                // identifier, so the same file sent to another store finds it again.
                None => None,
                Some(ProductRef::Asin(raw)) => match Asin::parse(raw) {
                    Ok(a) => Some(a),
                    Err(e) => return Ok(Err(e.field("product-id"))),
                },
                Some(ProductRef::Identifier { kind, value }) => {
                    let id = match crate::catalog::parse_identifier(kind, value) {
                        Ok(id) => id,
                        Err(e) => return Ok(Err(e.field("product-id"))),
                    };
                    let pages = tx.pages_by_identifier(&id.value)?;
                    let here = pages.iter().find(|p| p.store == store.code);
                    match (here, creates) {
                        (Some(p), _) => Some(p.asin.clone()),
                        // No page here: the row creates it by R3, through the checks of
                        // POST /v1/catalog/items (a page elsewhere gives its ASIN when
                        // the information is the same, PRODUCT_DATA_CONFLICT otherwise).
                        (None, Some(info)) => {
                            let planned =
                                plan_product(tx, ctx, &new_product(store, info, Some(&id)))?;
                            let page = check!(planned.map_err(in_file_words)).page;
                            let asin = page.asin.clone();
                            new_page = Some(page);
                            Some(asin)
                        }
                        // A page only elsewhere still names the product, so the listing
                        // rules (R2, R17) say why it cannot be listed here.
                        (None, None) => match pages.first() {
                            Some(p) => Some(p.asin.clone()),
                            None => {
                                return Ok(Err(DomainError::new(
                                    ErrorCode::AsinNotInStore,
                                    format!(
                                        "No detail page in store {} has {} {}; create the product first.",
                                        store.code, id.kind, id.value
                                    ),
                                )
                                .field("product-id")));
                            }
                        },
                    }
                }
            };
            let input = ListingInput {
                asin,
                price: row.price.map(|amount| PriceInput {
                    amount,
                    currency: store.currency.clone(),
                }),
                share: row.share,
                condition: row.condition,
                quantity: row.quantity,
                fulfillment: row.fulfillment,
                start_selling_at: row.start_selling_at.map(Some),
            };
            // The product's page (when the row creates it) is written by the same
            // command as the listing, after every check of both has passed.
            put_listing(
                tx,
                ctx,
                seller,
                &row.sku,
                &store.code,
                &input,
                source,
                None,
                new_page.as_ref(),
            )?
        }
    };
    Ok(outcome.map(|_| ()))
}

/// A file cannot send `force_new`: a near-identical page is listed against, or the
/// product created through the API.
fn in_file_words(mut e: DomainError) -> DomainError {
    if e.code == ErrorCode::PossibleMatch && e.message.contains("force_new") {
        e.message = "This store has a product of the same brand with nearly the same title; list against it (its ASIN in the product-id column), or create the new product with POST /v1/catalog/items and force_new: true.".to_owned();
    }
    e
}

/// The `POST /v1/catalog/items` body a category row stands for: never `force_new` (a
/// file cannot force a new product).
fn new_product(store: &Store, info: &ProductInfo, id: Option<&Identifier>) -> NewProduct {
    NewProduct {
        store: store.code.to_string(),
        product_type: info.product_type.clone(),
        title: info.title.clone(),
        brand: info.brand.clone(),
        description: info.description.clone(),
        language: info
            .language
            .clone()
            .or_else(|| store.languages.first().cloned())
            .unwrap_or_default(),
        identifiers: id
            .map(|i| vec![(i.kind.clone(), i.value.clone())])
            .unwrap_or_default(),
        force_new: false,
    }
}

pub(super) fn fail_upload(tx: &mut dyn Tx, upload_id: &str, error: &str) -> Decision {
    let Some(mut upload) = tx.upload(upload_id)? else {
        return Ok(Err(DomainError::not_found(format!(
            "There is no upload {upload_id}."
        ))));
    };
    // Finished already (another worker got there first): the first end stands.
    if matches!(upload.status, UploadStatus::Done | UploadStatus::Fatal) {
        return Ok(Ok(Outcome::Upload(upload)));
    }
    upload.status = UploadStatus::Fatal;
    upload.error = Some(error.to_owned());
    tx.update_upload(&upload)?;
    Ok(Ok(Outcome::Upload(upload)))
}
