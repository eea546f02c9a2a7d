//! S3 settings from the options, in the order of the AWS CLI and SDKs.
//!
//! Credentials: a profile named on purpose ([`StoreOptions::with_profile`])
//! wins; otherwise access keys in the options (`aws_access_key_id`, …);
//! then the profile the environment selected ([`StoreOptions::from_env`]:
//! `AWS_PROFILE` or `default`) from the shared AWS files (static keys,
//! `credential_process`, SSO, assume-role, all handled by `aws-config`);
//! then web identity, container and instance metadata credentials (handled
//! by `object_store`, configured by the options' settings).
//!
//! The shared AWS files are read only when the options name a profile;
//! finding and reading them (`AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`,
//! the home folder, what a profile's `credential_process` or SSO needs) is
//! `aws-config`'s business.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_credential_types::provider::ProvideCredentials;
use aws_runtime::env_config::file::EnvConfigFiles as ProfileFiles;
use aws_types::os_shim_internal::{Env, Fs};
use object_store::aws::{AmazonS3ConfigKey, AwsCredential, AwsCredentialProvider};
use object_store::CredentialProvider;
use tokio::sync::Mutex;

use crate::error::{redact, Error, Result};
use crate::options::StoreOptions;

/// S3 settings resolved from the options and the profile they name.
pub(crate) struct Resolved {
    pub region: String,
    pub endpoint: Option<String>,
    pub credentials: Option<AwsCredentialProvider>,
}

pub(crate) async fn resolve(opts: &StoreOptions) -> Result<Resolved> {
    let explicit_profile = opts.profile.clone();
    let profile_name = explicit_profile
        .clone()
        .or_else(|| opts.fallback_profile.clone());

    let profile = match &profile_name {
        None => None,
        Some(name) => {
            let profiles = aws_config::profile::load(
                &Fs::real(),
                &Env::real(),
                &ProfileFiles::default(),
                Some(Cow::Owned(name.clone())),
            )
            .await;
            match profiles {
                Ok(set) => set.get_profile(name).cloned(),
                Err(e) if explicit_profile.is_some() => {
                    return Err(Error::Config(format!(
                        "cannot read AWS profile files for profile '{name}': {e}"
                    )));
                }
                Err(_) => None,
            }
        }
    };
    if let (Some(name), None) = (&explicit_profile, &profile) {
        return Err(Error::Config(format!(
            "AWS profile '{name}' not found in ~/.aws/config or ~/.aws/credentials"
        )));
    }
    let from_profile = |key: &str| profile.as_ref().and_then(|p| p.get(key).map(String::from));

    let endpoint = opts
        .endpoint
        .clone()
        .or_else(|| opts.s3_setting(&[AmazonS3ConfigKey::S3Endpoint, AmazonS3ConfigKey::Endpoint]))
        .or_else(|| from_profile("endpoint_url"));
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
        .or_else(|| opts.s3_setting(&[AmazonS3ConfigKey::Region, AmazonS3ConfigKey::DefaultRegion]))
        .or_else(|| from_profile("region"))
        .unwrap_or_else(|| "us-east-1".to_string());

    let use_profile = explicit_profile.is_some() || (!opts.has_access_keys() && profile.is_some());
    let credentials = match profile_name {
        Some(name) if use_profile => {
            let provider = ProfileFileCredentialsProvider::builder()
                .profile_name(&name)
                .build();
            Some(Arc::new(ProfileCredentials {
                profile: name,
                inner: provider,
                cached: Mutex::new(None),
            }) as AwsCredentialProvider)
        }
        _ => None,
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
