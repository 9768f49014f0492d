//! Reading a body whose size someone else decides (a download, a server's answer) with a
//! cap: what the adapters use so a remote peer cannot make the process hold more than the
//! cap, and so the bytes are copied once, straight into the buffer that is returned.

use std::io::Read;

/// Why [`read_capped`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CappedReadError {
    /// The body is larger than the cap: announced so (`Content-Length`), or found so after
    /// `limit + 1` bytes were read.
    #[error("the body is larger than the limit of {limit} bytes{}", announced.map(|n| format!(" ({n} bytes announced)")).unwrap_or_default())]
    TooLarge {
        /// The size the sender announced, if it did.
        announced: Option<u64>,
        /// The cap.
        limit: u64,
    },
    /// Reading failed.
    #[error("reading the body failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads all of `reader`, refusing more than `limit` bytes. An `announced` size over the
/// limit is refused before anything is read; otherwise at most `limit + 1` bytes are read
/// (the one extra byte tells a body of exactly `limit` bytes from a longer one), and the
/// buffer is reserved up front only up to the announced size, never past the limit.
pub fn read_capped(reader: impl Read, announced: Option<u64>, limit: u64) -> Result<Vec<u8>, CappedReadError> {
    if let Some(n) = announced.filter(|n| *n > limit) {
        return Err(CappedReadError::TooLarge { announced: Some(n), limit });
    }
    let reserve = announced.unwrap_or(0).min(limit).min(64 << 20);
    let mut bytes = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
    reader.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(CappedReadError::TooLarge { announced, limit });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_past_the_limit_are_refused() {
        assert_eq!(read_capped(&b"abc"[..], Some(3), 3).expect("at the limit"), b"abc");
        assert_eq!(read_capped(&b"abc"[..], None, 3).expect("unannounced"), b"abc");
        assert!(matches!(
            read_capped(&b"abcd"[..], None, 3),
            Err(CappedReadError::TooLarge { announced: None, limit: 3 })
        ));
        // An announcement over the limit is refused without reading: the reader is endless.
        let endless = std::io::repeat(0);
        assert!(matches!(read_capped(endless, Some(1 << 40), 10), Err(CappedReadError::TooLarge { .. })));
        assert!(matches!(read_capped(std::io::repeat(0), None, 10), Err(CappedReadError::TooLarge { .. })));
    }
}
