//! The tree's hash tables — the path index and each node's children: slab slots, keyed by strings that
//! live in the nodes themselves.

use hashbrown::HashTable;

/// One entry: a node's slab slot and 32 bits of its key's hash. Keeping the hash bits lets a table grow
/// without going back to the nodes for their keys, a cache miss apiece: growing a million-entry table
/// that way stalled the applier for a quarter of a second, and log replay after a snapshot load (whose
/// tables are sized to fit) paid it on its first creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub slot: u32,
    hash: u32,
}

impl Entry {
    pub fn new(key_hash: u64, slot: u32) -> Entry {
        Entry { slot, hash: key_hash as u32 }
    }

    fn table_hash(&self) -> u64 {
        spread(self.hash)
    }
}

/// The hash hashbrown sees: the kept 32 bits in the low half, where buckets are chosen, and again in
/// the high half, where its 7-bit tags come from.
fn spread(hash: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(hash)
}

#[derive(Debug, Default)]
pub struct Table(HashTable<Entry>);

/// Batches at least this big are sorted into bucket order before they are inserted.
const SORTED_BATCH: usize = 4096;

impl Table {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().map(|e| e.slot)
    }

    /// The slot whose key hashes to `key_hash` and satisfies `is_key`.
    pub fn find(&self, key_hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let hash = key_hash as u32;
        self.0.find(spread(hash), |e| e.hash == hash && is_key(e.slot)).map(|e| e.slot)
    }

    pub fn insert(&mut self, entry: Entry) {
        self.0.insert_unique(entry.table_hash(), entry, Entry::table_hash);
    }

    /// Removes `entry`; false if it was not there.
    pub fn remove(&mut self, entry: Entry) -> bool {
        match self.0.find_entry(entry.table_hash(), |e| *e == entry) {
            Ok(found) => {
                found.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Inserts many entries, with room reserved for all at once. A big batch is sorted by the bucket
    /// each entry's probe starts at, so that the inserts sweep the table instead of jumping around a
    /// table much larger than the caches; which bucket an entry lands in, and so lookups, do not
    /// depend on the order.
    pub fn insert_batch(&mut self, entries: &mut [Entry]) {
        self.0.reserve(entries.len(), Entry::table_hash);
        if entries.len() >= SORTED_BATCH {
            // hashbrown keeps 7/8 of a power-of-two bucket count usable and starts probing at hash & mask.
            let mask = ((self.0.capacity() / 7 * 8).next_power_of_two() - 1) as u64;
            entries.sort_unstable_by_key(|e| e.table_hash() & mask);
        }
        for &entry in entries.iter() {
            self.insert(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_by_hash_and_key_through_growth() {
        let mut table = Table::default();
        // Hashes that share their low 32 bits, and so collide in everything the table keeps.
        let hash_of = |slot: u32| u64::from(slot % 7) | (u64::from(slot) << 40);
        for slot in 0..10_000 {
            table.insert(Entry::new(hash_of(slot), slot));
        }
        let mut batch: Vec<Entry> = (10_000..20_000).map(|slot| Entry::new(hash_of(slot), slot)).collect();
        table.insert_batch(&mut batch);
        assert_eq!(table.len(), 20_000);
        assert_eq!(table.find(hash_of(12_345), |slot| slot == 12_345), Some(12_345));
        assert_eq!(table.find(hash_of(12_345), |slot| slot == 99_999), None);
        assert!(table.remove(Entry::new(hash_of(5), 5)));
        assert!(!table.remove(Entry::new(hash_of(5), 5)));
        assert_eq!(table.find(hash_of(5), |slot| slot == 5), None);
        assert_eq!(table.slots().count(), 19_999);
    }
}
