//! How fast one core opens stored segments (AES-256-GCM, 64 KiB), the work an encrypted
//! GET adds to a plaintext one. Prints one JSON line. Run with
//! `cargo run --release -p coffer-crypto --example open_throughput [SECONDS]`
//! (scripts/bench-get-ceiling uses it).

use std::time::{Duration, Instant};

use coffer_crypto::stream::{Binding, HEADER_LEN, Opener, SEGMENT, SEGMENT_STORED, Sealer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2.0);
    let key = coffer_crypto::random_secret(32)?;
    let binding = Binding {
        object: [7; 16],
        part: 1,
    };
    // 64 segments (4 MiB): more than one segment, small enough to stay in cache, as a
    // segment just read from the page cache is.
    let plain_len = 64 * SEGMENT as u64 + 1;
    let mut sealer = Sealer::new(&key, binding)?;
    let mut stored = sealer.push(&vec![0x5a; plain_len as usize])?;
    stored.extend(sealer.finish()?);
    let opener = Opener::new(&key, binding, &stored[..HEADER_LEN], plain_len)?;
    let mut buf = vec![0u8; SEGMENT_STORED];
    let (mut bytes, mut i) = (0u64, 0u64);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs_f64(secs) {
        let at = HEADER_LEN + (i as usize) * SEGMENT_STORED;
        buf.copy_from_slice(&stored[at..at + SEGMENT_STORED]);
        bytes += opener.open_in_place(i, &mut buf)? as u64;
        i = (i + 1) % 64;
    }
    let s = started.elapsed().as_secs_f64();
    println!(
        "{{\"measure\":\"segment_open_one_core\",\"segment_bytes\":{SEGMENT},\"mb_per_s\":{:.1}}}",
        bytes as f64 / s / 1e6
    );
    Ok(())
}
