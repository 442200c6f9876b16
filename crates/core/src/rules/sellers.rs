//! Sellers: creating an account (SPEC 4.1).

use super::*;

pub(super) fn create_seller(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    name: &str,
    token_sha256: &str,
) -> Decision {
    let name = name.trim();
    check!(check_text("name", name));
    if name.is_empty() || name.chars().count() > 200 {
        return Ok(Err(DomainError::invalid(
            "name",
            "A seller needs a name of 1 to 200 characters.",
        )));
    }
    let seller = Seller {
        seller_id: SellerId::generate(),
        name: name.to_owned(),
        token_sha256: token_sha256.to_owned(),
        created_at: ctx.now,
    };
    tx.insert_seller(&seller)?;
    Ok(Ok(Outcome::Seller(seller)))
}
