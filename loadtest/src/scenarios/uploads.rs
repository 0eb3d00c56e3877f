//! Uploads: N files of SIZE bytes posted to the lobby at once, each body
//! streamed: how far the server's RSS rises while they run (its peak, read
//! every 10 ms, against before), and how long they take (issue 21: 20 of
//! 10 MiB at once raise it by less than 40 MiB).

use super::*;

/// `10MiB`, `512KiB`, `1048576`: a size in bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let number: u64 = number.parse().map_err(|_| format!("a size like 10MiB, not {text:?}"))?;
    let unit = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        _ => return Err(format!("a size like 10MiB, not {text:?}")),
    };
    Ok(number * unit)
}

/// One upload of `size` bytes in chunks of 64 KiB, made as it is sent; the status.
async fn upload(client: &reqwest::Client, base: &str, cookie: &str, size: u64) -> Result<u16, String> {
    const CHUNK: u64 = 64 << 10;
    let chunks = futures_util::stream::iter((0..size.div_ceil(CHUNK)).map(move |i| {
        let len = CHUNK.min(size - i * CHUNK) as usize;
        Ok::<_, std::io::Error>(vec![7u8; len])
    }));
    let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(chunks), size)
        .file_name("big.bin");
    let form = reqwest::multipart::Form::new().part("file", part);
    let res = client
        .post(format!("{base}/api/rooms/1/files"))
        .header("cookie", cookie)
        .multipart(form)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let _ = res.bytes().await;
    Ok(status)
}

pub(super) async fn uploads(server: &Server, n: usize, size: &str) -> Result<Value, String> {
    let size = parse_size(size)?;
    let cookie = client::accounts(server.base(), 1).await?.remove(0);
    let client = reqwest::Client::new();
    // One first, so what every upload shares (pools, buffers, threads) is counted out.
    let status = upload(&client, server.base(), &cookie, size).await?;
    if status != 201 {
        return Err(format!("the first upload: {status}"));
    }
    settle().await;
    let before = server.rss_kib();
    let started = Instant::now();
    let all = futures_util::future::join_all((0..n).map(|_| upload(&client, server.base(), &cookie, size)));
    let mut all = std::pin::pin!(all);
    let mut peak = before;
    let answers = loop {
        tokio::select! {
            answers = &mut all => break answers,
            _ = tokio::time::sleep(Duration::from_millis(10)) => peak = peak.max(server.rss_kib()),
        }
    };
    let took = started.elapsed().as_secs_f64();
    peak = peak.max(server.rss_kib());
    let failed = answers.iter().filter(|a| !matches!(a, Ok(201))).count();
    if failed > 0 {
        return Err(format!(
            "{failed} of {n} uploads failed: {:?}",
            answers.iter().find(|a| !matches!(a, Ok(201)))
        ));
    }
    settle().await;
    let after = server.rss_kib();
    let rise_mib = peak.saturating_sub(before) as f64 / 1024.0;
    let mib = size as f64 / f64::from(1 << 20);
    eprintln!(
        "uploads: {n} of {mib:.1} MiB at once in {took:.2} s: server RSS {:.1} MiB before, peak {:.1} MiB (+{rise_mib:.1} MiB), {:.1} MiB 2 s after",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        after as f64 / 1024.0
    );
    Ok(
        json!({"scenario": "uploads", "n": n, "size_bytes": size, "secs": took, "rss_before_mib": before as f64 / 1024.0,
              "rss_peak_mib": peak as f64 / 1024.0, "rss_rise_mib": rise_mib, "rss_after_mib": after as f64 / 1024.0}),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(super::parse_size("512k"), Ok(512 << 10));
        assert_eq!(super::parse_size("1000"), Ok(1000));
        assert!(super::parse_size("ten").is_err());
    }
}
