//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "Exit codes: 0 ok; 1 findings (info, check: something unsafe was found); \
2 error (could not open or read the input, or bad arguments).";

/// Open what hypervisors leave on disk — virtual disks, memory snapshots, VM
/// configuration stores — as address spaces, stacked automatically.
#[derive(Debug, Parser)]
#[command(name = "vmsnap", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Print the whole chain of causes with an error.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the stack of layers and what each one is (like `qemu-img info`, plus memory
    /// details).
    #[command(after_help = EXIT_CODES)]
    Info(InfoArgs),
    /// Decide whether an image is safe to hand to a hypervisor, rule by rule.
    #[command(after_help = "Exit codes: 0 safe; 1 unsafe; 2 could not inspect.")]
    Check(CheckArgs),
    /// Write a layer as a raw image, or guest memory as an ELF core or LiME file (`-O`): to
    /// a file (sparse, complete or absent), a block device, `/dev/null` or standard output;
    /// in parallel.
    #[command(after_help = EXIT_CODES)]
    Convert(ConvertArgs),
    /// Write bytes of a layer to standard output.
    #[command(after_help = EXIT_CODES)]
    Cat(CatArgs),
    /// List a layer's extents (data, zero, unallocated), like `qemu-img map`.
    #[command(after_help = EXIT_CODES)]
    Map(MapArgs),
    /// Print a layer's whole metadata tree, lossless.
    #[command(after_help = EXIT_CODES)]
    Meta(MetaArgs),
    /// List the registered format plugins.
    #[command(after_help = EXIT_CODES)]
    Formats(FormatsArgs),
    /// Show how a guest-virtual address translates, entry by entry.
    #[command(after_help = EXIT_CODES)]
    Translate(TranslateArgs),
    /// Serve a layer read-only over NBD through nbdkit (`nbd+unix:///?socket=PATH` or
    /// `nbd://127.0.0.1:N`) until Ctrl-C or SIGTERM; qemu-img, nbdcopy, nbdfuse and the
    /// kernel's nbd-client read it.
    #[command(after_help = EXIT_CODES)]
    Serve(ServeArgs),
    /// Print a shell completion script (`vmsnap completions bash > /etc/bash_completion.d/vmsnap`).
    Completions(CompletionsArgs),
}

/// `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// qemu-img's `--output=json` (and `--output json`) as `--json`, and `--output=human` as
/// the default, for every command but `meta`, whose `--output` is a path once `--extract`
/// is given.
pub fn qemu_img_spellings(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    let extracting = args
        .iter()
        .any(|a| a == "--extract" || a.to_string_lossy().starts_with("--extract="));
    let is_meta = args
        .iter()
        .skip(1)
        .find(|a| !a.to_string_lossy().starts_with('-'))
        .is_some_and(|a| a == "meta");
    if is_meta && extracting {
        return args;
    }
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter().peekable();
    while let Some(a) = it.next() {
        if a == "--output=json" {
            out.push("--json".into());
        } else if a == "--output=human" {
        } else if a == "--output" && it.peek().is_some_and(|n| n == "json" || n == "human") {
            if it.next().is_some_and(|n| n == "json") {
                out.push("--json".into());
            }
        } else {
            out.push(a);
        }
    }
    out
}

/// Which external references (backing files, extents, parents, companions) may be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum External {
    /// Open none.
    None,
    /// Open files in the same directory as the input only.
    SameDir,
    /// Open files in the VM configuration's directory and its subdirectories.
    VmDir,
    /// Open any local file.
    Any,
}

/// What reads do where they need bytes of a reference that was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Missing {
    /// Fail, naming the reference (as qemu-img refuses such an image).
    Error,
    /// Read zeros there, with a warning per reference on stderr.
    Zeros,
}

/// Options shared by every command that opens a file.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The input: a file or a block device; `-` is standard input redirected from a file.
    pub file: PathBuf,
    /// Which external references may be opened [default: vm-dir for a VM configuration or
    /// bundle (.vmx, .vbox, DiskDescriptor.xml, config.pvs, a VM directory), else same-dir].
    #[arg(long, value_enum)]
    pub external: Option<External>,
    /// What reads of a backing file, parent, extent or companion that was not opened
    /// (missing, or refused by --external) do: fail, or read zeros (with a warning).
    #[arg(long, value_enum, default_value_t = Missing::Error)]
    pub missing: Missing,
    /// A format option, `key=value` (e.g. `qemu.ram-below-4g=2G`); repeatable; `vmsnap
    /// formats` lists every key.
    #[arg(short = 'o', long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
}

/// `info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Input and policy.
    #[command(flatten)]
    pub open: OpenArgs,
    /// Print JSON (`docs/json.md`; `--output=json` too, as qemu-img spells it).
    #[arg(long)]
    pub json: bool,
    /// Also show every plugin tried on every layer, and why it refused.
    #[arg(long)]
    pub explain: bool,
}

/// `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The input: a file, a block device, or a stream (a pipe, FIFO or character device;
    /// `-` for standard input), inspected with bounded memory.
    pub file: PathBuf,
    /// Longest stream read before giving up as "could not inspect" (default 1T).
    #[arg(long, value_name = "SIZE")]
    pub max_stream: Option<String>,
    /// Format combinations allowed together, e.g. `iso+gpt` for hybrid ISOs (an ISO with an
    /// MBR too); repeatable.
    #[arg(long)]
    pub allow: Vec<String>,
    /// Print JSON (`docs/json.md`; `--output=json` too, as qemu-img spells it).
    #[arg(long)]
    pub json: bool,
    /// The format the image claims to be, or a comma-separated list of allowed formats:
    /// any plugin name or detector (`raw`, `iso`, `gpt`, `luks`, `gzip`, `xz`, `zstd`,
    /// `bzip2`, `dmg`, `cloop`, `bochs`, `tar`); `vpc` and `ploop` are aliases. A mismatch
    /// is a finding.
    #[arg(long)]
    pub format: Option<String>,
}

/// Chooses a layer.
#[derive(Debug, Args)]
pub struct LayerArg {
    /// Layer by index (0 is the file) or name (`qcow2`, `snapshot:1`,
    /// `qcow2/vmstate:1/qemu`); default: the top of the main stack.
    #[arg(long, short = 'l')]
    pub layer: Option<String>,
}

/// The file format `convert` writes (qemu-img's `-O`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// The layer's bytes as they are.
    Raw,
    /// Guest-physical memory as an ELF64 core with QEMU's CPU notes (`dump-guest-memory`'s
    /// layout: gdb, crash, Volatility read it).
    Elf,
    /// Guest-physical memory as a LiME file (one record per range).
    Lime,
}

/// `convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Input and policy.
    #[command(flatten)]
    pub open: OpenArgs,
    /// The output: a file (written beside and renamed into place when complete), a
    /// block device (written in place, holes zeroed), `/dev/null`, or `-` for standard
    /// output (a stream, holes as zeros).
    pub output: PathBuf,
    /// Which layer. With `-O elf|lime` the default is the stack's guest-physical layer
    /// (when there are several, name one).
    #[command(flatten)]
    pub layer: LayerArg,
    /// Output format: `raw` (default), or for guest-physical memory `elf` (an ELF64 core)
    /// or `lime`; `docs/export.md`.
    #[arg(short = 'O', long = "output-format", value_enum, default_value_t = OutputFormat::Raw)]
    pub format: OutputFormat,
    /// Worker threads (default 0: one per core, and at least 2; `--threads 1` copies on one).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Never show a progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// The output block device already reads as zeros: do not write the image's holes.
    #[arg(long)]
    pub target_is_zero: bool,
}

/// `cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// Input and policy.
    #[command(flatten)]
    pub open: OpenArgs,
    /// Which layer.
    #[command(flatten)]
    pub layer: LayerArg,
    /// Start offset (decimal or 0x hex; K/M/G suffixes). On a 4- or 5-level guest-virtual
    /// layer a canonical virtual address (0xffffffff81000000) is taken too.
    #[arg(long, default_value = "0")]
    pub offset: String,
    /// Number of bytes (default: to the end).
    #[arg(long)]
    pub length: Option<String>,
}

/// `map`.
#[derive(Debug, Args)]
pub struct MapArgs {
    /// Input and policy.
    #[command(flatten)]
    pub open: OpenArgs,
    /// Which layer.
    #[command(flatten)]
    pub layer: LayerArg,
    /// Print JSON (`docs/json.md`; `--output=json` too, as qemu-img spells it).
    #[arg(long)]
    pub json: bool,
}

/// `meta`.
#[derive(Debug, Args)]
pub struct MetaArgs {
    /// Input and policy.
    #[command(flatten)]
    pub open: OpenArgs,
    /// Which layer (default: every layer).
    #[command(flatten)]
    pub layer: LayerArg,
    /// Print JSON (`docs/json.md`; `--output=json` too, as qemu-img spells it).
    #[arg(long)]
    pub json: bool,
    /// Extract one named item (e.g. `imageData`) instead.
    #[arg(long, requires = "output")]
    pub extract: Option<String>,
    /// Where to write the extracted item: a file (replaced only when complete), or `-` for
    /// standard output.
    #[arg(long, alias = "out", value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// `formats`.
#[derive(Debug, Args)]
pub struct FormatsArgs {
    /// Print JSON (`docs/json.md`; `--output=json` too, as qemu-img spells it).
    #[arg(long)]
    pub json: bool,
}

/// `translate`.
#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Input and policy.
    #[command(flatten)]
    pub open: OpenArgs,
    /// The virtual address: hex (0xffffffff81000000) or decimal; canonical in 4- and
    /// 5-level paging.
    pub address: String,
    /// Which layer (default: the topmost guest-virtual layer).
    #[command(flatten)]
    pub layer: LayerArg,
    /// Print JSON (`docs/json.md`; `--output=json` too, as qemu-img spells it).
    #[arg(long)]
    pub json: bool,
}

/// `serve`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("listen").required(true).args(["socket", "port"])))]
pub struct ServeArgs {
    /// Input and policy (the plugin opens the image with the same ones).
    #[command(flatten)]
    pub open: OpenArgs,
    /// Which layer.
    #[command(flatten)]
    pub layer: LayerArg,
    /// Listen on this Unix socket (it must not exist; removed on exit).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Listen on this TCP port, on 127.0.0.1 only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
}
