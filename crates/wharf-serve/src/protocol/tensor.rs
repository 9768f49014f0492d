//! Tensors of the Open Inference Protocol: datatypes, shapes, and their values read from a
//! request's JSON `data` or from the binary tensor extension (the bytes after the JSON
//! header that Triton's clients send by default), and written back the same two ways.
//!
//! Every failure names the tensor: a client with a dozen inputs must see which one is wrong.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::input::Scanner;

/// A tensor datatype of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Datatype {
    Bool,
    Uint(u8),
    Int(u8),
    Fp16,
    Bf16,
    Fp32,
    Fp64,
    Bytes,
}

impl Datatype {
    /// The protocol's name (`FP64`, `BYTES`, …), or `None` for a name it does not define.
    pub(crate) fn parse(name: &str) -> Option<Datatype> {
        Some(match name {
            "BOOL" => Datatype::Bool,
            "UINT8" => Datatype::Uint(1),
            "UINT16" => Datatype::Uint(2),
            "UINT32" => Datatype::Uint(4),
            "UINT64" => Datatype::Uint(8),
            "INT8" => Datatype::Int(1),
            "INT16" => Datatype::Int(2),
            "INT32" => Datatype::Int(4),
            "INT64" => Datatype::Int(8),
            "FP16" => Datatype::Fp16,
            "BF16" => Datatype::Bf16,
            "FP32" => Datatype::Fp32,
            "FP64" => Datatype::Fp64,
            "BYTES" => Datatype::Bytes,
            _ => return None,
        })
    }

    /// Bytes per element in the binary extension (`None` for BYTES, whose elements carry
    /// their own length).
    fn width(self) -> Option<usize> {
        Some(match self {
            Datatype::Bool => 1,
            Datatype::Uint(w) | Datatype::Int(w) => usize::from(w),
            Datatype::Fp16 | Datatype::Bf16 => 2,
            Datatype::Fp32 => 4,
            Datatype::Fp64 => 8,
            Datatype::Bytes => return None,
        })
    }
}

/// One element of JSON tensor data, before the datatype says what it must be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Number(f64),
    Text(String),
    Bool(bool),
    Null,
    /// An object: never valid tensor data, reported with the tensor's name.
    Other,
}

/// JSON tensor data, flattened in row-major order: the protocol allows the data of a
/// `[2, 3]` tensor as `[1, 2, 3, 4, 5, 6]` or `[[1, 2, 3], [4, 5, 6]]`. Read by a visitor
/// straight into one vector, with no JSON tree in between.
#[derive(Debug, Default)]
pub(crate) struct Flat(pub(crate) Vec<Cell>);

impl<'de> Deserialize<'de> for Flat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut cells = Vec::new();
        d.deserialize_any(Flatten(&mut cells))?;
        Ok(Flat(cells))
    }
}

struct Flatten<'a>(&'a mut Vec<Cell>);

impl<'de> DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("tensor data")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(hint) = seq.size_hint() {
            self.0.reserve(hint);
        }
        while seq.next_element_seed(Flatten(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<(), E> {
        self.0.push(Cell::Number(x));
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, x: u64) -> Result<(), E> {
        self.visit_f64(x as f64)
    }
    fn visit_i64<E: de::Error>(self, x: i64) -> Result<(), E> {
        self.visit_f64(x as f64)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.0.push(Cell::Text(s.to_string()));
        Ok(())
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<(), E> {
        self.0.push(Cell::Text(s));
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<(), E> {
        self.0.push(Cell::Bool(b));
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.push(Cell::Null);
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.0.push(Cell::Other);
        Ok(())
    }
}

/// JSON tensor data from its raw text: numbers read with correct rounding, exactly as
/// `/predict` reads `instances` ([`Scanner::number`]; serde_json's own float parser
/// may be a unit in the last place off, and a v2 answer would then differ from the native
/// one). Data holding text (`BYTES`) or anything unusual goes through [`Flat`].
pub(crate) fn cells(raw: &str) -> Result<Vec<Cell>, serde_json::Error> {
    let mut scanner = Scanner { bytes: raw.as_bytes(), at: 0 };
    let mut cells = Vec::with_capacity(raw.len() / 8);
    if scan(&mut scanner, &mut cells).is_some() {
        scanner.skip_whitespace();
        if scanner.at == raw.len() {
            return Ok(cells);
        }
    }
    serde_json::from_str::<Flat>(raw).map(|flat| flat.0)
}

/// One value of tensor data (an array, nested or not, of numbers, `null` and booleans);
/// `None` for anything else. The text is valid JSON already (serde_json read it as a raw
/// value), which bounds the nesting.
fn scan(s: &mut Scanner<'_>, out: &mut Vec<Cell>) -> Option<()> {
    s.skip_whitespace();
    match *s.bytes.get(s.at)? {
        b'[' => {
            s.at += 1;
            s.skip_whitespace();
            if s.bytes.get(s.at) == Some(&b']') {
                s.at += 1;
                return Some(());
            }
            loop {
                scan(s, out)?;
                match s.next()? {
                    b',' => continue,
                    b']' => return Some(()),
                    _ => return None,
                }
            }
        }
        b'n' => s.expect_literal(b"null").map(|()| out.push(Cell::Null)),
        b't' => s.expect_literal(b"true").map(|()| out.push(Cell::Bool(true))),
        b'f' => s.expect_literal(b"false").map(|()| out.push(Cell::Bool(false))),
        _ => s.number().map(|x| out.push(Cell::Number(x))),
    }
}

/// A tensor's values once its datatype is applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Values {
    /// Numbers; `NaN` marks a missing value (a JSON `null`).
    Numbers(Vec<f64>),
    /// Text; `None` marks a missing value.
    Texts(Vec<Option<String>>),
}

impl Values {
    pub(crate) fn len(&self) -> usize {
        match self {
            Values::Numbers(v) => v.len(),
            Values::Texts(v) => v.len(),
        }
    }
}

/// Applies `datatype` to JSON data of the tensor `name`.
pub(crate) fn from_json(name: &str, datatype: Datatype, cells: Vec<Cell>) -> Result<Values, String> {
    let wrong = |i: usize, cell: &Cell| {
        let found = match cell {
            Cell::Number(_) => "a number",
            Cell::Text(_) => "a string",
            Cell::Bool(_) => "a boolean",
            Cell::Null => "null",
            Cell::Other => "an object",
        };
        format!("input '{name}': {} data holds {found} at element {i}", datatype_name(datatype))
    };
    if datatype == Datatype::Bytes {
        return cells
            .into_iter()
            .enumerate()
            .map(|(i, cell)| match cell {
                Cell::Text(s) => Ok(Some(s)),
                Cell::Null => Ok(None),
                other => Err(wrong(i, &other)),
            })
            .collect::<Result<_, _>>()
            .map(Values::Texts);
    }
    cells
        .into_iter()
        .enumerate()
        .map(|(i, cell)| match cell {
            Cell::Number(x) => Ok(x),
            Cell::Bool(b) if datatype == Datatype::Bool => Ok(if b { 1.0 } else { 0.0 }),
            Cell::Null => Ok(f64::NAN),
            other => Err(wrong(i, &other)),
        })
        .collect::<Result<_, _>>()
        .map(Values::Numbers)
}

/// Reads `count` elements of `datatype` from the binary extension's `bytes` (exactly the
/// tensor's `binary_data_size` bytes), little-endian as the extension defines.
pub(crate) fn from_binary(name: &str, datatype: Datatype, count: usize, bytes: &[u8]) -> Result<Values, String> {
    let Some(width) = datatype.width() else {
        // The shape is the client's word: reserve no more than the bytes can hold.
        let mut texts = Vec::with_capacity(count.min(bytes.len() / 4));
        let mut rest = bytes;
        while !rest.is_empty() {
            let (len, tail) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| format!("input '{name}': BYTES element {} has a truncated length", texts.len()))?;
            let len = u32::from_le_bytes(*len) as usize;
            let (text, tail) = tail
                .split_at_checked(len)
                .ok_or_else(|| format!("input '{name}': BYTES element {} is longer than the data left", texts.len()))?;
            let text = std::str::from_utf8(text)
                .map_err(|_| format!("input '{name}': BYTES element {} is not UTF-8 text", texts.len()))?;
            texts.push(Some(text.to_string()));
            rest = tail;
        }
        if texts.len() != count {
            return Err(format!("input '{name}': the shape holds {count} elements, the binary data {}", texts.len()));
        }
        return Ok(Values::Texts(texts));
    };
    if bytes.len() != count.saturating_mul(width) {
        return Err(format!(
            "input '{name}': the shape holds {count} {} elements ({} bytes), the binary data has {} bytes",
            datatype_name(datatype),
            count.saturating_mul(width),
            bytes.len()
        ));
    }
    let numbers = bytes
        .chunks_exact(width)
        .map(|b| match (datatype, b) {
            (Datatype::Fp64, &[a, b, c, d, e, f, g, h]) => f64::from_le_bytes([a, b, c, d, e, f, g, h]),
            (Datatype::Fp32, &[a, b, c, d]) => f64::from(f32::from_le_bytes([a, b, c, d])),
            (Datatype::Fp16, &[a, b]) => half_to_f64(u16::from_le_bytes([a, b])),
            (Datatype::Bf16, &[a, b]) => f64::from(f32::from_bits(u32::from(u16::from_le_bytes([a, b])) << 16)),
            (Datatype::Bool, &[a]) => f64::from(u8::from(a != 0)),
            (Datatype::Uint(_), b) => le_u64(b) as f64,
            (Datatype::Int(w), b) => {
                let shift = 64 - 8 * u32::from(w);
                ((le_u64(b) << shift) as i64 >> shift) as f64
            }
            _ => f64::NAN,
        })
        .collect();
    Ok(Values::Numbers(numbers))
}

fn le_u64(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0, |acc, b| (acc << 8) | u64::from(*b))
}

/// IEEE 754 half precision to f64.
fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((h >> 10) & 0x1f);
    let fraction = f64::from(h & 0x3ff);
    sign * match exponent {
        0 => fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    }
}

/// The protocol's name of `datatype`.
pub(crate) fn datatype_name(datatype: Datatype) -> &'static str {
    match datatype {
        Datatype::Bool => "BOOL",
        Datatype::Uint(1) => "UINT8",
        Datatype::Uint(2) => "UINT16",
        Datatype::Uint(4) => "UINT32",
        Datatype::Uint(_) => "UINT64",
        Datatype::Int(1) => "INT8",
        Datatype::Int(2) => "INT16",
        Datatype::Int(4) => "INT32",
        Datatype::Int(_) => "INT64",
        Datatype::Fp16 => "FP16",
        Datatype::Bf16 => "BF16",
        Datatype::Fp32 => "FP32",
        Datatype::Fp64 => "FP64",
        Datatype::Bytes => "BYTES",
    }
}

/// The dimensions of `shape` (each a whole number ≥ 0) and the number of elements they hold.
pub(crate) fn shape(name: &str, shape: &serde_json::Value) -> Result<(Vec<usize>, usize), String> {
    let bad = || format!("input '{name}': shape must be an array of whole numbers ≥ 0, found {shape}");
    let dims: Vec<usize> = shape
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()).ok_or_else(bad))
        .collect::<Result<_, _>>()?;
    let count = dims.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d)).ok_or_else(bad)?;
    Ok((dims, count))
}

/// Appends `values` in the binary extension's encoding: f64 little-endian.
pub(crate) fn fp64_bytes(out: &mut Vec<u8>, values: impl Iterator<Item = f64>) {
    for x in values {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Appends `texts` in the binary extension's BYTES encoding: a 4-byte little-endian length,
/// then the bytes, per element.
pub(crate) fn bytes_bytes<'a>(out: &mut Vec<u8>, texts: impl Iterator<Item = &'a str>) {
    for text in texts {
        let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&text.as_bytes()[..len as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_flat_data_read_the_same() {
        let nested: Flat = serde_json::from_str("[[1, 2.5], [null, -3]]").unwrap();
        let flat: Flat = serde_json::from_str("[1, 2.5, null, -3]").unwrap();
        assert_eq!(nested.0, flat.0);
        let values = from_json("x", Datatype::Fp64, nested.0).unwrap();
        let Values::Numbers(v) = values else { panic!("numbers") };
        assert_eq!(v.len(), 4);
        assert!(v[2].is_nan());
        let err = from_json("x", Datatype::Fp64, vec![Cell::Number(1.0), Cell::Text("a".into())]).unwrap_err();
        assert!(err.contains("input 'x'") && err.contains("element 1"), "{err}");
        let err = from_json("c", Datatype::Bytes, vec![Cell::Number(1.0)]).unwrap_err();
        assert!(err.contains("input 'c'"), "{err}");
    }

    #[test]
    fn numbers_read_exactly_and_text_falls_back() {
        // A 17-digit number serde_json's fast float parser reads a unit in the last place off.
        let x = 0.155_095_276_103_057_26_f64;
        let raw = format!("[[{x:?}, null, true], [1e-300, -0]]");
        assert_eq!(
            cells(&raw).unwrap(),
            vec![Cell::Number(x), Cell::Null, Cell::Bool(true), Cell::Number(1e-300), Cell::Number(-0.0)]
        );
        assert_eq!(cells(r#"["a", null]"#).unwrap(), vec![Cell::Text("a".into()), Cell::Null]);
        assert_eq!(cells("[]").unwrap(), vec![]);
        assert_eq!(cells("[[], [2]]").unwrap(), vec![Cell::Number(2.0)]);
        assert_eq!(cells(r#"[{"a": 1}]"#).unwrap(), vec![Cell::Other]);
    }

    #[test]
    fn binary_tensors_decode_little_endian() {
        let mut bytes = Vec::new();
        fp64_bytes(&mut bytes, [1.5, -2.0].into_iter());
        assert_eq!(from_binary("x", Datatype::Fp64, 2, &bytes).unwrap(), Values::Numbers(vec![1.5, -2.0]));
        assert!(from_binary("x", Datatype::Fp64, 3, &bytes).unwrap_err().contains("input 'x'"));
        let ints = [0xffu8, 0xff, 0xff, 0xff, 7, 0, 0, 0];
        assert_eq!(from_binary("i", Datatype::Int(4), 2, &ints).unwrap(), Values::Numbers(vec![-1.0, 7.0]));
        assert_eq!(from_binary("h", Datatype::Fp16, 1, &[0x00, 0x3c]).unwrap(), Values::Numbers(vec![1.0]));
        let mut texts = Vec::new();
        bytes_bytes(&mut texts, ["organic", ""].into_iter());
        assert_eq!(
            from_binary("c", Datatype::Bytes, 2, &texts).unwrap(),
            Values::Texts(vec![Some("organic".into()), Some(String::new())])
        );
        assert!(from_binary("c", Datatype::Bytes, 2, &texts[..5]).unwrap_err().contains("input 'c'"));
    }

    #[test]
    fn shapes_are_whole_numbers() {
        assert_eq!(shape("x", &serde_json::json!([2, 3])).unwrap(), (vec![2, 3], 6));
        assert!(shape("x", &serde_json::json!([2, -1])).unwrap_err().contains("input 'x'"));
        assert!(shape("x", &serde_json::json!("2")).is_err());
        assert!(shape("x", &serde_json::json!([u64::MAX, 4])).is_err());
    }
}
