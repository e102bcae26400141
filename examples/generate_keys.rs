//! Real keys for a benchmark that seeds a database with SQL (bench/million_keys.sh):
//! `generate_keys N SAMPLE_FILE SAMPLE_COUNT` makes N pay-as-you-go keys with
//! `keys::generate_key`, as CreateApiKey does, and writes one line per key to standard
//! output: the hex SHA-256 digest and the masked key, the two columns the store keeps of a
//! key's secret. The plaintexts of SAMPLE_COUNT keys spread evenly over the N (the first
//! and the last among them) go to SAMPLE_FILE, one a line, for the benchmark to present;
//! no other plaintext is written anywhere.

use std::fs::File;
use std::io::{BufWriter, Write};

use keygate_core::keys::{expose, generate_key, mask_key, KeyFormat};

fn main() -> std::io::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let usage = "usage: generate_keys N SAMPLE_FILE SAMPLE_COUNT";
    let count: usize = arguments.next().and_then(|text| text.parse().ok()).expect(usage);
    let sample_path = arguments.next().expect(usage);
    let sample_count: usize = arguments.next().and_then(|text| text.parse().ok()).expect(usage);
    let stride = (count / sample_count.max(1)).max(1);
    let mut output = BufWriter::new(std::io::stdout().lock());
    let mut sample = BufWriter::new(File::create(sample_path)?);
    for index in 0..count {
        let key = generate_key(KeyFormat::Secure);
        let plaintext = expose(&key.plaintext);
        let digest: String = key.digest.as_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
        writeln!(output, "{digest},{}", mask_key(plaintext))?;
        if index % stride == 0 || index + 1 == count {
            writeln!(sample, "{plaintext}")?;
        }
    }
    output.flush()?;
    sample.flush()
}
