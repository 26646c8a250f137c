//! Where nodes live: a slab of fixed-size chunks, addressed by `u32`. Tables hold these 4-byte indexes
//! instead of nodes or strings, and chunks grow without the doubling (and copying) of one big `Vec`.

const CHUNK_BITS: u32 = 12;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;

pub struct Slab<T> {
    chunks: Vec<Box<[Option<T>]>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { chunks: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Slab<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, index: u32) -> Option<&T> {
        self.chunks.get((index >> CHUNK_BITS) as usize)?[index as usize & (CHUNK_LEN - 1)].as_ref()
    }

    pub fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        self.chunks.get_mut((index >> CHUNK_BITS) as usize)?[index as usize & (CHUNK_LEN - 1)].as_mut()
    }

    /// Stores `value` in a free slot and returns its index.
    pub fn insert(&mut self, value: T) -> u32 {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.chunks.len() * CHUNK_LEN).expect("more than 2^32 nodes");
                self.chunks.push((0..CHUNK_LEN).map(|_| None).collect());
                self.free.extend((index + 1..index + CHUNK_LEN as u32).rev());
                index
            }
        };
        let slot = &mut self.chunks[(index >> CHUNK_BITS) as usize][index as usize & (CHUNK_LEN - 1)];
        assert!(slot.is_none(), "slab slot {index} handed out twice");
        *slot = Some(value);
        self.len += 1;
        index
    }

    pub fn remove(&mut self, index: u32) -> T {
        let slot = &mut self.chunks[(index >> CHUNK_BITS) as usize][index as usize & (CHUNK_LEN - 1)];
        let value = slot.take().unwrap_or_else(|| panic!("slab slot {index} is empty"));
        self.free.push(index);
        self.len -= 1;
        value
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk
                .iter()
                .enumerate()
                .filter_map(move |(i, slot)| slot.as_ref().map(|v| (((c << CHUNK_BITS) | i) as u32, v)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_chunks_grow() {
        let mut slab = Slab::default();
        let ids: Vec<u32> = (0..5000).map(|i| slab.insert(i)).collect();
        assert_eq!(slab.len(), 5000);
        assert_eq!(slab.get(ids[4999]), Some(&4999));
        assert_eq!(slab.remove(ids[10]), 10);
        assert_eq!(slab.get(ids[10]), None);
        assert_eq!(slab.insert(42), ids[10]);
        assert_eq!(slab.iter().count(), 5000);
    }
}
