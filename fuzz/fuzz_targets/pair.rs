#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ttyward_proto::fuzzing::pair(data));
