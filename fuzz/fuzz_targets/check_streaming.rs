//! Streaming inspection on arbitrary input fed in arbitrary chunk sizes: never panics,
//! memory stays under the stated bound, and the result equals random-access inspection.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmsnap::core::{FileLayer, Layer, MemSource};
use vmsnap::inspect::{inspect, CheckOptions, Inspector, MAX_RETAINED};

fuzz_target!(|input: (Vec<u16>, Vec<u8>)| {
    let (chunks, data) = input;
    let Ok(registry) = vmsnap::registry() else {
        return;
    };
    let opts = CheckOptions::default();
    let mut ins = Inspector::with_hints(vmsnap::stream_hints());
    let mut pos = 0;
    let mut sizes = chunks.iter().cycle();
    while pos < data.len() {
        let n = sizes.next().map_or(data.len(), |&s| usize::from(s).max(1));
        let end = (pos + n).min(data.len());
        ins.feed(&data[pos..end]);
        assert!(ins.retained() <= MAX_RETAINED);
        pos = end;
    }
    let streamed = ins.finish(&registry, &opts);
    // Inputs smaller than what the inspector keeps must give exactly the same answer.
    if data.len() <= vmsnap::inspect::HEAD_BYTES {
        let file: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(data))));
        let direct = inspect(file, &registry, &opts);
        assert_eq!(streamed.format, direct.format);
        assert_eq!(streamed.verdict, direct.verdict);
        assert_eq!(streamed.virtual_size, direct.virtual_size);
    }
});
