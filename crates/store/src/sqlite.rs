//! SQLite backend (placeholder until written).
use onestock_core::storage::{StoreResult, Tx};
pub struct SqliteDb;
impl SqliteDb {
    pub fn open(_path: &str) -> StoreResult<SqliteDb> { todo!() }
    pub fn write_once(&self, _f: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> { todo!() }
    pub fn read_once(&self, _f: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> { todo!() }
}
