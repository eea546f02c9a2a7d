//! [`StoreOptions`]: how to reach a store, beyond what its URL says.

use std::collections::BTreeMap;
use std::fmt;

use object_store::aws::AmazonS3ConfigKey;
use object_store::azure::AzureConfigKey;
use object_store::gcp::GoogleConfigKey;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Retries of a failed request when [`StoreOptions::with_max_retries`] is not called.
pub const DEFAULT_MAX_RETRIES: usize = 5;

/// The AWS profile used when the environment names none (as in the AWS CLI).
const DEFAULT_PROFILE: &str = "default";

/// How to reach a store: the settings that are not part of the URL.
///
/// Options are plain values: [`StoreOptions::default()`] reads no
/// environment variable and no file. It opens `memory://`, local paths and
/// `file://` URLs as they are; for a cloud store it uses only what the
/// options hold (an endpoint, a region, access keys given with
/// [`with_config`](Self::with_config), a profile named with
/// [`with_profile`](Self::with_profile)), and beyond that only what
/// `object_store` does on its own without any setting: instance metadata
/// credentials on S3, application default credentials on Google Cloud.
/// In particular it does **not** read the shared AWS profile files unless a
/// profile is named.
///
/// [`StoreOptions::from_env()`] takes what the AWS CLI and the cloud SDKs
/// take from the environment, so that tessera behaves like them; the
/// `tessera` binary starts from it and lays its flags over it.
///
/// ```
/// use tessera_store::StoreOptions;
///
/// let garage = StoreOptions::default()
///     .with_endpoint("http://127.0.0.1:3900")
///     .with_region("garage")
///     .with_config("aws_access_key_id", "GK0123")
///     .with_config("aws_secret_access_key", "not-printed")
///     .with_max_retries(2);
/// assert_eq!(garage.endpoint(), Some("http://127.0.0.1:3900"));
/// assert_eq!(garage.max_retries(), 2);
/// assert!(!format!("{garage:?}").contains("not-printed"));
/// assert_eq!(garage.redact("denied for not-printed"), "denied for [redacted]");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct StoreOptions {
    /// A profile named on purpose: its credentials win over access keys.
    pub(crate) profile: Option<String>,
    /// The profile the environment selects (`AWS_PROFILE` or `default`):
    /// used only without access keys, and skipped when it does not exist.
    pub(crate) fallback_profile: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) max_retries: Option<usize>,
    /// `object_store` configuration keys (lower case) and their values.
    pub(crate) config: BTreeMap<String, String>,
}

impl StoreOptions {
    /// The options the environment gives, as the AWS CLI and the cloud SDKs
    /// read it:
    ///
    /// * `AWS_PROFILE` (else `default`): the profile of `~/.aws/config` and
    ///   `~/.aws/credentials` used when no access keys are set (a missing
    ///   profile is then skipped);
    /// * `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT`: the endpoint;
    /// * `AWS_REGION`, `AWS_DEFAULT_REGION`: the region;
    /// * every other `AWS_*`, `GOOGLE_*` and `AZURE_*` variable that
    ///   `object_store` knows (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    ///   `AWS_SESSION_TOKEN`, `AWS_WEB_IDENTITY_TOKEN_FILE`,
    ///   `GOOGLE_APPLICATION_CREDENTIALS`, `AZURE_STORAGE_ACCOUNT_NAME`, …),
    ///   as [`with_config`](Self::with_config) settings;
    /// * `TESSERA_MAX_RETRIES`: retries of a failed request (a value that is
    ///   not a number is ignored).
    ///
    /// Empty variables count as unset. The values are read once, here:
    /// changing the environment later does not change these options.
    pub fn from_env() -> Self {
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// [`from_env`](Self::from_env) over the given variables.
    fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars: BTreeMap<String, String> =
            vars.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let first = |names: &[&str]| names.iter().find_map(|n| vars.get(*n).cloned());
        let mut opts = StoreOptions {
            profile: None,
            fallback_profile: Some(
                first(&["AWS_PROFILE"]).unwrap_or_else(|| DEFAULT_PROFILE.into()),
            ),
            endpoint: first(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]),
            region: first(&["AWS_REGION", "AWS_DEFAULT_REGION"]),
            max_retries: first(&["TESSERA_MAX_RETRIES"]).and_then(|v| v.trim().parse().ok()),
            config: BTreeMap::new(),
        };
        // Variables object_store's own `from_env` reads besides its prefixes.
        if let Some(path) = vars.get("SERVICE_ACCOUNT") {
            opts.config
                .insert("google_service_account".into(), path.clone());
        }
        for (name, value) in &vars {
            let key = name.to_ascii_lowercase();
            let known = match Setting::parse(&key) {
                Some(Setting::S3(k)) => !matches!(
                    k,
                    AmazonS3ConfigKey::Region
                        | AmazonS3ConfigKey::DefaultRegion
                        | AmazonS3ConfigKey::Endpoint
                        | AmazonS3ConfigKey::S3Endpoint
                ),
                Some(_) => true,
                None => false,
            };
            if known {
                opts.config.insert(key, value.clone());
            }
        }
        if let Some(endpoint) = vars.get("IDENTITY_ENDPOINT") {
            opts.config
                .insert("azure_msi_endpoint".into(), endpoint.clone());
        }
        opts
    }

    /// Use this profile of the shared AWS files (`~/.aws/config`,
    /// `~/.aws/credentials`, or where `AWS_CONFIG_FILE` and
    /// `AWS_SHARED_CREDENTIALS_FILE` put them): its credentials (static
    /// keys, `credential_process`, SSO, assume-role) win over access keys,
    /// and its `region` and `endpoint_url` apply where the options set none.
    /// Opening an S3 location fails when the profile does not exist.
    pub fn with_profile(mut self, name: impl Into<String>) -> Self {
        self.profile = Some(name.into());
        self
    }

    /// An S3-compatible endpoint (`http://127.0.0.1:3900`), addressed
    /// path-style. It must start with `http://` or `https://`.
    pub fn with_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The S3 region (`us-east-1` when neither the options nor the profile set one).
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Retries of a failed request (default [`DEFAULT_MAX_RETRIES`]).
    pub fn with_max_retries(mut self, retries: usize) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// An `object_store` setting by its configuration key, which starts with
    /// `aws_`, `google_` or `azure_` (case does not matter):
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`,
    /// `aws_allow_http`, `google_service_account`,
    /// `azure_storage_account_name`, … (see `object_store`'s
    /// `AmazonS3ConfigKey`, `GoogleConfigKey` and `AzureConfigKey`).
    ///
    /// A key `object_store` does not know is reported when a store of its
    /// kind is opened. The values of secret keys never appear in `Debug`
    /// output and are removed from messages ([`redact`](Self::redact)).
    pub fn with_config(mut self, key: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.config
            .insert(key.as_ref().to_ascii_lowercase(), value.into());
        self
    }

    /// The profile named with [`with_profile`](Self::with_profile).
    pub fn profile(&self) -> Option<&str> {
        self.profile.as_deref()
    }

    /// The endpoint set with [`with_endpoint`](Self::with_endpoint) (or by the environment).
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The region set with [`with_region`](Self::with_region) (or by the environment).
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// Retries of a failed request.
    pub fn max_retries(&self) -> usize {
        self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES)
    }

    /// `message` without the secrets these options hold (access keys,
    /// session tokens, account keys, …) and without request signatures
    /// (see [`redact`](crate::redact)).
    pub fn redact(&self, message: &str) -> String {
        crate::error::redact_secrets(message, &self.secrets())
    }

    /// The values of secret settings, to be removed from messages.
    pub(crate) fn secrets(&self) -> Vec<String> {
        self.config
            .iter()
            .filter(|(k, _)| Setting::parse(k).is_some_and(|s| s.is_secret()))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// True when both an access key id and its secret are set.
    pub(crate) fn has_access_keys(&self) -> bool {
        let mut id = false;
        let mut secret = false;
        for key in self.config.keys() {
            match Setting::parse(key) {
                Some(Setting::S3(AmazonS3ConfigKey::AccessKeyId)) => id = true,
                Some(Setting::S3(AmazonS3ConfigKey::SecretAccessKey)) => secret = true,
                _ => {}
            }
        }
        id && secret
    }

    /// The first value set for an S3 key.
    pub(crate) fn s3_setting(&self, wanted: &[AmazonS3ConfigKey]) -> Option<String> {
        wanted.iter().find_map(|w| {
            self.config
                .iter()
                .find_map(|(k, v)| match Setting::parse(k) {
                    Some(Setting::S3(key)) if key == *w => Some(v.clone()),
                    _ => None,
                })
        })
    }

    /// The S3 settings, parsed; an unknown key is an error.
    pub(crate) fn s3_config(&self) -> Result<Vec<(AmazonS3ConfigKey, String)>> {
        self.cloud_config("aws_", |s| match s {
            Setting::S3(k) => Some(k),
            _ => None,
        })
    }

    /// The Google Cloud Storage settings, parsed; an unknown key is an error.
    pub(crate) fn gcs_config(&self) -> Result<Vec<(GoogleConfigKey, String)>> {
        self.cloud_config("google_", |s| match s {
            Setting::Gcs(k) => Some(k),
            _ => None,
        })
    }

    /// The Azure settings, parsed; an unknown key is an error.
    pub(crate) fn azure_config(&self) -> Result<Vec<(AzureConfigKey, String)>> {
        self.cloud_config("azure_", |s| match s {
            Setting::Azure(k) => Some(k),
            _ => None,
        })
    }

    fn cloud_config<K>(
        &self,
        prefix: &str,
        pick: impl Fn(Setting) -> Option<K>,
    ) -> Result<Vec<(K, String)>> {
        let mut out = Vec::new();
        for (key, value) in &self.config {
            if !["aws_", "google_", "azure_"]
                .iter()
                .any(|p| key.starts_with(p))
            {
                return Err(Error::Config(format!(
                    "unknown store setting '{key}': settings start with aws_, google_ or azure_"
                )));
            }
            if !key.starts_with(prefix) {
                continue;
            }
            match Setting::parse(key).and_then(&pick) {
                Some(k) => out.push((k, value.clone())),
                None => return Err(Error::Config(format!("unknown store setting '{key}'"))),
            }
        }
        Ok(out)
    }

    /// A digest of every setting, secrets included, that names these
    /// options in the store registry without keeping a secret in clear.
    pub(crate) fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |name: &str, value: Option<&str>| {
            // Length-prefixed, so no two different options give the same text.
            let v = value.unwrap_or("\u{0}none");
            h.update(format!("{}:{name}={}:{v};", name.len(), v.len()).as_bytes());
        };
        field("profile", self.profile.as_deref());
        field("fallback_profile", self.fallback_profile.as_deref());
        field("endpoint", self.endpoint.as_deref());
        field("region", self.region.as_deref());
        field("max_retries", Some(&self.max_retries().to_string()));
        for (k, v) in &self.config {
            field(k, Some(v));
        }
        hex::encode(h.finalize())
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config: BTreeMap<&str, &str> = self
            .config
            .iter()
            .map(|(k, v)| {
                let secret = Setting::parse(k).is_some_and(|s| s.is_secret());
                (k.as_str(), if secret { "[redacted]" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("StoreOptions")
            .field("profile", &self.profile)
            .field("fallback_profile", &self.fallback_profile)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("max_retries", &self.max_retries)
            .field("config", &config)
            .finish()
    }
}

/// A configuration key of one of `object_store`'s cloud builders.
enum Setting {
    S3(AmazonS3ConfigKey),
    Gcs(GoogleConfigKey),
    Azure(AzureConfigKey),
}

impl Setting {
    /// The setting a prefixed key names (`aws_…`, `google_…`, `azure_…`).
    fn parse(key: &str) -> Option<Setting> {
        if key.starts_with("aws_") {
            key.parse().ok().map(Setting::S3)
        } else if key.starts_with("google_") {
            key.parse().ok().map(Setting::Gcs)
        } else if key.starts_with("azure_") {
            key.parse().ok().map(Setting::Azure)
        } else {
            None
        }
    }

    /// True for credentials: values that must never be printed.
    fn is_secret(&self) -> bool {
        match self {
            Setting::S3(k) => {
                matches!(
                    k,
                    AmazonS3ConfigKey::AccessKeyId
                        | AmazonS3ConfigKey::SecretAccessKey
                        | AmazonS3ConfigKey::Token
                ) || k.as_ref() == "aws_sse_customer_key_base64"
            }
            Setting::Gcs(k) => matches!(k, GoogleConfigKey::ServiceAccountKey),
            Setting::Azure(k) => matches!(
                k,
                AzureConfigKey::AccessKey
                    | AzureConfigKey::SasKey
                    | AzureConfigKey::Token
                    | AzureConfigKey::ClientSecret
                    | AzureConfigKey::FabricSessionToken
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> StoreOptions {
        StoreOptions::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn default_holds_nothing() {
        let o = StoreOptions::default();
        assert_eq!(o.profile(), None);
        assert_eq!(o.fallback_profile, None);
        assert_eq!(o.endpoint(), None);
        assert_eq!(o.region(), None);
        assert_eq!(o.max_retries(), DEFAULT_MAX_RETRIES);
        assert!(o.config.is_empty());
    }

    #[test]
    fn the_environment_is_snapshotted() {
        let o = vars(&[
            ("AWS_PROFILE", "work"),
            ("AWS_ENDPOINT_URL", "http://general:1"),
            ("AWS_ENDPOINT_URL_S3", "http://s3:2"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_REGION", "garage"),
            ("AWS_ACCESS_KEY_ID", "GK123"),
            ("AWS_SECRET_ACCESS_KEY", "sekret-value"),
            ("AWS_SESSION_TOKEN", ""),
            ("AWS_NOT_A_SETTING", "x"),
            ("GOOGLE_SERVICE_ACCOUNT", "/sa.json"),
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("TESSERA_MAX_RETRIES", "1"),
            ("HOME", "/home/x"),
        ]);
        assert_eq!(
            o.profile(),
            None,
            "the environment's profile is not an explicit one"
        );
        assert_eq!(o.fallback_profile.as_deref(), Some("work"));
        assert_eq!(o.endpoint(), Some("http://s3:2"));
        assert_eq!(o.region(), Some("garage"));
        assert_eq!(o.max_retries(), 1);
        assert!(o.has_access_keys());
        let keys: Vec<&str> = o.config.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "aws_access_key_id",
                "aws_secret_access_key",
                "azure_storage_account_name",
                "google_service_account"
            ]
        );
        assert_eq!(o.secrets(), ["GK123", "sekret-value"]);
        assert!(o.s3_config().is_ok() && o.gcs_config().is_ok() && o.azure_config().is_ok());
    }

    #[test]
    fn unset_profile_means_the_default_one_and_bad_retries_are_ignored() {
        let o = vars(&[
            ("AWS_ENDPOINT", "http://old:3"),
            ("TESSERA_MAX_RETRIES", "many"),
        ]);
        assert_eq!(o.fallback_profile.as_deref(), Some("default"));
        assert_eq!(o.endpoint(), Some("http://old:3"));
        assert_eq!(o.max_retries(), DEFAULT_MAX_RETRIES);
        assert!(!o.has_access_keys());
    }

    #[test]
    fn secrets_stay_out_of_debug_and_messages_but_change_the_fingerprint() {
        let a = StoreOptions::default()
            .with_config("AWS_SECRET_ACCESS_KEY", "abcd-secret")
            .with_config("aws_session_token", "tok-secret");
        let dbg = format!("{a:?}");
        assert!(
            !dbg.contains("abcd-secret") && !dbg.contains("tok-secret"),
            "{dbg}"
        );
        assert_eq!(
            a.redact("rejected abcd-secret and tok-secret; X-Amz-Signature=ff00&x=1"),
            "rejected [redacted] and [redacted]; X-Amz-Signature=[redacted]&x=1"
        );
        let b = a
            .clone()
            .with_config("aws_secret_access_key", "other-secret");
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(!a.fingerprint().contains("abcd"));
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(
            StoreOptions::default().fingerprint(),
            StoreOptions::default().with_max_retries(0).fingerprint()
        );
    }

    #[test]
    fn unknown_settings_are_reported_for_their_store_only() {
        let o = StoreOptions::default().with_config("aws_no_such_thing", "1");
        let e = o.s3_config().unwrap_err();
        assert!(e.to_string().contains("aws_no_such_thing"), "{e}");
        assert!(o.gcs_config().unwrap().is_empty());
        let o = StoreOptions::default().with_config("endpoint", "x");
        assert!(o.gcs_config().is_err());
        assert!(o.s3_config().is_err());
    }
}
