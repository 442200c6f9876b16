//! PostgreSQL backend (placeholder until written).
use onestock_core::storage::{StoreResult, Tx};
pub struct PgDb;
impl PgDb {
    pub fn open(_url: &str) -> StoreResult<PgDb> { todo!() }
    pub fn write_once(&self, _f: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> { todo!() }
    pub fn read_once(&self, _f: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> { todo!() }
}
