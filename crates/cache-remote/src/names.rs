//! Object names. Entries are spread over 256 prefixes by their key's first
//! two hex digits, since S3 scales request rates per prefix:
//!
//! - `<prefix>/<ab>/<key>.npy`: an entry, a plain `.npy` object whose
//!   record travels as its metadata; `<key>.npz` for an entry of several
//!   arrays (an aligned `.npz`);
//! - `<prefix>/<ab>/<key>.blocks`: an entry's block digests (see
//!   `cache_core::blocks`), for an entry of more than one block;
//! - `<prefix>/<ab>/<key>.lease`: a compute-once lease;
//! - `<prefix>/uses/<ab>/<key>`: an empty object whose modification time
//!   is the entry's last recorded use (S3 keeps no access times).

use cache_core::{is_key, Key};
use object_store::path::Path;

/// What an object under the prefix is to the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Named {
    Entry(Key),
    Blocks(Key),
    Lease(Key),
    Use(Key),
    /// Not a name the cache writes: left alone.
    Foreign,
}

#[derive(Debug, Clone)]
pub(crate) struct Names {
    prefix: Path,
}

impl Names {
    pub(crate) fn new(prefix: Path) -> Names {
        Names { prefix }
    }

    pub(crate) fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The object of an entry: with `archive`, of several arrays.
    pub(crate) fn entry(&self, key: &Key, archive: bool) -> Path {
        let key = key.hex();
        self.under(&[&key[..2], &format!("{key}.{}", if archive { "npz" } else { "npy" })])
    }

    /// Both objects an entry may be, the one of one array first.
    pub(crate) fn entries(&self, key: &Key) -> [Path; 2] {
        [self.entry(key, false), self.entry(key, true)]
    }

    /// The object of an entry's block digests.
    pub(crate) fn blocks(&self, key: &Key) -> Path {
        let key = key.hex();
        self.under(&[&key[..2], &format!("{key}.blocks")])
    }

    pub(crate) fn lease(&self, key: &Key) -> Path {
        let key = key.hex();
        self.under(&[&key[..2], &format!("{key}.lease")])
    }

    pub(crate) fn use_mark(&self, key: &Key) -> Path {
        let key = key.hex();
        self.under(&["uses", &key[..2], &key])
    }

    /// Every prefix the cache writes under: `<ab>/` and `uses/<ab>/` for
    /// all 256 values of `ab`.
    pub(crate) fn fan_out_prefixes(&self) -> impl Iterator<Item = Path> + '_ {
        (0..=255u8).flat_map(move |b| {
            let fan = format!("{b:02x}");
            [self.under(&[&fan]), self.under(&["uses", &fan])]
        })
    }

    fn under(&self, parts: &[&str]) -> Path {
        let mut path = self.prefix.clone();
        for part in parts {
            path = path.join(*part);
        }
        path
    }

    /// What `path` (listed under the prefix) is.
    pub(crate) fn name_of(&self, path: &Path) -> Named {
        let Some(parts) = path.prefix_match(&self.prefix) else { return Named::Foreign };
        let parts: Vec<_> = parts.map(|p| p.as_ref().to_owned()).collect();
        let fan_matches = |fan: &str, key: &str| is_key(key) && &key[..2] == fan;
        let key = |k: &str| Key::parse(k).expect("a key, just checked");
        match parts.as_slice() {
            [fan, file] => {
                let entry = file.strip_suffix(".npy").or_else(|| file.strip_suffix(".npz"));
                if let Some(k) = entry.filter(|k| fan_matches(fan, k)) {
                    Named::Entry(key(k))
                } else if let Some(k) = file.strip_suffix(".blocks").filter(|k| fan_matches(fan, k)) {
                    Named::Blocks(key(k))
                } else if let Some(k) = file.strip_suffix(".lease").filter(|k| fan_matches(fan, k)) {
                    Named::Lease(key(k))
                } else {
                    Named::Foreign
                }
            }
            [uses, fan, k] if uses == "uses" && fan_matches(fan, k) => Named::Use(key(k)),
            _ => Named::Foreign,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ab00000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn names_are_the_golden_ones() {
        let v: serde_json::Value = serde_json::from_str(include_str!("../../../test-vectors/layout.json")).unwrap();
        let key = Key::parse(v["key"].as_str().unwrap()).unwrap();
        let s = &v["store"];
        let names = Names::new(Path::from(s["prefix"].as_str().unwrap()));
        assert_eq!(names.entry(&key, false).as_ref(), s["entry"].as_str().unwrap());
        assert_eq!(names.entry(&key, true).as_ref(), s["entryOfArrays"].as_str().unwrap());
        assert_eq!(names.lease(&key).as_ref(), s["lease"].as_str().unwrap());
        assert_eq!(names.blocks(&key).as_ref(), s["blocks"].as_str().unwrap());
        assert_eq!(names.use_mark(&key).as_ref(), s["useMark"].as_str().unwrap());
        assert_eq!(crate::record_meta::RECORD, s["recordMetadata"].as_str().unwrap());
    }

    #[test]
    fn names_round_trip_and_foreign_names_are_told_apart() {
        let names = Names::new(Path::from("team/cache"));
        let key = Key::parse(KEY).unwrap();
        assert_eq!(names.entry(&key, false).as_ref(), format!("team/cache/ab/{KEY}.npy"));
        assert_eq!(names.entry(&key, true).as_ref(), format!("team/cache/ab/{KEY}.npz"));
        assert_eq!(names.name_of(&names.entry(&key, false)), Named::Entry(key));
        assert_eq!(names.name_of(&names.entry(&key, true)), Named::Entry(key));
        assert_eq!(names.name_of(&names.lease(&key)), Named::Lease(key));
        assert_eq!(names.name_of(&names.blocks(&key)), Named::Blocks(key));
        assert_eq!(names.name_of(&names.use_mark(&key)), Named::Use(key));
        // In the wrong fan-out prefix, with another suffix, or outside the prefix: not ours.
        assert_eq!(names.name_of(&Path::from(format!("team/cache/cd/{KEY}.npy"))), Named::Foreign);
        assert_eq!(names.name_of(&Path::from(format!("team/cache/ab/{KEY}.txt"))), Named::Foreign);
        assert_eq!(names.name_of(&Path::from(format!("team/other/ab/{KEY}.npy"))), Named::Foreign);
        assert_eq!(names.name_of(&Path::from("team/cache/notes.txt")), Named::Foreign);
    }
}
