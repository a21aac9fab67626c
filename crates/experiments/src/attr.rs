//! Attribute names as small integers, so targeting finds an attribute in a
//! [`Context`](crate::Context) without hashing or comparing its name.
//!
//! Only the compiler interns: a name gets an id when a compiled condition
//! or rule reads it, so the table grows with the flag and experiment
//! definitions, never with what callers put into contexts. A context asks
//! the table once, when it is built, which of its names have ids, and
//! remembers how many ids existed then: a condition compiled later, with a
//! name that was new to the table, falls back to the lookup by name.
//!
//! Hand-written: interner crates (`lasso`, `string-interner`) hand out keys
//! for every string they are given, which would make the table grow with
//! untrusted context attributes.

use std::sync::{LazyLock, RwLock};

use rustc_hash::FxHashMap;

/// An interned attribute name.
pub(crate) type AttrId = u32;

pub(crate) struct Table {
    ids: FxHashMap<Box<str>, AttrId>,
}

static TABLE: LazyLock<RwLock<Table>> = LazyLock::new(|| {
    RwLock::new(Table {
        ids: FxHashMap::default(),
    })
});

/// An attribute name with its interned id, as rules keep their hash
/// attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttrName {
    pub(crate) name: String,
    pub(crate) id: AttrId,
}

impl AttrName {
    pub(crate) fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            id: intern(&name),
            name,
        }
    }
}

/// The id of `name`, assigning the next one when it has none.
pub(crate) fn intern(name: &str) -> AttrId {
    if let Some(id) = read(|t| t.get(name)) {
        return id;
    }
    let mut t = TABLE.write().unwrap_or_else(|p| p.into_inner());
    let next = t.len();
    *t.ids.entry(name.into()).or_insert(next)
}

/// Runs `f` on the table under its read lock.
pub(crate) fn read<R>(f: impl FnOnce(&Table) -> R) -> R {
    f(&TABLE.read().unwrap_or_else(|p| p.into_inner()))
}

impl Table {
    /// How many ids exist: every id below it was assigned already.
    pub(crate) fn len(&self) -> AttrId {
        AttrId::try_from(self.ids.len()).unwrap_or(AttrId::MAX)
    }

    /// The id of `name`, if it has one.
    pub(crate) fn get(&self, name: &str) -> Option<AttrId> {
        self.ids.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_keeps_its_id_and_ids_are_dense() {
        let a = intern("attr-test-a");
        let b = intern("attr-test-b");
        assert_ne!(a, b);
        assert_eq!(intern("attr-test-a"), a);
        read(|t| {
            assert_eq!(t.get("attr-test-b"), Some(b));
            assert!(a < t.len() && b < t.len());
            assert_eq!(t.get("attr-test-never-interned"), None);
        });
    }
}
