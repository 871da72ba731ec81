//! What the kernel calls to set up and change the process's files: the root filesystem from
//! the image, mounts of volumes, and notifications for wait queues.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::mount::Mounted;
use super::tar::{self, LoadStats, TarError};
use super::vfs::{self, Resolved};
use super::{FileType, Filesystem, NewNode, Owner, Timestamp};
use crate::errno::Errno;
use crate::fd::WaitKey;
use crate::image::Payload;
use crate::platform::Platform;
use crate::process::{Process, WakeReason};

impl Process {
    /// Fills the root filesystem from the image: the rootfs archive (file data served in
    /// place), the program at its path, /proc/self/cmdline and environ. Call once, before the
    /// app runs.
    pub fn init_files<P: Platform>(
        &mut self,
        platform: &P,
        payload: &Payload<'static>,
    ) -> Result<LoadStats, TarError> {
        let stats = match payload.rootfs {
            Some(archive) => tar::load(&self.fs.rootfs, archive)?,
            None => LoadStats::default(),
        };
        let t = Timestamp::from_ns(platform.realtime_ns());
        self.fs
            .rootfs
            .insert_static(
                payload.app_path.as_bytes(),
                payload.app_elf,
                Owner {
                    perm: 0o755,
                    uid: 0,
                    gid: 0,
                },
                t,
            )
            .map_err(|e| TarError::Conflict {
                offset: 0,
                errno: e.0,
            })?;
        let join = |v: &[&[u8]]| -> Vec<u8> {
            let mut out = Vec::new();
            for s in v {
                out.extend_from_slice(s);
                out.push(0);
            }
            out
        };
        self.exe_path = alloc::string::String::from(payload.app_path);
        self.fs.cmdline = join(&payload.argv);
        self.fs.environ = join(&payload.envp);
        Ok(stats)
    }

    /// Mounts `fs` on the directory `path` (created in the root filesystem if missing).
    /// `EBUSY` if something is mounted there already, `ENOTDIR` if it is not a directory.
    pub fn mount<P: Platform>(
        &mut self,
        platform: &P,
        path: &str,
        fs: Arc<dyn Filesystem>,
        read_only: bool,
        source: &str,
    ) -> Result<(), Errno> {
        if !path.starts_with('/') {
            return Err(Errno::EINVAL);
        }
        let root = self.fs.mounts.root_of(0);
        let at = match vfs::walk(self, platform, root, path.as_bytes(), true) {
            Ok(Resolved::Node(v)) => v,
            Ok(Resolved::Open(_)) => return Err(Errno::ENOTDIR),
            Err(Errno::ENOENT) => {
                self.fs.rootfs.ensure(
                    path.as_bytes(),
                    NewNode::Directory,
                    Owner {
                        perm: 0o755,
                        uid: 0,
                        gid: 0,
                    },
                )?;
                match vfs::walk(self, platform, root, path.as_bytes(), true)? {
                    Resolved::Node(v) => v,
                    Resolved::Open(_) => return Err(Errno::ENOTDIR),
                }
            }
            Err(e) => return Err(e),
        };
        if vfs::metadata(self, platform, at)?.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let normalized = vfs::join_lexically("/", path.as_bytes());
        self.fs
            .mounts
            .mount(&normalized, at, Mounted::Fs(fs), read_only, source)?;
        Ok(())
    }

    /// Something waited on under `key` changed (data arrived, space freed, a peer closed):
    /// ends the waits queued there. The threads are listed in [`Process::take_woken`].
    pub fn notify(&mut self, key: WaitKey) {
        for tid in self.fs.waits.take(key) {
            self.end_wait(tid, WakeReason::Woken);
        }
    }
}
