//! The fast path's map: a hash table of byte keys and values laid out in the `u64` words of a
//! [`LockedArray`](crate::LockedArray), which the server and the proxies on its machine map.
//! Every access holds the array's robust lock; this file only says what the words mean and
//! keeps them consistent across a holder killed at any instruction (`docs/manager.md`, "Fast
//! path").
//!
//! Layout (words): `HEAD` header words (magic, slots, arena bytes, count, used, tombstones,
//! compacting, clean), then `2 * slots` slot words (key hash, entry offset + 1; 0 empty,
//! [`TOMB`] removed), then the arena: entries `klen: u32, vlen: u32, key, value`, each padded
//! to 8 bytes, appended and never changed in place. A set appends the entry and then stores
//! its offset in the slot in one word, so a holder killed before that store leaves the old
//! value; counts are recomputed from the slots by [`Table::repair`]. Compaction (when the arena
//! or the slots run out) rewrites everything, flagged by the compacting word, so a holder
//! killed inside it is seen and the map emptied rather than half-rewritten.

const MAGIC: u64 = u64::from_le_bytes(*b"shmpDICT");
const HEAD: usize = 8;
const W_MAGIC: usize = 0;
const W_SLOTS: usize = 1;
const W_ARENA: usize = 2;
const W_COUNT: usize = 3;
const W_USED: usize = 4;
const W_TOMBS: usize = 5;
const W_COMPACTING: usize = 6;
/// 1 after a compaction, until an overwrite or a removal leaves something a compaction would
/// drop: a set that does not fit in a table with nothing to drop is refused without compacting
/// again (each refused set of a full dict rewrote the whole table under its lock).
const W_CLEAN: usize = 7;
/// A removed slot's offset word: probing goes on past it.
const TOMB: u64 = u64::MAX;

/// Why a set did not fit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full {
    pub(crate) slots: u64,
    pub(crate) arena: u64,
}

impl Full {
    /// The refusal a caller shows: what is full and the fix.
    pub(crate) fn reason(&self) -> String {
        format!(
            "the shared dict is full (room for {} keys and {} bytes of encoded keys and values); \
             make it larger with Manager::dict_with_capacity",
            self.slots * 3 / 4,
            self.arena
        )
    }
}

/// Words a table for `keys` keys and `bytes` bytes of entries needs, and its slot count.
pub(crate) fn words_for(keys: u64, bytes: u64) -> Option<(usize, u64)> {
    let slots = keys.checked_mul(4)?.div_ceil(3).max(8).checked_next_power_of_two()?;
    let arena = bytes.checked_add(7)? / 8;
    let words = (HEAD as u64).checked_add(slots.checked_mul(2)?)?.checked_add(arena)?;
    Some((usize::try_from(words).ok()?, slots))
}

/// A view of a table's words, held under the array's lock. The layout (slot count, arena
/// bytes) is read once, when the view is made, and never again: a local process that writes
/// without the lock may change those words at any time, and every index is derived from the
/// copies, so it stays inside the words whatever they say.
pub(crate) struct Table<'a> {
    w: &'a mut [u64],
    slots: usize,
    arena: u64,
}

fn hash(key: &[u8]) -> u64 {
    // FNV-1a: keys are short, and a flood of colliding keys only costs their sender's calls.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn pad8(n: u64) -> u64 {
    n.div_ceil(8) * 8
}

impl<'a> Table<'a> {
    /// Lays out an empty table with `slots` slots (a power of two) over all of `w`.
    pub(crate) fn init(w: &'a mut [u64], slots: u64) -> Table<'a> {
        w.fill(0);
        let arena = (w.len() - HEAD - 2 * slots as usize) as u64 * 8;
        w[W_SLOTS] = slots;
        w[W_ARENA] = arena;
        w[W_MAGIC] = MAGIC;
        Table { w, slots: slots as usize, arena }
    }

    /// A view of words laid out by [`init`](Table::init); `None` if they are not (bytes from
    /// a process that is not trusted to lay them out).
    pub(crate) fn open(w: &'a mut [u64]) -> Option<Table<'a>> {
        let (slots, arena) = (*w.get(W_SLOTS)?, *w.get(W_ARENA)?);
        let fits = (HEAD as u64)
            .checked_add(slots.checked_mul(2)?)
            .and_then(|n| n.checked_add(arena / 8))
            .is_some_and(|n| n == w.len() as u64);
        let ok = w[W_MAGIC] == MAGIC && slots.is_power_of_two() && arena % 8 == 0 && fits;
        ok.then_some(Table { w, slots: slots as usize, arena })
    }

    fn slots(&self) -> usize {
        self.slots
    }

    fn arena(&self) -> &[u8] {
        bytemuck::cast_slice(&self.w[HEAD + 2 * self.slots..])
    }

    /// The key and value of the entry at arena offset `off`, if it lies inside the arena.
    fn entry(&self, off: u64) -> Option<(&[u8], &[u8])> {
        let a = self.arena();
        let o = usize::try_from(off).ok()?;
        let head = a.get(o..o.checked_add(8)?)?;
        let klen = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
        let vlen = u32::from_le_bytes(head[4..].try_into().ok()?) as usize;
        let k0 = o + 8;
        let key = a.get(k0..k0.checked_add(klen)?)?;
        let value = a.get(k0 + klen..(k0 + klen).checked_add(vlen)?)?;
        Some((key, value))
    }

    /// The slot holding `key` (`Ok`), or the slot a new `key` goes in (`Err`, `None` if every
    /// slot is taken).
    fn find(&self, h: u64, key: &[u8]) -> Result<usize, Option<usize>> {
        let n = self.slots();
        let mut free = None;
        for i in 0..n {
            let s = (h as usize).wrapping_add(i) & (n - 1);
            let (sh, off) = (self.w[HEAD + 2 * s], self.w[HEAD + 2 * s + 1]);
            match off {
                0 => return Err(free.or(Some(s))),
                TOMB => free = free.or(Some(s)),
                _ if sh == h && self.entry(off - 1).is_some_and(|(k, _)| k == key) => {
                    return Ok(s);
                }
                _ => {}
            }
        }
        Err(free)
    }

    /// How many keys it holds.
    pub(crate) fn len(&self) -> u64 {
        self.w[W_COUNT]
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let s = self.find(hash(key), key).ok()?;
        self.entry(self.w[HEAD + 2 * s + 1] - 1).map(|(_, v)| v.to_vec())
    }

    /// Whether `key` has a value.
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.find(hash(key), key).is_ok()
    }

    /// Appends an entry; its arena offset, or `None` if the arena has no room.
    fn append(&mut self, key: &[u8], value: &[u8]) -> Option<u64> {
        let klen = u32::try_from(key.len()).ok()?;
        let vlen = u32::try_from(value.len()).ok()?;
        let used = self.w[W_USED];
        let need = pad8(8 + key.len() as u64 + value.len() as u64);
        if used.checked_add(need)? > self.arena {
            return None;
        }
        let start = HEAD + 2 * self.slots();
        let a: &mut [u8] = bytemuck::cast_slice_mut(&mut self.w[start..]);
        let o = used as usize;
        a[o..o + 4].copy_from_slice(&klen.to_le_bytes());
        a[o + 4..o + 8].copy_from_slice(&vlen.to_le_bytes());
        a[o + 8..o + 8 + key.len()].copy_from_slice(key);
        a[o + 8 + key.len()..o + 8 + key.len() + value.len()].copy_from_slice(value);
        self.w[W_USED] = used + need;
        Some(used)
    }

    /// Sets `key` to `value`, compacting once if the arena or the slots are full.
    pub(crate) fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), Full> {
        match self.try_set(key, value) {
            Some(()) => Ok(()),
            None if self.w[W_CLEAN] != 0 => {
                Err(Full { slots: self.slots as u64, arena: self.arena })
            }
            None => {
                self.compact();
                self.try_set(key, value).ok_or(Full { slots: self.slots as u64, arena: self.arena })
            }
        }
    }

    fn try_set(&mut self, key: &[u8], value: &[u8]) -> Option<()> {
        let h = hash(key);
        let found = self.find(h, key);
        if found.is_err() {
            let taken = self.w[W_COUNT].saturating_add(self.w[W_TOMBS]).saturating_add(1);
            if taken > self.slots as u64 * 3 / 4 {
                return None;
            }
        }
        let free = match found {
            Ok(s) => Ok(s),
            Err(free) => Err(free?),
        };
        let off = self.append(key, value)?;
        match free {
            // One word: the old value until it is stored, the new one after.
            Ok(s) => {
                self.w[HEAD + 2 * s + 1] = off + 1;
                self.w[W_CLEAN] = 0; // the old entry is garbage now
            }
            Err(s) => {
                // A tombstone until the offset lands, whatever the hash word says meanwhile.
                if self.w[HEAD + 2 * s + 1] == TOMB {
                    self.w[W_TOMBS] = self.w[W_TOMBS].saturating_sub(1);
                }
                self.w[HEAD + 2 * s] = h;
                self.w[HEAD + 2 * s + 1] = off + 1;
                self.w[W_COUNT] = self.w[W_COUNT].saturating_add(1);
            }
        }
        Some(())
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let s = self.find(hash(key), key).ok()?;
        let v = self.entry(self.w[HEAD + 2 * s + 1] - 1).map(|(_, v)| v.to_vec());
        self.w[HEAD + 2 * s + 1] = TOMB;
        self.w[W_CLEAN] = 0;
        // Saturating: words a misbehaving local process wrote must not panic the server.
        self.w[W_COUNT] = self.w[W_COUNT].saturating_sub(1);
        self.w[W_TOMBS] = self.w[W_TOMBS].saturating_add(1);
        v
    }

    /// Every pair, in the byte order of the keys (as the server's other dict gives them). The
    /// live entries of a table fit in its arena, so no more than the arena's bytes are copied
    /// out: slots a misbehaving process pointed at one large entry are not listed past that.
    pub(crate) fn pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut budget = self.arena;
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = (0..self.slots)
            .filter_map(|s| match self.w[HEAD + 2 * s + 1] {
                0 | TOMB => None,
                off => self.entry(off - 1),
            })
            .map_while(|(k, v)| {
                budget = budget.checked_sub(pad8(8 + k.len() as u64 + v.len() as u64))?;
                Some((k.to_vec(), v.to_vec()))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Removes every key: empties the slots (the arena's old bytes are past `used`, never
    /// read). Flagged as compaction is, and the layout words never leave their values, so a
    /// holder killed inside it leaves a table that opens and that [`repair`](Table::repair)
    /// empties (zeroing the words from the first, as a fresh table is laid out, left a killed
    /// holder's dict unreadable for good).
    pub(crate) fn clear(&mut self) {
        self.w[W_COMPACTING] = 1;
        self.w[HEAD..HEAD + 2 * self.slots].fill(0);
        self.w[W_COUNT] = 0;
        self.w[W_USED] = 0;
        self.w[W_TOMBS] = 0;
        self.w[W_CLEAN] = 0;
        self.w[W_SLOTS] = self.slots as u64;
        self.w[W_ARENA] = self.arena;
        self.w[W_MAGIC] = MAGIC;
        self.w[W_COMPACTING] = 0;
    }

    /// Rewrites the live entries from the start of the arena, dropping tombstones.
    fn compact(&mut self) {
        let live = self.pairs();
        self.w[W_COMPACTING] = 1;
        let slots = self.slots();
        self.w[HEAD..HEAD + 2 * slots].fill(0);
        self.w[W_COUNT] = 0;
        self.w[W_USED] = 0;
        self.w[W_TOMBS] = 0;
        for (k, v) in &live {
            // They fitted before, without the garbage: they fit again.
            let _ = self.try_set(k, v);
        }
        self.w[W_CLEAN] = 1;
        self.w[W_COMPACTING] = 0;
    }

    /// After a holder died inside an operation: makes the words consistent again. Returns
    /// `true` if the map had to be emptied (the holder died compacting it).
    pub(crate) fn repair(&mut self) -> bool {
        if self.w[W_COMPACTING] != 0 {
            self.clear();
            return true;
        }
        let (mut count, mut tombs) = (0, 0);
        for s in 0..self.slots() {
            match self.w[HEAD + 2 * s + 1] {
                0 => {}
                TOMB => tombs += 1,
                _ => count += 1,
            }
        }
        self.w[W_COUNT] = count;
        self.w[W_TOMBS] = tombs;
        // A holder killed between its append and its slot store left an unreachable entry.
        self.w[W_CLEAN] = 0;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(w: &mut Vec<u64>, keys: u64, bytes: u64) -> Table<'_> {
        let (n, slots) = words_for(keys, bytes).unwrap();
        w.resize(n, 0);
        Table::init(w, slots)
    }

    #[test]
    fn sets_gets_removes_and_compacts() {
        let mut w = Vec::new();
        let mut t = table(&mut w, 16, 512);
        for round in 0..200u32 {
            let k = (round % 10).to_le_bytes();
            t.set(&k, &round.to_le_bytes()).unwrap();
            assert_eq!(t.get(&k), Some(round.to_le_bytes().to_vec()));
            if round % 3 == 0 {
                assert!(t.remove(&k).is_some());
                assert!(!t.contains(&k));
            }
        }
        let pairs = t.pairs();
        assert_eq!(pairs.len() as u64, t.len());
        assert!(pairs.windows(2).all(|p| p[0].0 < p[1].0));
        assert!(!t.repair());
        assert_eq!(pairs.len() as u64, t.len());
    }

    #[test]
    fn a_full_table_refuses_and_keeps_what_it_holds() {
        let mut w = Vec::new();
        let mut t = table(&mut w, 4, 64);
        let mut stored = 0;
        for i in 0..100u32 {
            match t.set(&i.to_le_bytes(), &[7; 8]) {
                Ok(()) => stored += 1,
                Err(full) => {
                    assert!(full.reason().contains("dict_with_capacity"));
                    break;
                }
            }
        }
        assert!(stored > 0 && stored < 100);
        assert_eq!(t.len(), stored);
        assert_eq!(t.get(&0u32.to_le_bytes()), Some(vec![7; 8]));
    }

    #[test]
    fn a_full_table_with_nothing_to_drop_refuses_without_compacting_again() {
        let mut w = Vec::new();
        let mut t = table(&mut w, 64, 256);
        let mut i = 0u32;
        while t.set(&i.to_le_bytes(), &[1; 8]).is_ok() {
            i += 1;
        }
        assert_eq!(t.w[W_CLEAN], 1);
        // A compaction would recompute `used` from the live entries; none runs, so this stays.
        let used = t.w[W_USED];
        t.w[W_USED] = used + 8;
        assert!(t.set(b"new", &[2; 8]).is_err());
        assert_eq!(t.w[W_USED], used + 8, "a refused set compacted a table with nothing to drop");
        t.w[W_USED] = used;
        // A removal leaves something to drop: the next set that needs room compacts and fits.
        assert!(t.remove(&0u32.to_le_bytes()).is_some());
        t.set(b"new", &[2; 8]).unwrap();
        assert_eq!(t.get(b"new"), Some(vec![2; 8]));
        assert_eq!(t.len(), u64::from(i));
    }

    #[test]
    fn a_holder_killed_while_compacting_is_flagged_and_the_map_emptied() {
        let mut w = Vec::new();
        let mut t = table(&mut w, 16, 512);
        t.set(b"a", b"1").unwrap();
        t.w[W_COMPACTING] = 1; // as a holder killed inside compact() leaves it
        assert!(t.repair());
        assert_eq!(t.len(), 0);
        assert_eq!(t.get(b"a"), None);
        t.set(b"b", b"2").unwrap();
        assert_eq!(t.get(b"b"), Some(b"2".to_vec()));
    }

    #[test]
    fn words_that_are_not_a_table_do_not_open() {
        let mut w = vec![0u64; 64];
        assert!(Table::open(&mut w).is_none());
        w[W_MAGIC] = MAGIC;
        w[W_SLOTS] = 1 << 40;
        assert!(Table::open(&mut w).is_none());
        let mut w = vec![u64::MAX; 64];
        assert!(Table::open(&mut w).is_none());
    }

    #[test]
    fn layout_words_scribbled_after_open_are_not_reread() {
        // A local process that writes without the lock can change any word at any time, the
        // layout words too, after the holder checked them in open().
        let mut w = Vec::new();
        let mut t = table(&mut w, 16, 512);
        t.set(b"a", b"1").unwrap();
        t.w[W_SLOTS] = 1 << 40;
        t.w[W_ARENA] = u64::MAX;
        t.w[W_USED] = 400;
        let _ = (t.get(b"a"), t.contains(b"b"), t.set(b"c", &[3; 200]), t.remove(b"a"));
        let _ = (t.pairs(), t.len(), t.repair());
        t.clear();
        assert_eq!(t.slots(), 32);
        t.set(b"d", b"4").unwrap();
        assert_eq!(t.get(b"d"), Some(b"4".to_vec()));
    }

    #[test]
    fn slots_that_all_name_one_large_entry_do_not_multiply_it() {
        // Every slot pointing at one entry as large as the arena: listing the pairs must not
        // allocate slots x arena bytes (a local process could make the server allocate without
        // bound), nor may compaction.
        let mut w = Vec::new();
        let mut t = table(&mut w, 3000, 1 << 16);
        t.set(b"k", &vec![9u8; (1 << 16) - 16]).unwrap();
        let slots = t.slots();
        let (h, off) = (t.w[HEAD + 2 * slot_of(&t, b"k")], t.w[HEAD + 2 * slot_of(&t, b"k") + 1]);
        for s in 0..slots {
            t.w[HEAD + 2 * s] = h;
            t.w[HEAD + 2 * s + 1] = off;
        }
        let bytes: usize = t.pairs().iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(bytes <= 1 << 16, "{bytes} bytes listed from a {}-byte arena", 1 << 16);
        let _ = t.set(b"other", &[1; 100]); // compacts
        let _ = t.pairs();
    }

    fn slot_of(t: &Table<'_>, key: &[u8]) -> usize {
        t.find(hash(key), key).unwrap()
    }

    #[test]
    fn scribbled_words_give_wrong_answers_never_a_panic() {
        let mut w = Vec::new();
        let mut t = table(&mut w, 16, 512);
        for i in 0..8u8 {
            t.set(&[i], &[i; 3]).unwrap();
        }
        let n = w.len();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..200 {
            let mut w2 = w.clone();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Every word but the layout (magic, slots, arena), which open() checks.
                let i = 3 + (seed as usize % (n - 3));
                w2[i] = if round % 2 == 0 { seed } else { seed % 1024 };
            }
            let mut t = Table::open(&mut w2).unwrap();
            for i in 0..8u8 {
                let _ = (t.get(&[i]), t.contains(&[i]), t.remove(&[i]));
                let _ = t.set(&[i, i], &[1; 40]);
            }
            let _ = (t.pairs(), t.len(), t.repair());
        }
    }
}
