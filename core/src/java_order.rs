//! The order in which Java 17's hash tables list what ZooKeeper 3.8 keeps in them, where that order
//! shows: the members of a configuration, and the identities of a connection.
//!
//! `QuorumMaj.toString()` walks a `HashMap<Long, QuorumServer>` that was filled while walking the
//! `Properties` of zoo.cfg, and `Properties` (Java 9+) is a `ConcurrentHashMap<Object, Object>`. The text a
//! Java member puts in its election notifications therefore lists `server.N` lines in hash-table order,
//! not file order: ids 0..15 come out ascending, but e.g. `server.33`, `server.1`, `server.17` share a
//! bucket and come out in the order the properties table yielded them. Both tables are emulated here so
//! that `Config::quorum_config_text` matches a Java member byte for byte. A connection's identities are a
//! set backed by a `ConcurrentHashMap<Id, Boolean>`, so `whoAmI` and the audit log's `user` list them in
//! that table's order ([`crate::auth::AuthIds::in_java_order`]).
//!
//! Not emulated (no realistic zoo.cfg reaches them): a bucket of 8+ entries, which Java turns into a tree
//! (or answers with an early resize) and then iterates in another order.

/// Java's `String.hashCode` (over UTF-16 code units, wrapping).
pub fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32))
}

/// The iteration order of a `java.util.Properties` loaded with `keys` (distinct, in load order), as Java
/// 17's `ConcurrentHashMap` yields it: bucket by bucket, each bucket's chain in order. Chains are
/// appended at the tail on insert; a resize splits each chain, keeping the longest tail run (`lastRun`)
/// in place and prepending the nodes before it — which reverses them.
pub fn properties_order<'a>(keys: &[&'a str]) -> Vec<&'a str> {
    let hashed: Vec<(i32, &str)> = keys.iter().map(|&key| (java_string_hash(key), key)).collect();
    concurrent_hash_map_order(&hashed)
}

/// The iteration order of a `ConcurrentHashMap` of 16 bins to start with (`new ConcurrentHashMap<>()`,
/// and `new Properties()`'s `ConcurrentHashMap<>(8)`), filled with `keys` (their Java `hashCode`, and the
/// key) in this order; a repeated key keeps its first place.
pub fn concurrent_hash_map_order<T: PartialEq + Copy>(keys: &[(i32, T)]) -> Vec<T> {
    // Resized when its size reaches three quarters of the bins.
    let mut table: Vec<Vec<(u32, T)>> = vec![Vec::new(); 16];
    let mut size = 0;
    for &(raw, key) in keys {
        let raw = raw as u32;
        let hash = (raw ^ (raw >> 16)) & 0x7fff_ffff;
        let n = table.len();
        let bin = &mut table[hash as usize & (n - 1)];
        if bin.iter().any(|(_, k)| *k == key) {
            continue;
        }
        bin.push((hash, key));
        size += 1;
        if size >= n - n / 4 {
            table = concurrent_resize(table);
        }
    }
    table.into_iter().flatten().map(|(_, key)| key).collect()
}

/// `ConcurrentHashMap.transfer` for one thread: bin `i` of `n` splits into bins `i` and `i + n`.
fn concurrent_resize<T: Copy>(table: Vec<Vec<(u32, T)>>) -> Vec<Vec<(u32, T)>> {
    let n = table.len();
    let mut next = vec![Vec::new(); 2 * n];
    for (i, chain) in table.into_iter().enumerate() {
        let Some(first) = chain.first() else { continue };
        let high = |hash: u32| hash as usize & n != 0;
        let mut run_bit = high(first.0);
        let mut last_run = 0;
        for (p, (hash, _)) in chain.iter().enumerate().skip(1) {
            if high(*hash) != run_bit {
                run_bit = high(*hash);
                last_run = p;
            }
        }
        let (mut low, mut up): (Vec<_>, Vec<_>) = (Vec::new(), Vec::new());
        for node in chain[..last_run].iter().rev() {
            if high(node.0) { up.push(*node) } else { low.push(*node) }
        }
        let tail = &chain[last_run..];
        if run_bit {
            up.extend_from_slice(tail)
        } else {
            low.extend_from_slice(tail)
        }
        next[i] = low;
        next[i + n] = up;
    }
    next
}

/// The iteration order of a `java.util.HashMap<Long, _>` filled with `ids` in this order (repeats keep
/// their first place, as `put` on an existing key does): by bucket of the final table, then by insertion
/// (a `HashMap` resize keeps each chain's order).
pub fn long_hash_map_order(ids: &[i64]) -> Vec<i64> {
    let mut distinct: Vec<i64> = Vec::with_capacity(ids.len());
    for id in ids {
        if !distinct.contains(id) {
            distinct.push(*id);
        }
    }
    // Default capacity 16, doubled whenever the size passes three quarters of it.
    let mut capacity = 16usize;
    while distinct.len() > capacity * 3 / 4 {
        capacity *= 2;
    }
    let bucket = |id: i64| {
        let h = (id ^ ((id as u64) >> 32) as i64) as i32 as u32;
        (h ^ (h >> 16)) as usize & (capacity - 1)
    };
    let mut ordered: Vec<(usize, usize, i64)> =
        distinct.iter().enumerate().map(|(i, id)| (bucket(*id), i, *id)).collect();
    ordered.sort_unstable();
    ordered.into_iter().map(|(_, _, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Orders printed by ZooKeeper 3.8.0 on Java 17 (QuorumPeerConfig.parse + QuorumVerifier.toString)
    /// for the same keys.
    #[test]
    fn matches_java() {
        assert_eq!(java_string_hash("hello"), 99162322);
        let keys = [
            "initLimit",
            "syncLimit",
            "dataDir",
            "clientPort",
            "server.1",
            "server.17",
            "server.33",
            "server.2",
            "server.100",
        ];
        let order = properties_order(&keys);
        let servers: Vec<i64> =
            order.iter().filter_map(|k| k.strip_prefix("server.")).map(|id| id.parse().unwrap()).collect();
        assert_eq!(long_hash_map_order(&servers), vec![33, 1, 17, 2, 100]);
        let keys = ["initLimit", "syncLimit", "dataDir", "clientPort", "server.1", "server.4294967297", "server.65537"];
        let order = properties_order(&keys);
        let servers: Vec<i64> =
            order.iter().filter_map(|k| k.strip_prefix("server.")).map(|id| id.parse().unwrap()).collect();
        assert_eq!(long_hash_map_order(&servers), vec![65537, 4294967297, 1]);
        assert_eq!(long_hash_map_order(&[3, 2, 1, 2]), vec![1, 2, 3]);
    }
}
