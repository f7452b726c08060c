//! A map that journals every change, so that a refused command is undone exactly
//! and the edge writes only the rows a command touched.
//!
//! Rules:
//! - [`Table::begin`] starts a command; every `get_mut`, `insert`, `remove` and
//!   `entry_mut` after it records the row as it was before its first change.
//! - [`Table::rollback`] restores those rows; [`Table::commit`] moves their keys
//!   into the dirty set, which [`Table::take_dirty`] hands to the persistence layer.
//! - A command costs only the rows it touches: nothing here walks the whole map.
//! - Equality and the serialized form are the rows alone.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};

/// Rows by key, with an undo journal for the running command.
#[derive(Debug, Clone)]
pub struct Table<K: Ord + Clone, V: Clone> {
    rows: BTreeMap<K, V>,
    undo: BTreeMap<K, Option<V>>,
    dirty: BTreeSet<K>,
}

impl<K: Ord + Clone, V: Clone> Default for Table<K, V> {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
            undo: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone, V: Clone + PartialEq> PartialEq for Table<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.rows == other.rows
    }
}
impl<K: Ord + Clone, V: Clone + Eq> Eq for Table<K, V> {}

impl<K: Ord + Clone + Serialize, V: Clone + Serialize> Serialize for Table<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.rows.serialize(s)
    }
}
impl<'de, K: Ord + Clone + Deserialize<'de>, V: Clone + Deserialize<'de>> Deserialize<'de>
    for Table<K, V>
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self {
            rows: BTreeMap::deserialize(d)?,
            ..Self::default()
        })
    }
}

impl<K: Ord + Clone, V: Clone> FromIterator<(K, V)> for Table<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            rows: iter.into_iter().collect(),
            ..Self::default()
        }
    }
}

impl<'a, K: Ord + Clone, V: Clone> IntoIterator for &'a Table<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::collections::btree_map::Iter<'a, K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.rows.iter()
    }
}

impl<K: Ord + Clone, V: Clone> Table<K, V> {
    pub fn get(&self, k: &K) -> Option<&V> {
        self.rows.get(k)
    }
    pub fn contains_key(&self, k: &K) -> bool {
        self.rows.contains_key(k)
    }
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.rows.iter()
    }
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.rows.values()
    }
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.rows.keys()
    }

    fn journal(&mut self, k: &K) {
        if !self.undo.contains_key(k) {
            let before = self.rows.get(k).cloned();
            self.undo.insert(k.clone(), before);
        }
    }

    /// A row to change (journaled).
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        if !self.rows.contains_key(k) {
            return None;
        }
        self.journal(k);
        self.rows.get_mut(k)
    }
    /// Inserts or replaces a row (journaled).
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        self.journal(&k);
        self.rows.insert(k, v)
    }
    /// Removes a row (journaled).
    pub fn remove(&mut self, k: &K) -> Option<V> {
        if !self.rows.contains_key(k) {
            return None;
        }
        self.journal(k);
        self.rows.remove(k)
    }
    /// Keeps only the rows `keep` accepts (journaled).
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let gone: Vec<K> = self
            .rows
            .iter()
            .filter(|(k, v)| !keep(k, v))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            self.remove(&k);
        }
    }

    /// Starts a command: forgets the previous command's journal.
    pub fn begin(&mut self) {
        self.undo.clear();
    }
    /// Keys touched by the running command.
    pub fn touched(&self) -> impl Iterator<Item = &K> {
        self.undo.keys()
    }
    /// Undoes the running command.
    pub fn rollback(&mut self) {
        for (k, before) in std::mem::take(&mut self.undo) {
            match before {
                Some(v) => {
                    self.rows.insert(k, v);
                }
                None => {
                    self.rows.remove(&k);
                }
            }
        }
    }
    /// Ends the running command: its keys become dirty.
    pub fn commit(&mut self) {
        for (k, _) in std::mem::take(&mut self.undo) {
            self.dirty.insert(k);
        }
    }
    /// Keys changed since the last call (present: write the row; absent: delete it).
    pub fn take_dirty(&mut self) -> BTreeSet<K> {
        std::mem::take(&mut self.dirty)
    }
    /// Marks every row dirty (after a configuration change or a migration).
    pub fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.rows.keys().cloned());
    }
}

impl<K: Ord + Clone, V: Clone + Default> Table<K, V> {
    /// A row to change, created empty when missing (journaled).
    pub fn entry_mut(&mut self, k: K) -> &mut V {
        self.journal(&k);
        self.rows.entry(k).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_restores_changed_inserted_and_removed_rows() {
        let mut t: Table<u32, String> = [(1, "a".to_string()), (2, "b".to_string())]
            .into_iter()
            .collect();
        let before = t.clone();
        t.begin();
        if let Some(v) = t.get_mut(&1) {
            v.push('x');
        }
        t.insert(3, "c".into());
        t.remove(&2);
        assert_ne!(t, before);
        t.rollback();
        assert_eq!(t, before);
        assert!(t.take_dirty().is_empty());
    }

    #[test]
    fn commit_marks_only_touched_rows_dirty() {
        let mut t: Table<u32, u32> = (0..100).map(|i| (i, i)).collect();
        t.begin();
        if let Some(v) = t.get_mut(&7) {
            *v = 70;
        }
        t.remove(&9);
        t.commit();
        assert_eq!(t.take_dirty().into_iter().collect::<Vec<_>>(), vec![7, 9]);
        assert!(t.take_dirty().is_empty());
    }
}
