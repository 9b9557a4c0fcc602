//! Any two lines as host patterns and a third as a URL: parsing never panics, overlap is
//! symmetric, and a URL both patterns match means they overlap.
#![no_main]

use capstan_host::capability::http::HostPattern;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let (Some(a), Some(b), url) = (lines.next(), lines.next(), lines.next()) else {
        return;
    };
    let (Ok(a), Ok(b)) = (HostPattern::parse(a), HostPattern::parse(b)) else {
        return;
    };
    assert_eq!(a.overlaps(&b), b.overlaps(&a), "overlap of {a} and {b} is not symmetric");
    if let Some(url) = url.and_then(|u| url::Url::parse(u).ok())
        && a.matches(&url)
        && b.matches(&url)
    {
        assert!(a.overlaps(&b), "{a} and {b} both match {url} but do not overlap");
    }
});
