//! The peers' `.npy` files (what their `data.py` writes), read by the benches that use the
//! peers' table. Included by each bench with `#[path]`: a bench is its own crate.

use std::path::Path;

/// What a bench's `main` returns on failure.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

/// A C-ordered little-endian `.npy` of `<f8` or `<i8`, as `f64`s, with its shape.
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f64>), Failure> {
    let bytes = std::fs::read(path)?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(format!("{}: not an .npy file", path.display()).into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes(bytes[8..12].try_into()?) as usize, 12),
    };
    let header = std::str::from_utf8(bytes.get(start..start + header_len).ok_or("truncated header")?)?;
    let float = header.contains("'descr': '<f8'");
    if !(float || header.contains("'descr': '<i8'")) || !header.contains("'fortran_order': False") {
        return Err(format!("{}: expected C-ordered <f8 or <i8, found {header}", path.display()).into());
    }
    let shape_text = header.split("'shape': (").nth(1).and_then(|r| r.split(')').next()).ok_or("no shape")?;
    let shape: Vec<usize> =
        shape_text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::parse).collect::<Result<_, _>>()?;
    let data = bytes[start + header_len..]
        .chunks_exact(8)
        .map(|c| {
            let b: [u8; 8] = c.try_into().unwrap_or([0; 8]);
            if float {
                f64::from_le_bytes(b)
            } else {
                i64::from_le_bytes(b) as f64
            }
        })
        .collect::<Vec<f64>>();
    if data.len() != shape.iter().product::<usize>() {
        return Err(format!("{}: {} values for shape {shape:?}", path.display(), data.len()).into());
    }
    Ok((shape, data))
}
