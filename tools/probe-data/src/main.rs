//! `probe-data FILE`: runs every data loader on FILE and prints `loader: ok` or
//! `loader: error kind`, one line each. A crash, an abort or the memory limit shows
//! in the exit status, which `probe.py` records.
use nn_core::data::{self, CsvReader, DataError};

fn kind<T>(result: Result<T, DataError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => format!("{:?}", e.kind).split(['(', ' ']).next().unwrap_or("?").to_string(),
    }
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: probe-data FILE");
    println!("digits: {}", kind(data::digits(&path)));
    println!("iris: {}", kind(data::iris(&path)));
    println!("co2: {}", kind(data::co2(&path)));
    println!("sunspots: {}", kind(data::sunspots(&path)));
    println!("words: {}", kind(data::words(&path)));
    println!("table: {}", kind(CsvReader::new().header(true).read(&path).and_then(|t| t.numbers(4))));
}
