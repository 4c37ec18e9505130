//! Opening a location: `s3://bucket/prefix`, `gs://bucket/prefix` or
//! `az://container/prefix`, configured from the standard environment
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ... and the
//! shared profile for S3; `GOOGLE_*` and `AZURE_*` for the others), then
//! from explicit settings.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::list::PaginatedListStore;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};

use cache_core::Error;

use crate::error::config;
use crate::transfer::{max_single_put, Transfer};

/// Settings that override the environment's.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub allow_http: Option<bool>,
    /// One request's time limit.
    pub timeout: Option<Duration>,
    /// Retries of a failed request (5xx, throttling, connection errors), with backoff.
    pub max_retries: Option<usize>,
    /// No retry starts after this long since the first attempt.
    pub retry_timeout: Option<Duration>,
    /// Objects larger than this many bytes are uploaded in parts (at most
    /// the largest single PUT the store takes).
    pub multipart_from: Option<u64>,
    /// Bytes per ranged GET and per upload part (at least 1 MiB).
    pub part_size: Option<u64>,
}

/// The least `part_size`: smaller ranges cost more requests than they save.
pub const MIN_PART_SIZE: u64 = 1 << 20;

/// The schemes this build opens.
pub const SCHEMES: [&str; 3] = ["s3", "gs", "az"];

/// Whether `location` names an object store rather than a directory.
pub fn is_remote(location: &str) -> bool {
    SCHEMES.iter().any(|s| location.strip_prefix(s).is_some_and(|rest| rest.starts_with("://")))
}

/// A store built from a location, and the same store listed page by page.
pub(crate) struct Opened {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) paged: Arc<dyn PaginatedListStore>,
}

fn opened<S: ObjectStore + PaginatedListStore>(store: S) -> Opened {
    let store = Arc::new(store);
    Opened { store: store.clone(), paged: store }
}

/// The store, the prefix under which the cache's objects live, and how
/// objects are cut into requests there.
pub(crate) fn open(location: &str, settings: &Settings) -> Result<(Opened, Path, Transfer), Error> {
    let bad = |why: String| config(format!("{location:?} is not a usable object-store location: {why}"));
    let (scheme, rest) = location.split_once("://").ok_or_else(|| bad("it has no scheme".into()))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad("it names no bucket".into()));
    }
    let prefix =
        Path::parse(prefix.trim_end_matches('/')).map_err(|e| bad(format!("its prefix is not valid ({e})")))?;
    let retry = retry_config(settings);
    let built: object_store::Result<Opened> = match scheme {
        "s3" => {
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry)
                .with_http_connector(crate::create_only::CreateOnlyCompletion);
            b = with_profile(b, crate::profile::from_env());
            if let Some(v) = &settings.endpoint {
                b = b.with_endpoint(v);
            }
            if let Some(v) = &settings.region {
                b = b.with_region(v);
            }
            if let Some(v) = &settings.access_key_id {
                b = b.with_access_key_id(v);
            }
            if let Some(v) = &settings.secret_access_key {
                b = b.with_secret_access_key(v);
            }
            if let Some(v) = &settings.session_token {
                b = b.with_token(v);
            }
            for (key, value) in client_defaults("AWS", settings) {
                b = b.with_config(AmazonS3ConfigKey::Client(key), value);
            }
            b.build().map(opened)
        }
        "gs" => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket).with_retry(retry);
            for (key, value) in client_defaults("GOOGLE", settings) {
                b = b.with_config(GoogleConfigKey::Client(key), value);
            }
            b.build().map(opened)
        }
        "az" => {
            let mut b = MicrosoftAzureBuilder::from_env().with_container_name(bucket).with_retry(retry);
            for (key, value) in client_defaults("AZURE", settings) {
                b = b.with_config(AzureConfigKey::Client(key), value);
            }
            // The account's URL, e.g. `http://127.0.0.1:10000/devstoreaccount1`
            // for Azurite. With `AZURE_STORAGE_USE_EMULATOR` object_store takes
            // the emulator's from `AZURITE_BLOB_STORAGE_URL` instead.
            if let Some(v) = &settings.endpoint {
                b = b.with_endpoint(v.clone());
            }
            b.build().map(opened)
        }
        other => return Err(bad(format!("scheme {other:?} is not one of s3, gs, az"))),
    };
    let store = built.map_err(|e| bad(e.to_string()))?;
    let mut transfer = Transfer::for_scheme(scheme);
    if let Some(v) = settings.multipart_from {
        transfer.multipart_from = v.min(max_single_put(scheme));
    }
    if let Some(v) = settings.part_size {
        transfer.part_size = v.max(MIN_PART_SIZE);
    }
    Ok((store, prefix, transfer))
}

/// The shared profile's values where the environment gives none (the
/// environment wins, as with the AWS tools; explicit settings win over both).
fn with_profile(mut b: AmazonS3Builder, profile: crate::profile::Profile) -> AmazonS3Builder {
    let unset = |vars: &[&str]| vars.iter().all(|v| std::env::var_os(v).is_none());
    if unset(&["AWS_ACCESS_KEY_ID"]) {
        if let (Some(id), Some(secret)) = (profile.access_key_id, profile.secret_access_key) {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(token) = profile.session_token {
                b = b.with_token(token);
            }
        }
    }
    if let Some(region) = profile.region.filter(|_| unset(&["AWS_REGION", "AWS_DEFAULT_REGION"])) {
        b = b.with_region(region);
    }
    if let Some(endpoint) = profile.endpoint_url.filter(|_| unset(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"])) {
        b = b.with_endpoint(endpoint);
    }
    b
}

/// The client settings the cache sets: the explicit ones, else its own
/// defaults where the environment (`<PREFIX>_TIMEOUT`, ...) sets none, so
/// the environment's other client settings (proxies, certificates) stand.
/// `AWS_ALLOW_HTTP`, as the AWS tools spell it, counts for every scheme.
fn client_defaults(prefix: &str, settings: &Settings) -> Vec<(ClientConfigKey, String)> {
    let in_env =
        |key: ClientConfigKey| std::env::var_os(format!("{prefix}_{}", key.as_ref().to_ascii_uppercase())).is_some();
    let secs = |d: Duration| format!("{}ms", d.as_millis());
    let mut out = Vec::new();
    match settings.timeout {
        Some(t) => out.push((ClientConfigKey::Timeout, secs(t))),
        None if !in_env(ClientConfigKey::Timeout) => out.push((ClientConfigKey::Timeout, "60s".into())),
        None => {}
    }
    if !in_env(ClientConfigKey::ConnectTimeout) {
        out.push((ClientConfigKey::ConnectTimeout, "5s".into()));
    }
    let allow_http = settings.allow_http.or_else(|| {
        let own = in_env(ClientConfigKey::AllowHttp);
        (!own).then(allow_http_from_aws_env).flatten()
    });
    if let Some(allow) = allow_http {
        out.push((ClientConfigKey::AllowHttp, allow.to_string()));
    }
    out
}

/// `AWS_ALLOW_HTTP`.
fn allow_http_from_aws_env() -> Option<bool> {
    std::env::var("AWS_ALLOW_HTTP").ok().map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

fn retry_config(settings: &Settings) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: settings.max_retries.unwrap_or(5),
        retry_timeout: settings.retry_timeout.unwrap_or(Duration::from_secs(30)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_told_from_paths_and_bad_ones_say_why() {
        assert!(is_remote("s3://bucket/prefix"));
        assert!(!is_remote("/tmp/s3://x"));
        assert!(!is_remote("s3:/bucket"));
        let err = |l: &str| open(l, &Settings::default()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err("s3:///prefix").contains("names no bucket"));
        assert!(err("ftp://bucket/x").contains("not one of s3, gs, az"));
    }

    #[test]
    fn a_location_opens_with_its_prefix() {
        let settings = Settings { region: Some("us-east-1".into()), ..Default::default() };
        let (_, prefix, transfer) = open("s3://bucket/team/cache/", &settings).unwrap();
        assert_eq!(prefix.as_ref(), "team/cache");
        assert_eq!(transfer.multipart_from, Transfer::default().multipart_from);
    }

    #[test]
    fn transfer_settings_are_held_to_what_the_store_takes() {
        let huge = Settings {
            multipart_from: Some(u64::MAX),
            part_size: Some(1),
            region: Some("us-east-1".into()),
            ..Default::default()
        };
        let (_, _, t) = open("s3://bucket/p", &huge).unwrap();
        assert_eq!((t.multipart_from, t.part_size), (max_single_put("s3"), MIN_PART_SIZE));
        assert_eq!(max_single_put("az"), 5000 << 20);
        // Off S3, one PUT as far as it goes (multipart completions there are not create-only).
        assert_eq!(Transfer::for_scheme("az").multipart_from, max_single_put("az"));
    }
}
