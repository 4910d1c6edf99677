//! A store's contents as `coffer migrate` moves them from one backend to another: the
//! records the traits read, plus what only a whole-store copy needs (a version's place
//! among its key's versions).

use crate::Entry;

/// One version of a key as stored: its entry, its `seq` (a key's versions order by it,
/// newest highest; the current version has the highest) and whether it is the current
/// version. A copy keeps `seq`, so versions keep their order and later writes follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub entry: Entry,
    pub seq: i64,
    pub current: bool,
}

/// Which versions an export reads: the current ones, or the noncurrent ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    Current,
    Noncurrent,
}
