//! A graph network with several inputs or outputs as a model: the `MultiIo` impl
//! (its inputs and outputs as tuples of shapes) and the `Layer` impl over the
//! concatenation of its inputs' samples, which runs the network's own passes on the
//! inputs and outputs split apart, so that `Model`, `Fit` and the step API take it as
//! any layer.
//!
//! The expansion it reads is the network's inherent `forward`, `forward_train`,
//! `backward`, `init` and `visit_tensors` over arrays of slices, and its constants
//! `__NN_PARAMS`, `__NN_BUFFERS`, `__NN_CACHE` and `__NN_SCRATCH`.
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::expand;
use crate::ir::{shape_type, unraw, Graph};

/// The `MultiIo` and `Layer` impls of a graph network with several inputs or outputs.
pub(crate) fn expand(g: &Graph) -> TokenStream {
    let name = &g.net.name;
    let shape = |d: &Option<Vec<usize>>| shape_type(d.as_deref().unwrap_or(&[1]));
    let input_tys: Vec<TokenStream> = g.input_shapes.iter().map(shape).collect();
    let output_tys: Vec<TokenStream> = g.output_shapes.iter().map(shape).collect();
    let input_names: Vec<String> = g.inputs.iter().map(|&v| unraw(&g.values[v].name)).collect();
    let output_names: Vec<String> = g.outputs.iter().map(|&v| unraw(&g.values[v].name)).collect();
    let metric_names: Vec<TokenStream> =
        output_names.iter().map(|n| quote!(&::nn_core::__output_metric_names!(#n))).collect();
    let (n_in, n_out) = (g.inputs.len(), g.outputs.len());
    let xs: Vec<_> = (0..n_in).map(|k| format_ident!("__x{}", k)).collect();
    let ys: Vec<_> = (0..n_out).map(|k| format_ident!("__y{}", k)).collect();
    let dxs: Vec<_> = (0..n_in).map(|k| format_ident!("__dx{}", k)).collect();
    let dys: Vec<_> = (0..n_out).map(|k| format_ident!("__dy{}", k)).collect();
    let inputs_ty = quote!((#(#input_tys,)*));
    let outputs_ty = quote!((#(#output_tys,)*));
    let in_lens = quote!(<#inputs_ty as ::nn_core::multi::ShapeTuple>::LENS);
    let out_lens = quote!(<#outputs_ty as ::nn_core::multi::ShapeTuple>::LENS);
    let in_len = quote!(<#inputs_ty as ::nn_core::multi::ShapeTuple>::LEN);
    let out_len = quote!(<#outputs_ty as ::nn_core::multi::ShapeTuple>::LEN);
    // Splits `buffer` into one part per input (`parts`, lengths `lens`) of `batch`
    // samples each.
    let split = |buffer: &TokenStream, parts: &[proc_macro2::Ident], lens: &TokenStream, mutable: bool| {
        let ks = (0..parts.len()).map(Literal::usize_unsuffixed);
        if mutable {
            quote! { #(let (#parts, #buffer) = #buffer.split_at_mut(batch * #lens[#ks]);)* }
        } else {
            quote! { #(let (#parts, #buffer) = #buffer.split_at(batch * #lens[#ks]);)* }
        }
    };
    let split_x = split(&quote!(__xs), &xs, &in_lens, true);
    let split_y = split(&quote!(__ys), &ys, &out_lens, true);
    let read_x = split(&quote!(__xs), &xs, &in_lens, false);
    let read_y = split(&quote!(__ys), &ys, &out_lens, false);
    let split_dy = split(&quote!(__dys), &dys, &out_lens, true);
    let split_dx = split(&quote!(__dxs), &dxs, &in_lens, true);
    let (nesting, sizes) = expand::nesting(
        g,
        expand::SizeValues {
            params: quote!(__NN_PARAMS),
            buffers: quote!(__NN_BUFFERS),
            cache: quote!(__NN_CACHE + #in_len + #out_len),
            scratch: quote!(__NN_SCRATCH + #in_len + #out_len),
            forward_scratch: None,
            tensors: None,
        },
    );
    let layer_impl = expand::layer_impl(
        name,
        (quote!(::nn_core::Shape1<{ #in_len }>), quote!(::nn_core::Shape1<{ #out_len }>)),
        expand::LayerImpl {
            consts: sizes,
            init: quote! {
                <#name>::init(self, params, buffers, rng)
            },
            forward: quote! {
                let batch = x.len() / #in_len;
                let (__xs, scratch) = scratch.split_at_mut(batch * #in_len);
                let (__ys, scratch) = scratch.split_at_mut(batch * #out_len);
                {
                    let __xs = &mut *__xs;
                    #split_x
                    ::nn_core::multi::deinterleave(x, #in_lens, &mut [#(#xs),*]);
                }
                {
                    let __xs = &*__xs;
                    #read_x
                    let __ys = &mut *__ys;
                    #split_y
                    <#name>::forward(self, w, [#(#xs),*], [#(#ys),*], scratch);
                }
                let __ys = &*__ys;
                #read_y
                ::nn_core::multi::interleave(&[#(#ys),*], #out_lens, y);
            },
            forward_train: quote! {
                let ::nn_core::TrainCtx { params, buffers, cache, scratch, rng, training } = cx;
                let batch = x.len() / #in_len;
                let (__xs, cache) = cache.split_at_mut(batch * #in_len);
                let (__ys, cache) = cache.split_at_mut(batch * #out_len);
                {
                    let __xs = &mut *__xs;
                    #split_x
                    ::nn_core::multi::deinterleave(x, #in_lens, &mut [#(#xs),*]);
                }
                {
                    let __xs = &*__xs;
                    #read_x
                    let __ys = &mut *__ys;
                    #split_y
                    let cx = ::nn_core::TrainCtx { params, buffers, cache, scratch, rng, training };
                    <#name>::forward_train(self, [#(#xs),*], [#(#ys),*], cx);
                }
                let __ys = &*__ys;
                #read_y
                ::nn_core::multi::interleave(&[#(#ys),*], #out_lens, y);
            },
            backward: quote! {
                let ::nn_core::BackwardCtx { params, cache, grads, frozen, scratch } = cx;
                let batch = x.len() / #in_len;
                let (__xs, cache) = cache.split_at(batch * #in_len);
                let (__ys, cache) = cache.split_at(batch * #out_len);
                #read_x
                #read_y
                let (__dys, scratch) = scratch.split_at_mut(batch * #out_len);
                let (__dxs, scratch) = scratch.split_at_mut(batch * #in_len);
                #split_dy
                ::nn_core::multi::deinterleave(dy, #out_lens, &mut [#(&mut *#dys),*]);
                let __want = dx.is_some();
                {
                    let __dxs = &mut *__dxs;
                    #split_dx
                    <#name>::backward(
                        self,
                        [#(#xs),*],
                        [#(#ys),*],
                        [#(#dys),*],
                        [#(if __want { ::core::option::Option::Some(#dxs) } else { ::core::option::Option::None }),*],
                        ::nn_core::BackwardCtx { params, cache, grads, frozen, scratch },
                    );
                }
                if let ::core::option::Option::Some(dx) = dx {
                    let __dxs = &*__dxs;
                    let __xs = __dxs;
                    #read_x
                    ::nn_core::multi::interleave(&[#(#xs),*], #in_lens, dx);
                }
            },
            visit_tensors: quote! {
                <#name>::visit_tensors(self, path, params_at, buffers_at, f)
            },
            visit_summary: None,
            by_value: false,
        },
    );
    quote! {
        #nesting

        impl ::nn_core::multi::MultiIo for #name {
            type Inputs = #inputs_ty;
            type Outputs = #outputs_ty;
            const INPUT_NAMES: &'static [&'static str] = &[#(#input_names),*];
            const OUTPUT_NAMES: &'static [&'static str] = &[#(#output_names),*];
            const OUTPUT_METRIC_NAMES: &'static [&'static [&'static str]] = &[#(#metric_names),*];
        }

        /// The network over the concatenation of its inputs' samples (in declared
        /// order), writing the concatenation of its outputs' samples.
        #layer_impl
    }
}
