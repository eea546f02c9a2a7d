//! S3 settings from the standard AWS chain.
//!
//! Order, as in the AWS CLI and SDKs: an explicit `--profile` wins; otherwise
//! credentials in the environment (`AWS_ACCESS_KEY_ID`, ...), then the
//! selected profile (`AWS_PROFILE` or `default`) from `~/.aws/config` and
//! `~/.aws/credentials` (static keys, `credential_process`, SSO, assume-role,
//! all handled by `aws-config`), then web identity, container and instance
//! metadata credentials (handled by `object_store`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_credential_types::provider::ProvideCredentials;
use aws_runtime::env_config::file::EnvConfigFiles as ProfileFiles;
use aws_types::os_shim_internal::{Env, Fs};
use object_store::aws::{AwsCredential, AwsCredentialProvider};
use object_store::CredentialProvider;
use tokio::sync::Mutex;

use crate::error::{redact, Error, Result};
use crate::location::StoreOptions;

/// S3 settings resolved from options, environment and profile files.
pub(crate) struct Resolved {
    pub region: String,
    pub endpoint: Option<String>,
    pub credentials: Option<AwsCredentialProvider>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A string that changes when the environment that selects S3 settings changes,
/// so cached stores are not reused across different configurations.
pub(crate) fn env_fingerprint() -> String {
    [
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
    ]
    .iter()
    .map(|k| {
        let v = env(k).unwrap_or_default();
        // Hash the key id rather than keeping it in a string that might be printed.
        format!("{}", fxhash(&v))
    })
    .collect::<Vec<_>>()
    .join(",")
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

pub(crate) async fn resolve(opts: &StoreOptions) -> Result<Resolved> {
    let explicit_profile = opts.profile.clone();
    let profile_name = explicit_profile
        .clone()
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".to_string());

    let profiles = aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        &ProfileFiles::default(),
        Some(Cow::Owned(profile_name.clone())),
    )
    .await;
    let profile = match &profiles {
        Ok(set) => set.get_profile(&profile_name).cloned(),
        Err(e) => {
            if explicit_profile.is_some() {
                return Err(Error::Config(format!(
                    "cannot read AWS profile files for profile '{profile_name}': {e}"
                )));
            }
            None
        }
    };
    if explicit_profile.is_some() && profile.is_none() {
        return Err(Error::Config(format!(
            "AWS profile '{profile_name}' not found in ~/.aws/config or ~/.aws/credentials"
        )));
    }

    let endpoint = opts
        .endpoint
        .clone()
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or_else(|| env("AWS_ENDPOINT"))
        .or_else(|| {
            profile
                .as_ref()
                .and_then(|p| p.get("endpoint_url").map(String::from))
        });
    if let Some(ep) = &endpoint {
        if !(ep.starts_with("http://") || ep.starts_with("https://")) {
            return Err(Error::Config(format!(
                "endpoint '{ep}' must start with http:// or https://"
            )));
        }
    }
    let region = opts
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| {
            profile
                .as_ref()
                .and_then(|p| p.get("region").map(String::from))
        })
        .unwrap_or_else(|| "us-east-1".to_string());

    let env_keys = env("AWS_ACCESS_KEY_ID").is_some() && env("AWS_SECRET_ACCESS_KEY").is_some();
    let use_profile = explicit_profile.is_some() || (!env_keys && profile.is_some());
    let credentials = if use_profile {
        let provider = ProfileFileCredentialsProvider::builder()
            .profile_name(&profile_name)
            .build();
        Some(Arc::new(ProfileCredentials {
            profile: profile_name,
            inner: provider,
            cached: Mutex::new(None),
        }) as AwsCredentialProvider)
    } else {
        None
    };
    Ok(Resolved {
        region,
        endpoint,
        credentials,
    })
}

/// `aws-config` profile credentials as an `object_store` credential provider,
/// cached until five minutes before they expire.
#[derive(Debug)]
struct ProfileCredentials {
    profile: String,
    inner: ProfileFileCredentialsProvider,
    cached: Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

#[async_trait::async_trait]
impl CredentialProvider for ProfileCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((cred, expiry)) = cached.as_ref() {
            let fresh = expiry
                .map(|e| e > SystemTime::now() + Duration::from_secs(300))
                .unwrap_or(true);
            if fresh {
                return Ok(cred.clone());
            }
        }
        let creds = self.inner.provide_credentials().await.map_err(|e| {
            object_store::Error::Unauthenticated {
                path: String::new(),
                source: format!(
                    "no usable credentials in AWS profile '{}': {}",
                    self.profile,
                    redact(&error_text(&e))
                )
                .into(),
            }
        })?;
        let cred = Arc::new(AwsCredential {
            key_id: creds.access_key_id().to_string(),
            secret_key: creds.secret_access_key().to_string(),
            token: creds.session_token().map(String::from),
        });
        *cached = Some((cred.clone(), creds.expiry()));
        Ok(cred)
    }
}

fn error_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}
