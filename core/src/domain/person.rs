//! Personal fields shared by the subject records (children and elders).

use super::codec::string_enum;

string_enum! {
    /// Recorded because services and reports differ by gender (e.g. girls' schooling
    /// drop-out is tracked separately); nothing finer is kept.
    pub enum Gender {
        /// 女
        Female => "female",
        /// 男
        Male => "male",
    }
}

string_enum! {
    /// Whether a subject is still served. Records are closed, not deleted, so that the
    /// history of visits and hours stays consistent; erasure under PIPL is a separate,
    /// server-side operation on whole documents.
    pub enum SubjectStatus {
        /// 在册: in the ledger and served.
        Active => "active",
        /// 已销册: no longer in difficulty or no longer served (e.g. came of age).
        Closed => "closed",
        /// 已迁出: moved out of the village; the new village registers them anew.
        Moved => "moved",
        /// 已故: deceased.
        Deceased => "deceased",
    }
}
