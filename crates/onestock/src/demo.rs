//! Demo data for `serve --demo`: a seller, products and listings made through the same
//! commands as the API.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use onestock_core::model::DetailPage;
use onestock_core::rules::{Command, ListingInput, NewProduct, Outcome, PriceInput, Source};
use onestock_core::types::{Asin, ShareMode, Sku, StoreCode};
use rust_decimal::Decimal;

use crate::service::{AppError, Service, new_token, token_digest};

/// Marks a database that already holds the demo data.
const DEMO_SETTING: &str = "demo_seeded";

/// A product of the demo catalog, created in every store.
struct DemoProduct {
    title_en: &'static str,
    title_es: &'static str,
    brand: &'static str,
    product_type: &'static str,
    id_type: &'static str,
    id_value: &'static str,
}

/// The demo catalog: the mug and the bottle of the demo listings, then every product the
/// files of `examples/` name by identifier, so that each example uploads without a
/// failed row (`tests/examples.rs`). The first three are used by the listings below.
const CATALOG: &[DemoProduct] = &[
    DemoProduct {
        title_en: "Blue ceramic mug 350 ml",
        title_es: "Taza de cerámica azul de 350 ml",
        brand: "Onestock Demo",
        product_type: "KITCHEN",
        id_type: "UPC",
        id_value: "036000291452",
    },
    DemoProduct {
        title_en: "Stainless steel water bottle",
        title_es: "Botella de agua de acero inoxidable",
        brand: "Onestock Demo",
        product_type: "KITCHEN",
        id_type: "UPC",
        id_value: "012000161155",
    },
    DemoProduct {
        title_en: "Electric kettle with a one litre steel jug",
        title_es: "Hervidor eléctrico con jarra de acero de un litro",
        brand: "Hearth and Home",
        product_type: "KITCHEN",
        id_type: "EAN",
        id_value: "4006381333931",
    },
    DemoProduct {
        title_en: "Programming in C++, the second edition of the handbook",
        title_es: "Programación en C++, la segunda edición del manual",
        brand: "Demo Press",
        product_type: "BOOKS",
        id_type: "ISBN",
        id_value: "0306406152",
    },
    DemoProduct {
        title_en: "Wooden shipping crate holding six packs",
        title_es: "Caja de madera para envíos con seis paquetes",
        brand: "Crate and Pack",
        product_type: "HOME",
        id_type: "GTIN",
        id_value: "10036000291459",
    },
    DemoProduct {
        title_en: "Red enamel camping cup for the outdoors",
        title_es: "Taza esmaltada roja para acampar al aire libre",
        brand: "Trailhead",
        product_type: "OUTDOORS",
        id_type: "UPC",
        id_value: "073400123457",
    },
    DemoProduct {
        title_en: "Creme brulee torch kit with four ramekins",
        title_es: "Juego de soplete de cocina con cuatro moldes para postres",
        brand: "Patisserie Demo",
        product_type: "KITCHEN",
        id_type: "UPC",
        id_value: "042100005264",
    },
    DemoProduct {
        title_en: "Spice sampler set of twelve glass jars",
        title_es: "Juego de especias con doce frascos de vidrio",
        brand: "Spice Route",
        product_type: "GROCERY",
        id_type: "EAN",
        id_value: "5901234123457",
    },
];

/// The ASIN of the demo's tea tin, the one `examples/inventory-small.tsv` names.
const TEA_TIN_ASIN: &str = "B0ABCD1234";

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
            "demo: this database already holds the demo data; its seller token was printed when it was made. Lost it? Create a seller with `onestock seller create NAME` (operator token), or start from a fresh database (move onestock.db away)"
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
    let mut asins: Vec<Asin> = Vec::new();
    for product in CATALOG {
        let mut asin: Option<Asin> = None;
        for code in &codes {
            let lang = languages(code);
            let title = if lang == "es" {
                product.title_es
            } else {
                product.title_en
            };
            let out = service
                .execute(Command::CreateProduct(NewProduct {
                    store: code.clone(),
                    product_type: product.product_type.into(),
                    title: title.into(),
                    brand: product.brand.into(),
                    description: String::new(),
                    language: lang.clone(),
                    identifiers: vec![(product.id_type.into(), product.id_value.into())],
                    force_new: false,
                }))
                .await
                .map_err(app_err)
                .with_context(|| format!("demo product {:?} in {code}", product.title_en))?;
            if let Outcome::Product { asin: a, .. } = out {
                asin = Some(a);
            }
        }
        asins.push(asin.ok_or_else(|| anyhow!("demo product {:?} not created", product.title_en))?);
    }
    let (mug, bottle, kettle) = (asins[0].clone(), asins[1].clone(), asins[2].clone());
    // The rules hand out random ASINs, and `examples/inventory-small.tsv` lists a row on
    // the ASIN B0ABCD1234: that one page is written as the demo's own, with the same
    // fields a created page has, so the example finds it in every store.
    let tea = Asin::parse(TEA_TIN_ASIN).map_err(|e| anyhow!("{e}"))?;
    let pages: Vec<DetailPage> = codes
        .iter()
        .map(|code| {
            let lang = languages(code);
            Ok(DetailPage {
                asin: tea.clone(),
                store: StoreCode::parse(code).ok_or_else(|| anyhow!("bad store {code}"))?,
                title: if lang == "es" {
                    "Lata de té verde en hojas sueltas, 100 gramos".into()
                } else {
                    "Loose leaf green tea in a tin, 100 grams".into()
                },
                brand: "Tea Garden".into(),
                description: String::new(),
                language: lang,
                product_type: "GROCERY".into(),
                identifiers: Vec::new(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let db = service.database().clone();
    tokio::task::spawn_blocking(move || {
        db.write(|tx| {
            for page in &pages {
                tx.insert_page(page)?;
            }
            Ok(())
        })
    })
    .await?
    .context("demo tea tin page")?;

    let prices = ["12.99", "16.99", "229.00"];
    for (i, code) in codes.iter().enumerate() {
        let store = service.region().store(code).map_err(|e| anyhow!("{e}"))?;
        let price = |amount: &str| PriceInput {
            amount: amount.parse::<Decimal>().unwrap_or(Decimal::ONE),
            currency: store.currency.clone(),
        };
        let sc = StoreCode::parse(code).ok_or_else(|| anyhow!("bad store {code}"))?;
        let first = i == 0;
        let mut listings = vec![
            // The mug shares one pool of 25 across every store.
            (
                "MUG-BLUE-350",
                &mug,
                prices[i % prices.len()],
                None,
                first.then_some(25),
            ),
            // The bottle is a unique offer in each store.
            (
                "BOTTLE-STEEL",
                &bottle,
                "19.50",
                Some(ShareMode::Unique),
                Some(5 + i as i64),
            ),
            // A retired mug in every store, for the examples' `d` rows to delete, one
            // store per file (inventory-small.tsv in US, inventory.xlsx in CA,
            // inventory.csv in MX).
            ("OLD-MUG", &mug, "9.99", None, first.then_some(0)),
            // Listed in every store, for the `x` row of inventory-loader-CA.txt.
            ("GONE-EVERYWHERE", &bottle, "5.00", None, first.then_some(1)),
        ];
        match code.as_str() {
            // The shared pool that KETTLE-1L's `existing` row (inventory-small.tsv, US)
            // joins.
            "MX" => listings.push(("KETTLE-1L", &kettle, "899.00", None, Some(4))),
            // For the `d` row of inventory-loader-CA.txt.
            "CA" => listings.push((
                "OLD-SKU-1",
                &bottle,
                "7.00",
                Some(ShareMode::Unique),
                Some(1),
            )),
            _ => {}
        }
        for (sku, asin, amount, share, quantity) in listings {
            service
                .execute(Command::PutListing {
                    seller: seller.clone(),
                    sku: Sku::parse(sku).map_err(|e| anyhow!("{e}"))?,
                    store: sc.clone(),
                    input: ListingInput {
                        asin: Some(asin.clone()),
                        price: Some(price(amount)),
                        share,
                        quantity,
                        ..ListingInput::default()
                    },
                    source: Source::Api,
                    if_match: None,
                })
                .await
                .map_err(app_err)
                .with_context(|| format!("demo listing {sku} in {code}"))?;
        }
    }
    let db = service.database().clone();
    tokio::task::spawn_blocking(move || db.write(|tx| tx.set_setting(DEMO_SETTING, "1")))
        .await?
        .context("mark demo data")?;
    let first = codes.first().cloned().unwrap_or_else(|| "US".into());
    println!("demo: seller {seller_id}, token {token}");
    println!("demo: seller pages at {base}/ (sign in with the seller token above)");
    println!(
        "demo: API reference at {base}/v1/docs/ (the OpenAPI document: {base}/v1/openapi.json)"
    );
    println!(
        "demo: SKU MUG-BLUE-350 shares one pool of 25 in {}; SKU BOTTLE-STEEL is a unique offer in each store",
        codes.join(", ")
    );
    println!(
        "demo: the catalog holds every product of the files in examples/; each uploads without a failed row (examples/README.md names its store)"
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
