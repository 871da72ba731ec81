//! The syscall table: every x86_64 Linux syscall, with its number, name, support status and
//! handler, in one declarative list (numbering from the kernel's
//! `arch/x86/entry/syscalls/syscall_64.tbl`).
//!
//! An entry with a handler is dispatched to it; an entry without one returns `ENOSYS`. Numbers
//! not in the table (336..=423 are unassigned on x86_64, and anything past [`MAX_NR`]) return
//! `ENOSYS` too. Adding a syscall is one handler function and one line here; the ledger in
//! `docs/syscalls.md` is rendered from this table.

use super::Ctx;
use super::args::{BadArg, Handler, Invoked};
use crate::platform::Platform;

use super::creds::*;
use super::epoll::*;
use super::file_mmap::*;
use super::files::*;
use super::paths::*;
use super::poll::*;
use super::limits::*;
use super::mem::*;
use super::process_info::*;
use super::signal::*;
use super::socket::*;
use super::thread::*;
use super::time::*;
use super::timer::*;

/// How far a syscall is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Implemented with Linux semantics for everything a single-process VM can mean.
    Supported,
    /// Implemented for the cases in the note; other cases return a Linux errno.
    Partial(&'static str),
    /// Not implemented yet: `ENOSYS`, with a warning logged once.
    Enosys,
    /// Deliberately `ENOSYS` (the note says why); no warning.
    EnosysByDesign(&'static str),
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct SyscallInfo {
    pub nr: u64,
    pub name: &'static str,
    pub status: Status,
    /// Whether the table names a handler (must agree with `status`; a test checks).
    pub has_handler: bool,
}

use Status::*;

const NI: Status = EnosysByDesign("not implemented by Linux either");

macro_rules! syscall_table {
    ($($nr:literal $name:ident: $status:expr $(=> $handler:ident)?;)*) => {
        /// Every x86_64 syscall, sorted by number.
        pub static TABLE: &[SyscallInfo] = &[
            $(SyscallInfo {
                nr: $nr,
                name: stringify!($name),
                status: $status,
                has_handler: syscall_table!(@has $($handler)?),
            },)*
        ];

        /// Decodes the arguments of `nr` and runs its handler; `None` if it has none.
        pub(crate) fn invoke<P: Platform>(nr: u64, ctx: &mut Ctx<'_, P>, raw: &[u64; 6]) -> Option<Result<Invoked, BadArg>> {
            match nr {
                $($($nr => Some(<_ as Handler<P, _>>::invoke(&$handler::<P>, ctx, raw)),)?)*
                _ => None,
            }
        }
    };
    (@has $handler:ident) => { true };
    (@has) => { false };
}

syscall_table! {
    0 read: Supported => sys_read;
    1 write: Supported => sys_write;
    2 open: Partial("no FIFOs or sockets by path; permissions are not enforced (the app is root)") => sys_open;
    3 close: Supported => sys_close;
    4 stat: Supported => sys_stat;
    5 fstat: Supported => sys_fstat;
    6 lstat: Supported => sys_lstat;
    7 poll: Supported => sys_poll;
    8 lseek: Partial("SEEK_DATA/SEEK_HOLE see no holes (files are never sparse)") => sys_lseek;
    9 mmap: Partial("file mappings are copies; MAP_SHARED ones are written back on msync/munmap") => sys_mmap;
    10 mprotect: Supported => sys_mprotect;
    11 munmap: Supported => sys_munmap;
    12 brk: Supported => sys_brk;
    13 rt_sigaction: Supported => sys_rt_sigaction;
    14 rt_sigprocmask: Supported => sys_rt_sigprocmask;
    15 rt_sigreturn: Supported => sys_rt_sigreturn;
    16 ioctl: Partial("FIONREAD, FIONBIO, FIOCLEX, FIONCLEX, FIOASYNC; console: TCGETS, TCSETS*, TIOCGWINSZ, TIOCSWINSZ") => sys_ioctl;
    17 pread64: Supported => sys_pread64;
    18 pwrite64: Supported => sys_pwrite64;
    19 readv: Supported => sys_readv;
    20 writev: Supported => sys_writev;
    21 access: Partial("the app is root: only X_OK (an execute bit) and W_OK (read-only mounts) can fail") => sys_access;
    22 pipe: Partial("a blocking write of more than fits returns a short count") => sys_pipe;
    23 select: Partial("nfds is clipped to RLIMIT_NOFILE (Linux: to the fd table size)") => sys_select;
    24 sched_yield: Supported => sys_sched_yield;
    25 mremap: Partial("anonymous memory; MREMAP_DONTUNMAP is EINVAL") => sys_mremap;
    26 msync: Partial("writes shared file mappings back; MS_INVALIDATE is a no-op") => sys_msync;
    27 mincore: Enosys;
    28 madvise: Partial("MADV_DONTNEED/FREE zero the range; other advice is accepted and ignored") => sys_madvise;
    29 shmget: Enosys;
    30 shmat: Enosys;
    31 shmctl: Enosys;
    32 dup: Supported => sys_dup;
    33 dup2: Supported => sys_dup2;
    34 pause: Supported => sys_pause;
    35 nanosleep: Supported => sys_nanosleep;
    36 getitimer: Supported => sys_getitimer;
    37 alarm: Supported => sys_alarm;
    38 setitimer: Partial("ITIMER_VIRTUAL and ITIMER_PROF both count accounted CPU time (all of it is user time)") => sys_setitimer;
    39 getpid: Supported => sys_getpid;
    40 sendfile: Supported => sys_sendfile;
    41 socket: Partial("AF_INET, AF_INET6 (TCP, UDP) and AF_UNIX (stream, datagram, seqpacket); no raw or netlink sockets") => sys_socket;
    42 connect: Supported => sys_connect;
    43 accept: Supported => sys_accept;
    44 sendto: Partial("MSG_OOB is EOPNOTSUPP") => sys_sendto;
    45 recvfrom: Partial("MSG_OOB is EINVAL, MSG_ERRQUEUE is EAGAIN") => sys_recvfrom;
    46 sendmsg: Partial("no ancillary data (SCM_RIGHTS, SCM_CREDENTIALS): EOPNOTSUPP") => sys_sendmsg;
    47 recvmsg: Partial("never returns ancillary data") => sys_recvmsg;
    48 shutdown: Supported => sys_shutdown;
    49 bind: Partial("AF_UNIX names live in a per-process namespace, not in the filesystem") => sys_bind;
    50 listen: Partial("TCP: a SYN beyond a full backlog is answered with RST instead of dropped") => sys_listen;
    51 getsockname: Supported => sys_getsockname;
    52 getpeername: Supported => sys_getpeername;
    53 socketpair: Supported => sys_socketpair;
    54 setsockopt: Partial("SO_*, TCP_*, IP_*, IPV6_* options apps use; hints (TCP_CORK, IP_TOS, ...) are recorded; others ENOPROTOOPT") => sys_setsockopt;
    55 getsockopt: Partial("as setsockopt") => sys_getsockopt;
    56 clone: Partial("threads (CLONE_VM|CLONE_SIGHAND|CLONE_THREAD...); without CLONE_VM (fork) ENOSYS") => sys_clone;
    57 fork: EnosysByDesign("one process per VM: a second address space does not exist");
    58 vfork: EnosysByDesign("one process per VM: a second address space does not exist");
    59 execve: Enosys;
    60 exit: Supported => sys_exit;
    61 wait4: Enosys;
    62 kill: Partial("this process only (pid 0, the pid or any of its thread ids); -1 and other pids are ESRCH") => sys_kill;
    63 uname: Supported => sys_uname;
    64 semget: Enosys;
    65 semop: Enosys;
    66 semctl: Enosys;
    67 shmdt: Enosys;
    68 msgget: Enosys;
    69 msgsnd: Enosys;
    70 msgrcv: Enosys;
    71 msgctl: Enosys;
    72 fcntl: Partial("record and OFD locks always granted (one process); no leases, seals or notify") => sys_fcntl;
    73 flock: Partial("always granted (one process)") => sys_flock;
    74 fsync: Supported => sys_fsync;
    75 fdatasync: Supported => sys_fdatasync;
    76 truncate: Supported => sys_truncate;
    77 ftruncate: Supported => sys_ftruncate;
    78 getdents: Enosys;
    79 getcwd: Supported => sys_getcwd;
    80 chdir: Supported => sys_chdir;
    81 fchdir: Supported => sys_fchdir;
    82 rename: Supported => sys_rename;
    83 mkdir: Supported => sys_mkdir;
    84 rmdir: Supported => sys_rmdir;
    85 creat: Supported => sys_creat;
    86 link: Supported => sys_link;
    87 unlink: Supported => sys_unlink;
    88 symlink: Supported => sys_symlink;
    89 readlink: Supported => sys_readlink;
    90 chmod: Partial("modes are kept, not enforced") => sys_chmod;
    91 fchmod: Partial("modes are kept, not enforced") => sys_fchmod;
    92 chown: Partial("owners are kept, not enforced") => sys_chown;
    93 fchown: Partial("owners are kept, not enforced") => sys_fchown;
    94 lchown: Partial("owners are kept, not enforced") => sys_lchown;
    95 umask: Supported => sys_umask;
    96 gettimeofday: Supported => sys_gettimeofday;
    97 getrlimit: Supported => sys_getrlimit;
    98 getrusage: Partial("CPU time from the kernel's accounting, all counted as user time; maxrss is memory in use; other fields 0") => sys_getrusage;
    99 sysinfo: Partial("no load averages, swap or shared memory (0)") => sys_sysinfo;
    100 times: Partial("CPU time from the kernel's accounting, all counted as user time") => sys_times;
    101 ptrace: Enosys;
    102 getuid: Supported => sys_getuid;
    103 syslog: Enosys;
    104 getgid: Supported => sys_getgid;
    105 setuid: Partial("ids are kept and reported; file permissions are not checked against them") => sys_setuid;
    106 setgid: Partial("ids are kept and reported; file permissions are not checked against them") => sys_setgid;
    107 geteuid: Supported => sys_geteuid;
    108 getegid: Supported => sys_getegid;
    109 setpgid: Enosys;
    110 getppid: Supported => sys_getppid;
    111 getpgrp: Supported => sys_getpgrp;
    112 setsid: Enosys;
    113 setreuid: Partial("ids are kept and reported; file permissions are not checked against them") => sys_setreuid;
    114 setregid: Partial("ids are kept and reported; file permissions are not checked against them") => sys_setregid;
    115 getgroups: Supported => sys_getgroups;
    116 setgroups: Partial("ids are kept and reported; file permissions are not checked against them") => sys_setgroups;
    117 setresuid: Partial("ids are kept and reported; file permissions are not checked against them") => sys_setresuid;
    118 getresuid: Supported => sys_getresuid;
    119 setresgid: Partial("ids are kept and reported; file permissions are not checked against them") => sys_setresgid;
    120 getresgid: Supported => sys_getresgid;
    121 getpgid: Supported => sys_getpgid;
    122 setfsuid: Partial("ids are kept and reported; file permissions are not checked against them") => sys_setfsuid;
    123 setfsgid: Partial("ids are kept and reported; file permissions are not checked against them") => sys_setfsgid;
    124 getsid: Supported => sys_getsid;
    125 capget: Enosys;
    126 capset: Enosys;
    127 rt_sigpending: Supported => sys_rt_sigpending;
    128 rt_sigtimedwait: Supported => sys_rt_sigtimedwait;
    129 rt_sigqueueinfo: Partial("this process only") => sys_rt_sigqueueinfo;
    130 rt_sigsuspend: Supported => sys_rt_sigsuspend;
    131 sigaltstack: Partial("SS_ONSTACK and EPERM need the kernel to report the stack pointer (Process::set_user_sp)") => sys_sigaltstack;
    132 utime: Supported => sys_utime;
    133 mknod: Partial("nodes are created; opening FIFOs and sockets by path is ENXIO") => sys_mknod;
    134 uselib: NI;
    135 personality: Enosys;
    136 ustat: Enosys;
    137 statfs: Supported => sys_statfs;
    138 fstatfs: Supported => sys_fstatfs;
    139 sysfs: Enosys;
    140 getpriority: Partial("nice values are recorded per thread; the scheduler ignores them") => sys_getpriority;
    141 setpriority: Partial("nice values are recorded per thread; the scheduler ignores them") => sys_setpriority;
    142 sched_setparam: Enosys;
    143 sched_getparam: Enosys;
    144 sched_setscheduler: Enosys;
    145 sched_getscheduler: Enosys;
    146 sched_get_priority_max: Enosys;
    147 sched_get_priority_min: Enosys;
    148 sched_rr_get_interval: Enosys;
    149 mlock: Supported => sys_mlock;
    150 munlock: Supported => sys_munlock;
    151 mlockall: Supported => sys_mlockall;
    152 munlockall: Supported => sys_munlockall;
    153 vhangup: Enosys;
    154 modify_ldt: EnosysByDesign("no LDT: the app runs in the kernel's segments");
    155 pivot_root: Enosys;
    156 _sysctl: NI;
    157 prctl: Partial("PR_SET/GET_NAME, PR_SET/GET_PDEATHSIG, PR_GET/SET_DUMPABLE, PR_SET/GET_NO_NEW_PRIVS, PR_SET/GET_TIMERSLACK; others EINVAL") => sys_prctl;
    158 arch_prctl: Partial("ARCH_SET_FS/ARCH_GET_FS; GS holds per-CPU data (EINVAL)") => sys_arch_prctl;
    159 adjtimex: Enosys;
    160 setrlimit: Partial("limits are recorded, not enforced") => sys_setrlimit;
    161 chroot: Enosys;
    162 sync: Supported => sys_sync;
    163 acct: Enosys;
    164 settimeofday: Enosys;
    165 mount: Enosys;
    166 umount2: Enosys;
    167 swapon: Enosys;
    168 swapoff: Enosys;
    169 reboot: Enosys;
    170 sethostname: Enosys;
    171 setdomainname: Enosys;
    172 iopl: EnosysByDesign("the app already runs at ring 0; port access is not an app service");
    173 ioperm: EnosysByDesign("the app already runs at ring 0; port access is not an app service");
    174 create_module: NI;
    175 init_module: EnosysByDesign("no kernel modules");
    176 delete_module: EnosysByDesign("no kernel modules");
    177 get_kernel_syms: NI;
    178 query_module: NI;
    179 quotactl: Enosys;
    180 nfsservctl: NI;
    181 getpmsg: NI;
    182 putpmsg: NI;
    183 afs_syscall: NI;
    184 tuxcall: NI;
    185 security: NI;
    186 gettid: Supported => sys_gettid;
    187 readahead: Enosys;
    188 setxattr: Enosys;
    189 lsetxattr: Enosys;
    190 fsetxattr: Enosys;
    191 getxattr: Enosys;
    192 lgetxattr: Enosys;
    193 fgetxattr: Enosys;
    194 listxattr: Enosys;
    195 llistxattr: Enosys;
    196 flistxattr: Enosys;
    197 removexattr: Enosys;
    198 lremovexattr: Enosys;
    199 fremovexattr: Enosys;
    200 tkill: Supported => sys_tkill;
    201 time: Supported => sys_time;
    202 futex: Partial("WAIT, WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP, WAIT_BITSET, WAKE_BITSET; not PI") => sys_futex;
    203 sched_setaffinity: Partial("recorded per thread and reported back; the scheduler does not pin threads") => sys_sched_setaffinity;
    204 sched_getaffinity: Supported => sys_sched_getaffinity;
    205 set_thread_area: EnosysByDesign("x86_64 uses arch_prctl(ARCH_SET_FS)");
    206 io_setup: Enosys;
    207 io_destroy: Enosys;
    208 io_getevents: Enosys;
    209 io_submit: Enosys;
    210 io_cancel: Enosys;
    211 get_thread_area: EnosysByDesign("x86_64 uses arch_prctl(ARCH_GET_FS)");
    212 lookup_dcookie: Enosys;
    213 epoll_create: Supported => sys_epoll_create;
    214 epoll_ctl_old: NI;
    215 epoll_wait_old: NI;
    216 remap_file_pages: Enosys;
    217 getdents64: Supported => sys_getdents64;
    218 set_tid_address: Supported => sys_set_tid_address;
    219 restart_syscall: Enosys;
    220 semtimedop: Enosys;
    221 fadvise64: Partial("advice is checked and accepted; it changes nothing (files are in memory or written through)") => sys_fadvise64;
    222 timer_create: Partial("CLOCK_REALTIME, MONOTONIC, BOOTTIME, PROCESS_CPUTIME_ID, THREAD_CPUTIME_ID; SIGEV_SIGNAL, SIGEV_THREAD_ID, SIGEV_NONE; no per-pid CPU clocks") => sys_timer_create;
    223 timer_settime: Supported => sys_timer_settime;
    224 timer_gettime: Supported => sys_timer_gettime;
    225 timer_getoverrun: Supported => sys_timer_getoverrun;
    226 timer_delete: Supported => sys_timer_delete;
    227 clock_settime: Enosys;
    228 clock_gettime: Partial("clocks 0-7; the CPU-time clocks read accounted CPU time (uptime until the kernel accounts)") => sys_clock_gettime;
    229 clock_getres: Partial("clocks 0-7") => sys_clock_getres;
    230 clock_nanosleep: Partial("CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME") => sys_clock_nanosleep;
    231 exit_group: Supported => sys_exit_group;
    232 epoll_wait: Supported => sys_epoll_wait;
    233 epoll_ctl: Partial("EPOLLEXCLUSIVE and EPOLLWAKEUP accepted (no effect with one waiter per event); no wakeup-path limits") => sys_epoll_ctl;
    234 tgkill: Supported => sys_tgkill;
    235 utimes: Supported => sys_utimes;
    236 vserver: NI;
    237 mbind: Enosys;
    238 set_mempolicy: Enosys;
    239 get_mempolicy: Enosys;
    240 mq_open: Enosys;
    241 mq_unlink: Enosys;
    242 mq_timedsend: Enosys;
    243 mq_timedreceive: Enosys;
    244 mq_notify: Enosys;
    245 mq_getsetattr: Enosys;
    246 kexec_load: EnosysByDesign("no kexec");
    247 waitid: Enosys;
    248 add_key: Enosys;
    249 request_key: Enosys;
    250 keyctl: Enosys;
    251 ioprio_set: Enosys;
    252 ioprio_get: Enosys;
    253 inotify_init: Enosys;
    254 inotify_add_watch: Enosys;
    255 inotify_rm_watch: Enosys;
    256 migrate_pages: Enosys;
    257 openat: Partial("as open") => sys_openat;
    258 mkdirat: Supported => sys_mkdirat;
    259 mknodat: Partial("as mknod") => sys_mknodat;
    260 fchownat: Partial("owners are kept, not enforced") => sys_fchownat;
    261 futimesat: Supported => sys_futimesat;
    262 newfstatat: Supported => sys_newfstatat;
    263 unlinkat: Supported => sys_unlinkat;
    264 renameat: Supported => sys_renameat;
    265 linkat: Supported => sys_linkat;
    266 symlinkat: Supported => sys_symlinkat;
    267 readlinkat: Supported => sys_readlinkat;
    268 fchmodat: Partial("modes are kept, not enforced") => sys_fchmodat;
    269 faccessat: Partial("as access") => sys_faccessat;
    270 pselect6: Partial("as select") => sys_pselect6;
    271 ppoll: Supported => sys_ppoll;
    272 unshare: Enosys;
    273 set_robust_list: Partial("recorded per thread; not walked at thread exit") => sys_set_robust_list;
    274 get_robust_list: Supported => sys_get_robust_list;
    275 splice: Enosys;
    276 tee: Enosys;
    277 sync_file_range: Partial("writes back the whole file's data, not only the range") => sys_sync_file_range;
    278 vmsplice: Enosys;
    279 move_pages: Enosys;
    280 utimensat: Supported => sys_utimensat;
    281 epoll_pwait: Supported => sys_epoll_pwait;
    282 signalfd: Enosys;
    283 timerfd_create: Supported => sys_timerfd_create;
    284 eventfd: Supported => sys_eventfd;
    285 fallocate: Partial("modes 0, KEEP_SIZE and PUNCH_HOLE (zeroes the range)") => sys_fallocate;
    286 timerfd_settime: Partial("TFD_TIMER_CANCEL_ON_SET is accepted but never cancels") => sys_timerfd_settime;
    287 timerfd_gettime: Supported => sys_timerfd_gettime;
    288 accept4: Supported => sys_accept4;
    289 signalfd4: Enosys;
    290 eventfd2: Supported => sys_eventfd2;
    291 epoll_create1: Supported => sys_epoll_create1;
    292 dup3: Supported => sys_dup3;
    293 pipe2: Partial("as pipe; O_DIRECT is accepted as a byte-stream pipe") => sys_pipe2;
    294 inotify_init1: Enosys;
    295 preadv: Supported => sys_preadv;
    296 pwritev: Supported => sys_pwritev;
    297 rt_tgsigqueueinfo: Supported => sys_rt_tgsigqueueinfo;
    298 perf_event_open: EnosysByDesign("no performance counters for apps");
    299 recvmmsg: Partial("returns once at least one message arrived (MSG_WAITFORONE behaviour); the timeout is checked, not applied") => sys_recvmmsg;
    300 fanotify_init: Enosys;
    301 fanotify_mark: Enosys;
    302 prlimit64: Partial("own process; limits are recorded, not enforced") => sys_prlimit64;
    303 name_to_handle_at: Enosys;
    304 open_by_handle_at: Enosys;
    305 clock_adjtime: Enosys;
    306 syncfs: Supported => sys_syncfs;
    307 sendmmsg: Partial("only the first message may block") => sys_sendmmsg;
    308 setns: Enosys;
    309 getcpu: Enosys;
    310 process_vm_readv: Enosys;
    311 process_vm_writev: Enosys;
    312 kcmp: Enosys;
    313 finit_module: EnosysByDesign("no kernel modules");
    314 sched_setattr: Enosys;
    315 sched_getattr: Enosys;
    316 renameat2: Partial("RENAME_NOREPLACE, RENAME_EXCHANGE; RENAME_WHITEOUT is EINVAL") => sys_renameat2;
    317 seccomp: Enosys;
    318 getrandom: Supported => sys_getrandom;
    319 memfd_create: Partial("no seals (F_ADD_SEALS is EINVAL)") => sys_memfd_create;
    320 kexec_file_load: EnosysByDesign("no kexec");
    321 bpf: EnosysByDesign("no BPF");
    322 execveat: Enosys;
    323 userfaultfd: Enosys;
    324 membarrier: Enosys;
    325 mlock2: Supported => sys_mlock2;
    326 copy_file_range: Supported => sys_copy_file_range;
    327 preadv2: Partial("RWF flags accepted; RWF_NOWAIT fails with EAGAIN instead of blocking") => sys_preadv2;
    328 pwritev2: Partial("RWF flags accepted as hints") => sys_pwritev2;
    329 pkey_mprotect: Enosys;
    330 pkey_alloc: Enosys;
    331 pkey_free: Enosys;
    332 statx: Partial("basic stats and mount id; no birth time") => sys_statx;
    333 io_pgetevents: Enosys;
    334 rseq: EnosysByDesign("glibc and others fall back silently when rseq is absent");
    335 uretprobe: EnosysByDesign("no uprobes");
    424 pidfd_send_signal: Enosys;
    425 io_uring_setup: Enosys;
    426 io_uring_enter: Enosys;
    427 io_uring_register: Enosys;
    428 open_tree: Enosys;
    429 move_mount: Enosys;
    430 fsopen: Enosys;
    431 fsconfig: Enosys;
    432 fsmount: Enosys;
    433 fspick: Enosys;
    434 pidfd_open: Enosys;
    435 clone3: Partial("as clone; set_tid and cgroup are EINVAL") => sys_clone3;
    436 close_range: Supported => sys_close_range;
    437 openat2: Partial("RESOLVE_NO_SYMLINKS, RESOLVE_CACHED; BENEATH, IN_ROOT, NO_XDEV, NO_MAGICLINKS are EINVAL") => sys_openat2;
    438 pidfd_getfd: Enosys;
    439 faccessat2: Partial("as access") => sys_faccessat2;
    440 process_madvise: Enosys;
    441 epoll_pwait2: Supported => sys_epoll_pwait2;
    442 mount_setattr: Enosys;
    443 quotactl_fd: Enosys;
    444 landlock_create_ruleset: Enosys;
    445 landlock_add_rule: Enosys;
    446 landlock_restrict_self: Enosys;
    447 memfd_secret: Enosys;
    448 process_mrelease: Enosys;
    449 futex_waitv: Enosys;
    450 set_mempolicy_home_node: Enosys;
    451 cachestat: Enosys;
    452 fchmodat2: Enosys;
    453 map_shadow_stack: Enosys;
    454 futex_wake: Enosys;
    455 futex_wait: Enosys;
    456 futex_requeue: Enosys;
    457 statmount: Enosys;
    458 listmount: Enosys;
    459 lsm_get_self_attr: Enosys;
    460 lsm_set_self_attr: Enosys;
    461 lsm_list_modules: Enosys;
    462 mseal: Enosys;
}

/// The highest syscall number in the table.
pub const MAX_NR: u64 = 462;

/// The table row for `nr`, if `nr` is an assigned x86_64 syscall.
pub fn info(nr: u64) -> Option<&'static SyscallInfo> {
    // The table is 0..=335 then 424..=MAX_NR without gaps (a test checks): index directly.
    let index = match nr {
        0..=335 => nr as usize,
        424..=MAX_NR => nr as usize - (424 - 336),
        _ => return None,
    };
    TABLE.get(index).filter(|i| i.nr == nr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_ends_at_max() {
        assert!(TABLE.windows(2).all(|w| w[0].nr < w[1].nr));
        assert_eq!(TABLE.last().unwrap().nr, MAX_NR);
        // 0..=335 and 424..=462 are assigned; 336..=423 are not.
        assert_eq!(TABLE.len(), 336 + (462 - 424 + 1));
    }

    #[test]
    fn status_agrees_with_handler() {
        for i in TABLE {
            let implemented = matches!(i.status, Supported | Partial(_));
            assert_eq!(implemented, i.has_handler, "{} ({})", i.name, i.nr);
        }
    }

    #[test]
    fn spot_check_numbers() {
        let expect = [
            (0, "read"),
            (39, "getpid"),
            (60, "exit"),
            (63, "uname"),
            (158, "arch_prctl"),
            (186, "gettid"),
            (200, "tkill"),
            (202, "futex"),
            (218, "set_tid_address"),
            (228, "clock_gettime"),
            (231, "exit_group"),
            (234, "tgkill"),
            (257, "openat"),
            (262, "newfstatat"),
            (273, "set_robust_list"),
            (302, "prlimit64"),
            (318, "getrandom"),
            (334, "rseq"),
            (435, "clone3"),
            (462, "mseal"),
        ];
        for (nr, name) in expect {
            assert_eq!(info(nr).map(|i| i.name), Some(name), "nr {nr}");
        }
        assert!(info(336).is_none());
        assert!(info(423).is_none());
    }
}
