//! Shared AWS profiles: `~/.aws/credentials` and `~/.aws/config` (or
//! `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`), profile `AWS_PROFILE`
//! or `default`, as the AWS tools read them. object_store reads only the
//! environment, so keys, region and endpoint are taken from here when the
//! environment does not give them. Credential processes and SSO are not run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What a profile gives; each `None` when it does not.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Profile {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// The profile the environment names, from the files it names (missing files give nothing).
pub(crate) fn from_env() -> Profile {
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).map(PathBuf::from);
    let file = |var: &str, name: &str| {
        std::env::var_os(var).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let name = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "default".into());
    load(
        file("AWS_SHARED_CREDENTIALS_FILE", "credentials").as_deref(),
        file("AWS_CONFIG_FILE", "config").as_deref(),
        &name,
    )
}

pub(crate) fn load(credentials: Option<&Path>, config: Option<&Path>, name: &str) -> Profile {
    let read =
        |p: Option<&Path>| p.and_then(|p| std::fs::read_to_string(p).ok()).map(|t| sections(&t)).unwrap_or_default();
    let credentials = read(credentials);
    let config = read(config);
    // The config file names a profile `[profile x]`, except `[default]`.
    let in_config =
        config.get(&format!("profile {name}")).or_else(|| (name == "default").then(|| config.get("default")).flatten());
    let get = |key: &str| {
        credentials.get(name).and_then(|s| s.get(key)).or_else(|| in_config.and_then(|s| s.get(key))).cloned()
    };
    Profile {
        access_key_id: get("aws_access_key_id"),
        secret_access_key: get("aws_secret_access_key"),
        session_token: get("aws_session_token"),
        region: get("region"),
        endpoint_url: get("endpoint_url"),
    }
}

/// An INI file's `[section]`s of `key = value` lines; `#` and `;` start comments.
fn sections(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.split_whitespace().collect::<Vec<_>>().join(" "));
            continue;
        }
        if let (Some(section), Some((key, value))) = (&current, line.split_once('=')) {
            out.entry(section.clone()).or_default().insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_comes_from_both_files_and_credentials_win() {
        let dir = std::env::temp_dir().join(format!("nfc-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (credentials, config) = (dir.join("credentials"), dir.join("config"));
        std::fs::write(
            &credentials,
            "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s1\n\n# a comment\n[team]\naws_access_key_id=AKIATEAM\naws_secret_access_key = s2\naws_session_token = tok\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\n[profile team]\nregion = us-west-2\nendpoint_url = http://127.0.0.1:7070\n",
        )
        .unwrap();
        let team = load(Some(&credentials), Some(&config), "team");
        assert_eq!(
            team,
            Profile {
                access_key_id: Some("AKIATEAM".into()),
                secret_access_key: Some("s2".into()),
                session_token: Some("tok".into()),
                region: Some("us-west-2".into()),
                endpoint_url: Some("http://127.0.0.1:7070".into()),
            }
        );
        let default = load(Some(&credentials), Some(&config), "default");
        assert_eq!(
            (default.access_key_id.as_deref(), default.region.as_deref()),
            (Some("AKIADEFAULT"), Some("eu-west-1"))
        );
        assert_eq!(load(Some(&dir.join("missing")), None, "team"), Profile::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
