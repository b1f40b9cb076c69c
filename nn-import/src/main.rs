//! `nn-import MODEL.onnx --name DigitNet --out src/digit_net.rs --weights weights/digit_net.safetensors
//! [--input-shape NAME=1,3,32,32]`: writes the `network!` source and its weights.
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: nn-import MODEL.onnx --name TypeName --out SOURCE.rs --weights WEIGHTS.safetensors \
                     [--input-shape NAME=1,3,32,32]";

struct Args {
    model: PathBuf,
    out: PathBuf,
    weights: PathBuf,
    options: nn_import::Options,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = args.peekable();
    let (mut model, mut name, mut out, mut weights) = (None, None, None, None);
    let mut shapes = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("`{flag}` needs a value"));
        match arg.as_str() {
            "--name" => name = Some(value("--name")?),
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--weights" => weights = Some(PathBuf::from(value("--weights")?)),
            "--input-shape" => {
                let text = value("--input-shape")?;
                let (input, dims) = text.split_once('=').unwrap_or(("", text.as_str()));
                let dims = dims
                    .split(',')
                    .map(|d| {
                        d.trim().parse::<usize>().map_err(|_| format!("`--input-shape {text}`: `{d}` is not a size"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                shapes.push((input.to_string(), dims));
            }
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option `{flag}`")),
            _ if model.is_none() => model = Some(PathBuf::from(arg)),
            _ => return Err(format!("a second model file `{arg}`")),
        }
    }
    let model = model.ok_or("no model file given")?;
    let name = name.ok_or("`--name` is required")?;
    let out = out.ok_or("`--out` is required")?;
    let weights = weights.ok_or("`--weights` is required")?;
    let mut options = nn_import::Options::new(&name);
    options.weights_name = weights.file_name().map(|n| n.to_string_lossy().into_owned());
    options.input_shapes = shapes;
    Ok(Args { model, out, weights, options })
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut options = args.options;
    // An unnamed `--input-shape 1,8,8` fixes the model's only input.
    if options.input_shapes.iter().any(|(n, _)| n.is_empty()) {
        let inputs = match nn_import::input_names(&args.model) {
            Ok(names) => names,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        if inputs.len() != 1 {
            eprintln!("error: the model has inputs {inputs:?}; write `--input-shape NAME=...`");
            return ExitCode::FAILURE;
        }
        for (name, _) in options.input_shapes.iter_mut().filter(|(n, _)| n.is_empty()) {
            name.clone_from(&inputs[0]);
        }
    }
    let result = nn_import::import_file(&args.model, &options).and_then(|imported| {
        imported.write(&args.out, &args.weights)?;
        Ok(imported)
    });
    match result {
        Ok(imported) => {
            println!(
                "wrote {} and {} ({} tensors)",
                args.out.display(),
                args.weights.display(),
                imported.tensors.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", args.model.display());
            ExitCode::FAILURE
        }
    }
}
