//! Where a build's paths come from: a paths file, or the listing of a prefix.

use bytes::Bytes;
use tessera_store::Location;

use crate::error::Result;

/// The paths a manifest is built from, and a name for them in messages.
///
/// `source` is a paths file (one key or URL per line: the file is read
/// whole) or, when no such object exists, a prefix whose objects are listed
/// (one URL per line). A prefix with no objects is
/// [`tessera_store::Error::NotFound`].
pub async fn read_listing(source: &Location) -> Result<(Bytes, String)> {
    if let Some(p) = source.local_path() {
        if p.is_file() {
            let text = tokio::fs::read(&p)
                .await
                .map_err(|e| tessera_store::Error::Io {
                    action: "cannot read",
                    path: p.display().to_string(),
                    source: e,
                })?;
            return Ok((text.into(), p.display().to_string()));
        }
        if !p.is_dir() {
            return Err(tessera_store::Error::NotFound {
                url: p.display().to_string(),
            }
            .into());
        }
    } else {
        match source.head().await {
            Ok(_) => return Ok((source.read().await?, source.url())),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let objects = source.list_all(16).await?;
    if objects.is_empty() {
        return Err(tessera_store::Error::NotFound { url: source.url() }.into());
    }
    let mut buf = Vec::with_capacity(objects.len() * 64);
    for o in &objects {
        buf.extend_from_slice(source.url_of(&o.location).as_bytes());
        buf.push(b'\n');
    }
    Ok((buf.into(), format!("the listing of {}", source.url())))
}
