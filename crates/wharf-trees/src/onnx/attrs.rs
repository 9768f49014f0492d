//! Reading a node's attributes, with errors that name the node, its operator and the
//! attribute, and with every array's length capped.

use crate::error::TreeError;

use super::proto::{AttributeProto, NodeProto, TensorProto, DOUBLE, FLOAT, INT32, INT64};

/// Longest attribute array read (a tree node array of the largest ensemble fits).
pub(crate) const MAX_ATTRIBUTE_LEN: usize = crate::spec::MAX_NODES;

/// A node being compiled.
pub(crate) struct Node<'a> {
    pub(crate) proto: &'a NodeProto,
    pub(crate) index: usize,
}

impl<'a> Node<'a> {
    pub(crate) fn op(&self) -> &'a str {
        self.proto.op_type.as_deref().unwrap_or("")
    }

    /// `node 'name' (Op)`, or `node #3 (Op)` when it has no name.
    pub(crate) fn label(&self) -> String {
        match self.proto.name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => format!("node '{name}' ({})", self.op()),
            None => format!("node #{} ({})", self.index, self.op()),
        }
    }

    /// An error about `attribute` of this node.
    pub(crate) fn error(&self, attribute: &str, message: impl Into<String>) -> TreeError {
        TreeError::field("onnx", format!("{} attribute {attribute}", self.label()), message)
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.proto.attribute.iter().find(|a| a.name.as_deref() == Some(name))
    }

    fn capped<T>(&self, name: &str, v: &'a [T]) -> Result<&'a [T], TreeError> {
        if v.len() > MAX_ATTRIBUTE_LEN {
            return Err(TreeError::TooLarge {
                format: "onnx",
                what: "an attribute's values",
                found: v.len(),
                limit: MAX_ATTRIBUTE_LEN,
            })
            .map_err(|e| self.error(name, e.to_string()));
        }
        Ok(v)
    }

    pub(crate) fn ints(&self, name: &str) -> Result<&'a [i64], TreeError> {
        self.capped(name, self.get(name).map(|a| a.ints.as_slice()).unwrap_or(&[]))
    }

    pub(crate) fn floats(&self, name: &str) -> Result<&'a [f32], TreeError> {
        self.capped(name, self.get(name).map(|a| a.floats.as_slice()).unwrap_or(&[]))
    }

    /// Floats from `name`, or from its `name_as_tensor` form (float or double values, which
    /// must hold in `f32` exactly: the evaluator compares in `f32`).
    pub(crate) fn floats_or_tensor(&self, name: &str) -> Result<Vec<f32>, TreeError> {
        let tensor_name = format!("{name}_as_tensor");
        match self.get(&tensor_name).and_then(|a| a.t.as_ref()) {
            Some(t) => tensor_f32(t).map_err(|m| self.error(&tensor_name, m)),
            None => Ok(self.floats(name)?.to_vec()),
        }
    }

    /// A tensor attribute's float (or double) values.
    pub(crate) fn tensor_floats(&self, name: &str) -> Result<Vec<f32>, TreeError> {
        match self.get(name).and_then(|a| a.t.as_ref()) {
            Some(t) => tensor_f32(t).map_err(|m| self.error(name, m)),
            None => Ok(Vec::new()),
        }
    }

    /// A tensor attribute's small integers (`uint8` modes), from `raw_data` or `int32_data`.
    pub(crate) fn tensor_bytes(&self, name: &str) -> Result<Vec<u8>, TreeError> {
        let Some(t) = self.get(name).and_then(|a| a.t.as_ref()) else { return Ok(Vec::new()) };
        match t.raw_data.as_deref() {
            Some(raw) if !raw.is_empty() => Ok(raw.to_vec()),
            _ => t
                .int32_data
                .iter()
                .map(|v| u8::try_from(*v).map_err(|_| self.error(name, format!("{v} is not a mode"))))
                .collect(),
        }
    }

    pub(crate) fn strings(&self, name: &str) -> Result<Vec<String>, TreeError> {
        let raw = self.capped(name, self.get(name).map(|a| a.strings.as_slice()).unwrap_or(&[]))?;
        raw.iter()
            .enumerate()
            .map(|(i, s)| {
                String::from_utf8(s.clone()).map_err(|_| self.error(&format!("{name}[{i}]"), "not UTF-8 text"))
            })
            .collect()
    }

    pub(crate) fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|a| a.i)
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, TreeError> {
        match self.get(name).and_then(|a| a.s.as_ref()) {
            None => Ok(None),
            Some(s) => String::from_utf8(s.clone()).map(Some).map_err(|_| self.error(name, "not UTF-8 text")),
        }
    }

    pub(crate) fn float(&self, name: &str) -> Option<f32> {
        self.get(name).and_then(|a| a.f)
    }
}

/// A float or double tensor's values as `f32`.
pub(crate) fn tensor_f32(t: &TensorProto) -> Result<Vec<f32>, String> {
    if t.data_location == Some(1) {
        return Err("external tensor data is not read".into());
    }
    let raw = t.raw_data.as_deref().unwrap_or(&[]);
    match t.data_type {
        Some(FLOAT) if !raw.is_empty() => {
            if !raw.len().is_multiple_of(4) {
                return Err(format!("raw_data of {} bytes is not whole floats", raw.len()));
            }
            Ok(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        }
        Some(FLOAT) => Ok(t.float_data.clone()),
        Some(DOUBLE) => {
            let values: Vec<f64> = if raw.is_empty() {
                t.double_data.clone()
            } else {
                if !raw.len().is_multiple_of(8) {
                    return Err(format!("raw_data of {} bytes is not whole doubles", raw.len()));
                }
                raw.chunks_exact(8)
                    .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                    .collect()
            };
            values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let f = *v as f32;
                    if f as f64 == *v || v.is_nan() {
                        Ok(f)
                    } else {
                        Err(format!("[{i}] = {v} needs double precision; Wharf scores ONNX trees in float"))
                    }
                })
                .collect()
        }
        other => Err(format!("tensor of data type {} (expected float or double)", other.unwrap_or(0))),
    }
}

/// An integer tensor's values (column indices, shapes), capped in length.
pub(crate) fn tensor_i64(t: &TensorProto) -> Result<Vec<i64>, String> {
    if t.data_location == Some(1) {
        return Err("external tensor data is not read".into());
    }
    let raw = t.raw_data.as_deref().unwrap_or(&[]);
    let values: Vec<i64> = match t.data_type {
        Some(INT64) if !raw.is_empty() => {
            if !raw.len().is_multiple_of(8) {
                return Err(format!("raw_data of {} bytes is not whole int64s", raw.len()));
            }
            raw.chunks_exact(8).map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])).collect()
        }
        Some(INT64) => t.int64_data.clone(),
        Some(INT32) if raw.is_empty() => t.int32_data.iter().map(|v| *v as i64).collect(),
        other => return Err(format!("tensor of data type {} (expected int64)", other.unwrap_or(0))),
    };
    if values.len() > crate::spec::MAX_FEATURES {
        return Err(format!("{} values, over {}", values.len(), crate::spec::MAX_FEATURES));
    }
    Ok(values)
}
