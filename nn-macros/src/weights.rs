//! `include_weights!(Net, "file.safetensors")`: the file read at compile time.
//!
//! The macro reads the file (a relative path from the directory of the `Cargo.toml` of
//! the package whose sources hold the call, see [`base_dir`]), and expands to an inline `const` block that holds the file's tensors
//! (names, shapes, `f32` bits, as `nn_core::weights::WeightsFile`) and evaluates
//! `nn_core::weights::bake::<Net, N>`, which checks every name and shape against the
//! network's compile-time description and lays the values out in `state_dict` order.
//! The macro itself reports what it sees without the network: a file it cannot read,
//! a file that is not safetensors, a tensor that is not `F32`, a value that is NaN or
//! infinite. It parses and decodes with `nn-safetensors`, under the default rules of
//! the run-time loader (`LoadOptions::default()`), so a file that `load_safetensors`
//! refuses does not compile either.
use std::path::{Path, PathBuf};

use proc_macro2::{Literal, Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{LitStr, Token};

/// `Net, "path"` with an optional trailing comma.
struct Input {
    network: syn::Path,
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
pub(crate) struct Tensor {
    name: String,
    shape: Vec<usize>,
    bits: Vec<u32>,
}

/// The expansion of `include_weights!` called from the source file `caller` (as the
/// compiler names it, `None` if unknown).
pub(crate) fn include_weights(tokens: TokenStream, caller: Option<&Path>) -> TokenStream {
    match syn::parse2::<Input>(tokens).and_then(|input| expand(&input, caller)) {
        Ok(tokens) => tokens,
        Err(e) => e.to_compile_error(),
    }
}

fn expand(input: &Input, caller: Option<&Path>) -> syn::Result<TokenStream> {
    let span = input.file.span();
    let relative = input.file.value();
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| syn::Error::new(span, "`CARGO_MANIFEST_DIR` is not set: build with cargo"))?;
    let out_dir = std::env::var_os("OUT_DIR").map(PathBuf::from);
    let caller = caller.map(|file| std::env::current_dir().map(|cwd| cwd.join(file)).unwrap_or_else(|_| file.into()));
    let path = base_dir(&manifest_dir, caller.as_deref(), out_dir.as_deref()).join(&relative);
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

/// The directory a relative weights path starts from: that of the `Cargo.toml` of the
/// package whose sources hold the call.
///
/// For a crate's own sources this is `manifest_dir` (`CARGO_MANIFEST_DIR`), and so is it
/// for a source file cargo's build script wrote under `out_dir`. A source file outside
/// both belongs to the package of the nearest directory above it with a `Cargo.toml`:
/// trybuild compiles `tests/ui/<case>.rs` in a crate it generates under the target
/// directory, wherever that is, and the case's paths then still start from the
/// package that holds `tests/ui/`.
pub(crate) fn base_dir(manifest_dir: &Path, caller: Option<&Path>, out_dir: Option<&Path>) -> PathBuf {
    let Some(caller) = caller else {
        return manifest_dir.to_path_buf();
    };
    if caller.starts_with(manifest_dir) || out_dir.is_some_and(|out| caller.starts_with(out)) {
        return manifest_dir.to_path_buf();
    }
    caller
        .ancestors()
        .skip(1)
        .find(|dir| dir.join("Cargo.toml").is_file())
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// The tensors of a safetensors file, sorted by name, each `F32` and finite.
pub(crate) fn read(bytes: &[u8], file: &str, span: Span) -> syn::Result<Vec<Tensor>> {
    let error = |message: String| syn::Error::new(span, format!("`{file}`{message}"));
    let parsed = nn_safetensors::parse(bytes).map_err(|e| error(format!(" is not a safetensors file: {e}")))?;
    let mut tensors = Vec::with_capacity(parsed.names().len());
    for name in parsed.names() {
        let view = parsed.tensor(name).ok_or_else(|| error(format!(": tensor `{name}` lies outside the file")))?;
        let elements = view.elements().ok_or_else(|| error(format!(": tensor `{name}` has too many elements")))?;
        let mut values = vec![0.0; elements];
        nn_safetensors::read_values(&view, nn_safetensors::Rules::default(), &mut values).map_err(|e| match e {
            nn_safetensors::ValueError::Dtype { found } => {
                error(format!(": tensor `{name}` has dtype {found}, `include_weights!` reads F32 tensors"))
            }
            nn_safetensors::ValueError::NonFinite { index, value } => error(format!(
                ": tensor `{name}` (shape {:?}) holds {value} at element {index} (index {:?}); \
                 `include_weights!` bakes finite values only",
                view.shape,
                nn_safetensors::position(view.shape, index),
            )),
        })?;
        let bits = values.iter().map(|v| v.to_bits()).collect();
        tensors.push(Tensor { name: name.clone(), shape: view.shape.to_vec(), bits });
    }
    Ok(tensors)
}
