//! Demo data for `serve --demo`: a seller, products and listings made through the same
//! commands as the API.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use onestock_core::rules::{Command, ListingInput, NewProduct, Outcome, PriceInput, Source};
use onestock_core::types::{Asin, ShareMode, Sku, StoreCode};
use rust_decimal::Decimal;

use crate::service::{AppError, Service, new_token, token_digest};

/// Marks a database that already holds the demo data.
const DEMO_SETTING: &str = "demo_seeded";

fn app_err(e: AppError) -> anyhow::Error {
    anyhow!("{e}")
}

async fn create_seller(service: &Service, name: &str) -> anyhow::Result<(String, String)> {
    let token = new_token("sk");
    let outcome = service
        .execute(Command::CreateSeller {
            name: name.to_owned(),
            token_sha256: token_digest(&token),
        })
        .await
        .map_err(app_err)?;
    match outcome {
        Outcome::Seller(s) => Ok((s.seller_id.0, token)),
        _ => Err(anyhow!("unexpected outcome")),
    }
}

/// Fills an empty database with a seller, products in every store of the default region
/// and shared and unique listings, then prints the tokens and example calls.
/// `operator_token`: the operator's token when this process knows it (generated at this
/// start or given), so the printed operator call works when pasted.
pub async fn seed(
    service: &Arc<Service>,
    base: &str,
    operator_token: Option<&str>,
) -> anyhow::Result<()> {
    let seeded = service
        .read(|tx, _| tx.setting(DEMO_SETTING))
        .await
        .map_err(app_err)?;
    if seeded.is_some() {
        println!(
            "demo: this database already holds the demo data (its token was printed when it was made)"
        );
        return Ok(());
    }
    let codes: Vec<String> = service
        .region()
        .stores
        .iter()
        .map(|s| s.code.to_string())
        .collect();
    let (seller_id, token) = create_seller(service, "Demo Seller").await?;
    let seller = onestock_core::types::SellerId(seller_id.clone());
    let languages = |code: &str| -> String {
        service
            .region()
            .store(code)
            .map(|s| s.languages[0].clone())
            .unwrap_or_else(|_| "en".into())
    };
    let titles = |lang: &str| match lang {
        "es" => (
            "Taza de cerámica azul de 350 ml",
            "Botella de agua de acero inoxidable",
        ),
        "fr" => (
            "Tasse en céramique bleue de 350 ml",
            "Bouteille d'eau en acier inoxydable",
        ),
        _ => ("Blue ceramic mug 350 ml", "Stainless steel water bottle"),
    };
    let mut mug: Option<Asin> = None;
    let mut bottle: Option<Asin> = None;
    for code in &codes {
        let lang = languages(code);
        let (mug_title, bottle_title) = titles(&lang);
        for (title, upc, slot) in [
            (mug_title, "036000291452", &mut mug),
            (bottle_title, "012000161155", &mut bottle),
        ] {
            let out = service
                .execute(Command::CreateProduct(NewProduct {
                    store: code.clone(),
                    product_type: "KITCHEN".into(),
                    title: title.into(),
                    brand: "Onestock Demo".into(),
                    description: String::new(),
                    language: lang.clone(),
                    identifiers: vec![("UPC".into(), upc.into())],
                    force_new: false,
                }))
                .await
                .map_err(app_err)?;
            if let Outcome::Product { asin, .. } = out {
                *slot = Some(asin);
            }
        }
    }
    let (Some(mug), Some(bottle)) = (mug, bottle) else {
        return Err(anyhow!("demo products were not created"));
    };
    let prices = ["12.99", "16.99", "229.00"];
    for (i, code) in codes.iter().enumerate() {
        let store = service.region().store(code).map_err(|e| anyhow!("{e}"))?;
        let price = |amount: &str| PriceInput {
            amount: amount.parse::<Decimal>().unwrap_or(Decimal::ONE),
            currency: store.currency.clone(),
        };
        let sc = StoreCode::parse(code).ok_or_else(|| anyhow!("bad store {code}"))?;
        // The mug shares one pool of 25 across every store.
        service
            .execute(Command::PutListing {
                seller: seller.clone(),
                sku: Sku::parse("MUG-BLUE-350").map_err(|e| anyhow!("{e}"))?,
                store: sc.clone(),
                input: ListingInput {
                    asin: Some(mug.clone()),
                    price: Some(price(prices[i % prices.len()])),
                    quantity: (i == 0).then_some(25),
                    ..ListingInput::default()
                },
                source: Source::Api,
                if_match: None,
            })
            .await
            .map_err(app_err)?;
        // The bottle is a unique offer in each store.
        service
            .execute(Command::PutListing {
                seller: seller.clone(),
                sku: Sku::parse("BOTTLE-STEEL").map_err(|e| anyhow!("{e}"))?,
                store: sc,
                input: ListingInput {
                    asin: Some(bottle.clone()),
                    price: Some(price("19.50")),
                    share: Some(ShareMode::Unique),
                    quantity: Some(5 + i as i64),
                    ..ListingInput::default()
                },
                source: Source::Api,
                if_match: None,
            })
            .await
            .map_err(app_err)?;
    }
    let db = service.database().clone();
    tokio::task::spawn_blocking(move || db.write(|tx| tx.set_setting(DEMO_SETTING, "1")))
        .await?
        .context("mark demo data")?;
    let first = codes.first().cloned().unwrap_or_else(|| "US".into());
    println!("demo: seller {seller_id}, token {token}");
    println!("demo: seller pages at {base}/ (sign in with the seller token above)");
    println!(
        "demo: SKU MUG-BLUE-350 shares one pool of 25 in {}; SKU BOTTLE-STEEL is a unique offer in each store",
        codes.join(", ")
    );
    println!("try:");
    println!("  curl -s {base}/v1/listings/MUG-BLUE-350 -H 'Authorization: Bearer {token}'");
    println!(
        "  curl -s -X PATCH {base}/v1/listings/MUG-BLUE-350/stores/{first} -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{{\"quantity_delta\": -1}}'"
    );
    println!("  curl -s '{base}/v1/events?after=0' -H 'Authorization: Bearer {token}'");
    match operator_token {
        Some(op) => println!(
            "  curl -s {base}/v1/stores/{first}/items/{mug}/offers -H 'Authorization: Bearer {op}'"
        ),
        // The token was printed when it was generated, on an earlier start.
        None => println!(
            "  curl -s {base}/v1/stores/{first}/items/{mug}/offers -H \"Authorization: Bearer $ONESTOCK_OPERATOR_TOKEN\"   # set ONESTOCK_OPERATOR_TOKEN to the operator token first"
        ),
    }
    Ok(())
}
