//! Reading local input files without copying them.

use std::io::Read;
use std::path::Path;

use bytes::Bytes;

/// A local file's bytes, mapped into memory, as ripgrep does for single
/// large files: no copy, the page cache is used directly. Empty files (which
/// cannot be mapped) and pipes or devices are read instead. Pages are mapped
/// on first use, by the threads that read them, rather than all at once by
/// one thread before any work starts.
pub fn map_file(p: &Path) -> std::io::Result<Bytes> {
    let mut f = std::fs::File::open(p)?;
    let meta = f.metadata()?;
    if meta.len() == 0 || !meta.is_file() {
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        return Ok(buf.into());
    }
    // SAFETY: the mapping is read-only and private to this process, and the `Bytes` that owns it
    // keeps it mapped for as long as any slice of it lives. It is sound as long as no one changes
    // the file while it is mapped: a writer in place would change bytes under the reader's feet,
    // and a truncation would make reading the lost pages fault (SIGBUS), as for any memory-mapped
    // input. The inputs mapped here (paths files, slices files) are replaced by rename, not
    // rewritten in place.
    let map = unsafe { memmap2::MmapOptions::new().map(&f) }?;
    Ok(Bytes::from_owner(map))
}
