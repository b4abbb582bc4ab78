//! `check_streaming`: the image inspector (`vmsnap check`) fed as an upload is, in chunks,
//! against random-access inspection of the same bytes.
//!
//! Two kinds of input, so that the committed images (LUKS, ISO, GPT, compressed wrappers,
//! every format) seed it as they are:
//! - any input not starting with [`crate::STRUCTURED`] is the image itself, written
//!   through an [`InspectingWriter`] in chunks of [`RAW_CHUNKS`] sizes, with no claims;
//! - `STRUCTURED` followed by an `arbitrary` [`Claims`] description (chunk sizes, the
//!   declared `--format` list and `--allow` combinations, spelt as a user may: aliases,
//!   case, spaces, unknown names) and then the image's bytes as they are, fed to an
//!   [`Inspector`].
//!
//! Memory stays under the stated bound; on images the inspector keeps whole, the streamed
//! answer (format, verdict, size, rules) equals random-access inspection.

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use vmsnap::core::{FileLayer, Layer, MemSource, Registry};
use vmsnap::inspect::{
    inspect, names, CheckOptions, InspectingWriter, Inspector, Report, HEAD_BYTES, MAX_RETAINED,
};

/// The chunk sizes a raw input is written in, cycled: page, byte, odd and large writes.
const RAW_CHUNKS: [usize; 6] = [4096, 1, 65536, 511, 1 << 20, 3];

/// A format name as a user may write it.
#[derive(Arbitrary, Debug)]
enum Name {
    /// A name of the vocabulary (index modulo its length).
    Known(u8),
    /// An alias other tools use (`vpc`, `ploop`).
    Alias(bool),
    /// A name of the vocabulary in capitals, padded with spaces.
    Shouted(u8),
    /// Anything.
    Text(String),
}

/// What the caller of `check` claims and how the upload arrives.
#[derive(Arbitrary, Debug)]
struct Claims {
    /// Chunk sizes, cycled (0 counts as 1; none: one chunk).
    chunks: Vec<u16>,
    /// `--format`: names joined by `,`.
    expected: Option<Vec<Name>>,
    /// `--allow`: combinations of names joined by `+`.
    allow: Vec<Vec<Name>>,
    /// Zero bytes inserted into the stream (`gap` % 64 × 256 KiB, after `at` % (length
    /// + 1) bytes of the image), so that streams outgrow the kept head and tail.
    gap: Option<(u8, u32)>,
}

impl Name {
    fn spell(&self, vocabulary: &[String]) -> String {
        let pick = |i: u8| {
            vocabulary
                .get(usize::from(i) % vocabulary.len().max(1))
                .cloned()
                .unwrap_or_default()
        };
        match self {
            Name::Known(i) => pick(*i),
            Name::Alias(b) => if *b { "vpc" } else { "ploop" }.to_string(),
            Name::Shouted(i) => format!(" {} ", pick(*i).to_ascii_uppercase()),
            Name::Text(s) => s.clone(),
        }
    }
}

/// The command line's options from `claims`: each value validated as `check` does (an
/// invalid one is passed on as written: the inspector must cope with any string).
fn options(claims: &Claims, registry: &Registry) -> CheckOptions {
    let vocabulary = names::vocabulary(registry);
    let join = |list: &[Name], sep: &str| {
        list.iter()
            .take(8)
            .map(|n| n.spell(&vocabulary))
            .collect::<Vec<_>>()
            .join(sep)
    };
    let expected = claims.expected.as_deref().map(|l| {
        let value = join(l, ",");
        names::format_list(&value, registry).map_or(value, |v| v.join(","))
    });
    let allow = claims
        .allow
        .iter()
        .take(4)
        .map(|l| {
            let value = join(l, "+");
            names::combination(&value, registry).map_or(value, |v| v.join("+"))
        })
        .collect();
    CheckOptions {
        expected_format: expected,
        allow,
    }
}

/// Runs one input.
pub fn check_streaming(input: &[u8]) {
    let Ok(registry) = vmsnap::registry() else {
        return;
    };
    let (streamed, data, opts) = match input.strip_prefix(crate::STRUCTURED) {
        Some(rest) => {
            let mut u = Unstructured::new(rest);
            let Ok(claims) = Claims::arbitrary(&mut u) else {
                return;
            };
            let data = u.take_rest();
            let opts = options(&claims, &registry);
            let sizes: Vec<usize> = claims
                .chunks
                .iter()
                .map(|&s| usize::from(s).max(1))
                .collect();
            let mut ins = Inspector::with_hints(vmsnap::stream_hints());
            let (gap, at) = claims.gap.map_or((0, 0), |(g, at)| {
                let at = at as usize % (data.len() + 1);
                (usize::from(g % 64) * (256 << 10), at)
            });
            let (before, after) = data.split_at(at);
            for chunk in chunks(before, &sizes) {
                ins.feed(chunk);
            }
            let zeros = vec![0u8; 1 << 16];
            let mut left = gap;
            for &n in sizes.iter().chain(&[1 << 16]).cycle() {
                if left == 0 {
                    break;
                }
                let n = n.clamp(4096, 1 << 16).min(left);
                ins.feed(&zeros[..n]);
                left -= n;
            }
            for chunk in chunks(after, &sizes) {
                ins.feed(chunk);
                assert!(ins.retained() <= MAX_RETAINED);
            }
            assert_eq!(ins.total(), (data.len() + gap) as u64);
            let report = ins.finish(&registry, &opts);
            if gap > 0 {
                render(&report);
                return;
            }
            (report, data, opts)
        }
        None => {
            let opts = CheckOptions::default();
            let mut w = InspectingWriter::new(std::io::sink(), vmsnap::stream_hints());
            for chunk in chunks(input, &RAW_CHUNKS) {
                std::io::Write::write_all(&mut w, chunk).unwrap();
            }
            (w.finish(&registry, &opts).1, input, opts)
        }
    };
    render(&streamed);
    if data.len() <= HEAD_BYTES {
        let file: Arc<dyn Layer> =
            Arc::new(FileLayer::new(Arc::new(MemSource::new(data.to_vec()))));
        let direct = inspect(file, &registry, &opts);
        same(&streamed, &direct);
    }
}

/// `data` cut in pieces of `sizes`, cycled (one piece when `sizes` is empty).
fn chunks<'a>(data: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> {
    let mut sizes = sizes.iter().cycle();
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = sizes.next().copied().unwrap_or(rest.len()).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        Some(piece)
    })
}

/// Renders `report` as `check --json` does; its failure in parts is the same error.
fn render(report: &Report) {
    let _ = serde_json::to_string(report).unwrap();
    if let (Some(f), Some(e)) = (&report.failure, &report.error) {
        assert_eq!(&f.to_error().to_string(), e);
    }
}

/// A streamed report of an image kept whole says what random access says.
fn same(streamed: &Report, direct: &Report) {
    assert_eq!(streamed.format, direct.format);
    assert_eq!(streamed.verdict, direct.verdict);
    assert_eq!(streamed.virtual_size, direct.virtual_size);
    assert_eq!(streamed.detected, direct.detected);
    assert_eq!(streamed.payload_offset, direct.payload_offset);
}
