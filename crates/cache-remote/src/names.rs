//! Object names. Entries are spread over 256 prefixes by their key's first
//! two hex digits, since S3 scales request rates per prefix:
//!
//! - `<prefix>/<ab>/<key>.npy`: an entry, a plain `.npy` object whose
//!   record travels as its metadata;
//! - `<prefix>/<ab>/<key>.lease`: a compute-once lease;
//! - `<prefix>/uses/<ab>/<key>`: an empty object whose modification time
//!   is the entry's last recorded use (S3 keeps no access times).

use object_store::path::Path;

use crate::RemoteError;

/// What an object under the prefix is to the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Named {
    Entry(String),
    Lease(String),
    Use(String),
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

    pub(crate) fn entry(&self, key: &str) -> Path {
        self.under(&[&key[..2], &format!("{key}.npy")])
    }

    pub(crate) fn lease(&self, key: &str) -> Path {
        self.under(&[&key[..2], &format!("{key}.lease")])
    }

    pub(crate) fn use_mark(&self, key: &str) -> Path {
        self.under(&["uses", &key[..2], key])
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
        match parts.as_slice() {
            [fan, file] => {
                if let Some(key) = file.strip_suffix(".npy").filter(|k| fan_matches(fan, k)) {
                    Named::Entry(key.to_owned())
                } else if let Some(key) = file.strip_suffix(".lease").filter(|k| fan_matches(fan, k)) {
                    Named::Lease(key.to_owned())
                } else {
                    Named::Foreign
                }
            }
            [uses, fan, key] if uses == "uses" && fan_matches(fan, key) => Named::Use(key.clone()),
            _ => Named::Foreign,
        }
    }
}

/// A cache key: 64 lower-case hex digits (it names objects).
pub(crate) use cache_store::is_key;

pub(crate) fn check_key(key: &str) -> Result<(), RemoteError> {
    if is_key(key) {
        Ok(())
    } else {
        Err(RemoteError::BadKey(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ab00000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn names_round_trip_and_foreign_names_are_told_apart() {
        let names = Names::new(Path::from("team/cache"));
        assert_eq!(names.entry(KEY).as_ref(), format!("team/cache/ab/{KEY}.npy"));
        assert_eq!(names.name_of(&names.entry(KEY)), Named::Entry(KEY.into()));
        assert_eq!(names.name_of(&names.lease(KEY)), Named::Lease(KEY.into()));
        assert_eq!(names.name_of(&names.use_mark(KEY)), Named::Use(KEY.into()));
        // In the wrong fan-out prefix, with another suffix, or outside the prefix: not ours.
        assert_eq!(names.name_of(&Path::from(format!("team/cache/cd/{KEY}.npy"))), Named::Foreign);
        assert_eq!(names.name_of(&Path::from(format!("team/cache/ab/{KEY}.txt"))), Named::Foreign);
        assert_eq!(names.name_of(&Path::from(format!("team/other/ab/{KEY}.npy"))), Named::Foreign);
        assert_eq!(names.name_of(&Path::from("team/cache/notes.txt")), Named::Foreign);
    }

    #[test]
    fn only_lower_case_hex_keys_are_keys() {
        assert!(check_key(KEY).is_ok());
        assert!(check_key(&KEY.to_uppercase()).is_err());
        assert!(check_key("../x").is_err());
    }
}
