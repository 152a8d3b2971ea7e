//! The physical limits the relays share: the disk's fsync rate and loopback bandwidth.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Writes 4 KiB and fsyncs, in a loop for `time`, in a file in `dir`; returns fsyncs/s.
pub fn fsync_rate(dir: &Path, time: Duration) -> anyhow::Result<f64> {
    let path = dir.join("caresync-bench-fsync");
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let block = [0x5a_u8; 4096];
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < time {
        file.write_all(&block).context("write failed")?;
        file.sync_data().context("fsync failed")?;
        count += 1;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(rate)
}

/// Sends `megabytes` MB over one TCP connection on 127.0.0.1; returns MB/s.
pub fn loopback_mb_per_s(megabytes: usize) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind")?;
    let addr = listener.local_addr().context("no address")?;
    let reader = std::thread::spawn(move || -> anyhow::Result<u64> {
        let (mut stream, _) = listener.accept().context("accept failed")?;
        let mut buffer = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = stream.read(&mut buffer).context("read failed")?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });
    let chunk = vec![0xa5_u8; 1 << 16];
    let mut stream = TcpStream::connect(addr).context("connect failed")?;
    let started = Instant::now();
    for _ in 0..(megabytes * 16) {
        stream.write_all(&chunk).context("write failed")?;
    }
    drop(stream);
    let received = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader panicked"))??;
    Ok(received as f64 / 1_048_576.0 / started.elapsed().as_secs_f64())
}
