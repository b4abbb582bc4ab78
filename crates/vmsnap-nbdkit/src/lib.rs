//! vmsnap-nbdkit: an [nbdkit](https://libguestfs.org/nbdkit.1.html) plugin that serves any
//! layer vmsnap opens — a disk, a disk inside a backing chain, guest memory from a savevm
//! qcow2, a Hyper-V `.vmrs` or a VMware `.vmsn` — read-only over NBD:
//!
//! ```text
//! nbdkit -r ./libvmsnap_nbdkit.so file=IMAGE [layer=L] [external=none|same_dir|vm_dir|any]
//!        [missing=error|zeros] [KEY=VALUE …]
//! ```
//!
//! The image is opened and the layer chosen exactly as `vmsnap cat` does (the default
//! layer, `--external` as the CLI's default (`vm_dir` for a VM configuration, else `same_dir`), `--missing error` by default, plugin options as
//! `-o`). Clients see the layer's extents as block status (data, allocated zeros, holes),
//! may open several connections (`can_multi_conn`) and read in parallel. A read that fails
//! sends the client an errno and logs vmsnap's message. `vmsnap serve` runs nbdkit with
//! this plugin.

mod config;
mod errno;
mod extents;

use std::sync::OnceLock;

use nbdkit::{plugin, ExtentHandle, Flags, Server, ThreadModel};

use crate::config::Served;
use crate::errno::to_nbdkit;

/// The layer, opened in `get_ready` before the first connection.
static SERVED: OnceLock<Served> = OnceLock::new();

fn not_ready() -> nbdkit::Error {
    nbdkit::Error::new(libc::EINVAL, "vmsnap: the image was not opened")
}

/// One client connection: every connection reads the one layer.
struct Connection {
    served: &'static Served,
}

impl Connection {
    fn fail(&self, e: &vmsnap::core::Error) -> nbdkit::Error {
        to_nbdkit(e, Some(&self.served.file))
    }
}

impl Server for Connection {
    fn name() -> &'static str {
        "vmsnap"
    }

    fn longname() -> Option<&'static str> {
        Some("vmsnap: any layer of a VM image or memory snapshot, read-only")
    }

    fn version() -> Option<&'static str> {
        Some(env!("CARGO_PKG_VERSION"))
    }

    fn description() -> Option<&'static str> {
        Some(
            "Serves one layer of what vmsnap opens (virtual disks, backing chains, guest \
             memory in savevm qcow2, Hyper-V .vmrs, VMware .vmsn/.vmem) read-only, with its \
             extents as block status.",
        )
    }

    fn config_help() -> Option<&'static str> {
        Some(
            "file=<IMAGE>      (required) The image; the path alone works too.\n\
             layer=<L>         The layer, as `vmsnap --layer` takes it (default: the top).\n\
             external=none|same_dir|vm_dir|any  Which referenced files may be opened\n\
                                        (vm_dir for a VM configuration, else same_dir).\n\
             missing=error|zeros  Reads of a reference not opened fail, or read zeros.\n\
             <KEY>=<VALUE>     A format option, as `vmsnap -o` (`vmsnap formats` lists them).",
        )
    }

    fn magic_config_key() -> Option<&'static str> {
        Some("file")
    }

    fn config(key: &str, value: &str) -> nbdkit::Result<()> {
        config::set(key, value).map_err(|e| to_nbdkit(&e, None))
    }

    fn config_complete() -> nbdkit::Result<()> {
        config::complete().map_err(|e| to_nbdkit(&e, None))
    }

    fn get_ready() -> nbdkit::Result<()> {
        let served = config::open().map_err(|e| to_nbdkit(&e, config::file().as_deref()))?;
        nbdkit::debug!(
            "serving layer {} of {} ({} bytes)",
            served.name,
            served.file.display(),
            served.layer.len()
        );
        // get_ready runs once; a second call would keep the layer already opened.
        let _ = SERVED.set(served);
        Ok(())
    }

    fn thread_model() -> nbdkit::Result<ThreadModel> {
        Ok(ThreadModel::Parallel)
    }

    fn open(_readonly: bool) -> nbdkit::Result<Box<dyn Server>> {
        let served = SERVED.get().ok_or_else(not_ready)?;
        Ok(Box::new(Connection { served }))
    }

    fn get_size(&self) -> nbdkit::Result<i64> {
        i64::try_from(self.served.layer.len()).map_err(|_| {
            nbdkit::Error::new(
                libc::EOVERFLOW,
                format!(
                    "vmsnap: layer {} is larger than NBD can serve",
                    self.served.name
                ),
            )
        })
    }

    fn can_multi_conn(&self) -> nbdkit::Result<bool> {
        // Read-only: every connection sees the same bytes.
        Ok(true)
    }

    fn can_extents(&self) -> nbdkit::Result<bool> {
        Ok(true)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> nbdkit::Result<()> {
        self.served
            .layer
            .read_at(offset, buf)
            .map_err(|e| self.fail(&e))
    }

    fn extents(
        &self,
        count: u32,
        offset: u64,
        flags: Flags,
        handle: &mut ExtentHandle,
    ) -> nbdkit::Result<()> {
        let layer = &self.served.layer;
        let end = offset.saturating_add(u64::from(count)).min(layer.len());
        if end <= offset {
            return Ok(());
        }
        let list = layer.extents(offset..end).map_err(|e| self.fail(&e))?;
        for (start, len, kind) in extents::nbd_extents(&list, offset..end, self.served.zeros) {
            handle.add(start, len, kind)?;
            if flags.contains(Flags::REQ_ONE) {
                break;
            }
        }
        Ok(())
    }
}

// nbdkit finds the plugin through this `#[no_mangle]` entry point (`plugin_init`), which is
// why the crate's `unsafe_code` lint is relaxed here and only here.
#[allow(unsafe_code)]
mod entry {
    use super::{plugin, Connection};

    plugin!(Connection {
        config,
        config_complete,
        get_ready,
        thread_model,
        can_multi_conn,
        can_extents,
        extents
    });
}
