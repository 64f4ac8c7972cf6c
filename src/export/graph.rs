//! A small builder of ONNX graphs over the `onnx-protobuf` message types: graph inputs and
//! outputs, float, int64 and int8 initializers, and nodes (of any operator domain) with
//! attributes. Every value gets a unique name derived from a readable hint.

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::{
    type_proto, AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// One axis of a graph input or output.
#[derive(Debug, Clone, Copy)]
pub enum Dim {
    /// A named dynamic axis (e.g. `batch`).
    Dynamic(&'static str),
}

/// A node attribute value.
#[derive(Debug, Clone)]
pub enum Attr {
    /// `INT`.
    Int(i64),
    /// `INTS`.
    Ints(Vec<i64>),
    /// `FLOAT`.
    Float(f32),
    /// `STRING`.
    Str(&'static str),
}

/// An ONNX graph under construction.
#[derive(Debug, Default)]
pub struct Graph {
    proto: GraphProto,
    used: std::collections::HashSet<String>,
    half: bool,
}

/// Float initializers with at least this many elements are stored as float16 when the graph
/// stores weights in half precision ([`Graph::store_half`]).
pub const HALF_MIN_ELEMENTS: usize = 256;

fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Dim::Dynamic(n) => Dimension {
                value: Some(dimension::Value::DimParam((*n).into())),
                ..Default::default()
            },
        })
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: elem as i32,
        shape: Some(TensorShapeProto {
            dim,
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.into(),
        type_: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

impl Graph {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> Self {
        Graph {
            proto: GraphProto {
                name: name.into(),
                ..Default::default()
            },
            used: Default::default(),
            half: false,
        }
    }

    /// Stores float initializers of [`HALF_MIN_ELEMENTS`] or more as float16, each behind a
    /// `Cast` to float32 (which ONNX Runtime folds when it loads the graph, so the arithmetic
    /// stays float32; only the file is smaller).
    pub fn store_half(&mut self, on: bool) {
        self.half = on;
    }

    /// Whether large float initializers are stored as float16 ([`Graph::store_half`]).
    pub fn stores_half(&self) -> bool {
        self.half
    }

    /// A name not used yet, `hint` itself when free.
    pub fn fresh(&mut self, hint: &str) -> String {
        let mut name = hint.to_string();
        let mut k = 1;
        while self.used.contains(&name) {
            k += 1;
            name = format!("{hint}_{k}");
        }
        self.used.insert(name.clone());
        name
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Dim]) -> String {
        let name = self.fresh(name);
        self.proto.input.push(value_info(&name, elem, dims));
        name
    }

    /// Declares `value` (already produced by a node) a graph output.
    pub fn output(&mut self, value: &str, elem: DataType, dims: &[Dim]) {
        self.proto.output.push(value_info(value, elem, dims));
    }

    /// A float32 initializer of shape `dims`, stored little-endian in `raw_data`.
    pub fn init_f32(&mut self, hint: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        if self.half && data.len() >= HALF_MIN_ELEMENTS {
            let stored = self.fresh(&format!("{hint}.f16"));
            let raw: Vec<u8> = data
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect();
            self.proto.initializer.push(TensorProto {
                name: stored.clone(),
                dims: dims.iter().map(|&d| d as i64).collect(),
                data_type: DataType::FLOAT16 as i32,
                raw_data: raw,
                ..Default::default()
            });
            return self.op(
                "Cast",
                hint,
                &[&stored],
                &[("to", Attr::Int(DataType::FLOAT as i64))],
            );
        }
        let name = self.fresh(hint);
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.proto.initializer.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::FLOAT as i32,
            raw_data: raw,
            ..Default::default()
        });
        name
    }

    /// An int64 initializer of shape `dims` (`&[]` for a scalar).
    pub fn init_i64(&mut self, hint: &str, dims: &[usize], data: &[i64]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let name = self.fresh(hint);
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.proto.initializer.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::INT64 as i32,
            raw_data: raw,
            ..Default::default()
        });
        name
    }

    /// An int8 initializer of shape `dims` (quantized weights).
    pub fn init_i8(&mut self, hint: &str, dims: &[usize], data: &[i8]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let name = self.fresh(hint);
        self.proto.initializer.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::INT8 as i32,
            raw_data: data.iter().map(|&v| v as u8).collect(),
            ..Default::default()
        });
        name
    }

    /// A float32 scalar constant.
    pub fn scalar(&mut self, hint: &str, v: f32) -> String {
        self.init_f32(hint, &[], &[v])
    }

    /// A 1-D int64 constant (shapes, axes).
    pub fn ints(&mut self, hint: &str, v: &[i64]) -> String {
        self.init_i64(hint, &[v.len()], v)
    }

    /// Adds node `op` with one output named after `hint`; returns the output's name.
    pub fn op(&mut self, op: &str, hint: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        self.node("", op, &[hint], inputs, attrs).remove(0)
    }

    /// Adds node `op` of operator domain `domain` (`""`: the default ONNX domain) with one
    /// output per hint; returns the outputs' names. An empty input name skips an optional
    /// input.
    pub fn node(
        &mut self,
        domain: &str,
        op: &str,
        hints: &[&str],
        inputs: &[&str],
        attrs: &[(&str, Attr)],
    ) -> Vec<String> {
        let outs: Vec<String> = hints.iter().map(|h| self.fresh(h)).collect();
        let attribute = attrs
            .iter()
            .map(|(name, a)| {
                let mut p = AttributeProto {
                    name: (*name).into(),
                    ..Default::default()
                };
                match a {
                    Attr::Int(i) => {
                        p.type_ = AttributeType::INT.into();
                        p.i = *i;
                    }
                    Attr::Ints(v) => {
                        p.type_ = AttributeType::INTS.into();
                        p.ints = v.clone();
                    }
                    Attr::Float(f) => {
                        p.type_ = AttributeType::FLOAT.into();
                        p.f = *f;
                    }
                    Attr::Str(v) => {
                        p.type_ = AttributeType::STRING.into();
                        p.s = v.as_bytes().to_vec();
                    }
                }
                p
            })
            .collect();
        self.proto.node.push(NodeProto {
            name: outs[0].clone(),
            op_type: op.into(),
            domain: domain.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outs.clone(),
            attribute,
            ..Default::default()
        });
        outs
    }

    /// Number of initializer elements (the exported parameter count, constants included).
    pub fn initializer_elements(&self) -> usize {
        self.proto
            .initializer
            .iter()
            .map(|t| t.dims.iter().product::<i64>() as usize)
            .sum()
    }

    /// The finished graph.
    pub fn into_proto(self) -> GraphProto {
        self.proto
    }
}
