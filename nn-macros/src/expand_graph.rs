//! Phase 4 for a graph that is not a sequence: the `Layer` and `Network` impls (through
//! `expand::layer_impl`), whose passes run the statements in order (forward) and in
//! reverse (backward), each layer a constant and each value a slice of the scratch or
//! the cache. A network with several inputs or outputs gets inherent methods over
//! arrays instead, and the items of `several_inputs_or_outputs`.
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

use crate::expand::{self, Checks};
use crate::ir::{shape_type, unraw, Graph, GraphLayer, NodeOp};

/// The Rust items of a graph network without errors.
pub(crate) fn expand(g: &Graph) -> TokenStream {
    let net = &g.net;
    let name = &net.name;
    let item = expand::struct_item(net);
    let mut checks = Checks::default();
    let multi = g.inputs.len() > 1 || g.outputs.len() > 1;
    let numbered = |base: &str, n: usize| -> Vec<Ident> {
        if multi {
            (0..n).map(|k| format_ident!("{}{}", base, k)).collect()
        } else {
            vec![format_ident!("{}", base)]
        }
    };
    let (xs, ys) = (numbered("x", g.inputs.len()), numbered("y", g.outputs.len()));
    let (dys, dxs) = (numbered("dy", g.outputs.len()), numbered("dx", g.inputs.len()));
    let shape_ty = |d: &Option<Vec<usize>>| shape_type(d.as_deref().unwrap_or(&[1]));
    let input_tys: Vec<TokenStream> = g.input_shapes.iter().map(shape_ty).collect();
    let input_of = |v: usize| g.inputs.iter().position(|&i| i == v).expect("an input value");
    let output_of = |v: usize| g.outputs.iter().position(|&o| o == v);
    let (x0, in0) = (&xs[0], &input_tys[0]);

    // The layers: a type, a constant value, and their sizes.
    let mut layer_items = Vec::new();
    let mut sizes = Vec::new(); // (params, buffers, cache, scratch) expressions
    let mut forward_scratches = Vec::new();
    let mut tensors = Vec::new(); // (name, tensor tree) of each layer
    for (k, layer) in g.layers.iter().enumerate() {
        let ty_name = format_ident!("__NnL{}", k);
        let const_name = format_ident!("__NN_L{}", k);
        match layer {
            GraphLayer::Plain(l) => {
                let crate::kinds::Emitted { ty, value } = expand::layer(l, &mut checks);
                let layer_name = unraw(&l.name);
                layer_items.push(quote! {
                    type #ty_name = ::nn_core::__private::Named<#ty>;
                    const #const_name: #ty_name = ::nn_core::__private::Named { name: #layer_name, layer: #value };
                });
                sizes.push((
                    quote!(<#ty_name as ::nn_core::Layer>::PARAMS),
                    quote!(<#ty_name as ::nn_core::Layer>::BUFFERS),
                    quote!(<#ty_name as ::nn_core::Layer>::CACHE),
                    quote!(<#ty_name as ::nn_core::Layer>::SCRATCH),
                ));
                forward_scratches.push(quote!(<#ty_name as ::nn_core::Layer>::FORWARD_SCRATCH));
                tensors.push((layer_name, quote!(<#ty as ::nn_core::Layer>::TENSORS)));
            }
            GraphLayer::Tied { name, inputs, outputs, activation, bias, .. } => {
                let (i, o) = (Literal::usize_unsuffixed(*inputs), Literal::usize_unsuffixed(*outputs));
                // Its one tensor of its own, the bias.
                let tree = if *bias {
                    quote!(&::nn_core::weights::TensorTree::Leaf { name: "bias", shape: &[#o], trainable: true })
                } else {
                    quote!(&::nn_core::weights::TensorTree::Empty)
                };
                tensors.push((unraw(name), tree));
                forward_scratches.push(quote!(0));
                layer_items.push(quote! {
                    type #ty_name = ::nn_core::graph::TiedDense<#i, #o, #bias>;
                    const #const_name: #ty_name = ::nn_core::graph::TiedDense::new(#activation);
                });
                sizes.push((quote!(<#ty_name>::PARAMS), quote!(0), quote!(<#ty_name>::CACHE), quote!(0)));
            }
        }
    }
    for (span, actual, expected, message, label) in &g.type_checks {
        checks.same(*span, actual.clone(), expected.clone(), message, label);
    }
    for (span, actual, expected, message, label) in &g.state_checks {
        checks.state(*span, actual.clone(), expected.clone(), message, label);
    }
    // Offsets of each layer's parameters and buffers.
    let mut offsets = Vec::new();
    for k in 0..g.layers.len() {
        let p = format_ident!("__NN_P{}", k);
        let b = format_ident!("__NN_B{}", k);
        if k == 0 {
            offsets.push(quote!(const #p: usize = 0; const #b: usize = 0;));
        } else {
            let (pp, pb) = (format_ident!("__NN_P{}", k - 1), format_ident!("__NN_B{}", k - 1));
            let (sp, sb, _, _) = &sizes[k - 1];
            offsets.push(quote!(const #p: usize = #pp + #sp; const #b: usize = #pb + #sb;));
        }
    }
    let total_params: Vec<&TokenStream> = sizes.iter().map(|s| &s.0).collect();
    let total_buffers: Vec<&TokenStream> = sizes.iter().map(|s| &s.1).collect();
    // Per-sample lengths of the values.
    let mut value_lens = Vec::new();
    for (i, v) in g.values.iter().enumerate() {
        let c = format_ident!("__NN_V{}", i);
        let len = if v.input {
            let ty = &input_tys[input_of(i)];
            quote!(<#ty as ::nn_core::Shape>::LEN)
        } else {
            v.shape.len()
        };
        value_lens.push(quote!(const #c: usize = #len;));
    }
    let vlen = |i: usize| {
        let c = format_ident!("__NN_V{}", i);
        quote!(#c)
    };
    let internal: Vec<usize> = (0..g.values.len()).filter(|&i| !g.values[i].input && output_of(i).is_none()).collect();
    let internal_lens: Vec<TokenStream> = internal.iter().map(|&i| vlen(i)).collect();
    let all_lens: Vec<TokenStream> = (0..g.values.len()).map(vlen).collect();
    let node_caches: Vec<TokenStream> = g
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            NodeOp::Apply(k) => Some(sizes[k].2.clone()),
            _ => None,
        })
        .collect();
    let scratches: Vec<&TokenStream> = sizes.iter().map(|s| &s.3).collect();

    let v = |i: usize| format_ident!("__v{}", i);
    let gr = |i: usize| format_ident!("__g{}", i);
    let cache_of = |n: usize| format_ident!("__c{}", n);
    let p_range = |k: usize| {
        let p = format_ident!("__NN_P{}", k);
        let n = &sizes[k].0;
        quote!(#p..#p + #n)
    };
    let b_range = |k: usize| {
        let b = format_ident!("__NN_B{}", k);
        let n = &sizes[k].1;
        quote!(#b..#b + #n)
    };
    // The range of a tied layer's target weight.
    let weight_range = |t: usize, inputs: usize, outputs: usize| {
        let p = format_ident!("__NN_P{}", t);
        let n = Literal::usize_unsuffixed(inputs * outputs);
        quote!(#p..#p + #n)
    };
    let read = |i: usize| {
        let v = v(i);
        quote!(&*#v)
    };

    // Value storage: inputs are `x`, the output is `y`, the others are split off a buffer.
    let bind_values = |buffer: &Ident, mutable: bool| -> TokenStream {
        let mut out = TokenStream::new();
        for (i, value) in g.values.iter().enumerate() {
            let name = v(i);
            if value.input {
                let x = &xs[input_of(i)];
                out.extend(quote!(let #name: &[f32] = #x;));
            } else if let Some(j) = output_of(i) {
                let y = &ys[j];
                if mutable {
                    out.extend(quote!(let #name: &mut [f32] = #y;));
                } else {
                    out.extend(quote!(let #name: &[f32] = #y;));
                }
            } else {
                let len = vlen(i);
                if mutable {
                    out.extend(quote!(let (#name, #buffer) = #buffer.split_at_mut(batch * #len);));
                } else {
                    out.extend(quote!(let (#name, #buffer) = #buffer.split_at(batch * #len);));
                }
            }
        }
        out
    };
    let bind_caches = |mutable: bool| -> TokenStream {
        let mut out = TokenStream::new();
        for (n, node) in g.nodes.iter().enumerate() {
            if let NodeOp::Apply(k) = node.op {
                let c = cache_of(n);
                let len = &sizes[k].2;
                if mutable {
                    out.extend(quote!(let (#c, cache) = cache.split_at_mut(batch * #len);));
                } else {
                    out.extend(quote!(let (#c, cache) = cache.split_at(batch * #len);));
                }
            }
        }
        out
    };

    // Forward passes.
    let mut forward_body = TokenStream::new();
    let mut train_body = TokenStream::new();
    for (n, node) in g.nodes.iter().enumerate() {
        let out = v(node.out);
        let reads: Vec<TokenStream> = node.args.iter().map(|&a| read(a)).collect();
        match &node.op {
            NodeOp::Apply(k) => {
                let l = format_ident!("__NN_L{}", k);
                let x = &reads[0];
                let c = cache_of(n);
                match &g.layers[*k] {
                    GraphLayer::Plain(_) => {
                        let (pr, br) = (p_range(*k), b_range(*k));
                        let (p, b, ty) =
                            (format_ident!("__NN_P{}", k), format_ident!("__NN_B{}", k), format_ident!("__NnL{}", k));
                        let cx = quote! {
                            let __cx = ::nn_core::TrainCtx {
                                params: &params[#pr],
                                buffers: &mut buffers[#br],
                                cache: &mut *#c,
                                scratch: &mut *scratch,
                                rng: &mut *rng,
                                training,
                            };
                        };
                        let initial = initial_states(&reads);
                        if let Some(finals) = final_states(&node.states, &|i| v(i)) {
                            // `(y, h, c) = lstm(x)`: the final state into values too.
                            let initial = initial.unwrap_or_else(|| quote!(::core::option::Option::None));
                            forward_body.extend(quote! {
                                let __w = w.of::<#ty>(#p, #b);
                                #l.layer.forward_with_state(__w, #x, #initial, &mut *#out, #finals, &mut *scratch);
                            });
                            train_body.extend(quote! {
                                #cx
                                #l.layer.forward_train_with_state(#x, #initial, &mut *#out, __cx, #finals);
                            });
                        } else if let Some(states) = initial {
                            // `gru(x, h0)`, `lstm(x, h0, c0)`: from a given state.
                            forward_body.extend(quote! {
                                let __w = w.of::<#ty>(#p, #b);
                                #l.layer.forward_with_state(
                                    __w, #x, #states, &mut *#out, ::core::option::Option::None, &mut *scratch,
                                );
                            });
                            train_body.extend(quote! {
                                #cx
                                #l.layer.forward_train_with_state(#x, #states, &mut *#out, __cx, ::core::option::Option::None);
                            });
                        } else {
                            forward_body.extend(quote! {
                                let __w = w.of::<#ty>(#p, #b);
                                ::nn_core::Layer::forward(&#l, __w, #x, &mut *#out, &mut *scratch);
                            });
                            train_body.extend(quote! {
                                #cx
                                ::nn_core::Layer::forward_train(&#l, #x, &mut *#out, __cx);
                            });
                        }
                    }
                    GraphLayer::Tied { target, inputs, outputs, .. } => {
                        let (wr, pr) = (weight_range(*target, *inputs, *outputs), p_range(*k));
                        forward_body.extend(quote! {
                            #l.forward(&params[#wr], &params[#pr], #x, &mut *#out, ::core::option::Option::None);
                        });
                        train_body.extend(quote! {
                            #l.forward(&params[#wr], &params[#pr], #x, &mut *#out, ::core::option::Option::Some(&mut *#c));
                        });
                    }
                }
            }
            NodeOp::Add | NodeOp::Multiply => {
                let f = if matches!(node.op, NodeOp::Add) { quote!(add) } else { quote!(multiply) };
                let call = quote!(::nn_core::graph::#f(&[#(#reads),*], &mut *#out););
                forward_body.extend(call.clone());
                train_body.extend(call);
            }
            NodeOp::Subtract => {
                let (a, b) = (&reads[0], &reads[1]);
                let call = quote!(::nn_core::graph::subtract(#a, #b, &mut *#out););
                forward_body.extend(call.clone());
                train_body.extend(call);
            }
            NodeOp::Concat(blocks) => {
                let blocks = blocks.iter().map(|b| Literal::usize_unsuffixed(*b));
                let call = quote!(::nn_core::graph::concat(&[#(#reads),*], &[#(#blocks),*], &mut *#out););
                forward_body.extend(call.clone());
                train_body.extend(call);
            }
        }
    }

    // The backward pass, statements in reverse. The first gradient written into a
    // value's buffer overwrites it, the others add into it.
    let mut written: Vec<bool> = (0..g.values.len()).map(|i| output_of(i).is_some()).collect();
    let mut backward_body = TokenStream::new();
    for (n, node) in g.nodes.iter().enumerate().rev() {
        let dy = gr(node.out);
        match &node.op {
            NodeOp::Apply(k) => {
                let u = node.args[0];
                let l = format_ident!("__NN_L{}", k);
                let c = cache_of(n);
                let (x, y) = (read(u), read(node.out));
                let len = vlen(u);
                let state_grads = state_grad_slices(node.args.len(), &node.args, &vlen);
                // A value nothing used (`_` in `(_, h) = gru(x)`) has a zero gradient.
                for &o in core::iter::once(&node.out).chain(&node.states) {
                    if !written[o] {
                        let go = gr(o);
                        backward_body.extend(quote!(<[f32]>::fill(&mut *#go, 0.0);));
                        written[o] = true;
                    }
                }
                let d_final = final_state_grads(&node.states, &|i| gr(i));
                let call = |dx: TokenStream| match &g.layers[*k] {
                    GraphLayer::Plain(_) => {
                        let pr = p_range(*k);
                        let p = format_ident!("__NN_P{}", k);
                        let backward = match (&state_grads, &d_final) {
                            (_, Some(d_final)) => {
                                let d_initial =
                                    state_grads.clone().unwrap_or_else(|| quote!(::core::option::Option::None));
                                quote!(#l.layer.backward_with_states(#x, &*#dy, #dx, __cx, #d_initial, #d_final);)
                            }
                            (Some(d_initial), None) => quote! {
                                #l.layer.backward_with_state(#x, &*#dy, #dx, __cx, #d_initial);
                            },
                            (None, None) => quote!(::nn_core::Layer::backward(&#l, #x, #y, &mut *#dy, #dx, __cx);),
                        };
                        quote! {
                            let __cx = ::nn_core::BackwardCtx {
                                params: &params[#pr],
                                cache: &*#c,
                                grads: &mut grads[#pr],
                                frozen: frozen.shifted(#p),
                                scratch: &mut *scratch,
                            };
                            #backward
                        }
                    }
                    GraphLayer::Tied { target, inputs, outputs, .. } => {
                        let wr = weight_range(*target, *inputs, *outputs);
                        let wp = format_ident!("__NN_P{}", target);
                        let wn = Literal::usize_unsuffixed(inputs * outputs);
                        let bp = format_ident!("__NN_P{}", k);
                        let bn = &sizes[*k].0;
                        quote! {
                            {
                                let (__dw, __db) = ::nn_core::graph::two_mut(grads, #wp, #wn, #bp, #bn);
                                #l.backward(&params[#wr], #x, #y, &*#c, &mut *#dy, #dx, __dw, __db);
                            }
                        }
                    }
                };
                let tmp = quote!(::core::option::Option::Some(&mut __tmp[..batch * #len]));
                let first = !written[u];
                written[u] = true;
                backward_body.extend(if g.values[u].input {
                    let dx = &dxs[input_of(u)];
                    if first {
                        call(quote!(#dx.as_deref_mut()))
                    } else {
                        let with = call(tmp);
                        let without = call(quote!(::core::option::Option::None));
                        quote! {
                            if let ::core::option::Option::Some(__d) = #dx.as_deref_mut() {
                                #with
                                ::nn_core::graph::accumulate(__d, &__tmp[..batch * #len]);
                            } else {
                                #without
                            }
                        }
                    }
                } else {
                    let gu = gr(u);
                    if first {
                        call(quote!(::core::option::Option::Some(&mut *#gu)))
                    } else {
                        let with = call(tmp);
                        quote! {
                            #with
                            ::nn_core::graph::accumulate(&mut *#gu, &__tmp[..batch * #len]);
                        }
                    }
                });
                // The gradients of the initial state, written by the call into
                // `__dstate` (`h0`, then `c0`), go to their values.
                let mut at = quote!(0);
                for &s in &node.args[1..] {
                    let len = vlen(s);
                    let part = quote!(&__dstate[#at..#at + batch * #len]);
                    at = quote!(#at + batch * #len);
                    let first = !written[s];
                    written[s] = true;
                    let give = |target: TokenStream| {
                        if first {
                            quote!(<[f32]>::copy_from_slice(#target, #part);)
                        } else {
                            quote!(::nn_core::graph::accumulate(#target, #part);)
                        }
                    };
                    backward_body.extend(if g.values[s].input {
                        let dx = &dxs[input_of(s)];
                        let give = give(quote!(__d));
                        quote!(if let ::core::option::Option::Some(__d) = #dx.as_deref_mut() { #give })
                    } else {
                        let gs = gr(s);
                        give(quote!(&mut *#gs))
                    });
                }
            }
            op => {
                let reads: Vec<TokenStream> = node.args.iter().map(|&a| read(a)).collect();
                for (j, &u) in node.args.iter().enumerate() {
                    let accumulate = written[u];
                    written[u] = true;
                    let contribution = |target: TokenStream| match op {
                        NodeOp::Add => quote!(::nn_core::graph::add_backward(&*#dy, #target, #accumulate);),
                        NodeOp::Subtract if j == 0 => {
                            quote!(::nn_core::graph::add_backward(&*#dy, #target, #accumulate);)
                        }
                        NodeOp::Subtract => quote!(::nn_core::graph::subtract_backward(&*#dy, #target, #accumulate);),
                        NodeOp::Multiply => {
                            quote!(::nn_core::graph::multiply_backward(&*#dy, &[#(#reads),*], #j, #target, #accumulate);)
                        }
                        NodeOp::Concat(blocks) => {
                            let blocks = blocks.iter().map(|b| Literal::usize_unsuffixed(*b));
                            quote!(::nn_core::graph::concat_backward(&*#dy, &[#(#blocks),*], #j, #target, #accumulate);)
                        }
                        NodeOp::Apply(_) => unreachable!(),
                    };
                    backward_body.extend(if g.values[u].input {
                        let c = contribution(quote!(__d));
                        let dx = &dxs[input_of(u)];
                        quote!(if let ::core::option::Option::Some(__d) = #dx.as_deref_mut() { #c })
                    } else {
                        let gu = gr(u);
                        contribution(quote!(&mut *#gu))
                    });
                }
            }
        }
    }
    let forward_values = bind_values(&format_ident!("scratch"), true);
    let train_values = bind_values(&format_ident!("cache"), true);
    let backward_values = bind_values(&format_ident!("cache"), false);
    let train_caches = bind_caches(true);
    let backward_caches = bind_caches(false);
    let mut grad_buffers = TokenStream::new();
    for &i in &internal {
        let (name, len) = (gr(i), vlen(i));
        grad_buffers.extend(quote!(let (#name, scratch) = scratch.split_at_mut(batch * #len);));
    }
    let dy_names: Vec<Ident> = g.outputs.iter().map(|&o| gr(o)).collect();

    let init_body: TokenStream = g
        .layers
        .iter()
        .enumerate()
        .map(|(k, layer)| {
            let l = format_ident!("__NN_L{}", k);
            let (pr, br) = (p_range(k), b_range(k));
            match layer {
                GraphLayer::Plain(_) => quote!(::nn_core::Layer::init(&#l, &mut params[#pr], &mut buffers[#br], rng);),
                GraphLayer::Tied { .. } => quote!(#l.init(&mut params[#pr]);),
            }
        })
        .collect();
    let visit_body: TokenStream = g
        .layers
        .iter()
        .enumerate()
        .map(|(k, layer)| {
            let l = format_ident!("__NN_L{}", k);
            let (p, b) = (format_ident!("__NN_P{}", k), format_ident!("__NN_B{}", k));
            match layer {
                GraphLayer::Plain(_) => {
                    quote!(::nn_core::Layer::visit_tensors(&#l, path, params_at + #p, buffers_at + #b, f);)
                }
                GraphLayer::Tied { name, .. } => {
                    let layer_name = unraw(name);
                    quote! {
                        let here = ::nn_core::TensorPath::new(path, #layer_name);
                        #l.visit_tensors(::core::option::Option::Some(&here), params_at + #p, f);
                    }
                }
            }
        })
        .collect();
    let summary_body: TokenStream = g
        .layers
        .iter()
        .enumerate()
        .map(|(k, layer)| {
            let l = format_ident!("__NN_L{}", k);
            match layer {
                GraphLayer::Plain(_) => quote!(::nn_core::Layer::visit_summary(&#l, "", depth, f);),
                GraphLayer::Tied { name, outputs, .. } => {
                    let layer_name = unraw(name);
                    let params = &sizes[k].0;
                    quote! {
                        f(&::nn_core::layer::SummaryRow {
                            name: #layer_name, kind: "TiedDense", depth, output: &[#outputs], params: #params,
                        });
                    }
                }
            }
        })
        .collect();
    // Per sample, the floats of the largest initial state given to a layer (`h0` and
    // `c0` together), whose gradient the backward pass writes before passing it on.
    let state_lens: Vec<TokenStream> = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op, NodeOp::Apply(_)) && n.args.len() > 1)
        .map(|n| {
            let lens = n.args[1..].iter().map(|&a| vlen(a));
            quote!(0 #(+ #lens)*)
        })
        .collect();
    let (state_scratch, state_scratch_len) = if state_lens.is_empty() {
        (TokenStream::new(), TokenStream::new())
    } else {
        (
            quote!(let (__dstate, scratch) = scratch.split_at_mut(batch * ::nn_core::graph::max(&[#(#state_lens),*]));),
            quote!(+ ::nn_core::graph::max(&[#(#state_lens),*])),
        )
    };
    let Checks { aliases, items } = checks;
    let batch = quote!(let batch = #x0.len() / <#in0 as ::nn_core::Shape>::LEN;);
    let backward_prologue = quote! {
        #batch
        #(let mut #dxs = #dxs;)*
        #backward_values
        #backward_caches
        #(let #dy_names: &mut [f32] = #dys;)*
        #grad_buffers
        let (__tmp, scratch) = scratch.split_at_mut(batch * ::nn_core::graph::max(&[#(#all_lens),*]));
        #state_scratch
    };
    let train_ctx = quote!(let ::nn_core::TrainCtx { params, buffers, cache, scratch, rng, training } = cx;);
    let backward_ctx = quote!(let ::nn_core::BackwardCtx { params, cache, grads, frozen, scratch } = cx;);
    let sizes_items = quote! {
        const __NN_PARAMS: usize = 0 #(+ #total_params)*;
        const __NN_BUFFERS: usize = 0 #(+ #total_buffers)*;
        const __NN_CACHE: usize = 0 #(+ #internal_lens)* #(+ #node_caches)*;
        const __NN_SCRATCH: usize = 0 #(+ #internal_lens)*
            + ::nn_core::graph::max(&[#(#all_lens),*])
            + ::nn_core::graph::max(&[#(#scratches),*])
            #state_scratch_len;
        // Inference keeps the values in the scratch and needs no gradient buffers.
        const __NN_FORWARD_SCRATCH: usize = 0 #(+ #internal_lens)*
            + ::nn_core::graph::max(&[#(#forward_scratches),*]);
    };
    // The items both forms of the expansion start with.
    let shared_items = quote! {
        #(#layer_items)*
        #(#offsets)*
        #(#value_lens)*
        #(#aliases)*
        #(#items)*
        #sizes_items
    };
    if multi {
        let (n_in, n_out) = (g.inputs.len(), g.outputs.len());
        let several_io = several_inputs_or_outputs(g);
        let visit_args = expand::visit_tensors_args();
        return quote! {
            #item
            const _: () = {
                #shared_items

                /// A graph network with several inputs or outputs: the methods of
                /// `nn_core::Layer`, over arrays of inputs and outputs (its `Layer`
                /// impl runs them on the concatenated samples).
                #[allow(unused_variables, unused_mut, clippy::all)]
                impl #name {
                    /// The number of trainable parameters.
                    pub const PARAMS: usize = __NN_PARAMS;
                    /// The number of non-trainable state values.
                    pub const BUFFERS: usize = __NN_BUFFERS;
                    /// Floats per sample that `forward_train` keeps for `backward`.
                    pub const CACHE: usize = __NN_CACHE;
                    /// Floats per sample of temporary space of every pass.
                    pub const SCRATCH: usize = __NN_SCRATCH;

                    /// Initialises the parameters and buffers.
                    pub fn init(&self, params: &mut [f32], buffers: &mut [f32], rng: &mut ::nn_core::Rng) {
                        #init_body
                    }

                    /// Inference over a batch: every input, every output, in declared order.
                    pub fn forward(
                        &self,
                        w: ::nn_core::Weights<'_>,
                        inputs: [&[f32]; #n_in],
                        outputs: [&mut [f32]; #n_out],
                        scratch: &mut [f32],
                    ) {
                        let ::nn_core::Weights { params, buffers } = w;
                        let [#(#xs),*] = inputs;
                        let [#(#ys),*] = outputs;
                        #batch
                        #forward_values
                        #forward_body
                    }

                    /// Training forward, keeping in `cx.cache` what `backward` needs.
                    pub fn forward_train(
                        &self,
                        inputs: [&[f32]; #n_in],
                        outputs: [&mut [f32]; #n_out],
                        cx: ::nn_core::TrainCtx<'_>,
                    ) {
                        #train_ctx
                        let [#(#xs),*] = inputs;
                        let [#(#ys),*] = outputs;
                        #batch
                        #train_values
                        #train_caches
                        #train_body
                    }

                    /// Backward: given the gradient of every output (overwritten), adds
                    /// the parameter gradients into `cx.grads` (but those of `cx.frozen`,
                    /// which need not be computed) and writes the gradient of each input
                    /// whose slot is given.
                    pub fn backward(
                        &self,
                        inputs: [&[f32]; #n_in],
                        outputs: [&[f32]; #n_out],
                        output_grads: [&mut [f32]; #n_out],
                        input_grads: [::core::option::Option<&mut [f32]>; #n_in],
                        cx: ::nn_core::BackwardCtx<'_>,
                    ) {
                        #backward_ctx
                        let [#(#xs),*] = inputs;
                        let [#(#ys),*] = outputs;
                        let [#(#dys),*] = output_grads;
                        let [#(#dxs),*] = input_grads;
                        #backward_prologue
                        #backward_body
                    }

                    /// Calls `f` for every parameter and buffer tensor, in `state_dict` order.
                    pub fn visit_tensors(#visit_args) {
                        #visit_body
                    }
                }

                #several_io
            };
        };
    }

    let network_impl = expand::network_impl(name, quote!(self));
    let (nesting, sizes) = expand::nesting(
        g,
        expand::SizeValues {
            params: quote!(__NN_PARAMS),
            buffers: quote!(__NN_BUFFERS),
            cache: quote!(__NN_CACHE),
            scratch: quote!(__NN_SCRATCH),
            forward_scratch: Some(quote!(__NN_FORWARD_SCRATCH)),
            tensors: Some(expand::tensor_tree(tensors)),
        },
    );
    let layer_impl = expand::layer_impl(
        name,
        expand::declared_types(net),
        expand::LayerImpl {
            consts: sizes,
            init: init_body,
            forward: quote!(let ::nn_core::Weights { params, buffers } = w; #batch #forward_values #forward_body),
            forward_train: quote!(#train_ctx #batch #train_values #train_caches #train_body),
            backward: quote!(#backward_ctx #backward_prologue #backward_body),
            visit_tensors: visit_body,
            visit_summary: Some(summary_body),
            by_value: false,
        },
    );
    quote! {
        #item
        const _: () = {
            #shared_items
            #nesting

            #layer_impl

            #network_impl
        };
    }
}

/// `Some(States { h, c })` of a layer call `layer(x, h0)` or `layer(x, h0, c0)`
/// (`reads` are its arguments), `None` for `layer(x)`.
fn initial_states(reads: &[TokenStream]) -> Option<TokenStream> {
    let h = reads.get(1)?;
    let c = reads.get(2).cloned().unwrap_or_else(|| quote!(&[]));
    Some(quote!(::core::option::Option::Some(::nn_core::layers::States { h: #h, c: #c })))
}

/// `Some(StatesMut { h, c })` over the values `states` (named by `value`) that
/// `(y, h) = gru(x)` or `(y, h, c) = lstm(x)` writes the final state into, `None`
/// without them.
fn final_states(states: &[usize], value: &dyn Fn(usize) -> Ident) -> Option<TokenStream> {
    let h = value(*states.first()?);
    let c = match states.get(1) {
        Some(&c) => {
            let c = value(c);
            quote!(&mut *#c)
        }
        None => quote!(&mut []),
    };
    Some(quote!(::core::option::Option::Some(::nn_core::layers::StatesMut { h: &mut *#h, c: #c })))
}

/// `Some(States { h, c })` over the gradients (named by `grad`) of the final-state
/// values `states`, for the backward pass; `None` without them.
fn final_state_grads(states: &[usize], grad: &dyn Fn(usize) -> Ident) -> Option<TokenStream> {
    let h = grad(*states.first()?);
    let c = match states.get(1) {
        Some(&c) => {
            let c = grad(c);
            quote!(&*#c)
        }
        None => quote!(&[]),
    };
    Some(quote!(::core::option::Option::Some(::nn_core::layers::States { h: &*#h, c: #c })))
}

/// `Some(StatesMut { h, c })` over `__dstate` for the gradient of the initial state
/// of a call with `arity` arguments `args` (`h0`, then `c0`), `None` without a state.
fn state_grad_slices(arity: usize, args: &[usize], vlen: &dyn Fn(usize) -> TokenStream) -> Option<TokenStream> {
    if arity < 2 {
        return None;
    }
    let h = vlen(args[1]);
    let c = match args.get(2) {
        Some(&c) => vlen(c),
        None => quote!(0),
    };
    Some(quote! {
        {
            let (__dh, __dc) = __dstate.split_at_mut(batch * #h);
            ::core::option::Option::Some(::nn_core::layers::StatesMut { h: __dh, c: &mut __dc[..batch * #c] })
        }
    })
}

/// The items a network with several inputs or outputs gets besides its inherent
/// methods (`PARAMS`, `init`, `forward`, `forward_train`, `backward`,
/// `visit_tensors` over arrays of inputs and outputs, and the constants `__NN_PARAMS`,
/// `__NN_BUFFERS`, `__NN_CACHE`, `__NN_SCRATCH` in scope): the one place where impls
/// of traits for such networks are added (`multi_io`).
fn several_inputs_or_outputs(g: &Graph) -> TokenStream {
    crate::multi_io::expand(g)
}
