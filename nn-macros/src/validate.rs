//! Phase 3: the checks that span several layers: layer names are unique, `=> [..]` assertions hold and the last layer produces the declared
//! output. Shapes known only as types are checked by the code `expand` writes.
use crate::errors::Errors;
use crate::ir::{unraw, Network, ShapeInfo};
use crate::suggest;

pub(crate) fn validate(net: &Network, errors: &mut Errors) {
    let name = unraw(&net.name);
    for (i, layer) in net.layers.iter().enumerate() {
        let layer_name = unraw(&layer.name);
        let mut earlier = net.layers[..i].iter().filter(|l| unraw(&l.name) == layer_name);
        if let Some(first) = earlier.next() {
            errors.spanned(&layer.name, format!("layer name `{layer_name}` is used twice"));
            if earlier.next().is_none() {
                errors.spanned(&first.name, format!("`{layer_name}` is first used here"));
            }
        }
    }

    for layer in &net.layers {
        let (Some(assertion), ShapeInfo::Known(dims)) = (&layer.assertion, &layer.output) else {
            continue;
        };
        if let Some(asserted) = &assertion.dims {
            if asserted != dims {
                errors.at(
                    assertion.span,
                    format!(
                        "`{}` produces {}, not {}",
                        unraw(&layer.name),
                        suggest::dims(dims),
                        suggest::dims(asserted)
                    ),
                );
            }
        }
    }

    if let (Some(output), Some(last)) = (&net.output, net.layers.last()) {
        if let (Some(declared), ShapeInfo::Known(dims)) = (&output.dims, &last.output) {
            if declared != dims {
                errors.at(
                    output.span,
                    format!(
                        "`{name}` declares output {} but its last layer `{}` produces {}",
                        suggest::dims(declared),
                        unraw(&last.name),
                        suggest::dims(dims)
                    ),
                );
            }
        }
    }
}
