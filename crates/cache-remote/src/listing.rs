//! Listing one fan-out prefix page by page, past objects whose names the
//! store's client cannot take as paths: someone else's objects, with a
//! control character, or an empty, `.` or `..` segment in the name.
//! object_store fails a whole page (and so the whole listing) for one such
//! name; here the page is narrowed down until that name is the only object
//! asked for, which is then skipped, counted, and listed past. A name the
//! store lists other than it is named is listed past with every name that
//! could be it (see [`past_control`]).

use std::sync::Arc;

use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::{self, Path, DELIMITER};
use object_store::{ObjectMeta, ObjectStore};

/// A store's page-by-page listing.
#[derive(Clone)]
pub(crate) struct Paged(pub(crate) Arc<dyn PaginatedListStore>);

impl std::fmt::Debug for Paged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Paged")
    }
}

/// Objects per request, as S3 serves them.
const PAGE: usize = 1000;

/// One page of a listing.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub(crate) objects: Vec<ObjectMeta>,
    /// Objects skipped because their names are not paths.
    pub(crate) skipped: u64,
}

/// The objects under `prefix`, a page at a time. Through `paged` (S3, GCS,
/// Azure) an unparsable name costs about 20 more requests; a store without
/// pages (in-memory, tests) is listed by `ObjectStore::list`, where an
/// unparsable name is counted and ends the listing of that prefix.
pub(crate) fn pages(
    store: &Arc<dyn ObjectStore>,
    paged: Option<&Paged>,
    prefix: &Path,
) -> BoxStream<'static, object_store::Result<Page>> {
    match paged {
        Some(paged) => by_pages(Arc::clone(&paged.0), format!("{}{DELIMITER}", prefix.as_ref())),
        None => store
            .list(Some(prefix))
            .chunks(PAGE)
            .map(|items| {
                let mut page = Page::default();
                for item in items {
                    match item {
                        Ok(meta) => page.objects.push(meta),
                        Err(e) if unparsable(&e).is_some() => page.skipped += 1,
                        Err(e) => return Err(e),
                    }
                }
                Ok(page)
            })
            .boxed(),
    }
}

/// Where the next request starts.
enum From {
    Start,
    /// A token the store gave.
    Token(String),
    /// Just past a skipped name (`start-after`); `checked` once an answer
    /// showed the store went past it.
    After {
        name: String,
        checked: bool,
    },
}

struct State {
    paged: Arc<dyn PaginatedListStore>,
    prefix: String,
    from: From,
    max: usize,
    done: bool,
}

fn by_pages(paged: Arc<dyn PaginatedListStore>, prefix: String) -> BoxStream<'static, object_store::Result<Page>> {
    let state = State { paged, prefix, from: From::Start, max: PAGE, done: false };
    stream::try_unfold(state, |mut s| async move {
        if s.done {
            return Ok(None);
        }
        let mut skipped = 0;
        loop {
            let (page_token, offset) = match &s.from {
                From::Start => (None, None),
                From::Token(token) => (Some(token.clone()), None),
                From::After { name, .. } => (None, Some(name.clone())),
            };
            let options = PaginatedListOptions { page_token, offset, max_keys: Some(s.max), ..Default::default() };
            let listed = s.paged.list_paginated(Some(&s.prefix), options).await;
            // The first answer after a skip must be past the skipped name, or the listing would go round.
            if let From::After { name, checked: checked @ false } = &mut s.from {
                let behind = match &listed {
                    Ok(l) => l.result.objects.first().is_some_and(|o| o.location.as_ref() <= name.as_str()),
                    Err(e) => unparsable(e).is_some_and(|n| n <= name.as_str()),
                };
                if behind {
                    match past_control(name) {
                        // Listed other than it is named: go past every name it could be.
                        Some(past) if past.as_str() > name.as_str() => {
                            s.from = From::After { name: past, checked: false };
                            continue;
                        }
                        _ => {
                            let why = format!("the store lists {name:?} again after it was skipped");
                            return Err(object_store::Error::Generic { store: "listing", source: why.into() });
                        }
                    }
                }
                *checked = true;
            }
            match listed {
                Ok(listed) => {
                    s.done = listed.page_token.is_none();
                    s.from = listed.page_token.map_or(From::Start, From::Token);
                    return Ok(Some((Page { objects: listed.result.objects, skipped }, s)));
                }
                Err(e) => match unparsable(&e) {
                    None => return Err(e),
                    // The bad name is in the page: ask for half as many (the
                    // pages before it come whole, at that size).
                    Some(_) if s.max > 1 => s.max /= 2,
                    Some(name) => {
                        skipped += 1;
                        s.from = From::After { name: name.to_owned(), checked: false };
                        s.max = PAGE;
                    }
                },
            }
        }
    })
    .into_stream()
    .boxed()
}

/// A `start-after` past every name that starts as `name` does up to its
/// first ASCII control character, with a control character there. A store
/// may list such a name other than it is named (an XML listing turns `\r`
/// into `\n`), so starting after the name it lists finds the object again.
/// None of these names is the cache's: its names are printable.
fn past_control(name: &str) -> Option<String> {
    let at = name.find(|c: char| c < ' ')?;
    Some(format!("{}\u{1f}{}", &name[..at], "\u{10ffff}".repeat(4)))
}

/// The name of an object the client could not take as a path, if that is `e`.
fn unparsable(e: &object_store::Error) -> Option<&str> {
    match e {
        object_store::Error::InvalidPath { source } => match source {
            path::Error::EmptySegment { path } | path::Error::BadSegment { path, .. } => Some(path),
            path::Error::NonUnicode { path, .. } => Some(path),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::past_control;

    #[test]
    fn past_a_control_character_lies_every_name_it_could_be_and_none_of_the_caches() {
        let listed = "p/ab/cr\nname";
        let past = past_control(listed).unwrap();
        // What the object may really be named, as the store lists it or not.
        for name in ["p/ab/cr\rname", "p/ab/cr\r\nname", "p/ab/cr\nname", "p/ab/cr\u{1}", "p/ab/cr\u{1f}\u{10fff}x"] {
            assert!(name < past.as_str(), "{name:?}");
        }
        // What sorts after it and is not it, the cache's names among them.
        for name in ["p/ab/cr name", "p/ab/cra", "p/ab/cs", "p/ac/00.npy", &format!("p/ab/{}.npy", "d".repeat(64))] {
            assert!(name > past.as_str(), "{name:?}");
        }
        assert_eq!(past_control("p/ab/x/../y"), None, "a name without a control character lists as it is");
    }
}
