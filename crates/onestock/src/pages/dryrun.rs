//! Asking the rules beforehand, for the offer form: whether "Existing offer" is possible
//! (R8, R9, R17) and why not, and whether to offer "Create anyway", answered by the rules
//! themselves through `onestock_core::dry_run` (the command run with its writes dropped),
//! without a copy of those rules.

use onestock_core::error::DomainError;
use onestock_core::rules::{Command, Ctx};
use onestock_core::storage::{StoreResult, Tx};

/// What the rules would answer.
pub enum Verdict {
    /// Every check passed.
    Taken,
    Refused(DomainError),
}

/// Runs `cmd` without changing anything.
pub fn judge(tx: &mut dyn Tx, ctx: Ctx<'_>, cmd: &Command) -> StoreResult<Verdict> {
    Ok(match onestock_core::dry_run::preview(tx, ctx, cmd)? {
        Ok(_) => Verdict::Taken,
        Err(e) => Verdict::Refused(e),
    })
}
