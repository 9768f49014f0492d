//! The body of an Open Inference Protocol `infer` request, read into [`InferRequest`].
//!
//! Most requests are plain: an `inputs` array of tensors with a name, a shape, a datatype
//! and numeric `data`, perhaps `outputs` and an `id`. Those are read by a scanner in one pass
//! over the bytes, numbers going straight into the tensor's cells, the way `/predict` reads
//! `instances`. Anything else (escapes in a name, text data, parameters, a mistake to word)
//! is read by serde, which must first walk every tensor's data to find where it ends: on a
//! 100-row body that walk cost a quarter of the request.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::tensor::{self, Cell};
use crate::input::Scanner;

/// An inference request. Only what is read is kept; other members are ignored, as the
/// protocol's servers ignore parameters they do not know.
#[derive(Debug, Default)]
pub(crate) struct InferRequest {
    pub(crate) id: Option<String>,
    /// The request's `binary_data_output` parameter.
    pub(crate) binary_output: Option<bool>,
    pub(crate) inputs: Vec<Input>,
    /// Each requested output's name and its `binary_data` parameter.
    pub(crate) outputs: Option<Vec<(String, Option<bool>)>>,
}

/// One input tensor; `shape` and `datatype` are checked by the caller, so a mistake in them
/// is reported with the tensor's name.
#[derive(Debug)]
pub(crate) struct Input {
    pub(crate) name: String,
    pub(crate) shape: Value,
    pub(crate) datatype: Value,
    /// The `binary_data_size` parameter.
    pub(crate) binary_size: Option<Value>,
    /// JSON data, or the reason it cannot be read.
    pub(crate) data: Option<Result<Vec<Cell>, String>>,
}

/// Reads the JSON part of an inference request.
pub(crate) fn parse(json: &[u8]) -> Result<InferRequest, serde_json::Error> {
    if let Some(request) = fast(json) {
        return Ok(request);
    }
    let request: SerdeRequest<'_> = serde_json::from_slice(json)?;
    let flag = |p: Option<&Map<String, Value>>, key: &str| p.and_then(|p| p.get(key)).and_then(Value::as_bool);
    Ok(InferRequest {
        id: request.id,
        binary_output: flag(request.parameters.as_ref(), "binary_data_output"),
        inputs: request
            .inputs
            .into_iter()
            .map(|i| Input {
                binary_size: i.parameters.as_ref().and_then(|p| p.get("binary_data_size")).cloned(),
                data: i.data.map(|raw| tensor::cells(raw.get()).map_err(|e| e.to_string())),
                name: i.name,
                shape: i.shape,
                datatype: i.datatype,
            })
            .collect(),
        outputs: request
            .outputs
            .map(|outputs| outputs.into_iter().map(|o| (o.name, flag(o.parameters.as_ref(), "binary_data"))).collect()),
    })
}

#[derive(Deserialize)]
struct SerdeRequest<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(borrow)]
    inputs: Vec<SerdeInput<'a>>,
    #[serde(default)]
    outputs: Option<Vec<SerdeOutput>>,
}

#[derive(Deserialize)]
struct SerdeInput<'a> {
    name: String,
    #[serde(default)]
    shape: Value,
    #[serde(default)]
    datatype: Value,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    /// Kept as text, so its numbers are read exactly ([`tensor::cells`]).
    #[serde(default, borrow)]
    data: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct SerdeOutput {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

/// The plain request in one pass, or `None` for anything else (which serde then reads, and
/// words the errors of).
fn fast(json: &[u8]) -> Option<InferRequest> {
    let mut s = Scanner { bytes: json, at: 0 };
    let mut request = InferRequest::default();
    let mut seen_inputs = false;
    s.expect(b'{')?;
    members(&mut s, |s, key| {
        match key {
            "id" => request.id = Some(string(s)?.to_string()),
            "inputs" => {
                seen_inputs = true;
                elements(s, |s| {
                    request.inputs.push(input(s)?);
                    Some(())
                })?
            }
            "outputs" => {
                let mut outputs = Vec::new();
                elements(s, |s| {
                    s.expect(b'{')?;
                    let mut name = None;
                    members(s, |s, key| match key {
                        "name" => string(s).map(|n| name = Some(n.to_string())),
                        _ => None,
                    })?;
                    outputs.push((name?, None));
                    Some(())
                })?;
                request.outputs = Some(outputs);
            }
            _ => return None,
        }
        Some(())
    })?;
    s.skip_whitespace();
    (s.at == json.len() && seen_inputs).then_some(request)
}

/// One input tensor with numeric data.
fn input(s: &mut Scanner<'_>) -> Option<Input> {
    s.expect(b'{')?;
    let (mut name, mut shape, mut datatype, mut data) = (None, None, None, None);
    members(s, |s, key| {
        match key {
            "name" => name = Some(string(s)?.to_string()),
            "datatype" => datatype = Some(Value::String(string(s)?.to_string())),
            "shape" => {
                let mut dims = Vec::new();
                elements(s, |s| {
                    let d = s.number()?;
                    (d >= 0.0 && d.fract() == 0.0 && d <= 9e15).then(|| dims.push(Value::from(d as u64)))
                })?;
                shape = Some(Value::Array(dims));
            }
            "data" => {
                let mut cells = Vec::new();
                numbers(s, &mut cells)?;
                data = Some(Ok(cells));
            }
            _ => return None,
        }
        Some(())
    })?;
    Some(Input { name: name?, shape: shape?, datatype: datatype?, binary_size: None, data })
}

/// Nested arrays of numbers, flattened into `out`.
fn numbers(s: &mut Scanner<'_>, out: &mut Vec<Cell>) -> Option<()> {
    s.skip_whitespace();
    if s.bytes.get(s.at) != Some(&b'[') {
        return s.number().map(|x| out.push(Cell::Number(x)));
    }
    elements(s, |s| numbers(s, out))
}

/// An object's members after its `{`, up to and including its `}`; `each` reads a value.
fn members(s: &mut Scanner<'_>, mut each: impl FnMut(&mut Scanner<'_>, &str) -> Option<()>) -> Option<()> {
    s.skip_whitespace();
    if s.bytes.get(s.at) == Some(&b'}') {
        s.at += 1;
        return Some(());
    }
    loop {
        let key = string(s)?;
        s.expect(b':')?;
        each(s, key)?;
        match s.next()? {
            b',' => continue,
            b'}' => return Some(()),
            _ => return None,
        }
    }
}

/// An array's elements, `[` to `]`; `each` reads one.
fn elements(s: &mut Scanner<'_>, mut each: impl FnMut(&mut Scanner<'_>) -> Option<()>) -> Option<()> {
    s.expect(b'[')?;
    s.skip_whitespace();
    if s.bytes.get(s.at) == Some(&b']') {
        s.at += 1;
        return Some(());
    }
    loop {
        each(s)?;
        match s.next()? {
            b',' => continue,
            b']' => return Some(()),
            _ => return None,
        }
    }
}

/// A string without escapes or control characters (anything else goes to serde).
fn string<'a>(s: &mut Scanner<'a>) -> Option<&'a str> {
    s.expect(b'"')?;
    let bytes: &'a [u8] = s.bytes;
    let start = s.at;
    let len = bytes.get(start..)?.iter().position(|b| *b == b'"' || *b == b'\\' || *b < 0x20)?;
    if bytes[start + len] != b'"' {
        return None;
    }
    s.at = start + len + 1;
    std::str::from_utf8(&bytes[start..start + len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_reads_what_serde_reads() {
        let body = br#" {"id": "r1", "inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP64",
                        "data": [[1, 2.5], [-0.125, 3e2]]}, {"name": "b", "datatype": "INT64", "shape": [1], "data": []}],
                        "outputs": [{"name": "predict_proba"}]} "#;
        let fast = fast(body).expect("a plain request");
        let slow: SerdeRequest<'_> = serde_json::from_slice(body).unwrap();
        assert_eq!(fast.id.as_deref(), Some("r1"));
        assert_eq!(fast.inputs.len(), slow.inputs.len());
        for (f, s) in fast.inputs.iter().zip(&slow.inputs) {
            assert_eq!(f.name, s.name);
            assert_eq!(f.shape, s.shape);
            assert_eq!(f.datatype, s.datatype);
            let want = tensor::cells(s.data.unwrap().get()).unwrap();
            assert_eq!(f.data.clone().unwrap().unwrap(), want);
        }
        assert_eq!(fast.outputs, Some(vec![("predict_proba".to_string(), None)]));
    }

    #[test]
    fn anything_else_goes_to_serde() {
        for body in [
            r#"{"inputs": [{"name": "a\"b", "shape": [1], "datatype": "FP64", "data": [1]}]}"#,
            r#"{"inputs": [{"name": "c", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}"#,
            r#"{"inputs": [{"name": "c", "shape": [1], "datatype": "FP64", "data": [null]}]}"#,
            r#"{"inputs": [{"name": "c", "shape": [-1], "datatype": "FP64", "data": [1]}]}"#,
            r#"{"inputs": [{"name": "c", "shape": [1], "datatype": "FP64", "parameters": {}, "data": [1]}]}"#,
            r#"{"inputs": [], "parameters": {"binary_data_output": true}}"#,
            r#"{"inputs": [{"name": "c", "shape": [1], "datatype": "FP64", "data": [1]}]} trailing"#,
            r#"{"inputs": [{"name": "c", "shape": [1], "data": [1]}]}"#,
            r#"{"outputs": []}"#,
            r#"{"inputs": [{"name": "c", "shape": [1], "datatype": "FP64", "data": [1]}"#,
        ] {
            assert!(fast(body.as_bytes()).is_none(), "{body}");
        }
    }
}
