//! `include_weights!(Net, "file.safetensors")`: the file read at compile time.
//!
//! The macro reads the file (relative to the directory of the calling crate's
//! `Cargo.toml`), and expands to an inline `const` block that holds the file's tensors
//! (names, shapes, `f32` bits, as `nn_core::weights::WeightsFile`) and evaluates
//! `nn_core::weights::bake::<Net, N>`, which checks every name and shape against the
//! network's compile-time description and lays the values out in `state_dict` order.
//! The macro itself reports what it sees without the network: a file it cannot read,
//! a file that is not safetensors, a tensor that is not `F32`.
use std::path::PathBuf;

use proc_macro2::{Literal, Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{LitStr, Path, Token};

/// `Net, "path"` with an optional trailing comma.
struct Input {
    network: Path,
    file: LitStr,
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let network = input.parse()?;
        input.parse::<Token![,]>()?;
        let file = input.parse()?;
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        }
        Ok(Input { network, file })
    }
}

/// One tensor of the file.
struct Tensor {
    name: String,
    shape: Vec<usize>,
    bits: Vec<u32>,
}

pub(crate) fn include_weights(tokens: TokenStream) -> TokenStream {
    match syn::parse2::<Input>(tokens).and_then(|input| expand(&input)) {
        Ok(tokens) => tokens,
        Err(e) => e.to_compile_error(),
    }
}

fn expand(input: &Input) -> syn::Result<TokenStream> {
    let span = input.file.span();
    let relative = input.file.value();
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| syn::Error::new(span, "`CARGO_MANIFEST_DIR` is not set: build with cargo"))?;
    let path = root.join(&relative);
    let bytes = std::fs::read(&path)
        .map_err(|e| syn::Error::new(span, format!("cannot read weights file `{}`: {e}", path.display())))?;
    let tensors = read(&bytes, &relative, span)?;

    let network = &input.network;
    let absolute = path.to_string_lossy().into_owned();
    let mut entries = Vec::new();
    let mut data = Vec::new();
    for t in &tensors {
        let name = &t.name;
        let shape = t.shape.iter().map(|&d| Literal::usize_unsuffixed(d));
        let offset = Literal::usize_unsuffixed(data.len());
        entries.push(quote! {
            ::nn_core::weights::FileTensor { name: #name, shape: &[#(#shape),*], offset: #offset }
        });
        data.extend(t.bits.iter().map(|&b| Literal::u32_unsuffixed(b)));
    }
    Ok(quote! {
        const {
            // Rebuild when the file changes.
            const _: &[u8] = ::core::include_bytes!(#absolute);
            const FILE: ::nn_core::weights::WeightsFile = ::nn_core::weights::WeightsFile {
                path: #relative,
                tensors: &[#(#entries),*],
                data: &[#(#data),*],
            };
            ::nn_core::weights::bake::<
                #network,
                { <#network as ::nn_core::Layer>::PARAMS + <#network as ::nn_core::Layer>::BUFFERS },
            >(&FILE)
        }
    })
}

/// The tensors of a safetensors file, sorted by name.
fn read(bytes: &[u8], file: &str, span: Span) -> syn::Result<Vec<Tensor>> {
    let parsed = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| syn::Error::new(span, format!("`{file}` is not a safetensors file: {e}")))?;
    let mut names: Vec<&str> = parsed.names();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let view = parsed.tensor(name).map_err(|e| syn::Error::new(span, format!("`{file}`: tensor `{name}`: {e}")))?;
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(syn::Error::new(
                span,
                format!("`{file}`: tensor `{name}` has dtype {}, `include_weights!` reads F32 tensors", view.dtype()),
            ));
        }
        let bits = view.data().chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        tensors.push(Tensor { name: name.to_owned(), shape: view.shape().to_vec(), bits });
    }
    Ok(tensors)
}
