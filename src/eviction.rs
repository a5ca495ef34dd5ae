//! Making room in a bounded map: the `count` entries with the smallest stamp go (the least
//! recently used, or the soonest to expire). A leaf module: the role cache, the caller limiter
//! and the bearer cache each bound their maps with it.

use std::collections::HashMap;
use std::hash::Hash;

/// Removes the `count` entries of `map` whose `stamp` is smallest (all of them when fewer).
pub fn drop_smallest<K: Clone + Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    count: usize,
    stamp: impl Fn(&V) -> u64,
) {
    if count >= map.len() {
        map.clear();
        return;
    }
    if count == 0 {
        return;
    }
    let mut by_stamp: Vec<(u64, K)> = map.iter().map(|(k, v)| (stamp(v), k.clone())).collect();
    by_stamp.select_nth_unstable_by_key(count - 1, |(stamp, _)| *stamp);
    for (_, key) in &by_stamp[..count] {
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_stamps_go() {
        let mut map: HashMap<&str, u64> = [("a", 5), ("b", 1), ("c", 9), ("d", 3)].into();
        drop_smallest(&mut map, 2, |v| *v);
        let mut left: Vec<&str> = map.keys().copied().collect();
        left.sort_unstable();
        assert_eq!(left, ["a", "c"]);
        drop_smallest(&mut map, 0, |v| *v);
        assert_eq!(map.len(), 2);
        drop_smallest(&mut map, 5, |v| *v);
        assert!(map.is_empty());
    }
}
