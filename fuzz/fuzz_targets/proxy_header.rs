//! Arbitrary bytes into the PROXY protocol header parser
//! (`protocol::proxy::parse`): never panics, a header is never longer
//! than the limit or the input, and the answer does not depend on how
//! much was received (every shorter prefix of a header asks for more; a
//! refusal stays a refusal with more bytes; the bytes after a header do
//! not change it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nopoll::protocol::proxy::{parse, MAX_HEADER};

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    match whole {
        Ok(Some((n, header))) => {
            assert!(n > 0 && n <= data.len() && n <= MAX_HEADER);
            assert_eq!(parse(&data[..n]), Ok(Some((n, header))));
            for cut in 0..n {
                assert_eq!(parse(&data[..cut]), Ok(None), "prefix of {cut} bytes");
            }
        }
        Ok(None) => {
            assert!(data.len() < MAX_HEADER);
            for cut in 0..data.len() {
                assert_eq!(parse(&data[..cut]), Ok(None), "prefix of {cut} bytes");
            }
        }
        Err(e) => {
            let mut longer = data.to_vec();
            longer.extend_from_slice(b"\r\n\r\nmore");
            assert_eq!(parse(&longer), Err(e));
        }
    }
});
