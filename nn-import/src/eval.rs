//! A small evaluator of the ONNX operators that reshape, select and multiply values
//! (`Reshape`, `Transpose`, `Gather`, `MatMul`, `Softmax`...), run on a few nodes of
//! the graph with a test input: the importer checks with it that a matched pattern
//! (the multi-head attention `torch.onnx.export` writes) computes what the library's
//! layer computes, before replacing it.
//!
//! Every failure (an operator it does not know, shapes that do not fit) is an `Err`
//! with the reason; nothing here panics on a malformed model.
use std::collections::HashMap;

use crate::convert::resolve_reshape;
use crate::layout::elements;
use crate::onnx::{Constant, Node};

/// A float tensor.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Value {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Value {
    fn from_constant(c: &Constant) -> Value {
        Value { shape: c.shape.clone(), data: c.floats() }
    }
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The axis `axis` (negative from the end) of a rank-`rank` tensor.
fn axis(axis: i64, rank: usize) -> Result<usize, String> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    usize::try_from(a).ok().filter(|&a| a < rank).ok_or_else(|| format!("axis {axis} of a rank-{rank} tensor"))
}

/// The broadcast shape of `a` and `b` (numpy's rules).
fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let rank = a.len().max(b.len());
    (0..rank)
        .map(|i| {
            let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
            let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
            match (da, db) {
                (x, y) if x == y => Ok(x),
                (1, y) => Ok(y),
                (x, 1) => Ok(x),
                _ => Err(format!("shapes {a:?} and {b:?} do not broadcast")),
            }
        })
        .collect()
}

/// The flat index into a tensor of `shape` (broadcast to `out`) of the element at
/// multi-index `index` of `out`.
fn source_index(index: &[usize], out: &[usize], shape: &[usize]) -> usize {
    let offset = out.len() - shape.len();
    let mut flat = 0;
    for (i, &d) in shape.iter().enumerate() {
        let x = if d == 1 { 0 } else { index[offset + i] };
        flat = flat * d + x;
    }
    flat
}

fn elementwise(a: &Value, b: &Value, f: impl Fn(f32, f32) -> f32) -> Result<Value, String> {
    let shape = broadcast(&a.shape, &b.shape)?;
    let n = elements(&shape);
    let mut index = vec![0; shape.len()];
    let mut data = Vec::with_capacity(n);
    for _ in 0..n {
        data.push(f(a.data[source_index(&index, &shape, &a.shape)], b.data[source_index(&index, &shape, &b.shape)]));
        for i in (0..shape.len()).rev() {
            index[i] += 1;
            if index[i] < shape[i] {
                break;
            }
            index[i] = 0;
        }
    }
    Ok(Value { shape, data })
}

fn transpose(x: &Value, perm: &[usize]) -> Result<Value, String> {
    let rank = x.shape.len();
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&p| p >= rank || std::mem::replace(&mut seen[p], true)) {
        return Err(format!("`perm` {perm:?} is not a permutation of {rank} axes"));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let (from, n) = (strides(&x.shape), elements(&shape));
    let mut index = vec![0; rank];
    let mut data = Vec::with_capacity(n);
    for _ in 0..n {
        data.push(x.data[(0..rank).map(|j| index[j] * from[perm[j]]).sum::<usize>()]);
        for i in (0..rank).rev() {
            index[i] += 1;
            if index[i] < shape[i] {
                break;
            }
            index[i] = 0;
        }
    }
    Ok(Value { shape, data })
}

/// numpy's `matmul`: matrices on the last two axes, the leading axes broadcast.
fn matmul(a: &Value, b: &Value) -> Result<Value, String> {
    if a.shape.len() < 2 || b.shape.len() < 2 {
        return Err(format!("`MatMul` of {:?} and {:?} (a vector operand)", a.shape, b.shape));
    }
    let (ra, rb) = (a.shape.len(), b.shape.len());
    let (m, k, k2, n) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 2], b.shape[rb - 1]);
    if k != k2 {
        return Err(format!("`MatMul` of {:?} and {:?}", a.shape, b.shape));
    }
    let lead = broadcast(&a.shape[..ra - 2], &b.shape[..rb - 2])?;
    let count = elements(&lead);
    let mut data = vec![0.0; count * m * n];
    let mut index = vec![0; lead.len()];
    for batch in 0..count {
        let ia = source_index(&index, &lead, &a.shape[..ra - 2]) * m * k;
        let ib = source_index(&index, &lead, &b.shape[..rb - 2]) * k * n;
        for i in 0..m {
            for j in 0..n {
                let mut sum = 0.0f32;
                for p in 0..k {
                    sum += a.data[ia + i * k + p] * b.data[ib + p * n + j];
                }
                data[(batch * m + i) * n + j] = sum;
            }
        }
        for i in (0..lead.len()).rev() {
            index[i] += 1;
            if index[i] < lead[i] {
                break;
            }
            index[i] = 0;
        }
    }
    let mut shape = lead;
    shape.extend([m, n]);
    Ok(Value { shape, data })
}

fn softmax(x: &Value, axis_attr: i64) -> Result<Value, String> {
    let a = axis(axis_attr, x.shape.len())?;
    if a + 1 != x.shape.len() {
        return Err(format!("a softmax over axis {axis_attr} of {:?}", x.shape));
    }
    let width = x.shape[a];
    let mut data = x.data.clone();
    for row in data.chunks_mut(width.max(1)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        row.iter_mut().for_each(|v| *v /= sum);
    }
    Ok(Value { shape: x.shape.clone(), data })
}

/// Picks `indices` along `axis` (ONNX `Gather`).
fn gather(x: &Value, indices: &Constant, axis_attr: i64) -> Result<Value, String> {
    let a = axis(axis_attr, x.shape.len())?;
    let ids = indices.ints().ok_or("its indices are not integers")?;
    let size = x.shape[a];
    let picks = ids
        .iter()
        .map(|&i| usize::try_from(if i < 0 { i + size as i64 } else { i }).ok().filter(|&i| i < size))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| format!("an index of {ids:?} is outside axis {a} of {:?}", x.shape))?;
    let outer = elements(&x.shape[..a]);
    let inner = elements(&x.shape[a + 1..]);
    let mut data = Vec::with_capacity(outer * picks.len() * inner);
    for o in 0..outer {
        for &p in &picks {
            let start = (o * size + p) * inner;
            data.extend_from_slice(&x.data[start..start + inner]);
        }
    }
    let mut shape = x.shape[..a].to_vec();
    shape.extend(&indices.shape);
    shape.extend(&x.shape[a + 1..]);
    Ok(Value { shape, data })
}

/// Keeps `start..end` (step 1) of each of `axes` (ONNX `Slice` with constant bounds).
fn slice(x: &Value, starts: &[i64], ends: &[i64], axes: &[i64], steps: &[i64]) -> Result<Value, String> {
    if starts.len() != ends.len() || axes.len() != starts.len() || steps.iter().any(|&s| s != 1) {
        return Err(String::from("a `Slice` with steps other than 1 or mismatched bounds"));
    }
    let mut v = x.clone();
    for ((&s, &e), &ax) in starts.iter().zip(ends).zip(axes) {
        let a = axis(ax, v.shape.len())?;
        let size = v.shape[a] as i64;
        let clamp = |i: i64| (if i < 0 { i + size } else { i }).clamp(0, size) as usize;
        let (s, e) = (clamp(s), clamp(e).max(clamp(s)));
        let ids: Vec<i64> = (s as i64..e as i64).collect();
        v = gather(&v, &Constant { shape: vec![ids.len()], data: crate::onnx::ConstantData::I64(ids) }, a as i64)?;
    }
    Ok(v)
}

/// Evaluates `nodes` in order from `values` (the computed inputs, by ONNX name),
/// reading constants from `constants`; returns every value computed.
pub(crate) fn run(
    nodes: &[&Node],
    constants: &HashMap<String, Constant>,
    mut values: HashMap<String, Value>,
) -> Result<HashMap<String, Value>, String> {
    for node in nodes {
        let get = |i: usize| -> Result<Value, String> {
            let name = node.input(i).ok_or_else(|| format!("`{}` has no input {i}", node.name))?;
            values
                .get(name)
                .cloned()
                .or_else(|| constants.get(name).map(Value::from_constant))
                .ok_or_else(|| format!("`{name}` is not known"))
        };
        let ints = |i: usize| -> Result<Vec<i64>, String> {
            let name = node.input(i).ok_or_else(|| format!("`{}` has no input {i}", node.name))?;
            let c = constants.get(name).ok_or_else(|| format!("`{name}` is not a constant"))?;
            c.ints().map(<[i64]>::to_vec).ok_or_else(|| format!("`{name}` is not integers"))
        };
        let axes_of = |default: Option<&[i64]>| -> Result<Vec<i64>, String> {
            match node.input(1) {
                Some(_) => ints(1),
                None => Ok(default.map(<[i64]>::to_vec).unwrap_or_default()),
            }
        };
        let x = get(0)?;
        if node.op == "Split" {
            let a = axis(node.int("axis", 0), x.shape.len())?;
            let parts = node.outputs.len();
            let sizes: Vec<usize> = match node.input(1) {
                Some(_) => ints(1)?.iter().map(|&n| usize::try_from(n).unwrap_or(usize::MAX)).collect(),
                None if parts > 0 && x.shape[a] % parts == 0 => vec![x.shape[a] / parts; parts],
                None => return Err(format!("a `Split` of {:?} into {parts} unequal parts", x.shape)),
            };
            if sizes.len() != parts || sizes.iter().try_fold(0usize, |t, &n| t.checked_add(n)) != Some(x.shape[a]) {
                return Err(format!("a `Split` of {:?} into {sizes:?}", x.shape));
            }
            let mut start = 0i64;
            for (name, &size) in node.outputs.iter().zip(&sizes) {
                let end = start + size as i64;
                values.insert(name.clone(), slice(&x, &[start], &[end], &[a as i64], &[1])?);
                start = end;
            }
            continue;
        }
        let out = match node.op.as_str() {
            "Identity" | "Dropout" => x,
            "Reshape" => {
                let target = ints(1)?;
                if node.int("allowzero", 0) != 0 && target.contains(&0) {
                    return Err(String::from("`allowzero = 1` with a zero dimension"));
                }
                Value { shape: resolve_reshape(&x.shape, &target)?, data: x.data }
            }
            "Transpose" => {
                let perm: Vec<usize> = match node.ints("perm") {
                    Some(p) => p.iter().map(|&a| usize::try_from(a).unwrap_or(usize::MAX)).collect(),
                    None => (0..x.shape.len()).rev().collect(),
                };
                transpose(&x, &perm)?
            }
            "Squeeze" => {
                let axes = axes_of(node.ints("axes"))?;
                let rank = x.shape.len();
                let axes: Vec<usize> = if axes.is_empty() {
                    (0..rank).filter(|&a| x.shape[a] == 1).collect()
                } else {
                    axes.iter().map(|&a| axis(a, rank)).collect::<Result<_, _>>()?
                };
                if axes.iter().any(|&a| x.shape[a] != 1) {
                    return Err(format!("`Squeeze` of an axis of {:?} longer than 1", x.shape));
                }
                let shape = x.shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect();
                Value { shape, data: x.data }
            }
            "Unsqueeze" => {
                let axes = axes_of(node.ints("axes"))?;
                let rank = x.shape.len() + axes.len();
                let axes: Vec<usize> = axes.iter().map(|&a| axis(a, rank)).collect::<Result<_, _>>()?;
                let mut dims = x.shape.iter().copied();
                let shape = (0..rank).map(|i| if axes.contains(&i) { 1 } else { dims.next().unwrap_or(1) }).collect();
                Value { shape, data: x.data }
            }
            "Gather" => {
                let name = node.input(1).unwrap_or_default();
                let indices = constants.get(name).ok_or("its indices are computed")?;
                gather(&x, indices, node.int("axis", 0))?
            }
            "Slice" => {
                let (starts, ends) = (ints(1)?, ints(2)?);
                let axes = if node.input(3).is_some() { ints(3)? } else { (0..starts.len() as i64).collect() };
                let steps = if node.input(4).is_some() { ints(4)? } else { vec![1; starts.len()] };
                slice(&x, &starts, &ends, &axes, &steps)?
            }
            "Add" => elementwise(&x, &get(1)?, |a, b| a + b)?,
            "Sub" => elementwise(&x, &get(1)?, |a, b| a - b)?,
            "Mul" => elementwise(&x, &get(1)?, |a, b| a * b)?,
            "Div" => elementwise(&x, &get(1)?, |a, b| a / b)?,
            "Sqrt" => Value { data: x.data.iter().map(|v| v.sqrt()).collect(), shape: x.shape },
            "MatMul" => matmul(&x, &get(1)?)?,
            "Gemm" => {
                if node.int("transA", 0) != 0 || x.shape.len() != 2 {
                    return Err(String::from("a `Gemm` with `transA = 1` or a rank other than 2"));
                }
                let mut b = get(1)?;
                if b.shape.len() != 2 {
                    return Err(format!("a `Gemm` weight of shape {:?}", b.shape));
                }
                if node.int("transB", 0) != 0 {
                    b = transpose(&b, &[1, 0])?;
                }
                let (alpha, beta) = (node.float("alpha", 1.0), node.float("beta", 1.0));
                let mut y = matmul(&x, &b)?;
                y.data.iter_mut().for_each(|v| *v *= alpha);
                if node.input(2).is_some() {
                    let mut c = get(2)?;
                    c.data.iter_mut().for_each(|v| *v *= beta);
                    y = elementwise(&y, &c, |a, b| a + b)?;
                    if y.shape.len() != 2 {
                        return Err(String::from("a `Gemm` bias that widens the product"));
                    }
                }
                y
            }
            "Softmax" => softmax(&x, node.int("axis", -1))?,
            other => return Err(format!("`{other}` within the pattern")),
        };
        if elements(&out.shape) != out.data.len() {
            return Err(format!("`{}` gave {} values for shape {:?}", node.op, out.data.len(), out.shape));
        }
        let name = node.outputs.first().ok_or_else(|| format!("`{}` has no output", node.name))?;
        values.insert(name.clone(), out);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_and_matrix_products_follow_numpy() {
        let x = Value { shape: vec![2, 3], data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] };
        let t = transpose(&x, &[1, 0]).unwrap();
        assert_eq!(t, Value { shape: vec![3, 2], data: vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0] });
        let p = matmul(&x, &t).unwrap();
        assert_eq!(p, Value { shape: vec![2, 2], data: vec![14.0, 32.0, 32.0, 77.0] });
        let b = Value { shape: vec![3], data: vec![10.0, 20.0, 30.0] };
        assert_eq!(elementwise(&x, &b, |a, b| a + b).unwrap().data, [11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
        let rows = Constant { shape: Vec::new(), data: crate::onnx::ConstantData::I64(vec![-1]) };
        assert_eq!(gather(&x, &rows, 0).unwrap(), Value { shape: vec![3], data: vec![4.0, 5.0, 6.0] });
        assert!(matmul(&x, &x).is_err());
        assert!(transpose(&x, &[0, 0]).is_err());
    }
}
